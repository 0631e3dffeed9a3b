/* xtask bench's measuring harness: a tiny C program, so that the runtime
 * it forks does not inherit a large resident set (ru_maxrss survives
 * fork and exec: a runtime forked from the Rust bench would report the
 * bench's own RSS).
 *
 * spawner PROG ARGS...
 *   prints "<elapsed ns> <ru_maxrss KiB> <wait status>" for PROG run with
 *   stdin and stdout on /dev/null and stderr inherited.
 *
 * spawner --lifecycle PIDFILE N1 CREATE... N2 START... N3 DELETE... N4 FORCE...
 *   the four calls an engine makes, each Ni words long: runs CREATE, reads
 *   the container's pid from PIDFILE, runs START, waits for the container's
 *   process to end (the helper is a child subreaper, so the process the
 *   runtime left behind is its child, as it is conmon's or the shim's), then
 *   runs DELETE. If a step fails after CREATE succeeded, FORCE (a
 *   `delete --force`) cleans up. Prints "<total ns> <max ru_maxrss KiB>
 *   <wait status> <create ns> <start ns> <wait ns> <delete ns>": the peak
 *   RSS is the largest of the three runtime calls and of the container's
 *   process (the runtime's own until it execs), the status the first
 *   non-zero one (the container's included). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int devnull = -1;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Reaps `pid` (only it: the container's process must stay waitable while
 * `start` runs). Returns 0, or -1 if `pid` is not our child. */
static int reap(pid_t pid, int *status, struct rusage *usage) {
    for (;;) {
        pid_t got = wait4(pid, status, 0, usage);
        if (got == pid)
            return 0;
        if (got < 0 && errno != EINTR)
            return -1;
    }
}

static pid_t spawn(char **argv) {
    pid_t pid = fork();
    if (pid == 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Runs argv to its end: its status, its ru_maxrss into *rss (the larger). */
static int run(char **argv, long *rss) {
    struct rusage usage;
    int status = 0;
    pid_t pid = spawn(argv);
    if (pid < 0 || reap(pid, &status, &usage) < 0)
        return 0x7f00; /* "exit status 127" */
    if (usage.ru_maxrss > *rss)
        *rss = usage.ru_maxrss;
    return status;
}

/* argv[*i] is a count N, then N words: a NULL-terminated copy of those
 * words (advancing *i past them), or NULL if malformed. */
static char **group(int argc, char **argv, int *i) {
    if (*i >= argc)
        return NULL;
    int n = atoi(argv[*i]);
    if (n < 1 || *i + 1 + n > argc)
        return NULL;
    char **words = calloc((size_t)n + 1, sizeof(char *));
    if (words != NULL)
        memcpy(words, argv + *i + 1, (size_t)n * sizeof(char *));
    *i += 1 + n;
    return words;
}

static pid_t read_pid(const char *path) {
    char text[32] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return -1;
    long pid = strtol(text, NULL, 10);
    return pid > 0 ? (pid_t)pid : -1;
}

static int lifecycle(int argc, char **argv) {
    /* argv: --lifecycle PIDFILE N1 ... N2 ... N3 ... N4 ... */
    const char *pid_file = argv[2];
    char **create, **start, **delete, **force;
    int i = 3;
    if ((create = group(argc, argv, &i)) == NULL || (start = group(argc, argv, &i)) == NULL ||
        (delete = group(argc, argv, &i)) == NULL || (force = group(argc, argv, &i)) == NULL || i != argc)
        return 2;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        return 3;
    long rss = 0;
    long long t0 = now_ns();
    int status = run(create, &rss);
    long long t_created = now_ns(), t_started = t_created, t_ended = t_created;
    if (status == 0) {
        pid_t container = read_pid(pid_file);
        int ours = container > 0;
        status = ours ? run(start, &rss) : 0x7e00; /* "exit status 126": no pid */
        t_started = t_ended = now_ns();
        if (status == 0) {
            struct rusage usage;
            int exited = 0;
            if (reap(container, &exited, &usage) < 0) {
                status = 0x7d00; /* "exit status 125": not this subreaper's child */
                ours = 0;
            } else {
                status = exited;
                ours = 0; /* reaped */
                if (usage.ru_maxrss > rss)
                    rss = usage.ru_maxrss;
            }
            t_ended = now_ns();
            if (status == 0)
                status = run(delete, &rss);
        }
        if (status != 0) {
            long ignored = 0;
            run(force, &ignored);
            if (ours) {
                int st;
                struct rusage u;
                kill(container, SIGKILL);
                reap(container, &st, &u);
            }
        }
    }
    long long t_end = now_ns();
    printf("%lld %ld %d %lld %lld %lld %lld\n", t_end - t0, rss, status, t_created - t0, t_started - t_created,
           t_ended - t_started, t_end - t_ended);
    return 0;
}

int main(int argc, char **argv) {
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (argc < 2 || devnull < 0)
        return 2;
    if (strcmp(argv[1], "--lifecycle") == 0)
        return argc < 11 ? 2 : lifecycle(argc, argv);
    struct rusage usage;
    int status = 0;
    long long start = now_ns();
    pid_t pid = spawn(argv + 1);
    if (pid < 0)
        return 3;
    while (wait4(pid, &status, 0, &usage) < 0) {
    }
    long long ns = now_ns() - start;
    printf("%lld %ld %d\n", ns, usage.ru_maxrss, status);
    return 0;
}
