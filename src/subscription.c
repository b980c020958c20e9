/* subscription.c — event subscriptions: the routes, the filters, and the
 * dispatcher that turns matching events into outbox deliveries (see
 * subscription.h). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth.h"
#include "log.h"
#include "subscription.h"
#include "util.h"

#define SUBS_NAME_MAX 200
#define SUBS_URL_MAX 2048
#define SUBS_LIST_MAX 100      /* entries of one filter list */
#define SUBS_MAX 1000          /* subscriptions in all */
#define SUBS_RELOAD_MS 1000    /* how often the dispatcher re-reads them */
#define SUBS_BATCH 100         /* stream entries per read */
#define SUBS_BATCHES 10        /* reads per queue per dispatch */
#define SUBS_TAKEOVER_IDLE 60000  /* ms before a dead consumer's entries move */
#define SUBS_TAKEOVER_EVERY 30000 /* ms between takeover checks per queue */
#define SUBS_SWEEP_EVERY 600000   /* ms between sweeps of departed consumers */
#define SUBS_DEPARTED 3600000     /* ms idle before a consumer counts as gone */

static const char *const event_names[] = {
    "waiting", "delayed", "processing", "progress", "completed", "failed", "canceled",
    "created", "*", NULL
};

/* ---- validation ---- */

static int
valid_url(const char *s)
{
    const char *host;
    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return 0;
    if (!*host || *host == '/' || strlen(s) > SUBS_URL_MAX)
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

/* unknown_field names the first key of obj outside allowed, or NULL. */
static const char *
unknown_field(json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        const char *const *p;
        for (p = allowed; *p && strcmp(*p, k) != 0; p++)
            ;
        if (!*p)
            return k;
    }
    (void)v;
    return NULL;
}

/* name_list checks filters.<what>: an array of queue or type names. */
static json_t *
name_list(json_t *v, const char *what, char *err, size_t errlen)
{
    size_t i;
    json_t *x;

    if (!json_is_array(v) || json_array_size(v) > SUBS_LIST_MAX) {
        snprintf(err, errlen, "'filters.%s' must be an array of at most %d names", what,
                 SUBS_LIST_MAX);
        return NULL;
    }
    json_array_foreach(v, i, x) {
        if (!json_is_string(x) || !valid_name(json_string_value(x))) {
            snprintf(err, errlen, "'filters.%s[%zu]' must match [A-Za-z0-9._:-]{1,128}", what, i);
            return NULL;
        }
    }
    return json_incref(v);
}

