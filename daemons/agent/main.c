/* phx-agent: one per node.  Discovers (or emulates) the node's topology,
 * registers with the master and heartbeats. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemons/agent/agent.h"
#include "lib/http.h"
#include "lib/daemon.h"
#include "lib/log.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: phx-agent [options]\n"
            "  -c, --config FILE       configuration file (see phalanx.conf(5))\n"
            "  -s, --set KEY=VALUE     override one setting (repeatable)\n"
            "  -n, --name NAME         node name (agent.name)\n"
            "  -m, --master H:P[,H:P]  masters' agent listeners (agent.master)\n"
            "  -t, --topology SPEC     synthetic:DESC or xml:FILE (agent.topology)\n"
            "  -d, --state-dir DIR     state directory (agent.state_dir)\n"
            "  -r, --run-dir DIR       records of running tasks (agent.run_dir)\n"
            "      --munge-socket PATH munged socket (agent.munge_socket)\n"
            "      --check-config      check the configuration, print it and exit\n"
            "  -v, --verbose           log at debug level\n"
            "  -h, --help              this text\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    phx_agentd_t *a = arg;
    phx_log_notice("caught signal %d, shutting down", (int)sig);
    event_base_loopexit(a->base, NULL);
}

/* SIGHUP: read the configuration again; agent.log_level applies at once,
 * the rest at the next start (lib/daemon.h).  A wrong file changes
 * nothing. */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    phx_agentd_t *a = arg;
    phx_error_t err;
    phx_conf_t *fresh =
        phx_daemon_conf_reread(phx_agentd_schema, a->conf_file, a->conf_sets,
                               a->conf_nsets, "agent.log_level", &err);
    if (!fresh) {
        phx_log_errx("configuration not reloaded (the running one stays): %s",
                     err.text);
        return;
    }
    phx_daemon_conf_apply(a->conf, fresh, a->conf_file, "agent.log_level", a->verbose);
    phx_conf_destroy(fresh);
}

static phx_topo_t *load_topology(const char *spec, phx_error_t *err)
{
    if (!spec || !*spec)
        return phx_topo_load_local(err);
    if (strncmp(spec, "synthetic:", 10) == 0)
        return phx_topo_load_synthetic(spec + 10, err);
    if (strncmp(spec, "xml:", 4) == 0)
        return phx_topo_load_xml_file(spec + 4, err);
    phx_error_set(
        err, "agent.topology \"%s\" must be empty, synthetic:DESC or xml:FILE", spec);
    errno = EINVAL;
    return NULL;
}

static int start(phx_agentd_t *a, phx_error_t *err)
{
    const phx_conf_t *conf = a->conf;
    static char hostname[256];
    a->name = phx_conf_str(conf, "agent.name");
    if (!a->name) {
        if (gethostname(hostname, sizeof(hostname)) < 0)
            return phx_error_set(err, "could not get the host name: %s",
                                 strerror(errno));
        hostname[sizeof(hostname) - 1] = '\0';
        a->name = hostname;
    }
    if (phx_masters_from_conf(&a->masters, conf, "agent.master", err) < 0)
        return -1;
    a->max_frame = (size_t)phx_conf_int(conf, "agent.max_frame");
    a->backoff_max = phx_conf_double(conf, "agent.reconnect_max");
    if (!(a->topo = load_topology(phx_conf_str(conf, "agent.topology"), err)))
        return phx_error_prefix(err, "could not load the topology");
    if (!(a->topo_json = phx_topo_to_json(a->topo)))
        return phx_error_set(err, "could not serialise the topology");
    phx_log_info(
        "node \"%s\": %d sockets, %d NUMA domains, %d cores, %d PUs, %llu MiB%s",
        a->name, phx_topo_nsockets(a->topo), phx_topo_nnumas(a->topo),
        phx_topo_ncores(a->topo), phx_topo_npus(a->topo),
        (unsigned long long)(phx_topo_memory(a->topo) >> 20),
        phx_topo_emulated(a->topo) ? " (emulated)" : "");
    if (!(a->munge = phx_munge_create(phx_conf_str(conf, "agent.munge_socket"), err)))
        return -1;
    if (!(a->base = event_base_new()))
        return phx_error_set(err, "could not create the event loop");
    a->sigint = evsignal_new(a->base, SIGINT, on_signal, a);
    a->sigterm = evsignal_new(a->base, SIGTERM, on_signal, a);
    a->sighup = evsignal_new(a->base, SIGHUP, on_sighup, a);
    if (!a->sigint || !a->sigterm || !a->sighup || event_add(a->sigint, NULL) < 0 ||
        event_add(a->sigterm, NULL) < 0 || event_add(a->sighup, NULL) < 0)
        return phx_error_set(err, "could not set up signals");
    /* Recover the tasks first: REGISTER lists them. */
    if (phx_agentd_tasks_start(a, err) < 0)
        return -1;
    if (phx_agentd_steps_start(a, err) < 0)
        return -1;
    return phx_agentd_link_start(a, err);
}

