//! The container's filesystem: the ordered list of mount steps (a plan, plain data, unit-tested
//! without root) and the code that carries it out inside the new mount namespace, ending with
//! `pivot_root` into the rootfs and the detach of the old root. Nothing is mounted in the host's
//! mount namespace and no directory is created on the host outside the rootfs: the old root is
//! pivoted onto "." and detached, so no put-old folder exists at all.

use std::borrow::Cow;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::config::ContainerConfig;
use crate::copy_up;
use crate::fresh_tmpfs::FreshTmpfs;
use crate::idmap::{self, ReceivedTrees};
use crate::safe_path::{ensure_dir_in_root, ensure_file_in_root, fd_path, open_in_root, Symlinks};
use crate::spec::BindMount;

/// Device nodes of the host bound into the container's `/dev` (device nodes cannot be created
/// in a user namespace, so they are bind-mounted).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The links of /dev every container gets: the pty multiplexer and the standard streams.
pub const DEV_LINKS: [(&str, &str); 5] = [
    ("dev/ptmx", "pts/ptmx"),
    ("dev/fd", "/proc/self/fd"),
    ("dev/stdin", "/proc/self/fd/0"),
    ("dev/stdout", "/proc/self/fd/1"),
    ("dev/stderr", "/proc/self/fd/2"),
];

/// Paths hidden from the container: every path Docker masks, and `/proc/sysrq-trigger`, which
/// Docker only makes read-only. A file is covered by /dev/null, a directory by an empty
/// read-only tmpfs (chosen by what the path is when the container starts).
pub const MASKED_PATHS: [&str; 13] = [
    "proc/asound",
    "proc/acpi",
    "proc/interrupts",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "proc/sysrq-trigger",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];
/// Paths of /proc made read-only (recursively), as Docker does.
pub const READ_ONLY_PATHS: [&str; 4] = ["proc/bus", "proc/fs", "proc/irq", "proc/sys"];

/// The container paths crabcan mounts kernel filesystems on: a `--add` bind may not land on or
/// below them (it would replace procfs and its masks, or show the host's processes).
pub const KERNEL_FILESYSTEMS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// One step of building the container's filesystem. Paths are relative to the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountStep {
    /// Set the propagation of the namespace's `/` (`MS_REC | MS_PRIVATE`: nothing propagates
    /// either way, crabcan's own choice; `MS_REC | MS_SLAVE`, runc's default: the host's
    /// mounts still reach the container, nothing goes back), and make the mount holding the
    /// rootfs private (slave with `MS_SLAVE`), so the rootfs bind cannot propagate to the host
    /// and `pivot_root` accepts it.
    RootPropagation(MsFlags),
    /// Bind the rootfs onto itself so it is a mount point `pivot_root` accepts.
    BindRootfs,
    /// No device node on the rootfs (and the mounts below it) can be opened: device access is
    /// only through the few nodes crabcan binds into /dev.
    NoDevices,
    /// Mount a fresh filesystem on a directory that must not be a symlink.
    Filesystem {
        target: Cow<'static, str>,
        /// What the mount table shows as the mount's source (OCI `source`, e.g. `shm`); the
        /// kernel filesystems mounted here take any name.
        source: Cow<'static, str>,
        fstype: Cow<'static, str>,
        flags: MsFlags,
        data: String,
    },
    /// Mount a tmpfs on a directory that must not be a symlink, holding a copy of what the
    /// directory held (OCI `tmpcopyup`).
    TmpfsCopyUp {
        target: Cow<'static, str>,
        /// The mount's source name, as for [`MountStep::Filesystem`].
        source: Cow<'static, str>,
        flags: MsFlags,
        data: String,
    },
    /// Create a directory inside a filesystem crabcan just mounted.
    Directory {
        path: Cow<'static, str>,
    },
    /// Bind a host device node onto `dev/<name>`.
    HostDevice {
        name: &'static str,
    },
    Symlink {
        path: &'static str,
        target: &'static str,
    },
    /// A `--add` bind mount.
    Bind(BindMount),
    /// A bind mount of an OCI bundle, with its options.
    OciBind(Box<OciBind>),
    /// Change the propagation of the mount at `target` (after mounting it), in this order.
    Propagation {
        target: String,
        flags: Vec<MsFlags>,
    },
    /// A device node of an OCI bundle (`linux.devices`).
    Device(DeviceNode),
    /// Hide a path: a file behind /dev/null, a directory behind an empty read-only tmpfs
    /// (skipped where the path does not exist).
    Mask {
        path: Cow<'static, str>,
    },
    /// Bind a directory onto itself and make it read-only, recursively.
    ReadOnly {
        path: Cow<'static, str>,
    },
    /// Make the rootfs's own mount read-only (the mounts on it keep their flags).
    ReadOnlyRoot,
    /// Write `value` to the container's `/proc/sys/<key with dots as slashes>` (a namespaced
    /// sysctl: the container's own network, ipc or uts namespace), before /proc/sys is made
    /// read-only.
    Sysctl {
        key: String,
        value: String,
    },
    /// Create the working directory (while still root) so the command can start there.
    WorkingDirectory(PathBuf),
    /// Make the rootfs `/` and detach the host's root.
    PivotRoot,
    /// Set the propagation of the new `/`, after `pivot_root` (an OCI `rootfsPropagation` of
    /// shared or unbindable; private and slave are set by [`MountStep::RootPropagation`]).
    NewRootPropagation(MsFlags),
}

/// `mount_setattr(2)` attributes to set and to clear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountAttributes {
    /// `MOUNT_ATTR_*` bits to set.
    pub set: u64,
    /// `MOUNT_ATTR_*` bits to clear.
    pub clear: u64,
}

