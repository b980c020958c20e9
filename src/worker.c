/* worker.c — running jobs: fetchers, worker threads and the keeper.
 *
 * Per queue, one fetcher thread leases jobs in batches (one EVALSHA for up
 * to `concurrency` jobs) into a local list, and blocks in Redis (BLPOP on
 * the queue's notify key) when there is nothing to lease, so an idle worker
 * burns no CPU.  `concurrency` worker threads take jobs from that list and
 * run them, each with its own Lua runtime.  Outcomes go to the keeper
 * thread, which acknowledges them in one pipeline, extends the leases of
 * jobs still held, and replaces worker threads stuck in a C call past
 * their deadline (the Lua hook cannot interrupt C code).
 *
 * Every job leased stays on its queue's `held` list until its outcome is
 * acknowledged, so the keeper keeps its lease alive until Redis knows. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "runtime.h"
#include "util.h"
#include "worker.h"

#define WATCHDOG_GRACE_MS 2000 /* past the timeout before a thread is replaced */
#define KEEPER_TICK_MS 20
#define BLOCK_MS 1000          /* one BLPOP wait; bounds shutdown latency */

struct workers;
struct qpool;

/* item is one leased job, from lease to acknowledgement. */
struct item {
    struct leased l;
    const char *type;             /* the job's type (inside l.job) */
    int refs;                     /* 1; 2 while a stuck thread and the
                                     watchdog's ack both hold it (atomic) */
    struct item *next;            /* in the to-run list */
    struct item *hprev, *hnext;   /* in the held list */
};

/* ack is an outcome waiting for the keeper to send it. */
struct ack {
    struct item   *it;
    struct qpool  *qp;
    struct outcome o;
    char *result, *error, *stack, *logs;
    char  strategy[16];
    char  type[129];
    double seconds;
    struct ack *next;
};

/* slot is one worker thread. */
struct slot {
    struct qpool   *qp;
    pthread_t       thread;
    struct runtime *rt;
    struct store   *st;       /* opened on first ctx.progress/ctx.enqueue */
    /* guarded by qp->mu: */
    struct item    *job;      /* running, or NULL */
    int64_t         deadline; /* mono ms after which the watchdog acts */
    int64_t         timeout;  /* the job's effective timeout, ms */
    int64_t         started;  /* mono ms */
    int             abandoned;
};

/* tcount tracks one job type's running jobs in a queue, against the
 * `concurrency` option of its handler (0 = no limit of its own). */
struct tcount {
    char type[129];
    int  running;
    int  limit;
    int64_t learned; /* mono ms the limit was read from the handler; 0 never */
};

#define MAX_TYPES 64
#define LIMIT_TTL_MS 1000

struct qpool {
    struct workers *w;
    const char     *name;
    int             concurrency;
    pthread_t       fetcher;
    pthread_mutex_t mu;
    pthread_cond_t  work_cv;  /* jobs to run, or stopping */
    pthread_cond_t  room_cv;  /* room to lease more, or stopping */
    struct item    *head, *tail;
    struct item    *held;
    int             nheld;
    struct slot   **slots;
    struct tcount   types[MAX_TYPES];
    int             ntypes;
    int             new_types;  /* a type without a known limit arrived */
    int64_t         learn_due;  /* mono ms when limits are re-read */
};

struct workers {
    const struct config *c;
    struct handlers *h;
    struct qpool     q[CONFIG_MAX_QUEUES];
    int              nq;
    volatile int     stopping;
    pthread_mutex_t  amu;
    pthread_cond_t   acv;
    struct ack      *acks, *acks_tail;
    int              keeper_stop;
    int64_t          give_up;  /* mono ms: stop retrying acks at exit */
    pthread_t        keeper;
    struct store    *kst;     /* the keeper's connection */
};

static void *worker_main(void *arg);

/* ---- held list (qp->mu held) ---- */

static void
held_add(struct qpool *qp, struct item *it)
{
    it->hprev = NULL;
    it->hnext = qp->held;
    if (qp->held)
        qp->held->hprev = it;
    qp->held = it;
    qp->nheld++;
}

