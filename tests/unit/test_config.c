/* test_config.c — jqrun.conf loading: defaults, the example file, type and
 * key errors with their lines, the sandbox (no io/os/require, bounded time
 * and memory), queues and JQRUN_* overrides.  Run from the repo root. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "util.h"
#include "ut.h"

static char err[512];

static const char *const env_vars[] = {
    "JQRUN_CONFIG", "JQRUN_LISTEN", "JQRUN_REDIS", "JQRUN_DATA_DIR",
    "JQRUN_HANDLERS", "JQRUN_PREFIX", "JQRUN_LEASE", "JQRUN_SHUTDOWN_GRACE",
    "JQRUN_LOG_LEVEL", "JQRUN_MASTER_KEY", "JQRUN_WEBHOOK_SECRET", NULL,
};

static void
clear_env(void)
{
    for (int i = 0; env_vars[i]; i++)
        unsetenv(env_vars[i]);
}

/* load_ok loads src as "t.conf" into c and expects success. */
static int
load_ok(struct config *c, const char *src)
{
    err[0] = '\0';
    int rc = config_load_string(c, src, "t.conf", err, sizeof err);
    CHECK(rc == 0, "config %s failed: %s", src, err);
    return rc;
}

/* load_err loads src and expects a failure; returns the message. */
static const char *
load_err(const char *src)
{
    struct config c;

    err[0] = '\0';
    int rc = config_load_string(&c, src, "t.conf", err, sizeof err);
    CHECK(rc == -1, "config %s loaded; want an error", src);
    if (rc == 0)
        config_free(&c);
    return err;
}

/* expect_err checks that src fails with a message that starts with want
 * ("t.conf:3: 'lease' must be"). */
static void
expect_err(const char *src, const char *want)
{
    const char *got = load_err(src);
    CHECK(strncmp(got, want, strlen(want)) == 0,
          "config %s: got '%s', want a message starting with '%s'", src, got,
          want);
}

/* write_temp writes src to a new temp file and returns its malloc'd path. */
static char *
write_temp(const char *src)
{
    char *path = xstrdup("/tmp/jqrun-test-conf-XXXXXX");
    int fd = mkstemp(path);
    FILE *f;

    if (fd < 0) {
        perror("mkstemp");
        exit(1);
    }
    f = fdopen(fd, "w");
    fputs(src, f);
    fclose(f);
    return path;
}

static void
test_defaults(void)
{
    struct config c;

    config_defaults(&c);
    CHECK(c.path == NULL, "path %s", c.path);
    CHECK_STR(c.listen, "127.0.0.1:8080");
    CHECK(c.redis == NULL, "redis %s", c.redis);
    CHECK_STR(c.data_dir, ".jqrun");
    CHECK_STR(c.handlers, "handlers");
    CHECK_STR(c.prefix, "jq");
    CHECK(c.nqueues == 1, "nqueues %d", c.nqueues);
    CHECK_STR(c.queues[0].name, "default");
    CHECK(c.queues[0].concurrency == 4, "%d", c.queues[0].concurrency);
    CHECK(c.max_attempts == 3, "%d", c.max_attempts);
    CHECK(c.backoff == 1000, "%lld", (long long)c.backoff);
    CHECK(c.timeout == 30000, "%lld", (long long)c.timeout);
    CHECK(c.lease == 30000, "%lld", (long long)c.lease);
    CHECK(c.shutdown_grace == 30000, "%lld", (long long)c.shutdown_grace);
    CHECK(c.memory_limit == 64 * 1024 * 1024, "%lld",
          (long long)c.memory_limit);
    CHECK(c.keep_completed.count == 10000 && c.keep_completed.age == 86400000,
          "completed %lld %lld", (long long)c.keep_completed.count,
          (long long)c.keep_completed.age);
    CHECK(c.keep_failed.count == 10000 && c.keep_failed.age == 604800000,
          "failed %lld %lld", (long long)c.keep_failed.count,
          (long long)c.keep_failed.age);
    CHECK(c.http_max_body == 1048576, "%lld", (long long)c.http_max_body);
    CHECK(c.http_connection_timeout == 30, "%d", c.http_connection_timeout);
    CHECK(c.http_max_connections == 1024, "%d", c.http_max_connections);
    CHECK(c.webhook_attempts == 8, "%d", c.webhook_attempts);
    CHECK(c.webhook_backoff == 1000, "%lld", (long long)c.webhook_backoff);
    CHECK(c.webhook_timeout == 10000, "%lld", (long long)c.webhook_timeout);
    CHECK_STR(c.log_level, "info");
    CHECK(c.master_key == NULL && c.webhook_secret == NULL, "auth set");
    CHECK(c.rate_limit_requests == 0 && c.rate_limit_per == 1000, "rate limit %d/%lld",
          c.rate_limit_requests, (long long)c.rate_limit_per);
    CHECK(config_find_queue(&c, "default") == &c.queues[0], "find default");
    CHECK(config_find_queue(&c, "nope") == NULL, "find nope");
    config_free(&c);
    config_free(&c);        /* twice is harmless */
    CHECK(c.listen == NULL && c.nqueues == 0, "not emptied");

    /* An empty file is all defaults, too. */
    if (load_ok(&c, "-- nothing here\n") == 0) {
        CHECK_STR(c.path, "t.conf");
        CHECK_STR(c.listen, "127.0.0.1:8080");
        CHECK(c.nqueues == 1, "nqueues %d", c.nqueues);
        config_free(&c);
    }
}

