#!/usr/bin/env bash
# timeout: 180
# Job holds as Slurm's: a job submitted with -H (option or #SBATCH
# directive) stays PENDING with reason JobHeldUser while the node is free,
# across a batchd restart, and runs once released; another user can
# neither release nor hold it; a pending job held while it waits for
# resources stays pending once they free, its gang request cancelled at
# the master; an operator's hold
# (JobHeldAdmin) is not released by the job's owner; a running job's hold
# is refused naming its state; an array id holds and releases every pending
# task; scontrol hold/uhold/release work outside and inside a job (and take
# job ids only); a partial refusal names the job refused and fails; an
# operator's -H is JobHeldAdmin; each hold and release is in job_events.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
scontrol() { as "$PHX_SRC/scripts/compat/scontrol" "$@"; }
reason() { job_field "$1" reason; }
held_still() { # ID REASON: pending with REASON, now and a while after
    assert_eq "PENDING $2" "$(job_field "$1" state) $(reason "$1")" "job $1 held"
    sleep 2
    assert_eq "PENDING $2" "$(job_field "$1" state) $(reason "$1")" "job $1 still held"
}
printf '#!/bin/sh\n#SBATCH -t 5\necho "ran $PHX_JOB_ID"\n' >"$home/j.sh"
chown phxu1 "$home/j.sh"

# -H: held while the node is free (a later job runs there meanwhile).
h=$(as phx submit --parsable -H j.sh)
free=$(as phx submit --parsable j.sh)
wait_job "$free" COMPLETED 20
held_still "$h" JobHeldUser
assert_contains "$(as phx queue)" "(JobHeldUser)"
assert_contains "$(as "$PHX_SRC/scripts/compat/squeue" --me)" "(JobHeldUser)"
assert_contains "$(as phx show "$h")" "JobState=PENDING Reason=JobHeldUser"
# Another user: as if it did not exist.
expect_fail as_user phxu2 phx release "$h"
assert_contains "$PHX_OUT" "invalid job id $h"
expect_fail as_user phxu2 phx hold "$h"
assert_contains "$PHX_OUT" "invalid job id $h"
# The hold survives a restart of batchd.
stop_daemon batchd
start_batchd
held_still "$h" JobHeldUser
as phx release "$h"
wait_job "$h" COMPLETED 20
assert_eq "ran $h" "$(cat "$home/phx-$h.out")"
assert_eq "JobHeldUser Priority" \
    "$(psql_q "SELECT string_agg(reason, ' ' ORDER BY id) FROM job_events
               WHERE job_id = $h AND to_state = 'PENDING'")" "job_events: held, released"

# An operator's -H is an admin hold (JobHeldAdmin), as in Slurm.
ha=$(phx submit --parsable -H "$home/j.sh")
assert_eq JobHeldAdmin "$(reason "$ha")"
phx cancel "$ha"
wait_job "$ha" CANCELLED 20

