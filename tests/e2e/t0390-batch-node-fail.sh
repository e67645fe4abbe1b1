#!/usr/bin/env bash
# timeout: 150
# A node lost under a running job: the job is requeued once
# (batchd.requeue_count = 1), runs again on another node and completes; a job
# whose second node is lost too ends NODE_FAIL; a --no-requeue job ends
# NODE_FAIL at its first loss.  A node "dies" here as its agent is killed
# (SIGKILL) and its job's processes with it.
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
assert_eq "PENDING>RUNNING|RUNNING>PENDING:NodeFailRequeued|PENDING>RUNNING|RUNNING>COMPLETED" \
    "$(psql_q "SELECT string_agg(coalesce(from_state::text, '') || '>' || to_state ||
                    CASE WHEN to_state = 'PENDING' THEN ':' || coalesce(reason, '') ELSE '' END,
                    '|' ORDER BY id)
               FROM job_events WHERE job_id = $a AND from_state IS NOT NULL")" \
    "transitions of job $a"

# 2. Lost twice: requeued once, then NODE_FAIL.
printf '#!/bin/sh\n#SBATCH -N 1 --exclusive -t 2\nexec sleep 3090\n' >"$home/twice.sh"
chown phxu1 "$home/twice.sh"
b=$(as phx submit --parsable twice.sh)
wait_job "$b" RUNNING 30
lost2=$(kill_node "$b")
wait_for 30 running_on_other "$b" "$lost2"
kill_node "$b" >/dev/null
wait_job "$b" NODE_FAIL 30
assert_eq "1" "$(job_field "$b" requeue_count)" "requeue count of job $b"

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
