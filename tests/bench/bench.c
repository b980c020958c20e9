/* bench.c — `make bench`: throughput, latency, Redis memory, Redis commands
 * and CPU of jqrun, printed as a Markdown table and appended to
 * bench/results.md (issue 6).  tests/bench/run.sh runs it.
 *
 * Everything runs on this machine and talks only over unix sockets and
 * loopback: one redis-server on a unix socket in the temp dir run.sh made,
 * jqrun processes (`server`, `worker`) started and stopped here, and the
 * load generators in this process: the C API (src/queue.h, exactly what
 * the CLI and the API call) and HTTP through libcurl with keep-alive.
 *
 * Each figure is measured `runs` times (3; 1 with BENCH_QUICK=1) and shown
 * as the median with min–max.  Nothing may hang: every wait has a deadline,
 * a jqrun process that fails to start is reported and its figures marked
 * n/a, and past the overall time budget the remaining runs are skipped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "job.h"
#include "log.h"
#include "queue.h"
#include "store.h"
#include "util.h"

#define QUEUE "bench"
#define PREFIX "jq"
#define PAYLOAD_BYTES 100   /* the "~100-byte JSON payloads" */
#define MAX_RUNS 3
#define BULK 1000
#define INFLIGHT 50
#define LAT_RATE 500        /* jobs/s of the latency figure */
#define LAT_CONCURRENCY 10
#define KEEP_COMPLETED 10000 /* jqrun's default retention, left on */
#define DEFAULT_ATTEMPTS 3
#define DEFAULT_BACKOFF 1000

/* ---- the table ---- */

enum kind { K_RATE, K_MS, K_BYTES, K_CMDS, K_CPU };

enum row_id {
    R_ENQ1_C, R_ENQ1_HTTP, R_ENQ50_C, R_ENQ50_HTTP, R_BULK_C, R_BULK_HTTP,
    R_PROC1, R_PROC10, R_PROC50,
    R_LAT_START_P50, R_LAT_START_P99, R_LAT_START_MAX,
    R_LAT_DONE_P50, R_LAT_DONE_P99, R_LAT_DONE_MAX,
    R_MEM, R_MEM_LP,
    R_CMD_ENQ1, R_CMD_BULK, R_CMD_PROC, R_CMD_TOTAL,
    R_CPU_JQ, R_CPU_REDIS,
    R_COUNT
};

struct row {
    char        label[160];
    enum kind   kind;
    int         higher_better;
    const char *target;      /* as the issue words it, or NULL */
    double      target_val;
    double      bull, bee;   /* the BullMQ 6.7 / bee-queue 2.0; 0 = none */
    double      v[MAX_RUNS];
    int         n;
    char        why[240];    /* why values are missing, if they are */
    int         fails;       /* runs that failed (fail()) */
};

static struct row rows[R_COUNT];

static void
row_init(enum row_id id, const char *label, enum kind k, int higher_better,
         const char *target, double target_val, double bull, double bee)
{
    struct row *r = &rows[id];
    snprintf(r->label, sizeof r->label, "%s", label);
    r->kind = k;
    r->higher_better = higher_better;
    r->target = target;
    r->target_val = target_val;
    r->bull = bull;
    r->bee = bee;
}

static void
put(enum row_id id, double v)
{
    struct row *r = &rows[id];
    if (r->n < MAX_RUNS && isfinite(v))
        r->v[r->n++] = v;
}

