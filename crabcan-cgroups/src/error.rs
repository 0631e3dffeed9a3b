//! Error types of the crate: [`CgroupError`] for everything touching the
//! cgroup filesystem and [`ParseSizeError`] for size strings.
//!
//! Every message is a single line naming the operation and the path (or the
//! limit, in words) involved. Errors about one limit carry its [`LimitKind`]
//! ([`CgroupError::limit`]), so a caller can add its own name for it.

use std::io;
use std::path::PathBuf;

use crate::limits::LimitKind;

/// An error creating, configuring, inspecting or removing a container cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The container name (or the parent folder's name) is not a safe single path component.
    #[error("invalid cgroup name '{name}': {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A memory+swap limit without a memory limit.
    #[error("invalid cgroup limits: a memory+swap limit needs a memory limit too")]
    SwapWithoutMemory,

    /// A memory+swap limit below the memory limit.
    #[error("invalid cgroup limits: memory+swap limit {swap} is below the memory limit {memory}")]
    SwapBelowMemory {
        /// The memory+swap limit in bytes.
        swap: u64,
        /// The memory limit in bytes.
        memory: u64,
    },

    /// A memory (or memory+swap) limit too small for any process to start under.
    #[error("{limit} {} is below the minimum allowed {limit}, {}", format_bytes(*.bytes), format_bytes(*.min))]
    MemoryBelowMinimum {
        /// [`LimitKind::Memory`] or [`LimitKind::MemorySwap`].
        limit: LimitKind,
        /// The limit given, in bytes.
        bytes: u64,
        /// The smallest limit accepted, in bytes ([`crate::MIN_MEMORY`]).
        min: u64,
    },

    /// A pids limit outside what the kernel accepts (`pids.max` is at most PID_MAX_LIMIT).
    #[error("pids limit {pids} is out of range: it must be from {min} to {max} (the kernel's PID_MAX_LIMIT)")]
    PidsOutOfRange {
        /// The limit given.
        pids: u64,
        /// The smallest limit accepted.
        min: u64,
        /// The largest limit accepted ([`crate::PID_MAX_LIMIT`]).
        max: u64,
    },

    /// A CPU or I/O weight outside the cgroup v2 range.
    #[error("{limit} {weight} is outside {min}..={max}")]
    WeightOutOfRange {
        /// [`LimitKind::CpuWeight`] or [`LimitKind::IoWeight`].
        limit: LimitKind,
        /// The weight given.
        weight: u64,
        /// The smallest weight accepted.
        min: u64,
        /// The largest weight accepted.
        max: u64,
    },

    /// A CPU quota below 0.01 CPUs or above the CPUs this process may run on.
    #[error("CPU quota {cpus} is out of range: the range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available")]
    CpuQuotaOutOfRange {
        /// The quota given, in CPUs.
        cpus: f64,
        /// The CPUs this process may run on ([`crate::available_cpus`]).
        available: usize,
    },

    /// A number outside what the kernel (or the OCI runtime spec) accepts for the limit.
    #[error("{limit} {value} is out of range: {expected}")]
    OutOfRange {
        /// The limit.
        limit: LimitKind,
        /// The value given, with its unit.
        value: String,
        /// The accepted range, in words.
        expected: &'static str,
    },

    /// A name or list that the limit's cgroup file cannot take (and that must never become
    /// part of a path or a second line).
    #[error("invalid {limit} {value:?}: {why}")]
    InvalidValue {
        /// The limit.
        limit: LimitKind,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },

    /// The same cgroup setting given in two ways.
    #[error("the {limit} is given twice, {how}: give one")]
    GivenTwice {
        /// The limit.
        limit: LimitKind,
        /// The two ways, in words.
        how: &'static str,
    },

    /// A limit that exists on the other cgroup version only (swappiness on v2, `unified` on
    /// v1, ...), refused rather than skipped.
    #[error("the {limit} cannot be applied on this host's cgroup v{version}: {why}")]
    NotOnVersion {
        /// The limit.
        limit: LimitKind,
        /// The host's cgroup version for this limit: 1 or 2.
        version: u8,
        /// Why, naming the files.
        why: &'static str,
    },

    /// [`crate::ContainerCgroup::update`] with [`crate::Limits::memory_check_before_update`]:
    /// the new memory limit is not above what the cgroup uses now.
    #[error("rejecting memory limit {limit} bytes: it is not above the current usage of {usage} bytes ({})", .path.display())]
    MemoryBelowUsage {
        /// The limit asked for.
        limit: u64,
        /// The usage read.
        usage: u64,
        /// The file read (`memory.current`).
        path: PathBuf,
    },

    /// The container's cgroup name is taken: its lease or a cgroup directory of that name exists
    /// (another crabcan, possibly in another pid namespace, with the same name and pid, or a
    /// directory made by hand). Nothing is taken over. For [`crate::CgroupHost::create_at`]:
    /// the leaf directory at that path exists.
    #[error("cgroup {parent}/{leaf} is already in use ({} exists); choose another name", .path.display())]
    InUse {
        /// The parent folder ([`crate::CgroupHost::parent`]); for
        /// [`crate::CgroupHost::create_at`], the path's parent components, each after a '/'
        /// (`/machine` for `machine/abc`, empty for `abc`).
        parent: String,
        /// `<name>.<pid>`, the cgroup's directory name; for [`crate::CgroupHost::create_at`],
        /// the path's last component.
        leaf: String,
        /// The lease or directory that exists.
        path: PathBuf,
    },

    /// [`crate::ContainerCgroup::open_at`]: no hierarchy has a directory at that path.
    #[error("no cgroup at {} in any cgroup hierarchy crabcan uses", .path.display())]
    NotFound {
        /// The path given (relative to each hierarchy's mount point).
        path: PathBuf,
    },

    /// [`crate::ContainerCgroup::freeze`] or [`crate::ContainerCgroup::thaw`] on a cgroup
    /// that cannot be frozen: on v1 the host has no `freezer` hierarchy (so the cgroup has no
    /// directory in it), on v2 the kernel has no `cgroup.freeze` (before Linux 5.2).
    #[error("cannot freeze or thaw {}: the host has no '{controller}' cgroup controller for it", .path.display())]
    FreezerUnavailable {
        /// The missing controller: `freezer`.
        controller: &'static str,
        /// The cgroup directory (v1) or the missing `cgroup.freeze` file (v2).
        path: PathBuf,
    },

    /// The cgroup did not reach the frozen (or thawed) state within the time bound; a freeze
    /// that timed out is undone, best effort.
    #[error("{} reads '{state}' instead of '{wanted}' after waiting {waited_ms} ms", .path.display())]
    FreezeTimeout {
        /// The file watched: v1 `freezer.state`, v2 `cgroup.events`.
        path: PathBuf,
        /// The state waited for: `FROZEN`/`THAWED` (v1), `frozen 1`/`frozen 0` (v2).
        wanted: &'static str,
        /// The state last read.
        state: String,
        /// How long it waited.
        waited_ms: u128,
    },

    /// `/proc/self/mountinfo` shows no usable cgroup filesystem.
    #[error("no cgroup filesystem with usable controllers is mounted (checked {path})")]
    NotMounted {
        /// The file read.
        path: PathBuf,
    },

    /// A limit needs a controller the host does not have.
    #[error("the host has no '{controller}' cgroup controller, needed for the {limit}")]
    MissingController {
        /// The controller's name (`memory`, `pids`, `cpu`, `blkio`, `io`).
        controller: String,
        /// The limit that needs it.
        limit: LimitKind,
    },

    /// A limit whose controller the container's cgroup was made without (it was not needed
    /// then; on v1 there is no directory for it, on v2 it is not enabled for the cgroup), so
    /// [`crate::ContainerCgroup::update`] cannot set it.
    #[error("the container's cgroup has no '{controller}' controller (it was created without a {limit}), needed for the {limit}")]
    NoControllerDirectory {
        /// The controller's name.
        controller: String,
        /// The limit that needs it.
        limit: LimitKind,
    },

    /// A limit needs a cgroup v2 controller that cannot be enabled for crabcan's cgroups.
    #[error("cannot enable the '{controller}' cgroup controller in {}: {}, needed for the {limit}", .path.display(), describe(.cause))]
    ControllerNotEnabled {
        /// The controller's name.
        controller: String,
        /// The `cgroup.subtree_control` file written.
        path: PathBuf,
        /// The limit that needs it.
        limit: LimitKind,
        /// Why the write failed.
        cause: io::Error,
    },

    /// The controller exists but the interface file for a limit does not
    /// (no swap accounting, no CFQ/BFQ I/O scheduler, ...).
    #[error("the host does not support {what} ({} is missing), needed for the {limit}", .path.display())]
    MissingFeature {
        /// The feature, in words ("swap accounting").
        what: &'static str,
        /// The missing interface file.
        path: PathBuf,
        /// The limit that needs it.
        limit: LimitKind,
    },

    /// A file system operation on the cgroup tree failed.
    #[error("cannot {op} {}: {}", .path.display(), describe(.cause))]
    Io {
        /// The operation ("create directory", "write 64 to", ...).
        op: String,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        cause: io::Error,
    },

    /// Processes survived `kill_all` for longer than the time bound.
    #[error("processes {pids:?} still in {} after killing for {waited_ms} ms", .path.display())]
    KillTimeout {
        /// The cgroup directory.
        path: PathBuf,
        /// The processes left.
        pids: Vec<i32>,
        /// How long killing went on.
        waited_ms: u128,
    },
}

