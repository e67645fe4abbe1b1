# tests/e2e/phx.sh: Phalanx daemons for end-to-end tests, on top of lib.sh.
#
#   phx_setup                write $PHX_TEST_DIR/phalanx.conf (private PG, munged,
#                            free ports); exports PHX_CONFIG, PHX_MASTER, PHX_MUNGE_SOCKET
#   start_master             start phx-master and wait for /health
#   start_agent NAME SPEC    start phx-agent NAME with topology SPEC (synthetic:...)
#   node_field NAME FIELD    a field of NAME in `phx nodes --json` (jq-like path a.b)
#   wait_node NAME STATE [S] wait until NAME's state is STATE (S seconds, default 20)
#   psql_q SQL               run SQL in the test database, print unaligned rows
#   start_batchd             start phx-batchd and wait until it subscribed
#   wait_job ID STATE [S]    wait until job ID is in STATE (a final one: its row
#                            too); job_field ID FIELD
#   test_user NAME           useradd --create-home NAME unless it exists
#   step_job SCRIPT          run SCRIPT in a job on n1 and n2 ($PHX_TEST_DIR/out, rc)
#
# PHX_MASTER_EXTRA / PHX_AGENT_EXTRA / PHX_BATCHD_EXTRA: more settings for the
# master / agent / batchd groups.

phx_setup() {
    [[ -n ${PHX_DSN:-} ]] || start_postgres
    [[ -n ${PHX_MUNGE_SOCKET:-} ]] || start_munged
    PHX_AGENT_PORT=$(free_port)
    PHX_HTTP_PORT=$(free_port)
    PHX_BATCHD_PORT=$(free_port)
    export PHX_BATCHD="127.0.0.1:$PHX_BATCHD_PORT"
    export PHX_MASTER="127.0.0.1:$PHX_HTTP_PORT"
    export PHX_CONFIG="$PHX_TEST_DIR/phalanx.conf"
    cat >"$PHX_CONFIG" <<CONF
master: {
    agent_listen = "127.0.0.1:$PHX_AGENT_PORT";
    http_listen = "127.0.0.1:$PHX_HTTP_PORT";
    dsn = "$PHX_DSN";
    migrations_dir = "$PHX_SRC/db/migrations";
    munge_socket = "$PHX_MUNGE_SOCKET";
    heartbeat_interval = ${PHX_HEARTBEAT:-0.2};
    heartbeat_missed = 5;
${PHX_MASTER_EXTRA:-}
};
agent: {
    master = "127.0.0.1:$PHX_AGENT_PORT";
    munge_socket = "$PHX_MUNGE_SOCKET";
    reconnect_max = 1.0;
    cgroup_root = "phx-test-$(basename "$PHX_TEST_DIR")";
${PHX_AGENT_EXTRA:-}
};
client: {
    master = "127.0.0.1:$PHX_HTTP_PORT";
    batchd = "127.0.0.1:$PHX_BATCHD_PORT";
    munge_socket = "$PHX_MUNGE_SOCKET";
};
batchd: {
    http_listen = "127.0.0.1:$PHX_BATCHD_PORT";
    master = "127.0.0.1:$PHX_HTTP_PORT";
    dsn = "$PHX_DSN";
    munge_socket = "$PHX_MUNGE_SOCKET";
    compat_dir = "$PHX_SRC/scripts/compat";
    refuse_seconds = 0.5;
${PHX_BATCHD_EXTRA:-}
};
CONF
    chmod a+r "$PHX_CONFIG"
}

# Ready when /health answers; fails at once if the daemon died.
daemon_ready() {
    alive "$1" || fail "$2 exited; see $PHX_TEST_DIR/$2.log"
    curl -sf "$3" -o /dev/null
}

start_master() {
    start_daemon master phx-master -c "$PHX_CONFIG" "$@"
    wait_for 30 daemon_ready "$PHX_LAST_PID" master "http://$PHX_MASTER/health"
}

# start_batchd [ARGS]: start phx-batchd and wait until it is subscribed.
start_batchd() {
    start_daemon batchd phx-batchd -c "$PHX_CONFIG" "$@"
    wait_for 30 batchd_subscribed "$PHX_LAST_PID"
}