/* why records the first reason a row lacks values (later ones repeat it). */
static void why(enum row_id id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
why(enum row_id id, const char *fmt, ...)
{
    va_list ap;
    if (rows[id].why[0])
        return;
    va_start(ap, fmt);
    vsnprintf(rows[id].why, sizeof rows[id].why, fmt, ap);
    va_end(ap);
}

/* fail is why() for one run that failed: the reason is also kept in
 * last_failure, for the progress line of that very run. */
static char last_failure[240];
static void fail(enum row_id id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
fail(enum row_id id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_failure, sizeof last_failure, fmt, ap);
    va_end(ap);
    rows[id].fails++;
    why(id, "%s", last_failure);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(const double *v, int n, double *lo, double *hi)
{
    double s[MAX_RUNS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    *lo = s[0];
    *hi = s[n - 1];
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- global state ---- */

static struct {
    int     quick, runs;
    char    dir[512];            /* run.sh's mktemp dir: socket, configs, logs */
    char    sock[600], url[640];
    char    jqrun[1024], handlers[1024], results[1024];
    pid_t   redis_pid;
    pid_t   kids[8];             /* jqrun processes alive, for the signal handler */
    struct store *admin;         /* INFO, FLUSHALL, polling */
    int64_t deadline;            /* mono ms: past it, remaining runs are skipped */
    long long own_cmds;          /* commands this bench sent through admin */
    int     run_timeout_ms;      /* one run of one figure */
    struct strbuf notes;         /* the details section under the table */
} G;

struct params {
    long enq1_c, enq1_http, enq50_c, enq50_http, bulk_c, bulk_http, proc, mem;
    int  lat_ms;
};

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
note(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sb_puts(&G.notes, buf);
}

static int64_t
mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* only tells whether BENCH_ONLY (a comma list of enqueue, http, process,
 * latency, memory; unset = all) selects a group of figures. */
static int
only(const char *group)
{
    const char *o = getenv("BENCH_ONLY");
    size_t n = strlen(group);
    if (!o || !*o)
        return 1;
    for (const char *p = o; (p = strstr(p, group)); p += n)
        if ((p == o || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

static void
loadavg(char *out, size_t n)
{
    FILE *f = fopen("/proc/loadavg", "r");
    out[0] = '\0';
    if (f) {
        if (!fgets(out, (int)n, f))
            out[0] = '\0';
        fclose(f);
    }
    /* Keep the 1-minute figure only. */
    out[strcspn(out, " \n")] = '\0';
}

static int
over_budget(void)
{
    return mono_ms() > G.deadline;
}

/* run_end is when the run starting now must give up: its own timeout, but
 * never far past the overall budget (run.sh's timeout is the backstop). */
static int64_t
run_end(void)
{
    int64_t end = mono_ms() + G.run_timeout_ms, cap = G.deadline + 10000;
    return end < cap ? end : cap;
}

/* progress lines go to stderr so stdout carries only the report. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- processes ---- */

static void
kid_track(pid_t pid, int add)
{
    for (int i = 0; i < 8; i++)
        if (add ? G.kids[i] == 0 : G.kids[i] == pid) {
            G.kids[i] = add ? pid : 0;
            return;
        }
}

/* spawn starts argv with stdout and stderr appended to logpath.  The child
 * dies with us (PDEATHSIG), so a killed benchmark leaves nothing behind. */
static pid_t
spawn(char *const argv[], const char *logpath)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(127);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid > 0)
        kid_track(pid, 1);
    return pid;
}

/* how_ended describes the last process alive() reaped: "exit 1", "signal
 * 11 (Segmentation fault)". */
static char how_ended[96];

/* alive tells whether pid still runs (reaping it if not). */
static int
alive(pid_t pid)
{
    int status;
    pid_t r = pid > 0 ? waitpid(pid, &status, WNOHANG) : -1;
    if (r == pid) {
        if (WIFSIGNALED(status))
            snprintf(how_ended, sizeof how_ended, "killed by signal %d (%s)", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
        else
            snprintf(how_ended, sizeof how_ended, "exit %d", WEXITSTATUS(status));
    }
    return r == 0;
}

/* stop sends SIGTERM, waits up to ms, then SIGKILLs. */
static void
stop(pid_t pid, int ms)
{
    int64_t end = mono_ms() + ms;
    int status;

    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    while (mono_ms() < end) {
        if (waitpid(pid, &status, WNOHANG) != 0) {
            kid_track(pid, 0);
            return;
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    kid_track(pid, 0);
}

static void
on_signal(int sig)
{
    for (int i = 0; i < 8; i++)
        if (G.kids[i] > 0)
            kill(G.kids[i], SIGKILL);
    if (G.redis_pid > 0)
        kill(G.redis_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* log_tail copies the last lines of a log file into out, for a failure
 * message. */
static void
log_tail(const char *path, char *out, size_t n)
{
    size_t len = 0;
    char *txt = read_file(path, &len);
    const char *p;
    int lines = 0;

    out[0] = '\0';
    if (!txt)
        return;
    p = txt + len;
    while (p > txt && lines < 6)
        if (*--p == '\n' && p + 1 < txt + len)
            lines++;
    snprintf(out, n, "%s", p + (*p == '\n'));
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '|')
            *c = ' ';
    free(txt);
}

/* log_errors counts the "error" lines a jqrun process logged past offset
 * (its log file is shared by the runs of one figure), keeping the first. */
static int
log_errors(const char *path, size_t offset, char *first, size_t n)
{
    size_t len = 0;
    char *txt = read_file(path, &len), *p, *nl;
    int count = 0;

    if (!txt)
        return 0;
    for (p = txt + (offset < len ? offset : len); *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            nl = p + strlen(p) - 1;
        if (strstr(p, " error ") && strstr(p, " error ") < nl) {
            if (count++ == 0)
                snprintf(first, n, "%.*s", (int)(nl - p), p);
        }
        if (!nl[1])
            break;
    }
    free(txt);
    return count;
}

static size_t
file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
}

/* free_port asks the kernel for an unused loopback port. */
static int
free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* jq_start writes a config for one jqrun process and starts `jqrun -c
 * CONF role`.  Returns the pid, or -1 with the reason in err. */
static pid_t
jq_start(const char *role, const char *name, int concurrency, int port, char *logpath,
         size_t loglen, char *err, size_t errlen)
{
    char conf[700], listen[64];
    FILE *f;
    pid_t pid;

    snprintf(conf, sizeof conf, "%s/%s.conf", G.dir, name);
    snprintf(logpath, loglen, "%s/%s.log", G.dir, name);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port > 0 ? port : 1);
    if (!(f = fopen(conf, "w"))) {
        snprintf(err, errlen, "cannot write %.300s: %s", conf, strerror(errno));
        return -1;
    }
    fprintf(f,
            "-- written by tests/bench/bench.c\n"
            "listen = \"%s\"\n"
            "redis = \"%s\"\n"
            "data_dir = \"%s/data\"\n"
            "handlers = \"%s\"\n"
            "prefix = \"" PREFIX "\"\n"
            "queues = { " QUEUE " = { concurrency = %d } }\n"
            "shutdown_grace = 2000\n"
            "log = { level = \"warn\" }\n",
            listen, G.url, G.dir, G.handlers, concurrency);
    fclose(f);
    {
        char *argv[] = { G.jqrun, (char *)"-c", conf, (char *)role, NULL };
        pid = spawn(argv, logpath);
    }
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    /* A config or startup error shows within a few ms. */
    sleep_ms(30);
    if (!alive(pid)) {
        char tail[200];
        log_tail(logpath, tail, sizeof tail);
        kid_track(pid, 0);
        snprintf(err, errlen, "`jqrun %s` ended at startup (%s): %s", role, how_ended, tail);
        return -1;
    }
    return pid;
}

/* proc_cpu is the user+system CPU seconds of a process (/proc/PID/stat
 * fields 14 and 15). */
static double
proc_cpu(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, stt = 0;
    const char *p;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return NAN;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces: fields count from the last ')'. */
    if (!(p = strrchr(buf, ')')))
        return NAN;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) != 2)
        return NAN;
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

/* ctx_switches sums the voluntary and involuntary context switches of
 * every thread of a process (/proc/PID/task/TID/status): a thread hand-off
 * per job shows up here. */
static long long
ctx_switches(pid_t pid)
{
    char path[96], line[256];
    long long total = 0;
    struct dirent *d;
    DIR *dir;

    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    if (!(dir = opendir(path)))
        return -1;
    while ((d = readdir(dir))) {
        FILE *f;
        if (d->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.20s/status", (int)pid, d->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        while (fgets(line, sizeof line, f))
            if (strstr(line, "ctxt_switches:"))
                total += strtoll(strchr(line, ':') + 1, NULL, 10);
        fclose(f);
    }
    closedir(dir);
    return total;
}

static double
self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- Redis ---- */

static int
redis_start(void)
{
    char logpath[700];
    char *argv[] = {
        (char *)"redis-server", (char *)"--port", (char *)"0", (char *)"--unixsocket", G.sock,
        (char *)"--unixsocketperm", (char *)"700", (char *)"--dir", G.dir,
        (char *)"--save", (char *)"", (char *)"--appendonly", (char *)"no",
        (char *)"--logfile", (char *)"redis.log", NULL
    };
    char err[256];

    snprintf(logpath, sizeof logpath, "%s/redis.out", G.dir);
    G.redis_pid = spawn(argv, logpath);
    kid_track(G.redis_pid, 0); /* tracked separately, stopped last */
    for (int i = 0; i < 200; i++) {
        struct timeval tv = { 1, 0 };
        redisContext *c = redisConnectUnixWithTimeout(G.sock, tv);
        int ok = c && !c->err;
        if (c)
            redisFree(c);
        if (ok)
            break;
        if (!alive(G.redis_pid))
            break;
        sleep_ms(25);
    }
    G.admin = store_open(G.url, err, sizeof err);
    if (!G.admin || store_ready(G.admin) < 0) {
        fprintf(stderr, "bench: redis-server did not start on %s: %s\n", G.sock,
                G.admin ? G.admin->err : err);
        return -1;
    }
    return 0;
}

/* info returns the text of INFO section (malloc'd), or NULL. */
static char *
info(const char *section)
{
    redisReply *r = store_command(G.admin, "INFO %s", section);
    char *txt = NULL;
    if (r && r->type == REDIS_REPLY_STRING)
        txt = xstrdup(r->str);
    if (r)
        freeReplyObject(r);
    return txt;
}

/* info_num reads "key:value" out of INFO text. */
static double
info_num(const char *txt, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = txt; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == ':')
            return strtod(p + kl + 1, NULL);
    return NAN;
}

static double
redis_cpu(void)
{
    char *t = info("cpu");
    double v = t ? info_num(t, "used_cpu_sys") + info_num(t, "used_cpu_user") : NAN;
    free(t);
    return v;
}

static double
redis_used_memory(void)
{
    char *t = info("memory");
    double v = t ? info_num(t, "used_memory") : NAN;
    free(t);
    return v;
}

#define MAX_CMDS 256

/* cmdstats is INFO commandstats: calls per command, commands run inside
 * scripts included (Redis counts them there too). */
struct cmdstats {
    int       n;
    char      name[MAX_CMDS][48];
    long long calls[MAX_CMDS];
};

static int
cmdstats_take(struct cmdstats *cs)
{
    char *t = info("commandstats");
    cs->n = 0;
    if (!t)
        return -1;
    for (char *p = strstr(t, "cmdstat_"); p && cs->n < MAX_CMDS; p = strstr(p + 1, "cmdstat_")) {
        char *colon = strchr(p, ':'), *calls = strstr(p, "calls=");
        size_t nl = colon ? (size_t)(colon - p - 8) : 0;
        if (!colon || !calls || nl >= sizeof cs->name[0])
            continue;
        memcpy(cs->name[cs->n], p + 8, nl);
        cs->name[cs->n][nl] = '\0';
        cs->calls[cs->n++] = strtoll(calls + 6, NULL, 10);
    }
    free(t);
    return 0;
}

/* cmdstats_diff writes b - a into d (INFO itself left out: it is the
 * measuring, not the measured) and returns the total. */
static long long
cmdstats_diff(const struct cmdstats *a, const struct cmdstats *b, struct cmdstats *d)
{
    long long total = 0;
    d->n = 0;
    for (int i = 0; i < b->n; i++) {
        long long before = 0;
        if (strcmp(b->name[i], "info") == 0)
            continue;
        for (int j = 0; j < a->n; j++)
            if (strcmp(a->name[j], b->name[i]) == 0)
                before = a->calls[j];
        if (b->calls[i] - before <= 0)
            continue;
        snprintf(d->name[d->n], sizeof d->name[0], "%s", b->name[i]);
        d->calls[d->n++] = b->calls[i] - before;
        total += b->calls[i] - before;
    }
    return total;
}

/* cmdstats_note adds "per job: evalsha 1.00, hset 1.00, ..." to the notes,
 * biggest first. */
static void
cmdstats_note(const char *what, const struct cmdstats *d, double jobs, long long own)
{
    int order[MAX_CMDS];
    for (int i = 0; i < d->n; i++)
        order[i] = i;
    for (int i = 1; i < d->n; i++)
        for (int j = i; j > 0 && d->calls[order[j - 1]] < d->calls[order[j]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    note("- Redis commands per job, %s:", what);
    for (int i = 0; i < d->n; i++) {
        double per = (double)d->calls[order[i]] / jobs;
        if (per >= 0.005)
            note(" %s %.2f%s", d->name[order[i]], per, i + 1 < d->n ? "," : "");
    }
    if (own)
        note(" (minus %lld polling commands of the benchmark itself)", own);
    note("\n");
}

static int
flushall(void)
{
    redisReply *r = store_command(G.admin, "FLUSHALL SYNC");
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

/* zcards reads the sizes of the queue's wait, active, delayed, completed
 * and failed sets in one pipeline. */
static int
zcards(long long out[5])
{
    static const char *const sets[5] = { "wait", "active", "delayed", "completed", "failed" };
    int rc = 0;

    if (store_ready(G.admin) < 0)
        return -1;
    for (int i = 0; i < 5; i++)
        redisAppendCommand(G.admin->ctx, "ZCARD " PREFIX ":{" QUEUE "}:%s", sets[i]);
    G.own_cmds += 5;
    for (int i = 0; i < 5; i++) {
        redisReply *r = store_get_reply(G.admin);
        if (!r)
            return -1;
        if (r->type == REDIS_REPLY_INTEGER)
            out[i] = r->integer;
        else
            rc = -1;
        freeReplyObject(r);
    }
    return rc;
}

/* ---- jobs ---- */

/* payload writes a ~100-byte JSON object, the shape of a typical "send
 * this e-mail" job; fifo (latency figure only) is added in front. */
static int
payload(char *buf, size_t n, long seq, const char *fifo)
{
    int len = snprintf(buf, n, "{%s%s%s\"to\":\"user%ld@example.com\",\"template\":\"welcome\","
                               "\"locale\":\"en-US\",\"seq\":%ld,\"pad\":\"",
                       fifo ? "\"fifo\":\"" : "", fifo ? fifo : "", fifo ? "\"," : "", seq, seq);
    int want = PAYLOAD_BYTES + (fifo ? (int)strlen(fifo) + 10 : 0);
    while (len < want - 2 && (size_t)len < n - 3)
        buf[len++] = 'x';
    buf[len++] = '"';
    buf[len++] = '}';
    buf[len] = '\0';
    return len;
}

/* job_body writes one POST /jobs body. */
static int
job_body(char *buf, size_t n, const char *type, long seq, const char *fifo)
{
    char p[768];
    payload(p, sizeof p, seq, fifo);
    return snprintf(buf, n, "{\"type\":\"%s\",\"queue\":\"" QUEUE "\",\"payload\":%s}", type, p);
}

/* enqueue_c enqueues n jobs through the C API the way the API and the CLI
 * do it: parse and validate each body (job_spec_from_json), then one
 * queue_enqueue call for all n.  res may be NULL. */
static int
enqueue_c(struct store *st, const char *type, long seq, int n, const char *fifo,
          struct enq_result *res, char *err, size_t errlen)
{
    struct job_spec *specs = xcalloc((size_t)n, sizeof *specs);
    struct enq_result one, *out = res ? res : (n == 1 ? &one : xcalloc((size_t)n, sizeof *out));
    int rc = Q_OK, built = 0;
    char buf[1024];

    for (; built < n; built++) {
        json_t *body;
        job_body(buf, sizeof buf, type, seq + built, fifo);
        body = json_loads(buf, 0, NULL);
        if (job_spec_from_json(body, now_ms(), &specs[built], err, errlen) < 0) {
            json_decref(body);
            rc = Q_REDIS;
            break;
        }
        json_decref(body);
    }
    if (rc == Q_OK)
        rc = queue_enqueue(st, PREFIX, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, specs, n, out, err,
                           errlen);
    for (int i = 0; i < built; i++)
        job_spec_free(&specs[i]);
    free(specs);
    if (out != res && out != &one)
        free(out);
    return rc;
}

/* prefill bulk-enqueues n jobs of type (not timed). */
static int
prefill(struct store *st, const char *type, long n, const char *fifo, char *err, size_t errlen)
{
    for (long i = 0; i < n; i += BULK) {
        int k = n - i < BULK ? (int)(n - i) : BULK;
        if (enqueue_c(st, type, i, k, fifo, NULL, err, errlen) != Q_OK)
            return -1;
    }
    return 0;
}

/* ---- figures 1-3: enqueue through the C API ---- */

struct window {
    struct cmdstats a, b, d;
    long long own0;
    double rcpu0, self0;
    int64_t t0;
};

static void
window_open(struct window *w)
{
    cmdstats_take(&w->a);
    w->rcpu0 = redis_cpu();
    w->self0 = self_cpu();
    w->own0 = G.own_cmds;
    w->t0 = mono_us();
}

/* window_close returns the seconds elapsed and the commands run in Redis
 * meanwhile (without our own polling) in *cmds. */
static double
window_close(struct window *w, long long *cmds, double *rcpu)
{
    double secs = (double)(mono_us() - w->t0) / 1e6;
    double rc1 = redis_cpu();
    long long own = G.own_cmds - w->own0;
    cmdstats_take(&w->b);
    *cmds = cmdstats_diff(&w->a, &w->b, &w->d) - own;
    /* Our own polling is all ZCARD: take it out of the breakdown too. */
    for (int i = 0; i < w->d.n; i++)
        if (strcmp(w->d.name[i], "zcard") == 0)
            w->d.calls[i] -= own;
    if (rcpu)
        *rcpu = rc1 - w->rcpu0;
    return secs;
}

/* cpu_note says where the CPU of a client-side figure went: this process
 * (the C API client) and Redis share the machine's cores. */
static void
cpu_note(const char *what, const struct window *w, double secs, long n)
{
    double rcpu = redis_cpu() - w->rcpu0, ccpu = self_cpu() - w->self0;
    note("- %s: %.2f s wall; CPU per job: Redis %.1f µs, client (this process) %.1f µs; "
         "busy: Redis %.0f%%, client %.0f%% of one core\n", what, secs, rcpu / (double)n * 1e6,
         ccpu / (double)n * 1e6, 100 * rcpu / secs, 100 * ccpu / secs);
}

static void
fig_enq1_c(long n, int last)
{
    char err[256];
    struct store *st;
    struct window w;
    long long cmds;
    double secs;

    flushall();
    st = store_open(G.url, err, sizeof err);
    if (!st || store_ready(st) < 0) {
        why(R_ENQ1_C, "cannot connect: %s", st ? st->err : err);
        store_close(st);
        return;
    }
    window_open(&w);
    for (long i = 0; i < n; i++)
        if (enqueue_c(st, "noop", i, 1, NULL, NULL, err, sizeof err) != Q_OK) {
            why(R_ENQ1_C, "enqueue failed: %s", err);
            store_close(st);
            return;
        }
    secs = window_close(&w, &cmds, NULL);
    put(R_ENQ1_C, (double)n / secs);
    put(R_CMD_ENQ1, (double)cmds / (double)n);
    if (last) {
        cpu_note("C API enqueue one at a time", &w, secs, n);
        cmdstats_note("enqueue one at a time (C API)", &w.d, (double)n, 0);
    }
    store_close(st);
}

/* go is the starting gun of the 50 threads: the clock starts when every
 * connection is open and every thread is waiting. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             go;
} gun = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

struct cthread {
    pthread_t    t;
    struct store *st;
    atomic_long  *next;
    long          n;
    char          err[256];
};

static void *
cthread_main(void *arg)
{
    struct cthread *c = arg;
    pthread_mutex_lock(&gun.mu);
    while (!gun.go)
        pthread_cond_wait(&gun.cv, &gun.mu);
    pthread_mutex_unlock(&gun.mu);
    for (;;) {
        long i = atomic_fetch_add(c->next, 1);
        if (i >= c->n)
            break;
        if (enqueue_c(c->st, "noop", i, 1, NULL, NULL, c->err, sizeof c->err) != Q_OK) {
            if (!c->err[0])
                snprintf(c->err, sizeof c->err, "enqueue failed");
            /* Stop the others too: the run is void. */
            atomic_store(c->next, c->n);
            break;
        }
    }
    return NULL;
}

static void
fig_enq50_c(long n, int last)
{
    struct window w;
    struct cthread th[INFLIGHT];
    atomic_long next = 0;
    int started = 0, bad = 0;
    int64_t t0;
    double secs;

    flushall();
    memset(th, 0, sizeof th);
    gun.go = 0;
    /* Each thread its own connection (a store is single-threaded), opened
     * before the clock starts. */
    for (int i = 0; i < INFLIGHT && !bad; i++) {
        char err[256];
        th[i].st = store_open(G.url, err, sizeof err);
        if (!th[i].st || store_ready(th[i].st) < 0) {
            why(R_ENQ50_C, "cannot connect: %s", th[i].st ? th[i].st->err : err);
            bad = 1;
        }
    }
    for (int i = 0; i < INFLIGHT && !bad; i++) {
        th[i].next = &next;
        th[i].n = n;
        if (pthread_create(&th[i].t, NULL, cthread_main, &th[i]) != 0) {
            why(R_ENQ50_C, "could not start %d threads", INFLIGHT);
            atomic_store(&next, n);
            bad = 1;
            break;
        }
        started++;
    }
    sleep_ms(20); /* let the threads reach the gun */
    window_open(&w);
    pthread_mutex_lock(&gun.mu);
    t0 = mono_us();
    gun.go = 1;
    pthread_cond_broadcast(&gun.cv);
    pthread_mutex_unlock(&gun.mu);
    for (int i = 0; i < started; i++)
        pthread_join(th[i].t, NULL);
    secs = (double)(mono_us() - t0) / 1e6;
    for (int i = 0; i < INFLIGHT; i++) {
        if (th[i].err[0]) {
            why(R_ENQ50_C, "enqueue failed: %s", th[i].err);
            bad = 1;
        }
        store_close(th[i].st);
    }
    if (!bad)
        put(R_ENQ50_C, (double)n / secs);
    if (!bad && last)
        cpu_note("C API enqueue, 50 threads", &w, secs, n);
}

/* fig_enq50_pipe is a diagnostic, not a table row: 50 single-job enqueue
 * calls in flight on ONE connection (pipelined: SADD + EVALSHA each, what
 * queue_enqueue sends), from one thread.  It shows what Redis sustains
 * when the client side batches its round trips — the bound a server that
 * pipelines (or group-commits) concurrent POST /jobs would face. */
static void
fig_enq50_pipe(long n)
{
    char err[256], base[64], now_s[24];
    struct store *st = store_open(G.url, err, sizeof err);
    struct window w;
    long long cmds;
    double secs;

    flushall();
    if (!st || store_ready(st) < 0) {
        store_close(st);
        return;
    }
    snprintf(base, sizeof base, PREFIX ":{" QUEUE "}");
    window_open(&w);
    for (long i = 0; i < n; i += INFLIGHT) {
        int k = n - i < INFLIGHT ? (int)(n - i) : INFLIGHT, bad = 0;
        char *enc[INFLIGHT];
        snprintf(now_s, sizeof now_s, "%" PRId64, now_ms());
        for (int j = 0; j < k; j++) {
            struct job_spec spec;
            char buf[1024];
            json_t *body;
            job_body(buf, sizeof buf, "noop", i + j, NULL);
            body = json_loads(buf, 0, NULL);
            if (job_spec_from_json(body, now_ms(), &spec, err, sizeof err) < 0) {
                json_decref(body);
                store_close(st);
                return;
            }
            json_decref(body);
            enc[j] = job_spec_encode(&spec, now_ms(), DEFAULT_ATTEMPTS, DEFAULT_BACKOFF);
            job_spec_free(&spec);
            /* The same arguments as queue.c's enqueue_group (its event
             * stream cap is 10000). */
            const char *argv[4] = { base, now_s, "10000", enc[j] };
            redisAppendCommand(st->ctx, "SADD " PREFIX ":queues " QUEUE);
            store_append_eval(st, S_ENQUEUE, 1, 4, argv, NULL);
        }
        for (int j = 0; j < 2 * k; j++) {
            redisReply *r = store_get_reply(st);
            if (!r || r->type == REDIS_REPLY_ERROR)
                bad = 1;
            if (r)
                freeReplyObject(r);
        }
        for (int j = 0; j < k; j++)
            free(enc[j]);
        if (bad) {
            store_close(st);
            return;
        }
    }
    secs = window_close(&w, &cmds, NULL);
    note("- Diagnostic (not a table row): C API enqueue, 50 single-job calls pipelined on one "
         "connection from one thread: %.0f jobs/s\n", (double)n / secs);
    cpu_note("C API enqueue, 50 pipelined on one connection (diagnostic)", &w, secs, n);
    store_close(st);
}

static void
fig_bulk_c(long n, int last)
{
    char err[256];
    struct store *st;
    struct window w;
    long long cmds;
    double secs;

    flushall();
    st = store_open(G.url, err, sizeof err);
    if (!st || store_ready(st) < 0) {
        why(R_BULK_C, "cannot connect: %s", st ? st->err : err);
        store_close(st);
        return;
    }
    window_open(&w);
    if (prefill(st, "noop", n, NULL, err, sizeof err) < 0) {
        why(R_BULK_C, "bulk enqueue failed: %s", err);
        store_close(st);
        return;
    }
    secs = window_close(&w, &cmds, NULL);
    put(R_BULK_C, (double)n / secs);
    put(R_CMD_BULK, (double)cmds / (double)n);
    if (last) {
        cpu_note("C API enqueue in bulks of 1000", &w, secs, n);
        cmdstats_note("enqueue in bulks of 1000 (C API)", &w.d, (double)n, 0);
    }
    store_close(st);
}

/* ---- figures 1-3: enqueue over HTTP ---- */

struct resp {
    char   buf[512];
    size_t len;
};

static size_t
on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct resp *r = ud;
    size_t n = size * nmemb, room = sizeof r->buf - 1 - r->len;
    memcpy(r->buf + r->len, p, n < room ? n : room);
    r->len += n < room ? n : room;
    r->buf[r->len] = '\0';
    return n;
}

static struct curl_slist *http_headers;

static CURL *
http_handle(const char *url, struct resp *r)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, http_headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    /* Only loopback: never a proxy from the environment. */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    return h;
}

/* http_ok checks one finished request: 201 expected. */
static int
http_ok(CURL *h, CURLcode rc, struct resp *r, char *err, size_t errlen)
{
    long code = 0;
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "curl: %s", curl_easy_strerror(rc));
        return 0;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (code != 201) {
        snprintf(err, errlen, "HTTP %ld: %.200s", code, r->buf);
        return 0;
    }
    return 1;
}

/* server_up waits for GET /health to answer 200. */
static int
server_up(pid_t pid, int port, int ms)
{
    char url[128];
    struct resp r;
    int64_t end = mono_ms() + ms;
    CURL *h;

    snprintf(url, sizeof url, "http://127.0.0.1:%d/health", port);
    if (!(h = http_handle(url, &r)))
        return 0;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
    while (mono_ms() < end && alive(pid)) {
        long code = 0;
        r.len = 0;
        if (curl_easy_perform(h) == CURLE_OK &&
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200) {
            curl_easy_cleanup(h);
            return 1;
        }
        sleep_ms(50);
    }
    curl_easy_cleanup(h);
    return 0;
}

struct http_run {
    pid_t  pid;
    int    port;
    double cpu0, self0;
    struct window w;
};

static void
http_begin(struct http_run *hr)
{
    window_open(&hr->w);
    hr->cpu0 = proc_cpu(hr->pid);
    hr->self0 = self_cpu();
}

/* http_end notes where the CPU went: the server, Redis and this load
 * generator share the machine's cores. */
static double
http_end(struct http_run *hr, const char *what, long n, int last)
{
    long long cmds;
    double rcpu, secs = window_close(&hr->w, &cmds, &rcpu);
    double scpu = proc_cpu(hr->pid) - hr->cpu0, ccpu = self_cpu() - hr->self0;
    if (last) {
        note("- %s: %.2f s wall; CPU: jqrun server %.2f s, Redis %.2f s, load generator "
             "%.2f s (%.0f%%, %.0f%%, %.0f%% of one core); %.2f Redis commands per job\n",
             what, secs, scpu, rcpu, ccpu, 100 * scpu / secs, 100 * rcpu / secs,
             100 * ccpu / secs, (double)cmds / (double)n);
    }
    return secs;
}

static void
fig_http_seq(struct http_run *hr, long n, int last)
{
    char url[128], body[1024], err[256] = "";
    struct resp r;
    CURL *h;
    double secs;

    flushall();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jobs", hr->port);
    if (!(h = http_handle(url, &r))) {
        why(R_ENQ1_HTTP, "curl_easy_init failed");
        return;
    }
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    http_begin(hr);
    for (long i = 0; i < n; i++) {
        int len = job_body(body, sizeof body, "noop", i, NULL);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
        r.len = 0;
        if (!http_ok(h, curl_easy_perform(h), &r, err, sizeof err)) {
            why(R_ENQ1_HTTP, "POST /jobs: %s", err);
            curl_easy_cleanup(h);
            return;
        }
    }
    secs = http_end(hr, "HTTP POST /jobs one at a time", n, last);
    put(R_ENQ1_HTTP, (double)n / secs);
    curl_easy_cleanup(h);
}

struct hslot {
    CURL       *h;
    char        body[1024];
    struct resp r;
};

/* The 50-in-flight load generator drives libcurl's multi interface with
 * curl_multi_socket_action and epoll: libcurl then touches only the
 * connections with something to do.  (curl_multi_perform + curl_multi_poll
 * rescans all 50 handles and polls all 50 sockets per completion, which
 * cost ~50 µs of CPU per request here: the load generator would have
 * eaten the core jqrun needs.) */
struct evloop {
    int  ep;
    long timeout_ms;  /* what libcurl asked for; -1 = no timer */
};

static int
on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    struct evloop *ev = ud;
    struct epoll_event ee = { 0 };
    (void)e;
    (void)sockp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(ev->ep, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    ee.data.fd = fd;
    ee.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (epoll_ctl(ev->ep, EPOLL_CTL_MOD, fd, &ee) < 0 && errno == ENOENT)
        epoll_ctl(ev->ep, EPOLL_CTL_ADD, fd, &ee);
    return 0;
}

static int
on_timer(CURLM *m, long timeout_ms, void *ud)
{
    (void)m;
    ((struct evloop *)ud)->timeout_ms = timeout_ms;
    return 0;
}

/* fig_http_multi keeps INFLIGHT requests in flight on INFLIGHT keep-alive
 * connections, from one thread. */
static void
fig_http_multi(struct http_run *hr, long n, int last)
{
    struct hslot *s = xcalloc(INFLIGHT, sizeof *s);
    char url[128], err[256] = "";
    CURLM *m = curl_multi_init();
    struct evloop ev = { epoll_create1(EPOLL_CLOEXEC), -1 };
    long sent = 0, done = 0;
    int64_t end;
    double secs;
    int bad = 0, running = 0;

    flushall();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jobs", hr->port);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)INFLIGHT);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)INFLIGHT + 4);
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, &ev);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, &ev);
    for (int i = 0; i < INFLIGHT; i++) {
        s[i].h = http_handle(url, &s[i].r);
        curl_easy_setopt(s[i].h, CURLOPT_POSTFIELDS, s[i].body);
        curl_easy_setopt(s[i].h, CURLOPT_PRIVATE, &s[i]);
    }
    http_begin(hr);
    end = run_end();
    for (int i = 0; i < INFLIGHT && sent < n; i++, sent++) {
        int len = job_body(s[i].body, sizeof s[i].body, "noop", sent, NULL);
        curl_easy_setopt(s[i].h, CURLOPT_POSTFIELDSIZE, (long)len);
        curl_multi_add_handle(m, s[i].h);
    }
    while (done < n && !bad) {
        struct epoll_event evs[INFLIGHT + 4];
        int k, left, wait_ms;
        CURLMsg *msg;
        if (mono_ms() > end) {
            snprintf(err, sizeof err, "timed out after %ld of %ld requests", done, n);
            bad = 1;
            break;
        }
        wait_ms = ev.timeout_ms < 0 || ev.timeout_ms > 100 ? 100 : (int)ev.timeout_ms;
        k = ev.timeout_ms == 0 ? 0 : epoll_wait(ev.ep, evs, INFLIGHT + 4, wait_ms);
        if (k <= 0) {
            ev.timeout_ms = -1;
            curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        for (int i = 0; i < k; i++) {
            int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(m, evs[i].data.fd, flags, &running);
        }
        while ((msg = curl_multi_info_read(m, &left))) {
            struct hslot *sl;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
            if (!http_ok(sl->h, msg->data.result, &sl->r, err, sizeof err))
                bad = 1;
            curl_multi_remove_handle(m, sl->h);
            done++;
            if (sent < n && !bad) {
                /* Re-added, the handle takes an idle connection from the
                 * multi's cache: keep-alive across requests. */
                int len = job_body(sl->body, sizeof sl->body, "noop", sent++, NULL);
                curl_easy_setopt(sl->h, CURLOPT_POSTFIELDSIZE, (long)len);
                sl->r.len = 0;
                curl_multi_add_handle(m, sl->h);
            }
        }
    }
    secs = http_end(hr, "HTTP POST /jobs, 50 in flight", n, last);
    if (bad)
        why(R_ENQ50_HTTP, "POST /jobs: %s", err);
    else
        put(R_ENQ50_HTTP, (double)n / secs);
    for (int i = 0; i < INFLIGHT; i++) {
        curl_multi_remove_handle(m, s[i].h);
        curl_easy_cleanup(s[i].h);
    }
    curl_multi_cleanup(m);
    close(ev.ep);
    free(s);
}

static void
fig_http_bulk(struct http_run *hr, long n, int last)
{
    char url[128], err[256] = "", one[1024];
    struct strbuf body = { 0 };
    struct resp r;
    CURL *h;
    double secs;

    flushall();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jobs/bulk", hr->port);
    if (!(h = http_handle(url, &r))) {
        why(R_BULK_HTTP, "curl_easy_init failed");
        return;
    }
    http_begin(hr);
    for (long i = 0; i < n; i += BULK) {
        body.len = 0;
        sb_puts(&body, "[");
        for (long k = i; k < i + BULK && k < n; k++) {
            job_body(one, sizeof one, "noop", k, NULL);
            if (k > i)
                sb_puts(&body, ",");
            sb_puts(&body, one);
        }
        sb_puts(&body, "]");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.buf);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body.len);
        r.len = 0;
        if (!http_ok(h, curl_easy_perform(h), &r, err, sizeof err)) {
            why(R_BULK_HTTP, "POST /jobs/bulk: %s", err);
            curl_easy_cleanup(h);
            sb_free(&body);
            return;
        }
    }
    secs = http_end(hr, "HTTP POST /jobs/bulk of 1000", n, last);
    put(R_BULK_HTTP, (double)n / secs);
    curl_easy_cleanup(h);
    sb_free(&body);
}

