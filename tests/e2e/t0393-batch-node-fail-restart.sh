#!/usr/bin/env bash
# timeout: 120
# phx-batchd stops between the two writes of a node failure's requeue:
# the lost run recorded (its jobs row NODE_FAIL) but not the requeue (the
# row PENDING).  The two may commit in two transactions; a trigger refusing
# every later write of the job makes that certain here, and batchd is then
# killed (SIGKILL), while another job holds the only other node (so that
# the batchd that stops cannot start the job again meanwhile).  The next
# batchd must requeue the job (NodeFailRequeued, requeue_count 1), which
# then runs on the other node and completes; before, it stayed NODE_FAIL
# for good.
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

cat >"$home/again.sh" <<'S'
#!/bin/sh
#SBATCH -N 1 --exclusive -t 2
if [ -e "$HOME/again.mark" ]; then echo "second run on $PHX_JOB_NODELIST"; exit 0; fi
touch "$HOME/again.mark"
exec sleep 3093
S
chown phxu1 "$home/again.sh"
printf '#!/bin/sh\n#SBATCH -N 1 --exclusive -t 2\nexec sleep 3094\n' >"$home/hold.sh"
chown phxu1 "$home/hold.sh"
rm -f "$home/again.mark"
h=$(as_user phxu1 phx submit --parsable hold.sh)
wait_job "$h" RUNNING 30
a=$(as_user phxu1 phx submit --parsable again.sh)
wait_job "$a" RUNNING 30
wait_for 10 pgrep -u phxu1 -f "sleep 3093"
lost=$(job_field "$a" node_list)
[[ $lost =~ ^n[12]$ ]] || fail "job $a runs on '$lost', not one node"

# once its row is NODE_FAIL, no later write of the job commits
psql_q "CREATE FUNCTION t0393_stop() RETURNS trigger LANGUAGE plpgsql AS
        \$\$ BEGIN RAISE EXCEPTION 'batchd stopped (t0393)'; END \$\$;
        CREATE TRIGGER t0393_stop BEFORE UPDATE ON jobs FOR EACH ROW
        WHEN (OLD.id = $a AND OLD.state::text = 'NODE_FAIL') EXECUTE FUNCTION t0393_stop()"
stop_daemon "agent-$lost" KILL || true
pkill -KILL -u phxu1 -f "sleep 3093" || true
wait_for 30 eval "[[ \$(psql_q \"SELECT state FROM jobs WHERE id = $a\") == NODE_FAIL ]]"
wait_for 10 grep -q "batchd stopped (t0393)" "$PHX_TEST_DIR/batchd.log"
stop_daemon batchd KILL || true
psql_q "DROP TRIGGER t0393_stop ON jobs"

start_batchd
wait_for 10 eval "[[ \$(psql_q \"SELECT state || ':' || requeue_count
                                 FROM jobs WHERE id = $a\") == PENDING:1 ]]"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "was recorded, not its requeue"
as_user phxu1 phx cancel "$h"
wait_job "$a" COMPLETED 40
assert_contains "$(cat "$home/phx-$a.out")" "second run on"
assert_eq "1" "$(job_field "$a" requeue_count)" "requeue count of job $a"
assert_eq "RUNNING>NODE_FAIL|NODE_FAIL>PENDING:NodeFailRequeued|PENDING>RUNNING|RUNNING>COMPLETED" \
    "$(psql_q "SELECT string_agg(from_state::text || '>' || to_state ||
                    CASE WHEN to_state = 'PENDING' THEN ':' || coalesce(reason, '') ELSE '' END,
                    '|' ORDER BY id)
               FROM job_events WHERE job_id = $a AND from_state <> to_state
                 AND id > (SELECT min(id) FROM job_events WHERE job_id = $a AND to_state = 'RUNNING')")" \
    "transitions of job $a"
assert_eq "" "$(psql_q "SELECT requeue_asked FROM jobs WHERE id = $a")" "job $a's requeue_asked"
note ok
