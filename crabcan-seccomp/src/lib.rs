//! Seccomp syscall filters as plain data.
//!
//! - [`Profile`] / [`Rule`] / [`Action`] / [`ArgCondition`]: the rules,
//!   printable (one line per rule), comparable and serialisable
//!   (`profile.rs`).
//! - [`ShippedProfile`] (the one list of them), [`Profile::tutorial`],
//!   [`Profile::default_profile`], [`Profile::by_name`]: the shipped
//!   profiles (`tables.rs`).
//! - [`Profile::from_oci_json_with`] / [`Profile::to_oci_json`]: Docker / OCI
//!   seccomp JSON (`oci_json.rs`), its conditional rules resolved against an
//!   [`ImportContext`] (capabilities kept, kernel, architecture:
//!   `import_context.rs`); [`Profile::from_oci_json_file_with`] reads a
//!   file with bounds: regular files of at most [`MAX_PROFILE_BYTES`] only
//!   (`file.rs`).
//! - [`Arch`]: x86_64 and aarch64, one syscall table each (`arch.rs`,
//!   `syscalls/`); other targets do not compile.
//! - [`Profile::compile`] → [`CompiledFilter`]: libseccomp (`ffi.rs`) → BPF
//!   for [`Arch::NATIVE`], done once, needs no privilege (`compile.rs`).
//! - [`CompiledFilter::install`]: one `seccomp(2)` call, no allocation, for
//!   a child right before `execve` (`install.rs`). [`Profile::load`] does
//!   compile + `PR_SET_NO_NEW_PRIVS` + install for a process filtering itself.
//! - [`CompiledFilter::evaluate`]: a filter run in user space on a
//!   [`SyscallData`], with the kernel's semantics (`evaluate.rs`);
//!   [`CompiledFilter::summary`]: what a filter does with the calls that matter
//!   (`summary.rs`).
//! - Learning a profile: a [`LearningFilter`] notifies a [`Supervisor`] of every
//!   call of a process and its children (`learn.rs`); the [`Learned`] calls
//!   become a [`LearnedProfile`], merged into a JSON file (`learned_profile.rs`).
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

#![deny(missing_docs)]

mod arch;
mod compact;
mod compile;
mod error;
mod evaluate;
mod ffi;
mod file;
mod import_context;
mod install;
mod learn;
mod learned_profile;
mod oci_fields;
mod oci_json;
mod profile;
mod summary;
mod syscalls;
mod tables;

pub use arch::Arch;
pub use compile::CompiledFilter;
pub use error::SeccompError;
pub use evaluate::{SyscallData, Verdict};
pub use file::{read_profile_file, MAX_PROFILE_BYTES};
pub use import_context::{running_kernel, ImportContext};
pub use install::set_no_new_privs;
pub use learn::{check_kernel_for_learning, Learned, LearningFilter, Supervisor, LEARNING_MIN_KERNEL, OUT_OF_RANGE};
pub use learned_profile::{LearnedProfile, Scope};
pub use profile::{Action, ArgCondition, CmpOp, Profile, Rule, MAX_ARGS, MAX_ERRNO, MAX_RULES};
pub use summary::{FilterSummary, NotableVerdict};
pub use tables::ShippedProfile;

/// The number of syscall `name` on [`Arch::NATIVE`], or `None` if it has no such call.
/// Same as `Arch::NATIVE.syscall_number(name)`.
pub fn syscall_number(name: &str) -> Option<i32> {
    Arch::NATIVE.syscall_number(name)
}
