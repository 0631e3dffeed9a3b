//! crabcan-core: runs a command in a Linux container.
//!
//! The modules follow the steps a container goes through:
//! [`config`] (what to build, checked first) → [`namespaces`] (clone, id maps) →
//! [`handshake`] (parent/child protocol) → the child's steps (`child.rs`): [`identity`], [`network`],
//! [`mounts`] (with [`safe_path`]), [`rlimits`], [`terminal`], [`capabilities`], then seccomp
//! (from `crabcan-seccomp`) → [`exec`]. [`container`] is the parent's side: create, start, wait,
//! clean up, with [`signals`] forwarded. [`setup_ops`] puts the child's syscalls behind a
//! trait so the order of its steps is unit-tested without root. Limits come from `crabcan-cgroups`.
//!
//! A container can be created and held before execve ([`Container::create`]) and released later
//! ([`Container::start`]): the shape an OCI `create`/`start` pair needs.

pub mod capabilities;
pub mod cgroupfs;
mod child;
pub mod config;
pub mod container;
pub mod error;
pub mod exec;
pub mod handshake;
pub mod hostname;
pub mod id_ranges;
pub mod identity;
pub mod idmap;
pub mod init;
pub mod mounts;
pub mod namespaces;
pub mod network;
pub mod rlimits;
pub mod safe_path;
pub mod setup_ops;
pub mod signals;
pub mod spec;
pub mod terminal;
#[cfg(test)]
mod test_support;

pub use capabilities::CapabilitySet;
pub use config::{ContainerConfig, FileLimit, IdMapping, StartGate, Terminal};
pub use container::{run, Container, ExitReport, ExitStatus};
pub use error::{ConfigError, Error, SpecError, EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED};
pub use spec::{BindMount, IdRange};
