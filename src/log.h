/* log.h — leveled, thread-safe logging to stderr. */
#ifndef JQ_LOG_H
#define JQ_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* log_set_level sets the lowest level printed (default LOG_INFO). */
void log_set_level(enum log_level lvl);
/* log_parse_level maps "debug|info|warn|error" to a level; -1 when unknown. */
int log_parse_level(const char *name);
/* log_enabled tells whether a message at lvl would be printed. */
int log_enabled(enum log_level lvl);
/* log_msg prints one line: time, level, message.  Use the macros below. */
void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