impl MountAttributes {
    fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

/// A bind mount of an OCI bundle's `mounts`: `bind` or `rbind` of `source` (a host path) onto
/// `target` inside the rootfs, then the options: `top` on the bound mount, `all` on it and every
/// mount below (always `nodev`: no device node of a host tree can be opened; `ro` is recursive
/// too), then the propagation changes in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciBind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub recursive: bool,
    /// `idmap` (`Some(false)`: the bound mount) or `ridmap` (`Some(true)`: every mount of the
    /// tree), through the container's user namespace: the parent makes the idmapped copy.
    pub idmap: Option<bool>,
    pub top: MountAttributes,
    pub all: MountAttributes,
    pub propagation: Vec<MsFlags>,
}

/// The kinds of node `linux.devices` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

impl DeviceKind {
    /// The `S_IF*` type bits.
    pub fn file_type(self) -> libc::mode_t {
        match self {
            DeviceKind::Char => libc::S_IFCHR,
            DeviceKind::Block => libc::S_IFBLK,
            DeviceKind::Fifo => libc::S_IFIFO,
        }
    }
}

/// How a device node of the bundle comes to be at its path in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSource {
    /// Bind the host's node at this path (checked again, when bound, to be the same device);
    /// the node keeps the host's mode and owner (a bind shares the host's inode).
    Host(PathBuf),
    /// Make a node of its own with this mode and owner (no user namespace, where the host's
    /// node has another mode or owner: changing them through a bind would change the host's),
    /// usable through a bind of it onto itself without `nodev`.
    Own { mode: u32, uid: u32, gid: u32 },
    /// Make a node of its own with this mode and owner that is never made usable: a device
    /// the bundle lists but its `linux.resources.devices` denies (no user namespace). The
    /// node is there, as listed; on the nodev /dev opening it fails, as the device cgroup's
    /// denial does under runc.
    Denied { mode: u32, uid: u32, gid: u32 },
}

/// A device node of the bundle's `linux.devices`: `target` (absolute, in the container) is a
/// `kind` node of `major:minor` (a FIFO has no numbers and is always made, with `mode` and the
/// owner of [`DeviceSource::Own`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub target: PathBuf,
    pub kind: DeviceKind,
    pub major: u64,
    pub minor: u64,
    pub source: DeviceSource,
}

/// The steps for `config`, in the order they must run.
pub fn plan(config: &ContainerConfig) -> Vec<MountStep> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let pts_options = if config.gid_mapped_inside(5) {
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    } else {
        "newinstance,ptmxmode=0666,mode=0620"
    };
    let mut steps = vec![
        MountStep::RootPropagation(MsFlags::MS_REC | MsFlags::MS_PRIVATE),
        MountStep::BindRootfs,
        MountStep::NoDevices,
        MountStep::Filesystem {
            target: "proc".into(),
            source: "proc".into(),
            fstype: "proc".into(),
            flags: nosuid_nodev_noexec,
            data: String::new(),
        },
        MountStep::Filesystem {
            target: "dev".into(),
            source: "tmpfs".into(),
            fstype: "tmpfs".into(),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            data: "mode=755,size=65536k".into(),
        },
    ];
    steps.extend(DEVICES.iter().map(|name| MountStep::HostDevice { name }));
    steps.extend([
        MountStep::Directory { path: "dev/pts".into() },
        MountStep::Filesystem {
            target: "dev/pts".into(),
            source: "devpts".into(),
            fstype: "devpts".into(),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            data: pts_options.into(),
        },
        MountStep::Symlink {
            path: DEV_LINKS[0].0,
            target: DEV_LINKS[0].1,
        },
        MountStep::Directory { path: "dev/shm".into() },
        MountStep::Filesystem {
            target: "dev/shm".into(),
            source: "tmpfs".into(),
            fstype: "tmpfs".into(),
            flags: nosuid_nodev_noexec,
            data: "mode=1777,size=65536k".into(),
        },
    ]);
    steps.extend(
        DEV_LINKS[1..]
            .iter()
            .map(|(path, target)| MountStep::Symlink { path, target }),
    );
    steps.extend([
        MountStep::Filesystem {
            target: "sys".into(),
            source: "sysfs".into(),
            fstype: "sysfs".into(),
            flags: nosuid_nodev_noexec | MsFlags::MS_RDONLY,
            data: String::new(),
        },
        MountStep::Filesystem {
            target: "tmp".into(),
            source: "tmpfs".into(),
            fstype: "tmpfs".into(),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: format!("mode=1777,size={}", config.tmp_size()),
        },
    ]);
    steps.extend(config.binds.iter().cloned().map(MountStep::Bind));
    steps.extend(MASKED_PATHS.iter().map(|path| MountStep::Mask { path: (*path).into() }));
    steps.extend(
        READ_ONLY_PATHS
            .iter()
            .map(|path| MountStep::ReadOnly { path: (*path).into() }),
    );
    steps.push(MountStep::WorkingDirectory(config.workdir.clone()));
    steps.push(MountStep::PivotRoot);
    steps
}

/// Splits a plan where the hooks that run before pivot_root (`prestart`, `createRuntime`,
/// `createContainer`) see the container's filesystem, runc's order: after every mount, before
/// the sysctls, masks, read-only paths, working directory, read-only root and pivot_root, so
/// a hook can add mounts (on a root still writable) but not undo a protection.
pub fn split_for_hooks(plan: &[MountStep]) -> (&[MountStep], &[MountStep]) {
    let protections_start = plan
        .iter()
        .position(|step| {
            matches!(
                step,
                MountStep::Sysctl { .. }
                    | MountStep::Mask { .. }
                    | MountStep::ReadOnly { .. }
                    | MountStep::WorkingDirectory(_)
                    | MountStep::ReadOnlyRoot
                    | MountStep::PivotRoot
            )
        })
        .unwrap_or(plan.len());
    plan.split_at(protections_start)
}

