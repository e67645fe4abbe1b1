#!/usr/bin/env bash
# timeout: 90
# SIGHUP reloads the configuration: the master, batchd and an agent apply
# their reloadable keys (operators, log levels) without a restart and
# report the keys that need one; a wrong file (a syntax error, an unknown
# operator) changes nothing and every daemon keeps running, its jobs
# included.
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
mpid=$(daemon_pid master)
bpid=$(daemon_pid batchd)
apid=$(daemon_pid agent-n1)
# the daemons' file is edited below; phx reads a copy that stays good
conf=$PHX_CONFIG
good=$PHX_TEST_DIR/good.conf
cp "$conf" "$good"
export PHX_CONFIG=$good

id=$(as_user phxu1 phx submit --parsable -t 5 --wrap "'sleep 309'")
wait_job "$id" RUNNING 30

# phxu2 is no operator: another's job does not exist for them, and the
# master refuses to drain a node.
not_operator() {
    expect_fail as_user phxu2 phx cancel "$id"
    assert_contains "$PHX_OUT" "invalid job id $id"
    expect_fail as_user phxu2 phx nodes drain n1 --reason test
    assert_contains "$PHX_OUT" "is not an operator"
}
not_operator

# hup DAEMON... : SIGHUP them and wait for each log to say TEXT again
hup() { # TEXT NAME...
    local text=$1 name n
    shift
    for name in "$@"; do
        n=$(grep -c -F -- "$text" "$PHX_TEST_DIR/$name.log" || true)
        kill -HUP "$(daemon_pid "$name")"
        wait_for 10 sh -c "[ \$(grep -c -F -- '$text' '$PHX_TEST_DIR/$name.log') -gt $n ]"
    done
}

# A syntax error: each daemon names file:line and keeps what it runs with.
cp "$good" "$conf"
printf 'oops = ;\n' >>"$conf"
line=$(wc -l <"$conf")
hup "configuration not reloaded" master batchd agent-n1
for d in master batchd agent-n1; do
    assert_contains "$(grep "configuration not reloaded" "$PHX_TEST_DIR/$d.log" | tail -1)" \
        "$conf:$line:"
done
for p in "$mpid" "$bpid" "$apid"; do alive "$p" || fail "pid $p died of a wrong file"; done
not_operator

# An unknown user among the operators: refused by name, nothing applied.
sed '/^batchd: {/a\    operators = ["root", "phxu2", "nosuchuser"];' "$good" >"$conf"
hup "configuration not reloaded" batchd
assert_contains "$(grep "configuration not reloaded" "$PHX_TEST_DIR/batchd.log" | tail -1)" \
    'batchd.operators: unknown user "nosuchuser"'
not_operator

# The right file: operators and log levels apply at once, a key read at
# start only is named and left alone.
sed -e '/^master: {/a\    operators = ["root", "phxu2"];\n    log_level = "debug";' \
    -e '/^batchd: {/a\    operators = ["root", "phxu2"];\n    priority_weight_age = 10;\n    kill_grace = 3;' \
    -e '/^agent: {/a\    log_level = "debug";' "$good" >"$conf"
hup "reloaded: applied" master batchd agent-n1
assert_contains "$(grep "reloaded: applied" "$PHX_TEST_DIR/master.log" | tail -1)" \
    "applied master.operators, master.log_level"
reload=$(grep "reloaded: applied" "$PHX_TEST_DIR/batchd.log" | tail -1)
assert_contains "$reload" "applied batchd.operators, batchd.priority_weight_age"
assert_contains "$reload" "(restart the daemon to apply): batchd.kill_grace"
assert_contains "$(grep "reloaded: applied" "$PHX_TEST_DIR/agent-n1.log" | tail -1)" \
    "applied agent.log_level"
as_user phxu2 phx nodes drain n1 --reason reload-test
assert_eq True "$(node_field n1 drained)"
phx nodes resume n1
as_user phxu2 phx cancel "$id"
wait_job "$id" CANCELLED 20
assert_eq "$(id -u phxu2)" "$(psql_q "SELECT cancel_uid FROM jobs WHERE id = $id")"
# at debug level the master logs an agent's connection
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n2 up
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" ": debug: connection from"
wait_for 10 grep -q ": debug: " "$PHX_TEST_DIR/agent-n1.log"
for p in "$mpid" "$bpid" "$apid"; do alive "$p" || fail "pid $p died"; done

# Back to the file as it was: phxu2 is no operator again.
cp "$good" "$conf"
hup "reloaded: applied" batchd master
id=$(as_user phxu1 phx submit --parsable -t 5 --wrap "'sleep 309'")
wait_job "$id" RUNNING 30
not_operator
phx cancel "$id"
wait_job "$id" CANCELLED 20
note ok
