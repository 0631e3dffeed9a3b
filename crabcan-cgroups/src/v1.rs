//! cgroup v1 (and hybrid) backend: one `<parent>/<leaf>` directory in each
//! mounted hierarchy crabcan uses (memory, pids, cpu, cpuacct, blkio,
//! freezer, and cpuset, hugetlb, net_cls, net_prio, rdma, misc when a limit needs them;
//! co-mounted hierarchies share a directory). `<parent>` is the parent folder
//! (one component) for leased cgroups, or any number of components for cgroups made at a path
//! (`CgroupHost::create_at`). A cpuset directory starts with its parent's CPUs and memory
//! nodes (copied down every level crabcan finds empty), or no task could join it. On a hybrid
//! host, a controller bound to the cgroup2 mount rather than to a v1 hierarchy (systemd's
//! hybrid hosts have hugetlb there) gets a `<parent>/<leaf>` directory on the cgroup2 mount,
//! written with its v2 files. Never writes `notify_on_release`/`release_agent` (CVE-2022-0492).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backend::{write_pid, CgroupBackend, Unapplied};
use crate::error::CgroupError;
use crate::fsutil::{
    create_dir, ensure_dir_tracked, read_keyed, read_string, read_u64, sigkill, wait_until, write_file,
};
use crate::layout::{Mounts, Version};
use crate::stats::Stats;
use crate::tree::{remove_subtree, subtree_pids};
use crate::v2::{parse_controllers, V2Cgroup, Wanted};
use crate::writes::{Controller, LimitWrite, Placement};
use crate::{FREEZE_TIMEOUT, KILL_TIMEOUT, REMOVE_TIMEOUT};

#[derive(Debug)]
pub(crate) struct V1Cgroup {
    /// Controller → its directory (several controllers may share one).
    dirs: Vec<(Controller, PathBuf)>,
    /// The controllers whose directory is on the cgroup2 mount (hybrid hosts).
    on_unified: BTreeSet<Controller>,
}

/// The controllers among `used` that this hybrid host has on its cgroup2 mount instead of a
/// v1 hierarchy (empty on other hosts, or when the cgroup2 root cannot be read: those
/// controllers are then missing, and the missing-controller policy says what happens).
pub(crate) fn unified_controllers(mounts: &Mounts, used: impl IntoIterator<Item = Controller>) -> BTreeSet<Controller> {
    let Some(root) = mounts.v2.as_ref().filter(|_| mounts.layout == crate::Layout::Hybrid) else {
        return BTreeSet::new();
    };
    let available = read_string(&root.join("cgroup.controllers"))
        .map(|text| parse_controllers(&text))
        .unwrap_or_default();
    used.into_iter()
        .filter(|c| Controller::V1_ON_DEMAND.contains(c) && mounts.v1_mount(c.v1_name()).is_none())
        .filter(|c| c.v2_name().is_some_and(|name| available.contains(name)))
        .collect()
}

