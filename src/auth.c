/* auth.c — applications, API keys, rate limits and queue namespaces (see
 * auth.h for the design: what is stored where, and how applications are
 * kept apart). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"
#include "log.h"
#include "util.h"

/* ---- keys ---- */

int
auth_digest(const char *key, unsigned char out[32])
{
    unsigned int n = 0;

    if (EVP_Digest(key, strlen(key), out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return -1;
    return 0;
}

/* to_hex writes the 64 hex digits of a digest (+ NUL) into out. */
static void
to_hex(const unsigned char d[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

int
auth_key_matches(const char *key, const unsigned char want[32])
{
    unsigned char d[32];

    if (!key || auth_digest(key, d) < 0)
        return 0;
    /* Digests have one length whatever the keys' lengths, and
     * CRYPTO_memcmp looks at every byte: the time says nothing. */
    return CRYPTO_memcmp(d, want, 32) == 0;
}

int
auth_new_key(char out[AUTH_KEY_LEN + 1])
{
    memcpy(out, "jq_", 3);
    return random_hex(out + 3, 32);
}

/* ---- namespaces ---- */

void
auth_namespace(const char *app, char out[AUTH_NS_LEN + 1])
{
    snprintf(out, AUTH_NS_LEN + 1, "app.%.*s.", AUTH_APP_ID_LEN, app);
}

int
auth_queue_internal(const char *app, const char *name, char out[129])
{
    char ns[AUTH_NS_LEN + 1] = "";
    size_t nl, ql = strlen(name);

    if (app && *app)
        auth_namespace(app, ns);
    nl = strlen(ns);
    if (nl + ql > 128)
        return -1;
    memcpy(out, ns, nl);
    memcpy(out + nl, name, ql + 1);
    return 0;
}

const char *
auth_queue_external(const char *app, const char *q)
{
    char ns[AUTH_NS_LEN + 1];
    size_t n;

    if (!q)
        return NULL;
    if (!app || !*app)
        return q;
    auth_namespace(app, ns);
    n = strlen(ns);
    /* A name that is only the namespace is no queue of the application. */
    if (strncmp(q, ns, n) != 0 || !q[n])
        return NULL;
    return q + n;
}

int
auth_job_view(const char *app, json_t *job)
{
    const char *q, *ext, *owner;

    if (!app || !*app)
        return 0;
    if (!json_is_object(job))
        return -1;
    q = json_string_value(json_object_get(job, "queue"));
    owner = json_string_value(json_object_get(job, "app"));
    if (!(ext = auth_queue_external(app, q)) || (owner && strcmp(owner, app) != 0))
        return -1;
    json_object_set_new(job, "queue", json_string(ext));
    return 0;
}

void
auth_jobs_view(const char *app, json_t *jobs)
{
    size_t i = 0;

    if (!app || !*app)
        return;
    while (i < json_array_size(jobs)) {
        if (auth_job_view(app, json_array_get(jobs, i)) < 0)
            json_array_remove(jobs, i);
        else
            i++;
    }
}

int
auth_scope_spec(const char *app, struct job_spec *spec, char *err, size_t errlen)
{
    char q[129];

    if (!app || !*app)
        return 0;
    if (auth_queue_internal(app, spec->queue, q) < 0) {
        snprintf(err, errlen, "'queue' must be at most %d characters for an application",
                 128 - AUTH_NS_LEN);
        return -1;
    }
    free(spec->queue);
    spec->queue = xstrdup(q);
    free(spec->app);
    spec->app = xstrdup(app);
    return 0;
}

/* queue_app reads the application id out of an internal queue name
 * "app.<id>.<name>" into app; 0, or -1 when q is in no namespace. */
static int
queue_app(const char *q, char app[AUTH_APP_ID_LEN + 1])
{
    if (strncmp(q, "app.", 4) != 0 || strlen(q) <= AUTH_NS_LEN || q[AUTH_NS_LEN - 1] != '.' ||
        strspn(q + 4, "0123456789abcdef") != AUTH_APP_ID_LEN)
        return -1;
    memcpy(app, q + 4, AUTH_APP_ID_LEN);
    app[AUTH_APP_ID_LEN] = '\0';
    return 0;
}

int
auth_scope_follow_up(const char *parent_queue, struct job_spec *spec, char *err,
                     size_t errlen)
{
    char app[AUTH_APP_ID_LEN + 1];

    if (!parent_queue || queue_app(parent_queue, app) < 0)
        return 0;
    if (auth_queue_external(app, spec->queue)) {
        free(spec->app);
        spec->app = xstrdup(app);
        return 0;
    }
    return auth_scope_spec(app, spec, err, errlen);
}

/* ---- Redis ---- */

/* auth_base writes the key base "P:{@auth}". */
static void
auth_base(char *out, size_t n, const char *prefix)
{
    snprintf(out, n, "%s:{@auth}", prefix);
}

/* reply_rc maps a NULL or error reply to a status, with the message. */
static int
reply_rc(struct store *st, redisReply *rep, char *err, size_t errlen)
{
    if (!rep) {
        snprintf(err, errlen, "%s", st->err[0] ? st->err : "not connected");
        return AUTH_UNAVAILABLE;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s", rep->str);
        log_warn("auth: redis: %s", rep->str);
        return AUTH_REDIS;
    }
    return AUTH_OK;
}

/* str_at is element i of an array reply when it is a string, else NULL. */
static const char *
str_at(const redisReply *rep, size_t i)
{
    if (rep->type != REDIS_REPLY_ARRAY || i >= rep->elements ||
        rep->element[i]->type != REDIS_REPLY_STRING)
        return NULL;
    return rep->element[i]->str;
}

/* read_who reads auth.lua's answer into who.  hex: the presented key's
 * digest, checked once more against the stored one. */
static int
read_who(const redisReply *rep, int master, const char *hex, struct auth_who *who)
{
    const char *tag = str_at(rep, 0), *app = str_at(rep, 1), *stored = str_at(rep, 2);

    if (tag && strcmp(tag, "limited") == 0 && rep->elements > 1 &&
        rep->element[1]->type == REDIS_REPLY_INTEGER) {
        who->retry_ms = rep->element[1]->integer > 0 ? rep->element[1]->integer : 1;
        return AUTH_LIMITED;
    }
    if (!tag || strcmp(tag, "ok") != 0 || !app || !stored)
        return AUTH_DENIED;
    if (master) {
        who->master = 1;
        return AUTH_OK;
    }
    /* Redis found the application by this very digest; comparing it with
     * the record's own copy guards against a keys hash that drifted from
     * the records (a hand edit, a half-restored backup). */
    if (strlen(stored) != 64 || CRYPTO_memcmp(stored, hex, 64) != 0 ||
        strlen(app) != AUTH_APP_ID_LEN)
        return AUTH_DENIED;
    snprintf(who->app, sizeof who->app, "%s", app);
    return AUTH_OK;
}

int
auth_identify(struct store *st, const struct config *c, const char *key,
              struct auth_who *who, char *err, size_t errlen)
{
    unsigned char d[32], m[32];
    char base[96], hex[65], cap[24], per[24], now[24];
    const char *argv[6];
    redisReply *rep;
    int master, rc;

    memset(who, 0, sizeof *who);
    if (auth_digest(key, d) < 0) {
        snprintf(err, errlen, "cannot hash the key");
        return AUTH_REDIS;
    }
    master = c->master_key && auth_digest(c->master_key, m) == 0 &&
             CRYPTO_memcmp(d, m, 32) == 0;
    if (master && c->rate_limit_requests <= 0) {
        who->master = 1;
        return AUTH_OK;
    }
    if (!st) {
        snprintf(err, errlen, "not connected");
        return AUTH_UNAVAILABLE;
    }
    to_hex(d, hex);
    auth_base(base, sizeof base, c->prefix);
    snprintf(cap, sizeof cap, "%d", c->rate_limit_requests > 0 ? c->rate_limit_requests : 0);
    snprintf(per, sizeof per, "%" PRId64, c->rate_limit_per > 0 ? c->rate_limit_per : 1000);
    snprintf(now, sizeof now, "%" PRId64, now_ms());
    argv[0] = base;
    argv[1] = hex;
    argv[2] = master ? "1" : "0";
    argv[3] = cap;
    argv[4] = per;
    argv[5] = now;
    rep = store_eval(st, S_AUTH, 1, 6, argv, NULL);
    if ((rc = reply_rc(st, rep, err, errlen)) == AUTH_OK)
        rc = read_who(rep, master, hex, who);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* public_view is an application record without its key hash, with the
 * queue namespace its jobs live in (for configuring workers). */
static json_t *
public_view(json_t *rec)
{
    static const char *const order[] = { "id", "name", "settings", "createdAt", NULL };
    const char *id = json_string_value(json_object_get(rec, "id"));
    char ns[AUTH_NS_LEN + 1];
    json_t *o = json_object(), *v;

    for (const char *const *k = order; *k; k++)
        if ((v = json_object_get(rec, *k)))
            json_object_set(o, *k, v);
    if (id) {
        auth_namespace(id, ns);
        json_object_set_new(o, "queuePrefix", json_string(ns));
    }
    return o;
}

/* create_once tries one fresh id and key: 1 stored, 0 taken (draw again),
 * or a negative status. */
static int
create_once(struct store *st, const char *base, const char *name, json_t *settings,
            json_t **app, char key[AUTH_KEY_LEN + 1], char *err, size_t errlen)
{
    char id[AUTH_APP_ID_LEN + 1], hex[65], iso[32];
    unsigned char d[32];
    const char *argv[4];
    json_t *rec;
    char *txt;
    redisReply *rep;
    int rc;

    if (random_hex(id, AUTH_APP_ID_LEN / 2) < 0 || auth_new_key(key) < 0 ||
        auth_digest(key, d) < 0) {
        snprintf(err, errlen, "no randomness for a key");
        return AUTH_REDIS;
    }
    to_hex(d, hex);
    iso8601_format(now_ms(), iso);
    rec = json_pack("{s:s, s:s, s:O, s:s, s:s}", "id", id, "name", name, "settings", settings,
                    "createdAt", iso, "keyHash", hex);
    txt = json_dumps(rec, JSON_COMPACT);
    argv[0] = base;
    argv[1] = id;
    argv[2] = hex;
    argv[3] = txt;
    rep = store_eval(st, S_APP_CREATE, 1, 4, argv, NULL);
    rc = reply_rc(st, rep, err, errlen);
    if (rc == AUTH_OK) {
        rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
        if (rc)
            *app = public_view(rec);
    }
    if (rep)
        freeReplyObject(rep);
    free(txt);
    json_decref(rec);
    return rc;
}

int
auth_app_create(struct store *st, const char *prefix, const char *name, json_t *settings,
                json_t **app, char key[AUTH_KEY_LEN + 1], char *err, size_t errlen)
{
    json_t *set = json_is_object(settings) ? json_incref(settings) : json_object();
    char base[96];
    int rc = 0;

    *app = NULL;
    auth_base(base, sizeof base, prefix);
    /* A collision of 64 random bits is next to impossible; three draws
     * make "impossible" certain. */
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = create_once(st, base, name, set, app, key, err, errlen);
    json_decref(set);
    if (rc == 0) {
        snprintf(err, errlen, "could not draw a unique application id");
        return AUTH_REDIS;
    }
    return rc < 0 ? rc : AUTH_OK;
}

static int
by_created(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *cx = json_string_value(json_object_get(x, "createdAt"));
    const char *cy = json_string_value(json_object_get(y, "createdAt"));
    int c = strcmp(cx ? cx : "", cy ? cy : "");
    if (c)
        return c;
    cx = json_string_value(json_object_get(x, "id"));
    cy = json_string_value(json_object_get(y, "id"));
    return strcmp(cx ? cx : "", cy ? cy : "");
}

int
auth_app_list(struct store *st, const char *prefix, json_t **apps)
{
    char base[96], err[256];
    redisReply *rep;
    json_t **v = NULL;
    size_t n = 0;
    int rc;

    *apps = NULL;
    auth_base(base, sizeof base, prefix);
    rep = store_command(st, "HVALS %s:apps", base);
    if ((rc = reply_rc(st, rep, err, sizeof err)) != AUTH_OK)
        goto out;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0)
        v = xcalloc(rep->elements, sizeof *v);
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        json_t *rec = rep->element[i]->type == REDIS_REPLY_STRING
                          ? json_loads(rep->element[i]->str, 0, NULL) : NULL;
        if (json_is_object(rec))
            v[n++] = public_view(rec);
        json_decref(rec);
    }
    if (n > 1)
        qsort(v, n, sizeof *v, by_created);
    *apps = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(*apps, v[i]);
out:
    free(v);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* valid_id tells whether s has the shape of an application id, so that
 * junk never reaches Redis. */
static int
valid_id(const char *s)
{
    if (!s || strlen(s) != AUTH_APP_ID_LEN)
        return 0;
    return strspn(s, "0123456789abcdef") == AUTH_APP_ID_LEN;
}

/* record_reply turns a string reply holding a record into its public
 * view: AUTH_OK, or AUTH_DENIED for nil. */
static int
record_reply(const redisReply *rep, json_t **app)
{
    json_t *rec;

    if (rep->type != REDIS_REPLY_STRING)
        return AUTH_DENIED;
    if (!(rec = json_loads(rep->str, 0, NULL)))
        return AUTH_DENIED;
    if (app)
        *app = public_view(rec);
    json_decref(rec);
    return AUTH_OK;
}

int
auth_app_get(struct store *st, const char *prefix, const char *id, json_t **app)
{
    char base[96], err[256];
    redisReply *rep;
    int rc;

    *app = NULL;
    if (!valid_id(id))
        return AUTH_DENIED;
    auth_base(base, sizeof base, prefix);
    rep = store_command(st, "HGET %s:apps %s", base, id);
    if ((rc = reply_rc(st, rep, err, sizeof err)) == AUTH_OK)
        rc = record_reply(rep, app);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int
auth_app_delete(struct store *st, const char *prefix, const char *id, json_t **app)
{
    char base[96], err[256];
    const char *argv[2];
    redisReply *rep;
    int rc;

    if (app)
        *app = NULL;
    if (!valid_id(id))
        return AUTH_DENIED;
    auth_base(base, sizeof base, prefix);
    argv[0] = base;
    argv[1] = id;
    rep = store_eval(st, S_APP_DELETE, 1, 2, argv, NULL);
    if ((rc = reply_rc(st, rep, err, sizeof err)) == AUTH_OK)
        rc = record_reply(rep, app);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* ---- HTTP ---- */

const char *
auth_request_key(struct http_req *r)
{
    const char *k = http_header(r, "x-api-key");

    if (k && *k)
        return k;
    k = http_header(r, "Authorization");
    if (!k || strncasecmp(k, "Bearer ", 7) != 0)
        return NULL;
    for (k += 7; *k == ' '; k++)
        ;
    return *k ? k : NULL;
}

/* unavailable answers 503 for a Redis failure. */
static enum MHD_Result
unavailable(struct http_req *r, int rc, const char *err)
{
    if (rc == AUTH_UNAVAILABLE)
        return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Redis is unavailable (%s).",
                          err && *err ? err : "not connected");
    return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Redis refused the command: %s",
                      err && *err ? err : "an error reply (see the jqrun log)");
}

int
auth_check_request(struct http_req *r, struct store *st, const struct config *c,
                   enum MHD_Result *ret)
{
    const char *key;
    struct auth_who who;
    char err[256] = "", secs[24];
    int rc;

    r->app[0] = '\0';
    if (!c->master_key)
        return 0;
    if (!(key = auth_request_key(r))) {
        *ret = http_error_header(r, MHD_HTTP_UNAUTHORIZED, "WWW-Authenticate", "Bearer",
                                 "Missing API key: send it in the x-api-key header "
                                 "(or as Authorization: Bearer <key>).");
        return 1;
    }
    rc = auth_identify(st, c, key, &who, err, sizeof err);
    if (rc == AUTH_DENIED) {
        *ret = http_error_header(r, MHD_HTTP_UNAUTHORIZED, "WWW-Authenticate", "Bearer",
                                 "Invalid or revoked API key.");
        return 1;
    }
    if (rc == AUTH_LIMITED) {
        int64_t s = (who.retry_ms + 999) / 1000;
        snprintf(secs, sizeof secs, "%" PRId64, s > 0 ? s : 1);
        *ret = http_error_header(r, MHD_HTTP_TOO_MANY_REQUESTS, "Retry-After", secs,
                                 "Rate limit of %d requests per %" PRId64 " ms exceeded for "
                                 "this API key; retry in %s s.",
                                 c->rate_limit_requests, c->rate_limit_per, secs);
        return 1;
    }
    if (rc != AUTH_OK) {
        *ret = unavailable(r, rc, err);
        return 1;
    }
    if (!who.master && r->route && (r->route->flags & HTTP_MASTER)) {
        *ret = http_error(r, MHD_HTTP_FORBIDDEN,
                          "%s %.100s needs the master key; an application key cannot call it.",
                          r->method, r->url);
        return 1;
    }
    snprintf(r->app, sizeof r->app, "%s", who.app);
    return 0;
}

/* name_length counts the characters (UTF-8 code points) of s. */
static size_t
name_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* parse_app_body checks POST /applications' body; 0, or -1 having
 * answered 400. */
static int
parse_app_body(struct http_req *r, const char **name, json_t **settings, enum MHD_Result *ret)
{
    const char *k;
    json_t *v;

    if (!json_is_object(r->json)) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "Request body must be a JSON object.");
        return -1;
    }
    json_object_foreach(r->json, k, v) {
        if (strcmp(k, "name") != 0 && strcmp(k, "settings") != 0) {
            *ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                              "unknown field '%.100s' (known: name, settings)", k);
            return -1;
        }
    }
    v = json_object_get(r->json, "name");
    *name = json_string_value(v);
    if (!*name || !**name || name_length(*name) > AUTH_NAME_MAX ||
        strlen(*name) != json_string_length(v)) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST,
                          "'name' is required: a string of 1 to %d characters", AUTH_NAME_MAX);
        return -1;
    }
    *settings = json_object_get(r->json, "settings");
    if (*settings && !json_is_null(*settings) && !json_is_object(*settings)) {
        *ret = http_error(r, MHD_HTTP_BAD_REQUEST, "'settings' must be an object");
        return -1;
    }
    return 0;
}

