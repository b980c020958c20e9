/* metrics.h — process-local counters and histograms, rendered with the
 * queue gauges (read from Redis) as Prometheus text by GET /metrics.
 * Every function is thread-safe and cheap (atomics or a short lock). */
#ifndef JQ_METRICS_H
#define JQ_METRICS_H

#include "util.h"

/* metrics_job records one job event of queue/type: event is "enqueued",
 * "completed", "failed", "retried" or "canceled". */
void metrics_job(const char *queue, const char *type, const char *event);
/* metrics_job_runtime observes a handler's run time in seconds. */
void metrics_job_runtime(const char *queue, const char *type, double seconds);
/* metrics_http observes one HTTP request (status code, seconds). */
void metrics_http(int status, double seconds);
/* metrics_redis_error counts a failed Redis call (connection or error). */
void metrics_redis_error(void);
/* metrics_lease_rejected counts a complete/fail/heartbeat refused because
 * its lease token was stale (the job had been taken back). */
void metrics_lease_rejected(void);
/* metrics_render appends the process metrics in Prometheus text format. */
void metrics_render(struct strbuf *out);

#endif
