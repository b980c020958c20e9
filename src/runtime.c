/* runtime.c — the Lua 5.4 VM that runs handlers, one per worker thread.
 *
 * A runtime owns one lua_State, built in protected mode (lua.c's pmain) on a
 * counting allocator, with the standard libraries made safe for a server
 * (no os.exit, os.execute, io.popen, C modules, debug.sethook or binary
 * chunks).  Each handler type is loaded from the registry's source bytes into
 * its own _ENV (whose __index is _G), once per generation, and its function is
 * kept by luaL_ref; a reload that fails keeps the last good function.
 *
 * Limits, and how each is enforced:
 *   time    a count hook every RT_HOOK_COUNT instructions compares mono_ms()
 *           with the deadline.  Past it, the hook raises "timeout after N ms"
 *           every time it fires (on every instruction from then on), so a
 *           pcall in the handler cannot swallow it for long, and a timed_out
 *           flag fails the attempt even if the handler returned normally.
 *           ctx.sleep and ctx.http never wait past the deadline.
 *   memory  rt_alloc refuses to grow past memory_limit and sets a flag, so the
 *           resulting "not enough memory" is reported as "memory limit
 *           exceeded".  After such a failure (or a timeout) the state is
 *           collected; a state still holding most of its budget, or whose
 *           cleanup failed, is closed and rebuilt from scratch.
 *   stack   deep recursion ends in Lua's own "stack overflow" error.
 *
 * What the hook cannot stop is a single C call that runs away: a pathological
 * string.find/match/gsub over a large subject, say, or a __gc metamethod
 * (Lua runs finalizers with hooks off, so setmetatable refuses metatables
 * with __gc).  We do not cripple the string library for that: the worker's
 * watchdog abandons a thread stuck past its deadline and starts a new one,
 * and the abandoned thread frees its runtime when the call returns.  For that
 * to be safe runtime_run holds no registry reference while the handler runs:
 * it releases the handler_src as soon as the handler is loaded.
 *
 * JSON crosses the boundary through jansson, not cjson: job.payload and
 * job.metadata keep integers as Lua integers, and result_json keeps 64-bit
 * integers exact (cjson 2.1 prints every number with 14 significant digits).
 * Reals are printed with 15 significant digits, so 19.99 stays "19.99".
 * NaN and infinities are refused ("result is not JSON-serializable"), as are
 * functions, userdata, cyclic tables and strings that are not UTF-8.  JSON
 * null is cjson.null (a NULL light userdata), so both libraries agree.
 * The `cjson` library is still there for handlers (global and require). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>

#include "handlers.h"
#include "log.h"
#include "runtime.h"
#include "util.h"

/* lua-cjson exports cjson.safe but its header only declares luaopen_cjson. */
int luaopen_cjson_safe(lua_State *L);

#define RT_HOOK_COUNT       1000    /* instructions between deadline checks */
#define RT_LOG_LINES        20      /* ctx.log lines kept for logs_json */
#define RT_LOG_MSG_MAX      2000    /* bytes of one kept line */
#define RT_HEADROOM         (1 << 20) /* bytes to describe an error at the limit */
#define RT_CLEANUP_MS       1000    /* time finalizers get after a job */
#define RT_LOAD_TIMEOUT_MS  5000    /* time a handler's top-level code gets */
#define RT_HTTP_TIMEOUT_MS  10000   /* ctx.http default */
#define RT_SLEEP_SLICE_MS   50
#define RT_FALLBACK_TIMEOUT 30000   /* when neither job nor config sets one */
#define RT_JSON_MAX_DEPTH   500
#define RT_JSON_FLAGS       (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))
#define HTTP_BOX            "jqrun.http"

/* rt_options are what a handler table may set besides handle. */
struct rt_options {
    int64_t timeout;      /* ms, 0 = not set */
    int     max_attempts; /* 0 = not set */
    int64_t backoff;      /* ms, -1 = not set */
    int     concurrency;  /* 0 = not set */
    char    strategy[16]; /* "" = not set */
};

/* rt_handler is one type's loaded function in this runtime's state. */
struct rt_handler {
    char             *type;
    uint64_t          gen;       /* generation behind ref; 0 = none */
    int               ref;       /* registry ref of the handle function */
    struct rt_options opts;
    uint64_t          bad_gen;   /* generation that failed to load; 0 = none */
    char             *bad_error; /* why it failed */
};

struct rt_logline {
    int64_t ts;    /* ms since epoch */
    int     level; /* enum log_level */
    char   *msg;
};

struct runtime {
    lua_State          *L;           /* NULL after a failed rebuild */
    struct handlers    *reg;
    struct handler_src *fixed;       /* `jqrun exec`: the one handler, no registry */
    int64_t             memory_limit;/* bytes; <= 0: unlimited */
    size_t              mem_used;    /* bytes the state holds now */
    size_t              headroom;    /* extra bytes while describing an error */
    int                 mem_exceeded;/* rt_alloc refused an allocation */
    int64_t             deadline;    /* mono_ms(); 0 = none */
    int64_t             timeout_ms;  /* what the deadline stands for, for messages */
    int                 timed_out;   /* the deadline passed (sticky per job) */
    struct rt_handler  *hs;
    size_t              nhs;
    CURL               *curl;        /* reused: keeps connections alive */
    /* The current job (NULL between jobs: ctx.* then refuse to work). */
    const struct rt_job  *job;
    const struct rt_host *host;
    char               *fail_msg;    /* ctx.fail was called (sticky per job) */
    char               *stack;       /* traceback of the last error */
    json_t             *pending;     /* freed after a protected call, even on error */
    struct rt_logline   logs[RT_LOG_LINES];
    int                 nlogs, logpos;
};

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static void rt_hook(lua_State *L, lua_Debug *ar);

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s) {
        fputs("jqrun: out of memory\n", stderr);
        abort();
    }
    return s;
}

/* rt_of finds the runtime of any thread of its state (lua_newthread copies
 * the extra space, so coroutines see it too). */
static struct runtime *
rt_of(lua_State *L)
{
    return *(struct runtime **)lua_getextraspace(L);
}

/* {=================================================================
** Limits: allocator and hook
** ================================================================== */

static void *
rt_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct runtime *rt = ud;
    size_t old = ptr ? osize : 0; /* with ptr NULL, osize is a type tag */
    void *p;

    if (nsize == 0) {
        free(ptr);
        rt->mem_used -= old;
        return NULL;
    }
    /* Only growth is refused: Lua assumes shrinking succeeds. */
    if (nsize > old && rt->memory_limit > 0 &&
        rt->mem_used - old + nsize > (size_t)rt->memory_limit + rt->headroom) {
        rt->mem_exceeded = 1;
        return NULL;
    }
    p = realloc(ptr, nsize);
    if (p)
        rt->mem_used = rt->mem_used - old + nsize;
    return p;
}

/* rt_raise_timeout marks the job as timed out and raises the timeout error.
 * From now on the hook fires on every instruction of this thread, so the
 * error is raised again as soon as a pcall in the handler returns. */
static int
rt_raise_timeout(lua_State *L)
{
    struct runtime *rt = rt_of(L);

    rt->timed_out = 1;
    lua_sethook(L, rt_hook, LUA_MASKCOUNT, 1);
    lua_pushfstring(L, "timeout after %I ms", (lua_Integer)rt->timeout_ms);
    return lua_error(L);
}

static void
rt_hook(lua_State *L, lua_Debug *ar)
{
    struct runtime *rt = rt_of(L);

    (void)ar;
    if (rt->deadline && mono_ms() >= rt->deadline)
        rt_raise_timeout(L);
}

/* rt_arm starts the clock for a protected call of at most ms. */
static void
rt_arm(struct runtime *rt, int64_t ms)
{
    rt->timeout_ms = ms;
    rt->deadline = mono_ms() + ms;
    rt->timed_out = 0;
}

/* }================================================================== */

/* {=================================================================
** JSON: Lua values to jansson and back
** ================================================================== */

/* enc is the state of one Lua-to-JSON conversion.  It never raises a Lua
 * error (only reads the stack), so it can hold jansson values freely. */
struct enc {
    lua_State  *L;
    char        path[160];                   /* where we are: result.items[3] */
    size_t      plen;
    const void *open[RT_JSON_MAX_DEPTH];     /* tables being converted */
    int         depth;
    char        err[320];
};

static json_t *enc_value(struct enc *e, int idx);

