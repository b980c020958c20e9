/* test_auth.c — API keys (hashing, constant-time compare, format), queue
 * namespaces, and applications + rate limits against a real redis-server. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "store.h"
#include "util.h"
#include "ut.h"
#include "redis_fixture.h"

static void
test_digest(void)
{
    static const unsigned char abc[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
        0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
        0xf2, 0x00, 0x15, 0xad,
    };
    unsigned char d[32];

    CHECK(auth_digest("abc", d) == 0, "digest failed");
    CHECK(memcmp(d, abc, 32) == 0, "SHA-256('abc') is not the FIPS 180-2 vector");
    CHECK(auth_key_matches("abc", abc) == 1, "same key must match");
    CHECK(auth_key_matches("abd", abc) == 0, "another key must not match");
    CHECK(auth_key_matches("abcd", abc) == 0, "a longer key must not match");
    CHECK(auth_key_matches("", abc) == 0, "the empty key must not match");
    CHECK(auth_key_matches(NULL, abc) == 0, "no key must not match");
}

static void
test_new_key(void)
{
    char a[AUTH_KEY_LEN + 1], b[AUTH_KEY_LEN + 1];

    CHECK(auth_new_key(a) == 0 && auth_new_key(b) == 0, "new key failed");
    CHECK(strlen(a) == AUTH_KEY_LEN, "length %zu", strlen(a));
    CHECK(strncmp(a, "jq_", 3) == 0, "key %s", a);
    CHECK(strspn(a + 3, "0123456789abcdef") == 64, "key %s", a);
    CHECK(strcmp(a, b) != 0, "two keys are equal: %s", a);
}

static void
test_namespace(void)
{
    const char *app = "0123456789abcdef", *other = "fedcba9876543210";
    char q[129], longname[129];

    CHECK(auth_queue_internal(app, "emails", q) == 0, "internal");
    CHECK_STR(q, "app.0123456789abcdef.emails");
    CHECK_STR(auth_queue_external(app, q), "emails");
    CHECK(auth_queue_external(other, q) == NULL, "another app sees %s", q);
    CHECK(auth_queue_external(app, "emails") == NULL, "a global queue is not the app's");
    CHECK(auth_queue_external(app, "app.0123456789abcdef.") == NULL, "bare namespace");
    CHECK(auth_queue_external(app, NULL) == NULL, "NULL queue");
    CHECK_STR(auth_queue_external("", q), q);
    CHECK(auth_queue_internal("", "emails", q) == 0, "master");
    CHECK_STR(q, "emails");

    memset(longname, 'x', 128 - AUTH_NS_LEN);
    longname[128 - AUTH_NS_LEN] = '\0';
    CHECK(auth_queue_internal(app, longname, q) == 0 && strlen(q) == 128, "longest fits");
    longname[128 - AUTH_NS_LEN] = 'x';
    longname[128 - AUTH_NS_LEN + 1] = '\0';
    CHECK(auth_queue_internal(app, longname, q) == -1, "one more does not");
}

static void
test_job_view(void)
{
    const char *app = "0123456789abcdef";
    json_t *job = json_pack("{s:s, s:s}", "id", "x", "queue", "app.0123456789abcdef.q");
    json_t *foreign = json_pack("{s:s}", "queue", "app.fedcba9876543210.q");
    json_t *mislabeled = json_pack("{s:s, s:s}", "queue", "app.0123456789abcdef.q", "app",
                                   "fedcba9876543210");
    json_t *global = json_pack("{s:s}", "queue", "default");
    json_t *arr = json_pack("[o, o, o]", json_deep_copy(job), json_deep_copy(foreign),
                            json_deep_copy(global));

    CHECK(auth_job_view("", foreign) == 0, "the master key sees every job");
    CHECK_STR(json_string_value(json_object_get(foreign, "queue")), "app.fedcba9876543210.q");
    CHECK(auth_job_view(app, foreign) == -1, "another application's job is visible");
    CHECK(auth_job_view(app, mislabeled) == -1, "a job recorded for another app is visible");
    CHECK(auth_job_view(app, global) == -1, "a global job is visible to an application");
    CHECK(auth_job_view(app, job) == 0, "its own job is not visible");
    CHECK_STR(json_string_value(json_object_get(job, "queue")), "q");
    auth_jobs_view(app, arr);
    CHECK(json_array_size(arr) == 1, "list keeps %zu", json_array_size(arr));
    CHECK_STR(json_string_value(json_object_get(json_array_get(arr, 0), "id")), "x");
    json_decref(job);
    json_decref(foreign);
    json_decref(mislabeled);
    json_decref(global);
    json_decref(arr);
}

static void
test_scope(void)
{
    struct job_spec spec;
    char err[128];

    memset(&spec, 0, sizeof spec);
    spec.queue = xstrdup("emails");
    CHECK(auth_scope_spec("0123456789abcdef", &spec, err, sizeof err) == 0, "%s", err);
    CHECK_STR(spec.queue, "app.0123456789abcdef.emails");
    CHECK_STR(spec.app, "0123456789abcdef");
    job_spec_free(&spec);

    /* A handler's follow-up job stays in its parent's namespace. */
    spec.queue = xstrdup("notify");
    CHECK(auth_scope_follow_up("app.0123456789abcdef.emails", &spec, err, sizeof err) == 0,
          "%s", err);
    CHECK_STR(spec.queue, "app.0123456789abcdef.notify");
    CHECK_STR(spec.app, "0123456789abcdef");
    job_spec_free(&spec);
    spec.queue = xstrdup("app.0123456789abcdef.emails");   /* defaulted to the parent's */
    CHECK(auth_scope_follow_up("app.0123456789abcdef.emails", &spec, err, sizeof err) == 0,
          "%s", err);
    CHECK_STR(spec.queue, "app.0123456789abcdef.emails");
    job_spec_free(&spec);
    spec.queue = xstrdup("notify");
    CHECK(auth_scope_follow_up("default", &spec, err, sizeof err) == 0, "%s", err);
    CHECK_STR(spec.queue, "notify");
    CHECK(spec.app == NULL, "app %s", spec.app);
    job_spec_free(&spec);
}

