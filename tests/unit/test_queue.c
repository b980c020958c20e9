/* test_queue.c — every lifecycle script against a real redis-server. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "queue.h"
#include "util.h"
#include "ut.h"
#include "redis_fixture.h"

static const char *url;
static const char *P = "jqt";

/* enq enqueues one job from a JSON body; returns its id (static buffer
 * rotation) or "" on failure. */
static const char *
enq(struct store *st, const char *body)
{
    static char ids[8][37];
    static int k;
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    struct job_spec spec;
    struct enq_result res;
    char err[256];
    char *out = ids[k++ % 8];

    out[0] = '\0';
    if (!j || job_spec_from_json(j, now_ms(), &spec, err, sizeof err) < 0) {
        printf("bad test body %s: %s\n", body, j ? err : je.text);
        json_decref(j);
        return out;
    }
    if (queue_enqueue(st, P, 3, 100, &spec, 1, &res, err, sizeof err) == Q_OK)
        memcpy(out, res.id, 37);
    job_spec_free(&spec);
    json_decref(j);
    return out;
}

static const char *
status_of(struct store *st, const char *id)
{
    static char buf[32];
    json_t *job;
    buf[0] = '\0';
    if (queue_get(st, P, id, &job) == Q_OK) {
        snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(job, "status")));
        json_decref(job);
    }
    return buf;
}

static json_int_t
field(struct store *st, const char *id, const char *k)
{
    json_t *job;
    json_int_t v = -1;
    if (queue_get(st, P, id, &job) == Q_OK) {
        v = json_integer_value(json_object_get(job, k));
        json_decref(job);
    }
    return v;
}

static void
flush(struct store *st)
{
    redisReply *r = store_command(st, "FLUSHALL");
    freeReplyObject(r);
    store_forget_queues(st); /* P:queues is gone with the rest */
}

/* lease1 leases one job of q; returns its id or "" with l filled. */
static int
lease1(struct store *st, const char *q, int64_t lease, struct leased *l)
{
    char err[256];
    return queue_lease(st, P, q, 1, lease, l, err, sizeof err);
}

static int
finish1(struct store *st, struct leased *l, int ok, const char *err, int permanent)
{
    struct outcome o = { .queue = l->queue, .id = l->id, .token = l->token, .ok = ok,
                         .result = ok ? "{\"r\":1}" : NULL, .error = err,
                         .permanent = permanent, .backoff = -1 };
    queue_finish(st, P, 100, 100, &o, 1);
    return o.status;
}

static void
test_priority_fifo(struct store *st)
{
    const char *a = enq(st, "{\"type\":\"t\",\"payload\":{\"n\":1}}");
    const char *b = enq(st, "{\"type\":\"t\",\"payload\":{\"n\":2},\"priority\":5}");
    const char *c = enq(st, "{\"type\":\"t\",\"payload\":{\"n\":3}}");
    const char *d = enq(st, "{\"type\":\"t\",\"payload\":{\"n\":4},\"priority\":-3}");
    const char *e = enq(st, "{\"type\":\"t\",\"payload\":{\"n\":5},\"priority\":5}");
    const char *want[5] = { b, e, a, c, d };
    struct leased l;

    for (int i = 0; i < 5; i++) {
        CHECK(lease1(st, "default", 30000, &l) == 1, "lease %d", i);
        CHECK_STR(l.id, want[i]);
        CHECK(json_integer_value(json_object_get(l.job, "attempts")) == 1, "attempt counted");
        leased_free(&l);
    }
    CHECK(lease1(st, "default", 30000, &l) == 0, "queue empty");
}

static void
test_get_and_complete(struct store *st)
{
    const char *id = enq(st, "{\"type\":\"mail\",\"payload\":{\"to\":\"x\"},\"metadata\":{\"k\":\"v\"}}");
    struct leased l;
    json_t *job;

    CHECK_STR(status_of(st, id), "waiting");
    CHECK(lease1(st, "default", 30000, &l) == 1, "leased");
    CHECK_STR(status_of(st, id), "processing");
    CHECK(finish1(st, &l, 1, NULL, 0) == Q_OK, "completed");
    CHECK_STR(status_of(st, id), "completed");
    CHECK(queue_get(st, P, id, &job) == Q_OK, "get");
    CHECK(json_integer_value(json_object_get(json_object_get(job, "result"), "r")) == 1,
          "result stored as JSON");
    CHECK_STR(json_string_value(json_object_get(json_object_get(job, "payload"), "to")), "x");
    CHECK_STR(json_string_value(json_object_get(json_object_get(job, "metadata"), "k")), "v");
    CHECK(json_object_get(job, "leaseToken") == NULL, "token hidden");
    CHECK(json_integer_value(json_object_get(job, "completedAt")) > 0, "completedAt");
    json_decref(job);
    /* A second ack with the same (now stale) token is refused. */
    CHECK(finish1(st, &l, 1, NULL, 0) == Q_BADTOKEN, "stale token refused");
    leased_free(&l);
}

