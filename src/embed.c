/* embed.c — start or reuse the embedded redis-server.
 *
 * The server is daemonized and left running when jqrun exits: its data is
 * the queue, and `jqrun enqueue` followed by `jqrun get` in two separate
 * invocations must see the same job.  A lock file serializes concurrent
 * jqrun starts, so two of them never race to start two servers on one
 * socket (redis-server would unlink the other's socket). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "embed.h"
#include "log.h"
#include "util.h"

/* ping tells whether a Redis answers PING on the socket at path. */
static int
ping(const char *path)
{
    struct timeval tv = { 1, 0 };
    redisContext *c = redisConnectUnixWithTimeout(path, tv);
    redisReply *r;
    int ok = 0;

    if (c && !c->err && (r = redisCommand(c, "PING"))) {
        ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

/* start_server runs redis-server --daemonize yes and waits for its exit
 * (the daemon forks away). 0 or -1. */
static int
start_server(const char *dir, const char *sock, char *err, size_t errlen)
{
    char pidfile[PATH_MAX + 16], logfile[PATH_MAX + 16];
    pid_t pid;
    int status;

    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", dir);
    snprintf(logfile, sizeof logfile, "%s/redis.log", dir);
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock,
               "--unixsocketperm", "700", "--dir", dir, "--appendonly", "yes",
               "--appendfsync", "everysec", "--save", "", "--daemonize", "yes",
               /* A job hash holds a payload of a few hundred bytes: keep it
                * listpack-encoded (half the memory of a hashtable). */
               "--hash-max-listpack-value", "1024",
               "--pidfile", pidfile, "--logfile", logfile, (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "could not start redis-server (%s); is the redis-server "
                 "package installed? See %s",
                 WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "not found" : "it failed",
                 logfile);
        return -1;
    }
    return 0;
}

int
embed_redis(const char *data_dir, char *url, size_t urllen, char *err, size_t errlen)
{
    char dir[PATH_MAX], sock[PATH_MAX + 16], lock[PATH_MAX + 16];
    int fd, rc = -1;

    if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "data_dir '%s': %s", data_dir, strerror(errno));
        return -1;
    }
    if (!realpath(data_dir, dir)) {
        snprintf(err, errlen, "data_dir '%s': %s", data_dir, strerror(errno));
        return -1;
    }
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    if (strlen(sock) >= 100) { /* sun_path holds 108 bytes */
        snprintf(err, errlen, "data_dir '%s' is too deep for a unix socket path", dir);
        return -1;
    }
    snprintf(url, urllen, "unix://%s", sock);
    if (ping(sock))
        return 0;
    snprintf(lock, sizeof lock, "%s/embed.lock", dir);
    if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(fd, LOCK_EX) < 0) {
        snprintf(err, errlen, "%s: %s", lock, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* Another jqrun may have started it while we waited for the lock. */
    if (ping(sock)) {
        rc = 0;
        goto out;
    }
    log_info("starting embedded redis-server on %s (data in %s)", sock, dir);
    if (start_server(dir, sock, err, errlen) < 0)
        goto out;
    for (int i = 0; i < 200; i++) {
        if (ping(sock)) {
            rc = 0;
            goto out;
        }
        sleep_ms(25);
    }
    snprintf(err, errlen, "embedded redis-server did not answer on %s; see %s/redis.log", sock, dir);
out:
    flock(fd, LOCK_UN);
    close(fd);
    return rc;
}
