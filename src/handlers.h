/* handlers.h — the registry of handlers/<type>.lua: the last good source of
 * each type, compiled once to check it, watched with inotify and swapped in
 * for the next job when the file changes. Thread-safe. */
#ifndef JQ_HANDLERS_H
#define JQ_HANDLERS_H

#include <stdint.h>
#include <jansson.h>

struct handlers;

/* handler_src is an immutable, refcounted snapshot of one handler file's
 * last good version. */
struct handler_src {
    char    *type;       /* "echo" for handlers/echo.lua */
    char    *path;       /* "handlers/echo.lua": the chunk name is "@" path */
    char    *code;       /* file contents */
    size_t   len;
    uint64_t generation; /* changes whenever a new good version is loaded */
    int      refs;       /* guarded by the registry's lock */
};

/* handlers_open scans dir and compiles every *.lua in it (logging errors).
 * NULL (with err) only if dir cannot be read at all. */
struct handlers *handlers_open(const char *dir, char *err, size_t errlen);
/* handlers_watch starts the inotify thread that reloads changed files
 * (within ~1 s: editors that write-then-rename are handled).  0 or -1. */
int handlers_watch(struct handlers *h);
/* handlers_close stops the watcher and frees the registry. */
void handlers_close(struct handlers *h);

/* handlers_get returns a new reference to the current source of type, or
 * NULL when no good version exists.  Release with handlers_put. */
struct handler_src *handlers_get(struct handlers *h, const char *type);
void handlers_put(struct handlers *h, struct handler_src *src);

/* handlers_info returns [{type, path, loadedAt (ISO), generation, error}]
 * for GET /handlers: error is the last compile error (null when fine). */
json_t *handlers_info(struct handlers *h);

/* handlers_rescan re-reads the directory now (what the watcher does on an
 * event); exposed for tests. */
void handlers_rescan(struct handlers *h);

#endif