/* One queue_finish of several outcomes: completions of one queue go in one
 * script call, each job still answered on its own. */
static void
test_batch_finish(struct store *st)
{
    struct leased l[4];
    struct outcome o[4];
    char err[256];
    int n;

    for (int i = 0; i < 4; i++)
        enq(st, "{\"type\":\"t\",\"payload\":{}}");
    n = queue_lease(st, P, "default", 4, 30000, l, err, sizeof err);
    CHECK(n == 4, "leased 4: %d", n);
    for (int i = 0; i < 4; i++)
        o[i] = (struct outcome){ .queue = l[i].queue, .id = l[i].id, .token = l[i].token,
                                 .ok = i != 2, .result = "[1]", .error = "no",
                                 .permanent = 1, .backoff = -1 };
    o[1].token = "stale";
    CHECK(queue_finish(st, P, 100, 100, o, 4) == Q_OK, "finish batch");
    CHECK(o[0].status == Q_OK && strcmp(o[0].state, "completed") == 0, "0 completed");
    CHECK(o[1].status == Q_BADTOKEN, "1 refused: %d", o[1].status);
    CHECK(o[2].status == Q_OK && strcmp(o[2].state, "failed") == 0, "2 failed");
    CHECK(o[3].status == Q_OK && strcmp(o[3].state, "completed") == 0, "3 completed");
    CHECK_STR(status_of(st, l[1].id), "processing");
    CHECK_STR(status_of(st, l[3].id), "completed");
    for (int i = 0; i < 4; i++)
        leased_free(&l[i]);
}

static void
test_delayed(struct store *st)
{
    const char *id = enq(st, "{\"type\":\"t\",\"payload\":{},\"delay\":300}");
    int n;
    CHECK_STR(status_of(st, id), "delayed");
    n = queue_promote(st, P, "default", 100);
    CHECK(n == 0, "not due yet: %d", n);
    sleep_ms(350);
    n = queue_promote(st, P, "default", 100);
    CHECK(n == 1, "promoted when due: %d", n);
    CHECK_STR(status_of(st, id), "waiting");
    id = enq(st, "{\"type\":\"t\",\"payload\":{},\"runAt\":\"2099-01-01T00:00:00Z\"}");
    CHECK_STR(status_of(st, id), "delayed");
    CHECK(field(st, id, "runAt") == 4070908800000LL, "runAt parsed from ISO");
}

