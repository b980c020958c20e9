/* api.c — the REST API of DESIGN.md: routes, request validation and the
 * mapping of queue results to HTTP answers.
 *
 * Each libmicrohttpd pool thread owns one Redis store (opened on its first
 * request), so requests never wait on a shared connection or lock.  A lease
 * request that finds no job and may wait (?wait=ms) is parked: a short-lived
 * waiter thread with a store of its own blocks on the queue's wake-up list,
 * so that long polls never hold a pool thread. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "handlers.h"
#include "http.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "sse.h"
#include "store.h"
#include "subscription.h"
#include "util.h"

#define LEASE_WAIT_MAX 30000  /* ms a lease request may wait for a job */
#define WAIT_SLICE 1000       /* ms per blocking wait: bounds api_stop's wait */
#define MAX_WAITERS 256       /* parked lease requests at once */
#define MAX_IDLE_STORES 32    /* waiter stores kept for reuse */
#define LIST_LIMIT_MAX 1000
#define LIST_LIMIT_DEFAULT 100

struct api {
    const struct config *c;
    struct handlers     *h;
    struct http_server  *srv;
    pthread_mutex_t      mu;
    pthread_cond_t       cv;
    struct store       **stores;  /* every pool thread's store, closed by api_stop */
    int                  nstores, capstores;
    struct store        *idle[MAX_IDLE_STORES]; /* waiter stores not in use */
    int                  nidle;
    int                  waiters; /* parked lease requests */
    int                  stopping;
    unsigned             epoch;   /* bumped when a store reconnects */
    struct sse_hub      *sse;     /* GET /events streams */
};

static __thread struct store *tls_store;
static __thread struct api *tls_api;
static __thread unsigned tls_epoch;


/* revive lets a disconnected store retry at once when another thread has
 * just reconnected (Redis is back): without it each pool thread would sit
 * out its own reconnect backoff and answer 503 for up to two seconds. */
static void
revive(struct api *a, struct store *st)
{
    unsigned e = __atomic_load_n(&a->epoch, __ATOMIC_ACQUIRE);

    store_drop_if_closed(st);
    if (st->ctx)
        return;
    if (e != tls_epoch) {
        st->next_try = 0;
        tls_epoch = e;
    }
    if (store_ready(st) == 0)
        tls_epoch = __atomic_add_fetch(&a->epoch, 1, __ATOMIC_ACQ_REL);
}

/* thread_store is the calling pool thread's store, opened on first use.
 * NULL only for a malformed Redis URL (config checked it already). */
static struct store *
thread_store(struct api *a)
{
    char err[256];

    if (tls_store && tls_api == a) {
        revive(a, tls_store);
        return tls_store;
    }
    tls_store = store_open(a->c->redis, err, sizeof err);
    tls_api = a;
    if (!tls_store) {
        log_error("api: %s", err);
        return NULL;
    }
    pthread_mutex_lock(&a->mu);
    if (a->nstores == a->capstores) {
        a->capstores = a->capstores ? 2 * a->capstores : 16;
        a->stores = xrealloc(a->stores, sizeof(struct store *) * (size_t)a->capstores);
    }
    a->stores[a->nstores++] = tls_store;
    pthread_mutex_unlock(&a->mu);
    return tls_store;
}

/* ---- answers shared by many routes ---- */

/* unprefixed drops the "redis: " that store and queue messages start with,
 * since our own messages already say Redis. */
static const char *
unprefixed(const char *msg)
{
    return strncmp(msg, "redis: ", 7) == 0 ? msg + 7 : msg;
}

/* store_error answers 503 for a queue call that failed in Redis: the
 * server is fine, its storage is not, and the client may retry. */
static enum MHD_Result
store_error(struct http_req *r, struct store *st, int rc, const char *err)
{
    metrics_redis_error();
    if (rc == Q_UNAVAILABLE || !st)
        return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Redis is unavailable (%s).",
                          unprefixed(st && st->err[0] ? st->err : "not connected"));
    return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Redis refused the command: %s",
                      unprefixed(err && *err ? err : "an error reply (see the jqrun log)"));
}

static enum MHD_Result
job_not_found(struct http_req *r, const char *id)
{
    return http_error(r, MHD_HTTP_NOT_FOUND, "Job with ID '%.100s' not found.", id);
}

/* NEED_STORE fetches the thread's store or answers 503. */
#define NEED_STORE(st, a, r)                                   \
    do {                                                       \
        if (!((st) = thread_store(a)))                         \
            return store_error((r), NULL, Q_UNAVAILABLE, NULL); \
    } while (0)

/* bad_name tells whether s is not a valid queue or type name. */
static int
bad_name(const char *s)
{
    return !s || !valid_name(s);
}

/* app_queue maps a queue name from the request to the stored one: an
 * application's queues live in its namespace (see auth.h), the master
 * key's as named.  0, or -1 having answered 400. */
static int
app_queue(struct http_req *r, const char *name, char out[129], enum MHD_Result *ret)
{
    if (bad_name(name)) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                          "queue name must match [A-Za-z0-9._:-]{1,128}");
        return -1;
    }
    if (auth_queue_internal(r->app, name, out) < 0) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                          "queue name must be at most %d characters for an application",
                          128 - AUTH_NS_LEN);
        return -1;
    }
    return 0;
}

/* own_job answers 404 when job id is not the calling application's, so
 * that nothing is done to another application's job; 0 when it is hers
 * (or the caller holds the master key), -1 having answered. */
static int
own_job(struct http_req *r, struct store *st, const char *id, enum MHD_Result *ret)
{
    struct api *a = r->ud;
    char q[129];
    int rc;

    if (!r->app[0])
        return 0;
    rc = queue_locate(st, a->c->prefix, id, q);
    if (rc == Q_OK && !auth_queue_external(r->app, q))
        rc = Q_NOTFOUND;
    if (rc == Q_OK)
        return 0;
    *ret = rc == Q_NOTFOUND ? job_not_found(r, id) : store_error(r, st, rc, NULL);
    return -1;
}

