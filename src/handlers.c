/* handlers.c — the registry of handlers/<type>.lua.
 *
 * The registry holds, per type, the source bytes of the last version that
 * compiled (an immutable, refcounted handler_src) and the last compile error.
 * It never runs handler code: each worker's runtime loads the bytes into its
 * own lua_State (runtime.c).  A file that stops compiling keeps its last good
 * version serving; a deleted file removes its type.
 *
 * Locking: `lock` guards the entry array, every entry's src/error/loaded_at
 * and every handler_src's refs.  `scan_lock` serialises rescans (the watcher
 * thread and handlers_rescan callers); the per-file stat fields are only
 * touched by the scanner, under scan_lock.  File I/O and compiling happen
 * outside `lock` so workers calling handlers_get never wait on the disk. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "handlers.h"
#include "log.h"
#include "util.h"

#define DEBOUNCE_MS   50   /* editors emit bursts of events for one save */
#define POLL_MS       1000 /* rescan period while the directory is not watched */

/* entry is one handlers/<type>.lua the registry knows about. */
struct entry {
    char               *type;
    char               *path;
    struct handler_src *src;       /* last good version, or NULL */
    char               *error;     /* last compile error, or NULL when fine */
    int64_t             loaded_at; /* ms since epoch when src was published */
    /* The file as last read, to skip unchanged files (scanner only): */
    struct timespec     mtime;
    off_t               size;
    ino_t               ino;
    uint64_t            hash;      /* FNV-1a of the bytes */
    int                 seen;      /* found by the current rescan */
};

struct handlers {
    char           *dir;
    pthread_mutex_t lock;
    pthread_mutex_t scan_lock;
    struct entry   *entries;    /* sorted by type */
    size_t          n, cap;
    int             dir_missing;/* warned that dir is unreadable (scanner only) */
    pthread_t       watcher;
    int             watching;
    int             stop[2];    /* pipe: a byte here stops the watcher */
    int             ifd;        /* inotify, or -1 (then the watcher polls) */
    int             wd;         /* the directory's watch, or -1 (watcher only) */
};

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | \
                    IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

/* Generations are global so that a runtime can never mistake one registry's
 * version for another's. */
static uint64_t generation_counter;

static void
src_free(struct handler_src *s)
{
    free(s->type);
    free(s->path);
    free(s->code);
    free(s);
}

/* src_unref_locked drops one reference; the caller holds h->lock. */
static void
src_unref_locked(struct handler_src *s)
{
    if (s && --s->refs == 0)
        src_free(s);
}

static void
entry_free_locked(struct entry *e)
{
    src_unref_locked(e->src);
    free(e->type);
    free(e->path);
    free(e->error);
}

/* find_index returns the position of type in the sorted entries, or the
 * position where it would be inserted (with *found = 0). */
static size_t
find_index(const struct handlers *h, const char *type, int *found)
{
    size_t lo = 0, hi = h->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(h->entries[mid].type, type);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static struct entry *
find_entry(const struct handlers *h, const char *type)
{
    int found;
    size_t i = find_index(h, type, &found);
    return found ? &h->entries[i] : NULL;
}

/* add_entry inserts an empty entry for type (scanner, under h->lock). */
static struct entry *
add_entry_locked(struct handlers *h, const char *type, const char *path)
{
    int found;
    size_t i = find_index(h, type, &found);

    if (found)
        return &h->entries[i];
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->entries = xrealloc(h->entries, h->cap * sizeof *h->entries);
    }
    memmove(&h->entries[i + 1], &h->entries[i], (h->n - i) * sizeof *h->entries);
    h->n++;
    memset(&h->entries[i], 0, sizeof h->entries[i]);
    h->entries[i].type = xstrdup(type);
    h->entries[i].path = xstrdup(path);
    return &h->entries[i];
}

/* handler_type returns the type for a directory entry name ("echo" for
 * "echo.lua") in out[129], or 0 when the name is not a handler file.
 * Dot files are skipped: editors keep their temporaries there. */
static int
handler_type(const char *name, char out[129])
{
    size_t n = strlen(name);

    if (name[0] == '.' || n < 5 || n - 4 > 128 || strcmp(name + n - 4, ".lua") != 0)
        return 0;
    memcpy(out, name, n - 4);
    out[n - 4] = '\0';
    return valid_name(out);
}

