//! Leases: proof that a `<parent>/<leaf>` cgroup belongs to a live crabcan.
//!
//! Each container cgroup has a lease file `<state dir>/<leaf>` (default
//! [`crate::DEFAULT_STATE_DIR`]) on which the owning crabcan holds an exclusive
//! `flock(2)` for as long as the cgroup exists. The file holds the owner's pid and the
//! parent folder's name, so a cleaner for another parent folder leaves it alone:
//!
//! 1. the lease is created under a temporary name (`.<leaf>.<random>.tmp`, `O_EXCL`,
//!    `O_CLOEXEC`), locked, and only then renamed into place with `RENAME_NOREPLACE`
//!    (an existing lease of the same name is an error, never replaced), so a scanner never
//!    sees an unlocked fresh lease;
//! 2. the cgroup directories are made only once the lease is held;
//! 3. removal rmdirs the cgroup, then unlinks the lease while still holding the lock.
//!
//! Stale cleanup ([`crate::CgroupHost::remove_stale`]) walks the leases, not the cgroupfs:
//! a lease it can lock with `LOCK_EX | LOCK_NB` has no owner any more, so its cgroup is
//! killed and removed, then the lease. A cgroup directory without a lease is never touched.
//!
//! Why this is sound where the old "is the pid in the leaf name alive?" test was not:
//! - A flock belongs to an open file description of the lease's inode, and the kernel drops
//!   it when the last descriptor of that description is closed, which includes the death of
//!   the owner by SIGKILL. No pid is involved, so pid namespaces do not matter: a crabcan in
//!   `unshare -fp` holds its lock exactly like one on the host. Mount namespaces do not
//!   matter either as long as the state directory is the same file system (the same `/run`):
//!   the lock is on the inode, not on a path. A crabcan whose state directory is a different
//!   file system has leases this one cannot see; its cgroups then have no lease here and are
//!   left alone (the safe side).
//! - The lease descriptor is `O_CLOEXEC`, and the container's process closes inherited
//!   descriptors first thing, so the lock does not outlive crabcan through the container (it
//!   could only delay cleanup, again the safe side).
//! - A lease name appears only already locked (step 1) and is unlinked only by a holder of its
//!   lock (step 3 and stale cleanup). A scanner that got the lock and then finds that the path
//!   still names the inode it locked therefore knows the owner is gone and that nobody else
//!   acts on that lease until it lets go; if the path names another inode (a scanner removed
//!   it and a new crabcan made a new lease meanwhile), it backs off.
//!
//! The pid in the leaf name (`<name>.<pid>`) is only a uniqueness aid: two crabcans in
//! different pid namespaces may have the same name and pid; the second then fails with
//! [`CgroupError::InUse`] (its lease, or a cgroup directory, already exists) instead of
//! sharing or taking over the first one's cgroup.

use std::collections::hash_map::RandomState;
use std::ffi::CString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::CgroupError;

/// An exclusively locked lease file. Dropping it closes the descriptor (which releases the
/// lock) but leaves the file: an unlocked lease marks its cgroup as stale.
#[derive(Debug)]
pub(crate) struct Lease {
    /// Held for its lock: closing it (on drop) releases the flock.
    #[cfg_attr(not(test), allow(dead_code))]
    file: File,
    path: PathBuf,
}

/// How old an unlocked temporary lease must be before stale cleanup takes it for a dead
/// creator's.
const TEMP_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether a state directory entry is a lease still being created (or left so by a crash).
fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
}

