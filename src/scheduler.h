/* scheduler.h — the periodic duties every jqrun process runs: promote due
 * delayed jobs, take back expired leases, trim finished jobs.  Every duty
 * is an atomic script, so any number of processes may run them at once. */
#ifndef JQ_SCHEDULER_H
#define JQ_SCHEDULER_H

struct config;
struct scheduler;

/* scheduler_start starts the scheduler thread for every queue in Redis
 * (P:queues).  c->redis must be the resolved URL.  NULL on failure. */
struct scheduler *scheduler_start(const struct config *c);
void scheduler_stop(struct scheduler *s);

#endif