/* parse_filters normalizes filters into {queues, types, metadata}. */
static json_t *
parse_filters(json_t *f, char *err, size_t errlen)
{
    static const char *const keys[] = { "queues", "types", "metadata", NULL };
    json_t *out = json_pack("{s:[], s:[], s:{}}", "queues", "types", "metadata");
    json_t *v, *l;
    const char *k, *bad;

    if (!f || json_is_null(f))
        return out;
    if (!json_is_object(f)) {
        snprintf(err, errlen, "'filters' must be an object {queues, types, metadata}");
        goto fail;
    }
    if ((bad = unknown_field(f, keys))) {
        snprintf(err, errlen, "unknown field 'filters.%.100s'", bad);
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        const char *what = i ? "types" : "queues";
        if ((v = json_object_get(f, what)) && !json_is_null(v)) {
            if (!(l = name_list(v, what, err, errlen)))
                goto fail;
            json_object_set_new(out, what, l);
        }
    }
    if ((v = json_object_get(f, "metadata")) && !json_is_null(v)) {
        json_t *m = json_object(), *x;
        json_object_set_new(out, "metadata", m);
        if (!json_is_object(v)) {
            snprintf(err, errlen, "'filters.metadata' must be an object of strings, numbers "
                     "or booleans");
            goto fail;
        }
        /* Kept as text: job metadata is compared as text, like GET /jobs's
         * metadata.K=V. */
        json_object_foreach(v, k, x) {
            char buf[64];
            if (json_is_string(x))
                json_object_set(m, k, x);
            else if (json_is_integer(x))
                snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(x)),
                    json_object_set_new(m, k, json_string(buf));
            else if (json_is_real(x))
                snprintf(buf, sizeof buf, "%g", json_real_value(x)),
                    json_object_set_new(m, k, json_string(buf));
            else if (json_is_boolean(x))
                json_object_set_new(m, k, json_string(json_is_true(x) ? "true" : "false"));
            else {
                snprintf(err, errlen, "'filters.metadata.%.100s' must be a string, number or "
                         "boolean", k);
                goto fail;
            }
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* parse_events normalizes events (default ["*"]); "active" is seed 002's
 * name for processing. */
static json_t *
parse_events(json_t *v, char *err, size_t errlen)
{
    json_t *out = json_array(), *x;
    size_t i;

    if (!v || json_is_null(v)) {
        json_array_append_new(out, json_string("*"));
        return out;
    }
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 20) {
        snprintf(err, errlen, "'events' must be a non-empty array of event names");
        goto fail;
    }
    json_array_foreach(v, i, x) {
        const char *e = json_string_value(x);
        const char *const *p;
        if (e && strcmp(e, "active") == 0)
            e = "processing";
        for (p = event_names; e && *p && strcmp(*p, e) != 0; p++)
            ;
        if (!e || !*p) {
            snprintf(err, errlen, "'events[%zu]' must be one of waiting, delayed, processing, "
                     "progress, completed, failed, canceled, created or \"*\"", i);
            goto fail;
        }
        json_array_append_new(out, json_string(e));
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* parse_headers checks headers: an object of strings that are safe to
 * send (HTTP token names, no line breaks in values). */
static json_t *
parse_headers(json_t *v, char *err, size_t errlen)
{
    const char *k;
    json_t *x;

    if (!v || json_is_null(v))
        return json_object();
    if (!json_is_object(v) || json_object_size(v) > 50) {
        snprintf(err, errlen, "'headers' must be an object of at most 50 strings");
        return NULL;
    }
    json_object_foreach(v, k, x) {
        const char *s = json_string_value(x);
        int ok = *k && strlen(k) <= 256;
        for (const char *p = k; ok && *p; p++)
            ok = isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p);
        if (!ok) {
            snprintf(err, errlen, "'headers.%.100s' is not a valid header name", k);
            return NULL;
        }
        if (!s || strpbrk(s, "\r\n") || strlen(s) > 8192) {
            snprintf(err, errlen, "'headers.%.100s' must be a string without line breaks", k);
            return NULL;
        }
    }
    return json_incref(v);
}

json_t *
subs_validate(json_t *body, char *err, size_t errlen)
{
    static const char *const keys[] = { "name", "endpoint", "url", "filters", "events",
                                        "headers", NULL };
    json_t *name, *endpoint, *filters = NULL, *events = NULL, *headers = NULL;
    const char *bad;

    if (!json_is_object(body)) {
        snprintf(err, errlen, "Request body must be a JSON object.");
        return NULL;
    }
    if ((bad = unknown_field(body, keys))) {
        snprintf(err, errlen, "unknown field '%.100s'", bad);
        return NULL;
    }
    name = json_object_get(body, "name");
    if (!json_is_string(name) || !*json_string_value(name) ||
        strlen(json_string_value(name)) > SUBS_NAME_MAX) {
        snprintf(err, errlen, "'name' is required: a string of 1 to %d characters",
                 SUBS_NAME_MAX);
        return NULL;
    }
    /* "url" is accepted for "endpoint", as job webhooks call it. */
    endpoint = json_object_get(body, "endpoint");
    if (!endpoint)
        endpoint = json_object_get(body, "url");
    if (!json_is_string(endpoint) || !valid_url(json_string_value(endpoint))) {
        snprintf(err, errlen, "'endpoint' is required: an http:// or https:// URL");
        return NULL;
    }
    if (!(filters = parse_filters(json_object_get(body, "filters"), err, errlen)) ||
        !(events = parse_events(json_object_get(body, "events"), err, errlen)) ||
        !(headers = parse_headers(json_object_get(body, "headers"), err, errlen))) {
        json_decref(filters);
        json_decref(events);
        return NULL;
    }
    return json_pack("{s:O, s:O, s:o, s:o, s:o}", "name", name, "endpoint", endpoint,
                     "filters", filters, "events", events, "headers", headers);
}

/* ---- matching ---- */

static int
in_names(json_t *list, const char *s)
{
    size_t i;
    json_t *x;
    if (json_array_size(list) == 0)
        return 1;   /* no filter */
    json_array_foreach(list, i, x)
        if (strcmp(json_string_value(x) ?: "", s) == 0)
            return 1;
    return 0;
}

int
subs_match(json_t *sub, const char *q, json_t *event)
{
    json_t *filters = json_object_get(sub, "filters"), *events = json_object_get(sub, "events");
    const char *status = json_string_value(json_object_get(event, "status"));
    const char *type = json_string_value(json_object_get(event, "type"));
    int created = json_is_true(json_object_get(event, "created"));
    json_int_t ts = json_integer_value(json_object_get(event, "ts"));
    size_t i;
    json_t *x;
    int want = 0;

    if (!status || !type || ts < json_integer_value(json_object_get(sub, "createdAt")))
        return 0;
    if (!in_names(json_object_get(filters, "queues"), q) ||
        !in_names(json_object_get(filters, "types"), type))
        return 0;
    json_array_foreach(events, i, x) {
        const char *e = json_string_value(x);
        if (e && (strcmp(e, "*") == 0 || strcmp(e, status) == 0 ||
                  (created && strcmp(e, "created") == 0)))
            want = 1;
    }
    return want;
}

int
subs_match_meta(json_t *sub, json_t *metadata)
{
    json_t *want = json_object_get(json_object_get(sub, "filters"), "metadata");
    return job_meta_matches(metadata, want);
}

/* ---- routes ---- */

static enum MHD_Result
unavailable(struct http_req *r, struct store *st)
{
    return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Redis is unavailable (%s).",
                      st && st->err[0] ? st->err : "not connected");
}

/* public_view is what the API shows of a stored subscription. */
static json_t *
public_view(json_t *rec)
{
    static const char *const order[] = { "id", "name", "endpoint", "filters", "events",
                                         "headers", NULL };
    char iso[32];
    json_t *o = json_object(), *v;

    for (const char *const *k = order; *k; k++)
        if ((v = json_object_get(rec, *k)))
            json_object_set(o, *k, v);
    iso8601_format(json_integer_value(json_object_get(rec, "createdAt")), iso);
    json_object_set_new(o, "createdAt", json_string(iso));
    return o;
}

/* load_all reads every stored subscription (parsed) into a new array;
 * NULL when Redis failed. */
static json_t *
load_all(struct store *st, const char *prefix)
{
    redisReply *r = store_command(st, "HGETALL %s:subscriptions", prefix);
    json_t *out;

    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return NULL;
    }
    out = json_array();
    for (size_t i = 1; i < r->elements; i += 2) {
        json_t *s = json_loadb(r->element[i]->str, r->element[i]->len, 0, NULL);
        if (json_is_object(s))
            json_array_append_new(out, s);
        else
            json_decref(s);
    }
    freeReplyObject(r);
    return out;
}

