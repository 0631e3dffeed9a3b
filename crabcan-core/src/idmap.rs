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

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::config::ContainerConfig;

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
}

impl Trees {
    /// No idmapped copies (a container without a user namespace).
    pub fn none(config: &ContainerConfig) -> Trees {
        Trees {
            idmapped: vec![false; 1 + config.binds.len()],
            fds: Vec::new(),
        }
    }
}

/// Which paths want an idmapped copy: the rootfs, and each writable `--add` source, when owned
/// by host root. (A read-only source needs none; one owned by anyone else is used as it is.)
pub fn wanted(config: &ContainerConfig) -> Vec<bool> {
    let owned_by_root = |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.uid() == 0);
    let mut wanted = vec![owned_by_root(&config.rootfs)];
    wanted.extend(
        config
            .binds
            .iter()
            .map(|bind| !bind.read_only && owned_by_root(&bind.source)),
    );
    wanted
}

/// Makes the idmapped copies `wanted` asks for, mapped through the user namespace of `child`.
/// A path the kernel cannot idmap is left out, with a warning.
pub fn make_trees(child: Pid, config: &ContainerConfig, wanted: &[bool]) -> Trees {
    let mut trees = Trees::default();
    if !wanted.iter().any(|&w| w) {
        trees.idmapped = wanted.to_vec();
        return trees;
    }
    let userns = match std::fs::File::open(format!("/proc/{child}/ns/user")) {
        Ok(file) => OwnedFd::from(file),
        Err(error) => {
            log::warn!("cannot open the container's user namespace for idmapped mounts: {error}");
            trees.idmapped = vec![false; wanted.len()];
            return trees;
        }
    };
    let paths = std::iter::once(config.rootfs.as_path()).chain(config.binds.iter().map(|b| b.source.as_path()));
    for (path, &want) in paths.zip(wanted) {
        if !want {
            trees.idmapped.push(false);
            continue;
        }
        match idmapped_tree(path, &userns) {
            Ok(tree) => {
                log::debug!("idmapped mount of {} prepared", path.display());
                trees.idmapped.push(true);
                trees.fds.push(tree);
            }
            Err(errno) => {
                warn_unavailable(path, errno);
                trees.idmapped.push(false);
            }
        }
    }
    trees
}

fn warn_unavailable(path: &Path, errno: Errno) {
    let why = match errno {
        Errno::ENOSYS => "this kernel has no idmapped mounts (Linux 5.12+)".to_owned(),
        Errno::EINVAL | Errno::EPERM | Errno::EOPNOTSUPP => {
            "its filesystem cannot be idmapped here (ext4, xfs, btrfs can; tmpfs from Linux 6.3)".to_owned()
        }
        other => format!("making an idmapped mount failed: {other}"),
    };
    log::warn!(
        "{} is owned by host root and {why}: the container's root cannot write to it; put it on such a \
         filesystem, or chown -R it to host ids no one owns and pass them with --uid-map/--gid-map",
        path.display()
    );
}

/// A detached, recursive copy of the mount tree at `path`, idmapped through `userns`.
fn idmapped_tree(path: &Path, userns: &OwnedFd) -> Result<OwnedFd, Errno> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_tree reads the NUL-terminated path and returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    crate::mounts::set_attributes(&tree, crate::mounts::MOUNT_ATTR_IDMAP, Some(userns))?;
    Ok(tree)
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
