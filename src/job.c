/* job.c — validating enqueue requests and rendering stored jobs.
 *
 * Validation is strict (unknown fields are errors) because a typo such as
 * "prority" silently ignored is a job run at the wrong priority. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "util.h"

#define DAY_MS 86400000LL

/* get_int reads an integer field (a real with an integral value counts).
 * 1 found, 0 absent (or null), -1 wrong type. */
static int
get_int(json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9.0e15) {
            *out = (int64_t)d;
            return 1;
        }
    }
    return -1;
}

/* int_field checks an optional integer in [lo, hi]; 0 ok, -1 err set. */
static int
int_field(json_t *obj, const char *key, const char *label, int64_t lo, int64_t hi,
          int64_t *out, int *given, char *err, size_t errlen)
{
    int r = get_int(obj, key, out);
    *given = r == 1;
    if (r < 0 || (r == 1 && (*out < lo || *out > hi))) {
        if (hi == INT64_MAX)
            snprintf(err, errlen, "'%s' must be an integer >= %" PRId64, label, lo);
        else
            snprintf(err, errlen, "'%s' must be an integer between %" PRId64 " and %" PRId64,
                     label, lo, hi);
        return -1;
    }
    return 0;
}

/* only_keys fails on any key of obj outside the NULL-terminated list. */
static int
only_keys(json_t *obj, const char *const *allowed, const char *where, char *err,
          size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(key, *a) == 0)
                ok = 1;
        if (!ok) {
            snprintf(err, errlen, "unknown field '%s%s%.100s'", where, *where ? "." : "", key);
            return -1;
        }
    }
    (void)v;
    return 0;
}

static int
valid_url(const char *s)
{
    return (strncmp(s, "http://", 7) == 0 && s[7]) || (strncmp(s, "https://", 8) == 0 && s[8]);
}

/* webhook_target normalizes "url" or {url, headers} into a new
 * {url, headers?} object, or NULL with err set. */
static json_t *
webhook_target(json_t *v, const char *label, char *err, size_t errlen)
{
    static const char *const keys[] = { "url", "headers", NULL };
    json_t *url, *headers, *out;
    const char *k;
    json_t *hv;

    if (json_is_string(v)) {
        if (!valid_url(json_string_value(v)))
            goto badurl;
        return json_pack("{sO}", "url", v);
    }
    if (!json_is_object(v)) {
        snprintf(err, errlen, "'%s' must be a URL string or an object {url, headers}", label);
        return NULL;
    }
    if (only_keys(v, keys, label, err, errlen) < 0)
        return NULL;
    url = json_object_get(v, "url");
    if (!json_is_string(url) || !valid_url(json_string_value(url))) {
        goto badurl_obj;
    }
    headers = json_object_get(v, "headers");
    if (headers && !json_is_null(headers)) {
        if (!json_is_object(headers)) {
            snprintf(err, errlen, "'%s.headers' must be an object of strings", label);
            return NULL;
        }
        json_object_foreach(headers, k, hv) {
            if (!json_is_string(hv)) {
                snprintf(err, errlen, "'%s.headers.%.100s' must be a string", label, k);
                return NULL;
            }
        }
    }
    out = json_pack("{sO}", "url", url);
    if (headers && json_is_object(headers))
        json_object_set(out, "headers", headers);
    return out;
badurl:
    snprintf(err, errlen, "'%s' must be an http:// or https:// URL", label);
    return NULL;
badurl_obj:
    snprintf(err, errlen, "'%s.url' must be an http:// or https:// URL", label);
    return NULL;
}

/* parse_webhooks reads seed 000's `webhook` and seed 002's `webhooks`
 * into one {event: {url, headers}} object text. */