static json_t *
enc_fail(struct enc *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_t *
enc_fail(struct enc *e, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (e->err[0])
        return NULL; /* keep the innermost reason */
    va_start(ap, fmt);
    n = vsnprintf(e->err, sizeof e->err, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof e->err)
        snprintf(e->err + n, sizeof e->err - (size_t)n, " at %s", e->path);
    return NULL;
}

static size_t
enc_push_path(struct enc *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* enc_push_path appends a path step; returns the length to restore. */
static size_t
enc_push_path(struct enc *e, const char *fmt, ...)
{
    size_t mark = e->plen;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(e->path + e->plen, sizeof e->path - e->plen, fmt, ap);
    va_end(ap);
    if (n > 0)
        e->plen += (size_t)n;
    if (e->plen >= sizeof e->path)
        e->plen = sizeof e->path - 1;
    return mark;
}

static void
enc_pop_path(struct enc *e, size_t mark)
{
    e->plen = mark;
    e->path[mark] = '\0';
}

/* enc_array_len returns n when the table at idx is a sequence 1..n (n > 0),
 * else 0: such tables become JSON arrays, all others objects. */
static size_t
enc_array_len(lua_State *L, int idx)
{
    size_t n = lua_rawlen(L, idx), count = 0;
    int seq = 1;

    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_Integer k;
        count++;
        if (!lua_isinteger(L, -2) || (k = lua_tointeger(L, -2)) < 1 || (lua_Unsigned)k > n)
            seq = 0;
        lua_pop(L, 1);
    }
    return seq && count == n ? n : 0;
}

static json_t *
enc_array(struct enc *e, int idx, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 1; i <= n; i++) {
        size_t mark = enc_push_path(e, "[%zu]", i);
        json_t *v;
        lua_rawgeti(e->L, idx, (lua_Integer)i);
        v = enc_value(e, lua_gettop(e->L));
        lua_pop(e->L, 1);
        enc_pop_path(e, mark);
        if (!v || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *
enc_object(struct enc *e, int idx)
{
    lua_State *L = e->L;
    json_t *o = json_object();

    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char kbuf[64];
        const char *k;
        size_t klen, mark;
        json_t *v;

        /* Numbers are formatted here: lua_tolstring on a key would change
         * it in place and break lua_next. */
        if (lua_type(L, -2) == LUA_TSTRING) {
            k = lua_tolstring(L, -2, &klen);
        } else if (lua_isinteger(L, -2)) {
            klen = (size_t)snprintf(kbuf, sizeof kbuf, "%lld", (long long)lua_tointeger(L, -2));
            k = kbuf;
        } else if (lua_type(L, -2) == LUA_TNUMBER) {
            klen = (size_t)snprintf(kbuf, sizeof kbuf, "%.14g", (double)lua_tonumber(L, -2));
            k = kbuf;
        } else {
            enc_fail(e, "table key must be a string or a number, not a %s",
                     luaL_typename(L, -2));
            goto fail;
        }
        mark = enc_push_path(e, ".%.*s", (int)(klen > 40 ? 40 : klen), k);
        v = enc_value(e, lua_gettop(L));
        if (v && json_object_setn_new(o, k, klen, v) != 0)
            v = enc_fail(e, "key is not valid UTF-8");
        enc_pop_path(e, mark);
        if (!v)
            goto fail;
        lua_pop(L, 1);
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static json_t *
enc_table(struct enc *e, int idx)
{
    lua_State *L = e->L;
    const void *p = lua_topointer(L, idx);
    int top = lua_gettop(L);
    json_t *j;
    size_t n;

    for (int i = 0; i < e->depth; i++)
        if (e->open[i] == p)
            return enc_fail(e, "table is cyclic (it contains itself)");
    if (e->depth >= RT_JSON_MAX_DEPTH || !lua_checkstack(L, 4))
        return enc_fail(e, "tables nested deeper than %d levels", RT_JSON_MAX_DEPTH);
    e->open[e->depth++] = p;
    n = enc_array_len(L, idx);
    j = n ? enc_array(e, idx, n) : enc_object(e, idx);
    e->depth--;
    lua_settop(L, top);
    return j;
}

static json_t *
enc_value(struct enc *e, int idx)
{
    lua_State *L = e->L;
    const char *s;
    json_t *j;
    double d;
    size_t n;

    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        d = (double)lua_tonumber(L, idx);
        if (!isfinite(d))
            return enc_fail(e, "cannot encode %s", isnan(d) ? "NaN" : "an infinity");
        return json_real(d);
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        if (!(j = json_stringn(s, n)))
            return enc_fail(e, "string is not valid UTF-8");
        return j;
    case LUA_TTABLE:
        return enc_table(e, idx);
    case LUA_TLIGHTUSERDATA:
        if (!lua_touserdata(L, idx))
            return json_null(); /* cjson.null */
        /* fallthrough */
    default:
        return enc_fail(e, "cannot encode a %s value", luaL_typename(L, idx));
    }
}

/* rt_encode converts the value at idx to JSON text (malloc'd).  root names
 * the value in error messages.  With want_object, only a JSON object will
 * do.  NULL with err set on failure.  Raises no Lua error. */
static char *
rt_encode(lua_State *L, int idx, const char *root, int want_object, char *err, size_t errlen)
{
    struct enc *e = xcalloc(1, sizeof *e);
    char *text = NULL;
    json_t *j;

    e->L = L;
    enc_push_path(e, "%s", root);
    j = enc_value(e, lua_absindex(L, idx));
    if (j && want_object && !json_is_object(j))
        snprintf(e->err, sizeof e->err, "%s must be a table with string keys (a JSON object)", root);
    else if (j && !(text = json_dumps(j, RT_JSON_FLAGS)))
        enc_fail(e, "cannot be encoded");
    if (!text)
        snprintf(err, errlen, "%s", e->err[0] ? e->err : "cannot be encoded");
    json_decref(j);
    free(e);
    return text;
}

/* rt_push_json pushes a jansson value as Lua (null is cjson.null). */
static void
rt_push_json(lua_State *L, json_t *j)
{
    luaL_checkstack(L, 4, "JSON nested too deep");
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        lua_createtable(L, 0, (int)json_object_size(j));
        for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it)) {
            lua_pushlstring(L, json_object_iter_key(it), json_object_iter_key_len(it));
            rt_push_json(L, json_object_iter_value(it));
            lua_rawset(L, -3);
        }
        break;
    case JSON_ARRAY:
        lua_createtable(L, (int)json_array_size(j), 0);
        for (size_t i = 0; i < json_array_size(j); i++) {
            rt_push_json(L, json_array_get(j, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        break;
    case JSON_REAL:
        lua_pushnumber(L, (lua_Number)json_real_value(j));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(j));
        break;
    case JSON_NULL:
        lua_pushlightuserdata(L, NULL);
        break;
    }
}

/* rt_push_json_text decodes text and pushes it; what raises to report bad
 * JSON.  The parsed tree lives in rt->pending so that a memory error while
 * pushing cannot leak it (runtime_run frees it after the call). */
static void
rt_push_json_text(lua_State *L, const char *text, const char *what)
{
    struct runtime *rt = rt_of(L);
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

    if (!j)
        luaL_error(L, "invalid %s JSON at line %d, column %d: %s", what, je.line,
                   je.column, je.text);
    json_decref(rt->pending);
    rt->pending = j;
    rt_push_json(L, j);
    rt->pending = NULL;
    json_decref(j);
}

/* }================================================================== */

/* {=================================================================
** Errors
** ================================================================== */

/* push_error_string pushes a printable form of the error value at idx:
 * strings as they are, __tostring when present, numbers converted, and for
 * anything else "error object is a table value" with the place it came
 * from.  May call __tostring (user code). */
static void
push_error_string(lua_State *L, int idx)
{
    lua_Debug ar;

    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
        lua_pushvalue(L, idx);
        lua_tostring(L, -1); /* converts the copy, never the original */
        return;
    }
    if (luaL_callmeta(L, idx, "__tostring")) {
        if (lua_type(L, -1) == LUA_TSTRING)
            return;
        lua_pop(L, 1);
    }
    /* Level 0 is this handler, level 1 error(); find the Lua caller. */
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: error object is a %s value", ar.short_src,
                            ar.currentline, luaL_typename(L, idx));
            return;
        }
    }
    lua_pushfstring(L, "error object is a %s value", luaL_typename(L, idx));
}