/* same_file tells whether the file is unchanged since it was last read,
 * going by its stat.  A file modified in the last two seconds is never
 * trusted to be unchanged: on a filesystem with coarse timestamps, a second
 * write within the same tick keeps mtime and size (git's "racy" files). */
static int
same_file(const struct entry *e, const struct stat *st)
{
    return e->size == st->st_size && e->ino == st->st_ino &&
           e->mtime.tv_sec == st->st_mtim.tv_sec &&
           e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           st->st_mtim.tv_sec < time(NULL) - 2;
}

static uint64_t
fnv1a(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* compile checks that code is a valid Lua chunk without running it.
 * Returns NULL, or the error ("handlers/x.lua:3: ...") malloc'd. */
static char *
compile(lua_State **L, const char *path, const char *code, size_t len)
{
    struct strbuf chunkname = {0};
    char *err = NULL;

    if (!*L && !(*L = luaL_newstate()))
        return xstrdup("cannot create a Lua state to compile handlers");
    sb_printf(&chunkname, "@%s", path);
    if (luaL_loadbufferx(*L, code, len, chunkname.buf, "t") != LUA_OK) {
        const char *msg = lua_tostring(*L, -1);
        err = xstrdup(msg ? msg : "unknown compile error");
    }
    lua_settop(*L, 0);
    sb_free(&chunkname);
    return err;
}

static struct handler_src *
src_new(const char *type, const char *path, char *code, size_t len)
{
    struct handler_src *s = xcalloc(1, sizeof *s);

    s->type = xstrdup(type);
    s->path = xstrdup(path);
    s->code = code;
    s->len = len;
    s->generation = __atomic_add_fetch(&generation_counter, 1, __ATOMIC_RELAXED);
    s->refs = 1; /* the registry's */
    return s;
}

/* publish_good makes code the current version of type, unless it is the
 * version already serving (a touch, or a rewrite with the same bytes).
 * Takes ownership of code. */
static void
publish_good(struct handlers *h, const char *type, const char *path, char *code,
             size_t len)
{
    struct handler_src *s = NULL, *old = NULL;
    struct entry *e;

    pthread_mutex_lock(&h->lock);
    e = find_entry(h, type);
    if (e->src && e->src->len == len && memcmp(e->src->code, code, len) == 0) {
        free(code);
    } else {
        s = src_new(type, path, code, len);
        old = e->src;
        e->src = s;
        e->loaded_at = now_ms();
    }
    if (e->error && !s)
        log_info("handler %s: %s compiles again", type, path);
    free(e->error);
    e->error = NULL;
    src_unref_locked(old);
    pthread_mutex_unlock(&h->lock);
    if (s)
        log_info("handler %s: loaded %s (generation %llu)", type, path,
                 (unsigned long long)s->generation);
}

static void
publish_error(struct handlers *h, const char *type, char *err)
{
    struct entry *e;
    int serving;

    pthread_mutex_lock(&h->lock);
    e = find_entry(h, type);
    free(e->error);
    e->error = err;
    serving = e->src != NULL;
    pthread_mutex_unlock(&h->lock);
    log_warn("handler %s: %s (%s)", type, err,
             serving ? "the last good version keeps serving" : "no good version to serve");
}

/* scan_file (re)reads one handler file whose stat changed and publishes the
 * new version or its compile error. */
static void
scan_file(struct handlers *h, const char *type, const char *path,
          const struct stat *st, lua_State **L)
{
    struct entry *e;
    size_t len = 0;
    uint64_t hash;
    char *code, *err;
    int known;

    code = read_file(path, &len);
    if (!code) {
        /* Gone between readdir and open: the next rescan removes it. */
        log_debug("handler %s: cannot read %s: %s", type, path, strerror(errno));
        return;
    }
    hash = fnv1a(code, len);
    pthread_mutex_lock(&h->lock);
    known = find_entry(h, type) != NULL;
    e = add_entry_locked(h, type, path);
    e->mtime = st->st_mtim;
    e->size = st->st_size;
    e->ino = st->st_ino;
    e->seen = 1;
    if (known && e->hash == hash) {
        /* Touched or rewritten with the same bytes: nothing to do. */
        pthread_mutex_unlock(&h->lock);
        free(code);
        return;
    }
    e->hash = hash;
    pthread_mutex_unlock(&h->lock);

    err = compile(L, path, code, len);
    if (err) {
        free(code);
        publish_error(h, type, err);
    } else {
        publish_good(h, type, path, code, len);
    }
}

/* remove_unseen drops the types whose files were not found by this scan. */
static void
remove_unseen(struct handlers *h)
{
    size_t i = 0;

    pthread_mutex_lock(&h->lock);
    while (i < h->n) {
        struct entry *e = &h->entries[i];
        if (e->seen) {
            i++;
            continue;
        }
        log_info("handler %s: %s removed", e->type, e->path);
        entry_free_locked(e);
        memmove(e, e + 1, (h->n - i - 1) * sizeof *e);
        h->n--;
    }
    pthread_mutex_unlock(&h->lock);
}

/* handlers_rescan re-reads dir: new and changed files are compiled and
 * published (or their error recorded), deleted ones are dropped. */
void
handlers_rescan(struct handlers *h)
{
    lua_State *L = NULL;
    struct dirent *de;
    DIR *d;

    pthread_mutex_lock(&h->scan_lock);
    d = opendir(h->dir);
    if (!d) {
        /* Keep serving what we have: a directory that is briefly missing
         * (being replaced, say) must not fail every job. */
        if (!h->dir_missing)
            log_warn("handlers: cannot read %s: %s", h->dir, strerror(errno));
        h->dir_missing = 1;
        pthread_mutex_unlock(&h->scan_lock);
        return;
    }
    h->dir_missing = 0;
    for (size_t i = 0; i < h->n; i++)
        h->entries[i].seen = 0;
    while ((de = readdir(d))) {
        struct strbuf path = {0};
        char type[129];
        struct stat st;
        struct entry *e;

        if (!handler_type(de->d_name, type))
            continue;
        sb_printf(&path, "%s/%s", h->dir, de->d_name);
        if (stat(path.buf, &st) == 0 && S_ISREG(st.st_mode)) {
            e = find_entry(h, type);
            if (e && same_file(e, &st))
                e->seen = 1;
            else
                scan_file(h, type, path.buf, &st, &L);
        }
        sb_free(&path);
    }
    closedir(d);
    remove_unseen(h);
    if (L)
        lua_close(L);
    pthread_mutex_unlock(&h->scan_lock);
}

/* handlers_open makes the registry of dir and scans it once. */
struct handlers *
handlers_open(const char *dir, char *err, size_t errlen)
{
    struct handlers *h;
    size_t n = strlen(dir);
    DIR *d = opendir(dir);

    if (!d) {
        snprintf(err, errlen, "cannot read handler directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    closedir(d);
    h = xcalloc(1, sizeof *h);
    h->dir = xstrdup(dir);
    while (n > 1 && h->dir[n - 1] == '/')
        h->dir[--n] = '\0';
    h->stop[0] = h->stop[1] = -1;
    h->ifd = h->wd = -1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->scan_lock, NULL);
    handlers_rescan(h);
    return h;
}

/* drain_events reads every pending inotify event.  Returns 1 when one of
 * them may concern a handler, and clears *wd when the watch is gone. */
static int
drain_events(int ifd, int *wd)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    int relevant = 0;
    ssize_t n;

    while ((n = read(ifd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW))
                relevant = 1;
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
                /* Our path no longer names the watched directory. */
                inotify_rm_watch(ifd, *wd);
                *wd = -1;
            } else if (ev->mask & IN_IGNORED) {
                *wd = -1;
            } else if (ev->len && strstr(ev->name, ".lua")) {
                relevant = 1;
            }
            p += sizeof *ev + ev->len;
        }
    }
    return relevant;
}