batchd_subscribed() {
    alive "$1" || fail "batchd exited; see $PHX_TEST_DIR/batchd.log"
    # not curl | grep -q: under pipefail, curl killed by SIGPIPE (grep left
    # at the first match) would fail the pipeline although the line was there
    local h
    h=$(curl -sf "http://$PHX_BATCHD/health") || return 1
    grep -q '"subscribed": *true' <<<"$h"
}

# batchd_nodes N: batchd knows at least N nodes (lost ones do not count).
# It reads them every 5 s: after a master failover its last read may have
# seen a node lost that the new master has up again.
batchd_nodes() {
    local h
    h=$(curl -sf "http://$PHX_BATCHD/health") || return 1
    [[ $h =~ \"nodes\":\ *([0-9]+) ]] && ((BASH_REMATCH[1] >= $1))
}

# as_user USER CMD...: run the shell command line CMD as USER in their home,
# with the appliance's settings (PATH, PHX_CONFIG, PHX_BATCHD, munged) and
# without the test's PostgreSQL ones (PGUSER & co, PHX_DSN: libpq's default
# user is then the Unix user, as for a real user), in UTC.
as_user() {
    local u=$1
    shift
    runuser -u "$u" -- env -u PGUSER -u PGHOST -u PGPORT -u PGDATABASE -u PHX_DSN \
        PATH="$PATH" PHX_CONFIG="$PHX_CONFIG" PHX_BATCHD="$PHX_BATCHD" \
        PHX_MUNGE_SOCKET="$PHX_MUNGE_SOCKET" TZ=UTC bash -c "cd ~ && $*"
}

# job_field ID FIELD: a field of `phx show ID --json`.
job_field() {
    phx show "$1" --json | python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$2"
}

job_state_is() {
    [[ $(job_field "$1" state 2>/dev/null) == "$2" ]]
}

# wait_job ID STATE [S]: wait until job ID is in STATE.  A final STATE is
# also waited for in the job's row: batchd answers from memory and commits
# the row (its job_events, the accounting that its triggers make) a moment
# later, and a test reading them right after would race with that commit.
# (Not the other states: the row may have moved past them meanwhile.)
wait_job() {
    wait_for "${3:-30}" job_state_is "$1" "$2"
    case $2 in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) ;;
    *) return 0 ;;
    esac
    local id=$1
    # an array task A_T: its own job id (gone from batchd's memory already,
    # keep_ended: its row is not waited for, as before)
    if [[ ! $id =~ ^[0-9]+$ ]]; then
        id=$(job_field "$1" job_id 2>/dev/null) || return 0
    fi
    wait_for "${3:-30}" job_row_state_is "$id" "$2"
}

# job_row_state_is ID STATE: the jobs row of job ID (a number) says STATE.
job_row_state_is() {
    [[ $(psql_q "SELECT state FROM jobs WHERE id = $1") == "$2" ]]
}

