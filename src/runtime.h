/* runtime.h — a Lua 5.4 VM that runs handlers, one per worker thread.
 *
 * A runtime is touched by exactly one thread.  It keeps each handler type's
 * compiled function and reloads it when the registry's generation moves. */
#ifndef JQ_RUNTIME_H
#define JQ_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

struct handlers;
struct runtime;

/* rt_host gives ctx.* its effects on the outside world.  Every callback
 * returns 0, or -1 with err filled (the handler then sees a Lua error). */
struct rt_host {
    void *ud;
    /* ctx.progress(n): n is 0..100 (checked before the call). */
    int (*progress)(void *ud, int pct, char *err, size_t errlen);
    /* ctx.enqueue(type, payload, opts): payload and opts are JSON object
     * texts (opts may be NULL: {queue, priority, delay, runAt, ...} as in
     * POST /jobs).  Writes the new id into id_out. */
    int (*enqueue)(void *ud, const char *type, const char *payload_json,
                   const char *opts_json, char id_out[37], char *err, size_t errlen);
};

/* rt_job is the job handed to a handler (job.* in Lua). */
struct rt_job {
    const char *id, *type, *queue;
    const char *payload_json;   /* JSON object text */
    const char *metadata_json;  /* JSON object text or NULL */
    int         attempt;        /* 1 on the first run */
    int         max_attempts;
    int         priority;
    int64_t     created_at;     /* ms */
    int64_t     timeout_ms;     /* the job's own timeout, 0 = not set */
    int64_t     default_timeout;/* config defaults.timeout */
};

/* rt_result is how the run ended.  Strings are malloc'd; rt_result_free. */
struct rt_result {
    int      ok;            /* 1: result_json is the return value as JSON */
    char    *result_json;   /* "null" when the handler returned nothing */
    char    *error;         /* failure message, with file:line when known:
                               "handlers/x.lua:3: boom", "timeout after 100 ms",
                               "memory limit exceeded", "no handler for type 'x'",
                               "result is not JSON-serializable: ..." */
    char    *stack;         /* traceback, or NULL */
    int      permanent;     /* ctx.fail(): never retried */
    char    *logs_json;     /* JSON array of the last 20 ctx.log lines, or NULL */
    int64_t  timeout_ms;    /* the effective timeout used */
    /* The handler's own options (0 / -1 / "" when it set none): */
    int      max_attempts;
    int64_t  backoff;
    char     strategy[16];
};
void rt_result_free(struct rt_result *r);

/* runtime_new makes a VM that takes handlers from reg, capping its Lua
 * memory at memory_limit bytes.  NULL when the VM cannot be built. */
struct runtime *runtime_new(struct handlers *reg, int64_t memory_limit);
void runtime_free(struct runtime *rt);

/* runtime_run runs the handler of job->type once and fills res.  It never
 * raises, never exits the process, and returns within the timeout unless a
 * single C call runs away (the worker's watchdog covers that case).
 * Returns 0 (see res->ok), or -1 when the VM had to be rebuilt and could
 * not be (the caller should drop this runtime). */
int runtime_run(struct runtime *rt, const struct rt_job *job,
                const struct rt_host *host, struct rt_result *res);

/* runtime_handler_options reads the options of the current version of a
 * handler (timeout, max_attempts, backoff, concurrency) without running it.
 * Returns 0, or -1 when there is no good handler for type. */
int runtime_handler_options(struct runtime *rt, const char *type, int64_t *timeout,
                            int *max_attempts, int *concurrency);

/* CLI commands (exit codes 0/1/2): `jqrun exec HANDLER.lua [JSON|@file|-]`
 * runs one handler locally without Redis (ctx.enqueue prints what it would
 * enqueue) and prints the result JSON, or the error on stderr (exit 1).
 * `jqrun check` compiles every handler of dir and prints each error with
 * file:line (exit 1 if any). */
int runtime_cmd_exec(int argc, char **argv, int64_t memory_limit, int64_t default_timeout);
int runtime_cmd_check(const char *dir);

#endif