static void
test_example(void)
{
    struct config c;

    clear_env();
    if (config_load(&c, "examples/jqrun.conf", err, sizeof err) != 0) {
        CHECK(0, "examples/jqrun.conf: %s", err);
        return;
    }
    CHECK_STR(c.path, "examples/jqrun.conf");
    CHECK_STR(c.listen, "127.0.0.1:8080");
    CHECK(c.redis == NULL, "redis %s", c.redis);
    CHECK_STR(c.prefix, "jq");
    CHECK(c.nqueues == 2, "nqueues %d", c.nqueues);
    CHECK_STR(c.queues[0].name, "default");   /* sorted by name */
    CHECK(c.queues[0].concurrency == 4, "%d", c.queues[0].concurrency);
    CHECK_STR(c.queues[1].name, "emails");
    CHECK(c.queues[1].concurrency == 2, "%d", c.queues[1].concurrency);
    CHECK(c.memory_limit == 64 * 1024 * 1024, "%lld",
          (long long)c.memory_limit);
    CHECK(c.keep_failed.age == 604800000, "%lld",
          (long long)c.keep_failed.age);
    CHECK(c.max_attempts == 3 && c.webhook_attempts == 8, "numbers");
    CHECK_STR(c.log_level, "info");
    config_free(&c);
}

