/* subscription.h — event subscriptions (seed 002): POST /subscriptions
 * {name, endpoint, filters {queues, types, metadata}, events, headers}
 * asks for every matching job event to be posted to endpoint, through the
 * webhook outbox (same signing, same retries; see webhook.h).
 *
 * Keys (P = prefix):
 *   P:subscriptions   hash  id -> JSON {id, name, endpoint, filters, events,
 *                           headers, createdAt (ms), app}
 *   P:{q}:events      the queue's event stream, read by the consumer group
 *                     "jqrun:subscriptions": every jqrun process's sender
 *                     thread is one consumer, so each event is handled
 *                     once; entries of a consumer that died are taken over
 *                     after a minute (XAUTOCLAIM).  lua/wh_fanout.lua writes
 *                     an event's deliveries and acknowledges it atomically.
 *
 * A subscription sees the events that happen after it was created, of the
 * queues its application owns (every queue for the master key or an open
 * API).  Events: waiting, delayed, processing, progress, completed,
 * failed, canceled, "created" (a job was enqueued) and "*"; seed 002's
 * "active" means processing. */
#ifndef JQ_SUBSCRIPTION_H
#define JQ_SUBSCRIPTION_H

#include <jansson.h>

#include "config.h"
#include "http.h"
#include "store.h"

#define SUBS_GROUP "jqrun:subscriptions"

/* The routes.  app is the caller's application ("" or NULL: the master
 * key or an open API, which sees every subscription); st NULL answers 503.
 * POST answers 201 {id, name, endpoint, filters, events, headers,
 * createdAt} or 400 naming the bad field; GET {subscriptions, count};
 * DELETE 200 {message, subscription} or 404. */
enum MHD_Result subs_post(struct http_req *r, struct store *st, const char *prefix,
                          const char *app);
enum MHD_Result subs_list(struct http_req *r, struct store *st, const char *prefix,
                          const char *app);
enum MHD_Result subs_delete(struct http_req *r, struct store *st, const char *prefix,
                            const char *app, const char *id);

/* subs_validate checks a POST /subscriptions body and returns the record to
 * store (without id, createdAt and app), or NULL with err naming the field,
 * e.g. "'endpoint' must be an http:// or https:// URL". */
json_t *subs_validate(json_t *body, char *err, size_t errlen);

/* subs_match tells (1/0) whether event (a stream entry as {jobId, status,
 * type, ts, created?}) of queue q (the name the subscription's
 * application knows) passes sub's queue, type and event filters and
 * happened after its creation.  Metadata is checked by subs_match_meta. */
int subs_match(json_t *sub, const char *q, json_t *event);

/* subs_match_meta tells (1/0) whether job metadata (an object, or NULL)
 * holds every K: V of sub's metadata filter, values compared as text. */
int subs_match_meta(json_t *sub, json_t *metadata);

struct subs;

/* subs_new makes the dispatcher state of one sender thread; consumer
 * names it in the consumer groups (unique per process). */
struct subs *subs_new(const struct config *c, const char *consumer);
void subs_free(struct subs *s);

/* subs_dispatch reloads the subscriptions (at most once a second), then
 * moves the new events of queues[0..n) through them into the outbox.
 * Returns the number of deliveries queued, or -1 when Redis failed. */
int subs_dispatch(struct subs *s, struct store *st, char **queues, int n);

#endif
