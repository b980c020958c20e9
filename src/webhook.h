/* webhook.h — webhooks: a durable outbox in Redis and the sender thread
 * that delivers it, signed the Standard Webhooks way.
 *
 * A delivery is written by the same atomic script as the transition it
 * reports (lua/complete.lua, fail.lua, reclaim.lua, progress.lua for a
 * job's own `webhooks`; lua/wh_fanout.lua for subscriptions), so a crash
 * between the job finishing and the POST loses nothing.  Every jqrun
 * process that runs `run`, `server` or `worker` has one sender thread: it
 * claims due deliveries (lua/wh_claim.lua: the claim moves the due time
 * forward, so two processes never send one delivery at once), posts them
 * with libcurl multi (never blocking a worker) and records the outcome
 * (lua/wh_result.lua): 2xx delivered; 5xx, 408, 429, timeouts and
 * connection errors retried after backoff × 4^(n-1) ± 20 % (at most an
 * hour); any other answer failed for good.
 *
 * Keys (P = prefix, {q} the queue's hash tag):
 *   P:{q}:wh:<id>    hash  one delivery: id, event, url, headers (JSON),
 *                          body, jobId, subscription?, attempts, status
 *                          (pending|delivered|failed), lastError,
 *                          responseStatus, createdAt, updatedAt,
 *                          deliveredAt; expires once settled (retention)
 *   P:{q}:outbox     zset  pending delivery ids by due time (ms)
 *   P:webhook_secret       the generated signing secret, when the config
 *                          names none (SET NX: every process shares it)
 * A job lists its last 50 delivery ids in its hash field `whIds`.
 *
 * Signature: webhook-id (the delivery id, the same on every retry),
 * webhook-timestamp (unix seconds of this attempt) and webhook-signature
 * "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", key being the base64
 * part of the secret "whsec_<base64>". */
#ifndef JQ_WEBHOOK_H
#define JQ_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "store.h"

#define WEBHOOK_KEY_MAX 256      /* bytes of a decoded secret */
#define WEBHOOK_SECRET_MAX 400   /* characters of "whsec_..." */
#define WEBHOOK_SIG_MAX 64       /* "v1," + base64 of 32 bytes + NUL */

/* webhook_secret_decode reads "whsec_<base64>" (or bare base64, as the
 * Standard Webhooks libraries accept) into key[WEBHOOK_KEY_MAX].  Returns
 * the key length (> 0), or -1 when the text is not such a secret. */
int webhook_secret_decode(const char *secret, unsigned char *key);

/* webhook_secret_new writes a fresh "whsec_" + base64 of 24 random bytes
 * into out[WEBHOOK_SECRET_MAX].  0, or -1 when the system RNG fails. */
int webhook_secret_new(char *out);

/* webhook_secret_shared returns the secret every process shares when the
 * config names none: P:webhook_secret, created with SET NX by whichever
 * process comes first.  0 with out[WEBHOOK_SECRET_MAX] filled, or -1 when
 * Redis cannot be reached (st->err says why). */
int webhook_secret_shared(struct store *st, const char *prefix, char *out);

/* webhook_sign writes "v1,<base64 HMAC-SHA256(key, id.ts.body)>" into
 * out[WEBHOOK_SIG_MAX].  0, or -1 when OpenSSL fails. */
int webhook_sign(const unsigned char *key, size_t keylen, const char *id, int64_t ts,
                 const char *body, size_t bodylen, char *out);

/* webhook_retry_delay is the wait (ms) after failed attempt number
 * `attempt` (1-based): base × 4^(attempt-1), at most an hour, then
 * scattered by ± 20 % so that receivers coming back are not stampeded. */
int64_t webhook_retry_delay(int64_t base, int attempt);

/* webhook_deliveries reads the delivery records listed in a job's `whIds`
 * (space-separated) into a new JSON array of {id, event, url, status,
 * attempts, lastError, responseStatus, createdAt, updatedAt,
 * deliveredAt}; records already expired are left out.  NULL only when
 * Redis failed mid-way. */
json_t *webhook_deliveries(struct store *st, const char *prefix, const char *q,
                           const char *ids);

struct webhook;

/* webhook_start checks the signing secret (auth.webhook_secret, else the
 * shared generated one, logged once as "webhook secret: whsec_...") and
 * starts the sender thread, which also dispatches subscription events (see
 * subscription.h).  c->redis must be the resolved URL; c must outlive the
 * sender.  NULL with err when the configured secret is malformed or the
 * thread cannot start; Redis being down is not an error (the thread waits
 * for it). */
struct webhook *webhook_start(const struct config *c, char *err, size_t errlen);

/* webhook_stop lets transfers under way finish for up to two seconds,
 * hands the rest back to the outbox (due at once, for any process) and
 * frees.  NULL is fine. */
void webhook_stop(struct webhook *w);

#endif