static void
test_values(void)
{
    struct config c;
    const char *src =
        "local mb = 1024 * 1024\n"
        "listen = ('0.0.0.0:%d'):format(9090)\n"
        "redis = 'redis://127.0.0.1:6379/2'\n"
        "data_dir = '/var/lib/jqrun'\n"
        "handlers = 'h'\n"
        "prefix = string.format('%s_%d', 'jq', 2)\n"
        "defaults = { max_attempts = 5, backoff = 2e3, timeout = 1000 }\n"
        "lease = 5000\n"
        "lease = 6000   -- the last assignment wins\n"
        "shutdown_grace = 0\n"
        "limits = { memory = math.max(2, 8) * mb }\n"
        "retention = { completed = { count = 0 }, failed = { age = 1 } }\n"
        "http = { max_body = 10, connection_timeout = 0, max_connections = 1 }\n"
        "webhooks = { attempts = 1, backoff = 0, timeout = 1 }\n"
        "log = { level = 'debug' }\n"
        "auth = { master_key = 'mk', webhook_secret = 'whsec_abc',\n"
        "         rate_limit = { requests = 100, per = 60000 } }\n";

    if (load_ok(&c, src) != 0)
        return;
    CHECK_STR(c.listen, "0.0.0.0:9090");
    CHECK_STR(c.redis, "redis://127.0.0.1:6379/2");
    CHECK_STR(c.data_dir, "/var/lib/jqrun");
    CHECK_STR(c.handlers, "h");
    CHECK_STR(c.prefix, "jq_2");
    CHECK(c.max_attempts == 5 && c.backoff == 2000 && c.timeout == 1000,
          "defaults %d %lld %lld", c.max_attempts, (long long)c.backoff,
          (long long)c.timeout);
    CHECK(c.lease == 6000, "lease %lld", (long long)c.lease);
    CHECK(c.shutdown_grace == 0, "grace %lld", (long long)c.shutdown_grace);
    CHECK(c.memory_limit == 8 << 20, "memory %lld", (long long)c.memory_limit);
    CHECK(c.keep_completed.count == 0 && c.keep_completed.age == 86400000,
          "a partial table keeps the other defaults");
    CHECK(c.keep_failed.count == 10000 && c.keep_failed.age == 1, "failed");
    CHECK(c.http_max_body == 10 && c.http_connection_timeout == 0
          && c.http_max_connections == 1, "http");
    CHECK(c.webhook_attempts == 1 && c.webhook_backoff == 0
          && c.webhook_timeout == 1, "webhooks");
    CHECK_STR(c.log_level, "debug");
    CHECK_STR(c.master_key, "mk");
    CHECK_STR(c.webhook_secret, "whsec_abc");
    CHECK(c.rate_limit_requests == 100 && c.rate_limit_per == 60000, "rate limit %d/%lld",
          c.rate_limit_requests, (long long)c.rate_limit_per);
    config_free(&c);

    /* nil keeps the default: redis = nil means the embedded Redis. */
    if (load_ok(&c, "redis = nil\nlease = nil\nauth = { master_key = nil }\n")
        == 0) {
        CHECK(c.redis == NULL, "redis %s", c.redis);
        CHECK(c.lease == 30000, "lease %lld", (long long)c.lease);
        CHECK(c.master_key == NULL, "master_key %s", c.master_key);
        config_free(&c);
    }
}

/* Every key with a wrong type or value: the message names the key and the
 * line (3: two comment lines come first). */
