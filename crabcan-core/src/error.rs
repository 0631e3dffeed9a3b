//! Errors of crabcan-core, one enum per layer: [`SpecError`] for text the user wrote,
//! [`ConfigError`] for a configuration that cannot work, [`Error`] for everything that goes wrong
//! while a container is set up or run. Every message is one line that names the path, value or
//! syscall at fault; [`Error::exit_code`] gives the exit status container users expect.

use std::path::PathBuf;

use nix::errno::Errno;

/// A malformed command-line spec (`--add`, `--uid-map`, `--env`, the command string).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// A quote in the command string is not closed.
    #[error(
        "the command {} has an unclosed quote; close it or pass the command after `--`",
        crate::spec::display_word(command)
    )]
    UnbalancedQuotes {
        /// The command as given.
        command: String,
    },
    /// No command was given.
    #[error("the command is empty; give a program to run, e.g. --command /bin/sh")]
    EmptyCommand,
    /// A `HOST:CONTAINER[:ro]` spec is malformed.
    #[error("bad bind mount {spec:?}: {why}")]
    BadBindMount {
        /// The text as given.
        spec: String,
        /// What is wrong.
        why: &'static str,
    },
    /// An `INSIDE:OUTSIDE:COUNT` id map is malformed.
    #[error("bad id map {spec:?}: {why}")]
    BadIdMap {
        /// The text as given.
        spec: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A `KEY=VALUE` spec is malformed.
    #[error("bad environment variable {spec:?}: {why}")]
    BadEnv {
        /// The text as given.
        spec: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// A configuration that is well-formed but cannot work on this host. Found before anything on the
/// system is touched.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The rootfs does not exist.
    #[error(
        "the rootfs {path} does not exist; build one with `cargo xtask rootfs --out {path}` or pass another --mount"
    )]
    RootfsMissing {
        /// The path at fault.
        path: PathBuf,
    },
    /// The rootfs is not a directory.
    #[error("the rootfs {path} is not a directory; --mount takes a directory holding a root filesystem")]
    RootfsNotDirectory {
        /// The path at fault.
        path: PathBuf,
    },
    /// The rootfs is the host's `/`.
    #[error("the rootfs path {path} must not be '/'; give the directory of a container root filesystem")]
    RootfsIsHostRoot {
        /// The path at fault.
        path: PathBuf,
    },
    /// A directory crabcan mounts on is a symlink.
    #[error("{path} in the rootfs is a symlink (to {target}); crabcan mounts there, so it must be a real directory: replace the link with a directory")]
    MountPointIsSymlink {
        /// The path at fault.
        path: PathBuf,
        /// Where the symlink points.
        target: PathBuf,
    },
    /// A directory crabcan mounts on is not a directory.
    #[error("{path} in the rootfs is not a directory; crabcan mounts a filesystem there: make it a directory")]
    MountPointNotDirectory {
        /// The path at fault.
        path: PathBuf,
    },
    /// A malformed spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The hostname is invalid.
    #[error("the hostname {name:?} is invalid: {why}")]
    BadHostname {
        /// The name as given.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A bind mount source does not exist.
    #[error("the bind mount source {path} does not exist on the host; create it or fix the --add spec")]
    BindSourceMissing {
        /// The path at fault.
        path: PathBuf,
    },
    /// A bind mount targets the container's `/`.
    #[error("the bind mount target {path} is the container's root; pick a directory below /")]
    BindTargetIsRoot {
        /// The path at fault.
        path: PathBuf,
    },
    /// A bind mount targets `/proc`, `/sys` or `/dev`, or a path below.
    #[error("the bind mount target {path} is on {filesystem}, where crabcan mounts a kernel filesystem; pick a target outside /proc, /sys and /dev")]
    BindTargetOnKernelFilesystem {
        /// The path at fault.
        path: PathBuf,
        /// The kernel filesystem's mount point.
        filesystem: &'static str,
    },
    /// The `/tmp` size is zero.
    #[error("the /tmp size must be at least 1 byte; give a size such as 64M")]
    BadTmpSize,
    /// [`crate::StartGate::Immediately`] with [`crate::Terminal::Pty`].
    #[error(
        "a container with a pty cannot start immediately (its pty is sized when it is released); use StartGate::Parent"
    )]
    ImmediateStartWithPty,
    /// The uid is outside the uid map.
    #[error("uid {uid} is outside the container's uid map {map}; pick a uid in the map or widen --uid-map")]
    UidNotMapped {
        /// The uid.
        uid: u32,
        /// The map.
        map: String,
    },
    /// The gid is outside the gid map.
    #[error("gid {gid} is outside the container's gid map {map}; pick a gid in the map or widen --gid-map")]
    GidNotMapped {
        /// The gid.
        gid: u32,
        /// The map.
        map: String,
    },
    /// The working directory is relative.
    #[error("the working directory {path} must be an absolute path inside the container")]
    WorkdirNotAbsolute {
        /// The path at fault.
        path: PathBuf,
    },
    /// A capability name is unknown.
    #[error("unknown capability {name:?}; use names like CAP_NET_ADMIN or NET_ADMIN (see capabilities(7)), or ALL")]
    UnknownCapability {
        /// The name as given.
        name: String,
    },
    /// The open-files limit is zero, above crabcan's own hard limit, or soft above hard.
    #[error("the open-files limit {value} is out of range; give a value from 1 to {max} (crabcan's own hard limit, which it cannot raise)")]
    BadFileLimit {
        /// The value given.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// The start FIFO is unusable.
    #[error("the start FIFO {path}: {why}")]
    BadStartFifo {
        /// The path at fault.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
    /// A hook cannot be run as it is.
    #[error("the {kind} hook {} is invalid: {why}", path.display())]
    BadHook {
        /// Its kind, e.g. `createRuntime`.
        kind: &'static str,
        /// Its program.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The OOM score adjustment is out of the kernel's range.
    #[error("the OOM score adjustment {value} is out of range; give a value from -1000 to 1000")]
    BadOomScoreAdj {
        /// The value given.
        value: i32,
    },
    /// A descriptor to pass to the container is not open.
    #[error("descriptor {fd} is not open, but the {count} descriptors from 3 up were to be passed to the container (--preserve-fds, and socket activation's LISTEN_FDS); open them all or pass fewer")]
    PreservedFdClosed {
        /// The first closed one.
        fd: i32,
        /// How many were to be passed.
        count: u32,
    },
    /// More descriptors to pass than crabcan allows.
    #[error("{count} descriptors to pass to the container are more than the {max} crabcan allows")]
    TooManyPreservedFds {
        /// How many were asked for.
        count: u32,
        /// The most allowed.
        max: u32,
    },
    /// A session keyring name the kernel cannot take.
    #[error("the session keyring name {name:?} is empty or holds a NUL byte")]
    BadKeyringName {
        /// The name given.
        name: String,
    },
    /// A namespace to join cannot be: its path is no namespace file of that kind.
    #[error("cannot join the {kind} namespace {path}: {why}")]
    BadNamespacePath {
        /// The kind of namespace (`net`, `pid`...).
        kind: &'static str,
        /// The path given.
        path: PathBuf,
        /// What is wrong, with the syscall that failed.
        why: String,
    },
    /// The container's mount namespace is not a new one.
    #[error("the container needs a mount namespace of its own (crabcan builds its filesystem and pivots into it there), not {mode}")]
    MountNamespaceNotNew {
        /// What was asked for instead.
        mode: String,
    },
    /// A hostname or domain name is set without a uts namespace of the container's own.
    #[error(
        "setting the hostname needs a uts namespace of the container's own: with the host's, it would rename the host"
    )]
    HostnameWithoutUtsNamespace,
    /// The id maps and the user namespace disagree.
    #[error("{why}")]
    UserNamespaceMaps {
        /// How they disagree.
        why: String,
    },
    /// A learning run that cannot work as configured.
    #[error("cannot learn a seccomp profile into {path}: {why}")]
    BadLearning {
        /// The profile to write.
        path: PathBuf,
        /// What is wrong, and what to do.
        why: String,
    },
    /// crabcan runs as root without CAP_SYS_ADMIN.
    #[error("crabcan runs as root without CAP_SYS_ADMIN, which root's containers need (host ids, idmapped mounts, cgroups); run it as root with all its capabilities, or as an ordinary user (rootless)")]
    NotPrivileged,
    /// `create` was called from a multi-threaded process.
    #[error("Container::create was called from a process with {threads} threads; the container process is forked, so call it before starting other threads (or from a single-threaded helper process)")]
    MultiThreaded {
        /// How many threads the calling process has.
        threads: usize,
    },
}

