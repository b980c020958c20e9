/* webhook.c — the webhook outbox sender (see webhook.h).
 *
 * One thread per process runs a loop: every tick it claims the due
 * deliveries of every queue (one script call per queue, pipelined), adds
 * them to a libcurl multi handle, and records each finished transfer with
 * one script call.  Transfers run concurrently (at most WH_INFLIGHT), so a
 * slow receiver delays nobody else; the same thread also moves subscription
 * events into the outbox (subs_dispatch).  Nothing here runs on a worker
 * thread: a handler that finishes only writes its job's outbox entry. */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"
#include "queue.h"
#include "subscription.h"
#include "util.h"
#include "webhook.h"

#define WH_INFLIGHT 64          /* transfers at once per process */
#define WH_TICK_MS 100          /* how often the outboxes are polled */
#define WH_REFRESH_MS 1000      /* how often the queue list is re-read */
#define WH_CLAIM_MARGIN 5000    /* ms a claim outlives the transfer timeout */
#define WH_STOP_GRACE 2000      /* ms transfers get to finish at stop */
#define WH_MAX_DELAY 3600000LL  /* an hour: the longest wait between tries */

/* ---- secret, signature, backoff ---- */

int
webhook_secret_decode(const char *secret, unsigned char *key)
{
    char buf[WEBHOOK_SECRET_MAX + 4];
    size_t n;
    int len, pad = 0;

    if (!secret)
        return -1;
    if (strncmp(secret, "whsec_", 6) == 0)
        secret += 6;
    n = strlen(secret);
    if (n == 0 || n > WEBHOOK_SECRET_MAX - 4)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)secret[i]) && secret[i] != '+' && secret[i] != '/' &&
            !(secret[i] == '=' && i >= n - 2))
            return -1;
    /* EVP_DecodeBlock wants whole 4-character groups: pad unpadded text. */
    memcpy(buf, secret, n);
    while (n % 4)
        buf[n++] = '=';
    buf[n] = '\0';
    if (n / 4 * 3 > WEBHOOK_KEY_MAX)
        return -1;
    len = EVP_DecodeBlock(key, (const unsigned char *)buf, (int)n);
    if (len < 0)
        return -1;
    /* It counts the padding as zero bytes: take them off again. */
    while (n > 0 && buf[n - 1] == '=') {
        n--;
        pad++;
    }
    len -= pad;
    return len > 0 ? len : -1;
}

int
webhook_secret_new(char *out)
{
    unsigned char raw[24];

    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    memcpy(out, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, raw, sizeof raw);
    return 0;
}

int
webhook_secret_shared(struct store *st, const char *prefix, char *out)
{
    char fresh[WEBHOOK_SECRET_MAX];
    redisReply *r;
    int rc = -1;

    if (webhook_secret_new(fresh) < 0) {
        snprintf(st->err, sizeof st->err, "no randomness for a webhook secret");
        return -1;
    }
    /* The first process to get here sets it; everyone reads the winner. */
    r = store_command(st, "SET %s:webhook_secret %s NX", prefix, fresh);
    if (!r)
        return -1;
    freeReplyObject(r);
    r = store_command(st, "GET %s:webhook_secret", prefix);
    if (r && r->type == REDIS_REPLY_STRING && r->len < WEBHOOK_SECRET_MAX) {
        memcpy(out, r->str, r->len + 1);
        rc = 0;
    } else if (r) {
        snprintf(st->err, sizeof st->err, "%s:webhook_secret is not a string", prefix);
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

int
webhook_sign(const unsigned char *key, size_t keylen, const char *id, int64_t ts,
             const char *body, size_t bodylen, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char head[200];
    int hn = snprintf(head, sizeof head, "%s.%" PRId64 ".", id, ts);
    unsigned char *msg;

    if (hn < 0 || (size_t)hn >= sizeof head)
        return -1;
    msg = xmalloc((size_t)hn + bodylen + 1);
    memcpy(msg, head, (size_t)hn);
    memcpy(msg + hn, body, bodylen);
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, (size_t)hn + bodylen, mac, &maclen)) {
        free(msg);
        return -1;
    }
    free(msg);
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
    return 0;
}

