/* main.c — `jqrun [-c FILE] [flags] COMMAND [ARGS]`: config, then dispatch. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cli.h"
#include "events.h"
#include "config.h"
#include "embed.h"
#include "handlers.h"
#include "log.h"
#include "runtime.h"
#include "scheduler.h"
#include "webhook.h"
#include "worker.h"

#define JQRUN_VERSION "0.1.0"

static const char usage_text[] =
    "usage: jqrun [-c FILE] [--listen ADDR] [--redis URL] [--handlers DIR]\n"
    "             [--data-dir DIR] [--log-level LEVEL] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  run                 API + scheduler + workers in one process (the default)\n"
    "  server              API + scheduler\n"
    "  worker              scheduler + workers for the configured queues\n"
    "  enqueue TYPE [JSON|@file|-] [--queue Q] [--priority N] [--delay MS]\n"
    "          [--at ISO|MS] [--attempts N] [--backoff MS] [--timeout MS] [--key KEY]\n"
    "  get ID              print a job as JSON\n"
    "  cancel ID           cancel a waiting or delayed job\n"
    "  retry ID            put a failed or canceled job back to waiting\n"
    "  list [--queue Q] [--status S] [--type T] [--limit N]\n"
    "  stats               jobs per queue and state\n"
    "  watch [--queue Q] [--type T] [--status S]   print job transitions as they happen\n"
    "  exec HANDLER.lua [JSON|@file|-]   run one handler locally, no Redis\n"
    "  check               compile every handler and report errors\n"
    "  version, help\n"
    "\n"
    "The config file is -c FILE, else $JQRUN_CONFIG, else ./jqrun.conf.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage.\n";

/* override replaces a config string with a command-line flag's value. */
static void
override(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
}

/* resolve_redis fills c->redis with the embedded server's URL when the
 * config names none. */
static int
resolve_redis(struct config *c)
{
    char url[600], err[512];
    if (c->redis)
        return 0;
    if (embed_redis(c->data_dir, url, sizeof url, err, sizeof err) < 0) {
        fprintf(stderr, "jqrun: %s\n", err);
        return -1;
    }
    c->redis = strdup(url);
    return 0;
}

/* wait_for_signal blocks until SIGINT or SIGTERM (blocked in every thread,
 * so only this one sees them). */
static int
wait_for_signal(void)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    return sig;
}

/* serve runs the long-lived roles: api and/or workers, plus the scheduler. */
static int
serve(struct config *c, int with_api, int with_workers)
{
    struct handlers *h = NULL;
    struct workers *w = NULL;
    struct scheduler *s = NULL;
    struct webhook *wh = NULL;
    struct api *a = NULL;
    char err[512];
    int rc = 1, sig;

    h = handlers_open(c->handlers, err, sizeof err);
    if (!h && with_workers) {
        fprintf(stderr, "jqrun: handlers: %s\n", err);
        return 1;
    }
    if (h && handlers_watch(h) < 0)
        log_warn("handlers: cannot watch %s; edits need a restart", c->handlers);
    if (!(s = scheduler_start(c))) {
        fprintf(stderr, "jqrun: cannot start the scheduler\n");
        goto out;
    }
    if (!(wh = webhook_start(c, err, sizeof err))) {
        fprintf(stderr, "jqrun: webhooks: %s\n", err);
        goto out;
    }
    if (with_workers && !(w = workers_start(c, h, err, sizeof err))) {
        fprintf(stderr, "jqrun: workers: %s\n", err);
        goto out;
    }
    if (with_api) {
        if (!(a = api_start(c, h, err, sizeof err))) {
            fprintf(stderr, "jqrun: %s\n", err);
            goto out;
        }
        log_info("jqrun %s listening on http://%s (redis %s)", JQRUN_VERSION, c->listen, c->redis);
    }
    if (with_workers) {
        for (int i = 0; i < c->nqueues; i++)
            log_info("serving queue %s with concurrency %d", c->queues[i].name,
                     c->queues[i].concurrency);
    }
    sig = wait_for_signal();
    log_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    api_stop(a);
    if (w)
        workers_stop(w, c->shutdown_grace);
    webhook_stop(wh);
    scheduler_stop(s);
    handlers_close(h);
    return rc;
}