static void
held_remove(struct qpool *qp, struct item *it)
{
    if (it->hprev)
        it->hprev->hnext = it->hnext;
    else
        qp->held = it->hnext;
    if (it->hnext)
        it->hnext->hprev = it->hprev;
    qp->nheld--;
}

static void
item_free(struct item *it)
{
    leased_free(&it->l);
    free(it);
}

/* item_release drops one reference; the last one frees the item. */
static void
item_release(struct item *it)
{
    if (__atomic_sub_fetch(&it->refs, 1, __ATOMIC_ACQ_REL) == 0)
        item_free(it);
}

static struct tcount *tcount_of(struct qpool *qp, const char *type);

/* ---- fetcher ---- */

static void *
fetcher_main(void *arg)
{
    struct qpool *qp = arg;
    struct workers *w = qp->w;
    const struct config *c = w->c;
    /* Hold at most twice the concurrency (at least 8): one running and one
     * ready per thread, so a thread finishing finds its next job without a
     * round trip, yet no process hoards many jobs that others could run.
     * Lease again only once half of that room is free, so each lease call
     * moves a batch rather than a job or two. */
    int cap = qp->concurrency * 2 < 8 ? 8 : qp->concurrency * 2;
    int want = (cap + 1) / 2;
    struct leased *buf = xcalloc((size_t)cap, sizeof *buf);
    char err[256];
    struct store *st = store_open(c->redis, err, sizeof err);

    if (!st) {
        log_error("worker %s: %s", qp->name, err);
        free(buf);
        return NULL;
    }
    while (!w->stopping) {
        int room, n;
        pthread_mutex_lock(&qp->mu);
        while (!w->stopping && cap - qp->nheld < want)
            pthread_cond_wait(&qp->room_cv, &qp->mu);
        room = cap - qp->nheld;
        pthread_mutex_unlock(&qp->mu);
        if (w->stopping)
            break;
        n = queue_lease(st, c->prefix, qp->name, room, c->lease, buf, err, sizeof err);
        if (n < 0) {
            metrics_redis_error();
            sleep_ms(100); /* the store backs off its reconnects itself */
            continue;
        }
        if (n == 0) {
            if (queue_wait(st, c->prefix, qp->name, BLOCK_MS) < 0)
                sleep_ms(100);
            continue;
        }
        pthread_mutex_lock(&qp->mu);
        for (int i = 0; i < n; i++) {
            struct item *it = xcalloc(1, sizeof *it);
            it->l = buf[i];
            it->refs = 1;
            it->type = json_string_value(json_object_get(it->l.job, "type")) ?: "";
            tcount_of(qp, it->type); /* a new type is flagged for learning */
            if (qp->tail)
                qp->tail->next = it;
            else
                qp->head = it;
            qp->tail = it;
            held_add(qp, it);
            /* One waiter per job: waking every idle thread for a batch
             * of two would only have them fight over the lock. */
            pthread_cond_signal(&qp->work_cv);
        }
        pthread_mutex_unlock(&qp->mu);
    }
    store_close(st);
    free(buf);
    return NULL;
}

/* ---- host callbacks for ctx.* ---- */

struct host_ud {
    struct slot *s;
    struct item *it;
};

static struct store *
slot_store(struct slot *s, char *err, size_t errlen)
{
    if (!s->st)
        s->st = store_open(s->qp->w->c->redis, err, errlen);
    return s->st;
}

static int
host_progress(void *ud, int pct, char *err, size_t errlen)
{
    struct host_ud *h = ud;
    const struct config *c = h->s->qp->w->c;
    struct store *st = slot_store(h->s, err, errlen);
    int rc;

    if (!st)
        return -1;
    rc = queue_progress(st, c->prefix, h->it->l.queue, h->it->l.id, h->it->l.token, pct);
    if (rc == Q_OK)
        return 0;
    snprintf(err, errlen, rc == Q_BADTOKEN ? "the job's lease was lost" : "redis unavailable");
    return -1;
}

