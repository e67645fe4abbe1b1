/* Who may read the master's state (GET /state, GET /metrics) and the web
 * UI's sessions (POST /api/v1/session).  doc/admin.md, "Reading the state".
 *
 * A read carries one of:
 * - a munge credential (`Authorization: Munge <cred>`), as every other call:
 *   `phx nodes`, `phx partitions`, scripts;
 * - a web session (`Authorization: Bearer v1.<uid>.<expires>.<mac>`): what
 *   `phx ui` asks for with munge and hands to a browser, which cannot make
 *   munge credentials.  The token is stateless: an HMAC-SHA256, under a key
 *   drawn at the master's start, of the uid and the expiry, so the master
 *   keeps nothing per session and a restart ends every session;
 * - for /metrics only, `Authorization: Bearer <token>` with the token of
 *   `master.metrics_token_file` (Prometheus' `credentials_file`).
 * Any authenticated user may read (Slurm shows every node and job to
 * everyone by default).  With `master.allow_unauthenticated` the reads need
 * nothing, as SUBSCRIBE.  GET /health and the page GET / carry no state and
 * stay open. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemons/master/master.h"
#include "lib/http.h"
#include "lib/log.h"
#include "lib/mac.h"

#define SESSION_LABEL     "phx-web-session"
#define METRICS_TOKEN_MIN 16
#define METRICS_TOKEN_MAX 256

static int session_mac(phx_master_t *m, uid_t uid, int64_t expires,
                       unsigned char mac[PHX_MAC_LEN])
{
    char text[64];
    int n = snprintf(text, sizeof(text), SESSION_LABEL " %u %" PRId64, (unsigned)uid,
                     expires);
    phx_mac_part_t part = {text, (size_t)n};
    return phx_mac_compute(m->web_key, &part, 1, mac);
}

int phx_master_session_token(phx_master_t *m, uid_t uid, int64_t expires, char *buf,
                             size_t len)
{
    unsigned char mac[PHX_MAC_LEN];
    char hex[PHX_MAC_HEX_LEN + 1];
    if (session_mac(m, uid, expires, mac) < 0)
        return -1;
    phx_mac_to_hex(mac, sizeof(mac), hex);
    int n = snprintf(buf, len, "v1.%u.%" PRId64 ".%s", (unsigned)uid, expires, hex);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* The decimal number at *p up to the next '.' (digits only, no leading
 * zero, at most max), *p moved past the '.'; -1 if none. */
static int64_t field(const char **p, int64_t max)
{
    const char *s = *p;
    int64_t v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n >= 13 || (n > 0 && s[0] == '0'))
            return -1;
        v = v * 10 + (s[n] - '0');
    }
    if (n == 0 || s[n] != '.' || v > max)
        return -1;
    *p = s + n + 1;
    return v;
}

int phx_master_session_check(phx_master_t *m, const char *token, int64_t now,
                             uid_t *uid, const char **why)
{
    /* Exactly the text phx_master_session_token makes: one spelling per
     * session, so that tokens can be matched as strings (logs, blocks). */
    const char *p = token + 3;
    int64_t u = -1, expires = -1;
    if (strncmp(token, "v1.", 3) != 0 || (u = field(&p, UINT32_MAX - 1)) < 0 ||
        (expires = field(&p, INT64_C(1) << 40)) < 0 || strlen(p) != PHX_MAC_HEX_LEN ||
        strspn(p, "0123456789abcdef") != PHX_MAC_HEX_LEN) {
        *why = "malformed session token";
        return -1;
    }
    unsigned char mac[PHX_MAC_LEN], want[PHX_MAC_LEN];
    if (phx_mac_from_hex(p, mac, sizeof(mac)) < 0 ||
        session_mac(m, (uid_t)u, expires, want) < 0 ||
        !phx_mac_equal(mac, want, sizeof(mac))) {
        *why = "invalid session token (the master restarted since `phx ui`?)";
        return -1;
    }
    if (expires <= now) {
        *why = "session expired: run `phx ui` again";
        return -1;
    }
    *uid = (uid_t)u;
    return 0;
}

static void refuse(struct evhttp_request *req, const char *what, const char *why)
{
    phx_log_debug("read of %s refused: %s", what, why);
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Munge, Bearer realm=\"phalanx\"");
    phx_http_reply_error(req, 401, "%s: %s", what, why);
    errno = EACCES;
}