int
main(int argc, char **argv)
{
    const char *cfgpath = NULL, *flags[5] = { 0 }, *cmd = "run";
    static const char *const names[5] = { "--listen", "--redis", "--handlers", "--data-dir",
                                          "--log-level" };
    struct config c;
    char err[512];
    sigset_t set;
    int i, rc;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        int k;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (++i >= argc)
                goto missing;
            cfgpath = argv[i];
            continue;
        }
        for (k = 0; k < 5 && strcmp(argv[i], names[k]) != 0; k++)
            ;
        if (k == 5) {
            fprintf(stderr, "jqrun: unknown flag '%s'\n%s", argv[i], usage_text);
            return 2;
        }
        if (++i >= argc)
            goto missing;
        flags[k] = argv[i];
    }
    if (i < argc)
        cmd = argv[i];
    argc -= i;
    argv += i;

    if (strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0) {
        printf("jqrun %s\n", JQRUN_VERSION);
        return 0;
    }
    if (config_load(&c, cfgpath, err, sizeof err) < 0) {
        fprintf(stderr, "jqrun: %s\n", err);
        return 2;
    }
    if (flags[0])
        override(&c.listen, flags[0]);
    if (flags[1])
        override(&c.redis, flags[1]);
    if (flags[2])
        override(&c.handlers, flags[2]);
    if (flags[3])
        override(&c.data_dir, flags[3]);
    if (flags[4])
        override(&c.log_level, flags[4]);
    if (log_parse_level(c.log_level) < 0) {
        fprintf(stderr, "jqrun: --log-level must be debug, info, warn or error\n");
        config_free(&c);
        return 2;
    }
    log_set_level((enum log_level)log_parse_level(c.log_level));

    /* Commands that need no Redis. */
    if (strcmp(cmd, "exec") == 0) {
        rc = runtime_cmd_exec(argc - 1, argv + 1, c.memory_limit, c.timeout);
        goto done;
    }
    if (strcmp(cmd, "check") == 0) {
        rc = runtime_cmd_check(c.handlers);
        goto done;
    }

    static const struct {
        const char *name;
        int (*fn)(const struct config *, int, char **);
    } clis[] = {
        { "enqueue", cli_enqueue }, { "get", cli_get }, { "cancel", cli_cancel },
        { "retry", cli_retry }, { "list", cli_list }, { "stats", cli_stats },
        { "watch", events_cmd_watch },
    };
    int known = strcmp(cmd, "run") == 0 || strcmp(cmd, "server") == 0 ||
                strcmp(cmd, "worker") == 0;
    for (size_t k = 0; k < sizeof clis / sizeof clis[0]; k++)
        known |= strcmp(cmd, clis[k].name) == 0;
    if (!known) {
        fprintf(stderr, "jqrun: unknown command '%s'\n%s", cmd, usage_text);
        rc = 2;
        goto done;
    }
    if (resolve_redis(&c) < 0) {
        rc = 1;
        goto done;
    }
    for (size_t k = 0; k < sizeof clis / sizeof clis[0]; k++)
        if (strcmp(cmd, clis[k].name) == 0) {
            rc = clis[k].fn(&c, argc, argv);
            goto done;
        }

    /* Long-lived roles: signals go to sigwait in the main thread only. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (strcmp(cmd, "run") == 0)
        rc = serve(&c, 1, 1);
    else if (strcmp(cmd, "server") == 0)
        rc = serve(&c, 1, 0);
    else
        rc = serve(&c, 0, 1);
done:
    config_free(&c);
    return rc;
missing:
    fprintf(stderr, "jqrun: flag '%s' needs a value\n", argv[i - 1]);
    return 2;
}
