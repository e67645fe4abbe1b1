#!/usr/bin/env bash
# timeout: 150
# A job of several partitions (-p a,b) runs in one (a) and is of that one
# while it runs; its node lost, it is requeued (batchd.requeue_count = 1)
# with its list again — phx show, phx queue (and -p b) and the jobs row say
# "a,b", not "a", also when batchd restarted before or after the loss —
# and it may then run in the other partition: a's only node is the lost
# one, so it runs in b ($PHX_JOB_PARTITION) and completes.  b is kept full
# meanwhile, so that the requeued job is seen pending.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA='partitions = ["PartitionName=a Nodes=n1 Default=YES",
                  "PartitionName=b Nodes=n2"];'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2; do start_agent $n "synthetic:pack:1 numa:1 core:2 pu:1"; done
for n in n1 n2; do wait_node $n up; done
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }

cat >"$home/both.sh" <<'S'
#!/bin/sh
#SBATCH -p a,b -N 1 -n 1 -t 2
if [ -e "$HOME/both.mark" ]; then
    echo "second run in $PHX_JOB_PARTITION on $PHX_JOB_NODELIST"
    exit 0
fi
echo "first run in $PHX_JOB_PARTITION on $PHX_JOB_NODELIST"
touch "$HOME/both.mark"
exec sleep 3091
S
printf '#!/bin/sh\n#SBATCH -p b -n 2\nexec sleep 3092\n' >"$home/fill.sh"
chown phxu1 "$home/both.sh" "$home/fill.sh"
rm -f "$home/both.mark"

# 1. It runs in a, the first of its list with room, and is of a.
id=$(as phx submit --parsable both.sh)
wait_job "$id" RUNNING 30
wait_for 10 pgrep -u phxu1 -f "sleep 3091"
assert_eq "first run in a on n1" "$(cat "$home/phx-$id.out")"
assert_eq n1 "$(job_field "$id" node_list)"
assert_eq a "$(job_field "$id" partition)"
assert_eq a "$(psql_q "SELECT partition FROM jobs WHERE id = $id")"
# b full: the requeued job cannot start there until it is emptied
fill=$(as phx submit --parsable fill.sh)
wait_job "$fill" RUNNING 30
# a batchd restarted while it runs loads it of a, its list kept aside
stop_daemon batchd
start_batchd
assert_eq a "$(job_field "$id" partition)" "phx show after a restart of batchd"
job_state_is "$id" RUNNING || fail "job $id left RUNNING at a restart of batchd"

# 2. n1 dies: requeued, of a and b again (its partition column too).
stop_daemon agent-n1 KILL || true
pkill -KILL -u phxu1 -f "sleep 3091" || true
wait_node n1 lost 20
wait_job "$id" PENDING 30
assert_eq 1 "$(job_field "$id" requeue_count)" "requeue count of job $id"
assert_eq "a,b" "$(job_field "$id" partition)" "phx show after the requeue"
assert_eq "a,b" "$(psql_q "SELECT partition FROM jobs WHERE id = $id")" \
    "the jobs row after the requeue"
got=$(as phx queue --noheader | awk -v id="$id" '$1 == id {print $2, $5}')
assert_eq "a,b PD" "$got" "phx queue after the requeue"
got=$(as phx queue --noheader -p b | awk '{print $1}')
assert_contains "$got" "$id"
# a batchd restarted meanwhile loads it so; it stays pending while b is
# full (a's node is gone)
stop_daemon batchd
start_batchd
assert_eq "a,b" "$(job_field "$id" partition)" "phx show after a restart of batchd"
job_state_is "$id" PENDING || fail "job $id left PENDING while b was full"

# 3. b emptied: it runs in b on n2 and completes.
phx cancel "$fill"
wait_job "$id" COMPLETED 30
assert_eq n2 "$(job_field "$id" node_list)"
assert_eq b "$(job_field "$id" partition)"
assert_eq b "$(psql_q "SELECT partition FROM jobs WHERE id = $id")"
# (the output file is truncated at each start: doc/jobs.md, --open-mode)
assert_eq "second run in b on n2" "$(cat "$home/phx-$id.out")"
assert_eq "PENDING>RUNNING|RUNNING>NODE_FAIL|NODE_FAIL>PENDING:NodeFailRequeued|PENDING>RUNNING|RUNNING>COMPLETED" \
    "$(psql_q "SELECT string_agg(coalesce(from_state::text, '') || '>' || to_state ||
                    CASE WHEN to_state = 'PENDING' THEN ':' || coalesce(reason, '') ELSE '' END,
                    '|' ORDER BY id)
               FROM job_events WHERE job_id = $id AND from_state IS NOT NULL")" \
    "transitions of job $id"
note ok
