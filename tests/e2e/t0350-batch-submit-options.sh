#!/usr/bin/env bash
# timeout: 90
# phx submit's options end to end: a negative --nice (a higher priority) is
# refused for users and stores nothing, operators may give one; --parsable
# and -W/--wait in a script work as on the command line; a value Phalanx does
# not implement is refused by name with its file:line, or "command line";
# --wrap CMD submits sbatch's script of CMD, and is refused with a script
# file, without a command, and in a script.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_BATCHD_EXTRA='operators = ["root", "phxu2"];'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd

home1=$(getent passwd phxu1 | cut -d: -f6)
home2=$(getent passwd phxu2 | cut -d: -f6)
jobs() { psql_q "SELECT count(*) FROM jobs"; }

# A negative nice from a user: refused where it was given, nothing stored.
printf '#!/bin/sh\n#SBATCH -t 5\n#SBATCH --nice=-10\ntrue\n' >"$home1/nice.sh"
chown phxu1 "$home1/nice.sh"
before=$(jobs)
expect_fail as_user phxu1 phx submit nice.sh
assert_contains "$PHX_OUT" "nice.sh:3: --nice=-10: only an operator may raise a job's priority"
expect_fail as_user phxu1 phx submit --nice=-1 --parsable nice.sh
assert_contains "$PHX_OUT" "command line: --nice=-1: only an operator may raise"
expect_fail as_user phxu1 phx submit --nice=-2147483646 nice.sh
assert_contains "$PHX_OUT" "integer adjustment from -2147483645 to 2147483645"
assert_eq "$before" "$(jobs)" "no job stored"
# A positive one is anyone's; a user's nice=0 over the script's -10 too.
id=$(as_user phxu1 phx submit --parsable --nice=0 nice.sh)
assert_eq 0 "$(psql_q "SELECT nice FROM jobs WHERE id = $id")"
wait_job "$id" COMPLETED 30

# An operator (batchd.operators) may.
cp "$home1/nice.sh" "$home2/nice.sh"
chown phxu2 "$home2/nice.sh"
id=$(as_user phxu2 phx submit --parsable nice.sh)
assert_eq -10 "$(psql_q "SELECT nice FROM jobs WHERE id = $id")"
wait_job "$id" COMPLETED 30

# --parsable and -W from the script.
printf '#!/bin/sh\n#SBATCH --parsable\n#SBATCH -t 5\ntrue\n' >"$home1/parsable.sh"
printf '#!/bin/sh\n#SBATCH -W\n#SBATCH -t 5\nsleep 1; exit 3\n' >"$home1/wait.sh"
chown phxu1 "$home1/parsable.sh" "$home1/wait.sh"
out=$(as_user phxu1 phx submit parsable.sh)
note "$out"
[[ $out =~ ^[0-9]+$ ]] || fail "--parsable in the script: expected only the id, not \"$out\""
wait_job "$out" COMPLETED 30
expect_fail as_user phxu1 phx submit wait.sh
note "$PHX_OUT"
assert_eq 3 "$PHX_RC" "phx submit waits and exits with the job's code"
[[ $PHX_OUT =~ job\ ([0-9]+)\ ended\ FAILED ]] || fail "-W in the script: no end reported"
assert_eq FAILED "$(job_field "${BASH_REMATCH[1]}" state)"

# Unsupported values: refused by name, located.
printf '#!/bin/sh\n#SBATCH -t 5\n#SBATCH --cpu-bind=threads\ntrue\n' >"$home1/bind.sh"
chown phxu1 "$home1/bind.sh"
before=$(jobs)
expect_fail as_user phxu1 phx submit bind.sh
assert_contains "$PHX_OUT" "bind.sh:3: cpu-bind \"threads\": \"threads\" is not supported (use none, cores or sockets"
expect_fail as_user phxu1 phx submit --cpu-bind=cores --distribution=plane=2 bind.sh
assert_contains "$PHX_OUT" "command line: distribution \"plane=2\": \"plane=2\" is not supported"
expect_fail as_user phxu1 phx submit --cpu-bind=cores --open-mode=sometimes bind.sh
assert_contains "$PHX_OUT" 'command line: invalid open-mode "sometimes" (append or truncate)'
expect_fail as_user phxu1 phx submit --cpu-bind=cores -i in.txt bind.sh
assert_contains "$PHX_OUT" "\"-i\" (--input) is not supported"
assert_eq "$before" "$(jobs)" "no job stored"