/* rt_msgh is the message handler under every handler call (lua.c's
 * msghandler): it turns the error into a string and keeps the traceback in
 * rt->stack.  Memory errors do not reach it (Lua does not call message
 * handlers for them). */
static int
rt_msgh(lua_State *L)
{
    struct runtime *rt = rt_of(L);
    const char *tb;

    rt->headroom = RT_HEADROOM; /* room to describe an error even at the limit */
    push_error_string(L, 1);
    luaL_traceback(L, L, NULL, 1);
    tb = lua_tostring(L, -1);
    free(rt->stack);
    rt->stack = xstrdup(tb ? tb : "");
    lua_pop(L, 1);
    return 1;
}

/* rt_failure describes why a protected call ended with status (its error
 * value is on top).  Returns a malloc'd message. */
static char *
rt_failure(struct runtime *rt, int status)
{
    lua_State *L = rt->L;

    if (rt->timed_out)
        return xasprintf("timeout after %lld ms", (long long)rt->timeout_ms);
    if (rt->mem_exceeded && (status == LUA_ERRMEM || status == LUA_ERRERR))
        return xstrdup("memory limit exceeded");
    if (lua_type(L, -1) == LUA_TSTRING)
        return xstrdup(lua_tostring(L, -1));
    return xasprintf("error object is a %s value", luaL_typename(L, -1));
}

/* }================================================================== */

/* {=================================================================
** ctx: progress, log, enqueue, sleep, fail
** ================================================================== */

/* rt_in_job returns the runtime, refusing ctx calls made outside a job (at
 * load time, or by a handler that kept ctx around). */
static struct runtime *
rt_in_job(lua_State *L, const char *what)
{
    struct runtime *rt = rt_of(L);

    if (!rt->job)
        luaL_error(L, "%s can only be used while a job runs", what);
    return rt;
}

static int
ctx_progress(lua_State *L)
{
    struct runtime *rt = rt_in_job(L, "ctx.progress");
    lua_Number n = luaL_checknumber(L, 1);
    char err[256] = "";

    if (!(n >= 0 && n <= 100))
        return luaL_error(L, "ctx.progress: %f is not a number between 0 and 100", (double)n);
    if (rt->host && rt->host->progress &&
        rt->host->progress(rt->host->ud, (int)n, err, sizeof err) != 0)
        return luaL_error(L, "ctx.progress: %s", err[0] ? err : "failed");
    return 0;
}

static int
level_index(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return strcmp(s, "warning") == 0 ? LOG_WARN : -1;
}

/* rt_keep_log remembers a ctx.log line for logs_json (the last 20). */
static void
rt_keep_log(struct runtime *rt, int level, const char *msg, size_t len)
{
    struct rt_logline *l = &rt->logs[rt->logpos];

    if (len > RT_LOG_MSG_MAX) {
        len = RT_LOG_MSG_MAX;
        while (len > 0 && ((unsigned char)msg[len] & 0xC0) == 0x80)
            len--; /* do not cut a UTF-8 sequence */
    }
    free(l->msg);
    l->msg = xmalloc(len + 1);
    memcpy(l->msg, msg, len);
    l->msg[len] = '\0';
    l->ts = now_ms();
    l->level = level;
    rt->logpos = (rt->logpos + 1) % RT_LOG_LINES;
    if (rt->nlogs < RT_LOG_LINES)
        rt->nlogs++;
}

/* ctx.log([level,] ...): level is debug|info|warn|error (info when the first
 * argument is not one of them); the rest are joined with spaces. */
