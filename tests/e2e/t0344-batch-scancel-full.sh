#!/usr/bin/env bash
# timeout: 120
# scancel -s hardening (from the review of scancel --signal):
# --full reaches every process of the job's cgroup, also one that left the
# shell's process group (setsid), as Slurm's does; it never reaches a
# process the job's user could not signal itself (a setuid-root helper the
# job started, nor in a step rank's group: the agent is root); and -s KILL A_0 (the first task of an
# array, whose id is the array's) cancels that task alone.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2; do start_agent $n "synthetic:pack:1 numa:1 core:2 pu:1"; done
for n in n1 n2; do wait_node $n up; done
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
# outputs of an earlier run (job ids start again with each database) would
# be read before the job's own truncates them
rm -f "$home"/phx-*.out
as() { as_user phxu1 "$@"; }
scancel=$PHX_SRC/scripts/compat/scancel
d=$PHX_TEST_DIR/shared
mkdir "$d" && chmod 777 "$d"

# a setuid-root helper that records the signals it gets
cat >"$d/rootsig.c" <<'C'
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static const char *out;
static void on(int s)
{
    char b[64];
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int n = snprintf(b, sizeof(b), "root helper got %d\n", s);
    if (fd >= 0 && write(fd, b, (size_t)n) > 0)
        close(fd);
}
int main(int argc, char **argv)
{
    if (argc < 3 || setresuid(0, 0, 0) < 0)
        return 1;
    out = argv[1];
    signal(SIGHUP, on);
    FILE *f = fopen(argv[2], "w");
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    for (int i = 0; i < 600; i++)
        sleep(1);
    return 0;
}
C
gcc -o "$d/rootsig" "$d/rootsig.c"
chmod 4755 "$d/rootsig"

cat >"$home/full.sh" <<S
#!/bin/sh
#SBATCH -t 2 -w n1
trap 'echo "shell got HUP"' HUP
setsid sh -c 'trap "echo setsid child got HUP >>$d/setsid" HUP
echo \$\$ >$d/setsid.pid
while [ ! -e $d/stop ]; do sleep 0.2; done' &
$d/rootsig $d/root.got $d/root.pid &
while [ ! -s $d/setsid.pid ] || [ ! -s $d/root.pid ]; do sleep 0.1; done
kill -HUP \$(cat $d/root.pid) 2>/dev/null && echo "user kill worked" || echo "user kill refused"
while [ ! -e $d/stop ]; do sleep 0.2; done
S
chown phxu1 "$home/full.sh"
fid=$(as phx submit --parsable full.sh)
wait_job "$fid" RUNNING 30
wait_for 30 grep -q "user kill" "$home/phx-$fid.out"
assert_contains "$(cat "$home/phx-$fid.out")" "user kill refused"
run_ok as "$scancel" --full -s HUP "$fid"
wait_for 15 grep -q "shell got HUP" "$home/phx-$fid.out"
wait_for 15 grep -q "setsid child got HUP" "$d/setsid"
sleep 1
[[ ! -e $d/root.got ]] || fail "the agent signalled the root helper: $(cat "$d/root.got")"
touch "$d/stop"
kill "$(cat "$d/root.pid")" 2>/dev/null || true
wait_job "$fid" COMPLETED 30

# -s (the steps' ranks, signalled by process group): a setuid-root helper
# in a rank's group gets nothing, the rank does
rm -f "$d/stop" "$d/root.got" "$d/root.pid"
cat >"$home/rank.sh" <<S
#!/bin/sh
#SBATCH -t 2 -w n1
phx run -n 1 sh -c 'trap "echo rank got HUP >>$d/rank" HUP
$d/rootsig $d/root.got $d/root.pid &
while [ ! -e $d/stop ]; do sleep 0.2; done' &
while [ ! -e $d/stop ]; do sleep 0.2; done
S
chown phxu1 "$home/rank.sh"
rid=$(as phx submit --parsable rank.sh)
wait_job "$rid" RUNNING 30
wait_for 30 test -s "$d/root.pid"
run_ok as "$scancel" -s HUP "$rid"
wait_for 15 grep -q "rank got HUP" "$d/rank"
sleep 1
[[ ! -e $d/root.got ]] || fail "the agent signalled the root helper in a rank's group: $(cat "$d/root.got")"
touch "$d/stop"
kill "$(cat "$d/root.pid")" 2>/dev/null || true
wait_job "$rid" COMPLETED 30

# -s KILL A_0: the first task alone
printf '#!/bin/sh\n#SBATCH -t 2 -n 1\nsleep 300\n' >"$home/arr.sh"
chown phxu1 "$home/arr.sh"
aid=$(as phx submit --parsable --array=0-1 arr.sh)
aid=${aid%%_*}
wait_for 30 job_state_is "$aid" RUNNING
wait_for 30 job_state_is "$((aid + 1))" RUNNING
run_ok as "$scancel" -s KILL "${aid}_0"
wait_job "$aid" CANCELLED 20
sleep 2
assert_eq RUNNING "$(job_field "$((aid + 1))" state)" "task 1 left running by scancel -s KILL ${aid}_0"
as phx cancel "$aid" >/dev/null
note ok
