/* config.c — jqrun.conf: a Lua file of plain assignments.
 *
 * The file is Lua so that users can write `64 * 1024 * 1024` and comments,
 * but it is data, not a program.  The chunk runs in a fresh lua_State:
 *   - its _ENV is an empty table whose metatable serves reads from the keys
 *     assigned so far and from read-only `math` and a pattern-free `string`;
 *     no other global exists (no io, os, require, load, dofile, print...);
 *   - a count hook stops it after CONF_MAX_STEPS VM instructions, and the
 *     allocator refuses to grow past CONF_MAX_MEMORY,
 * so a broken or hostile file ends in an error message, never in a hang or
 * a crash of the process.
 *
 * Every top-level assignment goes through _ENV's __newindex, which stores
 * the value in a side table `vals` and the line of the assignment in
 * `lines`: that is how an error names the line of its key.  After the chunk
 * ran, each assigned key is checked against the `spec` tables below and
 * copied into struct config. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define CONF_MAX_FILE    (1 << 20)           /* bytes of jqrun.conf */
#define CONF_MAX_MEMORY  ((size_t)16 << 20)  /* bytes the chunk may use */
#define CONF_CHECK_SLACK ((size_t)1 << 20)   /* extra bytes for checking */
#define CONF_MAX_STEPS   10000000            /* VM instructions */
#define CONF_HOOK_EVERY  1000                /* instructions per count hook */
#define MS_MAX           INT64_C(3153600000000) /* 100 years: no overflow */
#define QUEUE_DEFAULT_CONCURRENCY 4
#define QUEUE_MAX_CONCURRENCY     1024
#define ERR_MAX          512

/* Lua names the chunk CHUNK_TAG, so its messages read "config:3: ..."; we
 * put the real path back in front.  (Lua's own "@path" would cut paths
 * longer than LUA_IDSIZE into "...tail".) */
#define CHUNK_TAG        "config"

/* msgf is snprintf for messages, where cutting a long message short is
 * fine (and GCC's -Wformat-truncation about it is noise). */
