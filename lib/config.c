#include "lib/config.h"

#include <errno.h>
#include <libconfig.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct conf_value {
    bool set;     /* from the file or an override */
    bool present; /* set or defaulted */
    long long i;
    double d;
    bool b;
    char *s;
    char **list;
    size_t nlist;
} conf_value_t;

struct phx_conf {
    const phx_conf_key_t *schema;
    size_t nkeys;
    conf_value_t *values;
};

/* The list keys that also take one string, comma-separated ("a:1,b:2"):
 * the master addresses, and client.batchd (the batchd addresses).  Not the
 * others: a partition or feature line
 * holds commas of its own (Nodes=n01,n02), and a string there stays the
 * clear "must be a list of strings" error. */
static bool one_string_list(const char *path)
{
    size_t n = strlen(path);
    return (n >= 7 && strcmp(path + n - 7, ".master") == 0) ||
           strcmp(path, "client.batchd") == 0;
}

static const char *type_name(phx_conf_type_t t)
{
    switch (t) {
    case PHX_CONF_INT: return "an integer";
    case PHX_CONF_DOUBLE: return "a number";
    case PHX_CONF_BOOL: return "a boolean";
    case PHX_CONF_STRING: return "a string";
    case PHX_CONF_STRLIST: return "a list of strings";
    case PHX_CONF_FOREIGN: return "a group";
    }
    return "?";
}

static void value_clear(conf_value_t *v)
{
    free(v->s);
    for (size_t i = 0; i < v->nlist; i++)
        free(v->list[i]);
    free(v->list);
    memset(v, 0, sizeof(*v));
}

static int find_key(const phx_conf_t *conf, const char *path)
{
    for (size_t i = 0; i < conf->nkeys; i++)
        if (strcmp(conf->schema[i].path, path) == 0)
            return (int)i;
    return -1;
}

/* True if some schema key lives under group path "prefix". */
static bool is_group(const phx_conf_t *conf, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < conf->nkeys; i++) {
        const char *p = conf->schema[i].path;
        if (strncmp(p, prefix, n) == 0 && p[n] == '.')
            return true;
    }
    return false;
}

static int check_bounds(const phx_conf_key_t *k, double v, const char *where,
                        phx_error_t *err)
{
    if (k->min == 0 && k->max == 0)
        return 0;
    if (v < k->min || v > k->max)
        return phx_error_set(err, "%ssetting \"%s\" = %g is out of range [%g, %g]",
                             where, k->path, v, k->min, k->max);
    return 0;
}

static int list_append(conf_value_t *v, const char *s)
{
    char **l = realloc(v->list, (v->nlist + 1) * sizeof(*l));
    if (!l)
        return -1;
    v->list = l;
    if (!(l[v->nlist] = strdup(s)))
        return -1;
    v->nlist++;
    return 0;
}

/* Parse text (defaults and command-line overrides) into out. */
static int parse_text(const phx_conf_key_t *k, const char *text, const char *where,
                      conf_value_t *out, phx_error_t *err)
{
    char *end;
    conf_value_t v = {0};
    switch (k->type) {
    case PHX_CONF_INT:
        errno = 0;
        v.i = strtoll(text, &end, 0);
        if (errno || end == text || *end)
            return phx_error_set(err, "%ssetting \"%s\" must be %s, not \"%s\"", where,
                                 k->path, type_name(k->type), text);
        if (check_bounds(k, (double)v.i, where, err) < 0)
            return -1;
        break;
    case PHX_CONF_DOUBLE:
        errno = 0;
        v.d = strtod(text, &end);
        if (errno || end == text || *end)
            return phx_error_set(err, "%ssetting \"%s\" must be %s, not \"%s\"", where,
                                 k->path, type_name(k->type), text);
        if (check_bounds(k, v.d, where, err) < 0)
            return -1;
        break;
    case PHX_CONF_BOOL:
        if (strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0 ||
            strcasecmp(text, "yes") == 0)
            v.b = true;
        else if (strcasecmp(text, "false") == 0 || strcmp(text, "0") == 0 ||
                 strcasecmp(text, "no") == 0)
            v.b = false;
        else
            return phx_error_set(err, "%ssetting \"%s\" must be %s, not \"%s\"", where,
                                 k->path, type_name(k->type), text);
        break;
    case PHX_CONF_STRING:
        if (!(v.s = strdup(text)))
            return phx_error_set(err, "out of memory");
        break;
    case PHX_CONF_STRLIST: {
        char *copy = strdup(text), *save = NULL;
        if (!copy)
            return phx_error_set(err, "out of memory");
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            t += strspn(t, " \t"); /* "a:1, b:2": blanks around items dropped */
            for (char *e = t + strlen(t); e > t && (e[-1] == ' ' || e[-1] == '\t');)
                *--e = '\0';
            if (!*t)
                continue;
            if (list_append(&v, t) < 0) {
                free(copy);
                value_clear(&v);
                return phx_error_set(err, "out of memory");
            }
        }
        free(copy);
        break;
    }
    case PHX_CONF_FOREIGN:
        return phx_error_set(err, "%ssetting \"%s\" is a group", where, k->path);
    }
    v.present = true;
    *out = v;
    return 0;
}

