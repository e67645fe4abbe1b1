#!/usr/bin/env bash
# timeout: 60
# The small helpers: free_port, port_listening, wait_for, the assertions,
# expect_fail, run_ok and stop_daemon do what they say, and fail when they must.
. "$(dirname "$0")/lib.sh"

# Run a helper in a subshell, expecting it to fail: sets out and rc.
must_fail() {
    rc=0
    out=$("$@" 2>&1) || rc=$?
    ((rc != 0)) || fail "expected '$*' to fail, it succeeded: $out"
}

note "free_port: distinct, unused, below the ephemeral range"
declare -A seen=()
lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range)
for i in $(seq 1 40); do
    p=$(free_port)
    [[ $p =~ ^[0-9]+$ ]] || fail "free_port printed '$p'"
    [[ -z ${seen[$p]:-} ]] || fail "free_port handed out $p twice"
    seen[$p]=1
    ((p >= 10000 && p < lo)) || fail "free_port $p outside 10000..$lo"
    if port_listening "$p"; then fail "free_port $p is in use"; fi
done

note "port_listening and wait_for with a real listener"
port=$(free_port)
start_daemon http python3 -m http.server --bind 127.0.0.1 "$port"
wait_for 20 port_listening "$port"
wait_for 10 curl -fsS "http://127.0.0.1:$port/" -o /dev/null
port_listening "$port" || fail "port_listening $port is false with a listener"

note "stop_daemon returns the daemon's exit status"
start_daemon exits3 sh -c 'trap "exit 3" TERM; while :; do sleep 0.1; done'
sleep 0.3
rc=0
stop_daemon exits3 || rc=$?
assert_eq 3 "$rc" "exit status from stop_daemon"
assert_eq "" "$(daemon_pid exits3)" "daemon_pid of a stopped daemon"
must_fail stop_daemon exits3
assert_contains "$out" "no running daemon named 'exits3'"
must_fail start_daemon http sleep 1
assert_contains "$out" "a daemon named 'http' is already running"

note "wait_for times out with a clear message"
t0=$SECONDS
must_fail wait_for 1 sh -c 'echo still not ready; exit 1'
((SECONDS - t0 <= 4)) || fail "wait_for 1 took $((SECONDS - t0))s"
assert_contains "$out" "wait_for: timed out after 1s waiting for: sh -c"
assert_contains "$out" "last output: still not ready"
# CMD runs in a subshell: it keeps state in files, not variables
counter() { echo try >>tries; (($(wc -l <tries) >= 3)); }
wait_for 5 counter
assert_eq 3 "$(wc -l <tries)" "wait_for retries until success"

note "assertions fail with both values"
assert_eq "a b" "a b"
must_fail assert_eq "a b" "a  c" "the thing"
assert_contains "$out" "FAIL: assert_eq: the thing"
assert_contains "$out" "expected: [a b]"
assert_contains "$out" "actual:   [a  c]"
assert_contains "needle in haystack" "in hay"
must_fail assert_contains "haystack" "needle"
assert_contains "$out" "expected to find: [needle]"
must_fail assert_contains "a*c" "b*" # a pattern is not a pattern here
assert_not_contains "haystack" "needle"
must_fail assert_not_contains "haystack" "st"
must_fail fail "custom message"
assert_eq "FAIL: custom message" "$out"

note "expect_fail and run_ok"
expect_fail sh -c 'echo boom >&2; exit 4'
assert_eq 4 "$PHX_RC"
assert_eq "boom" "$PHX_OUT"
must_fail expect_fail true
assert_contains "$out" "expected failure, but it succeeded: true"
must_fail expect_fail sh -c 'kill -SEGV $$'
assert_contains "$out" "killed by signal 11"
must_fail expect_fail /nonexistent/command
assert_contains "$out" "could not run (exit 127)"
run_ok sh -c 'echo fine'
assert_eq "fine" "$PHX_OUT"
must_fail run_ok sh -c 'echo bad; exit 2'
assert_contains "$out" "exit 2: sh -c"
assert_contains "$out" "> bad"
