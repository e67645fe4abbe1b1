#!/usr/bin/env bash
# timeout: 240
# Master and agents: munge-authenticated registration, heartbeats, LOST,
# re-registration with the same id, bad frames and credentials, drain by
# operators only, master restart; who may read /state, /metrics (munge, a
# web session of `phx ui`, the metrics token) and the web UI.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

metrics_token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$metrics_token" >"$PHX_TEST_DIR/metrics.token"
chmod 600 "$PHX_TEST_DIR/metrics.token"
PHX_MASTER_EXTRA="metrics_token_file = \"$PHX_TEST_DIR/metrics.token\";"
phx_setup
start_master

# Three nodes of different shapes (16 GiB per NUMA domain by default).
start_agent n1 "synthetic:pack:2 numa:2 core:4 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:8 pu:2"
start_agent n3 "synthetic:pack:4 numa:2 core:2 pu:2"
for n in n1 n2 n3; do wait_node $n up; done

out=$(phx nodes)
note "$out"
assert_contains "$out" "NODE             STATE        SOCKETS  NUMA    CORES(F/T)        MEM(F/T)"
line() { printf '%s\n' "$out" | awk -v n="$1" '$1 == n {print $2, $3, $4, $5, $6}'; }
assert_eq "up 2 4 16/16 64G/64G" "$(line n1)" "n1 row"
assert_eq "up 1 1 8/8 16G/16G" "$(line n2)" "n2 row"
assert_eq "up 4 8 16/16 128G/128G" "$(line n3)" "n3 row"
assert_eq 32 "$(node_field n3 resources.pus)"

show=$(phx nodes show n1)
note "$show"
assert_contains "$show" "socket 1"
assert_contains "$show" "numa 3  16G"
assert_contains "$show" "cores: 12 13 14 15"