static int
ctx_log(lua_State *L)
{
    struct runtime *rt = rt_in_job(L, "ctx.log");
    int n = lua_gettop(L), first = 1, level = LOG_INFO;
    const char *msg;
    luaL_Buffer b;
    size_t len;

    if (n >= 1 && lua_type(L, 1) == LUA_TSTRING && level_index(lua_tostring(L, 1)) >= 0) {
        level = level_index(lua_tostring(L, 1));
        first = 2;
    }
    luaL_buffinit(L, &b);
    for (int i = first; i <= n; i++) {
        if (i > first)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    msg = lua_tolstring(L, -1, &len);
    log_msg((enum log_level)level, "job %s [%s]: %s", rt->job->id ? rt->job->id : "-",
            rt->job->type ? rt->job->type : "-", msg);
    rt_keep_log(rt, level, msg, len);
    return 0;
}

/* ctx.enqueue(type, payload?, opts?) -> id */
static int
ctx_enqueue(lua_State *L)
{
    struct runtime *rt = rt_in_job(L, "ctx.enqueue");
    const char *type = luaL_checkstring(L, 1);
    char err[320] = "", id[37] = "";
    char *payload = NULL, *opts = NULL;
    int rc;

    if (!valid_name(type))
        return luaL_argerror(L, 1, "job type must match [A-Za-z0-9._:-]{1,128}");
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    if (!rt->host || !rt->host->enqueue)
        return luaL_error(L, "ctx.enqueue is not available here");
    payload = lua_isnoneornil(L, 2) ? xstrdup("{}")
                                    : rt_encode(L, 2, "payload", 1, err, sizeof err);
    if (payload && !lua_isnoneornil(L, 3))
        opts = rt_encode(L, 3, "opts", 1, err, sizeof err);
    if (!payload || (!opts && !lua_isnoneornil(L, 3))) {
        free(payload);
        return luaL_error(L, "ctx.enqueue: %s", err);
    }
    err[0] = '\0';
    rc = rt->host->enqueue(rt->host->ud, type, payload, opts, id, err, sizeof err);
    free(payload);
    free(opts);
    if (rc != 0)
        return luaL_error(L, "ctx.enqueue: %s", err[0] ? err : "failed");
    lua_pushstring(L, id);
    return 1;
}

/* ctx.sleep(ms) sleeps in slices, never past the job's deadline. */
static int
ctx_sleep(lua_State *L)
{
    struct runtime *rt = rt_in_job(L, "ctx.sleep");
    lua_Number ms = luaL_checknumber(L, 1);
    int64_t end;

    if (!(ms >= 0 && ms < 1e12))
        return luaL_error(L, "ctx.sleep: %f is not a number of milliseconds", (double)ms);
    end = mono_ms() + (int64_t)ms;
    for (;;) {
        int64_t now = mono_ms(), slice = end - now;
        if (rt->deadline && now >= rt->deadline)
            return rt_raise_timeout(L);
        if (slice <= 0)
            return 0;
        if (slice > RT_SLEEP_SLICE_MS)
            slice = RT_SLEEP_SLICE_MS;
        if (rt->deadline && slice > rt->deadline - now)
            slice = rt->deadline - now;
        sleep_ms(slice);
    }
}

/* ctx.fail(msg) fails the attempt for good.  It is sticky: even if the
 * handler catches the error, the attempt ends as a permanent failure. */
static int
ctx_fail(lua_State *L)
{
    struct runtime *rt = rt_in_job(L, "ctx.fail");
    const char *msg = lua_isnoneornil(L, 1) ? "failed" : luaL_tolstring(L, 1, NULL);

    free(rt->fail_msg);
    rt->fail_msg = xstrdup(msg);
    lua_pushstring(L, msg);
    return lua_error(L);
}

/* }================================================================== */

/* {=================================================================
** ctx.http: libcurl easy, one handle per runtime
** ================================================================== */

/* http_box owns the C memory of one request, as a userdata with __gc, so a
 * Lua error anywhere in between frees it (lauxlib.c's "box"). */
struct http_box {
    struct curl_slist *headers;
    char              *json_body;  /* a table body, encoded */
    struct strbuf      resp;       /* response body */
    struct strbuf      head;       /* header lines of the final response */
    size_t             max_body;
    int                too_big;
    char               errbuf[CURL_ERROR_SIZE];
};

/* http_req is one request, its strings owned by the Lua stack. */
struct http_req {
    const char *method;    /* upper case */
    const char *url;
    int         headers;   /* stack index of a headers table, 0 = none */
    int         body;      /* stack index of the body (string or table), 0 = none */
    int64_t     timeout;   /* ms asked for, 0 = default */
};

static int
box_gc(lua_State *L)
{
    struct http_box *b = luaL_checkudata(L, 1, HTTP_BOX);

    curl_slist_free_all(b->headers);
    b->headers = NULL;
    free(b->json_body);
    b->json_body = NULL;
    sb_free(&b->resp);
    sb_free(&b->head);
    return 0;
}

static size_t
http_on_body(char *data, size_t size, size_t n, void *ud)
{
    struct http_box *b = ud;
    size_t len = size * n;

    if (b->resp.len + len > b->max_body) {
        b->too_big = 1;
        return 0; /* aborts the transfer */
    }
    sb_append(&b->resp, data, len);
    return len;
}

static size_t
http_on_header(char *data, size_t size, size_t n, void *ud)
{
    struct http_box *b = ud;
    size_t len = size * n;

    /* A status line starts a new response (redirects, 100 Continue): only
     * the headers of the last one are reported. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
        b->head.len = 0;
    else if (b->head.len + len <= 1 << 20)
        sb_append(&b->head, data, len);
    return len;
}

/* http_add_header appends "name: value" to the box's list. */
static void
http_add_header(lua_State *L, struct http_box *b, const char *line)
{
    struct curl_slist *l = curl_slist_append(b->headers, line);

    if (!l)
        luaL_error(L, "http: out of memory");
    b->headers = l;
}

/* http_set_headers copies the headers table into the box.  Returns whether
 * it set a content-type. */
static int
http_set_headers(lua_State *L, struct http_box *b, int idx)
{
    int has_type = 0;

    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k, *v;
        if (lua_type(L, -2) != LUA_TSTRING ||
            (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
            luaL_error(L, "http: headers must map names to strings");
        k = lua_tostring(L, -2);
        lua_pushvalue(L, -1); /* convert a copy: the key must stay as it is */
        v = lua_tostring(L, -1);
        if (strpbrk(k, "\r\n:") || strpbrk(v, "\r\n") || !*k)
            luaL_error(L, "http: invalid header '%s'", k);
        if (strcasecmp(k, "content-type") == 0)
            has_type = 1;
        http_add_header(L, b, lua_pushfstring(L, "%s: %s", k, v));
        lua_pop(L, 3);
    }
    return has_type;
}

/* http_push_headers pushes the response headers as {lowercase-name = value},
 * repeated names joined with ", ". */
static void
http_push_headers(lua_State *L, const struct http_box *b)
{
    const char *p = b->head.buf, *end = p + b->head.len;

    lua_newtable(L);
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon, *v, *ve;
        char name[128];
        size_t nlen;

        if (!eol)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && (nlen = (size_t)(colon - p)) > 0 && nlen < sizeof name) {
            for (size_t i = 0; i < nlen; i++)
                name[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
            for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
                ;
            for (ve = eol; ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
                ;
            lua_pushlstring(L, name, nlen);
            lua_pushvalue(L, -1);
            if (lua_rawget(L, -3) == LUA_TSTRING) {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            }
            lua_rawset(L, -3);
        }
        p = eol + 1;
    }
}

static void
http_set_method(CURL *c, const char *method, int has_body)
{
    if (strcmp(method, "GET") == 0 && !has_body)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POST, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
}

/* http_body returns the request body (a string, or a table encoded as JSON
 * into the box), or NULL when there is none. */
static const char *
http_body(lua_State *L, struct http_box *b, int idx, size_t *len)
{
    char err[320];

    *len = 0;
    if (!idx || lua_isnil(L, idx))
        return NULL;
    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tolstring(L, idx, len);
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "http: body must be a string or a table");
    if (!(b->json_body = rt_encode(L, idx, "body", 0, err, sizeof err)))
        luaL_error(L, "http: %s", err);
    *len = strlen(b->json_body);
    return b->json_body;
}

/* http_timeout is the curl timeout: what was asked (10 s by default) but
 * never past the job's deadline (then *by_deadline is set). */
static long
http_timeout(lua_State *L, struct runtime *rt, int64_t asked, int *by_deadline)
{
    int64_t t = asked > 0 ? asked : RT_HTTP_TIMEOUT_MS, left;

    *by_deadline = 0;
    if (rt->deadline) {
        left = rt->deadline - mono_ms();
        if (left <= 0)
            rt_raise_timeout(L);
        if (t >= left) {
            t = left;
            *by_deadline = 1;
        }
    }
    return (long)t;
}

/* http_perform runs req and pushes {status, headers, body}.  Transport
 * errors raise "http: <curl error>". */
static int
http_perform(lua_State *L, const struct http_req *req)
{
    struct runtime *rt = rt_in_job(L, "ctx.http");
    struct http_box *b;
    const char *body;
    size_t body_len;
    int has_type = 0, by_deadline;
    long timeout, status = 0;
    CURLcode rc;
    CURL *c;

    b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, HTTP_BOX);
    b->max_body = rt->memory_limit > 0 ? (size_t)rt->memory_limit : (size_t)1 << 30;
    body = http_body(L, b, req->body, &body_len);
    if (req->headers)
        has_type = http_set_headers(L, b, req->headers);
    if (b->json_body && !has_type)
        http_add_header(L, b, "Content-Type: application/json");
    http_add_header(L, b, "Expect:"); /* no 1 s wait for 100 Continue */
    if (!rt->curl && !(rt->curl = curl_easy_init()))
        return luaL_error(L, "http: cannot initialise libcurl");
    c = rt->curl;
    timeout = http_timeout(L, rt, req->timeout, &by_deadline);
    curl_easy_reset(c); /* keeps the connection cache */
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_USERAGENT, "jqrun");
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, b->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, b);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, b->headers);
    http_set_method(c, req->method, body != NULL);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    rc = curl_easy_perform(c);
    /* Nothing of the box may stay referenced by the reused handle. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        if (b->too_big)
            return luaL_error(L, "http: response body larger than %d bytes", (int)b->max_body);
        if (rc == CURLE_OPERATION_TIMEDOUT && by_deadline)
            return rt_raise_timeout(L);
        return luaL_error(L, "http: %s", b->errbuf[0] ? b->errbuf : curl_easy_strerror(rc));
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    http_push_headers(L, b);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, b->resp.buf ? b->resp.buf : "", b->resp.len);
    lua_setfield(L, -2, "body");
    return 1;
}

/* http_method upper-cases a method name into out[16]. */
static const char *
http_method(lua_State *L, const char *m, char out[16])
{
    size_t i;

    for (i = 0; m[i] && i < 15; i++) {
        if (!((m[i] >= 'A' && m[i] <= 'Z') || (m[i] >= 'a' && m[i] <= 'z')))
            break;
        out[i] = (char)(m[i] >= 'a' ? m[i] - 32 : m[i]);
    }
    if (i == 0 || m[i])
        luaL_error(L, "http: invalid method '%s'", m);
    out[i] = '\0';
    return out;
}

/* ctx.http.request{method, url, headers, body, timeout} */
static int
http_request(lua_State *L)
{
    struct http_req req = { "GET", NULL, 0, 0, 0 };
    char method[16];

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "method");  /* 2 */
    lua_getfield(L, 1, "url");     /* 3 */
    lua_getfield(L, 1, "headers"); /* 4 */
    lua_getfield(L, 1, "body");    /* 5 */
    lua_getfield(L, 1, "timeout"); /* 6 */
    if (!lua_isnil(L, 2)) {
        if (lua_type(L, 2) != LUA_TSTRING)
            return luaL_error(L, "http: method must be a string");
        req.method = http_method(L, lua_tostring(L, 2), method);
    }
    if (lua_type(L, 3) != LUA_TSTRING)
        return luaL_error(L, "http: url must be a string");
    req.url = lua_tostring(L, 3);
    if (!lua_isnil(L, 4)) {
        if (!lua_istable(L, 4))
            return luaL_error(L, "http: headers must be a table");
        req.headers = 4;
    }
    req.body = lua_isnil(L, 5) ? 0 : 5;
    if (!lua_isnil(L, 6)) {
        if (lua_type(L, 6) != LUA_TNUMBER || !(lua_tonumber(L, 6) > 0))
            return luaL_error(L, "http: timeout must be a positive number of ms");
        req.timeout = (int64_t)lua_tonumber(L, 6);
    }
    return http_perform(L, &req);
}

/* ctx.http.get(url, headers?) */
static int
http_get(lua_State *L)
{
    struct http_req req = { "GET", luaL_checkstring(L, 1), 0, 0, 0 };

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        req.headers = 2;
    }
    return http_perform(L, &req);
}

/* ctx.http.post(url, body, headers?): a table body is sent as JSON. */
static int
http_post(lua_State *L)
{
    struct http_req req = { "POST", luaL_checkstring(L, 1), 0, 0, 0 };

    lua_settop(L, 3);
    req.body = lua_isnil(L, 2) ? 0 : 2;
    if (!lua_isnil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        req.headers = 3;
    }
    return http_perform(L, &req);
}

