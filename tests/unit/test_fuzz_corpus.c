/* test_fuzz_corpus.c — replays the fuzzing corpus (tests/fuzz/corpus/) and
 * every input that once crashed a fuzzer (tests/fuzz/regressions/) through
 * the job and config fuzz targets, so `make test`, `make sanitize` and
 * `make valgrind` keep them fixed without clang.  A target aborts on any
 * broken promise; here each input must simply come back.  (The router
 * target compiles src/http.c into itself: tests/fuzz/run.sh replays it.)
 * Run from the repo root. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ut.h"

#define LLVMFuzzerTestOneInput fuzz_job_one
#define must must_job
#include "../fuzz/fuzz_job.c"
#undef LLVMFuzzerTestOneInput
#undef must
#define LLVMFuzzerTestOneInput fuzz_config_one
#define must must_config
#include "../fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#undef must

/* replay runs fn on every file of dir; returns how many it ran. */
static int
replay(const char *dir, int (*fn)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d))) {
        char path[1024];
        size_t len;
        char *buf;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!(buf = read_file(path, &len)))
            continue;
        CHECK(fn((const uint8_t *)buf, len) == 0, "%s", path);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

int
main(void)
{
    int n;

    n = replay("tests/fuzz/corpus/job", fuzz_job_one);
    CHECK(n >= 10, "job corpus has %d inputs", n);
    replay("tests/fuzz/regressions/job", fuzz_job_one);
    n = replay("tests/fuzz/corpus/config", fuzz_config_one);
    CHECK(n >= 5, "config corpus has %d inputs", n);
    replay("tests/fuzz/regressions/config", fuzz_config_one);
    return ut_done("test_fuzz_corpus");
}
