/* Idempotent submissions: the Idempotency-Key header and the digest of a
 * submission's body (doc/batchd.md, "Sending a submission again").  Pure:
 * no socket, no SQL (submit.c stores and looks up). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "lib/mac.h"

int batchd_submit_key_check(const char *key, phx_error_t *err)
{
    size_t len = strlen(key);
    if (len < BATCHD_SUBMIT_KEY_MIN || len > BATCHD_SUBMIT_KEY_MAX)
        return phx_error_set(err,
                             "invalid Idempotency-Key header: %zu characters, it must "
                             "have %d to %d",
                             len, BATCHD_SUBMIT_KEY_MIN, BATCHD_SUBMIT_KEY_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return phx_error_set(err,
                                 "invalid Idempotency-Key header: character %zu is not "
                                 "a letter, a digit, '-' or '_'",
                                 i + 1);
    }
    return 0;
}

int batchd_submit_digest(const json_t *body, char hex[BATCHD_SUBMIT_DIGEST_LEN + 1])
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return -1;
    int rc = phx_sha256_hex(text, strlen(text), hex);
    free(text);
    return rc;
}
