//! Walking a container cgroup subtree: the container may create child
//! cgroups of its own (it owns its cgroup namespace), so killing and
//! removal must cover descendants too.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::CgroupError;
use crate::fsutil::{read_pids, remove_dir_retrying};

/// `dir` and all cgroup directories below it, parents before children.
pub(crate) fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = fs::read_dir(&out[i]) {
            let children = entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path());
            out.extend(children.collect::<Vec<_>>());
        }
        i += 1;
    }
    out
}

/// All pids in `dir` and its descendants; a vanished directory counts as empty.
pub(crate) fn subtree_pids(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    for cgroup in subtree(dir) {
        match read_pids(&cgroup) {
            Ok(found) => pids.extend(found),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Removes `dir` and its descendants, children first, each with bounded EBUSY retries.
pub(crate) fn remove_subtree(dir: &Path, limit: Duration) -> Result<(), CgroupError> {
    for cgroup in subtree(dir).iter().rev() {
        remove_dir_retrying(cgroup, limit)?;
    }
    Ok(())
}
