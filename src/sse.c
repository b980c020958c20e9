/* sse.c — GET /events as Server-Sent Events (see sse.h).
 *
 * The hand-off between a client's thread and libmicrohttpd: the thread
 * appends messages to the client's buffer; libmicrohttpd's pool thread
 * drains it through the content reader callback.  When the buffer is empty
 * the callback suspends the connection (the documented place to do so) and
 * returns 0; the thread resumes it after appending.  Both sides hold the
 * client's lock while they look at the buffer and the `suspended` flag, so
 * a resume always follows its suspend. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "events.h"
#include "log.h"
#include "sse.h"
#include "store.h"
#include "util.h"

#define SSE_HEARTBEAT_MS 15000
#define SSE_WAIT_MS 1000      /* each blocking read: bounds how fast a stop is seen */
#define SSE_BUFFER_MAX (4 << 20) /* a client this far behind is cut off */

struct sse_hub {
    const struct config *c;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             nclients;   /* client threads running */
    int             stopping;
};

struct sse_client {
    struct sse_hub        *hub;
    struct MHD_Connection *conn;
    pthread_mutex_t        mu;
    struct strbuf          buf;       /* messages not yet taken by libmicrohttpd */
    size_t                 off;       /* bytes of buf already taken */
    int                    suspended; /* the callback parked the connection */
    int                    closed;    /* the thread is done: end after buf */
    int                    gone;      /* libmicrohttpd is done with us */
    int                    refs;      /* the thread and the response */
    struct ev_reader      *er;
};

struct sse_hub *
sse_hub_new(const struct config *c)
{
    struct sse_hub *h = xcalloc(1, sizeof *h);
    h->c = c;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    return h;
}

void
sse_hub_stop(struct sse_hub *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    while (h->nclients > 0)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

/* release drops one reference; the last one frees the client. */
static void
release(struct sse_client *c)
{
    int left;
    pthread_mutex_lock(&c->mu);
    left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left > 0)
        return;
    ev_reader_free(c->er);
    sb_free(&c->buf);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* push appends text for the client and wakes its connection.  -1 when the
 * client is gone or too far behind (the thread then ends). */
static int
push(struct sse_client *c, const char *text, size_t n, int close)
{
    int wake = 0, rc = 0;

    pthread_mutex_lock(&c->mu);
    if (c->gone) {
        rc = -1;
    } else if (c->buf.len - c->off + n > SSE_BUFFER_MAX) {
        log_warn("events: a client fell %d MiB behind; closing its stream",
                 SSE_BUFFER_MAX >> 20);
        close = 1;
        rc = -1;
    } else if (n) {
        sb_append(&c->buf, text, n);
    }
    if (close)
        c->closed = 1;
    if (!c->gone && c->suspended) {
        c->suspended = 0;
        wake = 1;
    }
    pthread_mutex_unlock(&c->mu);
    /* The connection cannot finish while suspended, so conn is valid. */
    if (wake)
        MHD_resume_connection(c->conn);
    return rc;
}

/* format appends one SSE message per event. */
static void
format(struct strbuf *sb, json_t *events)
{
    size_t i;
    json_t *ev;

    json_array_foreach(events, i, ev) {
        char *txt = json_dumps(ev, JSON_COMPACT);
        sb_printf(sb, "id: %s\ndata: %s\n\n", json_string_value(json_object_get(ev, "id")) ?: "",
                  txt ? txt : "{}");
        free(txt);
    }
}

static int
hub_stopping(struct sse_hub *h)
{
    int s;
    pthread_mutex_lock(&h->mu);
    s = h->stopping;
    pthread_mutex_unlock(&h->mu);
    return s;
}

static int64_t
heartbeat_ms(const struct config *c)
{
    int64_t half = (int64_t)c->http_connection_timeout * 500;
    return half > 0 && half < SSE_HEARTBEAT_MS ? half : SSE_HEARTBEAT_MS;
}

static void *
client_main(void *arg)
{
    struct sse_client *c = arg;
    struct sse_hub *h = c->hub;
    char err[256];
    struct store *st = store_open(h->c->redis, err, sizeof err);
    int64_t beat = heartbeat_ms(h->c), last = mono_ms();
    int down = 0;

    while (st && !hub_stopping(h)) {
        json_t *out = json_array();
        struct strbuf sb = { 0 };
        int n = ev_reader_read(c->er, st, SSE_WAIT_MS, out);
        if (n < 0) {
            if (!down++)
                log_warn("events: cannot read the event streams: %s", st->err);
            sleep_ms(SSE_WAIT_MS);
        } else {
            down = 0;
        }
        format(&sb, out);
        json_decref(out);
        if (!sb.len && mono_ms() - last >= beat)
            sb_puts(&sb, ": keep-alive\n\n");
        if (sb.len)
            last = mono_ms();
        n = push(c, sb.buf, sb.len, 0);
        sb_free(&sb);
        if (n < 0)
            break;
    }
    push(c, NULL, 0, 1);
    store_close(st);
    release(c);
    pthread_mutex_lock(&h->mu);
    h->nclients--;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* reader is libmicrohttpd's content callback: hand out what is buffered,
 * end the stream once closed, else park the connection until push(). */
static ssize_t
reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sse_client *c = cls;
    size_t n;

    (void)pos;
    pthread_mutex_lock(&c->mu);
    if (c->off < c->buf.len) {
        n = c->buf.len - c->off;
        if (n > max)
            n = max;
        memcpy(buf, c->buf.buf + c->off, n);
        c->off += n;
        if (c->off == c->buf.len) {
            c->off = c->buf.len = 0;
            c->buf.buf[0] = '\0';
        }
        pthread_mutex_unlock(&c->mu);
        return (ssize_t)n;
    }
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    c->suspended = 1;
    MHD_suspend_connection(c->conn);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static void
reader_done(void *cls)
{
    struct sse_client *c = cls;
    pthread_mutex_lock(&c->mu);
    c->gone = 1;
    pthread_mutex_unlock(&c->mu);
    release(c);
}

/* valid_id accepts a stream id: "<ms>" or "<ms>-<seq>". */
static int
valid_id(const char *s)
{
    const char *p = s;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 20)
        return 0;
    p += n;
    if (*p == '\0')
        return 1;
    if (*p++ != '-')
        return 0;
    n = strspn(p, "0123456789");
    return n > 0 && n <= 20 && p[n] == '\0';
}

static int
check_param(void *cls, const char *k, const char *v)
{
    (void)v;
    if (strcmp(k, "queue") && strcmp(k, "type") && strcmp(k, "status") && strcmp(k, "since")) {
        snprintf(cls, 256, "unknown query parameter '%.100s' (known: queue, type, status, since)",
                 k);
        return 1;
    }
    return 0;
}

/* parse_query fills f and since from the request; -1 having answered. */
static int
parse_query(struct http_req *r, const char *app, struct ev_filter *f, char qint[129],
            const char **since, enum MHD_Result *ret)
{
    char err[256];
    const char *q = http_query(r, "queue"), *t = http_query(r, "type"),
               *s = http_query(r, "status"), *last = http_header(r, "Last-Event-ID");

    if (http_query_each(r, check_param, err)) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "%s", err);
        return -1;
    }
    if (q && *q) {
        if (!valid_name(q) || auth_queue_internal(app, q, qint) < 0) {
            *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'queue' must match [A-Za-z0-9._:-]{1,128}");
            return -1;
        }
        f->queue = qint;
    }
    if (t && *t) {
        if (!valid_name(t)) {
            *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'type' must match [A-Za-z0-9._:-]{1,128}");
            return -1;
        }
        f->type = t;
    }
    if (s && *s) {
        if (!ev_status_ok(s)) {
            *ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                              "'status' must be waiting, delayed, processing, progress, completed, "
                              "failed or canceled (comma-separated for several)");
            return -1;
        }
        f->status = s;
    }
    /* A reconnecting EventSource sends Last-Event-ID; ?since= does the same
     * for clients that cannot set headers. */
    *since = last && *last ? last : http_query(r, "since");
    if (*since && !**since)
        *since = NULL;
    if (*since && !valid_id(*since)) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'%s' must be an event id such as "
                          "1700000000000-0", last && *last ? "Last-Event-ID" : "since");
        return -1;
    }
    f->app = app;
    return 0;
}