/* parse_int reads a whole decimal integer in [lo, hi]. 0 or -1. */
static int
parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;
    if (!s || !*s)
        return -1;
    v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* unknown_key answers for the first key of obj not in the NULL-terminated
 * list: 1 when it answered (400), 0 when every key is known. */
static int
unknown_key(struct http_req *r, json_t *obj, const char *const *allowed, enum MHD_Result *ret)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        const char *const *p;
        for (p = allowed; *p && strcmp(*p, k) != 0; p++)
            ;
        if (!*p) {
            *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "unknown field '%.100s'", k);
            return 1;
        }
    }
    (void)v;
    return 0;
}

/* enq_json is the answer for one enqueued job: {id, type, queue, status,
 * createdAt (ISO-8601)}. */
static json_t *
enq_json(const char *type, const char *queue, const struct enq_result *res)
{
    char iso[32];
    iso8601_format(res->created_at, iso);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", res->id, "type", type, "queue", queue,
                     "status", res->status, "createdAt", iso);
}

/* ordered_job returns job (stolen) with its fields in a stable, readable
 * order (id, type, queue, status first); Redis hashes have none. */
static json_t *
ordered_job(json_t *job)
{
    static const char *const order[] = {
        "id", "type", "queue", "status", "priority", "payload", "metadata", "progress",
        "attempts", "maxAttempts", "backoff", "strategy", "timeout", "result", "error",
        "createdAt", "updatedAt", "runAt", "startedAt", "completedAt", "failedAt", NULL
    };
    json_t *o, *v;

    if (!json_is_object(job))
        return job;
    o = json_object();
    for (const char *const *k = order; *k; k++)
        if ((v = json_object_get(job, *k)))
            json_object_set(o, *k, v);
    json_object_update_missing(o, job);
    json_decref(job);
    return o;
}

/* ordered_jobs orders every job of an array in place. */
static void
ordered_jobs(json_t *arr)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        json_array_set_new(arr, i, ordered_job(json_incref(json_array_get(arr, i))));
}

/* ---- jobs ---- */

static enum MHD_Result
post_job(struct http_req *r)
{
    struct api *a = r->ud;
    struct store *st;
    struct job_spec spec;
    struct enq_result res;
    char err[512];
    enum MHD_Result ret;
    int rc;

    NEED_STORE(st, a, r);
    if (job_spec_from_json(r->json, now_ms(), &spec, err, sizeof err) < 0)
        return http_error(r, MHD_HTTP_BAD_REQUEST, "%s", err);
    if (auth_scope_spec(r->app, &spec, err, sizeof err) < 0) {
        ret = http_error(r, MHD_HTTP_BAD_REQUEST, "%s", err);
        goto out;
    }
    memset(&res, 0, sizeof res);
    rc = queue_enqueue(st, a->c->prefix, a->c->max_attempts, a->c->backoff, &spec, 1, &res,
                       err, sizeof err);
    if (rc != Q_OK) {
        ret = store_error(r, st, rc, err);
        goto out;
    }
    if (res.existed) {
        ret = http_json(r, MHD_HTTP_OK, enq_json(res.type,
                                                 auth_queue_external(r->app, spec.queue),
                                                 &res));
    } else {
        metrics_job(spec.queue, spec.type, "enqueued");
        ret = http_json(r, MHD_HTTP_CREATED,
                        enq_json(spec.type, auth_queue_external(r->app, spec.queue), &res));
    }
out:
    job_spec_free(&spec);
    return ret;
}

/* index_error prefixes a validation message with the job's index in a
 * bulk request: "'priority' must ..." becomes "'[3].priority' must ...". */
static void
index_error(char *out, size_t n, size_t i, const char *err)
{
    if (err[0] == '\'')
        snprintf(out, n, "'[%zu].%s", i, err + 1);
    else
        snprintf(out, n, "[%zu]: %s", i, err);
}

static enum MHD_Result
post_jobs_bulk(struct http_req *r)
{
    struct api *a = r->ud;
    struct store *st;
    struct job_spec *specs = NULL;
    struct enq_result *res = NULL;
    char err[512], msg[600];
    size_t n = json_array_size(r->json), done = 0;
    int64_t now = now_ms();
    enum MHD_Result ret;
    json_t *out;
    int rc;

    NEED_STORE(st, a, r);
    if (!json_is_array(r->json))
        return http_error(r, MHD_HTTP_BAD_REQUEST, "Request body must be a JSON array of jobs.");
    if (n == 0 || n > JOB_BULK_MAX)
        return http_error(r, MHD_HTTP_BAD_REQUEST,
                          "A bulk request holds 1 to %d jobs (got %zu).", JOB_BULK_MAX, n);
    specs = xcalloc(n, sizeof *specs);
    res = xcalloc(n, sizeof *res);
    /* All or nothing: every job is validated before any is stored. */
    for (done = 0; done < n; done++) {
        if (job_spec_from_json(json_array_get(r->json, done), now, &specs[done], err,
                               sizeof err) < 0) {
            index_error(msg, sizeof msg, done, err);
            ret = http_error(r, MHD_HTTP_BAD_REQUEST, "%s", msg);
            goto out;
        }
        if (auth_scope_spec(r->app, &specs[done], err, sizeof err) < 0) {
            job_spec_free(&specs[done]);
            index_error(msg, sizeof msg, done, err);
            ret = http_error(r, MHD_HTTP_BAD_REQUEST, "%s", msg);
            goto out;
        }
    }
    rc = queue_enqueue(st, a->c->prefix, a->c->max_attempts, a->c->backoff, specs, (int)n, res,
                       err, sizeof err);
    if (rc != Q_OK) {
        ret = store_error(r, st, rc, err);
        goto out;
    }
    out = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!res[i].existed)
            metrics_job(specs[i].queue, specs[i].type, "enqueued");
        json_array_append_new(out, enq_json(res[i].type,
                                            auth_queue_external(r->app, specs[i].queue),
                                            &res[i]));
    }
    ret = http_json(r, MHD_HTTP_CREATED, out);
out:
    for (size_t i = 0; i < done; i++)
        job_spec_free(&specs[i]);
    free(specs);
    free(res);
    return ret;
}

