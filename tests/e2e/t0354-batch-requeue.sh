#!/usr/bin/env bash
# timeout: 180
# Requeue as Slurm's scontrol requeue/requeuehold: a running job is killed
# (its processes gone) and runs again (Requeue=1, its output appended with
# --open-mode=append, job_events: the run ends FAILED (killed), then
# PENDING); an ended job runs
# again; requeuehold leaves it held until released; a pending job, a
# --no-requeue job and another user's job are refused by name; an array
# task (A_T) alone; the scontrol wrapper's requeue and requeuehold.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
scontrol() { as "$PHX_SRC/scripts/compat/scontrol" "$@"; }
# A job that records each run's pid and waits.
cat >"$home/long.sh" <<'S'
#!/bin/sh
#SBATCH -t 5 --open-mode=append -o rq-%j.out
echo "run $PHX_JOB_ID $$"
echo $$ >"$HOME/pid-$PHX_JOB_ID"
exec sleep 300
S
printf '#!/bin/sh\n#SBATCH -t 5 --open-mode=append -o rq-%%j.out\necho "ran $PHX_JOB_ID"\n' >"$home/short.sh"
printf '#!/bin/sh\n#SBATCH -t 5 --no-requeue\nexec sleep 300\n' >"$home/noreq.sh"
chown phxu1 "$home"/*.sh
# (the home folder outlives the test: no output of an earlier run)
rm -f "$home"/rq-*.out "$home"/pid-*
runs() { grep -c "^run $1 " "$home/rq-$1.out"; }
has_pid() { [[ -s $home/pid-$1 ]]; }

# A running job: killed, then runs again.
j=$(as phx submit --parsable long.sh)
wait_job "$j" RUNNING 20
wait_for 10 has_pid "$j"
first=$(cat "$home/pid-$j")
rm -f "$home/pid-$j"
run_ok as phx requeue "$j"
wait_for 20 has_pid "$j"
assert_eq RUNNING "$(job_field "$j" state)"
! kill -0 "$first" 2>/dev/null || fail "the first run's shell $first is still alive"
assert_eq 2 "$(runs "$j")" "two runs in the output (appended)"
assert_eq 1 "$(job_field "$j" requeue_count)"
assert_contains "$(as phx show "$j")" "Requeue=1"
assert_eq "FAILED>PENDING" "$(psql_q "SELECT from_state || '>' || to_state FROM job_events
    WHERE job_id = $j AND to_state = 'PENDING' AND from_state IS NOT NULL")"
assert_eq "RUNNING 1" "$(psql_q "SELECT state || ' ' || requeue_count FROM jobs WHERE id = $j")"

# Refused: a pending job (held here), another user's, a --no-requeue job.
p=$(as phx submit --parsable -H short.sh)
expect_fail as phx requeue "$p"
assert_contains "$PHX_OUT" "job $p is pending: only a running or ended job can be requeued"
expect_fail as_user phxu2 phx requeue "$j"
assert_contains "$PHX_OUT" "invalid job id $j"
n=$(as phx submit --parsable noreq.sh)
wait_job "$n" RUNNING 20
expect_fail as phx requeue "$n"
assert_contains "$PHX_OUT" "job $n was submitted with --no-requeue"
expect_fail as phx requeue "${j}_[1-2]"
assert_contains "$PHX_OUT" "invalid job id"
as phx cancel "$n" "$p"

# requeuehold of the running job (scontrol): held once its run is over,
# its processes gone; released, it runs a third time.
second=$(cat "$home/pid-$j")
rm -f "$home/pid-$j"
scontrol requeuehold "$j"
wait_for 20 job_state_is "$j" PENDING
assert_eq JobHeldUser "$(job_field "$j" reason)"
wait_for 10 eval "! kill -0 $second 2>/dev/null"
sleep 2
assert_eq PENDING "$(job_field "$j" state)" "held after the requeue"
scontrol release "$j"
wait_for 20 has_pid "$j"
assert_eq 3 "$(runs "$j")"
assert_eq 2 "$(job_field "$j" requeue_count)"
as phx cancel "$j"
wait_job "$j" CANCELLED 20

# An ended job runs again (scontrol requeue); an array task alone.
s=$(as phx submit --parsable short.sh)
wait_job "$s" COMPLETED 20
scontrol requeue "$s"
wait_for 20 eval "[[ \$(grep -c '^ran $s' '$home/rq-$s.out') == 2 ]]"
wait_job "$s" COMPLETED 20
assert_eq 1 "$(job_field "$s" requeue_count)"
a=$(as phx submit --parsable -a 0-2 short.sh)
wait_job "${a}_2" COMPLETED 20
wait_job "${a}_0" COMPLETED 20
as phx requeue "${a}_1"
t1=$(job_field "${a}_1" job_id)
wait_for 20 eval "[[ \$(grep -c '^ran' '$home/rq-$t1.out') == 2 ]]"
wait_job "${a}_1" COMPLETED 20
assert_eq "0 1 0" "$(for t in 0 1 2; do job_field "${a}_$t" requeue_count; done | xargs)"