static void
test_type_errors(void)
{
    static const struct {
        const char *line;
        const char *want;
    } cases[] = {
        { "lease = '30000'",
          "'lease' must be a positive integer (ms), got string" },
        { "lease = 0", "'lease' must be a positive integer (ms), got 0" },
        { "lease = 1.5", "'lease' must be a positive integer (ms), got 1.5" },
        { "lease = 1e300", "'lease' must be a positive integer (ms)" },
        { "lease = 0/0", "'lease' must be a positive integer (ms)" },
        { "lease = true", "'lease' must be a positive integer (ms), got boolean" },
        { "listen = 8080", "'listen' must be a \"host:port\" string, got number" },
        { "listen = 'localhost'", "'listen' must be a \"host:port\" string" },
        { "listen = 'h:99999'", "'listen' must be" },
        { "listen = ':80'", "'listen' must be" },
        { "listen = 'a\\0b:1'", "'listen' must not contain a NUL byte" },
        { "redis = 6379", "'redis' must be" },
        { "redis = 'http://x'", "'redis' must be" },
        { "data_dir = ''", "'data_dir' must be a non-empty string" },
        { "data_dir = {}", "'data_dir' must be a non-empty string, got table" },
        { "handlers = false", "'handlers' must be a non-empty string" },
        { "prefix = 'a b'", "'prefix' must be" },
        { "prefix = ''", "'prefix' must be" },
        { "queues = 4", "'queues' must be a table" },
        { "defaults = 5", "'defaults' must be a table, got number" },
        { "defaults = { max_attempts = 0 }",
          "'defaults.max_attempts' must be an integer in 1..100, got 0" },
        { "defaults = { max_attempts = 101 }",
          "'defaults.max_attempts' must be at most 100, got 101" },
        { "defaults = { backoff = -1 }",
          "'defaults.backoff' must be a non-negative integer (ms), got -1" },
        { "defaults = { timeout = 0 }",
          "'defaults.timeout' must be a positive integer (ms), got 0" },
        { "defaults = { timeout = '1s' }",
          "'defaults.timeout' must be a positive integer (ms), got string" },
        { "shutdown_grace = -1", "'shutdown_grace' must be a non-negative" },
        { "limits = { memory = 1000 }",
          "'limits.memory' must be an integer >= 1048576 (bytes), got 1000" },
        { "limits = 'big'", "'limits' must be a table, got string" },
        { "retention = { completed = { count = -1 } }",
          "'retention.completed.count' must be a non-negative integer" },
        { "retention = { failed = { age = 'x' } }",
          "'retention.failed.age' must be a non-negative integer (ms)" },
        { "retention = { completed = 5 }",
          "'retention.completed' must be a table, got number" },
        { "http = { max_body = 0 }", "'http.max_body' must be a positive" },
        { "http = { connection_timeout = -1 }",
          "'http.connection_timeout' must be a non-negative integer" },
        { "http = { max_connections = 0 }",
          "'http.max_connections' must be a positive integer" },
        { "webhooks = { attempts = 0 }", "'webhooks.attempts' must be" },
        { "webhooks = { backoff = -5 }", "'webhooks.backoff' must be" },
        { "webhooks = { timeout = 0 }", "'webhooks.timeout' must be" },
        { "log = { level = 'loud' }", "'log.level' must be one of" },
        { "log = { level = 1 }", "'log.level' must be one of" },
        { "log = 'info'", "'log' must be a table" },
        { "auth = { master_key = 5 }",
          "'auth.master_key' must be a non-empty string or nil, got number" },
        { "auth = { master_key = '' }", "'auth.master_key' must be" },
        { "auth = { webhook_secret = {} }", "'auth.webhook_secret' must be" },
        { "auth = { rate_limit = 5 }", "'auth.rate_limit' must be a table, got number" },
        { "auth = { rate_limit = { requests = -1 } }",
          "'auth.rate_limit.requests' must be a non-negative integer (0 = no limit), got -1" },
        { "auth = { rate_limit = { requests = 1.5 } }",
          "'auth.rate_limit.requests' must be a non-negative integer" },
        { "auth = { rate_limit = { per = 0 } }",
          "'auth.rate_limit.per' must be a positive integer (ms), got 0" },
        { "auth = { rate_limit = { per = '1s' } }",
          "'auth.rate_limit.per' must be a positive integer (ms), got string" },
    };
    char src[256], want[256];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(src, sizeof src, "-- one\n-- two\n%s\n", cases[i].line);
        snprintf(want, sizeof want, "t.conf:3: %s", cases[i].want);
        expect_err(src, want);
    }
}

static void
test_lines(void)
{
    /* A multi-line table names the line of its key, not of its brace. */
    expect_err("defaults = {\n  backoff = 1,\n  timeout = 0,\n}\n",
               "t.conf:1: 'defaults.timeout'");
    /* The last assignment of a key is the one checked. */
    expect_err("lease = 1\n\nlease = 'x'\n", "t.conf:3: 'lease'");
    /* With several errors, the first line is reported. */
    expect_err("listen = 'x:1'\nlease = 'a'\nbogus = 1\n",
               "t.conf:2: 'lease'");
    /* An assignment inside a function is still an assignment. */
    expect_err("local function f()\n  lease = -1\nend\nf()\n",
               "t.conf:2: 'lease'");
}