enum MHD_Result
auth_post_application(struct http_req *r, struct store *st, const struct config *c)
{
    char key[AUTH_KEY_LEN + 1], err[256] = "";
    const char *name;
    json_t *settings, *app = NULL, *out;
    enum MHD_Result ret;
    int rc;

    if (parse_app_body(r, &name, &settings, &ret) < 0)
        return ret;
    if (!st)
        return unavailable(r, AUTH_UNAVAILABLE, NULL);
    rc = auth_app_create(st, c->prefix, name, settings, &app, key, err, sizeof err);
    if (rc != AUTH_OK)
        return unavailable(r, rc, err);
    /* The key goes out once, here; only its hash stays in Redis. */
    out = json_pack("{s:O, s:O, s:s}", "id", json_object_get(app, "id"), "name",
                    json_object_get(app, "name"), "apiKey", key);
    json_object_update_missing(out, app);
    log_info("auth: application %s created", json_string_value(json_object_get(app, "id")));
    json_decref(app);
    OPENSSL_cleanse(key, sizeof key);
    return http_json(r, MHD_HTTP_CREATED, out);
}

enum MHD_Result
auth_list_applications(struct http_req *r, struct store *st, const struct config *c)
{
    json_t *apps = NULL;
    int rc;

    if (!st)
        return unavailable(r, AUTH_UNAVAILABLE, NULL);
    if ((rc = auth_app_list(st, c->prefix, &apps)) != AUTH_OK)
        return unavailable(r, rc, st->err);
    return http_json(r, MHD_HTTP_OK,
                     json_pack("{s:o, s:I}", "applications", apps, "count",
                               (json_int_t)json_array_size(apps)));
}

