/* test_runtime.c — the Lua handler runtime: results, errors, limits, the
 * sandbox, ctx.* and the CLI commands.  Runs from the repository root
 * against handlers/ and the hostile handlers of tests/handlers/. */
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "handlers.h"
#include "log.h"
#include "runtime.h"
#include "ut.h"
#include "util.h"

#define MEMORY_LIMIT (64 * 1024 * 1024)

/* rec records what the handlers asked of the host. */
struct rec {
    int  progress[16];
    int  nprogress;
    int  nenqueue;
    char type[64];
    char payload[256];
    char opts[256];
};

static struct rec rec;

static int
host_progress(void *ud, int pct, char *err, size_t errlen)
{
    struct rec *r = ud;

    (void)err;
    (void)errlen;
    if (r->nprogress < 16)
        r->progress[r->nprogress++] = pct;
    return 0;
}

static int
host_enqueue(void *ud, const char *type, const char *payload, const char *opts,
             char id_out[37], char *err, size_t errlen)
{
    struct rec *r = ud;

    if (strcmp(type, "refuse") == 0) {
        snprintf(err, errlen, "queue is closed");
        return -1;
    }
    r->nenqueue++;
    snprintf(r->type, sizeof r->type, "%s", type);
    snprintf(r->payload, sizeof r->payload, "%s", payload);
    snprintf(r->opts, sizeof r->opts, "%s", opts ? opts : "(null)");
    return uuid4(id_out);
}

static const struct rt_host host = { &rec, host_progress, host_enqueue };

/* run runs one job of type with payload on rt; timeout 0 = default (5 s). */
static int
run(struct runtime *rt, const char *type, const char *payload, int64_t timeout,
    struct rt_result *res)
{
    struct rt_job job = {
        .id = "11111111-2222-4333-8444-555555555555",
        .type = type,
        .queue = "default",
        .payload_json = payload,
        .metadata_json = "{\"tenant\":\"acme\",\"n\":3}",
        .attempt = 1,
        .max_attempts = 3,
        .priority = 0,
        .created_at = 1700000000000,
        .timeout_ms = timeout,
        .default_timeout = 5000,
    };
    return runtime_run(rt, &job, &host, res);
}

/* json_field returns the JSON text of field k of object text, or "". */
static char *
json_field(const char *text, const char *k)
{
    static char out[512];
    json_t *j = json_loads(text ? text : "", JSON_DECODE_ANY, NULL), *v;
    char *s;

    out[0] = '\0';
    if (j && (v = json_object_get(j, k)) && (s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY))) {
        snprintf(out, sizeof out, "%s", s);
        free(s);
    }
    json_decref(j);
    return out;
}

/* json_same tells whether two JSON texts hold the same value (key order
 * follows Lua's table order, which is not defined). */
static int
json_same(const char *a, const char *b)
{
    json_t *ja = json_loads(a ? a : "", JSON_DECODE_ANY, NULL);
    json_t *jb = json_loads(b, JSON_DECODE_ANY, NULL);
    int same = ja && jb && json_equal(ja, jb);

    json_decref(ja);
    json_decref(jb);
    return same;
}

