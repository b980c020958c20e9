/* queue.c — the job lifecycle, one EVALSHA per transition (see queue.h for
 * the key layout and lua/ for the scripts themselves). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"
#include "util.h"
#include "webhook.h"

/* EVENTS_CAP bounds each queue's event stream (approximate MAXLEN ~). */
#define EVENTS_CAP "10000"

const char *const queue_states[6] = {
    "waiting", "delayed", "processing", "completed", "failed", "canceled"
};
/* The index key suffix of each state, in queue_states order. */
static const char *const state_keys[6] = {
    "wait", "delayed", "active", "completed", "failed", "canceled"
};

/* qbase writes the key base "P:{q}" of a queue. */
static void
qbase(char *out, size_t n, const char *prefix, const char *q)
{
    snprintf(out, n, "%s:{%s}", prefix, q);
}

/* reply_status maps a NULL or error reply to a qstatus, copying the
 * message; Q_OK for any other reply. */
static int
reply_status(struct store *st, redisReply *r, char *err, size_t errlen)
{
    if (!r) {
        if (err)
            snprintf(err, errlen, "%s", st->err[0] ? st->err : "redis unavailable");
        return Q_UNAVAILABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (err)
            snprintf(err, errlen, "redis: %s", r->str);
        log_warn("redis: %s", r->str);
        return Q_REDIS;
    }
    return Q_OK;
}

static void
i64(char *buf, int64_t v)
{
    snprintf(buf, 24, "%" PRId64, v);
}

/* eval1 runs a script on one queue with the given args (numkeys = 1). */
static redisReply *
eval1(struct store *st, enum script_id id, const char *prefix, const char *q,
      int argc, const char **args)
{
    char base[160];
    const char *argv[16];
    qbase(base, sizeof base, prefix, q);
    argv[0] = base;
    for (int i = 0; i < argc && i < 15; i++)
        argv[i + 1] = args[i];
    return store_eval(st, id, 1, argc + 1, argv, NULL);
}