static int
host_enqueue(void *ud, const char *type, const char *payload_json, const char *opts_json,
             char id_out[37], char *err, size_t errlen)
{
    struct host_ud *h = ud;
    const struct config *c = h->s->qp->w->c;
    json_t *body = opts_json ? json_loads(opts_json, 0, NULL) : json_object();
    struct job_spec spec;
    struct enq_result res;
    struct store *st;
    int rc = -1;

    if (!json_is_object(body)) {
        /* cjson encodes an empty table as [] or {}: treat either as none. */
        json_decref(body);
        body = json_object();
    }
    json_object_set_new(body, "type", json_string(type));
    json_object_set_new(body, "payload", json_loads(payload_json, JSON_DECODE_ANY, NULL));
    if (!json_object_get(body, "queue"))
        json_object_set_new(body, "queue", json_string(h->it->l.queue));
    if (job_spec_from_json(body, now_ms(), &spec, err, errlen) < 0)
        goto out;
    /* An application's job enqueues into that application's queues. */
    if (auth_scope_follow_up(h->it->l.queue, &spec, err, errlen) == 0 &&
        (st = slot_store(h->s, err, errlen)) &&
        queue_enqueue(st, c->prefix, c->max_attempts, c->backoff, &spec, 1, &res, err,
                      errlen) == Q_OK) {
        memcpy(id_out, res.id, 37);
        metrics_job(spec.queue, spec.type, "enqueued");
        rc = 0;
    }
    job_spec_free(&spec);
out:
    json_decref(body);
    return rc;
}

/* ---- worker threads ---- */

static void
push_ack(struct workers *w, struct ack *a)
{
    pthread_mutex_lock(&w->amu);
    if (w->acks_tail) {
        /* The keeper has been told already and takes the whole list. */
        w->acks_tail->next = a;
    } else {
        w->acks = a;
        pthread_cond_signal(&w->acv);
    }
    w->acks_tail = a;
    pthread_mutex_unlock(&w->amu);
}

static char *
dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* make_ack turns a runtime result into an ack for the keeper. */
static struct ack *
make_ack(struct qpool *qp, struct item *it, const struct rt_result *res, double seconds)
{
    struct ack *a = xcalloc(1, sizeof *a);
    json_t *job = it->l.job;
    int retry_set = json_object_get(job, "retrySet") != NULL;

    a->it = it;
    a->qp = qp;
    a->seconds = seconds;
    snprintf(a->type, sizeof a->type, "%s",
             json_string_value(json_object_get(job, "type")) ?: "");
    a->result = dup_or_null(res->result_json);
    a->error = dup_or_null(res->error);
    a->stack = dup_or_null(res->stack);
    a->logs = dup_or_null(res->logs_json);
    a->o.ok = res->ok;
    a->o.permanent = res->permanent;
    /* Retry policy: the job's own, else the handler's, else the stored
     * config default (DESIGN.md order). */
    a->o.max_attempts = !retry_set ? res->max_attempts : 0;
    a->o.backoff = !retry_set && res->backoff > 0 ? res->backoff : -1;
    if (!retry_set && res->strategy[0])
        snprintf(a->strategy, sizeof a->strategy, "%s", res->strategy);
    return a;
}

/* effective_timeout: the job's own, else the handler's option, else the
 * config default. */
static int64_t
effective_timeout(struct slot *s, json_t *job, const char *type)
{
    int64_t t = json_integer_value(json_object_get(job, "timeout"));
    int64_t ht = 0;
    int ma, cc;
    if (t > 0)
        return t;
    if (runtime_handler_options(s->rt, type, &ht, &ma, &cc) == 0 && ht > 0)
        return ht;
    return s->qp->w->c->timeout;
}