static enum MHD_Result
get_job(struct http_req *r)
{
    struct api *a = r->ud;
    struct store *st;
    json_t *job = NULL;
    int rc;

    NEED_STORE(st, a, r);
    rc = queue_get(st, a->c->prefix, r->params[0], &job);
    if (rc == Q_OK && auth_job_view(r->app, job) < 0) {
        json_decref(job);
        rc = Q_NOTFOUND;
    }
    if (rc == Q_NOTFOUND)
        return job_not_found(r, r->params[0]);
    if (rc != Q_OK)
        return store_error(r, st, rc, NULL);
    return http_json(r, MHD_HTTP_OK, ordered_job(job));
}

/* count_job records a job event using the job object's queue and type. */
static void
count_job(json_t *job, const char *event)
{
    const char *q = json_string_value(json_object_get(job, "queue"));
    const char *t = json_string_value(json_object_get(job, "type"));
    if (q && t)
        metrics_job(q, t, event);
}

/* state_change answers DELETE /jobs/:id and POST /jobs/:id/retry. */
static enum MHD_Result
state_change(struct http_req *r, int retry)
{
    struct api *a = r->ud;
    const char *id = r->params[0];
    struct store *st;
    json_t *job = NULL;
    char state[16], msg[256];
    enum MHD_Result ret;
    int rc;

    NEED_STORE(st, a, r);
    if (own_job(r, st, id, &ret) < 0)
        return ret;
    rc = retry ? queue_retry(st, a->c->prefix, id, state, &job)
               : queue_cancel(st, a->c->prefix, id, state, &job);
    if (rc == Q_NOTFOUND)
        return job_not_found(r, id);
    if (rc == Q_CONFLICT)
        return http_error(r, MHD_HTTP_CONFLICT,
                          "Job with ID '%s' cannot be %s because it is in the '%s' state.", id,
                          retry ? "retried" : "canceled", state);
    if (rc != Q_OK)
        return store_error(r, st, rc, NULL);
    count_job(job, retry ? "retried" : "canceled");
    if (job)
        auth_job_view(r->app, job);
    if (retry)
        snprintf(msg, sizeof msg, "Job '%s' was moved back to the '%s' state.", id,
                 state[0] ? state : "waiting");
    else
        snprintf(msg, sizeof msg, "Job '%s' was successfully canceled.", id);
    return http_json(r, MHD_HTTP_OK, json_pack("{s:s, s:o}", "message", msg, "job",
                                                job ? ordered_job(job) : json_null()));
}

static enum MHD_Result
delete_job(struct http_req *r)
{
    return state_change(r, 0);
}

static enum MHD_Result
retry_job(struct http_req *r)
{
    return state_change(r, 1);
}

/* list_query is GET /jobs's query, checked. */
struct list_query {
    const char *queue, *status, *type, *cursor;
    long        limit;
    json_t     *meta;      /* {K: "V"} from metadata.K=V */
    char        err[256];  /* set when a parameter is wrong */
};

static int
list_param(void *cls, const char *k, const char *v)
{
    struct list_query *lq = cls;
    if (strncmp(k, "metadata.", 9) == 0 && k[9]) {
        json_t *s = json_string(v);
        /* A key that is not UTF-8 cannot be stored: refuse it rather than
         * drop the filter and list every job. */
        if (!s || json_object_set_new(lq->meta, k + 9, s) < 0) {
            snprintf(lq->err, sizeof lq->err, "'%.100s' must be UTF-8 text", k);
            return 1;
        }
        return 0;
    }
    if (strcmp(k, "queue") && strcmp(k, "status") && strcmp(k, "type") && strcmp(k, "limit") &&
        strcmp(k, "cursor")) {
        snprintf(lq->err, sizeof lq->err,
                 "unknown query parameter '%.100s' (known: queue, status, type, limit, cursor, "
                 "metadata.KEY)", k);
        return 1;
    }
    return 0;
}

/* status_name maps a status filter to a state name (seed 002 says "active"
 * for processing); NULL when it is none of them. */
static const char *
status_name(const char *s)
{
    if (strcmp(s, "active") == 0)
        return "processing";
    for (int i = 0; i < 6; i++)
        if (strcmp(queue_states[i], s) == 0)
            return queue_states[i];
    return NULL;
}

static enum MHD_Result
list_jobs(struct http_req *r)
{
    struct api *a = r->ud;
    struct list_query lq = { 0 };
    struct store *st;
    json_t *jobs = NULL;
    char *next = NULL, qint[129];
    enum MHD_Result ret;
    const char *s;
    int rc;

    NEED_STORE(st, a, r);
    lq.meta = json_object();
    lq.limit = LIST_LIMIT_DEFAULT;
    if (http_query_each(r, list_param, &lq)) {
        ret = http_error(r, MHD_HTTP_BAD_REQUEST, "%s", lq.err);
        goto out;
    }
    lq.queue = (s = http_query(r, "queue")) && *s ? s : "default";
    if (bad_name(lq.queue)) {
        ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'queue' must match [A-Za-z0-9._:-]{1,128}");
        goto out;
    }
    if (auth_queue_internal(r->app, lq.queue, qint) < 0) {
        ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                         "'queue' must be at most %d characters for an application",
                         128 - AUTH_NS_LEN);
        goto out;
    }
    lq.queue = qint;
    if ((s = http_query(r, "status")) && *s && !(lq.status = status_name(s))) {
        ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                         "'status' must be one of waiting, delayed, processing, completed, "
                         "failed, canceled");
        goto out;
    }
    if ((s = http_query(r, "type")) && *s) {
        if (bad_name(s)) {
            ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'type' must match [A-Za-z0-9._:-]{1,128}");
            goto out;
        }
        lq.type = s;
    }
    if ((s = http_query(r, "limit")) && parse_int(s, 1, LIST_LIMIT_MAX, &lq.limit) < 0) {
        ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'limit' must be an integer between 1 and %d",
                         LIST_LIMIT_MAX);
        goto out;
    }
    lq.cursor = (s = http_query(r, "cursor")) && *s ? s : NULL;
    rc = queue_list(st, a->c->prefix, lq.queue, lq.status, lq.type, lq.meta, (int)lq.limit,
                    lq.cursor, &jobs, &next);
    if (rc == Q_CONFLICT || rc == Q_NOTFOUND) {
        /* queue_list's answer to a cursor (or state) it cannot read */
        ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                         "'cursor' is not valid here: pass the 'next' of the previous page "
                         "with the same filters");
        goto out;
    }
    if (rc != Q_OK) {
        ret = store_error(r, st, rc, NULL);
        goto out;
    }
    auth_jobs_view(r->app, jobs);
    ordered_jobs(jobs);
    ret = http_json(r, MHD_HTTP_OK,
                    json_pack("{s:o, s:I, s:s?}", "jobs", jobs, "count",
                              (json_int_t)json_array_size(jobs), "next", next));
    jobs = NULL;
