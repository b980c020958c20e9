/* cli.c — enqueue, get, cancel, retry, list and stats from the shell. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "queue.h"
#include "util.h"

static int
usage(const char *msg, const char *detail)
{
    fprintf(stderr, "jqrun: %s%s%s\n", msg, detail ? " " : "", detail ? detail : "");
    return 2;
}

/* open_store connects or prints why not (exit code 1). */
static struct store *
open_store(const struct config *c)
{
    char err[256];
    struct store *st = store_open(c->redis, err, sizeof err);
    if (!st) {
        fprintf(stderr, "jqrun: %s\n", err);
        return NULL;
    }
    if (store_ready(st) < 0) {
        fprintf(stderr, "jqrun: %s\n", st->err);
        store_close(st);
        return NULL;
    }
    return st;
}

static int
qerror(int rc, const char *what, const char *id, const char *state)
{
    switch (rc) {
    case Q_NOTFOUND:
        fprintf(stderr, "jqrun: job '%s' not found\n", id);
        break;
    case Q_CONFLICT:
        fprintf(stderr, "jqrun: cannot %s job '%s': it is %s\n", what, id, state);
        break;
    default:
        fprintf(stderr, "jqrun: %s '%s': redis unavailable or failed\n", what, id);
    }
    return 1;
}

/* parse_int64 reads a whole decimal integer. */
static int
parse_int64(const char *s, int64_t *v)
{
    char *end;
    if (!s || !*s)
        return -1;
    *v = strtoll(s, &end, 10);
    return *end ? -1 : 0;
}

/* load_payload reads JSON text, @file or - (stdin) into a JSON value,
 * printing the parse error with its position. */
static json_t *
load_payload(const char *arg)
{
    json_error_t je;
    json_t *v;
    char *text = NULL;

    if (arg[0] == '@' || strcmp(arg, "-") == 0) {
        const char *path = arg[0] == '@' ? arg + 1 : "-";
        if (!(text = read_file(path, NULL))) {
            fprintf(stderr, "jqrun: cannot read payload %s\n", path);
            return NULL;
        }
        arg = text;
    }
    v = json_loads(arg, JSON_DECODE_ANY, &je);
    if (!v)
        fprintf(stderr, "jqrun: invalid JSON payload at line %d, column %d (position %d): %s\n",
                je.line, je.column, je.position, je.text);
    free(text);
    return v;
}

/* flag_value returns the value of --name V at argv[*i], advancing *i. */
static const char *
flag_value(int argc, char **argv, int *i)
{
    return *i + 1 < argc ? argv[++*i] : NULL;
}

int
cli_enqueue(const struct config *c, int argc, char **argv)
{
    json_t *body = json_object(), *payload = NULL, *retry = json_object();
    struct job_spec spec;
    struct enq_result res;
    struct store *st = NULL;
    char err[256];
    int rc = 2;

    if (argc < 2) {
        usage("usage: jqrun enqueue TYPE [JSON|@file|-] [--queue Q] [--priority N] "
              "[--delay MS] [--at ISO|MS] [--attempts N] [--backoff MS] [--key KEY]", NULL);
        goto out;
    }
    json_object_set_new(body, "type", json_string(argv[1]));
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t n;
        if (strncmp(a, "--", 2) != 0) {
            if (payload) {
                usage("unexpected argument:", a);
                goto out;
            }
            if (!(payload = load_payload(a)))
                goto out;
            continue;
        }
        if (!(v = flag_value(argc, argv, &i))) {
            usage("missing value for", a);
            goto out;
        }
        if (strcmp(a, "--queue") == 0) {
            json_object_set_new(body, "queue", json_string(v));
        } else if (strcmp(a, "--key") == 0) {
            json_object_set_new(body, "idempotencyKey", json_string(v));
        } else if (strcmp(a, "--at") == 0) {
            json_object_set_new(body, "runAt",
                                parse_int64(v, &n) == 0 ? json_integer(n) : json_string(v));
        } else if (parse_int64(v, &n) < 0) {
            fprintf(stderr, "jqrun: %s must be an integer, got '%s'\n", a, v);
            goto out;
        } else if (strcmp(a, "--priority") == 0) {
            json_object_set_new(body, "priority", json_integer(n));
        } else if (strcmp(a, "--delay") == 0) {
            json_object_set_new(body, "delay", json_integer(n));
        } else if (strcmp(a, "--attempts") == 0) {
            json_object_set_new(retry, "maxAttempts", json_integer(n));
        } else if (strcmp(a, "--backoff") == 0) {
            json_object_set_new(retry, "backoff", json_integer(n));
        } else if (strcmp(a, "--timeout") == 0) {
            json_object_set_new(body, "timeout", json_integer(n));
        } else {
            usage("unknown flag:", a);
            goto out;
        }
    }
    json_object_set(body, "payload", payload ? payload : json_object());
    if (json_object_size(retry))
        json_object_set(body, "retry", retry);
    if (job_spec_from_json(body, now_ms(), &spec, err, sizeof err) < 0) {
        fprintf(stderr, "jqrun: invalid job: %s\n", err);
        goto out;
    }
    rc = 1;
    if ((st = open_store(c))) {
        if (queue_enqueue(st, c->prefix, c->max_attempts, c->backoff, &spec, 1, &res, err,
                          sizeof err) == Q_OK) {
            printf("%s\n", res.id);
            rc = 0;
        } else {
            fprintf(stderr, "jqrun: enqueue failed: %s\n", err);
        }
    }
    job_spec_free(&spec);
