//! Container cgroups for crabcan on cgroup v1, hybrid and v2 hosts.
//!
//! [`ContainerCgroup::create`] makes `crabcan/<name>.<crabcan pid>` (in each
//! v1 hierarchy, or once under the cgroup2 mount), applies [`Limits`], and
//! later kills and removes it; [`CgroupHost::remove_stale`] cleans up after
//! crashed crabcan processes. A cgroup is proven to be a live crabcan's by a
//! lease file in [`DEFAULT_STATE_DIR`] that its owner keeps `flock`ed (see
//! the `lease` module for why this holds across pid and mount namespaces). The layout is detected from `/proc/self/mountinfo`
//! ([`detect_layout`]); hybrid hosts use their v1 controllers.
//!
//! Why no `cgroups-rs`: 0.5 pulls zbus (rejected for build time). 0.3.4 is
//! lighter but still adds regex, a second nix (0.25) and thiserror 1, and
//! hard-codes `/sys/fs/cgroup` for v2 detection and its v1 root (derived
//! with `unwrap()` from the first v1 mount), so it is not a fit for
//! arbitrary mount points and cannot fail cleanly. The cgroup interface
//! crabcan needs is a dozen file writes, so this crate does them itself
//! behind a small internal `CgroupBackend` trait (v1 / v2 implementations)
//! with the limit→file mapping kept pure and unit-tested.

mod backend;
mod container;
mod error;
mod fsutil;
mod layout;
mod lease;
mod limits;
mod self_join;
mod stale;
mod stats;
mod tree;
mod v1;
mod v2;
mod writes;

use std::time::Duration;

pub use backend::MissingController;
pub use container::{validate_name, ContainerCgroup, MAX_NAME_LEN};
pub use error::{CgroupError, MemoryLimit, ParseSizeError};
pub use layout::{current_cgroups, detect_layout, CgroupHost, Layout, ProcCgroup};
pub use limits::{
    available_cpus, cpu_shares_to_weight, cpu_weight_to_shares, io_weight_to_blkio_weight, parse_size, Limits,
    DEFAULT_CPU_SHARES, MIN_CPU_QUOTA, MIN_MEMORY, PID_MAX_LIMIT,
};
pub use self_join::SelfJoin;
pub use stats::Stats;

/// The directory (in each hierarchy) holding all container cgroups.
pub const CRABCAN_DIR: &str = "crabcan";
/// Where the leases of container cgroups are kept unless [`CgroupHost::with_state_dir`] says
/// otherwise: one file per cgroup, named like its directory.
pub const DEFAULT_STATE_DIR: &str = "/run/crabcan/.cgroups";
/// How long `kill_all` keeps killing before giving up.
const KILL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long removal retries `rmdir` while the kernel reports EBUSY.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(1);