static void msgf(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
msgf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* ---- what each key may hold ---------------------------------------- */

enum kind {
    K_STR,     /* a string that `ok` accepts */
    K_OPTSTR,  /* the same, and nil keeps the default (NULL) */
    K_INT,     /* an integer in [min, max], stored as int */
    K_I64,     /* an integer in [min, max], stored as int64_t */
    K_TABLE,   /* a table of the keys in `sub` */
    K_QUEUES,  /* queues = { name = { concurrency = N } } */
};

struct spec {
    const char        *name;
    enum kind          kind;
    size_t             off;        /* offset of the field in struct config */
    int64_t            min, max;   /* K_INT, K_I64 */
    const char        *what;       /* "a positive integer (ms)" */
    int              (*ok)(const char *s); /* K_STR, K_OPTSTR */
    const struct spec *sub;        /* K_TABLE, ended by a NULL name */
};

static int listen_ok(const char *s);
static int redis_ok(const char *s);
static int nonempty_ok(const char *s);
static int prefix_ok(const char *s);
static int level_ok(const char *s);

#define OFF(f) offsetof(struct config, f)
#define STR(n, f, ok, what)     { n, K_STR, OFF(f), 0, 0, what, ok, NULL }
#define OPTSTR(n, f, ok, what)  { n, K_OPTSTR, OFF(f), 0, 0, what, ok, NULL }
#define INT(n, f, lo, hi, what) { n, K_INT, OFF(f), lo, hi, what, NULL, NULL }
#define I64(n, f, lo, hi, what) { n, K_I64, OFF(f), lo, hi, what, NULL, NULL }
#define TABLE(n, sub)           { n, K_TABLE, 0, 0, 0, "a table", NULL, sub }
#define END                     { .name = NULL }

#define POS_MS    "a positive integer (ms)"
#define NONNEG_MS "a non-negative integer (ms)"

static const struct spec defaults_spec[] = {
    INT("max_attempts", max_attempts, 1, 100, "an integer in 1..100"),
    I64("backoff", backoff, 0, MS_MAX, NONNEG_MS),
    I64("timeout", timeout, 1, MS_MAX, POS_MS),
    END
};
static const struct spec limits_spec[] = {
    I64("memory", memory_limit, 1 << 20, INT64_C(1) << 40,
        "an integer >= 1048576 (bytes)"),
    END
};
static const struct spec completed_spec[] = {
    I64("count", keep_completed.count, 0, INT64_MAX, "a non-negative integer"),
    I64("age", keep_completed.age, 0, MS_MAX, NONNEG_MS),
    END
};
static const struct spec failed_spec[] = {
    I64("count", keep_failed.count, 0, INT64_MAX, "a non-negative integer"),
    I64("age", keep_failed.age, 0, MS_MAX, NONNEG_MS),
    END
};
static const struct spec retention_spec[] = {
    TABLE("completed", completed_spec),
    TABLE("failed", failed_spec),
    END
};
static const struct spec http_spec[] = {
    I64("max_body", http_max_body, 1, INT64_C(1) << 40,
        "a positive integer (bytes)"),
    INT("connection_timeout", http_connection_timeout, 0, 86400,
        "a non-negative integer (seconds)"),
    INT("max_connections", http_max_connections, 1, 1000000,
        "a positive integer"),
    END
};
static const struct spec webhooks_spec[] = {
    INT("attempts", webhook_attempts, 1, 100, "an integer in 1..100"),
    I64("backoff", webhook_backoff, 0, MS_MAX, NONNEG_MS),
    I64("timeout", webhook_timeout, 1, MS_MAX, POS_MS),
    END
};
static const struct spec log_spec[] = {
    STR("level", log_level, level_ok,
        "one of \"debug\", \"info\", \"warn\", \"error\""),
    END
};
static const struct spec rate_limit_spec[] = {
    INT("requests", rate_limit_requests, 0, 1000000,
        "a non-negative integer (0 = no limit)"),
    I64("per", rate_limit_per, 1, MS_MAX, POS_MS),
    END
};
static const struct spec auth_spec[] = {
    OPTSTR("master_key", master_key, nonempty_ok, "a non-empty string or nil"),
    OPTSTR("webhook_secret", webhook_secret, nonempty_ok,
           "a non-empty string or nil"),
    TABLE("rate_limit", rate_limit_spec),
    END
};
static const struct spec top_spec[] = {
    STR("listen", listen, listen_ok, "a \"host:port\" string"),
    OPTSTR("redis", redis, redis_ok,
           "a \"redis://host:port/db\" or \"unix:///path\" string, or nil"),
    STR("data_dir", data_dir, nonempty_ok, "a non-empty string"),
    STR("handlers", handlers, nonempty_ok, "a non-empty string"),
    STR("prefix", prefix, prefix_ok,
        "a string of 1 to 64 characters from [A-Za-z0-9_.-]"),
    { "queues", K_QUEUES, 0, 0, 0, NULL, NULL, NULL },
    TABLE("defaults", defaults_spec),
    I64("lease", lease, 1, MS_MAX, POS_MS),
    I64("shutdown_grace", shutdown_grace, 0, MS_MAX, NONNEG_MS),
    TABLE("limits", limits_spec),
    TABLE("retention", retention_spec),
    TABLE("http", http_spec),
    TABLE("webhooks", webhooks_spec),
    TABLE("log", log_spec),
    TABLE("auth", auth_spec),
    END
};

/* The environment variables that override a key, by dotted key name. */
static const struct {
    const char *var;
    const char *key;
} env_keys[] = {
    { "JQRUN_LISTEN", "listen" },
    { "JQRUN_REDIS", "redis" },
    { "JQRUN_DATA_DIR", "data_dir" },
    { "JQRUN_HANDLERS", "handlers" },
    { "JQRUN_PREFIX", "prefix" },
    { "JQRUN_LEASE", "lease" },
    { "JQRUN_SHUTDOWN_GRACE", "shutdown_grace" },
    { "JQRUN_LOG_LEVEL", "log.level" },
    { "JQRUN_MASTER_KEY", "auth.master_key" },
    { "JQRUN_WEBHOOK_SECRET", "auth.webhook_secret" },
};

/* listen_ok accepts "host:port" with a non-empty host and a port 0..65535
 * (0 lets the kernel pick one, which the tests use). */
static int
listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    long port = 0;

    if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5)
        return 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        port = port * 10 + (*p - '0');
    }
    return port <= 65535;
}

static int
redis_ok(const char *s)
{
    return (strncmp(s, "redis://", 8) == 0 && s[8])
        || (strncmp(s, "unix://", 7) == 0 && s[7]);
}

static int
nonempty_ok(const char *s)
{
    return s[0] != '\0';
}

/* prefix_ok keeps the prefix to characters that need no quoting in a Redis
 * key or a log line, and short enough not to matter in key sizes. */
static int
prefix_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.'
              || *s == '-'))
            return 0;
    return 1;
}

static int
level_ok(const char *s)
{
    return log_parse_level(s) >= 0;
}

/* find_spec returns the spec of a dotted key ("auth.master_key"), or NULL. */
static const struct spec *
find_spec(const struct spec *table, const char *key)
{
    size_t n = strcspn(key, ".");

    for (const struct spec *s = table; s && s->name; s++) {
        if (strlen(s->name) != n || strncmp(s->name, key, n) != 0)
            continue;
        if (!key[n])
            return s;
        return s->kind == K_TABLE ? find_spec(s->sub, key + n + 1) : NULL;
    }
    return NULL;
}

/* ---- storing a checked value (shared by the file and the env) ------- */

/* set_str stores a copy of v in the string field of s.  Returns 0, or -1
 * with "must be ..." in frag. */