static int
parse_webhooks(json_t *body, struct job_spec *s, char *err, size_t errlen)
{
    static const char *const events[] = { "completed", "failed", "progress", "*", NULL };
    json_t *one = json_object_get(body, "webhook");
    json_t *many = json_object_get(body, "webhooks");
    json_t *all = json_object();
    const char *ev;
    json_t *v, *t;
    int rc = -1;

    if (one && !json_is_null(one)) {
        if (!(t = webhook_target(one, "webhook", err, errlen)))
            goto out;
        json_object_set(all, "completed", t);
        json_object_set_new(all, "failed", t);
    }
    if (many && !json_is_null(many)) {
        if (!json_is_object(many)) {
            snprintf(err, errlen, "'webhooks' must be an object {completed, failed, progress, \"*\"}");
            goto out;
        }
        if (only_keys(many, events, "webhooks", err, errlen) < 0)
            goto out;
        json_object_foreach(many, ev, v) {
            char label[64];
            snprintf(label, sizeof label, "webhooks.%s", ev);
            if (!(t = webhook_target(v, label, err, errlen)))
                goto out;
            json_object_set_new(all, ev, t);
        }
    }
    if (json_object_size(all))
        s->webhooks = json_dumps(all, JSON_COMPACT);
    rc = 0;
out:
    json_decref(all);
    return rc;
}

static int
parse_metadata(json_t *body, struct job_spec *s, char *err, size_t errlen)
{
    json_t *m = json_object_get(body, "metadata");
    const char *k;
    json_t *v;

    if (!m || json_is_null(m))
        return 0;
    if (!json_is_object(m)) {
        snprintf(err, errlen, "'metadata' must be an object of strings, numbers or booleans");
        return -1;
    }
    json_object_foreach(m, k, v) {
        if (!*k || strlen(k) > 128) {
            snprintf(err, errlen, "'metadata' keys must be 1 to 128 characters");
            return -1;
        }
        if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v)) {
            snprintf(err, errlen, "'metadata.%.100s' must be a string, number or boolean", k);
            return -1;
        }
    }
    s->metadata = json_dumps(m, JSON_COMPACT | JSON_REAL_PRECISION(15));
    return 0;
}

static int
parse_retry(json_t *body, struct job_spec *s, char *err, size_t errlen)
{
    static const char *const keys[] = { "maxAttempts", "backoff", "strategy", NULL };
    json_t *r = json_object_get(body, "retry"), *st;
    int64_t v;
    int given;

    if (!r || json_is_null(r))
        return 0;
    if (!json_is_object(r)) {
        snprintf(err, errlen, "'retry' must be an object {maxAttempts, backoff, strategy}");
        return -1;
    }
    if (only_keys(r, keys, "retry", err, errlen) < 0)
        return -1;
    if (int_field(r, "maxAttempts", "retry.maxAttempts", 1, JOB_ATTEMPTS_MAX, &v, &given,
                  err, errlen) < 0)
        return -1;
    if (given)
        s->max_attempts = (int)v;
    if (int_field(r, "backoff", "retry.backoff", 0, DAY_MS, &v, &given, err, errlen) < 0)
        return -1;
    if (given)
        s->backoff = v;
    st = json_object_get(r, "strategy");
    if (st && !json_is_null(st)) {
        const char *x = json_is_string(st) ? json_string_value(st) : "";
        if (strcmp(x, "exponential") != 0 && strcmp(x, "fixed") != 0) {
            snprintf(err, errlen, "'retry.strategy' must be \"exponential\" or \"fixed\"");
            return -1;
        }
        snprintf(s->strategy, sizeof s->strategy, "%s", x);
    }
    return 0;
}

/* parse_when reads delay (ms) or runAt (ms or ISO-8601) into s->run_at. */
static int
parse_when(json_t *body, int64_t now, struct job_spec *s, char *err, size_t errlen)
{
    json_t *at = json_object_get(body, "runAt");
    int64_t delay;
    int given;

    if (int_field(body, "delay", "delay", 0, 365 * DAY_MS, &delay, &given, err, errlen) < 0)
        return -1;
    if (given)
        s->run_at = now + delay;
    if (at && !json_is_null(at)) {
        if (given) {
            snprintf(err, errlen, "'delay' and 'runAt' cannot both be set");
            return -1;
        }
        if (json_is_string(at)) {
            if (iso8601_parse(json_string_value(at), &s->run_at) < 0) {
                snprintf(err, errlen, "'runAt' must be ms since the epoch or an ISO-8601 date "
                         "such as 2030-01-01T00:00:00Z");
                return -1;
            }
        } else if (get_int(body, "runAt", &s->run_at) != 1 || s->run_at < 0) {
            snprintf(err, errlen, "'runAt' must be ms since the epoch or an ISO-8601 date "
                     "such as 2030-01-01T00:00:00Z");
            return -1;
        }
    }
    return 0;
}

