//! Error types of the crate: [`CgroupError`] for everything touching the
//! cgroup filesystem and [`ParseSizeError`] for size strings.
//!
//! Every message is a single line naming the operation and the path (or the
//! limit) involved, so the CLI can print it as-is.

use std::io;
use std::path::PathBuf;

/// An error creating, configuring, inspecting or removing a container cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The container name is not a safe single path component.
    #[error("invalid cgroup name '{name}': {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// The limits are inconsistent (e.g. swap limit below the memory limit).
    #[error("invalid cgroup limits: {0}")]
    InvalidLimits(String),

    /// A memory (or memory+swap) limit too small for any process to start under.
    #[error("{limit} {} is below the minimum allowed {limit}, {}", format_bytes(*.bytes), format_bytes(*.min))]
    MemoryBelowMinimum { limit: MemoryLimit, bytes: u64, min: u64 },

    /// A pids limit outside what the kernel accepts (`pids.max` is at most PID_MAX_LIMIT).
    #[error("pids limit {pids} is out of range: it must be from {min} to {max} (the kernel's PID_MAX_LIMIT)")]
    PidsOutOfRange { pids: u64, min: u64, max: u64 },

    /// A CPU quota below 0.01 CPUs or above the CPUs this process may run on.
    #[error("CPU quota {cpus} is out of range: the range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available")]
    CpuQuotaOutOfRange { cpus: f64, available: usize },

    /// The container's cgroup name is taken: its lease or a cgroup directory of that name exists
    /// (another crabcan, possibly in another pid namespace, with the same name and pid, or a
    /// directory made by hand). Nothing is taken over.
    #[error("cgroup crabcan/{leaf} is already in use ({} exists); choose another container name", .path.display())]
    InUse { leaf: String, path: PathBuf },

    /// `/proc/self/mountinfo` shows no usable cgroup filesystem.
    #[error("no cgroup filesystem with usable controllers is mounted (checked {path})")]
    NotMounted { path: PathBuf },

    /// A limit needs a controller the host does not have (or cannot delegate).
    #[error("the host has no '{controller}' cgroup controller, needed for {option}; allow missing controllers (crabcan: --allow-missing-controllers) to run without that limit")]
    MissingController { controller: String, option: &'static str },

    /// The controller exists but the interface file for a limit does not
    /// (no swap accounting, no CFQ/BFQ I/O scheduler, ...).
    #[error("the host does not support {what} ({path} is missing), needed for {option}; allow missing controllers (crabcan: --allow-missing-controllers) to run without that limit")]
    MissingFeature {
        what: &'static str,
        path: PathBuf,
        option: &'static str,
    },

    /// A file system operation on the cgroup tree failed.
    #[error("cannot {op} {path}: {}", describe(.cause))]
    Io {
        op: String,
        path: PathBuf,
        cause: io::Error,
    },

    /// A cgroup file did not have the expected format.
    #[error("cannot parse {path}: unexpected content '{content}'")]
    Parse { path: PathBuf, content: String },

    /// Processes survived `kill_all` for longer than the time bound.
    #[error("processes {pids:?} still in {path} after killing for {waited_ms} ms")]
    KillTimeout {
        path: PathBuf,
        pids: Vec<i32>,
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
}

/// Which memory limit a [`CgroupError::MemoryBelowMinimum`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLimit {
    /// The memory limit.
    Memory,
    /// The memory+swap limit.
    MemorySwap,
}

impl std::fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemoryLimit::Memory => "memory limit",
            MemoryLimit::MemorySwap => "memory+swap limit",
        })
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
    #[error("empty size")]
    Empty,
    #[error("invalid size '{0}': expected a number optionally followed by a unit (B, K, M, G, T, P; KiB/KB/... also accepted)")]
    InvalidNumber(String),
    #[error("invalid size '{input}': unknown unit '{unit}' (use B, K, M, G, T or P)")]
    UnknownUnit { input: String, unit: String },
    #[error("invalid size '{0}': a fraction of a byte is not a size")]
    FractionalBytes(String),
    #[error("invalid size '{0}': too large (the maximum is {max} bytes)", max = u64::MAX)]
    Overflow(String),
}