static void
test_examples(struct runtime *rt)
{
    struct rt_result res;

    CHECK(run(rt, "echo", "{\"a\":1,\"s\":\"x\",\"l\":[1,2.5,null]}", 0, &res) == 0, "run");
    CHECK(res.ok == 1, "echo ok: %s", res.error ? res.error : "");
    CHECK(json_same(res.result_json, "{\"echo\":{\"a\":1,\"s\":\"x\",\"l\":[1,2.5,null]}}"),
          "echo result %s", res.result_json ? res.result_json : "(null)");
    CHECK(res.error == NULL && res.stack == NULL && res.logs_json == NULL, "clean echo");
    CHECK(res.timeout_ms == 5000, "default timeout %lld", (long long)res.timeout_ms);
    CHECK(res.max_attempts == 0 && res.backoff == -1 && res.strategy[0] == '\0', "no options");
    rt_result_free(&res);

    run(rt, "noop", "{}", 0, &res);
    CHECK(res.ok == 1, "noop ok");
    CHECK_STR(res.result_json, "null");
    rt_result_free(&res);

    run(rt, "fail", "{}", 0, &res);
    CHECK(res.ok == 0 && res.permanent == 1, "fail is permanent");
    CHECK_STR(res.error, "this job always fails");
    rt_result_free(&res);

    run(rt, "flaky", "{}", 0, &res);
    CHECK(res.ok == 0 && res.permanent == 0, "flaky fails first");
    CHECK_STR(res.error, "handlers/flaky.lua:4: flaky: first attempt fails");
    rt_result_free(&res);

    memset(&rec, 0, sizeof rec);
    run(rt, "pipeline", "{\"k\":\"v\"}", 0, &res);
    CHECK(res.ok == 1, "pipeline ok: %s", res.error ? res.error : "");
    CHECK(rec.nenqueue == 1, "pipeline enqueued");
    CHECK_STR(rec.type, "echo");
    CHECK_CONTAINS(rec.payload, "\"payload\":{\"k\":\"v\"}");
    CHECK_CONTAINS(res.result_json, "\"next\":\"");
    {
        json_t *j = json_loads(res.result_json ? res.result_json : "", 0, NULL);
        const char *next = json_string_value(json_object_get(j, "next"));
        CHECK(next && is_uuid(next), "next is an id: %s", next ? next : "(none)");
        json_decref(j);
    }
    CHECK_CONTAINS(res.logs_json, "enqueued follow-up echo job");
    rt_result_free(&res);

    memset(&rec, 0, sizeof rec);
    run(rt, "slow-progress", "{\"ms\":80}", 0, &res);
    CHECK(res.ok == 1, "slow-progress ok: %s", res.error ? res.error : "");
    CHECK(rec.nprogress == 4 && rec.progress[0] == 25 && rec.progress[3] == 100,
          "progress 25..100 (%d calls)", rec.nprogress);
    rt_result_free(&res);

    run(rt, "no-such-type", "{}", 0, &res);
    CHECK(res.ok == 0, "unknown type fails");
    CHECK_STR(res.error, "no handler for type 'no-such-type'");
    rt_result_free(&res);
}

static void
test_errors(struct runtime *rt)
{
    struct rt_result res;

    run(rt, "boom", "{}", 0, &res);
    CHECK(res.ok == 0 && !res.permanent, "boom fails, retryable");
    CHECK_STR(res.error, "tests/handlers/boom.lua:4: boom here");
    CHECK_CONTAINS(res.stack, "stack traceback:");
    CHECK_CONTAINS(res.stack, "tests/handlers/boom.lua:8:");
    rt_result_free(&res);

    run(rt, "errvalue", "{\"kind\":\"table\"}", 0, &res);
    CHECK_STR(res.error, "tests/handlers/errvalue.lua:4: error object is a table value");
    rt_result_free(&res);
    run(rt, "errvalue", "{\"kind\":\"nil\"}", 0, &res);
    CHECK_STR(res.error, "tests/handlers/errvalue.lua:5: error object is a nil value");
    rt_result_free(&res);
    run(rt, "errvalue", "{\"kind\":\"tostring\"}", 0, &res);
    CHECK_STR(res.error, "custom error");
    rt_result_free(&res);
    run(rt, "errvalue", "{\"kind\":\"number\"}", 0, &res);
    CHECK_STR(res.error, "42");
    rt_result_free(&res);
    run(rt, "errvalue", "{\"kind\":\"bool\"}", 0, &res);
    CHECK_CONTAINS(res.error, "error object is a boolean value");
    rt_result_free(&res);

    run(rt, "exit", "{}", 0, &res);
    CHECK(res.ok == 0, "os.exit fails the job and we are still here");
    CHECK_STR(res.error, "tests/handlers/exit.lua:3: os.exit is not allowed in a handler");
    rt_result_free(&res);

    run(rt, "deep", "{}", 0, &res);
    CHECK(res.ok == 0, "deep recursion fails");
    CHECK_CONTAINS(res.error, "stack overflow");
    CHECK_CONTAINS(res.error, "tests/handlers/deep.lua:3:");
    rt_result_free(&res);

    run(rt, "failcaught", "{}", 0, &res);
    CHECK(res.ok == 0 && res.permanent == 1, "ctx.fail is sticky");
    CHECK_STR(res.error, "caught but final");
    rt_result_free(&res);

    run(rt, "syntax", "{}", 0, &res);
    CHECK_STR(res.error, "no handler for type 'syntax'");
    rt_result_free(&res);

    run(rt, "badreturn", "{}", 0, &res);
    CHECK_STR(res.error, "tests/handlers/badreturn.lua must return a function or a table with handle");
    rt_result_free(&res);

    run(rt, "badoption", "{}", 0, &res);
    CHECK_STR(res.error, "tests/handlers/badoption.lua: option 'timeout' must be a number");
    rt_result_free(&res);

    run(rt, "ok", "{\"after\":\"errors\"}", 0, &res);
    CHECK(res.ok == 1, "runtime still works after errors");
    rt_result_free(&res);
}

