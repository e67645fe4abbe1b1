#!/usr/bin/env bash
# timeout: 240
# Master high availability (doc/admin.md, "High availability"): two masters
# on one database elect a leader with an advisory lock; the other stands by
# and answers HTTP (503) and agents (an ERROR frame) naming the leader;
# clients configured with both masters (agent, phx-batchd, phx) follow the
# refusal to the leader.  kill -9 of the leader: the standby leads within
# seconds with a higher epoch, the agent re-registers with it and batchd
# re-subscribes, the running job is not killed and completes, a new job
# runs.  A master started while another leads stands by.  A leader whose
# write is refused by the epoch fence, or whose lock connection drops,
# exits at once.  A leader that hangs (SIGSTOP) loses its lock session after
# master.leader_lease: the standby leads; continued, the old leader cannot
# write (fenced) and exits; the job running meanwhile completes.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
A_AGENT=127.0.0.1:$PHX_AGENT_PORT A_HTTP=127.0.0.1:$PHX_HTTP_PORT
B_AGENT=127.0.0.1:$(free_port) B_HTTP=127.0.0.1:$(free_port)
# The agent and batchd list the standby first: they must follow its refusal.
sed -i -e "s|^    master = \"$A_AGENT\";|    master = [\"$B_AGENT\", \"$A_AGENT\"];|" \
    -e "/^batchd: {/,/^};/s|^    master = \"$A_HTTP\";|    master = \"$B_HTTP, $A_HTTP\";|" \
    -e "/^client: {/,/^};/s|^    master = \"$A_HTTP\";|    master = [\"$A_HTTP\", \"$B_HTTP\"];|" \
    -e "s|^    heartbeat_missed = 5;|    heartbeat_missed = 5;\n    standby_poll = 0.5;\n    leader_lease = 2;|" \
    "$PHX_CONFIG"
export PHX_MASTER="$A_HTTP,$B_HTTP"
grep -n "master" "$PHX_CONFIG" | while read -r l; do note "$l"; done

health() { # ADDR: "CODE BODY" of GET /health
    curl -s -o "$PHX_TEST_DIR/health" -w '%{http_code}' "http://$1/health" || true
    echo " $(cat "$PHX_TEST_DIR/health" 2>/dev/null)"
}
leads() { [[ $(health "$1") == 200* ]]; }
stands_by() { [[ $(health "$1") == 503*'"standby":true'* ]]; }
gone() { ! alive "$1"; }
start_a() { start_daemon master phx-master -c "$PHX_CONFIG"; }
start_b() {
    start_daemon master-b phx-master -c "$PHX_CONFIG" -s "master.agent_listen=$B_AGENT" \
        -s "master.http_listen=$B_HTTP"
}

# A leads, B stands by and names A.
start_a
wait_for 30 leads "$A_HTTP"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" "elected leader with epoch 1"
start_b
wait_for 30 stands_by "$B_HTTP"
assert_contains "$(health "$B_HTTP")" "\"leader\":\"$A_HTTP\""
assert_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "standing by"
assert_eq "1 $A_AGENT $A_HTTP" "$(psql_q "SELECT epoch, agent_address, http_address FROM master_leader" | tr '|' ' ')"
# phx at the standby alone: refused, naming the leader
expect_fail env PHX_MASTER="$B_HTTP" phx nodes
assert_contains "$PHX_OUT" "standby: this master is not the leader; the leader is at $A_HTTP"
# the standby first, then the leader: followed
PHX_MASTER="$B_HTTP,$A_HTTP" phx nodes >/dev/null

# The agent and batchd reach A through B's refusal.
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
assert_contains "$(cat "$PHX_TEST_DIR/agent-n1.log")" "standby: this master is not the leader; the leader is at $A_AGENT"
assert_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "refused, standby"
start_daemon batchd phx-batchd -c "$PHX_CONFIG"
wait_for 30 batchd_subscribed "$PHX_LAST_PID"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "SUBSCRIBE answered 503 from $B_HTTP"

home=$(getent passwd phxu1 | cut -d: -f6)
# outputs of an earlier run (job ids start again with each database) would
# be read before the job's own truncates them
rm -f "$home"/phx-*.out
printf '#!/bin/sh\n#SBATCH -t 2\necho start $$\nsleep 12\necho survived\n' >"$home/long.sh"
printf '#!/bin/sh\n#SBATCH -t 1\necho after failover\n' >"$home/short.sh"
chown phxu1 "$home/long.sh" "$home/short.sh"
id=$(as_user phxu1 phx submit --parsable long.sh)
wait_job "$id" RUNNING 30
wait_for 10 test -s "$home/phx-$id.out"

