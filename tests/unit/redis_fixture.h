/* redis_fixture.h — a throwaway redis-server for tests that need one: a
 * private unix socket in a fresh temp dir, no persistence, killed at exit. */
#ifndef JQ_REDIS_FIXTURE_H
#define JQ_REDIS_FIXTURE_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

static pid_t fx_pid;
static char fx_dir[64], fx_url[128], fx_sock[96];

static void
fx_stop(void)
{
    char cmd[96];
    if (fx_pid > 0) {
        kill(fx_pid, SIGKILL);
        waitpid(fx_pid, NULL, 0);
        fx_pid = 0;
    }
    if (fx_dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", fx_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", fx_dir);
    }
}

/* fx_start starts redis-server and returns its "unix://..." URL, or exits. */
static const char *
fx_start(void)
{
    snprintf(fx_dir, sizeof fx_dir, "/tmp/jqut.XXXXXX");
    if (!mkdtemp(fx_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(fx_sock, sizeof fx_sock, "%s/redis.sock", fx_dir);
    snprintf(fx_url, sizeof fx_url, "unix://%s", fx_sock);
    fx_pid = fork();
    if (fx_pid == 0) {
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", fx_sock,
               "--save", "", "--appendonly", "no", "--dir", fx_dir, "--logfile",
               "redis.log", (char *)NULL);
        _exit(127);
    }
    atexit(fx_stop);
    for (int i = 0; i < 200; i++) {
        struct timeval tv = { 1, 0 };
        redisContext *c = redisConnectUnixWithTimeout(fx_sock, tv);
        if (c && !c->err) {
            redisFree(c);
            return fx_url;
        }
        if (c)
            redisFree(c);
        usleep(25000);
    }
    fprintf(stderr, "redis-server did not start\n");
    exit(1);
}

#endif
