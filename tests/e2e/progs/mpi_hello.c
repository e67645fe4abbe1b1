/* mpi_hello: rank/size check, Allreduce, Barrier.  Prints
 * "rank R of S sum X" and exits non-zero if the sum is wrong. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long mine = rank + 1, sum = 0;
    MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    char host[256] = "";
    const char *node = getenv("PHX_NODE");
    gethostname(host, sizeof(host));
    printf("rank %d of %d sum %ld node %s\n", rank, size, sum, node ? node : host);
    fflush(stdout);
    int ok = sum == (long)size * (size + 1) / 2;
    MPI_Finalize();
    return ok ? 0 : 3;
}
