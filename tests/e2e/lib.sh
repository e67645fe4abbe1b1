# tests/e2e/lib.sh: the end-to-end test harness.  Every tests/e2e/tNNNN-*.sh
# starts with
#
#     #!/usr/bin/env bash
#     # timeout: 60
#     . "$(dirname "$0")/lib.sh"
#
# and then gets: set -euo pipefail, a private directory $PHX_TEST_DIR (removed
# on success, kept and printed on failure), a watchdog that ends the test after
# the "# timeout:" seconds (default 300), and a cleanup trap that stops every
# daemon, PostgreSQL cluster and munged the test started, however it ends.
# See doc/testing.md for the functions.

set -euo pipefail
set -E # the ERR trap also fires inside functions and subshells

PHX_TEST_NAME=$(basename "$0" .sh)
PHX_SRC=${PHX_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
case ${PHX_BUILD:-} in
/*) ;;
*)
    PHX_BUILD=${BUILD:-build}
    [[ $PHX_BUILD == /* ]] || PHX_BUILD=$PHX_SRC/$PHX_BUILD
    ;;
esac
export PHX_SRC PHX_BUILD
export PATH="$PHX_BUILD/bin:$PATH"

PHX_TIMEOUT=""
if [[ -f $0 ]]; then
    PHX_TIMEOUT=$(sed -n 's/^# *timeout: *\([0-9][0-9]*\).*/\1/p' "$0" | head -n 1)
fi
PHX_TIMEOUT=${PHX_TIMEOUT:-300}
# after the timeout, how long the test's own cleanup may take
PHX_WATCHDOG_GRACE=${PHX_WATCHDOG_GRACE:-60}
# For the harness's own tests (t0003): when set, the timeout counts from when
# this file exists (the test's command is ready to be timed out), not from
# the start.  Not passed on to nested tests.
PHX_WATCHDOG_START=${PHX_WATCHDOG_START_FILE:-}
unset PHX_WATCHDOG_START_FILE

# ---------------------------------------------------------------------------
# Messages and assertions

note() {
    printf '[%s] %s\n' "$(date +%T)" "$*" >&2
}

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    if [[ "$1" != "$2" ]]; then
        printf 'FAIL: assert_eq%s\n  expected: [%s]\n  actual:   [%s]\n' \
            "${3:+: $3}" "$1" "$2" >&2
        exit 1
    fi
}

# assert_contains HAYSTACK NEEDLE [WHAT]   (fixed string, not a pattern)
assert_contains() {
    if [[ "$1" != *"$2"* ]]; then
        printf 'FAIL: assert_contains%s\n  expected to find: [%s]\n  in:\n%s\n' \
            "${3:+: $3}" "$2" "$(printf '%s\n' "$1" | tail -n 30 | sed 's/^/    | /')" >&2
        exit 1
    fi
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
    if [[ "$1" == *"$2"* ]]; then
        printf 'FAIL: assert_not_contains%s\n  did not expect: [%s]\n  in:\n%s\n' \
            "${3:+: $3}" "$2" "$(printf '%s\n' "$1" | tail -n 30 | sed 's/^/    | /')" >&2
        exit 1
    fi
}

# expect_fail CMD...: CMD must exit non-zero, but not crash (signal), not 126
# or 127 (cannot run).  Sets PHX_OUT (stdout+stderr) and PHX_RC.
expect_fail() {
    PHX_RC=0
    PHX_OUT=$("$@" 2>&1) || PHX_RC=$?
    printf '%s\n' "$PHX_OUT" | sed 's/^/  > /' >&2
    if ((PHX_RC == 0)); then
        fail "expected failure, but it succeeded: $*"
    elif ((PHX_RC == 126 || PHX_RC == 127)); then
        fail "could not run (exit $PHX_RC): $*"
    elif ((PHX_RC > 128)); then
        fail "killed by signal $((PHX_RC - 128)) instead of failing: $*"
    fi
    note "failed as expected (exit $PHX_RC): $*"
}

# run_ok CMD...: like expect_fail for success; sets PHX_OUT and PHX_RC.
run_ok() {
    PHX_RC=0
    PHX_OUT=$("$@" 2>&1) || PHX_RC=$?
    if ((PHX_RC != 0)); then
        printf '%s\n' "$PHX_OUT" | sed 's/^/  > /' >&2
        fail "exit $PHX_RC: $*"
    fi
}

