#!/usr/bin/env bash
# timeout: 90
# Whatever way a test ends (failure, success, a signal), the cleanup stops its
# PostgreSQL, its munged and its daemons, even one that ignores SIGTERM, and
# keeps the test dir only on failure.
. "$(dirname "$0")/lib.sh"

cat >t9004-inner.sh <<EOF_INNER
#!/usr/bin/env bash
# timeout: 60
. "$PHX_SRC/tests/e2e/lib.sh"
start_postgres
postgres_pid >"$PHX_TEST_DIR/pg.pid"
start_munged
daemon_pid munge >"$PHX_TEST_DIR/munged.pid"
start_daemon plain sh -c 'echo plain daemon log line; exec sleep 1000'
echo "\$PHX_LAST_PID" >"$PHX_TEST_DIR/plain.pid"
if [[ \$1 == fail ]]; then
    start_daemon stubborn sh -c 'trap "" TERM; while :; do sleep 1; done'
    echo "\$PHX_LAST_PID" >"$PHX_TEST_DIR/stubborn.pid"
fi
echo "\$PHX_TEST_DIR" >"$PHX_TEST_DIR/inner.dir"
psql -X -q -c 'CREATE TABLE t (x int)'
pgrep -P "\$(postgres_pid)" >"$PHX_TEST_DIR/backends.pids"
case \$1 in
fail) false ;;
pass) : ;;
signal) touch "$PHX_TEST_DIR/ready"; sleep 1000 ;;
esac
EOF_INNER

run_inner() {
    rm -f pg.pid munged.pid plain.pid stubborn.pid backends.pids inner.dir ready
    inner_rc=0
    if [[ $1 == signal ]]; then
        # own process group, signalled as a whole like Ctrl-C or the runner do
        PHX_TMPDIR=$PHX_TEST_DIR setsid bash t9004-inner.sh "$1" >inner.out 2>&1 &
        local pid=$!
        wait_for 30 test -e ready
        kill -TERM -- "-$pid"
        wait "$pid" || inner_rc=$?
    else
        PHX_TMPDIR=$PHX_TEST_DIR bash t9004-inner.sh "$1" >inner.out 2>&1 || inner_rc=$?
    fi
    inner_out=$(cat inner.out)
    printf '%s\n' "$inner_out" | sed 's/^/  inner| /' >&2
    inner_dir=$(cat inner.dir)
}

assert_all_gone() {
    local what pid
    for what in pg munged plain stubborn; do
        [[ $what != stubborn || -e stubborn.pid ]] || continue
        pid=$(cat "$what.pid")
        [[ -n $pid ]] || fail "the inner test did not record its $what pid"
        if alive "$pid"; then
            fail "$1: the inner test's $what (pid $pid) survived: $(ps -o args= -p "$pid")"
        fi
    done
    local left
    left=$(pgrep -af -- "$inner_dir" || true)
    assert_eq "" "$left" "$1: processes naming $inner_dir"
    (($(wc -l <backends.pids) >= 3)) || fail "$1: too few postgres backends recorded"
    for pid in $(cat backends.pids); do
        if alive "$pid"; then fail "$1: postgres backend $pid survived: $(ps -o args= -p "$pid")"; fi
    done
}

note "case 1: the test fails (and has a daemon that ignores SIGTERM)"
run_inner fail
assert_eq 1 "$inner_rc" "exit status of a failed test"
assert_contains "$inner_out" "t9004-inner.sh:18: command failed (exit 1): false" "ERR report"
assert_contains "$inner_out" "plain daemon log line" "dump_logs"
assert_contains "$inner_out" "test dir kept: $inner_dir"
assert_contains "$inner_out" "ignored SIGTERM for 5s, sending SIGKILL"
test -d "$inner_dir" || fail "the failed test's dir was removed"
assert_all_gone "failed test"

note "case 2: the test passes"
run_inner pass
assert_eq 0 "$inner_rc" "exit status of a passing test"
assert_not_contains "$inner_out" "test dir kept"
test ! -e "$inner_dir" || fail "the passing test's dir $inner_dir was kept"
assert_all_gone "passed test"

note "case 3: the test is terminated by a signal"
run_inner signal
assert_eq 143 "$inner_rc" "exit status of a terminated test"
assert_contains "$inner_out" "caught SIGTERM"
assert_contains "$inner_out" "test dir kept: $inner_dir"
assert_all_gone "terminated test"
