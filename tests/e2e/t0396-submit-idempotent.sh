#!/usr/bin/env bash
# timeout: 300
# Idempotent submissions (doc/batchd.md, "Sending a submission again"): phx
# sends every submission with an Idempotency-Key (PHX_SUBMIT_KEY, else a
# random one) and batchd stores the key with the job, unique per uid.  The
# same key twice: one job, the same id, "Submitted job N" again; another
# user's equal key: another job; the key with another script: 409; a bad
# key: 400 naming the header; an array: the array job id; the same key in
# flight many times at once (the database held): one job; the key sent
# again to the standby after kill -9 of the leader: the same job, one row;
# a leader that hangs (SIGSTOP): phx's submission times out there and is
# sent again, with its key, to the batchd that leads next: one job.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_BATCHD_EXTRA=$'    standby_poll = 0.5;\n    leader_lease = 2;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
A=127.0.0.1:$PHX_BATCHD_PORT B=127.0.0.1:$(free_port)

health() { # ADDR: "CODE BODY" of GET /health
    curl -s -o "$PHX_TEST_DIR/health" -w '%{http_code}' "http://$1/health" || true
    echo " $(cat "$PHX_TEST_DIR/health" 2>/dev/null)"
}
subscribed() { [[ $(health "$1") == 200*'"subscribed":true'* ]]; }
stands_by() { [[ $(health "$1") == 503*'"standby":true'* ]]; }
gone() { ! alive "$1"; }
start_a() { start_daemon batchd phx-batchd -c "$PHX_CONFIG"; }
start_b() { start_daemon batchd-b phx-batchd -c "$PHX_CONFIG" -s "batchd.http_listen=$B"; }
keyed() { psql_q "SELECT count(*) FROM jobs WHERE submit_key = '$1'"; }
# sub USER KEY ARGS...: phx submit --parsable as USER with the key KEY
sub() {
    local u=$1 k=$2
    shift 2
    as_user "$u" PHX_SUBMIT_KEY="$k" phx submit --parsable "$@"
}

start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_a
wait_for 30 subscribed "$A"
start_b
wait_for 30 stands_by "$B"
export PHX_BATCHD="$A,$B"

for u in phxu1 phxu2; do
    home=$(getent passwd $u | cut -d: -f6)
    printf '#!/bin/sh\n#SBATCH -t 1\necho ran\n' >"$home/job.sh"
    printf '#!/bin/sh\n#SBATCH -t 1\necho other\n' >"$home/other.sh"
    chown $u "$home/job.sh" "$home/other.sh"
done
u1=$(id -u phxu1)