/// A failed step: what was attempted, on which path, and the errno.
#[derive(Debug, thiserror::Error)]
#[error("{detail}: {errno}")]
pub struct MountError {
    pub detail: String,
    pub errno: Errno,
}

/// Where [`MountStep::HostDevice`] `name` is bound in the container, relative to its root.
pub(crate) fn host_device_target(name: &str) -> String {
    format!("dev/{name}")
}

/// What [`Mounter::made_in_fresh_tmpfs`] makes.
#[derive(Debug, Clone, Copy)]
enum EntryKind {
    Directory,
    File,
}

/// Carries out a plan inside the container's (already unshared) mount namespace.
pub struct Mounter {
    rootfs: PathBuf,
    root: OwnedFd,
    /// Idmapped copies of the rootfs and of `--add` sources, attached instead of plain binds.
    trees: ReceivedTrees,
    /// How many `Bind` steps have run: the index into `trees.binds`.
    binds_done: usize,
    /// The first masked directory's empty read-only tmpfs: the later ones get copies of its
    /// mount (same superblock), cheaper to make and to tear down than a tmpfs each.
    empty_tmpfs: Option<OwnedFd>,
    /// The tmpfs the latest steps mounted, whose direct entries are made below their root.
    fresh: FreshTmpfs,
}

impl Mounter {
    pub fn new(rootfs: &Path, trees: ReceivedTrees) -> Result<Mounter, MountError> {
        let root = open_directory(rootfs).map_err(|errno| MountError {
            detail: format!("cannot open the rootfs {}", rootfs.display()),
            errno,
        })?;
        Ok(Mounter {
            rootfs: rootfs.to_owned(),
            root,
            trees,
            binds_done: 0,
            empty_tmpfs: None,
            fresh: FreshTmpfs::default(),
        })
    }

    pub fn run(&mut self, steps: &[MountStep]) -> Result<(), MountError> {
        for step in steps {
            log::trace!("mount step {step:?}");
            self.apply(step)?;
        }
        Ok(())
    }

    fn apply(&mut self, step: &MountStep) -> Result<(), MountError> {
        let device_path;
        let inside_fresh = match step {
            MountStep::Filesystem { target, .. } => Some(target.as_ref()),
            MountStep::HostDevice { name } => {
                device_path = host_device_target(name);
                Some(device_path.as_str())
            }
            MountStep::Symlink { path, .. } => Some(*path),
            MountStep::Directory { path } => Some(path.as_ref()),
            _ => None,
        };
        self.fresh.forget_unless_inside(inside_fresh);
        match step {
            MountStep::RootPropagation(flags) => self.root_propagation(*flags),
            MountStep::BindRootfs => self.bind_rootfs(),
            MountStep::NoDevices => set_attributes(&self.root, MOUNT_ATTR_NODEV, None)
                .map_err(|errno| self.error("cannot make the rootfs nodev:", "", errno)),
            MountStep::Filesystem {
                target,
                source,
                fstype,
                flags,
                data,
            } => self.mount_filesystem(target, source, fstype, *flags, data),
            MountStep::TmpfsCopyUp {
                target,
                source,
                flags,
                data,
            } => self.mount_tmpfs_copy_up(target, source, *flags, data),
            MountStep::Directory { path } => self.directory(path),
            MountStep::HostDevice { name } => self.bind_host_device(name),
            MountStep::Symlink { path, target } => self.symlink(path, target),
            MountStep::Bind(bind) => self.bind(bind),
            MountStep::OciBind(bind) => self.oci_bind(bind),
            MountStep::Propagation { target, flags } => {
                let fd = open_in_root(self.root.as_fd(), Path::new(target), Symlinks::StayInRoot)
                    .map_err(|errno| self.error("cannot open", target, errno))?;
                self.propagate(&fd, target, flags)
            }
            MountStep::Device(node) => self.device(node),
            MountStep::Mask { path } => self.mask(path),
            MountStep::ReadOnly { path } => self.read_only(path),
            MountStep::Sysctl { key, value } => self.sysctl(key, value),
            MountStep::ReadOnlyRoot => remount_read_only(&self.root)
                .map_err(|errno| self.error("cannot make the rootfs read-only:", "", errno)),
            MountStep::WorkingDirectory(path) => self.with_path(&path.display().to_string(), |root| {
                ensure_dir_in_root(root, path, Symlinks::StayInRoot).map(drop)
            }),
            MountStep::PivotRoot => self.pivot_root(),
            MountStep::NewRootPropagation(flags) => mount(None::<&str>, "/", None::<&str>, *flags, None::<&str>)
                .map_err(|errno| MountError {
                    detail: format!("cannot set the propagation of the new root (mount / {flags:?})"),
                    errno,
                }),
        }
    }

