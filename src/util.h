/* util.h — time, ids, ISO-8601 and small string helpers. */
#ifndef JQ_UTIL_H
#define JQ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* now_ms returns wall-clock time in milliseconds since the epoch. */
int64_t now_ms(void);
/* mono_ms returns a monotonic clock in milliseconds (for deadlines). */
int64_t mono_ms(void);
/* sleep_ms sleeps ms milliseconds (interrupted sleeps are resumed). */
void sleep_ms(int64_t ms);

/* uuid4 writes a random UUID v4 (36 chars + NUL) into out[37].
 * Returns 0, or -1 when the system RNG fails. */
int uuid4(char out[37]);
/* random_hex writes 2*n random hex digits + NUL into out. 0 or -1. */
int random_hex(char *out, size_t n);
/* is_uuid tells whether s is a canonical lower/upper-case UUID. */
int is_uuid(const char *s);

/* iso8601_format writes ms since epoch as "2023-10-27T10:00:00.000Z"
 * into out[32]. */
void iso8601_format(int64_t ms, char out[32]);
/* iso8601_parse reads "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]" into ms
 * since epoch.  Returns 0, or -1 when s is not such a date. */
int iso8601_parse(const char *s, int64_t *ms);

/* valid_name tells whether s matches [A-Za-z0-9._:-]{1,128}: the shape of
 * job types and queue names. */
int valid_name(const char *s);

/* xstrdup and xmalloc abort the process when memory is exhausted: an
 * allocation failure of a few bytes is not something jqrun recovers from. */
char *xstrdup(const char *s);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);

/* strbuf is a growable NUL-terminated byte string. */
struct strbuf {
    char  *buf;  /* NUL-terminated, NULL until the first append */
    size_t len;  /* bytes used, without the NUL */
    size_t cap;  /* bytes allocated */
};
void sb_append(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb_free(struct strbuf *sb);

/* json_lossy makes a JSON string (jansson, new reference) of arbitrary
 * bytes: as they are when they are UTF-8, else with each byte that does not
 * start a valid sequence turned into '?' — so a message that echoes a
 * request or a handler's bytes is shown, never dropped. */
struct json_t;
struct json_t *json_lossy(const char *s, size_t n);

/* read_file reads a whole file (path "-" is stdin) into a malloc'd
 * NUL-terminated buffer, its length in *len.  NULL with errno on failure. */
char *read_file(const char *path, size_t *len);

#endif
