#!/usr/bin/env bash
# timeout: 120
# phx alloc in a directory that another user may write in (a shared group
# directory): that user replaces the job's output file, while the job is
# pending, with one of theirs announcing a relay with variables of their
# choosing (PHX_COMPAT_DIR: a PATH entry for the user's command).  phx alloc
# reads only the file it made: it says the file was replaced and cancels
# the job; the command never runs with that PATH.
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

shared=$PHX_TEST_DIR/shared
evil=$PHX_TEST_DIR/evil
mkdir -p "$shared" "$evil"
chmod 0777 "$shared" # writable by all, no sticky bit
printf '#!/bin/sh\ntouch %s/pwned\n' "$shared" >"$evil/mytool"
chmod 0755 "$evil" "$evil/mytool"

as_user phxu1 "cd $shared && phx alloc -H -N 1 -t 2 sh -c 'mytool'" \
    >"$PHX_TEST_DIR/o1.out" 2>"$PHX_TEST_DIR/o1.err" &
apid=$!
pending() { grep -q 'Pending job allocation' "$PHX_TEST_DIR/o1.err"; }
wait_for 30 pending
id=$(sed -n 's/^.*Pending job allocation \([0-9]*\)$/\1/p' "$PHX_TEST_DIR/o1.err")
f=$(compgen -G "$shared/.phx-alloc-*.out")
runuser -u phxu2 -- sh -c "rm -f '$f' && printf '%s\n' 'phx-alloc-relay 127.0.0.1 1 {\"PHX_COMPAT_DIR\":\"$evil\",\"PHX_JOB_ID\":\"$id\"}' >'$f'"
rc=0
wait "$apid" || rc=$?
err=$(cat "$PHX_TEST_DIR/o1.err")
note "$err"
[[ ! -e $shared/pwned ]] || fail "the command ran with the other user's PATH"
[[ $rc != 0 ]] || fail "phx alloc exited 0"
assert_contains "$err" "was replaced or removed"
wait_job "$id" CANCELLED 30
note ok
