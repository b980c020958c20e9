/* auth.h — applications, their API keys, and who may do what (seed 002).
 *
 * With auth.master_key set, every request but GET /health carries a key in
 * `x-api-key` (or `Authorization: Bearer <key>`): the master key, or the key
 * of an application made with POST /applications.  Keys are "jq_" + 64 hex
 * digits (32 random bytes); jqrun stores only their SHA-256 and compares
 * digests with CRYPTO_memcmp.  Nothing is cached in the process: each
 * request runs lua/auth.lua once (key lookup + token bucket, atomic), so a
 * revoked key is refused by the next request on every jqrun process.
 *
 * Redis (P = config prefix; "@" cannot occur in a queue name, so these
 * keys never meet a queue's, and the one hash tag keeps them in one slot):
 *   P:{@auth}:apps        hash  app id -> JSON {id, name, settings,
 *                               createdAt, keyHash}
 *   P:{@auth}:keys        hash  SHA-256 hex of a key -> app id
 *   P:{@auth}:rl:<sha>    hash  token bucket {tokens, ts} of one key,
 *                               expiring once it would be full again
 *
 * Isolation: an application's queues live in a namespace of their own.
 * Its queue "emails" is stored as the queue "app.<id>.emails", so every
 * per-queue structure (indexes, counts, idempotency keys, event streams)
 * is private to it without further checks; the API adds the namespace to
 * every queue name an application sends and strips it from every answer.
 * A job id lookup finds the job's queue and answers 404 when it lies
 * outside the caller's namespace; jobs also record the `app` that created
 * them.  The master key (and an open API) sees internal names as they are.
 * Workers serve internal names: configure `queues = { ["app.<id>.emails"]
 * = { concurrency = 2 } }` to run an application's queue. */
#ifndef JQ_AUTH_H
#define JQ_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "http.h"
#include "job.h"
#include "store.h"

#define AUTH_KEY_LEN    67  /* "jq_" + 64 hex digits */
#define AUTH_APP_ID_LEN 16  /* hex digits */
#define AUTH_NS_LEN     (4 + AUTH_APP_ID_LEN + 1) /* "app." id "." */
#define AUTH_NAME_MAX   200 /* characters of an application's name */

/* Results of the Redis-side calls. */
enum auth_status {
    AUTH_OK          = 0,
    AUTH_DENIED      = -1, /* unknown or revoked key; unknown application */
    AUTH_LIMITED     = -2, /* over the key's rate limit */
    AUTH_UNAVAILABLE = -3, /* Redis unreachable */
    AUTH_REDIS       = -4, /* Redis answered an error */
};

/* auth_digest writes the SHA-256 of key into out.  0, or -1 when OpenSSL
 * fails (out of memory). */
int auth_digest(const char *key, unsigned char out[32]);

/* auth_key_matches tells (1/0) whether key's digest equals want, in time
 * that does not depend on where they differ.  0 too when hashing fails. */
int auth_key_matches(const char *key, const unsigned char want[32]);

/* auth_new_key writes a fresh key "jq_<64 hex>" into out.  0, or -1 when
 * the random generator fails. */
int auth_new_key(char out[AUTH_KEY_LEN + 1]);

/* auth_namespace writes "app.<app>." into out. */
void auth_namespace(const char *app, char out[AUTH_NS_LEN + 1]);

/* auth_queue_internal maps the queue name an application uses to the one
 * stored ("" app = the master key: unchanged) into out.  0, or -1 when the
 * result would be longer than a queue name may be (128). */
int auth_queue_internal(const char *app, const char *name, char out[129]);

/* auth_queue_external is the name application `app` knows internal queue
 * `q` by: a pointer into q, or NULL when q is not in its namespace.  For
 * app "" it is q itself. */
const char *auth_queue_external(const char *app, const char *q);

/* auth_job_view checks that the API job object belongs to `app` (its
 * queue in app's namespace, its `app` field, if any, equal) and rewrites
 * its queue to the external name.  0 visible, -1 not (answer 404).  Always
 * 0 for app "". */
int auth_job_view(const char *app, json_t *job);

/* auth_jobs_view applies auth_job_view to each job of a JSON array,
 * dropping the ones that are not visible. */