impl Lease {
    /// Creates and locks `<state_dir>/<leaf>` for a cgroup under `parent`, creating
    /// `state_dir` (mode 0700) if missing. [`CgroupError::InUse`] if a lease of that name exists.
    pub fn acquire(state_dir: &Path, leaf: &str, parent: &str) -> Result<Lease, CgroupError> {
        let path = state_dir.join(leaf);
        let mut attempts = 0;
        let (temp, file) = loop {
            create_state_dir(state_dir)?;
            match create_temp(state_dir, leaf) {
                // A concurrent crabcan removed the empty state directory: make it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
                Err(e) => return Err(CgroupError::io("create a lease in", state_dir, e)),
                Ok(created) => break created,
            }
        };
        let placed = try_lock(&file)
            .map_err(|e| CgroupError::io("lock", &temp, e))
            .and_then(|()| {
                let content = format!("{}\n{parent}\n", std::process::id());
                (&file)
                    .write_all(content.as_bytes())
                    .map_err(|e| CgroupError::io("write", &temp, e))
            })
            .and_then(|()| match rename_noreplace(&temp, &path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(CgroupError::InUse {
                    parent: parent.to_string(),
                    leaf: leaf.to_string(),
                    path: path.clone(),
                }),
                Err(e) => Err(CgroupError::io(format!("rename {} to", temp.display()), &path, e)),
            });
        if let Err(e) = placed {
            // A temporary lease left behind is removed by stale cleanup once unlocked.
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        Ok(Lease { file, path })
    }

    /// Takes over the lease `<state_dir>/<name>` if nobody holds it: `Ok(None)` when it is
    /// locked (its owner lives), gone, or replaced by a new lease while we were locking it.
    pub fn take_over_if_stale(state_dir: &Path, name: &str) -> Result<Option<Lease>, CgroupError> {
        let path = state_dir.join(name);
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CgroupError::io("open", &path, e)),
        };
        match try_lock(&file) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(None),
            Err(e) => return Err(CgroupError::io("lock", &path, e)),
        }
        let locked = file.metadata().map_err(|e| CgroupError::io("stat", &path, e))?;
        if !locked.file_type().is_file() {
            return Ok(None);
        }
        let same = fs::symlink_metadata(&path).is_ok_and(|now| now.dev() == locked.dev() && now.ino() == locked.ino());
        Ok(same.then_some(Lease { file, path }))
    }

    /// The parent folder the lease's cgroup is under: its second line; `None` for a lease
    /// without one (an older crabcan's, whose parent was always [`crate::DEFAULT_PARENT`]).
    pub fn parent(&self) -> Result<Option<String>, CgroupError> {
        let content = fs::read_to_string(&self.path).map_err(|e| CgroupError::io("read", &self.path, e))?;
        Ok(content.lines().nth(1).map(str::to_string))
    }

    /// The lease file.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    #[cfg(test)]
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Unlinks the lease while still holding its lock, then lets go of it. The state
    /// directory stays, empty or not (see [`crate::DEFAULT_STATE_DIR`]).
    pub fn release(self) -> Result<(), CgroupError> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CgroupError::io("remove", &self.path, e)),
            _ => Ok(()),
        }
    }
}

/// Removes a temporary lease file (`.<leaf>...tmp`) whose creator died before placing it.
/// Returns whether `name` was one and was removed.
pub(crate) fn remove_stale_temp(state_dir: &Path, name: &str) -> Result<bool, CgroupError> {
    if !is_temp_name(name) {
        return Ok(false);
    }
    // A creator makes its temporary lease, then locks it: a young one may be in between, so
    // only one older than [`TEMP_STALE_AFTER`] is judged.
    let young = fs::symlink_metadata(state_dir.join(name))
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .map_or(true, |age| age < TEMP_STALE_AFTER);
    if young {
        return Ok(false);
    }
    match Lease::take_over_if_stale(state_dir, name)? {
        Some(lease) => lease.release().map(|()| true),
        None => Ok(false),
    }
}

