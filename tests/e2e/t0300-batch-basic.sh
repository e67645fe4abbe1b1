#!/usr/bin/env bash
# timeout: 90
# phx-batchd end to end: a script runs as its user and its output file holds
# what it printed (with the PHX_* environment); queue and show; bad
# submissions are refused with clear messages and store nothing; another
# user's cancel is refused; a restarted batchd keeps its framework and jobs.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:2 numa:2 core:2 pu:1"
start_agent n2 "synthetic:pack:2 numa:2 core:2 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd

as() { as_user "$@"; }
home1=$(getent passwd phxu1 | cut -d: -f6)

cat >"$home1/hello.sh" <<'S'
#!/bin/bash
#SBATCH -J hello
#PHX --time=5
echo "hello from $(id -un) on job $PHX_JOB_ID ($PHX_JOB_NAME) nodes=$PHX_JOB_NODELIST ntasks=$PHX_NTASKS cpus=$PHX_CPUS_ON_NODE args=$*"
env | grep -c '^SLURM_' || true
echo "to stderr" >&2
S
chown phxu1 "$home1/hello.sh"
out=$(as phxu1 phx submit hello.sh a1 a2)
note "$out"
[[ $out =~ ^Submitted\ job\ ([0-9]+)$ ]] || fail "unexpected answer: $out"
id1=${BASH_REMATCH[1]}
wait_job "$id1" COMPLETED 30
body=$(cat "$home1/phx-$id1.out")
note "$body"
assert_contains "$body" "hello from phxu1 on job $id1 (hello) nodes=n"
assert_contains "$body" "ntasks=1 cpus=1 args=a1 a2"
assert_contains "$body" "to stderr"
assert_eq 0 "$(sed -n 2p "$home1/phx-$id1.out")" "no SLURM_ variables"
assert_eq phxu1 "$(stat -c %U "$home1/phx-$id1.out")"
assert_eq "COMPLETED|0|0" "$(psql_q "SELECT state, exit_code, exit_signal FROM jobs WHERE id = $id1")"
assert_eq "$home1/phx-$id1.out|" "$(psql_q "SELECT stdout_path, stderr_path FROM jobs WHERE id = $id1")"
assert_eq "batch|COMPLETED" "$(psql_q "SELECT step_id, state FROM job_steps WHERE job_id = $id1")"
assert_contains "$(psql_q "SELECT string_agg(to_state, ',' ORDER BY id) FROM job_events WHERE job_id = $id1")" "PENDING,RUNNING,COMPLETED"
show=$(as phxu1 phx show "$id1")
note "$show"
assert_contains "$show" "JobState=COMPLETED"
assert_contains "$show" "ExitCode=0:0"

# A failing script: FAILED with its exit code.
printf '#!/bin/sh\nexit 3\n' >"$home1/fail.sh"
id2=$(as phxu1 phx submit --parsable fail.sh)
wait_job "$id2" FAILED 30
assert_eq "3:0" "$(job_field "$id2" exit_code)"

# A script that a signal ends: FAILED with that signal, as the task's own.
# The script runs from memory: its $0 is /dev/fd/N and it leaves no file.
printf '#!/usr/bin/env python3\nimport os, signal, sys\nprint(sys.argv)\nos.kill(os.getpid(), signal.SIGUSR1)\n' >"$home1/sig.py"
idsig=$(as phxu1 phx submit --parsable sig.py x)
wait_job "$idsig" FAILED 30
assert_eq "0:10" "$(job_field "$idsig" exit_code)"
assert_contains "$(cat "$home1/phx-$idsig.out")" "['/dev/fd/"
assert_contains "$(cat "$home1/phx-$idsig.out")" "', 'x']"

# Bad submissions: refused with file:line, nothing stored.
before=$(psql_q "SELECT count(*) FROM jobs")
printf '#!/bin/sh\n#SBATCH -N 1\n#SBATCH --tiem=10\necho x\n' >"$home1/bad.sh"
expect_fail as phxu1 phx submit bad.sh
note "$PHX_OUT"
assert_contains "$PHX_OUT" "bad.sh:3:"
assert_contains "$PHX_OUT" "tiem"
printf '#!/bin/sh\n#SBATCH --time=1:75:00\n' >"$home1/bad2.sh"
expect_fail as phxu1 phx submit bad2.sh
assert_contains "$PHX_OUT" "bad2.sh:2:"
# Binary junk (phx submit refuses it before sending) and a script above
# batchd's max_script_size (default 1 MiB): what is wrong, and no new row.
head -c 3000 /dev/urandom >"$home1/junk.bin"
expect_fail as phxu1 phx submit junk.bin
note "$PHX_OUT"
assert_contains "$PHX_OUT" "junk.bin: not a job script (binary data: NUL bytes or invalid UTF-8)"
assert_eq "$before" "$(psql_q "SELECT count(*) FROM jobs")" "junk: nothing stored"
{ echo '#!/bin/sh'; head -c 1200000 /dev/zero | tr '\0' '#'; echo; } >"$home1/big.sh"
expect_fail as phxu1 phx submit big.sh
note "$PHX_OUT"
assert_contains "$PHX_OUT" "big.sh: script is larger than 1048576 bytes"
assert_eq "$before" "$(psql_q "SELECT count(*) FROM jobs")" "big: nothing stored"
expect_fail as phxu1 phx submit -N 3 hello.sh
note "$PHX_OUT"
assert_contains "$PHX_OUT" "requested node configuration is not available"
expect_fail as phxu1 phx submit -c 9 hello.sh
assert_contains "$PHX_OUT" "requested node configuration is not available"
expect_fail as phxu1 phx submit -d afterok:999999 hello.sh
note "$PHX_OUT"
assert_contains "$PHX_OUT" "command line: invalid dependency: dependency on job 999999 which does not exist"
expect_fail as phxu1 phx submit --array=0-999999999 hello.sh
note "$PHX_OUT"
assert_contains "$PHX_OUT" "command line: invalid array \"0-999999999\": index 999999999 is above the maximum"
# A value checked once the whole request is known still names its line.
printf '#!/bin/sh\n#SBATCH -t 5\n#SBATCH --array=abc\necho x\n' >"$home1/bad3.sh"
expect_fail as phxu1 phx submit bad3.sh
assert_contains "$PHX_OUT" "bad3.sh:3: invalid array \"abc\""
assert_eq "$before" "$(psql_q "SELECT count(*) FROM jobs")" "nothing stored"

