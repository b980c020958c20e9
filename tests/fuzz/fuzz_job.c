/* fuzz_job.c — libFuzzer target for the job validator and the job renderer.
 *
 * The input is a POST /jobs body: it is parsed the way the API parses it
 * (jansson, duplicate keys refused) and validated by job_spec_from_json.
 * An accepted job must satisfy what DESIGN.md promises (name shapes,
 * priority range, a JSON object payload) and encode to JSON that the
 * enqueue script can decode.  The same bytes, split at newlines into
 * field/value pairs, are rendered by job_from_reply as if Redis had
 * answered them (a handler's error can hold any bytes): the answer must be
 * a JSON object that jansson can print.  Also ISO-8601 dates. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1700000000000)

static void
must(int cond)
{
    if (!cond)
        abort();
}

static void
validate(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    struct job_spec spec;
    char err[512];

    if (!body)
        return;
    if (job_spec_from_json(body, NOW, &spec, err, sizeof err) == 0) {
        char *enc = job_spec_encode(&spec, NOW, 3, 1000);
        json_t *back, *payload;
        must(valid_name(spec.type) && valid_name(spec.queue));
        must(spec.priority >= JOB_PRIORITY_MIN && spec.priority <= JOB_PRIORITY_MAX);
        must(spec.max_attempts >= 0 && spec.max_attempts <= JOB_ATTEMPTS_MAX);
        must(is_uuid(spec.id));
        payload = json_loads(spec.payload, 0, NULL);
        must(json_is_object(payload));
        json_decref(payload);
        must(enc != NULL);
        back = json_loads(enc, 0, NULL);
        must(json_is_object(back));
        json_decref(back);
        free(enc);
        job_spec_free(&spec);
    } else {
        must(err[0] != '\0');
    }
    json_decref(body);
}

static void
render(const uint8_t *data, size_t size)
{
    redisReply *el[64], arr;
    redisReply cells[64];
    size_t n = 0, start = 0;

    for (size_t i = 0; i <= size && n < 64; i++) {
        if (i < size && data[i] != '\n')
            continue;
        memset(&cells[n], 0, sizeof cells[n]);
        cells[n].type = REDIS_REPLY_STRING;
        cells[n].len = i - start;
        cells[n].str = malloc(i - start + 1);
        memcpy(cells[n].str, data + start, i - start);
        cells[n].str[i - start] = '\0';
        el[n] = &cells[n];
        n++;
        start = i + 1;
    }
    memset(&arr, 0, sizeof arr);
    arr.type = REDIS_REPLY_ARRAY;
    arr.elements = n;
    arr.element = el;
    for (int tok = 0; tok < 2; tok++) {
        json_t *job = job_from_reply(&arr, tok);
        if (job) {
            char *txt = json_dumps(job, JSON_COMPACT);
            must(json_is_object(job) && txt != NULL);
            free(txt);
            json_decref(job);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(cells[i].str);
}

static void
dates(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), out[32];
    int64_t ms;

    memcpy(s, data, size);
    s[size] = '\0';
    if (iso8601_parse(s, &ms) == 0 && ms >= 0 && ms < INT64_C(253402300800000)) {
        int64_t again;
        iso8601_format(ms, out);
        must(iso8601_parse(out, &again) == 0 && again == ms);
    }
    free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    validate(data, size);
    render(data, size);
    dates(data, size);
    return 0;
}
