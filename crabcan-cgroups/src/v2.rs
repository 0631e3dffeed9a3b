//! cgroup v2 backend: the container cgroup is `<cgroup2 mount>/<parent>/<leaf>`.
//! Controllers are enabled top-down in `cgroup.subtree_control` of the mount
//! root and of each component of `<parent>/` (one for leased cgroups, any number for
//! `CgroupHost::create_at`); the calling process is never moved, so the
//! "no internal processes" rule holds (crabcan puts no process in `<parent>/`).
//! Interface files per Documentation/admin-guide/cgroup-v2.rst.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backend::{write_pid, CgroupBackend, MissingController, Unapplied};
use crate::error::CgroupError;
use crate::fsutil::{
    create_dir, ensure_dir_tracked, read_keyed, read_string, read_u64, sigkill, wait_until, write_file,
};
use crate::layout::{Mounts, Version};
use crate::stats::Stats;
use crate::tree::subtree_pids;
use crate::writes::{Controller, LimitWrite, Needed, Placement};
use crate::{FREEZE_TIMEOUT, KILL_TIMEOUT};

/// Controllers enabled for a container's cgroup whenever the host offers them: memory and pids
/// for statistics and OOM detection, all of them so that a later `update` can set any limit
/// (runc enables every available controller too).
const ALL_AVAILABLE: [Controller; 8] = [
    Controller::Memory,
    Controller::Pids,
    Controller::Cpu,
    Controller::Io,
    Controller::Cpuset,
    Controller::Hugetlb,
    Controller::Rdma,
    Controller::Misc,
];

#[derive(Debug)]
pub(crate) struct V2Cgroup {
    dir: PathBuf,
    /// Controllers that are enabled for `dir` (limits for others are skipped).
    enabled: BTreeSet<Controller>,
}

/// What creating a v2 cgroup needs to know besides its place.
pub(crate) struct Wanted<'a> {
    /// Controllers the limits need, with those limits (the policy applies when absent).
    pub needed: &'a Needed,
    /// Controllers used when present (best-effort limits).
    pub optional: &'a BTreeSet<Controller>,
    pub missing: MissingController,
    /// Whether to enable every other controller of [`ALL_AVAILABLE`] the host offers too
    /// (not for the cgroup2 part of a hybrid host's cgroup, which holds only what v1 lacks).
    pub all_available: bool,
    /// Which v1 hierarchies without a limit are joined (v1 only).
    pub uses: crate::CgroupUses,
}

impl V2Cgroup {
    /// Enables the controllers and creates `<mount>/<base>/<parent>/<leaf>`, and the missing
    /// components of `<parent>` (pushed to `made`; the caller decides what to do with them on
    /// error). Controllers are enabled from `<mount>/<base>` down: `base` is empty, or the
    /// subtree delegated to an ordinary user ([`crate::CgroupHost::with_v2_base`]), above
    /// which nothing is written.
    pub fn create(
        mounts: &Mounts,
        base: &Path,
        parent: &Path,
        leaf: &str,
        wanted: &Wanted,
        unapplied: &mut Vec<Unapplied>,
        made: &mut Vec<PathBuf>,
    ) -> Result<V2Cgroup, CgroupError> {
        let root = v2_root(mounts)?.join(base);
        let dir = root.join(parent).join(leaf);
        let available = read_controllers(&root.join("cgroup.controllers"))?;
        let usable = usable_controllers(&available, wanted, unapplied)?;
        let mut attempts = 0;
        loop {
            let mut enabled = enable(&root, &usable, wanted, unapplied)?;
            let mut component = root.clone();
            for name in parent.components() {
                component.push(name);
                ensure_dir_tracked(&component, made)?;
                enabled = enable(&component, &enabled, wanted, unapplied)?;
            }
            match create_dir(&dir) {
                // A concurrent crabcan removed the empty parent: set it up again.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && attempts < 3 => attempts += 1,
                Err(e) => return Err(e),
                Ok(()) => return Ok(V2Cgroup { dir, enabled }),
            }
        }
    }

    /// An existing `rel` (`<parent>/<leaf>`, relative to the mount point), with the
    /// controllers its parent enabled for it (its `cgroup.controllers`); `None` if absent.
    pub fn open(mounts: &Mounts, rel: &Path) -> Option<V2Cgroup> {
        let dir = mounts.v2.as_ref()?.join(rel);
        if !dir.is_dir() {
            return None;
        }
        let names = read_string(&dir.join("cgroup.controllers"))
            .map(|text| parse_controllers(&text))
            .unwrap_or_default();
        let enabled = names.iter().filter_map(|name| Controller::from_v2_name(name)).collect();
        Some(V2Cgroup { dir, enabled })
    }

