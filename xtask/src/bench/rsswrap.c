/* xtask bench's runtime wrapper for the engines' section: podman is given
 * this program (named like the runtime, in a folder of its own) as its
 * `--runtime`. It runs the real runtime as its child with the same
 * arguments, environment and file descriptors, forwards the usual signals
 * to it, waits for it, appends one line "<ru_maxrss KiB> <args...>" to
 * `rss.log` beside itself, and exits as the runtime did (the same status,
 * or the same signal). The real runtime's path is the first line of
 * `target` beside itself.
 *
 * The runtime's own children (the container's process, which `create`
 * leaves behind) are reparented to conmon as without the wrapper: the
 * wrapper is not a subreaper. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child = -1;

static void forward(int sig) {
    if (child > 0)
        kill(child, sig);
}

/* `dir/name` into out; 0 on success. */
static int beside(char *out, size_t size, const char *dir, const char *name) {
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int main(int argc, char **argv) {
    (void)argc;
    char dir[PATH_MAX], path[PATH_MAX], real[PATH_MAX] = {0};
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0)
        return 125;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return 125;
    *slash = '\0';
    if (beside(path, sizeof path, dir, "target") != 0)
        return 125;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 125;
    n = read(fd, real, sizeof real - 1);
    close(fd);
    if (n <= 0)
        return 125;
    real[strcspn(real, "\n")] = '\0';

    int signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = forward;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        sigaction(signals[i], &action, NULL);

    child = fork();
    if (child < 0)
        return 125;
    if (child == 0) {
        action.sa_handler = SIG_DFL;
        for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
            sigaction(signals[i], &action, NULL);
        argv[0] = real;
        execv(real, argv);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    while (wait4(child, &status, 0, &usage) < 0) {
        if (errno != EINTR)
            return 125;
    }

    char line[8192];
    int len = snprintf(line, sizeof line, "%ld", usage.ru_maxrss);
    for (int i = 1; argv[i] != NULL && len > 0 && (size_t)len < sizeof line - 2; i++)
        len += snprintf(line + len, sizeof line - (size_t)len, " %s", argv[i]);
    if (len > 0 && (size_t)len >= sizeof line - 1)
        len = (int)sizeof line - 2;
    if (len > 0) {
        line[len++] = '\n';
        if (beside(path, sizeof path, dir, "rss.log") == 0) {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (fd >= 0) {
                ssize_t written = write(fd, line, (size_t)len);
                (void)written;
                close(fd);
            }
        }
    }

    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
