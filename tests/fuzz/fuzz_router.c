/* fuzz_router.c — libFuzzer target for the HTTP router and the small
 * parsers that see request and config text.
 *
 * The router (route() and match() in src/http.c) is static, so this file
 * includes src/http.c and src/api.c (for the real route table) and is
 * linked without their objects.  The first line of the input is
 * "METHOD URL" as libmicrohttpd would hand it over (already decoded, so
 * any bytes); a route found must have the method asked for (GET also
 * serves HEAD) and one parameter per ":" segment, each without a "/";
 * 405's Allow list must name the methods of the path.  The whole input
 * also goes through http_parse_listen, store_url_parse, is_json_type,
 * valid_name and is_uuid. */
#include "../../src/http.c"
#include "../../src/api.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
must(int cond)
{
    if (!cond)
        abort();
}

static int
colons(const char *pattern)
{
    int n = 0;
    for (const char *p = pattern; *p; p++)
        if (*p == ':' && p[-1] == '/')
            n++;
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), *nl, *sp, allow[96];
    struct http_server srv;
    struct http_req r;
    const struct http_route *rt;
    char host[256];
    int port;
    struct store_addr a;

    memcpy(s, data, size);
    s[size] = '\0';
    /* the parsers take the whole input as one string */
    http_parse_listen(s, host, sizeof host, &port, allow, sizeof allow);
    store_url_parse(s, &a, allow, sizeof allow);
    (void)is_json_type(s);
    (void)valid_name(s);
    (void)is_uuid(s);

    nl = strchr(s, '\n');
    if (nl)
        *nl = '\0';
    sp = strchr(s, ' ');
    memset(&srv, 0, sizeof srv);
    srv.o.routes = routes;
    srv.o.nroutes = sizeof routes / sizeof routes[0];
    memset(&r, 0, sizeof r);
    r.method = sp ? s : "GET";
    if (sp)
        *sp = '\0';
    r.url = sp ? sp + 1 : s;
    rt = route(&srv, &r, allow, sizeof allow);
    if (rt) {
        const char *m = strcmp(r.method, "HEAD") == 0 ? "GET" : r.method;
        must(strcmp(rt->method, m) == 0);
        must(r.nparams == colons(rt->pattern));
        for (int i = 0; i < r.nparams; i++)
            must(r.params[i] && !strchr(r.params[i], '/'));
        must(allow[0] != '\0');
    } else {
        must(r.nparams == 0);
    }
    while (r.nparams > 0)
        free(r.params[--r.nparams]);
    free(s);
    return 0;
}
