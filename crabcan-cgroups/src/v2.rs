//! cgroup v2 backend: the container cgroup is `<cgroup2 mount>/crabcan/<leaf>`.
//! Controllers are enabled top-down in `cgroup.subtree_control` of the mount
//! root and of `crabcan/`; crabcan's own process is never moved, so the
//! "no internal processes" rule holds (`crabcan/` only has child cgroups).
//! Interface files per Documentation/admin-guide/cgroup-v2.rst.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backend::{write_pid, CgroupBackend, MissingController};
use crate::error::CgroupError;
use crate::fsutil::{create_dir, ensure_dir, read_keyed, read_string, read_u64, sigkill, wait_until, write_file};
use crate::layout::Mounts;
use crate::stats::Stats;
use crate::tree::subtree_pids;
use crate::writes::{Controller, LimitWrite};
use crate::{CRABCAN_DIR, KILL_TIMEOUT};

/// Controllers always enabled when available, for statistics and OOM detection.
const ALWAYS: [Controller; 2] = [Controller::Memory, Controller::Pids];

#[derive(Debug)]
pub(crate) struct V2Cgroup {
    dir: PathBuf,
    /// Controllers that are enabled for `dir` (limits for others are skipped).
    enabled: BTreeSet<Controller>,
}

impl V2Cgroup {
    /// Enables the controllers and creates `<mount>/crabcan/<leaf>`.
    pub fn create(
        mounts: &Mounts,
        leaf: &str,
        needed: &BTreeSet<Controller>,
        optional: &BTreeSet<Controller>,
        missing: MissingController,
    ) -> Result<V2Cgroup, CgroupError> {
        let root = v2_root(mounts)?;
        let parent = root.join(CRABCAN_DIR);
        let dir = parent.join(leaf);
        let available = read_controllers(&root.join("cgroup.controllers"))?;
        let mut wanted = BTreeSet::new();
        let candidates: BTreeSet<Controller> = needed
            .iter()
            .chain(optional.iter())
            .chain(ALWAYS.iter())
            .copied()
            .collect();
        for controller in &candidates {
            let Some(name) = controller.v2_name() else {
                continue;
            };
            if available.contains(name) {
                wanted.insert(*controller);
            } else if needed.contains(controller) {
                let option = option_for(*controller);
                missing.handle(CgroupError::MissingController {
                    controller: name.to_string(),
                    option,
                })?;
            }
        }
        let mut attempts = 0;
        loop {
            let mut enabled = enable(&root, &wanted, needed, missing)?;
            ensure_dir(&parent)?;
            enabled = enable(&parent, &enabled, needed, missing)?;
            match create_dir(&dir) {
                // A concurrent crabcan removed the empty parent: set it up again.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && attempts < 3 => attempts += 1,
                Err(e) => return Err(e),
                Ok(()) => return Ok(V2Cgroup { dir, enabled }),
            }
        }
    }

