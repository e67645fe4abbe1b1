#!/usr/bin/env bash
# timeout: 150
# scancel -s on demand: without -b the ranks of a running 2-node step get
# the signal on both nodes, and not the batch shell; with -b (--batch) the
# batch shell alone, not the ranks; with -f (--full) the shell and its
# children; the job keeps running after trapped signals.  Another user's signal is refused, as is a bad signal name, with
# a clear message; a pending job is refused; -s KILL cancels a job, pending
# or running (Slurm's rule), and -b alone kills the batch shell.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_BATCHD_EXTRA='kill_grace = 1;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
# outputs of an earlier run (job ids start again with each database) would
# be read before the job's own truncates them
rm -f "$home"/phx-*.out
as() { as_user phxu1 "$@"; }
scancel=$PHX_SRC/scripts/compat/scancel
d=$home/t0346.$$ # the ranks' and the shell's marks
mkdir "$d"
chown phxu1 "$d"

# A step of one rank per node in the background; each rank writes the
# signals it traps to $d/got.RANK; the shell's traps print to the output.
cat >"$home/sig.sh" <<S
#!/bin/sh
#SBATCH -N 2 -n 2 -t 2
trap 'echo "batch shell got USR1"' USR1
trap 'echo "batch shell got USR2"' USR2
phx run -N 2 -n 2 sh -c 'trap "echo USR1 \$PHX_NODE >>$d/got.\$PHX_PROCID" USR1
trap "echo USR2 \$PHX_NODE >>$d/got.\$PHX_PROCID" USR2
touch $d/ready.\$PHX_PROCID
while [ ! -e $d/stop ]; do sleep 0.2; done' &
step=\$!
echo started
while [ ! -e $d/stop ]; do sleep 0.2; done
wait \$step
echo "step ended \$?"
S
chown phxu1 "$home/sig.sh"
id=$(as phx submit --parsable sig.sh)
wait_job "$id" RUNNING 30
wait_for 30 test -e "$d/ready.0" -a -e "$d/ready.1"
out_file=$home/phx-$id.out

# Another user's job: refused as if it did not exist, as cancel is.
expect_fail as_user phxu2 "$scancel" -s USR1 "$id"
assert_contains "$PHX_OUT" "invalid job id $id"
# A bad name, and 0 and 65, are refused with what is accepted.
expect_fail as "$scancel" -s FOO "$id"
assert_contains "$PHX_OUT" 'unknown signal "FOO"'
assert_contains "$PHX_OUT" "a name such as USR1"
expect_fail as phx cancel --signal=SIGBOGUS "$id"
assert_contains "$PHX_OUT" 'unknown signal "SIGBOGUS"'
expect_fail as phx cancel -s 65 "$id"
assert_contains "$PHX_OUT" 'unknown signal "65"'
sleep 1
[[ ! -e $d/got.0 && ! -e $d/got.1 ]] || fail "a refused signal was sent: $(cat "$d"/got.*)"

# scancel -s USR1: both ranks, one on each node; not the shell.
run_ok as "$scancel" -s USR1 "$id"
wait_for 15 grep -q USR1 "$d/got.0"
wait_for 15 grep -q USR1 "$d/got.1"
nodes=$(cat "$d/got.0" "$d/got.1" | sed -n 's/^USR1 //p' | sort | tr '\n' ' ')
assert_eq "n1 n2 " "$nodes" "USR1 reached a rank on each node"
wait_for 10 grep -q "on request to its steps: 1 rank process groups" "$PHX_TEST_DIR/agent-n1.log"
wait_for 10 grep -q "on request to its steps: 1 rank process groups" "$PHX_TEST_DIR/agent-n2.log"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" "signal 10 (to steps) sent to agent"