static void stop(phx_agentd_t *a)
{
    phx_agentd_link_stop(a);
    phx_agentd_steps_stop(a);
    phx_agentd_tasks_stop(a); /* tasks keep running, for the next agent */
    if (a->sigint)
        event_free(a->sigint);
    if (a->sigterm)
        event_free(a->sigterm);
    if (a->sighup)
        event_free(a->sighup);
    if (a->base)
        event_base_free(a->base);
    phx_munge_destroy(a->munge);
    json_decref(a->topo_json);
    phx_topo_destroy(a->topo);
    phx_conf_destroy(a->conf);
}

/* Turn a shortcut flag into a --set override. */
static char *shortcut(const char *key, const char *value)
{
    size_t n = strlen(key) + strlen(value) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s=%s", key, value);
    return s;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},
        {"master", required_argument, NULL, 'm'},
        {"topology", required_argument, NULL, 't'},
        {"state-dir", required_argument, NULL, 'd'},
        {"run-dir", required_argument, NULL, 'r'},
        {"munge-socket", required_argument, NULL, 'M'},
        {"check-config", no_argument, NULL, 'C'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = getenv("PHX_CONFIG");
    char **sets = calloc((size_t)argc + 1, sizeof(*sets));
    int nsets = 0, check = 0, verbose = 0, c, rc = 1;
    phx_agentd_t a = {0};
    phx_error_t err;
    while ((c = getopt_long(argc, argv, "c:s:n:m:t:d:r:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 's': sets[nsets++] = strdup(optarg); break;
        case 'n': sets[nsets++] = shortcut("agent.name", optarg); break;
        case 'm': sets[nsets++] = shortcut("agent.master", optarg); break;
        case 't': sets[nsets++] = shortcut("agent.topology", optarg); break;
        case 'd': sets[nsets++] = shortcut("agent.state_dir", optarg); break;
        case 'r': sets[nsets++] = shortcut("agent.run_dir", optarg); break;
        case 'M': sets[nsets++] = shortcut("agent.munge_socket", optarg); break;
        case 'C': check = 1; break;
        case 'v': verbose = 1; break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "phx-agent: unexpected argument \"%s\"\n", argv[optind]);
        rc = 2;
        goto out;
    }
    phx_log_init("phx-agent", PHX_LOG_STDERR, LOG_INFO);
    if (!(a.conf = phx_daemon_conf("phx-agent", phx_agentd_schema, file, sets, nsets,
                                   "agent.log_level", verbose)))
        goto out;
    if (check) {
        rc = phx_daemon_check_config(a.conf);
        goto out;
    }
    a.conf_file = file;
    a.conf_sets = sets;
    a.conf_nsets = nsets;
    a.verbose = verbose;
    signal(SIGPIPE, SIG_IGN);
    if (start(&a, &err) < 0) {
        phx_log_errx("%s", err.text);
        goto out;
    }
    char masters[1024];
    phx_log_notice("phx-agent %s: node \"%s\", master %s", PHX_VERSION, a.name,
                   phx_masters_all(&a.masters, masters, sizeof(masters)));
    rc = event_base_dispatch(a.base) < 0 ? 1 : 0;
out:
    stop(&a);
    for (int i = 0; i < nsets; i++)
        free(sets[i]);
    free(sets);
    return rc;
}
