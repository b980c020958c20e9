/* cli.h — the commands that talk to Redis directly (no server needed). */
#ifndef JQ_CLI_H
#define JQ_CLI_H

struct config;

/* Each returns the process exit code: 0 ok, 1 failure, 2 usage.
 * argv[0] is the command name. */
int cli_enqueue(const struct config *c, int argc, char **argv);
int cli_get(const struct config *c, int argc, char **argv);
int cli_cancel(const struct config *c, int argc, char **argv);
int cli_retry(const struct config *c, int argc, char **argv);
int cli_list(const struct config *c, int argc, char **argv);
int cli_stats(const struct config *c, int argc, char **argv);

#endif
