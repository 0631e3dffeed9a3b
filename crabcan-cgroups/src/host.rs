//! [`CgroupHost`]: the crate's entry point. One handle on the host's cgroup mounts (read once
//! from `/proc/self/mountinfo`), the parent folder container cgroups are made in and the state
//! directory their leases are kept in; everything else starts from it: the layout, creating a
//! container's cgroup, removing stale ones.

use std::path::{Path, PathBuf};

use crate::backend::MissingController;
use crate::container::{validate_name, ContainerCgroup};
use crate::error::CgroupError;
use crate::layout::{Layout, Mounts, Version};
use crate::limits::Limits;
use crate::stale::{self, StaleCleanup};
use crate::writes::Controller;
use crate::{DEFAULT_PARENT, DEFAULT_STATE_DIR};

/// The host's cgroup mounts, with where container cgroups go: `<parent>/<name>.<pid>` in each
/// v1 hierarchy or under the cgroup2 mount, leased in a state directory. Read once, it serves
/// the layout check, the stale cleanup and the creation of any number of containers' cgroups.
///
/// ```no_run
/// use crabcan_cgroups::{CgroupHost, Limits, MissingController};
///
/// let host = CgroupHost::detect()?.with_parent("my-runtime")?;
/// let cgroup = host.create("web", &Limits::default(), MissingController::Error)?;
/// cgroup.add_task(std::process::id() as i32)?;
/// # Ok::<(), crabcan_cgroups::CgroupError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHost {
    pub(crate) mounts: Mounts,
    pub(crate) state_dir: PathBuf,
    pub(crate) parent: String,
    /// Where on the cgroup2 mount container cgroups go (relative; empty: the mount's root).
    pub(crate) v2_base: PathBuf,
    /// Which v1 hierarchies without a limit container cgroups still join.
    pub(crate) uses: CgroupUses,
}

/// What container cgroups are used for besides their limits, which decides the cgroup v1
/// hierarchies they join although no limit is written there: `freezer` (to
/// [`ContainerCgroup::freeze`] and to stop processes while killing them), `cpuacct` (the
/// CPU time of [`ContainerCgroup::stats`]) and `blkio` (the I/O the cgroup's tasks do, counted
/// as theirs). Each hierarchy costs a `mkdir`, a join and an `rmdir` per container. A
/// hierarchy co-mounted with one that is joined anyway (`cpu,cpuacct`) is always joined.
/// cgroup v2 has all of them built in, so this changes nothing there.
///
/// [`ContainerCgroup::freeze`]: crate::ContainerCgroup::freeze
/// [`ContainerCgroup::stats`]: crate::ContainerCgroup::stats
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupUses {
    /// Freeze and thaw the cgroup, and freeze it while killing what runs in it (without a
    /// freezer, processes are killed in rounds, which a fork bomb below the pids limit
    /// cannot outrun either, but which is not atomic).
    pub freeze: bool,
    /// Report the CPU time the cgroup used.
    pub cpu_usage: bool,
    /// Count the block I/O of the cgroup's tasks in a v1 `blkio` cgroup of its own even when
    /// no I/O limit is written (an I/O limit always joins `blkio`).
    pub io_accounting: bool,
}

impl CgroupUses {
    /// Everything: the default.
    pub const ALL: CgroupUses = CgroupUses {
        freeze: true,
        cpu_usage: true,
        io_accounting: true,
    };
    /// Only the hierarchies that hold a limit (and those co-mounted with them).
    pub const LIMITS_ONLY: CgroupUses = CgroupUses {
        freeze: false,
        cpu_usage: false,
        io_accounting: false,
    };
}

impl Default for CgroupUses {
    fn default() -> CgroupUses {
        CgroupUses::ALL
    }
}

impl CgroupHost {
    /// Reads the cgroup mounts of this process's mount namespace; the parent folder is
    /// [`DEFAULT_PARENT`] and the state directory [`DEFAULT_STATE_DIR`].
    /// [`CgroupError::NotMounted`] when there is no cgroup filesystem.
    pub fn detect() -> Result<CgroupHost, CgroupError> {
        Mounts::detect().map(|mounts| CgroupHost {
            mounts,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            parent: DEFAULT_PARENT.to_string(),
            v2_base: PathBuf::new(),
            uses: CgroupUses::ALL,
        })
    }

    /// Says what container cgroups made from now on are used for besides their limits (see
    /// [`CgroupUses`]; [`CgroupUses::ALL`] unless this says otherwise).
    pub fn with_uses(mut self, uses: CgroupUses) -> CgroupHost {
        self.uses = uses;
        self
    }

    /// What container cgroups are used for besides their limits.
    pub fn uses(&self) -> CgroupUses {
        self.uses
    }