static int
set_str(struct config *c, const struct spec *s, const char *v,
        char *frag, size_t n)
{
    char **slot = (char **)((char *)c + s->off);

    if (!s->ok(v)) {
        msgf(frag, n, "must be %s, got \"%.64s\"", s->what, v);
        return -1;
    }
    free(*slot);
    *slot = xstrdup(v);
    return 0;
}

/* check_range is 0 when min <= v <= max, else -1 with "must be ..." in
 * frag. */
static int
check_range(int64_t v, int64_t min, int64_t max, const char *what,
            char *frag, size_t n)
{
    if (v < min) {
        msgf(frag, n, "must be %s, got %lld", what, (long long)v);
        return -1;
    }
    if (v > max) {
        msgf(frag, n, "must be at most %lld, got %lld", (long long)max,
                 (long long)v);
        return -1;
    }
    return 0;
}

/* set_int stores v in the integer field of s after a range check.  Returns
 * 0, or -1 with "must be ..." in frag. */
static int
set_int(struct config *c, const struct spec *s, int64_t v,
        char *frag, size_t n)
{
    void *slot = (char *)c + s->off;

    if (check_range(v, s->min, s->max, s->what, frag, n) < 0)
        return -1;
    if (s->kind == K_INT)
        *(int *)slot = (int)v;   /* every K_INT max fits an int */
    else
        *(int64_t *)slot = v;
    return 0;
}

/* ---- reading Lua values --------------------------------------------- */

/* lua_int reads the value at idx as an integer: a Lua integer or a float
 * with an integral value (1e3).  Returns 0, or -1 with "must be WHAT, got
 * ..." in frag. */
static int
lua_int(lua_State *L, int idx, int64_t *v, const char *what,
        char *frag, size_t n)
{
    int isnum = 0;
    lua_Integer i;

    /* lua_tointegerx would also convert the string "10": refuse strings. */
    if (lua_type(L, idx) != LUA_TNUMBER) {
        msgf(frag, n, "must be %s, got %s", what, luaL_typename(L, idx));
        return -1;
    }
    i = lua_tointegerx(L, idx, &isnum);
    if (!isnum) {
        msgf(frag, n, "must be %s, got %.14g", what,
                 (double)lua_tonumber(L, idx));
        return -1;
    }
    *v = i;
    return 0;
}

static int check_value(lua_State *L, int idx, struct config *c,
                       const struct spec *s, const char *key,
                       char *msg, size_t n);

/* key_error writes "'KEY' FRAG" into msg and returns -1. */
static int
key_error(char *msg, size_t n, const char *key, const char *frag)
{
    msgf(msg, n, "'%s' %s", key, frag);
    return -1;
}

/* bad_key writes the message for a table key that is not a name we know:
 * "unknown key 'defaults.retries'" or "unknown key 'defaults[1]'". */
static int
bad_key(lua_State *L, int kidx, const char *key, char *msg, size_t n)
{
    if (lua_type(L, kidx) == LUA_TSTRING)
        msgf(msg, n, "unknown key '%s.%.128s'", key,
                 lua_tostring(L, kidx));
    else if (lua_isinteger(L, kidx))
        msgf(msg, n, "unknown key '%s[%lld]'", key,
                 (long long)lua_tointeger(L, kidx));
    else
        msgf(msg, n, "'%s' may only have named keys, got a %s key", key,
                 luaL_typename(L, kidx));
    return -1;
}

/* check_table checks every key of the table at idx against sub.
 *   before: ... [idx]=table ...      after: the same
 * Returns 0, or -1 with a message in msg. */
static int
check_table(lua_State *L, int idx, struct config *c, const struct spec *sub,
            const char *key, char *msg, size_t n)
{
    char child[300];
    const struct spec *s;

    if (lua_type(L, idx) != LUA_TTABLE) {
        msgf(msg, n, "'%s' must be a table, got %s", key,
                 luaL_typename(L, idx));
        return -1;
    }
    lua_pushnil(L);                                /* ... nil */
    while (lua_next(L, idx)) {                     /* ... k v */
        s = NULL;
        if (lua_type(L, -2) == LUA_TSTRING)
            s = find_spec(sub, lua_tostring(L, -2));
        if (lua_type(L, -2) != LUA_TSTRING || !s
            || strchr(lua_tostring(L, -2), '.')) {
            bad_key(L, lua_gettop(L) - 1, key, msg, n);
            lua_pop(L, 2);                         /* ... */
            return -1;
        }
        msgf(child, sizeof child, "%s.%s", key, s->name);
        if (check_value(L, lua_gettop(L), c, s, child, msg, n) < 0) {
            lua_pop(L, 2);                         /* ... */
            return -1;
        }
        lua_pop(L, 1);                             /* ... k */
    }
    return 0;
}

static int
queue_cmp(const void *a, const void *b)
{
    return strcmp(((const struct queue_conf *)a)->name,
                  ((const struct queue_conf *)b)->name);
}

