//! The profiles shipped with the crate, as data: [`Profile::tutorial`] (the
//! seed tutorial's deny list) and [`Profile::default_profile`] (crabcan's
//! default: an allowlist modelled on what Docker's default profile permits
//! to a container without extra capabilities), and [`ShippedProfile`], the one
//! list of their names that everything else (the CLI, its build script) iterates.

use std::fmt;

use crate::arch::Arch;
use crate::profile::{Action, ArgCondition, Profile, Rule};

/// A profile shipped with the crate. [`ShippedProfile::ALL`] is the one list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShippedProfile {
    /// crabcan's default allowlist: [`Profile::default_profile`].
    Default,
    /// The seed tutorial's deny list: [`Profile::tutorial`].
    Tutorial,
}

impl ShippedProfile {
    /// Every shipped profile, the default first.
    pub const ALL: [ShippedProfile; 2] = [ShippedProfile::Default, ShippedProfile::Tutorial];

    /// Its name: `"default"` or `"tutorial"`.
    pub fn name(self) -> &'static str {
        match self {
            ShippedProfile::Default => "default",
            ShippedProfile::Tutorial => "tutorial",
        }
    }

    /// The shipped profile called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<ShippedProfile> {
        Self::ALL.into_iter().find(|shipped| shipped.name() == name)
    }

    /// Its rules for [`Arch::NATIVE`].
    pub fn profile(self) -> Profile {
        self.profile_for(Arch::NATIVE)
    }

    /// Its rules for `arch`: the rules of syscalls `arch` lacks (e.g. `open`,
    /// `fork` on aarch64) are left out. On x86_64 none are.
    pub fn profile_for(self, arch: Arch) -> Profile {
        let mut profile = match self {
            ShippedProfile::Default => default_rules(),
            ShippedProfile::Tutorial => tutorial_rules(),
        };
        profile
            .rules
            .retain(|rule| arch.syscall_number(&rule.syscall).is_some());
        profile
    }

    /// The names of all shipped profiles joined for a message: `default, tutorial`.
    pub fn names() -> String {
        Self::ALL.map(ShippedProfile::name).join(", ")
    }
}

impl fmt::Display for ShippedProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const EPERM: Action = Action::Errno(libc::EPERM as u32);
const ENOSYS: Action = Action::Errno(libc::ENOSYS as u32);

/// Set-user-ID and set-group-ID bits of a file mode.
const S_ISUID: u64 = libc::S_ISUID as u64;
const S_ISGID: u64 = libc::S_ISGID as u64;

/// `ioctl` request that pushes bytes into a terminal's input queue.
const TIOCSTI: u64 = libc::TIOCSTI;

/// The ioctl request is an `unsigned int` for the kernel: only its low 32
/// bits count, whatever a caller puts in the upper half.
const LOW_32_BITS: u64 = 0xffff_ffff;

/// `clone` flags that create a namespace (NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET) = 0x7E020000.
const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// `personality` values a container may set: PER_LINUX, PER_LINUX32 and
/// the same with UNAME26, plus 0xffffffff (query only).
const SAFE_PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `AF_VSOCK` socket domain (talks to the hypervisor host).
const AF_VSOCK: u64 = libc::AF_VSOCK as u64;

/// Denied with EPERM by the tutorial, whatever the arguments.
const TUTORIAL_DENIED: &[&str] = &[
    "keyctl",
    "add_key",
    "request_key",
    "mbind",
    "migrate_pages",
    "move_pages",
    "set_mempolicy",
    "userfaultfd",
    "perf_event_open",
];

