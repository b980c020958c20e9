/* api.h — the REST API of DESIGN.md on libmicrohttpd. */
#ifndef JQ_API_H
#define JQ_API_H

struct config;
struct handlers;
struct api;

/* api_start listens on c->listen with libmicrohttpd's own thread pool
 * (epoll), each pool thread lazily opening its own Redis store (c->redis is
 * the resolved URL: the embedded server's socket is already filled in).
 * handlers may be NULL (then GET /handlers lists nothing).  NULL with err
 * when the address cannot be bound. */
struct api *api_start(const struct config *c, struct handlers *handlers,
                      char *err, size_t errlen);
/* api_stop stops accepting, finishes in-flight requests and frees. */
void api_stop(struct api *a);

#endif
