//! crabcan-core: runs a command in a Linux container.
//!
//! The public API is small: a [`ContainerConfig`] (what to build; [`ContainerConfig::validate`]
//! checks it without touching the host), then a container whose states are types: [`create`]
//! gives a [`CreatedContainer`], set up and held just before execve; [`CreatedContainer::start`]
//! gives a [`RunningContainer`]; only that one can be waited for ([`RunningContainer::wait`] →
//! [`ExitReport`]). [`run`] does all three. Dropping a container in any state kills it and
//! removes everything it had on the host. The create/start split is the shape an OCI
//! `create`/`start` pair needs.
//!
//! ```no_run
//! use crabcan_core::ContainerConfig;
//!
//! # fn main() -> Result<(), crabcan_core::Error> {
//! let config = ContainerConfig::new("/srv/rootfs", vec!["/bin/echo".into(), "hi".into()]);
//! let created = crabcan_core::create(config)?; // namespaces, mounts, cgroup, caps... held
//! let report = created.start()?.wait()?; // execve, then wait
//! std::process::exit(report.exit_code());
//! # }
//! ```
//!
//! Inside, the modules follow the steps a container goes through: `config` (checked first) →
//! `id_ranges` (its host ids) → `namespaces` (clone, id maps) → `handshake` (the parent/child
//! protocol) → the child's steps (`child.rs`, run against the `setup_ops` traits so their order
//! is unit-tested without root): `identity`, `network`, `mounts` (with `safe_path` and
//! `idmap`), `rlimits`, `terminal`, `cgroupfs`, `capabilities`, seccomp (from
//! `crabcan-seccomp`), `init`, `exec`. `container` is the parent's side, with `signals`
//! forwarded and the pty relayed (`terminal`), and, in a learning run, the seccomp listener
//! answered (`learning`). Limits come from `crabcan-cgroups`. [`hooks`]
//! runs a configuration's lifecycle hooks (OCI `hooks`), in the parent and in the child.
//!
//! An OCI `exec` enters a running container instead: `enter` (crabcan's side: the container's
//! process held by a pidfd, the fork, the wait) and `enter_steps` (the entering processes'
//! steps, against the same `setup_ops`), from a sealed copy of crabcan ([`sealed_exe`]).
//!
//! Run by root, a container gets host ids of its own from crabcan's pool; run by an ordinary
//! user, it maps that user's ids ([`rootless`]: the id-map plan, subordinate ranges through
//! `newuidmap`, a cgroup only in a delegated cgroup v2 subtree).

#![deny(missing_docs)]

mod capabilities;
mod cgroupfs;
mod child;
mod config;
mod container;
mod copy_up;
mod cpu_placement;
mod enter;
mod enter_steps;
mod error;
mod exec;
mod explain;
mod fresh_tmpfs;
mod handshake;
pub mod hooks;
mod hostname;
pub mod id_ranges;
mod identity;
mod idmap;
mod init;
mod learning;
mod mounts;
mod namespaces;
mod network;
pub mod oci;
mod rlimits;
pub mod rootless;
mod safe_path;
pub mod sealed_exe;
mod setup_ops;
mod signals;
pub mod spec;
mod terminal;
#[cfg(test)]
mod test_support;

pub use capabilities::{CapabilitySet, DEFAULT_CAPABILITIES};
pub use config::{
    validate_preserved_fds, ContainerConfig, FileLimit, IdMapping, Personality, SessionKeyring, StartGate, Terminal,
    DEFAULT_NOFILE, DEFAULT_PATH, DEFAULT_TMP_SIZE, MAX_PRESERVED_FDS,
};
pub use container::{create, run, CreatedContainer, DetachedContainer, ExitReport, ExitStatus, RunningContainer};
pub use crabcan_cgroups::{CgroupUses, Limits, MissingController, Stats};
pub use crabcan_seccomp::CompiledFilter;
pub use error::{human_size, ConfigError, Error, SpecError, EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED};
pub use explain::{
    explain, CapabilityNames, CgroupPlan, Confinement, IdMaps, LimitEntry, MountEntry, NotHonoured, RlimitEntry,
    SeccompPlan, UserIds,
};
pub use id_ranges::IdRangeError;
pub use learning::{LearnReport, SeccompLearning};
pub use namespaces::{NamespaceKind, NamespaceMode, Namespaces};
pub use rootless::RootlessError;
pub use spec::{BindMount, IdRange};
pub use terminal::{is_foreground, is_terminal};