/* check_queue fills q from `{ concurrency = N }` at idx; name is q's name.
 * Returns 0, or -1 with a message in msg. */
static int
check_queue(lua_State *L, int idx, struct queue_conf *q, char *msg, size_t n)
{
    char key[200], frag[ERR_MAX];
    int64_t v;

    msgf(key, sizeof key, "queues.%s", q->name);
    if (lua_type(L, idx) != LUA_TTABLE) {
        msgf(msg, n, "'%s' must be a table like { concurrency = 4 }, "
                 "got %s", key, luaL_typename(L, idx));
        return -1;
    }
    lua_pushnil(L);                                /* ... nil */
    while (lua_next(L, idx)) {                     /* ... k v */
        if (lua_type(L, -2) != LUA_TSTRING
            || strcmp(lua_tostring(L, -2), "concurrency") != 0) {
            bad_key(L, lua_gettop(L) - 1, key, msg, n);
            lua_pop(L, 2);
            return -1;
        }
        if (lua_int(L, -1, &v, "a positive integer", frag, sizeof frag) < 0
            || check_range(v, 1, QUEUE_MAX_CONCURRENCY, "a positive integer",
                           frag, sizeof frag) < 0) {
            msgf(msg, n, "'%s.concurrency' %s", key, frag);
            lua_pop(L, 2);
            return -1;
        }
        q->concurrency = (int)v;
        lua_pop(L, 1);                             /* ... k */
    }
    return 0;
}

/* check_queues replaces c's queue list with the table at idx, sorted by
 * name so that the order does not depend on Lua's hashing.  Returns 0, or
 * -1 with a message in msg. */
static int
check_queues(lua_State *L, int idx, struct config *c, char *msg, size_t n)
{
    if (lua_type(L, idx) != LUA_TTABLE) {
        msgf(msg, n, "'queues' must be a table like "
                 "{ default = { concurrency = 4 } }, got %s",
                 luaL_typename(L, idx));
        return -1;
    }
    for (int i = 0; i < c->nqueues; i++) {
        free(c->queues[i].name);
        c->queues[i].name = NULL;
    }
    c->nqueues = 0;
    lua_pushnil(L);                                /* ... nil */
    while (lua_next(L, idx)) {                     /* ... k v */
        struct queue_conf *q;
        if (lua_type(L, -2) != LUA_TSTRING) {
            msgf(msg, n, "'queues' must map queue names to tables, "
                     "got a %s key", luaL_typename(L, -2));
            lua_pop(L, 2);
            return -1;
        }
        if (!valid_name(lua_tostring(L, -2))) {
            msgf(msg, n, "'queues' has an invalid queue name \"%.64s\" "
                     "(want [A-Za-z0-9._:-]{1,128})", lua_tostring(L, -2));
            lua_pop(L, 2);
            return -1;
        }
        if (c->nqueues == CONFIG_MAX_QUEUES) {
            msgf(msg, n, "'queues' has more than %d queues",
                     CONFIG_MAX_QUEUES);
            lua_pop(L, 2);
            return -1;
        }
        q = &c->queues[c->nqueues++];
        q->name = xstrdup(lua_tostring(L, -2));
        q->concurrency = QUEUE_DEFAULT_CONCURRENCY;
        if (check_queue(L, lua_gettop(L), q, msg, n) < 0) {
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);                             /* ... k */
    }
    qsort(c->queues, (size_t)c->nqueues, sizeof c->queues[0], queue_cmp);
    return 0;
}

/* check_value checks the value at idx against s and stores it in c; key is
 * its dotted name for messages.  Returns 0, or -1 with a message. */
static int
check_value(lua_State *L, int idx, struct config *c, const struct spec *s,
            const char *key, char *msg, size_t n)
{
    char frag[ERR_MAX];
    int64_t v;
    size_t len;
    const char *str;

    switch (s->kind) {
    case K_STR:
    case K_OPTSTR:
        if (lua_type(L, idx) != LUA_TSTRING) {
            msgf(frag, sizeof frag, "must be %s, got %s", s->what,
                     luaL_typename(L, idx));
            return key_error(msg, n, key, frag);
        }
        str = lua_tolstring(L, idx, &len);
        if (strlen(str) != len)
            return key_error(msg, n, key, "must not contain a NUL byte");
        if (set_str(c, s, str, frag, sizeof frag) < 0)
            return key_error(msg, n, key, frag);
        return 0;
    case K_INT:
    case K_I64:
        if (lua_int(L, idx, &v, s->what, frag, sizeof frag) < 0
            || set_int(c, s, v, frag, sizeof frag) < 0)
            return key_error(msg, n, key, frag);
        return 0;
    case K_TABLE:
        return check_table(L, idx, c, s->sub, key, msg, n);
    case K_QUEUES:
        return check_queues(L, idx, c, msg, n);
    }
    return 0;
}

/* ---- running the chunk ---------------------------------------------- */

/* loadctx is one evaluation of a config: the allocator's budget, the
 * hook's counters and the first error found by the checks. */
