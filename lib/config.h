/* Configuration: a libconfig file checked against a per-daemon schema table.
 *
 * Every key a daemon reads is declared once, with its type, default and
 * bounds.  An unknown key, a wrong type or a value out of bounds is an error
 * that names file:line.  A top-level group owned by another daemon is
 * declared PHX_CONF_FOREIGN and skipped as a whole, so that one phalanx.conf
 * can serve every daemon. */
#ifndef PHX_CONFIG_H
#define PHX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/error.h"

typedef enum phx_conf_type {
    PHX_CONF_INT,
    PHX_CONF_DOUBLE,
    PHX_CONF_BOOL,
    PHX_CONF_STRING,
    PHX_CONF_STRLIST, /* an array or list of strings */
    PHX_CONF_FOREIGN, /* a top-level group another daemon reads */
} phx_conf_type_t;

typedef struct phx_conf_key {
    const char *path; /* "master.listen_port": groups separated by '.' */
    phx_conf_type_t type;
    const char *def; /* default in config syntax ("5", "true", "/run"), or NULL */
    double min, max; /* bounds of numbers; min == max == 0 means unbounded */
    bool reloadable;
    const char *doc;
} phx_conf_key_t;

typedef struct phx_conf phx_conf_t;

/* Load file (NULL: defaults only) against schema, which ends with a
 * zeroed entry and must outlive the result.  NULL with err on failure. */
phx_conf_t *phx_conf_load(const phx_conf_key_t *schema, const char *file,
                          phx_error_t *err);
/* The same from a string; name is used in messages ("<string>" if NULL). */
phx_conf_t *phx_conf_load_string(const phx_conf_key_t *schema, const char *text,
                                 const char *name, phx_error_t *err);
void phx_conf_destroy(phx_conf_t *conf);

/* Override one key from a command line: "key=value" checked like the file. */
int phx_conf_set(phx_conf_t *conf, const char *assignment, phx_error_t *err);

/* Getters; the path must be in the schema with that type (else abort():
 * that is a programming error, not a user's).  Strings are borrowed from
 * conf; a key without a value or default reads as 0, false or NULL. */
long long phx_conf_int(const phx_conf_t *conf, const char *path);
double phx_conf_double(const phx_conf_t *conf, const char *path);
bool phx_conf_bool(const phx_conf_t *conf, const char *path);
const char *phx_conf_str(const phx_conf_t *conf, const char *path);
/* Number of strings of a list and one of them. */
size_t phx_conf_list_len(const phx_conf_t *conf, const char *path);
const char *phx_conf_list_get(const phx_conf_t *conf, const char *path, size_t i);
/* True if the value came from the file or an override, not the default. */
bool phx_conf_is_set(const phx_conf_t *conf, const char *path);

/* Reloading: fresh is the configuration read again (same schema).  For
 * every key whose value differs, a reloadable one takes fresh's value
 * (conf's old value goes to fresh, freed with it: a daemon never keeps a
 * reloadable key's strings) and changed(path, true) is called; any other
 * keeps its value and changed(path, false) is called.  Returns the number
 * of keys taken. */
typedef void (*phx_conf_changed_f)(const char *path, bool reloadable, void *arg);
int phx_conf_take_reloadable(phx_conf_t *conf, phx_conf_t *fresh,
                             phx_conf_changed_f changed, void *arg);

/* Print every key with its value, as a libconfig-syntax dump. */
void phx_conf_dump(const phx_conf_t *conf, FILE *out);

#endif
