#!/usr/bin/env bash
# timeout: 60
# etc/phalanx.conf is accepted by every daemon and by phx, lists every key of
# every group (set, or commented out when it has no built-in value), sets
# nothing but the defaults; a misspelt key is refused with file:line; the man
# pages render without warnings and document every key and every command.
. "$(dirname "$0")/lib.sh"

conf=$PHX_SRC/etc/phalanx.conf
unset PHX_CONFIG PHX_MASTER PHX_BATCHD

# The keys etc/phalanx.conf names in GROUP: "key = " lines inside "GROUP: {",
# set or commented out ("# key = ").
file_keys() {
    awk -v g="$1" '
        /^[a-z]+: *\{/ { sub(/:.*/, ""); group = $0; next }
        /^\};/ { group = ""; next }
        group == g && /^ *(# )?[a-z_]+ = .*;$/ && match($0, /^ *(# )?[a-z_]+ = /) {
            k = substr($0, RSTART, RLENGTH); sub(/^ *(# )?/, "", k); sub(/ = $/, "", k)
            print g "." k
        }' "$conf" | sort
}

# The keys phalanx.conf(5) documents in GROUP: ".TP" then ".B key" in the
# section ".SH GROUP GROUP".
man_keys() {
    awk -v g="$1" -v sec=".SH $(tr a-z A-Z <<<"$1") GROUP" '
        /^\.SH / { on = ($0 == sec); prev = ""; next }
        on && prev == ".TP" && /^\.B [a-z_]+$/ { print g "." $2 }
        { prev = $0 }' "$PHX_SRC/doc/phalanx.conf.5" | sort
}

# Every daemon: accepted, complete, defaults only.
for d in master agent batchd; do
    run_ok "phx-$d" -c "$conf" --check-config
    with=$PHX_OUT
    assert_contains "$with" "configuration OK" "phx-$d accepts $conf"
    run_ok "phx-$d" --check-config
    assert_eq "$PHX_OUT" "$with" "phx-$d: etc/phalanx.conf sets only the defaults"
    # a configuration on an inherited descriptor is read before the daemon
    # closes what it inherited
    assert_eq "$with" "$("$PHX_BUILD/bin/phx-$d" -c <(cat "$conf") --check-config 2>&1)" \
        "phx-$d -c <(...)"
    dumped=$(printf '%s\n' "$with" | sed -n "s/^\($d\.[a-z_]*\) = .*/\1/p" | sort)
    [[ -n $dumped ]] || fail "phx-$d --check-config printed no key"
    assert_eq "$dumped" "$(file_keys "$d")" "the keys of group $d in etc/phalanx.conf"
    assert_eq "$dumped" "$(man_keys "$d")" "the keys of group $d in phalanx.conf(5)"
done

# The client group: phx accepts the file (and then fails to reach a master
# that is not there); phx refuses unknown keys (below), so every key the file
# sets is one phx knows.
port=$(free_port)
expect_fail env PHX_CONFIG="$conf" PHX_MASTER="127.0.0.1:$port" phx nodes
assert_contains "$PHX_OUT" "is phx-master running?"
# phx has no --check-config: its keys are those of cli/client.c's schema.
client_keys=$(grep -o '{"client\.[a-z_]*"' "$PHX_SRC/cli/client.c" | tr -d '{"' | sort)
[[ -n $client_keys ]] || fail "no client keys found in cli/client.c"
assert_eq "$client_keys" "$(file_keys client)" "the keys of group client in etc/phalanx.conf"
assert_eq "$client_keys" "$(man_keys client)" "the keys of group client in phalanx.conf(5)"

# A misspelt key in a copy is refused with file:line, by the daemon that owns
# the group (the others skip it).
misspell() { # KEY BADKEY: print the path of a copy with KEY spelt BADKEY
    local copy=$PHX_TEST_DIR/$2.conf
    sed "s/^    $1 = /    $2 = /" "$conf" >"$copy"
    grep -q "^    $2 = " "$copy" || fail "could not misspell $1"
    printf '%s\n' "$copy"
}
copy=$(misspell heartbeat_missed heartbeat_mised)
line=$(grep -n "^    heartbeat_mised = " "$copy" | cut -d: -f1)
expect_fail phx-master -c "$copy" --check-config
assert_contains "$PHX_OUT" "$copy:$line: unknown setting \"master.heartbeat_mised\""
run_ok phx-agent -c "$copy" --check-config

copy=$(misspell status_retry status_rety)
line=$(grep -n "^    status_rety = " "$copy" | cut -d: -f1)
expect_fail phx-agent -c "$copy" --check-config
assert_contains "$PHX_OUT" "$copy:$line: unknown setting \"agent.status_rety\""
run_ok phx-master -c "$copy" --check-config

copy=$(misspell bf_window bf_windw)
line=$(grep -n "^    bf_windw = " "$copy" | cut -d: -f1)
expect_fail phx-batchd -c "$copy" --check-config
assert_contains "$PHX_OUT" "$copy:$line: unknown setting \"batchd.bf_windw\""

copy=$(misspell timeout timout)
line=$(grep -n "^    timout = " "$copy" | cut -d: -f1)
expect_fail env PHX_CONFIG="$copy" PHX_MASTER="127.0.0.1:$port" phx nodes
assert_contains "$PHX_OUT" "$copy:$line: unknown setting \"client.timout\""

# A misspelt group is refused by everyone.
copy=$PHX_TEST_DIR/group.conf
sed 's/^agent: {/agnet: {/' "$conf" >"$copy"
line=$(grep -n '^agnet: {' "$copy" | cut -d: -f1)
for d in master agent batchd; do
    expect_fail "phx-$d" -c "$copy" --check-config
    assert_contains "$PHX_OUT" "$copy:$line: unknown group \"agnet\""
done

# A value out of bounds names its key and line.
copy=$PHX_TEST_DIR/bounds.conf
sed 's/^    heartbeat_missed = 5;/    heartbeat_missed = 0;/' "$conf" >"$copy"
line=$(grep -n '^    heartbeat_missed = 0;' "$copy" | cut -d: -f1)
expect_fail phx-master -c "$copy" --check-config
assert_contains "$PHX_OUT" "$copy:$line: setting \"master.heartbeat_missed\" = 0 is out of range"

# Man pages: every page renders, without a single warning.
command -v man >/dev/null || fail "man is not installed (scripts/install-deps installs man-db)"
pages=("$PHX_SRC"/doc/*.[158])
((${#pages[@]} >= 5)) || fail "expected at least 5 man pages, found ${#pages[@]}"
for p in phx.1 phalanx.conf.5 phx-master.8 phx-agent.8 phx-batchd.8; do
    [[ -f $PHX_SRC/doc/$p ]] || fail "doc/$p is missing"
done
for p in "${pages[@]}"; do
    out=$(MANWIDTH=80 man -l "$p" 2>"$PHX_TEST_DIR/man.err")
    assert_contains "$out" "NAME" "$(basename "$p") renders"
    assert_eq "" "$(cat "$PHX_TEST_DIR/man.err")" "errors of man -l $(basename "$p")"
    warnings=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
    assert_eq "" "$warnings" "warnings of man --warnings -l $(basename "$p")"
done

# phx(1) documents every command that phx lists.
run_ok phx --help
cmds=$(printf '%s\n' "$PHX_OUT" | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[[ -n $cmds ]] || fail "phx --help listed no command"
for c in $cmds; do
    grep -q "^\.SS phx $c\$" "$PHX_SRC/doc/phx.1" || fail "phx(1) has no section for \"phx $c\""
done
# ... and every daemon option is in its page.
for d in master agent batchd; do
    run_ok "phx-$d" --help
    for o in $(printf '%s\n' "$PHX_OUT" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        grep -qF -- "$(sed 's/-/\\-/g' <<<"$o")" "$PHX_SRC/doc/phx-$d.8" ||
            fail "phx-$d(8) does not document $o"
    done
done
note ok