/* }================================================================== */

/* {=================================================================
** Building the state
** ================================================================== */

static int
rt_os_exit(lua_State *L)
{
    return luaL_error(L, "os.exit is not allowed in a handler");
}

static int
rt_global_guard(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING)
        return luaL_error(L, "handler attempted to write global '%s'", lua_tostring(L, 2));
    return luaL_error(L, "handler attempted to write a global (%s key)", luaL_typename(L, 2));
}

/* lib_guard is __newindex of a frozen library; upvalue 1 is its name. */
static int
lib_guard(lua_State *L)
{
    return luaL_error(L, "handler attempted to modify library '%s' (field '%s')",
                      lua_tostring(L, lua_upvalueindex(1)),
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

/* frozen_pairs is __pairs of a frozen table: iterate the hidden contents. */
static int
frozen_pairs(lua_State *L)
{
    lua_getglobal(L, "next");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushnil(L);
    return 3;
}

/* freeze empties the table at idx into a new hidden table and makes idx a
 * read-only view of it (__index, __pairs; __newindex raises).  The table
 * keeps its identity, so every reference to it (package.loaded, _G._G)
 * sees the frozen view.  Leaves the hidden table on the stack. */
static void
freeze(lua_State *L, int idx, const char *lib)
{
    int hidden;

    idx = lua_absindex(L, idx);
    lua_newtable(L);
    hidden = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, hidden);
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* clearing fields during traversal is allowed */
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, idx);
    }
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, hidden);
    lua_setfield(L, -2, "__index");
    if (lib) {
        lua_pushstring(L, lib);
        lua_pushcclosure(L, lib_guard, 1);
    } else {
        lua_pushcfunction(L, rt_global_guard);
    }
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, hidden);
    lua_pushcclosure(L, frozen_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, idx);
}

/* Registry key of the hidden table behind the frozen _G. */
static char globals_key;

/* freeze_globals makes _G and the standard libraries read-only, so that no
 * handler can change what another one sees (handler globals live in their
 * own _ENV).  package stays writable: package.path is fair game. */
static void
freeze_globals(lua_State *L)
{
    static const char *const libs[] = { "string", "table", "math", "os", "io", "coroutine",
                                        "utf8", "debug", "cjson", NULL };

    for (const char *const *lib = libs; *lib; lib++) {
        lua_getglobal(L, *lib);
        freeze(L, -1, *lib);
        if (strcmp(*lib, "string") == 0) {
            /* ("x"):upper() goes straight to the hidden table. */
            lua_pushliteral(L, "");
            lua_getmetatable(L, -1);
            lua_pushvalue(L, -3);
            lua_setfield(L, -2, "__index");
            lua_pop(L, 2);
        }
        lua_pop(L, 2);
    }
    lua_pushglobaltable(L);
    freeze(L, -1, NULL);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &globals_key);
    lua_pop(L, 1);
}

/* rt_load_text is load() restricted to text chunks: a crafted binary chunk
 * can crash the VM.  The original load is upvalue 1. */
