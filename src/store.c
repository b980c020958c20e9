/* store.c — a reconnecting hiredis connection that runs the embedded scripts.
 *
 * Every state change of a job is one EVALSHA of a script in lua/ (see
 * scripts.h): Redis runs it atomically, so a crash of jqrun between two
 * commands can never leave a job half-moved. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "log.h"
#include "scripts.h"
#include "store.h"
#include "util.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

static const char *const script_names[S_COUNT] = {
    "enqueue", "lease", "extend", "complete", "fail", "cancel", "retry",
    "promote", "reclaim", "pause", "remove", "progress", "counts", "trim",
    "release",
    "auth", "app_create", "app_delete",
    "wh_claim", "wh_result", "wh_fanout",
};

const char *
store_script_name(enum script_id id)
{
    return script_names[id];
}

static const char *
script_source(enum script_id id)
{
    for (const struct script_src *s = script_srcs; s->name; s++)
        if (strcmp(s->name, script_names[id]) == 0)
            return s->source;
    return NULL;
}

int
store_url_parse(const char *url, struct store_addr *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7, *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || n >= sizeof a->path || p[0] != '/') {
            snprintf(err, errlen, "redis url '%s': unix:// needs an absolute socket path", url);
            return -1;
        }
        memcpy(a->path, p, n);
        if (q && strncmp(q, "?db=", 4) == 0)
            a->db = atoi(q + 4);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "redis url '%s': must start with redis:// or unix://", url);
        return -1;
    }
    const char *p = url + 8, *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n >= sizeof a->password) {
            snprintf(err, errlen, "redis url: password too long");
            return -1;
        }
        memcpy(a->password, pw, n);
        p = at + 1;
    }
    const char *end = p + strcspn(p, "/");
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *hend = colon ? colon : end;
    if (hend == p || (size_t)(hend - p) >= sizeof a->host) {
        snprintf(err, errlen, "redis url '%s': missing host", url);
        return -1;
    }
    memcpy(a->host, p, (size_t)(hend - p));
    if (colon) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (e != end || port < 1 || port > 65535) {
            snprintf(err, errlen, "redis url '%s': bad port", url);
            return -1;
        }
        a->port = (int)port;
    }
    if (*end == '/' && end[1]) {
        char *e;
        long db = strtol(end + 1, &e, 10);
        if (*e || db < 0 || db > 1000000) {
            snprintf(err, errlen, "redis url '%s': bad db number", url);
            return -1;
        }
        a->db = (int)db;
    }
    return 0;
}

void
store_forget_queues(struct store *st)
{
    for (int i = 0; i < st->nknown; i++)
        free(st->known[i]);
    st->nknown = 0;
}

/* load_scripts sends SCRIPT LOAD for every script and keeps their SHAs. */
static int
load_scripts(struct store *st)
{
    for (int i = 0; i < S_COUNT; i++) {
        const char *src = script_source((enum script_id)i);
        redisReply *r;
        if (!src) {
            snprintf(st->err, sizeof st->err, "script lua/%s.lua is missing from the build",
                     script_names[i]);
            return -1;
        }
        r = redisCommand(st->ctx, "SCRIPT LOAD %s", src);
        if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
            snprintf(st->err, sizeof st->err, "SCRIPT LOAD lua/%s.lua: %s", script_names[i],
                     r && r->type == REDIS_REPLY_ERROR ? r->str : st->ctx->errstr);
            if (r)
                freeReplyObject(r);
            return -1;
        }
        memcpy(st->sha[i], r->str, 41);
        freeReplyObject(r);
    }
    return 0;
}

static void
disconnect(struct store *st)
{
    if (st->ctx) {
        redisFree(st->ctx);
        st->ctx = NULL;
    }
}

/* connect_once makes one attempt to connect, authenticate, select the db and
 * load the scripts.  0 or -1 with st->err set. */