struct loadctx {
    const char    *src;
    size_t         len;
    struct config *cfg;
    size_t         used, limit; /* bytes the lua_State holds / may hold */
    long           steps;       /* VM instructions run, roughly */
    int            line;        /* line running, for out-of-memory errors */
    int            status;      /* a luaL_loadbufferx failure */
    int            errline;     /* line of err, INT_MAX when no error */
    char           err[ERR_MAX];
    char           errkey[130]; /* the top-level key of err */
};

/* capped_alloc is a lua_Alloc that refuses to hold more than x->limit
 * bytes; Lua turns the refusal into a "not enough memory" error. */
static void *
capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct loadctx *x = ud;
    size_t old = ptr ? osize : 0;   /* without ptr, osize is a type tag */
    void *p;

    if (nsize == 0) {
        free(ptr);
        x->used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > x->limit - x->used)
        return NULL;
    p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    x->used = x->used - old + nsize;
    return p;
}

/* step_hook keeps the line running (for memory errors, which carry no
 * position) and stops a chunk that runs too long. */
static void
step_hook(lua_State *L, lua_Debug *ar)
{
    void *ud;
    struct loadctx *x;

    lua_getallocf(L, &ud);
    x = ud;
    if (ar->event == LUA_HOOKLINE) {
        x->line = ar->currentline;
        return;
    }
    x->steps += CONF_HOOK_EVERY;
    if (x->steps <= CONF_MAX_STEPS)
        return;
    lua_getinfo(L, "l", ar);
    lua_pushfstring(L, CHUNK_TAG ":%d: the config runs too long (over %d "
                    "instructions); it should only assign values",
                    ar->currentline, CONF_MAX_STEPS);
    lua_error(L);
}

/* readonly_newindex refuses `math.pi = 3`: the libraries are shared by the
 * whole chunk and nothing in a config needs to change them. */
static int
readonly_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify the read-only table '%s'",
                      lua_tostring(L, lua_upvalueindex(1)));
}

/* push_readonly replaces the table on top with a read-only proxy of it.
 *   before: ... t      after: ... proxy */
static void
push_readonly(lua_State *L, const char *name)
{
    lua_newtable(L);                               /* t proxy */
    lua_newtable(L);                               /* t proxy mt */
    lua_pushvalue(L, -3);                          /* t proxy mt t */
    lua_setfield(L, -2, "__index");                /* t proxy mt */
    lua_pushstring(L, name);                       /* t proxy mt name */
    lua_pushcclosure(L, readonly_newindex, 1);     /* t proxy mt f */
    lua_setfield(L, -2, "__newindex");             /* t proxy mt */
    lua_setmetatable(L, -2);                       /* t proxy */
    lua_remove(L, -2);                             /* proxy */
}

/* push_library pushes the globals a config may read: read-only `math`, and
 * a read-only `string` without find/match/gmatch/gsub (a pattern can
 * backtrack for minutes inside one C call, out of the count hook's reach)
 * and without dump/pack/unpack (no use in a config).
 *   before: ...      after: ... G */
static void
push_library(lua_State *L)
{
    static const char *const string_ok[] = {
        "byte", "char", "format", "len", "lower", "rep", "reverse", "sub",
        "upper", NULL,
    };

    lua_newtable(L);                               /* G */
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0); /* G math */
    push_readonly(L, LUA_MATHLIBNAME);             /* G proxy */
    lua_setfield(L, -2, LUA_MATHLIBNAME);          /* G */

    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0); /* G full */
    lua_newtable(L);                               /* G full safe */
    for (int i = 0; string_ok[i]; i++) {
        lua_getfield(L, -2, string_ok[i]);         /* G full safe f */
        lua_setfield(L, -2, string_ok[i]);         /* G full safe */
    }
    lua_remove(L, -2);                             /* G safe */
    push_readonly(L, LUA_STRLIBNAME);              /* G proxy */
    /* ("x"):rep(3) looks methods up through the strings' metatable, which
     * luaopen_string pointed at the full library: point it at the proxy. */
    lua_pushliteral(L, "");                        /* G proxy "" */
    lua_getmetatable(L, -1);                       /* G proxy "" mt */
    lua_pushvalue(L, -3);                          /* G proxy "" mt proxy */
    lua_setfield(L, -2, "__index");                /* G proxy "" mt */
    lua_pop(L, 2);                                 /* G proxy */
    lua_setfield(L, -2, LUA_STRLIBNAME);           /* G */
}

/* env_index serves a global read: a key the config assigned, else a
 * library.  Upvalues: vals, G.  Arguments: env, key. */
static int
env_index(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushvalue(L, 2);                           /* env k k */
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 1;                                  /* env k v */
    lua_pop(L, 1);                                 /* env k */
    lua_rawget(L, lua_upvalueindex(2));            /* env v */
    return 1;
}

