//! The container's namespaces: what it gets of each kind ([`Namespaces`], plain data: a new
//! one, the host's, or an existing one joined by path), the clone into the new ones, the
//! namespace files opened and checked before the clone ([`JoinedNamespaces`]), and the parent's
//! side of the user namespace: writing `/proc/<pid>/uid_map` and `gid_map`.
//!
//! The clone has fork semantics (no new stack, no shared memory): the child runs on a
//! copy-on-write copy of the parent's memory, which is why crabcan must be single-threaded when
//! it clones. The cgroup namespace is not part of the clone: the child unshares it only after the
//! parent has moved it into its cgroup, so that cgroup becomes the root the container sees.
//!
//! Joining: a pid namespace is entered by the parent (`setns` sets the namespace its *children*
//! are born in) just for the clone; the child enters the others itself with the descriptors
//! the parent sends with `Go`: net, ipc and uts first, the cgroup namespace where it would have
//! unshared one, and a user namespace last of all, once everything that needs the host's
//! root (mounts, the cgroup) is done: after `setns` into a user namespace a process has no
//! capability left over the host's. The namespaces crabcan makes are then owned by the host's
//! user namespace, which only leaves the container's root less able to change them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::error::{ConfigError, Error};
use crate::spec::IdRange;

/// A kind of Linux namespace a container has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NamespaceKind {
    /// User and group ids (`user`).
    User,
    /// Mount points (`mnt`).
    Mount,
    /// Process ids (`pid`).
    Pid,
    /// Hostname and NIS domain name (`uts`).
    Uts,
    /// System V IPC and POSIX message queues (`ipc`).
    Ipc,
    /// Network devices, addresses, ports (`net`).
    Net,
    /// The root of the cgroup hierarchies (`cgroup`).
    Cgroup,
}

impl NamespaceKind {
    /// Every kind, in the order crabcan joins them (the user namespace is joined last; see the
    /// module documentation).
    pub const ALL: [NamespaceKind; 7] = [
        NamespaceKind::Pid,
        NamespaceKind::Mount,
        NamespaceKind::Net,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::Cgroup,
        NamespaceKind::User,
    ];

    /// Its `CLONE_NEW*` flag (what `NS_GET_NSTYPE` answers for a namespace file of this kind).
    pub fn clone_flag(self) -> CloneFlags {
        match self {
            NamespaceKind::User => CloneFlags::CLONE_NEWUSER,
            NamespaceKind::Mount => CloneFlags::CLONE_NEWNS,
            NamespaceKind::Pid => CloneFlags::CLONE_NEWPID,
            NamespaceKind::Uts => CloneFlags::CLONE_NEWUTS,
            NamespaceKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NamespaceKind::Net => CloneFlags::CLONE_NEWNET,
            NamespaceKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }

    /// Its name in `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::User => "user",
            NamespaceKind::Mount => "mnt",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Net => "net",
            NamespaceKind::Cgroup => "cgroup",
        }
    }

    /// The kind whose `CLONE_NEW*` flag is `flag`.
    fn from_clone_flag(flag: i32) -> Option<NamespaceKind> {
        NamespaceKind::ALL
            .into_iter()
            .find(|kind| kind.clone_flag().bits() == flag)
    }

    /// Joined by the container's process itself (all but pid, which the parent enters for the
    /// clone, and mount, which crabcan never joins).
    pub(crate) fn joined_by_child(self) -> bool {
        !matches!(self, NamespaceKind::Pid | NamespaceKind::Mount)
    }
}

impl std::fmt::Display for NamespaceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.proc_name())
    }
}

/// What a container gets of one kind of namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NamespaceMode {
    /// A namespace of its own (the default, and all crabcan's direct mode uses).
    #[default]
    New,
    /// crabcan's own, which is the host's (`podman run --network host`).
    Host,
    /// The existing namespace this file refers to (`/proc/<pid>/ns/net`, `/run/netns/NAME`).
    Join(PathBuf),
}

