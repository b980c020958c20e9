/* util.c — time, ids, ISO-8601 and small string helpers. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "util.h"

int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sleep_ms(int64_t ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    if (ms <= 0)
        return;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

int
random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    if (n > sizeof b || RAND_bytes(b, (int)n) != 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}

int
uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    char *p = out;
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
    return 0;
}

int
is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return s[36] == '\0';
}

void
iso8601_format(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[96]; /* roomy enough for any int fields, so no truncation */
    if (ms < 0)
        ms = 0, t = 0;
    gmtime_r(&t, &tm);
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ms % 1000));
    snprintf(out, 32, "%.31s", buf);
}

/* digits reads exactly n decimal digits at *s, advancing it. -1 if absent. */
static int
digits(const char **s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**s))
            return -1;
        v = v * 10 + (*(*s)++ - '0');
    }
    return v;
}

int
iso8601_parse(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;

    if ((y = digits(&s, 4)) < 0 || *s++ != '-' || (mo = digits(&s, 2)) < 1 ||
        mo > 12 || *s++ != '-' || (d = digits(&s, 2)) < 1 || d > 31)
        return -1;
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        if ((h = digits(&s, 2)) < 0 || h > 23 || *s++ != ':' ||
            (mi = digits(&s, 2)) < 0 || mi > 59)
            return -1;
        if (*s == ':') {
            s++;
            if ((sec = digits(&s, 2)) < 0 || sec > 60)
                return -1;
            if (*s == '.') {
                int scale = 100;
                s++;
                if (!isdigit((unsigned char)*s))
                    return -1;
                for (; isdigit((unsigned char)*s); s++, scale /= 10)
                    frac += (*s - '0') * scale;
            }
        }
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s++ == '-' ? -1 : 1, oh, om;
            if ((oh = digits(&s, 2)) < 0 || oh > 23)
                return -1;
            if (*s == ':')
                s++;
            if ((om = digits(&s, 2)) < 0 || om > 59)
                return -1;
            off = sign * (oh * 60 + om);
        }
    }
    if (*s != '\0')
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *ms = ((int64_t)timegm(&tm) - (int64_t)off * 60) * 1000 + frac;
    return 0;
}

int
valid_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
            return 0;
    }
    return n >= 1 && n <= 128;
}

static void
oom(void)
{
    fputs("jqrun: out of memory\n", stderr);
    abort();
}

void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *
xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        oom();
    return p;
}

void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *
xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        oom();
    return p;
}

void
sb_append(struct strbuf *sb, const char *s, size_t n)
{
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 64;
        while (cap < sb->len + n + 1)
            cap *= 2;
        sb->buf = xrealloc(sb->buf, cap);
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void
sb_puts(struct strbuf *sb, const char *s)
{
    sb_append(sb, s, strlen(s));
}

void
sb_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        sb_append(sb, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_append(sb, big, (size_t)n);
    free(big);
}

void
sb_free(struct strbuf *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
}

char *
read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    struct strbuf sb = {0};
    char chunk[8192];
    size_t n;

    if (!f)
        return NULL;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_append(&sb, chunk, n);
    if (ferror(f)) {
        int e = errno;
        if (f != stdin)
            fclose(f);
        sb_free(&sb);
        errno = e;
        return NULL;
    }
    if (f != stdin)
        fclose(f);
    if (!sb.buf)
        sb_append(&sb, "", 0);
    if (len)
        *len = sb.len;
    return sb.buf;
}

json_t *
json_lossy(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    char *out;
    size_t o = 0;

    if (j)
        return j;
    out = xmalloc(n + 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3
                   : c >= 0xF0 && c < 0xF5 ? 4 : 0;
        /* jansson judges each candidate sequence (overlongs, surrogates). */
        if (c == 0 || len == 0 || i + len > n || (len > 1 && !(j = json_stringn(s + i, len)))) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (len > 1)
            json_decref(j);
        memcpy(out + o, s + i, len);
        o += len;
        i += len;
    }
    j = json_stringn(out, o);
    free(out);
    return j;
}