# wait_for TIMEOUT_S CMD...: retry CMD every 0.1 s until it succeeds.
# Returns 1 (the test fails under set -e) with a message on timeout.
wait_for() {
    local timeout=$1 out=""
    shift
    local deadline=$((SECONDS + timeout))
    while :; do
        if out=$("$@" 2>&1); then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            printf 'FAIL: wait_for: timed out after %ss waiting for: %s\n' "$timeout" "$*" >&2
            [[ -z $out ]] || printf '%s\n' "$out" | tail -n 20 | sed 's/^/  last output: /' >&2
            return 1
        fi
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------
# Processes

# alive PID: the process exists and is not a zombie.
alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# group_alive PGID: some live (non-zombie) process is in process group PGID.
group_alive() {
    ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^[ZX]/ { f = 1 } END { exit !f }'
}

# descendants PID [SKIP]: every descendant of PID, parents before children,
# leaving out SKIP and its descendants.
descendants() {
    local c
    for c in $(pgrep -P "$1" || true); do
        [[ $c != "${2:-}" ]] || continue
        echo "$c"
        descendants "$c" "${2:-}"
    done
}

# start_daemon NAME CMD...: run CMD in the background in its own session
# (so its whole process tree can be killed), output to $PHX_TEST_DIR/NAME.log.
# Sets PHX_LAST_PID; daemon_pid NAME prints the pid later.
start_daemon() {
    local name=$1
    shift
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || fail "start_daemon: bad name '$name'"
    if [[ -n $(daemon_pid "$name") ]]; then
        fail "start_daemon: a daemon named '$name' is already running"
    fi
    # Not a process group leader here, so setsid does not fork: $! is the
    # daemon itself and its pid is also its session and process group id.
    setsid "$@" >>"$PHX_TEST_DIR/$name.log" 2>&1 </dev/null &
    PHX_LAST_PID=$!
    echo "$PHX_LAST_PID $name" >>"$PHX_STATE/daemons"
    note "started $name (pid $PHX_LAST_PID): $*"
}

# daemon_pid NAME: the pid of the last daemon started as NAME that is alive.
daemon_pid() {
    [[ -f $PHX_STATE/daemons ]] || return 0
    local pid n found=""
    while read -r pid n; do
        if [[ $n == "$1" ]] && alive "$pid"; then found=$pid; fi
    done <"$PHX_STATE/daemons"
    [[ -z $found ]] || echo "$found"
}

# kill_group PGID [TIMEOUT_S]: SIGTERM the group, SIGKILL it if still alive.
kill_group() {
    local pgid=$1 timeout=${2:-5} i
    kill -TERM -- "-$pgid" 2>/dev/null || true
    kill -CONT -- "-$pgid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        group_alive "$pgid" || return 0
        sleep 0.1
    done
    note "process group $pgid ignored SIGTERM for ${timeout}s, sending SIGKILL"
    kill -KILL -- "-$pgid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        group_alive "$pgid" || return 0
        sleep 0.1
    done
    return 1
}

# stop_daemon NAME [SIGNAL]: send SIGNAL (TERM) to NAME's process group, wait
# up to 10 s (then SIGKILL).  Returns the daemon's exit status when the test
# shell started it (128+N when a signal N killed it).
stop_daemon() {
    local name=$1 sig=${2:-TERM} pid i rc=0
    pid=$(daemon_pid "$name")
    [[ -n $pid ]] || fail "stop_daemon: no running daemon named '$name'"
    kill -s "$sig" -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        group_alive "$pid" || break
        sleep 0.1
    done
    if group_alive "$pid"; then
        note "$name (pid $pid) still running 10s after SIG$sig, killing it"
        kill_group "$pid" 1 || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}

# ---------------------------------------------------------------------------
# Ports

# free_port: a loopback TCP port nobody uses, never the same twice in a test.
free_port() {
    local lo p i
    lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    ((lo > 11000)) || lo=32768
    touch "$PHX_STATE/ports"
    for ((i = 0; i < 500; i++)); do
        # below the ephemeral range, so no outgoing connection takes it meanwhile
        p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
        grep -qx "$p" "$PHX_STATE/ports" && continue
        [[ -z $(ss -Hantu "( sport = :$p )" 2>/dev/null) ]] || continue
        echo "$p" >>"$PHX_STATE/ports"
        echo "$p"
        return 0
    done
    fail "free_port: no free port found"
}

# port_listening PORT: something listens on TCP PORT (any address).
port_listening() {
    [[ -n $(ss -Hltn "( sport = :$1 )" 2>/dev/null) ]]
}

# ---------------------------------------------------------------------------
# PostgreSQL

pg_bindir() {
    if [[ -n ${PHX_PG_BINDIR:-} ]]; then
        echo "$PHX_PG_BINDIR"
        return
    fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -x $d/initdb ]] || fail "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
    echo "$d"
}

