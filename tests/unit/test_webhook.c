/* test_webhook.c — signing, secrets, backoff, subscription filters, and the
 * outbox scripts (transition → delivery → claim → result) against a real
 * redis-server. */
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "queue.h"
#include "subscription.h"
#include "util.h"
#include "webhook.h"
#include "ut.h"
#include "redis_fixture.h"

static const char *P = "wht";

static void
test_signature(void)
{
    unsigned char key[WEBHOOK_KEY_MAX];
    char sig[WEBHOOK_SIG_MAX], secret[WEBHOOK_SECRET_MAX];
    const char *body = "{\"test\": 2432232314}";
    int n;

    /* The test vector of the Standard Webhooks specification. */
    n = webhook_secret_decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key);
    CHECK(n == 24, "decoded %d bytes", n);
    CHECK(webhook_sign(key, (size_t)n, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                       strlen(body), sig) == 0, "sign");
    CHECK_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* Without the prefix, as the libraries accept it too. */
    CHECK(webhook_secret_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key) == 24, "bare");
    /* Padding is taken off the decoded length. */
    CHECK(webhook_secret_decode("whsec_YWJj", key) == 3, "3 bytes");
    CHECK(webhook_secret_decode("whsec_YWI=", key) == 2, "2 bytes");
    CHECK(webhook_secret_decode("whsec_YWI", key) == 2, "unpadded");
    CHECK(webhook_secret_decode("whsec_", key) < 0, "empty");
    CHECK(webhook_secret_decode("", key) < 0, "empty");
    CHECK(webhook_secret_decode("whsec_not base64!", key) < 0, "bad chars");
    CHECK(webhook_secret_decode(NULL, key) < 0, "NULL");

    CHECK(webhook_secret_new(secret) == 0, "new");
    CHECK(strncmp(secret, "whsec_", 6) == 0, "prefix: %s", secret);
    CHECK(webhook_secret_decode(secret, key) == 24, "new decodes to 24 bytes: %s", secret);
}

static void
test_backoff(void)
{
    int64_t d1 = webhook_retry_delay(1000, 1), d3 = webhook_retry_delay(1000, 3);
    int64_t dmax = webhook_retry_delay(1000, 50);
    CHECK(d1 >= 800 && d1 <= 1200, "first retry %lld", (long long)d1);
    CHECK(d3 >= 12800 && d3 <= 19200, "third retry %lld", (long long)d3);
    CHECK(dmax >= 2880000 && dmax <= 4320000, "capped at an hour: %lld", (long long)dmax);
    CHECK(webhook_retry_delay(0, 3) == 0, "no backoff");
}

/* invalid checks that body is refused with a message containing want. */
static void
invalid(const char *body, const char *want)
{
    char err[512] = "";
    json_t *b = json_loads(body, 0, NULL), *rec = subs_validate(b, err, sizeof err);
    CHECK(rec == NULL, "accepted %s", body);
    CHECK_CONTAINS(err, want);
    json_decref(rec);
    json_decref(b);
}

static json_t *
sub_of(const char *body, json_int_t created)
{
    char err[512] = "";
    json_t *b = json_loads(body, 0, NULL), *rec = subs_validate(b, err, sizeof err);
    json_decref(b);
    CHECK(rec != NULL, "refused %s: %s", body, err);
    if (rec) {
        json_object_set_new(rec, "id", json_string("s1"));
        json_object_set_new(rec, "createdAt", json_integer(created));
    }
    return rec;
}