static void
test_unknown_keys(void)
{
    expect_err("\nlisen = '127.0.0.1:8080'\n", "t.conf:2: unknown key 'lisen'");
    expect_err("x = nil\n", "t.conf:1: unknown key 'x'");
    expect_err("defaults = { retries = 3 }\n",
               "t.conf:1: unknown key 'defaults.retries'");
    expect_err("\n\nretention = { completed = { size = 1 } }\n",
               "t.conf:3: unknown key 'retention.completed.size'");
    expect_err("auth = { key = 'k' }\n", "t.conf:1: unknown key 'auth.key'");
    expect_err("auth = {\n  rate_limit = { requests = 1, window = 5 },\n}\n",
               "t.conf:1: unknown key 'auth.rate_limit.window'");
    expect_err("defaults = { 3 }\n", "t.conf:1: unknown key 'defaults[1]'");
    expect_err("http = { [true] = 1 }\n", "t.conf:1: 'http' may only have");
    expect_err("_ENV['defaults.timeout'] = 1\n",
               "t.conf:1: unknown key 'defaults.timeout'");
    expect_err("\n_ENV[1] = 2\n", "t.conf:2: a config may only assign names");
    expect_err("math = 1\n", "t.conf:1: unknown key 'math'");
}

static void
test_lua_errors(void)
{
    const char *m;

    m = load_err("listen = '127.0.0.1:8080'\nlease = \n\n= 3\n");
    CHECK_CONTAINS(m, "t.conf:4:");
    CHECK_CONTAINS(m, "unexpected symbol near '='");
    m = load_err("x = 'unfinished\n");
    CHECK_CONTAINS(m, "t.conf:1: unfinished string");
    m = load_err("lease = nothing + 1\n");
    CHECK_CONTAINS(m, "t.conf:1: attempt to perform arithmetic on a nil value");
    m = load_err("lease = 1 // 0\n");
    CHECK_CONTAINS(m, "t.conf:1:");
    /* Precompiled chunks are refused: mode "t". */
    m = load_err("\033Lua\x54\x00garbage");
    CHECK_CONTAINS(m, "t.conf: attempt to load a binary chunk");
    /* Long paths are not cut short as Lua's chunk names would be. */
    {
        struct config c;
        char name[200];
        memset(name, 'p', 150);
        strcpy(name + 150, ".conf");
        CHECK(config_load_string(&c, "lease = 'x'", name, err, sizeof err)
              == -1, "loaded");
        CHECK(strncmp(err, name, strlen(name)) == 0
              && strncmp(err + strlen(name), ":1: ", 4) == 0, "got '%s'", err);
    }
}

/* The config has no io, os, require, load, dofile... and cannot change
 * what it can reach. */
static void
test_sandbox(void)
{
    expect_err("\nrequire('os')\n",
               "t.conf:2: attempt to call a nil value (global 'require')");
    expect_err("os.exit(1)\n",
               "t.conf:1: attempt to index a nil value (global 'os')");
    expect_err("x = io.open('/etc/passwd')\n",
               "t.conf:1: attempt to index a nil value (global 'io')");
    expect_err("load('x = 1')()\n", "t.conf:1: attempt to call a nil value");
    expect_err("dofile('/etc/passwd')\n", "t.conf:1: attempt to call a nil");
    expect_err("print(1)\n", "t.conf:1: attempt to call a nil");
    expect_err("setmetatable({}, {})\n", "t.conf:1: attempt to call a nil");
    expect_err("rawset(_ENV, 'lease', 1)\n", "t.conf:1: attempt to call a nil");
    expect_err("x = getmetatable('')\n", "t.conf:1: attempt to call a nil");
    expect_err("x = string.dump\nx(function() end)\n",
               "t.conf:2: attempt to call a nil");
    expect_err("x = ('aaa'):gsub('a', 'b')\n",
               "t.conf:1: attempt to call a nil value (method 'gsub')");
    expect_err("local a = string.find('a', 'a')\n",
               "t.conf:1: attempt to call a nil value (field 'find')");
    expect_err("math.pi = 3\n",
               "t.conf:1: attempt to modify the read-only table 'math'");
    expect_err("\nstring.rep = nil\n",
               "t.conf:2: attempt to modify the read-only table 'string'");
}

static long
elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000
         + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A config that loops or allocates without end fails, fast. */
