#!/usr/bin/env bash
# timeout: 240
# phx alloc (and the salloc wrapper): an interactive allocation.  The
# command runs here with the job's variables; srun and phx run in it start
# steps on the job's nodes through the relay that the job runs on its
# first node; the job ends COMPLETED/FAILED with the command's exit code.
# The relay refuses junk, a credential of another user, a replayed one and
# one for another job, and goes on serving; SIGTERM to phx alloc, or SIGINT
# while the job is pending, cancels the job; the private socket directory and the output file are removed.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_HEARTBEAT=0.5
PHX_BATCHD_EXTRA='slurm_env = true;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd

as() { as_user "$@"; }
home1=$(getent passwd phxu1 | cut -d: -f6)
compat=$(realpath "$PHX_SRC/scripts/compat")
rm -f "$home1"/.phx-alloc-*.out # of an interrupted run before
granted() { sed -n 's/^.*Granted job allocation \([0-9]*\)$/\1/p' "$1"; }

# Two nodes: srun over both, the job's variables, SLURM_* with slurm_env.
as phxu1 "phx alloc -N 2 -t 2 sh -c 'srun -N2 -l sh -c \"echo on \\\$PHX_NODE\"; echo job \$PHX_JOB_ID \$SLURM_JOB_ID \$PHX_JOB_NODELIST; echo srun is \$(command -v srun); echo sock \$PHX_AGENT_SOCKET'" \
    >"$PHX_TEST_DIR/a1.out" 2>"$PHX_TEST_DIR/a1.err" || fail "phx alloc: rc $?: $(cat "$PHX_TEST_DIR"/a1.*)"
out=$(cat "$PHX_TEST_DIR/a1.out")
note "$out"
note "$(cat "$PHX_TEST_DIR/a1.err")"
id=$(granted "$PHX_TEST_DIR/a1.err")
[[ -n $id ]] || fail "no granted job in: $(cat "$PHX_TEST_DIR/a1.err")"
assert_contains "$(cat "$PHX_TEST_DIR/a1.err")" "phx alloc: Pending job allocation $id"
assert_eq "0 1" "$(sed -n 's/^\([01]\): on n[12]$/\1/p' <<<"$out" | sort | xargs)" "ranks of srun -N2"
assert_eq "n1 n2" "$(sed -n 's/^[01]: on //p' <<<"$out" | sort | xargs)" "nodes of srun -N2"
assert_contains "$out" "job $id $id n[1-2]"
assert_contains "$out" "srun is $compat/srun"
sock=$(sed -n 's/^sock //p' <<<"$out")
[[ -n $sock && ! -e $(dirname "$sock") ]] || fail "private directory of $sock left behind"
wait_job "$id" COMPLETED 30
assert_eq "COMPLETED|0" "$(psql_q "SELECT state, exit_code FROM jobs WHERE id = $id")"
assert_eq "" "$(ls -A "$home1" | grep '^.phx-alloc-' || true)" "output files left"

# The command's exit code is the job's and phx alloc's (phx run too).
rc=0
as phxu1 "phx alloc -N 1 -t 2 sh -c 'phx run -n1 true && exit 3'" 2>"$PHX_TEST_DIR/a2.err" || rc=$?
assert_eq 3 "$rc" "phx alloc's exit code"
id=$(granted "$PHX_TEST_DIR/a2.err")
wait_job "$id" FAILED 30
assert_eq "FAILED|3" "$(psql_q "SELECT state, exit_code FROM jobs WHERE id = $id")"

# The relay: junk, another user's credential, a replay, another job's:
# refused and logged (phx alloc shows the relay's messages), and it goes on.
rm -f "$home1/ready" "$home1/done"
as phxu1 "phx alloc -N 1 -t 2 sh -c 'touch ready; while [ ! -e done ]; do sleep 0.2; done; srun -n1 echo survived'" \
    >"$PHX_TEST_DIR/a3.out" 2>"$PHX_TEST_DIR/a3.err" &
