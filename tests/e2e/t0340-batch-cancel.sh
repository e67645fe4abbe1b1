#!/usr/bin/env bash
# timeout: 90
# Cancelling a running 2-node job kills its processes on every node (the
# script on the first, the holder on the second); the time limit ends a job
# as TIMEOUT; the sbatch/squeue/scancel wrappers work inside a job
# (squeue -h, scancel -n NAME, sbatch --wrap through phx submit, refused
# without a command); array tasks are cancelled and shown by A_T and
# A_[list] (phx and scancel), the array by A, and not by another user;
# scontrol show hostnames/hostlist/job inside a job, hold of the running
# job refused with its state, suspend refused by name.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_BATCHD_EXTRA='kill_grace = 1;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\n#SBATCH -N 2 -t 5\nsleep 307\n' >"$home/two.sh"
chown phxu1 "$home/two.sh"
id=$(as phx submit --parsable two.sh)
wait_job "$id" RUNNING 30
wait_for 10 pgrep -u phxu1 -f "sleep 307"
wait_for 10 pgrep -u phxu1 -f "sleep 2147483647"
assert_eq "n[1-2]" "$(job_field "$id" node_list)"
as phx cancel "$id"
wait_job "$id" CANCELLED 20
wait_for 15 sh -c '! pgrep -u phxu1 -f "sleep (307|2147483647)" >/dev/null'
assert_eq "CANCELLED|$(id -u phxu1)" "$(psql_q "SELECT state, cancel_uid FROM jobs WHERE id = $id")"

# Time limit: TIMEOUT.
printf '#!/bin/sh\n#SBATCH -t 0:02\nsleep 308\n' >"$home/slow.sh"
chown phxu1 "$home/slow.sh"
id2=$(as phx submit --parsable slow.sh)
wait_job "$id2" TIMEOUT 30
wait_for 10 sh -c '! pgrep -u phxu1 -f "sleep 308" >/dev/null'