static void
test_results(struct runtime *rt)
{
    static const struct { const char *kind, *want; } bad[] = {
        { "function", "result is not JSON-serializable: cannot encode a function value at result.f" },
        { "cyclic", "result is not JSON-serializable: table is cyclic (it contains itself) at result.self" },
        { "nan", "result is not JSON-serializable: cannot encode NaN at result.n" },
        { "userdata", "result is not JSON-serializable: cannot encode a userdata value at result.out" },
        { "binary", "result is not JSON-serializable: string is not valid UTF-8 at result.s" },
        { "boolkey", "result is not JSON-serializable: table key must be a string or a number, not a boolean at result" },
    };
    struct rt_result res;
    char payload[64];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(payload, sizeof payload, "{\"kind\":\"%s\"}", bad[i].kind);
        run(rt, "badresult", payload, 0, &res);
        CHECK(res.ok == 0 && res.result_json == NULL, "%s is refused", bad[i].kind);
        CHECK_STR(res.error, bad[i].want);
        rt_result_free(&res);
    }
    run(rt, "badresult", "{\"kind\":\"null\"}", 0, &res);
    CHECK(res.ok == 1, "null/list/empty ok");
    CHECK_STR(json_field(res.result_json, "a"), "null");
    CHECK_STR(json_field(res.result_json, "list"), "[1,2,3]");
    CHECK_STR(json_field(res.result_json, "empty"), "{}");
    rt_result_free(&res);
    run(rt, "badresult", "{\"kind\":\"big\"}", 0, &res);
    CHECK_CONTAINS(res.result_json, "\"big\":9007199254740993");
    CHECK_CONTAINS(res.result_json, "\"money\":19.99");
    CHECK_CONTAINS(res.result_json, "\"neg\":-1");
    rt_result_free(&res);
    run(rt, "badresult", "{\"kind\":\"string\"}", 0, &res);
    CHECK_STR(res.result_json, "\"hello\"");
    rt_result_free(&res);
    run(rt, "badresult", "{}", 0, &res);
    CHECK_STR(res.result_json, "null");
    rt_result_free(&res);
}