    fn root_propagation(&self, flags: MsFlags) -> Result<(), MountError> {
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).map_err(|errno| MountError {
            detail: format!("cannot set the propagation of / (mount {flags:?})"),
            errno,
        })?;
        // The mount holding the rootfs must not be shared, for pivot_root: made private (or a
        // slave) on its own, unless the recursive change just made every mount private.
        if flags.contains(MsFlags::MS_REC | MsFlags::MS_PRIVATE) {
            return Ok(());
        }
        // It is the first of the rootfs's ancestors that is a mount point (mount says EINVAL
        // for a directory that is none).
        let own = if flags.contains(MsFlags::MS_SLAVE) {
            MsFlags::MS_SLAVE
        } else {
            MsFlags::MS_PRIVATE
        };
        let mut path = self.rootfs.as_path();
        loop {
            match mount(None::<&str>, path, None::<&str>, own, None::<&str>) {
                Err(Errno::EINVAL) if path.parent().is_some() => path = path.parent().unwrap_or(Path::new("/")),
                result => {
                    return result.map_err(|errno| MountError {
                        detail: format!("cannot make the mount holding the rootfs, {}, {own:?}", path.display()),
                        errno,
                    })
                }
            }
        }
    }

    /// Applies the propagation changes `flags` in order to the mount at `fd`.
    fn propagate(&self, fd: &OwnedFd, target: &str, flags: &[MsFlags]) -> Result<(), MountError> {
        for flag in flags {
            mount(None::<&str>, fd_path(fd).as_str(), None::<&str>, *flag, None::<&str>)
                .map_err(|errno| self.error(&format!("cannot set the propagation {flag:?} of"), target, errno))?;
        }
        Ok(())
    }

    fn oci_bind(&mut self, bind: &OciBind) -> Result<(), MountError> {
        let (tree, target, fd) = self.next_bind_target(&bind.source, &bind.target)?;
        let recursive = if bind.recursive {
            MsFlags::MS_REC
        } else {
            MsFlags::empty()
        };
        let bound = match (&tree, bind.idmap) {
            (Some(tree), _) => idmap::attach(tree, &fd),
            (None, Some(_)) => Err(Errno::EPROTO),
            (None, None) => mount(
                Some(&bind.source),
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | recursive,
                None::<&str>,
            ),
        };
        bound.map_err(|errno| self.error(&format!("cannot bind {} onto", bind.source.display()), &target, errno))?;
        let mounted = open_in_root(self.root.as_fd(), &bind.target, Symlinks::StayInRoot)
            .map_err(|errno| self.error("cannot reopen", &target, errno))?;
        let attributes = |what: &str, attributes: &MountAttributes, recursive: bool| {
            if attributes.is_empty() {
                return Ok(());
            }
            match change_attributes(&mounted, *attributes, recursive, None) {
                // Before Linux 5.12: nodev and ro the old way; anything else cannot be.
                Err(Errno::ENOSYS)
                    if attributes.clear == 0 && attributes.set & !(MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY) == 0 =>
                {
                    if attributes.set & MOUNT_ATTR_RDONLY != 0 {
                        remount_read_only(&mounted)
                    } else {
                        Ok(())
                    }
                }
                other => other,
            }
            .map_err(|errno| self.error(&format!("cannot set the options ({what}) of"), &target, errno))
        };
        attributes("mount_setattr", &bind.top, false)?;
        attributes("mount_setattr AT_RECURSIVE", &bind.all, true)?;
        self.propagate(&mounted, &target, &bind.propagation)
    }

    fn device(&self, node: &DeviceNode) -> Result<(), MountError> {
        let target = node.target.display().to_string();
        let relative = Path::new(&target);
        match &node.source {
            DeviceSource::Host(host) => {
                let fd = ensure_file_in_root(self.root.as_fd(), relative, Symlinks::Refuse)
                    .map_err(|errno| self.error("cannot create", &target, errno))?;
                let source =
                    nix::fcntl::open(host, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
                        self.error(
                            &format!("cannot open the host's {} for", host.display()),
                            &target,
                            errno,
                        )
                    })?;
                let stat = nix::sys::stat::fstat(&source).map_err(|errno| {
                    self.error(
                        &format!("cannot stat the host's {} for", host.display()),
                        &target,
                        errno,
                    )
                })?;
                let device = nix::sys::stat::makedev(node.major, node.minor);
                if stat.st_mode & libc::S_IFMT != node.kind.file_type() || stat.st_rdev != device {
                    return Err(self.error(
                        &format!(
                            "the host's {} is no longer the device {}:{} for",
                            host.display(),
                            node.major,
                            node.minor
                        ),
                        &target,
                        Errno::ENODEV,
                    ));
                }
                mount(
                    Some(fd_path(&source).as_str()),
                    fd_path(&fd).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|errno| {
                    self.error(
                        &format!("cannot bind the host's {} onto", host.display()),
                        &target,
                        errno,
                    )
                })
            }
            DeviceSource::Own { mode, uid, gid } => self.make_node(node, &target, *mode, *uid, *gid, true),
            DeviceSource::Denied { mode, uid, gid } => self.make_node(node, &target, *mode, *uid, *gid, false),
        }
    }

    /// Makes a node of the container's own: a FIFO as it is; a device node on the nodev /dev,
    /// then, when `usable`, bound onto itself and that bind (only) made usable for devices.
    fn make_node(
        &self,
        node: &DeviceNode,
        target: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        usable: bool,
    ) -> Result<(), MountError> {
        let relative = Path::new(target);
        let parent = relative.parent().unwrap_or(Path::new("/"));
        let name = relative.file_name().unwrap_or_default();
        let parent_fd = ensure_dir_in_root(self.root.as_fd(), parent, Symlinks::Refuse)
            .map_err(|errno| self.error("cannot create", &parent.display().to_string(), errno))?;
        // The directory is an O_PATH descriptor: reach it as a directory through /proc.
        let dir = nix::fcntl::open(
            fd_path(&parent_fd).as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| self.error("cannot open", &parent.display().to_string(), errno))?;
        let permissions = Mode::from_bits_truncate((mode & 0o7777) as libc::mode_t);
        let kind = match node.kind {
            DeviceKind::Char => nix::sys::stat::SFlag::S_IFCHR,
            DeviceKind::Block => nix::sys::stat::SFlag::S_IFBLK,
            DeviceKind::Fifo => nix::sys::stat::SFlag::S_IFIFO,
        };
        let device = nix::sys::stat::makedev(node.major, node.minor);
        nix::sys::stat::mknodat(dir.as_fd(), name, kind, permissions, device)
            .map_err(|errno| self.error("cannot mknod", target, errno))?;
        nix::unistd::fchownat(
            dir.as_fd(),
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|errno| self.error(&format!("cannot chown to {uid}:{gid}"), target, errno))?;
        // mknod's mode went through the umask.
        nix::sys::stat::fchmodat(
            dir.as_fd(),
            name,
            permissions,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|errno| self.error(&format!("cannot chmod to {mode:o}"), target, errno))?;
        if node.kind == DeviceKind::Fifo || !usable {
            return Ok(());
        }
        let made = open_in_root(self.root.as_fd(), relative, Symlinks::Refuse)
            .map_err(|errno| self.error("cannot open", target, errno))?;
        mount(
            Some(fd_path(&made).as_str()),
            fd_path(&made).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|errno| self.error("cannot bind onto itself", target, errno))?;
        let bound = open_in_root(self.root.as_fd(), relative, Symlinks::Refuse)
            .map_err(|errno| self.error("cannot reopen", target, errno))?;
        let usable = MountAttributes {
            set: 0,
            clear: MOUNT_ATTR_NODEV,
        };
        change_attributes(&bound, usable, false, None)
            .map_err(|errno| self.error("cannot clear nodev (mount_setattr) on the device", target, errno))
    }

    fn error(&self, what: &str, path: &str, errno: Errno) -> MountError {
        MountError {
            detail: format!("{what} {}/{}", self.rootfs.display(), path.trim_start_matches('/')),
            errno,
        }
    }

    fn with_path(
        &self,
        path: &str,
        action: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> Result<(), Errno>,
    ) -> Result<(), MountError> {
        action(self.root.as_fd()).map_err(|errno| self.error("cannot create", path, errno))
    }

    fn bind_rootfs(&mut self) -> Result<(), MountError> {
        if let Some(tree) = self.trees.rootfs.take() {
            idmap::attach(&tree, &self.root)
                .map_err(|errno| self.error("cannot attach the idmapped rootfs onto", "", errno))?;
        } else {
            let source = fd_path(&self.root);
            mount(
                Some(source.as_str()),
                source.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|errno| self.error("cannot bind-mount the rootfs onto itself:", "", errno))?;
        }
        // Reopen so the descriptor refers to the new mount, not the directory below it.
        self.root = open_directory(&self.rootfs).map_err(|errno| self.error("cannot reopen the rootfs", "", errno))?;
        Ok(())
    }

    fn mount_filesystem(
        &mut self,
        target: &str,
        source: &str,
        fstype: &str,
        flags: MsFlags,
        data: &str,
    ) -> Result<(), MountError> {
        let fd = match self.made_in_fresh_tmpfs(target, EntryKind::Directory) {
            Some(fd) => fd,
            None => ensure_dir_in_root(self.root.as_fd(), Path::new(target), Symlinks::Refuse),
        }
        .map_err(|errno| self.error("cannot open the mount point", target, errno))?;
        let data = (!data.is_empty()).then_some(data);
        mount(Some(source), fd_path(&fd).as_str(), Some(fstype), flags, data)
            .map_err(|errno| self.error(&format!("cannot mount {fstype} on"), target, errno))?;
        if fstype == "tmpfs" {
            self.fresh.remember(target);
        }
        Ok(())
    }

    /// Makes the directory `path` (and missing parents) unless it is there.
    fn directory(&mut self, path: &str) -> Result<(), MountError> {
        let root = self.root.as_fd();
        if let Some((dir, name)) = self.fresh.parent_of(root, path) {
            match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
                // Whatever is there is checked by the resolution below.
                Err(Errno::EEXIST) => {}
                made => return made.map_err(|errno| self.error("cannot create", path, errno)),
            }
        }
        self.with_path(path, |root| {
            ensure_dir_in_root(root, Path::new(path), Symlinks::Refuse).map(drop)
        })
    }

    /// `target` made (a directory, or an empty file) below the root of the tmpfs that the
    /// steps just before mounted, if it is a direct entry of one, and opened as a mount
    /// target. `None`: not such an entry, or the name exists (resolved inside the rootfs then).
    fn made_in_fresh_tmpfs(&mut self, target: &str, kind: EntryKind) -> Option<Result<OwnedFd, Errno>> {
        let (dir, name) = self.fresh.parent_of(self.root.as_fd(), target)?;
        let made = match kind {
            EntryKind::Directory => nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755))
                .and_then(|()| {
                    nix::fcntl::openat(
                        dir.as_fd(),
                        name,
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                }),
            EntryKind::File => nix::fcntl::openat(
                dir.as_fd(),
                name,
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            ),
        };
        match made {
            Err(Errno::EEXIST) => None,
            other => Some(other),
        }
    }

    /// A tmpfs over `target` that starts with `target`'s contents: the directory is opened
    /// before the tmpfs hides it, then copied from that descriptor (see `copy_up`).
    fn mount_tmpfs_copy_up(
        &mut self,
        target: &str,
        source: &str,
        flags: MsFlags,
        data: &str,
    ) -> Result<(), MountError> {
        let below = ensure_dir_in_root(self.root.as_fd(), Path::new(target), Symlinks::Refuse)
            .and_then(|fd| copy_up::readable_dir(fd.as_fd()))
            .map_err(|errno| self.error("cannot open the mount point", target, errno))?;
        self.mount_filesystem(target, source, "tmpfs", flags, data)?;
        // It holds the image's files: only an empty tmpfs is kept for making entries in.
        self.fresh.forget_unless_inside(None);
        let tmpfs = open_in_root(self.root.as_fd(), Path::new(target), Symlinks::Refuse)
            .and_then(|fd| copy_up::readable_dir(fd.as_fd()))
            .map_err(|errno| self.error("cannot open the new tmpfs", target, errno))?;
        copy_up::copy_tree(below.as_fd(), tmpfs.as_fd())
            .map_err(|errno| self.error("cannot copy the image's files (tmpcopyup) into", target, errno))
    }

    fn bind_host_device(&mut self, name: &str) -> Result<(), MountError> {
        let path = host_device_target(name);
        let fd = match self.made_in_fresh_tmpfs(&path, EntryKind::File) {
            Some(fd) => fd,
            None => ensure_file_in_root(self.root.as_fd(), Path::new(&path), Symlinks::Refuse),
        }
        .map_err(|errno| self.error("cannot create", &path, errno))?;
        let source = format!("/dev/{name}");
        mount(
            Some(source.as_str()),
            fd_path(&fd).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|errno| self.error(&format!("cannot bind {source} onto"), &path, errno))
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<(), MountError> {
        let made = match self.fresh.parent_of(self.root.as_fd(), path) {
            Some((dir, name)) => nix::unistd::symlinkat(target, dir.as_fd(), name),
            None => {
                let relative = Path::new(path);
                let parent = relative.parent().unwrap_or(Path::new("."));
                let name = relative.file_name().unwrap_or_default();
                let parent_fd = open_in_root(self.root.as_fd(), parent, Symlinks::Refuse)
                    .map_err(|errno| self.error("cannot open", &parent.display().to_string(), errno))?;
                nix::unistd::symlinkat(target, parent_fd.as_fd(), name)
            }
        };
        match made {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(errno) => Err(self.error(&format!("cannot create the symlink to {target} at"), path, errno)),
        }
    }

    /// The next bind's idmapped tree (if one was sent for it), its target as text for errors,
    /// and the target opened inside the rootfs: a directory for a directory source, a file
    /// otherwise, created if missing.
    fn next_bind_target(
        &mut self,
        source: &Path,
        target_path: &Path,
    ) -> Result<(Option<OwnedFd>, String, OwnedFd), MountError> {
        let tree = self.trees.binds.get_mut(self.binds_done).and_then(Option::take);
        self.binds_done += 1;
        let target = target_path.display().to_string();
        let source_is_dir = std::fs::metadata(source).map(|m| m.is_dir()).unwrap_or(false);
        let opened = if source_is_dir {
            ensure_dir_in_root(self.root.as_fd(), target_path, Symlinks::StayInRoot)
        } else {
            ensure_file_in_root(self.root.as_fd(), target_path, Symlinks::StayInRoot)
        };
        let fd = opened.map_err(|errno| self.error("cannot create the bind mount target", &target, errno))?;
        Ok((tree, target, fd))
    }

    fn bind(&mut self, bind: &BindMount) -> Result<(), MountError> {
        let (tree, target, fd) = self.next_bind_target(&bind.source, &bind.target)?;
        let bound = match &tree {
            Some(tree) => idmap::attach(tree, &fd),
            None => mount(
                Some(&bind.source),
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            ),
        };
        bound.map_err(|errno| self.error(&format!("cannot bind {} onto", bind.source.display()), &target, errno))?;
        // No device node of a bound host tree can be opened (with an idmapped bind, the
        // container's root would own the host's root-owned nodes), and `:ro` is recursive.
        let mounted = open_in_root(self.root.as_fd(), &bind.target, Symlinks::StayInRoot)
            .map_err(|errno| self.error("cannot reopen", &target, errno))?;
        let read_only = if bind.read_only { MOUNT_ATTR_RDONLY } else { 0 };
        match set_attributes(&mounted, MOUNT_ATTR_NODEV | read_only, None) {
            Err(Errno::ENOSYS) if bind.read_only => remount_read_only(&mounted),
            Err(Errno::ENOSYS) => Ok(()),
            other => other,
        }
        .map_err(|errno| self.error("cannot set nodev (and read-only) on", &target, errno))
    }

    /// Opens a path of the kernel's filesystems that some kernels lack (`None` then).
    fn open_if_present(&self, path: &str) -> Result<Option<OwnedFd>, MountError> {
        match open_in_root(self.root.as_fd(), Path::new(path), Symlinks::Refuse) {
            Err(Errno::ENOENT) => Ok(None),
            other => other.map(Some).map_err(|errno| self.error("cannot open", path, errno)),
        }
    }

    fn mask(&mut self, path: &str) -> Result<(), MountError> {
        let Some(fd) = self.open_if_present(path)? else {
            return Ok(());
        };
        let is_directory = nix::sys::stat::fstat(&fd)
            .map(|stat| stat.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .map_err(|errno| self.error("cannot stat", path, errno))?;
        if !is_directory {
            return mount(
                Some("/dev/null"),
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|errno| self.error("cannot mask", path, errno));
        }
        if let Some(empty) = &self.empty_tmpfs {
            // A copy keeps the mount's own flags (read-only, nosuid, nodev, noexec). open_tree
            // is Linux 5.2, older than the openat2 (5.6) every mount target needs.
            return idmap::clone_tree(empty.as_raw_fd(), c"", false)
                .and_then(|copy| idmap::attach(&copy, &fd))
                .map_err(|errno| self.error("cannot mask", path, errno));
        }
        mount(
            Some("tmpfs"),
            fd_path(&fd).as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=0,mode=555"),
        )
        .map_err(|errno| self.error("cannot mask", path, errno))?;
        let mounted = open_in_root(self.root.as_fd(), Path::new(path), Symlinks::Refuse)
            .map_err(|errno| self.error("cannot reopen", path, errno))?;
        self.empty_tmpfs = Some(mounted);
        Ok(())
    }

    fn sysctl(&self, key: &str, value: &str) -> Result<(), MountError> {
        let path = format!("proc/sys/{}", key.replace('.', "/"));
        let fd = open_in_root_for_writing(self.root.as_fd(), Path::new(&path))
            .map_err(|errno| self.error(&format!("cannot open the sysctl {key} at"), &path, errno))?;
        nix::unistd::write(&fd, value.as_bytes())
            .map(drop)
            .map_err(|errno| self.error(&format!("cannot set the sysctl {key} to {value:?} at"), &path, errno))
    }

    fn read_only(&self, path: &str) -> Result<(), MountError> {
        let Some(fd) = self.open_if_present(path)? else {
            return Ok(());
        };
        let fd_path = fd_path(&fd);
        mount(
            Some(fd_path.as_str()),
            fd_path.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|errno| self.error("cannot bind onto itself", path, errno))?;
        let mounted = open_in_root(self.root.as_fd(), Path::new(path), Symlinks::Refuse)
            .map_err(|errno| self.error("cannot reopen", path, errno))?;
        make_read_only(&mounted).map_err(|errno| self.error("cannot make read-only:", path, errno))
    }

    fn pivot_root(&self) -> Result<(), MountError> {
        nix::unistd::fchdir(self.root.as_fd()).map_err(|errno| self.error("cannot enter", "", errno))?;
        // pivot_root(".", "."): the old root ends up stacked on the new one and is detached at
        // once, so no put-old directory is ever needed.
        nix::unistd::pivot_root(".", ".").map_err(|errno| self.error("pivot_root failed for", "", errno))?;
        // The old root is stacked on "." now. Made a slave first, so its detach cannot
        // propagate to the host whatever the propagation the bundle asked for (as runc does).
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|errno| MountError {
            detail: "cannot make the old root a slave (mount . MS_SLAVE|MS_REC)".into(),
            errno,
        })?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|errno| MountError {
            detail: "cannot detach the old root".into(),
            errno,
        })?;
        nix::unistd::chdir("/").map_err(|errno| MountError {
            detail: "cannot enter the new root".into(),
            errno,
        })?;
        Ok(())
    }
}