    /// An existing `crabcan/<leaf>` (for stale cleanup); `None` if absent.
    pub fn open(mounts: &Mounts, leaf: &str) -> Option<V2Cgroup> {
        let dir = mounts.v2.as_ref()?.join(CRABCAN_DIR).join(leaf);
        dir.is_dir().then_some(V2Cgroup {
            dir,
            enabled: BTreeSet::new(),
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        subtree_pids(&self.dir)
    }

    fn is_empty(&self) -> bool {
        match read_keyed(&self.file("cgroup.events"), "populated") {
            Some(populated) => populated == 0,
            None => self.pids().is_ok_and(|p| p.is_empty()),
        }
    }

    /// cgroup.kill (Linux 5.14+) kills the whole subtree atomically.
    fn kill_via_cgroup_kill(&self) -> Result<bool, CgroupError> {
        match write_file(&self.file("cgroup.kill"), "1") {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Fallback for older kernels: cgroup.freeze (5.2+) if present, SIGKILL
    /// every pid (fatal signals reach frozen tasks on v2), thaw.
    fn kill_round(&self) -> Result<(), CgroupError> {
        let freeze = self.file("cgroup.freeze");
        let frozen = write_file(&freeze, "1").is_ok();
        if frozen {
            wait_until(Duration::from_millis(200), || {
                read_keyed(&self.file("cgroup.events"), "frozen") == Some(1)
            });
        }
        let result = self.pids().map(|pids| pids.into_iter().for_each(sigkill));
        if frozen {
            if let Err(e) = write_file(&freeze, "0") {
                log::warn!("{e}");
            }
        }
        result
    }
}

fn v2_root(mounts: &Mounts) -> Result<PathBuf, CgroupError> {
    mounts.v2.clone().ok_or_else(|| CgroupError::NotMounted {
        path: "/proc/self/mountinfo".into(),
    })
}

fn option_for(controller: Controller) -> &'static str {
    match controller {
        Controller::Memory => "--memory",
        Controller::Pids => "--pids",
        Controller::Cpu | Controller::CpuAcct => "--cpus/--cpu-weight",
        Controller::Io => "--io-weight",
        Controller::Freezer => "the freezer",
    }
}

/// Space-separated controller names (cgroup.controllers / cgroup.subtree_control).
fn read_controllers(path: &Path) -> Result<BTreeSet<String>, CgroupError> {
    Ok(parse_controllers(&read_string(path)?))
}

pub(crate) fn parse_controllers(text: &str) -> BTreeSet<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Enables `wanted` in `cgroup`'s cgroup.subtree_control, one controller per
/// write so one refusal (e.g. cpu with realtime tasks outside the root)
/// does not block the others. Returns the controllers now enabled there.
fn enable(
    cgroup: &Path,
    wanted: &BTreeSet<Controller>,
    needed: &BTreeSet<Controller>,
    missing: MissingController,
) -> Result<BTreeSet<Controller>, CgroupError> {
    let control = cgroup.join("cgroup.subtree_control");
    let already = read_controllers(&control)?;
    let mut enabled = BTreeSet::new();
    for controller in wanted {
        let Some(name) = controller.v2_name() else {
            continue;
        };
        if already.contains(name) {
            enabled.insert(*controller);
            continue;
        }
        match write_file(&control, &format!("+{name}")) {
            Ok(()) => {
                enabled.insert(*controller);
            }
            Err(e) if needed.contains(controller) => missing.handle(e)?,
            Err(e) => log::debug!("{e}; statistics for '{name}' unavailable"),
        }
    }
    Ok(enabled)
}

impl CgroupBackend for V2Cgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn dir_for(&self, write: &LimitWrite) -> Option<&Path> {
        self.enabled.contains(&write.controller).then_some(self.dir.as_path())
    }

    fn v2_path(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        write_pid(&self.dir, pid)
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        let start = Instant::now();
        if self.is_empty() {
            return Ok(());
        }
        let atomic = self.kill_via_cgroup_kill()?;
        loop {
            if wait_until(Duration::from_millis(100), || self.is_empty()) {
                return Ok(());
            }
            if start.elapsed() >= KILL_TIMEOUT {
                let pids = self.pids().unwrap_or_default();
                return Err(CgroupError::KillTimeout {
                    path: self.dir.clone(),
                    pids,
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            if !atomic {
                self.kill_round()?;
            }
        }
    }

    fn stats(&self) -> Stats {
        Stats {
            memory_peak: read_u64(&self.file("memory.peak")),
            memory_current: read_u64(&self.file("memory.current")),
            oom_kills: read_keyed(&self.file("memory.events"), "oom_kill").unwrap_or(0),
            pids_current: read_u64(&self.file("pids.current")),
            pids_peak: read_u64(&self.file("pids.peak")),
            cpu_usage_ns: read_keyed(&self.file("cpu.stat"), "usage_usec").map(|us| us.saturating_mul(1000)),
        }
    }

    /// memory.events `oom_kill` (hierarchical: includes descendants).
    fn oom_killed(&self) -> bool {
        read_keyed(&self.file("memory.events"), "oom_kill").is_some_and(|n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_lists() {
        let set = parse_controllers("cpuset cpu io memory hugetlb pids rdma misc\n");
        assert!(set.contains("memory") && set.contains("io") && set.contains("pids"));
        assert!(!set.contains("freezer"));
        assert!(parse_controllers("\n").is_empty());
    }
}