int
queue_names(struct store *st, const char *prefix, char ***names)
{
    redisReply *r = store_command(st, "SMEMBERS %s:queues", prefix);
    int rc = reply_status(st, r, NULL, 0), n = 0;

    *names = NULL;
    if (rc == Q_OK && r->type == REDIS_REPLY_ARRAY) {
        *names = xcalloc(r->elements + 1, sizeof(char *));
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                (*names)[n++] = xstrdup(r->element[i]->str);
        /* Few queues: an insertion sort by name is plenty. */
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && strcmp((*names)[j - 1], (*names)[j]) > 0; j--) {
                char *t = (*names)[j];
                (*names)[j] = (*names)[j - 1];
                (*names)[j - 1] = t;
            }
        rc = n;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

void
queue_names_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* register_queue adds q to P:queues.  The set lives outside the queue's
 * hash tag, so it is a separate command; a queue only has to be listed,
 * not created, so doing this before the enqueue script is enough. */
static int
register_queue(struct store *st, const char *prefix, const char *q, char *err, size_t errlen)
{
    redisReply *r;
    int rc;

    /* Once per queue per connection: a round trip saved on every enqueue.
     * (If P:queues is deleted by hand, listings miss the queue until the
     * process restarts; its jobs are unaffected.) */
    for (int i = 0; i < st->nknown; i++)
        if (strcmp(st->known[i], q) == 0)
            return Q_OK;
    r = store_command(st, "SADD %s:queues %s", prefix, q);
    rc = reply_status(st, r, err, errlen);
    if (rc == Q_OK && st->nknown < (int)(sizeof st->known / sizeof st->known[0]))
        st->known[st->nknown++] = xstrdup(q);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* enqueue_group stores the n jobs of specs[idx[0..n)] (all of one queue). */
static int
enqueue_group(struct store *st, const char *prefix, int default_attempts,
              int64_t default_backoff, const struct job_spec *specs, const int *idx, int n,
              struct enq_result *res, char *err, size_t errlen)
{
    const char **argv = xcalloc((size_t)n + 3, sizeof(char *));
    char base[160], now_s[24];
    int64_t now = now_ms();
    redisReply *r;
    int rc;

    qbase(base, sizeof base, prefix, specs[idx[0]].queue);
    i64(now_s, now);
    argv[0] = base;
    argv[1] = now_s;
    argv[2] = EVENTS_CAP;
    for (int i = 0; i < n; i++)
        argv[3 + i] = job_spec_encode(&specs[idx[i]], now, default_attempts, default_backoff);
    r = store_eval(st, S_ENQUEUE, 1, n + 3, argv, NULL);
    rc = reply_status(st, r, err, errlen);
    if (rc == Q_OK && (r->type != REDIS_REPLY_ARRAY || (int)r->elements != n)) {
        snprintf(err, errlen, "enqueue script answered unexpectedly");
        rc = Q_REDIS;
    }
    for (int i = 0; rc == Q_OK && i < n; i++) {
        redisReply *e = r->element[i];
        struct enq_result *o = &res[idx[i]];
        snprintf(o->id, sizeof o->id, "%s", e->element[0]->str);
        snprintf(o->status, sizeof o->status, "%s",
                 e->element[1]->type == REDIS_REPLY_STRING ? e->element[1]->str : "unknown");
        o->created_at = e->element[2]->type == REDIS_REPLY_STRING
                            ? strtoll(e->element[2]->str, NULL, 10) : now;
        o->existed = (int)e->element[3]->integer;
        snprintf(o->type, sizeof o->type, "%s",
                 e->elements > 4 && e->element[4]->type == REDIS_REPLY_STRING
                     ? e->element[4]->str : "");
    }
    for (int i = 0; i < n; i++)
        free((char *)argv[3 + i]);
    free(argv);
    if (r)
        freeReplyObject(r);
    return rc;
}

int
queue_enqueue(struct store *st, const char *prefix, int default_attempts,
              int64_t default_backoff, const struct job_spec *specs, int n,
              struct enq_result *res, char *err, size_t errlen)
{
    int *idx = xcalloc((size_t)n, sizeof(int));
    char *done = xcalloc((size_t)n, 1);
    int rc = Q_OK;

    /* Group the jobs by queue: each group is one atomic script call. */
    for (int i = 0; i < n && rc == Q_OK; i++) {
        int m = 0;
        if (done[i])
            continue;
        for (int j = i; j < n; j++)
            if (!done[j] && strcmp(specs[j].queue, specs[i].queue) == 0) {
                idx[m++] = j;
                done[j] = 1;
            }
        rc = register_queue(st, prefix, specs[i].queue, err, errlen);
        if (rc == Q_OK)
            rc = enqueue_group(st, prefix, default_attempts, default_backoff, specs, idx, m,
                               res, err, errlen);
    }
    free(idx);
    free(done);
    return rc;
}

int
queue_locate(struct store *st, const char *prefix, const char *id, char qname[129])
{
    char **names;
    int n = queue_names(st, prefix, &names), rc = Q_NOTFOUND;

    if (n < 0)
        return n;
    if (!is_uuid(id)) {
        queue_names_free(names, n);
        return Q_NOTFOUND;
    }
    /* One pipeline of EXISTS, one per known queue. */
    for (int i = 0; i < n; i++)
        redisAppendCommand(st->ctx, "EXISTS %s:{%s}:job:%s", prefix, names[i], id);
    for (int i = 0; i < n; i++) {
        redisReply *r = store_get_reply(st);
        if (!r) {
            rc = Q_UNAVAILABLE;
            break;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1 && rc == Q_NOTFOUND) {
            snprintf(qname, 129, "%s", names[i]);
            rc = Q_OK;
        }
        freeReplyObject(r);
    }
    queue_names_free(names, n);
    return rc;
}

/* attach_deliveries adds webhookDeliveries to a job that has webhooks:
 * the records its `whIds` field lists (see webhook.h). */
static void
attach_deliveries(struct store *st, const char *prefix, const char *q, const redisReply *r,
                  json_t *job)
{
    json_t *list = NULL;

    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, "whIds") == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            list = webhook_deliveries(st, prefix, q, r->element[i + 1]->str);
    if (!list && json_object_get(job, "webhooks"))
        list = json_array();
    if (list)
        json_object_set_new(job, "webhookDeliveries", list);
}

int
queue_get(struct store *st, const char *prefix, const char *id, json_t **job)
{
    char q[129];
    int rc = queue_locate(st, prefix, id, q);
    redisReply *r;

    *job = NULL;
    if (rc != Q_OK)
        return rc;
    r = store_command(st, "HGETALL %s:{%s}:job:%s", prefix, q, id);
    rc = reply_status(st, r, NULL, 0);
    if (rc == Q_OK) {
        *job = job_from_reply(r, 0);
        if (!*job)
            rc = Q_NOTFOUND;
        else
            attach_deliveries(st, prefix, q, r, *job);
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

/* state_change runs cancel or retry: {'ok', fields} | {'conflict', state}
 * | {'notfound'}. */
static int
state_change(struct store *st, enum script_id sid, const char *prefix, const char *id,
             char state[16], json_t **job)
{
    char q[129], now_s[24];
    const char *args[3];
    int rc = queue_locate(st, prefix, id, q);
    redisReply *r;

    if (job)
        *job = NULL;
    state[0] = '\0';
    if (rc != Q_OK)
        return rc;
    i64(now_s, now_ms());
    args[0] = now_s;
    args[1] = EVENTS_CAP;
    args[2] = id;
    r = eval1(st, sid, prefix, q, 3, args);
    rc = reply_status(st, r, NULL, 0);
    if (rc == Q_OK) {
        const char *tag = r->element[0]->str;
        if (strcmp(tag, "notfound") == 0) {
            rc = Q_NOTFOUND;
        } else if (strcmp(tag, "conflict") == 0) {
            snprintf(state, 16, "%s", r->element[1]->str);
            rc = Q_CONFLICT;
        } else {
            snprintf(state, 16, "%s", tag);
            if (job)
                *job = job_from_reply(r->element[1], 0);
        }
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

int
queue_cancel(struct store *st, const char *prefix, const char *id, char state[16],
             json_t **job)
{
    return state_change(st, S_CANCEL, prefix, id, state, job);
}

int
queue_retry(struct store *st, const char *prefix, const char *id, char state[16],
            json_t **job)
{
    return state_change(st, S_RETRY, prefix, id, state, job);
}

/* reply_field copies the value of field name from a flat [field, value,
 * ...] reply (the last one wins, as in job_from_reply); NULL if absent. */
static char *
reply_field(const redisReply *r, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            v = r->element[i + 1]->str;
    return v ? xstrdup(v) : NULL;
}

int
queue_lease(struct store *st, const char *prefix, const char *q, int max, int64_t lease_ms,
            struct leased *out, char *err, size_t errlen)
{
    char now_s[24], lease_s[24], max_s[24], token[33];
    const char *args[5];
    redisReply *r;
    int rc, n = 0;

    if (random_hex(token, 16) < 0) {
        snprintf(err, errlen, "no randomness for lease tokens");
        return Q_REDIS;
    }
    i64(now_s, now_ms());
    i64(lease_s, lease_ms);
    i64(max_s, max);
    args[0] = now_s;
    args[1] = lease_s;
    args[2] = max_s;
    args[3] = token;
    args[4] = EVENTS_CAP;
    r = eval1(st, S_LEASE, prefix, q, 5, args);
    rc = reply_status(st, r, err, errlen);
    if (rc == Q_OK && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements && n < max; i++) {
            struct leased *l = &out[n];
            json_t *tok, *exp;
            memset(l, 0, sizeof *l);
            l->job = job_from_reply(r->element[i], 1);
            if (!l->job)
                continue;
            tok = json_object_get(l->job, "leaseToken");
            exp = json_object_get(l->job, "leaseExpiresAt");
            snprintf(l->id, sizeof l->id, "%s",
                     json_string_value(json_object_get(l->job, "id")) ?: "");
            snprintf(l->queue, sizeof l->queue, "%s", q);
            snprintf(l->token, sizeof l->token, "%s", json_string_value(tok) ?: "");
            l->expires_at = json_integer_value(exp);
            json_object_del(l->job, "leaseToken");
            /* The worker hands these to Lua as text: keep it as stored
             * rather than encode the parsed values again. */
            l->payload = reply_field(r->element[i], "payload");
            l->metadata = reply_field(r->element[i], "metadata");
            n++;
        }
        rc = n;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

void
leased_free(struct leased *l)
{
    json_decref(l->job);
    l->job = NULL;
    free(l->payload);
    free(l->metadata);
    l->payload = l->metadata = NULL;
}

int
queue_wait(struct store *st, const char *prefix, const char *q, int timeout_ms)
{
    char secs[32];
    redisReply *r;
    int rc;

    /* BLPOP takes fractional seconds since Redis 6. */
    snprintf(secs, sizeof secs, "%.3f", timeout_ms / 1000.0);
    r = store_command(st, "BLPOP %s:{%s}:notify %s", prefix, q, secs);
    rc = reply_status(st, r, NULL, 0);
    if (rc == Q_OK)
        rc = r->type == REDIS_REPLY_ARRAY ? 1 : 0;
    if (r)
        freeReplyObject(r);
    return rc;
}

int
queue_extend_many(struct store *st, const char *prefix, const char *q, int n,
                  const char *const *ids, const char *const *tokens, int64_t lease_ms,
                  int64_t *expires_at)
{
    const char **argv = xcalloc((size_t)(3 + 2 * n), sizeof(char *));
    char base[160], now_s[24], lease_s[24];
    redisReply *r;
    int rc;

    qbase(base, sizeof base, prefix, q);
    i64(now_s, now_ms());
    i64(lease_s, lease_ms);
    argv[0] = base;
    argv[1] = now_s;
    argv[2] = lease_s;
    for (int k = 0; k < n; k++) {
        argv[3 + 2 * k] = ids[k];
        argv[4 + 2 * k] = tokens[k];
    }
    r = store_eval(st, S_EXTEND, 1, 3 + 2 * n, argv, NULL);
    free(argv);
    rc = reply_status(st, r, NULL, 0);
    for (int k = 0; k < n; k++)
        expires_at[k] = rc == Q_OK && r->type == REDIS_REPLY_ARRAY && (size_t)k < r->elements
                            ? r->element[k]->integer : 0;
    if (r)
        freeReplyObject(r);
    return rc;
}

int
queue_extend(struct store *st, const char *prefix, const char *q, const char *id,
             const char *token, int64_t lease_ms, int64_t *expires_at)
{
    int64_t d;
    int rc = queue_extend_many(st, prefix, q, 1, &id, &token, lease_ms, &d);

    if (rc == Q_OK && d == 0)
        rc = Q_BADTOKEN;
    else if (rc == Q_OK && expires_at)
        *expires_at = d;
    return rc;
}

/* COMPLETE_BATCH bounds the jobs acknowledged by one complete.lua call
 * (its argument list and the time Redis spends in one script). */
#define COMPLETE_BATCH 256

/* append_fail queues the fail script call of one outcome. */
static int
append_fail(struct store *st, const char *prefix, const char *now_s, struct outcome *o)
{
    char base[160], max_s[24] = "", backoff_s[24] = "";
    const char *argv[12];

    qbase(base, sizeof base, prefix, o->queue);
    if (o->max_attempts > 0)
        i64(max_s, o->max_attempts);
    if (o->backoff >= 0)
        i64(backoff_s, o->backoff);
    argv[0] = base;
    argv[1] = now_s;
    argv[2] = EVENTS_CAP;
    argv[3] = o->id;
    argv[4] = o->token;
    argv[5] = o->error ? o->error : "failed";
    argv[6] = o->stack ? o->stack : "";
    argv[7] = o->logs ? o->logs : "";
    argv[8] = o->permanent ? "1" : "0";
    argv[9] = max_s;
    argv[10] = backoff_s;
    argv[11] = o->strategy ? o->strategy : "";
    return store_append_eval(st, S_FAIL, 1, 12, argv, NULL);
}

/* append_complete queues one complete.lua call for the outcomes idx[0..n),
 * all completed and of one queue. */
static int
append_complete(struct store *st, const char *prefix, const char *now_s,
                struct outcome *o, const int *idx, int n)
{
    const char **argv = xcalloc((size_t)(3 + 4 * n), sizeof(char *));
    char base[160];
    int rc;

    qbase(base, sizeof base, prefix, o[idx[0]].queue);
    argv[0] = base;
    argv[1] = now_s;
    argv[2] = EVENTS_CAP;
    for (int k = 0; k < n; k++) {
        struct outcome *x = &o[idx[k]];
        argv[3 + 4 * k] = x->id;
        argv[4 + 4 * k] = x->token;
        argv[5 + 4 * k] = x->result ? x->result : "null";
        argv[6 + 4 * k] = x->logs ? x->logs : "";
    }
    rc = store_append_eval(st, S_COMPLETE, 1, 3 + 4 * n, argv, NULL);
    free(argv);
    return rc;
}

/* take_reply applies one script reply ({'completed'|'delayed'|'failed'},
 * {'badtoken', state} or {'notfound'}) to outcome o. */
static void
take_reply(struct outcome *o, const redisReply *r)
{
    const char *tag;

    o->state[0] = '\0';
    if (r->type == REDIS_REPLY_ERROR) {
        log_warn("redis: finishing job %s: %s", o->id, r->str);
        o->status = Q_REDIS;
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        o->status = Q_REDIS;
        return;
    }
    tag = r->element[0]->str;
    if (strcmp(tag, "notfound") == 0) {
        o->status = Q_NOTFOUND;
    } else if (strcmp(tag, "badtoken") == 0) {
        o->status = Q_BADTOKEN;
    } else {
        o->status = Q_OK;
        snprintf(o->state, sizeof o->state, "%s", tag);
    }
}

int
queue_finish(struct store *st, const char *prefix, int64_t keep_completed,
             int64_t keep_failed, struct outcome *o, int n)
{
    /* calls[c] lists the outcomes answered by the c-th pipelined call:
     * a batch of completions of one queue, or a single failure. */
    int *order = xcalloc((size_t)n, sizeof(int)), *start = xcalloc((size_t)n + 1, sizeof(int));
    char *placed = xcalloc((size_t)n, 1), now_s[24];
    int ncalls = 0, m = 0, rc = Q_OK, c;

    /* Retention is trimmed by the scheduler (queue_trim), not per ack. */
    (void)keep_completed;
    (void)keep_failed;
    if (store_ready(st) < 0) {
        rc = Q_UNAVAILABLE;
        goto out;
    }
    i64(now_s, now_ms());
    for (int i = 0; i < n; i++) {
        if (placed[i])
            continue;
        start[ncalls] = m;
        order[m++] = i;
        placed[i] = 1;
        if (o[i].ok) {
            for (int j = i + 1; j < n && m - start[ncalls] < COMPLETE_BATCH; j++)
                if (!placed[j] && o[j].ok && strcmp(o[j].queue, o[i].queue) == 0) {
                    order[m++] = j;
                    placed[j] = 1;
                }
            if (append_complete(st, prefix, now_s, o, order + start[ncalls],
                                m - start[ncalls]) < 0)
                rc = Q_UNAVAILABLE;
        } else if (append_fail(st, prefix, now_s, &o[i]) < 0) {
            rc = Q_UNAVAILABLE;
        }
        ncalls++;
        if (rc != Q_OK)
            break;
    }
    start[ncalls] = m;
    for (int i = 0; i < n; i++)
        o[i].status = Q_UNAVAILABLE;
    for (c = 0; rc == Q_OK && c < ncalls; c++) {
        redisReply *r = store_get_reply(st);
        int first = start[c], cnt = start[c + 1] - start[c];
        if (!r) {
            rc = Q_UNAVAILABLE;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            /* A flushed script cache shows up here as NOSCRIPT: the
             * reconnect below reloads the scripts for the caller's retry. */
            for (int k = 0; k < cnt; k++)
                take_reply(&o[order[first + k]], r);
            if (strncmp(r->str, "NOSCRIPT", 8) == 0)
                rc = Q_UNAVAILABLE;
        } else if (o[order[first]].ok) {
            for (int k = 0; k < cnt; k++)
                if (r->type == REDIS_REPLY_ARRAY && (size_t)k < r->elements)
                    take_reply(&o[order[first + k]], r->element[k]);
                else
                    o[order[first + k]].status = Q_REDIS;
        } else {
            take_reply(&o[order[first]], r);
        }
        freeReplyObject(r);
    }
    if (rc == Q_UNAVAILABLE && st->ctx) {
        /* Force a reconnect, which reloads every script. */
        redisFree(st->ctx);
        st->ctx = NULL;
        st->next_try = 0;
    }
out:
    free(order);
    free(start);
    free(placed);
    return rc;
}

/* token_op runs a script answering {'ok'|'waiting'} | {'badtoken'} |
 * {'notfound'} with args now, cap, id, token, extra. */
static int
token_op(struct store *st, enum script_id sid, const char *prefix, const char *q,
         const char *id, const char *token, const char *extra)
{
    char now_s[24];
    const char *args[5] = { now_s, EVENTS_CAP, id, token ? token : "", extra };
    redisReply *r;
    int rc;

    i64(now_s, now_ms());
    r = eval1(st, sid, prefix, q, extra ? 5 : 4, args);
    rc = reply_status(st, r, NULL, 0);
    if (rc == Q_OK && r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
        const char *tag = r->element[0]->str;
        if (strcmp(tag, "notfound") == 0)
            rc = Q_NOTFOUND;
        else if (strcmp(tag, "badtoken") == 0)
            rc = Q_BADTOKEN;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

int
queue_release(struct store *st, const char *prefix, const char *q, const char *id,
              const char *token)
{
    return token_op(st, S_RELEASE, prefix, q, id, token, NULL);
}

int
queue_progress(struct store *st, const char *prefix, const char *q, const char *id,
               const char *token, int progress)
{
    char p[16];
    snprintf(p, sizeof p, "%d", progress);
    return token_op(st, S_PROGRESS, prefix, q, id, token, p);
}

/* count_op runs a scheduler script answering an integer. */
static int
count_op(struct store *st, enum script_id sid, const char *prefix, const char *q,
         int argc, const char **args)
{
    redisReply *r = eval1(st, sid, prefix, q, argc, args);
    int rc = reply_status(st, r, NULL, 0);
    if (rc == Q_OK)
        rc = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : 0;
    if (r)
        freeReplyObject(r);
    return rc;
}

int
queue_promote(struct store *st, const char *prefix, const char *q, int limit)
{
    char now_s[24], lim[24];
    const char *args[3] = { now_s, lim, EVENTS_CAP };
    i64(now_s, now_ms());
    i64(lim, limit);
    return count_op(st, S_PROMOTE, prefix, q, 3, args);
}

int
queue_reclaim(struct store *st, const char *prefix, const char *q, int limit)
{
    char now_s[24], lim[24];
    const char *args[3] = { now_s, lim, EVENTS_CAP };
    i64(now_s, now_ms());
    i64(lim, limit);
    return count_op(st, S_RECLAIM, prefix, q, 3, args);
}

int
queue_trim(struct store *st, const char *prefix, const char *q, const struct config *c,
           int limit)
{
    char now_s[24], lim[24], cc[24], ca[24], fc[24], fa[24];
    const char *args[6] = { now_s, lim, cc, ca, fc, fa };
    i64(now_s, now_ms());
    i64(lim, limit);
    i64(cc, c->keep_completed.count);
    i64(ca, c->keep_completed.age);
    i64(fc, c->keep_failed.count);
    i64(fa, c->keep_failed.age);
    return count_op(st, S_TRIM, prefix, q, 6, args);
}

int
queue_pause(struct store *st, const char *prefix, const char *q, int paused)
{
    const char *args[1] = { paused ? "1" : "0" };
    int rc;
    char err[8];
    if ((rc = register_queue(st, prefix, q, err, sizeof err)) != Q_OK)
        return rc;
    rc = count_op(st, S_PAUSE, prefix, q, 1, args);
    return rc < 0 ? rc : Q_OK;
}

int
queue_remove(struct store *st, const char *prefix, const char *q, const char *type,
             const char *status)
{
    const char *args[2] = { type ? type : "", status ? status : "" };
    return count_op(st, S_REMOVE, prefix, q, 2, args);
}

int
queue_counts(struct store *st, const char *prefix, const char *q, json_t **counts)
{
    redisReply *r = eval1(st, S_COUNTS, prefix, q, 0, NULL);
    int rc = reply_status(st, r, NULL, 0);

    *counts = NULL;
    if (rc == Q_OK && r->type == REDIS_REPLY_ARRAY && r->elements == 7) {
        *counts = json_object();
        for (int i = 0; i < 6; i++)
            json_object_set_new(*counts, queue_states[i], json_integer(r->element[i]->integer));
        json_object_set_new(*counts, "paused", json_boolean(r->element[6]->integer));
    } else if (rc == Q_OK) {
        rc = Q_REDIS;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

/* meta_match tells whether job's metadata holds every K: V of filter
 * (values compared as text, since query strings carry text). */
static int
meta_match(json_t *job, json_t *filter)
{
    return job_meta_matches(json_object_get(job, "metadata"), filter);
}

/* jobs_after tells whether state si holds more than offset jobs, or a
 * later state before s_end holds any.  On a Redis error it says yes: a
 * spare empty page is better than a lost one. */
static int
jobs_after(struct store *st, const char *prefix, const char *q, int si, int s_end,
           long offset)
{
    for (int k = si; k < s_end; k++) {
        redisReply *r = store_command(st, "ZCARD %s:{%s}:%s", prefix, q, state_keys[k]);
        long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        if (r)
            freeReplyObject(r);
        if (n < 0 || n > (k == si ? offset : 0))
            return 1;
    }
    return 0;
}

/* Cursor format: "<state index>:<offset>".  Offsets index the state's
 * sorted set, oldest (or best) first.  A page can shift when jobs move
 * between states while paging; a static set pages without loss or repeats. */
int
queue_list(struct store *st, const char *prefix, const char *q, const char *status,
           const char *type, json_t *meta_filter, int limit, const char *cursor,
           json_t **jobs, char **next)
{
    int si = 0, s_end = 6, rc = Q_OK;
    long offset = 0;

    *jobs = json_array();
    *next = NULL;
    if (status) {
        for (si = 0; si < 6 && strcmp(queue_states[si], status) != 0; si++)
            ;
        if (si == 6)
            return Q_NOTFOUND;
        s_end = si + 1;
    }
    if (cursor && *cursor) {
        int csi;
        if (sscanf(cursor, "%d:%ld", &csi, &offset) != 2 || csi < si || csi >= s_end ||
            offset < 0)
            return Q_CONFLICT;
        si = csi;
    }
    /* Scan in batches so filters that skip most jobs still fill a page. */
    while (si < s_end && (int)json_array_size(*jobs) < limit) {
        long batch = limit * 2 > 100 ? limit * 2 : 100;
        redisReply *ids = store_command(st, "ZRANGE %s:{%s}:%s %ld %ld", prefix, q,
                                        state_keys[si], offset, offset + batch - 1);
        if ((rc = reply_status(st, ids, NULL, 0)) != Q_OK) {
            if (ids)
                freeReplyObject(ids);
            break;
        }
        for (size_t i = 0; i < ids->elements; i++)
            redisAppendCommand(st->ctx, "HGETALL %s:{%s}:job:%s", prefix, q, ids->element[i]->str);
        size_t i;
        for (i = 0; i < ids->elements; i++) {
            redisReply *h = store_get_reply(st);
            json_t *job;
            if (!h) {
                rc = Q_UNAVAILABLE;
                break;
            }
            offset++;
            job = job_from_reply(h, 0);
            freeReplyObject(h);
            if (!job)
                continue;
            if ((!type || strcmp(json_string_value(json_object_get(job, "type")) ?: "", type) == 0) &&
                meta_match(job, meta_filter) && (int)json_array_size(*jobs) < limit)
                json_array_append_new(*jobs, job);
            else
                json_decref(job);
            if ((int)json_array_size(*jobs) >= limit) {
                /* Drain the rest of the pipeline; they are not consumed. */
                for (size_t k = i + 1; k < ids->elements; k++) {
                    redisReply *x = store_get_reply(st);
                    if (x)
                        freeReplyObject(x);
                }
                i = ids->elements;
                break;
            }
        }
        int exhausted = (long)ids->elements < batch;
        freeReplyObject(ids);
        if (rc != Q_OK)
            break;
        if ((int)json_array_size(*jobs) >= limit) {
            /* A next page only if some job is left to look at, so a client
             * paging until next is null does not fetch an empty last page
             * (filters may still leave the next page empty). */
            if (jobs_after(st, prefix, q, si, s_end, offset)) {
                char buf[48];
                snprintf(buf, sizeof buf, "%d:%ld", si, offset);
                *next = xstrdup(buf);
            }
            break;
        }
        if (exhausted) {
            si++;
            offset = 0;
        }
    }
    if (rc != Q_OK) {
        json_decref(*jobs);
        *jobs = NULL;
        free(*next);
        *next = NULL;
    }
    return rc;
}
