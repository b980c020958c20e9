/* fuzz_config.c — libFuzzer target for the config loader: any text is run
 * by config_load_string (Lua in an empty environment, bounded in steps and
 * memory).  A config it accepts must hold values in their documented
 * ranges; one it refuses must say why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
must(int cond)
{
    if (!cond)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = malloc(size + 1), err[512] = "";
    struct config c;

    memcpy(src, data, size);
    src[size] = '\0';
    if (config_load_string(&c, src, "fuzz.conf", err, sizeof err) == 0) {
        must(c.listen && c.data_dir && c.handlers && c.prefix && c.log_level);
        must(c.nqueues >= 0 && c.nqueues <= CONFIG_MAX_QUEUES); /* {} is allowed: a server only */
        for (int i = 0; i < c.nqueues; i++)
            must(c.queues[i].name && valid_name(c.queues[i].name) &&
                 c.queues[i].concurrency >= 1);
        must(c.lease > 0 && c.timeout > 0 && c.max_attempts >= 1);
        must(c.http_max_body > 0);
        config_free(&c);
    } else {
        must(err[0] != '\0');
    }
    free(src);
    return 0;
}
