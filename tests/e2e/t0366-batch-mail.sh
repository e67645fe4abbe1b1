#!/usr/bin/env bash
# timeout: 180
# Mail (doc/jobs.md, "Mail"): sbatch's --mail-type and --mail-user.  batchd
# runs batchd.mail_prog (here a script that records its arguments and the
# PHX_JOB_* it is given) as `mail -s SUBJECT RCPT`: BEGIN and END of a job
# to its owner; FAIL alone to another address; an array's summary (one mail
# for its end) and, with ARRAY_TASKS, one per task; TIME_LIMIT_50 while the
# job runs; none without --mail-type; a requeued run mails REQUEUE (with
# that run's time), not its end; an array one of whose tasks is cancelled
# for a dependency never met mails its summary as INVALID_DEPEND; a
# --mail-user that would be an option of the mail program, or of more than
# 32 addresses, is refused at submission.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_node n1 up
mlog=$PHX_TEST_DIR/mail.log
cat >"$PHX_TEST_DIR/mailer" <<S
#!/bin/sh
printf '%s|' "\$@" >>"$mlog"
echo "type=\$PHX_JOB_MAIL_TYPE id=\$PHX_JOB_ID state=\$PHX_JOB_STATE" >>"$mlog"
S
chmod +x "$PHX_TEST_DIR/mailer"
start_batchd -s "batchd.mail_prog=$PHX_TEST_DIR/mailer"
home=$(getent passwd phxu1 | cut -d: -f6)
job() { # NAME DIRECTIVES BODY
    printf '#!/bin/sh\n#SBATCH -J %s -t 1 %s\n%s\n' "$1" "$2" "$3" >"$home/$1.sh"
    chown phxu1 "$home/$1.sh"
}
mails() { grep -c "$1" "$mlog" 2>/dev/null || true; }

job ok "--mail-type=BEGIN,END" "true"
job bad "--mail-type=FAIL --mail-user=ops@example.org" "exit 3"
job quiet "" "true"
job arr "--mail-type=END -a 1-3" "true"
job tasks "--mail-type=END,ARRAY_TASKS -a 1-2" "true"
job long "-t 0:20 --mail-type=TIME_LIMIT_50,END" "sleep 60"
ok=$(as_user phxu1 phx submit --parsable ok.sh)
bad=$(as_user phxu1 phx submit --parsable bad.sh)
quiet=$(as_user phxu1 phx submit --parsable quiet.sh)
arr=$(as_user phxu1 phx submit --parsable arr.sh)
tasks=$(as_user phxu1 phx submit --parsable tasks.sh)
long=$(as_user phxu1 phx submit --parsable long.sh)
wait_job "$ok" COMPLETED 60
wait_job "$bad" FAILED 60
wait_job "$quiet" COMPLETED 60
wait_for 60 grep -q "Name=tasks Ended.*_2 \|Job_id=${tasks}_2 " "$mlog"
wait_for 30 grep -q "Array Summary Job_id=${arr}_\*" "$mlog"
wait_for 30 grep -q "Name=long Reached 50% of time limit" "$mlog"
phx cancel "$long"
wait_for 30 grep -q "Job_id=$long Name=long Ended.*CANCELLED" "$mlog"
sleep 1
note "$(cat "$mlog")"