/// For each kind of namespace, what the container gets. The default is a new one of every kind.
///
/// A new mount namespace is required ([`ContainerConfig::validate`](crate::ContainerConfig)
/// refuses anything else): crabcan builds the container's filesystem and pivots into it there.
/// The cgroup namespace is always made after the process is in its cgroup, never by the clone.
/// A new user namespace takes its maps from [`IdMapping`](crate::IdMapping); a shared or joined
/// one gets none written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespaces {
    /// The user namespace.
    pub user: NamespaceMode,
    /// The mount namespace (must be [`NamespaceMode::New`]).
    pub mount: NamespaceMode,
    /// The pid namespace.
    pub pid: NamespaceMode,
    /// The uts namespace (hostname).
    pub uts: NamespaceMode,
    /// The ipc namespace.
    pub ipc: NamespaceMode,
    /// The network namespace.
    pub net: NamespaceMode,
    /// The cgroup namespace.
    pub cgroup: NamespaceMode,
}

impl Namespaces {
    /// What the container gets of `kind`.
    pub fn mode(&self, kind: NamespaceKind) -> &NamespaceMode {
        match kind {
            NamespaceKind::User => &self.user,
            NamespaceKind::Mount => &self.mount,
            NamespaceKind::Pid => &self.pid,
            NamespaceKind::Uts => &self.uts,
            NamespaceKind::Ipc => &self.ipc,
            NamespaceKind::Net => &self.net,
            NamespaceKind::Cgroup => &self.cgroup,
        }
    }

    /// Sets what the container gets of `kind`.
    pub fn set(&mut self, kind: NamespaceKind, mode: NamespaceMode) {
        let slot = match kind {
            NamespaceKind::User => &mut self.user,
            NamespaceKind::Mount => &mut self.mount,
            NamespaceKind::Pid => &mut self.pid,
            NamespaceKind::Uts => &mut self.uts,
            NamespaceKind::Ipc => &mut self.ipc,
            NamespaceKind::Net => &mut self.net,
            NamespaceKind::Cgroup => &mut self.cgroup,
        };
        *slot = mode;
    }

    /// Whether the container gets a new namespace of `kind`.
    pub fn is_new(&self, kind: NamespaceKind) -> bool {
        *self.mode(kind) == NamespaceMode::New
    }

    /// The namespaces joined by path, in joining order.
    pub fn joined(&self) -> impl Iterator<Item = (NamespaceKind, &Path)> + '_ {
        NamespaceKind::ALL.into_iter().filter_map(|kind| match self.mode(kind) {
            NamespaceMode::Join(path) => Some((kind, path.as_path())),
            _ => None,
        })
    }

    /// The kinds whose namespace files the child receives with `Go`, in the order they come.
    pub(crate) fn joined_by_child(&self) -> impl Iterator<Item = NamespaceKind> + '_ {
        self.joined()
            .map(|(kind, _)| kind)
            .filter(|kind| kind.joined_by_child())
    }

    /// The flags of the clone: every new namespace but the cgroup one (unshared later).
    pub fn clone_flags(&self) -> CloneFlags {
        NamespaceKind::ALL
            .into_iter()
            .filter(|kind| *kind != NamespaceKind::Cgroup && self.is_new(*kind))
            .fold(CloneFlags::empty(), |flags, kind| flags | kind.clone_flag())
    }
}

/// `NS_GET_NSTYPE` of ioctl_ns(2): `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
/// `f_type` of the nsfs filesystem (`NSFS_MAGIC`).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// A namespace file opened and checked: it is a namespace, of the kind it is joined as.
#[derive(Debug)]
pub struct NamespaceFile {
    /// The kind it was checked to be.
    pub kind: NamespaceKind,
    /// The path it was opened from.
    pub path: PathBuf,
    fd: OwnedFd,
}

