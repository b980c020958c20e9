/* store.h — one Redis connection (hiredis, synchronous) with the embedded
 * scripts loaded, reconnecting by itself.  A store is used by one thread at a
 * time: hiredis contexts are not thread-safe, so every thread opens its own. */
#ifndef JQ_STORE_H
#define JQ_STORE_H

#include <hiredis/hiredis.h>

/* The scripts of lua/, by index into script_srcs (see scripts.h). */
enum script_id {
    S_ENQUEUE, S_LEASE, S_EXTEND, S_COMPLETE, S_FAIL, S_CANCEL, S_RETRY,
    S_PROMOTE, S_RECLAIM, S_PAUSE, S_REMOVE, S_PROGRESS, S_COUNTS, S_TRIM,
    S_RELEASE,
    S_AUTH, S_APP_CREATE, S_APP_DELETE,     /* applications and API keys */
    S_WH_CLAIM, S_WH_RESULT, S_WH_FANOUT,   /* webhook outbox */
    S_COUNT
};

struct store {
    redisContext *ctx;       /* NULL while disconnected */
    char   *url;             /* "redis://[:pw@]host:port/db" or "unix:///path" */
    char    sha[S_COUNT][41];/* SHA1 of each script as loaded */
    char    err[256];        /* last error, for messages */
    int     backoff_ms;      /* current reconnect backoff */
    long long next_try;      /* mono ms before which no reconnect is tried */
    char  *known[64];        /* queues this store has registered (P:queues) */
    int    nknown;
};

/* store_script_name is the lua/ file name of a script id. */
const char *store_script_name(enum script_id id);

/* store_open connects to url and loads the scripts.  Returns a store even
 * when Redis is unreachable (then store->ctx is NULL and store->err says
 * why); NULL only for a malformed url, with the reason in err. */
struct store *store_open(const char *url, char *err, size_t errlen);
void store_close(struct store *st);

/* store_ready makes sure st is connected, reconnecting (with backoff between
 * attempts, logging once per outage) if needed.  0 when connected, -1 not. */
int store_ready(struct store *st);

/* store_drop_if_closed closes a connection that Redis closed while it sat
 * idle between commands (Redis restarted, or timed the client out), so the
 * next command reconnects instead of failing once on the dead socket.
 * Returns 1 when it dropped the connection. */
int store_drop_if_closed(struct store *st);

/* store_command runs one command (hiredis format).  Returns the reply (caller
 * frees with freeReplyObject), or NULL when the connection failed: then the
 * store is marked disconnected and st->err says why.  A Redis error reply is
 * returned as a REDIS_REPLY_ERROR reply, not NULL. */
redisReply *store_command(struct store *st, const char *fmt, ...);
redisReply *store_commandargv(struct store *st, int argc, const char **argv,
                              const size_t *argvlen);

/* store_eval runs script `id` with EVALSHA: argv holds the keys then the
 * args (numkeys of them are keys).  On NOSCRIPT (Redis restarted or flushed)
 * it loads the script again and retries once.  Returns like store_command. */
redisReply *store_eval(struct store *st, enum script_id id, int numkeys,
                       int argc, const char **argv, const size_t *argvlen);

/* store_append_eval / store_get_reply pipeline several EVALSHAs: append n,
 * then read n replies.  NOSCRIPT is not retried here: callers load scripts
 * first with store_ready. */
int store_append_eval(struct store *st, enum script_id id, int numkeys,
                      int argc, const char **argv, const size_t *argvlen);
redisReply *store_get_reply(struct store *st);

/* store_forget_queues empties the cache of queues this connection has
 * registered in P:queues (done on every reconnect; tests that FLUSHALL
 * call it too). */
void store_forget_queues(struct store *st);

/* store_url_parse splits a url into a host/port or a socket path, a
 * password (may be NULL) and a db number.  0, or -1 with err set. */
struct store_addr {
    char host[256];
    int  port;
    char path[512];      /* set for unix:// */
    char password[256];  /* empty when none */
    int  db;
};
int store_url_parse(const char *url, struct store_addr *a, char *err, size_t errlen);

#endif
