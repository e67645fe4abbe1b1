#!/usr/bin/env bash
# timeout: 60
# Private munged instances: a credential decodes on the daemon sharing its key,
# is refused by a daemon with another key, and is refused when replayed.
. "$(dirname "$0")/lib.sh"

start_munged
start_munged other

assert_eq "$PHX_TEST_DIR/munge/socket" "$PHX_MUNGE_SOCKET" "PHX_MUNGE_SOCKET"
other=$(munge_socket other)
test -S "$other" || fail "no socket $other"
for name in munge other; do
    key=$PHX_TEST_DIR/$name/munge.key
    assert_eq "400 1024" "$(stat -c '%a %s' "$key")" "mode and size of $key"
done
if cmp -s "$PHX_TEST_DIR/munge/munge.key" "$PHX_TEST_DIR/other/munge.key"; then
    fail "the two munged share a key"
fi

# Encode on the first; decode on it once.
munge -S "$PHX_MUNGE_SOCKET" -s "phalanx payload" -o cred
run_ok unmunge -S "$PHX_MUNGE_SOCKET" -i cred
assert_contains "$PHX_OUT" "STATUS:          Success (0)"
assert_contains "$PHX_OUT" "phalanx payload"
assert_contains "$PHX_OUT" "UID:             $(id -un) ($(id -u))"

# The same credential again is a replay.
expect_fail unmunge -S "$PHX_MUNGE_SOCKET" -i cred
assert_contains "$PHX_OUT" "Replayed credential"

# Another key cannot decode it (a fresh credential, so it is not a replay).
munge -S "$PHX_MUNGE_SOCKET" -s "for the wrong daemon" -o cred2
expect_fail unmunge -S "$other" -i cred2
assert_contains "$PHX_OUT" "Invalid credential"
assert_not_contains "$PHX_OUT" "for the wrong daemon"

# ...and the other daemon decodes its own.
munge -S "$other" -s "other payload" -o cred3
run_ok unmunge -S "$other" -i cred3
assert_contains "$PHX_OUT" "other payload"

# Both are tracked and stop cleanly.
pid=$(daemon_pid other)
[[ -n $pid ]] || fail "daemon_pid other is empty"
stop_daemon other
if alive "$pid"; then fail "munged other ($pid) survived stop_daemon"; fi
expect_fail munge -S "$other" -n
[[ -n $(daemon_pid munge) ]] || fail "stopping 'other' stopped 'munge' too"
