/* pmix_fence BYTES [LATE_RANK SECONDS]: a PMIx client (no MPI) that puts
 * BYTES of data, then fences with data collection, as MPI_Init's modex does
 * with more; rank LATE_RANK sleeps SECONDS first.  Prints "rank R fence
 * STATUS" and exits 0 if the fence succeeded. */
#include <pmix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    size_t bytes = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
    pmix_proc_t me;
    pmix_status_t rc = PMIx_Init(&me, NULL, 0);
    if (rc != PMIX_SUCCESS) {
        fprintf(stderr, "PMIx_Init: %s\n", PMIx_Error_string(rc));
        return 2;
    }
    if (argc > 3 && me.rank == (pmix_rank_t)strtoul(argv[2], NULL, 10))
        sleep((unsigned)strtoul(argv[3], NULL, 10));
    char *data = malloc(bytes ? bytes : 1);
    if (!data)
        return 2;
    memset(data, 'a' + (int)(me.rank % 26), bytes);
    pmix_value_t v;
    memset(&v, 0, sizeof(v));
    v.type = PMIX_BYTE_OBJECT;
    v.data.bo.bytes = data;
    v.data.bo.size = bytes;
    rc = PMIx_Put(PMIX_GLOBAL, "phx.test.blob", &v);
    if (rc == PMIX_SUCCESS)
        rc = PMIx_Commit();
    pmix_info_t info;
    bool collect = true;
    PMIX_INFO_LOAD(&info, PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
    if (rc == PMIX_SUCCESS)
        rc = PMIx_Fence(NULL, 0, &info, 1);
    printf("rank %u fence %s\n", me.rank, PMIx_Error_string(rc));
    fflush(stdout);
    free(data);
    PMIx_Finalize(NULL, 0);
    return rc == PMIX_SUCCESS ? 0 : 1;
}
