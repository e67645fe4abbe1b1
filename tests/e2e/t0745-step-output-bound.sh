#!/usr/bin/env bash
# timeout: 300
# The output an agent holds for a `phx run` client is bounded: a client
# that stops reading (SIGSTOP, as Ctrl-Z) while its rank prints 100 MB
# once made the agent, a root daemon, hold all 100 MB.  Now the agent
# drops what is past its bound (8 MiB), the client hears on its stderr how
# many bytes were lost once it reads again, and the step and the job end
# normally (the rank waits up to 3 s for room first; no timing is
# asserted).  A client that reads gets all 100 MB: before the rank's reads
# waited for room, the agent outran such a client and dropped 58 MB.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
PHX_HEARTBEAT=0.5 # a loaded host must not lose the agent mid-step
phx_setup
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
phx="$PHX_BUILD/bin/phx"
D=$PHX_TEST_DIR
export STEP_AGENTS=1
total=100000000

# kB of a status field of a process.
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# The process is stopped (state T).
stopped() { [[ $(awk '{ print $3 }' "/proc/$1/stat") == T ]]; }

agent=$(daemon_pid agent-n1)
rss0=$(status_kb "$agent" VmRSS)
note "agent-n1 (pid $agent): VmRSS ${rss0} kB, VmHWM $(status_kb "$agent" VmHWM) kB before"

# The rank waits until `phx run` is stopped, prints 100 MB, then says so.
rank="touch $D/rank.started; while [ ! -e $D/client.stopped ]; do sleep 0.1; done
head -c $total /dev/zero; touch $D/rank.ended"
step_job "sh -c 'echo \$\$ >$D/run.pid; exec $phx run -n 1 sh -c \"$rank\"' \
    >$D/run.out 2>$D/run.err" &
sj=$!
wait_for 60 test -e "$D/rank.started"
run=$(cat "$D/run.pid")
kill -STOP "$run"
wait_for 10 stopped "$run"
touch "$D/client.stopped"
wait_for 120 test -e "$D/rank.ended"
stopped "$run" || fail "phx run was not stopped until the rank ended"
rss1=$(status_kb "$agent" VmRSS)
hwm1=$(status_kb "$agent" VmHWM)
note "agent-n1: VmRSS ${rss1} kB, VmHWM ${hwm1} kB with phx run stopped after 100 MB"
((hwm1 - rss0 < 40 * 1024)) || fail "the agent grew by $((hwm1 - rss0)) kB (peak) for a stopped client"
kill -CONT "$run"
wait "$sj"

assert_eq 0 "$(cat "$D/rc")" "phx run's exit code"
err=$(cat "$D/run.err")
note "phx run's stderr: $err"
assert_contains "$err" "of the ranks' output were lost"
assert_contains "$err" "phx run was not reading them"
got=$(wc -c <"$D/run.out")
lost=$(sed -n "s/^phx run: [0-9]* bytes of the ranks' output were lost (\([0-9]*\) of stdout.*/\1/p" \
    <<<"$err" | awk '{ s += $1 } END { print s + 0 }')
note "received $got bytes, lost $lost"
((got > 0 && got < total)) || fail "received $got bytes of $total"
# Every byte is either received or counted as lost.
assert_eq "$total" "$((got + lost))" "bytes received + bytes lost"
assert_contains "$(cat "$D/fw.out")" "TASK_FINISHED"
assert_not_contains "$(cat "$D/fw.out")" "TASK_FAILED"
alive "$agent" || fail "the agent died"

# A client that reads gets every byte, and no word of loss.
rm -f "$D/run.out" "$D/run.err"
step_job "$phx run -n 1 head -c $total /dev/zero 2>$D/run.err | wc -c >$D/run.out"
assert_eq 0 "$(cat "$D/rc")"
assert_eq "$total" "$(cat "$D/run.out")" "bytes of a client that reads"
assert_not_contains "$(cat "$D/run.err")" "were lost"
assert_contains "$(cat "$D/fw.out")" "TASK_FINISHED"
note "agent-n1: VmHWM $(status_kb "$agent" VmHWM) kB at the end"
note ok