out:
    json_decref(jobs);
    json_decref(lq.meta);
    free(next);
    return ret;
}

/* ---- external workers: the lease and what follows it ---- */

static json_t *
lease_json(struct leased *l)
{
    return json_pack("{s:o, s:s, s:I}", "job", ordered_job(json_incref(l->job)), "leaseToken",
                     l->token, "leaseExpiresAt", (json_int_t)l->expires_at);
}

/* idle_take gives a waiter a store (reused or new); idle_put returns it. */
static struct store *
idle_take(struct api *a)
{
    struct store *st = NULL;
    char err[256];

    pthread_mutex_lock(&a->mu);
    if (a->nidle > 0)
        st = a->idle[--a->nidle];
    pthread_mutex_unlock(&a->mu);
    if (st)
        store_drop_if_closed(st);
    if (!st && !(st = store_open(a->c->redis, err, sizeof err)))
        log_error("api: %s", err);
    return st;
}

static void
idle_put(struct api *a, struct store *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&a->mu);
    if (a->nidle < MAX_IDLE_STORES) {
        a->idle[a->nidle++] = st;
        st = NULL;
    }
    pthread_mutex_unlock(&a->mu);
    store_close(st);
}

/* waiter is one parked lease request. */
struct waiter {
    struct api      *a;
    struct http_req *r;
    char             queue[129];
    int64_t          deadline; /* mono ms */
};

/* waiter_main leases for a parked request: it tries, then blocks on the
 * queue's wake-up list in slices, until a job comes, the wait is over or
 * the API stops.  It always resumes the request exactly once. */
static void *
waiter_main(void *arg)
{
    struct waiter *w = arg;
    struct api *a = w->a;
    struct store *st = idle_take(a);
    struct leased l;
    char err[256] = "";
    unsigned status = MHD_HTTP_NO_CONTENT;
    json_t *body = NULL;

    while (st) {
        int64_t left = w->deadline - mono_ms();
        int n, stopping;
        pthread_mutex_lock(&a->mu);
        stopping = a->stopping;
        pthread_mutex_unlock(&a->mu);
        if (stopping || left <= 0)
            break;
        n = queue_wait(st, a->c->prefix, w->queue, left < WAIT_SLICE ? (int)left : WAIT_SLICE);
        /* Lease after a timed-out slice too: another fetcher may have
         * taken the wake-up token meant for a job that is still there. */
        if (n >= 0)
            n = queue_lease(st, a->c->prefix, w->queue, 1, a->c->lease, &l, err, sizeof err);
        if (n < 0) {
            metrics_redis_error();
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
            body = http_error_body(status, n == Q_UNAVAILABLE ? "Redis is unavailable."
                                                              : "Redis refused the lease.");
            break;
        }
        if (n == 1) {
            /* Should the client have gone away meanwhile, this job waits
             * out its lease and the scheduler hands it on: delivery is
             * at-least-once anyway. */
            status = MHD_HTTP_OK;
            auth_job_view(w->r->app, l.job);  /* the request lives until resumed */
            body = lease_json(&l);
            leased_free(&l);
            break;
        }
    }
    if (!st) {
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        body = http_error_body(status, "Redis is unavailable.");
    }
    http_resume_json(w->r, status, body);
    idle_put(a, st);
    pthread_mutex_lock(&a->mu);
    a->waiters--;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    free(w);
    return NULL;
}

/* park hands a lease request to a waiter thread; answers itself when the
 * API is stopping or too many requests are parked. */
static enum MHD_Result
park(struct http_req *r, const char *q, long wait_ms)
{
    struct api *a = r->ud;
    struct waiter *w;
    pthread_attr_t attr;
    pthread_t t;
    int full;

    pthread_mutex_lock(&a->mu);
    full = a->stopping || a->waiters >= MAX_WAITERS;
    if (!full)
        a->waiters++;
    pthread_mutex_unlock(&a->mu);
    if (full)
        return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "Too many lease requests are waiting; retry shortly.");
    w = xcalloc(1, sizeof *w);
    w->a = a;
    w->r = r;
    snprintf(w->queue, sizeof w->queue, "%s", q);
    w->deadline = mono_ms() + wait_ms;
    http_suspend(r);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, waiter_main, w) != 0) {
        free(w);
        http_resume_json(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                         http_error_body(MHD_HTTP_SERVICE_UNAVAILABLE,
                                         "Cannot start a thread to wait for a job."));
        pthread_mutex_lock(&a->mu);
        a->waiters--;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    }
    pthread_attr_destroy(&attr);
    return MHD_YES;
}

static enum MHD_Result
lease_job(struct http_req *r)
{
    struct api *a = r->ud;
    const char *w;
    struct store *st;
    struct leased l;
    char err[256] = "", q[129];
    long wait_ms = 0;
    enum MHD_Result ret;
    int n;

    NEED_STORE(st, a, r);
    if (app_queue(r, r->params[0], q, &ret) < 0)
        return ret;
    if ((w = http_query(r, "wait")) && parse_int(w, 0, LEASE_WAIT_MAX, &wait_ms) < 0)
        return http_error(r, MHD_HTTP_BAD_REQUEST, "'wait' must be an integer between 0 and %d (ms)",
                          LEASE_WAIT_MAX);
    n = queue_lease(st, a->c->prefix, q, 1, a->c->lease, &l, err, sizeof err);
    if (n < 0)
        return store_error(r, st, n, err);
    if (n == 1) {
        auth_job_view(r->app, l.job);
        ret = http_json(r, MHD_HTTP_OK, lease_json(&l));
        leased_free(&l);
        return ret;
    }
    if (wait_ms == 0)
        return http_empty(r, MHD_HTTP_NO_CONTENT);
    return park(r, q, wait_ms);
}