static void
test_bounds(void)
{
    struct timespec t0;
    const char *m;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    m = load_err("listen = 'a:1'\nwhile true do end\n");
    CHECK_CONTAINS(m, "t.conf:2: the config runs too long");
    m = load_err("local function f() return f() end\nreturn f()\n");
    CHECK_CONTAINS(m, "t.conf:1: the config runs too long");
    m = load_err("local function f() f() end\nf()\n");
    CHECK_CONTAINS(m, "t.conf:1:");        /* stack overflow */
    CHECK(elapsed_ms(&t0) < 10000, "loops took %ld ms", elapsed_ms(&t0));

    clock_gettime(CLOCK_MONOTONIC, &t0);
    m = load_err("\n\nx = string.rep('x', 1 << 30)\n");
    CHECK_CONTAINS(m, "t.conf:3: the config uses too much memory");
    m = load_err("local s = 'x'\nwhile true do s = s .. s end\n");
    CHECK_CONTAINS(m, "t.conf:2: the config uses too much memory");
    m = load_err("local t = {}\nfor i = 1, 1e9 do t[i] = i end\n");
    CHECK_CONTAINS(m, "t.conf:2: the config");
    m = load_err("local t = {}\nfor i = 1, 1e9 do t[i] = {i} end\n");
    CHECK_CONTAINS(m, "t.conf:2: the config");
    m = load_err("x = ('x'):rep(1 << 62)\n");
    CHECK_CONTAINS(m, "t.conf:1:");
    CHECK(elapsed_ms(&t0) < 10000, "bombs took %ld ms", elapsed_ms(&t0));

    /* Deep nesting is the parser's business: an error, not a crash.  The
     * parser gives no line for this one. */
    {
        struct strbuf sb = {0};
        sb_puts(&sb, "x = ");
        for (int i = 0; i < 100000; i++)
            sb_puts(&sb, "{");
        m = load_err(sb.buf);
        CHECK_STR(m, "t.conf: C stack overflow");
        sb_free(&sb);
    }
}

static void
test_queues(void)
{
    struct config c;
    const struct queue_conf *q;

    if (load_ok(&c, "queues = { zeta = { concurrency = 1 },\n"
                    "  ['mail.out'] = { concurrency = 16 } }\n") == 0) {
        CHECK(c.nqueues == 2, "nqueues %d", c.nqueues);
        CHECK(config_find_queue(&c, "default") == NULL,
              "queues replaces the default list");
        q = config_find_queue(&c, "mail.out");
        CHECK(q && q->concurrency == 16, "mail.out %d", q ? q->concurrency : -1);
        q = config_find_queue(&c, "zeta");
        CHECK(q && q->concurrency == 1, "zeta %d", q ? q->concurrency : -1);
        CHECK_STR(c.queues[0].name, "mail.out");
        config_free(&c);
    }
    if (load_ok(&c, "queues = { a = {} }\n") == 0) {
        CHECK(c.nqueues == 1 && c.queues[0].concurrency == 4,
              "a queue without concurrency gets 4: %d", c.queues[0].concurrency);
        config_free(&c);
    }
    if (load_ok(&c, "queues = {}\n") == 0) {
        CHECK(c.nqueues == 0, "nqueues %d", c.nqueues);
        config_free(&c);
    }
    expect_err("\nqueues = { ['bad name'] = { concurrency = 1 } }\n",
               "t.conf:2: 'queues' has an invalid queue name \"bad name\"");
    expect_err("queues = { [''] = {} }\n", "t.conf:1: 'queues' has an invalid");
    expect_err("queues = { emails = { concurrency = 0 } }\n",
               "t.conf:1: 'queues.emails.concurrency' must be a positive "
               "integer, got 0");
    expect_err("queues = { emails = { concurrency = '2' } }\n",
               "t.conf:1: 'queues.emails.concurrency' must be a positive "
               "integer, got string");
    expect_err("queues = { emails = { concurrency = 100000 } }\n",
               "t.conf:1: 'queues.emails.concurrency' must be at most");
    expect_err("queues = { emails = 2 }\n",
               "t.conf:1: 'queues.emails' must be a table");
    expect_err("queues = { emails = { workers = 2 } }\n",
               "t.conf:1: unknown key 'queues.emails.workers'");
    expect_err("queues = { { concurrency = 2 } }\n",
               "t.conf:1: 'queues' must map queue names to tables");
    expect_err("queues = {}\nfor i = 1, 65 do queues['q' .. i] = {} end\n",
               "t.conf:1: 'queues' has more than 64 queues");
    if (load_ok(&c, "queues = {}\nfor i = 1, 64 do queues['q' .. i] = {} end\n")
        == 0) {
        CHECK(c.nqueues == 64, "nqueues %d", c.nqueues);
        config_free(&c);
    }
}

