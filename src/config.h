/* config.h — jqrun.conf: a Lua file of plain assignments, read in an empty
 * environment, then overridden by JQRUN_<KEY> variables and flags. */
#ifndef JQ_CONFIG_H
#define JQ_CONFIG_H

#include <stdint.h>

#define CONFIG_MAX_QUEUES 64

/* queue_conf is one entry of `queues = { name = { concurrency = N } }`. */
struct queue_conf {
    char *name;       /* a valid queue name */
    int   concurrency; /* handlers of this queue running at once, >= 1 */
};

/* retention_conf keeps at most `count` finished jobs of a state, none older
 * than `age` ms. */
struct retention_conf {
    int64_t count;
    int64_t age;      /* ms */
};

struct config {
    char   *path;          /* file read, or NULL when none was found */
    char   *listen;        /* "host:port", default "127.0.0.1:8080" */
    char   *redis;         /* "redis://..." / "unix://..."; NULL = embedded */
    char   *data_dir;      /* default ".jqrun" */
    char   *handlers;      /* handler directory, default "handlers" */
    char   *prefix;        /* key prefix, default "jq" */
    struct queue_conf queues[CONFIG_MAX_QUEUES]; /* default: default = 4 */
    int     nqueues;
    int     max_attempts;  /* defaults.max_attempts, default 3 */
    int64_t backoff;       /* defaults.backoff ms, default 1000 */
    int64_t timeout;       /* defaults.timeout ms, default 30000 */
    int64_t lease;         /* ms, default 30000 */
    int64_t shutdown_grace;/* ms, default 30000 */
    int64_t memory_limit;  /* limits.memory bytes, default 64 MiB */
    struct retention_conf keep_completed; /* default 10000, 1 day */
    struct retention_conf keep_failed;    /* default 10000, 7 days */
    int64_t http_max_body;           /* default 1 MiB */
    int     http_connection_timeout; /* seconds, default 30 */
    int     http_max_connections;    /* default 1024 */
    int     webhook_attempts;        /* default 8 */
    int64_t webhook_backoff;         /* ms, default 1000 */
    int64_t webhook_timeout;         /* ms, default 10000 */
    char   *log_level;               /* "debug|info|warn|error", default "info" */
    char   *master_key;              /* auth.master_key or NULL */
    char   *webhook_secret;          /* auth.webhook_secret or NULL */
    int     rate_limit_requests;     /* auth.rate_limit.requests: bucket size
                                        per API key; 0 = no limit (default) */
    int64_t rate_limit_per;          /* auth.rate_limit.per: ms to refill a
                                        whole bucket, default 1000 */
};

/* config_defaults fills c with DESIGN.md's defaults (all strings malloc'd). */
void config_defaults(struct config *c);

/* config_load reads the config: `path` if not NULL (it must exist), else
 * $JQRUN_CONFIG if set (it must exist), else ./jqrun.conf if it exists, else
 * only defaults.  Then JQRUN_<KEY> environment variables override top-level
 * keys (JQRUN_LISTEN, JQRUN_REDIS, JQRUN_DATA_DIR, JQRUN_HANDLERS,
 * JQRUN_PREFIX, JQRUN_LEASE, JQRUN_SHUTDOWN_GRACE, JQRUN_LOG_LEVEL,
 * JQRUN_MASTER_KEY, JQRUN_WEBHOOK_SECRET).  Returns 0; or -1 with a message
 * naming the file, line and key in err (size errlen), e.g.
 * "jqrun.conf:3: unknown key 'lisen'" or "jqrun.conf:5: 'lease' must be a
 * positive integer (ms)". */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/* config_load_string is config_load on an in-memory file named `name`
 * (no environment overrides); for tests and fuzzing. */
int config_load_string(struct config *c, const char *src, const char *name,
                       char *err, size_t errlen);

/* config_find_queue returns the queue entry named `name`, or NULL. */
const struct queue_conf *config_find_queue(const struct config *c, const char *name);

/* config_free releases every string of c. */
void config_free(struct config *c);

#endif
