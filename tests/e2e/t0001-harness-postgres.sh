#!/usr/bin/env bash
# timeout: 60
# The harness gives a test a private PostgreSQL on a unix socket, reachable
# through PHX_DSN, and stops it completely.
. "$(dirname "$0")/lib.sh"

start_postgres

assert_contains "$PHX_DSN" "host=$PHX_TEST_DIR/pg " "DSN names the private socket dir"
assert_contains "$PHX_DSN" "dbname=phalanx" "DSN names the phalanx database"
test -S "$PHX_TEST_DIR/pg/.s.PGSQL.5432" || fail "no unix socket in $PHX_TEST_DIR/pg"

# Through the DSN exactly as the daemons will use it (libpq key/value string).
psql -X -q -v ON_ERROR_STOP=1 "$PHX_DSN" <<'SQL'
CREATE TABLE harness (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO harness VALUES (1, 'one'), (2, 'two'), (3, 'three');
SQL
out=$(psql -X -At -v ON_ERROR_STOP=1 "$PHX_DSN" -c "SELECT count(*), string_agg(name, ',' ORDER BY id) FROM harness")
assert_eq "3|one,two,three" "$out" "rows read back"

# The same server through the PG* variables, and it is private and unix-only.
assert_eq "phalanx" "$(psql -X -At -c 'SELECT current_database()')" "PGDATABASE"
assert_eq "" "$(psql -X -At -c 'SHOW listen_addresses')" "listen_addresses"
assert_eq "off" "$(psql -X -At -c 'SHOW fsync')" "fsync"
assert_eq "$PHX_TEST_DIR/pg" "$(psql -X -At -c 'SHOW unix_socket_directories')" "socket dir"

# A SQL error is an error.
expect_fail psql -X -q -v ON_ERROR_STOP=1 "$PHX_DSN" -c 'SELECT * FROM no_such_table'
assert_contains "$PHX_OUT" 'relation "no_such_table" does not exist'

# stop_postgres leaves no postmaster and no backend behind.
pid=$(postgres_pid)
[[ -n $pid ]] || fail "postgres_pid is empty while the server runs"
children=$(pgrep -P "$pid" | wc -l)
((children >= 3)) || fail "expected postgres background processes, found $children"
stop_postgres
if alive "$pid"; then fail "postmaster $pid still alive after stop_postgres"; fi
left=$(ps -eo args= | grep -F -- "$PHX_TEST_DIR/pg" | grep -v grep || true)
assert_eq "" "$left" "processes of the stopped cluster"
expect_fail psql -X -At "$PHX_DSN" -c 'SELECT 1'
assert_contains "$PHX_OUT" "No such file or directory"

# A second start in the same test (e.g. a restart test) works under a new name.
start_postgres pg2
assert_eq "1" "$(psql -X -At "$PHX_DSN" -c 'SELECT 1')" "second cluster"
[[ $PHX_DSN == *"$PHX_TEST_DIR/pg2 "* ]] || fail "PHX_DSN not updated: $PHX_DSN"
