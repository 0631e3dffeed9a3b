//! [`remove_stale`]: cleanup of `crabcan/<name>.<pid>` cgroups left behind
//! by a crabcan process that died without removing them.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use crate::backend::CgroupBackend;
use crate::container::{validate_name, ContainerCgroup};
use crate::error::CgroupError;
use crate::fsutil::process_alive;
use crate::layout::{CgroupHost, Mounts, Version};
use crate::v1::V1Cgroup;
use crate::v2::V2Cgroup;
use crate::writes::Controller;
use crate::CRABCAN_DIR;

/// Finds `crabcan/<name>.<pid>` cgroups whose owning crabcan process is
/// gone (`kill(pid, 0)` fails with ESRCH), kills what runs inside and
/// removes them. Cgroups of a live pid are never touched (a reused pid keeps
/// a stale cgroup until that process exits: the safe side). Returns the
/// removed directory names; failures on single cgroups are logged and skipped.
pub fn remove_stale() -> Result<Vec<String>, CgroupError> {
    CgroupHost::detect()?.remove_stale()
}

impl CgroupHost {
    /// [`remove_stale`] on these mounts.
    pub fn remove_stale(&self) -> Result<Vec<String>, CgroupError> {
        let mounts = &self.mounts;
        let mut removed = Vec::new();
        for leaf in leaves(mounts) {
            let Some(owner) = owner_pid(&leaf) else {
                continue;
            };
            if process_alive(owner) {
                continue;
            }
            let backend: Box<dyn CgroupBackend> = match mounts.layout.version() {
                Version::V1 => Box::new(V1Cgroup::open(mounts, &leaf)),
                Version::V2 => match V2Cgroup::open(mounts, &leaf) {
                    Some(cgroup) => Box::new(cgroup),
                    None => continue,
                },
            };
            match ContainerCgroup::from_backend(leaf.clone(), backend).remove() {
                Ok(()) => removed.push(leaf),
                Err(e) => log::warn!("cannot remove stale cgroup {leaf}: {e}"),
            }
        }
        Ok(removed)
    }
}

/// Directory names under every `crabcan/` parent of this layout.
fn leaves(mounts: &Mounts) -> BTreeSet<String> {
    let parents: Vec<PathBuf> = match mounts.layout.version() {
        Version::V1 => Controller::V1_ALL
            .iter()
            .filter_map(|c| mounts.v1_mount(c.v1_name()))
            .map(|m| m.join(CRABCAN_DIR))
            .collect(),
        Version::V2 => mounts.v2.iter().map(|m| m.join(CRABCAN_DIR)).collect(),
    };
    let mut names = BTreeSet::new();
    for parent in parents {
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                names.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names
}

/// The owner pid of a `<name>.<pid>` directory name; `None` if it is not
/// one of ours (those are left alone).
pub(crate) fn owner_pid(leaf: &str) -> Option<i32> {
    let (name, pid) = leaf.rsplit_once('.')?;
    validate_name(name).ok()?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse::<i32>().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids() {
        assert_eq!(owner_pid("web.1234"), Some(1234));
        assert_eq!(owner_pid("my.app.77"), Some(77));
        assert_eq!(owner_pid("web"), None);
        assert_eq!(owner_pid("web."), None);
        assert_eq!(owner_pid(".12"), None);
        assert_eq!(owner_pid("web.0"), None);
        assert_eq!(owner_pid("web.-5"), None);
        assert_eq!(owner_pid("web.+5"), None);
        assert_eq!(owner_pid("web.99999999999"), None);
        assert_eq!(owner_pid("a..b.5"), None);
    }
}