    /// Removes the parent folder (in each hierarchy, or under the cgroup2 mount) and the state
    /// directory if they are empty; returns whether all of them are gone. Container cgroups
    /// leave both in place for the next one ([`ContainerCgroup::remove`]); a program that made
    /// its last one and wants no trace left calls this. A folder another container still uses
    /// holds its cgroup or lease, so it is not empty and stays.
    ///
    /// [`ContainerCgroup::remove`]: crate::ContainerCgroup::remove
    pub fn remove_empty_folders(&self) -> bool {
        let mut roots: Vec<PathBuf> = self.mounts.v1.values().cloned().collect();
        if let Some(v2) = &self.mounts.v2 {
            roots.push(v2.join(&self.v2_base));
        }
        roots.sort();
        roots.dedup();
        let mut all_gone = true;
        for root in roots {
            all_gone &= crate::fsutil::remove_parent_if_empty(&root.join(&self.parent));
        }
        all_gone & crate::fsutil::remove_parent_if_empty(&self.state_dir)
    }

    /// Makes container cgroups in the folder `name` (one path component, checked like
    /// container names by [`crate::validate_name`]) of each hierarchy instead of
    /// [`DEFAULT_PARENT`]. Leases record their parent folder, so stale cleanup through one
    /// parent never touches the cgroups of another, even with a shared state directory.
    pub fn with_parent(mut self, name: &str) -> Result<CgroupHost, CgroupError> {
        validate_name(name)?;
        self.parent = name.to_string();
        Ok(self)
    }

    /// Keeps the leases in `dir` (created with mode 0700 when missing). Every process that
    /// shares cgroups must use the same directory, or it cannot tell their owners are alive
    /// and leaves their cgroups alone.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> CgroupHost {
        self.state_dir = dir.into();
        self
    }

    /// Makes container cgroups below `base` (relative to the cgroup2 mount, e.g. a subtree
    /// delegated to the calling user: [`crate::find_delegated_subtree`]) instead of below the
    /// mount's root, and enables controllers from `base` down only: nothing above it is
    /// written, so an ordinary user can make cgroups in the subtree it owns. Both `create`
    /// (`<base>/<parent>/<name>.<pid>`) and `create_at` (`<base>/<path>`) follow it, and so does
    /// stale cleanup. Used on cgroup v2 only; [`CgroupError::InvalidName`] for a path that is
    /// absolute or climbs (`..`).
    pub fn with_v2_base(mut self, base: impl Into<PathBuf>) -> Result<CgroupHost, CgroupError> {
        let base = base.into();
        let climbs = base.components().any(|c| !matches!(c, std::path::Component::Normal(_)));
        if climbs {
            return Err(CgroupError::InvalidName {
                name: base.display().to_string(),
                reason: "a cgroup base is a relative path of plain components",
            });
        }
        self.v2_base = base;
        Ok(self)
    }

    /// Where on the cgroup2 mount container cgroups go (see [`CgroupHost::with_v2_base`]).
    pub fn v2_base(&self) -> &Path {
        &self.v2_base
    }

    /// The cgroup v2 controllers that [`CgroupHost::v2_base`] offers the cgroups made below it
    /// (its `cgroup.controllers`): which limits can be applied there.
    /// [`CgroupError::NotMounted`] without a cgroup2 mount.
    pub fn available_controllers(&self) -> Result<std::collections::BTreeSet<String>, CgroupError> {
        crate::v2::available_controllers(&self.mounts, &self.v2_base)
    }

    /// The folder (in each hierarchy) container cgroups are made in.
    pub fn parent(&self) -> &str {
        &self.parent
    }

    /// The directory holding the leases of container cgroups.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// How cgroups are mounted on this host.
    pub fn layout(&self) -> Layout {
        self.mounts.layout
    }

    /// Whether an I/O weight ([`Limits::io_weight`], [`Limits::blkio_weight`]) takes effect on
    /// any block device of this host, where one read tells: on cgroup v1 only BFQ applies
    /// weights (CFQ left Linux in 5.0), and the blkio hierarchy's root lists in
    /// `blkio.bfq.io_serviced` each device whose queue uses BFQ. `None` where it cannot tell:
    /// on cgroup v2 (where the io.cost model applies weights too), without a blkio hierarchy,
    /// or without that file. A device switched to BFQ later starts weighing cgroups made then.
    pub fn io_weights_take_effect(&self) -> Option<bool> {
        if self.mounts.layout.version() != Version::V1 {
            return None;
        }
        let listing = self
            .mounts
            .v1_mount(Controller::Io.v1_name())?
            .join("blkio.bfq.io_serviced");
        let mut start = [0u8; 16];
        let read = std::fs::File::open(listing).and_then(|mut file| std::io::Read::read(&mut file, &mut start));
        bfq_devices_listed(&start[..read.ok()?])
    }

    /// Creates `<parent>/<name>.<pid>` (pid: this process's) and applies `limits`, with its
    /// lease held in [`CgroupHost::state_dir`] until the cgroup is removed.
    ///
    /// Limits the host cannot apply fail with the error of the first of them
    /// ([`CgroupError::is_missing_controller`]) under [`MissingController::Error`]; under
    /// [`MissingController::Warn`] the cgroup is made without them and lists them in
    /// [`ContainerCgroup::unapplied`]. [`CgroupError::InUse`] if the lease or a directory of
    /// that name exists already (nothing is taken over); invalid names and limits
    /// ([`Limits::validate`]) fail before anything is made. On any error, everything created
    /// is removed again. Stale cgroups are not removed here: see [`CgroupHost::remove_stale`].
    pub fn create(
        &self,
        name: &str,
        limits: &Limits,
        missing: MissingController,
    ) -> Result<ContainerCgroup, CgroupError> {
        ContainerCgroup::create_on(self, name, limits, missing)
    }

    /// Creates the cgroup at `path` and applies `limits` like [`CgroupHost::create`], but
    /// without a lease and without the parent folder: for OCI runtimes, where the engine
    /// names the cgroup (`linux.cgroupsPath`) and the creating process exits on purpose.
    ///
    /// `path` is relative to each hierarchy's mount point, given like OCI's cgroupsPath:
    /// `/machine/abc` or `machine/abc`. A leading `/` means relative to the hierarchy root,
    /// and so, in this first version, does its absence (OCI would make it relative to the
    /// runtime's own cgroup). Each component must be 1..=255 bytes of `[A-Za-z0-9_.-]`
    /// without `..` ([`CgroupError::InvalidName`]; empty components such as in `a//b` or a
    /// trailing `/` too). The directories are made in every v1 hierarchy crabcan uses, or
    /// under the cgroup2 mount with the controllers enabled in the `cgroup.subtree_control`
    /// of the root and of every parent; missing parents are created (mode 0755).
    ///
    /// [`CgroupError::InUse`] if the leaf exists already in any hierarchy (nothing is taken
    /// over); missing controllers follow `missing` as for `create`. On any error, everything
    /// made is removed, the parents it created too (if empty). The returned handle removes
    /// the cgroup when dropped: [`ContainerCgroup::keep`] gives it up, and
    /// [`ContainerCgroup::open_at`] finds it again. Such a cgroup is never touched by
    /// [`CgroupHost::remove_stale`].
    pub fn create_at(
        &self,
        path: &Path,
        limits: &Limits,
        missing: MissingController,
    ) -> Result<ContainerCgroup, CgroupError> {
        ContainerCgroup::create_at_on(self, path, limits, missing)
    }

    /// Finds the leases in [`CgroupHost::state_dir`] of cgroups under this parent folder that
    /// nobody holds (their owner died: the kernel released its `flock`), kills what runs in
    /// those cgroups and removes the cgroups and the leases. A cgroup directory without a
    /// lease is never touched, nor is one whose lease is held, whatever pid its name carries.
    /// Failures on single cgroups are returned in [`StaleCleanup::failed`] (their lease stays,
    /// for a later try); `Err` only when the state directory cannot be read.
    pub fn remove_stale(&self) -> Result<StaleCleanup, CgroupError> {
        stale::remove_stale(self)
    }
}

