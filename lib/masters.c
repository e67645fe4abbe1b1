/* Master address lists and standby refusals: see masters.h. */
#include "lib/masters.h"

#include <stdio.h>
#include <string.h>

#include "lib/http.h"

static int add_one(phx_masters_t *l, const char *addr, size_t len, phx_error_t *err)
{
    while (len > 0 && (*addr == ' ' || *addr == '\t')) {
        addr++;
        len--;
    }
    while (len > 0 && (addr[len - 1] == ' ' || addr[len - 1] == '\t'))
        len--;
    char text[PHX_MASTER_ADDR_MAX];
    if (len == 0)
        return phx_error_set(err, "empty master address");
    if (len >= sizeof(text))
        return phx_error_set(err, "master address \"%.40s...\" is too long", addr);
    memcpy(text, addr, len);
    text[len] = '\0';
    if (l->n >= PHX_MASTERS_MAX)
        return phx_error_set(err, "more than %d master addresses (\"%s\")",
                             PHX_MASTERS_MAX, text);
    if (phx_http_parse_addr(text, l->host[l->n], sizeof(l->host[l->n]), &l->port[l->n],
                            err) < 0)
        return -1;
    l->n++;
    return 0;
}

int phx_masters_add(phx_masters_t *l, const char *text, phx_error_t *err)
{
    if (!text)
        return phx_error_set(err, "no master address");
    for (;;) {
        size_t len = strcspn(text, ",");
        if (add_one(l, text, len, err) < 0)
            return -1;
        if (!text[len])
            return 0;
        text += len + 1;
    }
}

int phx_masters_from_conf(phx_masters_t *l, const phx_conf_t *conf, const char *path,
                          phx_error_t *err)
{
    memset(l, 0, sizeof(*l));
    size_t n = phx_conf_list_len(conf, path);
    for (size_t i = 0; i < n; i++)
        if (phx_masters_add(l, phx_conf_list_get(conf, path, i), err) < 0)
            return phx_error_prefix(err, "%s", path);
    if (l->n == 0)
        return phx_error_set(err, "%s: no master address", path);
    return 0;
}

const char *phx_masters_host(const phx_masters_t *l)
{
    return l->n ? l->host[l->cur] : "";
}

int phx_masters_port(const phx_masters_t *l)
{
    return l->n ? l->port[l->cur] : 0;
}

static void format_addr(const char *host, int port, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%d", host, port);
}

const char *phx_masters_addr(const phx_masters_t *l, char *buf, size_t len)
{
    if (!l->n)
        snprintf(buf, len, "(none)");
    else
        format_addr(l->host[l->cur], l->port[l->cur], buf, len);
    return buf;
}

const char *phx_masters_all(const phx_masters_t *l, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->n && used + 1 < len; i++) {
        char one[PHX_MASTER_ADDR_MAX];
        format_addr(l->host[i], l->port[i], one, sizeof(one));
        int w = snprintf(buf + used, len - used, "%s%s", i ? "," : "", one);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
    return buf;
}

void phx_masters_next(phx_masters_t *l)
{
    if (l->n)
        l->cur = (l->cur + 1) % l->n;
}

bool phx_masters_follow(phx_masters_t *l, const char *addr)
{
    char host[PHX_MASTER_HOST_MAX];
    int port;
    if (!addr || phx_http_parse_addr(addr, host, sizeof(host), &port, NULL) < 0)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (l->port[i] == port && strcmp(l->host[i], host) == 0) {
            l->cur = i;
            return true;
        }
    return false;
}

int phx_masters_refusal(const json_t *obj, char *leader, size_t len)
{
    if (!json_is_object(obj) || !json_is_true(json_object_get(obj, "standby")))
        return 0;
    const char *l = json_string_value(json_object_get(obj, "leader"));
    snprintf(leader, len, "%s", l ? l : "");
    return 1;
}

int phx_masters_refusal_text(const char *text, size_t textlen, char *leader, size_t len)
{
    if (!text || !textlen)
        return 0;
    json_t *v = json_loadb(text, textlen, 0, NULL);
    int rc = phx_masters_refusal(v, leader, len);
    json_decref(v);
    return rc;
}