int64_t
webhook_retry_delay(int64_t base, int attempt)
{
    double d = (double)(base > 0 ? base : 0);
    uint32_t r = 0;

    for (int i = 1; i < attempt && d < (double)WH_MAX_DELAY; i++)
        d *= 4;
    if (d > (double)WH_MAX_DELAY)
        d = (double)WH_MAX_DELAY;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)mono_ms();
    return (int64_t)(d * (0.8 + 0.4 * ((double)r / 4294967295.0)));
}

/* ---- a job's deliveries, for GET /jobs/:id ---- */

static json_t *
delivery_json(const redisReply *h)
{
    static const char *const names[] = { "id", "event", "url", "status", "attempts",
                                         "lastError", "responseStatus", "createdAt",
                                         "updatedAt", "deliveredAt" };
    json_t *o;

    if (h->type != REDIS_REPLY_ARRAY || h->elements != 10 ||
        h->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    o = json_object();
    for (size_t i = 0; i < 10; i++) {
        const redisReply *v = h->element[i];
        json_t *val;
        if (v->type != REDIS_REPLY_STRING)
            val = i == 5 ? json_null() : NULL;   /* lastError: always present */
        else if (i == 4 || i >= 6)
            val = json_integer(strtoll(v->str, NULL, 10));
        else
            val = json_stringn(v->str, v->len);
        if (val)
            json_object_set_new(o, names[i], val);
    }
    return o;
}

json_t *
webhook_deliveries(struct store *st, const char *prefix, const char *q, const char *ids)
{
    json_t *out = json_array();
    const char *p = ids;
    int n = 0;

    if (!st->ctx)
        return out;
    while (*p) {
        size_t len;
        p += strspn(p, " ");
        len = strcspn(p, " ");
        if (len == 0)
            break;
        redisAppendCommand(st->ctx, "HMGET %s:{%s}:wh:%b id event url status attempts "
                           "lastError responseStatus createdAt updatedAt deliveredAt",
                           prefix, q, p, len);
        n++;
        p += len;
    }
    for (int i = 0; i < n; i++) {
        redisReply *h = store_get_reply(st);
        json_t *d;
        if (!h) {
            json_decref(out);
            return NULL;
        }
        if ((d = delivery_json(h)))
            json_array_append_new(out, d);
        freeReplyObject(h);
    }
    return out;
}

/* ---- the sender ---- */

/* transfer is one delivery attempt under way. */
struct transfer {
    CURL              *h;
    struct curl_slist *headers;
    char              *queue;
    char              *id;
    char              *url;
    char              *body;
    int                attempts;  /* before this one */
    int                slot;      /* index in webhook.live */
    char               errbuf[CURL_ERROR_SIZE];
};

struct webhook {
    const struct config *c;
    pthread_t       thread;
    pthread_mutex_t mu;
    int             stop;
    CURLM          *multi;
    unsigned char   key[WEBHOOK_KEY_MAX];
    int             keylen;       /* 0 until the secret is known */
    int             bad_secret;   /* the shared secret is malformed (logged) */
    struct store   *st;
    char          **queues;
    int             nqueues;
    int             inflight;
    struct transfer *live[WH_INFLIGHT]; /* transfers under way */
    struct subs    *subs;
};

static int
stopping(struct webhook *w)
{
    int s;
    pthread_mutex_lock(&w->mu);
    s = w->stop;
    pthread_mutex_unlock(&w->mu);
    return s;
}

/* load_secret learns the shared secret once Redis answers. */
static void
load_secret(struct webhook *w)
{
    char secret[WEBHOOK_SECRET_MAX];
    int n;

    if (webhook_secret_shared(w->st, w->c->prefix, secret) < 0)
        return;
    if ((n = webhook_secret_decode(secret, w->key)) < 0) {
        /* Someone wrote it by hand; nothing is sent until it is fixed. */
        if (!w->bad_secret++)
            log_error("webhooks: %s:webhook_secret is not a whsec_<base64> secret; "
                      "fix it or set auth.webhook_secret", w->c->prefix);
        return;
    }
    w->keylen = n;
    log_info("webhook secret: %s (set auth.webhook_secret to choose your own)", secret);
}

static void
transfer_free(struct transfer *t)
{
    if (!t)
        return;
    if (t->h)
        curl_easy_cleanup(t->h);
    curl_slist_free_all(t->headers);
    free(t->queue);
    free(t->id);
    free(t->url);
    free(t->body);
    free(t);
}

static size_t
discard(char *ptr, size_t size, size_t n, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * n;
}

/* reserved tells whether a job's own header would clash with one jqrun
 * sets itself (those are not the job's to choose). */
static int
reserved(const char *name)
{
    static const char *const ours[] = { "content-type", "content-length", "host", "expect",
                                        "x-job-id", "x-job-status", "webhook-id",
                                        "webhook-timestamp", "webhook-signature",
                                        "transfer-encoding", NULL };
    for (const char *const *p = ours; *p; p++)
        if (strcasecmp(name, *p) == 0)
            return 1;
    return 0;
}

/* header_ok accepts a header name that is an HTTP token and a value
 * without line breaks: anything else could smuggle headers in. */
static int
header_ok(const char *name, const char *value)
{
    if (!*name || strlen(name) > 256 || strlen(value) > 8192)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return 0;
    return !strpbrk(value, "\r\n");
}

/* add_header appends "Name: value" to a curl list. */
static struct curl_slist *
add_header(struct curl_slist *l, const char *name, const char *value)
{
    struct strbuf sb = { 0 };
    struct curl_slist *n;

    sb_printf(&sb, "%s: %s", name, value);
    n = curl_slist_append(l, sb.buf);
    sb_free(&sb);
    return n ? n : l;
}

/* build_headers makes the request headers: ours, the signature, then the
 * job's (or subscription's) own, as stored in the delivery. */
static struct curl_slist *
build_headers(struct webhook *w, struct transfer *t, const char *event, const char *job_id,
              const char *own)
{
    char sig[WEBHOOK_SIG_MAX], ts_s[24];
    int64_t ts = now_ms() / 1000;
    struct curl_slist *l = NULL;
    json_t *hs;

    snprintf(ts_s, sizeof ts_s, "%" PRId64, ts);
    if (webhook_sign(w->key, (size_t)w->keylen, t->id, ts, t->body, strlen(t->body), sig) < 0)
        return NULL;
    l = add_header(l, "Content-Type", "application/json");
    l = add_header(l, "User-Agent", "jqrun-webhooks/1");
    /* An empty Expect stops curl from waiting for "100 Continue". */
    l = curl_slist_append(l, "Expect:");
    l = add_header(l, "webhook-id", t->id);
    l = add_header(l, "webhook-timestamp", ts_s);
    l = add_header(l, "webhook-signature", sig);
    if (*job_id)
        l = add_header(l, "X-Job-Id", job_id);
    if (*event)
        l = add_header(l, "X-Job-Status", event);
    if (*own && (hs = json_loads(own, 0, NULL))) {
        const char *k;
        json_t *v;
        json_object_foreach(hs, k, v) {
            const char *val = json_string_value(v);
            if (val && !reserved(k) && header_ok(k, val))
                l = add_header(l, k, val);
            else if (val && !reserved(k))
                log_warn("webhooks: delivery %s: header '%.60s' dropped (bad name or value)",
                         t->id, k);
        }
        json_decref(hs);
    }
    return l;
}

/* start_transfer turns one claimed delivery (a wh_claim.lua row) into a
 * transfer on the multi handle.  -1 when it cannot (recorded as failed). */
static int
start_transfer(struct webhook *w, const char *q, const redisReply *row)
{
    struct transfer *t;
    const char *event, *job_id, *own;

    if (row->type != REDIS_REPLY_ARRAY || row->elements != 7)
        return -1;
    for (int i = 0; i < 7; i++)
        if (row->element[i]->type != REDIS_REPLY_STRING)
            return -1;
    t = xcalloc(1, sizeof *t);
    t->queue = xstrdup(q);
    t->id = xstrdup(row->element[0]->str);
    t->url = xstrdup(row->element[1]->str);
    own = row->element[2]->str;
    t->body = xstrdup(row->element[3]->str);
    t->attempts = atoi(row->element[4]->str);
    event = row->element[5]->str;
    job_id = row->element[6]->str;
    if (!(t->headers = build_headers(w, t, event, job_id, own)) || !(t->h = curl_easy_init())) {
        transfer_free(t);
        return -1;
    }
    curl_easy_setopt(t->h, CURLOPT_URL, t->url);
    curl_easy_setopt(t->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->h, CURLOPT_POST, 1L);
    curl_easy_setopt(t->h, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(t->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(t->body));
    curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->h, CURLOPT_TIMEOUT_MS, (long)w->c->webhook_timeout);
    curl_easy_setopt(t->h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(t->h, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(t->h, CURLOPT_PRIVATE, t);
    for (t->slot = 0; t->slot < WH_INFLIGHT && w->live[t->slot]; t->slot++)
        ;
    if (t->slot == WH_INFLIGHT || curl_multi_add_handle(w->multi, t->h) != CURLM_OK) {
        transfer_free(t);
        return -1;
    }
    w->live[t->slot] = t;
    w->inflight++;
    log_debug("webhooks: POST %s (delivery %s, attempt %d)", t->url, t->id, t->attempts + 1);
    return 0;
}

/* record runs wh_result.lua for one attempt and logs what became of it. */
static void
record(struct webhook *w, const char *q, const char *id, const char *url,
       const char *outcome, const char *error, long http_status, int attempts)
{
    char base[160], now_s[24], code_s[24] = "", max_s[16], delay_s[24], keep_ok[24],
         keep_fail[24];
    const char *argv[10];
    redisReply *r;

    snprintf(base, sizeof base, "%s:{%s}", w->c->prefix, q);
    snprintf(now_s, sizeof now_s, "%" PRId64, now_ms());
    if (http_status > 0)
        snprintf(code_s, sizeof code_s, "%ld", http_status);
    snprintf(max_s, sizeof max_s, "%d", w->c->webhook_attempts);
    snprintf(delay_s, sizeof delay_s, "%" PRId64,
             webhook_retry_delay(w->c->webhook_backoff, attempts));
    snprintf(keep_ok, sizeof keep_ok, "%" PRId64, w->c->keep_completed.age);
    snprintf(keep_fail, sizeof keep_fail, "%" PRId64, w->c->keep_failed.age);
    argv[0] = base;
    argv[1] = now_s;
    argv[2] = id;
    argv[3] = outcome;
    argv[4] = error;
    argv[5] = code_s;
    argv[6] = max_s;
    argv[7] = delay_s;
    argv[8] = keep_ok;
    argv[9] = keep_fail;
    r = store_eval(w->st, S_WH_RESULT, 1, 10, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        /* The claim runs out and the delivery is tried again. */
        log_warn("webhooks: cannot record delivery %s: %s", id,
                 r && r->type == REDIS_REPLY_ERROR ? r->str : w->st->err);
    } else if (strcmp(r->element[0]->str, "failed") == 0) {
        log_warn("webhooks: delivery %s to %s failed after %lld attempts: %s", id, url,
                 r->element[1]->integer, error);
    } else if (strcmp(r->element[0]->str, "pending") == 0) {
        log_debug("webhooks: delivery %s to %s: %s; retry in %s ms", id, url, error, delay_s);
    }
    if (r)
        freeReplyObject(r);
}

/* finished classifies a completed transfer and records it. */
static void
finished(struct webhook *w, struct transfer *t, CURLcode res)
{
    long code = 0;
    char error[CURL_ERROR_SIZE + 64] = "";
    const char *outcome;

    curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &code);
    if (res != CURLE_OK) {
        /* Timeouts and connection errors: the receiver may come back. */
        outcome = "retry";
        if (res == CURLE_OPERATION_TIMEDOUT)
            snprintf(error, sizeof error, "timeout after %" PRId64 " ms", w->c->webhook_timeout);
        else
            snprintf(error, sizeof error, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(res));
        code = 0;
    } else if (code >= 200 && code < 300) {
        outcome = "ok";
    } else if (code >= 500 || code == 408 || code == 429) {
        outcome = "retry";
        snprintf(error, sizeof error, "HTTP %ld", code);
    } else {
        /* Any other answer (4xx, or a redirect, which is not followed)
         * will not change by asking again. */
        outcome = "fail";
        snprintf(error, sizeof error, "HTTP %ld%s", code,
                 code >= 300 && code < 400 ? " (redirects are not followed)" : "");
    }
    record(w, t->queue, t->id, t->url, outcome, error, code, t->attempts + 1);
}

/* collect handles every transfer that ended. */
static void
collect(struct webhook *w)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(w->multi, &left))) {
        struct transfer *t = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(w->multi, m->easy_handle);
        if (t) {
            w->live[t->slot] = NULL;
            w->inflight--;
            finished(w, t, m->data.result);
            transfer_free(t);
        }
    }
}