static void
test_subscriptions(void)
{
    json_t *s, *ev, *meta;

    invalid("{}", "'name'");
    invalid("{\"name\":\"x\"}", "'endpoint'");
    invalid("{\"name\":\"x\",\"endpoint\":\"ftp://h/\"}", "'endpoint'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://\"}", "'endpoint'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://h/\",\"bogus\":1}", "'bogus'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://h/\",\"events\":[\"nope\"]}", "'events[0]'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://h/\",\"events\":[]}", "'events'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://h/\",\"filters\":{\"queues\":\"q\"}}",
            "'filters.queues'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://h/\",\"filters\":{\"types\":[\"a b\"]}}",
            "'filters.types[0]'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://h/\",\"filters\":{\"metadata\":{\"k\":[1]}}}",
            "'filters.metadata.k'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://h/\",\"filters\":{\"x\":1}}", "'filters.x'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://h/\",\"headers\":{\"A\":\"b\\r\\nC: d\"}}",
            "'headers.A'");
    invalid("{\"name\":\"x\",\"endpoint\":\"http://h/\",\"headers\":{\"A B\":\"c\"}}",
            "'headers.A B'");

    s = sub_of("{\"name\":\"n\",\"endpoint\":\"https://h/x\",\"events\":[\"active\",\"completed\","
               "\"created\"],\"filters\":{\"queues\":[\"q\"],\"types\":[\"t\"],"
               "\"metadata\":{\"tier\":\"gold\",\"n\":5,\"b\":true}}}", 1000);
    if (!s)
        return;
    CHECK_STR(json_string_value(json_array_get(json_object_get(s, "events"), 0)), "processing");
    ev = json_pack("{s:s, s:s, s:s, s:I}", "jobId", "j", "status", "completed", "type", "t",
                   "ts", (json_int_t)2000);
    CHECK(subs_match(s, "q", ev), "matches");
    CHECK(!subs_match(s, "other", ev), "queue filter");
    json_object_set_new(ev, "type", json_string("u"));
    CHECK(!subs_match(s, "q", ev), "type filter");
    json_object_set_new(ev, "type", json_string("t"));
    json_object_set_new(ev, "status", json_string("failed"));
    CHECK(!subs_match(s, "q", ev), "event filter");
    json_object_set_new(ev, "status", json_string("waiting"));
    CHECK(!subs_match(s, "q", ev), "waiting is not asked for");
    json_object_set_new(ev, "created", json_true());
    CHECK(subs_match(s, "q", ev), "created is");
    json_object_set_new(ev, "ts", json_integer(999));
    CHECK(!subs_match(s, "q", ev), "events before the subscription are not its");

    meta = json_pack("{s:s, s:i, s:b}", "tier", "gold", "n", 5, "b", 1);
    CHECK(subs_match_meta(s, meta), "metadata matches as text");
    json_object_set_new(meta, "tier", json_string("silver"));
    CHECK(!subs_match_meta(s, meta), "metadata differs");
    CHECK(!subs_match_meta(s, NULL), "no metadata");
    json_decref(meta);
    json_decref(ev);
    json_decref(s);

    s = sub_of("{\"name\":\"all\",\"url\":\"http://h\"}", 0);
    ev = json_pack("{s:s, s:s, s:s, s:I}", "jobId", "j", "status", "progress", "type", "x",
                   "ts", (json_int_t)1);
    CHECK(s && subs_match(s, "any", ev), "no filters: everything");
    CHECK(s && subs_match_meta(s, NULL), "no metadata filter");
    json_decref(ev);
    json_decref(s);

    CHECK(ev_status_ok("completed,failed"), "status list");
    CHECK(ev_status_ok("active"), "active");
    CHECK(!ev_status_ok("completed,nope"), "bad status");
}

/* ---- the outbox scripts ---- */

static const char *
enq(struct store *st, const char *body)
{
    static char id[37];
    json_t *j = json_loads(body, 0, NULL);
    struct job_spec spec;
    struct enq_result res;
    char err[256];

    id[0] = '\0';
    if (job_spec_from_json(j, now_ms(), &spec, err, sizeof err) < 0) {
        printf("bad body: %s\n", err);
        json_decref(j);
        return id;
    }
    if (queue_enqueue(st, P, 3, 100, &spec, 1, &res, err, sizeof err) == Q_OK)
        memcpy(id, res.id, 37);
    job_spec_free(&spec);
    json_decref(j);
    return id;
}

/* finish leases the job of q and ends it (ok / permanent failure). */
static int
finish(struct store *st, const char *q, int ok, const char *result)
{
    struct leased l;
    struct outcome o = { 0 };
    char err[256];
    int n = queue_lease(st, P, q, 1, 30000, &l, err, sizeof err);

    if (n != 1)
        return -1;
    o.queue = q;
    o.id = l.id;
    o.token = l.token;
    o.ok = ok;
    o.result = result;
    o.error = "went wrong";
    o.permanent = 1;
    o.backoff = -1;
    n = queue_finish(st, P, 100, 100, &o, 1);
    leased_free(&l);
    return n == Q_OK ? o.status : n;
}