/* admit counts a new client in, unless full or stopping. */
static int
admit(struct sse_hub *h)
{
    int ok;
    pthread_mutex_lock(&h->mu);
    ok = !h->stopping && h->nclients < SSE_MAX_CLIENTS;
    if (ok)
        h->nclients++;
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static void
leave(struct sse_hub *h)
{
    pthread_mutex_lock(&h->mu);
    h->nclients--;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

enum MHD_Result
sse_serve(struct sse_hub *h, struct http_req *r, const char *app)
{
    struct ev_filter f = { 0 };
    struct sse_client *c;
    struct MHD_Response *resp;
    pthread_attr_t attr;
    pthread_t t;
    const char *since = NULL;
    char qint[129];
    enum MHD_Result ret;
    int started;

    if (parse_query(r, app, &f, qint, &since, &ret) < 0)
        return ret;
    if (!admit(h))
        return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "Too many event streams are open (at most %d); retry later.",
                          SSE_MAX_CLIENTS);
    c = xcalloc(1, sizeof *c);
    c->hub = h;
    c->conn = r->conn;
    c->refs = 2;
    pthread_mutex_init(&c->mu, NULL);
    c->er = ev_reader_new(h->c->prefix, &f, since);
    /* Sent at once: the client sees the stream open before any event. */
    sb_puts(&c->buf, "retry: 2000\n: connected\n\n");
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, c, reader_done);
    if (!resp) {
        c->refs = 1;
        release(c);
        leave(h);
        return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Cannot open an event stream.");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&t, &attr, client_main, c) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        /* Only the response holds the client now: ending it frees it. */
        c->refs = 1;
        c->closed = 1;
        leave(h);
    }
    return http_respond(r, MHD_HTTP_OK, resp);
}