int phx_master_http_reader(phx_master_t *m, struct evhttp_request *req, bool metrics)
{
    const char *h =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *what = metrics ? "/metrics" : "/state";
    if (m->allow_unauthenticated) /* whatever it carries (Mesos' Basic, say) */
        return 0;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *token = h + 7, *why = NULL;
        size_t len = strlen(token);
        uid_t uid;
        if (metrics && m->metrics_token && len == strlen(m->metrics_token) &&
            phx_mac_equal(token, m->metrics_token, len))
            return 0;
        if (phx_master_session_check(m, token, phx_master_wall(), &uid, &why) == 0)
            return 0;
        refuse(req, what, why);
        return -1;
    }
    phx_munge_cred_t cred;
    phx_error_t err;
    if (phx_http_auth(req, m->munge, NULL, &cred, &err) < 0) {
        char why[sizeof(err.text) + 64];
        snprintf(why, sizeof(why), "%s (or a web session: phx ui)", err.text);
        refuse(req, what, why);
        return -1;
    }
    phx_munge_cred_clear(&cred);
    return 0;
}

/* POST /api/v1/session, with munge: {"token", "expires"} for the caller. */
void phx_master_http_session(phx_master_t *m, struct evhttp_request *req)
{
    phx_munge_cred_t cred;
    phx_error_t err;
    if (phx_http_auth(req, m->munge, NULL, &cred, &err) < 0) {
        phx_log_warnx("web session refused: %s", err.text);
        phx_http_reply_error(req, 401, "%s", err.text);
        return;
    }
    uid_t uid = cred.uid;
    phx_munge_cred_clear(&cred);
    int64_t expires = phx_master_wall() + m->web_session_ttl;
    char token[128];
    if (phx_master_session_token(m, uid, expires, token, sizeof(token)) < 0) {
        phx_http_reply_error(req, 500, "could not sign a session");
        return;
    }
    phx_log_info("web session for uid %u until %" PRId64, (unsigned)uid, expires);
    phx_http_reply_json(
        req, 200,
        json_pack("{s:s, s:I}", "token", token, "expires", (json_int_t)expires));
    phx_mac_wipe(token, sizeof(token));
}

/* The token of master.metrics_token_file: one line, private to its owner. */
static int load_metrics_token(phx_master_t *m, const char *file, phx_error_t *err)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return phx_error_set(err, "master.metrics_token_file: %s: %s", file,
                             strerror(errno));
    struct stat st;
    char buf[METRICS_TOKEN_MAX + 4]; /* one byte more than a token, CR, LF */
    ssize_t n = -1;
    const char *bad = NULL;
    if (fstat(fd, &st) < 0)
        bad = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        bad = "not a regular file";
    else if (st.st_uid != 0 && st.st_uid != geteuid())
        bad = "belongs to another user (chown it to the master's)";
    else if (st.st_mode & 077)
        bad = "may be read or written by others (chmod 600 it)";
    else if (st.st_size > METRICS_TOKEN_MAX + 2 ||
             (n = read(fd, buf, sizeof(buf) - 1)) > METRICS_TOKEN_MAX + 2)
        bad = "is too long for one token";
    else if (n < 0)
        bad = strerror(errno);
    close(fd);
    if (bad)
        return phx_error_set(err, "master.metrics_token_file: %s: %s", file, bad);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    bool ok = n >= METRICS_TOKEN_MIN && n <= METRICS_TOKEN_MAX &&
              strcspn(buf, " \t\r\n") == (size_t)n;
    if (ok)
        m->metrics_token = strdup(buf);
    phx_mac_wipe(buf, sizeof(buf));
    if (!ok)
        return phx_error_set(err,
                             "master.metrics_token_file: %s must hold one token of %d "
                             "to %d characters without blanks",
                             file, METRICS_TOKEN_MIN, METRICS_TOKEN_MAX);
    return m->metrics_token ? 0 : phx_error_set(err, "out of memory");
}

int phx_master_http_read_init(phx_master_t *m, phx_error_t *err)
{
    unsigned char key[PHX_MAC_KEY_LEN];
    if (phx_mac_random(key, sizeof(key)) < 0)
        return phx_error_set(err, "could not draw the web session key: %s",
                             strerror(errno));
    m->web_key = phx_mac_create(key, sizeof(key), err);
    phx_mac_wipe(key, sizeof(key));
    if (!m->web_key)
        return -1;
    m->web_session_ttl = phx_conf_int(m->conf, "master.web_session_ttl");
    const char *file = phx_conf_str(m->conf, "master.metrics_token_file");
    return file && *file ? load_metrics_token(m, file, err) : 0;
}

void phx_master_http_read_clear(phx_master_t *m)
{
    phx_mac_destroy(m->web_key);
    m->web_key = NULL;
    if (m->metrics_token) {
        phx_mac_wipe(m->metrics_token, strlen(m->metrics_token));
        free(m->metrics_token);
        m->metrics_token = NULL;
    }
}