impl V1Cgroup {
    /// Creates `<parent>/<leaf>` in every mounted hierarchy of [`Controller::V1_ALL`] it joins
    /// ([`joined`]: `freezer` and `cpuacct` only when [`crate::CgroupUses`] asks) and of
    /// the on-demand controllers `wanted` uses (`parent` relative to the mount point, its
    /// missing components created and pushed to `made`), and on the cgroup2 mount for the
    /// controllers of `on_unified`; `wanted.needed` controllers that are not mounted go
    /// through the `missing` policy. Removes the leaves it made on error (the caller decides
    /// about `made`).
    pub fn create(
        mounts: &Mounts,
        parent: &Path,
        leaf: &str,
        wanted: &Wanted,
        on_unified: &BTreeSet<Controller>,
        unapplied: &mut Vec<Unapplied>,
        made: &mut Vec<PathBuf>,
    ) -> Result<V1Cgroup, CgroupError> {
        for (controller, limits) in wanted.needed {
            if !on_unified.contains(controller) && mounts.v1_mount(controller.v1_name()).is_none() {
                let error = |limit| CgroupError::MissingController {
                    controller: controller.v1_name().to_string(),
                    limit,
                };
                wanted.missing.handle(limits, error, unapplied)?;
            }
        }
        let rel = parent.join(leaf);
        let on_demand = Controller::V1_ON_DEMAND
            .into_iter()
            .filter(|c| wanted.optional.contains(c) && !on_unified.contains(c));
        let mut cgroup = V1Cgroup {
            dirs: leaf_dirs(mounts, &rel, joined(mounts, wanted).chain(on_demand)),
            on_unified: BTreeSet::new(),
        };
        let mut leaves: Vec<PathBuf> = Vec::new();
        let remove_leaves = |leaves: &[PathBuf]| {
            for m in leaves.iter().rev() {
                let _ = remove_subtree(m, REMOVE_TIMEOUT);
            }
        };
        for dir in cgroup.dirs() {
            // `dir` is `<mount>/<parent>/<leaf>`: its mount is what is left without `rel`.
            let mount = strip_rel(&dir, &rel);
            if let Err(e) = make_leaf(&mount, parent, leaf, made) {
                remove_leaves(&leaves); // not `dir`: it may be someone else's
                return Err(e);
            }
            leaves.push(dir);
            let is_cpuset = mounts.v1_mount(Controller::Cpuset.v1_name()) == Some(mount.as_path());
            let cpuset_ready = if is_cpuset { init_cpuset(&mount, &rel) } else { Ok(()) };
            if let Err(e) = cpuset_ready {
                remove_leaves(&leaves);
                return Err(e);
            }
        }
        if !on_unified.is_empty() {
            match unified_part(mounts, parent, leaf, wanted, on_unified, unapplied, made) {
                Ok(Some((dir, enabled))) => {
                    cgroup.dirs.extend(enabled.iter().map(|c| (*c, dir.clone())));
                    cgroup.on_unified = enabled;
                }
                Ok(None) => {}
                Err(e) => {
                    remove_leaves(&leaves);
                    return Err(e);
                }
            }
        }
        Ok(cgroup)
    }

    /// The existing directories of `rel` (`<parent>/<leaf>`, relative to each mount point),
    /// in every hierarchy crabcan knows, and on a hybrid host's cgroup2 mount the directory at
    /// `rel` for the controllers crabcan would have put there, if they are enabled in it.
    pub fn open(mounts: &Mounts, rel: &Path) -> V1Cgroup {
        let known = Controller::V1_ALL.into_iter().chain(Controller::V1_ON_DEMAND);
        let mut dirs = leaf_dirs(mounts, rel, known);
        dirs.retain(|(_, dir)| dir.is_dir());
        let mut on_unified = BTreeSet::new();
        if let Some(unified) = mounts.v2.as_ref().map(|root| root.join(rel)).filter(|dir| dir.is_dir()) {
            let enabled = read_string(&unified.join("cgroup.controllers"))
                .map(|text| parse_controllers(&text))
                .unwrap_or_default();
            on_unified = unified_controllers(mounts, Controller::V1_ON_DEMAND);
            on_unified.retain(|c| c.v2_name().is_some_and(|name| enabled.contains(name)));
            dirs.extend(on_unified.iter().map(|c| (*c, unified.clone())));
        }
        V1Cgroup { dirs, on_unified }
    }