/* env_newindex records a global assignment: the value in vals, the line
 * in lines.  env itself stays empty, so every assignment comes here and
 * the line of a key is that of its last assignment.
 * Upvalues: vals, lines.  Arguments: env, key, value. */
static int
env_newindex(lua_State *L)
{
    lua_Debug ar;
    int line = 0;

    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "a config may only assign names, not a %s key",
                          luaL_typename(L, 2));
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
        line = ar.currentline;
    lua_settop(L, 3);                              /* env k v */
    lua_pushvalue(L, 2);                           /* env k v k */
    lua_pushvalue(L, 3);                           /* env k v k v */
    lua_rawset(L, lua_upvalueindex(1));            /* env k v */
    lua_pushvalue(L, 2);                           /* env k v k */
    lua_pushinteger(L, line);                      /* env k v k line */
    lua_rawset(L, lua_upvalueindex(2));            /* env k v */
    return 0;
}

/* push_env pushes the chunk's _ENV.
 *   before: ... G vals lines      after: ... G vals lines env */
static void
push_env(lua_State *L)
{
    int top = lua_gettop(L);

    lua_newtable(L);                               /* env */
    lua_newtable(L);                               /* env mt */
    lua_pushvalue(L, top - 1);                     /* env mt vals */
    lua_pushvalue(L, top - 2);                     /* env mt vals G */
    lua_pushcclosure(L, env_index, 2);             /* env mt f */
    lua_setfield(L, -2, "__index");                /* env mt */
    lua_pushvalue(L, top - 1);                     /* env mt vals */
    lua_pushvalue(L, top);                         /* env mt vals lines */
    lua_pushcclosure(L, env_newindex, 2);          /* env mt f */
    lua_setfield(L, -2, "__newindex");             /* env mt */
    lua_setmetatable(L, -2);                       /* env */
}

/* check_assigned checks every assigned top-level key and keeps in x the
 * error of the lowest line, so the message does not depend on the order
 * of Lua's hash tables.
 *   before/after: ... vals lines   (at vi, li) */
static void
check_assigned(lua_State *L, struct loadctx *x, int vi, int li)
{
    char msg[ERR_MAX];
    const struct spec *s;

    lua_pushnil(L);                                /* ... nil */
    while (lua_next(L, li)) {                      /* ... k line */
        int line = (int)lua_tointeger(L, -1), bad = 0;
        const char *key = lua_tostring(L, -2);     /* a string: newindex */
        lua_pop(L, 1);                             /* ... k */
        lua_pushvalue(L, -1);                      /* ... k k */
        lua_rawget(L, vi);                         /* ... k v */
        s = find_spec(top_spec, key);
        if (!s || strchr(key, '.')) {
            msgf(msg, sizeof msg, "unknown key '%.128s'", key);
            bad = 1;
        } else if (!lua_isnil(L, -1)) {            /* nil keeps the default */
            bad = check_value(L, lua_gettop(L), x->cfg, s, s->name, msg,
                              sizeof msg) < 0;
        }
        if (bad && line < x->errline) {
            x->errline = line;
            memcpy(x->err, msg, sizeof msg);
            msgf(x->errkey, sizeof x->errkey, "%s", key);
        }
        lua_pop(L, 1);                             /* ... k */
    }
}

/* run_config is the protected body of an evaluation: it builds the sandbox,
 * runs the chunk and checks what it assigned.  Argument: the loadctx. */
static int
run_config(lua_State *L)
{
    struct loadctx *x = lua_touserdata(L, 1);
    int vi, li, st;

    push_library(L);                               /* x G */
    lua_newtable(L);                               /* x G vals */
    vi = lua_gettop(L);
    lua_newtable(L);                               /* x G vals lines */
    li = lua_gettop(L);
    push_env(L);                                   /* x G vals lines env */
    st = luaL_loadbufferx(L, x->src, x->len, "=" CHUNK_TAG, "t");
    if (st != LUA_OK) {                            /* ... env msg */
        x->status = st;
        return 1;
    }
    lua_pushvalue(L, -2);                          /* ... env chunk env */
    lua_setupvalue(L, -2, 1);                      /* ... env chunk */
    lua_sethook(L, step_hook, LUA_MASKCOUNT | LUA_MASKLINE, CONF_HOOK_EVERY);
    lua_call(L, 0, 0);                             /* ... env */
    lua_sethook(L, NULL, 0, 0);
    /* The checks push a few values: a chunk that filled its budget must
     * still be checkable rather than fail with an odd memory error. */
    x->limit += CONF_CHECK_SLACK;
    check_assigned(L, x, vi, li);
    return 0;
}

static int
is_ident(char ch)
{
    return ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
        || (ch >= 'A' && ch <= 'Z');
}

/* assigns_key tells whether the line [b, e) assigns key: `key =` with
 * no identifier character or '.' before key, and before any "--". */