static long long
zcard(struct store *st, const char *key)
{
    redisReply *r = store_command(st, "ZCARD %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

/* claim runs wh_claim.lua on q; returns the reply (caller frees). */
static redisReply *
claim(struct store *st, const char *q, int64_t now)
{
    char base[64], now_s[24];
    const char *argv[4] = { base, now_s, "10", "5000" };
    snprintf(base, sizeof base, "%s:{%s}", P, q);
    snprintf(now_s, sizeof now_s, "%lld", (long long)now);
    return store_eval(st, S_WH_CLAIM, 1, 4, argv, NULL);
}

static const char *
result(struct store *st, const char *q, const char *id, const char *outcome, int *attempts)
{
    static char status[32];
    char base[64], now_s[24];
    const char *argv[10] = { base, now_s, id, outcome, "HTTP 500", "500", "3", "1000",
                             "60000", "60000" };
    redisReply *r;

    snprintf(base, sizeof base, "%s:{%s}", P, q);
    snprintf(now_s, sizeof now_s, "%lld", (long long)now_ms());
    r = store_eval(st, S_WH_RESULT, 1, 10, argv, NULL);
    status[0] = '\0';
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        snprintf(status, sizeof status, "%s", r->element[0]->str);
        *attempts = (int)r->element[1]->integer;
    }
    if (r)
        freeReplyObject(r);
    return status;
}

static void
test_outbox(struct store *st)
{
    char id[37], did[128], key[160];
    json_t *job = NULL, *d;
    redisReply *r;
    int attempts = 0;

    /* No webhooks: no delivery. */
    enq(st, "{\"type\":\"t\",\"queue\":\"o\",\"payload\":{}}");
    CHECK(finish(st, "o", 1, "{\"a\":1}") == Q_OK, "finish");
    CHECK(zcard(st, "wht:{o}:outbox") == 0, "no outbox entry");

    /* Seed 000's webhook fires on completion, in the same script. */
    snprintf(id, sizeof id, "%s", enq(st, "{\"type\":\"t\",\"queue\":\"o\",\"payload\":{},"
                                          "\"webhook\":{\"url\":\"http://h/x\","
                                          "\"headers\":{\"A\":\"b\"}}}"));
    CHECK(finish(st, "o", 1, "{\"a\":[1,2]}") == Q_OK, "finish");
    CHECK(zcard(st, "wht:{o}:outbox") == 1, "one outbox entry");
    r = claim(st, "o", now_ms());
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1, "claimed one");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *row = r->element[0];
        snprintf(did, sizeof did, "%s", row->element[0]->str);
        CHECK_CONTAINS(did, id);
        CHECK_STR(row->element[1]->str, "http://h/x");
        CHECK_STR(row->element[2]->str, "{\"A\":\"b\"}");
        CHECK_CONTAINS(row->element[3]->str, "\"status\":\"completed\"");
        CHECK_CONTAINS(row->element[3]->str, "\"result\":{\"a\":[1,2]}");
        CHECK_CONTAINS(row->element[3]->str, "\"completedAt\":");
        CHECK_STR(row->element[5]->str, "completed");
        CHECK_STR(row->element[6]->str, id);
    }
    if (r)
        freeReplyObject(r);
    /* Claimed: nobody else gets it until the claim runs out. */
    r = claim(st, "o", now_ms());
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 0, "claim is exclusive");
    if (r)
        freeReplyObject(r);
    r = claim(st, "o", now_ms() + 6000);
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1, "claim runs out");
    if (r)
        freeReplyObject(r);

    CHECK_STR(result(st, "o", did, "retry", &attempts), "pending");
    CHECK(attempts == 1, "attempts %d", attempts);
    CHECK_STR(result(st, "o", did, "retry", &attempts), "pending");
    CHECK_STR(result(st, "o", did, "retry", &attempts), "failed");
    CHECK(attempts == 3, "gave up after 3: %d", attempts);
    CHECK(zcard(st, "wht:{o}:outbox") == 0, "out of the outbox");
    CHECK_STR(result(st, "o", did, "ok", &attempts), "failed");   /* settled stays */
    snprintf(key, sizeof key, "wht:{o}:wh:%s", did);
    r = store_command(st, "PTTL %s", key);
    CHECK(r && r->integer > 0 && r->integer <= 60000, "expires once settled");
    if (r)
        freeReplyObject(r);

    /* The job shows its deliveries. */
    CHECK(queue_get(st, P, id, &job) == Q_OK, "get");
    d = json_array_get(json_object_get(job, "webhookDeliveries"), 0);
    CHECK_STR(json_string_value(json_object_get(d, "status")), "failed");
    CHECK_STR(json_string_value(json_object_get(d, "event")), "completed");
    CHECK_STR(json_string_value(json_object_get(d, "lastError")), "HTTP 500");
    CHECK(json_integer_value(json_object_get(d, "attempts")) == 3, "attempts shown");
    CHECK(!json_object_get(job, "whIds") && !json_object_get(job, "whSeq"), "bookkeeping hidden");
    json_decref(job);

    /* A failed job fires `failed`; "*" catches progress too. */
    snprintf(id, sizeof id, "%s", enq(st, "{\"type\":\"t\",\"queue\":\"f\",\"payload\":{},"
                                          "\"webhooks\":{\"*\":\"http://h/all\"}}"));
    {
        struct leased l;
        char err[64];
        CHECK(queue_lease(st, P, "f", 1, 30000, &l, err, sizeof err) == 1, "lease");
        CHECK(queue_progress(st, P, "f", l.id, l.token, 40) == Q_OK, "progress");
        {
            struct outcome o = { .queue = "f", .id = l.id, .token = l.token, .ok = 0,
                                 .error = "bad \"thing\"", .permanent = 1, .backoff = -1 };
            CHECK(queue_finish(st, P, 100, 100, &o, 1) == Q_OK && o.status == Q_OK, "fail");
        }
        leased_free(&l);
    }
    r = claim(st, "f", now_ms());
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "progress + failed");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        int p = strcmp(r->element[0]->element[5]->str, "progress") == 0 ? 0 : 1;
        CHECK_CONTAINS(r->element[p]->element[3]->str, "\"progress\":40");
        CHECK_CONTAINS(r->element[1 - p]->element[3]->str, "\"error\":\"bad \\\"thing\\\"\"");
        CHECK_STR(r->element[1 - p]->element[5]->str, "failed");
        snprintf(did, sizeof did, "%s", r->element[1 - p]->element[0]->str);
    }
    if (r)
        freeReplyObject(r);
    CHECK_STR(result(st, "f", did, "ok", &attempts), "delivered");
    CHECK_STR(result(st, "f", did, "ok", &attempts), "delivered");
    CHECK(attempts == 1, "counted once: %d", attempts);
    CHECK_STR(result(st, "f", "nope", "ok", &attempts), "gone");
}