impl NamespaceFile {
    /// Opens `path` as a namespace of `kind`. The path is first opened `O_PATH` and must be on
    /// nsfs, so a hostile path naming a FIFO or a device is never opened for reading (which
    /// could block, or have effects); then `NS_GET_NSTYPE` must say `kind`.
    pub fn open(kind: NamespaceKind, path: &Path) -> Result<NamespaceFile, ConfigError> {
        let bad = |why: String| ConfigError::BadNamespacePath {
            kind: kind.proc_name(),
            path: path.to_owned(),
            why,
        };
        if !path.is_absolute() {
            return Err(bad("it must be an absolute path".into()));
        }
        let located = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|errno| bad(format!("open(O_PATH): {errno}")))?;
        let filesystem = nix::sys::statfs::fstatfs(&located).map_err(|errno| bad(format!("fstatfs: {errno}")))?;
        if filesystem.filesystem_type().0 as i64 != NSFS_MAGIC {
            return Err(bad(
                "it is not a namespace file (not on nsfs, as /proc/PID/ns/* and their bind mounts are)".into(),
            ));
        }
        let fd = nix::fcntl::open(
            crate::safe_path::fd_path(&located).as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| bad(format!("open: {errno}")))?;
        // SAFETY: NS_GET_NSTYPE takes no argument and returns the CLONE_NEW* value or -1.
        let found = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
        if found < 0 {
            return Err(bad(format!("ioctl(NS_GET_NSTYPE): {}", Errno::last())));
        }
        match NamespaceKind::from_clone_flag(found) {
            Some(actual) if actual == kind => Ok(NamespaceFile {
                kind,
                path: path.to_owned(),
                fd,
            }),
            Some(actual) => Err(bad(format!("it is a {actual} namespace, not a {kind} one"))),
            None => Err(bad(format!(
                "it is a namespace crabcan does not know (type {found:#x})"
            ))),
        }
    }

    /// A descriptor of the same namespace.
    pub fn try_clone(&self) -> Result<OwnedFd, Errno> {
        self.fd
            .try_clone()
            .map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(libc::EBADF)))
    }

    /// Whether this is the namespace crabcan itself is in (the host's, for crabcan).
    pub fn is_crabcans_own(&self) -> bool {
        let own = format!("/proc/self/ns/{}", self.kind.proc_name());
        match (nix::sys::stat::fstat(&self.fd), nix::sys::stat::stat(own.as_str())) {
            (Ok(this), Ok(own)) => this.st_ino == own.st_ino && this.st_dev == own.st_dev,
            _ => false,
        }
    }
}

impl AsFd for NamespaceFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Enters the namespace `fd` of `kind` (setns(2)).
pub fn join(fd: BorrowedFd<'_>, kind: NamespaceKind) -> Result<(), Errno> {
    nix::sched::setns(fd, kind.clone_flag())
}

/// The namespace files of the namespaces a container joins, opened before the clone.
#[derive(Debug, Default)]
pub struct JoinedNamespaces {
    files: Vec<NamespaceFile>,
}

impl JoinedNamespaces {
    /// Opens and checks every path of `namespaces`. A joined cgroup namespace that is
    /// crabcan's own is refused: the container's cgroup view would show the host's hierarchy.
    pub fn open(namespaces: &Namespaces) -> Result<JoinedNamespaces, ConfigError> {
        let mut files = Vec::new();
        for (kind, path) in namespaces.joined() {
            let file = NamespaceFile::open(kind, path)?;
            if kind == NamespaceKind::User && file.is_crabcans_own() {
                return Err(ConfigError::BadNamespacePath {
                    kind: kind.proc_name(),
                    path: path.to_owned(),
                    why: "it is the host's user namespace, which no process can enter again; leave user out of \
                          the namespaces to share it"
                        .into(),
                });
            }
            if kind == NamespaceKind::Cgroup && file.is_crabcans_own() {
                return Err(ConfigError::BadNamespacePath {
                    kind: kind.proc_name(),
                    path: path.to_owned(),
                    why: "it is the host's cgroup namespace, whose root the container's cgroup view would show; \
                          leave the path out for a new one"
                        .into(),
                });
            }
            files.push(file);
        }
        Ok(JoinedNamespaces { files })
    }

    /// The file of `kind`, if that namespace is joined.
    pub fn get(&self, kind: NamespaceKind) -> Option<&NamespaceFile> {
        self.files.iter().find(|file| file.kind == kind)
    }

    /// The descriptors the child joins itself, in [`Namespaces::joined_by_child`] order.
    pub(crate) fn child_fds(&self) -> Vec<i32> {
        self.files
            .iter()
            .filter(|file| file.kind.joined_by_child())
            .map(|file| file.fd.as_raw_fd())
            .collect()
    }
}

/// The namespace descriptors the child received with `Go`, by kind.
#[derive(Debug, Default)]
pub(crate) struct ReceivedNamespaces {
    fds: Vec<(NamespaceKind, OwnedFd)>,
}

impl ReceivedNamespaces {
    /// Takes the namespace descriptors off the end of what came with `Go` (they follow the
    /// idmapped trees, in [`Namespaces::joined_by_child`] order). `None` if too few came.
    pub(crate) fn split_off(fds: &mut Vec<OwnedFd>, namespaces: &Namespaces) -> Option<ReceivedNamespaces> {
        let kinds: Vec<NamespaceKind> = namespaces.joined_by_child().collect();
        let first = fds.len().checked_sub(kinds.len())?;
        Some(ReceivedNamespaces {
            fds: kinds.into_iter().zip(fds.split_off(first)).collect(),
        })
    }