/// Opens `path` below `root` for writing, refusing every symlink on the way (a procfs file).
fn open_in_root_for_writing(root: std::os::fd::BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    let fd = open_in_root(root, path, Symlinks::Refuse)?;
    // `open_in_root` gives an O_PATH descriptor: reopen it through /proc/self/fd for writing.
    nix::fcntl::open(fd_path(&fd).as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
}

fn open_directory(path: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY`.
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_NOSUID`.
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
/// `MOUNT_ATTR_NODEV`.
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
/// `MOUNT_ATTR_NOEXEC`.
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// `MOUNT_ATTR__ATIME`: the mask of the atime choices below.
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
/// `MOUNT_ATTR_RELATIME` (0: the atime choice when the mask is cleared).
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
/// `MOUNT_ATTR_NOATIME`.
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
/// `MOUNT_ATTR_STRICTATIME`.
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
/// `MOUNT_ATTR_NODIRATIME`.
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
/// `MOUNT_ATTR_NOSYMFOLLOW` (Linux 5.14).
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
/// `MOUNT_ATTR_IDMAP`: map the mount's ids through the user namespace `userns_fd`.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Sets the attributes `attr_set` on the mount at `fd` and every mount below it
/// (mount_setattr(2) with AT_RECURSIVE, Linux 5.12+); `userns_fd` for [`MOUNT_ATTR_IDMAP`].
pub fn set_attributes(fd: &OwnedFd, attr_set: u64, userns_fd: Option<&OwnedFd>) -> Result<(), Errno> {
    let attributes = MountAttributes {
        set: attr_set,
        clear: 0,
    };
    change_attributes(fd, attributes, true, userns_fd)
}

/// mount_setattr(2) on the mount at `fd` (and, `recursive`, every mount below it).
pub fn change_attributes(
    fd: &OwnedFd,
    attributes: MountAttributes,
    recursive: bool,
    userns_fd: Option<&OwnedFd>,
) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: attributes.set,
        attr_clr: attributes.clear,
        propagation: 0,
        userns_fd: userns_fd.map_or(0, |userns| std::os::fd::AsRawFd::as_raw_fd(userns) as u64),
    };
    let flags = if recursive {
        libc::AT_EMPTY_PATH | libc::AT_RECURSIVE
    } else {
        libc::AT_EMPTY_PATH
    };
    // SAFETY: `fd` is a valid descriptor, the path is an empty C string, and `attr` is a live
    // `struct mount_attr` whose size is passed alongside it.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            std::os::fd::AsRawFd::as_raw_fd(fd),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Makes the mount tree at `fd` private (mount_setattr(2) with `MS_PRIVATE` as propagation).
pub fn make_private(fd: &OwnedFd) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: 0,
        attr_clr: 0,
        propagation: MsFlags::MS_PRIVATE.bits(),
        userns_fd: 0,
    };
    // SAFETY: as in `change_attributes`.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            std::os::fd::AsRawFd::as_raw_fd(fd),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Makes the mount at `fd` and every mount below it read-only, falling back on a remount of
