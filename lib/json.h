/* Field access over jansson with errors that name the field.  An explicit
 * JSON null counts as an absent field (Mesos clients send them). */
#ifndef PHX_JSON_H
#define PHX_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/error.h"

/* Each returns 0 and fills *out (left untouched if absent and optional),
 * or -1 with err naming `key`: missing when required, or of the wrong type or
 * out of bounds.  Strings are borrowed from obj. */
int phx_json_str(const json_t *obj, const char *key, bool required, const char **out,
                 phx_error_t *err);
int phx_json_int(const json_t *obj, const char *key, bool required, long long min,
                 long long max, long long *out, phx_error_t *err);
int phx_json_num(const json_t *obj, const char *key, bool required, double min,
                 double max, double *out, phx_error_t *err);
int phx_json_bool(const json_t *obj, const char *key, bool required, bool *out,
                  phx_error_t *err);
/* Object or array member (borrowed), type-checked. */
int phx_json_obj(const json_t *obj, const char *key, bool required, json_t **out,
                 phx_error_t *err);
int phx_json_arr(const json_t *obj, const char *key, bool required, json_t **out,
                 phx_error_t *err);

/* Serialise compactly with non-ASCII escaped; caller frees. */
char *phx_json_dump(const json_t *value);

#endif