static void
test_files(void)
{
    struct config c;
    char *path, *dir_conf;
    char cwd[PATH_MAX], dir[] = "/tmp/jqrun-test-dir-XXXXXX";
    int rc;

    clear_env();
    rc = config_load(&c, "/nonexistent/jqrun.conf", err, sizeof err);
    CHECK(rc == -1, "missing file loaded");
    CHECK_STR(err, "cannot read /nonexistent/jqrun.conf: No such file or "
                   "directory");
    CHECK(c.listen == NULL && c.path == NULL, "c not emptied on error");
    config_free(&c);

    rc = config_load(&c, "/tmp", err, sizeof err);
    CHECK(rc == -1, "a directory loaded");
    CHECK_CONTAINS(err, "cannot read /tmp: ");

    path = write_temp("-- a file\nlisten = '127.0.0.1:0'\nlease = 'x'\n");
    rc = config_load(&c, path, err, sizeof err);
    CHECK(rc == -1, "bad file loaded");
    CHECK(strncmp(err, path, strlen(path)) == 0
          && strstr(err, ":3: 'lease' must be"), "got '%s'", err);
    unlink(path);
    free(path);

    /* $JQRUN_CONFIG is read when no path is given; it must exist. */
    path = write_temp("listen = '127.0.0.1:7000'\n");
    setenv("JQRUN_CONFIG", path, 1);
    if (config_load(&c, NULL, err, sizeof err) == 0) {
        CHECK_STR(c.path, path);
        CHECK_STR(c.listen, "127.0.0.1:7000");
        config_free(&c);
    } else {
        CHECK(0, "JQRUN_CONFIG: %s", err);
    }
    unlink(path);
    CHECK(config_load(&c, NULL, err, sizeof err) == -1, "missing JQRUN_CONFIG");
    CHECK_CONTAINS(err, "cannot read ");
    unsetenv("JQRUN_CONFIG");
    free(path);

    /* Else ./jqrun.conf when it exists, else only defaults. */
    if (!getcwd(cwd, sizeof cwd) || !mkdtemp(dir) || chdir(dir) != 0) {
        CHECK(0, "cannot make a temp dir");
        return;
    }
    if (config_load(&c, NULL, err, sizeof err) == 0) {
        CHECK(c.path == NULL, "path %s", c.path);
        CHECK_STR(c.listen, "127.0.0.1:8080");
        config_free(&c);
    } else {
        CHECK(0, "defaults only: %s", err);
    }
    dir_conf = write_temp("prefix = 'here'\n");
    CHECK(rename(dir_conf, "jqrun.conf") == 0, "rename");
    if (config_load(&c, NULL, err, sizeof err) == 0) {
        CHECK_STR(c.path, "jqrun.conf");
        CHECK_STR(c.prefix, "here");
        config_free(&c);
    } else {
        CHECK(0, "./jqrun.conf: %s", err);
    }
    unlink("jqrun.conf");
    free(dir_conf);
    CHECK(chdir(cwd) == 0, "chdir back");
    rmdir(dir);
}