# big_behind_stream USER BIG_DIRECTIVES SMALL_SECONDS BEFORE DURING TIMEOUT
#   WANT: the EASY scenario.  USER submits a 1-core job of SMALL_SECONDS
#   (60 s limit) every 0.25 s for BEFORE seconds, then a big job with
#   BIG_DIRECTIVES (#SBATCH text) that prints its nodes and tasks per node,
#   and keeps submitting for DURING seconds; the big job must complete
#   within TIMEOUT seconds printing "big on WANT", batchd must have sent it
#   a gang request, and no later small job may start before it.  Sets big.
big_behind_stream() {
    local user=$1 directives=$2 small=$3 before=$4 during=$5 timeout=$6 want=$7
    local home ids=$PHX_TEST_DIR/small.ids spid
    home=$(getent passwd "$user" | cut -d: -f6)
    printf '#!/bin/sh\n#SBATCH -t 1\nsleep %s\n' "$small" >"$home/small.sh"
    printf '#!/bin/sh\n#SBATCH %s\necho "big on $PHX_JOB_NODELIST $PHX_TASKS_PER_NODE"\n' \
        "$directives" >"$home/big.sh"
    chown "$user" "$home/small.sh" "$home/big.sh"
    _stream() {
        local end=$((SECONDS + $1))
        while ((SECONDS < end)); do
            as_user "$user" phx submit --parsable small.sh >>"$ids" || true
            sleep 0.25
        done
    }
    _stream "$before"
    big=$(as_user "$user" phx submit --parsable big.sh)
    note "big job $big"
    _stream "$during" &
    spid=$!
    wait_job "$big" COMPLETED "$timeout"
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    assert_eq "big on $want" "$(cat "$home/phx-$big.out")"
    note "$(wc -l <"$ids") small jobs submitted, $(psql_q "SELECT count(*) FROM jobs WHERE name = 'small.sh' AND start_time IS NOT NULL") started; big job waited $(psql_q "SELECT extract(epoch FROM start_time - submit_time)::int FROM jobs WHERE id = $big") s"
    assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "job $big: gang request"
    # EASY: no later 1-core job (a minute's limit: it would delay the big
    # job's start) jumped ahead of the reserved big job on the big job's
    # nodes; on nodes it cannot use (another shape) later jobs may run
    local nodes
    nodes=$(phx hostlist "$(psql_q "SELECT node_list FROM jobs WHERE id = $big")" |
        sed "s/.*/'&'/" | paste -sd,)
    assert_eq 0 "$(psql_q "SELECT count(*) FROM jobs s, jobs b WHERE b.id = $big AND s.id > b.id AND s.start_time < b.start_time AND s.node_list IN ($nodes)")"
}

# step_job SCRIPT: a job on agents n1 and n2 made by the example framework:
#   the task on n1 runs SCRIPT (its output in $PHX_TEST_DIR/out, its exit code
#   in $PHX_TEST_DIR/rc); the task on n2 holds its share until n1 is done.
#   STEP_AGENTS=3: on n1, n2 and n3.  STEP_MEM=MB: each task's memory (32).
step_job() {
    local d=$PHX_TEST_DIR
    rm -f "$d/done" "$d/rc" "$d/out"
    cat >"$d/step.sh" <<SH
if [ "\$PHX_NODE" = n1 ]; then
    ( $1 ) >"$d/out" 2>&1
    echo \$? >"$d/rc"
    touch "$d/done"
else
    while [ ! -e "$d/done" ]; do sleep 0.1; done
fi
SH
    "$PHX_BUILD/examples/simple-framework" --agents "${STEP_AGENTS:-2}" --mem "${STEP_MEM:-32}" --cmd "sh $d/step.sh" \
        >"$d/fw.out" 2>&1 || true
    note "$(cat "$d/out" 2>/dev/null)"
}

# test_user NAME: create NAME (with a home) if missing.
test_user() {
    id -u "$1" >/dev/null 2>&1 || useradd --create-home "$1"
}

start_agent() {
    local name=$1 spec=$2
    shift 2
    mkdir -p "$PHX_TEST_DIR/agent-$name"
    start_daemon "agent-$name" phx-agent -c "$PHX_CONFIG" -n "$name" -t "$spec" \
        -d "$PHX_TEST_DIR/agent-$name" -r "$PHX_RUN_DIR/agent-$name" "$@"
}

node_field() {
    phx nodes --json | python3 -c '
import json, sys
name, path = sys.argv[1], sys.argv[2].split(".")
for a in json.load(sys.stdin):
    if a["name"] == name:
        v = a
        for p in path:
            v = v[p]
        print(v)
        break
' "$1" "$2"
}

# GET /state with a web session of `phx ui` (the caller's: root's).
master_state() {
    local token
    token=$(phx ui --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["url"].split("#token=")[1])') ||
        return 1
    curl -sf -H "Authorization: Bearer $token" "http://$PHX_MASTER/state"
}

node_state_is() {
    [[ $(node_field "$1" state 2>/dev/null) == "$2" ]]
}

wait_node() {
    wait_for "${3:-20}" node_state_is "$1" "$2"
}

psql_q() {
    "$(pg_bindir)/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$PHX_DSN" -c "$1"
}

# per_node WHAT BODY: a step's "WHAT rank node" output lines counted per
# node ("1 n1 2 n2").
per_node() {
    sed -n "s/^$1 [0-9]* //p" <<<"$2" | sort | uniq -c | awk '{printf "%s%s %s", s, $1, $2; s=" "}'
}
