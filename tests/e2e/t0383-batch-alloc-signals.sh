#!/usr/bin/env bash
# timeout: 240
# phx alloc never loses the SIGTERM or SIGHUP that ends an allocation.
# Its handler kept one slot, "the last signal", that the command's loop
# read and then cleared as the command's SIGINT: a SIGINT after the
# SIGTERM (Ctrl-C in the terminal as the batch system's SIGTERM came, or
# one arriving between that read and the clear) left phx alloc and its
# command running, the job holding its nodes until its time limit.  Made
# deterministic here: both signals sent while phx alloc is stopped; on
# SIGCONT Linux runs the SIGTERM handler first, then the SIGINT one.  Then
# SIGHUP likewise, and SIGTERM arriving before the relay announces itself
# with a SIGINT after it (the job is cancelled, the command never runs).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_HEARTBEAT=0.5
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd

home1=$(getent passwd phxu1 | cut -d: -f6)
rm -f "$home1"/.phx-alloc-*.out
granted() { sed -n 's/^.*Granted job allocation \([0-9]*\)$/\1/p' "$1"; }
pending_id() { sed -n 's/^.*Pending job allocation \([0-9]*\)$/\1/p' "$1"; }
gone() { ! alive "$1"; }
# resume PID: SIGCONT to PID and to its parent.  runuser (as_user), like su,
# stops itself when it sees its child stop, and nothing resumes it: it would
# never reap phx alloc, and `wait` on the test's subshell would hang.
resume() {
    local parent
    parent=$(awk '{ print $4 }' "/proc/$1/stat" 2>/dev/null) || parent=
    kill -CONT "$1"
    [[ -z $parent || $parent == 1 ]] || kill -CONT "$parent" 2>/dev/null || true
}

# signals SIG...: sent to phx alloc (the command's parent) while it is
# stopped, then it goes on; it must end and its job be cancelled.
for sigs in "TERM INT" "HUP INT"; do
    err=$PHX_TEST_DIR/${sigs// /-}.err
    rm -f "$home1/allocpid"
    as_user phxu1 "phx alloc -N 1 -t 2 sh -c 'echo \$PPID >allocpid; exec sleep 300'" \
        >/dev/null 2>"$err" &
    apid=$!
    wait_for 60 test -s "$home1/allocpid"
    id=$(granted "$err")
    p=$(cat "$home1/allocpid")
    kill -STOP "$p"
    for s in $sigs; do kill -"$s" "$p"; done
    resume "$p"
    if ! wait_for 20 gone "$p"; then
        kill -TERM "$p" 2>/dev/null || true # not to hold the job for the rest
        fail "phx alloc still runs 20 s after SIG${sigs// / and SIG} (the first lost): $(cat "$err")"
    fi
    rc=0
    wait "$apid" || rc=$?
    note "$sigs: rc $rc: $(cat "$err")"
    [[ $rc != 0 ]] || fail "phx alloc exited 0 after SIG${sigs%% *}"
    wait_job "$id" CANCELLED 30
    assert_contains "$(cat "$err")" "Job allocation $id has been revoked."
done

# SIGTERM then SIGINT while the job is still pending (held): cancelled, the
# command never runs.
err=$PHX_TEST_DIR/held.err
rm -f "$home1/ran"
as_user phxu1 "phx alloc -H -N 1 -t 2 touch ran" >/dev/null 2>"$err" &
apid=$!
wait_for 30 grep -q 'Pending job allocation' "$err"
id=$(pending_id "$err")
p=
for c in $(descendants "$apid"); do
    [[ $(cat "/proc/$c/comm" 2>/dev/null) == phx ]] && p=$c
done
[[ -n $p ]] || fail "no phx alloc process under $apid"
kill -STOP "$p"
kill -TERM "$p"
kill -INT "$p"
resume "$p"
wait_for 20 gone "$p"
rc=0
wait "$apid" || rc=$?
[[ $rc != 0 ]] || fail "phx alloc exited 0 after SIGTERM while pending"
wait_job "$id" CANCELLED 30
[[ ! -e $home1/ran ]] || fail "the command ran"
assert_eq "" "$(ls -A "$home1" | grep '^.phx-alloc-' || true)" "output files left"
note ok