/// chmod-like syscalls and the position of their mode argument.
const CHMOD_CALLS: [(&str, u8); 4] = [("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2)];

/// Allowed whatever the arguments by the default profile: what ordinary
/// programs need. Namespaces, mounts, kernel state, tracing and the other
/// calls of `DEFAULT_DENIED` are not here.
const DEFAULT_ALLOWED: &[&str] = &[
    // files and directories
    "read",
    "write",
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "lseek",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "mkdir",
    "mkdirat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "symlink",
    "symlinkat",
    "readlink",
    "readlinkat",
    "truncate",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "readahead",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "flock",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    "umask",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "mknod",
    "mknodat",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "copy_file_range",
    "sendfile",
    "splice",
    "tee",
    "vmsplice",
    // extended attributes
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "file_getattr",
    "file_setattr",
    // memory
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mincore",
    "msync",
    "mlock",
    "mlock2",
    "munlock",
    "mlockall",
    "munlockall",
    "remap_file_pages",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "mseal",
    "map_shadow_stack",
    // processes and threads
    "execve",
    "execveat",
    "fork",
    "vfork",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tkill",
    "tgkill",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "futex",
    "futex_waitv",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "arch_prctl",
    "prctl",
    "modify_ldt",
    "set_thread_area",
    "get_thread_area",
    "pidfd_open",
    "pidfd_send_signal",
    "process_mrelease",
    "seccomp",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    // credentials and limits (the kernel still checks capabilities)
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capget",
    "capset",
    "getrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "getpriority",
    "setpriority",
    "ioprio_get",
    "ioprio_set",
    "sethostname",
    "setdomainname",
    // scheduling
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getattr",
    "sched_setattr",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "getcpu",
    // signals
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "pause",
    "restart_syscall",
    "signalfd",
    "signalfd4",
    // time (reading clocks and sleeping, not setting them)
    "time",
    "gettimeofday",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "alarm",
    "getitimer",
    "setitimer",
    "times",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    // waiting for events
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl_old",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "fanotify_mark",
    "pipe",
    "pipe2",
    // sockets (socket itself is filtered)
    "socketpair",
    "bind",
    "connect",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    // System V and POSIX IPC, asynchronous I/O
    "shmget",
    "shmat",
    "shmctl",
    "shmdt",
    "semget",
    "semop",
    "semctl",
    "semtimedop",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "io_setup",
    "io_destroy",
    "io_submit",
    "io_cancel",
    "io_getevents",
    "io_pgetevents",
    // system information
    "uname",
    "sysinfo",
    "getrandom",
];

/// Denied with EPERM by the default profile, whatever the arguments:
/// host-wide state, namespaces and mounts, tracing other processes, kernel
/// attack surface. (`stime`, `umount`, `vm86`, `vm86old` do not exist on
/// x86_64.)
const DEFAULT_DENIED: &[&str] = &[
    // kernel modules, kexec, reboot, swap
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    // clocks
    "clock_settime",
    "clock_adjtime",
    "settimeofday",
    "adjtimex",
    // accounting, quotas, logs
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    // mounts and root changes, old and new API
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "open_tree_attr",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    // namespaces
    "setns",
    "unshare",
    // other processes' memory and files
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    // file handles (bypass path checks)
    "open_by_handle_at",
    "name_to_handle_at",
    // hardware access
    "iopl",
    "ioperm",
    // keyrings
    "keyctl",
    "add_key",
    "request_key",
    // NUMA policy
    "mbind",
    "migrate_pages",
    "move_pages",
    "set_mempolicy",
    "get_mempolicy",
    "set_mempolicy_home_node",
    // large kernel attack surface
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fanotify_init",
    "lookup_dcookie",
    // obsolete or unimplemented
    "vhangup",
    "nfsservctl",
    "get_kernel_syms",
    "query_module",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
];

impl Profile {
    /// The seed tutorial's profile: allow everything except a few calls
    /// (EPERM): keyrings, NUMA policy, userfaultfd, perf_event_open;
    /// setting the set-user/group-ID bit with chmod, fchmod, fchmodat and
    /// fchmodat2; creating a user namespace with unshare or clone; and
    /// faking terminal input with ioctl(TIOCSTI). For [`Arch::NATIVE`]; see
    /// [`ShippedProfile::profile_for`].
    pub fn tutorial() -> Profile {
        ShippedProfile::Tutorial.profile()
    }

    /// crabcan's default profile, an allowlist, for [`Arch::NATIVE`] (see
    /// [`ShippedProfile::profile_for`]).
    ///
    /// - Syscalls no rule names get `ENOSYS`, so a program calling a syscall
    ///   newer than this table falls back as on an older kernel.
    /// - Ordinary syscalls are allowed (files, memory, processes and
    ///   threads, signals, time, polling, sockets, IPC).
    /// - Dangerous ones get `EPERM`: modules, kexec, reboot, swap, clocks,
    ///   mounts (old and new API), pivot_root, chroot, setns, unshare,
    ///   ptrace and cross-process memory, file handles, iopl/ioperm, syslog,
    ///   keyrings, NUMA policy, bpf, perf_event_open, userfaultfd, io_uring,
    ///   fanotify_init, and obsolete calls.
    /// - Filtered on their arguments: `clone` (EPERM if any namespace flag is
    ///   set), chmod-family (EPERM with S_ISUID/S_ISGID), `ioctl` (EPERM for
    ///   TIOCSTI), `socket` (EPERM for AF_VSOCK), `personality` (only
    ///   Docker's safe values; others get ENOSYS).
    /// - `clone3` gets `ENOSYS`: its flags sit behind a pointer a filter
    ///   cannot read, and ENOSYS makes glibc and musl fall back to `clone`.
    pub fn default_profile() -> Profile {
        ShippedProfile::Default.profile()
    }

    /// A shipped profile by name (see [`ShippedProfile::ALL`]): `"default"` or `"tutorial"`.
    pub fn by_name(name: &str) -> Option<Profile> {
        ShippedProfile::from_name(name).map(ShippedProfile::profile)
    }
}

/// The tutorial's rules, with the names of every architecture.
fn tutorial_rules() -> Profile {
    let mut rules: Vec<Rule> = TUTORIAL_DENIED.iter().map(|name| Rule::new(name, EPERM)).collect();
    rules.extend(deny_setuid_setgid_modes());
    let new_user = libc::CLONE_NEWUSER as u64;
    for name in ["unshare", "clone"] {
        rules.push(Rule::with_args(
            name,
            EPERM,
            &[ArgCondition::masked_equal(0, new_user, new_user)],
        ));
    }
    rules.push(deny_tiocsti());
    Profile {
        default_action: Action::Allow,
        rules,
    }
}

/// The default profile's rules, with the names of every architecture.
fn default_rules() -> Profile {
    let mut rules: Vec<Rule> = DEFAULT_ALLOWED
        .iter()
        .map(|name| Rule::new(name, Action::Allow))
        .collect();
    rules.extend(DEFAULT_DENIED.iter().map(|name| Rule::new(name, EPERM)));
    rules.extend(allow_chmod_without_setid_bits());
    rules.extend(deny_setuid_setgid_modes());
    rules.extend(allow_clone_without_namespaces());
    rules.extend(allow_ioctl_except_tiocsti());
    rules.push(deny_tiocsti());
    rules.extend(socket_rules());
    rules.extend(
        SAFE_PERSONALITIES
            .iter()
            .map(|&value| Rule::with_args("personality", Action::Allow, &[ArgCondition::equal(0, value)])),
    );
    rules.push(Rule::new("clone3", ENOSYS));
    Profile {
        default_action: ENOSYS,
        rules,
    }
}

/// Allows `socket` for every domain but AF_VSOCK, which gets EPERM.
fn socket_rules() -> [Rule; 2] {
    [
        Rule::with_args("socket", Action::Allow, &[ArgCondition::not_equal(0, AF_VSOCK)]),
        Rule::with_args("socket", EPERM, &[ArgCondition::equal(0, AF_VSOCK)]),
    ]
}

/// EPERM for chmod-like calls whose mode has S_ISUID or S_ISGID: one rule
/// per bit, since a single comparison cannot say "any of these bits".
fn deny_setuid_setgid_modes() -> Vec<Rule> {
    let mut rules = Vec::new();
    for (name, mode_arg) in CHMOD_CALLS {
        for bit in [S_ISUID, S_ISGID] {
            rules.push(Rule::with_args(
                name,
                EPERM,
                &[ArgCondition::masked_equal(mode_arg, bit, bit)],
            ));
        }
    }
    rules
}

/// Allows chmod-like calls whose mode has neither S_ISUID nor S_ISGID.
fn allow_chmod_without_setid_bits() -> Vec<Rule> {
    let setid = S_ISUID | S_ISGID;
    CHMOD_CALLS
        .iter()
        .map(|&(name, mode_arg)| {
            Rule::with_args(name, Action::Allow, &[ArgCondition::masked_equal(mode_arg, setid, 0)])
        })
        .collect()
}

/// Allows clone without namespace flags (threads, fork); EPERM, one rule per
/// flag, when any namespace flag is set.
fn allow_clone_without_namespaces() -> Vec<Rule> {
    let all_flags = CLONE_NAMESPACE_FLAGS.iter().fold(0, |mask, flag| mask | flag);
    let mut rules = vec![Rule::with_args(
        "clone",
        Action::Allow,
        &[ArgCondition::masked_equal(0, all_flags, 0)],
    )];
    for flag in CLONE_NAMESPACE_FLAGS {
        rules.push(Rule::with_args(
            "clone",
            EPERM,
            &[ArgCondition::masked_equal(0, flag, flag)],
        ));
    }
    rules
}

/// EPERM for `ioctl(fd, TIOCSTI)`, comparing the request's low 32 bits
/// exactly: TIOCGWINSZ (0x5413) or FIONREAD (0x541B) do not match, and
/// neither high bits set by the caller (0x1_0000_5412) slip past.
fn deny_tiocsti() -> Rule {
    Rule::with_args("ioctl", EPERM, &[ArgCondition::masked_equal(1, LOW_32_BITS, TIOCSTI)])
}

/// Allows every ioctl whose request differs from TIOCSTI in its low 32
/// bits. libseccomp lets an unconditional allow silently override the
/// TIOCSTI rule, and has no "masked not-equal", so this is spelled as 32
/// rules: "bit i of the request differs from bit i of TIOCSTI".
fn allow_ioctl_except_tiocsti() -> Vec<Rule> {
    (0..32)
        .map(|bit| {
            let mask = 1u64 << bit;
            let differs = !TIOCSTI & mask;
            Rule::with_args("ioctl", Action::Allow, &[ArgCondition::masked_equal(1, mask, differs)])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CmpOp;

    fn shipped() -> [Profile; 2] {
        ShippedProfile::ALL.map(ShippedProfile::profile)
    }

    #[test]
    fn every_shipped_name_resolves_on_x86_64() {
        for shipped in ShippedProfile::ALL {
            let all_names = shipped.profile_for(Arch::X86_64);
            for rule in &all_names.rules {
                assert!(
                    Arch::X86_64.syscall_number(&rule.syscall).is_some(),
                    "`{}` is not an x86_64 syscall",
                    rule.syscall
                );
            }
            let before = match shipped {
                ShippedProfile::Default => default_rules(),
                ShippedProfile::Tutorial => tutorial_rules(),
            };
            assert_eq!(all_names, before, "nothing is left out on x86_64");
        }
    }

    #[test]
    fn aarch64_profiles_leave_out_only_what_it_lacks() {
        let profile = ShippedProfile::Default.profile_for(Arch::Aarch64);
        let names: Vec<&str> = profile.rules.iter().map(|rule| rule.syscall.as_str()).collect();
        for lacking in ["open", "fork", "arch_prctl", "epoll_wait"] {
            assert!(!names.contains(&lacking), "{lacking}");
        }
        for kept in ["openat", "clone", "ioctl", "execve", "exit_group", "socket"] {
            assert!(names.contains(&kept), "{kept}");
        }
        profile.validate().expect("valid");
        profile.check_can_exec().expect("can exec");
    }

    #[test]
    fn shipped_names_are_listed_once() {
        for shipped in ShippedProfile::ALL {
            assert_eq!(ShippedProfile::from_name(shipped.name()), Some(shipped));
            assert_eq!(Profile::by_name(shipped.name()), Some(shipped.profile()));
        }
        assert_eq!(ShippedProfile::names(), "default, tutorial");
    }

    #[test]
    fn shipped_profiles_are_valid_without_duplicates() {
        for profile in shipped() {
            profile.validate().expect("shipped profile is valid");
        }
    }

    #[test]
    fn allowed_and_denied_lists_do_not_overlap() {
        for name in DEFAULT_ALLOWED {
            assert!(!DEFAULT_DENIED.contains(name), "`{name}` is both allowed and denied");
        }
    }

    #[test]
    fn tutorial_has_exactly_the_seed_rules() {
        let m = |index, bit| vec![ArgCondition::masked_equal(index, bit, bit)];
        let mut expected: Vec<Rule> = [
            "keyctl",
            "add_key",
            "request_key",
            "mbind",
            "migrate_pages",
            "move_pages",
            "set_mempolicy",
            "userfaultfd",
            "perf_event_open",
        ]
        .iter()
        .map(|name| Rule::new(name, EPERM))
        .collect();
        for (name, index) in [("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2)] {
            expected.push(Rule {
                syscall: name.into(),
                action: EPERM,
                args: m(index, 0o4000),
            });
            expected.push(Rule {
                syscall: name.into(),
                action: EPERM,
                args: m(index, 0o2000),
            });
        }
        expected.push(Rule {
            syscall: "unshare".into(),
            action: EPERM,
            args: m(0, 0x1000_0000),
        });
        expected.push(Rule {
            syscall: "clone".into(),
            action: EPERM,
            args: m(0, 0x1000_0000),
        });
        expected.push(Rule::with_args(
            "ioctl",
            EPERM,
            &[ArgCondition::masked_equal(1, 0xffff_ffff, 0x5412)],
        ));
        assert_eq!(
            Profile::tutorial(),
            Profile {
                default_action: Action::Allow,
                rules: expected
            }
        );
    }

    /// Evaluates the data of a masked/equal condition on a value, as the
    /// kernel filter would.
    fn matches(condition: &ArgCondition, value: u64) -> bool {
        match condition.op {
            CmpOp::MaskedEqual => value & condition.value == condition.value_two,
            CmpOp::Equal => value == condition.value,
            CmpOp::NotEqual => value != condition.value,
            other => panic!("unexpected op {other:?}"),
        }
    }

    /// The action the default profile's data gives to `ioctl(fd, request)`.
    fn ioctl_actions(request: u64) -> Vec<Action> {
        Profile::default_profile()
            .rules
            .iter()
            .filter(|rule| rule.syscall == "ioctl" && rule.args.iter().all(|arg| matches(arg, request)))
            .map(|rule| rule.action)
            .collect()
    }

    #[test]
    fn tiocsti_rule_is_exact_on_the_low_32_bits() {
        let rule = deny_tiocsti();
        assert_eq!(rule.args, vec![ArgCondition::masked_equal(1, 0xffff_ffff, 0x5412)]);
        let arg = rule.args[0];
        assert!(matches(&arg, 0x5412));
        assert!(matches(&arg, 0x1_0000_5412));
        for other in [0x5413, 0x541B, 0x5401, 0x5410, 0x0] {
            assert!(!matches(&arg, other), "{other:#x} must not match TIOCSTI");
        }
    }

    #[test]
    fn default_ioctl_rules_split_cleanly() {
        assert_eq!(ioctl_actions(0x5412), vec![EPERM]);
        assert_eq!(ioctl_actions(0x1_0000_5412), vec![EPERM]);
        for allowed in [0x5413, 0x541B, 0x5401, 0x8004_5430, 0xffff_ffff_802c_542a] {
            let actions = ioctl_actions(allowed);
            assert!(
                !actions.is_empty() && actions.iter().all(|&a| a == Action::Allow),
                "{allowed:#x}"
            );
        }
    }

    #[test]
    fn default_clone_rules_split_cleanly() {
        let actions = |flags: u64| -> Vec<Action> {
            Profile::default_profile()
                .rules
                .iter()
                .filter(|rule| rule.syscall == "clone" && rule.args.iter().all(|arg| matches(arg, flags)))
                .map(|rule| rule.action)
                .collect()
        };
        let thread_flags = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(actions(thread_flags), vec![Action::Allow]);
        assert_eq!(actions(libc::SIGCHLD as u64), vec![Action::Allow]);
        for flag in CLONE_NAMESPACE_FLAGS {
            assert!(actions(flag | libc::SIGCHLD as u64).iter().all(|&a| a == EPERM));
        }
    }

    #[test]
    fn by_name_knows_the_shipped_profiles() {
        assert_eq!(Profile::by_name("default"), Some(Profile::default_profile()));
        assert_eq!(Profile::by_name("tutorial"), Some(Profile::tutorial()));
        assert_eq!(Profile::by_name("unconfined"), None);
    }

    #[test]
    fn both_profiles_compile_to_bpf() {
        for profile in shipped() {
            let filter = profile.compile().expect("compiles");
            assert!(!filter.is_empty());
        }
    }
}