impl CgroupError {
    /// An I/O error for operation `op` (e.g. "create directory") on `path`.
    pub(crate) fn io(op: impl Into<String>, path: impl Into<PathBuf>, cause: io::Error) -> Self {
        CgroupError::Io {
            op: op.into(),
            path: path.into(),
            cause,
        }
    }

    /// The `errno` behind an [`CgroupError::Io`], if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::Io { cause, .. } => cause.raw_os_error(),
            _ => None,
        }
    }

    /// The limit this error is about, if it is about one: a caller maps it to its own words
    /// (a command-line flag, a configuration key).
    pub fn limit(&self) -> Option<LimitKind> {
        match self {
            CgroupError::SwapWithoutMemory | CgroupError::SwapBelowMemory { .. } => Some(LimitKind::MemorySwap),
            CgroupError::PidsOutOfRange { .. } => Some(LimitKind::Pids),
            CgroupError::CpuQuotaOutOfRange { .. } => Some(LimitKind::CpuQuota),
            CgroupError::MemoryBelowMinimum { limit, .. }
            | CgroupError::WeightOutOfRange { limit, .. }
            | CgroupError::MissingController { limit, .. }
            | CgroupError::NoControllerDirectory { limit, .. }
            | CgroupError::ControllerNotEnabled { limit, .. }
            | CgroupError::MissingFeature { limit, .. }
            | CgroupError::OutOfRange { limit, .. }
            | CgroupError::InvalidValue { limit, .. }
            | CgroupError::GivenTwice { limit, .. }
            | CgroupError::NotOnVersion { limit, .. } => Some(*limit),
            CgroupError::MemoryBelowUsage { .. } => Some(LimitKind::Memory),
            _ => None,
        }
    }

    /// Whether the host cannot apply a limit ([`CgroupError::MissingController`],
    /// [`CgroupError::ControllerNotEnabled`], [`CgroupError::MissingFeature`]): the errors
    /// [`crate::MissingController::Warn`] turns into [`crate::Unapplied`] entries.
    pub fn is_missing_controller(&self) -> bool {
        matches!(
            self,
            CgroupError::MissingController { .. }
                | CgroupError::NoControllerDirectory { .. }
                | CgroupError::ControllerNotEnabled { .. }
                | CgroupError::MissingFeature { .. }
        )
    }
}