/* work_op is one worker call about a leased job, from the body of
 * POST /jobs/:id/(heartbeat|progress|complete|fail) or PUT /jobs/:id. */
enum work_kind { W_HEARTBEAT, W_PROGRESS, W_COMPLETE, W_FAIL };

struct work_op {
    enum work_kind kind;
    const char *token;
    int         progress;  /* -1 = not given */
    json_t     *result;    /* borrowed from the body, may be NULL */
    const char *error;
    int         retry;     /* fail: 0 = permanent */
};

/* parse_work reads the fields of a work call; 0, or -1 having answered. */
static int
parse_work(struct http_req *r, struct work_op *op, enum MHD_Result *ret)
{
    json_t *b = r->json, *v;

    op->progress = -1;
    op->retry = 1;
    if (!json_is_object(b)) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "Request body must be a JSON object.");
        return -1;
    }
    v = json_object_get(b, "leaseToken");
    if (!json_is_string(v) || !*json_string_value(v)) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                          "'leaseToken' is required: the token from POST /queues/:queue/lease");
        return -1;
    }
    op->token = json_string_value(v);
    if ((v = json_object_get(b, "progress")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100) {
            *ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                              "'progress' must be an integer between 0 and 100");
            return -1;
        }
        op->progress = (int)json_integer_value(v);
    }
    if (op->kind == W_PROGRESS && op->progress < 0) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'progress' is required");
        return -1;
    }
    op->result = json_object_get(b, "result");
    if ((v = json_object_get(b, "error")) && !json_is_null(v)) {
        if (!json_is_string(v)) {
            *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'error' must be a string");
            return -1;
        }
        op->error = json_string_value(v);
    }
    if ((v = json_object_get(b, "retry")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'retry' must be true or false");
            return -1;
        }
        op->retry = json_is_true(v);
    }
    return 0;
}

/* finished_metrics counts a job an external worker finished, reading its
 * type and start time from the job hash. */
static void
finished_metrics(struct store *st, const char *prefix, const char *q, const char *id,
                 const char *state)
{
    redisReply *rep = store_command(st, "HMGET %s:{%s}:job:%s type startedAt", prefix, q, id);
    const char *event = strcmp(state, "completed") == 0 ? "completed"
                        : strcmp(state, "failed") == 0 ? "failed" : "retried";

    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING) {
        const char *type = rep->element[0]->str;
        metrics_job(q, type, event);
        if (rep->element[1]->type == REDIS_REPLY_STRING) {
            int64_t started = strtoll(rep->element[1]->str, NULL, 10);
            if (started > 0)
                metrics_job_runtime(q, type, (double)(now_ms() - started) / 1000.0);
        }
    }
    if (rep)
        freeReplyObject(rep);
}

static enum MHD_Result
lease_rejected(struct http_req *r, const char *id)
{
    metrics_lease_rejected();
    return http_error(r, MHD_HTTP_CONFLICT,
                      "Lease token for job '%s' is not valid: the lease expired or the job "
                      "is no longer held by this worker.", id);
}

