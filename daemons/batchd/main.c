/* phx-batchd: placeholder until the daemon (HTTP, store, offers) is written
 * on top of the pure core in this folder. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "phx-batchd: not yet implemented\n");
    return 1;
}