# kill -9 of the leader: B leads within seconds, with epoch 2.
t0=$SECONDS
stop_daemon master KILL || true
wait_for 10 leads "$B_HTTP"
note "B leads $((SECONDS - t0)) s after the leader was killed"
assert_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "elected leader with epoch 2"
assert_eq "2 $B_AGENT $B_HTTP" "$(psql_q "SELECT epoch, agent_address, http_address FROM master_leader" | tr '|' ' ')"
# the agent re-registers and batchd re-subscribes with B; the job goes on
wait_for 30 batchd_subscribed "$(daemon_pid batchd)"
wait_for 30 grep -q "registered with the master at $B_AGENT" "$PHX_TEST_DIR/agent-n1.log"
wait_node n1 up
assert_eq RUNNING "$(job_field "$id" state)"
wait_job "$id" COMPLETED 60
assert_contains "$(cat "$home/phx-$id.out")" "survived"
id2=$(as_user phxu1 phx submit --parsable short.sh)
wait_job "$id2" COMPLETED 60
assert_contains "$(cat "$home/phx-$id2.out")" "after failover"

# A master started while B leads stands by, naming B.
start_a
wait_for 30 stands_by "$A_HTTP"
assert_contains "$(health "$A_HTTP")" "\"leader\":\"$B_HTTP\""

# The fence: a write of an older epoch is refused (SQLSTATE PXL01).
expect_fail psql_q "SELECT phx_master_fence(1)"
assert_contains "$PHX_OUT" "master epoch 1 is not the current one (2)"
assert_eq 2 "$(psql_q "SELECT phx_master_fence(2)")"
# A leader whose write the fence refuses (another epoch: as if another
# master had been elected) exits at once; A takes over with epoch 4.
psql_q "UPDATE master_leader SET epoch = epoch + 1"
b=$(daemon_pid master-b)
expect_fail env PHX_MASTER="$B_HTTP" phx nodes drain n1 --reason "fence test"
wait_for 10 gone "$b"
assert_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "no longer the leader: "
assert_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "(SQLSTATE PXL01)"
wait_for 10 leads "$A_HTTP"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" "elected leader with epoch 4"
assert_eq False "$(node_field n1 drained)"
wait_node n1 up 30

# A leader whose lock connection drops exits at once; B takes over.
start_b
wait_for 30 stands_by "$B_HTTP"
a=$(daemon_pid master)
# (the masters' lock only: batchd holds one of its own, doc/admin.md)
psql_q "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
        AND objsubid = 1 AND (classid::bigint << 32 | objid::bigint) = 31640063815541092" >/dev/null
wait_for 10 gone "$a"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" "no longer the leader: the connection holding the leader lock failed"
wait_for 10 leads "$B_HTTP"
wait_node n1 up 30
wait_for 15 batchd_nodes 1
id3=$(as_user phxu1 phx submit --parsable short.sh)
wait_job "$id3" COMPLETED 60

# A leader that hangs: after the lease (2 s) its lock session ends and A
# leads; continued, B writes nothing (fenced) and exits; nothing is killed.
start_a
wait_for 30 stands_by "$A_HTTP"
wait_for 15 batchd_nodes 1
id4=$(as_user phxu1 phx submit --parsable long.sh)
wait_job "$id4" RUNNING 30
b=$(daemon_pid master-b)
kill -STOP "$b"
t0=$SECONDS
wait_for 15 leads "$A_HTTP"
note "A leads $((SECONDS - t0)) s after the leader was stopped"
epoch=$(psql_q "SELECT epoch FROM master_leader")
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" "elected leader with epoch $epoch"
kill -CONT "$b"
wait_for 10 gone "$b"
assert_contains "$(cat "$PHX_TEST_DIR/master-b.log")" "no longer the leader: "
note "$(grep "no longer the leader" "$PHX_TEST_DIR/master-b.log" | tail -1)"
assert_eq "$epoch" "$(psql_q "SELECT epoch FROM master_leader")"
wait_for 30 batchd_subscribed "$(daemon_pid batchd)"
wait_node n1 up 30
wait_job "$id4" COMPLETED 60
assert_contains "$(cat "$home/phx-$id4.out")" "survived"
assert_eq 0 "$(psql_q "SELECT count(*) FROM jobs WHERE state <> 'COMPLETED'")"
# Reconciliation's answers carry no uuid (null): nothing to acknowledge (the
# master once answered batchd's ACKNOWLEDGE of them 400, missing "uuid").
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "reconciling"
assert_not_contains "$(cat "$PHX_TEST_DIR/batchd.log")" 'missing field \"uuid\"'