/* ---- figure 4: processing a pre-filled queue ---- */

struct proc_stats {
    int    conc;
    double cmds[MAX_RUNS], jq_cpu[MAX_RUNS], redis_cpu[MAX_RUNS], trimmed[MAX_RUNS];
    double switches[MAX_RUNS];
    int    log_errors;        /* error lines the workers logged, all runs */
    char   first_error[300];
    int    n;
    struct cmdstats last;
};

static int
fig_process(int conc, long n, enum row_id row, struct proc_stats *ps)
{
    char err[512], logpath[700], name[32];
    struct store *st;
    struct window w;
    long long c[5] = { 0 }, cmds;
    int64_t t_full = 0, t_start, t_done = 0, end;
    double rcpu, jcpu;
    long long sw;
    size_t log_off;
    pid_t pid;

    flushall();
    st = store_open(G.url, err, sizeof err);
    if (!st || store_ready(st) < 0 || prefill(st, "noop", n, NULL, err, sizeof err) < 0) {
        fail(row, "prefill failed: %s", st && st->err[0] ? st->err : err);
        store_close(st);
        return -1;
    }
    store_close(st);
    window_open(&w);
    snprintf(name, sizeof name, "worker-c%d", conc);
    snprintf(logpath, sizeof logpath, "%s/%s.log", G.dir, name);
    log_off = file_size(logpath);
    pid = jq_start("worker", name, conc, 0, logpath, sizeof logpath, err, sizeof err);
    if (pid < 0) {
        fail(row, "%s", err);
        return -1;
    }
    /* t_full: the last moment every job was still waiting (so the rate
     * is, if anything, pessimistic); t_done: nothing waiting, running or
     * backing off. */
    t_full = t_start = mono_us();
    end = run_end();
    for (;;) {
        int64_t t = mono_us();
        if (zcards(c) < 0) {
            fail(row, "lost Redis while polling");
            break;
        }
        if (c[0] >= n)
            t_full = t;
        if (c[0] == 0 && c[1] == 0 && c[2] == 0) {
            t_done = mono_us();
            break;
        }
        if (!alive(pid)) {
            char tail[200];
            log_tail(logpath, tail, sizeof tail);
            fail(row, "the worker ended (%s): %s", how_ended, tail);
            kid_track(pid, 0);
            pid = -1;
            break;
        }
        if (mono_ms() > end) {
            fail(row, "timed out after %.0f s with %lld waiting, %lld processing, %lld delayed "
                "(retrying), %lld failed", (double)(mono_us() - t_start) / 1e6, c[0], c[1],
                c[2], c[4]);
            break;
        }
        sleep_ms(2);
    }
    if (!t_done) {
        stop(pid, 3000);
        return -1;
    }
    if (c[4] > 0) {
        fail(row, "%lld of %ld jobs failed (see %s)", c[4], n, logpath);
        stop(pid, 3000);
        return -1;
    }
    /* The steady state pays for retention too: every job is trimmed one
     * day.  The worker's scheduler trims every ~2 s; wait for it (bounded)
     * so its cost is in the command and CPU counts below. */
    if (n > KEEP_COMPLETED) {
        int64_t tend = mono_ms() + 4000;
        while (mono_ms() < tend && zcards(c) == 0 && c[3] > KEEP_COMPLETED)
            sleep_ms(20);
    }
    jcpu = proc_cpu(pid);
    sw = ctx_switches(pid);
    window_close(&w, &cmds, &rcpu);
    stop(pid, 3000);
    {
        /* A run that "worked" may still have failed attempts inside
         * (retried, so they slow the run down): say so. */
        char first[300] = "";
        int k = log_errors(logpath, log_off, first, sizeof first);
        if (k && !ps->log_errors)
            snprintf(ps->first_error, sizeof ps->first_error, "%s", first);
        ps->log_errors += k;
    }
    put(row, (double)n / ((double)(t_done - t_full) / 1e6));
    if (ps->n < MAX_RUNS && isfinite(jcpu) && isfinite(rcpu)) {
        long long dels = 0;
        for (int i = 0; i < w.d.n; i++)
            if (strcmp(w.d.name[i], "del") == 0)
                dels = w.d.calls[i];
        ps->cmds[ps->n] = (double)cmds / (double)n;
        ps->jq_cpu[ps->n] = jcpu / (double)n * 10000;
        ps->redis_cpu[ps->n] = rcpu / (double)n * 10000;
        ps->trimmed[ps->n] = (double)dels;
        ps->switches[ps->n] = (double)sw / (double)n;
        ps->n++;
        ps->last = w.d;
    }
    return 0;
}