    /// The descriptor of `kind`, if that namespace is to be joined.
    pub(crate) fn take(&mut self, kind: NamespaceKind) -> Option<OwnedFd> {
        let at = self.fds.iter().position(|(k, _)| *k == kind)?;
        Some(self.fds.remove(at).1)
    }
}

/// While alive, the children crabcan clones are born in a joined pid namespace
/// (`setns(CLONE_NEWPID)` changes only the namespace of the caller's future children); dropping
/// it puts crabcan's own back.
pub struct PidNamespaceForChildren {
    own: OwnedFd,
}

impl PidNamespaceForChildren {
    /// Makes `target` the pid namespace of crabcan's next children.
    pub fn enter(target: &NamespaceFile) -> Result<PidNamespaceForChildren, Error> {
        let own = nix::fcntl::open("/proc/self/ns/pid", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|errno| Error::sys("open(/proc/self/ns/pid)", errno))?;
        join(target.as_fd(), NamespaceKind::Pid)
            .map_err(|errno| Error::sys(format!("setns({}, CLONE_NEWPID)", target.path.display()), errno))?;
        Ok(PidNamespaceForChildren { own })
    }
}

impl Drop for PidNamespaceForChildren {
    fn drop(&mut self) {
        if let Err(errno) = join(self.own.as_fd(), NamespaceKind::Pid) {
            log::warn!("cannot return to crabcan's own pid namespace (setns(CLONE_NEWPID)): {errno}");
        }
    }
}

/// The uid and gid maps of the user namespace `file`, as a process inside it reads them
/// (`/proc/self/uid_map`): a short-lived fork enters it, reads, and exits. The caller must be
/// single-threaded.
pub fn user_namespace_maps(file: &NamespaceFile) -> Result<(Vec<IdRange>, Vec<IdRange>), Error> {
    let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| Error::sys("pipe2", errno))?;
    // SAFETY: the caller is single-threaded (checked by `create`), so no lock is held by another
    // thread; the child only makes syscalls and a few allocations, then _exits.
    match unsafe { nix::unistd::fork() }.map_err(|errno| Error::sys("fork", errno))? {
        nix::unistd::ForkResult::Child => {
            drop(reader);
            let text = join(file.as_fd(), NamespaceKind::User)
                .map_err(|errno| format!("setns: {errno}"))
                .and_then(|()| {
                    let read = |name| std::fs::read_to_string(name).map_err(|error| format!("{name}: {error}"));
                    Ok(format!(
                        "{}-\n{}",
                        read("/proc/self/uid_map")?,
                        read("/proc/self/gid_map")?
                    ))
                });
            let (code, bytes) = match text {
                Ok(maps) => (0, maps.into_bytes()),
                Err(error) => (1, error.into_bytes()),
            };
            let _ = nix::unistd::write(&writer, &bytes);
            // SAFETY: ends the forked copy without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(writer);
            let mut output = Vec::new();
            let read = std::io::Read::read_to_end(&mut std::fs::File::from(reader), &mut output);
            let status = nix::sys::wait::waitpid(child, None);
            let text = String::from_utf8_lossy(&output).into_owned();
            let what = format!("reading the maps of the user namespace {}", file.path.display());
            match (read, status) {
                (Ok(_), Ok(nix::sys::wait::WaitStatus::Exited(_, 0))) => {}
                (Err(error), _) => {
                    return Err(Error::sys(
                        what,
                        Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO)),
                    ))
                }
                _ => {
                    return Err(Error::Protocol {
                        detail: format!("{what}: {}", text.trim()),
                    })
                }
            }
            let (uid, gid) = text.split_once("-\n").unwrap_or((text.as_str(), ""));
            Ok((parse_id_map(uid), parse_id_map(gid)))
        }
    }
}

/// The lines `INSIDE OUTSIDE COUNT` of a `uid_map`/`gid_map`.
fn parse_id_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|line| {
            let mut numbers = line.split_whitespace().map(str::parse::<u32>);
            match (numbers.next(), numbers.next(), numbers.next()) {
                (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) => Some(IdRange { inside, outside, count }),
                _ => None,
            }
        })
        .collect()
}

/// Which side of the clone we are on.
pub enum CloneResult {
    Parent { child: Pid },
    Child,
}

