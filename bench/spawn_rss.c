/*
 * spawn_rss: start one program, wait for it, report its wall time and peak RSS.
 *
 *   spawn_rss REPORT_FD TIMEOUT_MS [--dup SRC:DST]... -- PROG [ARG]...
 *
 * Writes "pid N\n" to REPORT_FD as soon as PROG runs, then one JSON line when it has exited:
 *   {"wall_ns":..,"maxrss_kb":..,"status":..,"exit":..,"signal":..,"utime_us":..,"stime_us":..,"timed_out":0|1}
 * wall_ns is CLOCK_MONOTONIC from just before posix_spawn() to wait4() returning; maxrss_kb,
 * utime and stime come from wait4()'s rusage. PROG inherits stdin/stdout/stderr and the
 * environment; each --dup SRC:DST makes descriptor SRC appear as DST in PROG (the actionloop
 * protocol's fd 3). TIMEOUT_MS > 0 kills PROG with SIGKILL after that long.
 *
 * Why this exists (bench/README.md): Linux carries the parent's peak RSS into a child across
 * fork and exec (exec records the old mm's high-water mark in the child's signal->maxrss, and
 * vfork/posix_spawn share the parent's mm), so a child started straight from Python reports
 * Python's ~14 MiB as its ru_maxrss. Started from this small static program, the inherited
 * floor is this program's own few hundred KiB; bench/run.py measures that floor with a no-op.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static volatile pid_t child = -1;
static volatile sig_atomic_t timed_out = 0;

static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
    if (child > 0) kill(child, SIGKILL);
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: spawn_rss REPORT_FD TIMEOUT_MS [--dup SRC:DST]... -- PROG [ARG]...\n");
        return 125;
    }
    int report = atoi(argv[1]);
    long timeout_ms = atol(argv[2]);
    fcntl(report, F_SETFD, FD_CLOEXEC);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int i = 3;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        int src, dst;
        if (strcmp(argv[i], "--dup") != 0 || i + 1 >= argc || sscanf(argv[i + 1], "%d:%d", &src, &dst) != 2) {
            fprintf(stderr, "spawn_rss: bad argument %s\n", argv[i]);
            return 125;
        }
        posix_spawn_file_actions_adddup2(&fa, src, dst);
        if (src != dst) fcntl(src, F_SETFD, FD_CLOEXEC);
        i++;
    }
    if (i + 1 >= argc) {
        fprintf(stderr, "spawn_rss: no program\n");
        return 125;
    }
    char **prog = &argv[i + 1];

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);

    pid_t pid;
    long long t0 = now_ns();
    int rc = posix_spawn(&pid, prog[0], &fa, NULL, prog, environ);
    if (rc != 0) {
        dprintf(report, "{\"error\":\"posix_spawn %s: %s\"}\n", prog[0], strerror(rc));
        return 126;
    }
    child = pid;
    dprintf(report, "pid %d\n", (int)pid);
    if (timeout_ms > 0) {
        struct itimerval it;
        memset(&it, 0, sizeof it);
        it.it_value.tv_sec = timeout_ms / 1000;
        it.it_value.tv_usec = (timeout_ms % 1000) * 1000;
        setitimer(ITIMER_REAL, &it, NULL);
    }
    int status = 0;
    struct rusage ru;
    pid_t w;
    do {
        w = wait4(pid, &status, 0, &ru);
    } while (w < 0 && errno == EINTR);
    long long t1 = now_ns();
    if (w < 0) {
        dprintf(report, "{\"error\":\"wait4: %s\"}\n", strerror(errno));
        return 126;
    }
    dprintf(report,
            "{\"wall_ns\":%lld,\"maxrss_kb\":%ld,\"status\":%d,\"exit\":%d,\"signal\":%d,"
            "\"utime_us\":%lld,\"stime_us\":%lld,\"timed_out\":%d}\n",
            t1 - t0, ru.ru_maxrss, status, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
            WIFSIGNALED(status) ? WTERMSIG(status) : 0,
            (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
            (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec, (int)timed_out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
