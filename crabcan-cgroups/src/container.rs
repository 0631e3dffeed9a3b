//! [`ContainerCgroup`]: the lifecycle of one container's cgroup — created with limits (by
//! [`CgroupHost::create`]), add tasks, stats, kill, remove (explicitly or on drop) — and
//! [`validate_name`] for the names it is created under.
//!
//! Security note (CVE-2022-0492, the `release_agent` escape): crabcan never
//! enables `notify_on_release` nor writes `release_agent`; the container
//! also gets its own cgroup namespace (crabcan-core's job), so it cannot see
//! or write the host's cgroup root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::at_path::CgroupPath;
use crate::backend::{apply_writes, CgroupBackend, MissingController, Unapplied};
use crate::error::CgroupError;
use crate::fsutil::read_u64;
use crate::fsutil::remove_parent_if_empty;
use crate::host::CgroupHost;
use crate::layout::{Layout, Version};
use crate::lease::Lease;
use crate::limits::Limits;
use crate::self_join::SelfJoin;
use crate::stats::Stats;
use crate::tree::remove_subtree;
use crate::v1::{unified_controllers, V1Cgroup};
use crate::v2::{V2Cgroup, Wanted};
use crate::writes::{limit_writes, needed, Controller, LimitWrite, Placement};
use crate::REMOVE_TIMEOUT;

/// Longest accepted container name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Checks `name` is a safe single path component: 1..=64 bytes of
/// `[A-Za-z0-9_.-]`, not containing "..". Container names and the parent folder's name
/// ([`CgroupHost::with_parent`]) must pass it.
pub fn validate_name(name: &str) -> Result<(), CgroupError> {
    check_name(name, MAX_NAME_LEN, "it is longer than 64 bytes")
}

/// Like [`validate_name`] but up to [`crate::at_path::MAX_COMPONENT_LEN`] (NAME_MAX) bytes:
/// the components of a [`CgroupHost::create_at`] path (OCI engines' ids are often longer
/// than 64 bytes with a prefix, e.g. `libpod-<64 hex digits>`).
pub(crate) fn validate_component(name: &str) -> Result<(), CgroupError> {
    check_name(name, crate::at_path::MAX_COMPONENT_LEN, "it is longer than 255 bytes")
}

