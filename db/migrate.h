/* Schema migrations: db/migrations/NNN_name.sql applied in numeric order.
 *
 * Each pending file runs in its own transaction together with its row in
 * schema_version (version, name, applied_at, checksum = hex SHA-256 of the
 * file's bytes, the same as sha256sum prints).  Concurrent migrators
 * serialise on a transaction-scoped advisory lock.  See doc/db.md. */
#ifndef PHX_DB_MIGRATE_H
#define PHX_DB_MIGRATE_H

#include <stddef.h>

#include "db/db.h"

/* Apply every pending migration of dir.  Returns the number applied (0 when
 * up to date), or -1 with err naming the file when: a file name is malformed,
 * a number is duplicated or missing (versions start at 0 or 1 and are
 * contiguous), an applied migration's file changed (checksum or name) or
 * disappeared, or a migration fails (its transaction is rolled back; those
 * before it stay applied).  Files must not contain transaction control. */
int phx_db_migrate(phx_db_conn_t *conn, const char *dir, phx_error_t *err);

/* The default migrations directory, first that applies:
 *   1. $PHX_MIGRATIONS_DIR if set and non-empty (not checked for existence);
 *   2. <dir of executable>/../share/phalanx/migrations (installed layout);
 *   3. db/migrations in the nearest of the executable's first four ancestor
 *      directories that has one (source tree: build/bin/x -> ./db/migrations).
 * Writes it into buf and returns 0, or -1 with err when none exists. */
int phx_db_migrations_dir(char *buf, size_t len, phx_error_t *err);

#endif
