#!/usr/bin/env bash
# timeout: 400
# phx run forwards its standard input to the step's ranks, as srun does
# (`srun prog < input`): every rank by default, none, or one rank with
# -i/--input.  Before, every rank's stdin was /dev/null and such a script
# silently read nothing.  Input to the ranks of another node goes through
# the master under a 1 MiB credit window, and is never dropped: a rank that
# reads late gets everything, while the agents hold about a window (their
# peak RSS is checked); a rank that exits without reading blocks neither
# the others nor the step's end; ranks see EOF when the input ends, and at
# once when phx run's stdin is /dev/null.  Last, a batch script of a real
# user runs `srun -n2 cat < file` through the compat srun.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
PHX_HEARTBEAT=0.5 # a loaded host must not lose the agents mid-step
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
phx="$PHX_BUILD/bin/phx"
D=$PHX_TEST_DIR

status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

size=6000000
head -c $size /dev/urandom >"$D/in.bin"
printf 'first\nsecond\n' >"$D/small.txt"

# Every rank (2 on n1, 2 on n2) gets all of it.
step_job "$phx run -N2 -n4 --label sh -c 'wc -c' <$D/in.bin"
assert_eq 0 "$(cat "$D/rc")" "phx run's exit code"
for r in 0 1 2 3; do
    assert_contains "$(cat "$D/out")" "$r: $size"
done
assert_eq 4 "$(grep -c ": $size\$" "$D/out")" "ranks that read $size bytes"

# The bytes themselves, on a rank of the other node.
step_job "$phx run -N2 -n4 --input=3 sh -c 'md5sum | cut -c1-32' <$D/in.bin"
assert_eq 0 "$(cat "$D/rc")"
assert_contains "$(cat "$D/out")" "$(md5sum <"$D/in.bin" | cut -c1-32)"

# --input=0: rank 0 only; the others read /dev/null (0 bytes, EOF at once).
step_job "$phx run -N2 -n4 --label --input=0 sh -c 'wc -c' <$D/in.bin"
assert_eq 0 "$(cat "$D/rc")"
assert_contains "$(cat "$D/out")" "0: $size"
for r in 1 2 3; do
    assert_contains "$(cat "$D/out")" "$r: 0"
done
# --input=none, and values refused with their name.
step_job "$phx run -N2 -n2 --label -i none sh -c 'wc -c' <$D/in.bin"
assert_eq 2 "$(grep -c ': 0$' "$D/out")" "ranks with --input=none"
step_job "$phx run -N2 -n2 --input=file%t cat <$D/small.txt"
assert_eq 2 "$(cat "$D/rc")"
assert_contains "$(cat "$D/out")" 'invalid --input "file%t"'
step_job "$phx run -N2 -n2 --input=7 cat <$D/small.txt"
assert_eq 1 "$(cat "$D/rc")"
assert_contains "$(cat "$D/out")" "--input=7: the step has 2 ranks"

# A rank that exits at once, here and on the other node, while the others
# read: they get everything and the step ends.
step_job "$phx run -N2 -n4 --label sh -c 'case \$PHX_PROCID in 1|3) exit 0;; esac; wc -c' <$D/in.bin"
assert_eq 0 "$(cat "$D/rc")"
assert_contains "$(cat "$D/out")" "0: $size"
assert_contains "$(cat "$D/out")" "2: $size"
assert_eq 2 "$(grep -c ": $size\$" "$D/out")"
# Ranks that never read: the step ends when they do.
step_job "timeout 60 $phx run -N2 -n2 sh -c 'sleep 1; echo quit' <$D/in.bin"
assert_eq 0 "$(cat "$D/rc")" "ranks that never read"
assert_eq 2 "$(grep -c quit "$D/out")"

# EOF: cat ends when the input does (a pipe that stays open 2 s), and at
# once with /dev/null.
step_job "(cat $D/small.txt; sleep 2; echo third) | timeout 60 $phx run -N2 -n2 --label sh -c 'cat; echo eof'"
assert_eq 0 "$(cat "$D/rc")"
for r in 0 1; do
    assert_eq "first second third eof" "$(sed -n "s/^$r: //p" "$D/out" | tr '\n' ' ' | sed 's/ $//')" \
        "rank $r's input, then EOF"
done
step_job "timeout 20 $phx run -N2 -n2 sh -c 'cat; echo eof' </dev/null"
assert_eq 0 "$(cat "$D/rc")" "phx run with /dev/null as stdin"
assert_eq 2 "$(grep -c '^eof$' "$D/out")"

# A rank on n2 that reads late: nothing is dropped, and no agent holds more
# than about the window.  64 MB; the agents' peak RSS must grow by far less.
big=64000000
head -c $big /dev/zero >"$D/big.bin"
a1=$(daemon_pid agent-n1)
a2=$(daemon_pid agent-n2)
m0=$(daemon_pid master)
h1=$(status_kb "$a1" VmHWM) h2=$(status_kb "$a2" VmHWM) hm=$(status_kb "$m0" VmHWM)
step_job "$phx run -N2 -n2 --label sh -c '[ \$PHX_PROCID = 1 ] && sleep 4; wc -c' <$D/big.bin"
assert_eq 0 "$(cat "$D/rc")"
assert_contains "$(cat "$D/out")" "0: $big"
assert_contains "$(cat "$D/out")" "1: $big"
g1=$(($(status_kb "$a1" VmHWM) - h1)) g2=$(($(status_kb "$a2" VmHWM) - h2))
gm=$(($(status_kb "$m0" VmHWM) - hm))
note "peak RSS growth for 64 MB of input: agent-n1 $g1 kB, agent-n2 $g2 kB, master $gm kB"
((g1 < 16384 && g2 < 16384 && gm < 16384)) || fail "a daemon held the input (kB: $g1 $g2 $gm)"

# A batch script of a real user, unchanged for Slurm: srun < file.
start_batchd
home1=$(getent passwd phxu1 | cut -d: -f6)
cp "$D/small.txt" "$home1/small.txt"
cat >"$home1/in.sh" <<S
#!/bin/bash
#SBATCH -N 2
#SBATCH -n 2
#SBATCH --time=2
export PATH=$PHX_BUILD/bin:\$PATH
srun -n2 cat < small.txt
echo "srun rc=\$?"
srun -n2 -l --input=1 cat < small.txt
echo "srun -i rc=\$?"
srun -n2 cat &
wait \$!
echo "background rc=\$?"
S
chown phxu1 "$home1/in.sh" "$home1/small.txt"
id=$(as_user phxu1 phx submit --parsable in.sh)
wait_for 60 grep -q "background rc" "$home1/phx-$id.out"
body=$(cat "$home1/phx-$id.out")
note "$body"
assert_eq 2 "$(grep -c '^first$' <<<"$body")" "srun's ranks that read the file"
assert_eq 2 "$(grep -c '^second$' <<<"$body")"
assert_contains "$body" "srun rc=0"
assert_contains "$body" "1: first"
assert_not_contains "$body" "0: first"
assert_contains "$body" "srun -i rc=0"
assert_contains "$body" "background rc=0"
alive "$a1" && alive "$a2" || fail "an agent died"
note ok
