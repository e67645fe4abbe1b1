/* Event streams of the scheduler API: the answer to SUBSCRIBE stays open
 * and carries RecordIO records ("<length>\n<json>"), one record per HTTP
 * chunk, JSON with non-ASCII escaped (what Mesos' v1 clients read).
 *
 * What waits for a framework that does not read is bounded
 * (master.max_stream_buffer): any munge user may subscribe frameworks, and
 * the master kept queueing OFFERS, RESCINDs and HEARTBEATs for one that
 * never read, without end.  Past the bound the connection is shut down:
 * libevent then closes it as if the framework had gone (its failover
 * timeout runs; its unacknowledged updates go out again when it
 * resubscribes), and nothing more is queued meanwhile. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemons/master/sched.h"
#include "lib/http_limit.h"
#include "lib/json.h"
#include "lib/log.h"

struct phx_stream {
    phx_master_t *m;
    phx_fw_t *fw;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    bool closed;
    bool overflowed; /* shut down for not reading: closing */
};

static void stream_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    phx_stream_t *s = arg;
    /* A client that goes away in the middle of the reply leaves the request
     * detached from its connection, to be freed by us (libevent frees an
     * attached one itself). */
    if (s->req && !evhttp_request_get_connection(s->req))
        evhttp_send_reply_end(s->req);
    s->closed = true;
    s->req = NULL;
    s->conn = NULL;
    phx_fw_t *fw = s->fw;
    if (fw && fw->stream == s) {
        phx_log_notice("framework %s (%s): event stream closed", fw->id, fw->name);
        fw->stream = NULL;
        phx_fw_disconnected(s->m, fw);
    }
    free(s);
}

phx_stream_t *phx_stream_open(phx_master_t *m, phx_fw_t *fw, struct evhttp_request *req)
{
    phx_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->m = m;
    s->fw = fw;
    s->req = req;
    s->conn = evhttp_request_get_connection(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Mesos-Stream-Id", fw->stream_id);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_send_reply_start(req, 200, "OK");
    phx_http_conn_closecb(s->conn, stream_closed, s);
    /* The stream's HEARTBEATs are what keeps it from master.http_timeout
     * (libevent times out its read side, watching for a close, whenever
     * nothing is written): keep it longer than a few of them. */
    double hb = phx_conf_double(m->conf, "master.framework_heartbeat");
    double idle = phx_conf_double(m->conf, "master.http_timeout");
    if (s->conn && idle < 3 * hb) {
        struct timeval tv = {(time_t)(3 * hb), 0};
        evhttp_connection_set_timeout_tv(s->conn, &tv);
    }
    return s;
}

void phx_stream_send(phx_stream_t *s, json_t *event)
{
    if (!s || s->closed || !event) {
        json_decref(event);
        return;
    }
    char *text = phx_json_dump(event);
    json_decref(event);
    if (!text || s->overflowed) {
        free(text);
        return;
    }
    struct bufferevent *bev =
        s->conn ? evhttp_connection_get_bufferevent(s->conn) : NULL;
    size_t queued = bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
    size_t max = (size_t)phx_conf_int(s->m->conf, "master.max_stream_buffer");
    if (bev && queued > max) { /* one event, however large, always goes */
        phx_log_warnx("framework %s (%s): not reading its event stream (%zu bytes "
                      "waiting, master.max_stream_buffer %zu): disconnecting it",
                      s->fw ? s->fw->id : "?", s->fw ? s->fw->name : "?", queued, max);
        s->overflowed = true;
        shutdown(bufferevent_getfd(bev), SHUT_RDWR); /* libevent closes it */
        free(text);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (buf) {
        evbuffer_add_printf(buf, "%zu\n", strlen(text));
        evbuffer_add(buf, text, strlen(text));
        evhttp_send_reply_chunk(s->req, buf);
        evbuffer_free(buf);
    }
    free(text);
}

/* Detach the stream from its framework and end the HTTP answer; the memory
 * goes when the connection closes. */
void phx_stream_close(phx_stream_t *s)
{
    if (!s)
        return;
    s->fw = NULL;
    if (!s->closed && s->req) {
        struct evhttp_request *req = s->req;
        s->req = NULL; /* finished: libevent frees it */
        evhttp_send_reply_end(req);
        /* Close the connection so that the client sees the end at once. */
        if (s->conn)
            evhttp_connection_free_on_completion(s->conn);
    }
}

void phx_stream_heartbeat_all(phx_master_t *m)
{
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
        phx_fw_t *fw = v;
        if (fw->stream)
            phx_stream_send(fw->stream, json_pack("{s:s}", "type", "HEARTBEAT"));
    }
}