static void
test_backoff(struct store *st)
{
    const char *id = enq(st, "{\"type\":\"t\",\"payload\":{},\"retry\":{\"maxAttempts\":3,\"backoff\":1000}}");
    struct leased l;
    int64_t t0;

    t0 = now_ms();
    lease1(st, "default", 30000, &l);
    CHECK(finish1(st, &l, 0, "boom", 0) == Q_OK, "fail 1");
    leased_free(&l);
    CHECK_STR(status_of(st, id), "delayed");
    int64_t d1 = field(st, id, "runAt") - t0;
    CHECK(d1 >= 1000 && d1 < 1500, "first retry after ~1000 ms, got %lld", (long long)d1);
    /* Force it due, then fail again: exponential doubles. */
    redisReply *r = store_command(st, "ZADD %s:{default}:delayed 0 %s", P, id);
    freeReplyObject(r);
    queue_promote(st, P, "default", 10);
    t0 = now_ms();
    lease1(st, "default", 30000, &l);
    finish1(st, &l, 0, "boom", 0);
    leased_free(&l);
    int64_t d2 = field(st, id, "runAt") - t0;
    CHECK(d2 >= 2000 && d2 < 2500, "second retry after ~2000 ms, got %lld", (long long)d2);
    r = store_command(st, "ZADD %s:{default}:delayed 0 %s", P, id);
    freeReplyObject(r);
    queue_promote(st, P, "default", 10);
    lease1(st, "default", 30000, &l);
    finish1(st, &l, 0, "boom 3", 0);
    leased_free(&l);
    CHECK_STR(status_of(st, id), "failed");

    id = enq(st, "{\"type\":\"t\",\"payload\":{},\"retry\":{\"maxAttempts\":5,\"backoff\":700,\"strategy\":\"fixed\"}}");
    for (int i = 0; i < 2; i++) {
        r = store_command(st, "ZADD %s:{default}:delayed 0 %s", P, id);
        freeReplyObject(r);
        queue_promote(st, P, "default", 10);
        t0 = now_ms();
        lease1(st, "default", 30000, &l);
        finish1(st, &l, 0, "x", 0);
        leased_free(&l);
        int64_t d = field(st, id, "runAt") - t0;
        CHECK(d >= 700 && d < 1200, "fixed backoff ~700 ms, got %lld", (long long)d);
    }
    /* Permanent failure: never retried. */
    id = enq(st, "{\"type\":\"t\",\"payload\":{}}");
    lease1(st, "default", 30000, &l);
    finish1(st, &l, 0, "bad input", 1);
    leased_free(&l);
    CHECK_STR(status_of(st, id), "failed");
    CHECK(backoff_delay("exponential", 1000, 4) == 8000, "backoff_delay exp");
    CHECK(backoff_delay("fixed", 1000, 4) == 1000, "backoff_delay fixed");
}

static void
test_reclaim(struct store *st)
{
    const char *id = enq(st, "{\"type\":\"t\",\"payload\":{},\"retry\":{\"maxAttempts\":2}}");
    struct leased l;
    int n;

    lease1(st, "default", 100, &l);
    leased_free(&l);
    CHECK(queue_reclaim(st, P, "default", 10) == 0, "lease not yet expired");
    sleep_ms(150);
    n = queue_reclaim(st, P, "default", 10);
    CHECK(n == 1, "expired lease reclaimed: %d", n);
    CHECK_STR(status_of(st, id), "waiting");
    CHECK(field(st, id, "attempts") == 1, "the lost attempt counted");
    lease1(st, "default", 100, &l);
    sleep_ms(150);
    queue_reclaim(st, P, "default", 10);
    CHECK_STR(status_of(st, id), "failed");
    /* The dead worker's late ack is refused. */
    CHECK(finish1(st, &l, 1, NULL, 0) == Q_BADTOKEN, "late ack refused");
    leased_free(&l);
    /* An extended lease survives. */
    id = enq(st, "{\"type\":\"t\",\"payload\":{}}");
    lease1(st, "default", 200, &l);
    sleep_ms(120);
    CHECK(queue_extend(st, P, "default", l.id, l.token, 200, NULL) == Q_OK, "extend");
    sleep_ms(120);
    CHECK(queue_reclaim(st, P, "default", 10) == 0, "extended lease kept");
    CHECK(queue_extend(st, P, "default", l.id, "wrong", 200, NULL) == Q_BADTOKEN, "bad token");
    CHECK(queue_release(st, P, "default", l.id, l.token) == Q_OK, "release");
    CHECK_STR(status_of(st, id), "waiting");
    CHECK(field(st, id, "attempts") == 0, "release does not count the attempt");
    leased_free(&l);
}

static void
test_cancel_retry(struct store *st)
{
    const char *id = enq(st, "{\"type\":\"t\",\"payload\":{}}");
    char state[16];
    struct leased l;
    json_t *job;

    CHECK(queue_cancel(st, P, id, state, &job) == Q_OK, "cancel waiting");
    CHECK_STR(json_string_value(json_object_get(job, "status")), "canceled");
    json_decref(job);
    CHECK(queue_cancel(st, P, id, state, NULL) == Q_CONFLICT, "cancel twice");
    CHECK_STR(state, "canceled");
    CHECK(queue_retry(st, P, id, state, NULL) == Q_OK, "retry canceled");
    CHECK_STR(status_of(st, id), "waiting");
    lease1(st, "default", 30000, &l);
    CHECK(queue_cancel(st, P, id, state, NULL) == Q_CONFLICT, "cancel processing");
    CHECK_STR(state, "processing");
    CHECK(queue_retry(st, P, id, state, NULL) == Q_CONFLICT, "retry processing");
    leased_free(&l);
    CHECK(queue_cancel(st, P, "00000000-0000-4000-8000-000000000000", state, NULL) == Q_NOTFOUND,
          "unknown id");
    CHECK(queue_cancel(st, P, "not-a-uuid", state, NULL) == Q_NOTFOUND, "malformed id");
    id = enq(st, "{\"type\":\"t\",\"payload\":{},\"delay\":60000}");
    CHECK(queue_cancel(st, P, id, state, NULL) == Q_OK, "cancel delayed");
}