static void
run_one(struct slot *s, struct item *it)
{
    struct qpool *qp = s->qp;
    const struct config *c = qp->w->c;
    json_t *job = it->l.job;
    const char *type = json_string_value(json_object_get(job, "type")) ?: "";
    struct host_ud hud = { s, it };
    struct rt_host host = { &hud, host_progress, host_enqueue };
    struct rt_job rj = {
        .id = it->l.id, .type = type, .queue = it->l.queue,
        .payload_json = it->l.payload ? it->l.payload : "{}", .metadata_json = it->l.metadata,
        .attempt = (int)json_integer_value(json_object_get(job, "attempts")),
        .max_attempts = (int)json_integer_value(json_object_get(job, "maxAttempts")),
        .priority = (int)json_integer_value(json_object_get(job, "priority")),
        .created_at = json_integer_value(json_object_get(job, "createdAt")),
        .timeout_ms = json_integer_value(json_object_get(job, "timeout")),
        .default_timeout = c->timeout,
    };
    struct rt_result res;
    int64_t t0 = mono_ms(), timeout = effective_timeout(s, job, type);
    int abandoned;

    pthread_mutex_lock(&qp->mu);
    s->started = t0;
    s->timeout = timeout;
    s->deadline = t0 + timeout + WATCHDOG_GRACE_MS;
    pthread_mutex_unlock(&qp->mu);

    memset(&res, 0, sizeof res);
    if (runtime_run(s->rt, &rj, &host, &res) < 0) {
        /* The VM could not be rebuilt; try a fresh one for the next job. */
        runtime_free(s->rt);
        s->rt = runtime_new(qp->w->h, c->memory_limit);
    }
    pthread_mutex_lock(&qp->mu);
    abandoned = s->abandoned;
    s->job = NULL;
    pthread_mutex_unlock(&qp->mu);
    if (!abandoned)
        push_ack(qp->w, make_ack(qp, it, &res, (double)(mono_ms() - t0) / 1000.0));
    rt_result_free(&res);
}

static void
slot_free(struct slot *s)
{
    runtime_free(s->rt);
    store_close(s->st);
    free(s);
}

static const char *
item_type(const struct item *it)
{
    return it->type;
}

/* tcount_of finds (or adds) the counter of a type; NULL when the table is
 * full, and then the type simply has no limit.  qp->mu held. */
static struct tcount *
tcount_of(struct qpool *qp, const char *type)
{
    for (int i = 0; i < qp->ntypes; i++)
        if (strcmp(qp->types[i].type, type) == 0)
            return &qp->types[i];
    if (qp->ntypes == MAX_TYPES)
        return NULL;
    snprintf(qp->types[qp->ntypes].type, sizeof qp->types[0].type, "%s", type);
    qp->new_types = 1;
    return &qp->types[qp->ntypes++];
}

/* learn_limits reads, outside the lock, the `concurrency` option of the
 * handlers of waiting jobs whose limit is not known yet.  qp->mu held on
 * entry and exit.  Returns 1 if it learned something. */
static int
learn_limits(struct slot *s)
{
    struct qpool *qp = s->qp;
    char type[129];
    int64_t t;
    int ma, cc = 0, learned = 0;

    /* Cheap exit on the hot path: nothing new, limits still fresh. */
    if (!qp->new_types && mono_ms() < qp->learn_due)
        return 0;
    for (qp->new_types = 0;;) {
        struct item *it;
        struct tcount *tc = NULL;
        int64_t stale = mono_ms() - LIMIT_TTL_MS;
        for (it = qp->head; it; it = it->next)
            if ((tc = tcount_of(qp, item_type(it))) && tc->learned < stale)
                break;
        if (!it) {
            qp->learn_due = mono_ms() + LIMIT_TTL_MS / 2;
            return learned;
        }
        snprintf(type, sizeof type, "%s", tc->type);
        pthread_mutex_unlock(&qp->mu);
        if (runtime_handler_options(s->rt, type, &t, &ma, &cc) < 0)
            cc = 0;
        pthread_mutex_lock(&qp->mu);
        if ((tc = tcount_of(qp, type))) {
            tc->limit = cc > 0 ? cc : 0;
            tc->learned = mono_ms();
        }
        learned = 1;
    }
}

/* take_job unlinks the first waiting job whose type is under its handler's
 * concurrency limit, counting it as running; NULL when none is.  Limits
 * are re-read every LIMIT_TTL_MS, so an edited handler's new limit holds
 * within a second. */