# scancel --signal=USR2 --batch: the shell alone (its trap prints while it
# loops), not the ranks; SIGUSR2 by its full name through phx cancel -b.
run_ok as "$scancel" --signal=USR2 --batch "$id"
wait_for 15 grep -q "batch shell got USR2" "$out_file"
run_ok as phx cancel -b -s SIGUSR2 "$id"
wait_for 15 sh -c "[ \$(grep -c 'batch shell got USR2' '$out_file') = 2 ]"
sleep 1
assert_not_contains "$(cat "$d"/got.*)" "USR2"
assert_not_contains "$(cat "$out_file")" "batch shell got USR1"
wait_for 10 grep -q "signal 12 on request to its program" "$PHX_TEST_DIR"/agent-n[12].log

# Every signal was trapped: the job and its step run on.
assert_eq RUNNING "$(job_field "$id" state)" "the job runs on after trapped signals"
touch "$d/stop"
wait_job "$id" COMPLETED 30
out=$(cat "$out_file")
note "$out"
assert_contains "$out" "step ended 0"

# scancel --full: the batch shell, its children (a background command) and
# the ranks of its step, once; the step's `phx run`, in the shell's process
# group, is spared (it would end of HUP and take its step with it).
cat >"$home/full.sh" <<S
#!/bin/sh
#SBATCH -t 1
trap 'echo "full shell got HUP"' HUP
sh -c 'trap "echo child got HUP >>$d/full.child" HUP
touch $d/full.ready
while [ ! -e $d/full.stop ]; do sleep 0.2; done' &
phx run -n 1 sh -c 'trap "echo rank got HUP >>$d/full.rank" HUP
touch $d/full.rready
while [ ! -e $d/full.stop ]; do sleep 0.2; done' &
step=\$!
while [ ! -e $d/full.stop ]; do sleep 0.2; done
wait \$step
echo "full step ended \$?"
S
chown phxu1 "$home/full.sh"
fid=$(as phx submit --parsable full.sh)
wait_job "$fid" RUNNING 30
wait_for 30 test -e "$d/full.ready" -a -e "$d/full.rready"
run_ok as "$scancel" --full -s HUP "$fid"
wait_for 15 grep -q "full shell got HUP" "$home/phx-$fid.out"
wait_for 15 grep -q "child got HUP" "$d/full.child"
wait_for 15 grep -q "rank got HUP" "$d/full.rank"
wait_for 10 grep -q "processes of its cgroup (pid [0-9]*; 1 phx run spared), and 0 step rank process groups" "$PHX_TEST_DIR"/agent-n[12].log
sleep 1
assert_eq 1 "$(grep -c "rank got HUP" "$d/full.rank")" "the rank got HUP once"
touch "$d/full.stop"
wait_job "$fid" COMPLETED 30
assert_contains "$(cat "$home/phx-$fid.out")" "full step ended 0"

# Signals only reach a running job: a pending one is refused, and not
# changed; KILL cancels it (Slurm's rule).  A finished job is refused.
pid=$(as phx submit --parsable --begin=now+3600 sig.sh)
expect_fail as "$scancel" -s USR1 "$pid"
assert_contains "$PHX_OUT" "job $pid is pending: only a running job can be signalled"
assert_eq PENDING "$(job_field "$pid" state)" "a refused signal leaves it pending"
run_ok as "$scancel" -s KILL "$pid"
wait_job "$pid" CANCELLED 10
expect_fail as "$scancel" -s USR1 "$id"
assert_contains "$PHX_OUT" "job $id is not running (COMPLETED)"
# -s KILL is a cancel (Slurm's rule); -b alone sends KILL to the shell.
printf '#!/bin/sh\n#SBATCH -t 1\nsleep 309\n' >"$home/kill.sh"
chown phxu1 "$home/kill.sh"
kid=$(as phx submit --parsable kill.sh)
kid2=$(as phx submit --parsable kill.sh)
wait_job "$kid" RUNNING 30
wait_job "$kid2" RUNNING 30
run_ok as "$scancel" -s KILL "$kid"
wait_job "$kid" CANCELLED 20
run_ok as "$scancel" -b "$kid2"
wait_job "$kid2" FAILED 20
assert_eq "0:9" "$(job_field "$kid2" exit_code)" "the shell killed by signal 9"
note "ok"
