/* phx ui: the address of the master's web UI with a web session for the
 * caller.  A browser cannot make munge credentials, so this asks the master
 * (with munge) for a session token that the page sends instead
 * (daemons/master/http_read.c).  The token travels in the address's
 * fragment, which browsers never send to a server. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "lib/json.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: phx ui [--json]\n"
                 "Prints the address of the master's web UI with a session for you;\n"
                 "open it in a browser.  Keep it to yourself: it lets anyone read\n"
                 "the cluster's state until it expires.\n");
}

int phx_cmd_ui(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool as_json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    json_t *s =
        phx_cli_call(PHX_CLI_MASTER, "POST", "/api/v1/session", NULL, true, NULL);
    if (!s)
        return 1;
    const char *token = NULL;
    long long expires = 0;
    phx_error_t err = {0};
    if (phx_json_str(s, "token", true, &token, &err) < 0 ||
        phx_json_int(s, "expires", true, 0, (long long)1 << 40, &expires, &err) < 0 ||
        strspn(token, "0123456789abcdefv.") != strlen(token)) {
        fprintf(stderr, "phx: master sent no usable session: %s\n",
                err.text[0] ? err.text : "bad token");
        json_decref(s);
        return 1;
    }
    char url[1024];
    int n = snprintf(url, sizeof(url), "http://%s/#token=%s",
                     phx_cli_address(PHX_CLI_MASTER), token);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        fprintf(stderr, "phx: the master's address is too long\n");
        json_decref(s);
        return 1;
    }
    if (as_json) {
        json_t *out =
            json_pack("{s:s, s:I}", "url", url, "expires", (json_int_t)expires);
        char *text = phx_json_dump(out);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(out);
    } else {
        time_t t = (time_t)expires;
        struct tm tm;
        char when[64];
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", localtime_r(&t, &tm));
        printf("%s\n", url);
        fprintf(stderr, "phx: the session lasts until %s\n", when);
    }
    json_decref(s);
    return 0;
}
