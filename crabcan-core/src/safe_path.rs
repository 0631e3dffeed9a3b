//! Opening paths inside a rootfs without ever leaving it. A rootfs can be hostile: a symlink
//! `rootfs/data -> /etc` must not make crabcan mount over the host's /etc, and a directory
//! swapped for a symlink between a check and a mount must not either. So every mount target is
//! opened with `openat2(2)` relative to a descriptor of the rootfs, and the mount is made on
//! `/proc/self/fd/N` of that descriptor, never on a path string that could be re-resolved.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// How symlinks met while resolving a path are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlinks {
    /// Followed, but as if the rootfs were `/`: they can never lead out of it.
    StayInRoot,
    /// Refused (ELOOP): for the system mount points, which must be real directories.
    Refuse,
}

impl Symlinks {
    fn resolve_flags(self) -> ResolveFlag {
        match self {
            Symlinks::StayInRoot => ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            Symlinks::Refuse => ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS,
        }
    }
}

/// Opens `path` (absolute or relative, taken as inside the root) below `root` as an `O_PATH`
/// descriptor.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, symlinks: Symlinks) -> Result<OwnedFd, Errno> {
    let relative = relative_to_root(path);
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(symlinks.resolve_flags());
    openat2(root, relative.as_path(), how)
}

/// Opens the directory `path` below `root`, creating it and its missing parents (mode 0755).
/// Each directory is made with `mkdirat` below its parent's descriptor, itself resolved inside
/// the root.
pub fn ensure_dir_in_root(root: BorrowedFd<'_>, path: &Path, symlinks: Symlinks) -> Result<OwnedFd, Errno> {
    // Most mount targets exist already: one resolution then, not one per component.
    match open_in_root(root, path, symlinks) {
        Err(Errno::ENOENT) => {}
        found => return found,
    }
    let relative = relative_to_root(path);
    // The root itself cannot be missing, nor can a path ending in `..` be made.
    let (Some(parent), Some(name)) = (relative.parent(), relative.file_name()) else {
        return Err(Errno::ENOENT);
    };
    let parent_fd = ensure_dir_in_root(root, parent, symlinks)?;
    match nix::sys::stat::mkdirat(parent_fd.as_fd(), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => return Err(errno),
    }
    open_in_root(root, &relative, symlinks)
}

/// Opens the file `path` below `root`, creating an empty file (and missing parent directories)
/// if nothing is there. Used as the mount point of a file bind mount.
pub fn ensure_file_in_root(root: BorrowedFd<'_>, path: &Path, symlinks: Symlinks) -> Result<OwnedFd, Errno> {
    match open_in_root(root, path, symlinks) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let relative = relative_to_root(path);
    let parent = relative.parent().unwrap_or(Path::new(""));
    let name = relative.file_name().ok_or(Errno::EINVAL)?;
    let parent_fd = ensure_dir_in_root(root, parent, symlinks)?;
    match nix::fcntl::openat(
        parent_fd.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        // The new empty file itself, made below a descriptor resolved inside the root.
        Ok(created) => Ok(created),
        // Made meanwhile by someone else: resolved like anything found.
        Err(Errno::EEXIST) => open_in_root(root, path, symlinks),
        Err(errno) => Err(errno),
    }
}

/// The magic-link path through which a mount can be made on exactly the object `fd` refers to.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `path` with its root and `.`/`..` handled so it can be opened relative to a directory fd.
/// `..` is kept: openat2's resolve flags stop it at the root.
fn relative_to_root(path: &Path) -> std::path::PathBuf {
    let relative: std::path::PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir | Component::Prefix(_)))
        .collect();
    if relative.as_os_str().is_empty() {
        std::path::PathBuf::from(".")
    } else {
        relative
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempTree;
    use std::os::unix::fs::symlink;

    fn temp_root(tag: &str) -> TempTree {
        TempTree::new(tag)
    }

    fn open_dir(path: &Path) -> OwnedFd {
        nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn symlinks_out_of_the_root_stay_inside() {
        let root = temp_root("escape");
        std::fs::create_dir(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/marker"), "inside").unwrap();
        symlink("/etc", root.join("data")).unwrap();
        let root_fd = open_dir(&root);
        // Followed inside the root: /data -> /etc means rootfs/etc, never the host's /etc.
        let fd = open_in_root(root_fd.as_fd(), Path::new("/data/marker"), Symlinks::StayInRoot).unwrap();
        let resolved = std::fs::read_link(fd_path(&fd)).unwrap();
        assert_eq!(resolved, root.join("etc/marker"));
        // Refused outright where symlinks are not allowed.
        assert_eq!(
            open_in_root(root_fd.as_fd(), Path::new("/data"), Symlinks::Refuse).unwrap_err(),
            Errno::ELOOP
        );
        // `..` cannot climb out either.
        let up = open_in_root(root_fd.as_fd(), Path::new("/../../.."), Symlinks::StayInRoot).unwrap();
        assert_eq!(std::fs::read_link(fd_path(&up)).unwrap(), &*root);
    }

    #[test]
    fn creates_missing_directories_and_files_inside() {
        let root = temp_root("create");
        symlink("/", root.join("loop")).unwrap();
        let root_fd = open_dir(&root);
        let made = ensure_dir_in_root(root_fd.as_fd(), Path::new("/a/b/c"), Symlinks::StayInRoot).unwrap();
        assert!(root.join("a/b/c").is_dir());
        assert_eq!(std::fs::read_link(fd_path(&made)).unwrap(), root.join("a/b/c"));
        let found = ensure_dir_in_root(root_fd.as_fd(), Path::new("a/b"), Symlinks::Refuse).unwrap();
        assert_eq!(std::fs::read_link(fd_path(&found)).unwrap(), root.join("a/b"));
        let file = ensure_file_in_root(root_fd.as_fd(), Path::new("/loop/x/file"), Symlinks::StayInRoot).unwrap();
        assert!(
            root.join("x/file").is_file(),
            "created through the link, but inside the root"
        );
        assert_eq!(std::fs::read_link(fd_path(&file)).unwrap(), root.join("x/file"));
        std::fs::write(root.join("x/file"), "kept").unwrap();
        let again = ensure_file_in_root(root_fd.as_fd(), Path::new("/x/file"), Symlinks::Refuse).unwrap();
        assert_eq!(std::fs::read_link(fd_path(&again)).unwrap(), root.join("x/file"));
        assert_eq!(
            std::fs::read_to_string(root.join("x/file")).unwrap(),
            "kept",
            "an existing file is left as it is"
        );
        // Nothing is made where a symlink is refused on the way.
        assert_eq!(
            ensure_dir_in_root(root_fd.as_fd(), Path::new("/loop/y"), Symlinks::Refuse).unwrap_err(),
            Errno::ELOOP
        );
        assert!(!root.join("y").exists());
    }
}
