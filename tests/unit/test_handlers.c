/* test_handlers.c — the handler registry: scanning, hot reload through
 * handlers_rescan and through the inotify watcher, last-good-version
 * semantics, handlers_info, and a runtime following the registry. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "handlers.h"
#include "log.h"
#include "runtime.h"
#include "ut.h"
#include "util.h"

static char dir[64];

static void
put_file(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f) {
        printf("cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    fputs(text, f);
    fclose(f);
}

/* put_file_renamed writes like editors that save to a temporary file and
 * rename it over the original. */
static void
put_file_renamed(const char *name, const char *text)
{
    char tmp[256], path[256];

    put_file(".tmp-save", text);
    snprintf(tmp, sizeof tmp, "%s/.tmp-save", dir);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    rename(tmp, path);
}

static void
rm_file(const char *name)
{
    char path[256];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

/* result_into runs one job of type on rt and writes the result JSON, or
 * "error: ...", into out. */
static const char *
result_into(struct runtime *rt, const char *type, char *out, size_t outlen)
{
    struct rt_job job = { .id = "11111111-2222-4333-8444-555555555555", .type = type,
                          .queue = "default", .payload_json = "{}", .attempt = 1,
                          .max_attempts = 1, .default_timeout = 60000 };
    struct rt_result res;

    runtime_run(rt, &job, NULL, &res);
    snprintf(out, outlen, "%s%s", res.ok ? "" : "error: ", res.ok ? res.result_json : res.error);
    rt_result_free(&res);
    return out;
}

/* result is result_into for the main thread. */
static const char *
result(struct runtime *rt, const char *type)
{
    static char out[512];
    return result_into(rt, type, out, sizeof out);
}

/* info_of returns type's entry of handlers_info (a new reference), or NULL. */
static json_t *
info_of(struct handlers *h, const char *type)
{
    json_t *a = handlers_info(h), *v, *found = NULL;
    size_t i;

    json_array_foreach(a, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "type")), type) == 0)
            found = json_incref(v);
    }
    json_decref(a);
    return found;
}

static uint64_t
generation(struct handlers *h, const char *type)
{
    struct handler_src *s = handlers_get(h, type);
    uint64_t g = s ? s->generation : 0;

    handlers_put(h, s);
    return g;
}

/* wait_for polls until type's generation differs from old (or, with old ==
 * 0 and gone, until type disappears); returns the ms it took, or -1. */
static int64_t
wait_for(struct handlers *h, const char *type, uint64_t old, int gone)
{
    int64_t t0 = mono_ms();

    while (mono_ms() - t0 < 3000) {
        uint64_t g = generation(h, type);
        if (gone ? g == 0 : (g != 0 && g != old))
            return mono_ms() - t0;
        sleep_ms(10);
    }
    return -1;
}

static void
test_open(void)
{
    char err[256] = "";
    struct handlers *h = handlers_open("/nonexistent/handlers", err, sizeof err);

    CHECK(h == NULL, "missing directory refused");
    CHECK_CONTAINS(err, "/nonexistent/handlers");

    put_file("a.lua", "return function() return 'a' end\n");
    put_file("bad name.lua", "return function() end\n");
    put_file(".hidden.lua", "return function() end\n");
    put_file("notes.txt", "not a handler\n");
    put_file("broken.lua", "return function(\n");
    h = handlers_open(dir, err, sizeof err);
    CHECK(h != NULL, "open: %s", err);
    if (!h)
        return;
    {
        json_t *a = handlers_info(h), *broken = info_of(h, "broken"), *ok = info_of(h, "a");
        CHECK(json_array_size(a) == 2, "only a and broken are handlers (%zu)", json_array_size(a));
        CHECK(ok && json_is_null(json_object_get(ok, "error")), "a has no error");
        CHECK(ok && json_integer_value(json_object_get(ok, "generation")) > 0, "a generation");
        CHECK(ok && strlen(json_string_value(json_object_get(ok, "loadedAt"))) == 24, "loadedAt");
        CHECK_CONTAINS(json_string_value(json_object_get(ok, "path")), "/a.lua");
        CHECK(broken && json_is_null(json_object_get(broken, "generation")), "no good broken");
        CHECK_CONTAINS(json_string_value(json_object_get(broken, "error")), "/broken.lua:2:");
        json_decref(a);
        json_decref(broken);
        json_decref(ok);
    }
    CHECK(handlers_get(h, "broken") == NULL, "broken has no source");
    CHECK(handlers_get(h, "hidden") == NULL && handlers_get(h, ".hidden") == NULL, "dot files");
    handlers_close(h);
    rm_file("a.lua");
    rm_file("bad name.lua");
    rm_file(".hidden.lua");
    rm_file("notes.txt");
    rm_file("broken.lua");
}

