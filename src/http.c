/* http.c — JSON-over-HTTP on libmicrohttpd (see http.h).
 *
 * libmicrohttpd calls on_request several times per request: once when the
 * headers are in (we route, and answer 404/405/413/415 right there without
 * reading a byte of body), once per piece of body (accumulated up to
 * max_body), and once more when the request is complete (we run the route).
 * A parked request is called once more after http_resume_json. */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "util.h"

struct http_server {
    struct MHD_Daemon *d;
    struct http_opts   o;
    struct sockaddr_storage addr;
    int                port;
    int                starting;   /* the logger keeps the error while 1 */
    char               starterr[256];
    int                inflight;   /* requests begun and not completed (atomic) */
};

#define STOP_GRACE_MS 2000 /* how long http_stop lets answers go out */

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

const char *
http_reason(unsigned status)
{
    const char *s = MHD_get_reason_phrase_for(status);
    return s && *s ? s : "Unknown";
}

/* ---- answers ---- */

/* queue_answer queues resp (and always drops our reference to it).  The
 * status is remembered only when libmicrohttpd took the answer: in the
 * middle of a body upload it may refuse, and then the caller answers again
 * when the request is complete. */
static enum MHD_Result
queue_answer(struct http_req *r, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES)
        r->status = (int)status;
    return ret;
}