static void
test_idempotency(struct store *st)
{
    const char *a = enq(st, "{\"type\":\"t\",\"payload\":{},\"idempotencyKey\":\"k1\"}");
    const char *b = enq(st, "{\"type\":\"t\",\"payload\":{\"other\":1},\"idempotencyKey\":\"k1\"}");
    const char *c = enq(st, "{\"type\":\"t\",\"payload\":{},\"idempotencyKey\":\"k2\"}");
    CHECK(a[0] && strcmp(a, b) == 0, "same key, same job: %s %s", a, b);
    CHECK(strcmp(a, c) != 0, "other key, other job");
}

static void
test_bulk(struct store *st)
{
    struct job_spec specs[1000];
    struct enq_result res[1000];
    json_t *counts;
    char err[256];
    int ok = 1;

    for (int i = 0; i < 1000; i++) {
        json_t *j = json_pack("{ss s{si}}", "type", "bulk", "payload", "i", i);
        ok &= job_spec_from_json(j, now_ms(), &specs[i], err, sizeof err) == 0;
        json_decref(j);
    }
    CHECK(ok, "specs valid");
    CHECK(queue_enqueue(st, P, 3, 100, specs, 1000, res, err, sizeof err) == Q_OK, "bulk");
    queue_counts(st, P, "default", &counts);
    CHECK(json_integer_value(json_object_get(counts, "waiting")) == 1000, "1000 waiting");
    json_decref(counts);
    for (int i = 0; i < 1000; i++)
        job_spec_free(&specs[i]);
    /* All or nothing: Redis refusing the script (here: OOM) stores none. */
    redisReply *r = store_command(st, "CONFIG SET maxmemory 1");
    freeReplyObject(r);
    for (int i = 0; i < 10; i++) {
        json_t *j = json_pack("{ss s{}}", "type", "bulk", "payload");
        job_spec_from_json(j, now_ms(), &specs[i], err, sizeof err);
        json_decref(j);
    }
    int rc = queue_enqueue(st, P, 3, 100, specs, 10, res, err, sizeof err);
    CHECK(rc == Q_REDIS, "OOM refused: %d", rc);
    CHECK_CONTAINS(err, "OOM");
    r = store_command(st, "CONFIG SET maxmemory 0");
    freeReplyObject(r);
    queue_counts(st, P, "default", &counts);
    CHECK(json_integer_value(json_object_get(counts, "waiting")) == 1000, "none of the 10 stored");
    json_decref(counts);
    for (int i = 0; i < 10; i++)
        job_spec_free(&specs[i]);
}

