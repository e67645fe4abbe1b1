#!/usr/bin/env bash
# timeout: 200
# The scheduler API: a 2-agent gang from the C example framework, KILL, a
# framework written for Mesos' v1 JSON API, RECONCILE, SIGNAL, failover within and
# past failover_timeout, and bad calls answered 400 with nothing launched.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

id -u phxfw >/dev/null 2>&1 || useradd --create-home phxfw
PHX_MASTER_EXTRA='allow_unauthenticated = true; open_users = ["phxfw"]; offer_timeout = 30.0; framework_heartbeat = 1.0;'
PHX_AGENT_EXTRA='allow_root = true;'
phx_setup
start_master
start_agent n1 "synthetic:pack:2 numa:2 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:2 core:4 pu:1"
wait_node n1 up
wait_node n2 up
fw="$PHX_BUILD/examples/simple-framework"

# A 2-agent gang of hostname tasks.
out=$("$fw" --agents 2 --cmd hostname)
note "$out"
assert_contains "$out" "accepting 2 offers as one gang"
assert_contains "$out" "ran on n1"
assert_contains "$out" "ran on n2"
assert_eq 2 "$(printf '%s\n' "$out" | grep -c ': TASK_FINISHED$')"
assert_eq "2|2" "$(psql_q "SELECT ntasks, nagents FROM gangs ORDER BY id LIMIT 1")"
assert_eq "TASK_FINISHED|2" "$(psql_q "SELECT state, count(*) FROM tasks GROUP BY state")"

# KILL: a gang of sleeps is killed and nothing is left running.
out=$("$fw" --agents 2 --cmd "sleep 311" --kill-after 1)
note "$out"
assert_eq 2 "$(printf '%s\n' "$out" | grep -c ': TASK_KILLED$')"
wait_for 10 sh -c '! pgrep -f "[s]leep 311" >/dev/null'
# Resources came back: every core is free again.
assert_eq "8/8" "$(phx nodes | awk '$1 == "n1" {print $5}')"

# A framework that only knows Mesos' JSON API runs a command task.
export FW_USER=phxfw
out=$(python3 "$PHX_SRC/tests/e2e/tools/mesos_fw.py" "$PHX_MASTER" launch 'echo hello')
note "$out"
assert_contains "$out" "mesos-task-1 TASK_FINISHED"