/* json_response renders body (stolen) as a response; NULL on OOM. */
static struct MHD_Response *
json_response(json_t *body)
{
    struct MHD_Response *resp;
    char *txt = json_dumps(body ? body : json_null(), JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    size_t n;

    json_decref(body);
    if (!txt)
        return NULL;
    /* A final newline keeps shells tidy after `curl`. */
    n = strlen(txt);
    txt = xrealloc(txt, n + 2);
    txt[n] = '\n';
    txt[n + 1] = '\0';
    resp = MHD_create_response_from_buffer(n + 1, txt, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(txt);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json; charset=utf-8");
    return resp;
}

enum MHD_Result
http_json(struct http_req *r, unsigned status, json_t *body)
{
    return queue_answer(r, status, json_response(body));
}

json_t *
http_error_body(unsigned status, const char *msg)
{
    /* A message that echoes the request (a path, a name cut at 100 bytes
     * in the middle of a character) may not be valid UTF-8. */
    json_t *m = json_lossy(msg, strlen(msg));

    return json_pack("{s:i, s:s, s:o}", "statusCode", (int)status, "error",
                     http_reason(status), "message", m);
}

static enum MHD_Result
verror(struct http_req *r, unsigned status, json_t *extra, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static enum MHD_Result
verror(struct http_req *r, unsigned status, json_t *extra, const char *fmt, va_list ap)
{
    char msg[1024];
    json_t *body;

    vsnprintf(msg, sizeof msg, fmt, ap);
    body = http_error_body(status, msg);
    if (extra)
        json_object_update_missing(body, extra);
    json_decref(extra);
    return http_json(r, status, body);
}

enum MHD_Result
http_error(struct http_req *r, unsigned status, const char *fmt, ...)
{
    enum MHD_Result ret;
    va_list ap;
    va_start(ap, fmt);
    ret = verror(r, status, NULL, fmt, ap);
    va_end(ap);
    return ret;
}

enum MHD_Result
http_error_json(struct http_req *r, unsigned status, json_t *extra, const char *fmt, ...)
{
    enum MHD_Result ret;
    va_list ap;
    va_start(ap, fmt);
    ret = verror(r, status, extra, fmt, ap);
    va_end(ap);
    return ret;
}

enum MHD_Result
http_error_header(struct http_req *r, unsigned status, const char *header, const char *value,
                  const char *fmt, ...)
{
    struct MHD_Response *resp;
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!(resp = json_response(http_error_body(status, msg))))
        return MHD_NO;
    MHD_add_response_header(resp, header, value);
    return queue_answer(r, status, resp);
}

enum MHD_Result
http_text(struct http_req *r, unsigned status, const char *ctype, const char *text,
          size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (resp)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    return queue_answer(r, status, resp);
}

enum MHD_Result
http_empty(struct http_req *r, unsigned status)
{
    return queue_answer(r, status,
                        MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

enum MHD_Result
http_respond(struct http_req *r, unsigned status, struct MHD_Response *resp)
{
    return queue_answer(r, status, resp);
}

/* ---- parking ---- */

enum MHD_Result
http_suspend(struct http_req *r)
{
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    return MHD_YES;
}

void
http_resume_json(struct http_req *r, unsigned status, json_t *body)
{
    if (status == MHD_HTTP_NO_CONTENT && !body)
        r->pending = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    else
        r->pending = json_response(body);
    r->pending_status = (int)status;
    /* MHD_resume_connection takes the daemon's lock: it publishes pending
     * to the pool thread that picks the connection up again. */
    MHD_resume_connection(r->conn);
}

/* ---- requests ---- */

const char *
http_header(struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
http_query(struct http_req *r, const char *name)
{
    const char *v = NULL;
    size_t vlen = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      &vlen) != MHD_YES)
        return NULL;
    return v ? v : "";
}

struct each_ctx {
    int (*fn)(void *cls, const char *k, const char *v);
    void *cls;
    int rc;
};

static enum MHD_Result
each_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct each_ctx *e = cls;
    (void)kind;
    e->rc = e->fn(e->cls, key, value ? value : "");
    return e->rc ? MHD_NO : MHD_YES;
}

int
http_query_each(struct http_req *r, int (*fn)(void *cls, const char *k, const char *v),
                void *cls)
{
    struct each_ctx e = { fn, cls, 0 };
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, each_arg, &e);
    return e.rc;
}

/* match tells whether path fits pattern, capturing ":" segments into
 * params (malloc'd) when it does.  A trailing "/" on the path is ignored. */
static int
match(const char *pattern, const char *path, char **params, int *nparams)
{
    const char *p = pattern, *u = path;
    int n = 0;

    while (*p == '/' && *u == '/') {
        const char *pe = strchr(p + 1, '/'), *ue = strchr(u + 1, '/');
        size_t pl = pe ? (size_t)(pe - p - 1) : strlen(p + 1);
        size_t ul = ue ? (size_t)(ue - u - 1) : strlen(u + 1);
        if (ul == 0 && !ue && !pe && pl > 0)
            goto no;                         /* "/jobs/" against "/jobs/:id" */
        if (ul == 0 && ue)
            goto no;                         /* "//" */
        if (p[1] == ':') {
            if (n == HTTP_MAX_PARAMS)
                goto no;
            params[n++] = strndup(u + 1, ul);
        } else if (pl != ul || strncmp(p + 1, u + 1, pl) != 0) {
            goto no;
        }
        p += 1 + pl;
        u += 1 + ul;
    }
    if (*p == '\0' && (*u == '\0' || strcmp(u, "/") == 0)) {
        *nparams = n;
        return 1;
    }
no:
    while (n > 0)
        free(params[--n]);
    return 0;
}

static int
literal_segments(const char *pattern)
{
    int n = 0;
    for (const char *p = pattern; *p; p++)
        if (*p == '/' && p[1] && p[1] != ':')
            n++;
    return n;
}

/* route picks the route for the request.  Of the patterns that fit the
 * path, the most literal ones win ("/jobs/bulk" over "/jobs/:id"); among
 * those, the method decides.  No fit: NULL with allow[0] == 0 (404); a fit
 * but not for this method: NULL with allow listing the methods (405). */
static const struct http_route *
route(const struct http_server *s, struct http_req *r, char *allow, size_t allowlen)
{
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    const struct http_route *found = NULL;
    char *params[HTTP_MAX_PARAMS];
    int best = -1, n;

    allow[0] = '\0';
    for (size_t i = 0; i < s->o.nroutes; i++) {
        const struct http_route *rt = &s->o.routes[i];
        int lit = literal_segments(rt->pattern);
        if (lit < best || !match(rt->pattern, r->url, params, &n))
            continue;
        if (lit > best) {
            best = lit;
            allow[0] = '\0';
            if (found) {
                while (r->nparams > 0)
                    free(r->params[--r->nparams]);
                found = NULL;
            }
        }
        size_t used = strlen(allow);
        snprintf(allow + used, allowlen - used, "%s%s%s", used ? ", " : "", rt->method,
                 strcmp(rt->method, "GET") == 0 ? ", HEAD" : "");
        if (!found && strcmp(rt->method, method) == 0) {
            found = rt;
            memcpy(r->params, params, sizeof(char *) * (size_t)n);
            r->nparams = n;
        } else {
            while (n > 0)
                free(params[--n]);
        }
    }
    return found;
}

/* is_json_type accepts application/json and application/<x>+json, with
 * optional parameters such as "; charset=utf-8". */
static int
is_json_type(const char *ct)
{
    size_t n;
    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* not_routed answers 404, or 405 with the Allow header. */
static enum MHD_Result
not_routed(struct http_req *r)
{
    struct MHD_Response *resp;
    char msg[256];

    if (!r->allow[0])
        return http_error(r, MHD_HTTP_NOT_FOUND, "Route %s %.100s not found.", r->method, r->url);
    snprintf(msg, sizeof msg, "Method %s is not allowed on %.100s; allowed: %s.", r->method,
             r->url, r->allow);
    resp = json_response(http_error_body(MHD_HTTP_METHOD_NOT_ALLOWED, msg));
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    return queue_answer(r, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
}

static enum MHD_Result
too_large(struct http_server *s, struct http_req *r)
{
    return http_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
                      "Request body is larger than the limit of %zu bytes.", s->o.max_body);
}

/* begin routes a request whose headers are in, and answers 413 and 415
 * right away: libmicrohttpd then closes the connection without reading
 * the body.  404 and 405 wait for the end of the request so that the
 * connection can be kept alive. */
static enum MHD_Result
begin(struct http_server *s, struct http_req *r)
{
    const char *cl, *ct;

    r->route = route(s, r, r->allow, sizeof r->allow);
    cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->o.max_body) {
        r->too_large = 1;
        return too_large(s, r);
    }
    ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (r->route && (r->route->flags & HTTP_JSON_BODY) && !is_json_type(ct))
        return http_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                          "Content-Type must be application/json (got '%.100s').",
                          ct ? ct : "none");
    return MHD_YES;
}