# Reading the state: nothing without a credential.
M=http://$PHX_MASTER
code() { curl -s -o "$PHX_TEST_DIR/body" -w '%{http_code}' "$@"; }
bearer() { printf 'Authorization: Bearer %s' "$1"; }
assert_eq 401 "$(code "$M/state")" "/state without a credential"
assert_contains "$(cat "$PHX_TEST_DIR/body")" 'missing \"Authorization: Munge <credential>\"'
assert_contains "$(cat "$PHX_TEST_DIR/body")" "phx ui"
assert_eq 401 "$(code "$M/metrics")" "/metrics without a credential"
assert_eq 401 "$(code -H "Authorization: Munge garbage" "$M/state")" "/state with a bad credential"
zeros=$(printf '0%.0s' $(seq 64))
assert_eq 401 "$(code -H "$(bearer "v1.0.9999999999.$zeros")" "$M/state")" "a forged session"
assert_contains "$(cat "$PHX_TEST_DIR/body")" "invalid session token"
assert_eq 401 "$(code -H "$(bearer "$metrics_token")" "$M/state")" "the metrics token reads only /metrics"
assert_eq 401 "$(code -H "$(bearer "${metrics_token%?}")" "$M/metrics")" "a prefix of the metrics token"
assert_eq 401 "$(code -H "$(bearer "${metrics_token}0")" "$M/metrics")" "the metrics token and more"
assert_eq 401 "$(code -H "Authorization: Bearer " "$M/metrics")" "an empty bearer token"
assert_eq 401 "$(code -D "$PHX_TEST_DIR/headers" "$M/metrics")" "/metrics without a credential"
assert_contains "$(cat "$PHX_TEST_DIR/headers")" "WWW-Authenticate: Munge, Bearer"
assert_eq 200 "$(code "$M/health")" "/health stays open"
# Prometheus' bearer token reads /metrics.
metrics=$(curl -sf -H "$(bearer "$metrics_token")" "$M/metrics")
assert_contains "$metrics" 'phx_agents{state="up"} 3'
assert_contains "$metrics" 'phx_cores{kind="total"} 40'
# phx ui: the web UI's address with a session of the caller's uid, which
# reads /state and /metrics and nothing else.
url=$(phx ui)
assert_contains "$url" "http://$PHX_MASTER/#token=v1.0."
token=${url#*#token=}
assert_contains "$(curl -sf -H "$(bearer "$token")" "$M/state")" '"agents"'
assert_contains "$(curl -sf -H "$(bearer "$token")" "$M/metrics")" 'phx_agents{state="up"} 3'
assert_eq 401 "$(code -X POST -H "$(bearer "$token")" -d '{"type":"DRAIN_AGENT","name":"n1","reason":"x"}' "$M/api/v1/operator")" \
    "a session does not act"
# its last character changed (to another one: a MAC that ends in 0 stayed
# the same with a 0, one run in 16)
last=${token: -1}
[[ $last == 0 ]] && other=1 || other=0
assert_eq 401 "$(code -H "$(bearer "${token%?}$other")" "$M/state")" "a session with its MAC changed"
assert_eq 401 "$(code -H "$(bearer "${token/v1.0./v1.1.}")" "$M/state")" "a session moved to another uid"
assert_eq 401 "$(code -H "$(bearer "${token/v1.0./v1.00.}")" "$M/state")" "a session spelt otherwise"
assert_eq 200 "$(code -H "authorization: bearer $token" "$M/state")" "the scheme in any case"
id -u phxtest >/dev/null 2>&1 || useradd --system --no-create-home phxtest
uurl=$(runuser -u phxtest -- env PHX_CONFIG="$PHX_CONFIG" "$PHX_BUILD/bin/phx" ui)
assert_contains "$uurl" "#token=v1.$(id -u phxtest)."
assert_eq 200 "$(code -H "$(bearer "${uurl#*#token=}")" "$M/state")" "any user may read"
# The page itself holds nothing, is not cached and sends the session.
page=$(curl -sf -D "$PHX_TEST_DIR/headers" "$M/")
assert_contains "$page" "<title>Phalanx</title>"
assert_contains "$page" "Authorization:'Bearer '+tok"
assert_contains "$(cat "$PHX_TEST_DIR/headers")" "Cache-Control: no-store"
# The CSP allows the page's script by its hash, and nothing else.
want=$(python3 -c '
import base64, hashlib, sys
page = sys.stdin.read()
s = page[page.index("<script>") + 8:page.index("</script>")]
print(base64.b64encode(hashlib.sha256(s.encode()).digest()).decode())' <<<"$page")
assert_contains "$(cat "$PHX_TEST_DIR/headers")" "Content-Security-Policy: default-src 'none'; script-src 'sha256-$want';"
assert_not_contains "$(cat "$PHX_TEST_DIR/headers")" "script-src 'unsafe-inline'"

# The database holds the same.
assert_eq "n1|2|4|16|up" "$(psql_q "SELECT name, sockets, numas, cores, state FROM agents WHERE name = 'n1'")"
id2=$(node_field n2 id)

# kill -9 an agent: unreachable at once, lost after 5 missed heartbeats (1 s).
stop_daemon agent-n2 KILL || true
start=$(date +%s.%N)
wait_node n2 lost 10
elapsed=$(python3 -c "import time; print(round(time.time() - $start, 2))")
note "n2 lost after $elapsed s"
# (the master's memory first, its row once the store committed)
wait_for 10 eval "[[ \$(psql_q \"SELECT state FROM agents WHERE name = 'n2'\") == lost ]]"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" 'agent "n2": unreachable -> lost (no heartbeat for'

# Restarted, it comes back with the same id.
start_agent n2 "synthetic:pack:1 numa:1 core:8 pu:2"
wait_node n2 up
assert_eq "$id2" "$(node_field n2 id)" "n2 keeps its id"

# A second agent claiming a connected name is refused; n1 stays up.
start_agent n1-dup "synthetic:pack:1 numa:1 core:2 pu:1" -n n1
wait_for 10 grep -q 'agent "n1" is already connected from' "$PHX_TEST_DIR/master.log"
stop_daemon agent-n1-dup || true
assert_eq up "$(node_field n1 state)"

# A credential made with another munge key is refused.
start_munged other
other_sock=$(munge_socket other)
start_agent n4 "synthetic:pack:1 numa:1 core:2 pu:1" --munge-socket "$other_sock"
wait_for 10 grep -q 'agent "n4": munge credential invalid' "$PHX_TEST_DIR/master.log"
stop_daemon agent-n4 || true
assert_eq "" "$(node_field n4 state 2>/dev/null || true)" "n4 never registered"

# Hand-made frames: a valid REGISTER is accepted, its replay refused.
topo=$(phx topo --synthetic "pack:1 numa:1 core:2 pu:1" --json)
nonce=0123456789abcdef
cred=$(munge -S "$PHX_MUNGE_SOCKET" -s "phx-register n5 $nonce")
printf '{"type":"REGISTER","name":"n5","nonce":"%s","cred":"%s","topology":%s}' \
    "$nonce" "$cred" "$topo" >"$PHX_TEST_DIR/reg.json"
wire="$PHX_SRC/tests/e2e/tools/wire.py"
first=$("$wire" "$PHX_AGENT_PORT" "$PHX_TEST_DIR/reg.json")
assert_contains "$first" '"type": "REGISTERED"'
second=$("$wire" "$PHX_AGENT_PORT" "$PHX_TEST_DIR/reg.json")
assert_contains "$second" 'munge credential replayed'
assert_contains "$second" CLOSED
# No credential, a payload bound to another name, garbage, oversized,
# truncated: each refused with a reason and the connection closed.
printf '{"type":"REGISTER","name":"n6","nonce":"%s","topology":{}}' "$nonce" >"$PHX_TEST_DIR/nocred.json"
assert_contains "$("$wire" "$PHX_AGENT_PORT" "$PHX_TEST_DIR/nocred.json")" 'missing field \"cred\"'
cred=$(munge -S "$PHX_MUNGE_SOCKET" -s "phx-register n7 $nonce")
printf '{"type":"REGISTER","name":"n6","nonce":"%s","cred":"%s","topology":%s}' \
    "$nonce" "$cred" "$topo" >"$PHX_TEST_DIR/bound.json"
assert_contains "$("$wire" "$PHX_AGENT_PORT" "$PHX_TEST_DIR/bound.json")" 'payload does not match'
printf '{"type":"HEARTBEAT"}' >"$PHX_TEST_DIR/hb.json"
assert_contains "$("$wire" "$PHX_AGENT_PORT" "$PHX_TEST_DIR/hb.json")" 'first frame must be REGISTER'
head -c 4096 /dev/urandom >"$PHX_TEST_DIR/garbage.bin"
assert_contains "$("$wire" "$PHX_AGENT_PORT" "$PHX_TEST_DIR/garbage.bin")" CLOSED
printf '\x00\x00\x00\x10\x7f\xff\xff\xff' >"$PHX_TEST_DIR/huge.bin"
assert_contains "$("$wire" "$PHX_AGENT_PORT" "$PHX_TEST_DIR/huge.bin")" 'exceeds the maximum'
printf '\x00\x00\x01\x00\x00\x00\x00\x00{"type"' >"$PHX_TEST_DIR/trunc.bin"
assert_contains "$(WIRE_HALF_CLOSE=1 "$wire" "$PHX_AGENT_PORT" "$PHX_TEST_DIR/trunc.bin")" CLOSED
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" "connection closed inside a frame (truncated)"
printf '{"type":"REGISTER","name":"bad name!","nonce":"%s","cred":"x","topology":{}}' "$nonce" >"$PHX_TEST_DIR/badname.json"
assert_contains "$("$wire" "$PHX_AGENT_PORT" "$PHX_TEST_DIR/badname.json")" 'agent name must be'
# The master kept serving everyone.
for n in n1 n2 n3; do assert_eq up "$(node_field $n state)"; done

# Drain: operators only.
expect_fail runuser -u phxtest -- env PHX_CONFIG="$PHX_CONFIG" "$PHX_BUILD/bin/phx" nodes drain n3 --reason "not mine"
assert_contains "$PHX_OUT" "is not an operator"
assert_eq False "$(node_field n3 drained)"
expect_fail phx nodes drain n3
assert_contains "$PHX_OUT" "needs --reason"
phx nodes drain n3 --reason "bad DIMM"
assert_eq True "$(node_field n3 drained)"
assert_contains "$(phx nodes)" "bad DIMM"
assert_eq "t|bad DIMM|0" "$(psql_q "SELECT drained, drain_reason, drained_by FROM agents WHERE name = 'n3'")"
expect_fail phx nodes drain nosuch --reason x
assert_contains "$PHX_OUT" 'no agent named "nosuch"'

# Restart the master: agents come back by themselves, nothing is lost.
before=$(psql_q "SELECT id, name, sockets, numas, cores, drained FROM agents ORDER BY id")
stop_daemon master
start_master
for n in n1 n2 n3; do wait_node $n up; done
assert_eq "$before" "$(psql_q "SELECT id, name, sockets, numas, cores, drained FROM agents ORDER BY id")"
assert_eq True "$(node_field n3 drained)" "drain survives a master restart"
phx nodes resume n3
assert_eq False "$(node_field n3 drained)"
# A restarted master has a new key: its old sessions are gone.
assert_eq 401 "$(code -H "$(bearer "$token")" "$M/state")" "a session of the master before"
assert_contains "$(cat "$PHX_TEST_DIR/body")" "invalid session token"
token=$(phx ui)
assert_eq 200 "$(code -H "$(bearer "${token#*#token=}")" "$M/state")" "a new session"
note "ok"
