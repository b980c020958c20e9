/* queue.h — the job lifecycle: each function is one atomic script (lua/)
 * on the queue's keys.
 *
 * Redis key layout (P = config prefix, default "jq"; {q} is the queue name
 * as a hash tag, so every key of one queue lives in one cluster slot):
 *   P:{q}:job:<id>   hash   the job (fields as in the API, JSON ones as text)
 *   P:{q}:wait       zset   waiting ids; score (10-priority)*2^47 + seq, so
 *                           ZPOPMIN takes the highest priority, FIFO within
 *   P:{q}:delayed    zset   delayed ids by runAt (ms)
 *   P:{q}:active     zset   processing ids by lease deadline (ms)
 *   P:{q}:completed  zset   by completedAt;  P:{q}:failed, P:{q}:canceled
 *                           the same by failedAt / updatedAt
 *   P:{q}:meta       hash   seq (FIFO counter), paused (0/1)
 *   P:{q}:idem       hash   idempotencyKey -> id
 *   P:{q}:notify     list   at most one token: wakes a blocked fetcher
 *   P:{q}:events     stream every transition (jobId, status, type, ts, ...)
 *   P:{q}:stats      hash   counters: enqueued, completed, failed, retried...
 *   P:queues         set    every queue name ever used (outside the tag:
 *                           written with a plain SADD, read by listings)
 */
#ifndef JQ_QUEUE_H
#define JQ_QUEUE_H

#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "job.h"
#include "store.h"

/* Results of queue operations. */
enum qstatus {
    Q_OK          = 0,
    Q_NOTFOUND    = -1, /* no such job */
    Q_CONFLICT    = -2, /* the job's state forbids it; the state is reported */
    Q_BADTOKEN    = -3, /* lease token wrong or expired */
    Q_UNAVAILABLE = -4, /* Redis unreachable */
    Q_REDIS       = -5, /* Redis answered an error (e.g. OOM); see err */
};

/* queue_names fills a malloc'd array of malloc'd queue names (P:queues),
 * sorted.  Returns the count, or Q_UNAVAILABLE / Q_REDIS. */
int queue_names(struct store *st, const char *prefix, char ***names);
void queue_names_free(char **names, int n);

/* enq_result is what an enqueue answers for one job. */
struct enq_result {
    char    id[37];
    char    status[16];  /* "waiting" | "delayed" (or the state of the
                            existing job when existed) */
    int64_t created_at;
    int     existed;     /* 1 when idempotencyKey matched an earlier job */
    char    type[129];   /* the stored job's type (the earlier job's when existed) */
};

/* queue_enqueue stores n validated jobs.  Jobs of one queue go in one
 * atomic script call (all or nothing); specs may name several queues.
 * Returns Q_OK, Q_UNAVAILABLE or Q_REDIS with err set. */
int queue_enqueue(struct store *st, const char *prefix, int default_attempts,
                  int64_t default_backoff, const struct job_spec *specs, int n,
                  struct enq_result *res, char *err, size_t errlen);

/* queue_locate finds the queue of job id (probing every known queue in one
 * pipeline).  Q_OK with qname filled, Q_NOTFOUND, Q_UNAVAILABLE. */
int queue_locate(struct store *st, const char *prefix, const char *id,
                 char qname[129]);

/* queue_get loads a job as the API's JSON object into *job. */
int queue_get(struct store *st, const char *prefix, const char *id, json_t **job);

/* queue_cancel cancels a waiting or delayed job.  Q_CONFLICT with the
 * current state in state[16]; on Q_OK *job (if not NULL) is the job after. */
int queue_cancel(struct store *st, const char *prefix, const char *id,
                 char state[16], json_t **job);

/* queue_retry moves a failed or canceled job back to waiting (attempts
 * start over).  Q_CONFLICT with the current state otherwise. */
int queue_retry(struct store *st, const char *prefix, const char *id,
                char state[16], json_t **job);

/* leased is one job taken by a worker. */
struct leased {
    json_t *job;          /* the API's job object (with id, type, payload...) */
    char    id[37];
    char    queue[129];
    char    token[80];    /* lease token: the proof that this lease is ours */
    int64_t expires_at;   /* lease deadline, ms since epoch */
    char   *payload;      /* the payload's JSON text as stored (malloc'd) */
    char   *metadata;     /* the metadata's JSON text, or NULL */
};

/* queue_lease takes up to max waiting jobs of queue q (none if paused),
 * moving them to processing with a lease of lease_ms.  Returns the count
 * (>= 0) with out[0..count) filled, or Q_UNAVAILABLE / Q_REDIS. */
