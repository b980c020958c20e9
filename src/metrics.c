/* metrics.c — process-local Prometheus counters and histograms.
 *
 * Job series are keyed by (queue, type) in a small open-addressing table
 * under one mutex: every worker thread and API thread updates it, but an
 * update is a hash, a compare and a few additions, so the lock is held for
 * well under a microsecond.  The table is bounded (a user controls the job
 * types it sees), and series beyond the bound fold into one "_other" series
 * rather than growing memory without end. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

/* Job events, in the order of event_names. */
enum { EV_ENQUEUED, EV_COMPLETED, EV_FAILED, EV_RETRIED, EV_CANCELED, EV_COUNT };

static const char *const event_names[EV_COUNT] = {
    "enqueued", "completed", "failed", "retried", "canceled",
};
static const char *const event_help[EV_COUNT] = {
    "Jobs enqueued through this process.",
    "Jobs completed, as acknowledged by this process.",
    "Jobs failed for good (attempts exhausted or permanent failure).",
    "Failed attempts that were scheduled to run again.",
    "Jobs canceled through this process.",
};

/* Handler run times go from milliseconds (echo) to minutes (reports). */
static const double job_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
};
#define NJB (sizeof job_buckets / sizeof job_buckets[0])

/* API calls are sub-millisecond unless they long-poll (lease?wait=). */
static const double http_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
#define NHB (sizeof http_buckets / sizeof http_buckets[0])

#define MAX_SERIES 2048            /* distinct (queue, type) pairs kept */
#define TABLE_SIZE (2 * MAX_SERIES) /* open addressing, load <= 1/2 */
#define MAX_CODES 64               /* distinct HTTP status codes kept */

/* histogram counts observations per bucket (not cumulative: rendering
 * accumulates), plus the +Inf overflow in the last slot. */
struct histogram {
    uint64_t bucket[NJB > NHB ? NJB + 1 : NHB + 1];
    uint64_t count;
    double   sum;
};

struct job_series {
    char    *queue;
    char    *type;
    uint64_t events[EV_COUNT];
    struct histogram runtime;
};

struct code_series {
    int code;
    struct histogram latency;
};

static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER;
static struct job_series *job_table[TABLE_SIZE];
static struct job_series *job_order[MAX_SERIES + 1]; /* insertion order, for output */
static size_t njobs;
static struct job_series other_series = { .queue = (char *)"_other", .type = (char *)"_other" };

static pthread_mutex_t http_mu = PTHREAD_MUTEX_INITIALIZER;
static struct code_series codes[MAX_CODES];
static size_t ncodes;

static uint64_t redis_errors;
static uint64_t lease_rejected;