/* ---- figure 5: latency at a steady rate ---- */

/* obs is one moment observed by a reader thread: the handler started
 * (FIFO), or the events stream showed the job leased or completed. */
enum { OBS_START, OBS_LEASED, OBS_DONE };
struct obs {
    char    id[37];
    int     kind;
    int64_t t;          /* mono µs */
};

static struct {
    pthread_mutex_t mu;
    struct obs     *v;
    size_t          n, cap;
    atomic_int      stop;
    int             fifo_fd, fifo_keep;
} O = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void
obs_add(const char *id, size_t idlen, int kind, int64_t t)
{
    if (idlen != 36)
        return;
    pthread_mutex_lock(&O.mu);
    if (O.n == O.cap) {
        O.cap = O.cap ? O.cap * 2 : 4096;
        O.v = xrealloc(O.v, O.cap * sizeof *O.v);
    }
    memcpy(O.v[O.n].id, id, 36);
    O.v[O.n].id[36] = '\0';
    O.v[O.n].kind = kind;
    O.v[O.n].t = t;
    O.n++;
    pthread_mutex_unlock(&O.mu);
}

static void *
fifo_main(void *arg)
{
    char buf[8192];
    size_t have = 0;
    (void)arg;
    while (!atomic_load(&O.stop)) {
        struct pollfd p = { .fd = O.fifo_fd, .events = POLLIN };
        ssize_t k;
        int64_t t;
        if (poll(&p, 1, 50) <= 0)
            continue;
        t = mono_us();
        k = read(O.fifo_fd, buf + have, sizeof buf - 1 - have);
        if (k <= 0)
            continue;
        have += (size_t)k;
        for (;;) {
            char *nl = memchr(buf, '\n', have);
            if (!nl)
                break;
            obs_add(buf, (size_t)(nl - buf), OBS_START, t);
            have -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, have);
        }
        if (have == sizeof buf - 1)
            have = 0;
    }
    return NULL;
}