    /// The directory and the controllers enabled for it.
    pub fn into_parts(self) -> (PathBuf, BTreeSet<Controller>) {
        (self.dir, self.enabled)
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
        let thawed = if frozen { write_file(&freeze, "0") } else { Ok(()) };
        result.and(thawed)
    }
}

/// The controllers `<mount>/<base>` offers its children (its `cgroup.controllers`).
pub(crate) fn available_controllers(mounts: &Mounts, base: &Path) -> Result<BTreeSet<String>, CgroupError> {
    read_controllers(&v2_root(mounts)?.join(base).join("cgroup.controllers"))
}

fn v2_root(mounts: &Mounts) -> Result<PathBuf, CgroupError> {
    mounts.v2.clone().ok_or_else(|| CgroupError::NotMounted {
        path: "/proc/self/mountinfo".into(),
    })
}

/// The needed, optional (and with [`Wanted::all_available`] the other [`ALL_AVAILABLE`])
/// controllers that `available` (the root's `cgroup.controllers`) offers; needed ones it lacks
/// go through the missing policy.
fn usable_controllers(
    available: &BTreeSet<String>,
    wanted: &Wanted,
    unapplied: &mut Vec<Unapplied>,
) -> Result<BTreeSet<Controller>, CgroupError> {
    let candidates: BTreeSet<Controller> = wanted
        .needed
        .keys()
        .chain(wanted.optional.iter())
        .chain(ALL_AVAILABLE.iter().filter(|_| wanted.all_available))
        .copied()
        .collect();
    let mut usable = BTreeSet::new();
    for controller in candidates {
        let Some(name) = controller.v2_name() else {
            continue;
        };
        if available.contains(name) {
            usable.insert(controller);
        } else if let Some(limits) = wanted.needed.get(&controller) {
            let error = |limit| CgroupError::MissingController {
                controller: name.to_string(),
                limit,
            };
            wanted.missing.handle(limits, error, unapplied)?;
        }
    }
    Ok(usable)
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
    controllers: &BTreeSet<Controller>,
    wanted: &Wanted,
    unapplied: &mut Vec<Unapplied>,
) -> Result<BTreeSet<Controller>, CgroupError> {
    let control = cgroup.join("cgroup.subtree_control");
    let already = read_controllers(&control)?;
    let mut enabled = BTreeSet::new();
    for controller in controllers {
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
            Err(e) => match wanted.needed.get(controller) {
                Some(limits) => not_enabled(&control, name, limits, &e, wanted.missing, unapplied)?,
                None => log::debug!("{e}; statistics for '{name}' unavailable"),
            },
        }
    }
    Ok(enabled)
}

/// The policy for `limits`, whose controller `name` could not be enabled in `control`.
fn not_enabled(
    control: &Path,
    name: &str,
    limits: &[crate::LimitKind],
    error: &CgroupError,
    missing: MissingController,
    unapplied: &mut Vec<Unapplied>,
) -> Result<(), CgroupError> {
    let errno = error.raw_os_error().unwrap_or(libc::EIO);
    let error = |limit| CgroupError::ControllerNotEnabled {
        controller: name.to_string(),
        path: control.to_path_buf(),
        limit,
        cause: std::io::Error::from_raw_os_error(errno),
    };
    missing.handle(limits, error, unapplied)
}

impl CgroupBackend for V2Cgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn dir_for(&self, write: &LimitWrite) -> Option<&Path> {
        let usable = write.controller == Controller::Core || self.enabled.contains(&write.controller);
        usable.then_some(self.dir.as_path())
    }

    fn v2_path(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn placement(&self) -> Placement {
        Placement::only(Version::V2)
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

    /// cgroup.freeze 1/0, waiting until cgroup.events says `frozen 1`/`frozen 0`. A freeze
    /// that times out is undone (best effort).
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let freeze = self.file("cgroup.freeze");
        match write_file(&freeze, if frozen { "1" } else { "0" }) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(CgroupError::FreezerUnavailable {
                    controller: "freezer",
                    path: freeze,
                })
            }
            result => result?,
        }
        let events = self.file("cgroup.events");
        let wanted = u64::from(frozen);
        let start = Instant::now();
        if wait_until(FREEZE_TIMEOUT, || read_keyed(&events, "frozen") == Some(wanted)) {
            return Ok(());
        }
        if frozen {
            let _ = write_file(&freeze, "0");
        }
        let state = match read_keyed(&events, "frozen") {
            Some(now) => format!("frozen {now}"),
            None => "no 'frozen' key".to_string(),
        };
        Err(CgroupError::FreezeTimeout {
            path: events,
            wanted: if frozen { "frozen 1" } else { "frozen 0" },
            state,
            waited_ms: start.elapsed().as_millis(),
        })
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