static void
test_timeouts(struct runtime *rt)
{
    static const char *const runaways[][2] = {
        { "loop", "{}" }, { "swallow", "{}" }, { "swallow", "{\"mode\":\"loop\"}" },
        { "coro", "{}" }, { "options", "{\"loop\":true}" },
    };
    struct rt_result res;
    int64_t t0, took;

    for (size_t i = 0; i < sizeof runaways / sizeof runaways[0]; i++) {
        int64_t limit = strcmp(runaways[i][0], "options") == 0 ? 0 : 200;
        t0 = mono_ms();
        CHECK(run(rt, runaways[i][0], runaways[i][1], limit, &res) == 0, "run");
        took = mono_ms() - t0;
        CHECK(res.ok == 0 && !res.permanent, "%s %s times out", runaways[i][0], runaways[i][1]);
        CHECK_STR(res.error, limit ? "timeout after 200 ms" : "timeout after 150 ms");
        CHECK(took >= (limit ? 200 : 150) && took < 2000, "%s took %lld ms", runaways[i][0],
              (long long)took);
        rt_result_free(&res);
        run(rt, "ok", "{}", 200, &res);
        CHECK(res.ok == 1, "next job after %s works: %s", runaways[i][0], res.error ? res.error : "");
        rt_result_free(&res);
    }

    /* One long C call cannot be interrupted, but its timeout is reported. */
    t0 = mono_ms();
    run(rt, "pattern", "{\"n\":150}", 50, &res);
    took = mono_ms() - t0;
    CHECK_STR(res.error, "timeout after 50 ms");
    CHECK(took >= 50, "pattern took %lld ms", (long long)took);
    rt_result_free(&res);

    t0 = mono_ms();
    run(rt, "sleepy", "{\"ms\":100}", 1000, &res);
    took = mono_ms() - t0;
    CHECK(res.ok == 1 && took >= 100 && took < 900, "ctx.sleep(100) took %lld ms", (long long)took);
    rt_result_free(&res);
    t0 = mono_ms();
    run(rt, "sleepy", "{\"ms\":5000}", 150, &res);
    took = mono_ms() - t0;
    CHECK_STR(res.error, "timeout after 150 ms");
    CHECK(took >= 150 && took < 1000, "sleep past the deadline took %lld ms", (long long)took);
    rt_result_free(&res);
}

static void
test_memory(struct runtime *rt)
{
    struct rt_result res;

    for (int i = 0; i < 2; i++) {
        CHECK(run(rt, "membomb", "{}", 10000, &res) == 0, "membomb returns 0");
        CHECK(res.ok == 0, "membomb fails");
        CHECK_STR(res.error, "memory limit exceeded");
        rt_result_free(&res);
        run(rt, "ok", "{\"after\":\"membomb\"}", 0, &res);
        CHECK(res.ok == 1, "next job after membomb works: %s", res.error ? res.error : "");
        rt_result_free(&res);
    }
}

static void
test_globals(struct runtime *rt)
{
    struct rt_result res;

    run(rt, "globals", "{}", 0, &res);
    CHECK(res.ok == 1, "globals ok: %s", res.error ? res.error : "");
    CHECK_STR(json_field(res.result_json, "counter"), "1");
    CHECK_STR(json_field(res.result_json, "helper"), "\"helped\"");
    rt_result_free(&res);
    run(rt, "globals", "{}", 0, &res);
    CHECK_STR(json_field(res.result_json, "counter"), "2");
    rt_result_free(&res);

    run(rt, "globals", "{\"leak\":true}", 0, &res);
    CHECK_STR(res.error, "tests/handlers/globals.lua:7: handler attempted to write global 'leaked'");
    rt_result_free(&res);
    run(rt, "globals", "{\"clobber\":true}", 0, &res);
    CHECK_STR(res.error, "tests/handlers/globals.lua:10: handler attempted to write global 'print'");
    rt_result_free(&res);
    run(rt, "globals", "{\"lib\":true}", 0, &res);
    CHECK_CONTAINS(res.error, "globals.lua:13: handler attempted to modify library 'string'");
    rt_result_free(&res);
    run(rt, "globals", "{}", 0, &res);
    CHECK_STR(json_field(res.result_json, "string_ok"), "\"A\"");
    rt_result_free(&res);

    /* Another handler does not see globals' globals. */
    run(rt, "sandbox", "{}", 0, &res);
    CHECK(res.ok == 1, "sandbox ok: %s", res.error ? res.error : "");
    CHECK_CONTAINS(res.result_json, "\"execute\":false");
    CHECK_CONTAINS(res.result_json, "\"remove\":false");
    CHECK_CONTAINS(res.result_json, "\"popen\":false");
    CHECK_CONTAINS(res.result_json, "\"loadlib\":false");
    CHECK_CONTAINS(res.result_json, "\"sethook\":false");
    CHECK_CONTAINS(res.result_json, "\"traceback\":true");
    CHECK_CONTAINS(res.result_json, "\"cjson_global\":true");
    CHECK_CONTAINS(res.result_json, "\"cjson_require\":true");
    CHECK_CONTAINS(res.result_json, "\"cjson_safe\":true");
    CHECK_CONTAINS(res.result_json, "\"binary\":false");
    CHECK_CONTAINS(res.result_json, "\"text\":2");
    CHECK_CONTAINS(res.result_json, "\"gc\":false");
    CHECK_CONTAINS(res.result_json, "\"encoded\":\"{\\\"a\\\":1}\"");
    rt_result_free(&res);
}