/* take_body appends a piece of the body.  A chunked body (no length given
 * up front) that passes the limit cannot be answered before it ends
 * (libmicrohttpd 0.9 queues no answer mid-body): it is dropped from then
 * on and answered 413 at its end, unless it goes on to several times the
 * limit, when the connection is cut.  0, or -1 to cut. */
static int
take_body(struct http_server *s, struct http_req *r, const char *data, size_t n)
{
    if (r->status)
        return 0;
    if (r->too_large || r->body.len + n > s->o.max_body) {
        if (!r->too_large) {
            r->too_large = 1;
            r->dropped = r->body.len;
            sb_free(&r->body);
        }
        r->dropped += n;
        return r->dropped / 4 > s->o.max_body ? -1 : 0;
    }
    sb_append(&r->body, data, n);
    return 0;
}

/* finish runs the route once the whole request is in. */
static enum MHD_Result
finish(struct http_server *s, struct http_req *r)
{
    json_error_t je;
    enum MHD_Result ret;

    if (r->too_large)
        return too_large(s, r);
    /* Credentials before anything else, 404 included: a caller without a
     * key learns nothing about the API, not even which paths exist. */
    if (s->o.authorize && !(r->route && (r->route->flags & HTTP_PUBLIC)) &&
        s->o.authorize(r, &ret))
        return ret;
    if (!r->route)
        return not_routed(r);
    if (r->route->flags & HTTP_JSON_BODY) {
        if (!r->body.len)
            return http_error(r, MHD_HTTP_BAD_REQUEST, "Request body is empty; expected JSON.");
        /* Duplicate keys are refused: which one wins differs between
         * parsers, and a body that means two things is not a request. */
        r->json = json_loadb(r->body.buf, r->body.len, JSON_REJECT_DUPLICATES, &je);
        if (!r->json)
            return http_error(r, MHD_HTTP_BAD_REQUEST,
                              "Invalid JSON in request body: %s (line %d, column %d, "
                              "position %d).",
                              je.text, je.line, je.column, je.position);
    }
    return r->route->fn(r);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size,
           void **con_cls)
{
    struct http_server *s = cls;
    struct http_req *r = *con_cls;

    (void)version;
    if (!r) {
        r = xcalloc(1, sizeof *r);
        r->started_ns = mono_ns();
        r->conn = conn;
        r->ud = s->o.ud;
        r->method = method;
        r->url = url;
        *con_cls = r;
        __atomic_add_fetch(&s->inflight, 1, __ATOMIC_RELAXED);
        return begin(s, r);
    }
    if (*upload_data_size) {
        int cut = take_body(s, r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return cut ? MHD_NO : MHD_YES;
    }
    if (r->pending) {
        struct MHD_Response *resp = r->pending;
        r->pending = NULL;
        r->suspended = 0;
        return queue_answer(r, (unsigned)r->pending_status, resp);
    }
    if (r->status || r->suspended)
        return MHD_YES;
    return finish(s, r);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct http_req *r = *con_cls;

    (void)conn;
    (void)toe;
    if (!r)
        return;
    if (s->o.on_done)
        s->o.on_done(r->status, (double)(mono_ns() - r->started_ns) / 1e9);
    if (r->pending)
        MHD_destroy_response(r->pending);
    while (r->nparams > 0)
        free(r->params[--r->nparams]);
    json_decref(r->json);
    sb_free(&r->body);
    free(r);
    *con_cls = NULL;
    __atomic_sub_fetch(&s->inflight, 1, __ATOMIC_RELEASE);
}

static void
on_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* on_log keeps libmicrohttpd's reason for a failed start (bind errors);
 * later messages are about single connections (resets, timeouts): debug. */
static void
on_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *s = cls;
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    /* MHD's threads may log while http_start still runs: atomic flag. */
    if (__atomic_load_n(&s->starting, __ATOMIC_ACQUIRE))
        snprintf(s->starterr, sizeof s->starterr, "%s", msg);
    else
        log_debug("http: %s", msg);
}

