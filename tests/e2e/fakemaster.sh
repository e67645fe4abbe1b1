# Shared by the tests that play the master to a real agent (t0210, t0220):
# tools/fake_master.py reads a tasks file, one "MODE TASK-JSON" line per
# launch (the modes are in fake_master.py), and agent n1 registers with it.
#
#   fake_master_setup USER FW   the test user, the set-up, marks/; sets
#                               $port, the master port the agent dials
#   fake_master_task MODE ID [SLEEP]
#                               a line of the tasks file: a task of framework
#                               FW run as USER that sleeps SLEEP seconds (0)
#                               and then touches marks/ID
#   fake_master_run             the fake master on $PHX_TEST_DIR/tasks, agent
#                               n1 against it, until the fake master is done;
#                               sets $out to what it printed (not a subshell:
#                               the harness must know the agent it started)

fake_master_setup() {
    fm_user=$1 fm_fw=$2
    test_user "$fm_user"
    phx_setup
    chmod a+x "$PHX_TEST_DIR"
    mkdir -m 1777 "$PHX_TEST_DIR/marks"
    fm_uid=$(id -u "$fm_user")
    fm_gid=$(id -g "$fm_user")
    port=$(sed -n 's/.*master = "127.0.0.1:\([0-9]*\)".*/\1/p' "$PHX_CONFIG" | head -1)
}

fake_master_task() {
    printf '%s {"task_id":"%s","framework_id":"%s","gang_id":1,"user":"%s","uid":%d,"gid":%d,"argv":["/bin/sh","-c","sleep %s; touch %s/marks/%s"],"env":{"MARK":"%s/marks/%s"},"cwd":"/tmp","stdout":null,"stderr":null,"cores":"0","memory":0,"numas":"0","time_limit":0,"kill_grace":1}\n' \
        "$1" "$2" "$fm_fw" "$fm_user" "$fm_uid" "$fm_gid" "${3:-0}" "$PHX_TEST_DIR" "$2" \
        "$PHX_TEST_DIR" "$2"
}

fake_master_run() {
    python3 "$PHX_SRC/tests/e2e/tools/fake_master.py" "$port" "$PHX_MUNGE_SOCKET" \
        "$PHX_TEST_DIR/tasks" >"$PHX_TEST_DIR/fake.out" 2>&1 &
    local fake=$!
    wait_for 10 port_listening "$port"
    start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
    wait "$fake" || fail "fake master failed: $(cat "$PHX_TEST_DIR/fake.out")"
    out=$(cat "$PHX_TEST_DIR/fake.out")
}