static int
by_created(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "createdAt"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "createdAt"));
    return x < y ? -1 : x > y;
}

static int
owned(json_t *rec, const char *app)
{
    const char *owner = json_string_value(json_object_get(rec, "app"));
    return !app || !*app || (owner && strcmp(owner, app) == 0);
}

enum MHD_Result
subs_post(struct http_req *r, struct store *st, const char *prefix, const char *app)
{
    char err[512], id[37];
    json_t *rec;
    redisReply *rep;
    char *txt;
    long long n;

    if (!st)
        return unavailable(r, st);
    if (!(rec = subs_validate(r->json, err, sizeof err)))
        return http_error(r, MHD_HTTP_BAD_REQUEST, "%s", err);
    if (uuid4(id) < 0) {
        json_decref(rec);
        return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "No randomness for an id.");
    }
    rep = store_command(st, "HLEN %s:subscriptions", prefix);
    n = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep)
        freeReplyObject(rep);
    if (n < 0) {
        json_decref(rec);
        return unavailable(r, st);
    }
    if (n >= SUBS_MAX) {
        json_decref(rec);
        return http_error(r, MHD_HTTP_CONFLICT, "There are already %d subscriptions; delete "
                          "some first.", SUBS_MAX);
    }
    json_object_set_new(rec, "id", json_string(id));
    json_object_set_new(rec, "createdAt", json_integer(now_ms()));
    json_object_set_new(rec, "app", json_string(app ? app : ""));
    txt = json_dumps(rec, JSON_COMPACT);
    rep = store_command(st, "HSET %s:subscriptions %s %s", prefix, id, txt);
    free(txt);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep)
            freeReplyObject(rep);
        json_decref(rec);
        return unavailable(r, st);
    }
    freeReplyObject(rep);
    txt = NULL;
    {
        json_t *view = public_view(rec);
        json_decref(rec);
        return http_json(r, MHD_HTTP_CREATED, view);
    }
}