/// Anything that stops a container from being created, started or waited for.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work on this host.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The seccomp filter failed.
    #[error(transparent)]
    Seccomp(#[from] crabcan_seccomp::SeccompError),
    /// The cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] crabcan_cgroups::CgroupError),
    /// No host ids could be chosen, or the given ones are not free.
    #[error(transparent)]
    Ids(#[from] crate::id_ranges::IdRangeError),
    /// An ordinary user's crabcan cannot do what was asked here.
    #[error(transparent)]
    Rootless(#[from] crate::rootless::RootlessError),
    /// A syscall made by crabcan itself (the parent side) failed.
    #[error("{what} failed: {errno}")]
    Sys {
        /// What was attempted.
        what: String,
        /// The errno.
        errno: Errno,
    },
    /// A setup step inside the new container failed; `detail` names the syscall and path.
    #[error("container setup failed at {step}: {detail}")]
    Setup {
        /// The setup step that failed.
        step: String,
        /// What was attempted, on which path.
        detail: String,
        /// The errno.
        errno: Errno,
    },
    /// The command is not in the container.
    #[error(
        "the command {} was not found in the container (no such file or directory); check the path inside the rootfs and PATH",
        crate::spec::display_word(command)
    )]
    CommandNotFound {
        /// The command as given.
        command: String,
    },
    /// The command exists, but its `#!` interpreter or dynamic loader does not.
    #[error("the command {} exists but its interpreter {} is missing in the container; install it in the rootfs or fix the script's #! line", crate::spec::display_word(command), crate::spec::display_word(interpreter))]
    InterpreterMissing {
        /// The command as given.
        command: String,
        /// The missing interpreter or dynamic loader.
        interpreter: String,
    },
    /// The command cannot be executed.
    #[error(
        "the command {} cannot be executed in the container: {errno}{}",
        crate::spec::display_word(command),
        if *errno == Errno::EACCES { " (permission denied)" } else { "" }
    )]
    CommandNotExecutable {
        /// The command as given.
        command: String,
        /// The errno.
        errno: Errno,
    },
    /// The container process died during setup without saying why.
    #[error("the container process died during setup ({how}) before it could run the command")]
    ChildDied {
        /// How it ended.
        how: String,
    },
    /// `exec`: the container's first process is not there any more (it exited, or its pid now
    /// belongs to another process: its start time changed).
    #[error("the container's process {pid} is gone (it exited, or its pid now belongs to another process)")]
    ContainerProcessGone {
        /// The pid the container's process had.
        pid: i32,
    },
    /// The OOM killer killed the container process during setup.
    #[error("the container process was killed by the out-of-memory killer during setup{}: the memory limit is too small to start it; raise it", limit.map(|bytes| format!(" (memory limit {})", crate::error::human_size(bytes))).unwrap_or_default())]
    SetupOutOfMemory {
        /// The memory limit in force, in bytes.
        limit: Option<u64>,
    },
    /// The container process sent an unexpected message.
    #[error("the container process sent an unexpected message during setup: {detail}")]
    Protocol {
        /// What was attempted, on which path.
        detail: String,
    },
    /// The handshake socket broke.
    #[error(transparent)]
    Handshake(#[from] crate::handshake::HandshakeError),
    /// A confinement the configuration asks for cannot be applied on this host, and
    /// [`crate::ContainerConfig::strict`] says not to run without it.
    #[error("{what}, and strict mode does not run a container looser than asked; drop --strict to run without it")]
    NotHonoured {
        /// What cannot be applied, and why.
        what: String,
    },
    /// The container's OOM score adjustment could not be set.
    #[error(
        "cannot set the OOM score adjustment of the container (process.oomScoreAdj) to {value}: writing {} failed: {errno}{}",
        path.display(),
        if *errno == Errno::EACCES { "; lowering it below crabcan's own needs CAP_SYS_RESOURCE" } else { "" }
    )]
    OomScoreAdj {
        /// The value asked for.
        value: i32,
        /// The file written.
        path: PathBuf,
        /// The errno.
        errno: Errno,
    },
    /// A hook crabcan ran failed (`prestart`, `createRuntime`).
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
}

/// Exit status when crabcan itself failed before the command ran.
pub const EXIT_SETUP_FAILED: i32 = 125;
/// Exit status when the command exists but cannot be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// Exit status when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;

impl Error {
    /// The exit status a CLI should use for this error (the conventions of `docker run`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::CommandNotFound { .. } | Error::InterpreterMissing { .. } => EXIT_NOT_FOUND,
            Error::CommandNotExecutable { .. } => EXIT_CANNOT_EXECUTE,
            _ => EXIT_SETUP_FAILED,
        }
    }

    pub(crate) fn sys(what: impl Into<String>, errno: Errno) -> Error {
        Error::Sys {
            what: what.into(),
            errno,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A byte count for messages: `64 MiB`, `100 KiB`, `1.5 GiB`, `512 B`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(100 * 1024), "100 KiB");
        assert_eq!(human_size(64 << 20), "64 MiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
    }
}