static void
test_pause_remove_list(struct store *st)
{
    struct leased l;
    json_t *jobs, *counts;
    char *next = NULL;

    for (int i = 0; i < 5; i++)
        enq(st, "{\"type\":\"a\",\"payload\":{},\"queue\":\"pq\"}");
    for (int i = 0; i < 3; i++)
        enq(st, "{\"type\":\"b\",\"payload\":{},\"queue\":\"pq\",\"metadata\":{\"c\":\"x\"}}");
    enq(st, "{\"type\":\"a\",\"payload\":{},\"queue\":\"pq\",\"delay\":60000}");
    CHECK(queue_pause(st, P, "pq", 1) == Q_OK, "pause");
    CHECK(lease1(st, "pq", 1000, &l) == 0, "paused queue leases nothing");
    queue_counts(st, P, "pq", &counts);
    CHECK(json_is_true(json_object_get(counts, "paused")), "paused flag");
    json_decref(counts);
    CHECK(queue_pause(st, P, "pq", 0) == Q_OK, "resume");
    CHECK(queue_wait(st, P, "pq", 100) == 1, "resume wakes a fetcher");
    /* Paging: 3 pages of 3 over 9 jobs, no repeats. */
    const char *cursor = NULL;
    char *owned = NULL;
    int total = 0, pages = 0;
    json_t *seen = json_object();
    do {
        CHECK(queue_list(st, P, "pq", NULL, NULL, NULL, 4, cursor, &jobs, &next) == Q_OK, "list");
        size_t i;
        json_t *j;
        json_array_foreach(jobs, i, j) {
            const char *id = json_string_value(json_object_get(j, "id"));
            CHECK(!json_object_get(seen, id), "no repeat");
            json_object_set_new(seen, id, json_true());
            total++;
        }
        json_decref(jobs);
        free(owned);
        owned = next;
        cursor = next;
        pages++;
    } while (next && pages < 10);
    CHECK(total == 9, "all 9 listed once, got %d", total);
    CHECK(pages == 3, "9 jobs by 4: 3 pages, got %d", pages);
    json_decref(seen);
    /* 9 jobs by 3: the third page is the last, with no cursor after it. */
    pages = 0;
    cursor = NULL;
    owned = NULL;
    do {
        queue_list(st, P, "pq", NULL, NULL, NULL, 3, cursor, &jobs, &next);
        CHECK(json_array_size(jobs) == 3, "full page %d: %zu", pages, json_array_size(jobs));
        json_decref(jobs);
        free(owned);
        owned = next;
        cursor = next;
        pages++;
    } while (next && pages < 10);
    free(owned);
    CHECK(pages == 3, "exact fit: 3 pages and no empty fourth, got %d", pages);
    json_t *filter = json_pack("{ss}", "c", "x");
    queue_list(st, P, "pq", "waiting", NULL, filter, 100, NULL, &jobs, &next);
    CHECK(json_array_size(jobs) == 3, "metadata filter: %zu", json_array_size(jobs));
    json_decref(jobs);
    json_decref(filter);
    queue_list(st, P, "pq", "waiting", "a", NULL, 100, NULL, &jobs, &next);
    CHECK(json_array_size(jobs) == 5, "type filter");
    json_decref(jobs);
    CHECK(queue_remove(st, P, "pq", "a", NULL) == 6, "remove type a waiting+delayed");
    queue_counts(st, P, "pq", &counts);
    CHECK(json_integer_value(json_object_get(counts, "waiting")) == 3, "b left");
    CHECK(json_integer_value(json_object_get(counts, "delayed")) == 0, "delayed removed");
    json_decref(counts);
}

static void
test_retention(struct store *st)
{
    struct config c;
    struct leased l;
    json_t *counts;

    config_defaults(&c);
    c.keep_completed.count = 3;
    c.keep_completed.age = 86400000;
    for (int i = 0; i < 5; i++) {
        enq(st, "{\"type\":\"t\",\"payload\":{},\"queue\":\"rq\"}");
        lease1(st, "rq", 1000, &l);
        finish1(st, &l, 1, NULL, 0);
        leased_free(&l);
    }
    CHECK(queue_trim(st, P, "rq", &c, 100) == 2, "trim by count");
    queue_counts(st, P, "rq", &counts);
    CHECK(json_integer_value(json_object_get(counts, "completed")) == 3, "3 kept");
    json_decref(counts);
    c.keep_completed.age = 0;
    sleep_ms(5);
    CHECK(queue_trim(st, P, "rq", &c, 100) == 3, "trim by age");
    redisReply *r = store_command(st, "KEYS %s:{rq}:job:*", P);
    CHECK(r && r->elements == 0, "job hashes deleted");
    freeReplyObject(r);
    /* A trimmed job frees its idempotency key. */
    const char *a = enq(st, "{\"type\":\"t\",\"payload\":{},\"queue\":\"rq\",\"idempotencyKey\":\"once\"}");
    char first[37];
    snprintf(first, sizeof first, "%s", a);
    lease1(st, "rq", 1000, &l);
    finish1(st, &l, 1, NULL, 0);
    leased_free(&l);
    sleep_ms(5);
    CHECK(queue_trim(st, P, "rq", &c, 100) == 1, "trim the keyed job");
    r = store_command(st, "HLEN %s:{rq}:idem", P);
    CHECK(r && r->integer == 0, "idempotency key released");
    freeReplyObject(r);
    a = enq(st, "{\"type\":\"t\",\"payload\":{},\"queue\":\"rq\",\"idempotencyKey\":\"once\"}");
    CHECK(a[0] && strcmp(a, first) != 0, "the key makes a new job after trimming");
    config_free(&c);
}