# as_pg CMD...: run CMD as the postgres user when we are root.
as_pg() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# start_postgres [NAME]: initdb and start a private cluster in
# $PHX_TEST_DIR/NAME (default "pg"), unix socket only, and create database
# phalanx.  Tests run it with fsync and synchronous_commit off (a crash of the
# test machine loses nothing worth keeping); PHX_PG_DURABLE=1 keeps both on,
# as a production server runs, for benchmarks that claim durable rates;
# PHX_PG_EXTRA is appended to postgresql.conf (e.g. to profile statements).
# Exports PHX_DSN ("host=DIR port=5432 dbname=phalanx user=postgres") and
# PGHOST, PGPORT, PGUSER, PGDATABASE so that plain psql reaches it.
start_postgres() {
    local name=${1:-pg} bindir dir port=5432 durable=off
    [[ ${PHX_PG_DURABLE:-0} == 1 ]] && durable=on
    bindir=$(pg_bindir)
    dir=$PHX_TEST_DIR/$name
    [[ ! -e $dir ]] || fail "start_postgres: $dir already exists"
    mkdir -m 0700 "$dir"
    : >"$PHX_TEST_DIR/$name.log"
    if ((EUID == 0)); then
        chown postgres: "$dir" "$PHX_TEST_DIR/$name.log"
    fi
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$PHX_TEST_DIR/$name-initdb.out" 2>&1 ||
        {
            cat "$PHX_TEST_DIR/$name-initdb.out" >&2
            fail "initdb failed"
        }
    cat >>"$dir/data/postgresql.conf" <<EOF

# phalanx e2e harness
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
fsync = $durable
synchronous_commit = $durable
full_page_writes = $durable
shared_buffers = 32MB
max_connections = 200
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
${PHX_PG_EXTRA:-}
EOF
    echo "$dir/data" >>"$PHX_STATE/postgres"
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$PHX_TEST_DIR/$name.log" -w -t 60 start \
        >/dev/null || fail "could not start PostgreSQL in $dir (see $name.log)"
    as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres \
        -d postgres -c 'CREATE DATABASE phalanx' >/dev/null
    export PHX_PG_DIR=$dir
    export PHX_DSN="host=$dir port=$port dbname=phalanx user=postgres"
    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=phalanx
    note "started PostgreSQL $name: $PHX_DSN"
}

# postgres_pid [NAME]: the postmaster's pid, empty when it is not running.
postgres_pid() {
    local f=$PHX_TEST_DIR/${1:-pg}/data/postmaster.pid pid
    [[ -f $f ]] || return 0
    pid=$(head -n 1 "$f")
    if [[ -n $pid ]] && alive "$pid"; then echo "$pid"; fi
}

stop_postgres_dir() {
    local data=$1 pid i c
    [[ -f $data/postmaster.pid ]] || return 0
    pid=$(head -n 1 "$data/postmaster.pid")
    as_pg "$(pg_bindir)/pg_ctl" -D "$data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
    if [[ -n $pid ]] && alive "$pid"; then
        note "PostgreSQL in $data (pid $pid) did not stop, killing it"
        for c in $(descendants "$pid"); do kill -KILL "$c" 2>/dev/null || true; done
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive "$pid" || return 0
            sleep 0.1
        done
        return 1
    fi
}

# stop_postgres [NAME]: stop it now (pg_ctl -m immediate).
stop_postgres() {
    stop_postgres_dir "$PHX_TEST_DIR/${1:-pg}/data"
}

# ---------------------------------------------------------------------------
# munge

# munge_socket [NAME]: the socket of the munged started as NAME.
munge_socket() {
    echo "$PHX_TEST_DIR/${1:-munge}/socket"
}