static int
connect_once(struct store *st)
{
    struct store_addr a;
    struct timeval tv = { 2, 0 };
    redisReply *r;

    if (store_url_parse(st->url, &a, st->err, sizeof st->err) < 0)
        return -1;
    st->ctx = a.path[0] ? redisConnectUnixWithTimeout(a.path, tv)
                        : redisConnectWithTimeout(a.host, a.port, tv);
    if (!st->ctx || st->ctx->err) {
        snprintf(st->err, sizeof st->err, "cannot connect to %s: %s", st->url,
                 st->ctx ? st->ctx->errstr : "out of memory");
        disconnect(st);
        return -1;
    }
    if (a.password[0]) {
        r = redisCommand(st->ctx, "AUTH %s", a.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(st->err, sizeof st->err, "AUTH failed: %s", r ? r->str : st->ctx->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    if (a.db) {
        r = redisCommand(st->ctx, "SELECT %d", a.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(st->err, sizeof st->err, "SELECT %d failed: %s", a.db,
                     r ? r->str : st->ctx->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    /* Blocking reads (BLPOP) carry their own timeouts; the socket timeout
     * only guards against a Redis that stops answering altogether. */
    tv.tv_sec = 30;
    redisSetTimeout(st->ctx, tv);
    if (load_scripts(st) < 0) {
        disconnect(st);
        return -1;
    }
    /* A new connection may be to a Redis that lost P:queues (restarted
     * without persistence): register queues again as they are used. */
    store_forget_queues(st);
    return 0;
fail:
    if (r)
        freeReplyObject(r);
    disconnect(st);
    return -1;
}

struct store *
store_open(const char *url, char *err, size_t errlen)
{
    struct store_addr a;
    struct store *st;

    if (store_url_parse(url, &a, err, errlen) < 0)
        return NULL;
    st = xcalloc(1, sizeof *st);
    st->url = xstrdup(url);
    st->backoff_ms = BACKOFF_MIN_MS;
    if (connect_once(st) < 0)
        st->next_try = mono_ms() + st->backoff_ms;
    return st;
}

void
store_close(struct store *st)
{
    if (!st)
        return;
    disconnect(st);
    store_forget_queues(st);
    free(st->url);
    free(st);
}

int
store_ready(struct store *st)
{
    int64_t now;

    if (st->ctx)
        return 0;
    now = mono_ms();
    if (now < st->next_try)
        return -1;
    if (connect_once(st) == 0) {
        if (st->backoff_ms > BACKOFF_MIN_MS)
            log_info("redis: reconnected to %s", st->url);
        st->backoff_ms = BACKOFF_MIN_MS;
        return 0;
    }
    /* Log the first failure of an outage, then only as the backoff grows. */
    if (st->backoff_ms == BACKOFF_MIN_MS || st->backoff_ms < BACKOFF_MAX_MS)
        log_warn("redis: %s (retrying in %d ms)", st->err, st->backoff_ms);
    st->next_try = now + st->backoff_ms;
    st->backoff_ms = st->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : st->backoff_ms * 2;
    return -1;
}

int
store_drop_if_closed(struct store *st)
{
    char c;
    ssize_t n;

    if (!st->ctx)
        return 0;
    /* Nothing may be pending between commands, so anything readable
     * means EOF or an error.  One non-blocking recv: about a microsecond. */
    n = recv(st->ctx->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        disconnect(st);
        st->next_try = 0;
        return 1;
    }
    return 0;
}

/* check_io turns a NULL reply into a disconnect with st->err set. */
static redisReply *
check_io(struct store *st, redisReply *r)
{
    if (!r) {
        snprintf(st->err, sizeof st->err, "redis: %s",
                 st->ctx && st->ctx->errstr[0] ? st->ctx->errstr : "connection lost");
        disconnect(st);
        st->next_try = 0; /* try once right away next time */
    }
    return r;
}

redisReply *
store_command(struct store *st, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    if (store_ready(st) < 0)
        return NULL;
    va_start(ap, fmt);
    r = redisvCommand(st->ctx, fmt, ap);
    va_end(ap);
    return check_io(st, r);
}

redisReply *
store_commandargv(struct store *st, int argc, const char **argv, const size_t *argvlen)
{
    if (store_ready(st) < 0)
        return NULL;
    return check_io(st, redisCommandArgv(st->ctx, argc, argv, argvlen));
}

/* build_evalsha prefixes argv with EVALSHA sha numkeys. Caller frees both. */
static void
build_evalsha(struct store *st, enum script_id id, int numkeys, int argc,
              const char **argv, const size_t *argvlen, const char ***av,
              size_t **al, char *nk)
{
    *av = xmalloc(sizeof(char *) * (size_t)(argc + 3));
    *al = xmalloc(sizeof(size_t) * (size_t)(argc + 3));
    snprintf(nk, 16, "%d", numkeys);
    (*av)[0] = "EVALSHA";
    (*al)[0] = 7;
    (*av)[1] = st->sha[id];
    (*al)[1] = 40;
    (*av)[2] = nk;
    (*al)[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        (*av)[i + 3] = argv[i];
        (*al)[i + 3] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
}

redisReply *
store_eval(struct store *st, enum script_id id, int numkeys, int argc,
           const char **argv, const size_t *argvlen)
{
    const char **av;
    size_t *al;
    char nk[16];
    redisReply *r;

    if (store_ready(st) < 0)
        return NULL;
    build_evalsha(st, id, numkeys, argc, argv, argvlen, &av, &al, nk);
    r = check_io(st, redisCommandArgv(st->ctx, argc + 3, av, al));
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* Redis lost its script cache (restart, SCRIPT FLUSH): load again. */
        freeReplyObject(r);
        r = NULL;
        if (load_scripts(st) == 0) {
            av[1] = st->sha[id];
            r = check_io(st, redisCommandArgv(st->ctx, argc + 3, av, al));
        } else {
            disconnect(st);
        }
    }
    free(av);
    free(al);
    return r;
}

int
store_append_eval(struct store *st, enum script_id id, int numkeys, int argc,
                  const char **argv, const size_t *argvlen)
{
    const char **av;
    size_t *al;
    char nk[16];
    int rc;

    if (store_ready(st) < 0)
        return -1;
    build_evalsha(st, id, numkeys, argc, argv, argvlen, &av, &al, nk);
    rc = redisAppendCommandArgv(st->ctx, argc + 3, av, al) == REDIS_OK ? 0 : -1;
    free(av);
    free(al);
    return rc;
}

redisReply *
store_get_reply(struct store *st)
{
    void *r = NULL;
    if (!st->ctx)
        return NULL;
    if (redisGetReply(st->ctx, &r) != REDIS_OK)
        r = NULL;
    return check_io(st, r);
}