/* finish_job completes or fails a leased job; *state gets its new state. */
static enum MHD_Result
finish_job(struct http_req *r, struct store *st, const char *q, const struct work_op *op,
           char state[16], int *done)
{
    struct api *a = r->ud;
    const char *id = r->params[0];
    struct outcome o;
    char *result = NULL;
    int rc;

    *done = 0;
    memset(&o, 0, sizeof o);
    o.queue = q;
    o.id = id;
    o.token = op->token;
    o.ok = op->kind == W_COMPLETE;
    if (o.ok && op->result)
        result = json_dumps(op->result, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    o.result = result;
    o.error = op->error ? op->error : "failed by an external worker";
    o.permanent = !op->retry;
    o.max_attempts = 0;
    o.backoff = -1;
    o.strategy = NULL;
    rc = queue_finish(st, a->c->prefix, a->c->keep_completed.count, a->c->keep_failed.count,
                      &o, 1);
    free(result);
    if (rc == Q_OK)
        rc = o.status;
    if (rc == Q_BADTOKEN)
        return lease_rejected(r, id);
    if (rc == Q_NOTFOUND)
        return job_not_found(r, id);
    if (rc != Q_OK)
        return store_error(r, st, rc, NULL);
    snprintf(state, 16, "%s", o.state);
    finished_metrics(st, a->c->prefix, q, id, o.state);
    *done = 1;
    return MHD_YES;
}

/* do_work runs op on job r->params[0] and answers: `seed002` selects the
 * {success, message} shape of PUT /jobs/:id. */
static enum MHD_Result
do_work(struct http_req *r, const struct work_op *op, int seed002)
{
    struct api *a = r->ud;
    const char *id = r->params[0];
    struct store *st;
    char q[129], state[16] = "processing", msg[128];
    int64_t expires = 0;
    json_t *body;
    int rc, done;

    NEED_STORE(st, a, r);
    rc = queue_locate(st, a->c->prefix, id, q);
    if (rc == Q_OK && !auth_queue_external(r->app, q))
        rc = Q_NOTFOUND;   /* another application's job */
    if (rc == Q_NOTFOUND)
        return job_not_found(r, id);
    if (rc != Q_OK)
        return store_error(r, st, rc, NULL);
    if (op->kind == W_HEARTBEAT || op->kind == W_PROGRESS) {
        /* A progress report is news from the worker: it extends the lease
         * too, so a worker that reports progress need not also heartbeat. */
        rc = queue_extend(st, a->c->prefix, q, id, op->token, a->c->lease, &expires);
        if (rc == Q_OK && op->progress >= 0)
            rc = queue_progress(st, a->c->prefix, q, id, op->token, op->progress);
        if (rc == Q_BADTOKEN)
            return lease_rejected(r, id);
        if (rc == Q_NOTFOUND)
            return job_not_found(r, id);
        if (rc != Q_OK)
            return store_error(r, st, rc, NULL);
        body = json_pack("{s:s, s:s, s:I}", "id", id, "status", "processing", "leaseExpiresAt",
                         (json_int_t)expires);
        if (op->progress >= 0)
            json_object_set_new(body, "progress", json_integer(op->progress));
    } else {
        enum MHD_Result ret = finish_job(r, st, q, op, state, &done);
        if (!done)
            return ret;
        body = json_pack("{s:s, s:s}", "id", id, "status", state);
    }
    if (seed002) {
        /* seed 002's answer first, our details after */
        json_t *b2;
        snprintf(msg, sizeof msg, "Job %s updated", id);
        b2 = json_pack("{s:b, s:s}", "success", 1, "message", msg);
        json_object_update(b2, body);
        json_decref(body);
        body = b2;
    }
    return http_json(r, MHD_HTTP_OK, body);
}

static enum MHD_Result
work_route(struct http_req *r, enum work_kind kind, const char *const *allowed)
{
    struct work_op op = { .kind = kind };
    enum MHD_Result ret;
    if (!json_is_object(r->json))
        return http_error(r, MHD_HTTP_BAD_REQUEST, "Request body must be a JSON object.");
    if (unknown_key(r, r->json, allowed, &ret) || parse_work(r, &op, &ret) < 0)
        return ret;
    return do_work(r, &op, 0);
}

static enum MHD_Result
heartbeat_job(struct http_req *r)
{
    static const char *const k[] = { "leaseToken", NULL };
    return work_route(r, W_HEARTBEAT, k);
}

static enum MHD_Result
progress_job(struct http_req *r)
{
    static const char *const k[] = { "leaseToken", "progress", NULL };
    return work_route(r, W_PROGRESS, k);
}

static enum MHD_Result
complete_job(struct http_req *r)
{
    static const char *const k[] = { "leaseToken", "result", NULL };
    return work_route(r, W_COMPLETE, k);
}

static enum MHD_Result
fail_job(struct http_req *r)
{
    static const char *const k[] = { "leaseToken", "error", "retry", NULL };
    return work_route(r, W_FAIL, k);
}

/* put_job is seed 002's worker update: status started (a heartbeat),
 * progress, completed or failed. */
static enum MHD_Result
put_job(struct http_req *r)
{
    static const char *const k[] = { "status", "leaseToken", "progress", "result", "error",
                                     "retry", NULL };
    static const struct { const char *name; enum work_kind kind; } kinds[] = {
        { "started", W_HEARTBEAT }, { "progress", W_PROGRESS },
        { "completed", W_COMPLETE }, { "failed", W_FAIL },
    };
    struct work_op op = { 0 };
    const char *s;
    enum MHD_Result ret;
    size_t i;

    if (!json_is_object(r->json))
        return http_error(r, MHD_HTTP_BAD_REQUEST, "Request body must be a JSON object.");
    if (unknown_key(r, r->json, k, &ret))
        return ret;
    s = json_string_value(json_object_get(r->json, "status"));
    for (i = 0; s && i < sizeof kinds / sizeof kinds[0] && strcmp(kinds[i].name, s); i++)
        ;
    if (!s || i == sizeof kinds / sizeof kinds[0])
        return http_error(r, MHD_HTTP_BAD_REQUEST,
                          "'status' must be one of started, progress, completed, failed");
    op.kind = kinds[i].kind;
    if (parse_work(r, &op, &ret) < 0)
        return ret;
    return do_work(r, &op, 1);
}

/* ---- queues ---- */

/* all_queues merges the queues Redis knows with the configured ones, so a
 * fresh install still lists "default".  Sorted, malloc'd; count or < 0. */
static int
all_queues(struct api *a, struct store *st, char ***out)
{
    char **names;
    int n = queue_names(st, a->c->prefix, &names);

    if (n < 0)
        return n;
    for (int i = 0; i < a->c->nqueues; i++) {
        int j, k;
        for (j = 0; j < n && strcmp(names[j], a->c->queues[i].name) < 0; j++)
            ;
        if (j < n && strcmp(names[j], a->c->queues[i].name) == 0)
            continue;
        names = xrealloc(names, sizeof(char *) * (size_t)(n + 2));
        for (k = n; k > j; k--)
            names[k] = names[k - 1];
        names[j] = xstrdup(a->c->queues[i].name);
        n++;
    }
    *out = names;
    return n;
}

static enum MHD_Result
list_queues(struct http_req *r)
{
    struct api *a = r->ud;
    struct store *st;
    char **names = NULL;
    json_t *arr;
    int n, rc = Q_OK;

    NEED_STORE(st, a, r);
    if ((n = all_queues(a, st, &names)) < 0)
        return store_error(r, st, n, NULL);
    arr = json_array();
    for (int i = 0; i < n && rc == Q_OK; i++) {
        const char *ext = auth_queue_external(r->app, names[i]);
        json_t *counts = NULL;
        if (!ext)
            continue;   /* not the calling application's */
        rc = queue_counts(st, a->c->prefix, names[i], &counts);
        if (rc == Q_OK) {
            json_t *q = json_pack("{s:s}", "name", ext);
            json_object_update(q, counts);
            json_decref(counts);
            json_array_append_new(arr, q);
        }
    }
    queue_names_free(names, n);
    if (rc != Q_OK) {
        json_decref(arr);
        return store_error(r, st, rc, NULL);
    }
    return http_json(r, MHD_HTTP_OK, json_pack("{s:o}", "queues", arr));
}

static enum MHD_Result
set_paused(struct http_req *r, int paused)
{
    struct api *a = r->ud;
    const char *q = r->params[0];
    struct store *st;
    char qint[129];
    enum MHD_Result ret;
    int rc;

    NEED_STORE(st, a, r);
    if (app_queue(r, q, qint, &ret) < 0)
        return ret;
    if ((rc = queue_pause(st, a->c->prefix, qint, paused)) != Q_OK)
        return store_error(r, st, rc, NULL);
    return http_json(r, MHD_HTTP_OK, json_pack("{s:s, s:b}", "queue", q, "paused", paused));
}

static enum MHD_Result
pause_queue(struct http_req *r)
{
    return set_paused(r, 1);
}

static enum MHD_Result
resume_queue(struct http_req *r)
{
    return set_paused(r, 0);
}

static int
remove_param(void *cls, const char *k, const char *v)
{
    (void)v;
    if (strcmp(k, "type") && strcmp(k, "status")) {
        snprintf(cls, 256, "unknown query parameter '%.100s' (known: type, status)", k);
        return 1;
    }
    return 0;
}

static enum MHD_Result
remove_jobs(struct http_req *r)
{
    struct api *a = r->ud;
    const char *type, *status;
    struct store *st;
    char err[256], q[129];
    enum MHD_Result ret;
    int n;

    NEED_STORE(st, a, r);
    if (app_queue(r, r->params[0], q, &ret) < 0)
        return ret;
    if (http_query_each(r, remove_param, err))
        return http_error(r, MHD_HTTP_BAD_REQUEST, "%s", err);
    type = http_query(r, "type");
    status = http_query(r, "status");
    if (type && !*type)
        type = NULL;
    if (status && !*status)
        status = NULL;
    if (type && bad_name(type))
        return http_error(r, MHD_HTTP_BAD_REQUEST, "'type' must match [A-Za-z0-9._:-]{1,128}");
    if (status && strcmp(status, "waiting") && strcmp(status, "delayed"))
        return http_error(r, MHD_HTTP_BAD_REQUEST, "'status' must be waiting or delayed");
    n = queue_remove(st, a->c->prefix, q, type, status);
    if (n < 0)
        return store_error(r, st, n, NULL);
    return http_json(r, MHD_HTTP_OK, json_pack("{s:i}", "removed", n));
}

/* ---- subscriptions and live events (subscription.h, sse.h) ---- */

static enum MHD_Result
post_subscription(struct http_req *r)
{
    struct api *a = r->ud;
    return subs_post(r, thread_store(a), a->c->prefix, r->app);
}

static enum MHD_Result
list_subscriptions(struct http_req *r)
{
    struct api *a = r->ud;
    return subs_list(r, thread_store(a), a->c->prefix, r->app);
}

static enum MHD_Result
delete_subscription(struct http_req *r)
{
    struct api *a = r->ud;
    return subs_delete(r, thread_store(a), a->c->prefix, r->app, r->params[0]);
}

static enum MHD_Result
get_events(struct http_req *r)
{
    struct api *a = r->ud;
    return sse_serve(a->sse, r, r->app);
}

/* ---- service ---- */

static enum MHD_Result
get_handlers(struct http_req *r)
{
    struct api *a = r->ud;
    json_t *list = a->h ? handlers_info(a->h) : json_array();
    return http_json(r, MHD_HTTP_OK, json_pack("{s:o}", "handlers", list ? list : json_array()));
}

static enum MHD_Result
health(struct http_req *r)
{
    struct api *a = r->ud;
    struct store *st = thread_store(a);
    redisReply *rep = st ? store_command(st, "PING") : NULL;
    int ok = rep && rep->type == REDIS_REPLY_STATUS;

    if (rep)
        freeReplyObject(rep);
    if (ok)
        return http_json(r, MHD_HTTP_OK, json_pack("{s:s, s:s}", "status", "ok", "redis", "ok"));
    metrics_redis_error();
    return http_error_json(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                           json_pack("{s:s, s:s}", "status", "error", "redis", "unavailable"),
                           "Redis is unavailable (%s).",
                           unprefixed(st && st->err[0] ? st->err : "not connected"));
}

/* queue_gauges appends the per-queue gauges read from Redis; 0, or -1
 * when Redis could not be read (then nothing is appended). */
static int
queue_gauges(struct api *a, struct store *st, struct strbuf *out)
{
    struct strbuf jobs = { 0 }, paused = { 0 };
    char **names = NULL;
    int n = all_queues(a, st, &names), rc = 0;

    if (n < 0)
        return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        json_t *counts = NULL;
        if (queue_counts(st, a->c->prefix, names[i], &counts) != Q_OK) {
            rc = -1;
            break;
        }
        for (int s = 0; s < 6; s++)
            sb_printf(&jobs, "jqrun_jobs{queue=\"%s\",state=\"%s\"} %" JSON_INTEGER_FORMAT "\n",
                      names[i], queue_states[s],
                      json_integer_value(json_object_get(counts, queue_states[s])));
        sb_printf(&paused, "jqrun_queue_paused{queue=\"%s\"} %d\n", names[i],
                  json_is_true(json_object_get(counts, "paused")));
        json_decref(counts);
    }
    if (rc == 0) {
        /* Queue names are [A-Za-z0-9._:-]: nothing to escape in labels. */
        sb_puts(out, "# HELP jqrun_jobs Jobs in Redis, by queue and state.\n"
                     "# TYPE jqrun_jobs gauge\n");
        sb_puts(out, jobs.buf ? jobs.buf : "");
        sb_puts(out, "# HELP jqrun_queue_paused Whether the queue is paused (1) or not (0).\n"
                     "# TYPE jqrun_queue_paused gauge\n");
        sb_puts(out, paused.buf ? paused.buf : "");
    }
    queue_names_free(names, n);
    sb_free(&jobs);
    sb_free(&paused);
    return rc;
}

