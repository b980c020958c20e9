/* relclient.c — the HTTP client of the reliability suite (tests/reliability).
 *
 *   relclient post PORT OUT [-n MAX] [-c CONC] [-t SECS] [-s STOPFILE]
 *                  [-T TYPE] [-q QUEUE] [-m MS] [-p PADBYTES] [-b BULK]
 *       POSTs jobs to 127.0.0.1:PORT with CONC transfers in flight (libcurl
 *       multi) until MAX jobs were acknowledged, SECS passed or STOPFILE
 *       exists.  Every id answered 201 is appended to OUT at once (one
 *       write(2) per id), so the file holds exactly what the API promised.
 *       Transport errors (server down) and 5xx are counted and retried.
 *       -b BULK posts BULK jobs per request to /jobs/bulk.
 *   relclient conns PORT N
 *       opens N connections at once, sends one bad request on each and
 *       checks that every one is answered with a JSON 4xx.
 *   relclient slowloris PORT N SECS IDLE_TIMEOUT
 *       N connections trickle a request one byte a second (and N/2 more go
 *       silent mid-header) for SECS while a fresh client checks GET /health
 *       every 200 ms; prints the worst health latency and how many silent
 *       connections the server closed (it must close them all after about
 *       IDLE_TIMEOUT seconds).
 *   relclient raw PORT
 *       sends stdin as it is, prints the answer's status code on the first
 *       line and its body after (status 0 when there was no answer).
 *   relclient check STATUS_FILE BODY_FILE
 *       (no network) exit 0 when the body is a JSON error object whose
 *       statusCode matches the status in STATUS_FILE and is 4xx or 5xx.
 *
 * Every loop is bounded in time; nothing talks to anything but loopback. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *msg)
{
    fprintf(stderr, "relclient: %s\n", msg);
    exit(2);
}

/* ---- JSON error check ---- */

/* is_json_error tells whether body is {"statusCode": status, "error": "...",
 * "message": "..."} with status a 4xx or 5xx. */
static int
is_json_error(int status, const char *body, size_t len)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    int ok = j && status >= 400 && status <= 599 &&
             json_integer_value(json_object_get(j, "statusCode")) == status &&
             json_is_string(json_object_get(j, "error")) &&
             json_is_string(json_object_get(j, "message"));
    json_decref(j);
    return ok;
}

/* ---- post: the load generator ---- */

struct xfer {
    CURL  *h;
    char  *buf;
    size_t len, cap;
    char   body[256];
    double retry_at;  /* after a transport error: wait a little */
};

static size_t
on_data(char *p, size_t sz, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t k = sz * n;
    if (x->len + k + 1 > x->cap) {
        x->cap = (x->len + k + 1) * 2;
        x->buf = realloc(x->buf, x->cap);
        if (!x->buf)
            die("out of memory");
    }
    memcpy(x->buf + x->len, p, k);
    x->len += k;
    x->buf[x->len] = '\0';
    return k;
}