fn check_name(name: &str, max_len: usize, too_long: &'static str) -> Result<(), CgroupError> {
    let invalid = |reason| {
        Err(CgroupError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > max_len {
        return invalid(too_long);
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        return invalid("only letters, digits, '_', '.' and '-' are allowed");
    }
    if name == "." || name.contains("..") {
        return invalid("'.' and '..' are not allowed");
    }
    Ok(())
}

/// One container's cgroup (a directory per hierarchy on v1, one on v2). Made by
/// [`CgroupHost::create`], it comes with the lease that proves it is ours (see the `lease`
/// module); made by [`CgroupHost::create_at`] or found by [`ContainerCgroup::open_at`], it has
/// none. Dropping one made by `create`/`create_at` kills its processes and removes it, best
/// effort (unless [`ContainerCgroup::keep`] gave it up); dropping one from `open_at` leaves
/// it alone.
#[derive(Debug)]
pub struct ContainerCgroup {
    /// `<name>.<owner pid>`, the directory name under the parent folder; the path's last
    /// component for a cgroup at a path.
    leaf: String,
    /// Where it is, relative to `base` in each hierarchy: what [`ContainerCgroup::open_at`]
    /// takes.
    relative: PathBuf,
    /// The host's [`CgroupHost::v2_base`] on cgroup v2 (a subtree delegated to a user); empty
    /// on v1 and for root's.
    base: PathBuf,
    /// `None` once removed.
    backend: Option<Box<dyn CgroupBackend>>,
    /// Held (locked) for as long as the directories exist; `None` once removed, and always for
    /// a cgroup at a path.
    lease: Option<Lease>,
    /// The limits created without (see [`ContainerCgroup::unapplied`]).
    unapplied: Vec<Unapplied>,
    /// How many directories above each leaf removal tries to remove if empty: none for a leased
    /// cgroup (the parent folder stays), every component of the path but the leaf for one at a
    /// path, except the host's parent folder ([`CgroupPath::prunable_levels`]).
    parent_levels: usize,
    /// Whether dropping the handle removes the cgroup (not for [`ContainerCgroup::open_at`]).
    remove_on_drop: bool,
}

impl ContainerCgroup {
    /// Creates `<parent>/<name>.<pid>` on `host`'s mounts, its lease first (see
    /// [`CgroupHost::create`]). On any error, everything created is removed again.
    pub(crate) fn create_on(
        host: &CgroupHost,
        name: &str,
        limits: &Limits,
        missing: MissingController,
    ) -> Result<ContainerCgroup, CgroupError> {
        validate_name(name)?;
        limits.validate()?;
        let (placement, writes) = plan_writes(host, limits)?;
        let version = placement.version;
        let leaf = format!("{name}.{}", std::process::id());
        // The lease first: a scanner must never see our directories without a held lease.
        let lease = Lease::acquire(&host.state_dir, &leaf, &host.parent)?;
        let mut unapplied = Vec::new();
        let parent = Path::new(&host.parent);
        // The parent folder is shared and stays once made (see `ContainerCgroup::remove`), but
        // one this call made goes again if creation fails.
        let mut made = Vec::new();
        let backend = match create_backend(
            host,
            parent,
            &leaf,
            &writes,
            &placement,
            missing,
            &mut unapplied,
            &mut made,
        ) {
            Ok(backend) => backend,
            Err(e) => {
                // A lease that cannot be unlinked is left unlocked: stale cleanup removes it.
                let _ = lease.release();
                remove_made(&made);
                return Err(in_use_if_exists(e, &host.parent, &leaf));
            }
        };
        let relative = parent.join(&leaf);
        let mut cgroup = ContainerCgroup {
            leaf,
            relative,
            base: base_for(host),
            backend: Some(backend),
            lease: Some(lease),
            unapplied: Vec::new(),
            parent_levels: 0,
            remove_on_drop: true,
        };
        cgroup.apply_or_undo(&writes, version, missing, &mut unapplied, &made)?;
        cgroup.unapplied = unapplied;
        Ok(cgroup)
    }

    /// Creates the cgroup at `path` on `host`'s mounts, without a lease (see
    /// [`CgroupHost::create_at`]). On any error, the leaves and the parents it made (if
    /// empty) are removed again.
    pub(crate) fn create_at_on(
        host: &CgroupHost,
        path: &Path,
        limits: &Limits,
        missing: MissingController,
    ) -> Result<ContainerCgroup, CgroupError> {
        let at = CgroupPath::parse(path)?;
        limits.validate()?;
        let (placement, writes) = plan_writes(host, limits)?;
        let version = placement.version;
        let mut unapplied = Vec::new();
        let mut made = Vec::new();
        let parent = at.parent();
        let backend = match create_backend(
            host,
            &parent,
            at.leaf(),
            &writes,
            &placement,
            missing,
            &mut unapplied,
            &mut made,
        ) {
            Ok(backend) => backend,
            Err(e) => {
                remove_made(&made);
                return Err(in_use_if_exists(e, &at.parent_display(), at.leaf()));
            }
        };
        let mut cgroup = ContainerCgroup {
            leaf: at.leaf().to_string(),
            relative: at.relative(),
            base: base_for(host),
            backend: Some(backend),
            lease: None,
            unapplied: Vec::new(),
            parent_levels: 0, // until it is complete: on error only the leaves go, then `made`
            remove_on_drop: true,
        };
        cgroup.apply_or_undo(&writes, version, missing, &mut unapplied, &made)?;
        cgroup.parent_levels = at.prunable_levels(&host.parent);
        cgroup.unapplied = unapplied;
        Ok(cgroup)
    }

    /// Applies the limit writes of a cgroup just made; on error removes it again, and the
    /// parent folders its creation `made`, before returning the error.
    fn apply_or_undo(
        &mut self,
        writes: &[LimitWrite],
        version: Version,
        missing: MissingController,
        unapplied: &mut Vec<Unapplied>,
        made: &[PathBuf],
    ) -> Result<(), CgroupError> {
        let Err(e) = apply_writes(self.backend(), writes, version, missing, unapplied) else {
            return Ok(());
        };
        if let Err(cleanup) = self.remove_now() {
            log::debug!("cannot remove the cgroup {} again: {cleanup}", self.relative.display());
        }
        remove_made(made);
        Err(e)
    }

    /// The existing cgroup at `path` on `host`'s mounts (see [`ContainerCgroup::open_at`]).
    fn open_at_on(host: &CgroupHost, path: &Path) -> Result<ContainerCgroup, CgroupError> {
        let at = CgroupPath::parse(path)?;
        let rel = at.relative();
        let mounts = &host.mounts;
        let backend: Box<dyn CgroupBackend> = match mounts.layout.version() {
            Version::V1 => {
                let cgroup = V1Cgroup::open(mounts, &rel);
                if cgroup.dirs().is_empty() {
                    return Err(CgroupError::NotFound {
                        path: path.to_path_buf(),
                    });
                }
                Box::new(cgroup)
            }
            Version::V2 => match V2Cgroup::open(mounts, &base_for(host).join(&rel)) {
                Some(cgroup) => Box::new(cgroup),
                None => {
                    return Err(CgroupError::NotFound {
                        path: path.to_path_buf(),
                    })
                }
            },
        };
        Ok(ContainerCgroup {
            leaf: at.leaf().to_string(),
            relative: rel.clone(),
            base: base_for(host),
            backend: Some(backend),
            lease: None,
            unapplied: Vec::new(),
            parent_levels: at.prunable_levels(&host.parent),
            remove_on_drop: false,
        })
    }
}

/// Where `host` makes cgroups, relative to a hierarchy's mount: its [`CgroupHost::v2_base`] on
/// cgroup v2, the hierarchy's root on v1.
fn base_for(host: &CgroupHost) -> PathBuf {
    match host.mounts.layout.version() {
        Version::V1 => PathBuf::new(),
        Version::V2 => host.v2_base.clone(),
    }
}

/// Removes the parent directories creation made (deepest first), those that are empty.
fn remove_made(made: &[PathBuf]) {
    for dir in made.iter().rev() {
        remove_parent_if_empty(dir);
    }
}

/// Where each controller's files are on `host` (a hybrid host may have some controllers on
/// its cgroup2 mount only) and the writes that apply `limits` there.
pub(crate) fn plan_writes(host: &CgroupHost, limits: &Limits) -> Result<(Placement, Vec<LimitWrite>), CgroupError> {
    let mut placement = Placement::only(host.mounts.layout.version());
    if host.mounts.layout == Layout::Hybrid {
        let used: BTreeSet<Controller> = limit_writes(limits, &placement)?.iter().map(|w| w.controller).collect();
        placement.on_unified = unified_controllers(&host.mounts, used);
    }
    let writes = limit_writes(limits, &placement)?;
    Ok((placement, writes))
}

/// The directories of `<parent>/<leaf>` on `host` for `writes`, with the controllers they
/// need; the parent directories it creates are pushed to `made`.
#[allow(clippy::too_many_arguments)]
fn create_backend(
    host: &CgroupHost,
    parent: &Path,
    leaf: &str,
    writes: &[LimitWrite],
    placement: &Placement,
    missing: MissingController,
    unapplied: &mut Vec<Unapplied>,
    made: &mut Vec<PathBuf>,
) -> Result<Box<dyn CgroupBackend>, CgroupError> {
    let needed = needed(writes);
    let optional: BTreeSet<Controller> = writes.iter().map(|w| w.controller).collect();
    let wanted = Wanted {
        needed: &needed,
        optional: &optional,
        missing,
        all_available: true,
        uses: host.uses,
    };
    let mounts = &host.mounts;
    Ok(match placement.version {
        Version::V1 => Box::new(V1Cgroup::create(
            mounts,
            parent,
            leaf,
            &wanted,
            &placement.on_unified,
            unapplied,
            made,
        )?),
        Version::V2 => Box::new(V2Cgroup::create(
            mounts,
            &host.v2_base,
            parent,
            leaf,
            &wanted,
            unapplied,
            made,
        )?),
    })
}

/// A directory that already exists is someone else's cgroup: [`CgroupError::InUse`].
fn in_use_if_exists(error: CgroupError, parent: &str, leaf: &str) -> CgroupError {
    match error {
        CgroupError::Io { path, cause, .. } if cause.raw_os_error() == Some(libc::EEXIST) => CgroupError::InUse {
            parent: parent.to_string(),
            leaf: leaf.to_string(),
            path,
        },
        other => other,
    }
}

impl ContainerCgroup {
    /// Wraps existing directories and their lease, taken over from a dead owner (stale cleanup).
    pub(crate) fn from_stale(
        leaf: String,
        (relative, base): (PathBuf, PathBuf),
        backend: Box<dyn CgroupBackend>,
        lease: Lease,
    ) -> ContainerCgroup {
        ContainerCgroup {
            leaf,
            relative,
            base,
            backend: Some(backend),
            lease: Some(lease),
            unapplied: Vec::new(),
            parent_levels: 0,
            remove_on_drop: true,
        }
    }

    /// The existing cgroup at `path` (relative to each hierarchy's mount point, or to the
    /// host's [`CgroupHost::v2_base`], as for [`CgroupHost::create_at`]): its directories that exist, in the hierarchies crabcan uses
    /// ([`CgroupError::NotFound`] if there are none). For a later process than the creator's
    /// (OCI `kill`, `pause`, `state`, `delete`): it can [`ContainerCgroup::kill_all`], read
    /// [`ContainerCgroup::stats`], [`ContainerCgroup::freeze`] and
    /// [`ContainerCgroup::remove`] it. Dropping the handle leaves the cgroup alone (only an
    /// explicit `remove` removes it). No limits are applied, none are listed as unapplied.
    pub fn open_at(host: &CgroupHost, path: &Path) -> Result<ContainerCgroup, CgroupError> {
        ContainerCgroup::open_at_on(host, path)
    }

    /// Gives the cgroup up without removing anything, returning its directories: for an OCI
    /// `create`, whose process exits leaving the container running; a later process finds it
    /// again with [`ContainerCgroup::open_at`]. The lease of a cgroup made by
    /// [`CgroupHost::create`] is removed (the directories are then never taken for stale by
    /// [`CgroupHost::remove_stale`]; if it cannot be removed, it is left unlocked and stale
    /// cleanup removes the cgroup).
    pub fn keep(mut self) -> Vec<PathBuf> {
        let dirs = self.paths();
        self.backend = None;
        if let Some(lease) = self.lease.take() {
            if let Err(e) = lease.release() {
                log::warn!("cannot remove the lease of cgroup {}: {e}", self.leaf);
            }
        }
        dirs
    }

    /// Freezes every process in the cgroup and its descendants (OCI `pause`), waiting until
    /// the kernel reports it frozen: v1 writes `FROZEN` to the freezer hierarchy's
    /// `freezer.state` until it reads `FROZEN`, v2 writes 1 to `cgroup.freeze` and waits for
    /// `frozen 1` in `cgroup.events`. [`CgroupError::FreezeTimeout`] after 2 s (the freeze is
    /// then undone, best effort); [`CgroupError::FreezerUnavailable`] when the host has no
    /// freezer (v1 without a `freezer` hierarchy, v2 before Linux 5.2). Killing the cgroup
    /// ([`ContainerCgroup::kill_all`], removal) thaws it.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.backend().set_frozen(true)
    }

    /// Thaws the cgroup (OCI `resume`): v1 `THAWED`, v2 `cgroup.freeze` 0, waiting likewise
    /// (bounded, same errors as [`ContainerCgroup::freeze`]). Thawing a cgroup that is not
    /// frozen does nothing.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.backend().set_frozen(false)
    }

    /// Changes the limits of a live cgroup (OCI `update`): the limits `limits` sets are
    /// written, the others stay as they are (a set memory limit with no memory+swap sets "no
    /// swap", as at creation). Validated first ([`Limits::validate`]); a limit the host cannot
    /// apply follows `missing`, as at creation. Returns the limits not applied.
    ///
    /// On cgroup v1 memory+swap can never be below memory, so a raise writes memory+swap before
    /// memory; a lowering writes memory first. With [`Limits::memory_check_before_update`], a
    /// v2 memory limit not above `memory.current` is refused
    /// ([`CgroupError::MemoryBelowUsage`]). A limit whose controller the cgroup was created
    /// without is [`CgroupError::NoControllerDirectory`] (on v2 every controller the host
    /// offers is enabled at creation, so that happens on v1 only).
    pub fn update(&self, limits: &Limits, missing: MissingController) -> Result<Vec<Unapplied>, CgroupError> {
        limits.validate()?;
        let placement = self.backend().placement();
        let version = placement.version;
        let mut writes = limit_writes(limits, &placement)?;
        if let (true, Some(limit), Some(dir)) = (limits.memory_check_before_update, limits.memory, self.v2_path()) {
            let current = dir.join("memory.current");
            match read_u64(&current) {
                Some(usage) if limit <= usage => {
                    return Err(CgroupError::MemoryBelowUsage {
                        limit,
                        usage,
                        path: current,
                    })
                }
                _ => {}
            }
        }
        let mut unapplied = Vec::new();
        match apply_writes(self.backend(), &writes, version, missing, &mut unapplied) {
            Err(error) if version == Version::V1 && error.raw_os_error() == Some(libc::EINVAL) => {
                // A raise above the current memory+swap: the other order.
                let file = |name: &str| writes.iter().position(|w| w.file == name);
                if let (Some(first), Some(second)) =
                    (file("memory.limit_in_bytes"), file("memory.memsw.limit_in_bytes"))
                {
                    writes.swap(first, second);
                }
                unapplied.clear();
                apply_writes(self.backend(), &writes, version, missing, &mut unapplied)?;
            }
            result => result?,
        }
        Ok(unapplied)
    }

    /// Leaves the cgroup as a crashed crabcan would: its directories stay, and its lease stays
    /// too but is no longer locked, so [`CgroupHost::remove_stale`] removes them. For tests.
    #[doc(hidden)]
    pub fn abandon(mut self) {
        self.backend = None;
        drop(self.lease.take());
    }

    fn backend(&self) -> &dyn CgroupBackend {
        match &self.backend {
            Some(backend) => backend.as_ref(),
            None => &Removed,
        }
    }

    /// The directory name under the parent folder: `<name>.<owner pid>`; for a cgroup at a
    /// path ([`CgroupHost::create_at`], [`ContainerCgroup::open_at`]), the path's last component.
    pub fn name(&self) -> &str {
        &self.leaf
    }

    /// Where the cgroup is, relative to [`ContainerCgroup::v2_base`] in each hierarchy: the
    /// path [`ContainerCgroup::open_at`] finds it by in a later process, given a host with
    /// the same base.
    pub fn relative_path(&self) -> &Path {
        &self.relative
    }

    /// The cgroup v2 subtree its path is relative to: the host's [`CgroupHost::v2_base`] (a
    /// subtree delegated to an ordinary user); empty on v1 and for root's.
    pub fn v2_base(&self) -> &Path {
        &self.base
    }

    /// The limits this cgroup was created without: those the host cannot apply, under
    /// [`MissingController::Warn`], and best-effort ones (the I/O weight) it cannot apply
    /// under either policy. Empty when every limit is applied. The caller decides whether to
    /// tell anyone (this crate prints nothing).
    pub fn unapplied(&self) -> &[Unapplied] {
        &self.unapplied
    }

    /// Moves process `pid` into the cgroup (cgroup.procs of every hierarchy on v1).
    pub fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        self.backend().add_task(pid)
    }

    /// The cgroup's directories (one per distinct hierarchy on v1).
    pub fn paths(&self) -> Vec<PathBuf> {
        self.backend().dirs()
    }

    /// The `tasks` files of a v1 cgroup, opened so that the container's process can move
    /// itself in ([`SelfJoin`]): much cheaper than [`ContainerCgroup::add_task`] from outside.
    /// `None` on cgroup v2, where `clone3(CLONE_INTO_CGROUP)` ([`ContainerCgroup::v2_path`])
    /// or `add_task` is the way in.
    pub fn open_self_join(&self) -> Result<Option<SelfJoin>, CgroupError> {
        if self.v2_path().is_some() {
            return Ok(None);
        }
        SelfJoin::open(&self.paths()).map(Some)
    }

    /// The cgroup2 directory, for `clone3(CLONE_INTO_CGROUP)`; `None` on v1/hybrid.
    pub fn v2_path(&self) -> Option<&Path> {
        self.backend().v2_path()
    }

    /// Resource usage, best effort.
    pub fn stats(&self) -> Stats {
        self.backend().stats()
    }

    /// Whether the OOM killer killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        self.backend().oom_killed()
    }

    /// SIGKILLs every process in the cgroup (and its descendants) and waits
    /// until it is empty (bounded; [`CgroupError::KillTimeout`] otherwise).
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        self.backend().kill_all()
    }

    /// Kills everything inside, then removes every directory (retrying
    /// while busy for up to 1 s), then the lease. If a directory cannot be removed, the lease
    /// is left unlocked, so a later [`CgroupHost::remove_stale`] retries. The parent folder of
    /// a leased cgroup ([`CgroupHost::parent`]) stays, empty when no container runs, like the
    /// state directory ([`crate::DEFAULT_STATE_DIR`]): remaking it for every container cost a
    /// `mkdir` and an `rmdir` per hierarchy, and on cgroup v2 the controller writes to its
    /// `cgroup.subtree_control`. For a cgroup at a path, the parent folders are every
    /// directory of the path above the leaf (never the hierarchy root), removed deepest first
    /// while they are empty, whoever made them (an engine's `machine.slice`-like folders), but
    /// for the host's own parent folder at its top (`crabcan/` of OCI mode's default
    /// `crabcan/<id>`), which stays like that of a leased cgroup.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.remove_now()
    }

    fn remove_now(&mut self) -> Result<(), CgroupError> {
        let lease = self.lease.take();
        let Some(backend) = self.backend.take() else {
            return Ok(());
        };
        let dirs = backend.dirs();
        let left = remove_empty_leaves(&dirs);
        // Only a cgroup with tasks or child cgroups left needs the kill and the walk.
        let mut first_error = if left.is_empty() {
            None
        } else {
            backend.kill_all().err()
        };
        for dir in &dirs {
            if left.contains(dir) {
                if let Err(e) = remove_subtree(dir, REMOVE_TIMEOUT) {
                    first_error.get_or_insert(e);
                }
            }
            let mut parent = dir.parent();
            for _ in 0..self.parent_levels {
                match parent {
                    Some(p) if remove_parent_if_empty(p) => parent = p.parent(),
                    _ => break,
                }
            }
        }
        match (first_error, lease) {
            (Some(e), _) => Err(e), // dropping the lease unlocks it: stale from now on
            (None, Some(lease)) => lease.release(),
            (None, None) => Ok(()),
        }
    }
}