/* claim_due claims what is due in every queue, up to the free slots: one
 * pipeline of wh_claim.lua calls, read whole before anything else is sent
 * on the connection. */
static void
claim_due(struct webhook *w)
{
    char now_s[24], claim_s[24], max_s[16], base[160];
    redisReply **replies;
    int appended = 0, got = 0;

    if (w->inflight >= WH_INFLIGHT || w->nqueues == 0)
        return;
    snprintf(now_s, sizeof now_s, "%" PRId64, now_ms());
    snprintf(claim_s, sizeof claim_s, "%" PRId64, w->c->webhook_timeout + WH_CLAIM_MARGIN);
    snprintf(max_s, sizeof max_s, "%d", WH_INFLIGHT - w->inflight);
    for (int i = 0; i < w->nqueues; i++) {
        const char *argv[4] = { base, now_s, max_s, claim_s };
        snprintf(base, sizeof base, "%s:{%s}", w->c->prefix, w->queues[i]);
        if (store_append_eval(w->st, S_WH_CLAIM, 1, 4, argv, NULL) < 0)
            break;
        appended++;
    }
    replies = xcalloc((size_t)appended + 1, sizeof *replies);
    while (got < appended && (replies[got] = store_get_reply(w->st)))
        got++;
    for (int i = 0; i < got; i++) {
        redisReply *r = replies[i];
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && w->st->ctx) {
            /* Redis lost its scripts (restart, flush): reconnecting loads
             * them again. */
            redisFree(w->st->ctx);
            w->st->ctx = NULL;
            w->st->next_try = 0;
        }
        for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements; k++) {
            const redisReply *row = r->element[k];
            if (start_transfer(w, w->queues[i], row) < 0 && row->type == REDIS_REPLY_ARRAY &&
                row->elements > 0 && row->element[0]->type == REDIS_REPLY_STRING && w->st->ctx)
                record(w, w->queues[i], row->element[0]->str, "", "fail",
                       "cannot build the request", 0, 1);
        }
        freeReplyObject(r);
    }
    free(replies);
}