static void
test_reload(void)
{
    struct handlers *h;
    struct runtime *rt;
    struct handler_src *held;
    uint64_t g1, g2;
    char err[256];
    json_t *info;

    put_file("x.lua", "return function() return 'A' end\n");
    h = handlers_open(dir, err, sizeof err);
    rt = h ? runtime_new(h, 16 << 20) : NULL;
    CHECK(h && rt, "registry and runtime");
    if (!rt) {
        handlers_close(h);
        return;
    }
    CHECK_STR(result(rt, "x"), "\"A\"");
    g1 = generation(h, "x");
    held = handlers_get(h, "x");

    /* Same size as before: only the content tells them apart. */
    put_file("x.lua", "return function() return 'B' end\n");
    handlers_rescan(h);
    g2 = generation(h, "x");
    CHECK(g2 > g1, "new generation %llu > %llu", (unsigned long long)g2, (unsigned long long)g1);
    CHECK_STR(result(rt, "x"), "\"B\"");
    CHECK(held && held->generation == g1 && strstr(held->code, "'A'"), "held version intact");
    handlers_put(h, held);

    handlers_rescan(h);
    CHECK(generation(h, "x") == g2, "a rescan without changes keeps the generation");
    put_file("x.lua", "return function() return 'B' end\n");
    handlers_rescan(h);
    CHECK(generation(h, "x") == g2, "rewriting the same bytes keeps the generation");

    put_file("x.lua", "return function()\n  return 'C' +\nend\n");
    handlers_rescan(h);
    CHECK(generation(h, "x") == g2, "a syntax error keeps the last good version");
    CHECK_STR(result(rt, "x"), "\"B\"");
    info = info_of(h, "x");
    CHECK_CONTAINS(json_string_value(json_object_get(info, "error")), "/x.lua:3:");
    CHECK(json_integer_value(json_object_get(info, "generation")) == (json_int_t)g2, "info gen");
    json_decref(info);

    /* Compiles, but fails at load time in the runtime: last good serves. */
    put_file("x.lua", "error('top-level boom')\nreturn function() return 'D' end\n");
    handlers_rescan(h);
    CHECK(generation(h, "x") > g2, "compiles, so the registry takes it");
    CHECK_STR(result(rt, "x"), "\"B\"");
    info = info_of(h, "x");
    CHECK(json_is_null(json_object_get(info, "error")), "no compile error");
    json_decref(info);

    put_file("x.lua", "return function() return 'E' end\n");
    handlers_rescan(h);
    CHECK_STR(result(rt, "x"), "\"E\"");

    rm_file("x.lua");
    handlers_rescan(h);
    CHECK_STR(result(rt, "x"), "error: no handler for type 'x'");
    info = info_of(h, "x");
    CHECK(info == NULL, "x is gone from handlers_info");
    json_decref(info);

    /* A type that first appears broken, then gets fixed. */
    put_file("y.lua", "return function(\n");
    handlers_rescan(h);
    CHECK_STR(result(rt, "y"), "error: no handler for type 'y'");
    put_file("y.lua", "return { timeout = 100, handle = function() return 'Y' end }\n");
    handlers_rescan(h);
    CHECK_STR(result(rt, "y"), "\"Y\"");
    rm_file("y.lua");

    runtime_free(rt);
    handlers_close(h);
}