struct lease_arg {
    int got;
    char (*ids)[37];
    pthread_mutex_t *mu;
};

static void *
leaser(void *arg)
{
    struct lease_arg *a = arg;
    char err[256];
    struct store *st = store_open(url, err, sizeof err);
    struct leased l[50];
    int n;
    while ((n = queue_lease(st, P, "cq", 50, 30000, l, err, sizeof err)) > 0) {
        pthread_mutex_lock(a->mu);
        for (int i = 0; i < n; i++)
            memcpy(a->ids[a->got++], l[i].id, 37);
        pthread_mutex_unlock(a->mu);
        for (int i = 0; i < n; i++)
            leased_free(&l[i]);
    }
    store_close(st);
    return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_concurrent_lease(struct store *st)
{
    enum { N = 10000, T = 4 };
    static struct job_spec specs[N];
    static struct enq_result res[N];
    static char ids[N + 100][37];
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct lease_arg a = { 0, ids, &mu };
    pthread_t th[T];
    char err[256];
    int dup = 0;

    for (int i = 0; i < N; i++) {
        json_t *j = json_pack("{ss ss s{si}}", "type", "c", "queue", "cq", "payload", "i", i);
        job_spec_from_json(j, now_ms(), &specs[i], err, sizeof err);
        json_decref(j);
    }
    for (int i = 0; i < N; i += 1000)
        queue_enqueue(st, P, 3, 100, specs + i, 1000, res + i, err, sizeof err);
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, leaser, &a);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    CHECK(a.got == N, "every job leased: %d", a.got);
    qsort(ids, (size_t)a.got, 37, cmp_id);
    for (int i = 1; i < a.got; i++)
        dup += strcmp(ids[i - 1], ids[i]) == 0;
    CHECK(dup == 0, "no job leased twice: %d duplicates", dup);
    for (int i = 0; i < N; i++)
        job_spec_free(&specs[i]);
}

static void
test_reconnect(struct store *st)
{
    redisReply *r;
    /* Flushing the script cache must not break anything: NOSCRIPT reloads. */
    r = store_command(st, "SCRIPT FLUSH");
    freeReplyObject(r);
    CHECK(enq(st, "{\"type\":\"t\",\"payload\":{}}")[0] != '\0', "enqueue after SCRIPT FLUSH");
    /* A dropped connection is reopened on the next call. */
    r = store_command(st, "CLIENT KILL TYPE normal");
    if (r)
        freeReplyObject(r);
    r = store_command(st, "PING");
    if (r)
        freeReplyObject(r);
    r = store_command(st, "PING");
    CHECK(r && r->type == REDIS_REPLY_STATUS, "reconnected after the connection was killed");
    if (r)
        freeReplyObject(r);
    char err[256];
    struct store *bad = store_open("unix:///nonexistent/redis.sock", err, sizeof err);
    CHECK(bad && store_ready(bad) < 0, "unreachable redis reported, no crash");
    store_close(bad);
    CHECK(store_open("http://x", err, sizeof err) == NULL, "bad url refused");
    struct store_addr ad;
    CHECK(store_url_parse("redis://:pw@h.example:6380/3", &ad, err, sizeof err) == 0 &&
          ad.port == 6380 && ad.db == 3 && strcmp(ad.password, "pw") == 0 &&
          strcmp(ad.host, "h.example") == 0, "url parse");
}

int
main(void)
{
    char err[256];
    struct store *st;

    url = fx_start();
    st = store_open(url, err, sizeof err);
    CHECK(st && store_ready(st) == 0, "connect: %s", st ? st->err : err);
    if (!st)
        return ut_done("test_queue");
    flush(st); test_priority_fifo(st);
    flush(st); test_get_and_complete(st);
    flush(st); test_batch_finish(st);
    flush(st); test_delayed(st);
    flush(st); test_backoff(st);
    flush(st); test_reclaim(st);
    flush(st); test_cancel_retry(st);
    flush(st); test_idempotency(st);
    flush(st); test_bulk(st);
    flush(st); test_pause_remove_list(st);
    flush(st); test_retention(st);
    flush(st); test_concurrent_lease(st);
    flush(st); test_reconnect(st);
    store_close(st);
    return ut_done("test_queue");
}