/* test_dispatch runs stream events through a subscription into the outbox
 * and checks that each event is acknowledged and handled once. */
static void
test_dispatch(struct store *st)
{
    struct config c;
    struct subs *s;
    char *queues[1] = { (char *)"d" };
    redisReply *r;
    int n;

    config_defaults(&c);
    free(c.prefix);
    c.prefix = xstrdup(P);
    r = store_command(st, "HSET wht:subscriptions s1 %s s2 %s",
                      "{\"id\":\"s1\",\"name\":\"n\",\"endpoint\":\"http://h/s\","
                      "\"filters\":{\"queues\":[],\"types\":[],\"metadata\":{\"tier\":\"gold\"}},"
                      "\"events\":[\"completed\"],\"headers\":{\"X\":\"y\"},\"createdAt\":1,"
                      "\"app\":\"\"}",
                      "{\"id\":\"s2\",\"name\":\"later\",\"endpoint\":\"http://h/l\","
                      "\"filters\":{},\"events\":[\"*\"],\"createdAt\":99999999999999,\"app\":\"\"}");
    if (r)
        freeReplyObject(r);
    enq(st, "{\"type\":\"t\",\"queue\":\"d\",\"payload\":{},\"metadata\":{\"tier\":\"gold\"}}");
    CHECK(finish(st, "d", 1, "{\"r\":1}") == Q_OK, "finish gold");
    enq(st, "{\"type\":\"t\",\"queue\":\"d\",\"payload\":{},\"metadata\":{\"tier\":\"tin\"}}");
    CHECK(finish(st, "d", 1, "{\"r\":2}") == Q_OK, "finish tin");

    s = subs_new(&c, "me");
    n = subs_dispatch(s, st, queues, 1);
    CHECK(n == 1, "one delivery (gold, completed): %d", n);
    CHECK(zcard(st, "wht:{d}:outbox") == 1, "in the outbox");
    r = store_command(st, "XPENDING wht:{d}:events %s", SUBS_GROUP);
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->element[0]->integer == 0,
          "every event acknowledged");
    if (r)
        freeReplyObject(r);
    r = claim(st, "d", now_ms());
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1, "claimable");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        CHECK_STR(r->element[0]->element[1]->str, "http://h/s");
        CHECK_STR(r->element[0]->element[2]->str, "{\"X\":\"y\"}");
        CHECK_CONTAINS(r->element[0]->element[3]->str, "\"result\":{\"r\":1}");
        CHECK_CONTAINS(r->element[0]->element[3]->str, "\"subscriptionId\":\"s1\"");
        CHECK_CONTAINS(r->element[0]->element[0]->str, "evt_");
    }
    if (r)
        freeReplyObject(r);
    CHECK(subs_dispatch(s, st, queues, 1) == 0, "nothing new");
    subs_free(s);
    config_free(&c);
}

int
main(void)
{
    char err[256];
    struct store *st;

    test_signature();
    test_backoff();
    test_subscriptions();
    st = store_open(fx_start(), err, sizeof err);
    CHECK(st && store_ready(st) == 0, "redis: %s", st ? st->err : err);
    if (st && st->ctx) {
        test_outbox(st);
        test_dispatch(st);
    }
    store_close(st);
    return ut_done("test_webhook");
}
