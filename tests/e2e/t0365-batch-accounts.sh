#!/usr/bin/env bash
# timeout: 150
# Validated accounts (batchd.enforce_accounts, migration 007's accounts and
# account_users) and the partitions' AllowAccounts, DenyAccounts and Hidden
# keys.  Memberships are inserted with SQL and reach batchd within
# accounts_refresh (1 s here).  A user in no account, and a job naming an
# account its user is not a member of, are refused with the reason and
# nothing is stored; a job without -A is charged to the user's default
# account (phx show, acct_jobs).  AllowAccounts refuses another account's
# job and takes a member's (a -p list drops the partition with a warning),
# DenyAccounts refuses the denied account.  A Hidden partition is not
# listed (phx partitions, sinfo) to a user who may not use it, unless named
# with -p; its members and operators see it, and phx queue leaves out the
# jobs of a Hidden partition its caller may no longer use.  A reload turning
# enforcement off makes -A a free string again.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_BATCHD_EXTRA='enforce_accounts = true;
                  accounts_refresh = 1;
                  partitions = ["PartitionName=compute Nodes=n1 Default=YES",
                                "PartitionName=phys Nodes=n2 AllowAccounts=Physics Hidden=YES",
                                "PartitionName=open Nodes=n1 DenyAccounts=chem"];'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2; do start_agent $n "synthetic:pack:1 numa:1 core:2 pu:1"; done
for n in n1 n2; do wait_node $n up; done
start_batchd
compat=$PHX_SRC/scripts/compat
for u in phxu1 phxu2; do
    home=$(getent passwd $u | cut -d: -f6)
    printf '#!/bin/sh\necho "$PHX_JOB_ACCOUNT in $PHX_JOB_PARTITION"\n' >"$home/job.sh"
    printf '#!/bin/sh\n#SBATCH -n 1\n#SBATCH -A chem\necho x\n' >"$home/chem.sh"
    printf '#!/bin/sh\nsleep 300\n' >"$home/long.sh"
    chown $u "$home/job.sh" "$home/chem.sh" "$home/long.sh"
done
home1=$(getent passwd phxu1 | cut -d: -f6)
njobs() { psql_q "SELECT count(*) FROM jobs"; }

# No membership yet: refused, nothing stored.
assert_eq 0 "$(njobs)"
expect_fail as_user phxu1 phx submit job.sh
assert_contains "$PHX_OUT" "user phxu1 is a member of no account"
expect_fail as_user phxu1 phx submit -A physics job.sh
assert_contains "$PHX_OUT" "user phxu1 is not a member of account physics"
assert_eq 0 "$(njobs)" "refused jobs are not stored"

# Accounts and members, with SQL (as doc/accounting.md shows).
psql_q "INSERT INTO accounts (name, description) VALUES ('physics', 'Physics'),
            ('chem', 'Chemistry'), ('bio', 'Biology');
        INSERT INTO account_users (user_name, account, is_default) VALUES
            ('phxu1', 'physics', true), ('phxu1', 'bio', false), ('phxu2', 'chem', true)"
wait_for 10 grep -q "accounts enforced: 3 memberships" "$PHX_TEST_DIR/batchd.log"

# Not a member: refused with the reason (a directive's line named), nothing
# stored.
expect_fail as_user phxu1 phx submit -A chem job.sh
assert_contains "$PHX_OUT" "user phxu1 is not a member of account chem (its accounts: physics, bio)"
expect_fail as_user phxu1 phx submit chem.sh
assert_contains "$PHX_OUT" "chem.sh:3"
assert_contains "$PHX_OUT" "user phxu1 is not a member of account chem"
assert_eq 0 "$(njobs)" "refused jobs are not stored"

# The default account filled in; -A in any case is the member's account.
id=$(as_user phxu1 phx submit --parsable job.sh)
wait_job "$id" COMPLETED 30
assert_eq physics "$(job_field "$id" account)"
assert_contains "$(phx show "$id")" physics
assert_eq physics "$(psql_q "SELECT account FROM acct_jobs WHERE job_id = $id")"
assert_eq "physics in compute" "$(cat "$home1/phx-$id.out")"
id=$(as_user phxu1 phx submit --parsable -A BIO job.sh)
wait_job "$id" COMPLETED 30
assert_eq bio "$(psql_q "SELECT account FROM jobs WHERE id = $id")"
assert_eq 2 "$(njobs)"

