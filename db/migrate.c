/* Migrations runner: numbered SQL files, one transaction each, recorded in
 * schema_version, serialised across processes by an advisory lock. */
#include "db/migrate.h"
#include "db/pq_internal.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Key of the transaction-scoped advisory lock ("phxmigr" in ASCII). */
#define MIGRATE_LOCK_KEY "31525175148325234"

typedef struct migration {
    int version;
    char *file; /* base name, e.g. "003_agents.sql" */
    char *name; /* "agents" */
    char *path;
    char *sql;         /* loaded on demand */
    char checksum[65]; /* hex SHA-256, "" until computed */
} migration_t;

typedef struct plan {
    migration_t *v;
    size_t n;
} plan_t;

static void plan_free(plan_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].file);
        free(p->v[i].name);
        free(p->v[i].path);
        free(p->v[i].sql);
    }
    free(p->v);
}

/* "NNN_name.sql" -> version and name; false if the name does not match. */
static bool parse_file_name(const char *file, int *version, char **name)
{
    size_t len = strlen(file);
    size_t digits = strspn(file, "0123456789");
    if (digits == 0 || digits > 9 || file[digits] != '_' || len < digits + 6)
        return false;
    const char *n = file + digits + 1;
    size_t nlen = len - digits - 1 - 4;
    if (strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
        nlen)
        return false;
    *version = atoi(file);
    *name = strndup(n, nlen);
    return *name != NULL;
}

static int cmp_migration(const void *a, const void *b)
{
    const migration_t *x = a, *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->file, y->file);
}

static int add_file(plan_t *p, const char *dir, const char *file, phx_error_t *err)
{
    migration_t m = {0};
    if (!parse_file_name(file, &m.version, &m.name))
        return phx_error_set(err,
                             "malformed migration file name \"%s/%s\" "
                             "(expected NNN_name.sql)",
                             dir, file);
    migration_t *v = realloc(p->v, (p->n + 1) * sizeof(*v));
    if (!v || asprintf(&m.path, "%s/%s", dir, file) < 0) {
        free(m.name);
        if (v)
            p->v = v;
        return phx_error_set(err, "out of memory");
    }
    p->v = v;
    m.file = strdup(file);
    p->v[p->n++] = m;
    return m.file ? 0 : phx_error_set(err, "out of memory");
}

static int check_sequence(const plan_t *p, const char *dir, phx_error_t *err)
{
    for (size_t i = 0; i < p->n; i++) {
        const migration_t *m = &p->v[i];
        if (i == 0 && m->version > 1)
            return phx_error_set(err,
                                 "missing migration 001 in \"%s\": the first file is "
                                 "\"%s\"",
                                 dir, m->file);
        if (i == 0)
            continue;
        const migration_t *prev = &p->v[i - 1];
        if (m->version == prev->version)
            return phx_error_set(
                err, "duplicate migration number %03d in \"%s\": \"%s\" and \"%s\"",
                m->version, dir, prev->file, m->file);
        if (m->version != prev->version + 1)
            return phx_error_set(
                err, "missing migration %03d in \"%s\": \"%s\" follows \"%s\"",
                prev->version + 1, dir, m->file, prev->file);
    }
    return 0;
}

static int load_plan(const char *dir, plan_t *p, phx_error_t *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return phx_error_set(err, "could not open migrations directory \"%s\": %s", dir,
                             strerror(errno));
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 4 ||
            strcmp(de->d_name + len - 4, ".sql") != 0)
            continue;
        rc = add_file(p, dir, de->d_name, err);
    }
    closedir(d);
    if (rc < 0)
        return -1;
    if (p->n > 1)
        qsort(p->v, p->n, sizeof(*p->v), cmp_migration);
    return check_sequence(p, dir, err);
}

static int load_sql(migration_t *m, phx_error_t *err)
{
    if (m->sql)
        return 0;
    FILE *f = fopen(m->path, "rb");
    if (!f)
        return phx_error_set(err, "could not open migration \"%s\": %s", m->path,
                             strerror(errno));
    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    char chunk[8192];
    size_t n;
    bool ok = mem != NULL;
    while (ok && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ok = fwrite(chunk, 1, n, mem) == n;
    ok = ok && !ferror(f);
    fclose(f);
    if (mem)
        fclose(mem);
    if (!ok) {
        free(buf);
        return phx_error_set(err, "could not read migration \"%s\"", m->path);
    }
    if (strlen(buf) != size) {
        free(buf);
        return phx_error_set(err, "migration \"%s\" contains a NUL byte", m->path);
    }
    m->sql = buf;
    return 0;
}

/* Hex SHA-256 of the file's bytes, computed by the server (sha256(bytea)). */
static int compute_checksum(PGconn *pg, migration_t *m, phx_error_t *err)
{
    if (m->checksum[0])
        return 0;
    if (load_sql(m, err) < 0)
        return -1;
    const char *values[] = {m->sql};
    int lengths[] = {(int)strlen(m->sql)};
    int formats[] = {1};
    PGresult *r = PQexecParams(pg, "SELECT encode(sha256($1::bytea), 'hex')", 1, NULL,
                               values, lengths, formats, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        char prefix[PATH_MAX + 64];
        snprintf(prefix, sizeof(prefix), "could not checksum migration \"%s\"",
                 m->file);
        phx_db_set_pg_error(err, prefix, r, pg, NULL);
        PQclear(r);
        return -1;
    }
    snprintf(m->checksum, sizeof(m->checksum), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static int exec_simple(PGconn *pg, const char *sql, const char *what, phx_error_t *err)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        phx_db_set_pg_error(err, what, r, pg, NULL);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

static migration_t *find_version(plan_t *p, int version)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].version == version)
            return &p->v[i];
    return NULL;
}