static void *
events_main(void *arg)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectUnixWithTimeout(G.sock, tv);
    char last[64] = "0-0";
    (void)arg;
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    while (!atomic_load(&O.stop)) {
        redisReply *r = redisCommand(c, "XREAD COUNT 1000 BLOCK 50 STREAMS "
                                        PREFIX ":{" QUEUE "}:events %s", last);
        int64_t t = mono_us();
        if (!r)
            break;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                redisReply *e = entries->element[i], *f = e->element[1];
                const char *id = NULL, *status = NULL;
                size_t idlen = 0;
                snprintf(last, sizeof last, "%s", e->element[0]->str);
                for (size_t k = 0; k + 1 < f->elements; k += 2) {
                    if (strcmp(f->element[k]->str, "jobId") == 0) {
                        id = f->element[k + 1]->str;
                        idlen = f->element[k + 1]->len;
                    } else if (strcmp(f->element[k]->str, "status") == 0) {
                        status = f->element[k + 1]->str;
                    }
                }
                if (id && status && strcmp(status, "processing") == 0)
                    obs_add(id, idlen, OBS_LEASED, t);
                else if (id && status && strcmp(status, "completed") == 0)
                    obs_add(id, idlen, OBS_DONE, t);
            }
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

struct lrec {
    char    id[37];
    int64_t t_enq;                   /* mono µs just before queue_enqueue */
    int64_t t_start, t_leased, t_done;
    int64_t created, started, completed; /* the job's own ms fields */
};