/// The fast path of removal: one `rmdir` per leaf, which succeeds when the leaf has no task
/// and no child cgroup (the usual case: the container's pid 1 was reaped, and with it every
/// process of its pid namespace). Returns the leaves still there (EBUSY: tasks or children
/// left; or another error), which then get the kill, the walk and the retries. This saves
/// the reads of every `cgroup.procs` and two directory listings per hierarchy.
fn remove_empty_leaves(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .filter(|dir| match std::fs::remove_dir(dir) {
            Ok(()) => false,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        })
        .cloned()
        .collect()
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        if !self.remove_on_drop {
            return;
        }
        if let Err(e) = self.remove_now() {
            log::warn!("cannot clean up cgroup {}: {e}", self.leaf);
        }
    }
}

/// The backend of a removed cgroup: no directories, nothing to do.
#[derive(Debug)]
struct Removed;

impl CgroupBackend for Removed {
    fn dirs(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn dir_for(&self, _: &LimitWrite) -> Option<&Path> {
        None
    }
    fn v2_path(&self) -> Option<&Path> {
        None
    }
    fn placement(&self) -> Placement {
        Placement::only(Version::V1)
    }
    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        let cause = std::io::Error::from_raw_os_error(libc::ENOENT);
        Err(CgroupError::io(format!("add {pid} to"), "a removed cgroup", cause))
    }
    fn kill_all(&self) -> Result<(), CgroupError> {
        Ok(())
    }
    fn stats(&self) -> Stats {
        Stats::default()
    }
    fn oom_killed(&self) -> bool {
        false
    }
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let cause = std::io::Error::from_raw_os_error(libc::ENOENT);
        let op = if frozen { "freeze" } else { "thaw" };
        Err(CgroupError::io(op, "a removed cgroup", cause))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_can_move_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ContainerCgroup>();
        assert_send_sync::<CgroupError>();
    }

    #[test]
    fn valid_names() {
        for name in ["web", "a", "my-app_1.2", "A.B-c_d", &"x".repeat(64), "-x", ".hidden"] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn invalid_names() {
        let long = "x".repeat(65);
        for name in [
            "",
            ".",
            "..",
            "a..b",
            "a/b",
            "/abs",
            "a b",
            "név",
            "a\0b",
            "x\n",
            long.as_str(),
            "*",
            "a:b",
        ] {
            let err = validate_name(name).unwrap_err();
            assert!(matches!(err, CgroupError::InvalidName { .. }), "{name}");
            assert!(!err.to_string().contains('\n') || name.contains('\n'));
        }
    }
}