static struct item *
take_job(struct qpool *qp)
{
    struct item *it, *prev = NULL;
    for (it = qp->head; it; prev = it, it = it->next) {
        struct tcount *tc = tcount_of(qp, item_type(it));
        if (tc && tc->limit > 0 && tc->running >= tc->limit)
            continue;
        if (prev)
            prev->next = it->next;
        else
            qp->head = it->next;
        if (qp->tail == it)
            qp->tail = prev;
        it->next = NULL;
        if (tc)
            tc->running++;
        return it;
    }
    return NULL;
}

/* job_done counts a job of type as no longer running.  qp->mu held. */
static void
job_done(struct qpool *qp, const char *type)
{
    struct tcount *tc = tcount_of(qp, type);
    if (tc && tc->running > 0)
        tc->running--;
    /* A job held back by this type's limit may be waiting for this one;
     * types without a limit never hold jobs back, so wake no one. */
    if (tc && tc->limit > 0 && qp->head)
        pthread_cond_broadcast(&qp->work_cv);
}

static void *
worker_main(void *arg)
{
    struct slot *s = arg;
    struct qpool *qp = s->qp;
    struct workers *w = qp->w;

    s->rt = runtime_new(w->h, w->c->memory_limit);
    if (!s->rt)
        log_error("worker %s: cannot build a Lua runtime", qp->name);
    for (;;) {
        struct item *it = NULL;
        char type[129];
        int abandoned;
        pthread_mutex_lock(&qp->mu);
        while (!w->stopping && !s->abandoned && s->rt) {
            learn_limits(s);
            if ((it = take_job(qp)))
                break;
            pthread_cond_wait(&qp->work_cv, &qp->mu);
        }
        if (!it) {
            pthread_mutex_unlock(&qp->mu);
            break;
        }
        s->job = it;
        /* No deadline until run_one sets the real one: the watchdog must
         * never judge this job by the previous job's deadline. */
        s->deadline = INT64_MAX;
        /* Copied now: once acknowledged, the keeper frees the item. */
        snprintf(type, sizeof type, "%s", item_type(it));
        pthread_mutex_unlock(&qp->mu);
        run_one(s, it);
        pthread_mutex_lock(&qp->mu);
        abandoned = s->abandoned;
        if (!abandoned) /* else the watchdog counted it done */
            job_done(qp, type);
        pthread_mutex_unlock(&qp->mu);
        if (abandoned) {
            /* The keeper gave up on us and started a replacement; we own
             * nothing the pool needs any more.  The job's strings were in
             * use until now: the last of us and the watchdog's ack frees. */
            item_release(it);
            log_warn("worker %s: a stuck handler finally returned; its thread exits",
                     qp->name);
            slot_free(s);
            return NULL;
        }
    }
    return NULL;
}