static int
cmp_lrec(const void *a, const void *b)
{
    return strcmp(((const struct lrec *)a)->id, ((const struct lrec *)b)->id);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* pct is the nearest-rank percentile of sorted v. */
static int64_t
pct(const int64_t *v, size_t n, double p)
{
    size_t k = (size_t)ceil(p * (double)n);
    return v[k ? k - 1 : 0];
}

/* lat_put puts p50/p99/max of n latencies (µs) into three rows, in ms. */
static void
lat_put(int64_t *v, size_t n, enum row_id p50)
{
    qsort(v, n, sizeof *v, cmp_i64);
    put(p50, (double)pct(v, n, 0.50) / 1000);
    put(p50 + 1, (double)pct(v, n, 0.99) / 1000);
    put(p50 + 2, (double)v[n - 1] / 1000);
}

static void
fig_latency(int ms, int last)
{
    char err[512], logpath[700], fifo[700];
    long jobs = (long)ms * LAT_RATE / 1000, done = 0;
    struct lrec *L = xcalloc((size_t)jobs, sizeof *L);
    int64_t *a = xcalloc((size_t)jobs, sizeof *a), t0, end;
    size_t na = 0;
    long long c[5];
    pthread_t ft, et;
    struct store *st = NULL;
    pid_t pid;
    int bad = 0;

    flushall();
    snprintf(fifo, sizeof fifo, "%s/lat.fifo", G.dir);
    unlink(fifo);
    if (mkfifo(fifo, 0600) < 0) {
        why(R_LAT_START_P50, "mkfifo: %s", strerror(errno));
        goto out_nothreads;
    }
    /* Our own writer end keeps the FIFO from reading EOF between jobs. */
    O.fifo_fd = open(fifo, O_RDONLY | O_NONBLOCK);
    O.fifo_keep = open(fifo, O_WRONLY | O_NONBLOCK);
    O.n = 0;
    atomic_store(&O.stop, 0);
    pthread_create(&ft, NULL, fifo_main, NULL);
    pthread_create(&et, NULL, events_main, NULL);

    st = store_open(G.url, err, sizeof err);
    if (!st || store_ready(st) < 0) {
        why(R_LAT_START_P50, "cannot connect: %s", st ? st->err : err);
        bad = 1;
        goto out;
    }
    pid = jq_start("worker", "worker-lat", LAT_CONCURRENCY, 0, logpath, sizeof logpath, err,
                   sizeof err);
    if (pid < 0) {
        why(R_LAT_START_P50, "%s", err);
        bad = 1;
        goto out;
    }
    /* Warm up: every worker thread runs a job (Lua state, handler
     * compiled, FIFO opened) before the clock runs. */
    if (prefill(st, "lat", LAT_CONCURRENCY * 5, fifo, err, sizeof err) < 0)
        bad = 1;
    end = mono_ms() + 10000;
    while (!bad && (zcards(c) < 0 || c[0] + c[1] + c[2] > 0)) {
        if (mono_ms() > end || !alive(pid)) {
            char tail[200];
            log_tail(logpath, tail, sizeof tail);
            why(R_LAT_START_P50, "warm-up jobs did not complete: %s", tail);
            bad = 1;
        }
        sleep_ms(10);
    }
    /* Steady rate: job k is enqueued at t0 + k/rate, not "sleep 2 ms after
     * each", so a slow call does not lower the rate. */
    t0 = mono_us() + 1000;
    for (long k = 0; k < jobs && !bad; k++) {
        int64_t due = t0 + k * 1000000 / LAT_RATE;
        struct timespec ts = { (time_t)(due / 1000000), (long)(due % 1000000) * 1000 };
        struct enq_result res;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        L[k].t_enq = mono_us();
        if (enqueue_c(st, "lat", k, 1, fifo, &res, err, sizeof err) != Q_OK) {
            why(R_LAT_START_P50, "enqueue failed: %s", err);
            bad = 1;
            break;
        }
        memcpy(L[k].id, res.id, 37);
        done = k + 1;
    }
    /* Let the last jobs finish and their events arrive. */
    end = mono_ms() + 5000;
    while (!bad && mono_ms() < end && (zcards(c) < 0 || c[0] + c[1] + c[2] > 0))
        sleep_ms(5);
    sleep_ms(100);
    stop(pid, 3000);
out:
    atomic_store(&O.stop, 1);
    pthread_join(ft, NULL);
    pthread_join(et, NULL);
    close(O.fifo_fd);
    close(O.fifo_keep);
    unlink(fifo);
    if (bad || done == 0)
        goto out_nothreads;

    /* Match observations to jobs, then read the jobs' own timestamps. */
    qsort(L, (size_t)done, sizeof *L, cmp_lrec);
    for (size_t i = 0; i < O.n; i++) {
        struct lrec key, *l;
        memcpy(key.id, O.v[i].id, 37);
        l = bsearch(&key, L, (size_t)done, sizeof *L, cmp_lrec);
        if (!l)
            continue;
        int64_t *slot = O.v[i].kind == OBS_START ? &l->t_start
                      : O.v[i].kind == OBS_LEASED ? &l->t_leased : &l->t_done;
        if (!*slot)
            *slot = O.v[i].t;
    }
    if (store_ready(st) < 0) {
        why(R_LAT_START_P50, "lost Redis: %s", st->err);
        bad = 1;
        goto out_nothreads;
    }
    for (long k = 0; k < done; k++)
        redisAppendCommand(st->ctx, "HMGET " PREFIX ":{" QUEUE "}:job:%s createdAt startedAt "
                                    "completedAt", L[k].id);
    for (long k = 0; k < done; k++) {
        redisReply *r = store_get_reply(st);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
            int64_t *f[3] = { &L[k].created, &L[k].started, &L[k].completed };
            for (int i = 0; i < 3; i++)
                if (r->element[i]->type == REDIS_REPLY_STRING)
                    *f[i] = strtoll(r->element[i]->str, NULL, 10);
        }
        if (r)
            freeReplyObject(r);
    }
    {
        long n_start = 0, n_leased = 0, n_done = 0;
        for (long k = 0; k < done; k++) {
            n_start += L[k].t_start > 0;
            n_leased += L[k].t_leased > 0;
            n_done += L[k].t_done > 0;
        }
        /* Handler start: the FIFO when the handler could write to it (µs);
         * else the lease as the events stream shows it (µs, a little
         * earlier than the handler start). */
        na = 0;
        if (n_start >= done * 99 / 100) {
            for (long k = 0; k < done; k++)
                if (L[k].t_start)
                    a[na++] = L[k].t_start - L[k].t_enq;
        } else if (n_leased >= done * 99 / 100) {
            for (long k = 0; k < done; k++)
                if (L[k].t_leased)
                    a[na++] = L[k].t_leased - L[k].t_enq;
            if (last)
                note("- Latency: the handlers could not write to the FIFO (no `io` in the "
                     "sandbox?), so \"handler start\" is the lease as seen on the events "
                     "stream.\n");
        }
        if (na)
            lat_put(a, na, R_LAT_START_P50);
        else
            why(R_LAT_START_P50, "no start observed for %ld of %ld jobs", done - n_start, done);
        na = 0;
        for (long k = 0; k < done; k++)
            if (L[k].t_done)
                a[na++] = L[k].t_done - L[k].t_enq;
        if (n_done >= done * 99 / 100)
            lat_put(a, na, R_LAT_DONE_P50);
        else
            why(R_LAT_DONE_P50, "only %ld of %ld completions observed", n_done, done);
        if (last) {
            /* The same from the jobs' own ms timestamps, as a cross-check. */
            int64_t *s1 = xcalloc((size_t)done, sizeof *s1), *s2 = xcalloc((size_t)done, sizeof *s2);
            size_t m = 0;
            for (long k = 0; k < done; k++)
                if (L[k].completed && L[k].started) {
                    s1[m] = L[k].started - L[k].created;
                    s2[m++] = L[k].completed - L[k].created;
                }
            if (m) {
                qsort(s1, m, sizeof *s1, cmp_i64);
                qsort(s2, m, sizeof *s2, cmp_i64);
                note("- Latency cross-check from the jobs' own ms timestamps (%zu jobs): "
                     "startedAt-createdAt p50/p99/max %" PRId64 "/%" PRId64 "/%" PRId64
                     " ms, completedAt-createdAt %" PRId64 "/%" PRId64 "/%" PRId64 " ms\n",
                     m, pct(s1, m, .5), pct(s1, m, .99), s1[m - 1], pct(s2, m, .5),
                     pct(s2, m, .99), s2[m - 1]);
            }
            if (n_leased) {
                na = 0;
                for (long k = 0; k < done; k++)
                    if (L[k].t_leased)
                        a[na++] = L[k].t_leased - L[k].t_enq;
                qsort(a, na, sizeof *a, cmp_i64);
                note("- Enqueue -> leased (events stream, µs): p50 %.3f ms, p99 %.3f ms, max "
                     "%.3f ms\n", (double)pct(a, na, .5) / 1000, (double)pct(a, na, .99) / 1000,
                     (double)a[na - 1] / 1000);
            }
            free(s1);
            free(s2);
        }
    }
out_nothreads:
    if (bad)
        why(R_LAT_DONE_P50, "%s", rows[R_LAT_START_P50].why);
    store_close(st);
    free(L);
    free(a);
}

/* ---- figure 6: memory per waiting job ---- */

static long long
memory_usage(const char *key)
{
    redisReply *r = store_command(G.admin, "MEMORY USAGE %s SAMPLES 0", key);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

static void
fig_memory(long n, int last)
{
    char err[256];
    struct store *st = store_open(G.url, err, sizeof err);
    double m0, m1;

    flushall();
    if (!st || store_ready(st) < 0) {
        why(R_MEM, "cannot connect: %s", st ? st->err : err);
        store_close(st);
        return;
    }
    m0 = redis_used_memory();
    if (prefill(st, "noop", n, NULL, err, sizeof err) < 0) {
        why(R_MEM, "enqueue failed: %s", err);
        store_close(st);
        return;
    }
    m1 = redis_used_memory();
    put(R_MEM, (m1 - m0) / (double)n);
    if (last) {
        /* Where the bytes are: one job's hash, the wait index per job, the
         * capped events stream. */
        redisReply *r = store_command(G.admin, "ZRANGE " PREFIX ":{" QUEUE "}:wait 0 0");
        long long job = -1;
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            char key[128];
            snprintf(key, sizeof key, PREFIX ":{" QUEUE "}:job:%s", r->element[0]->str);
            job = memory_usage(key);
        }
        if (r)
            freeReplyObject(r);
        note("- Memory per waiting job (%ld jobs, %d-byte payloads): job hash %lld B "
             "(MEMORY USAGE of one), wait zset %.1f B/job, events stream %.1f B/job (capped "
             "at ~10,000 entries), everything else %.1f B/job\n",
             n, PAYLOAD_BYTES, job,
             (double)memory_usage(PREFIX ":{" QUEUE "}:wait") / (double)n,
             (double)memory_usage(PREFIX ":{" QUEUE "}:events") / (double)n,
             (m1 - m0) / (double)n - (double)job -
                 (double)(memory_usage(PREFIX ":{" QUEUE "}:wait") +
                          memory_usage(PREFIX ":{" QUEUE "}:events")) / (double)n);
    }
    /* The same with the listpack limit jqrun's embedded Redis sets (the
     * README recommends it for an external Redis): job hashes of a few
     * hundred bytes stay listpack-encoded. */
    {
        redisReply *c = store_command(G.admin, "CONFIG SET hash-max-listpack-value 1024");
        if (c)
            freeReplyObject(c);
        flushall();
        m0 = redis_used_memory();
        if (prefill(st, "noop", n, NULL, err, sizeof err) == 0)
            put(R_MEM_LP, (redis_used_memory() - m0) / (double)n);
        else
            why(R_MEM_LP, "enqueue failed: %s", err);
        c = store_command(G.admin, "CONFIG SET hash-max-listpack-value 64");
        if (c)
            freeReplyObject(c);
    }
    store_close(st);
}

/* ---- the report ---- */

static void
fmt_num(char *out, size_t n, enum kind k, double v)
{
    if (k == K_RATE || k == K_BYTES) {
        char digits[32], *o = out;
        int len = snprintf(digits, sizeof digits, "%.0f", v);
        for (int i = 0; i < len && (size_t)(o - out) < n - 2; i++) {
            if (i && digits[i - 1] != '-' && (len - i) % 3 == 0)
                *o++ = ',';
            *o++ = digits[i];
        }
        *o = '\0';
    } else if (k == K_MS) {
        snprintf(out, n, "%.3f", v);
    } else if (k == K_CMDS) {
        snprintf(out, n, "%.1f", v);
    } else {
        snprintf(out, n, "%.3f", v);
    }
}

static void
row_cell(const struct row *r, char *out, size_t n, double *med)
{
    char a[32], b[32], c[32];
    double lo, hi;
    *med = NAN;
    if (r->n == 0) {
        snprintf(out, n, "n/a");
        return;
    }
    *med = median(r->v, r->n, &lo, &hi);
    fmt_num(a, sizeof a, r->kind, *med);
    if (r->n == 1) {
        snprintf(out, n, "%s", a);
        return;
    }
    fmt_num(b, sizeof b, r->kind, lo);
    fmt_num(c, sizeof c, r->kind, hi);
    snprintf(out, n, "%s (%s–%s)", a, b, c);
}

static void
ratio_cell(const struct row *r, double med, double other, char *out, size_t n)
{
    double x;
    if (!other || !isfinite(med) || med <= 0) {
        snprintf(out, n, "%s", other && !isfinite(med) ? "n/a" : "");
        return;
    }
    x = r->higher_better ? med / other : other / med;
    snprintf(out, n, "%.2f×", x);
}

