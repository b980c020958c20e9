/* events.c — following the queues' event streams (see events.h), and
 * `jqrun watch`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "events.h"
#include "queue.h"
#include "util.h"

#define EV_COUNT 200          /* entries per stream per read */
#define EV_REFRESH_MS 2000    /* how often the queue list is re-read */

static const char *const statuses[] = {
    "waiting", "delayed", "processing", "progress", "completed", "failed", "canceled", NULL
};

/* pos is where the reader stands in one stream. */
struct pos {
    char *queue;     /* stored name */
    char  last[48];  /* last entry id read */
};

struct ev_reader {
    char       *prefix, *queue, *type, *status, *app, *since;
    struct pos *s;
    int         n;
    int         resolved;      /* the first queue list has been read */
    int64_t     next_refresh;  /* mono ms */
};

static char *
dup_or_null(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

struct ev_reader *
ev_reader_new(const char *prefix, const struct ev_filter *f, const char *since)
{
    struct ev_reader *er = xcalloc(1, sizeof *er);
    er->prefix = xstrdup(prefix);
    er->queue = dup_or_null(f->queue);
    er->type = dup_or_null(f->type);
    er->status = dup_or_null(f->status);
    er->app = dup_or_null(f->app);
    er->since = dup_or_null(since);
    return er;
}

void
ev_reader_free(struct ev_reader *er)
{
    if (!er)
        return;
    for (int i = 0; i < er->n; i++)
        free(er->s[i].queue);
    free(er->s);
    free(er->prefix);
    free(er->queue);
    free(er->type);
    free(er->status);
    free(er->app);
    free(er->since);
    free(er);
}

int
ev_status_ok(const char *s)
{
    while (*s) {
        size_t n = strcspn(s, ",");
        int ok = n == 6 && strncmp(s, "active", 6) == 0;
        for (const char *const *p = statuses; !ok && *p; p++)
            ok = strlen(*p) == n && strncmp(*p, s, n) == 0;
        if (!ok)
            return 0;
        s += n;
        if (*s == ',')
            s++;
    }
    return 1;
}

/* status_wanted tells whether status passes the comma-separated list. */
static int
status_wanted(const char *list, const char *status)
{
    size_t sl = strlen(status);
    if (!list)
        return 1;
    while (*list) {
        size_t n = strcspn(list, ",");
        if ((n == sl && strncmp(list, status, n) == 0) ||
            (n == 6 && strncmp(list, "active", 6) == 0 && strcmp(status, "processing") == 0))
            return 1;
        list += n;
        if (*list == ',')
            list++;
    }
    return 0;
}

/* start_at is where a newly followed stream starts: after `since` when
 * resuming; for the queues there at the start, after their last entry
 * (from now on); for queues that appear later, at their beginning. */
static int
start_at(struct ev_reader *er, struct store *st, const char *q, char out[48])
{
    redisReply *r;

    if (er->since) {
        snprintf(out, 48, "%s", er->since);
        return 0;
    }
    snprintf(out, 48, "0-0");
    if (er->resolved)
        return 0;
    r = store_command(st, "XREVRANGE %s:{%s}:events + - COUNT 1", er->prefix, q);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(out, 48, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);
    return 0;
}

static int
follows(struct ev_reader *er, const char *q)
{
    for (int i = 0; i < er->n; i++)
        if (strcmp(er->s[i].queue, q) == 0)
            return 1;
    return 0;
}

static int
follow(struct ev_reader *er, struct store *st, const char *q)
{
    char at[48];
    if (follows(er, q) || !auth_queue_external(er->app, q))
        return 0;
    if (start_at(er, st, q, at) < 0)
        return -1;
    er->s = xrealloc(er->s, sizeof *er->s * (size_t)(er->n + 1));
    er->s[er->n].queue = xstrdup(q);
    memcpy(er->s[er->n].last, at, sizeof at);
    er->n++;
    return 0;
}

/* refresh follows the queues that appeared since the last look. */
static int
refresh(struct ev_reader *er, struct store *st)
{
    char **names = NULL;
    int n, rc = 0;

    if (er->queue) {
        rc = follow(er, st, er->queue);
    } else {
        if ((n = queue_names(st, er->prefix, &names)) < 0)
            return -1;
        for (int i = 0; i < n && rc == 0; i++)
            rc = follow(er, st, names[i]);
        queue_names_free(names, n);
    }
    if (rc == 0)
        er->resolved = 1;
    return rc;
}

/* id_cmp orders stream ids "<ms>-<seq>" numerically. */
static int
id_cmp(const char *a, const char *b)
{
    unsigned long long am = strtoull(a, NULL, 10), bm = strtoull(b, NULL, 10);
    const char *ad = strchr(a, '-'), *bd = strchr(b, '-');
    unsigned long long as = ad ? strtoull(ad + 1, NULL, 10) : 0;
    unsigned long long bs = bd ? strtoull(bd + 1, NULL, 10) : 0;
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

static int
by_id(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "id"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "id"));
    return id_cmp(x ? x : "0", y ? y : "0");
}

