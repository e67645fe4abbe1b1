#!/usr/bin/env bash
# timeout: 150
# Agent execution through the whole stack (batchd → master → agent, real
# cgroups v1): a task runs as its user inside a cpuset of its cores' PUs and
# its NUMA domains' memory nodes; a memory hog ends OUT_OF_MEMORY; a sleep
# past its limit ends TIMEOUT after about limit + grace; a cancelled job
# leaves nothing behind, double-forked children included; kill -9 of the
# agent during a task, then a restart: the task ends and is reported exactly
# once with its real exit code.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA='kill_grace = 2;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_node n1 up
start_batchd
cg=phx-test-$(basename "$PHX_TEST_DIR")

as() { as_user phxu1 "$@"; }
home=$(getent passwd phxu1 | cut -d: -f6)
script() { # NAME BODY: a job script in the user's home
    printf '#!/bin/bash\n%s\n' "$2" >"$home/$1"
    chown phxu1 "$home/$1"
}

# Runs as the user, in its cpuset: one core of a 4-core emulated node, whose
# PU maps onto this machine's PUs (doc/topology.md), memory node 0.
script who.sh $'#PHX -c 1 --mem=64M -t 1\nid -un\ngrep -E "Cpus_allowed_list|Mems_allowed_list" /proc/self/status\ncat /proc/self/cgroup | grep cpuset'
id=$(as phx submit --parsable who.sh)
wait_job "$id" COMPLETED 30
out=$(cat "$home/phx-$id.out")
note "$out"
assert_eq phxu1 "$(sed -n 1p <<<"$out")" "runs as the user"
cpus=$(sed -n 's/^Cpus_allowed_list:\s*//p' <<<"$out")
cores=$(psql_q "SELECT cores FROM tasks ORDER BY created_at DESC LIMIT 1")
real=$(nproc --all)
expect=$(python3 -c "
import sys
cores=[int(x) for x in sys.argv[1].split(',')]  # one core per PU on this node
print(','.join(str(c % int(sys.argv[2])) for c in cores))" "$cores" "$real")
assert_eq "$expect" "$cpus" "Cpus_allowed_list = the PUs of the granted core $cores"
assert_eq 0 "$(sed -n 's/^Mems_allowed_list:\s*//p' <<<"$out")" "memory node of its NUMA domain"
assert_contains "$out" "$cg/n1/"

# A memory hog ends OUT_OF_MEMORY.
script hog.sh $'#PHX --mem=48M -t 1\npython3 -c "b = bytearray(400 << 20); print(len(b))"'
id=$(as phx submit --parsable hog.sh)
wait_job "$id" OUT_OF_MEMORY 40

# A sleep past its limit: SIGTERM at the limit (ignored here), SIGKILL after
# the grace, TIMEOUT.
script slow.sh $'#PHX -t 0:03\ntrap "" TERM\nsleep 60'
id=$(as phx submit --parsable slow.sh)
wait_job "$id" RUNNING 30
wait_job "$id" TIMEOUT 40
elapsed=$(psql_q "SELECT round(extract(epoch FROM end_time - start_time)) FROM jobs WHERE id = $id")
note "TIMEOUT after $elapsed s (limit 3 s, grace 2 s)"
((elapsed >= 4 && elapsed <= 20)) || fail "TIMEOUT after $elapsed s, expected about 5"

# Cancel: the script and a double-forked child in its own session all die.
script fork.sh $'#PHX -t 2\nsetsid sh -c "sleep 777 & echo forked" &\nsleep 120'
id=$(as phx submit --parsable fork.sh)
wait_job "$id" RUNNING 30
wait_for 10 pgrep -u phxu1 -f "[s]leep 777"
as phx cancel "$id"
wait_job "$id" CANCELLED 30
wait_for 10 sh -c '! pgrep -u phxu1 -f "[s]leep 777" && ! pgrep -u phxu1 -f "[s]leep 120"'

# kill -9 the agent while a task runs; the task goes on, the restarted agent
# adopts it and it is reported once, with its real exit code.
script seven.sh $'#PHX -t 2\nsleep 4\nexit 7'
id=$(as phx submit --parsable seven.sh)
wait_job "$id" RUNNING 30
# (RUNNING comes before the script has run its sleep)
wait_for 10 pgrep -u phxu1 -f "^sleep 4$"
stop_daemon agent-n1 KILL || true
pgrep -u phxu1 -f "^sleep 4$" >/dev/null || fail "the task died with its agent"
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_job "$id" FAILED 40
assert_eq "7|0" "$(psql_q "SELECT exit_code, exit_signal FROM jobs WHERE id = $id")"
assert_eq 1 "$(psql_q "SELECT count(*) FROM job_events WHERE job_id = $id AND to_state = 'FAILED'")" "one terminal transition"
# (the master writes the tasks row as it passes the update on: committed
# maybe after batchd's)
task_row() { psql_q "SELECT state, exit_code FROM tasks WHERE task_id LIKE '$id.%' AND task_id NOT LIKE '%.1'"; }
wait_for 10 eval '[[ $(task_row) == "TASK_FAILED|7" ]]' || assert_eq "TASK_FAILED|7" "$(task_row)"
note ok