static int
string_field(json_t *body, const char *key, int required, char **out, char *err,
             size_t errlen)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) {
        if (required) {
            snprintf(err, errlen, "'%s' is required", key);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "'%s' must be a string", key);
        return -1;
    }
    *out = xstrdup(json_string_value(v));
    return 0;
}

int
job_spec_from_json(json_t *body, int64_t now, struct job_spec *s, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "type", "payload", "data", "queue", "priority", "delay", "runAt", "retry",
        "timeout", "metadata", "webhook", "webhooks", "idempotencyKey", NULL
    };
    json_t *payload;
    int64_t v;
    int given;

    memset(s, 0, sizeof *s);
    s->backoff = -1;
    if (!json_is_object(body)) {
        snprintf(err, errlen, "a job must be a JSON object");
        return -1;
    }
    if (only_keys(body, keys, "", err, errlen) < 0)
        goto fail;
    if (string_field(body, "type", 1, &s->type, err, errlen) < 0)
        goto fail;
    if (!valid_name(s->type)) {
        snprintf(err, errlen, "'type' must match [A-Za-z0-9._:-]{1,128}");
        goto fail;
    }
    if (string_field(body, "queue", 0, &s->queue, err, errlen) < 0)
        goto fail;
    if (!s->queue)
        s->queue = xstrdup("default");
    if (!valid_name(s->queue)) {
        snprintf(err, errlen, "'queue' must match [A-Za-z0-9._:-]{1,128}");
        goto fail;
    }
    /* "data" is seed 002's name for the payload. */
    payload = json_object_get(body, "payload");
    if (payload && json_object_get(body, "data")) {
        snprintf(err, errlen, "'payload' and 'data' cannot both be set");
        goto fail;
    }
    if (!payload)
        payload = json_object_get(body, "data");
    if (!payload || json_is_null(payload)) {
        snprintf(err, errlen, "'payload' is required");
        goto fail;
    }
    if (!json_is_object(payload)) {
        snprintf(err, errlen, "'payload' must be a JSON object");
        goto fail;
    }
    s->payload = json_dumps(payload, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (int_field(body, "priority", "priority", JOB_PRIORITY_MIN, JOB_PRIORITY_MAX, &v,
                  &given, err, errlen) < 0)
        goto fail;
    s->priority = given ? (int)v : 0;
    if (int_field(body, "timeout", "timeout", 1, DAY_MS, &v, &given, err, errlen) < 0)
        goto fail;
    s->timeout = given ? v : 0;
    if (parse_when(body, now, s, err, errlen) < 0 || parse_retry(body, s, err, errlen) < 0 ||
        parse_metadata(body, s, err, errlen) < 0 || parse_webhooks(body, s, err, errlen) < 0)
        goto fail;
    if (string_field(body, "idempotencyKey", 0, &s->idem_key, err, errlen) < 0)
        goto fail;
    if (s->idem_key && (!*s->idem_key || strlen(s->idem_key) > 256)) {
        snprintf(err, errlen, "'idempotencyKey' must be 1 to 256 characters");
        goto fail;
    }
    if (uuid4(s->id) < 0) {
        snprintf(err, errlen, "cannot make a job id: no randomness");
        goto fail;
    }
    return 0;
fail:
    job_spec_free(s);
    return -1;
}

void
job_spec_free(struct job_spec *s)
{
    free(s->type);
    free(s->queue);
    free(s->payload);
    free(s->metadata);
    free(s->webhooks);
    free(s->idem_key);
    free(s->app);
    memset(s, 0, sizeof *s);
    s->backoff = -1;
}

static void
set_num(json_t *o, const char *k, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    json_object_set_new(o, k, json_string(buf));
}