static void
report(struct strbuf *sb, const char *header)
{
    int foot = 0;
    sb_puts(sb, header);
    sb_puts(sb, "\n| figure | jqrun: median (min–max) | target | BullMQ 6.7 | bee-queue 2.0 "
                "| × BullMQ | × bee-queue |\n|---|---:|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < R_COUNT; i++) {
        const struct row *r = &rows[i];
        char cell[128], t[64] = "", rb[16], re[16], nb[32] = "", ne[32] = "";
        double med;
        row_cell(r, cell, sizeof cell, &med);
        if (r->n == 0 && r->why[0])
            snprintf(cell + strlen(cell), sizeof cell - strlen(cell), " [%d]", ++foot);
        if (r->target) {
            int met = isfinite(med) && (r->higher_better ? med >= r->target_val
                                                         : med <= r->target_val);
            snprintf(t, sizeof t, "%s %s", r->target, !isfinite(med) ? "" : met ? "met" : "**missed**");
        }
        if (r->bull)
            fmt_num(nb, sizeof nb, r->kind, r->bull);
        if (r->bee)
            fmt_num(ne, sizeof ne, r->kind, r->bee);
        ratio_cell(r, med, r->bull, rb, sizeof rb);
        ratio_cell(r, med, r->bee, re, sizeof re);
        sb_printf(sb, "| %s | %s | %s | %s | %s | %s | %s |\n", r->label, cell, t, nb, ne, rb,
                  re);
    }
    sb_puts(sb, "\nBullMQ 6.7 and bee-queue 2.0: quoted from issue 6, \"measured on this machine "
                "class by the issue author\" (Redis 7.0, unix socket, ~100-byte payloads); "
                "not re-measured here.  Ratios are jqrun's advantage (> 1 = jqrun better: "
                "throughput jqrun ÷ theirs; latency, bytes and commands theirs ÷ jqrun).\n");
    foot = 0;
    for (int i = 0; i < R_COUNT; i++)
        if (rows[i].n == 0 && rows[i].why[0])
            sb_printf(sb, "%s- [%d] %s: %s\n", foot ? "" : "\n", foot + 1, rows[i].label,
                      rows[i].why), foot++;
    for (int i = 0; i < R_COUNT; i++)
        if (rows[i].n > 0 && rows[i].why[0])
            sb_printf(sb, "\n**%s: %d run%s failed** (the figure is the median of the others); "
                      "the first: %s\n", rows[i].label, rows[i].fails ? rows[i].fails : 1,
                      rows[i].fails > 1 ? "s" : "", rows[i].why);
    if (G.notes.len) {
        sb_puts(sb, "\nDetails (breakdowns from the last run of each figure; processing figures "
                    "are medians):\n\n");
        sb_puts(sb, G.notes.buf);
    }
}

/* popen_line reads the first line a shell command prints. */
static void
popen_line(const char *cmd, char *out, size_t n)
{
    FILE *p = popen(cmd, "r");
    out[0] = '\0';
    if (p) {
        if (!fgets(out, (int)n, p))
            out[0] = '\0';
        pclose(p);
    }
    out[strcspn(out, "\n")] = '\0';
}

static void
machine(char *out, size_t n)
{
    char cpu[256] = "unknown CPU", line[512], redis[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p += 1 + (p[1] == ' ');
                p[strcspn(p, "\n")] = '\0';
                snprintf(cpu, sizeof cpu, "%s", p);
            }
            break;
        }
    if (f)
        fclose(f);
    popen_line("redis-server --version 2>/dev/null", redis, sizeof redis);
    snprintf(out, n, "nproc %ld, %s; %s", sysconf(_SC_NPROCESSORS_ONLN), cpu, redis);
}

/* ---- main ---- */

static void
usage(void)
{
    fprintf(stderr, "usage: bench --dir TMPDIR --jqrun PATH --handlers DIR [--results FILE]\n"
                    "(BENCH_QUICK=1 for one quick run of each figure)\n");
    exit(2);
}

static void
init_rows(void)
{
    row_init(R_ENQ1_C, "enqueue one at a time, C API (jobs/s)", K_RATE, 1, NULL, 0, 8800, 10700);
    row_init(R_ENQ1_HTTP, "enqueue one at a time, HTTP POST /jobs keep-alive (jobs/s)", K_RATE, 1,
             NULL, 0, 8800, 10700);
    row_init(R_ENQ50_C, "enqueue 50 in flight, C API: 50 threads (jobs/s)", K_RATE, 1, NULL, 0,
             48000, 107000);
    row_init(R_ENQ50_HTTP, "enqueue 50 in flight, HTTP: 50 keep-alive connections (jobs/s)",
             K_RATE, 1, "≥ 50,000", 50000, 48000, 107000);
    row_init(R_BULK_C, "enqueue bulk of 1000, C API (jobs/s)", K_RATE, 1, "≥ 200,000", 200000,
             32000, 109000);
    row_init(R_BULK_HTTP, "enqueue bulk of 1000, HTTP POST /jobs/bulk (jobs/s)", K_RATE, 1,
             "≥ 200,000", 200000, 32000, 109000);
    row_init(R_PROC1, "process pre-filled no-op jobs, 1 worker process, concurrency 1 (jobs/s)",
             K_RATE, 1, NULL, 0, 23500, 41600);
    row_init(R_PROC10, "process pre-filled no-op jobs, concurrency 10 (jobs/s)", K_RATE, 1,
             NULL, 0, 23500, 41600);
    row_init(R_PROC50, "process pre-filled no-op jobs, concurrency 50 (jobs/s)", K_RATE, 1,
             NULL, 0, 23500, 41600);
    row_init(R_LAT_START_P50, "enqueue → handler start at 500 jobs/s, p50 (ms)", K_MS, 0, NULL, 0,
             0.50, 0.25);
    row_init(R_LAT_START_P99, "enqueue → handler start, p99 (ms)", K_MS, 0, "≤ 1", 1, 1.81, 1.02);
    row_init(R_LAT_START_MAX, "enqueue → handler start, max (ms)", K_MS, 0, NULL, 0, 0, 0);
    row_init(R_LAT_DONE_P50, "enqueue → completed, p50 (ms)", K_MS, 0, NULL, 0, 0, 0);
    row_init(R_LAT_DONE_P99, "enqueue → completed, p99 (ms)", K_MS, 0, NULL, 0, 0, 0);
    row_init(R_LAT_DONE_MAX, "enqueue → completed, max (ms)", K_MS, 0, NULL, 0, 0, 0);
    row_init(R_MEM, "Redis memory per waiting job (bytes, used_memory delta / 100,000)", K_BYTES,
             0, "≤ 250", 250, 650, 279);
    row_init(R_MEM_LP, "Redis memory per waiting job, with hash-max-listpack-value 1024 "
             "(the embedded Redis's setting)", K_BYTES, 0, "≤ 250", 250, 650, 279);
    row_init(R_CMD_ENQ1, "Redis commands per job, enqueue one at a time", K_CMDS, 0, NULL, 0, 9, 5);
    row_init(R_CMD_BULK, "Redis commands per job, enqueue in bulks of 1000", K_CMDS, 0, NULL, 0,
             0, 0);
    row_init(R_CMD_PROC, "Redis commands per job, process", K_CMDS, 0, NULL, 0, 24, 10);
    row_init(R_CMD_TOTAL, "Redis commands per job, total (enqueue one at a time + process)",
             K_CMDS, 0, "≤ 12", 12, 33, 15);
    row_init(R_CPU_JQ, "CPU seconds per 10,000 jobs processed, jqrun worker", K_CPU, 0, NULL, 0,
             0, 0);
    row_init(R_CPU_REDIS, "CPU seconds per 10,000 jobs processed, Redis", K_CPU, 0, NULL, 0, 0, 0);
}

