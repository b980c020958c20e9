/* scripts.h — the Redis server scripts of lua/, embedded at build time. */
#ifndef JQ_SCRIPTS_H
#define JQ_SCRIPTS_H

/* script_src is one lua/<name>.lua file; the array ends with a NULL name. */
struct script_src {
    const char *name;   /* file name without .lua, e.g. "enqueue" */
    const char *source; /* the whole file, NUL-terminated */
};

extern const struct script_src script_srcs[];

#endif
