//! The tmpfs the container's setup has just mounted (`/dev`, `/dev/shm`), kept open so that
//! what is made directly in them (device mount points, `/dev/pts`, the `/dev/fd` symlinks) is
//! made below that descriptor instead of resolving `dev/...` inside the rootfs again.
//!
//! That is as safe as the resolution it saves: such a tmpfs exists only in the container's
//! private mount namespace, was mounted by this process a few steps earlier, before any
//! process of the container runs, and its root was opened inside the rootfs like every mount
//! target (`openat2`, no symlinks). Nothing else can have put a symlink or a mount into it.
//! Each name is still made with `O_EXCL`/`O_NOFOLLOW` semantics (`openat`, `mkdirat`,
//! `symlinkat`), and anything unexpected falls back to the resolution inside the rootfs.
//!
//! A kept directory stays valid while the steps that follow work strictly inside it: a mount
//! *on* it, or anywhere else, may change what its path names, so every other step forgets it
//! ([`FreshTmpfs::forget_unless_inside`]).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::safe_path::{open_in_root, Symlinks};

/// The tmpfs mounted by the latest steps, innermost last, each with its root once opened.
#[derive(Debug, Default)]
pub(crate) struct FreshTmpfs {
    dirs: Vec<(String, Option<OwnedFd>)>,
}

impl FreshTmpfs {
    /// Remembers that a tmpfs was just mounted on `target`.
    pub fn remember(&mut self, target: &str) {
        if let Some(path) = normalized(target) {
            self.dirs.push((path, None));
        }
    }

    /// Before a step on `target`: forgets every kept directory `target` is not strictly inside.
    pub fn forget_unless_inside(&mut self, target: Option<&str>) {
        let target = target.and_then(normalized);
        self.dirs
            .retain(|(dir, _)| target.as_deref().is_some_and(|t| is_strictly_inside(t, dir)));
    }

    /// The root of the kept tmpfs `target` is a direct entry of (opened inside `root` on first
    /// use: until a step forgets it, its path names that tmpfs), and the entry's name. `None`
    /// if there is no such tmpfs or it cannot be opened: the caller resolves `target` itself.
    pub fn parent_of<'a>(&mut self, root: BorrowedFd<'_>, target: &'a str) -> Option<(BorrowedFd<'_>, &'a str)> {
        let (parent, name) = split(target)?;
        let (path, opened) = self.dirs.iter_mut().rev().find(|(dir, _)| *dir == parent)?;
        if opened.is_none() {
            *opened = open_in_root(root, Path::new(path.as_str()), Symlinks::Refuse).ok();
        }
        Some((opened.as_ref()?.as_fd(), name))
    }
}

/// `path` without its leading and trailing slashes, if it is a plain relative path (no `.`,
/// `..` or empty component): only those are compared as strings.
fn normalized(path: &str) -> Option<String> {
    let trimmed = path.trim_matches('/');
    let plain = !trimmed.is_empty() && trimmed.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    plain.then(|| trimmed.to_string())
}

fn is_strictly_inside(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// `target`'s parent directory (normalized) and last component.
fn split(target: &str) -> Option<(String, &str)> {
    let trimmed = target.trim_matches('/');
    let (parent, name) = trimmed.rsplit_once('/')?;
    Some((normalized(parent)?, normalized(name).map(|_| name)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A rootfs with `dev/` and `dev/shm/` (plain directories stand in for the tmpfs).
    fn rootfs(test: &str) -> (std::path::PathBuf, OwnedFd) {
        let dir = std::env::temp_dir().join(format!("crabcan-fresh-{test}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dev/shm")).expect("make the test rootfs");
        let fd = OwnedFd::from(std::fs::File::open(&dir).expect("open the test rootfs"));
        (dir, fd)
    }

    fn found(fresh: &mut FreshTmpfs, root: &OwnedFd, target: &str) -> Option<String> {
        fresh.parent_of(root.as_fd(), target).map(|(fd, name)| {
            let dir = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("readlink");
            format!("{}:{name}", dir.file_name().unwrap_or_default().to_string_lossy())
        })
    }

    #[test]
    fn only_plain_paths_are_kept_and_compared() {
        assert_eq!(normalized("/dev/"), Some("dev".to_string()));
        assert_eq!(normalized("dev/shm"), Some("dev/shm".to_string()));
        for odd in ["", "/", "dev/../etc", "./dev", "dev//shm"] {
            assert_eq!(normalized(odd), None, "{odd}");
        }
        assert_eq!(split("/dev/null"), Some(("dev".to_string(), "null")));
        assert_eq!(split("dev"), None);
        assert_eq!(split("dev/.."), None);
    }

    #[test]
    fn entries_of_a_kept_tmpfs_are_found_and_nothing_else() {
        let (dir, root) = rootfs("entries");
        let mut fresh = FreshTmpfs::default();
        fresh.remember("/dev");
        assert_eq!(found(&mut fresh, &root, "/dev/null").as_deref(), Some("dev:null"));
        assert_eq!(found(&mut fresh, &root, "dev/pts").as_deref(), Some("dev:pts"));
        assert_eq!(found(&mut fresh, &root, "/dev/pts/ptmx"), None, "not a direct entry");
        assert_eq!(found(&mut fresh, &root, "/devices/null"), None);
        assert_eq!(found(&mut fresh, &root, "/proc/kcore"), None);
        std::fs::remove_dir_all(dir).expect("remove the test rootfs");
    }

    #[test]
    fn a_step_outside_or_on_a_kept_tmpfs_forgets_it() {
        let (dir, root) = rootfs("forget");
        let mut fresh = FreshTmpfs::default();
        fresh.remember("/dev");
        fresh.forget_unless_inside(Some("/dev/pts"));
        assert!(
            found(&mut fresh, &root, "/dev/ptmx").is_some(),
            "a mount inside keeps /dev"
        );
        fresh.remember("/dev/shm");
        assert_eq!(found(&mut fresh, &root, "/dev/shm/x").as_deref(), Some("shm:x"));
        fresh.forget_unless_inside(Some("dev/fd"));
        assert!(found(&mut fresh, &root, "/dev/stdin").is_some());
        assert_eq!(
            found(&mut fresh, &root, "/dev/shm/x"),
            None,
            "dev/fd is not inside /dev/shm"
        );
        fresh.forget_unless_inside(Some("/dev"));
        assert_eq!(found(&mut fresh, &root, "/dev/null"), None, "a mount on /dev itself");
        fresh.remember("/dev");
        fresh.forget_unless_inside(None);
        assert_eq!(found(&mut fresh, &root, "/dev/null"), None, "a step without a target");
        fresh.remember("/dev");
        fresh.forget_unless_inside(Some("/devices/x"));
        assert_eq!(
            found(&mut fresh, &root, "/dev/null"),
            None,
            "a sibling sharing the prefix"
        );
        std::fs::remove_dir_all(dir).expect("remove the test rootfs");
    }

    #[test]
    fn a_kept_path_that_is_no_directory_is_left_to_the_caller() {
        let (dir, root) = rootfs("symlink");
        std::os::unix::fs::symlink("/etc", dir.join("run")).expect("symlink");
        let mut fresh = FreshTmpfs::default();
        fresh.remember("/run");
        assert_eq!(found(&mut fresh, &root, "/run/x"), None, "never through a symlink");
        std::fs::remove_dir_all(dir).expect("remove the test rootfs");
    }
}