# A job waiting for resources, held: it stays pending once they free (its
# gang request dropped); the running job's hold is refused by name.
printf '#!/bin/sh\n#SBATCH -n 2 -t 5\nsleep 311\n' >"$home/fill.sh"
chown phxu1 "$home/fill.sh"
fill=$(as phx submit --parsable fill.sh)
wait_job "$fill" RUNNING 20
w=$(as phx submit --parsable -n 2 j.sh)
requests_are() { # N: batchd's gang requests outstanding at the master
    local got=
    for _ in $(seq 50); do
        got=$(master_state | python3 -c 'import json, sys
print(sum(f["requests"] for f in json.load(sys.stdin)["frameworks"]))')
        [[ $got == "$1" ]] && return 0
        sleep 0.2
    done
    fail "gang requests at the master: $got, not $1"
}
# reserved: batchd asks the master to hold the node for it
wait_for 10 grep -q "gang request job-$w-" "$PHX_TEST_DIR/master.log"
requests_are 1
scontrol hold "$w"
assert_eq JobHeldUser "$(reason "$w")"
requests_are 0
# scontrol takes job ids only: an option is refused, never phx's own
expect_fail scontrol release -h "$w"
assert_contains "$PHX_OUT" 'scontrol: release: "-h" is not a job id'
expect_fail scontrol hold --user "$w"
assert_contains "$PHX_OUT" 'scontrol: hold: "--user" is not a job id'
assert_eq JobHeldUser "$(reason "$w")"
expect_fail as phx hold "$fill"
assert_contains "$PHX_OUT" "job $fill is not pending (RUNNING): only a pending job can be held"
expect_fail scontrol release "$fill"
assert_contains "$PHX_OUT" "job $fill is not pending (RUNNING): only a pending job can be released"
as phx cancel "$fill"
wait_job "$fill" CANCELLED 20
wait_for 10 sh -c '! pgrep -u phxu1 -f "sleep 311" >/dev/null'
held_still "$w" JobHeldUser

# An operator's hold: JobHeldAdmin, which its owner cannot release (nor
# make its own); the operator's uhold is a user hold.
phx hold "$w"
assert_eq JobHeldAdmin "$(reason "$w")"
expect_fail scontrol release "$w"
assert_contains "$PHX_OUT" "job $w is held by an operator: only an operator may release it"
expect_fail as phx hold "$w"
assert_contains "$PHX_OUT" "job $w is held by an operator"
assert_eq JobHeldAdmin "$(reason "$w")"
"$PHX_SRC/scripts/compat/scontrol" uhold "jobid=$w"
assert_eq JobHeldUser "$(reason "$w")"
phx hold "$w"
held_still "$w" JobHeldAdmin
phx release "$w"
wait_job "$w" COMPLETED 20
assert_contains "$(psql_q "SELECT string_agg(reason, ' ' ORDER BY id) FROM job_events
                           WHERE job_id = $w")" "JobHeldUser JobHeldAdmin JobHeldUser JobHeldAdmin Priority"

# #SBATCH -H, and an array: its id holds and releases every pending task,
# A_T one, and scontrol takes a comma-separated list.
printf '#!/bin/sh\n#SBATCH -H\n#SBATCH -t 5 --array=0-2\necho "task $PHX_ARRAY_TASK_ID"\n' \
    >"$home/arr.sh"
chown phxu1 "$home/arr.sh"
a=$(as phx submit --parsable arr.sh)
for t in 0 1 2; do assert_eq JobHeldUser "$(reason "${a}_$t")"; done
scontrol release "${a}_1"
wait_job "${a}_1" COMPLETED 20
held_still "${a}_0" JobHeldUser
# some refused (task 1 ended), others not: named, exit 1
expect_fail scontrol hold "${a}_[0-2]"
assert_contains "$PHX_OUT" "job ${a}_1 is not pending (COMPLETED)"
assert_eq JobHeldUser "$(reason "${a}_2")"
assert_eq JobHeldUser "$(reason "${a}_2")"
single=$(as "$PHX_SRC/scripts/compat/sbatch" --parsable --hold j.sh)
scontrol release "${a},$single"
wait_job "${a}_0" COMPLETED 20
wait_job "${a}_2" COMPLETED 20
wait_job "$single" COMPLETED 20

# Inside a job: scontrol hold and release of a job that waits behind it.
cat >"$home/inner.sh" <<'S'
#!/bin/sh
#SBATCH -t 5
id=$(sbatch --parsable -n 2 -t 5 "$HOME/j.sh")
scontrol hold "$id" && echo "held $id"
scontrol show job "$id" | grep -o "Reason=[A-Za-z]*"
scontrol hold "$PHX_JOB_ID" 2>&1 | grep -o "not pending (RUNNING)"
scontrol release "$id" && echo "released"
scontrol show job "$id" | grep -o "Reason=[A-Za-z]*"
S
chown phxu1 "$home/inner.sh"
o=$(as phx submit --parsable inner.sh)
wait_job "$o" COMPLETED 30
out=$(cat "$home/phx-$o.out")
note "$out"
[[ $out =~ held\ ([0-9]+) ]] || fail "scontrol hold inside a job: $out"
inner=${BASH_REMATCH[1]}
assert_contains "$out" "Reason=JobHeldUser"
assert_contains "$out" "not pending (RUNNING)"
assert_contains "$out" "released"
[[ $out =~ released.*Reason=(Priority|Resources) ]] || fail "released: Priority or Resources"
wait_job "$inner" COMPLETED 20
note ok