static enum MHD_Result
get_metrics(struct http_req *r)
{
    struct api *a = r->ud;
    struct store *st = thread_store(a);
    struct strbuf out = { 0 };
    enum MHD_Result ret;
    int up = st && queue_gauges(a, st, &out) == 0;

    if (!up)
        metrics_redis_error();
    sb_printf(&out, "# HELP jqrun_redis_up Whether Redis answered this scrape (1) or not (0).\n"
                    "# TYPE jqrun_redis_up gauge\njqrun_redis_up %d\n", up);
    metrics_render(&out);
    ret = http_text(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                    out.buf ? out.buf : "", out.len);
    sb_free(&out);
    return ret;
}

/* ---- applications (auth.c does the work; these lend it a store) ---- */

static enum MHD_Result
post_application(struct http_req *r)
{
    struct api *a = r->ud;
    return auth_post_application(r, thread_store(a), a->c);
}

static enum MHD_Result
list_applications(struct http_req *r)
{
    struct api *a = r->ud;
    return auth_list_applications(r, thread_store(a), a->c);
}

static enum MHD_Result
get_application(struct http_req *r)
{
    struct api *a = r->ud;
    return auth_get_application(r, thread_store(a), a->c);
}

static enum MHD_Result
delete_application(struct http_req *r)
{
    struct api *a = r->ud;
    return auth_delete_application(r, thread_store(a), a->c);
}

