#!/usr/bin/env bash
# timeout: 150
# A node lost under a running job: the job is requeued once
# (batchd.requeue_count = 1), runs again on another node and completes; a job
# whose second node is lost too ends NODE_FAIL; a --no-requeue job ends
# NODE_FAIL at its first loss.  A node "dies" here as its agent is killed
# (SIGKILL) and its job's processes with it.  The run lost before a requeue
# is recorded as Slurm records it (and as phx requeue records the run it
# ends): its end NODE_FAIL in job_events, its batch step (NODE_FAIL, on the
# lost node) until the next run's replaces it, and its CPU time charged in
# usage_daily apart from the next run's.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2 n3 n4; do start_agent $n "synthetic:pack:1 numa:1 core:2 pu:1"; done
for n in n1 n2 n3 n4; do wait_node $n up; done
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }

# kill_node ID: the node job ID runs on dies; prints its name.
kill_node() {
    local node
    node=$(job_field "$1" node_list)
    [[ $node =~ ^n[1-4]$ ]] || fail "job $1 runs on '$node', not one node"
    stop_daemon "agent-$node" KILL || true
    pkill -KILL -u phxu1 -f "sleep 3090" || true
    wait_node "$node" lost 20
    echo "$node"
}

running_on_other() { # ID NODE
    job_state_is "$1" RUNNING && [[ $(job_field "$1" node_list) != "$2" ]]
}

# 1. Requeued once, then completes on another node.
cat >"$home/again.sh" <<'S'
#!/bin/sh
#SBATCH -N 1 --exclusive -t 2
if [ -e "$HOME/again.mark" ]; then echo "second run on $PHX_JOB_NODELIST"; exit 0; fi
touch "$HOME/again.mark"
exec sleep 3090
S
chown phxu1 "$home/again.sh"
rm -f "$home/again.mark"
a=$(as phx submit --parsable again.sh)
wait_job "$a" RUNNING 30
wait_for 10 pgrep -u phxu1 -f "sleep 3090"
lost1=$(kill_node "$a")
wait_job "$a" COMPLETED 40
assert_eq "1" "$(job_field "$a" requeue_count)" "requeue count of job $a"
[[ $(job_field "$a" node_list) != "$lost1" ]] || fail "job $a ran again on the lost $lost1"
assert_contains "$(cat "$home/phx-$a.out")" "second run on"
assert_eq "PENDING>RUNNING|RUNNING>NODE_FAIL|NODE_FAIL>PENDING:NodeFailRequeued|PENDING>RUNNING|RUNNING>COMPLETED" \
    "$(psql_q "SELECT string_agg(coalesce(from_state::text, '') || '>' || to_state ||
                    CASE WHEN to_state = 'PENDING' THEN ':' || coalesce(reason, '') ELSE '' END,
                    '|' ORDER BY id)
               FROM job_events WHERE job_id = $a AND from_state IS NOT NULL")" \
    "transitions of job $a"
# the lost run's charge: 2 cores (--exclusive) from its start to its
# NODE_FAIL, apart from the second run's (acct_jobs: the last run)
lost_s=$(psql_q "SELECT 2 * extract(epoch FROM date_trunc('second', f.time) -
                                   date_trunc('second', r.time))::bigint
                 FROM job_events r, job_events f
                 WHERE r.job_id = $a AND f.job_id = $a AND r.to_state = 'RUNNING'
                   AND f.to_state = 'NODE_FAIL' AND r.id < f.id")
[[ $lost_s =~ ^[0-9]+$ ]] || fail "job $a: no run lost in job_events: '$lost_s'"
assert_eq "COMPLETED|t" \
    "$(psql_q "SELECT concat_ws('|', state, start >= (SELECT date_trunc('second', time) FROM job_events
               WHERE job_id = $a AND to_state = 'NODE_FAIL')) FROM acct_jobs WHERE job_id = $a")" \
    "job $a's last run (acct_jobs), after the lost one"
wait_for 10 eval "[[ \$(psql_q \"SELECT sum(jobs) FROM usage_daily WHERE user_name = 'phxu1'\") == 2 ]]"
assert_eq "2|$((lost_s + $(psql_q "SELECT cpu_time_s FROM acct_jobs WHERE job_id = $a")))" \
    "$(psql_q "SELECT sum(jobs) || '|' || sum(cpu_seconds) FROM usage_daily WHERE user_name = 'phxu1'")" \
    "usage_daily of job $a: its lost run and its second run"

# 2. Lost twice: requeued once, then NODE_FAIL.
printf '#!/bin/sh\n#SBATCH -N 1 --exclusive -t 2\nexec sleep 3090\n' >"$home/twice.sh"
chown phxu1 "$home/twice.sh"
b=$(as phx submit --parsable twice.sh)
wait_job "$b" RUNNING 30
lost2=$(kill_node "$b")
wait_for 30 running_on_other "$b" "$lost2"
# the lost run's batch step, until the second run's end replaces it
assert_eq "NODE_FAIL|$lost2|t" \
    "$(psql_q "SELECT concat_ws('|', state, node_list, end_time IS NOT NULL)
               FROM job_steps WHERE job_id = $b AND step_id = 'batch'")" \
    "batch step of job $b's lost run"
kill_node "$b" >/dev/null
wait_job "$b" NODE_FAIL 30
assert_eq "1" "$(job_field "$b" requeue_count)" "requeue count of job $b"
assert_eq "RUNNING>NODE_FAIL|NODE_FAIL>PENDING|RUNNING>NODE_FAIL" \
    "$(psql_q "SELECT string_agg(from_state || '>' || to_state, '|' ORDER BY id)
               FROM job_events WHERE job_id = $b AND from_state IN ('RUNNING', 'NODE_FAIL')")" \
    "runs of job $b: both lost"
wait_for 10 eval "[[ \$(psql_q \"SELECT sum(jobs) FROM usage_daily WHERE user_name = 'phxu1'\") == 4 ]]"

# 3. --no-requeue: NODE_FAIL at the first loss.
printf '#!/bin/sh\n#SBATCH -N 1 --exclusive -t 2 --no-requeue\nexec sleep 3090\n' \
    >"$home/once.sh"
chown phxu1 "$home/once.sh"
c=$(as phx submit --parsable once.sh)
wait_job "$c" RUNNING 30
kill_node "$c" >/dev/null
wait_job "$c" NODE_FAIL 30
assert_eq "0" "$(job_field "$c" requeue_count)" "requeue count of job $c"
assert_eq "0" "$(psql_q "SELECT count(*) FROM jobs WHERE state IN ('PENDING', 'RUNNING')")" \
    "jobs left in the queue"
note ok
