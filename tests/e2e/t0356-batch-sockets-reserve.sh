#!/usr/bin/env bash
# timeout: 120
# A reserved job capped per socket behind a stream of 1-core jobs starts,
# asking the master for its tasks (4 socket bundles of 1 core, 2 per node,
# 1 per socket) and no later job jumps ahead of it.  This end-to-end run
# does not reproduce the old requests' failure (cores per node: two free
# cores of one socket given to a job needing one on each); the unit tests
# do (test_alloc_gang per_socket/max_agents, test_batch_sched gang request).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2; do start_agent $n "synthetic:pack:2 numa:1 core:2 pu:1"; done
for n in n1 n2; do wait_node $n up; done
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\n#SBATCH -t 1\nsleep 6\n' >"$home/small.sh"
printf '#!/bin/sh\n#SBATCH -N 2 -n 4 --ntasks-per-socket=1 -t 2\necho "big on $PHX_JOB_NODELIST $PHX_TASKS_PER_NODE"\n' >"$home/big.sh"
chown phxu1 "$home/small.sh" "$home/big.sh"

stream() {
    local end=$((SECONDS + $1))
    while ((SECONDS < end)); do
        as phx submit --parsable small.sh >>"$PHX_TEST_DIR/small.ids" || true
        sleep 0.3
    done
}
stream 8
big=$(as phx submit --parsable big.sh)
note "big job $big"
stream 40 &
spid=$!
wait_job "$big" COMPLETED 50
assert_eq "big on n[1-2] 2(x2)" "$(cat "$home/phx-$big.out")"
kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
note "$(wc -l <"$PHX_TEST_DIR/small.ids") small jobs submitted; big job waited $(psql_q "SELECT extract(epoch FROM start_time - submit_time)::int FROM jobs WHERE id = $big") s"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "job $big: gang request job-$big-"
assert_contains "$(grep "job $big: gang request" "$PHX_TEST_DIR/batchd.log")" "for 4 socket bundles of 1 cores"
assert_eq 0 "$(psql_q "SELECT count(*) FROM jobs s, jobs b WHERE b.id = $big AND s.id > b.id AND s.start_time < b.start_time")"
as phx cancel --user phxu1
note ok