/* entry_event makes the event object of one entry, or NULL when the
 * filter drops it. */
static json_t *
entry_event(struct ev_reader *er, const char *q, const redisReply *e)
{
    const redisReply *f;
    json_t *ev;
    const char *status, *type;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    f = e->element[1];
    ev = json_pack("{s:s, s:s}", "id", e->element[0]->str, "queue",
                   auth_queue_external(er->app, q) ?: q);
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        if (!k || !v)
            continue;
        if (strcmp(k, "ts") == 0)
            json_object_set_new(ev, "timestamp", json_integer(strtoll(v, NULL, 10)));
        else if (strcmp(k, "attempt") == 0 || strcmp(k, "runAt") == 0 ||
                 strcmp(k, "progress") == 0)
            json_object_set_new(ev, k, json_integer(strtoll(v, NULL, 10)));
        else if (strcmp(k, "created") == 0)
            json_object_set_new(ev, k, json_true());
        else
            json_object_set_new(ev, k, json_string(v));
    }
    status = json_string_value(json_object_get(ev, "status"));
    type = json_string_value(json_object_get(ev, "type"));
    if (!status_wanted(er->status, status ? status : "") ||
        (er->type && (!type || strcmp(type, er->type) != 0))) {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

/* take reads an XREAD reply into out (sorted by id), moving the
 * positions on. */
static int
take(struct ev_reader *er, const redisReply *r, json_t *out)
{
    json_t *batch = json_array(), *ev;
    size_t plen = strlen(er->prefix), i;
    json_t **v;
    int n;

    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *s = r->element[i];
        const redisReply *entries;
        struct pos *p = NULL;
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
            s->element[0]->type != REDIS_REPLY_STRING || s->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        /* The key is "P:{q}:events": find the stream it belongs to. */
        for (int k = 0; k < er->n && !p; k++) {
            const char *key = s->element[0]->str;
            size_t ql = strlen(er->s[k].queue);
            if (strlen(key) == plen + ql + 10 && strncmp(key + plen + 2, er->s[k].queue, ql) == 0)
                p = &er->s[k];
        }
        if (!p)
            continue;
        entries = s->element[1];
        for (size_t k = 0; k < entries->elements; k++) {
            const redisReply *e = entries->element[k];
            if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
                e->element[0]->type == REDIS_REPLY_STRING)
                snprintf(p->last, sizeof p->last, "%s", e->element[0]->str);
            if ((ev = entry_event(er, p->queue, e)))
                json_array_append_new(batch, ev);
        }
    }
    /* Streams come back one after the other: interleave them by time. */
    n = (int)json_array_size(batch);
    v = xcalloc((size_t)n + 1, sizeof *v);
    json_array_foreach(batch, i, ev)
        v[i] = ev;
    qsort(v, (size_t)n, sizeof *v, by_id);
    for (int k = 0; k < n; k++)
        json_array_append(out, v[k]);
    free(v);
    json_decref(batch);
    return n;
}

int
ev_reader_read(struct ev_reader *er, struct store *st, int block_ms, json_t *out)
{
    const char **argv;
    char count_s[16], block_s[16];
    int64_t now = mono_ms();
    redisReply *r;
    int argc = 0, n;

    if (store_ready(st) < 0)
        return -1;
    if (!er->resolved || now >= er->next_refresh) {
        if (refresh(er, st) < 0)
            return -1;
        er->next_refresh = now + EV_REFRESH_MS;
    }
    if (er->n == 0) {
        /* Nothing to follow yet: wait a little, then look again. */
        sleep_ms(block_ms < EV_REFRESH_MS ? block_ms : EV_REFRESH_MS);
        er->next_refresh = 0;
        return 0;
    }
    snprintf(count_s, sizeof count_s, "%d", EV_COUNT);
    snprintf(block_s, sizeof block_s, "%d", block_ms > 0 ? block_ms : 1);
    argv = xcalloc(6 + 2 * (size_t)er->n, sizeof *argv);
    char **keys = xcalloc((size_t)er->n + 1, sizeof *keys);
    argv[argc++] = "XREAD";
    argv[argc++] = "COUNT";
    argv[argc++] = count_s;
    argv[argc++] = "BLOCK";
    argv[argc++] = block_s;
    argv[argc++] = "STREAMS";
    /* All streams in one XREAD: one blocking wait covers every queue. */
    for (int i = 0; i < er->n; i++) {
        struct strbuf sb = { 0 };
        sb_printf(&sb, "%s:{%s}:events", er->prefix, er->s[i].queue);
        keys[i] = sb.buf;
        argv[argc++] = keys[i];
    }
    for (int i = 0; i < er->n; i++)
        argv[argc++] = er->s[i].last;
    r = store_commandargv(st, argc, argv, NULL);
    for (int i = 0; i < er->n; i++)
        free(keys[i]);
    free(keys);
    free(argv);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(st->err, sizeof st->err, "%s", r->str);
        freeReplyObject(r);
        return -1;
    }
    n = take(er, r, out);
    freeReplyObject(r);
    return n;
}

