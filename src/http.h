/* http.h — a small JSON-over-HTTP server on libmicrohttpd: a route table
 * with ":param" segments, request bodies accumulated under a size limit,
 * JSON and error responses, query parameters, and connections that can be
 * parked (suspended) while another thread prepares the answer.
 *
 * A route's function runs on one of libmicrohttpd's pool threads once the
 * whole request is in; it answers with exactly one http_json / http_error /
 * http_text / http_empty, or parks the request with http_suspend and has
 * some other thread call http_resume later. */
#ifndef JQ_HTTP_H
#define JQ_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <microhttpd.h>

#include "util.h"

#define HTTP_MAX_PARAMS 4

struct http_req;

/* http_fn handles one request; returns what http_json & co. returned. */
typedef enum MHD_Result (*http_fn)(struct http_req *r);

/* Route flags. */
enum {
    HTTP_JSON_BODY = 1, /* body must be JSON (415 / 400 otherwise); parsed into r->json */
    HTTP_PUBLIC    = 2, /* no credentials needed: the authorize hook is skipped */
    HTTP_MASTER    = 4, /* for the authorize hook: only the master key may call it */
};

struct http_route {
    const char *method;  /* "GET", "POST", "PUT", "DELETE" (GET also serves HEAD) */
    const char *pattern; /* "/jobs/:id/retry": a ":" segment matches any one segment */
    http_fn     fn;
    int         flags;
};

/* http_opts configures http_start.  routes must outlive the server. */
struct http_opts {
    const char *listen;             /* "host:port", "[v6]:port"; port 0 = any */
    unsigned    threads;            /* pool threads */
    unsigned    connection_timeout; /* seconds idle; 0 = none */
    unsigned    max_connections;
    size_t      max_body;           /* bytes; a larger body gets 413 */
    const struct http_route *routes;
    size_t      nroutes;
    void       *ud;                 /* handed to routes as r->ud */
    /* called when a request is done (answered or the client went away):
     * status 0 when no answer was sent. */
    void      (*on_done)(int status, double seconds);
    /* called once the whole request is in, before its route runs (or its
     * 404/405 is sent), except on HTTP_PUBLIC routes; r->route is NULL for
     * an unknown path.  Returns 0 to go on, or 1 having answered (401,
     * 403, 429 ...) with that answer's result in *ret.  NULL = open. */
    int       (*authorize)(struct http_req *r, enum MHD_Result *ret);
};

/* http_req is one request; valid from routing until on_done. */
struct http_req {
    struct MHD_Connection *conn;
    void       *ud;
    const char *method;
    const char *url;                     /* path, percent-decoded, no query */
    const struct http_route *route;
    char       *params[HTTP_MAX_PARAMS]; /* ":" segments of the path, in order */
    int         nparams;
    struct strbuf body;                  /* .buf NUL-terminated, NULL when empty */
    json_t     *json;                    /* parsed body (HTTP_JSON_BODY routes) */
    char        app[24];                 /* set by authorize: the calling
                                            application's id; "" = the master
                                            key, or no authorize hook */
    /* private to http.c: */
    size_t      dropped;                 /* bytes of a too large body not kept */
    int         too_large;
    char        allow[96];               /* methods of the path, for 405 */
    int         status;                  /* answer sent, 0 = none yet */
    int         suspended;
    struct MHD_Response *pending;        /* answer prepared while suspended */
    int         pending_status;
    int64_t     started_ns;
};

struct http_server;

/* http_start binds o->listen and starts the pool threads.  NULL with err
 * (e.g. "cannot listen on 127.0.0.1:8080: Address already in use"). */
struct http_server *http_start(const struct http_opts *o, char *err, size_t errlen);
/* http_port is the port actually bound (useful with port 0). */
int http_port(const struct http_server *s);
/* http_stop stops accepting, waits (up to 2 s) for requests under way to
 * be answered, then ends every connection and frees.  No request may be
 * suspended any more when it is called. */
void http_stop(struct http_server *s);

/* http_parse_listen splits "host:port" / "[v6]:port" / ":port" into host
 * (empty for any address) and port.  0, or -1 with err. */
int http_parse_listen(const char *listen, char *host, size_t hostlen, int *port,
                      char *err, size_t errlen);

/* http_query returns query parameter name (percent-decoded), or NULL when
 * absent.  A parameter given without "=" reads as "". */
const char *http_query(struct http_req *r, const char *name);
/* http_query_each calls fn for every query parameter (value "" when it has
 * no "="); stops early when fn returns non-zero, and returns that. */
int http_query_each(struct http_req *r, int (*fn)(void *cls, const char *k, const char *v),
                    void *cls);
/* http_header returns request header name, or NULL. */
const char *http_header(struct http_req *r, const char *name);

/* http_json answers status with body as JSON (steals the reference; NULL
 * answers "null").  MHD_NO only when the answer could not be queued. */
enum MHD_Result http_json(struct http_req *r, unsigned status, json_t *body);
/* http_error answers {"statusCode", "error" (reason phrase), "message"}. */
enum MHD_Result http_error(struct http_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* http_error_json is http_error with extra fields merged into the body
 * (steals extra, may be NULL). */
enum MHD_Result http_error_json(struct http_req *r, unsigned status, json_t *extra,
                                const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* http_error_header is http_error with one extra response header (e.g.
 * Retry-After on a 429, WWW-Authenticate on a 401). */
enum MHD_Result http_error_header(struct http_req *r, unsigned status, const char *header,
                                  const char *value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* http_error_body builds the error object {"statusCode", "error",
 * "message"} (a new reference), for http_json or http_resume_json. */
json_t *http_error_body(unsigned status, const char *msg);
/* http_text answers a text body (copied) with the given content type. */
enum MHD_Result http_text(struct http_req *r, unsigned status, const char *ctype,
                          const char *text, size_t len);
/* http_empty answers with no body (204). */
enum MHD_Result http_empty(struct http_req *r, unsigned status);
/* http_respond answers with a response the caller built (e.g. a stream
 * from MHD_create_response_from_callback); takes resp in every case. */
enum MHD_Result http_respond(struct http_req *r, unsigned status, struct MHD_Response *resp);

/* http_suspend parks r: return its result from the route function, then
 * call http_resume_json exactly once from any thread.  MHD_NO if the
 * server cannot suspend (then answer normally). */
enum MHD_Result http_suspend(struct http_req *r);
/* http_resume_json hands a parked request its answer (steals body; NULL
 * with status 204 answers an empty body) and wakes it. */
void http_resume_json(struct http_req *r, unsigned status, json_t *body);

/* http_reason is the reason phrase of a status code ("Not Found"). */
const char *http_reason(unsigned status);

#endif