static void
test_env(void)
{
    struct config c;
    char *path = write_temp("listen = '127.0.0.1:1'\nlease = 100\n"
                            "log = { level = 'warn' }\n");

    clear_env();
    setenv("JQRUN_LISTEN", "0.0.0.0:9999", 1);
    setenv("JQRUN_REDIS", "unix:///tmp/r.sock", 1);
    setenv("JQRUN_DATA_DIR", "/data", 1);
    setenv("JQRUN_HANDLERS", "/h", 1);
    setenv("JQRUN_PREFIX", "p1", 1);
    setenv("JQRUN_LEASE", "2500", 1);
    setenv("JQRUN_SHUTDOWN_GRACE", "0", 1);
    setenv("JQRUN_LOG_LEVEL", "error", 1);
    setenv("JQRUN_MASTER_KEY", "secret-master", 1);
    setenv("JQRUN_WEBHOOK_SECRET", "whsec_x", 1);
    if (config_load(&c, path, err, sizeof err) == 0) {
        CHECK_STR(c.listen, "0.0.0.0:9999");
        CHECK_STR(c.redis, "unix:///tmp/r.sock");
        CHECK_STR(c.data_dir, "/data");
        CHECK_STR(c.handlers, "/h");
        CHECK_STR(c.prefix, "p1");
        CHECK(c.lease == 2500, "lease %lld", (long long)c.lease);
        CHECK(c.shutdown_grace == 0, "grace %lld", (long long)c.shutdown_grace);
        CHECK_STR(c.log_level, "error");
        CHECK_STR(c.master_key, "secret-master");
        CHECK_STR(c.webhook_secret, "whsec_x");
        config_free(&c);
    } else {
        CHECK(0, "env overrides: %s", err);
    }

    /* config_load_string ignores the environment. */
    if (load_ok(&c, "lease = 7\n") == 0) {
        CHECK(c.lease == 7, "lease %lld", (long long)c.lease);
        CHECK_STR(c.listen, "127.0.0.1:8080");
        config_free(&c);
    }

    /* An empty variable counts as unset. */
    clear_env();
    setenv("JQRUN_LEASE", "", 1);
    if (config_load(&c, path, err, sizeof err) == 0) {
        CHECK(c.lease == 100, "lease %lld", (long long)c.lease);
        CHECK_STR(c.log_level, "warn");
        config_free(&c);
    } else {
        CHECK(0, "empty JQRUN_LEASE: %s", err);
    }

    static const struct {
        const char *var, *val, *want;
    } bad[] = {
        { "JQRUN_LEASE", "abc", "JQRUN_LEASE: must be a positive integer (ms)" },
        { "JQRUN_LEASE", "0", "JQRUN_LEASE: must be a positive integer (ms)" },
        { "JQRUN_LEASE", "-5", "JQRUN_LEASE: must be a positive integer (ms)" },
        { "JQRUN_LEASE", "10s", "JQRUN_LEASE: must be a positive integer" },
        { "JQRUN_LEASE", " 10", "JQRUN_LEASE: must be a positive integer" },
        { "JQRUN_LEASE", "99999999999999999999", "JQRUN_LEASE: must be" },
        { "JQRUN_SHUTDOWN_GRACE", "1.5", "JQRUN_SHUTDOWN_GRACE: must be" },
        { "JQRUN_LOG_LEVEL", "loud", "JQRUN_LOG_LEVEL: must be one of" },
        { "JQRUN_LISTEN", "nohost", "JQRUN_LISTEN: must be" },
        { "JQRUN_REDIS", "http://x", "JQRUN_REDIS: must be" },
        { "JQRUN_PREFIX", "a:b", "JQRUN_PREFIX: must be" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        setenv(bad[i].var, bad[i].val, 1);
        err[0] = '\0';
        CHECK(config_load(&c, path, err, sizeof err) == -1, "%s=%s loaded",
              bad[i].var, bad[i].val);
        CHECK(strncmp(err, bad[i].want, strlen(bad[i].want)) == 0,
              "%s=%s: got '%s'", bad[i].var, bad[i].val, err);
        CHECK(c.listen == NULL, "c not emptied");
        config_free(&c);
    }
    clear_env();
    unlink(path);
    free(path);
}

int
main(void)
{
    test_defaults();
    test_example();
    test_values();
    test_type_errors();
    test_lines();
    test_unknown_keys();
    test_lua_errors();
    test_sandbox();
    test_bounds();
    test_queues();
    test_files();
    test_env();
    return ut_done("test_config");
}