char *
job_spec_encode(const struct job_spec *s, int64_t now, int default_attempts,
                int64_t default_backoff)
{
    json_t *o = json_object();
    char *txt;

    /* Every value is a string: the script HSETs them as they are. */
    json_object_set_new(o, "id", json_string(s->id));
    json_object_set_new(o, "type", json_string(s->type));
    json_object_set_new(o, "queue", json_string(s->queue));
    json_object_set_new(o, "payload", json_string(s->payload));
    if (s->metadata)
        json_object_set_new(o, "metadata", json_string(s->metadata));
    set_num(o, "priority", s->priority);
    set_num(o, "runAt", s->run_at ? s->run_at : now);
    set_num(o, "createdAt", now);
    set_num(o, "updatedAt", now);
    set_num(o, "attempts", 0);
    set_num(o, "progress", 0);
    set_num(o, "maxAttempts", s->max_attempts ? s->max_attempts : default_attempts);
    set_num(o, "backoff", s->backoff >= 0 ? s->backoff : default_backoff);
    json_object_set_new(o, "strategy", json_string(s->strategy[0] ? s->strategy : "exponential"));
    /* retrySet tells the worker that the job's own retry policy wins over
     * the handler's options (DESIGN.md order: job > handler > config). */
    if (s->max_attempts || s->backoff >= 0 || s->strategy[0])
        json_object_set_new(o, "retrySet", json_string("1"));
    if (s->timeout)
        set_num(o, "timeout", s->timeout);
    if (s->webhooks)
        json_object_set_new(o, "webhooks", json_string(s->webhooks));
    if (s->idem_key)
        json_object_set_new(o, "idempotencyKey", json_string(s->idem_key));
    if (s->app)
        json_object_set_new(o, "app", json_string(s->app));
    txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return txt;
}

static const char *const numeric_fields[] = {
    "priority", "attempts", "maxAttempts", "backoff", "timeout", "progress",
    "createdAt", "updatedAt", "runAt", "startedAt", "completedAt", "failedAt",
    "leaseExpiresAt", NULL
};
static const char *const json_fields[] = { "payload", "metadata", "result", "webhooks", "logs", NULL };


static int
in_list(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(k, *list) == 0)
            return 1;
    return 0;
}

json_t *
job_from_reply(const redisReply *r, int with_token)
{
    json_t *job, *status;

    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return NULL;
    job = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        json_t *val = NULL;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "retrySet") == 0 || (!with_token && strcmp(k->str, "leaseToken") == 0))
            continue;
        /* The webhook outbox's bookkeeping (webhook.h), not job fields. */
        if (strcmp(k->str, "whIds") == 0 || strcmp(k->str, "whSeq") == 0)
            continue;
        if (in_list(k->str, numeric_fields)) {
            char *end;
            long long n = strtoll(v->str, &end, 10);
            if (*end == '\0' && end != v->str)
                val = json_integer(n);
        } else if (in_list(k->str, json_fields)) {
            val = json_loadb(v->str, v->len, JSON_DECODE_ANY, NULL);
        }
        if (!val)
            val = json_stringn(v->str, v->len);
        if (!val)
            val = json_lossy(v->str, v->len);
        if (val)
            json_object_set_new(job, k->str, val);
    }
    /* A lease deadline only means something while the job is processing. */
    status = json_object_get(job, "status");
    if (!json_is_string(status) || strcmp(json_string_value(status), "processing") != 0) {
        json_object_del(job, "leaseExpiresAt");
        if (!with_token)
            json_object_del(job, "leaseToken");
    }
    return job;
}

int64_t
backoff_delay(const char *strategy, int64_t base, int attempt)
{
    double d;
    if (base <= 0)
        return 0;
    if (strategy && strcmp(strategy, "fixed") == 0)
        return base > DAY_MS ? DAY_MS : base;
    d = (double)base * pow(2.0, attempt > 1 ? attempt - 1 : 0);
    return d > (double)DAY_MS ? DAY_MS : (int64_t)d;
}

int
job_meta_matches(json_t *metadata, json_t *filter)
{
    json_t *want;
    const char *k;

    if (!filter || !json_object_size(filter))
        return 1;
    if (!json_is_object(metadata))
        return 0;
    json_object_foreach(filter, k, want) {
        json_t *have = json_object_get(metadata, k);
        char buf[64];
        const char *txt = NULL;
        if (json_is_string(have)) {
            txt = json_string_value(have);
        } else if (json_is_integer(have)) {
            snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(have));
            txt = buf;
        } else if (json_is_real(have)) {
            snprintf(buf, sizeof buf, "%g", json_real_value(have));
            txt = buf;
        } else if (json_is_boolean(have)) {
            txt = json_is_true(have) ? "true" : "false";
        }
        if (!txt || strcmp(txt, json_string_value(want) ?: "") != 0)
            return 0;
    }
    return 1;
}
