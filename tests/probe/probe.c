/* crabcan-probe: runs one syscall per argument inside a container and prints
 * "name=RESULT", where RESULT is OK or the errno name (EPERM, ENOSYS, ...).
 * Built statically by tests/build.rs so it runs in any rootfs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

static const char *errname(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case ENOTTY: return "ENOTTY";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case EROFS: return "EROFS";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EEXIST: return "EEXIST";
    case ESRCH: return "ESRCH";
    case ENODEV: return "ENODEV";
    default: return "EOTHER";
    }
}

static void *thread_main(void *arg) { return arg; }

static long check(const char *name) {
    static const char *file = "/tmp/probe-file";
    if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0);
    if (!strcmp(name, "add_key")) return syscall(SYS_add_key, "user", "crabcan", "x", 1, -3);
    if (!strcmp(name, "request_key")) return syscall(SYS_request_key, "user", "crabcan", NULL, 0);
    if (!strcmp(name, "unshare_user")) return unshare(CLONE_NEWUSER);
    if (!strcmp(name, "unshare_ns")) return unshare(CLONE_NEWNS);
    if (!strcmp(name, "clone_newuser")) {
        long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0) _exit(0);
        if (pid > 0) { waitpid(pid, NULL, 0); return 0; }
        return pid;
    }
    if (!strcmp(name, "clone3")) {
        unsigned long long args[11] = {0};
        args[4] = SIGCHLD; /* exit_signal */
        long pid = syscall(SYS_clone3, args, sizeof(args));
        if (pid == 0) _exit(0);
        if (pid > 0) { waitpid(pid, NULL, 0); return 0; }
        return pid;
    }
    if (!strcmp(name, "fork")) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        if (pid > 0) { waitpid(pid, NULL, 0); return 0; }
        return -1;
    }
    if (!strcmp(name, "thread")) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, thread_main, NULL);
        if (rc) { errno = rc; return -1; }
        return pthread_join(t, NULL);
    }
    if (!strncmp(name, "chmod_", 6)) {
        int fd = open(file, O_CREAT | O_WRONLY, 0644);
        if (fd >= 0) close(fd);
        mode_t mode = !strcmp(name, "chmod_suid") ? 04755 : !strcmp(name, "chmod_sgid") ? 02755 : 0755;
        return chmod(file, mode);
    }
    if (!strcmp(name, "fchmodat2_suid")) {
        int fd = open(file, O_CREAT | O_WRONLY, 0644);
        if (fd >= 0) close(fd);
        return syscall(SYS_fchmodat2, AT_FDCWD, file, 04755, 0);
    }
    if (!strcmp(name, "tiocsti")) { char c = 'x'; return ioctl(0, TIOCSTI, &c); }
    if (!strcmp(name, "tiocsti_high")) { char c = 'x'; return syscall(SYS_ioctl, 0, 0x100005412UL, &c); }
    if (!strcmp(name, "tiocgwinsz")) { struct winsize w; return ioctl(0, TIOCGWINSZ, &w); }
    if (!strcmp(name, "fionread")) { int n; return ioctl(0, FIONREAD, &n); }
    if (!strcmp(name, "mount")) return mount("none", "/tmp", "tmpfs", 0, NULL);
    if (!strcmp(name, "umount")) return umount2("/proc", MNT_DETACH);
    if (!strcmp(name, "pivot_root")) return syscall(SYS_pivot_root, "/tmp", "/tmp");
    if (!strcmp(name, "open_tree")) return syscall(SYS_open_tree, AT_FDCWD, "/tmp", 0);
    if (!strcmp(name, "fsopen")) return syscall(SYS_fsopen, "tmpfs", 0);
    if (!strcmp(name, "setns")) return syscall(SYS_setns, 0, 0);
    if (!strcmp(name, "ptrace")) return ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    if (!strcmp(name, "open_by_handle_at")) return syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0);
    if (!strcmp(name, "bpf")) return syscall(SYS_bpf, 0, NULL, 0);
    if (!strcmp(name, "perf_event_open")) return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(name, "userfaultfd")) return syscall(SYS_userfaultfd, 0);
    if (!strcmp(name, "io_uring_setup")) return syscall(SYS_io_uring_setup, 1, NULL);
    if (!strcmp(name, "kexec_load")) return syscall(SYS_kexec_load, 0, 0, NULL, 0);
    if (!strcmp(name, "init_module")) return syscall(SYS_init_module, NULL, 0, "");
    if (!strcmp(name, "reboot")) return syscall(SYS_reboot, 0, 0, 0, NULL);
    if (!strcmp(name, "syslog")) return syscall(SYS_syslog, 3, NULL, 0);
    if (!strcmp(name, "personality_bad")) return personality(0x0400000 /* READ_IMPLIES_EXEC */);
    if (!strcmp(name, "mbind")) return syscall(SYS_mbind, 0, 0, 0, NULL, 0, 0);
    if (!strcmp(name, "unknown_syscall")) return syscall(1000);
    if (!strcmp(name, "getpid")) return getpid() > 0 ? 0 : -1;
    fprintf(stderr, "crabcan-probe: unknown check %s\n", name);
    exit(2);
}

/* "session_keyring" prints the serial and description of the session keyring
 * ("session_keyring=SERIAL;keyring;UID;GID;PERM;NAME") rather than OK. */
static int print_session_keyring(void) {
    char description[512] = {0};
    long serial = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
    if (serial < 0) return -1;
    if (syscall(SYS_keyctl, 6 /* KEYCTL_DESCRIBE */, serial, description, sizeof(description) - 1) < 0) return -1;
    printf("session_keyring=%ld;%s\n", serial, description);
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        if (!strcmp(argv[i], "session_keyring")) {
            if (print_session_keyring() < 0) printf("session_keyring=%s\n", errname(errno));
            fflush(stdout);
            continue;
        }
        long rc = check(argv[i]);
        if (rc < 0)
            printf("%s=%s\n", argv[i], errname(errno));
        else
            printf("%s=OK\n", argv[i]);
        fflush(stdout);
    }
    return 0;
}