    fn dir(&self, controller: Controller) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.as_path())
    }

    fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for dir in self.dirs() {
            pids.extend(subtree_pids(&dir)?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Freezes (if the freezer is mounted), SIGKILLs every pid, thaws.
    fn kill_round(&self) -> Result<(), CgroupError> {
        let freezer = self.dir(Controller::Freezer);
        if let Some(dir) = freezer {
            freeze(dir);
        }
        let result = self.all_pids().map(|pids| pids.into_iter().for_each(sigkill));
        // Killed tasks only die once thawed: a failure to thaw is this round's error.
        let thawed = freezer.map_or(Ok(()), |dir| write_file(&dir.join("freezer.state"), "THAWED"));
        result.and(thawed)
    }
}

/// `<mount>/<rel>` for each of `controllers` that is mounted.
fn leaf_dirs(mounts: &Mounts, rel: &Path, controllers: impl Iterator<Item = Controller>) -> Vec<(Controller, PathBuf)> {
    controllers
        .filter_map(|c| mounts.v1_mount(c.v1_name()).map(|m| (c, m.join(rel))))
        .collect()
}

/// The controllers of [`Controller::V1_ALL`] a new cgroup joins: memory, pids and cpu always
/// (they account and weigh even without a limit), blkio when an I/O limit is written there,
/// freezer, cpuacct and blkio when [`crate::CgroupUses`] asks for them, and any of them
/// co-mounted with a joined one (`cpu,cpuacct`: the directory is made anyway).
fn joined<'a>(mounts: &'a Mounts, wanted: &'a Wanted) -> impl Iterator<Item = Controller> + 'a {
    let limited = |c: Controller| wanted.needed.contains_key(&c) || wanted.optional.contains(&c);
    let asked = move |c: Controller| match c {
        Controller::Freezer => wanted.uses.freeze,
        Controller::CpuAcct => wanted.uses.cpu_usage,
        Controller::Io => wanted.uses.io_accounting || limited(c),
        _ => true,
    };
    let mount = |c: Controller| mounts.v1_mount(c.v1_name());
    Controller::V1_ALL.into_iter().filter(move |&c| {
        asked(c)
            || wanted.optional.contains(&c)
            || Controller::V1_ALL
                .into_iter()
                .any(|other| other != c && asked(other) && mount(other).is_some() && mount(other) == mount(c))
    })
}

/// The cgroup2 directory `<parent>/<leaf>` of a hybrid host for the controllers of
/// `on_unified`, made as on a v2 host (the controllers enabled top-down): the directory and
/// the controllers enabled in it, or `None` when none could be (under
/// [`crate::MissingController::Warn`]; the directory is then removed again).
fn unified_part(
    mounts: &Mounts,
    parent: &Path,
    leaf: &str,
    wanted: &Wanted,
    on_unified: &BTreeSet<Controller>,
    unapplied: &mut Vec<Unapplied>,
    made: &mut Vec<PathBuf>,
) -> Result<Option<(PathBuf, BTreeSet<Controller>)>, CgroupError> {
    let mut needed = wanted.needed.clone();
    needed.retain(|c, _| on_unified.contains(c));
    let part = Wanted {
        needed: &needed,
        optional: on_unified,
        missing: wanted.missing,
        all_available: false,
        uses: wanted.uses,
    };
    // A hybrid host's cgroup2 mount: root's, from its root (no delegation on hybrid hosts).
    let cgroup = V2Cgroup::create(mounts, Path::new(""), parent, leaf, &part, unapplied, made)?;
    let (dir, mut enabled) = cgroup.into_parts();
    enabled.retain(|c| on_unified.contains(c));
    if enabled.is_empty() {
        remove_subtree(&dir, REMOVE_TIMEOUT)?;
        return Ok(None);
    }
    Ok(Some((dir, enabled)))
}

/// Gives every cpuset directory from the hierarchy's root down to `<mount>/<rel>` that has
/// no CPUs or no memory nodes its parent's (runc's `cpusetCopyIfNeeded`): a v1 cpuset
/// directory starts empty, and no task can join an empty cpuset.
fn init_cpuset(mount: &Path, rel: &Path) -> Result<(), CgroupError> {
    let mut parent = mount.to_path_buf();
    for component in rel.components() {
        let dir = parent.join(component);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read_string(&dir.join(file))?.trim().is_empty() {
                let inherited = read_string(&parent.join(file))?;
                write_file(&dir.join(file), inherited.trim())?;
            }
        }
        parent = dir;
    }
    Ok(())
}

/// `dir` without its last `rel.components().count()` components: the mount point.
fn strip_rel(dir: &Path, rel: &Path) -> PathBuf {
    let mut mount = dir.to_path_buf();
    for _ in rel.components() {
        mount.pop();
    }
    mount
}

/// Creates `<mount>/<parent>/<leaf>` (never adopting an existing one) and the missing
/// components of `<parent>` (pushed to `made`), retrying if a concurrent crabcan removed an
/// empty parent.
fn make_leaf(mount: &Path, parent: &Path, leaf: &str, made: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let dir = mount.join(parent).join(leaf);
    let mut attempts = 0;
    loop {
        let mut component = mount.to_path_buf();
        for name in parent.components() {
            component.push(name);
            ensure_dir_tracked(&component, made)?;
        }
        match create_dir(&dir) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && attempts < 3 => attempts += 1,
            result => return result,
        }
    }
}