/* hash_pair is FNV-1a over "queue\0type". */
static uint32_t
hash_pair(const char *q, const char *t)
{
    uint32_t h = 2166136261u;
    for (const char *p = q; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0) * 16777619u;
    for (const char *p = t; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

/* series_get finds or adds the series of (q, t); job_mu must be held.
 * Never NULL: past MAX_SERIES everything lands in other_series. */
static struct job_series *
series_get(const char *q, const char *t)
{
    uint32_t i = hash_pair(q, t) % TABLE_SIZE;
    struct job_series *s;

    for (; job_table[i]; i = (i + 1) % TABLE_SIZE) {
        s = job_table[i];
        if (strcmp(s->queue, q) == 0 && strcmp(s->type, t) == 0)
            return s;
    }
    if (njobs >= MAX_SERIES)
        return &other_series;
    s = xcalloc(1, sizeof *s);
    s->queue = xstrdup(q);
    s->type = xstrdup(t);
    job_table[i] = s;
    job_order[njobs++] = s;
    return s;
}

/* observe adds one value to a histogram with the given bucket bounds. */
static void
observe(struct histogram *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    h->bucket[i]++; /* i == nb is the +Inf overflow */
    h->count++;
    h->sum += v;
}

void
metrics_job(const char *queue, const char *type, const char *event)
{
    int ev;
    for (ev = 0; ev < EV_COUNT && strcmp(event_names[ev], event) != 0; ev++)
        ;
    if (ev == EV_COUNT || !queue || !type)
        return;
    pthread_mutex_lock(&job_mu);
    series_get(queue, type)->events[ev]++;
    pthread_mutex_unlock(&job_mu);
}

void
metrics_job_runtime(const char *queue, const char *type, double seconds)
{
    if (!queue || !type || seconds < 0)
        return;
    pthread_mutex_lock(&job_mu);
    observe(&series_get(queue, type)->runtime, job_buckets, NJB, seconds);
    pthread_mutex_unlock(&job_mu);
}

void
metrics_http(int status, double seconds)
{
    size_t i;
    if (seconds < 0)
        seconds = 0;
    pthread_mutex_lock(&http_mu);
    for (i = 0; i < ncodes && codes[i].code != status; i++)
        ;
    if (i == ncodes && ncodes < MAX_CODES)
        codes[ncodes++].code = status;
    if (i < ncodes)
        observe(&codes[i].latency, http_buckets, NHB, seconds);
    pthread_mutex_unlock(&http_mu);
}

void
metrics_redis_error(void)
{
    __atomic_fetch_add(&redis_errors, 1, __ATOMIC_RELAXED);
}

void
metrics_lease_rejected(void)
{
    __atomic_fetch_add(&lease_rejected, 1, __ATOMIC_RELAXED);
}

/* label_value appends s escaped as a Prometheus label value. */
static void
label_value(struct strbuf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sb_printf(out, "\\%c", *s);
        else if (*s == '\n')
            sb_puts(out, "\\n");
        else
            sb_append(out, s, 1);
    }
}

static void
family(struct strbuf *out, const char *name, const char *type, const char *help)
{
    sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* histogram_lines writes the _bucket/_sum/_count lines of one series;
 * labels is the text inside the braces ("" or `a="b",`-terminated). */
static void
histogram_lines(struct strbuf *out, const char *name, const char *labels,
                const struct histogram *h, const double *bounds, size_t nb)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < nb; i++) {
        cum += h->bucket[i];
        sb_printf(out, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, bounds[i],
                  (unsigned long long)cum);
    }
    cum += h->bucket[nb];
    sb_printf(out, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    /* {a="b",} is not valid text format: drop the trailing comma. */
    if (*labels) {
        size_t n = strlen(labels);
        sb_printf(out, "%s_sum{%.*s} %.9g\n", name, (int)(n - 1), labels, h->sum);
        sb_printf(out, "%s_count{%.*s} %llu\n", name, (int)(n - 1), labels,
                  (unsigned long long)h->count);
    } else {
        sb_printf(out, "%s_sum %.9g\n", name, h->sum);
        sb_printf(out, "%s_count %llu\n", name, (unsigned long long)h->count);
    }
}

/* series_labels writes `queue="q",type="t",` into a fresh buffer. */
static void
series_labels(struct strbuf *lb, const struct job_series *s)
{
    lb->len = 0;
    sb_puts(lb, "queue=\"");
    label_value(lb, s->queue);
    sb_puts(lb, "\",type=\"");
    label_value(lb, s->type);
    sb_puts(lb, "\",");
}

static void
render_jobs(struct strbuf *out)
{
    struct strbuf lb = { 0 };
    size_t n;

    pthread_mutex_lock(&job_mu);
    n = njobs;
    /* other_series is listed only once something fell into it. */
    if (other_series.runtime.count || other_series.events[EV_ENQUEUED] ||
        other_series.events[EV_COMPLETED] || other_series.events[EV_FAILED] ||
        other_series.events[EV_RETRIED] || other_series.events[EV_CANCELED])
        job_order[n++] = &other_series;
    for (int ev = 0; ev < EV_COUNT; ev++) {
        char name[64];
        snprintf(name, sizeof name, "jqrun_jobs_%s_total", event_names[ev]);
        family(out, name, "counter", event_help[ev]);
        for (size_t i = 0; i < n; i++) {
            series_labels(&lb, job_order[i]);
            sb_printf(out, "%s{%.*s} %llu\n", name, (int)lb.len - 1, lb.buf,
                      (unsigned long long)job_order[i]->events[ev]);
        }
    }
    family(out, "jqrun_job_duration_seconds", "histogram",
           "Run time of handlers (seconds), by queue and type.");
    for (size_t i = 0; i < n; i++) {
        series_labels(&lb, job_order[i]);
        histogram_lines(out, "jqrun_job_duration_seconds", lb.buf, &job_order[i]->runtime,
                        job_buckets, NJB);
    }
    pthread_mutex_unlock(&job_mu);
    sb_free(&lb);
}

static void
render_http(struct strbuf *out)
{
    family(out, "jqrun_http_request_duration_seconds", "histogram",
           "Time to answer REST API requests (seconds), by status code.");
    pthread_mutex_lock(&http_mu);
    for (size_t i = 0; i < ncodes; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "code=\"%d\",", codes[i].code);
        histogram_lines(out, "jqrun_http_request_duration_seconds", labels,
                        &codes[i].latency, http_buckets, NHB);
    }
    pthread_mutex_unlock(&http_mu);
}

void
metrics_render(struct strbuf *out)
{
    render_jobs(out);
    render_http(out);
    family(out, "jqrun_redis_errors_total", "counter",
           "Redis calls that failed (connection lost or error reply).");
    sb_printf(out, "jqrun_redis_errors_total %llu\n",
              (unsigned long long)__atomic_load_n(&redis_errors, __ATOMIC_RELAXED));
    family(out, "jqrun_lease_rejected_total", "counter",
           "Heartbeats, completions and failures refused for a stale lease token.");
    sb_printf(out, "jqrun_lease_rejected_total %llu\n",
              (unsigned long long)__atomic_load_n(&lease_rejected, __ATOMIC_RELAXED));
}