out:
    json_decref(body);
    json_decref(payload);
    json_decref(retry);
    store_close(st);
    return rc;
}

int
cli_get(const struct config *c, int argc, char **argv)
{
    struct store *st;
    json_t *job;
    int rc;

    if (argc != 2)
        return usage("usage: jqrun get ID", NULL);
    if (!(st = open_store(c)))
        return 1;
    rc = queue_get(st, c->prefix, argv[1], &job);
    store_close(st);
    if (rc != Q_OK)
        return qerror(rc, "get", argv[1], "");
    json_dumpf(job, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    putchar('\n');
    json_decref(job);
    return 0;
}

static int
change(const struct config *c, int argc, char **argv, int cancel)
{
    struct store *st;
    char state[16];
    int rc;

    if (argc != 2)
        return usage(cancel ? "usage: jqrun cancel ID" : "usage: jqrun retry ID", NULL);
    if (!(st = open_store(c)))
        return 1;
    rc = cancel ? queue_cancel(st, c->prefix, argv[1], state, NULL)
                : queue_retry(st, c->prefix, argv[1], state, NULL);
    store_close(st);
    if (rc != Q_OK)
        return qerror(rc, cancel ? "cancel" : "retry", argv[1], state);
    printf("%s %s\n", argv[1], state);
    return 0;
}

int
cli_cancel(const struct config *c, int argc, char **argv)
{
    return change(c, argc, argv, 1);
}

int
cli_retry(const struct config *c, int argc, char **argv)
{
    return change(c, argc, argv, 0);
}

static const char *
jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

int
cli_list(const struct config *c, int argc, char **argv)
{
    const char *queue = "default", *status = NULL, *type = NULL;
    int64_t limit = 100;
    struct store *st;
    json_t *jobs, *job;
    char *next;
    size_t i;
    int rc;

    for (int k = 1; k < argc; k++) {
        const char *a = argv[k], *v = flag_value(argc, argv, &k);
        if (!v)
            return usage("missing value for", a);
        if (strcmp(a, "--queue") == 0)
            queue = v;
        else if (strcmp(a, "--status") == 0)
            status = v;
        else if (strcmp(a, "--type") == 0)
            type = v;
        else if (strcmp(a, "--limit") == 0) {
            if (parse_int64(v, &limit) < 0 || limit < 1 || limit > 1000)
                return usage("--limit must be an integer from 1 to 1000, got", v);
        } else
            return usage("unknown flag:", a);
    }
    if (status) {
        int ok = 0;
        for (int s = 0; s < 6; s++)
            ok |= strcmp(status, queue_states[s]) == 0;
        if (!ok)
            return usage("--status must be waiting, delayed, processing, completed, failed "
                         "or canceled, got", status);
    }
    if (!(st = open_store(c)))
        return 1;
    rc = queue_list(st, c->prefix, queue, status, type, NULL, (int)limit, NULL, &jobs, &next);
    store_close(st);
    if (rc != Q_OK) {
        fprintf(stderr, "jqrun: list failed: redis unavailable\n");
        return 1;
    }
    printf("%-36s  %-10s  %-20s  %-8s  %s\n", "ID", "STATUS", "TYPE", "ATTEMPTS", "CREATED");
    json_array_foreach(jobs, i, job) {
        char when[32];
        iso8601_format(json_integer_value(json_object_get(job, "createdAt")), when);
        printf("%-36s  %-10s  %-20s  %-8" JSON_INTEGER_FORMAT "  %s\n", jstr(job, "id"),
               jstr(job, "status"), jstr(job, "type"),
               json_integer_value(json_object_get(job, "attempts")), when);
    }
    if (next)
        printf("(more: use --limit to see more)\n");
    free(next);
    json_decref(jobs);
    return 0;
}

int
cli_stats(const struct config *c, int argc, char **argv)
{
    struct store *st;
    char **names;
    int n;

    (void)argv;
    if (argc != 1)
        return usage("usage: jqrun stats", NULL);
    if (!(st = open_store(c)))
        return 1;
    if ((n = queue_names(st, c->prefix, &names)) < 0) {
        store_close(st);
        fprintf(stderr, "jqrun: stats: redis unavailable\n");
        return 1;
    }
    printf("%-24s", "QUEUE");
    for (int s = 0; s < 6; s++)
        printf(" %10s", queue_states[s]);
    printf("  paused\n");
    for (int i = 0; i < n; i++) {
        json_t *counts;
        if (queue_counts(st, c->prefix, names[i], &counts) != Q_OK)
            continue;
        printf("%-24s", names[i]);
        for (int s = 0; s < 6; s++)
            printf(" %10" JSON_INTEGER_FORMAT,
                   json_integer_value(json_object_get(counts, queue_states[s])));
        printf("  %s\n", json_is_true(json_object_get(counts, "paused")) ? "yes" : "no");
        json_decref(counts);
    }
    queue_names_free(names, n);
    store_close(st);
    return 0;
}