static int parse_setting(const phx_conf_key_t *k, config_setting_t *s,
                         const char *where, conf_value_t *out, phx_error_t *err)
{
    conf_value_t v = {0};
    int t = config_setting_type(s);
    switch (k->type) {
    case PHX_CONF_INT:
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
            goto wrong_type;
        v.i = config_setting_get_int64(s);
        if (check_bounds(k, (double)v.i, where, err) < 0)
            return -1;
        break;
    case PHX_CONF_DOUBLE:
        if (t == CONFIG_TYPE_FLOAT)
            v.d = config_setting_get_float(s);
        else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
            v.d = (double)config_setting_get_int64(s);
        else
            goto wrong_type;
        if (check_bounds(k, v.d, where, err) < 0)
            return -1;
        break;
    case PHX_CONF_BOOL:
        if (t != CONFIG_TYPE_BOOL)
            goto wrong_type;
        v.b = config_setting_get_bool(s);
        break;
    case PHX_CONF_STRING:
        if (t != CONFIG_TYPE_STRING)
            goto wrong_type;
        if (!(v.s = strdup(config_setting_get_string(s))))
            return phx_error_set(err, "out of memory");
        break;
    case PHX_CONF_STRLIST:
        if (t == CONFIG_TYPE_STRING && one_string_list(k->path)) {
            /* one string: a list of one, or comma-separated, as with -s */
            if (parse_text(k, config_setting_get_string(s), where, &v, err) < 0)
                return -1;
            break;
        }
        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
            goto wrong_type;
        for (int i = 0; i < config_setting_length(s); i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                value_clear(&v);
                goto wrong_type;
            }
            if (list_append(&v, config_setting_get_string(e)) < 0) {
                value_clear(&v);
                return phx_error_set(err, "out of memory");
            }
        }
        break;
    case PHX_CONF_FOREIGN: return 0;
    }
    v.present = v.set = true;
    *out = v;
    return 0;
wrong_type:
    return phx_error_set(err, "%ssetting \"%s\" must be %s", where, k->path,
                         type_name(k->type));
}

static int walk(phx_conf_t *conf, config_setting_t *group, const char *prefix,
                const char *fallback_file, phx_error_t *err)
{
    for (int i = 0; i < config_setting_length(group); i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        const char *file = config_setting_source_file(s);
        char path[256], where[320];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "",
                 name ? name : "?");
        snprintf(where, sizeof(where), "%s:%u: ", file ? file : fallback_file,
                 config_setting_source_line(s));
        int k = find_key(conf, path);
        if (k >= 0 && conf->schema[k].type == PHX_CONF_FOREIGN)
            continue;
        if (config_setting_is_group(s)) {
            if (!is_group(conf, path))
                return phx_error_set(err, "%sunknown group \"%s\"", where, path);
            if (walk(conf, s, path, fallback_file, err) < 0)
                return -1;
            continue;
        }
        if (k < 0)
            return phx_error_set(err, "%sunknown setting \"%s\"", where, path);
        conf_value_t v;
        if (parse_setting(&conf->schema[k], s, where, &v, err) < 0)
            return -1;
        value_clear(&conf->values[k]);
        conf->values[k] = v;
    }
    return 0;
}