static void
test_ctx(struct runtime *rt)
{
    struct rt_result res;

    memset(&rec, 0, sizeof rec);
    run(rt, "ctxuse", "{\"n\":7}", 0, &res);
    CHECK(res.ok == 1, "ctxuse ok: %s", res.error ? res.error : "");
    CHECK(rec.nprogress == 2 && rec.progress[0] == 10 && rec.progress[1] == 100, "progress");
    CHECK(rec.nenqueue == 1, "enqueue reached the host");
    CHECK_STR(rec.type, "child");
    CHECK_CONTAINS(rec.payload, "\"n\":1");
    CHECK_CONTAINS(rec.payload, "\"tags\":[\"a\",\"b\"]");
    CHECK_STR(rec.opts, "{\"delay\":5}");
    CHECK_STR(json_field(res.result_json, "attempt"), "1");
    CHECK_STR(json_field(res.result_json, "queue"), "\"default\"");
    CHECK_STR(json_field(res.result_json, "ints"), "\"integer\"");
    CHECK_CONTAINS(json_field(res.result_json, "meta"), "\"tenant\":\"acme\"");
    CHECK(strlen(json_field(res.result_json, "id")) == 38, "an id came back");
    CHECK_CONTAINS(res.logs_json, "\"level\":\"info\",\"msg\":\"hello 42 true\"");
    CHECK_CONTAINS(res.logs_json, "\"msg\":\"plain message\"");
    CHECK_CONTAINS(res.logs_json, "\"ts\":");
    rt_result_free(&res);

    run(rt, "logs", "{\"n\":25}", 0, &res);
    CHECK(res.ok == 1, "logs ok");
    {
        json_t *a = json_loads(res.logs_json ? res.logs_json : "", 0, NULL);
        CHECK(a && json_array_size(a) == 20, "20 log lines kept");
        CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "msg")), "line 6");
        CHECK_STR(json_string_value(json_object_get(json_array_get(a, 19), "msg")), "line 25");
        CHECK_STR(json_string_value(json_object_get(json_array_get(a, 19), "level")), "debug");
        json_decref(a);
    }
    rt_result_free(&res);

    run(rt, "badctx", "{\"what\":\"progress\"}", 0, &res);
    CHECK_CONTAINS(res.error, "badctx.lua:4: ctx.progress: 150");
    rt_result_free(&res);
    run(rt, "badctx", "{\"what\":\"progress-nan\"}", 0, &res);
    CHECK_CONTAINS(res.error, "is not a number between 0 and 100");
    rt_result_free(&res);
    run(rt, "badctx", "{\"what\":\"enqueue-type\"}", 0, &res);
    CHECK_CONTAINS(res.error, "job type must match");
    rt_result_free(&res);
    run(rt, "badctx", "{\"what\":\"enqueue-array\"}", 0, &res);
    CHECK_CONTAINS(res.error, "ctx.enqueue: payload must be a table with string keys");
    rt_result_free(&res);
    run(rt, "badctx", "{\"what\":\"enqueue-host\"}", 0, &res);
    CHECK_CONTAINS(res.error, "badctx.lua:8: ctx.enqueue: queue is closed");
    rt_result_free(&res);
    run(rt, "badctx", "{\"what\":\"http\"}", 0, &res);
    CHECK(res.ok == 0 && !res.permanent, "unreachable url fails");
    CHECK_CONTAINS(res.error, "badctx.lua:9: http: ");
    rt_result_free(&res);
    run(rt, "badctx", "{\"what\":\"http-url\"}", 0, &res);
    CHECK_CONTAINS(res.error, "http: url must be a string");
    rt_result_free(&res);
}