/* authorize is http.c's hook, run before every route but HTTP_PUBLIC
 * ones: with a master key configured, it checks the caller's key and rate
 * limit and sets r->app (see auth.h).  Routes then scope every queue and
 * job to r->app. */
static int
authorize(struct http_req *r, enum MHD_Result *ret)
{
    struct api *a = r->ud;

    if (!a->c->master_key) {
        r->app[0] = '\0';
        return 0;
    }
    return auth_check_request(r, thread_store(a), a->c, ret);
}

/* With a master key, every route needs a key except HTTP_PUBLIC ones;
 * HTTP_MASTER ones refuse application keys (403).  Routes added without
 * a flag are open to applications, scoped to their own data by r->app. */
static const struct http_route routes[] = {
    { "POST",   "/jobs",                post_job,       HTTP_JSON_BODY },
    { "GET",    "/jobs",                list_jobs,      0 },
    { "POST",   "/jobs/bulk",           post_jobs_bulk, HTTP_JSON_BODY },
    { "GET",    "/jobs/:id",            get_job,        0 },
    { "DELETE", "/jobs/:id",            delete_job,     0 },
    { "PUT",    "/jobs/:id",            put_job,        HTTP_JSON_BODY },
    { "POST",   "/jobs/:id/retry",      retry_job,      0 },
    { "POST",   "/jobs/:id/heartbeat",  heartbeat_job,  HTTP_JSON_BODY },
    { "POST",   "/jobs/:id/progress",   progress_job,   HTTP_JSON_BODY },
    { "POST",   "/jobs/:id/complete",   complete_job,   HTTP_JSON_BODY },
    { "POST",   "/jobs/:id/fail",       fail_job,       HTTP_JSON_BODY },
    { "GET",    "/queues",              list_queues,    0 },
    { "POST",   "/queues/:q/pause",     pause_queue,    0 },
    { "POST",   "/queues/:q/resume",    resume_queue,   0 },
    { "POST",   "/queues/:q/lease",     lease_job,      0 },
    { "DELETE", "/queues/:q/jobs",      remove_jobs,    0 },
    { "GET",    "/handlers",            get_handlers,   0 },
    { "POST",   "/subscriptions",       post_subscription,   HTTP_JSON_BODY },
    { "GET",    "/subscriptions",       list_subscriptions,  0 },
    { "DELETE", "/subscriptions/:id",   delete_subscription, 0 },
    { "GET",    "/events",              get_events,     0 },
    { "GET",    "/health",              health,         HTTP_PUBLIC },
    { "GET",    "/metrics",             get_metrics,    HTTP_MASTER },
    { "POST",   "/applications",        post_application,   HTTP_JSON_BODY | HTTP_MASTER },
    { "GET",    "/applications",        list_applications,  HTTP_MASTER },
    { "GET",    "/applications/:id",    get_application,    HTTP_MASTER },
    { "DELETE", "/applications/:id",    delete_application, HTTP_MASTER },
};

static void
on_done(int status, double seconds)
{
    if (status)
        metrics_http(status, seconds);
}

/* pool_threads is one thread per CPU, at least 4 (requests mostly wait on
 * Redis round trips, not on the CPU) and at most 16. */
static unsigned
pool_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 4 ? 4u : n > 16 ? 16u : (unsigned)n;
}

struct api *
api_start(const struct config *c, struct handlers *handlers, char *err, size_t errlen)
{
    struct api *a = xcalloc(1, sizeof *a);
    struct http_opts o = {
        .listen = c->listen,
        .threads = pool_threads(),
        .connection_timeout = c->http_connection_timeout > 0
                                  ? (unsigned)c->http_connection_timeout : 0,
        .max_connections = c->http_max_connections > 0 ? (unsigned)c->http_max_connections
                                                       : 1024,
        .max_body = c->http_max_body > 0 ? (size_t)c->http_max_body : 1048576,
        .routes = routes,
        .nroutes = sizeof routes / sizeof routes[0],
        .ud = a,
        .on_done = on_done,
        .authorize = authorize,
    };
    char host[256];
    int port;

    a->c = c;
    a->h = handlers;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->sse = sse_hub_new(c);
    if (!(a->srv = http_start(&o, err, errlen))) {
        sse_hub_stop(a->sse);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        free(a);
        return NULL;
    }
    /* The bound port matters when the config asked for port 0. */
    if (http_parse_listen(c->listen, host, sizeof host, &port, err, errlen) == 0)
        log_info("api: listening on http://%s%s%s:%d", strchr(host, ':') ? "[" : "",
                 host[0] ? host : "0.0.0.0", strchr(host, ':') ? "]" : "",
                 http_port(a->srv));
    if (!c->master_key)
        log_warn("auth: no master_key set: the API is open to anyone who can reach "
                 "%s%s%s:%d", strchr(host, ':') ? "[" : "", host[0] ? host : "0.0.0.0",
                 strchr(host, ':') ? "]" : "", http_port(a->srv));
    return a;
}

void
api_stop(struct api *a)
{
    if (!a)
        return;
    /* Parked lease requests notice within one wait slice; libmicrohttpd
     * must not be stopped while any request is still suspended. */
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    while (a->waiters > 0)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    /* Event streams end first: a suspended stream would hold http_stop. */
    sse_hub_stop(a->sse);
    http_stop(a->srv);
    for (int i = 0; i < a->nstores; i++)
        store_close(a->stores[i]);
    for (int i = 0; i < a->nidle; i++)
        store_close(a->idle[i]);
    free(a->stores);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}