void auth_jobs_view(const char *app, json_t *jobs);

/* auth_scope_spec puts a validated job into app's namespace and records
 * app on it (nothing for app "").  0, or -1 with err naming 'queue' when
 * the name gets too long. */
int auth_scope_spec(const char *app, struct job_spec *spec, char *err, size_t errlen);

/* auth_scope_follow_up keeps a job that a handler enqueues (ctx.enqueue)
 * in the namespace of the job that enqueued it: when parent_queue is an
 * application's, spec's queue goes into the same namespace (unless it is
 * already there) and spec records the application.  0, or -1 with err
 * naming 'queue' when the name gets too long. */
int auth_scope_follow_up(const char *parent_queue, struct job_spec *spec, char *err,
                         size_t errlen);

/* auth_who is the result of auth_identify. */
struct auth_who {
    int     master;                    /* 1 for the master key */
    char    app[AUTH_APP_ID_LEN + 1];  /* the application, "" for master */
    int64_t retry_ms;                  /* AUTH_LIMITED: when to come back */
};

/* auth_identify finds who holds key and takes one token of its rate limit
 * (c->rate_limit_*).  The master key is checked in the process (constant
 * time) and needs Redis only for its rate limit; st may be NULL then.
 * AUTH_OK with who filled, AUTH_DENIED, AUTH_LIMITED (who->retry_ms),
 * AUTH_UNAVAILABLE or AUTH_REDIS (err). */
int auth_identify(struct store *st, const struct config *c, const char *key,
                  struct auth_who *who, char *err, size_t errlen);

/* auth_app_create stores a new application and makes its key.  name: a
 * non-empty string; settings: an object or NULL (borrowed).  On AUTH_OK
 * *app is its public JSON (caller decrefs) and key its API key, which is
 * never stored.  AUTH_UNAVAILABLE / AUTH_REDIS with err otherwise. */
int auth_app_create(struct store *st, const char *prefix, const char *name,
                    json_t *settings, json_t **app, char key[AUTH_KEY_LEN + 1],
                    char *err, size_t errlen);

/* auth_app_list fills *apps with a JSON array of every application
 * (public view, oldest first).  AUTH_OK, AUTH_UNAVAILABLE or AUTH_REDIS. */
int auth_app_list(struct store *st, const char *prefix, json_t **apps);

/* auth_app_get loads one application's public view.  AUTH_OK, AUTH_DENIED
 * (no such application), AUTH_UNAVAILABLE or AUTH_REDIS. */
int auth_app_get(struct store *st, const char *prefix, const char *id, json_t **app);

/* auth_app_delete revokes application id (record, key and bucket in one
 * script); *app (may be NULL) gets what it was.  AUTH_OK, AUTH_DENIED,
 * AUTH_UNAVAILABLE or AUTH_REDIS. */
int auth_app_delete(struct store *st, const char *prefix, const char *id, json_t **app);

/* ---- HTTP ---- */

/* auth_request_key returns the key of a request: `x-api-key`, else the
 * token of `Authorization: Bearer <key>`; NULL when there is none. */
const char *auth_request_key(struct http_req *r);

/* auth_check_request is the body of the API's authorize hook (see
 * http_opts): with no master key configured it lets everything through;
 * otherwise it answers 401 (no key / unknown or revoked key), 429 with
 * Retry-After, 403 (an application key on an HTTP_MASTER route) or 503
 * (Redis down), or sets r->app and lets the route run.  st may be NULL
 * when the thread has no store.  Returns 0 to go on, 1 having answered. */
int auth_check_request(struct http_req *r, struct store *st, const struct config *c,
                       enum MHD_Result *ret);

/* The /applications routes (HTTP_MASTER): POST (201 with the key, shown
 * once), GET list, GET one, DELETE (revokes at once).  st NULL answers
 * 503. */
enum MHD_Result auth_post_application(struct http_req *r, struct store *st,
                                      const struct config *c);
enum MHD_Result auth_list_applications(struct http_req *r, struct store *st,
                                       const struct config *c);
enum MHD_Result auth_get_application(struct http_req *r, struct store *st,
                                     const struct config *c);
enum MHD_Result auth_delete_application(struct http_req *r, struct store *st,
                                        const struct config *c);

#endif