static struct slot *
slot_start(struct qpool *qp)
{
    struct slot *s = xcalloc(1, sizeof *s);
    s->qp = qp;
    if (pthread_create(&s->thread, NULL, worker_main, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* ---- keeper ---- */

/* send_acks acknowledges every pending outcome in one pipeline.  Outcomes
 * that could not be sent (Redis down) are kept for the next round. */
static int
send_acks(struct workers *w)
{
    const struct config *c = w->c;
    struct ack *list, *a, *retry = NULL, *rlast = NULL;
    struct outcome *os;
    int n = 0, i = 0, rc;

    pthread_mutex_lock(&w->amu);
    list = w->acks;
    w->acks = w->acks_tail = NULL;
    pthread_mutex_unlock(&w->amu);
    if (!list)
        return 0;
    for (a = list; a; a = a->next)
        n++;
    os = xcalloc((size_t)n, sizeof *os);
    for (a = list; a; a = a->next, i++) {
        a->o.queue = a->it->l.queue;
        a->o.id = a->it->l.id;
        a->o.token = a->it->l.token;
        a->o.result = a->result;
        a->o.error = a->error;
        a->o.stack = a->stack;
        a->o.logs = a->logs;
        a->o.strategy = a->strategy[0] ? a->strategy : NULL;
        os[i] = a->o;
    }
    rc = queue_finish(w->kst, c->prefix, c->keep_completed.count, c->keep_failed.count, os, n);
    i = 0;
    for (a = list; a;) {
        struct ack *next = a->next;
        struct outcome *o = &os[i++];
        if (o->status == Q_UNAVAILABLE || (rc == Q_UNAVAILABLE && o->status == Q_REDIS)) {
            a->next = NULL;
            if (rlast)
                rlast->next = a;
            else
                retry = a;
            rlast = a;
            a = next;
            continue;
        }
        if (o->status == Q_BADTOKEN) {
            metrics_lease_rejected();
            log_warn("job %s: outcome refused: its lease had expired and the job moved on",
                     a->o.id);
        } else if (o->status == Q_OK) {
            const char *ev = strcmp(o->state, "completed") == 0 ? "completed"
                           : strcmp(o->state, "delayed") == 0   ? "retried" : "failed";
            metrics_job(a->it->l.queue, a->type, ev);
            metrics_job_runtime(a->it->l.queue, a->type, a->seconds);
            if (!a->o.ok)
                log_info("job %s (%s) %s: %s", a->o.id, a->type,
                         strcmp(ev, "retried") == 0 ? "will retry" : "failed",
                         a->error ? a->error : "");
        }
        pthread_mutex_lock(&a->qp->mu);
        held_remove(a->qp, a->it);
        pthread_cond_signal(&a->qp->room_cv);
        pthread_mutex_unlock(&a->qp->mu);
        item_release(a->it);
        free(a->result);
        free(a->error);
        free(a->stack);
        free(a->logs);
        free(a);
        a = next;
    }
    free(os);
    if (retry) {
        /* Put them back in front, in order; the keeper retries shortly. */
        metrics_redis_error();
        pthread_mutex_lock(&w->amu);
        rlast->next = w->acks;
        w->acks = retry;
        if (!w->acks_tail)
            w->acks_tail = rlast;
        pthread_mutex_unlock(&w->amu);
        return 1;
    }
    return 0;
}

/* extend_leases renews every held lease that is past half its life. */
static void
extend_leases(struct workers *w)
{
    const struct config *c = w->c;
    int64_t now = now_ms();

    for (int q = 0; q < w->nq; q++) {
        struct qpool *qp = &w->q[q];
        char ids[64][37], toks[64][80];
        const char *idp[64], *tokp[64];
        int64_t exp[64];
        int n = 0;
        pthread_mutex_lock(&qp->mu);
        for (struct item *it = qp->held; it && n < 64; it = it->hnext)
            if (it->l.expires_at - now < c->lease / 2) {
                memcpy(ids[n], it->l.id, 37);
                memcpy(toks[n], it->l.token, 80);
                n++;
            }
        pthread_mutex_unlock(&qp->mu);
        if (n == 0)
            continue;
        for (int i = 0; i < n; i++) {
            idp[i] = ids[i];
            tokp[i] = toks[i];
        }
        /* One script call for the queue; a lease lost (reclaimed) or Redis
         * down leaves the deadline alone: the ack will tell. */
        if (queue_extend_many(w->kst, c->prefix, qp->name, n, idp, tokp, c->lease, exp) != Q_OK)
            continue;
        pthread_mutex_lock(&qp->mu);
        for (struct item *it = qp->held; it; it = it->hnext)
            for (int i = 0; i < n; i++)
                if (exp[i] && strcmp(it->l.id, ids[i]) == 0)
                    it->l.expires_at = exp[i];
        pthread_mutex_unlock(&qp->mu);
    }
}

/* watchdog replaces worker threads stuck past their deadline: the job
 * fails with a timeout and a fresh thread takes the slot. */
static void
watchdog(struct workers *w)
{
    int64_t now = mono_ms();

    for (int q = 0; q < w->nq; q++) {
        struct qpool *qp = &w->q[q];
        for (int i = 0; i < qp->concurrency; i++) {
            struct slot *s;
            struct rt_result res;
            char msg[128];
            struct item *it;
            int64_t timeout, started;
            pthread_mutex_lock(&qp->mu);
            s = qp->slots[i];
            if (!s || !s->job || s->abandoned || now < s->deadline) {
                pthread_mutex_unlock(&qp->mu);
                continue;
            }
            it = s->job;
            /* The stuck thread still reads the job: keep it alive for it. */
            __atomic_add_fetch(&it->refs, 1, __ATOMIC_ACQ_REL);
            s->abandoned = 1;
            s->job = NULL;
            job_done(qp, item_type(it));
            timeout = s->timeout;
            started = s->started;
            pthread_mutex_unlock(&qp->mu);
            pthread_detach(s->thread);
            log_error("job %s: handler stuck past its %lld ms timeout in a C call; "
                      "replacing its worker thread", it->l.id, (long long)timeout);
            memset(&res, 0, sizeof res);
            snprintf(msg, sizeof msg, "timeout after %lld ms (handler stuck; thread replaced)",
                     (long long)timeout);
            res.error = msg;
            res.backoff = -1;
            push_ack(w, make_ack(qp, it, &res, (double)(now - started) / 1000.0));
            s = slot_start(qp);
            pthread_mutex_lock(&qp->mu);
            qp->slots[i] = s;
            pthread_mutex_unlock(&qp->mu);
        }
    }
}

static void *
keeper_main(void *arg)
{
    struct workers *w = arg;
    int64_t last_extend = 0;

    for (;;) {
        struct timespec ts;
        int stop;
        pthread_mutex_lock(&w->amu);
        if (!w->acks && !w->keeper_stop) {
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += KEEPER_TICK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->acv, &w->amu, &ts);
        }
        stop = w->keeper_stop;
        pthread_mutex_unlock(&w->amu);
        if (send_acks(w)) {
            /* Redis is away: outcomes wait in memory (their leases may
             * lapse, then the jobs simply run again: at-least-once). */
            if (stop && mono_ms() > w->give_up)
                break;
            sleep_ms(100);
            continue;
        }
        if (stop)
            break;
        if (mono_ms() - last_extend >= w->c->lease / 6) {
            last_extend = mono_ms();
            extend_leases(w);
        }
        watchdog(w);
    }
    return NULL;
}

/* ---- start / stop ---- */

struct workers *
workers_start(const struct config *c, struct handlers *h, char *err, size_t errlen)
{
    struct workers *w = xcalloc(1, sizeof *w);

    w->c = c;
    w->h = h;
    pthread_mutex_init(&w->amu, NULL);
    pthread_cond_init(&w->acv, NULL);
    if (!(w->kst = store_open(c->redis, err, errlen))) {
        free(w);
        return NULL;
    }
    w->nq = c->nqueues;
    for (int q = 0; q < w->nq; q++) {
        struct qpool *qp = &w->q[q];
        qp->w = w;
        qp->name = c->queues[q].name;
        qp->concurrency = c->queues[q].concurrency;
        pthread_mutex_init(&qp->mu, NULL);
        pthread_cond_init(&qp->work_cv, NULL);
        pthread_cond_init(&qp->room_cv, NULL);
        qp->slots = xcalloc((size_t)qp->concurrency, sizeof *qp->slots);
    }
    /* Register the queues so the scheduler and listings see them even
     * before their first job. */
    for (int q = 0; q < w->nq; q++) {
        redisReply *r = store_command(w->kst, "SADD %s:queues %s", c->prefix, w->q[q].name);
        if (r)
            freeReplyObject(r);
    }
    for (int q = 0; q < w->nq; q++) {
        struct qpool *qp = &w->q[q];
        for (int i = 0; i < qp->concurrency; i++)
            qp->slots[i] = slot_start(qp);
        pthread_create(&qp->fetcher, NULL, fetcher_main, qp);
    }
    /* Last: the keeper's watchdog reads the slots made above. */
    pthread_create(&w->keeper, NULL, keeper_main, w);
    return w;
}

/* running counts the jobs still running in worker threads. */
static int
running(struct workers *w)
{
    int n = 0;
    for (int q = 0; q < w->nq; q++) {
        struct qpool *qp = &w->q[q];
        pthread_mutex_lock(&qp->mu);
        for (int i = 0; i < qp->concurrency; i++)
            if (qp->slots[i] && qp->slots[i]->job)
                n++;
        pthread_mutex_unlock(&qp->mu);
    }
    return n;
}

/* release_unstarted gives back the jobs leased but not started. */
static void
release_unstarted(struct workers *w, struct store *st)
{
    for (int q = 0; q < w->nq; q++) {
        struct qpool *qp = &w->q[q];
        struct item *it, *next;
        pthread_mutex_lock(&qp->mu);
        it = qp->head;
        qp->head = qp->tail = NULL;
        pthread_mutex_unlock(&qp->mu);
        for (; it; it = next) {
            next = it->next;
            queue_release(st, w->c->prefix, qp->name, it->l.id, it->l.token);
            pthread_mutex_lock(&qp->mu);
            held_remove(qp, it);
            pthread_mutex_unlock(&qp->mu);
            item_free(it);
        }
    }
}

void
workers_stop(struct workers *w, int64_t grace_ms)
{
    int64_t end = mono_ms() + grace_ms;
    int stuck = 0;
    char err[256];
    /* The keeper still uses w->kst: this thread needs its own connection. */
    struct store *st = store_open(w->c->redis, err, sizeof err);

    w->stopping = 1;
    for (int q = 0; q < w->nq; q++) {
        struct qpool *qp = &w->q[q];
        pthread_mutex_lock(&qp->mu);
        pthread_cond_broadcast(&qp->work_cv);
        pthread_cond_broadcast(&qp->room_cv);
        pthread_mutex_unlock(&qp->mu);
    }
    for (int q = 0; q < w->nq; q++)
        pthread_join(w->q[q].fetcher, NULL);
    /* Fetchers are gone, so nothing new lands in the lists. */
    if (st)
        release_unstarted(w, st);
    if (running(w))
        log_info("waiting up to %lld ms for %d running jobs", (long long)grace_ms, running(w));
    while (running(w) && mono_ms() < end)
        sleep_ms(20);
    /* Whatever still runs goes back to waiting, its attempt not counted;
     * the stale outcome, if it ever comes, is refused by its token. */
    for (int q = 0; q < w->nq; q++) {
        struct qpool *qp = &w->q[q];
        pthread_mutex_lock(&qp->mu);
        for (int i = 0; i < qp->concurrency; i++) {
            struct slot *s = qp->slots[i];
            if (s && s->job) {
                log_warn("job %s: still running after the grace period; given back",
                         s->job->l.id);
                if (st)
                    queue_release(st, w->c->prefix, qp->name, s->job->l.id, s->job->l.token);
                s->abandoned = 1;
                stuck++;
            }
        }
        pthread_mutex_unlock(&qp->mu);
    }
    pthread_mutex_lock(&w->amu);
    w->give_up = mono_ms() + 5000;
    w->keeper_stop = 1;
    pthread_cond_signal(&w->acv);
    pthread_mutex_unlock(&w->amu);
    pthread_join(w->keeper, NULL);
    store_close(st);
    if (stuck) {
        /* Threads still inside handlers may touch the pool: leave it to
         * the process exit rather than free memory under them. */
        return;
    }
    for (int q = 0; q < w->nq; q++) {
        struct qpool *qp = &w->q[q];
        for (int i = 0; i < qp->concurrency; i++) {
            if (!qp->slots[i])
                continue;
            pthread_join(qp->slots[i]->thread, NULL);
            slot_free(qp->slots[i]);
        }
        free(qp->slots);
        while (qp->held) {
            struct item *it = qp->held;
            held_remove(qp, it);
            item_free(it);
        }
        pthread_mutex_destroy(&qp->mu);
        pthread_cond_destroy(&qp->work_cv);
        pthread_cond_destroy(&qp->room_cv);
    }
    store_close(w->kst);
    free(w);
}
