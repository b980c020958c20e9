/* embed.h — the embedded Redis: when the config names no Redis, jqrun runs
 * redis-server itself on a unix socket under data_dir, AOF on. */
#ifndef JQ_EMBED_H
#define JQ_EMBED_H

#include <stddef.h>

/* embed_redis makes sure a redis-server serves data_dir/redis.sock — reusing
 * one already there, else starting one that outlives this process (so the
 * next invocation finds the same data) — and writes "unix://<abs path>"
 * into url.  0, or -1 with err set. */
int embed_redis(const char *data_dir, char *url, size_t urllen, char *err, size_t errlen);

#endif