assert_eq 1 "$(mails "^-s|Phalanx Job_id=$ok Name=ok Began, Queued time 00:00:0[0-9]|phxu1|type=BEGIN id=$ok state=RUNNING")" "BEGIN of ok"
assert_eq 1 "$(mails "^-s|Phalanx Job_id=$ok Name=ok Ended, Run time 00:00:0[0-9], COMPLETED, ExitCode 0|phxu1|type=END id=$ok state=COMPLETED")" "END of ok"
assert_eq 1 "$(mails "^-s|Phalanx Job_id=$bad Name=bad Failed, Run time 00:00:0[0-9], FAILED, ExitCode 3|ops@example.org|type=FAIL")" "FAIL of bad"
assert_eq 0 "$(mails "id=$quiet ")" "mails of quiet"
assert_eq 1 "$(mails "Job_id=${arr}_")" "mails of the array arr"
assert_contains "$(cat "$mlog")" "Phalanx Array Summary Job_id=${arr}_* ($arr) Name=arr Ended, Run time"
assert_eq 2 "$(mails "Name=tasks Ended")" "mails of the array tasks, one per task"
assert_eq 1 "$(mails "Name=long Reached 50% of time limit, Run time 00:00:1[0-9] of 00:00:20")" "TIME_LIMIT_50 of long"
assert_eq 2 "$(mails "Name=long \|Job_id=$long ")" "mails of long: 50 %, its end, and no other"

# a running job requeued (phx requeue): Began, Requeued, Began, Ended; not
# a Failed for the run killed to be requeued
job rq "--mail-type=ALL" '[ -e rq.flag ] && exit 0; touch rq.flag; exec sleep 300'
rm -f "$home/rq.flag"
rq=$(as_user phxu1 phx submit --parsable rq.sh)
wait_for 60 test -e "$home/rq.flag"
sleep 2 # a run of 2 s or more: its REQUEUE mail says so
run_ok as_user phxu1 phx requeue "$rq"
wait_job "$rq" COMPLETED 90
wait_for 30 grep -q "Job_id=$rq Name=rq Ended" "$mlog"
sleep 1
note "$(grep "Job_id=$rq " "$mlog")"
assert_eq 2 "$(mails "Job_id=$rq Name=rq Began")" "BEGIN of rq, per run"
assert_eq 1 "$(mails "Job_id=$rq Name=rq Requeued.*type=REQUEUE id=$rq state=PENDING")" "REQUEUE of rq"
assert_eq 1 "$(mails "Job_id=$rq Name=rq Requeued, Run time 00:00:0[2-9]")" "REQUEUE of rq: its run's time"
assert_eq 4 "$(mails "Job_id=$rq ")" "mails of rq: no end of the requeued run"

# a recipient the mail program would take for an option
job evil "--mail-type=END --mail-user=-oQ/tmp/x" "true"
expect_fail as_user phxu1 phx submit evil.sh
assert_contains "$PHX_OUT" "invalid mail-user \"-oQ/tmp/x\""
assert_contains "$PHX_OUT" "evil.sh:2"

# more recipients than the mail program takes: refused, nothing stored
many=$(seq -s, -f "u%g@example.org" 33)
job many "--mail-type=END --mail-user=$many" "true"
expect_fail as_user phxu1 phx submit many.sh
assert_contains "$PHX_OUT" "--mail-user has 33 addresses: at most 32 are allowed"
assert_contains "$PHX_OUT" "many.sh:2"
assert_eq 0 "$(psql_q "SELECT count(*) FROM jobs WHERE name = 'many'")"
job enough "--mail-type=END --mail-user=$(seq -s, -f "u%g@example.org" 32)" "true"
enough=$(as_user phxu1 phx submit --parsable enough.sh)
wait_job "$enough" COMPLETED 60

# an array whose tasks never run (their dependency failed): its summary
# is INVALID_DEPEND, the worst end of its tasks, not "Ended"
job dep "--mail-type=END,INVALID_DEPEND -a 1-2 --dependency=afterok:$bad" "true"
dep=$(as_user phxu1 phx submit --parsable dep.sh)
wait_for 30 grep -q "Array Summary Job_id=${dep}_\*" "$mlog"
sleep 1
note "$(grep "Job_id=${dep}_" "$mlog")"
assert_eq 1 "$(mails "Array Summary Job_id=${dep}_\* ($dep) Name=dep Failed, dependency never met.*CANCELLED.*type=INVALID_DEPEND")" "INVALID_DEPEND summary of dep"
assert_eq 1 "$(mails "Job_id=${dep}_")" "mails of the array dep"