int
main(int argc, char **argv)
{
    struct params P;
    struct proc_stats ps[3] = { { .conc = 1 }, { .conc = 10 }, { .conc = 50 } };
    static const enum row_id proc_rows[3] = { R_PROC1, R_PROC10, R_PROC50 };
    const char *q = getenv("BENCH_QUICK");
    char header[1400], mach[512], commit[64], date[64], err[512], logpath[700];
    char load0[32], load1[32];
    struct http_run hr = { .pid = -1 };
    struct strbuf out = { 0 };
    int64_t started = mono_ms();
    int best = -1;

    for (int i = 1; i < argc; i++) {
        char *dst = NULL;
        size_t dn = 0;
        if (strcmp(argv[i], "--dir") == 0)
            dst = G.dir, dn = sizeof G.dir;
        else if (strcmp(argv[i], "--jqrun") == 0)
            dst = G.jqrun, dn = sizeof G.jqrun;
        else if (strcmp(argv[i], "--handlers") == 0)
            dst = G.handlers, dn = sizeof G.handlers;
        else if (strcmp(argv[i], "--results") == 0)
            dst = G.results, dn = sizeof G.results;
        if (!dst || ++i >= argc)
            usage();
        /* Absolute paths: the jqrun processes read them from their config. */
        if (argv[i][0] != '/' && strcmp(argv[i - 1], "--results") != 0) {
            char cwd[512];
            if (!getcwd(cwd, sizeof cwd))
                usage();
            snprintf(dst, dn, "%s/%s", cwd, argv[i]);
        } else {
            snprintf(dst, dn, "%s", argv[i]);
        }
    }
    if (!G.dir[0] || !G.jqrun[0] || !G.handlers[0])
        usage();
    G.quick = q && *q && strcmp(q, "0") != 0;
    G.runs = G.quick ? 1 : 3;
    /* make bench: under 5 minutes with the build; quick: under 1. */
    G.deadline = started + (G.quick ? 35000 : 230000);
    G.run_timeout_ms = G.quick ? 10000 : 40000;
    if (G.quick)
        P = (struct params){ 2000, 2000, 10000, 10000, 20000, 20000, 10000, 100000, 2000 };
    else
        P = (struct params){ 10000, 10000, 50000, 50000, 100000, 100000, 50000, 100000, 5000 };
    if (getenv("BENCH_PROCESS_JOBS") && atol(getenv("BENCH_PROCESS_JOBS")) > 0)
        P.proc = atol(getenv("BENCH_PROCESS_JOBS")); /* for profiling a longer run */
    loadavg(load0, sizeof load0);
    snprintf(G.sock, sizeof G.sock, "%s/redis.sock", G.dir);
    snprintf(G.url, sizeof G.url, "unix://%s", G.sock);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    log_set_level(LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    http_headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* Bulk bodies are over 1 KiB: no "Expect: 100-continue" round trip. */
    http_headers = curl_slist_append(http_headers, "Expect:");
    init_rows();

    if (access(G.jqrun, X_OK) != 0) {
        fprintf(stderr, "bench: %s is not executable\n", G.jqrun);
        return 1;
    }
    if (redis_start() < 0)
        return 1;
    say("bench: redis-server on %s; %s, %d run(s) per figure", G.sock,
        G.quick ? "BENCH_QUICK" : "full", G.runs);

    /* 1-3, C API. */
    for (int r = 0; r < G.runs && only("enqueue") && !over_budget(); r++) {
        int last = r == G.runs - 1;
        say("bench: enqueue through the C API, run %d/%d", r + 1, G.runs);
        fig_enq1_c(P.enq1_c, last);
        fig_enq50_c(P.enq50_c, last);
        if (last)
            fig_enq50_pipe(P.enq50_c);
        fig_bulk_c(P.bulk_c, last);
    }

    /* 1-3, HTTP, against one `jqrun server`. */
    hr.port = free_port();
    hr.pid = over_budget() || !only("http") ? -1
                           : jq_start("server", "server", 1, hr.port, logpath, sizeof logpath, err,
                                      sizeof err);
    if (hr.pid > 0 && !server_up(hr.pid, hr.port, 10000)) {
        char tail[200];
        log_tail(logpath, tail, sizeof tail);
        snprintf(err, sizeof err, "`jqrun server` did not answer GET /health within 10 s: %s",
                 tail);
        stop(hr.pid, 2000);
        hr.pid = -1;
    }
    if (hr.pid < 0 && !only("http")) {
        snprintf(err, sizeof err, "not selected by BENCH_ONLY");
    }
    if (hr.pid < 0) {
        say("bench: HTTP figures skipped: %s", over_budget() ? "time budget" : err);
        why(R_ENQ1_HTTP, "%s", over_budget() && only("http") ? "skipped: time budget spent" : err);
        why(R_ENQ50_HTTP, "%s", rows[R_ENQ1_HTTP].why);
        why(R_BULK_HTTP, "%s", rows[R_ENQ1_HTTP].why);
    }
    for (int r = 0; r < G.runs && hr.pid > 0 && !over_budget(); r++) {
        int last = r == G.runs - 1;
        say("bench: enqueue over HTTP, run %d/%d", r + 1, G.runs);
        fig_http_seq(&hr, P.enq1_http, last);
        fig_http_multi(&hr, P.enq50_http, last);
        fig_http_bulk(&hr, P.bulk_http, last);
    }
    stop(hr.pid, 3000);

    /* 4, 7, 8: one worker process per run. */
    for (int r = 0; r < G.runs && only("process"); r++)
        for (int c = 0; c < 3; c++) {
            const char *cs = getenv("BENCH_CONCURRENCY");
            if (cs && *cs && atoi(cs) != ps[c].conc)
                continue;
            if (over_budget()) {
                why(proc_rows[c], "skipped: time budget spent");
                continue;
            }
            say("bench: process %ld jobs at concurrency %d, run %d/%d", P.proc, ps[c].conc, r + 1,
                G.runs);
            if (fig_process(ps[c].conc, P.proc, proc_rows[c], &ps[c]) < 0)
                say("bench:   failed: %s", last_failure);
        }
    for (int c = 0; c < 3; c++) {
        double lo, hi;
        if (!rows[proc_rows[c]].n)
            continue;
        if (best < 0 || median(rows[proc_rows[c]].v, rows[proc_rows[c]].n, &lo, &hi) >
                            median(rows[proc_rows[best]].v, rows[proc_rows[best]].n, &lo, &hi))
            best = c;
    }
    for (int c = 0; c < 3; c++) {
        if (!ps[c].n)
            continue;
        double lo, hi, m = median(ps[c].cmds, ps[c].n, &lo, &hi);
        double jq = median(ps[c].jq_cpu, ps[c].n, &lo, &hi);
        double rd = median(ps[c].redis_cpu, ps[c].n, &lo, &hi);
        char what[160];
        double sw = median(ps[c].switches, ps[c].n, &lo, &hi);
        note("- Processing at concurrency %d (median of %d): %.2f Redis commands/job; CPU per "
             "10,000 jobs: jqrun %.3f s, Redis %.3f s; %.2f context switches of the worker's "
             "threads per job; %.0f jobs trimmed by retention in the window\n", ps[c].conc,
             ps[c].n, m, jq, rd, sw, ps[c].trimmed[ps[c].n - 1]);
        if (ps[c].log_errors)
            note("- **The worker logged %d error line%s at concurrency %d** (over all runs; "
                 "such jobs were retried, which slows the run); the first: `%s`\n",
                 ps[c].log_errors, ps[c].log_errors > 1 ? "s" : "", ps[c].conc,
                 ps[c].first_error);
        if (c == best) {
            snprintf(what, sizeof what, "process at concurrency %d (%ld jobs, incl. retention trim"
                     " of %.0f)", ps[c].conc, P.proc, ps[c].trimmed[ps[c].n - 1]);
            cmdstats_note(what, &ps[c].last, (double)P.proc, 0);
        }
    }
    if (best >= 0) {
        snprintf(rows[R_CMD_PROC].label, sizeof rows[R_CMD_PROC].label,
                 "Redis commands per job, process (concurrency %d, incl. retention trim)",
                 ps[best].conc);
        snprintf(rows[R_CPU_JQ].label, sizeof rows[R_CPU_JQ].label,
                 "CPU seconds per 10,000 jobs processed, jqrun worker (concurrency %d)",
                 ps[best].conc);
        snprintf(rows[R_CPU_REDIS].label, sizeof rows[R_CPU_REDIS].label,
                 "CPU seconds per 10,000 jobs processed, Redis (concurrency %d)", ps[best].conc);
        for (int i = 0; i < ps[best].n; i++) {
            put(R_CMD_PROC, ps[best].cmds[i]);
            put(R_CPU_JQ, ps[best].jq_cpu[i]);
            put(R_CPU_REDIS, ps[best].redis_cpu[i]);
            if (i < rows[R_CMD_ENQ1].n)
                put(R_CMD_TOTAL, rows[R_CMD_ENQ1].v[i] + ps[best].cmds[i]);
        }
    } else {
        why(R_CMD_PROC, "no processing run succeeded");
        why(R_CMD_TOTAL, "no processing run succeeded");
        why(R_CPU_JQ, "no processing run succeeded");
        why(R_CPU_REDIS, "no processing run succeeded");
    }

    /* 5. */
    for (int r = 0; r < G.runs && only("latency"); r++) {
        if (over_budget()) {
            why(R_LAT_START_P50, "skipped: time budget spent");
            why(R_LAT_DONE_P50, "skipped: time budget spent");
            break;
        }
        say("bench: latency at %d jobs/s for %.1f s, run %d/%d", LAT_RATE, P.lat_ms / 1000.0,
            r + 1, G.runs);
        fig_latency(P.lat_ms, r == G.runs - 1);
    }
    for (int i = R_LAT_START_P99; i <= R_LAT_DONE_MAX; i++)
        if (!rows[i].n)
            why((enum row_id)i, "%s", rows[i <= R_LAT_START_MAX ? R_LAT_START_P50
                                                              : R_LAT_DONE_P50].why);

    /* 6. */
    for (int r = 0; r < G.runs && only("memory"); r++) {
        if (over_budget()) {
            why(R_MEM, "skipped: time budget spent");
            why(R_MEM_LP, "skipped: time budget spent");
            break;
        }
        say("bench: memory of %ld waiting jobs, run %d/%d", P.mem, r + 1, G.runs);
        fig_memory(P.mem, r == G.runs - 1);
    }
    for (int i = 0; i < R_COUNT; i++)
        if (!rows[i].n)
            why((enum row_id)i, "not measured (BENCH_ONLY, the time budget, or an earlier "
                                "failure)");

    /* The report. */
    {
        time_t now = time(NULL);
        struct tm tm;
        char dirty[8] = "";
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
        popen_line("git rev-parse --short HEAD 2>/dev/null", commit, sizeof commit);
        popen_line("git status --porcelain --untracked-files=no 2>/dev/null | head -n 1", dirty,
                   sizeof dirty);
        machine(mach, sizeof mach);
        loadavg(load1, sizeof load1);
        snprintf(header, sizeof header,
                 "## %s — commit %s%s\n\nMachine: %s.  Mode: %s (%d run%s per figure, "
                 "%.0f s)%s%s.  Load average (1 min) before/after: %s / %s.  Command: `%s`.\n",
                 date, commit[0] ? commit : "unknown", dirty[0] ? " (uncommitted changes)" : "",
                 mach, G.quick ? "quick" : "full", G.runs, G.runs > 1 ? "s" : "",
                 (double)(mono_ms() - started) / 1000,
                 getenv("BENCH_ONLY") && *getenv("BENCH_ONLY") ? ", BENCH_ONLY=" : "",
                 getenv("BENCH_ONLY") && *getenv("BENCH_ONLY") ? getenv("BENCH_ONLY") : "",
                 load0, load1, G.quick ? "BENCH_QUICK=1 make bench" : "make bench");
    }
    report(&out, header);
    fputs(out.buf, stdout);
    fflush(stdout);
    /* results.md compares whole runs across commits: partial or resized
     * runs (profiling) are printed only. */
    if ((getenv("BENCH_ONLY") && *getenv("BENCH_ONLY")) || getenv("BENCH_PROCESS_JOBS") ||
        getenv("BENCH_CONCURRENCY"))
        G.results[0] = '\0';
    if (G.results[0]) {
        FILE *f;
        char dir[1024], *slash;
        snprintf(dir, sizeof dir, "%s", G.results);
        if ((slash = strrchr(dir, '/'))) {
            *slash = '\0';
            mkdir(dir, 0755);
        }
        if (access(G.results, F_OK) != 0 && (f = fopen(G.results, "w"))) {
            fputs("# jqrun benchmark results\n\n"
                  "Appended by every full or `BENCH_QUICK=1` run of `make bench` "
                  "(tests/bench/bench.c): compare figures across commits on the same "
                  "machine.  Each figure is the median of 3 runs (1 when quick) with "
                  "min–max.\n\n", f);
            fclose(f);
        }
        f = fopen(G.results, "a");
        if (f) {
            fprintf(f, "%s\n", out.buf);
            fclose(f);
            say("bench: appended to %s", G.results);
        } else {
            say("bench: cannot append to %s: %s", G.results, strerror(errno));
        }
    }
    sb_free(&out);
    sb_free(&G.notes);
    store_close(G.admin);
    stop(G.redis_pid, 3000);
    curl_slist_free_all(http_headers);
    curl_global_cleanup();
    return 0;
}
