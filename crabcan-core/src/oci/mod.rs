//! crabcan's OCI runtime mode, the library side of `crabcan create|start|state|...`: the state
//! store ([`state`]), the default bundle configuration ([`spec`]), the features document
//! ([`features`]) and the container lifecycle behind the runc-compatible command line
//! ([`runtime`]). Everything here returns an [`OciError`]; the command line prints it.

pub mod bundle;
mod devices;
mod exec;
pub mod features;
mod limits;
pub mod resources;
pub mod runtime;
pub mod spec;
pub mod state;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The OCI runtime spec version crabcan writes in `config.json` and `state`.
pub const OCI_VERSION: &str = "1.2.0";

/// What can go wrong in the OCI mode. The messages reuse runc's wording where callers (podman,
/// containerd) match on it.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The container id breaks runc's rule (`^[\w+\-.]+$`, not `.` or `..`, at most 1024
    /// bytes) or crabcan's (no leading `.`: those names are crabcan's own state).
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id as given.
        id: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// No container of that id in the state root.
    #[error("container \"{id}\" does not exist")]
    NotExist {
        /// The id asked for.
        id: String,
    },
    /// `create` of an id that is taken.
    #[error("container \"{id}\" already exists")]
    AlreadyExists {
        /// The id asked for.
        id: String,
    },
    /// The operation needs a running container.
    #[error("container not running")]
    NotRunning,
    /// `exec` into a container that is stopped (runc's words) or paused.
    #[error("cannot exec in a {status} container{hint}")]
    CannotExec {
        /// The container's status.
        status: state::Status,
        /// What to do, when something can be done.
        hint: &'static str,
    },
    /// The `process` object of `exec --process FILE` cannot be read as a runtime-spec process.
    #[error("the process file {path} is invalid: {why}")]
    BadProcess {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// `exec`'s options cannot go together, or one is malformed.
    #[error("exec: {why}")]
    BadExecOptions {
        /// What is wrong.
        why: String,
    },
    /// The container's state lacks what an operation needs (a crabcan before it kept it).
    #[error("the state of container \"{id}\" has no {missing} (an older crabcan created it): delete the container and create it again")]
    StateIncomplete {
        /// The container's id.
        id: String,
        /// What is missing.
        missing: &'static str,
    },
    /// `exec` was called from the host's crabcan binary rather than from a sealed copy.
    #[error(transparent)]
    Unsealed(#[from] crate::sealed_exe::SealedExeError),
    /// A container's `state.json` that cannot be read as a state.
    #[error("the state of container \"{id}\" at {path} is unreadable: {source}")]
    CorruptState {
        /// The container's id.
        id: String,
        /// The state file.
        path: PathBuf,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// A file operation on the host failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What crabcan was doing, e.g. "create the state folder".
        what: &'static str,
        /// The path at fault.
        path: PathBuf,
        /// The error the system gave.
        source: std::io::Error,
    },
    /// `spec` into a bundle that already has a `config.json`.
    #[error("File {path} exists. Remove it first")]
    SpecExists {
        /// The existing `config.json`.
        path: PathBuf,
    },
    /// A value that cannot be written as JSON (should not happen for crabcan's own types).
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// The bundle's `config.json` cannot be read as a runtime spec.
    #[error("the bundle's config {path} is invalid: {why}")]
    BadConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The bundle asks for something crabcan does not implement.
    #[error("config.json field {field} is not supported: {why}")]
    Unsupported {
        /// The field, as a path (`linux.sysctl`, `mounts[2].type`).
        field: String,
        /// Why, and what to do.
        why: String,
    },
    /// The container is in a state the operation cannot take.
    #[error("container \"{id}\" is {status:?}, not {wanted}")]
    WrongState {
        /// The container's id.
        id: String,
        /// Its status now.
        status: state::Status,
        /// What the operation needs.
        wanted: &'static str,
    },
    /// A unix socket crabcan hands a descriptor to (`--console-socket`, `--pidfd-socket`)
    /// failed.
    #[error("cannot {action} the {what} socket {path}: {source}")]
    SocketIo {
        /// Which socket: "console", "pidfd".
        what: &'static str,
        /// What crabcan was doing, e.g. "connect to".
        action: String,
        /// The socket's path.
        path: PathBuf,
        /// The error the system gave.
        source: std::io::Error,
    },
    /// The container's process failed once `start` released it (a `startContainer` hook, or
    /// its execve); it is stopped.
    #[error("container \"{id}\" failed to start: {detail}")]
    StartFailed {
        /// The container's id.
        id: String,
        /// What the container's process said.
        detail: String,
    },
    /// A signal number Linux does not have.
    #[error("{signal} is not a signal")]
    BadSignal {
        /// The number given.
        signal: i32,
    },
    /// crabcan-core could not create, start or wait for the container.
    #[error(transparent)]
    Container(#[from] crate::Error),
    /// The container's cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] crabcan_cgroups::CgroupError),
    /// The operation needs a cgroup driver crabcan does not have.
    #[error("{what} needs the {driver} cgroup driver, and crabcan has only cgroupfs; drop {option}")]
    CgroupDriver {
        /// The operation, e.g. "create".
        what: &'static str,
        /// The driver asked for, e.g. "systemd".
        driver: &'static str,
        /// The option that asked for it, e.g. "--systemd-cgroup".
        option: &'static str,
    },
    /// A part of the OCI mode that is not built yet.
    #[error("crabcan's OCI mode cannot {what} yet")]
    NotYetSupported {
        /// What was asked for, e.g. "create a container".
        what: &'static str,
    },
}

impl OciError {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> OciError {
        OciError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

/// `time` in RFC 3339 with nanoseconds, in UTC, as Go's `time.RFC3339Nano` writes it (what runc
/// puts in `created` and in its JSON log lines), e.g. `2024-05-01T12:30:45.123456789Z`. Times
/// before 1970 are written as 1970-01-01T00:00:00Z.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let nanos = since.subsec_nanos();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let clock = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    if nanos == 0 {
        return format!("{clock}Z");
    }
    // Go's RFC3339Nano drops trailing zeros of the fraction.
    let fraction = format!("{nanos:09}");
    format!("{clock}.{}Z", fraction.trim_end_matches('0'))
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days >= 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::new(951_782_400, 0); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
        let time = UNIX_EPOCH + Duration::new(1_714_566_645, 123_000_000);
        assert_eq!(rfc3339(time), "2024-05-01T12:30:45.123Z");
        let end = UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999);
        assert_eq!(rfc3339(end), "9999-12-31T23:59:59.999999999Z");
    }
}