/* watch_main waits for inotify events (or polls when the directory is not
 * watched), and rescans DEBOUNCE_MS after the first event of a burst. */
static void *
watch_main(void *arg)
{
    struct handlers *h = arg;
    int ifd = h->ifd, wd = h->wd;
    int64_t due = 0, next_poll = mono_ms() + POLL_MS;

    for (;;) {
        struct pollfd pfd[2] = { { h->stop[0], POLLIN, 0 }, { ifd, POLLIN, 0 } };
        int64_t now = mono_ms(), timeout = -1;

        if (ifd >= 0 && wd < 0 && (wd = inotify_add_watch(ifd, h->dir, WATCH_MASK)) >= 0)
            due = now + DEBOUNCE_MS; /* catch what changed while unwatched */
        if (wd < 0 && now >= next_poll) {
            handlers_rescan(h);
            next_poll = now + POLL_MS;
        }
        if (due)
            timeout = due > now ? due - now : 0;
        else if (wd < 0)
            timeout = next_poll - now;
        if (poll(pfd, ifd >= 0 ? 2 : 1, (int)timeout) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents)
            break;
        if (ifd >= 0 && pfd[1].revents && drain_events(ifd, &wd) && !due)
            due = mono_ms() + DEBOUNCE_MS;
        if (due && mono_ms() >= due) {
            due = 0;
            handlers_rescan(h);
        }
    }
    return NULL;
}

