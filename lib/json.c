#include "lib/json.h"

#include <errno.h>
#include <math.h>

static json_t *member(const json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

static int missing(const char *key, bool required, phx_error_t *err)
{
    if (!required)
        return 1;
    errno = EINVAL;
    return phx_error_set(err, "missing field \"%s\"", key);
}

static int wrong(const char *key, const char *what, phx_error_t *err)
{
    errno = EINVAL;
    return phx_error_set(err, "field \"%s\" must be %s", key, what);
}

int phx_json_str(const json_t *obj, const char *key, bool required, const char **out,
                 phx_error_t *err)
{
    json_t *v = member(obj, key);
    if (!v)
        return missing(key, required, err) < 0 ? -1 : 0;
    if (!json_is_string(v))
        return wrong(key, "a string", err);
    *out = json_string_value(v);
    return 0;
}

int phx_json_int(const json_t *obj, const char *key, bool required, long long min,
                 long long max, long long *out, phx_error_t *err)
{
    json_t *v = member(obj, key);
    if (!v)
        return missing(key, required, err) < 0 ? -1 : 0;
    if (!json_is_integer(v))
        return wrong(key, "an integer", err);
    long long x = json_integer_value(v);
    if (x < min || x > max) {
        errno = ERANGE;
        return phx_error_set(err, "field \"%s\" = %lld is out of range [%lld, %lld]",
                             key, x, min, max);
    }
    *out = x;
    return 0;
}

int phx_json_num(const json_t *obj, const char *key, bool required, double min,
                 double max, double *out, phx_error_t *err)
{
    json_t *v = member(obj, key);
    if (!v)
        return missing(key, required, err) < 0 ? -1 : 0;
    if (!json_is_number(v))
        return wrong(key, "a number", err);
    double x = json_number_value(v);
    if (!isfinite(x) || x < min || x > max) {
        errno = ERANGE;
        return phx_error_set(err, "field \"%s\" = %g is out of range [%g, %g]", key, x,
                             min, max);
    }
    *out = x;
    return 0;
}

int phx_json_bool(const json_t *obj, const char *key, bool required, bool *out,
                  phx_error_t *err)
{
    json_t *v = member(obj, key);
    if (!v)
        return missing(key, required, err) < 0 ? -1 : 0;
    if (!json_is_boolean(v))
        return wrong(key, "a boolean", err);
    *out = json_is_true(v);
    return 0;
}

int phx_json_obj(const json_t *obj, const char *key, bool required, json_t **out,
                 phx_error_t *err)
{
    json_t *v = member(obj, key);
    if (!v)
        return missing(key, required, err) < 0 ? -1 : 0;
    if (!json_is_object(v))
        return wrong(key, "an object", err);
    *out = v;
    return 0;
}

int phx_json_arr(const json_t *obj, const char *key, bool required, json_t **out,
                 phx_error_t *err)
{
    json_t *v = member(obj, key);
    if (!v)
        return missing(key, required, err) < 0 ? -1 : 0;
    if (!json_is_array(v))
        return wrong(key, "an array", err);
    *out = v;
    return 0;
}

char *phx_json_dump(const json_t *value)
{
    return json_dumps(value, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
}