/// the top mount on kernels without mount_setattr.
fn make_read_only(fd: &OwnedFd) -> Result<(), Errno> {
    match set_attributes(fd, MOUNT_ATTR_RDONLY, None) {
        Err(Errno::ENOSYS) => remount_read_only(fd),
        other => other,
    }
}

fn remount_read_only(fd: &OwnedFd) -> Result<(), Errno> {
    let path = fd_path(fd);
    let current = nix::sys::statvfs::statvfs(path.as_str())?.flags();
    use nix::sys::statvfs::FsFlags;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (kept, flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(kept) {
            flags |= flag;
        }
    }
    mount(None::<&str>, path.as_str(), None::<&str>, flags, None::<&str>)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_config() -> ContainerConfig {
        let mut config = ContainerConfig::new("/srv/rootfs", vec!["/bin/sh".into()]);
        config.binds.push(BindMount::parse("/srv/data:/tmp/data:ro").unwrap());
        config
    }

    fn position(steps: &[MountStep], wanted: impl Fn(&MountStep) -> bool) -> usize {
        steps.iter().position(wanted).expect("step missing from the plan")
    }

    #[test]
    fn plan_orders_the_steps() {
        let steps = plan(&sample_config());
        assert_eq!(
            steps.first(),
            Some(&MountStep::RootPropagation(MsFlags::MS_REC | MsFlags::MS_PRIVATE)),
            "crabcan's own containers share no mount with the host either way"
        );
        assert_eq!(steps.last(), Some(&MountStep::PivotRoot));
        let proc_at = position(
            &steps,
            |s| matches!(s, MountStep::Filesystem { target, .. } if target == "proc"),
        );
        let dev_at = position(
            &steps,
            |s| matches!(s, MountStep::Filesystem { target, .. } if target == "dev"),
        );
        let pts_at = position(
            &steps,
            |s| matches!(s, MountStep::Filesystem { target, .. } if target == "dev/pts"),
        );
        let tmp_at = position(
            &steps,
            |s| matches!(s, MountStep::Filesystem { target, .. } if target == "tmp"),
        );
        let bind_at = position(&steps, |s| matches!(s, MountStep::Bind(_)));
        let mask_at = position(
            &steps,
            |s| matches!(s, MountStep::Mask { path } if path == "proc/kcore"),
        );
        let ro_at = position(
            &steps,
            |s| matches!(s, MountStep::ReadOnly { path } if path == "proc/sys"),
        );
        assert!(proc_at < mask_at && proc_at < ro_at, "masks need /proc mounted first");
        assert!(
            dev_at < pts_at && dev_at < mask_at,
            "/dev/null must exist before masking with it"
        );
        assert!(tmp_at < bind_at, "a bind below /tmp must not be hidden by the tmpfs");
        assert!(bind_at < mask_at, "masks come last so a bind cannot unmask");
    }

    #[test]
    fn hooks_see_every_mount_and_no_protection() {
        let steps = plan(&sample_config());
        let (mounts, rest) = split_for_hooks(&steps);
        assert!(mounts.iter().any(|s| matches!(s, MountStep::Bind(_))));
        assert!(!mounts
            .iter()
            .any(|s| matches!(s, MountStep::Mask { .. } | MountStep::PivotRoot)));
        assert!(matches!(rest.first(), Some(MountStep::Mask { .. })), "{rest:?}");
        assert_eq!(rest.last(), Some(&MountStep::PivotRoot));
    }

    #[test]
    fn plan_masks_and_protects_what_the_kernel_exposes() {
        let steps = plan(&sample_config());
        for path in [
            "proc/asound",
            "proc/acpi",
            "proc/interrupts",
            "proc/kcore",
            "proc/keys",
            "proc/latency_stats",
            "proc/timer_list",
            "proc/timer_stats",
            "proc/sched_debug",
            "proc/scsi",
            "proc/sysrq-trigger",
            "sys/firmware",
            "sys/devices/virtual/powercap",
        ] {
            assert!(
                steps.contains(&MountStep::Mask { path: path.into() }),
                "{path} not masked"
            );
        }
        for path in ["proc/sys", "proc/bus", "proc/irq", "proc/fs"] {
            assert!(
                steps.contains(&MountStep::ReadOnly { path: path.into() }),
                "{path} not read-only"
            );
        }
        let sys = steps
            .iter()
            .find(|s| matches!(s, MountStep::Filesystem { target, .. } if target == "sys"))
            .unwrap();
        let MountStep::Filesystem { flags, .. } = sys else {
            unreachable!()
        };
        assert!(flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn devpts_names_gid_5_only_where_it_is_mapped() {
        let pts_data = |config: &ContainerConfig| {
            plan(config)
                .into_iter()
                .find_map(|step| match step {
                    MountStep::Filesystem { target, data, .. } if target == "dev/pts" => Some(data),
                    _ => None,
                })
                .expect("a devpts step")
        };
        let mut config = sample_config();
        assert!(pts_data(&config).contains("gid=5"), "crabcan's own range maps gid 5");
        // An ordinary user's own ids alone: only gid 0 exists inside.
        let own = crate::spec::IdRange {
            inside: 0,
            outside: 1000,
            count: 1,
        };
        config.mapped_inside = Some((vec![own], vec![own]));
        assert!(!pts_data(&config).contains("gid="), "{}", pts_data(&config));
    }

    #[test]
    fn plan_gets_no_host_paths_but_devices_and_user_binds() {
        for step in plan(&sample_config()) {
            if let MountStep::Bind(bind) = step {
                assert_eq!(bind.source, PathBuf::from("/srv/data"));
                assert!(bind.read_only);
            }
        }
    }
}