/* handlers_watch starts the watcher thread.  0, or -1 when no thread. */
int
handlers_watch(struct handlers *h)
{
    if (h->watching)
        return 0;
    if (pipe2(h->stop, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("handlers: pipe: %s", strerror(errno));
        return -1;
    }
    /* Watch before returning, then rescan: a change made right after
     * handlers_watch returns must not be missed. */
    h->wd = -1;
    if ((h->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
        (h->wd = inotify_add_watch(h->ifd, h->dir, WATCH_MASK)) < 0)
        log_warn("handlers: cannot watch %s (%s); polling it every %d ms", h->dir,
                 strerror(errno), POLL_MS);
    handlers_rescan(h);
    if (pthread_create(&h->watcher, NULL, watch_main, h) != 0) {
        log_error("handlers: cannot start the watcher thread");
        close(h->stop[0]);
        close(h->stop[1]);
        h->stop[0] = h->stop[1] = -1;
        if (h->ifd >= 0)
            close(h->ifd);
        h->ifd = -1;
        return -1;
    }
    h->watching = 1;
    return 0;
}

/* handlers_close stops the watcher (promptly: it polls a stop pipe) and
 * frees the registry. */
void
handlers_close(struct handlers *h)
{
    if (!h)
        return;
    if (h->watching) {
        if (write(h->stop[1], "x", 1) < 0)
            log_warn("handlers: cannot stop the watcher: %s", strerror(errno));
        pthread_join(h->watcher, NULL);
    }
    if (h->stop[0] >= 0) {
        close(h->stop[0]);
        close(h->stop[1]);
    }
    if (h->ifd >= 0)
        close(h->ifd);
    /* Every runtime has released its references by now (runtime_run holds
     * one only while it loads a handler). */
    for (size_t i = 0; i < h->n; i++)
        entry_free_locked(&h->entries[i]);
    free(h->entries);
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_destroy(&h->scan_lock);
    free(h->dir);
    free(h);
}

/* handlers_get returns a new reference to type's last good source. */
struct handler_src *
handlers_get(struct handlers *h, const char *type)
{
    struct handler_src *s = NULL;
    struct entry *e;

    pthread_mutex_lock(&h->lock);
    e = find_entry(h, type);
    if (e && e->src) {
        s = e->src;
        s->refs++;
    }
    pthread_mutex_unlock(&h->lock);
    return s;
}

/* handlers_put releases a reference from handlers_get. */
void
handlers_put(struct handlers *h, struct handler_src *src)
{
    if (!src)
        return;
    pthread_mutex_lock(&h->lock);
    src_unref_locked(src);
    pthread_mutex_unlock(&h->lock);
}

/* error_string is a compile error as JSON.  json_string refuses invalid
 * UTF-8, and an error quoting binary junk must still show up. */
static json_t *
error_string(const char *err)
{
    json_t *j = json_string(err);
    return j ? j : json_string("does not compile (the message is not UTF-8)");
}

static json_t *
entry_info(const struct entry *e)
{
    json_t *o = json_object();
    char iso[32];

    json_object_set_new(o, "type", json_string(e->type));
    json_object_set_new(o, "path", json_string(e->path));
    if (e->src) {
        iso8601_format(e->loaded_at, iso);
        json_object_set_new(o, "loadedAt", json_string(iso));
        json_object_set_new(o, "generation", json_integer((json_int_t)e->src->generation));
    } else {
        json_object_set_new(o, "loadedAt", json_null());
        json_object_set_new(o, "generation", json_null());
    }
    json_object_set_new(o, "error", e->error ? error_string(e->error) : json_null());
    return o;
}

/* handlers_info describes every handler for GET /handlers. */
json_t *
handlers_info(struct handlers *h)
{
    json_t *a = json_array();

    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n; i++)
        json_array_append_new(a, entry_info(&h->entries[i]));
    pthread_mutex_unlock(&h->lock);
    return a;
}
