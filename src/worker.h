/* worker.h — the worker pool: per queue, a fetcher thread that leases jobs
 * in batches and `concurrency` threads that run them, each with its own Lua
 * runtime; one keeper thread acknowledges outcomes in pipelines, extends
 * the leases of jobs still running and watches for stuck handlers. */
#ifndef JQ_WORKER_H
#define JQ_WORKER_H

#include <stdint.h>

struct config;
struct handlers;
struct workers;

/* workers_start starts serving every queue of c->queues.  c->redis must be
 * the resolved URL.  NULL with err on failure. */
struct workers *workers_start(const struct config *c, struct handlers *h,
                              char *err, size_t errlen);

/* workers_stop stops taking jobs, gives jobs not yet started back, lets
 * running handlers finish for up to grace_ms, then gives back what still
 * runs (without counting the attempt) and frees the pool. */
void workers_stop(struct workers *w, int64_t grace_ms);

#endif