# Another user's cancel is refused; the owner's works.
printf '#!/bin/sh\nsleep 300\n' >"$home1/long.sh"
id3=$(as phxu1 phx submit --parsable long.sh)
wait_job "$id3" RUNNING 30
expect_fail as phxu2 phx cancel "$id3"
note "$PHX_OUT"
assert_contains "$PHX_OUT" "invalid job id $id3"
expect_fail as phxu2 phx cancel --user phxu1
assert_contains "$PHX_OUT" "access denied"
assert_eq RUNNING "$(job_field "$id3" state)"
q=$(as phxu1 phx queue --me)
note "$q"
# squeue's default columns, widths and header
assert_contains "$q" "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)"
assert_contains "$q" "  long.sh    phxu1  R "
[[ $q =~ $id3\ +batch\ +long.sh ]] || fail "the queue should show partition batch"
# -j and -o: the state of one job, as scripts poll it (squeue -h -j ID -o %T)
assert_eq RUNNING "$(as phxu1 phx queue --noheader -j "$id3" -o %T)"
assert_eq "$id3|long.sh|1" "$(as phxu1 phx queue --noheader -j "$id3,999999" -o "'%i|%j|%D'")"
assert_eq phxu1 "$(SQUEUE_FORMAT=%u as phxu1 phx queue --noheader -j "$id3")" "SQUEUE_FORMAT"
expect_fail as phxu1 phx queue -o "'%i %Y'"
assert_contains "$PHX_OUT" '--format "%i %Y": %Y is not a field phx queue knows'
expect_fail as phxu1 phx queue -j 12x
assert_contains "$PHX_OUT" 'invalid job list "12x"' 
for bad in 0 1, 1_18446744073709551615 99999999999999999999999; do
    expect_fail as phxu1 phx queue -j "$bad"
    assert_contains "$PHX_OUT" "invalid job list \"$bad\""
done
expect_fail as phxu1 phx queue -n "$(printf 'x%.0s' {1..5000})"
assert_contains "$PHX_OUT" "the options' lists are too long" 

# batchd restarts: the running job survives, is reconciled, then cancelled.
stop_daemon batchd
start_batchd
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "resuming framework"
assert_eq RUNNING "$(job_field "$id3" state)"
pgrep -u phxu1 -f "sleep 300" >/dev/null || fail "the job's process should survive"
as phxu1 phx cancel "$id3"
wait_job "$id3" CANCELLED 30
wait_for 10 sh -c '! pgrep -u phxu1 -f "sleep 300" >/dev/null'

# A credential signs the method, the path and the body's SHA-256: phxu1's
# credential for one script does not carry another (it did: the body was
# not signed, and whoever relayed a submission could swap its script).
signed='{"script":"#!/bin/sh\n#SBATCH -t 1\ntrue\n","cwd":"/tmp"}'
other='{"script":"#!/bin/sh\n#SBATCH -t 1\nid\n","cwd":"/tmp"}'
hash=$(printf '%s' "$signed" | sha256sum | cut -d' ' -f1)
post() { # BODY: with a fresh credential over the signed body (munged refuses a replay)
    local cred
    cred=$(runuser -u phxu1 -- munge -S "$PHX_MUNGE_SOCKET" -s "POST /api/v1/jobs $hash")
    curl -s -o "$PHX_TEST_DIR/body" -w '%{http_code}' -H "Authorization: Munge $cred" \
        -H 'Content-Type: application/json' --data-binary "$1" "http://$PHX_BATCHD/api/v1/jobs"
}
before=$(psql_q "SELECT count(*) FROM jobs")
assert_eq 401 "$(post "$other")"
assert_contains "$(cat "$PHX_TEST_DIR/body")" "does not match the request"
assert_eq "$before" "$(psql_q "SELECT count(*) FROM jobs")" "no job from a swapped body"
code=$(post "$signed")
[[ $code == 20? ]] || fail "the signed body was refused ($code): $(cat "$PHX_TEST_DIR/body")"
assert_eq "$((before + 1))" "$(psql_q "SELECT count(*) FROM jobs")"
assert_eq phxu1 "$(psql_q "SELECT user_name FROM jobs ORDER BY id DESC LIMIT 1")"
note ok