static enum MHD_Result
app_not_found(struct http_req *r, const char *id)
{
    return http_error(r, MHD_HTTP_NOT_FOUND, "Application with ID '%.100s' not found.", id);
}

enum MHD_Result
auth_get_application(struct http_req *r, struct store *st, const struct config *c)
{
    json_t *app = NULL;
    int rc;

    if (!st)
        return unavailable(r, AUTH_UNAVAILABLE, NULL);
    rc = auth_app_get(st, c->prefix, r->params[0], &app);
    if (rc == AUTH_DENIED)
        return app_not_found(r, r->params[0]);
    if (rc != AUTH_OK)
        return unavailable(r, rc, st->err);
    return http_json(r, MHD_HTTP_OK, app);
}

enum MHD_Result
auth_delete_application(struct http_req *r, struct store *st, const struct config *c)
{
    const char *id = r->params[0];
    json_t *app = NULL;
    char msg[160];
    int rc;

    if (!st)
        return unavailable(r, AUTH_UNAVAILABLE, NULL);
    rc = auth_app_delete(st, c->prefix, id, &app);
    if (rc == AUTH_DENIED)
        return app_not_found(r, id);
    if (rc != AUTH_OK)
        return unavailable(r, rc, st->err);
    log_info("auth: application %s deleted; its key is revoked", id);
    snprintf(msg, sizeof msg, "Application '%s' was deleted; its API key no longer works.", id);
    return http_json(r, MHD_HTTP_OK, json_pack("{s:s, s:o}", "message", msg, "application", app));
}