static int
post_main(int argc, char **argv)
{
    const char *out = NULL, *stopfile = NULL, *type = "count", *queue = "default";
    long max = 1000, conc = 8, secs = 60, ms = 0, pad = 0, bulk = 0;
    int port, fd, opt;
    long acked = 0, sent = 0, s503 = 0, s4xx = 0, other = 0, transport = 0;
    char url[128], *padding = NULL, *bulkbody = NULL;
    struct curl_slist *hdrs = NULL;
    struct xfer *xs;
    CURLM *m;
    double t0 = now_s(), end;

    if (argc < 3)
        die("usage: post PORT OUT [-n MAX] [-c CONC] [-t SECS] [-s STOP] [-T TYPE] [-q Q] "
            "[-m MS] [-p PAD] [-b BULK]");
    port = atoi(argv[1]);
    out = argv[2];
    optind = 3;
    while ((opt = getopt(argc, argv, "n:c:t:s:T:q:m:p:b:")) != -1) {
        switch (opt) {
        case 'n': max = atol(optarg); break;
        case 'c': conc = atol(optarg); break;
        case 't': secs = atol(optarg); break;
        case 's': stopfile = optarg; break;
        case 'T': type = optarg; break;
        case 'q': queue = optarg; break;
        case 'm': ms = atol(optarg); break;
        case 'p': pad = atol(optarg); break;
        case 'b': bulk = atol(optarg); break;
        default: die("bad option");
        }
    }
    if (conc < 1 || conc > 256 || bulk < 0 || bulk > 1000 || pad < 0 || pad > 4000000)
        die("bad numbers");
    end = t0 + (double)secs;
    fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        die("cannot open the output file");
    if (pad) {
        padding = malloc((size_t)pad + 1);
        memset(padding, 'x', (size_t)pad);
        padding[pad] = '\0';
    }
    if (bulk) {
        /* One body for every bulk request: BULK copies of the same job. */
        size_t cap = (size_t)bulk * (200 + (size_t)pad) + 16, len = 1;
        bulkbody = malloc(cap);
        bulkbody[0] = '[';
        for (long i = 0; i < bulk; i++)
            len += (size_t)snprintf(bulkbody + len, cap - len,
                                    "%s{\"type\":\"%s\",\"queue\":\"%s\",\"payload\":{\"ms\":%ld,"
                                    "\"pad\":\"%s\"}}", i ? "," : "", type, queue, ms,
                                    padding ? padding : "");
        snprintf(bulkbody + len, cap - len, "]");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    m = curl_multi_init();
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/jobs%s", port, bulk ? "/bulk" : "");
    xs = calloc((size_t)conc, sizeof *xs);

    for (;;) {
        int running = 0, left = 0;
        double now = now_s();
        int stop = now > end || acked >= max || (stopfile && access(stopfile, F_OK) == 0);
        int busy = 0;
        CURLMsg *msg;

        /* Start transfers on idle slots. */
        for (long i = 0; i < conc; i++)
            busy += xs[i].h != NULL;
        for (long i = 0; i < conc; i++) {
            struct xfer *x = &xs[i];
            if (x->h)
                continue;
            if (stop || now < x->retry_at || acked + busy * (bulk ? bulk : 1) >= max)
                continue;
            x->h = curl_easy_init();
            x->len = 0;
            if (bulk) {
                curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, bulkbody);
            } else {
                if (padding) {
                    /* A padded body does not fit x->body: build it apart. */
                    size_t cap = (size_t)pad + 256;
                    char *b = malloc(cap);
                    snprintf(b, cap,
                             "{\"type\":\"%s\",\"queue\":\"%s\",\"payload\":{\"ms\":%ld,\"n\":%ld,"
                             "\"pad\":\"%s\"}}", type, queue, ms, sent, padding);
                    curl_easy_setopt(x->h, CURLOPT_COPYPOSTFIELDS, b);
                    free(b);
                } else {
                    snprintf(x->body, sizeof x->body,
                             "{\"type\":\"%s\",\"queue\":\"%s\",\"payload\":{\"ms\":%ld,\"n\":%ld}}",
                             type, queue, ms, sent);
                    curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body);
                }
            }
            curl_easy_setopt(x->h, CURLOPT_URL, url);
            curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, hdrs);
            curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_data);
            curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
            curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
            curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, 10000L);
            curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
            curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
            curl_multi_add_handle(m, x->h);
            sent++;
            busy++;
        }
        if (stop && busy == 0)
            break;
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left))) {
            struct xfer *x;
            long code = 0;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result != CURLE_OK) {
                transport++;
                x->retry_at = now_s() + 0.02;
            } else if (code == 201 || (code == 200 && bulk == 0)) {
                json_t *j = json_loadb(x->buf ? x->buf : "", x->len, 0, NULL);
                json_t *items = json_is_array(j) ? j : NULL;
                size_t n = items ? json_array_size(items) : 1;
                for (size_t k = 0; k < n; k++) {
                    json_t *o = items ? json_array_get(items, k) : j;
                    const char *id = json_string_value(json_object_get(o, "id"));
                    char line[64];
                    int len;
                    if (!id) {
                        other++;
                        continue;
                    }
                    len = snprintf(line, sizeof line, "%s\n", id);
                    if (write(fd, line, (size_t)len) != len)
                        die("cannot write the output file");
                    acked++;
                }
                json_decref(j);
            } else if (code == 503) {
                s503++;
                x->retry_at = now_s() + 0.02;
            } else if (code >= 400 && code < 500) {
                s4xx++;
            } else {
                other++;
            }
            curl_multi_remove_handle(m, x->h);
            curl_easy_cleanup(x->h);
            x->h = NULL;
        }
        if (busy)
            curl_multi_poll(m, NULL, 0, 20, NULL);
        else
            usleep(5000);
    }
    printf("post: sent=%ld acked=%ld 503=%ld 4xx=%ld other=%ld transport_errors=%ld "
           "seconds=%.1f\n", sent, acked, s503, s4xx, other, transport, now_s() - t0);
    for (long i = 0; i < conc; i++)
        free(xs[i].buf);
    free(xs);
    curl_slist_free_all(hdrs);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    free(padding);
    free(bulkbody);
    close(fd);
    return 0;
}