/// `struct clone_args` of clone3(2), up to the `cgroup` field (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) with fork semantics straight into the cgroup v2 directory `cgroup`: the child is
/// born in its cgroup, so no migration (and no wait for an RCU grace period the kernel needs to
/// move a task) is on the start-up path. ENOSYS or E2BIG on kernels before 5.7.
pub fn clone_into_namespaces_and_cgroup(flags: CloneFlags, cgroup: BorrowedFd<'_>) -> Result<CloneResult, Errno> {
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: like `clone_into_namespaces`: no CLONE_VM and no stack, so the child continues here
    // on a copy of the address space; `args` is a valid clone_args whose size is passed.
    let result = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match result {
        -1 => Err(Errno::last()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// clone(2) with fork semantics into new namespaces. The child gets SIGCHLD as exit signal.
pub fn clone_into_namespaces(flags: CloneFlags) -> Result<CloneResult, Errno> {
    // SAFETY: a clone without CLONE_VM and with a NULL stack behaves like fork(2): the child gets
    // its own copy of the address space and continues here. The caller is single-threaded (no
    // lock can be held by another thread), and the child only runs our setup code, then execve
    // or _exit.
    let result = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() as libc::c_long) | libc::SIGCHLD as libc::c_long,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match result {
        -1 => Err(Errno::last()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// Writes the child's uid and gid maps (the caller has dealt with `setgroups`: root leaves it
/// allowed, so the container can manage its supplementary groups; an ordinary user writing its
/// own one-line maps must deny it first, see [`crate::rootless::IdMapPlan`]).
pub fn write_id_maps(child: Pid, uid_map: &IdRange, gid_map: &IdRange) -> Result<(), crate::Error> {
    for (file, range) in [("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = format!("/proc/{child}/{file}");
        std::fs::write(&path, range.map_line()).map_err(|error| {
            let errno = Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO));
            crate::Error::sys(format!("writing {:?} to {path}", range.map_line().trim_end()), errno)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clone_makes_the_new_namespaces_but_the_cgroup_one() {
        let all_new = Namespaces::default();
        assert_eq!(
            all_new.clone_flags(),
            CloneFlags::CLONE_NEWUSER
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWNET
        );
        let mut oci = all_new.clone();
        oci.user = NamespaceMode::Host;
        oci.net = NamespaceMode::Join("/run/netns/pod".into());
        oci.pid = NamespaceMode::Join("/proc/7/ns/pid".into());
        oci.cgroup = NamespaceMode::Join("/proc/7/ns/cgroup".into());
        assert_eq!(
            oci.clone_flags(),
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC
        );
        let joined: Vec<NamespaceKind> = oci.joined().map(|(kind, _)| kind).collect();
        assert_eq!(joined, [NamespaceKind::Pid, NamespaceKind::Net, NamespaceKind::Cgroup]);
        let by_child: Vec<NamespaceKind> = oci.joined_by_child().collect();
        assert_eq!(
            by_child,
            [NamespaceKind::Net, NamespaceKind::Cgroup],
            "pid is the parent's"
        );
    }

    #[test]
    fn only_namespace_files_of_the_right_kind_open() {
        let own = NamespaceFile::open(NamespaceKind::Net, Path::new("/proc/self/ns/net")).unwrap();
        assert!(own.is_crabcans_own());
        let wrong = NamespaceFile::open(NamespaceKind::Pid, Path::new("/proc/self/ns/net")).unwrap_err();
        assert!(
            wrong.to_string().contains("it is a net namespace, not a pid one"),
            "{wrong}"
        );
        let file = NamespaceFile::open(NamespaceKind::Net, Path::new("/proc/self/status")).unwrap_err();
        assert!(file.to_string().contains("not a namespace file"), "{file}");
        let missing = NamespaceFile::open(NamespaceKind::Net, Path::new("/nonexistent/ns")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/ns"), "{missing}");
        assert!(NamespaceFile::open(NamespaceKind::Net, Path::new("proc/self/ns/net")).is_err());
    }

    #[test]
    fn id_map_lines_parse() {
        let maps = parse_id_map("         0     100000      65536\n 65536 1 1\ngarbage\n");
        assert_eq!(
            maps,
            [
                IdRange {
                    inside: 0,
                    outside: 100000,
                    count: 65536
                },
                IdRange {
                    inside: 65536,
                    outside: 1,
                    count: 1
                }
            ]
        );
    }
}