static void
test_applications(const char *url)
{
    struct config c;
    struct store *st;
    struct auth_who who;
    json_t *app = NULL, *app2 = NULL, *list = NULL, *got = NULL, *settings;
    char key[AUTH_KEY_LEN + 1], key2[AUTH_KEY_LEN + 1], err[256], id[AUTH_APP_ID_LEN + 1];
    int rc;

    config_defaults(&c);
    free(c.prefix);
    c.prefix = xstrdup("jqt");
    c.master_key = xstrdup("master-secret");
    st = store_open(url, err, sizeof err);
    CHECK(st && store_ready(st) == 0, "store: %s", err);
    if (!st)
        return;

    /* The master key needs no Redis without a rate limit. */
    CHECK(auth_identify(NULL, &c, "master-secret", &who, err, sizeof err) == AUTH_OK &&
          who.master && !who.app[0], "master");
    CHECK(auth_identify(st, &c, "master-secreT", &who, err, sizeof err) == AUTH_DENIED,
          "a near miss of the master key");
    CHECK(auth_identify(st, &c, "jq_nope", &who, err, sizeof err) == AUTH_DENIED, "unknown");
    CHECK(auth_identify(NULL, &c, "jq_nope", &who, err, sizeof err) == AUTH_UNAVAILABLE,
          "an application key without Redis");

    settings = json_pack("{s:i}", "maxConcurrentJobs", 5);
    rc = auth_app_create(st, c.prefix, "First", settings, &app, key, err, sizeof err);
    json_decref(settings);
    CHECK(rc == AUTH_OK && app, "create: %d %s", rc, err);
    if (rc != AUTH_OK)
        goto out;
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(app, "id")));
    CHECK(strlen(id) == AUTH_APP_ID_LEN, "id %s", id);
    CHECK(json_object_get(app, "keyHash") == NULL, "the hash leaks into the view");
    CHECK(json_integer_value(json_object_get(json_object_get(app, "settings"),
                                             "maxConcurrentJobs")) == 5, "settings");
    sleep_ms(2);   /* a later createdAt: the list is oldest first */
    CHECK(auth_app_create(st, c.prefix, "Second", NULL, &app2, key2, err, sizeof err) ==
          AUTH_OK, "second: %s", err);

    {
        /* Only the hash is stored: the key itself appears nowhere. */
        redisReply *r = store_command(st, "HGET jqt:{@auth}:apps %s", id);
        CHECK(r && r->type == REDIS_REPLY_STRING && !strstr(r->str, key + 3), "key stored");
        if (r)
            freeReplyObject(r);
    }

    CHECK(auth_identify(st, &c, key, &who, err, sizeof err) == AUTH_OK && !who.master,
          "app key: %s", err);
    CHECK_STR(who.app, id);
    CHECK(auth_identify(st, &c, key2, &who, err, sizeof err) == AUTH_OK && strcmp(who.app, id),
          "second key");

    CHECK(auth_app_list(st, c.prefix, &list) == AUTH_OK && json_array_size(list) == 2, "list");
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "name")), "First");
    CHECK(auth_app_get(st, c.prefix, id, &got) == AUTH_OK, "get");
    CHECK_STR(json_string_value(json_object_get(got, "queuePrefix")),
              json_string_value(json_object_get(app, "queuePrefix")));
    {
        json_t *none = NULL;
        CHECK(auth_app_get(st, c.prefix, "../../etc", &none) == AUTH_DENIED && !none, "junk");
        CHECK(auth_app_get(st, c.prefix, "0000000000000000", &none) == AUTH_DENIED, "unknown");
    }

    /* Revocation is immediate: nothing is cached. */
    CHECK(auth_app_delete(st, c.prefix, id, NULL) == AUTH_OK, "delete");
    CHECK(auth_identify(st, &c, key, &who, err, sizeof err) == AUTH_DENIED, "revoked key works");
    CHECK(auth_app_delete(st, c.prefix, id, NULL) == AUTH_DENIED, "deleted twice");
    CHECK(auth_app_delete(st, c.prefix, "not-an-id", NULL) == AUTH_DENIED, "junk id");
    CHECK(auth_identify(st, &c, key2, &who, err, sizeof err) == AUTH_OK, "the other survives");

    /* Token bucket: 3 requests, then refused until a token comes back. */
    c.rate_limit_requests = 3;
    c.rate_limit_per = 300;
    for (int i = 0; i < 3; i++)
        CHECK(auth_identify(st, &c, key2, &who, err, sizeof err) == AUTH_OK, "burst %d", i);
    rc = auth_identify(st, &c, key2, &who, err, sizeof err);
    CHECK(rc == AUTH_LIMITED && who.retry_ms > 0 && who.retry_ms <= 100,
          "4th: rc %d retry %lld", rc, (long long)who.retry_ms);
    CHECK(auth_identify(st, &c, "master-secret", &who, err, sizeof err) == AUTH_OK &&
          who.master, "the master key has a bucket of its own");
    sleep_ms(who.retry_ms + 120);
    CHECK(auth_identify(st, &c, key2, &who, err, sizeof err) == AUTH_OK, "refilled");

out:
    json_decref(app);
    json_decref(app2);
    json_decref(list);
    json_decref(got);
    store_close(st);
    config_free(&c);
}

int
main(void)
{
    test_digest();
    test_new_key();
    test_namespace();
    test_job_view();
    test_scope();
    test_applications(fx_start());
    return ut_done("test_auth");
}
