//! Error type of the crate: every failure, typed, with a one-line message
//! naming the syscall, rule or action that caused it.

use std::path::{Path, PathBuf};

use crate::profile::Action;

/// Everything that can go wrong while importing, validating, compiling or
/// installing a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A syscall name that does not exist on the architecture the filter is
    /// compiled for, [`Arch::NATIVE`](crate::Arch::NATIVE) (nor, for imported
    /// profiles, on any other architecture this crate or libseccomp knows).
    #[error("unknown syscall `{name}`: not a syscall on {}", crate::Arch::NATIVE)]
    UnknownSyscall {
        /// The name as written in the profile.
        name: String,
    },

    /// A seccomp action string the importer does not know.
    #[error("unknown seccomp action `{action}` in {context}")]
    UnknownAction {
        /// The action as written (e.g. `SCMP_ACT_FOO`).
        action: String,
        /// Where it was found (e.g. `defaultAction`, `rule for chmod`).
        context: String,
    },

    /// A known seccomp action this crate cannot express (trace, notify).
    #[error("unsupported seccomp action `{action}` in {context}")]
    UnsupportedAction {
        /// The action as written.
        action: String,
        /// Where it was found.
        context: String,
    },

    /// A comparison operator string the importer does not know.
    #[error("unknown comparison operator `{op}` in rule for `{syscall}`")]
    UnknownOperator {
        /// The operator as written.
        op: String,
        /// First syscall name of the rule.
        syscall: String,
    },

    /// The profile file could not be opened, inspected or read.
    #[error("cannot read the seccomp profile {}: {source}", path.display())]
    ReadFile {
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The profile path names a directory, FIFO, device or socket: reading
    /// it could block forever or never end.
    #[error("the seccomp profile {} is not a regular file but a {kind}; give a JSON file", path.display())]
    NotARegularFile {
        /// The path as given.
        path: PathBuf,
        /// What it is instead (`directory`, `FIFO`, `character device`, ...).
        kind: &'static str,
    },

    /// The profile file is larger than [`MAX_PROFILE_BYTES`](crate::MAX_PROFILE_BYTES).
    #[error(
        "the seccomp profile {} is {}larger than the {max} bytes ({} KiB) accepted; Docker's default profile is about 20 KiB",
        path.display(),
        describe_size(*size),
        max / 1024
    )]
    FileTooLarge {
        /// The path as given.
        path: PathBuf,
        /// Its size in bytes as `fstat` reported it, or `None` when it
        /// grew past the bound while being read.
        size: Option<u64>,
        /// The bound.
        max: u64,
    },

    /// The input is not JSON of the expected shape.
    #[error("invalid seccomp profile JSON: {reason}")]
    InvalidJson {
        /// serde_json's description, with line and column.
        reason: String,
    },

    /// The JSON is well formed but a field has an impossible value.
    #[error("invalid seccomp profile: {reason}")]
    InvalidProfile {
        /// What is wrong.
        reason: String,
    },

    /// More rules than a seccomp filter can hold (checked before libseccomp
    /// is called, whose compile time grows faster than the rule count).
    #[error(
        "the profile has {count} rules whose action differs from the default action, more than the {max} accepted: \
         a seccomp filter holds at most {max} BPF instructions (BPF_MAXINSNS); merge rules or change the default action"
    )]
    TooManyRules {
        /// Rules whose action is not the default action.
        count: usize,
        /// The bound ([`MAX_RULES`](crate::MAX_RULES)).
        max: usize,
    },

    /// The profile refuses `execve` itself, so the filter (loaded right
    /// before `execve`) would stop every command from starting.
    #[error(
        "the profile's action for execve is {action}, so no command could start (the filter is loaded right before \
         execve); allow execve, and exit_group so that the command can exit"
    )]
    DeniesExec {
        /// The action that would apply to `execve`.
        action: Action,
    },

    /// Argument index outside 0..=5.
    #[error("rule for `{syscall}` compares argument {index}, but syscalls have only arguments 0 to 5")]
    InvalidArgIndex {
        /// Syscall of the rule.
        syscall: String,
        /// The offending index.
        index: u64,
    },

    /// Two comparisons on the same argument in one rule (libseccomp cannot
    /// express it; split it into two rules).
    #[error("rule for `{syscall}` compares argument {index} twice; use one rule per comparison")]
    DuplicateArgIndex {
        /// Syscall of the rule.
        syscall: String,
        /// The repeated index.
        index: u8,
    },

    /// An errno value the kernel cannot return from a filter (max 4095).
    #[error("errno {errno} in {context} is out of range (0 to 4095)")]
    InvalidErrno {
        /// The value.
        errno: u64,
        /// Where it was found.
        context: String,
    },

    /// The same rule (syscall, action and arguments) appears twice.
    #[error("syscall `{syscall}` is listed twice with the same action and arguments")]
    DuplicateRule {
        /// The syscall.
        syscall: String,
    },

    /// Two rules match the same calls but ask for different actions.
    #[error("syscall `{syscall}` has conflicting rules with the same arguments: {first} and {second}")]
    ConflictingRules {
        /// The syscall.
        syscall: String,
        /// Action of the first rule.
        first: Action,
        /// Action of the second rule.
        second: Action,
    },

    /// An unconditional rule would silently override a conditional rule with
    /// another action (libseccomp keeps only the unconditional one).
    #[error("syscall `{syscall}` has an unconditional {unconditional} rule that would silently override its conditional {conditional} rule")]
    ShadowedRule {
        /// The syscall.
        syscall: String,
        /// Action of the unconditional rule.
        unconditional: Action,
        /// Action of the overridden conditional rule.
        conditional: Action,
    },

    /// libseccomp refused an operation.
    #[error("libseccomp {operation} failed: {source}")]
    Libseccomp {
        /// What was being done, naming the syscall when there is one.
        operation: String,
        /// The errno libseccomp returned.
        source: std::io::Error,
    },

    /// libseccomp builds filters for another architecture than the one this
    /// build of the crate has syscall numbers for ([`Arch::NATIVE`](crate::Arch::NATIVE)).
    #[error(
        "libseccomp's native architecture (audit token {native:#x}) is not {expected}, the one this build has syscall numbers for"
    )]
    ForeignLibseccomp {
        /// libseccomp's `AUDIT_ARCH_*` token.
        native: u32,
        /// The architecture this crate was built for.
        expected: crate::Arch,
    },

    /// Reading the exported BPF program back failed.
    #[error("exporting the BPF program failed: {source}")]
    Export {
        /// The I/O error.
        source: std::io::Error,
    },

    /// Bytes given to [`CompiledFilter::from_bytes`](crate::CompiledFilter::from_bytes)
    /// are not a BPF program.
    #[error("invalid BPF program: {reason}")]
    InvalidBpf {
        /// What is wrong.
        reason: &'static str,
    },

    /// The kernel refused the filter because the thread has neither
    /// `PR_SET_NO_NEW_PRIVS` nor `CAP_SYS_ADMIN`.
    #[error("installing the seccomp filter needs PR_SET_NO_NEW_PRIVS set first (or CAP_SYS_ADMIN)")]
    NeedsNoNewPrivs,

    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    #[error("prctl(PR_SET_NO_NEW_PRIVS) failed: {source}")]
    NoNewPrivs {
        /// The errno.
        source: std::io::Error,
    },

    /// The running kernel lacks what an operation needs.
    #[error("{what} needs Linux {}.{} or newer, and this kernel is {}.{}", needed.0, needed.1, running.0, running.1)]
    KernelTooOld {
        /// What was asked for.
        what: &'static str,
        /// The oldest kernel that has it, `(major, minor)`.
        needed: (u32, u32),
        /// The running kernel.
        running: (u32, u32),
    },

    /// An operation on a seccomp notification listener failed.
    #[error("{operation} on the seccomp listener failed: {source}")]
    Notify {
        /// The call, e.g. `ioctl(SECCOMP_IOCTL_NOTIF_RECV)`.
        operation: &'static str,
        /// The errno.
        source: std::io::Error,
    },

    /// A learned profile could not be written.
    #[error("cannot write the learned seccomp profile {}: {operation} failed: {source}", path.display())]
    WriteFile {
        /// The profile's path.
        path: PathBuf,
        /// The call that failed, e.g. `rename`.
        operation: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },

    /// An existing file a learned profile would be merged into is no learned allowlist.
    #[error("cannot merge into the seccomp profile {}: {reason}", path.display())]
    NotMergeable {
        /// The existing profile.
        path: PathBuf,
        /// Why it is not one.
        reason: String,
    },

    /// `seccomp(SECCOMP_SET_MODE_FILTER)` (and the prctl fallback) failed.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER) failed: {source}")]
    Install {
        /// The errno.
        source: std::io::Error,
    },
}

impl SeccompError {
    /// The profile file an error is about, for the errors of
    /// [`Profile::from_oci_json_file`](crate::Profile::from_oci_json_file)
    /// that already name it in their message; `None` for the others.
    pub fn path(&self) -> Option<&Path> {
        match self {
            SeccompError::ReadFile { path, .. }
            | SeccompError::WriteFile { path, .. }
            | SeccompError::NotMergeable { path, .. }
            | SeccompError::NotARegularFile { path, .. }
            | SeccompError::FileTooLarge { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// `1234567 bytes, ` when the size is known.
fn describe_size(size: Option<u64>) -> String {
    size.map(|size| format!("{size} bytes, ")).unwrap_or_default()
}
