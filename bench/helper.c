/*
 * The child process the benchmark runs under each init (bench/run builds it
 * with `gcc -O2 -static`). One mode per measurement; each prints a line when
 * it is ready, so the benchmark never sleeps to wait for it.
 *
 *   sleep              print "ready", then sleep forever
 *   stream N           make N orphans one after another: each intermediate
 *                      child forks a grandchild and exits at once, so the
 *                      grandchild is re-parented to PID 1 and exits there
 *   burst N            make N orphans that all wait on one pipe, then close
 *                      it so that they exit at the same moment
 *   term-handler       on SIGTERM print CLOCK_MONOTONIC (ns) and exit 42
 *   term-default       print "ready" and let SIGTERM kill it (exit 143)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *line) {
    if (write(STDOUT_FILENO, line, strlen(line)) < 0) _exit(3);
}

static void wait_forever(void) {
    for (;;) pause();
}

static void on_term(int sig) {
    (void)sig;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    char line[64];
    int n = snprintf(line, sizeof line, "term %lld\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    if (write(STDOUT_FILENO, line, n) < 0) _exit(3);
    _exit(42);
}

/* Forks an intermediate child that forks the orphan and exits; reaps the
 * intermediate. With release_fd >= 0 the orphan waits until every write end
 * of that pipe is closed (so it closes its own copy, close_fd, first). */
static void orphan(int release_fd, int close_fd) {
    pid_t middle = fork();
    if (middle < 0) { perror("fork"); exit(2); }
    if (middle == 0) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            if (close_fd >= 0) close(close_fd);
            if (release_fd >= 0) {
                char byte;
                while (read(release_fd, &byte, 1) < 0 && errno == EINTR) {}
            }
            _exit(0);
        }
        _exit(0);
    }
    while (waitpid(middle, NULL, 0) < 0 && errno == EINTR) {}
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: helper MODE [N]\n"); return 2; }
    const char *mode = argv[1];
    long count = argc > 2 ? atol(argv[2]) : 0;
    if (strcmp(mode, "sleep") == 0) {
        say("ready\n");
        wait_forever();
    } else if (strcmp(mode, "stream") == 0) {
        say("begin\n");
        for (long i = 0; i < count; i++) orphan(-1, -1);
        say("spawned\n");
        wait_forever();
    } else if (strcmp(mode, "burst") == 0) {
        int release[2];
        if (pipe(release) < 0) { perror("pipe"); return 2; }
        for (long i = 0; i < count; i++) orphan(release[0], release[1]);
        close(release[0]);
        say("begin\n");
        close(release[1]);
        say("released\n");
        wait_forever();
    } else if (strcmp(mode, "term-handler") == 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_term;
        sigaction(SIGTERM, &action, NULL);
        say("ready\n");
        wait_forever();
    } else if (strcmp(mode, "term-default") == 0) {
        say("ready\n");
        wait_forever();
    }
    fprintf(stderr, "helper: unknown mode %s\n", mode);
    return 2;
}