enum MHD_Result
subs_list(struct http_req *r, struct store *st, const char *prefix, const char *app)
{
    json_t *all = st ? load_all(st, prefix) : NULL, *out, *x;
    json_t **v;
    size_t i, n = 0;

    if (!all)
        return unavailable(r, st);
    v = xcalloc(json_array_size(all) + 1, sizeof *v);
    json_array_foreach(all, i, x)
        if (owned(x, app))
            v[n++] = x;
    qsort(v, n, sizeof *v, by_created);
    out = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(out, public_view(v[i]));
    free(v);
    json_decref(all);
    return http_json(r, MHD_HTTP_OK, json_pack("{s:o, s:I}", "subscriptions", out, "count",
                                               (json_int_t)n));
}

enum MHD_Result
subs_delete(struct http_req *r, struct store *st, const char *prefix, const char *app,
            const char *id)
{
    redisReply *rep;
    json_t *rec = NULL, *body;
    char msg[128];

    if (!st)
        return unavailable(r, st);
    rep = store_command(st, "HGET %s:subscriptions %s", prefix, id);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep)
            freeReplyObject(rep);
        return unavailable(r, st);
    }
    if (rep->type == REDIS_REPLY_STRING)
        rec = json_loadb(rep->str, rep->len, 0, NULL);
    freeReplyObject(rep);
    /* Another application's subscription does not exist for this one. */
    if (!json_is_object(rec) || !owned(rec, app)) {
        json_decref(rec);
        return http_error(r, MHD_HTTP_NOT_FOUND, "Subscription with ID '%.100s' not found.", id);
    }
    rep = store_command(st, "HDEL %s:subscriptions %s", prefix, id);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep)
            freeReplyObject(rep);
        json_decref(rec);
        return unavailable(r, st);
    }
    freeReplyObject(rep);
    snprintf(msg, sizeof msg, "Subscription '%.40s' was deleted.", id);
    body = json_pack("{s:s, s:o}", "message", msg, "subscription", public_view(rec));
    json_decref(rec);
    return http_json(r, MHD_HTTP_OK, body);
}

/* ---- the dispatcher ---- */

/* group is what the dispatcher knows of one queue's consumer group. */
struct group {
    char   *queue;
    int     ready;          /* the group exists */
    int64_t next_takeover;  /* mono ms */
    int64_t next_sweep;     /* mono ms */
};

struct subs {
    const struct config *c;
    char          consumer[200];
    json_t       *list;       /* the subscriptions, parsed */
    int64_t       next_load;  /* mono ms */
    int64_t       oldest;     /* smallest createdAt (ms) */
    struct group *groups;
    int           ngroups;
};

struct subs *
subs_new(const struct config *c, const char *consumer)
{
    struct subs *s = xcalloc(1, sizeof *s);
    s->c = c;
    snprintf(s->consumer, sizeof s->consumer, "%s", consumer);
    s->list = json_array();
    return s;
}

void
subs_free(struct subs *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->ngroups; i++)
        free(s->groups[i].queue);
    free(s->groups);
    json_decref(s->list);
    free(s);
}

static int
reload(struct subs *s, struct store *st)
{
    json_t *all = load_all(st, s->c->prefix), *x;
    size_t i;

    if (!all)
        return -1;
    json_decref(s->list);
    s->list = all;
    s->oldest = INT64_MAX;
    json_array_foreach(all, i, x) {
        json_int_t t = json_integer_value(json_object_get(x, "createdAt"));
        if (t < s->oldest)
            s->oldest = t;
    }
    return 0;
}

static struct group *
group_of(struct subs *s, const char *q)
{
    for (int i = 0; i < s->ngroups; i++)
        if (strcmp(s->groups[i].queue, q) == 0)
            return &s->groups[i];
    s->groups = xrealloc(s->groups, sizeof *s->groups * (size_t)(s->ngroups + 1));
    memset(&s->groups[s->ngroups], 0, sizeof *s->groups);
    s->groups[s->ngroups].queue = xstrdup(q);
    return &s->groups[s->ngroups++];
}

/* ensure_group creates the queue's consumer group, starting at the oldest
 * subscription's creation: nothing a subscription should see is skipped,
 * and older events are not read at all.  0, or -1 when Redis failed. */