apid=$!
wait_for 60 test -e "$home1/ready"
read -r _ host port _ < <(head -n1 "$home1"/.phx-alloc-*.out)
id=$(granted "$PHX_TEST_DIR/a3.err")
note "relay of job $id at $host:$port"
send() { # send TEXT [SECONDS]: to the relay, print what it answers
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf '%s' "$1" >&3 2>/dev/null || true # the relay may close first (too long)
    timeout "${2:-15}" cat <&3 2>/dev/null || true
    exec 3<&-
}
send $'junk\n'
send "$(head -c 5000 /dev/zero | tr '\0' x)"
send "$(runuser -u phxu2 -- munge -S "$PHX_MUNGE_SOCKET" -s "tunnel $id")"$'\n'
send "$(runuser -u phxu2 -- munge -S "$PHX_MUNGE_SOCKET" -s "exit $id 0")"$'\n'
send "$(runuser -u phxu1 -- munge -S "$PHX_MUNGE_SOCKET" -s "exit 999999 0")"$'\n'
cred=$(runuser -u phxu1 -- munge -S "$PHX_MUNGE_SOCKET" -s "tunnel $id")
send "$cred"$'\n' 1 # accepted: a tunnel to the agent, closed after 1 s
send "$cred"$'\n' # replayed
touch "$home1/done"
wait "$apid" || fail "phx alloc after the bad connections: rc $?: $(cat "$PHX_TEST_DIR"/a3.*)"
err=$(cat "$PHX_TEST_DIR/a3.err")
note "$err"
assert_contains "$(cat "$PHX_TEST_DIR/a3.out")" "survived"
assert_eq 6 "$(grep -c 'phx alloc: relay: refused a connection from' <<<"$err")" "refusals logged"
assert_contains "$err" "no credential in its first 4096 bytes"
assert_contains "$err" "its credential is not for job $id"
assert_contains "$err" "replayed"
wait_job "$id" COMPLETED 30

# SIGTERM to phx alloc: the job is cancelled, the command gets SIGHUP.
rm -f "$home1/allocpid"
as phxu1 "phx alloc -N 1 -t 2 sh -c 'echo \$PPID >allocpid; echo \$PHX_AGENT_SOCKET >allocsock; exec sleep 300'" \
    >/dev/null 2>"$PHX_TEST_DIR/a4.err" &
apid=$!
wait_for 60 test -s "$home1/allocpid"
id=$(granted "$PHX_TEST_DIR/a4.err")
kill -TERM "$(cat "$home1/allocpid")"
rc=0
wait "$apid" || rc=$?
note "$(cat "$PHX_TEST_DIR/a4.err")"
[[ $rc != 0 ]] || fail "phx alloc exited 0 after SIGTERM"
wait_job "$id" CANCELLED 30
[[ ! -e $(dirname "$(cat "$home1/allocsock")") ]] || fail "private directory left after SIGTERM"
assert_contains "$(cat "$PHX_TEST_DIR/a4.err")" "revoked"

# SIGINT while the job is pending (held): phx alloc cancels it.
as phxu1 "phx alloc -H -N 1 -t 2 true" >/dev/null 2>"$PHX_TEST_DIR/a6.err" &
apid=$!
pending() { grep -q 'Pending job allocation' "$PHX_TEST_DIR/a6.err"; }
wait_for 30 pending
id=$(sed -n 's/^.*Pending job allocation \([0-9]*\)$/\1/p' "$PHX_TEST_DIR/a6.err")
for p in $(descendants "$apid"); do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == phx ]] && kill -INT "$p"
done
rc=0
wait "$apid" || rc=$?
[[ $rc != 0 ]] || fail "phx alloc exited 0 after SIGINT"
wait_job "$id" CANCELLED 30
assert_contains "$(cat "$PHX_TEST_DIR/a6.err")" "Job allocation $id has been revoked."

# mpirun in the command: its daemons started as steps by phx-rsh.  (Without
# the SLURM_* names of slurm_env: OpenMPI would launch with Slurm's srun,
# in a batch script too.)
cat >"$home1/mpi.sh" <<S
#!/bin/sh
unset \$(env | sed -n 's/^\(SLURM_[A-Za-z_]*\)=.*/\1/p')
exec mpirun -np 2 $PHX_BUILD/tests/progs/mpi_hello
S
chmod a+rx "$home1/mpi.sh"
out=$(as phxu1 "phx alloc -N 2 -n 2 -t 2 ./mpi.sh" 2>&1) || fail "mpirun under phx alloc: $out"
note "$out"
assert_eq 2 "$(grep -c 'of 2 sum 3' <<<"$out")" "ranks of mpirun"
assert_not_contains "$out" "lost the connection"

# salloc: the wrapper's messages and options; salloc-only options refused.
as phxu1 "PATH=$compat:\$PATH salloc -N 1 -t 2 --no-bell sh -c 'echo salloc job \$SLURM_JOB_ID'" \
    >"$PHX_TEST_DIR/a5.out" 2>"$PHX_TEST_DIR/a5.err" || fail "salloc: $(cat "$PHX_TEST_DIR"/a5.*)"
id=$(granted "$PHX_TEST_DIR/a5.err")
assert_contains "$(cat "$PHX_TEST_DIR/a5.err")" "salloc: Granted job allocation $id"
assert_contains "$(cat "$PHX_TEST_DIR/a5.out")" "salloc job $id"
out=$(as phxu1 "PATH=$compat:\$PATH salloc --no-shell -N 1 true" 2>&1) && fail "salloc --no-shell ran"
assert_contains "$out" "salloc: option \"--no-shell\" is not supported by phx alloc"
out=$(as phxu1 "phx alloc -o x -N 1 true" 2>&1) && fail "phx alloc -o ran"
assert_contains "$out" "option -o is not supported for an allocation"
note ok
