/* scheduler.c — one thread per process: every TICK_MS it promotes due
 * delayed jobs and reclaims expired leases in every queue; less often it
 * refreshes the queue list and trims retention. */
#include <pthread.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "queue.h"
#include "scheduler.h"
#include "util.h"

#define TICK_MS 50          /* promotion accuracy of delayed jobs */
#define RECLAIM_EVERY 4     /* ticks between lease reclaims */
#define TRIM_EVERY 40       /* ticks between retention trims */
#define BATCH 1000          /* jobs moved per script call (bounds Redis time) */

struct scheduler {
    const struct config *c;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

/* duty runs one duty until it moves less than a full batch. */
static void
duty(struct store *st, const struct config *c, const char *q,
     int (*fn)(struct store *, const char *, const char *, int), const char *what)
{
    int n;
    do {
        n = fn(st, c->prefix, q, BATCH);
        if (n > 0)
            log_debug("scheduler: %s %d jobs of queue %s", what, n, q);
    } while (n == BATCH);
}

static void *
scheduler_main(void *arg)
{
    struct scheduler *s = arg;
    const struct config *c = s->c;
    char err[256];
    struct store *st = store_open(c->redis, err, sizeof err);
    char **names = NULL;
    int n = 0;

    if (!st) {
        log_error("scheduler: %s", err);
        return NULL;
    }
    for (unsigned tick = 0;; tick++) {
        struct timespec ts;
        pthread_mutex_lock(&s->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!s->stop)
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        if (tick % 20 == 0 || n <= 0) {
            queue_names_free(names, n > 0 ? n : 0);
            names = NULL;
            n = queue_names(st, c->prefix, &names);
            if (n < 0) {
                n = 0;
                continue;
            }
        }
        for (int i = 0; i < n; i++) {
            duty(st, c, names[i], queue_promote, "promoted");
            if (tick % RECLAIM_EVERY == 0)
                duty(st, c, names[i], queue_reclaim, "reclaimed");
            if (tick % TRIM_EVERY == 0) {
                int t;
                while ((t = queue_trim(st, c->prefix, names[i], c, BATCH)) == BATCH)
                    ;
            }
        }
    }
    queue_names_free(names, n > 0 ? n : 0);
    store_close(st);
    return NULL;
}

struct scheduler *
scheduler_start(const struct config *c)
{
    struct scheduler *s = xcalloc(1, sizeof *s);
    s->c = c;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

void
scheduler_stop(struct scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