# Bad calls: 400 naming the problem, nothing launched, the master serves on.
before=$(psql_q "SELECT count(*) FROM tasks")
out=$(python3 "$PHX_SRC/tests/e2e/tools/mesos_fw.py" "$PHX_MASTER" badgang)
note "$out"
assert_contains "$out" "task gang-b on agent"
assert_contains "$out" "do not fit in the offer"
assert_contains "$out" "accepted twice:"
assert_contains "$out" "is not (or no longer) offered to this framework"
assert_contains "$out" 'field \"offer_ids\" must be an array'
assert_contains "$out" "refuse_seconds"
assert_contains "$out" 'field \"agents\"[1] is not an agent id'
assert_contains "$out" "bundles per socket need bundles of kind numa or socket"
assert_contains "$out" "wants 3 agents for 2 bundles"
assert_contains "$out" 'field \"agents\" is empty'
assert_contains "$out" 'field \"agents\"[0] is not an agent id'
assert_contains "$out" "at most 1 per agent, 0 per socket, on at most 0 agents, 0: any; on the listed agents; 0 bytes more on each agent) but the available cluster can hold at most 1"
assert_contains "$out" 'field \"agent_mem\" = -1 is out of range'
assert_contains "$out" 'field \"whole_mem\" must be a boolean'
assert_contains "$out" "1048576000000000 bytes more on each agent) but the available cluster can hold at most 0"
assert_contains "$out" "again: "
assert_not_contains "$out" UNEXPECTED
assert_eq "$before" "$(psql_q "SELECT count(*) FROM tasks")" "no task of the invalid gang"
# A time limit beyond the agents' 100 years: refused at ACCEPT, nothing
# launched; exactly 100 years runs.
before=$(psql_q "SELECT count(*) FROM tasks")
out=$(python3 "$PHX_SRC/tests/e2e/tools/mesos_fw.py" "$PHX_MASTER" longtime)
note "$out"
assert_contains "$out" "task long-b: max_completion_time.nanoseconds = 6307200000000000000 is above the limit of 3153600000000000000 (100 years)"
assert_contains "$out" "long-c TASK_RUNNING"
assert_eq "$((before + 1))" "$(psql_q "SELECT count(*) FROM tasks")" "only long-c of the gangs was committed"
assert_eq 0 "$(psql_q "SELECT count(*) FROM tasks WHERE task_id LIKE 'long-_' AND task_id <> 'long-c'")"
code=$(curl -s -o "$PHX_TEST_DIR/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"type":"KILL","framework_id":{"value":"nope"},"kill":{}}' "http://$PHX_MASTER/api/v1/scheduler")
assert_eq 400 "$code"
assert_contains "$(cat "$PHX_TEST_DIR/body")" "is not subscribed"
code=$(curl -s -o "$PHX_TEST_DIR/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"type":' "http://$PHX_MASTER/api/v1/scheduler")
assert_eq 400 "$code"
assert_contains "$(cat "$PHX_TEST_DIR/body")" "not valid JSON"

# SIGNAL: malformed calls and another framework's task refused by name;
# USR1 to a running task's program, which traps it and runs on.
mkdir -m 1777 "$PHX_TEST_DIR/sig"
out=$(python3 "$PHX_SRC/tests/e2e/tools/mesos_fw.py" "$PHX_MASTER" signal "$PHX_TEST_DIR/sig/mark")
note "$out"
line() { grep "^$1" <<<"$out"; }
assert_contains "$(line "signal 0:")" "SIGNAL: field"
assert_contains "$(line "signal 32:")" "signal 32 is the C library's own"
assert_contains "$(line "signal 65:")" "SIGNAL: field"
assert_contains "$(line "bad to:")" "must be"
assert_contains "$(line "no task:")" "task_id"
assert_contains "$(line "unknown task:")" "SIGNAL: unknown task nope"
assert_contains "$(line "another's task:")" "SIGNAL: unknown task sig-1"
assert_contains "$out" "sig-1 TASK_RUNNING"
assert_eq "got USR1" "$(cat "$PHX_TEST_DIR/sig/mark")" "the task's program got USR1 once"
wait_for 10 grep -q "signal 10 on request to its program" "$PHX_TEST_DIR"/agent-n[12].log

# Failover: a scheduler dies; resubscribing in time keeps its task, and
# RECONCILE answers for known and unknown tasks.
python3 "$PHX_SRC/tests/e2e/tools/mesos_fw.py" "$PHX_MASTER" sleeper "$PHX_TEST_DIR/fw.json" 20
# A master restart kills nothing: tasks and frameworks come back from the
# database and the agents re-register with their tasks.
stop_daemon master
start_master
wait_node n1 up
wait_node n2 up
pgrep -f "[s]leep 600" >/dev/null || fail "the master restart killed the sleeper"
out=$(python3 "$PHX_SRC/tests/e2e/tools/mesos_fw.py" "$PHX_MASTER" resume "$PHX_TEST_DIR/fw.json")
note "$out"
assert_contains "$out" "sleeper-1 TASK_RUNNING"
assert_contains "$out" "no-such-task TASK_LOST"
pgrep -f "[s]leep 600" >/dev/null || fail "the sleeper should still run"
# Past the failover timeout its tasks are killed (20 s after the resumed
# framework left: 30 s was a margin of 10 s for a loaded machine)
wait_for 60 sh -c '! pgrep -f "[s]leep 600" >/dev/null'
wait_for 10 sh -c "[ \"\$($(pg_bindir)/psql -X -A -t '$PHX_DSN' -c \"SELECT state FROM tasks WHERE task_id = 'sleeper-1'\")\" = TASK_KILLED ]"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" "failover timeout expired"
# allow_unauthenticated opens the reads, whatever Authorization they carry
# (Mesos tools send Basic credentials).
for h in "X-None: 1" "Authorization: Basic dXNlcjpwYXNz"; do
    assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "$h" "http://$PHX_MASTER/state")" "/state with $h"
done
note ok