/* ---- raw sockets ---- */

static int
connect_to(int port, int nonblock)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* resp is an answer being read. */
struct resp {
    char  *buf;
    size_t len, cap;
    int    status;     /* 0 until the status line is in */
    long   body_at;    /* offset of the body, -1 until the headers are in */
    long   clen;       /* Content-Length, -1 unknown */
};

static void
resp_add(struct resp *r, const char *p, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        r->cap = (r->len + n + 1) * 2;
        r->buf = realloc(r->buf, r->cap);
        if (!r->buf)
            die("out of memory");
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    r->buf[r->len] = '\0';
    if (r->body_at < 0) {
        char *e = strstr(r->buf, "\r\n\r\n");
        if (e) {
            r->body_at = e + 4 - r->buf;
            sscanf(r->buf, "HTTP/1.%*d %d", &r->status);
            for (char *l = strstr(r->buf, "\r\n"); l && l < e; l = strstr(l + 2, "\r\n"))
                if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
                    r->clen = atol(l + 17);
        }
    }
}

/* resp_done tells whether a whole answer is in. */
static int
resp_done(const struct resp *r)
{
    return r->body_at >= 0 && r->clen >= 0 && (long)r->len - r->body_at >= r->clen;
}

static int
raw_main(int argc, char **argv)
{
    struct resp r = { NULL, 0, 0, 0, -1, -1 };
    static char in[1 << 20];
    size_t n;
    int fd;
    double end;

    if (argc < 2)
        die("usage: raw PORT < request");
    n = fread(in, 1, sizeof in, stdin);
    if ((fd = connect_to(atoi(argv[1]), 0)) < 0)
        die("cannot connect");
    /* The server may answer (413, 431) and close before all is sent. */
    for (size_t off = 0; off < n;) {
        ssize_t k = send(fd, in + off, n - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    end = now_s() + 10;
    while (!resp_done(&r) && now_s() < end) {
        struct pollfd p = { fd, POLLIN, 0 };
        char buf[65536];
        ssize_t k;
        if (poll(&p, 1, 200) <= 0)
            continue;
        k = recv(fd, buf, sizeof buf, 0);
        if (k <= 0)
            break;
        resp_add(&r, buf, (size_t)k);
    }
    close(fd);
    printf("%d\n", r.body_at >= 0 ? r.status : 0);
    if (r.body_at >= 0)
        fwrite(r.buf + r.body_at, 1, r.len - (size_t)r.body_at, stdout);
    free(r.buf);
    return 0;
}

/* raise_nofile lifts the soft limit on open files to the hard one. */
static void
raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int
conns_main(int argc, char **argv)
{
    int port, n, answered = 0, json_ok = 0, refused = 0, bad = 0, cut = 0;
    int *fds;
    struct resp *rs;
    char *sent;
    double t0 = now_s(), end;
    static const char req[] =
        "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 9\r\nConnection: close\r\n\r\n{\"type\":1";

    if (argc < 3)
        die("usage: conns PORT N");
    port = atoi(argv[1]);
    n = atoi(argv[2]);
    if (n < 1 || n > 5000)
        die("N must be 1..5000");
    raise_nofile();
    fds = calloc((size_t)n, sizeof *fds);
    rs = calloc((size_t)n, sizeof *rs);
    sent = calloc((size_t)n, 1);
    /* Open every connection first, so that all are open at once. */
    for (int i = 0; i < n; i++) {
        rs[i].body_at = -1;
        rs[i].clen = -1;
        fds[i] = connect_to(port, 1);
        if (fds[i] < 0)
            refused++;
    }
    end = now_s() + 30;
    for (;;) {
        struct pollfd *ps = calloc((size_t)n, sizeof *ps);
        int open = 0;
        for (int i = 0; i < n; i++) {
            ps[i].fd = fds[i];
            ps[i].events = fds[i] < 0 ? 0 : sent[i] ? POLLIN : POLLOUT;
            open += fds[i] >= 0;
        }
        if (!open || now_s() > end) {
            free(ps);
            break;
        }
        poll(ps, (nfds_t)n, 200);
        for (int i = 0; i < n; i++) {
            char buf[8192];
            ssize_t k;
            if (fds[i] < 0 || !ps[i].revents)
                continue;
            if (!sent[i]) {
                if (send(fds[i], req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) {
                    close(fds[i]);
                    fds[i] = -1;
                    refused++;
                    continue;
                }
                sent[i] = 1;
                continue;
            }
            k = recv(fds[i], buf, sizeof buf, 0);
            if (k > 0)
                resp_add(&rs[i], buf, (size_t)k);
            if (k <= 0 || resp_done(&rs[i])) {
                if (rs[i].body_at < 0 && cut++ < 3)
                    fprintf(stderr, "conns-diag: connection %d closed without an answer after "
                            "%.2f s (%s, %zu bytes in)\n", i, now_s() - t0,
                            k == 0 ? "EOF" : strerror(errno), rs[i].len);
                close(fds[i]);
                fds[i] = -1;
                if (rs[i].body_at >= 0) {
                    answered++;
                    if (is_json_error(rs[i].status, rs[i].buf + rs[i].body_at,
                                      rs[i].len - (size_t)rs[i].body_at))
                        json_ok++;
                    else if (bad++ < 3)
                        fprintf(stderr, "conns: not a JSON error: %.200s\n", rs[i].buf);
                }
            }
        }
        free(ps);
    }
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        free(rs[i].buf);
    }
    printf("conns: connections=%d answered=%d json_errors=%d refused_or_reset=%d "
           "unanswered=%d seconds=%.1f\n", n, answered, json_ok, refused, n - answered - refused,
           now_s() - t0);
    free(fds);
    free(rs);
    free(sent);
    return answered == n && json_ok == n ? 0 : 1;
}

/* health_ms times one GET /health on a fresh connection; -1 on failure. */
static double
health_ms(int port)
{
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct resp r = { NULL, 0, 0, 0, -1, -1 };
    double t0 = now_s(), end = t0 + 5;
    int fd = connect_to(port, 0);

    if (fd < 0)
        return -1;
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return -1;
    }
    while (!resp_done(&r) && now_s() < end) {
        struct pollfd p = { fd, POLLIN, 0 };
        char buf[4096];
        ssize_t k;
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((k = recv(fd, buf, sizeof buf, 0)) <= 0)
            break;
        resp_add(&r, buf, (size_t)k);
    }
    close(fd);
    free(r.buf);
    return r.status == 200 ? (now_s() - t0) * 1000 : -1;
}

static int
slowloris_main(int argc, char **argv)
{
    static const char req[] =
        "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
        "Content-Length: 2\r\n\r\n{}";
    int port, n, secs, idle, nsilent, health_fail = 0, health_n = 0, silent_closed = 0;
    int trickle_closed = 0;
    int *trick, *silent;
    size_t *pos;
    double worst = 0, t0 = now_s(), silent_closed_at = 0, next_health = 0, next_byte = 0;

    if (argc < 5)
        die("usage: slowloris PORT N SECS IDLE_TIMEOUT");
    port = atoi(argv[1]);
    n = atoi(argv[2]);
    secs = atoi(argv[3]);
    idle = atoi(argv[4]);
    if (n < 1 || n > 2000 || secs < 1 || secs > 600)
        die("bad numbers");
    raise_nofile();
    nsilent = n / 2;
    trick = calloc((size_t)n, sizeof *trick);
    silent = calloc((size_t)nsilent + 1, sizeof *silent);
    pos = calloc((size_t)n, sizeof *pos);
    for (int i = 0; i < n; i++)
        trick[i] = connect_to(port, 0);
    for (int i = 0; i < nsilent; i++) {
        silent[i] = connect_to(port, 0);
        /* Half a request line, then silence. */
        if (silent[i] >= 0 && send(silent[i], "POST /jo", 8, MSG_NOSIGNAL) != 8) {
            close(silent[i]);
            silent[i] = -1;
        }
    }
    while (now_s() - t0 < secs) {
        double now = now_s();
        if (now >= next_byte) {
            /* One more byte on every trickling connection, once a second. */
            next_byte = now + 1;
            for (int i = 0; i < n; i++) {
                if (trick[i] < 0)
                    continue;
                if (pos[i] < sizeof req - 1 &&
                    send(trick[i], req + pos[i], 1, MSG_NOSIGNAL) == 1) {
                    pos[i]++;
                } else if (pos[i] < sizeof req - 1) {
                    close(trick[i]);
                    trick[i] = -1;
                    trickle_closed++;
                }
            }
        }
        for (int i = 0; i < nsilent; i++) {
            struct pollfd p = { silent[i], POLLIN, 0 };
            char buf[512];
            if (silent[i] < 0 || poll(&p, 1, 0) <= 0)
                continue;
            if (recv(silent[i], buf, sizeof buf, MSG_DONTWAIT) <= 0) {
                close(silent[i]);
                silent[i] = -1;
                if (++silent_closed == nsilent)
                    silent_closed_at = now_s() - t0;
            }
        }
        if (now >= next_health) {
            double ms = health_ms(port);
            next_health = now + 0.2;
            health_n++;
            if (ms < 0)
                health_fail++;
            else if (ms > worst)
                worst = ms;
        }
        usleep(20000);
    }
    printf("slowloris: trickling=%d silent=%d silent_closed=%d all_silent_closed_after_s=%.1f "
           "(idle timeout %d s) trickling_cut=%d health_checks=%d health_failed=%d "
           "health_worst_ms=%.1f\n", n, nsilent, silent_closed, silent_closed_at, idle,
           trickle_closed, health_n, health_fail, worst);
    for (int i = 0; i < n; i++)
        if (trick[i] >= 0)
            close(trick[i]);
    for (int i = 0; i < nsilent; i++)
        if (silent[i] >= 0)
            close(silent[i]);
    free(trick);
    free(silent);
    free(pos);
    return health_fail == 0 && silent_closed == nsilent ? 0 : 1;
}

static int
check_main(int argc, char **argv)
{
    FILE *f;
    char *body;
    long len;
    int status = 0, ok;

    if (argc < 3)
        die("usage: check STATUS_FILE BODY_FILE");
    if (!(f = fopen(argv[1], "r")) || fscanf(f, "%d", &status) != 1)
        return 1;
    fclose(f);
    if (!(f = fopen(argv[2], "rb")))
        return 1;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    body = malloc((size_t)len + 1);
    if (fread(body, 1, (size_t)len, f) != (size_t)len)
        len = 0;
    fclose(f);
    ok = is_json_error(status, body, (size_t)len);
    free(body);
    return ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2)
        die("usage: relclient post|conns|slowloris|raw|check ...");
    if (strcmp(argv[1], "post") == 0)
        return post_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "conns") == 0)
        return conns_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "slowloris") == 0)
        return slowloris_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "raw") == 0)
        return raw_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "check") == 0)
        return check_main(argc - 1, argv + 1);
    die("unknown command");
    return 2;
}