static int
rt_load_text(lua_State *L)
{
    if (lua_gettop(L) < 3)
        lua_settop(L, 3); /* keeps argument 4 (env) absent when it was */
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* rt_loadfile_text is loadfile() for text chunks; a file name is required
 * (reading stdin would block a worker). */
static int
rt_loadfile_text(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (lua_gettop(L) < 2)
        lua_settop(L, 2);
    lua_pushliteral(L, "t");
    lua_replace(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int
rt_dofile_text(lua_State *L)
{
    const char *fname = luaL_checkstring(L, 1);

    lua_settop(L, 1);
    if (luaL_loadfilex(L, fname, "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

/* rt_setmetatable refuses __gc: Lua runs finalizers with hooks off, so a
 * looping finalizer could never be timed out. */
static int
rt_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in handlers");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* wrap_global replaces global name by f, with the original as upvalue 1. */
static void
wrap_global(lua_State *L, const char *name, lua_CFunction f)
{
    lua_getglobal(L, name);
    lua_pushcclosure(L, f, 1);
    lua_setglobal(L, name);
}

static void
clear_fields(lua_State *L, const char *lib, const char *const *names)
{
    lua_getglobal(L, lib);
    for (; *names; names++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *names);
    }
    lua_pop(L, 1);
}

/* sandbox_package keeps require for preloaded and Lua modules only. */
static void
sandbox_package(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_pushnil(L);
    lua_setfield(L, -2, "loadlib");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_getfield(L, -1, "searchers");
    lua_pushnil(L);
    lua_rawseti(L, -2, 4); /* all-in-one C loader */
    lua_pushnil(L);
    lua_rawseti(L, -2, 3); /* C loader */
    lua_pop(L, 1);
    /* cjson.safe returns nil, err instead of raising. */
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_cjson_safe);
    lua_setfield(L, -2, "cjson.safe");
    lua_pop(L, 2);
}

/* sandbox_debug keeps the read-only part of debug: debug.sethook would
 * remove the timeout hook, debug.setmetatable the guards. */
static void
sandbox_debug(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_setfield(L, -3, "traceback");
    lua_getfield(L, -1, "getinfo");
    lua_setfield(L, -3, "getinfo");
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "debug");
    lua_pop(L, 2);
    lua_setglobal(L, "debug");
}

static void
rt_sandbox(lua_State *L)
{
    static const char *const os_unsafe[] = { "execute", "remove", "rename", "tmpname",
                                             "setlocale", NULL };
    static const char *const io_unsafe[] = { "popen", NULL };

    clear_fields(L, "os", os_unsafe);
    lua_getglobal(L, "os");
    lua_pushcfunction(L, rt_os_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
    clear_fields(L, "io", io_unsafe);
    sandbox_package(L);
    sandbox_debug(L);
    wrap_global(L, "load", rt_load_text);
    wrap_global(L, "loadfile", rt_loadfile_text);
    wrap_global(L, "setmetatable", rt_setmetatable);
    lua_pushcfunction(L, rt_dofile_text);
    lua_setglobal(L, "dofile");
}

/* rt_setup builds the state inside lua_pcall (lua.c's pmain), so that even
 * running out of memory while opening the libraries is an error, not a
 * panic. */
static int
rt_setup(lua_State *L)
{
    luaL_openlibs(L);
    rt_sandbox(L);
    luaL_requiref(L, "cjson", luaopen_cjson, 1); /* package.loaded.cjson + global */
    lua_pop(L, 1);
    luaL_newmetatable(L, HTTP_BOX);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    freeze_globals(L); /* last: nothing may be added to _G after this */
    return 0;
}

static int
rt_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);

    /* Every call into the state is protected; reaching here is a bug. */
    log_error("runtime: unprotected Lua error: %s", msg ? msg : "?");
    abort();
    return 0;
}

static int
rt_open_state(struct runtime *rt)
{
    lua_State *L;

    rt->mem_exceeded = 0;
    rt->headroom = 0;
    if (!(L = lua_newstate(rt_alloc, rt)))
        return -1;
    *(struct runtime **)lua_getextraspace(L) = rt;
    lua_atpanic(L, rt_panic);
    lua_pushcfunction(L, rt_setup);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        log_error("runtime: cannot build the Lua VM: %s",
                  rt->mem_exceeded ? "memory limit exceeded" : msg ? msg : "?");
        lua_close(L);
        return -1;
    }
    lua_sethook(L, rt_hook, LUA_MASKCOUNT, RT_HOOK_COUNT);
    rt->L = L;
    return 0;
}

static void
handler_clear(struct rt_handler *hd)
{
    free(hd->type);
    free(hd->bad_error);
}

/* rt_close_state closes the state; its handler cache goes with it. */
static void
rt_close_state(struct runtime *rt)
{
    if (rt->L) {
        rt->job = NULL;
        rt->deadline = 0;
        lua_close(rt->L);
        rt->L = NULL;
    }
    for (size_t i = 0; i < rt->nhs; i++)
        handler_clear(&rt->hs[i]);
    free(rt->hs);
    rt->hs = NULL;
    rt->nhs = 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
    /* curl_global_init is not thread-safe everywhere: do it once, first. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* runtime_new builds a VM whose handlers come from reg (see runtime.h). */
struct runtime *
runtime_new(struct handlers *reg, int64_t memory_limit)
{
    struct runtime *rt = xcalloc(1, sizeof *rt);

    pthread_once(&curl_once, curl_init_once);
    rt->reg = reg;
    rt->memory_limit = memory_limit;
    if (rt_open_state(rt) != 0) {
        free(rt);
        return NULL;
    }
    return rt;
}

static void
rt_clear_job(struct runtime *rt)
{
    for (int i = 0; i < RT_LOG_LINES; i++) {
        free(rt->logs[i].msg);
        rt->logs[i].msg = NULL;
    }
    rt->nlogs = rt->logpos = 0;
    free(rt->fail_msg);
    rt->fail_msg = NULL;
    free(rt->stack);
    rt->stack = NULL;
    json_decref(rt->pending);
    rt->pending = NULL;
    rt->job = NULL;
    rt->host = NULL;
}

/* runtime_free closes the VM (finalizers get RT_CLEANUP_MS) and frees rt.
 * Called by the thread that used rt, even one the watchdog abandoned. */
void
runtime_free(struct runtime *rt)
{
    if (!rt)
        return;
    rt_close_state(rt);
    rt_clear_job(rt);
    if (rt->curl)
        curl_easy_cleanup(rt->curl);
    free(rt);
}

/* rt_result_free frees the strings of r (not r itself). */
void
rt_result_free(struct rt_result *r)
{
    if (!r)
        return;
    free(r->result_json);
    free(r->error);
    free(r->stack);
    free(r->logs_json);
    r->result_json = r->error = r->stack = r->logs_json = NULL;
}

/* }================================================================== */

/* {=================================================================
** Loading handlers
** ================================================================== */

/* load_req carries a load into and out of rt_load_main. */
struct load_req {
    const struct handler_src *src;
    int                       ref;     /* out: the handle function */
    struct rt_options         opts;    /* out */
};

/* opt_number reads option name of the table at t; 0 when absent. */
static int
opt_number(lua_State *L, int t, const char *path, const char *name, lua_Number *v)
{
    int ty = lua_getfield(L, t, name);

    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (ty != LUA_TNUMBER)
        luaL_error(L, "%s: option '%s' must be a number", path, name);
    *v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return 1;
}

static void
read_options(lua_State *L, int t, const char *path, struct rt_options *o)
{
    lua_Number v;

    if (opt_number(L, t, path, "timeout", &v)) {
        if (!(v >= 1 && v < 1e12))
            luaL_error(L, "%s: option 'timeout' must be a positive number of ms", path);
        o->timeout = (int64_t)v;
    }
    if (opt_number(L, t, path, "max_attempts", &v)) {
        if (!(v >= 1 && v <= 100) || v != floor(v))
            luaL_error(L, "%s: option 'max_attempts' must be an integer from 1 to 100", path);
        o->max_attempts = (int)v;
    }
    if (opt_number(L, t, path, "backoff", &v)) {
        if (!(v >= 0 && v < 1e12))
            luaL_error(L, "%s: option 'backoff' must be a number of ms >= 0", path);
        o->backoff = (int64_t)v;
    }
    if (opt_number(L, t, path, "concurrency", &v)) {
        if (!(v >= 1 && v <= 1e6) || v != floor(v))
            luaL_error(L, "%s: option 'concurrency' must be a positive integer", path);
        o->concurrency = (int)v;
    }
    if (lua_getfield(L, t, "strategy") != LUA_TNIL) {
        const char *s = lua_tostring(L, -1);
        if (lua_type(L, -1) != LUA_TSTRING ||
            (strcmp(s, "exponential") != 0 && strcmp(s, "fixed") != 0))
            luaL_error(L, "%s: option 'strategy' must be \"exponential\" or \"fixed\"", path);
        snprintf(o->strategy, sizeof o->strategy, "%s", s);
    }
    lua_pop(L, 1);
}

/* rt_load_main compiles and runs a handler chunk in its own _ENV and refs
 * its handle function.  Runs under lua_pcall; arg 1 is the load_req. */
static int
rt_load_main(lua_State *L)
{
    struct load_req *req = lua_touserdata(L, 1);
    const char *path = req->src->path;
    int chunk, env, mt, t;

    lua_pushfstring(L, "@%s", path);
    if (luaL_loadbufferx(L, req->src->code, req->src->len, lua_tostring(L, -1), "t") != LUA_OK)
        return lua_error(L);
    chunk = lua_gettop(L);
    lua_newtable(L); /* the handler's _ENV: reads fall through to _G */
    env = lua_gettop(L);
    lua_createtable(L, 0, 3);
    mt = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &globals_key);
    lua_setfield(L, mt, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, mt, "__metatable");
    lua_pushvalue(L, mt);
    lua_setmetatable(L, env);
    lua_pushvalue(L, env);
    if (!lua_setupvalue(L, chunk, 1))
        lua_pop(L, 1);
    lua_pushvalue(L, chunk);
    lua_call(L, 0, 1);
    t = lua_gettop(L);
    if (lua_istable(L, t)) {
        read_options(L, t, path, &req->opts);
        lua_getfield(L, t, "handle");
    }
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "%s must return a function or a table with handle", path);
    /* Top-level code may define globals; jobs may not. */
    lua_pushcfunction(L, rt_global_guard);
    lua_setfield(L, mt, "__newindex");
    req->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static int
rt_unref_main(lua_State *L)
{
    luaL_unref(L, LUA_REGISTRYINDEX, (int)lua_tointeger(L, 1));
    return 0;
}

/* rt_unref releases a registry ref (in protected mode: it may allocate). */
static void
rt_unref(struct runtime *rt, int ref)
{
    if (ref == LUA_NOREF || ref == LUA_REFNIL || !rt->L)
        return;
    lua_pushcfunction(rt->L, rt_unref_main);
    lua_pushinteger(rt->L, ref);
    lua_pcall(rt->L, 1, 0, 0);
    lua_settop(rt->L, 0);
}

/* rt_load loads src into hd.  On failure hd keeps its last good function
 * (if any) and remembers the failure for this generation. */
static void
rt_load(struct runtime *rt, struct rt_handler *hd, const struct handler_src *src,
        int64_t budget)
{
    struct load_req req = { src, LUA_NOREF, { 0, 0, -1, 0, "" } };
    lua_State *L = rt->L;
    char *err = NULL;
    int status;

    rt_arm(rt, budget);
    lua_settop(L, 0);
    lua_pushcfunction(L, rt_load_main);
    lua_pushlightuserdata(L, &req);
    status = lua_pcall(L, 1, 0, 0);
    rt->deadline = 0;
    if (status == LUA_OK && !rt->timed_out) {
        rt_unref(rt, hd->ref);
        hd->gen = src->generation;
        hd->ref = req.ref;
        hd->opts = req.opts;
        free(hd->bad_error);
        hd->bad_error = NULL;
        hd->bad_gen = 0;
    } else {
        if (rt->timed_out)
            err = xasprintf("%s: timeout after %lld ms while loading", src->path,
                            (long long)budget);
        else if (rt->mem_exceeded && status == LUA_ERRMEM)
            err = xasprintf("memory limit exceeded while loading %s", src->path);
        else
            err = rt_failure(rt, status);
        rt_unref(rt, req.ref); /* top-level code that swallowed its timeout */
        free(hd->bad_error);
        hd->bad_error = err;
        hd->bad_gen = src->generation;
        if (hd->ref != LUA_NOREF)
            log_warn("handler %s: reload failed, keeping the previous version: %s",
                     hd->type, err);
        else
            log_warn("handler %s: %s", hd->type, err);
    }
    lua_settop(L, 0);
}

static struct handler_src *
rt_source(struct runtime *rt, const char *type)
{
    if (rt->fixed)
        return strcmp(rt->fixed->type, type) == 0 ? rt->fixed : NULL;
    return rt->reg ? handlers_get(rt->reg, type) : NULL;
}

static void
rt_release(struct runtime *rt, struct handler_src *src)
{
    if (src && src != rt->fixed)
        handlers_put(rt->reg, src);
}

static struct rt_handler *
rt_slot(struct runtime *rt, const char *type, int create)
{
    struct rt_handler *hd;

    for (size_t i = 0; i < rt->nhs; i++)
        if (strcmp(rt->hs[i].type, type) == 0)
            return &rt->hs[i];
    if (!create)
        return NULL;
    rt->hs = xrealloc(rt->hs, (rt->nhs + 1) * sizeof *rt->hs);
    hd = &rt->hs[rt->nhs++];
    memset(hd, 0, sizeof *hd);
    hd->type = xstrdup(type);
    hd->ref = LUA_NOREF;
    return hd;
}

/* rt_forget drops a type whose file is gone. */
static void
rt_forget(struct runtime *rt, const char *type)
{
    struct rt_handler *hd = rt_slot(rt, type, 0);

    if (!hd)
        return;
    rt_unref(rt, hd->ref);
    handler_clear(hd);
    *hd = rt->hs[--rt->nhs];
}

/* rt_resolve returns the loaded handler of type, loading or reloading it
 * when the registry has a new generation; NULL with *err (malloc'd). */
static struct rt_handler *
rt_resolve(struct runtime *rt, const char *type, int64_t budget, char **err)
{
    struct handler_src *src = rt_source(rt, type);
    struct rt_handler *hd;

    if (!src) {
        rt_forget(rt, type);
        *err = xasprintf("no handler for type '%s'", type);
        return NULL;
    }
    hd = rt_slot(rt, type, 1);
    if (hd->gen != src->generation && hd->bad_gen != src->generation)
        rt_load(rt, hd, src, budget);
    rt_release(rt, src);
    if (hd->ref == LUA_NOREF) {
        *err = xstrdup(hd->bad_error ? hd->bad_error : "handler did not load");
        return NULL;
    }
    return hd;
}

/* }================================================================== */

/* {=================================================================
** Running a job
** ================================================================== */

static void
set_string(lua_State *L, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void
set_integer(lua_State *L, const char *k, int64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static void
rt_push_job(lua_State *L, const struct rt_job *job)
{
    lua_createtable(L, 0, 9);
    set_string(L, "id", job->id);
    set_string(L, "type", job->type);
    set_string(L, "queue", job->queue);
    rt_push_json_text(L, job->payload_json ? job->payload_json : "{}", "payload");
    lua_setfield(L, -2, "payload");
    rt_push_json_text(L, job->metadata_json ? job->metadata_json : "{}", "metadata");
    lua_setfield(L, -2, "metadata");
    set_integer(L, "attempt", job->attempt);
    set_integer(L, "maxAttempts", job->max_attempts);
    set_integer(L, "priority", job->priority);
    set_integer(L, "createdAt", job->created_at);
}

static const luaL_Reg ctx_funcs[] = {
    { "progress", ctx_progress },
    { "log", ctx_log },
    { "enqueue", ctx_enqueue },
    { "sleep", ctx_sleep },
    { "fail", ctx_fail },
    { NULL, NULL }
};

static const luaL_Reg http_funcs[] = {
    { "request", http_request },
    { "get", http_get },
    { "post", http_post },
    { NULL, NULL }
};

/* rt_prepare pushes the handler function, job and ctx (a fresh ctx per job,
 * so nothing a handler stores in it leaks into the next job). */
static int
rt_prepare(lua_State *L)
{
    struct runtime *rt = rt_of(L);

    lua_rawgeti(L, LUA_REGISTRYINDEX, lua_tointeger(L, 1));
    rt_push_job(L, rt->job);
    luaL_newlib(L, ctx_funcs);
    luaL_newlib(L, http_funcs);
    lua_setfield(L, -2, "http");
    return 3;
}

static void
rt_encode_result(struct runtime *rt, struct rt_result *res)
{
    char err[320];

    if (lua_isnil(rt->L, 2)) {
        res->result_json = xstrdup("null");
    } else if (!(res->result_json = rt_encode(rt->L, 2, "result", 0, err, sizeof err))) {
        res->error = xasprintf("result is not JSON-serializable: %s", err);
        return;
    }
    res->ok = 1;
}

/* rt_execute calls the handler:
 *   [1 msgh] [2 fn] [3 job] [4 ctx]  --lua_pcall-->  [1 msgh] [2 result|error] */
static void
rt_execute(struct runtime *rt, const struct rt_handler *hd, struct rt_result *res)
{
    lua_State *L = rt->L;
    int status;

    rt_arm(rt, res->timeout_ms);
    lua_settop(L, 0);
    lua_pushcfunction(L, rt_msgh);
    lua_pushcfunction(L, rt_prepare);
    lua_pushinteger(L, hd->ref);
    status = lua_pcall(L, 1, 3, 0);
    json_decref(rt->pending);
    rt->pending = NULL;
    if (status == LUA_OK)
        status = lua_pcall(L, 2, 1, 1);
    /* The hook only looks every RT_HOOK_COUNT instructions: a handler whose
     * last C call ran past the deadline returns before it fires. */
    if (mono_ms() >= rt->deadline)
        rt->timed_out = 1;
    rt->deadline = 0;
    rt->headroom = 0;
    if (rt->fail_msg) {
        res->permanent = 1;
        res->error = rt->fail_msg;
        rt->fail_msg = NULL;
    } else if (status != LUA_OK || rt->timed_out) {
        res->error = rt_failure(rt, status);
    } else {
        rt_encode_result(rt, res);
    }
    if (res->error) {
        res->stack = rt->stack;
        rt->stack = NULL;
    }
    lua_settop(L, 0);
}

static char *
rt_logs_json(const struct runtime *rt)
{
    json_t *a;
    char *s;

    if (!rt->nlogs)
        return NULL;
    a = json_array();
    for (int i = 0; i < rt->nlogs; i++) {
        const struct rt_logline *l =
            &rt->logs[(rt->logpos - rt->nlogs + i + RT_LOG_LINES) % RT_LOG_LINES];
        json_array_append_new(a, json_pack("{s:I, s:s, s:o}", "ts", (json_int_t)l->ts, "level",
                                           level_names[l->level], "msg",
                                           json_lossy(l->msg, strlen(l->msg))));
    }
    s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

static int
rt_gc_main(lua_State *L)
{
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}

/* rt_collect runs a full GC.  Returns -1 when the state looks unhealthy
 * afterwards (the GC failed, or it still holds most of its budget). */
static int
rt_collect(struct runtime *rt)
{
    int status;

    rt_arm(rt, RT_CLEANUP_MS);
    lua_pushcfunction(rt->L, rt_gc_main);
    status = lua_pcall(rt->L, 0, 0, 0);
    rt->deadline = 0;
    lua_settop(rt->L, 0);
    if (status != LUA_OK || rt->timed_out)
        return -1;
    if (rt->memory_limit > 0 && rt->mem_used > (size_t)rt->memory_limit / 4 * 3)
        return -1;
    return 0;
}

/* rt_job_end cleans up after a job.  After a timeout or a memory overrun,
 * or when the state holds more than half its budget, it collects garbage;
 * a state still in doubt is replaced by a fresh one.  Returns 0, or -1 when
 * no state could be built. */
static int
rt_job_end(struct runtime *rt)
{
    int suspect = rt->timed_out || rt->mem_exceeded;

    rt_clear_job(rt);
    if (!rt->L)
        return rt_open_state(rt);
    lua_settop(rt->L, 0);
    lua_sethook(rt->L, rt_hook, LUA_MASKCOUNT, RT_HOOK_COUNT);
    if (rt->memory_limit > 0 && rt->mem_used > (size_t)rt->memory_limit / 2)
        suspect = 1;
    if (suspect && rt_collect(rt) != 0) {
        log_warn("runtime: rebuilding the Lua VM (%zu bytes in use after a full GC)",
                 rt->mem_used);
        rt_close_state(rt);
        if (rt_open_state(rt) != 0)
            return -1;
    }
    rt->timed_out = rt->mem_exceeded = 0;
    return 0;
}

static int64_t
default_timeout(const struct rt_job *job)
{
    return job->default_timeout > 0 ? job->default_timeout : RT_FALLBACK_TIMEOUT;
}

/* effective_timeout: the job's own, else the handler's option, else the
 * configured default. */
static int64_t
effective_timeout(const struct rt_job *job, const struct rt_handler *hd)
{
    if (job->timeout_ms > 0)
        return job->timeout_ms;
    if (hd->opts.timeout > 0)
        return hd->opts.timeout;
    return default_timeout(job);
}

/* load_budget is how long a handler's top-level code may run. */
static int64_t
load_budget(const struct rt_job *job)
{
    int64_t t = job->timeout_ms > 0 ? job->timeout_ms : default_timeout(job);
    return t < RT_LOAD_TIMEOUT_MS ? t : RT_LOAD_TIMEOUT_MS;
}

/* runtime_run runs job once on its handler and fills res (see runtime.h). */
int
runtime_run(struct runtime *rt, const struct rt_job *job, const struct rt_host *host,
            struct rt_result *res)
{
    struct rt_handler *hd;
    char *err = NULL;

    memset(res, 0, sizeof *res);
    res->backoff = -1;
    res->timeout_ms = job->timeout_ms > 0 ? job->timeout_ms : default_timeout(job);
    if (!rt->L && rt_open_state(rt) != 0) {
        res->error = xstrdup("the Lua VM cannot be built");
        return -1;
    }
    rt->job = job;
    rt->host = host;
    hd = rt_resolve(rt, job->type ? job->type : "", load_budget(job), &err);
    if (!hd) {
        res->error = err;
    } else {
        res->max_attempts = hd->opts.max_attempts;
        res->backoff = hd->opts.backoff;
        memcpy(res->strategy, hd->opts.strategy, sizeof res->strategy);
        res->timeout_ms = effective_timeout(job, hd);
        rt_execute(rt, hd, res);
    }
    res->logs_json = rt_logs_json(rt);
    return rt_job_end(rt);
}

/* runtime_handler_options loads type if needed and reports its options. */
int
runtime_handler_options(struct runtime *rt, const char *type, int64_t *timeout,
                        int *max_attempts, int *concurrency)
{
    struct rt_handler *hd;
    char *err = NULL;

    if (!rt->L && rt_open_state(rt) != 0)
        return -1;
    hd = rt_resolve(rt, type, RT_LOAD_TIMEOUT_MS, &err);
    free(err);
    rt_job_end(rt);
    if (!hd || !rt->L || !(hd = rt_slot(rt, type, 0)) || hd->ref == LUA_NOREF)
        return -1;
    if (timeout)
        *timeout = hd->opts.timeout;
    if (max_attempts)
        *max_attempts = hd->opts.max_attempts;
    if (concurrency)
        *concurrency = hd->opts.concurrency;
    return 0;
}

/* }================================================================== */

/* {=================================================================
** CLI: jqrun exec, jqrun check
** ================================================================== */

static int
exec_progress(void *ud, int pct, char *err, size_t errlen)
{
    (void)ud;
    (void)err;
    (void)errlen;
    fprintf(stderr, "progress %d\n", pct);
    return 0;
}

static int
exec_enqueue(void *ud, const char *type, const char *payload, const char *opts,
             char id_out[37], char *err, size_t errlen)
{
    (void)ud;
    if (uuid4(id_out) != 0) {
        snprintf(err, errlen, "cannot make an id");
        return -1;
    }
    fprintf(stderr, "enqueue %s %s%s%s\n", type, payload, opts ? " " : "", opts ? opts : "");
    return 0;
}

/* exec_payload reads the payload argument (JSON, @file or -) and checks
 * that it is a JSON object.  NULL after printing why. */
static char *
exec_payload(const char *arg)
{
    json_error_t je;
    char *text;
    size_t len;
    json_t *j;

    if (!arg)
        return xstrdup("{}");
    if (arg[0] == '@' || strcmp(arg, "-") == 0) {
        const char *path = arg[0] == '@' ? arg + 1 : "-";
        if (!(text = read_file(path, &len))) {
            fprintf(stderr, "jqrun exec: cannot read %s: %s\n", path, strerror(errno));
            return NULL;
        }
    } else {
        text = xstrdup(arg);
        len = strlen(text);
    }
    if (!(j = json_loadb(text, len, JSON_DECODE_ANY, &je))) {
        fprintf(stderr, "jqrun exec: invalid payload JSON at line %d, column %d: %s\n",
                je.line, je.column, je.text);
        free(text);
        return NULL;
    }
    if (!json_is_object(j)) {
        fprintf(stderr, "jqrun exec: the payload must be a JSON object\n");
        free(text);
        text = NULL;
    }
    json_decref(j);
    return text;
}

/* file_type writes the type a handler file stands for ("echo" for
 * "dir/echo.lua") into out[129]; "exec" when the name is not a type. */
static void
file_type(const char *path, char out[129])
{
    const char *base = strrchr(path, '/');
    size_t n;

    base = base ? base + 1 : path;
    n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".lua") == 0)
        n -= 4;
    if (n > 128)
        n = 128;
    memcpy(out, base, n);
    out[n] = '\0';
    if (!valid_name(out))
        snprintf(out, 129, "exec");
}

/* runtime_cmd_exec is `jqrun exec HANDLER.lua [JSON|@file|-]`: one job,
 * no Redis, no registry.  Exit code 0 ok, 1 the job failed, 2 usage. */
int
runtime_cmd_exec(int argc, char **argv, int64_t memory_limit, int64_t default_timeout_ms)
{
    struct rt_host host = { NULL, exec_progress, exec_enqueue };
    struct handler_src src = { 0 };
    struct rt_result res = { 0 };
    struct rt_job job = { 0 };
    struct runtime *rt = NULL;
    char type[129], id[37];
    char *payload;
    int rc = 1;

    if (argc < 1 || argc > 2) {
        fprintf(stderr, "usage: jqrun exec HANDLER.lua [JSON|@file|-]\n");
        return 2;
    }
    if (!(payload = exec_payload(argc > 1 ? argv[1] : NULL)))
        return 2;
    if (!(src.code = read_file(argv[0], &src.len))) {
        fprintf(stderr, "error: cannot read %s: %s\n", argv[0], strerror(errno));
        goto out;
    }
    file_type(argv[0], type);
    src.type = type;
    src.path = argv[0];
    src.generation = 1;
    src.refs = 1;
    if (!(rt = runtime_new(NULL, memory_limit))) {
        fprintf(stderr, "error: cannot build the Lua VM\n");
        goto out;
    }
    rt->fixed = &src;
    if (uuid4(id) != 0)
        snprintf(id, sizeof id, "00000000-0000-4000-8000-000000000000");
    job = (struct rt_job){ .id = id, .type = type, .queue = "default", .payload_json = payload,
                           .attempt = 1, .max_attempts = 1, .created_at = now_ms(),
                           .default_timeout = default_timeout_ms };
    runtime_run(rt, &job, &host, &res);
    if (res.ok) {
        printf("%s\n", res.result_json);
        rc = 0;
    } else {
        fprintf(stderr, "error: %s\n", res.error ? res.error : "failed");
        if (res.stack)
            fprintf(stderr, "%s\n", res.stack);
    }
    rt_result_free(&res);
out:
    runtime_free(rt);
    free(src.code);
    free(payload);
    return rc;
}

/* check_file compiles one handler file and prints the verdict.  0 or 1. */
static int
check_file(lua_State *L, const char *path, const char *name)
{
    char type[129];
    size_t n = strlen(name), len;
    char *code;
    int bad = 0;

    memcpy(type, name, n - 4 < 128 ? n - 4 : 128);
    type[n - 4 < 128 ? n - 4 : 128] = '\0';
    if (!valid_name(type)) {
        printf("%s: not a valid handler name (a type matches [A-Za-z0-9._:-]{1,128})\n", path);
        return 1;
    }
    if (!(code = read_file(path, &len))) {
        printf("%s: cannot read: %s\n", path, strerror(errno));
        return 1;
    }
    lua_pushfstring(L, "@%s", path);
    if (luaL_loadbufferx(L, code, len, lua_tostring(L, -1), "t") != LUA_OK) {
        printf("%s\n", lua_tostring(L, -1));
        bad = 1;
    } else {
        printf("ok %s\n", path);
    }
    lua_settop(L, 0);
    free(code);
    return bad;
}

/* runtime_cmd_check is `jqrun check`: compiles every handler of dir,
 * printing "ok PATH" or the error with file:line.  1 if any failed. */
int
runtime_cmd_check(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort), failed = 0, checked = 0;
    size_t dlen = strlen(dir);
    lua_State *L;

    if (n < 0) {
        printf("jqrun check: cannot read %s: %s\n", dir, strerror(errno));
        return 1;
    }
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    L = luaL_newstate();
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        if (L && name[0] != '.' && len > 4 && strcmp(name + len - 4, ".lua") == 0) {
            char *path = xasprintf("%.*s/%s", (int)dlen, dir, name);
            failed += check_file(L, path, name);
            checked++;
            free(path);
        }
        free(names[i]);
    }
    free(names);
    if (!L) {
        printf("jqrun check: cannot create a Lua state\n");
        return 1;
    }
    lua_close(L);
    if (!checked)
        printf("no handlers in %s\n", dir);
    return failed ? 1 : 0;
}

/* }================================================================== */
