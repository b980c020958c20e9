/* ut.h — a tiny unit-test harness (after hiredis's test()/test_cond()).
 * Each check prints one line; ut_done() prints "N passed, N failed" and
 * returns the exit status. */
#ifndef JQ_UT_H
#define JQ_UT_H

#include <stdio.h>
#include <string.h>

static int ut_pass, ut_fail;

#define CHECK(cond, ...) do {                                              \
    if (cond) { ut_pass++; }                                               \
    else { ut_fail++; printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
           printf(__VA_ARGS__); printf("\n"); }                            \
} while (0)

#define CHECK_STR(got, want) do {                                          \
    const char *g_ = (got), *w_ = (want);                                  \
    CHECK(g_ && strcmp(g_, w_) == 0, "got '%s', want '%s'", g_ ? g_ : "(null)", w_); \
} while (0)

#define CHECK_CONTAINS(got, part) do {                                     \
    const char *g_ = (got), *p_ = (part);                                  \
    CHECK(g_ && strstr(g_, p_), "'%s' does not contain '%s'", g_ ? g_ : "(null)", p_); \
} while (0)

static inline int
ut_done(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, ut_pass, ut_fail);
    return ut_fail ? 1 : 0;
}

#endif