static void
test_options(struct runtime *rt)
{
    struct rt_result res;
    int64_t timeout = -1;
    int attempts = -1, conc = -1;

    CHECK(runtime_handler_options(rt, "options", &timeout, &attempts, &conc) == 0, "options");
    CHECK(timeout == 150 && attempts == 5 && conc == 2, "options %lld %d %d", (long long)timeout,
          attempts, conc);
    CHECK(runtime_handler_options(rt, "ok", &timeout, &attempts, &conc) == 0, "ok options");
    CHECK(timeout == 0 && attempts == 0 && conc == 0, "no options set");
    CHECK(runtime_handler_options(rt, "nope", &timeout, &attempts, &conc) == -1, "no handler");
    CHECK(runtime_handler_options(rt, "badreturn", &timeout, &attempts, &conc) == -1, "bad");

    run(rt, "options", "{}", 0, &res);
    CHECK(res.ok == 1, "options ok");
    CHECK(res.timeout_ms == 150 && res.max_attempts == 5 && res.backoff == 250, "res options");
    CHECK_STR(res.strategy, "fixed");
    rt_result_free(&res);
    run(rt, "options", "{}", 999, &res);
    CHECK(res.timeout_ms == 999, "the job's own timeout wins: %lld", (long long)res.timeout_ms);
    rt_result_free(&res);
}

/* capture runs the CLI command f with stdout and stderr sent to temporary
 * files, and returns its exit code; *out and *err get what it printed
 * (valid until the next call). */
static int
capture(int (*f)(void *), void *arg, char **out, char **err)
{
    static char *o, *e;
    char po[] = "/tmp/jqrun-rt-out-XXXXXX", pe[] = "/tmp/jqrun-rt-err-XXXXXX";
    int fo = mkstemp(po), fe = mkstemp(pe), so = dup(1), se = dup(2), rc;

    fflush(stdout);
    fflush(stderr);
    dup2(fo, 1);
    dup2(fe, 2);
    rc = f(arg);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    free(o);
    free(e);
    o = read_file(po, NULL);
    e = read_file(pe, NULL);
    unlink(po);
    unlink(pe);
    *out = o ? o : (char *)"";
    *err = e ? e : (char *)"";
    return rc;
}

struct exec_args {
    int   argc;
    char *argv[2];
};

static int
do_exec(void *arg)
{
    struct exec_args *a = arg;
    return runtime_cmd_exec(a->argc, a->argv, MEMORY_LIMIT, 2000);
}

static int
do_check(void *arg)
{
    return runtime_cmd_check(arg);
}