static void
refresh_queues(struct webhook *w)
{
    char **names = NULL;
    int n = queue_names(w->st, w->c->prefix, &names);

    if (n < 0)
        return;
    queue_names_free(w->queues, w->nqueues);
    w->queues = names;
    w->nqueues = n;
}

/* release hands the transfers still under way back to the outbox, due at
 * once: whichever process is up sends them. */
static void
release_all(struct webhook *w)
{
    for (int i = 0; i < WH_INFLIGHT; i++) {
        struct transfer *t = w->live[i];
        redisReply *r;
        if (!t)
            continue;
        curl_multi_remove_handle(w->multi, t->h);
        r = store_command(w->st, "ZADD %s:{%s}:outbox XX %" PRId64 " %s", w->c->prefix,
                          t->queue, now_ms(), t->id);
        if (r)
            freeReplyObject(r);
        transfer_free(t);
        w->live[i] = NULL;
    }
    w->inflight = 0;
}

static void *
sender_main(void *arg)
{
    struct webhook *w = arg;
    int64_t next_refresh = 0, next_claim = 0, stop_at = 0;
    int running = 0;

    for (;;) {
        int64_t now = mono_ms();
        if (stopping(w)) {
            /* Let what is under way finish, briefly; take nothing new. */
            if (!stop_at)
                stop_at = now + WH_STOP_GRACE;
            if (w->inflight == 0 || now >= stop_at)
                break;
        } else if (store_ready(w->st) == 0) {
            if (!w->keylen)
                load_secret(w);
            if (now >= next_refresh) {
                refresh_queues(w);
                next_refresh = now + WH_REFRESH_MS;
            }
            if (now >= next_claim) {
                if (subs_dispatch(w->subs, w->st, w->queues, w->nqueues) < 0)
                    log_debug("webhooks: subscriptions: %s", w->st->err);
                if (w->keylen && w->st->ctx)
                    claim_due(w);
                next_claim = now + WH_TICK_MS;
            }
        }
        curl_multi_perform(w->multi, &running);
        collect(w);
        curl_multi_poll(w->multi, NULL, 0, WH_TICK_MS, NULL);
    }
    if (w->inflight > 0)
        release_all(w);
    return NULL;
}