/// `6 MiB`, `100 KiB`, `4097 bytes`: the largest binary unit that divides `bytes`.
pub(crate) fn format_bytes(bytes: u64) -> String {
    if bytes == 1 {
        return "1 byte".into();
    }
    const UNITS: [(&str, u32); 4] = [("GiB", 30), ("MiB", 20), ("KiB", 10), ("bytes", 0)];
    for (unit, shift) in UNITS {
        if bytes != 0 && bytes.trailing_zeros() >= shift {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// `io::Error` text without the trailing " (os error N)", to keep messages short.
fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(idx) => text[..idx].to_string(),
        None => text,
    }
}

/// An error parsing a size such as `512M` or `1.5G`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseSizeError {
    /// Nothing but white space.
    #[error("empty size")]
    Empty,
    /// No number where one was expected.
    #[error("invalid size '{0}': expected a number optionally followed by a unit (B, K, M, G, T, P; KiB/KB/... also accepted)")]
    InvalidNumber(String),
    /// A unit other than B, K, M, G, T, P (with optional `B`/`iB`).
    #[error("invalid size '{input}': unknown unit '{unit}' (use B, K, M, G, T or P)")]
    UnknownUnit {
        /// The whole size given.
        input: String,
        /// The unit part of it.
        unit: String,
    },
    /// A fraction of a byte (`1.5` without a unit).
    #[error("invalid size '{0}': a fraction of a byte is not a size")]
    FractionalBytes(String),
    /// More than `u64::MAX` bytes.
    #[error("invalid size '{0}': too large (the maximum is {max} bytes)", max = u64::MAX)]
    Overflow(String),
}