static phx_conf_t *conf_create(const phx_conf_key_t *schema, phx_error_t *err)
{
    phx_conf_t *conf = calloc(1, sizeof(*conf));
    if (!conf)
        goto oom;
    conf->schema = schema;
    while (schema[conf->nkeys].path)
        conf->nkeys++;
    conf->values = calloc(conf->nkeys + 1, sizeof(*conf->values));
    if (!conf->values)
        goto oom;
    for (size_t i = 0; i < conf->nkeys; i++) {
        const phx_conf_key_t *k = &schema[i];
        if (!k->def || k->type == PHX_CONF_FOREIGN)
            continue;
        if (parse_text(k, k->def, "default: ", &conf->values[i], err) < 0) {
            phx_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
oom:
    phx_conf_destroy(conf);
    phx_error_set(err, "out of memory");
    errno = ENOMEM;
    return NULL;
}

static phx_conf_t *conf_read(const phx_conf_key_t *schema, const char *file,
                             const char *text, const char *name, phx_error_t *err)
{
    phx_conf_t *conf = conf_create(schema, err);
    if (!conf)
        return NULL;
    if (!file && !text)
        return conf;
    config_t cfg;
    config_init(&cfg);
    int ok = file ? config_read_file(&cfg, file) : config_read_string(&cfg, text);
    if (ok != CONFIG_TRUE) {
        const char *efile = config_error_file(&cfg);
        if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
            phx_error_set(err, "could not read configuration file \"%s\": %s", file,
                          strerror(errno ? errno : ENOENT));
        else
            phx_error_set(err, "%s:%d: %s", efile ? efile : name,
                          config_error_line(&cfg), config_error_text(&cfg));
        goto error;
    }
    if (walk(conf, config_root_setting(&cfg), "", name, err) < 0)
        goto error;
    config_destroy(&cfg);
    return conf;
error:
    config_destroy(&cfg);
    phx_conf_destroy(conf);
    errno = EINVAL;
    return NULL;
}

phx_conf_t *phx_conf_load(const phx_conf_key_t *schema, const char *file,
                          phx_error_t *err)
{
    return conf_read(schema, file, NULL, file, err);
}

phx_conf_t *phx_conf_load_string(const phx_conf_key_t *schema, const char *text,
                                 const char *name, phx_error_t *err)
{
    return conf_read(schema, NULL, text ? text : "", name ? name : "<string>", err);
}

void phx_conf_destroy(phx_conf_t *conf)
{
    int saved = errno;
    if (conf) {
        for (size_t i = 0; conf->values && i < conf->nkeys; i++)
            value_clear(&conf->values[i]);
        free(conf->values);
        free(conf);
    }
    errno = saved;
}

int phx_conf_set(phx_conf_t *conf, const char *assignment, phx_error_t *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return phx_error_set(err, "override \"%s\" must be key=value", assignment);
    char path[256];
    size_t n = (size_t)(eq - assignment);
    if (n >= sizeof(path))
        return phx_error_set(err, "override key too long");
    memcpy(path, assignment, n);
    path[n] = '\0';
    int k = find_key(conf, path);
    if (k < 0 || conf->schema[k].type == PHX_CONF_FOREIGN)
        return phx_error_set(err, "override: unknown setting \"%s\"", path);
    conf_value_t v;
    if (parse_text(&conf->schema[k], eq + 1, "override: ", &v, err) < 0)
        return -1;
    v.set = true;
    value_clear(&conf->values[k]);
    conf->values[k] = v;
    return 0;
}

static const conf_value_t *get(const phx_conf_t *conf, const char *path,
                               phx_conf_type_t type)
{
    int k = find_key(conf, path);
    if (k < 0 || conf->schema[k].type != type) {
        fprintf(stderr, "BUG: configuration key \"%s\" not in schema as %s\n", path,
                type_name(type));
        abort();
    }
    return &conf->values[k];
}

long long phx_conf_int(const phx_conf_t *conf, const char *path)
{
    return get(conf, path, PHX_CONF_INT)->i;
}

double phx_conf_double(const phx_conf_t *conf, const char *path)
{
    return get(conf, path, PHX_CONF_DOUBLE)->d;
}

bool phx_conf_bool(const phx_conf_t *conf, const char *path)
{
    return get(conf, path, PHX_CONF_BOOL)->b;
}

const char *phx_conf_str(const phx_conf_t *conf, const char *path)
{
    return get(conf, path, PHX_CONF_STRING)->s;
}

size_t phx_conf_list_len(const phx_conf_t *conf, const char *path)
{
    return get(conf, path, PHX_CONF_STRLIST)->nlist;
}

const char *phx_conf_list_get(const phx_conf_t *conf, const char *path, size_t i)
{
    const conf_value_t *v = get(conf, path, PHX_CONF_STRLIST);
    return i < v->nlist ? v->list[i] : NULL;
}

bool phx_conf_is_set(const phx_conf_t *conf, const char *path)
{
    int k = find_key(conf, path);
    return k >= 0 && conf->values[k].set;
}

void phx_conf_dump(const phx_conf_t *conf, FILE *out)
{
    for (size_t i = 0; i < conf->nkeys; i++) {
        const phx_conf_key_t *k = &conf->schema[i];
        const conf_value_t *v = &conf->values[i];
        if (k->type == PHX_CONF_FOREIGN)
            continue;
        fprintf(out, "%s = ", k->path);
        if (!v->present) {
            fprintf(out, "(unset)\n");
            continue;
        }
        switch (k->type) {
        case PHX_CONF_INT: fprintf(out, "%lld\n", v->i); break;
        case PHX_CONF_DOUBLE: fprintf(out, "%g\n", v->d); break;
        case PHX_CONF_BOOL: fprintf(out, "%s\n", v->b ? "true" : "false"); break;
        case PHX_CONF_STRING: fprintf(out, "\"%s\"\n", v->s); break;
        case PHX_CONF_STRLIST:
            fprintf(out, "[");
            for (size_t j = 0; j < v->nlist; j++)
                fprintf(out, "%s\"%s\"", j ? ", " : "", v->list[j]);
            fprintf(out, "]\n");
            break;
        case PHX_CONF_FOREIGN: break;
        }
    }
}

static bool value_equal(phx_conf_type_t type, const conf_value_t *x,
                        const conf_value_t *y)
{
    if (x->present != y->present)
        return false;
    switch (type) {
    case PHX_CONF_INT: return x->i == y->i;
    case PHX_CONF_DOUBLE: return x->d == y->d;
    case PHX_CONF_BOOL: return x->b == y->b;
    case PHX_CONF_STRING: return strcmp(x->s ? x->s : "", y->s ? y->s : "") == 0;
    case PHX_CONF_STRLIST:
        if (x->nlist != y->nlist)
            return false;
        for (size_t i = 0; i < x->nlist; i++)
            if (strcmp(x->list[i], y->list[i]) != 0)
                return false;
        return true;
    case PHX_CONF_FOREIGN: return true;
    }
    return true;
}

int phx_conf_take_reloadable(phx_conf_t *conf, phx_conf_t *fresh,
                             phx_conf_changed_f changed, void *arg)
{
    if (conf->schema != fresh->schema) {
        fprintf(stderr, "BUG: reloading a configuration of another schema\n");
        abort();
    }
    int applied = 0;
    for (size_t i = 0; i < conf->nkeys; i++) {
        const phx_conf_key_t *k = &conf->schema[i];
        if (value_equal(k->type, &conf->values[i], &fresh->values[i]))
            continue;
        if (k->reloadable) {
            conf_value_t v = conf->values[i];
            conf->values[i] = fresh->values[i];
            fresh->values[i] = v;
            applied++;
        }
        if (changed)
            changed(k->path, k->reloadable, arg);
    }
    return applied;
}