/* consumer_name is "<host>:<pid>": unique per process in a consumer group. */
static void
consumer_name(char *out, size_t n)
{
    char host[128] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(out, n, "%s:%ld", host, (long)getpid());
}

struct webhook *
webhook_start(const struct config *c, char *err, size_t errlen)
{
    struct webhook *w = xcalloc(1, sizeof *w);
    char consumer[200];

    w->c = c;
    if (c->webhook_secret) {
        if ((w->keylen = webhook_secret_decode(c->webhook_secret, w->key)) < 0) {
            snprintf(err, errlen, "auth.webhook_secret must be whsec_<base64> (as "
                     "Standard Webhooks secrets are)");
            free(w);
            return NULL;
        }
        log_info("webhook secret: from auth.webhook_secret");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!(w->st = store_open(c->redis, err, errlen)) || !(w->multi = curl_multi_init()))
        goto fail;
    /* Learn the shared secret now, so that it is logged at start. */
    if (!w->keylen && store_ready(w->st) == 0)
        load_secret(w);
    consumer_name(consumer, sizeof consumer);
    w->subs = subs_new(c, consumer);
    pthread_mutex_init(&w->mu, NULL);
    if (pthread_create(&w->thread, NULL, sender_main, w) != 0) {
        snprintf(err, errlen, "cannot start the webhook sender thread");
        pthread_mutex_destroy(&w->mu);
        subs_free(w->subs);
        goto fail;
    }
    return w;
fail:
    if (w->multi)
        curl_multi_cleanup(w->multi);
    store_close(w->st);
    free(w);
    return NULL;
}

void
webhook_stop(struct webhook *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    curl_multi_cleanup(w->multi);
    subs_free(w->subs);
    queue_names_free(w->queues, w->nqueues);
    store_close(w->st);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
