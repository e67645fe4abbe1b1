#!/usr/bin/env bash
# timeout: 90
# EASY backfill with gang requests: a 4-node job that needs every core is
# not starved by a steady stream of 1-core jobs submitted before and after it.
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
printf '#!/bin/sh\n#SBATCH -t 1\nsleep 5\n' >"$home/small.sh"
printf '#!/bin/sh\n#SBATCH -N 4 --ntasks-per-node=2 -t 2\necho "big on $PHX_JOB_NODELIST $PHX_TASKS_PER_NODE"\n' >"$home/big.sh"
chown phxu1 "$home/small.sh" "$home/big.sh"

stream() {
    local end=$((SECONDS + $1))
    while ((SECONDS < end)); do
        as phx submit --parsable small.sh >>"$PHX_TEST_DIR/small.ids" || true
        sleep 0.25
    done
}
stream 6
big=$(as phx submit --parsable big.sh)
note "big job $big"
stream 25 &
spid=$!
wait_job "$big" COMPLETED 40
assert_eq "big on n[1-4] 2(x4)" "$(cat "$home/phx-$big.out")"
kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
started=$(psql_q "SELECT count(*) FROM jobs WHERE name = 'small.sh' AND start_time IS NOT NULL")
note "$(wc -l <"$PHX_TEST_DIR/small.ids") small jobs submitted, $started started; big job waited $(psql_q "SELECT extract(epoch FROM start_time - submit_time)::int FROM jobs WHERE id = $big") s"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "job $big: gang request"
# EASY: no later 1-core job (60 s limit) jumped ahead of the reserved big job
assert_eq 0 "$(psql_q "SELECT count(*) FROM jobs s, jobs b WHERE b.id = $big AND s.id > b.id AND s.start_time < b.start_time")"
assert_eq "" "$(psql_q "SELECT 1 FROM jobs WHERE id = $big AND start_time - submit_time < interval '2 s'")" "the cluster was busy when it came"
as phx cancel --user phxu1
note ok