static void
test_cli(void)
{
    struct exec_args a;
    char *out, *err;

    a = (struct exec_args){ 2, { (char *)"handlers/echo.lua", (char *)"{\"x\":[1,2]}" } };
    CHECK(capture(do_exec, &a, &out, &err) == 0, "exec echo: %s", err);
    CHECK_STR(out, "{\"echo\":{\"x\":[1,2]}}\n");

    a = (struct exec_args){ 1, { (char *)"handlers/echo.lua", NULL } };
    CHECK(capture(do_exec, &a, &out, &err) == 0, "exec echo without payload");
    CHECK_STR(out, "{\"echo\":{}}\n");

    a = (struct exec_args){ 1, { (char *)"tests/handlers/boom.lua", NULL } };
    CHECK(capture(do_exec, &a, &out, &err) == 1, "exec boom fails");
    CHECK_CONTAINS(err, "error: tests/handlers/boom.lua:4: boom here\n");
    CHECK_CONTAINS(err, "stack traceback:");

    a = (struct exec_args){ 1, { (char *)"tests/handlers/syntax.lua", NULL } };
    CHECK(capture(do_exec, &a, &out, &err) == 1, "exec syntax error fails");
    CHECK_CONTAINS(err, "error: tests/handlers/syntax.lua:3:");

    a = (struct exec_args){ 2, { (char *)"handlers/echo.lua", (char *)"{\"x\": 1,\n \"y\" 2}" } };
    CHECK(capture(do_exec, &a, &out, &err) == 2, "bad payload is a usage error");
    CHECK_CONTAINS(err, "invalid payload JSON at line 2, column");

    a = (struct exec_args){ 2, { (char *)"handlers/echo.lua", (char *)"[1]" } };
    CHECK(capture(do_exec, &a, &out, &err) == 2, "array payload refused");

    a = (struct exec_args){ 2, { (char *)"handlers/echo.lua", (char *)"@tests/handlers/none.json" } };
    CHECK(capture(do_exec, &a, &out, &err) == 2, "missing payload file");

    a = (struct exec_args){ 2, { (char *)"handlers/pipeline.lua", (char *)"{\"a\":1}" } };
    CHECK(capture(do_exec, &a, &out, &err) == 0, "exec pipeline");
    CHECK_CONTAINS(err, "enqueue echo {\"");
    CHECK_CONTAINS(out, "{\"next\":\"");

    a = (struct exec_args){ 2, { (char *)"handlers/slow-progress.lua", (char *)"{\"ms\":20}" } };
    CHECK(capture(do_exec, &a, &out, &err) == 0, "exec slow-progress");
    CHECK_CONTAINS(err, "progress 25\nprogress 50\nprogress 75\nprogress 100\n");

    a = (struct exec_args){ 1, { (char *)"tests/handlers/exit.lua", NULL } };
    CHECK(capture(do_exec, &a, &out, &err) == 1, "exec os.exit fails, process lives");

    a = (struct exec_args){ 1, { (char *)"tests/handlers/no-such.lua", NULL } };
    CHECK(capture(do_exec, &a, &out, &err) == 1, "exec missing file");
    CHECK_CONTAINS(err, "cannot read tests/handlers/no-such.lua");

    CHECK(capture(do_check, (void *)"handlers", &out, &err) == 0, "check handlers/: %s", out);
    CHECK_CONTAINS(out, "ok handlers/echo.lua\n");
    CHECK_CONTAINS(out, "ok handlers/slow-progress.lua\n");
    CHECK(capture(do_check, (void *)"tests/handlers/", &out, &err) == 1, "check finds errors");
    CHECK_CONTAINS(out, "tests/handlers/syntax.lua:3:");
    CHECK_CONTAINS(out, "ok tests/handlers/loop.lua\n");
    CHECK(capture(do_check, (void *)"tests/no-such-dir", &out, &err) == 1, "check bad dir");
}

int
main(void)
{
    struct handlers *examples, *hostile;
    struct runtime *rt_ex, *rt;
    char err[256];

    log_set_level(LOG_ERROR);
    examples = handlers_open("handlers", err, sizeof err);
    hostile = handlers_open("tests/handlers", err, sizeof err);
    CHECK(examples && hostile, "registries: %s", err);
    if (!examples || !hostile)
        return ut_done("test_runtime");
    rt_ex = runtime_new(examples, MEMORY_LIMIT);
    rt = runtime_new(hostile, MEMORY_LIMIT);
    CHECK(rt_ex && rt, "runtimes");
    CHECK(runtime_new(hostile, 1024) == NULL, "a VM cannot be built in 1 KB");
    if (rt_ex && rt) {
        test_examples(rt_ex);
        test_errors(rt);
        test_results(rt);
        test_timeouts(rt);
        test_memory(rt);
        test_globals(rt);
        test_ctx(rt);
        test_options(rt);
    }
    runtime_free(rt_ex);
    runtime_free(rt);
    handlers_close(examples);
    handlers_close(hostile);
    test_cli();
    return ut_done("test_runtime");
}
