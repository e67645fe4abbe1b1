#!/usr/bin/env bash
# timeout: 90
# An array of 10 with %2 never runs more than 2 tasks at once (times
# recorded from inside the jobs); every task completes with its own output.
# Array tasks see PHX_ARRAY_TASK_COUNT/MIN/MAX/STEP, and PHX_MEM_PER_CPU when
# --mem-per-cpu was asked.  Job ids follow the order of submission, arrays
# included (an array larger than batchd's block of ids too), and an array's
# tasks are numbered consecutively.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:2 core:4 pu:1"
start_agent n2 "synthetic:pack:1 numa:2 core:4 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
rm -f "$home/times.log"
cat >"$home/arr.sh" <<'S'
#!/bin/bash
#SBATCH --array=0-9%2
#SBATCH -t 2
echo "$PHX_ARRAY_TASK_ID start $(date +%s.%N)" >>"$HOME/times.log"
sleep 1
echo "$PHX_ARRAY_TASK_ID end $(date +%s.%N)" >>"$HOME/times.log"
echo "task $PHX_ARRAY_TASK_ID of $PHX_ARRAY_JOB_ID"
echo "count $PHX_ARRAY_TASK_COUNT min $PHX_ARRAY_TASK_MIN max $PHX_ARRAY_TASK_MAX step $PHX_ARRAY_TASK_STEP mem ${PHX_MEM_PER_CPU-unset}"
S
chown phxu1 "$home/arr.sh"
out=$(runuser -u phxu1 -- env PATH="$PATH" PHX_CONFIG="$PHX_CONFIG" bash -c "cd ~ && phx submit arr.sh")
note "$out"
id=${out##* }
wait_for 60 sh -c "[ \"\$(grep -c ' end ' '$home/times.log' 2>/dev/null)\" = 10 ]"
for t in 0 1 2 3 4 5 6 7 8 9; do
    assert_eq "task $t of $id
count 10 min 0 max 9 step 1 mem unset" "$(cat "$home/phx-${id}_$t.out")"
done
wait_for 10 sh -c "[ \"\$($(pg_bindir)/psql -X -A -t '$PHX_DSN' -c \"SELECT count(*) FROM jobs WHERE array_job_id = $id AND state = 'COMPLETED'\")\" = 10 ]"
max=$(python3 - "$home/times.log" <<'P'
import sys
ev = []
for line in open(sys.argv[1]):
    t, kind, when = line.split()
    ev.append((float(when), 1 if kind == "start" else -1))
ev.sort(key=lambda e: (e[0], e[1]))
cur = best = 0
for _, d in ev:
    cur += d
    best = max(best, cur)
print(best)
P
)
note "most tasks running at once: $max"
assert_eq 2 "$max"

# A strided array with --mem-per-cpu.
cat >"$home/step.sh" <<'S'
#!/bin/bash
#SBATCH --array=1-7:3 -c 2 --mem-per-cpu=100 -t 1
env | grep -E '^PHX_(ARRAY_TASK_(COUNT|MIN|MAX|STEP)|MEM_PER_(CPU|NODE))=' | sort
S
chown phxu1 "$home/step.sh"
id=$(runuser -u phxu1 -- env PATH="$PATH" PHX_CONFIG="$PHX_CONFIG" bash -c "cd ~ && phx submit --parsable step.sh")
wait_for 30 sh -c "[ \"\$($(pg_bindir)/psql -X -A -t '$PHX_DSN' -c \"SELECT count(*) FROM jobs WHERE array_job_id = $id AND state = 'COMPLETED'\")\" = 3 ]"
for t in 1 4 7; do
    assert_eq "PHX_ARRAY_TASK_COUNT=3
PHX_ARRAY_TASK_MAX=7
PHX_ARRAY_TASK_MIN=1
PHX_ARRAY_TASK_STEP=3
PHX_MEM_PER_CPU=100
PHX_MEM_PER_NODE=200" "$(cat "$home/phx-${id}_$t.out")" "task $t's environment"
done
# Job ids in submission order: a single job, an array of 300 (more than a
# block of 128 ids), a single job; held, never run.
printf '#!/bin/sh\n#SBATCH -t 1 -o /dev/null\ntrue\n' >"$PHX_TEST_DIR/t.sh"
before=$(phx submit --parsable -H "$PHX_TEST_DIR/t.sh")
big=$(phx submit --parsable -H --array=0-299 "$PHX_TEST_DIR/t.sh")
after=$(phx submit --parsable -H "$PHX_TEST_DIR/t.sh")
note "ids: $before, array $big, $after"
assert_eq "$big|$((big + 299))|300|t" \
    "$(psql_q "SELECT min(id), max(id), count(*), bool_and(id = $big + array_task_id) FROM jobs WHERE array_job_id = $big")" \
    "the array's ids: its tasks', consecutive from the array job id"
((before < big)) || fail "job $before, submitted before the array, has an id above it ($big)"
((after > big + 299)) || fail "job $after, submitted after the array $big, has an id among or below its tasks'"
phx cancel "$before" "$big" "$after"
note ok
