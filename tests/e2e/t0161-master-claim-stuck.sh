#!/usr/bin/env bash
# timeout: 120
# A new leader's claim does not wait for ever on a former leader's open
# transaction (doc/admin.md, "High availability").  The fence of every write
# transaction of a leader reads master_leader FOR SHARE, and the claim (the
# epoch bump) has to wait for it; a leader stopped in the middle of a write
# loses its lock session after the lease but keeps that transaction open,
# and the standby that got the lock waited until PostgreSQL ended it: no
# leader meanwhile.  Here a session holds the fence open (as such a leader's
# store would) while the leader is killed: the standby waits a quarter of
# the lease, ends that session (logged), and leads.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

phx_setup
B_AGENT=127.0.0.1:$(free_port) B_HTTP=127.0.0.1:$(free_port)
A_HTTP=127.0.0.1:$PHX_HTTP_PORT
A_AGENT=127.0.0.1:$PHX_AGENT_PORT
sed -i -e "s|^    master = \"$A_AGENT\";|    master = [\"$A_AGENT\", \"$B_AGENT\"];|" \
    -e "s|^    heartbeat_missed = 5;|    heartbeat_missed = 5;\n    standby_poll = 0.5;\n    leader_lease = 2;|" \
    "$PHX_CONFIG"
health() { curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$1/health" || true; }
leads() { [[ $(health "$1") == 200 ]]; }
stands_by() { [[ $(health "$1") == 503 ]]; }

start_daemon master phx-master -c "$PHX_CONFIG"
wait_for 30 leads "$A_HTTP"
start_daemon master-b phx-master -c "$PHX_CONFIG" -s "master.agent_listen=$B_AGENT" \
    -s "master.http_listen=$B_HTTP"
wait_for 30 stands_by "$B_HTTP"
assert_eq 1 "$(psql_q "SELECT epoch FROM master_leader")"
export PHX_MASTER="$A_HTTP,$B_HTTP"
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up

# A transaction of epoch 1 that ran the fence and stays open, as a stopped
# leader's store would leave one.
psql_q "SELECT phx_master_fence(1), pg_sleep(100)" >"$PHX_TEST_DIR/stuck.out" 2>&1 &
stuck=$!
held() { [[ $(psql_q "SELECT count(*) FROM pg_locks WHERE relation = 'master_leader'::regclass AND mode = 'RowShareLock' AND granted") -ge 1 ]]; }
wait_for 10 held

t0=$SECONDS
stop_daemon master KILL || true
wait_for 15 leads "$B_HTTP"
note "B leads $((SECONDS - t0)) s after the leader was killed"
assert_eq 2 "$(psql_q "SELECT epoch FROM master_leader")"
assert_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "claiming the lead waited 500 ms for a former leader's open transaction"
assert_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "ended the session"
assert_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "elected leader with epoch 2"
# the stuck session was ended, not waited for
gone() { ! alive "$1"; }
wait_for 10 gone "$stuck"
assert_contains "$(cat "$PHX_TEST_DIR/stuck.out")" "terminat"
# The new leader's first writes (the agents marked unreachable, fenced
# with epoch 2) went through, and the agent registers with it.
assert_not_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "no longer the leader"
wait_for 30 grep -q "registered with the master at $B_AGENT" "$PHX_TEST_DIR/agent-n1.log"
wait_node n1 up 30