/// The names in `state_dir` (leases and temporary leases); none when it does not exist.
pub(crate) fn lease_names(state_dir: &Path) -> Result<Vec<String>, CgroupError> {
    let entries = match fs::read_dir(state_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CgroupError::io("read directory", state_dir, e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

fn create_state_dir(state_dir: &Path) -> Result<(), CgroupError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|e| CgroupError::io("create directory", state_dir, e))
}

/// A new `.<leaf>.<random>.tmp` in `state_dir`, mode 0600, close-on-exec.
fn create_temp(state_dir: &Path, leaf: &str) -> io::Result<(PathBuf, File)> {
    loop {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let temp = state_dir.join(format!(".{leaf}.{:016x}.tmp", hasher.finish()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&temp)
        {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            result => return result.map(|file| (temp, file)),
        }
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: EWOULDBLOCK when another open file description holds it.
/// (A fresh temporary lease is never contended, so its creator does not need to wait either.)
fn try_lock(file: &File) -> io::Result<()> {
    loop {
        // SAFETY: flock(2) on a descriptor owned by `file`, alive for the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `renameat2(from, to, RENAME_NOREPLACE)`: fails with EEXIST instead of replacing `to`. On a
/// file system without RENAME_NOREPLACE (EINVAL), `link` + `unlink`, which also refuses an
/// existing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (c_from, c_to) = (c_path(from)?, c_path(to)?);
    // SAFETY: renameat2 through syscall(2) (older libcs lack the wrapper) with two valid
    // NUL-terminated paths that outlive the call; AT_FDCWD resolves relative paths.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            c_from.as_ptr(),
            libc::AT_FDCWD,
            c_to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EINVAL) {
        return Err(error);
    }
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_state_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crabcan-lease-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir.join("state")
    }

    /// Whether another open file description could lock `path` right now.
    fn lockable(path: &Path) -> bool {
        let file = File::open(path).expect("open lease");
        try_lock(&file).is_ok()
    }

    #[test]
    fn acquire_creates_a_locked_cloexec_lease_in_a_private_dir() {
        let state = temp_state_dir("acquire");
        let lease = Lease::acquire(&state, "web.12", "crabcan").expect("acquire");
        assert_eq!(lease.path(), state.join("web.12"));
        let mode = fs::metadata(&state).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "state dir mode {mode:o}");
        assert!(!lockable(lease.path()), "a fresh lease is not locked");
        // SAFETY: F_GETFD on a descriptor owned by the lease.
        let flags = unsafe { libc::fcntl(lease.file().as_raw_fd(), libc::F_GETFD) };
        assert!(
            flags >= 0 && flags & libc::FD_CLOEXEC != 0,
            "lease fd is not close-on-exec"
        );
        assert_eq!(
            lease_names(&state).unwrap(),
            vec!["web.12".to_string()],
            "temp file left"
        );
        assert_eq!(
            fs::read_to_string(lease.path()).unwrap(),
            format!("{}\ncrabcan\n", std::process::id())
        );
        assert_eq!(lease.parent().unwrap().as_deref(), Some("crabcan"));

        let err = Lease::acquire(&state, "web.12", "crabcan").unwrap_err();
        assert!(matches!(err, CgroupError::InUse { .. }), "{err}");
        assert_eq!(lease_names(&state).unwrap(), vec!["web.12".to_string()]);
        assert!(!lockable(lease.path()), "a failed second acquire released the first");

        assert!(Lease::take_over_if_stale(&state, "web.12").unwrap().is_none());
        lease.release().expect("release");
        assert!(lease_names(&state).unwrap().is_empty(), "the lease is gone");
        assert!(state.is_dir(), "the state directory stays");
        let _ = fs::remove_dir_all(state.parent().unwrap());
    }

    #[test]
    fn a_dropped_lease_is_stale_and_taken_over_once() {
        let state = temp_state_dir("stale");
        let lease = Lease::acquire(&state, "db.7", "crabcan").expect("acquire");
        drop(lease); // as if crabcan had died
        assert!(state.join("db.7").is_file());
        let taken = Lease::take_over_if_stale(&state, "db.7").unwrap().expect("stale lease");
        assert!(
            Lease::take_over_if_stale(&state, "db.7").unwrap().is_none(),
            "two scanners took over one lease"
        );
        taken.release().unwrap();
        assert!(Lease::take_over_if_stale(&state, "db.7").unwrap().is_none());
        let _ = fs::remove_dir_all(state.parent().unwrap());
    }

    #[test]
    fn a_lease_replaced_while_locking_is_not_taken_over() {
        let state = temp_state_dir("replaced");
        let old = Lease::acquire(&state, "x.1", "crabcan").unwrap();
        // A scanner opened the old inode...
        let opened = File::open(state.join("x.1")).unwrap();
        // ...another scanner removed it, and a new crabcan leased the name again.
        drop(old);
        Lease::take_over_if_stale(&state, "x.1")
            .unwrap()
            .unwrap()
            .release()
            .unwrap();
        let new = Lease::acquire(&state, "x.1", "crabcan").unwrap();
        // The first scanner can lock its old inode, but it is not the lease any more.
        assert!(try_lock(&opened).is_ok());
        let now = fs::metadata(state.join("x.1")).unwrap();
        assert_ne!(now.ino(), opened.metadata().unwrap().ino());
        assert!(Lease::take_over_if_stale(&state, "x.1").unwrap().is_none());
        new.release().unwrap();
        let _ = fs::remove_dir_all(state.parent().unwrap());
    }

    #[test]
    fn temp_leases_of_dead_creators_are_removed_live_ones_kept() {
        let state = temp_state_dir("temp");
        fs::create_dir_all(&state).unwrap();
        let (dead, file) = create_temp(&state, "a.1").unwrap();
        drop(file);
        let (live, held) = create_temp(&state, "b.2").unwrap();
        try_lock(&held).unwrap();
        let dead_name = dead.file_name().unwrap().to_str().unwrap().to_string();
        let live_name = live.file_name().unwrap().to_str().unwrap().to_string();
        assert!(!remove_stale_temp(&state, "a.1").unwrap(), "not a temporary name");
        assert!(
            !remove_stale_temp(&state, &dead_name).unwrap(),
            "a young unlocked one may be a creator's between its create and its lock"
        );
        let long_ago = std::time::SystemTime::now() - TEMP_STALE_AFTER * 2;
        for path in [&dead, &live] {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        assert!(remove_stale_temp(&state, &dead_name).unwrap());
        assert!(!remove_stale_temp(&state, &live_name).unwrap());
        assert!(!dead.exists() && live.exists());
        drop(held);
        assert!(remove_stale_temp(&state, &live_name).unwrap());
        let _ = fs::remove_dir_all(state.parent().unwrap());
    }

    #[test]
    fn missing_state_dir_has_no_leases() {
        let state = temp_state_dir("missing");
        assert!(lease_names(&state).unwrap().is_empty());
        assert!(Lease::take_over_if_stale(&state, "a.1").unwrap().is_none());
    }
}
