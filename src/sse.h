/* sse.h — GET /events?queue=&type=&status= as Server-Sent Events.
 *
 * Each client gets a thread and a Redis connection of its own that follow
 * the event streams (events.h); the HTTP side is a libmicrohttpd callback
 * response whose connection is suspended while there is nothing to send,
 * so no pool thread ever waits on Redis for it.  Every event is one
 * message: "id: <stream entry id>" and "data: <event JSON>"; a client that
 * reconnects with Last-Event-ID (or ?since=ID) resumes after that event.
 * A comment line is sent every 15 s (less when the connection timeout is
 * shorter) so proxies and the server keep the connection. */
#ifndef JQ_SSE_H
#define JQ_SSE_H

#include "config.h"
#include "http.h"

#define SSE_MAX_CLIENTS 64

struct sse_hub;

/* sse_hub_new makes the registry of streaming clients for one API.  c must
 * outlive it.  Never NULL. */
struct sse_hub *sse_hub_new(const struct config *c);

/* sse_hub_stop ends every stream (their clients see the stream close and
 * reconnect elsewhere) and waits for the client threads; call it before
 * the HTTP server stops.  Then frees.  NULL is fine. */
void sse_hub_stop(struct sse_hub *h);

/* sse_serve answers GET /events: 400 naming a bad parameter, 503 when
 * SSE_MAX_CLIENTS streams are open or the server is stopping, else a
 * text/event-stream.  app is the caller's application ("" = all queues). */
enum MHD_Result sse_serve(struct sse_hub *h, struct http_req *r, const char *app);

#endif
