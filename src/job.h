/* job.h — a job as requested (job_spec, validated from JSON) and a job as
 * stored (a Redis hash, rendered back to the API's JSON shape). */
#ifndef JQ_JOB_H
#define JQ_JOB_H

#include <stdint.h>
#include <jansson.h>
#include <hiredis/hiredis.h>

#define JOB_PRIORITY_MIN -10
#define JOB_PRIORITY_MAX 10
#define JOB_ATTEMPTS_MAX 100
#define JOB_BULK_MAX 1000

/* job_spec is one validated enqueue request.  Strings are malloc'd and owned
 * by the spec (job_spec_free).  Zero / NULL means "not given". */
struct job_spec {
    char    id[37];        /* UUID v4, made by job_spec_from_json */
    char   *type;          /* required */
    char   *queue;         /* default "default" */
    char   *payload;       /* JSON object text, required */
    char   *metadata;      /* flat JSON object text, or NULL */
    int     priority;      /* -10..10 */
    int64_t run_at;        /* ms since epoch; 0 = now */
    int     max_attempts;  /* 1..100; 0 = not given */
    int64_t backoff;       /* ms; -1 = not given */
    char    strategy[16];  /* "exponential" | "fixed" | "" (not given) */
    int64_t timeout;       /* ms; 0 = not given */
    char   *webhooks;      /* JSON {completed,failed,progress,"*": {url,headers}}, or NULL */
    char   *idem_key;      /* idempotencyKey, or NULL */
    char   *app;           /* owning application id, or NULL */
};

/* job_spec_from_json validates one POST /jobs body against DESIGN.md and
 * fills spec (with a fresh id).  Unknown fields are errors.  Returns 0, or
 * -1 with err naming the field, e.g. "'priority' must be an integer between
 * -10 and 10".  now is the current time in ms (for delay). */
int job_spec_from_json(json_t *body, int64_t now, struct job_spec *spec,
                       char *err, size_t errlen);
void job_spec_free(struct job_spec *spec);

/* job_spec_to_json renders the fields the enqueue script stores, as one JSON
 * object text (malloc'd).  defaults fill what the spec leaves out. */
char *job_spec_encode(const struct job_spec *spec, int64_t now, int default_attempts,
                      int64_t default_backoff);

/* job_from_reply turns a flat [field, value, ...] reply (HGETALL or a
 * script's) into the API's job object: numbers as numbers, JSON fields
 * embedded, the lease token left out unless with_token.  NULL if the reply
 * is not such an array or is empty.  Caller json_decref's it. */
json_t *job_from_reply(const redisReply *r, int with_token);

/* job_meta_matches tells whether metadata (a job's flat object) holds every
 * K: V of filter, comparing as text since filters come from query strings
 * (3 matches "3", true matches "true").  An empty or NULL filter matches. */
int job_meta_matches(json_t *metadata, json_t *filter);

/* backoff_delay is the wait before retry number `attempt` (1-based: the
 * attempt that just failed): exponential doubles `base` each attempt
 * (base * 2^(attempt-1)), fixed always waits base.  Capped at one day. */
int64_t backoff_delay(const char *strategy, int64_t base, int attempt);

#endif
