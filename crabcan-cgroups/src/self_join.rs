//! [`SelfJoin`]: a cgroup v1 process moving *itself* into its cgroup.
//!
//! To move another process, the kernel takes a global lock (`cgroup_threadgroup_rwsem`) whose
//! write side first waits for an RCU grace period: 10 to 20 ms on an idle machine, paid on every
//! container start. A thread that moves itself (writes `0` to a v1 `tasks` file) skips that lock.
//! So crabcan opens the `tasks` files in the privileged parent and hands the descriptors to the
//! container's still single-threaded process, which joins by itself before any user code runs.
//! (On cgroup v2 the process is instead cloned straight into its cgroup with CLONE_INTO_CGROUP.)

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::error::CgroupError;

/// Open `tasks` files of every v1 hierarchy of one container's cgroup.
#[derive(Debug)]
pub struct SelfJoin {
    files: Vec<OwnedFd>,
}

impl SelfJoin {
    /// Opens `<dir>/tasks` for writing in each of `dirs` (close-on-exec); `cgroup.procs` in a
    /// directory without `tasks`: the cgroup2 directory of a hybrid host's cgroup, where writing
    /// 0 moves the (single-threaded) process.
    pub(crate) fn open(dirs: &[impl AsRef<Path>]) -> Result<SelfJoin, CgroupError> {
        let mut files = Vec::with_capacity(dirs.len());
        let open = |path: &Path| std::fs::OpenOptions::new().write(true).open(path);
        for dir in dirs {
            let tasks = dir.as_ref().join("tasks");
            let file = match open(&tasks) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let procs = dir.as_ref().join("cgroup.procs");
                    open(&procs).map_err(|cause| CgroupError::io("open for writing", &procs, cause))?
                }
                result => result.map_err(|cause| CgroupError::io("open for writing", &tasks, cause))?,
            };
            files.push(OwnedFd::from(file));
        }
        Ok(SelfJoin { files })
    }

    /// Takes back descriptors received from the process that opened them.
    pub fn from_fds(files: Vec<OwnedFd>) -> SelfJoin {
        SelfJoin { files }
    }

    /// The descriptors, to pass to the process that will join (e.g. with `SCM_RIGHTS`).
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.files.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Moves the calling thread into the cgroup. In a single-threaded process that is the whole
    /// process. Does not allocate: it may run in a freshly cloned child.
    pub fn join_calling_thread(&self) -> Result<(), std::io::Error> {
        for file in &self.files {
            // SAFETY: writing one byte from a static buffer to a descriptor we own.
            let written = unsafe { libc::write(file.as_raw_fd(), b"0".as_ptr().cast(), 1) };
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