# --open-mode=append: the output file is added to; the command line's
# truncate overrides the directive.
printf 'kept\n' >"$home1/app.out"
printf '#!/bin/sh\n#SBATCH -t 5 -o app.out --open-mode=append\necho appended\n' >"$home1/app.sh"
chown phxu1 "$home1/app.out" "$home1/app.sh"
id=$(as_user phxu1 phx submit --parsable app.sh)
wait_job "$id" COMPLETED 30
assert_eq "kept appended" "$(tr '\n' ' ' <"$home1/app.out" | sed 's/ $//')" "--open-mode=append"
id=$(as_user phxu1 phx submit --parsable --open-mode=truncate app.sh)
wait_job "$id" COMPLETED 30
assert_eq "appended" "$(cat "$home1/app.out")" "--open-mode=truncate on the command line"

# --wrap: the command is the script, sbatch's byte for byte, named "wrap";
# options before and after it count.
id=$(as_user phxu1 phx submit --parsable -t 5 --wrap "'echo wrapped \$PHX_JOB_ID; echo 2nd'" \
    --comment=w)
wait_job "$id" COMPLETED 30
assert_eq "wrapped $id
2nd" "$(cat "$home1/phx-$id.out")"
assert_eq "wrap" "$(job_field "$id" name)"
assert_eq "#!/bin/sh
# This script was created by sbatch --wrap.

echo wrapped \$PHX_JOB_ID; echo 2nd
|w" \
    "$(psql_q "SELECT script || '|' || (spec->>'comment') FROM jobs WHERE id = $id")"
id=$(as_user phxu1 phx submit --parsable "'--wrap=echo eq'" -J named -t 5)
wait_job "$id" COMPLETED 30
assert_eq "eq" "$(cat "$home1/phx-$id.out")"
assert_eq "named" "$(job_field "$id" name)"
# Refused: with a script file (or stdin), without a command, in a script.
before=$(jobs)
expect_fail as_user phxu1 phx submit -t 5 --wrap true nice.sh
assert_eq 2 "$PHX_RC"
assert_contains "$PHX_OUT" "phx submit: --wrap and a script file (\"nice.sh\") cannot both be given"
expect_fail as_user phxu1 phx submit --wrap true - </dev/null
assert_contains "$PHX_OUT" "--wrap and a script file (\"-\")"
expect_fail as_user phxu1 phx submit -t 5 --wrap
assert_eq 2 "$PHX_RC"
assert_contains "$PHX_OUT" "phx submit: --wrap needs a command"
expect_fail as_user phxu1 phx submit "--wrap=" -t 5
assert_contains "$PHX_OUT" "phx submit: --wrap needs a command"
printf '#!/bin/sh\n#SBATCH -t 5\n#SBATCH --wrap=true\ntrue\n' >"$home1/inwrap.sh"
chown phxu1 "$home1/inwrap.sh"
expect_fail as_user phxu1 phx submit inwrap.sh
assert_contains "$PHX_OUT" "inwrap.sh:3: "
assert_contains "$PHX_OUT" "\"--wrap\" is not supported: it belongs on the phx submit"
# a work dir so long the output file name could not be made: refused at
# submission (it was accepted, then pended forever)
long=/tmp/$(head -c 4088 /dev/zero | tr '\0' a)
expect_fail as_user phxu1 phx submit -t 5 -D "$long" --wrap true
assert_contains "$PHX_OUT" 'the file name from pattern "phx-%j.out" in work dir'
assert_contains "$PHX_OUT" "could be longer than 4095 bytes"
assert_eq "$before" "$(jobs)" "no job stored"
note ok