# start_munged [NAME]: a private munged (default name "munge") with its own
# freshly generated key.  Each NAME has its own key, so a second one serves
# "wrong key" tests.  The default one exports PHX_MUNGE_SOCKET.
start_munged() {
    local name=${1:-munge} dir
    dir=$PHX_TEST_DIR/$name
    [[ ! -e $dir ]] || fail "start_munged: $dir already exists"
    mkdir -m 0755 "$dir" # munged refuses a group/world-writable socket dir
    dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$dir/munge.key"
    start_daemon "$name" munged --foreground \
        --socket="$dir/socket" --key-file="$dir/munge.key" \
        --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" \
        --seed-file="$dir/munged.seed"
    wait_for 10 test -S "$dir/socket" || fail "munged $name did not create its socket"
    if [[ $name == munge ]]; then
        export PHX_MUNGE_SOCKET=$dir/socket
    fi
}

# ---------------------------------------------------------------------------
# Logs, watchdog, cleanup

# dump_logs: the tail of every log of the test (done on failure automatically).
dump_logs() {
    local f
    while IFS= read -r f; do
        [[ -s $f ]] || continue
        printf -- '----- %s (last 40 lines) -----\n' "${f#"$PHX_TEST_DIR"/}" >&2
        tail -n 40 "$f" >&2
    done < <(find "$PHX_TEST_DIR" -maxdepth 1 -name '*.log' -type f 2>/dev/null | sort)
}