static int
assigns_key(const char *b, const char *e, const char *key)
{
    size_t n = strlen(key);

    for (const char *p = b; p + n <= e; p++) {
        const char *q = p + n;
        if (p + 1 < e && p[0] == '-' && p[1] == '-')
            return 0;
        if (memcmp(p, key, n) != 0)
            continue;
        if (p > b && (p[-1] == '.' || is_ident(p[-1])))
            continue;
        while (q < e && (*q == ' ' || *q == '\t'))
            q++;
        if (q < e && *q == '=' && (q + 1 == e || q[1] != '='))
            return 1;
    }
    return 0;
}

/* key_line returns the line where the assignment of key that ends on line
 * `last` starts: Lua reports the line where a statement ends, which for
 * `defaults = {` ... `}` is the line of the brace.  It is the last line
 * up to `last` that assigns key, else `last`. */
static int
key_line(const char *src, size_t len, const char *key, int last)
{
    const char *b = src, *end = src + len;
    int found = last;

    for (int line = 1; line <= last && b <= end; line++) {
        const char *e = memchr(b, '\n', (size_t)(end - b));
        if (!e)
            e = end;
        if (assigns_key(b, e, key))
            found = line;
        b = e + 1;
    }
    return found;
}

/* lua_failure writes the message of a failed evaluation, with the path in
 * front: Lua's "config:3: msg" becomes "PATH:3: msg". */
static void
lua_failure(lua_State *L, const struct loadctx *x, int st, const char *path,
            char *msg, size_t n)
{
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                    : "unknown error";
    size_t tag = strlen(CHUNK_TAG ":");

    if (st == LUA_ERRMEM && x->line > 0)
        msgf(msg, n, "%s:%d: the config uses too much memory (over %zu "
                 "MiB)", path, x->line, CONF_MAX_MEMORY >> 20);
    else if (st == LUA_ERRMEM)
        msgf(msg, n, "%s: the config uses too much memory (over %zu "
                 "MiB)", path, CONF_MAX_MEMORY >> 20);
    else if (strncmp(m, CHUNK_TAG ":", tag) == 0)
        msgf(msg, n, "%s:%s", path, m + tag);
    else
        msgf(msg, n, "%s: %s", path, m);
}

/* load_source evaluates src (len bytes) into c, naming it path in
 * messages.  Returns 0, or -1 with a message in msg. */
static int
load_source(struct config *c, const char *src, size_t len, const char *path,
            char *msg, size_t n)
{
    struct loadctx x;
    lua_State *L;
    int st, rc = 0;

    memset(&x, 0, sizeof x);
    x.src = src;
    x.len = len;
    x.cfg = c;
    x.limit = CONF_MAX_MEMORY;
    x.errline = INT_MAX;
    L = lua_newstate(capped_alloc, &x);
    if (!L) {
        msgf(msg, n, "%s: cannot create a Lua state", path);
        return -1;
    }
    lua_pushcfunction(L, run_config);
    lua_pushlightuserdata(L, &x);
    st = lua_pcall(L, 1, 1, 0);
    if (st == LUA_OK)
        st = x.status;
    if (st != LUA_OK) {
        lua_failure(L, &x, st, path, msg, n);
        rc = -1;
    } else if (x.errline != INT_MAX) {
        msgf(msg, n, "%s:%d: %s", path,
                 key_line(src, len, x.errkey, x.errline), x.err);
        rc = -1;
    }
    lua_close(L);
    return rc;
}

/* ---- files and the environment -------------------------------------- */

/* read_config reads at most CONF_MAX_FILE bytes of path into a malloc'd
 * NUL-terminated buffer (caller frees).  NULL with a message in msg. */
