//! Containers' cgroups on cgroup v1, hybrid and v2 hosts: create one with resource
//! [`Limits`], put processes in it, read its [`Stats`], kill everything in it and remove it.
//!
//! Everything starts from a [`CgroupHost`], read once from `/proc/self/mountinfo`: its
//! [`CgroupHost::layout`], [`CgroupHost::create`] (which makes `<parent>/<name>.<pid>` in each
//! v1 hierarchy, or once under the cgroup2 mount, and returns a [`ContainerCgroup`]) and
//! [`CgroupHost::remove_stale`] (which removes the cgroups of processes that died without
//! removing them; never called implicitly). The parent folder is [`DEFAULT_PARENT`] unless
//! [`CgroupHost::with_parent`] says otherwise. Hybrid hosts use their v1 controllers; on v1,
//! [`CgroupHost::with_uses`] says whether cgroups also join the `freezer` and `cpuacct`
//! hierarchies when no limit is written there ([`CgroupUses`]).
//!
//! For OCI runtimes, whose `create` exits leaving the container running,
//! [`CgroupHost::create_at`] makes a cgroup at the path the engine names (no lease),
//! [`ContainerCgroup::keep`] gives a handle up without removing the cgroup, and
//! [`ContainerCgroup::open_at`] finds it again in a later process, to
//! [`ContainerCgroup::freeze`]/[`ContainerCgroup::thaw`], kill and remove it.
//!
//! A cgroup is proven to be a live process's by a lease file in the host's state directory
//! ([`DEFAULT_STATE_DIR`] unless [`CgroupHost::with_state_dir`] says otherwise) that its owner
//! keeps `flock`ed: the kernel drops the lock when the owner dies, however it dies, so stale
//! cleanup removes exactly the cgroups whose lease nobody holds, across pid and mount
//! namespaces.
//!
//! An ordinary user gets container cgroups only in a cgroup v2 subtree delegated to it:
//! [`find_delegated_subtree`] finds it (or says why there is none, [`NoDelegation`]) and
//! [`CgroupHost::with_v2_base`] makes cgroups there, with the leases in a state directory of the
//! user's own.
//!
//! [`CgroupHost::plan_limits`] tells, without creating anything, which file each limit becomes
//! on this host and whether the host will honour it.
//!
//! Limits the host cannot apply fail creation or, with [`MissingController::Warn`], are left
//! out and listed in [`ContainerCgroup::unapplied`]; errors and unapplied limits name the
//! limit as a [`LimitKind`]. The crate prints nothing and never exits.
//!
//! Why no `cgroups-rs`: 0.5 pulls zbus (rejected for build time). 0.3.4 is
//! lighter but still adds regex, a second nix (0.25) and thiserror 1, and
//! hard-codes `/sys/fs/cgroup` for v2 detection and its v1 root (derived
//! with `unwrap()` from the first v1 mount), so it is not a fit for
//! arbitrary mount points and cannot fail cleanly. The cgroup interface
//! needed is a dozen file writes, so this crate does them itself
//! behind a small internal `CgroupBackend` trait (v1 / v2 implementations)
//! with the limit→file mapping kept pure and unit-tested.

#![deny(missing_docs)]

mod at_path;
mod backend;
mod container;
mod delegation;
mod error;
mod fsutil;
mod host;
mod layout;
mod lease;
mod limit_types;
mod limits;
mod plan;
mod self_join;
mod stale;
mod stats;
mod tree;
mod v1;
mod v2;
mod writes;

use std::time::Duration;

pub use backend::{MissingController, Unapplied};
pub use container::{validate_name, ContainerCgroup, MAX_NAME_LEN};
pub use delegation::{find_delegated_subtree, NoDelegation};
pub use error::{CgroupError, ParseSizeError};
pub use host::{CgroupHost, CgroupUses};
pub use layout::{cgroups_of, current_cgroups, v1_controllers_mounted, Layout, ProcCgroup};
pub use limit_types::{
    BlockDevice, DeviceThrottle, DeviceWeight, HugepageLimit, InterfacePriority, RdmaLimit, ThrottleKind,
};
pub use limits::{
    available_cpus, blkio_weight_to_io_weight, cpu_shares_to_weight, cpu_weight_to_shares, io_weight_to_blkio_weight,
    oci_cpu_shares_to_weight, parse_size, LimitKind, Limits, DEFAULT_CPU_SHARES, DEFAULT_CPU_WEIGHT, DEFAULT_IO_WEIGHT,
    DEFAULT_MEMORY, DEFAULT_PIDS, MIN_CPU_QUOTA, MIN_MEMORY, PID_MAX_LIMIT,
};
pub use plan::{Availability, PlannedLimit};
pub use self_join::SelfJoin;
pub use stale::StaleCleanup;
pub use stats::Stats;

/// The folder (in each hierarchy) holding container cgroups unless
/// [`CgroupHost::with_parent`] says otherwise.
pub const DEFAULT_PARENT: &str = "crabcan";
/// Where the leases of container cgroups are kept unless [`CgroupHost::with_state_dir`] says
/// otherwise: one file per cgroup, named like its directory. The directory is made (mode 0700)
/// by the first cgroup and stays, like a runtime's state root (`/run/runc`), empty once no
/// container runs: removing and remaking it for every container cost 1.2 ms per container on
/// a disk-backed `/run` (ext4 frees and discards the directory's block on each `rmdir`).
pub const DEFAULT_STATE_DIR: &str = "/run/crabcan/.cgroups";
/// How long `kill_all` keeps killing before giving up.
const KILL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `freeze`/`thaw` wait for the cgroup to reach the state asked for.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long removal retries `rmdir` while the kernel reports EBUSY.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(1);

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