static int
ensure_group(struct subs *s, struct store *st, struct group *g)
{
    redisReply *r;
    char start[32];

    if (g->ready)
        return 0;
    snprintf(start, sizeof start, "%" PRId64 "-0", s->oldest > 0 ? s->oldest - 1 : 0);
    r = store_command(st, "XGROUP CREATE %s:{%s}:events %s %s MKSTREAM", s->c->prefix,
                      g->queue, SUBS_GROUP, start);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0)
        g->ready = 1;
    else
        log_warn("subscriptions: queue %s: %s", g->queue, r->str);
    freeReplyObject(r);
    return 0;
}

/* entry_json turns a stream entry's [field, value, ...] into an object,
 * numbers as numbers and created as a boolean. */
static json_t *
entry_json(const redisReply *f)
{
    json_t *o = json_object();

    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        if (!k || !v)
            continue;
        if (strcmp(k, "ts") == 0 || strcmp(k, "attempt") == 0 || strcmp(k, "runAt") == 0 ||
            strcmp(k, "progress") == 0)
            json_object_set_new(o, k, json_integer(strtoll(v, NULL, 10)));
        else if (strcmp(k, "created") == 0)
            json_object_set_new(o, k, json_true());
        else
            json_object_set_new(o, k, json_string(v));
    }
    return o;
}

/* delivery_id derives the id of (queue, entry, subscription): the same
 * event handled twice gets the same id, and the outbox keeps one. */
static void
delivery_id(const char *q, const char *entry, const char *sub, char out[40])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    struct strbuf sb = { 0 };
    static const char hex[] = "0123456789abcdef";

    sb_printf(&sb, "%s\n%s\n%s", q, entry, sub);
    EVP_Digest(sb.buf, sb.len, md, &n, EVP_sha256(), NULL);
    sb_free(&sb);
    memcpy(out, "evt_", 4);
    for (int i = 0; i < 16; i++) {
        out[4 + 2 * i] = hex[md[i] >> 4];
        out[5 + 2 * i] = hex[md[i] & 15];
    }
    out[36] = '\0';
}

/* event_body is the JSON posted for one event to one subscription. */
static char *
event_body(json_t *ev, const char *ext_q, json_t *sub, const char *result, json_t *meta)
{
    json_t *b = json_pack("{s:O?, s:O?, s:O?, s:s, s:O?, s:O?}",
                          "jobId", json_object_get(ev, "jobId"),
                          "status", json_object_get(ev, "status"),
                          "type", json_object_get(ev, "type"),
                          "queue", ext_q,
                          "timestamp", json_object_get(ev, "ts"),
                          "subscriptionId", json_object_get(sub, "id"));
    static const char *const extra[] = { "created", "attempt", "progress", "error", "runAt",
                                         NULL };
    json_t *v;
    char *txt;

    for (const char *const *k = extra; *k; k++)
        if ((v = json_object_get(ev, *k)))
            json_object_set(b, *k, v);
    if (result && (v = json_loads(result, JSON_DECODE_ANY, NULL)))
        json_object_set_new(b, "result", v);
    if (json_is_object(meta))
        json_object_set(b, "metadata", meta);
    txt = json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(b);
    return txt;
}

/* job_fields reads the job's metadata and result (both may be NULL). */
static int
job_fields(struct subs *s, struct store *st, const char *q, const char *job_id, json_t **meta,
           char **result)
{
    redisReply *r = store_command(st, "HMGET %s:{%s}:job:%s metadata result", s->c->prefix, q,
                                  job_id);
    *meta = NULL;
    *result = NULL;
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        if (r->element[0]->type == REDIS_REPLY_STRING)
            *meta = json_loadb(r->element[0]->str, r->element[0]->len, 0, NULL);
        if (r->element[1]->type == REDIS_REPLY_STRING)
            *result = xstrdup(r->element[1]->str);
    }
    freeReplyObject(r);
    return 0;
}

/* fanout queues the deliveries of one event and acknowledges it.  Returns
 * how many were queued, or -1 when Redis failed (the event stays pending
 * and is read again after the takeover delay). */