static char *
read_config(const char *path, size_t *len, char *msg, size_t n)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t got;

    if (!f) {
        msgf(msg, n, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = xmalloc(CONF_MAX_FILE + 1);
    got = fread(buf, 1, CONF_MAX_FILE + 1, f);
    if (ferror(f)) {
        msgf(msg, n, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    if (got > CONF_MAX_FILE) {
        msgf(msg, n, "%s: the file is too large (over %d bytes)", path,
                 CONF_MAX_FILE);
        goto fail;
    }
    fclose(f);
    buf[got] = '\0';
    *len = got;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

/* parse_uint reads s as decimal digits only: no sign, space or suffix, so
 * "30s" or " 5" is an error rather than a surprise.  0 or -1. */
static int
parse_uint(const char *s, int64_t *v)
{
    int64_t r = 0;
    size_t n = strlen(s);

    if (n < 1 || n > 18)                 /* 18 digits cannot overflow */
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        r = r * 10 + (*s - '0');
    }
    *v = r;
    return 0;
}

/* apply_env applies the JQRUN_<KEY> overrides; an empty variable counts as
 * unset.  Returns 0, or -1 with "VAR: must be ..." in msg. */
static int
apply_env(struct config *c, char *msg, size_t n)
{
    char frag[ERR_MAX];

    for (size_t i = 0; i < sizeof env_keys / sizeof env_keys[0]; i++) {
        const char *v = getenv(env_keys[i].var);
        const struct spec *s = find_spec(top_spec, env_keys[i].key);
        int64_t num;
        int bad;

        if (!v || !*v || !s)
            continue;
        if (s->kind == K_INT || s->kind == K_I64) {
            if (parse_uint(v, &num) < 0) {
                msgf(frag, sizeof frag, "must be %s, got \"%.64s\"",
                         s->what, v);
                bad = 1;
            } else {
                bad = set_int(c, s, num, frag, sizeof frag) < 0;
            }
        } else {
            bad = set_str(c, s, v, frag, sizeof frag) < 0;
        }
        if (bad) {
            msgf(msg, n, "%s: %s", env_keys[i].var, frag);
            return -1;
        }
    }
    return 0;
}

/* config_path picks the file config_load reads: path, $JQRUN_CONFIG, or
 * ./jqrun.conf when it exists; NULL for none. */
static const char *
config_path(const char *path)
{
    const char *env = getenv("JQRUN_CONFIG");

    if (path)
        return path;
    if (env && *env)
        return env;
    if (access("jqrun.conf", F_OK) == 0)
        return "jqrun.conf";
    return NULL;
}

static void
copy_error(char *err, size_t errlen, const char *msg)
{
    if (err && errlen > 0)
        msgf(err, errlen, "%s", msg);
}

/* ---- public --------------------------------------------------------- */

/* config_defaults fills c with DESIGN.md's defaults; c need not be
 * initialized (it is overwritten, not freed). */
void
config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->listen = xstrdup("127.0.0.1:8080");
    c->data_dir = xstrdup(".jqrun");
    c->handlers = xstrdup("handlers");
    c->prefix = xstrdup("jq");
    c->queues[0].name = xstrdup("default");
    c->queues[0].concurrency = QUEUE_DEFAULT_CONCURRENCY;
    c->nqueues = 1;
    c->max_attempts = 3;
    c->backoff = 1000;
    c->timeout = 30000;
    c->lease = 30000;
    c->shutdown_grace = 30000;
    c->memory_limit = 64 * 1024 * 1024;
    c->keep_completed.count = 10000;
    c->keep_completed.age = 86400000;
    c->keep_failed.count = 10000;
    c->keep_failed.age = 604800000;
    c->http_max_body = 1048576;
    c->http_connection_timeout = 30;
    c->http_max_connections = 1024;
    c->webhook_attempts = 8;
    c->webhook_backoff = 1000;
    c->webhook_timeout = 10000;
    c->rate_limit_per = 1000;
    c->log_level = xstrdup("info");
}

/* config_load: see config.h.  c need not be initialized; it is overwritten
 * (config_free a loaded config before reusing it).  On -1 c holds no
 * memory, and config_free(c) is still safe. */
int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    char msg[ERR_MAX];
    struct config t;
    const char *p = config_path(path);
    char *src = NULL;
    size_t len = 0;

    config_defaults(&t);
    if (p) {
        src = read_config(p, &len, msg, sizeof msg);
        if (!src)
            goto fail;
        t.path = xstrdup(p);
        if (load_source(&t, src, len, p, msg, sizeof msg) < 0)
            goto fail;
        free(src);
        src = NULL;
    }
    if (apply_env(&t, msg, sizeof msg) < 0)
        goto fail;
    *c = t;
    return 0;
fail:
    free(src);
    config_free(&t);
    memset(c, 0, sizeof *c);
    copy_error(err, errlen, msg);
    return -1;
}

/* config_load_string: see config.h.  c is overwritten as by config_load;
 * c->path is a copy of name ("config" when NULL). */
int
config_load_string(struct config *c, const char *src, const char *name,
                   char *err, size_t errlen)
{
    char msg[ERR_MAX];
    struct config t;

    if (!name)
        name = "config";
    if (!src)
        src = "";
    config_defaults(&t);
    t.path = xstrdup(name);
    if (load_source(&t, src, strlen(src), name, msg, sizeof msg) < 0) {
        config_free(&t);
        memset(c, 0, sizeof *c);
        copy_error(err, errlen, msg);
        return -1;
    }
    *c = t;
    return 0;
}

/* config_find_queue returns the queue entry named name, or NULL. */
const struct queue_conf *
config_find_queue(const struct config *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (int i = 0; i < c->nqueues; i++)
        if (c->queues[i].name && strcmp(c->queues[i].name, name) == 0)
            return &c->queues[i];
    return NULL;
}

/* config_free releases every string of c and leaves it empty, so a second
 * call does nothing. */
void
config_free(struct config *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->listen);
    free(c->redis);
    free(c->data_dir);
    free(c->handlers);
    free(c->prefix);
    free(c->log_level);
    free(c->master_key);
    free(c->webhook_secret);
    for (int i = 0; i < c->nqueues && i < CONFIG_MAX_QUEUES; i++)
        free(c->queues[i].name);
    memset(c, 0, sizeof *c);
}