/* Compare schema_version with the files; set *next to the first pending
 * migration (NULL if none).  Runs under the advisory lock. */
static int verify_applied(PGconn *pg, plan_t *p, const char *dir, migration_t **next,
                          phx_error_t *err)
{
    PGresult *r = PQexec(pg, "SELECT version, name, checksum FROM schema_version "
                             "ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        phx_db_set_pg_error(err, "could not read schema_version", r, pg, NULL);
        PQclear(r);
        return -1;
    }
    int rows = PQntuples(r);
    int rc = 0;
    for (int i = 0; i < rows && rc == 0; i++) {
        int version = atoi(PQgetvalue(r, i, 0));
        const char *name = PQgetvalue(r, i, 1);
        migration_t *m = find_version(p, version);
        if (!m) {
            rc = phx_error_set(err,
                               "applied migration %03d_%s.sql is not in \"%s\": the "
                               "database is newer than these migrations",
                               version, name, dir);
        } else if ((size_t)i >= p->n || &p->v[i] != m) {
            rc = phx_error_set(err, "schema_version skips migrations before \"%s\"",
                               m->file);
        } else if (strcmp(m->name, name) != 0) {
            rc = phx_error_set(err, "migration \"%s\" was applied as \"%03d_%s.sql\"",
                               m->path, version, name);
        } else if ((rc = compute_checksum(pg, m, err)) == 0 &&
                   strcmp(m->checksum, PQgetvalue(r, i, 2)) != 0) {
            rc = phx_error_set(err,
                               "migration \"%s\" changed after it was applied "
                               "(checksum %.12s..., applied %.12s...)",
                               m->path, m->checksum, PQgetvalue(r, i, 2));
        }
    }
    *next = rc == 0 && (size_t)rows < p->n ? &p->v[rows] : NULL;
    PQclear(r);
    return rc;
}

/* One transaction: lock, verify, apply the next pending migration.  Returns 1
 * if one was applied, 0 if none was pending, -1 on error. */
static int migrate_step(PGconn *pg, plan_t *p, const char *dir, phx_error_t *err)
{
    static const char *const setup =
        "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ");"
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " checksum text NOT NULL)";
    if (exec_simple(pg, "BEGIN", "could not begin migration", err) < 0)
        return -1;
    migration_t *next = NULL;
    int rc = exec_simple(pg, setup, "could not prepare schema_version", err);
    if (rc == 0)
        rc = verify_applied(pg, p, dir, &next, err);
    if (rc == 0 && next)
        rc = compute_checksum(pg, next, err);
    if (rc == 0 && next) {
        char what[PATH_MAX + 32];
        snprintf(what, sizeof(what), "migration \"%s\" failed", next->path);
        rc = exec_simple(pg, next->sql, what, err);
    }
    if (rc == 0 && next) {
        char version[16];
        snprintf(version, sizeof(version), "%d", next->version);
        const char *values[] = {version, next->name, next->checksum};
        PGresult *r =
            PQexecParams(pg,
                         "INSERT INTO schema_version (version, name, checksum) "
                         "VALUES ($1, $2, $3)",
                         3, NULL, values, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = phx_db_set_pg_error(err, "could not record migration", r, pg, NULL);
        PQclear(r);
    }
    if (rc == 0)
        rc = exec_simple(pg, "COMMIT", "could not commit migration", err);
    if (rc < 0) {
        PQclear(PQexec(pg, "ROLLBACK"));
        return -1;
    }
    if (next)
        phx_log_info("applied migration %s", next->file);
    return next ? 1 : 0;
}

int phx_db_migrate(phx_db_conn_t *conn, const char *dir, phx_error_t *err)
{
    if (!conn || !dir) {
        errno = EINVAL;
        return phx_error_set(err, "invalid migration arguments");
    }
    plan_t plan = {0};
    int applied = 0;
    int rc = load_plan(dir, &plan, err);
    while (rc == 0) {
        int step = migrate_step(conn->pg, &plan, dir, err);
        if (step < 0)
            rc = -1;
        else if (step == 0)
            break;
        else
            applied++;
    }
    plan_free(&plan);
    if (rc < 0) {
        errno = EINVAL;
        return -1;
    }
    return applied;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int phx_db_migrations_dir(char *buf, size_t len, phx_error_t *err)
{
    const char *env = getenv("PHX_MIGRATIONS_DIR");
    if (env && *env) {
        if ((size_t)snprintf(buf, len, "%s", env) >= len)
            return phx_error_set(err, "PHX_MIGRATIONS_DIR is too long");
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        return phx_error_set(err, "could not locate the executable: %s",
                             strerror(errno));
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    char cand[PATH_MAX + 64];
    snprintf(cand, sizeof(cand), "%s/../share/phalanx/migrations", exe);
    for (int up = 0; !is_dir(cand) && up <= 4; up++) {
        size_t off = strlen(exe);
        snprintf(cand, sizeof(cand), "%s", exe);
        for (int i = 0; i < up; i++) {
            snprintf(cand + off, sizeof(cand) - off, "/..");
            off += 3;
        }
        snprintf(cand + off, sizeof(cand) - off, "/db/migrations");
    }
    if (!is_dir(cand))
        return phx_error_set(err,
                             "could not find the migrations directory near \"%s\": set "
                             "PHX_MIGRATIONS_DIR",
                             exe);
    char *real = realpath(cand, NULL);
    int rc = 0;
    if (!real || (size_t)snprintf(buf, len, "%s", real) >= len)
        rc = phx_error_set(err, "migrations directory path is too long");
    free(real);
    return rc;
}
