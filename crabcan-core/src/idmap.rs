//! Idmapped mounts: a rootfs (or a writable `--add` source) owned by host root, as `tar`,
//! `docker export` or `mmdebstrap` leave it, is shown to the container owned by the container's
//! root, and what the container writes there is owned by host root on the host. Nothing is
//! chowned and every container gets the same tree, whatever host ids its user namespace has.
//!
//! The parent makes the copies (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr(MOUNT_ATTR_IDMAP)`
//! with the container's user namespace: that needs CAP_SYS_ADMIN over the filesystem, which only
//! the host's root has) and sends them with `Go`; the container process, in its own mount
//! namespace, attaches them with `move_mount`. Where the kernel (before 5.12) or the filesystem
//! (tmpfs before 6.3, most network filesystems) cannot idmap, the tree is used as it is, with
//! one warning naming the fix.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::config::ContainerConfig;
use crate::mounts::MountStep;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// What the parent sends with `Go`: which of [rootfs, bind 1, bind 2...] are idmapped, and
/// their detached trees in that order.
#[derive(Debug, Default)]
pub struct Trees {
    pub idmapped: Vec<bool>,
    pub fds: Vec<OwnedFd>,
    /// Why each tree of crabcan's own choice got no idmapped copy (the caller warns, or fails
    /// in strict mode).
    pub fallbacks: Vec<String>,
}

impl Trees {
    /// No idmapped copies (a container without a user namespace).
    pub fn none(config: &ContainerConfig) -> Trees {
        Trees {
            idmapped: vec![false; 1 + config.binds.len()],
            fds: Vec::new(),
            fallbacks: Vec::new(),
        }
    }
}

/// A tree crabcan wants an idmapped copy of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The host path.
    pub path: PathBuf,
    /// Copy the mounts below it too (a rootfs, `--add`, an OCI `rbind`).
    pub with_submounts: bool,
    /// Idmap the mounts below too (an OCI `ridmap`; crabcan's own trees are always).
    pub idmap_submounts: bool,
    /// Asked for by the bundle (an OCI `idmap` option): failing is an error, where for
    /// crabcan's own choice (a root-owned rootfs or `--add` source) it is a warning.
    pub required: bool,
}

/// Which trees want an idmapped copy, one slot for the rootfs, then one per bind step of the
/// mount plan in order: the rootfs, and each writable `--add` source, when owned by host root
/// (a read-only source needs none; one owned by anyone else is used as it is); an OCI bind
/// with the `idmap` or `ridmap` option.
pub fn wanted(config: &ContainerConfig) -> Vec<Option<Wanted>> {
    let owned_by_root = |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.uid() == 0);
    let ours = |path: &Path| Wanted {
        path: path.to_owned(),
        with_submounts: true,
        idmap_submounts: true,
        required: false,
    };
    let mut wanted = vec![owned_by_root(&config.rootfs).then(|| ours(&config.rootfs))];
    match &config.mount_plan {
        Some(plan) => wanted.extend(plan.iter().filter_map(|step| match step {
            MountStep::Bind(bind) => Some((!bind.read_only && owned_by_root(&bind.source)).then(|| ours(&bind.source))),
            MountStep::OciBind(bind) => Some(bind.idmap.map(|idmap_submounts| Wanted {
                path: bind.source.clone(),
                with_submounts: bind.recursive,
                idmap_submounts,
                required: true,
            })),
            _ => None,
        })),
        None => wanted.extend(
            config
                .binds
                .iter()
                .map(|bind| (!bind.read_only && owned_by_root(&bind.source)).then(|| ours(&bind.source))),
        ),
    }
    wanted
}

/// Makes the idmapped copies `wanted` asks for, mapped through the user namespace `userns`.
/// A tree of crabcan's own choice the kernel cannot idmap is left out, with the reason in
/// [`Trees::fallbacks`]; one the bundle asked for is an error naming it.
pub fn make_trees(userns: &OwnedFd, wanted: &[Option<Wanted>]) -> Result<Trees, crate::Error> {
    let mut trees = Trees::default();
    for want in wanted {
        let Some(want) = want else {
            trees.idmapped.push(false);
            continue;
        };
        match idmapped_tree(want, userns) {
            Ok(tree) => {
                log::debug!("idmapped mount of {} prepared", want.path.display());
                trees.idmapped.push(true);
                trees.fds.push(tree);
            }
            Err((what, errno)) if want.required => {
                return Err(crate::Error::sys(
                    format!("{what} for the idmapped bind of {}", want.path.display()),
                    errno,
                ))
            }
            Err((_, errno)) => {
                trees.fallbacks.push(unavailable(&want.path, errno));
                trees.idmapped.push(false);
            }
        }
    }
    Ok(trees)
}