# The same key twice: one job, the same id (and the same words).
K1=idem-key-0000000001
out=$(as_user phxu1 PHX_SUBMIT_KEY=$K1 phx submit job.sh)
id=${out#Submitted job }
assert_eq "Submitted job $id" "$(as_user phxu1 PHX_SUBMIT_KEY=$K1 phx submit job.sh)"
assert_eq "$out" "$(as_user phxu1 PHX_SUBMIT_KEY=$K1 phx submit job.sh)" "the same key sent again"
assert_eq 1 "$(psql_q "SELECT count(*) FROM jobs WHERE uid = $u1")"
assert_eq "$K1 1" "$(psql_q "SELECT submit_key, count(submit_digest) FROM jobs WHERE id = $id GROUP BY 1" | tr '|' ' ')"
wait_job "$id" COMPLETED 60
# remembered as long as the job's row: after it ended too
assert_eq "$out" "$(as_user phxu1 PHX_SUBMIT_KEY=$K1 phx submit job.sh)" "the key of an ended job"
# --parsable is another submission (other options): refused
expect_fail sub phxu1 $K1 job.sh
assert_contains "$PHX_OUT" "was already used for another submission (job $id)"

# Another user with the same key: a job of their own.
id2=$(sub phxu2 $K1 job.sh)
[[ $id2 != "$id" ]] || fail "phxu2 got phxu1's job $id"
assert_eq "phxu2" "$(job_field "$id2" user)"
assert_eq 2 "$(keyed $K1)"

# The key again with another script: refused (409), nothing stored.
expect_fail sub phxu1 $K1 other.sh
assert_contains "$PHX_OUT" "Idempotency-Key \"$K1\" was already used for another submission (job $id)"
assert_eq 1 "$(psql_q "SELECT count(*) FROM jobs WHERE uid = $u1")"

# A bad key: 400 naming the header.
expect_fail sub phxu1 short job.sh
assert_contains "$PHX_OUT" "invalid Idempotency-Key header: 5 characters, it must have 16 to 64"
expect_fail sub phxu1 'idem-key-0000000001/x' job.sh
assert_contains "$PHX_OUT" "invalid Idempotency-Key header: character 20 is not"

# An array: the key names the array job.
K2=idem-key-array-0001
ida=$(sub phxu1 $K2 -a 1-3 job.sh)
assert_eq "$ida" "$(sub phxu1 $K2 -a 1-3 job.sh)" "an array sent again"
assert_eq 3 "$(psql_q "SELECT count(*) FROM jobs WHERE array_job_id = $ida")"
assert_eq 1 "$(keyed $K2)"
expect_fail sub phxu1 $K2 -a 1-4 job.sh
assert_contains "$PHX_OUT" "was already used for another submission (job $ida)"
assert_eq 3 "$(psql_q "SELECT count(*) FROM jobs WHERE array_job_id = $ida")"

# The same key in flight many times at once: the jobs table locked for 3 s,
# so that none of them commits before the others arrive.
K3=idem-key-inflight-1
psql_q "BEGIN; LOCK TABLE jobs IN EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT" >/dev/null &
locker=$!
sleep 0.5
pids=()
for i in 1 2 3 4 5 6; do
    sub phxu1 $K3 job.sh >"$PHX_TEST_DIR/inflight.$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a submission in flight failed"; done
ids=$(sort -u "$PHX_TEST_DIR"/inflight.*)
assert_eq 1 "$(wc -l <<<"$ids")" "one id for 6 submissions in flight: $ids"
assert_eq 1 "$(keyed $K3)"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "(Idempotency-Key $K3) waits for the same one in flight"
wait $locker 2>/dev/null || true

# Sent again to the standby after kill -9 of the leader: the same job.
K4=idem-key-failover-1
idf=$(sub phxu1 $K4 job.sh)
stop_daemon batchd KILL || true
wait_for 15 subscribed "$B"
assert_eq "$idf" "$(sub phxu1 $K4 job.sh)" "sent again to the new leader"
assert_eq 1 "$(keyed $K4)"

# A leader that hangs: phx's request times out there (client.timeout 3 s),
# and phx sends it again with its key, to the standby once it leads.
start_a
wait_for 30 stands_by "$A"
sed 's/^client: {/client: {\n    timeout = 3;/' "$PHX_CONFIG" >"$PHX_TEST_DIR/client.conf"
chmod a+r "$PHX_TEST_DIR/client.conf"
K5=idem-key-timeout-01
b=$(daemon_pid batchd-b)
kill -STOP "$b"
t0=$SECONDS
idt=$(as_user phxu1 PHX_CONFIG="$PHX_TEST_DIR/client.conf" PHX_BATCHD="$B,$A" \
    PHX_SUBMIT_KEY=$K5 phx submit --parsable job.sh)
note "submitted after $((SECONDS - t0)) s: job $idt"
kill -KILL "$b"
assert_eq 1 "$(keyed $K5)"
assert_eq "$idt" "$(psql_q "SELECT id FROM jobs WHERE submit_key = '$K5'")"
wait_job "$idt" COMPLETED 60
assert_eq 0 "$(psql_q "SELECT count(*) FROM jobs WHERE submit_key IS NOT NULL AND state <> 'COMPLETED'")"