int
http_parse_listen(const char *listen, char *host, size_t hostlen, int *port, char *err,
                  size_t errlen)
{
    const char *colon, *hs = listen, *he;
    char *end;
    long p;

    if (listen[0] == '[') {
        he = strchr(listen, ']');
        if (!he || he[1] != ':')
            goto bad;
        hs = listen + 1;
        colon = he + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            goto bad;
        he = colon;
    }
    if ((size_t)(he - hs) >= hostlen)
        goto bad;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || p < 0 || p > 65535)
        goto bad;
    *port = (int)p;
    return 0;
bad:
    snprintf(err, errlen, "listen address '%s' must be host:port, [ipv6]:port or :port",
             listen);
    return -1;
}

/* resolve fills s->addr from the listen address. */
static int
resolve(struct http_server *s, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    char host[256], port_s[8];
    int port, rc;

    if (http_parse_listen(s->o.listen, host, sizeof host, &port, err, errlen) < 0)
        return -1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port_s, sizeof port_s, "%d", port);
    /* An empty host or "*" means every IPv4 address, as most servers do. */
    rc = getaddrinfo(!host[0] || strcmp(host, "*") == 0 ? "0.0.0.0" : host, port_s, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "listen address '%s': %s", s->o.listen, gai_strerror(rc));
        return -1;
    }
    memcpy(&s->addr, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

struct http_server *
http_start(const struct http_opts *o, char *err, size_t errlen)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;

    s->o = *o;
    if (resolve(s, err, errlen) < 0)
        goto fail;
    /* poll(), not epoll: with libmicrohttpd 0.9.75's epoll mode a burst
     * of new connections (1,000 at once) sometimes left one pool thread
     * asleep in epoll_wait with requests already in (missed edge-triggered
     * events): they stayed unanswered until the idle timeout.  poll()
     * serves the same 1,000 connections every time (tests/reliability/
     * hostile_http.sh). */
    flags |= MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES ? MHD_USE_POLL
                                                                   : MHD_USE_AUTO;
    if (s->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    __atomic_store_n(&s->starting, 1, __ATOMIC_RELEASE);
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&s->addr,
                            MHD_OPTION_THREAD_POOL_SIZE, o->threads ? o->threads : 1u,
                            MHD_OPTION_CONNECTION_TIMEOUT, o->connection_timeout,
                            MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
                            MHD_OPTION_END);
    __atomic_store_n(&s->starting, 0, __ATOMIC_RELEASE);
    if (!s->d) {
        snprintf(err, errlen, "cannot listen on %s: %s", o->listen,
                 s->starterr[0] ? s->starterr : "libmicrohttpd refused to start");
        goto fail;
    }
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s;
fail:
    free(s);
    return NULL;
}

int
http_port(const struct http_server *s)
{
    return s->port;
}

void
http_stop(struct http_server *s)
{
    MHD_socket fd;
    int64_t deadline;

    if (!s)
        return;
    /* Stop accepting, then let answers already decided (a just-resumed
     * long poll, a request in a route) go out before connections close. */
    fd = MHD_quiesce_daemon(s->d);
    deadline = mono_ms() + STOP_GRACE_MS;
    while (__atomic_load_n(&s->inflight, __ATOMIC_ACQUIRE) > 0 && mono_ms() < deadline)
        sleep_ms(5);
    MHD_stop_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    free(s);
}