# AllowAccounts=Physics: chem's job refused, physics' taken; a list drops it.
expect_fail as_user phxu2 phx submit -p phys job.sh
assert_contains "$PHX_OUT" "account chem may not use partition phys (AllowAccounts=Physics)"
expect_fail as_user phxu1 phx submit -p phys -A bio job.sh
assert_contains "$PHX_OUT" "account bio may not use partition phys"
assert_eq 2 "$(njobs)"
id=$(as_user phxu1 phx submit --parsable -p phys job.sh)
wait_job "$id" COMPLETED 30
assert_eq "physics in phys" "$(cat "$home1/phx-$id.out")"
run_ok as_user phxu2 phx submit -p phys,compute job.sh
assert_contains "$PHX_OUT" "partition phys left out: account chem may not use partition phys"
# DenyAccounts=chem
expect_fail as_user phxu2 phx submit -p open job.sh
assert_contains "$PHX_OUT" "account chem may not use partition open (DenyAccounts=chem)"
id=$(as_user phxu1 phx submit --parsable -p open job.sh)
wait_job "$id" COMPLETED 30

# Hidden: phxu2 (chem) is not shown phys, phxu1 (physics) and root are;
# naming it shows it.
parts() { as_user "$1" phx partitions --noheader | awk '{print $1}' | sort -u | xargs; }
assert_eq "compute* open" "$(parts phxu2)"
assert_eq "compute* open phys" "$(parts phxu1)"
assert_eq "compute* open phys" "$(phx partitions --noheader | awk '{print $1}' | sort -u | xargs)"
assert_eq "compute* open" "$(as_user phxu2 "$compat/sinfo" -h | awk '{print $1}' | sort -u | xargs)"
assert_not_contains "$(as_user phxu2 phx partitions --json)" phys
assert_contains "$(as_user phxu2 phx partitions -p phys --noheader)" phys
# -a (sinfo -a): every partition, Hidden ones too
assert_eq "compute* open phys" "$(as_user phxu2 "$compat/sinfo" -a -h | awk '{print $1}' | sort -u | xargs)"

# The queue: phxu1's job in phys is listed to phxu1 while a member; once out
# of physics, only when -p names phys; operators see it always.
long=$(as_user phxu1 phx submit --parsable -p phys long.sh)
wait_job "$long" RUNNING 30
assert_contains "$(as_user phxu1 phx queue --noheader)" "$long"
psql_q "DELETE FROM account_users WHERE user_name = 'phxu1' AND account = 'physics';
        UPDATE account_users SET is_default = true WHERE user_name = 'phxu1'"
wait_for 10 grep -q "accounts enforced: 2 memberships" "$PHX_TEST_DIR/batchd.log"
assert_not_contains "$(as_user phxu1 phx queue --noheader)" "$long"
assert_contains "$(as_user phxu1 phx queue --noheader -p phys)" "$long"
assert_contains "$(as_user phxu1 "$compat/squeue" -a -h)" "$long"
assert_contains "$(phx queue --noheader)" "$long"
assert_eq "compute* open" "$(parts phxu1)"
# and the new default applies to the next job
id=$(as_user phxu1 phx submit --parsable job.sh)
wait_job "$id" COMPLETED 30
assert_eq bio "$(job_field "$id" account)"
phx cancel "$long"
wait_job "$long" CANCELLED 30

# A reload without enforce_accounts: -A is a free string again (stored as
# given), and phys is for the account named Physics only.
sed -i 's/enforce_accounts = true;/enforce_accounts = false;/' "$PHX_CONFIG"
kill -HUP "$(daemon_pid batchd)"
wait_for 10 grep -q "accounts no longer enforced" "$PHX_TEST_DIR/batchd.log"
id=$(as_user phxu2 phx submit --parsable -A Other job.sh)
wait_job "$id" COMPLETED 30
assert_eq Other "$(psql_q "SELECT account FROM jobs WHERE id = $id")"
id=$(as_user phxu2 phx submit --parsable -p phys -A PHYSICS job.sh)
wait_job "$id" COMPLETED 30
expect_fail as_user phxu2 phx submit -p phys job.sh
assert_contains "$PHX_OUT" "partition phys takes jobs of accounts Physics only (AllowAccounts)"
note ok
