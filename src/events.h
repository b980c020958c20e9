/* events.h — following the per-queue event streams (P:{q}:events, one
 * entry per job transition: jobId, status, type, ts and, by transition,
 * attempt, error, runAt, progress, created) live: for GET /events (sse.h)
 * and `jqrun watch`.
 *
 * An event's id is its stream entry id ("<ms>-<seq>").  Ids of one Redis
 * grow with time across every stream, so one id is a resume point for all
 * the queues followed: reading resumes after it in each stream. */
#ifndef JQ_EVENTS_H
#define JQ_EVENTS_H

#include <jansson.h>

#include "config.h"
#include "store.h"

/* ev_filter selects events; NULL fields select everything. */
struct ev_filter {
    const char *queue;   /* one queue (the stored name), NULL = every queue */
    const char *type;    /* job type */
    const char *status;  /* comma-separated statuses, e.g. "completed,failed" */
    const char *app;     /* an application: only its queues, named as it
                            knows them (see auth.h); NULL or "" = all */
};

struct ev_reader;

/* ev_reader_new follows the streams of prefix from after event id `since`
 * (NULL: from now on).  The filter's strings are copied.  Never NULL. */
struct ev_reader *ev_reader_new(const char *prefix, const struct ev_filter *f,
                                const char *since);
void ev_reader_free(struct ev_reader *er);

/* ev_reader_read waits up to block_ms for events and appends the ones the
 * filter selects to out (a JSON array) as {id, queue, jobId, status, type,
 * timestamp, attempt?, error?, runAt?, progress?, created?}, oldest first.
 * Returns how many it appended (0 after a quiet wait), or -1 when Redis
 * failed (st->err says why; call again to retry). */
int ev_reader_read(struct ev_reader *er, struct store *st, int block_ms, json_t *out);

/* ev_status_ok tells whether s is a comma-separated list of known
 * statuses (waiting, delayed, processing, progress, completed, failed,
 * canceled; "active" for processing). */
int ev_status_ok(const char *s);

/* events_cmd_watch is `jqrun watch [--queue Q] [--type T] [--status S]`:
 * prints one line per transition until interrupted.  Exit code 1 when
 * Redis is unreachable at start, 2 on a usage error. */
int events_cmd_watch(const struct config *c, int argc, char **argv);

#endif