/// Writes `target` (`FROZEN` or `THAWED`) to `state` until it reads back so (a v1 freezer
/// may stay `FREEZING` for a while), for at most [`FREEZE_TIMEOUT`]. A freeze that times out
/// is undone (best effort), so the cgroup is not left half frozen.
pub(crate) fn set_freezer_state(state: &Path, target: &'static str) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        write_file(state, target)?;
        let now = read_string(state)?;
        if now.trim() == target {
            return Ok(());
        }
        if start.elapsed() >= FREEZE_TIMEOUT {
            if target == "FROZEN" {
                let _ = write_file(state, "THAWED");
            }
            return Err(CgroupError::FreezeTimeout {
                path: state.to_path_buf(),
                wanted: target,
                state: now.trim().to_string(),
                waited_ms: start.elapsed().as_millis(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn freeze(dir: &Path) {
    let state = dir.join("freezer.state");
    if let Err(e) = write_file(&state, "FROZEN") {
        log::debug!("{e}; killing without freezing");
        return;
    }
    let frozen = wait_until(Duration::from_millis(200), || {
        read_string(&state).is_ok_and(|s| s.trim() == "FROZEN")
    });
    if !frozen {
        log::debug!("{} did not reach FROZEN; killing anyway", state.display());
    }
}

impl CgroupBackend for V1Cgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (_, dir) in &self.dirs {
            if !dirs.contains(dir) {
                dirs.push(dir.clone());
            }
        }
        dirs
    }

    fn dir_for(&self, write: &LimitWrite) -> Option<&Path> {
        self.dir(write.controller)
    }

    fn v2_path(&self) -> Option<&Path> {
        None
    }

    fn placement(&self) -> Placement {
        Placement {
            version: Version::V1,
            on_unified: self.on_unified.clone(),
        }
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        self.dirs().iter().try_for_each(|dir| write_pid(dir, pid))
    }

    /// freezer FROZEN, SIGKILL each pid, THAWED; repeated until no task is
    /// left in any hierarchy or [`KILL_TIMEOUT`] passes.
    fn kill_all(&self) -> Result<(), CgroupError> {
        let start = Instant::now();
        loop {
            let pids = self.all_pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= KILL_TIMEOUT {
                let path = self.dirs().first().cloned().unwrap_or_default();
                return Err(CgroupError::KillTimeout {
                    path,
                    pids,
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            self.kill_round()?;
            wait_until(Duration::from_millis(100), || {
                self.all_pids().is_ok_and(|p| p.is_empty())
            });
        }
    }

    /// freezer.state `FROZEN`/`THAWED`, waiting until it reads so.
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let Some(dir) = self.dir(Controller::Freezer) else {
            return Err(CgroupError::FreezerUnavailable {
                controller: "freezer",
                path: self.dirs().first().cloned().unwrap_or_default(),
            });
        };
        set_freezer_state(&dir.join("freezer.state"), if frozen { "FROZEN" } else { "THAWED" })
    }

    fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        if let Some(dir) = self.dir(Controller::Memory) {
            stats.memory_peak = read_u64(&dir.join("memory.max_usage_in_bytes"));
            stats.memory_current = read_u64(&dir.join("memory.usage_in_bytes"));
            stats.oom_kills = read_keyed(&dir.join("memory.oom_control"), "oom_kill").unwrap_or(0);
        }
        if let Some(dir) = self.dir(Controller::Pids) {
            stats.pids_current = read_u64(&dir.join("pids.current"));
            stats.pids_peak = read_u64(&dir.join("pids.peak"));
        }
        if let Some(dir) = self.dir(Controller::CpuAcct) {
            stats.cpu_usage_ns = read_u64(&dir.join("cpuacct.usage"));
        }
        stats
    }

    /// memory.oom_control `oom_kill` (Linux 4.13+); on older kernels
    /// memory.failcnt > 0 (the limit was hit, which usually means an OOM kill).
    fn oom_killed(&self) -> bool {
        let Some(dir) = self.dir(Controller::Memory) else {
            return false;
        };
        match read_keyed(&dir.join("memory.oom_control"), "oom_kill") {
            Some(kills) => kills > 0,
            None => read_u64(&dir.join("memory.failcnt")).is_some_and(|n| n > 0),
        }
    }
}