int queue_lease(struct store *st, const char *prefix, const char *q, int max,
                int64_t lease_ms, struct leased *out, char *err, size_t errlen);
void leased_free(struct leased *l);

/* queue_wait blocks up to timeout_ms for the queue's notify token (a job
 * may be waiting).  1 woken, 0 timed out, Q_UNAVAILABLE. */
int queue_wait(struct store *st, const char *prefix, const char *q, int timeout_ms);

/* queue_extend_many extends the leases of n jobs of queue q in one call:
 * expires_at[k] is the new deadline of ids[k], or 0 where the lease is no
 * longer ours.  Q_OK, or Q_UNAVAILABLE / Q_REDIS (all 0 then). */
int queue_extend_many(struct store *st, const char *prefix, const char *q, int n,
                      const char *const *ids, const char *const *tokens, int64_t lease_ms,
                      int64_t *expires_at);

/* queue_extend extends the lease of a job we hold.  Q_OK or Q_BADTOKEN. */
int queue_extend(struct store *st, const char *prefix, const char *q, const char *id,
                 const char *token, int64_t lease_ms, int64_t *expires_at);

/* outcome is how one attempt ended, for queue_finish. */
struct outcome {
    const char *queue;
    const char *id;
    const char *token;
    int         ok;           /* 1 completed, 0 failed */
    const char *result;       /* JSON text when ok (may be NULL = null) */
    const char *error;        /* message when failed */
    const char *stack;        /* traceback when failed, or NULL */
    const char *logs;         /* JSON array of the last log lines, or NULL */
    int         permanent;    /* failed and must not be retried */
    int         max_attempts; /* effective limit; 0 = the job's own */
    int64_t     backoff;      /* effective base ms; -1 = the job's own */
    const char *strategy;     /* effective strategy; NULL = the job's own */
    int64_t     run_ms;       /* how long the handler ran */
    /* filled by queue_finish: */
    int         status;       /* Q_OK, Q_BADTOKEN, Q_NOTFOUND ... */
    char        state[16];    /* the job's new state: completed|delayed|failed */
};

/* queue_finish acknowledges n outcomes in one pipeline (one script call
 * each).  Returns Q_OK (each outcome's own status filled in) or
 * Q_UNAVAILABLE when the connection failed mid-way. */
int queue_finish(struct store *st, const char *prefix, int64_t keep_completed,
                 int64_t keep_failed, struct outcome *o, int n);

/* queue_release gives a job we hold back to waiting without counting the
 * attempt (graceful shutdown).  Q_OK or Q_BADTOKEN. */
int queue_release(struct store *st, const char *prefix, const char *q,
                  const char *id, const char *token);

/* queue_progress stores progress 0..100 on a job we hold (token required
 * unless NULL, which only trusted internal callers pass). */
int queue_progress(struct store *st, const char *prefix, const char *q,
                   const char *id, const char *token, int progress);

/* Scheduler duties: each moves at most `limit` jobs and returns how many
 * (>= 0), or a negative qstatus. */
int queue_promote(struct store *st, const char *prefix, const char *q, int limit);
int queue_reclaim(struct store *st, const char *prefix, const char *q, int limit);
int queue_trim(struct store *st, const char *prefix, const char *q,
               const struct config *c, int limit);

/* queue_pause sets or clears the paused flag (resume wakes fetchers). */
int queue_pause(struct store *st, const char *prefix, const char *q, int paused);

/* queue_remove deletes waiting and/or delayed jobs of queue q whose type is
 * `type` (NULL = any).  status is "waiting", "delayed" or NULL for both.
 * Returns the count removed, or a negative qstatus. */
int queue_remove(struct store *st, const char *prefix, const char *q,
                 const char *type, const char *status);

/* queue_counts fills counts per state of queue q into a JSON object
 * {waiting, delayed, processing, completed, failed, canceled, paused}. */
int queue_counts(struct store *st, const char *prefix, const char *q, json_t **counts);

/* The states in listing order, and their index keys. */
extern const char *const queue_states[6];

/* queue_list pages through the jobs of queue q in state `status` (NULL =
 * every state, in queue_states order), `limit` at a time, from cursor
 * (NULL = start).  Jobs whose type / metadata differ from the filters are
 * skipped (metadata filter: flat JSON object of K: "V", may be NULL).
 * *jobs gets a JSON array; *next a malloc'd cursor or NULL at the end. */
int queue_list(struct store *st, const char *prefix, const char *q,
               const char *status, const char *type, json_t *meta_filter,
               int limit, const char *cursor, json_t **jobs, char **next);

#endif
