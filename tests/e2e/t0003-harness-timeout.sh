#!/usr/bin/env bash
# timeout: 60
# The watchdog ends a test that exceeds its "# timeout:" and the cleanup still
# kills what it started; a test that also ignores SIGTERM is killed anyway.
. "$(dirname "$0")/lib.sh"

# An inner test: starts a daemon and a plain background job, then hangs.
cat >t9003-inner.sh <<EOF_INNER
#!/usr/bin/env bash
# timeout: 3
. "$PHX_SRC/tests/e2e/lib.sh"
start_daemon sleeper sh -c 'echo sleeper is up; exec sleep 1000'
echo "\$PHX_LAST_PID" >"$PHX_TEST_DIR/daemon.pid"
sleep 1001 &
echo "\$!" >"$PHX_TEST_DIR/job.pid"
echo "\$PHX_TEST_DIR" >"$PHX_TEST_DIR/inner.dir"
eval "\${HANG_CMD:-: >$PHX_TEST_DIR/ready; sleep 1002}"
echo "not reached"
EOF_INNER

# The inner test's timeout counts from when its hanging command is ready: it
# creates "ready" once it is (a signal trap set, say).  Counted from the
# inner test's start, it could expire first on a loaded machine: a SIGTERM
# before the command's trap is not the case being tested.
run_inner() {
    rm -f daemon.pid job.pid inner.dir ready
    local t0=$SECONDS
    inner_rc=0
    PHX_TMPDIR=$PHX_TEST_DIR PHX_WATCHDOG_START_FILE=$PHX_TEST_DIR/ready \
        bash t9003-inner.sh >inner.out 2>&1 || inner_rc=$?
    inner_secs=$((SECONDS - t0))
    inner_out=$(cat inner.out)
    printf '%s\n' "$inner_out" | sed 's/^/  inner| /' >&2
}

assert_gone() {
    local what pid
    for what in daemon job; do
        pid=$(cat "$what.pid")
        [[ -n $pid ]] || fail "the inner test did not record its $what pid"
        if alive "$pid"; then
            fail "the inner test's $what (pid $pid) survived: $(ps -o args= -p "$pid")"
        fi
    done
}

note "case 1: the watchdog interrupts a hanging foreground command"
run_inner
assert_eq 124 "$inner_rc" "exit status of a timed-out test"
((inner_secs >= 3 && inner_secs <= 15)) || fail "timed out after ${inner_secs}s, expected ~3s"
assert_contains "$inner_out" "TIMEOUT: t9003-inner exceeded its 3s timeout"
assert_not_contains "$inner_out" "not reached"
assert_gone
inner_dir=$(cat inner.dir)
assert_contains "$inner_out" "test dir kept: $inner_dir"
test -d "$inner_dir" || fail "the failed test's dir $inner_dir was removed"
assert_contains "$inner_out" "sleeper is up" "dump_logs on failure"

note "case 2: the foreground command ignores SIGTERM, the watchdog kills it all"
HANG_CMD="sh -c 'trap \"\" TERM; echo \$\$ >$PHX_TEST_DIR/hang.pids; sleep 1003 &
    echo \$! >>$PHX_TEST_DIR/hang.pids; : >$PHX_TEST_DIR/ready; wait; sleep 1004'" \
    PHX_WATCHDOG_GRACE=2 run_inner
assert_eq 137 "$inner_rc" "exit status of a test killed by the watchdog"
((inner_secs >= 5 && inner_secs <= 20)) || fail "killed after ${inner_secs}s, expected ~5s"
assert_contains "$inner_out" "cleanup did not finish in 2s, killing everything"
assert_not_contains "$inner_out" "not reached"
assert_gone
assert_eq 2 "$(wc -l <hang.pids)" "pids recorded by the stubborn command"
for pid in $(cat hang.pids); do
    if alive "$pid"; then fail "the stubborn command's process $pid survived: $(ps -o args= -p "$pid")"; fi
done

note "case 3: the hanging command is a shell that waits for its own child"
# (like a nested test: it runs its TERM trap only once its child has ended)
HANG_CMD="bash -c 'trap \"echo nested shell got SIGTERM; exit 5\" TERM;
    : >$PHX_TEST_DIR/ready; sleep 1005; :'" run_inner
assert_eq 124 "$inner_rc" "exit status of a timed-out test"
((inner_secs >= 3 && inner_secs <= 15)) || fail "timed out after ${inner_secs}s, expected ~3s"
assert_contains "$inner_out" "nested shell got SIGTERM"
assert_gone
