//! Seccomp syscall filters as plain data.
//!
//! - [`Profile`] / [`Rule`] / [`Action`] / [`ArgCondition`]: the rules,
//!   printable (one line per rule), comparable and serialisable
//!   (`profile.rs`).
//! - [`Profile::tutorial`], [`Profile::default_profile`],
//!   [`Profile::by_name`]: the shipped profiles (`tables.rs`).
//! - [`Profile::from_oci_json`] / [`Profile::to_oci_json`]: Docker / OCI
//!   seccomp JSON (`oci_json.rs`); [`Profile::from_oci_json_file`] reads a
//!   file with bounds: regular files of at most [`MAX_PROFILE_BYTES`] only
//!   (`file.rs`).
//! - [`Profile::compile`] → [`CompiledFilter`]: libseccomp → BPF for x86_64,
//!   done once, needs no privilege (`compile.rs`).
//! - [`CompiledFilter::install`]: one `seccomp(2)` call, no allocation, for
//!   a child right before `execve` (`install.rs`). [`Profile::load`] does
//!   compile + `PR_SET_NO_NEW_PRIVS` + install for a process filtering itself.
//!
//! ```no_run
//! use crabcan_seccomp::Profile;
//!
//! # fn main() -> Result<(), crabcan_seccomp::SeccompError> {
//! let filter = Profile::default_profile().compile()?; // in the parent
//! // ... fork/clone; in the child, right before execve:
//! filter.install_with_no_new_privs()?;
//! # Ok(())
//! # }
//! ```

mod compile;
mod error;
mod file;
mod install;
mod oci_fields;
mod oci_json;
mod profile;
mod syscalls;
mod tables;

pub use compile::CompiledFilter;
pub use error::SeccompError;
pub use file::{read_profile_file, MAX_PROFILE_BYTES};
pub use install::set_no_new_privs;
pub use profile::{Action, ArgCondition, CmpOp, Profile, Rule, MAX_ARGS, MAX_ERRNO, MAX_RULES};
pub use syscalls::x86_64_number as syscall_number;