static void
test_watch(void)
{
    struct handlers *h;
    char err[256];
    int64_t took, t0;
    uint64_t g;

    h = handlers_open(dir, err, sizeof err);
    CHECK(h && handlers_watch(h) == 0, "watch");
    if (!h)
        return;
    CHECK(handlers_watch(h) == 0, "watching twice is fine");

    put_file("w.lua", "return function() return 1 end\n");
    took = wait_for(h, "w", 0, 0);
    CHECK(took >= 0 && took < 1000, "new file seen in %lld ms", (long long)took);

    g = generation(h, "w");
    put_file("w.lua", "return function() return 2 end\n");
    took = wait_for(h, "w", g, 0);
    CHECK(took >= 0 && took < 1000, "edit seen in %lld ms", (long long)took);

    g = generation(h, "w");
    put_file_renamed("w.lua", "return function() return 3 end\n");
    took = wait_for(h, "w", g, 0);
    CHECK(took >= 0 && took < 1000, "write-then-rename seen in %lld ms", (long long)took);

    rm_file("w.lua");
    took = wait_for(h, "w", 0, 1);
    CHECK(took >= 0 && took < 1000, "delete seen in %lld ms", (long long)took);

    t0 = mono_ms();
    handlers_close(h);
    took = mono_ms() - t0;
    CHECK(took < 200, "close stops the watcher promptly (%lld ms)", (long long)took);
}

struct worker {
    struct handlers *h;
    pthread_t        thread;
    int              runs, bad;
    int             *stop;      /* set (atomically) to end the run */
};

/* worker_main runs jobs of type "c" on its own runtime, as a worker thread
 * does, until told to stop.  Every result must come from some version. */
static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct runtime *rt = runtime_new(w->h, 16 << 20);

    while (rt && !__atomic_load_n(w->stop, __ATOMIC_RELAXED)) {
        char buf[512];
        const char *r = result_into(rt, "c", buf, sizeof buf);
        if (strncmp(r, "{\"v\":", 5) != 0 && w->bad++ == 0)
            printf("unexpected result: %s\n", r);
        w->runs++;
    }
    if (!rt)
        w->bad++;
    runtime_free(rt);
    return NULL;
}

static void
test_concurrent(void)
{
    struct worker w[4];
    int stop = 0;
    struct handlers *h;
    char err[256], text[128];
    int runs = 0, bad = 0;

    put_file("c.lua", "return function() return { v = 0 } end\n");
    h = handlers_open(dir, err, sizeof err);
    CHECK(h != NULL, "open");
    if (!h)
        return;
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ h, 0, 0, 0, &stop };
        pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
    }
    for (int v = 1; v <= 30; v++) {
        snprintf(text, sizeof text, "return function() return { v = %d%s } end\n", v,
                 v % 7 ? "" : " +"); /* every 7th version does not compile */
        put_file("c.lua", text);
        handlers_rescan(h);
        sleep_ms(5);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 4; i++) {
        pthread_join(w[i].thread, NULL);
        runs += w[i].runs;
        bad += w[i].bad;
    }
    CHECK(runs > 100 && bad == 0, "%d runs on 4 threads during reloads, %d bad", runs, bad);
    handlers_close(h);
    rm_file("c.lua");
}

int
main(void)
{
    char cmd[128];

    log_set_level(LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/jqrun-handlers-XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp: %s", strerror(errno));
        return ut_done("test_handlers");
    }
    test_open();
    test_reload();
    test_watch();
    test_concurrent();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", dir);
    return ut_done("test_handlers");
}