static int
fanout(struct subs *s, struct store *st, const char *q, const char *entry, json_t *ev,
       json_t **cands, const char **exts, int ncand)
{
    const char **argv = xcalloc(4 + 7 * (size_t)ncand, sizeof *argv);
    char **owned_txt = xcalloc(3 * (size_t)ncand + 1, sizeof *owned_txt);
    char (*ids)[40] = xcalloc((size_t)ncand + 1, sizeof *ids);
    char base[160], now_s[24], *result = NULL;
    json_t *meta = NULL;
    int argc = 4, nowned = 0, rc = -1;
    const char *job_id = json_string_value(json_object_get(ev, "jobId")) ?: "";
    const char *status = json_string_value(json_object_get(ev, "status")) ?: "";
    redisReply *r;

    if (job_fields(s, st, q, job_id, &meta, &result) < 0)
        goto out;
    snprintf(base, sizeof base, "%s:{%s}", s->c->prefix, q);
    snprintf(now_s, sizeof now_s, "%" PRId64, now_ms());
    argv[0] = base;
    argv[1] = now_s;
    argv[2] = SUBS_GROUP;
    argv[3] = entry;
    for (int i = 0; i < ncand; i++) {
        json_t *h = json_object_get(cands[i], "headers");
        if (!subs_match_meta(cands[i], meta))
            continue;
        delivery_id(q, entry, json_string_value(json_object_get(cands[i], "id")) ?: "", ids[i]);
        argv[argc++] = ids[i];
        argv[argc++] = json_string_value(json_object_get(cands[i], "endpoint")) ?: "";
        argv[argc++] = owned_txt[nowned++] =
            json_object_size(h) ? json_dumps(h, JSON_COMPACT) : xstrdup("");
        argv[argc++] = owned_txt[nowned++] = event_body(ev, exts[i], cands[i], result, meta);
        argv[argc++] = status;
        argv[argc++] = job_id;
        argv[argc++] = json_string_value(json_object_get(cands[i], "id")) ?: "";
    }
    r = store_eval(st, S_WH_FANOUT, 1, argc, argv, NULL);
    if (r && r->type == REDIS_REPLY_INTEGER)
        rc = (int)r->integer;
    else if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("subscriptions: queue %s entry %s: %s", q, entry, r->str);
    if (r)
        freeReplyObject(r);
out:
    for (int i = 0; i < nowned; i++)
        free(owned_txt[i]);
    free(owned_txt);
    free(ids);
    free(argv);
    free(result);
    json_decref(meta);
    return rc;
}

/* handle_entries runs one batch of stream entries ([id, fields] pairs)
 * through the subscriptions.  Entries nobody wants are acknowledged in one
 * XACK.  Returns deliveries queued, or -1 when Redis failed. */
static int
handle_entries(struct subs *s, struct store *st, const char *q, const redisReply *entries)
{
    size_t nsubs = json_array_size(s->list);
    json_t **cands = xcalloc(nsubs + 1, sizeof *cands);
    const char **exts = xcalloc(nsubs + 1, sizeof *exts);
    const char **acks = xcalloc(entries->elements + 4, sizeof *acks);
    char base[160];
    int nacks = 3, queued = 0;

    snprintf(base, sizeof base, "%s:{%s}:events", s->c->prefix, q);
    acks[0] = "XACK";
    acks[1] = base;
    acks[2] = SUBS_GROUP;
    for (size_t i = 0; i < entries->elements && queued >= 0; i++) {
        const redisReply *e = entries->element[i];
        json_t *ev;
        int ncand = 0;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        if (e->element[1]->type != REDIS_REPLY_ARRAY) {
            acks[nacks++] = e->element[0]->str;   /* trimmed meanwhile */
            continue;
        }
        ev = entry_json(e->element[1]);
        for (size_t k = 0; k < nsubs; k++) {
            json_t *sub = json_array_get(s->list, k);
            const char *app = json_string_value(json_object_get(sub, "app"));
            const char *ext = auth_queue_external(app, q);
            if (ext && subs_match(sub, ext, ev)) {
                exts[ncand] = ext;
                cands[ncand++] = sub;
            }
        }
        if (ncand == 0) {
            acks[nacks++] = e->element[0]->str;
        } else {
            int n = fanout(s, st, q, e->element[0]->str, ev, cands, exts, ncand);
            queued = n < 0 ? -1 : queued + n;
        }
        json_decref(ev);
    }
    if (nacks > 3 && queued >= 0) {
        redisReply *r = store_commandargv(st, nacks, acks, NULL);
        if (!r)
            queued = -1;
        else
            freeReplyObject(r);
    }
    free(acks);
    free(exts);
    free(cands);
    return queued;
}

/* read_new reads the queue's unread events, a batch at a time.  Returns
 * deliveries queued, or -1. */