# The Slurm wrappers on the job's PATH.
cat >"$home/wrap.sh" <<'S'
#!/bin/sh
#SBATCH -t 1
echo "bare wrap: $(sbatch --wrap 2>&1 | head -1)"
echo "wrap: $(sbatch -t 1 --wrap='echo wrapped $PHX_JOB_ID' 2>&1 | head -1)"
printf '#!/bin/sh\nsleep 30\n' > "$HOME/inner.sh"
out=$(sbatch "$HOME/inner.sh")
echo "$out"
id=${out##* }
squeue --me | grep -q " $id " && echo "squeue sees $id"
lines=$(squeue --me | wc -l) noheader=$(squeue -h --me | wc -l)
echo "header lines $((lines - noheader)) long $(squeue -l --noheader --me | wc -l) of $noheader"
echo "self: $(squeue -h -j "$PHX_JOB_ID" -o '%T %j %.3D')"
echo "inner: $(squeue --noheader --jobs="$id" --format='%i:%t' -t PD,R)"
scancel "$id" && echo "scancel ok"
named=$(sbatch --parsable -J byname "$HOME/inner.sh")
scancel -n byname && echo "scancel -n ok"
echo "named $named"
S
chown phxu1 "$home/wrap.sh"
id3=$(as phx submit --parsable wrap.sh)
wait_job "$id3" COMPLETED 30
out=$(cat "$home/phx-$id3.out")
note "$out"
assert_contains "$out" "Submitted batch job"
assert_contains "$out" "squeue sees"
assert_contains "$out" "self: RUNNING wrap.sh   1"
[[ $out =~ inner:\ [0-9]+:(PD|R) ]] || fail "squeue -j ID -o: $out"
assert_contains "$out" "scancel ok"
assert_contains "$out" "bare wrap: phx submit: --wrap needs a command"
[[ $out =~ wrap:\ Submitted\ batch\ job\ ([0-9]+) ]] || fail "sbatch --wrap did not submit"
wid=${BASH_REMATCH[1]}
wait_job "$wid" COMPLETED 20
assert_eq "wrapped $wid" "$(cat "$home/phx-$wid.out")"
n=$(sed -n 's/^header lines 1 long \([0-9]*\) of \1$/\1/p' <<<"$out")
[[ -n $n ]] || fail "squeue -h should drop the header line alone, -l change nothing"
assert_contains "$out" "scancel -n ok"
named=$(sed -n 's/^named //p' <<<"$out")
wait_job "$named" CANCELLED 10

# scontrol as job scripts use it: the hostfile and head-node idioms, show
# job; what it cannot do is refused by name.
cat >"$home/scontrol.sh" <<'S'
#!/bin/sh
#SBATCH -N 2 -t 1
scontrol show hostnames > "$HOME/hosts.$PHX_JOB_ID"
echo "head $(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1)"
echo "list $(scontrol show hostlist n2,n1 'x[1-2]')"
echo "expand $(scontrol show hostnames 'r[1-2]n[1-2]' | tr '\n' ' ')"
scontrol show job | grep -q "JobId=$PHX_JOB_ID " && echo "show job ok"
scontrol -o show job "$PHX_JOB_ID" | grep -q "JobId=$PHX_JOB_ID " && echo "show job by id ok"
scontrol hold "$PHX_JOB_ID" 2>&1; echo "hold rc=$?"
scontrol suspend "$PHX_JOB_ID" 2>&1; echo "suspend rc=$?"
S
chown phxu1 "$home/scontrol.sh"
id4=$(as phx submit --parsable scontrol.sh)
wait_job "$id4" COMPLETED 30
out=$(cat "$home/phx-$id4.out")
note "$out"
assert_eq "n1 n2" "$(tr '\n' ' ' <"$home/hosts.$id4" | sed 's/ $//')" "scontrol show hostnames: the job's nodes"
assert_contains "$out" "head n1"
assert_contains "$out" "list n[1-2],x[1-2]"
assert_contains "$out" "expand r1n1 r1n2 r2n1 r2n2 "
assert_contains "$out" "show job ok"
assert_contains "$out" "show job by id ok"
assert_contains "$out" "job $id4 is not pending (RUNNING): only a pending job can be held"
assert_contains "$out" "hold rc=1"
assert_contains "$out" 'scontrol: "suspend" is not supported by the phx wrapper'
assert_contains "$out" "suspend rc=2"
expect_fail phx hostlist
assert_contains "$PHX_OUT" "PHX_JOB_NODELIST is not set"
expect_fail phx hostlist 'n[1-'
assert_contains "$PHX_OUT" "unbalanced brackets"

# Array tasks: A_T and A_[list] are those tasks alone, A the whole array.
printf '#!/bin/sh\n#SBATCH --array=0-3 -t 5\nsleep 309\n' >"$home/arr.sh"
chown phxu1 "$home/arr.sh"
a=$(as phx submit --parsable arr.sh)
wait_job "${a}_3" RUNNING 30
assert_eq RUNNING "$(job_field "${a}_0" state)"
assert_eq 3 "$(job_field "${a}_3" array_task_id)"
as "$PHX_SRC/scripts/compat/scancel" "${a}_0"
wait_job "${a}_0" CANCELLED 20
as phx cancel "'${a}_[1-2]'"
wait_job "${a}_1" CANCELLED 20
wait_job "${a}_2" CANCELLED 20
assert_eq RUNNING "$(job_field "${a}_3" state)"
assert_contains "$(as phx show "${a}_3")" "ArrayJobId=$a ArrayTaskId=3"
expect_fail as phx cancel "${a}_0"
assert_contains "$PHX_OUT" "has already finished"
expect_fail as phx cancel "${a}_9"
assert_contains "$PHX_OUT" "invalid job id ${a}_9"
expect_fail as phx cancel "${a}_x"
assert_contains "$PHX_OUT" "invalid job id"
# Another user: as if the tasks did not exist.
expect_fail as_user phxu2 phx cancel "${a}_3"
assert_contains "$PHX_OUT" "invalid job id ${a}_3"
expect_fail as_user phxu2 phx show "${a}_3"
assert_contains "$PHX_OUT" "invalid job id ${a}_3"
as_user phxu2 "$PHX_SRC/scripts/compat/scancel" -n arr.sh # phxu2 has none
assert_eq RUNNING "$(job_field "${a}_3" state)"
as "$PHX_SRC/scripts/compat/scancel" "$a"
wait_job "${a}_3" CANCELLED 20
wait_for 15 sh -c '! pgrep -u phxu1 -f "sleep 309" >/dev/null'
note ok
