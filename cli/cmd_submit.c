/* phx submit [sbatch options] script [args...]: send a job script to batchd.
 * Options are passed as they are (batchd reads them with the directive
 * parser, over the script's #PHX/#SBATCH lines); this command only finds
 * where they end: the first word that is not an option, nor the value of
 * one, is the script ("-" or none: standard input).  --parsable and -W/--wait
 * count from the script's directives too: batchd's answer says whether the
 * submission (script and options) had them.
 *
 * --wrap CMD (or --wrap=CMD) submits the script sbatch --wrap writes,
 * "#!/bin/sh", a comment and CMD, named "wrap"; it is this command's alone
 * (batchd refuses it in a script) and takes no script file nor arguments. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/job_submit.h"
#include "lib/json.h"

#define SCRIPT_MAX (16u << 20)

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            if (cap >= SCRIPT_MAX) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: phx submit [sbatch options] [script [args...]]\n"
            "       phx submit [sbatch options] --wrap CMD\n"
            "  options are sbatch's (doc/jobs.md); --parsable prints the id only;\n"
            "  -W/--wait waits for the job to end and exits with its code;\n"
            "  -H/--hold submits it held (phx release starts it);\n"
            "  --wrap submits a /bin/sh script that runs CMD, as sbatch --wrap\n");
}

/* The script of --wrap CMD, sbatch's byte for byte (NULL after a message). */
static json_t *wrap_script(const char *cmd)
{
    char *text = NULL;
    if (asprintf(&text,
                 "#!/bin/sh\n# This script was created by sbatch --wrap.\n\n%s\n",
                 cmd) < 0) {
        fprintf(stderr, "phx submit: out of memory\n");
        return NULL;
    }
    json_t *j = json_string(text);
    free(text);
    if (!j)
        fprintf(stderr, "phx submit: --wrap: the command is not valid UTF-8\n");
    return j;
}

/* The script file's text (NULL after a message). */
static json_t *file_script(const char *file)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f) {
        fprintf(stderr, "phx submit: could not open \"%s\": %s\n", file,
                strerror(errno));
        return NULL;
    }
    size_t len = 0;
    char *script = read_all(f, &len);
    if (f != stdin)
        fclose(f);
    if (!script) {
        fprintf(stderr, "phx submit: could not read \"%s\": %s\n", file,
                strerror(errno == EFBIG ? EFBIG : errno));
        return NULL;
    }
    json_t *text = json_stringn(script, len);
    free(script);
    if (!text || memchr(json_string_value(text), 0, len)) {
        fprintf(stderr,
                "phx submit: %s: not a job script (binary data: NUL bytes or invalid "
                "UTF-8)\n",
                file);
        json_decref(text);
        return NULL;
    }
    return text;
}

static int wait_for(long long id)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/jobs/%lld", id);
    for (;;) {
        json_t *j = phx_cli_call(PHX_CLI_BATCHD, "GET", path, NULL, true, NULL);
        if (!j)
            return 1;
        const char *st = json_string_value(json_object_get(j, "state"));
        const char *ec = json_string_value(json_object_get(j, "exit_code"));
        if (st && strcmp(st, "PENDING") != 0 && strcmp(st, "RUNNING") != 0) {
            int code = ec ? atoi(ec) : 1;
            printf("job %lld ended %s (exit %s)\n", id, st, ec ? ec : "?");
            json_decref(j);
            return strcmp(st, "COMPLETED") == 0 ? 0 : (code ? code : 1);
        }
        json_decref(j);
        usleep(500000);
    }
}

int phx_cmd_submit(int argc, char **argv)
{
    int i = 1;
    bool parsable = false, wait = false;
    const char *wrap = NULL;
    json_t *opts = json_array();
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            json_decref(opts);
            return 0;
        }
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == 0)
            break;
        if (strcmp(a, "--wrap") == 0 || strncmp(a, "--wrap=", 7) == 0) {
            wrap = a[6] ? a + 7 : i + 1 < argc ? argv[++i] : "";
            continue;
        }
        if (strcmp(a, "--parsable") == 0)
            parsable = true;
        if (strcmp(a, "-W") == 0 || strcmp(a, "--wait") == 0)
            wait = true;
        json_array_append_new(opts, json_string(a));
        if (!phx_cli_opt_complete(a) && i + 1 < argc)
            json_array_append_new(opts, json_string(argv[++i]));
    }
    if (wrap && !*wrap) {
        fprintf(stderr, "phx submit: --wrap needs a command\n");
        json_decref(opts);
        return 2;
    }
    if (wrap && i < argc) {
        fprintf(stderr,
                "phx submit: --wrap and a script file (\"%s\") cannot both be "
                "given\n",
                argv[i]);
        json_decref(opts);
        return 2;
    }
    const char *file = wrap ? "wrap" : i < argc ? argv[i++] : "-";
    json_t *text = wrap ? wrap_script(wrap) : file_script(file);
    if (!text) {
        json_decref(opts);
        return 1;
    }
    json_t *args = json_array(), *env = phx_cli_environ();
    for (; i < argc; i++)
        json_array_append_new(args, json_string(argv[i]));
    char cwd[4096], host[256] = "", line[8192] = "";
    if (!getcwd(cwd, sizeof(cwd))) {
        fprintf(stderr, "phx submit: could not read the current directory: %s\n",
                strerror(errno));
        return 1;
    }
    gethostname(host, sizeof(host) - 1);
    size_t off = 0;
    snprintf(line, sizeof(line), "phx");
    off = strlen(line);
    for (int k = 0; k < argc && off < sizeof(line) - 1; k++)
        off += (size_t)snprintf(line + off, sizeof(line) - off, " %s", argv[k]);
    json_t *body = json_pack("{s:o, s:s, s:o, s:o, s:s, s:o, s:s, s:s}", "script", text,
                             "filename", strcmp(file, "-") == 0 ? "stdin" : file,
                             "argv", opts, "args", args, "cwd", cwd, "env", env,
                             "submit_line", line, "submit_host", host);
    json_t *r = phx_cli_submit(body, NULL);
    json_decref(body);
    if (!r)
        return 1;
    json_t *w;
    size_t k;
    json_array_foreach(json_object_get(r, "warnings"), k, w)
        fprintf(stderr, "phx submit: warning: %s\n", json_string_value(w));
    long long id = json_integer_value(json_object_get(r, "job_id"));
    if (json_is_true(json_object_get(r, "parsable")))
        parsable = true;
    if (json_is_true(json_object_get(r, "wait")))
        wait = true;
    json_decref(r);
    if (parsable)
        printf("%lld\n", id);
    else
        printf("Submitted job %lld\n", id);
    fflush(stdout);
    return wait ? wait_for(id) : 0;
}