/// Whether the start of a blkio root's `blkio.bfq.io_serviced` names a device: each device's
/// section begins with its `MAJ:MIN`, and a listing of none is the line `Total 0`.
fn bfq_devices_listed(start: &[u8]) -> Option<bool> {
    match start.first()? {
        b'0'..=b'9' => Some(true),
        _ if start.starts_with(b"Total") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bfq_listing_tells_whether_any_device_uses_bfq() {
        assert_eq!(bfq_devices_listed(b"Total 0\n"), Some(false));
        assert_eq!(bfq_devices_listed(b"7:0 Read 0\n7:0 Wri"), Some(true));
        assert_eq!(bfq_devices_listed(b"254:16 Read 12\n"), Some(true));
        assert_eq!(bfq_devices_listed(b""), None);
        assert_eq!(bfq_devices_listed(b"garbage"), None);
    }

    #[test]
    fn parent_names_are_checked() {
        let host = CgroupHost {
            mounts: Mounts::from_mountinfo("35 22 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw").unwrap(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            parent: DEFAULT_PARENT.to_string(),
            v2_base: PathBuf::new(),
            uses: crate::CgroupUses::ALL,
        };
        assert_eq!(host.parent(), "crabcan");
        assert_eq!(host.layout(), Layout::V2);
        assert_eq!(host.clone().with_parent("other").unwrap().parent(), "other");
        for bad in ["", "..", "a/b", "/abs"] {
            let err = host.clone().with_parent(bad).unwrap_err();
            assert!(matches!(err, CgroupError::InvalidName { .. }), "{bad}: {err}");
        }
        let delegated = host
            .clone()
            .with_v2_base("user.slice/user@1000.service/app.slice")
            .unwrap();
        assert_eq!(delegated.v2_base(), Path::new("user.slice/user@1000.service/app.slice"));
        for bad in ["/abs", "a/../b", "..", "./a"] {
            let err = host.clone().with_v2_base(bad).unwrap_err();
            assert!(matches!(err, CgroupError::InvalidName { .. }), "{bad}: {err}");
        }
    }
}