# kill_everything: stop what this test started.  Used by cleanup and by the
# watchdog as a last resort.
# Tasks that agents started live in the test's own cgroup subtree (phx.sh
# sets agent.cgroup_root to phx-test-<test dir>); they survive their agent by
# design, so they are killed here and the subtree removed.
kill_test_cgroups() {
    local root pids i
    for root in /sys/fs/cgroup/*/"phx-test-$(basename "$PHX_TEST_DIR")"; do
        [[ -d $root ]] || continue
        for ((i = 0; i < 20; i++)); do
            pids=$(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null)
            [[ -n $pids ]] || break
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null
            sleep 0.1
        done
        find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
}

kill_everything() {
    local pid name data c
    local -a pids=()
    if [[ -f $PHX_STATE/daemons ]]; then
        # newest first: daemons that use PostgreSQL or munged stop before them
        while read -r pid name; do pids=("$pid" "${pids[@]}"); done <"$PHX_STATE/daemons"
        for pid in "${pids[@]}"; do
            if group_alive "$pid"; then
                kill_group "$pid" 5 || note "could not kill process group $pid"
            fi
        done
    fi
    if [[ -f $PHX_STATE/postgres ]]; then
        while read -r data; do
            stop_postgres_dir "$data" || note "could not stop PostgreSQL in $data"
        done <"$PHX_STATE/postgres"
    fi
    # whatever else the test shell started (background jobs, stray children)
    for c in $(descendants "$PHX_MAIN_PID" "${PHX_WATCHDOG_PID:-}"); do
        [[ $c != "$BASHPID" ]] || continue
        kill -KILL "$c" 2>/dev/null || true
    done
    kill_test_cgroups
}

phx_watchdog() {
    set +eu
    trap - ERR
    PHX_WATCHDOG_PID=$BASHPID
    # on TERM also end the sleep, even one started but not yet in $sp
    trap 'kill $(pgrep -P "$PHX_WATCHDOG_PID") 2>/dev/null; exit 0' TERM
    while [[ -n $PHX_WATCHDOG_START && ! -e $PHX_WATCHDOG_START ]]; do
        sleep 0.05 &
        sp=$!
        wait "$sp"
    done
    sleep "$PHX_TIMEOUT" &
    sp=$!
    wait "$sp"
    echo "$PHX_TIMEOUT" >"$PHX_STATE/timed-out"
    printf 'TIMEOUT: %s exceeded its %ss timeout\n' "$PHX_TEST_NAME" "$PHX_TIMEOUT" >&2
    kill -TERM "$PHX_MAIN_PID" 2>/dev/null
    # the shell runs its trap only once its foreground command ends: end it,
    # and whatever that command started (a nested pipeline, a sub-test)
    for c in $(descendants "$PHX_MAIN_PID" "$PHX_WATCHDOG_PID"); do
        kill -TERM "$c" 2>/dev/null
    done
    sleep "$PHX_WATCHDOG_GRACE" &
    sp=$!
    wait "$sp"
    if kill -0 "$PHX_MAIN_PID" 2>/dev/null; then
        # From here on the test shell has no say: once kill_everything ends
        # its foreground command, it runs its traps and its cleanup, whose
        # SIGTERM must not stop us before we kill it.
        trap '' TERM
        echo "TIMEOUT: cleanup did not finish in ${PHX_WATCHDOG_GRACE}s, killing everything" >&2
        kill_everything
        echo "test dir kept: $PHX_TEST_DIR" >&2
        kill -KILL "$PHX_MAIN_PID" 2>/dev/null
    fi
    exit 0
}

phx_on_signal() {
    if [[ -f $PHX_STATE/timed-out ]]; then
        exit 124
    fi
    note "caught SIG$1"
    case $1 in
    INT) exit 130 ;;
    HUP) exit 129 ;;
    *) exit 143 ;;
    esac
}

phx_on_error() {
    local rc=$?
    # only the test shell reports (a failing $(...) is reported where it is
    # used), naming the innermost failing command
    [[ $BASHPID == "$PHX_MAIN_PID" ]] || return 0
    printf 'FAIL: %s:%s: command failed (exit %s): %s\n' \
        "${BASH_SOURCE[1]:-$0}" "${BASH_LINENO[0]}" "$rc" "$BASH_COMMAND" >&2
}

phx_cleanup() {
    local rc=$?
    trap - EXIT ERR
    trap '' INT TERM HUP # a second signal must not cut the cleanup short
    set +eu
    if [[ -f $PHX_STATE/timed-out ]]; then
        rc=124
    fi
    if [[ -n ${PHX_WATCHDOG_PID:-} ]]; then
        kill -TERM "$PHX_WATCHDOG_PID" 2>/dev/null
        wait "$PHX_WATCHDOG_PID" 2>/dev/null
    fi
    kill_everything
    [[ -n ${PHX_RUN_DIR:-} ]] && rm -rf "$PHX_RUN_DIR"
    if ((rc != 0)); then
        dump_logs
    fi
    if ((rc != 0)) || [[ -n ${PHX_KEEP:-} ]]; then
        echo "test dir kept: $PHX_TEST_DIR" >&2
    else
        rm -rf "$PHX_TEST_DIR"
    fi
    if ((rc == 0)); then
        note "$PHX_TEST_NAME: ok"
    else
        note "$PHX_TEST_NAME: FAILED (exit $rc)"
    fi
    exit "$rc"
}

# ---------------------------------------------------------------------------
# Set-up, run when sourced

PHX_MAIN_PID=$$
PHX_TMPROOT=${PHX_TMPDIR:-${TMPDIR:-/tmp}}
PHX_TEST_DIR=$(mktemp -d "$PHX_TMPROOT/${PHX_TEST_NAME%%-*}.XXXXXX")
chmod 0711 "$PHX_TEST_DIR" # PostgreSQL runs as postgres and must get through
PHX_STATE=$PHX_TEST_DIR/.phx
mkdir "$PHX_STATE"
# Records of running tasks belong on a tmpfs, as /run is on a real node
# (agent.run_dir); /dev/shm when it is one, else inside the test dir.
if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs && -w /dev/shm ]]; then
    PHX_RUN_DIR=$(mktemp -d "/dev/shm/phx-${PHX_TEST_NAME%%-*}.XXXXXX")
else
    PHX_RUN_DIR=$PHX_TEST_DIR/run
    mkdir "$PHX_RUN_DIR"
fi
export PHX_TEST_DIR PHX_RUN_DIR
unset PHX_DSN PHX_MUNGE_SOCKET PHX_PG_DIR PGHOST PGPORT PGUSER PGDATABASE

trap phx_cleanup EXIT
trap 'phx_on_signal INT' INT
trap 'phx_on_signal TERM' TERM
trap 'phx_on_signal HUP' HUP
trap phx_on_error ERR

phx_watchdog &
PHX_WATCHDOG_PID=$!

note "$PHX_TEST_NAME: dir $PHX_TEST_DIR, timeout ${PHX_TIMEOUT}s"
cd "$PHX_TEST_DIR"
