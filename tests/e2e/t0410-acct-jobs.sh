#!/usr/bin/env bash
# timeout: 150
# Accounting of real jobs (issue 9): after jobs that complete, fail, time
# out, run out of memory and get cancelled under phx-batchd, the views give
# the right states and exit codes, Elapsed matches the wall time, CPUTime =
# Elapsed x AllocCPUS, TotalCPU > 0 for a CPU-burning job, MaxRSS >= what a
# job touched, usage_daily holds the runs; each user's own role (libpq's
# default user name = the Unix user) sees only that user's jobs in phx acct.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxacct1
test_user phxacct2
PHX_BATCHD_EXTRA='kill_grace = 1;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
chmod 0711 "$PHX_PG_DIR" # users reach the socket (the data dir stays 0700)
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_node n1 up
start_batchd

as() { as_user "$@"; }
home1=$(getent passwd phxacct1 | cut -d: -f6)
home2=$(getent passwd phxacct2 | cut -d: -f6)

# Burns 2 s of CPU time (whatever the machine's load) and touches 200 MiB.
cat >"$home1/burn.sh" <<'S'
#!/bin/sh
#SBATCH -J burn -c 2 -t 1
python3 -c '
import time
b = b"x" * (200 << 20)
while time.process_time() < 2:
    pass
'
S
printf '#!/bin/sh\n#SBATCH -J fail\nexit 3\n' >"$home1/fail.sh"
printf '#!/bin/sh\n#SBATCH -J slow -t 0:02\nsleep 309\n' >"$home1/slow.sh"
cat >"$home1/oom.sh" <<'S'
#!/bin/sh
#SBATCH -J oom --mem=64M -t 1
python3 -c '
import time
b = [b"x" * (16 << 20) for i in range(64)]
time.sleep(5)
'
S
printf '#!/bin/sh\n#SBATCH -J nap\nsleep 310\n' >"$home2/nap.sh"
chown phxacct1 "$home1"/*.sh
chown phxacct2 "$home2/nap.sh"

t0=$(date +%s.%N)
burn=$(as phxacct1 phx submit --parsable burn.sh)
fail=$(as phxacct1 phx submit --parsable fail.sh)
slow=$(as phxacct1 phx submit --parsable slow.sh)
oom=$(as phxacct1 phx submit --parsable oom.sh)
nap=$(as phxacct2 phx submit --parsable nap.sh)
wait_job "$nap" RUNNING 30
as phxacct2 phx cancel "$nap"
wait_job "$burn" COMPLETED 40
t1=$(date +%s.%N)
wait_job "$fail" FAILED 30
wait_job "$slow" TIMEOUT 30
wait_job "$nap" CANCELLED 30
wait_job "$oom" OUT_OF_MEMORY 30

row() { psql_q "SELECT concat_ws('|', $2) FROM acct_jobs WHERE job_id = $1"; }
assert_eq "COMPLETED|0:0" "$(row "$burn" "state, exit_code")"
assert_eq "FAILED|3:0" "$(row "$fail" "state, exit_code")"
assert_eq "TIMEOUT" "$(row "$slow" "state")"
assert_eq "OUT_OF_MEMORY" "$(row "$oom" "state")"
assert_eq "CANCELLED" "$(row "$nap" "state")"
note "exit codes: slow $(row "$slow" exit_code), oom $(row "$oom" exit_code), nap $(row "$nap" exit_code)"
# Elapsed = end - start, and no longer than the wall time we saw.
wall=$(python3 -c "print(int($t1 - $t0) + 1)")
assert_eq "t|t|t" "$(row "$burn" "elapsed_s = extract(epoch FROM \"end\" - start), \
    elapsed_s BETWEEN 2 AND $wall, cpu_time_s = elapsed_s * alloc_cpus")"
assert_eq 0 "$(psql_q "SELECT count(*) FROM acct_jobs WHERE cpu_time_s <> elapsed_s * alloc_cpus
    OR elapsed_s <> extract(epoch FROM \"end\" - start)")"
assert_eq 2 "$(row "$burn" alloc_cpus)"
# TotalCPU: at least the burner's 2 s; MaxRSS: at least the 200 MiB it touched.
note "burn: $(row "$burn" "elapsed_s, cpu_time_s, total_cpu_s, max_rss_bytes")"
assert_eq "t|t" "$(row "$burn" "total_cpu_s >= 1.9, max_rss_bytes >= 200 * 1048576")"
assert_eq "$burn.batch|COMPLETED|t" "$(psql_q "SELECT concat_ws('|', jobid, state,
    total_cpu_s >= 1.9) FROM acct_steps WHERE job_id = $burn")"
# usage_daily: every run that started and ended, charged to its owner.
assert_eq "4|t" "$(psql_q "SELECT concat_ws('|', sum(jobs),
    sum(cpu_seconds) = (SELECT sum(cpu_time_s) FROM acct_jobs WHERE user_name = 'phxacct1'))
    FROM usage_daily WHERE user_name = 'phxacct1'")"
assert_eq "1" "$(psql_q "SELECT sum(jobs) FROM usage_daily WHERE user_name = 'phxacct2'")"

# phx acct as each user, connecting as the Unix user's own role.
psql_q "SELECT phx_acct_grant_user('phxacct1'), phx_acct_grant_user('phxacct2')" >/dev/null
udsn="host=$PHX_PG_DIR port=5432 dbname=phalanx"
out=$(as phxacct1 phx acct -X --dsn "\"$udsn\"")
note "$out"
assert_contains "$out" "$burn                  burn"
assert_contains "$out" "  COMPLETED      0:0"
assert_contains "$out" "     FAILED      3:0"
assert_contains "$out" "    TIMEOUT"
assert_contains "$out" "OUT_OF_ME+"
assert_not_contains "$out" "nap"
out=$(as phxacct2 phx acct -P --format JobID,User,State --dsn "\"$udsn\"")
assert_eq "JobID|User|State
$nap|phxacct2|CANCELLED
$nap.batch|phxacct2|CANCELLED" "$(printf '%s\n' "$out" | grep -v '|PENDING$' | sed -n '1,3p')"
assert_eq "" "$(as phxacct2 phx acct -X -P --format JobID -u phxacct1 --dsn "\"$udsn\"" | tail -n +2)"