static int
read_new(struct subs *s, struct store *st, struct group *g)
{
    int total = 0;

    for (int b = 0; b < SUBS_BATCHES; b++) {
        redisReply *r = store_command(st, "XREADGROUP GROUP %s %s COUNT %d STREAMS "
                                      "%s:{%s}:events >", SUBS_GROUP, s->consumer, SUBS_BATCH,
                                      s->c->prefix, g->queue);
        const redisReply *entries;
        size_t got;
        int n;

        if (!r)
            return -1;
        if (r->type == REDIS_REPLY_ERROR) {
            /* NOGROUP: the stream was deleted (e.g. FLUSHALL); make it anew. */
            if (strncmp(r->str, "NOGROUP", 7) == 0)
                g->ready = 0;
            else
                log_warn("subscriptions: queue %s: %s", g->queue, r->str);
            freeReplyObject(r);
            return total;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
            r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2) {
            freeReplyObject(r);
            return total;
        }
        entries = r->element[0]->element[1];
        got = entries->elements;
        n = handle_entries(s, st, g->queue, entries);
        freeReplyObject(r);
        if (n < 0)
            return -1;
        total += n;
        if (got < SUBS_BATCH)
            break;
    }
    return total;
}

/* take_over moves to this consumer the entries another one read and never
 * acknowledged (it died), then handles them. */
static int
take_over(struct subs *s, struct store *st, struct group *g)
{
    redisReply *r = store_command(st, "XAUTOCLAIM %s:{%s}:events %s %s %d 0-0 COUNT %d",
                                  s->c->prefix, g->queue, SUBS_GROUP, s->consumer,
                                  SUBS_TAKEOVER_IDLE, SUBS_BATCH);
    int n = 0;

    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements > 0) {
        log_info("subscriptions: queue %s: taking over %zu events of a stopped process",
                 g->queue, r->element[1]->elements);
        n = handle_entries(s, st, g->queue, r->element[1]);
    }
    freeReplyObject(r);
    return n;
}

/* sweep forgets consumers of stopped processes (every restart is a new
 * consumer): those idle for an hour with nothing pending. */
static void
sweep(struct subs *s, struct store *st, struct group *g)
{
    redisReply *r = store_command(st, "XINFO CONSUMERS %s:{%s}:events %s", s->c->prefix,
                                  g->queue, SUBS_GROUP);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *c = r->element[i];
        const char *name = NULL;
        long long pending = -1, idle = 0;
        for (size_t k = 0; c->type == REDIS_REPLY_ARRAY && k + 1 < c->elements; k += 2) {
            const char *f = c->element[k]->str;
            const redisReply *v = c->element[k + 1];
            if (!f)
                continue;
            if (strcmp(f, "name") == 0 && v->type == REDIS_REPLY_STRING)
                name = v->str;
            else if (strcmp(f, "pending") == 0)
                pending = v->integer;
            else if (strcmp(f, "idle") == 0)
                idle = v->integer;
        }
        if (name && pending == 0 && idle > SUBS_DEPARTED && strcmp(name, s->consumer) != 0) {
            redisReply *d = store_command(st, "XGROUP DELCONSUMER %s:{%s}:events %s %s",
                                          s->c->prefix, g->queue, SUBS_GROUP, name);
            if (d)
                freeReplyObject(d);
        }
    }
    if (r)
        freeReplyObject(r);
}

int
subs_dispatch(struct subs *s, struct store *st, char **queues, int n)
{
    int64_t now = mono_ms();
    int total = 0;

    if (now >= s->next_load) {
        if (reload(s, st) < 0)
            return -1;
        s->next_load = now + SUBS_RELOAD_MS;
    }
    /* Without subscriptions no group is read (nor even made). */
    if (json_array_size(s->list) == 0)
        return 0;
    for (int i = 0; i < n; i++) {
        struct group *g = group_of(s, queues[i]);
        int k;
        if (ensure_group(s, st, g) < 0)
            return -1;
        if (!g->ready)
            continue;
        if (now >= g->next_takeover) {
            if (g->next_takeover && take_over(s, st, g) < 0)
                return -1;
            g->next_takeover = now + SUBS_TAKEOVER_EVERY;
        }
        if (now >= g->next_sweep) {
            if (g->next_sweep)
                sweep(s, st, g);
            g->next_sweep = now + SUBS_SWEEP_EVERY;
        }
        if ((k = read_new(s, st, g)) < 0)
            return -1;
        total += k;
    }
    return total;
}
