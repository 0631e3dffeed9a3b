/* xtask bench's measuring harness: a tiny C program, so that the runtime
 * it forks does not inherit a large resident set (ru_maxrss survives
 * fork and exec: a runtime forked from the Rust bench would report the
 * bench's own RSS). Usage: spawner PROG ARGS...; prints
 * "<elapsed ns> <ru_maxrss KiB> <wait status>" for PROG run with stdin and
 * stdout on /dev/null and stderr inherited. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec start, end;
    struct rusage usage;
    int status = 0;
    int devnull = open("/dev/null", O_RDWR);
    if (argc < 2 || devnull < 0)
        return 2;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    if (pid < 0)
        return 3;
    while (wait4(pid, &status, 0, &usage) < 0) {
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long ns = (long long)(end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    printf("%lld %ld %d\n", ns, usage.ru_maxrss, status);
    return 0;
}
