/* phx show ID [--json]: one job, like `scontrol show job`; ID is a job id
 * or A_T, task T of array A (as phx queue prints it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"
#include "cli/commands.h"

static void when(const json_t *j, const char *k, char *buf, size_t len)
{
    json_t *v = json_object_get(j, k);
    if (!json_is_integer(v)) {
        snprintf(buf, len, "Unknown");
        return;
    }
    time_t t = (time_t)json_integer_value(v);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
}

static const char *s(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "(null)";
}

static long long n(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* N or A_T, digits only. */
static bool valid_id(const char *a)
{
    size_t d = strspn(a, "0123456789");
    if (d == 0 || d > 20)
        return false;
    if (!a[d])
        return true;
    size_t t = strspn(a + d + 1, "0123456789");
    return a[d] == '_' && t > 0 && t <= 10 && !a[d + 1 + t];
}

int phx_cmd_show(int argc, char **argv)
{
    bool as_json = argc == 3 && strcmp(argv[2], "--json") == 0;
    if (argc < 2 || (argc > 2 && !as_json) || strcmp(argv[1], "--help") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "usage: phx show ID [--json]\n");
        return argc < 2 ? 2 : (strcmp(argv[1], "--help") == 0 ? 0 : 2);
    }
    if (!valid_id(argv[1])) {
        fprintf(stderr, "phx show: invalid job id \"%s\"\n", argv[1]);
        return 2;
    }
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/jobs/%s", argv[1]);
    json_t *j = phx_cli_call(PHX_CLI_BATCHD, "GET", path, NULL, true, NULL);
    if (!j)
        return 1;
    if (as_json) {
        char *t = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", t ? t : "{}");
        free(t);
        json_decref(j);
        return 0;
    }
    char sub[32], elig[32], st[32], en[32];
    when(j, "submit_time", sub, sizeof(sub));
    when(j, "eligible_time", elig, sizeof(elig));
    /* a pending job's: when its EASY reservation starts it, else Unknown */
    when(j, strcmp(s(j, "state"), "PENDING") == 0 ? "expected_start" : "start_time", st,
         sizeof(st));
    when(j, "end_time", en, sizeof(en));
    printf("JobId=%lld JobName=%s\n", n(j, "job_id"), s(j, "name"));
    if (json_object_get(j, "array_job_id"))
        printf("   ArrayJobId=%lld ArrayTaskId=%lld\n", n(j, "array_job_id"),
               n(j, "array_task_id"));
    printf("   UserId=%s(%lld) GroupId=%lld Account=%s\n", s(j, "user"), n(j, "uid"),
           n(j, "gid"), s(j, "account"));
    printf("   Priority=%lld JobState=%s Reason=%s Dependency=%s\n", n(j, "priority"),
           s(j, "state"), s(j, "reason"), s(j, "dependency"));
    printf("   Requeue=%lld ExitCode=%s\n", n(j, "requeue_count"), s(j, "exit_code"));
    printf("   RunTime=%lld TimeLimit=%s\n", n(j, "elapsed"), s(j, "time_limit_text"));
    printf("   SubmitTime=%s EligibleTime=%s\n", sub, elig);
    printf("   StartTime=%s EndTime=%s\n", st, en);
    printf("   Partition=%s NodeList=%s\n", s(j, "partition"), s(j, "node_list"));
    const json_t *spec = json_object_get(j, "spec");
    printf("   ReqNodeList=%s ExcNodeList=%s Features=%s\n", s(spec, "nodelist"),
           s(spec, "exclude"), s(spec, "constraint"));
    printf("   NumNodes=%lld NumTasks=%lld CPUs/Task=%lld AllocCPUs=%lld\n",
           n(j, "nodes"), n(j, "ntasks"), n(j, "cpus_per_task"), n(j, "alloc_cpus"));
    /* GPUs, as Slurm's TRES per node, task or job */
    const char *gres = json_string_value(json_object_get(spec, "gres"));
    const char *tres[3][2] = {
        {"Node", gres ? gres + 4 : NULL}, {"Task", NULL}, {"Job", NULL}};
    if (!gres)
        tres[0][1] = json_string_value(json_object_get(spec, "gpus_per_node"));
    tres[1][1] = json_string_value(json_object_get(spec, "gpus_per_task"));
    tres[2][1] = json_string_value(json_object_get(spec, "gpus"));
    for (int i = 0; i < 3; i++)
        if (tres[i][1])
            printf("   TresPer%s=gres/gpu:%s\n", tres[i][0], tres[i][1]);
    printf("   Exclusive=%s\n",
           json_is_true(json_object_get(j, "exclusive")) ? "1" : "0");
    printf("   Command=%s\n", s(j, "submit_line"));
    printf("   WorkDir=%s\n", s(j, "work_dir"));
    printf("   StdOut=%s\n   StdErr=%s\n", s(j, "stdout"),
           json_is_string(json_object_get(j, "stderr")) ? s(j, "stderr")
                                                        : s(j, "stdout"));
    json_decref(j);
    return 0;
}