/// Why `path` is used as it is, and what to do.
fn unavailable(path: &Path, errno: Errno) -> String {
    let why = match errno {
        Errno::ENOSYS => "this kernel has no idmapped mounts (Linux 5.12+)".to_owned(),
        Errno::EINVAL | Errno::EPERM | Errno::EOPNOTSUPP => {
            "its filesystem cannot be idmapped here (ext4, xfs, btrfs can; tmpfs from Linux 6.3)".to_owned()
        }
        other => format!("making an idmapped mount failed: {other}"),
    };
    format!(
        "{} is owned by host root and {why}: the container's root cannot write to it; put it on such a \
         filesystem, or chown -R it to host ids no one owns and pass them with --uid-map/--gid-map",
        path.display()
    )
}

/// A detached copy of the mount tree at `want.path`, idmapped through `userns`, and private:
/// a copy of a shared mount would otherwise be a peer of the host's, and what the container
/// mounts on it would show on the host. The error names the syscall.
fn idmapped_tree(want: &Wanted, userns: &OwnedFd) -> Result<OwnedFd, (&'static str, Errno)> {
    let c_path = std::ffi::CString::new(want.path.as_os_str().as_encoded_bytes())
        .map_err(|_| ("a path without NUL", Errno::EINVAL))?;
    let tree = clone_tree(libc::AT_FDCWD, &c_path, want.with_submounts)
        .map_err(|errno| ("open_tree(OPEN_TREE_CLONE)", errno))?;
    crate::mounts::make_private(&tree).map_err(|errno| ("mount_setattr(MS_PRIVATE)", errno))?;
    let idmap = crate::mounts::MountAttributes {
        set: crate::mounts::MOUNT_ATTR_IDMAP,
        clear: 0,
    };
    crate::mounts::change_attributes(&tree, idmap, want.idmap_submounts, Some(userns))
        .map_err(|errno| ("mount_setattr(MOUNT_ATTR_IDMAP)", errno))?;
    Ok(tree)
}

/// A detached copy of the mount at `path` relative to `dirfd` (an empty `path`: `dirfd`'s own
/// mount), with the mounts below it if `recursive`: open_tree(2) with `OPEN_TREE_CLONE`. The
/// copy keeps each mount's flags (read-only, nosuid, ...).
pub(crate) fn clone_tree(dirfd: RawFd, path: &CStr, recursive: bool) -> Result<OwnedFd, Errno> {
    let submounts = if recursive { AT_RECURSIVE } else { 0 };
    let empty_path = if path.is_empty() {
        libc::AT_EMPTY_PATH as libc::c_uint
    } else {
        0
    };
    // SAFETY: open_tree reads the NUL-terminated path and returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            OPEN_TREE_CLONE | submounts | empty_path | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// In the container process: attaches the detached tree `tree` on top of the directory or file
/// `target` (an `O_PATH` descriptor).
pub fn attach(tree: &OwnedFd, target: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: both descriptors are valid and both paths are empty C strings.
    let result = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// The trees received with `Go`, handed to the mount steps: the rootfs's, then one slot per
/// `--add` bind in order.
#[derive(Debug, Default)]
pub struct ReceivedTrees {
    pub rootfs: Option<OwnedFd>,
    pub binds: Vec<Option<OwnedFd>>,
}

impl ReceivedTrees {
    /// Pairs the flags of `Go` with its descriptors. `None` when they disagree.
    pub fn new(idmapped: &[bool], fds: Vec<OwnedFd>) -> Option<ReceivedTrees> {
        if idmapped.iter().filter(|&&yes| yes).count() != fds.len() {
            return None;
        }
        let mut fds = fds.into_iter();
        let mut slots: Vec<Option<OwnedFd>> = idmapped
            .iter()
            .map(|&yes| if yes { fds.next() } else { None })
            .collect();
        if slots.is_empty() {
            return Some(ReceivedTrees::default());
        }
        let rootfs = slots.remove(0);
        Some(ReceivedTrees { rootfs, binds: slots })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn received_trees_follow_the_flags() {
        let trees = ReceivedTrees::new(&[true, false, true], vec![null(), null()]).unwrap();
        assert!(trees.rootfs.is_some());
        assert_eq!(trees.binds.len(), 2);
        assert!(trees.binds[0].is_none() && trees.binds[1].is_some());
        assert!(ReceivedTrees::new(&[true], vec![]).is_none(), "a flag without its fd");
        let none = ReceivedTrees::new(&[], vec![]).unwrap();
        assert!(none.rootfs.is_none() && none.binds.is_empty());
    }
}