/* ---- jqrun watch ---- */

/* print_line prints "TIME QUEUE JOB TYPE STATUS extra..." for one event. */
static void
print_line(json_t *ev)
{
    static const char *const extra[] = { "attempt", "progress", "runAt", "error", NULL };
    char iso[32];
    json_t *v;

    iso8601_format(json_integer_value(json_object_get(ev, "timestamp")), iso);
    printf("%s  %s  %s  %s  %s", iso, json_string_value(json_object_get(ev, "queue")) ?: "-",
           json_string_value(json_object_get(ev, "jobId")) ?: "-",
           json_string_value(json_object_get(ev, "type")) ?: "-",
           json_string_value(json_object_get(ev, "status")) ?: "-");
    if (json_is_true(json_object_get(ev, "created")))
        printf("  created");
    for (const char *const *k = extra; *k; k++) {
        if (!(v = json_object_get(ev, *k)))
            continue;
        if (json_is_integer(v) && strcmp(*k, "runAt") == 0) {
            iso8601_format(json_integer_value(v), iso);
            printf("  runAt=%s", iso);
        } else if (json_is_integer(v)) {
            printf("  %s=%" JSON_INTEGER_FORMAT, *k, json_integer_value(v));
        } else {
            char *txt = json_dumps(v, JSON_ENCODE_ANY);
            printf("  %s=%s", *k, txt ? txt : "?");
            free(txt);
        }
    }
    putchar('\n');
    fflush(stdout);
}

static int
watch_usage(const char *msg)
{
    fprintf(stderr, "jqrun: %s\nusage: jqrun watch [--queue Q] [--type T] [--status S[,S...]]\n",
            msg);
    return 2;
}

int
events_cmd_watch(const struct config *c, int argc, char **argv)
{
    struct ev_filter f = { 0 };
    struct ev_reader *er;
    struct store *st;
    char err[256];

    for (int i = 1; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--queue") == 0    ? &f.queue
                            : strcmp(argv[i], "--type") == 0   ? &f.type
                            : strcmp(argv[i], "--status") == 0 ? &f.status : NULL;
        if (!slot)
            return watch_usage("watch: unknown argument");
        if (++i >= argc)
            return watch_usage("watch: a flag needs a value");
        *slot = argv[i];
    }
    if (f.queue && !valid_name(f.queue))
        return watch_usage("watch: --queue must match [A-Za-z0-9._:-]{1,128}");
    if (f.type && !valid_name(f.type))
        return watch_usage("watch: --type must match [A-Za-z0-9._:-]{1,128}");
    if (f.status && !ev_status_ok(f.status))
        return watch_usage("watch: --status must be waiting, delayed, processing, progress, "
                           "completed, failed or canceled (comma-separated)");
    if (!(st = store_open(c->redis, err, sizeof err))) {
        fprintf(stderr, "jqrun: %s\n", err);
        return 1;
    }
    if (store_ready(st) < 0) {
        fprintf(stderr, "jqrun: %s\n", st->err);
        store_close(st);
        return 1;
    }
    er = ev_reader_new(c->prefix, &f, NULL);
    /* Until interrupted (SIGINT/SIGTERM end the process). */
    for (;;) {
        json_t *out = json_array(), *ev;
        size_t i;
        if (ev_reader_read(er, st, 5000, out) < 0) {
            fprintf(stderr, "jqrun: watch: %s (retrying)\n", st->err);
            sleep_ms(1000);
        }
        json_array_foreach(out, i, ev)
            print_line(ev);
        json_decref(out);
    }
}
