//! The container lifecycle behind the OCI command line: `create`, `start`, `run`, `kill`,
//! `delete`, `exec`, `ps`, `pause`, `resume`, `events`, `update`. Each takes the
//! [`StateStore`] of `--root` and a container id; none prints anything.
//!
//! Only the cases that need no container are implemented so far (an unknown id for `kill` and
//! `delete`, `delete --force` of one); the rest answer [`OciError::NotYetSupported`] until the
//! container side of the OCI mode lands.

use std::path::PathBuf;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use super::state::StateStore;
use super::OciError;

/// Which cgroup driver manages the container's cgroups (`--cgroup-manager`,
/// `--systemd-cgroup`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CgroupManager {
    /// crabcan's own cgroupfs driver (crabcan-cgroups).
    #[default]
    Cgroupfs,
    /// systemd's: not implemented; [`CgroupManager::check`] refuses it.
    Systemd,
    /// No cgroup for the container at all (crun's `--cgroup-manager disabled`).
    Disabled,
}

impl CgroupManager {
    /// Fails with [`OciError::CgroupDriver`] when `what` (e.g. "create") would need a driver
    /// crabcan does not have; `option` is how the caller asked for it.
    pub fn check(self, what: &'static str, option: &'static str) -> Result<(), OciError> {
        match self {
            CgroupManager::Systemd => Err(OciError::CgroupDriver {
                what,
                driver: "systemd",
                option,
            }),
            CgroupManager::Cgroupfs | CgroupManager::Disabled => Ok(()),
        }
    }
}

/// Options of `create` and `run`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// The bundle folder (`--bundle`, default the current folder).
    pub bundle: PathBuf,
    /// Where to write the container process's pid, atomically and only on success.
    pub pid_file: Option<PathBuf>,
    /// The unix socket that receives the pty master when `process.terminal` is true.
    pub console_socket: Option<PathBuf>,
    /// The unix socket that receives a pidfd of the container's process.
    pub pidfd_socket: Option<PathBuf>,
    /// Use `chroot`-like `MS_MOVE` instead of `pivot_root` (`--no-pivot`).
    pub no_pivot: bool,
    /// Do not create a new session keyring (`--no-new-keyring`).
    pub no_new_keyring: bool,
    /// Pass this many fds beyond 0-2 (3, 4, ...) to the container.
    pub preserve_fds: u32,
    /// The cgroup driver; [`CgroupManager::Systemd`] is refused by the command line.
    pub cgroup_manager: CgroupManager,
}

/// `--user UID[:GID]` of `exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecUser {
    /// The uid inside the container.
    pub uid: u32,
    /// The gid inside the container (default: the process's, from the bundle).
    pub gid: Option<u32>,
}

/// Options of `exec`: a process given whole (`--process FILE`, a runtime-spec `process`
/// object) or by flags and the command after the id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// A JSON file with the process (`--process`); the flags below then only add to it.
    pub process: Option<PathBuf>,
    /// The command and its arguments.
    pub args: Vec<String>,
    /// Return once the process started instead of waiting for it (`--detach`).
    pub detach: bool,
    /// Where to write the new process's pid.
    pub pid_file: Option<PathBuf>,
    /// Give the process a pty (`--tty`).
    pub tty: bool,
    /// The unix socket that receives the pty master.
    pub console_socket: Option<PathBuf>,
    /// The unix socket that receives a pidfd of the new process.
    pub pidfd_socket: Option<PathBuf>,
    /// `KEY=VALUE` environment entries added to the process's.
    pub env: Vec<String>,
    /// The working folder inside the container.
    pub cwd: Option<PathBuf>,
    /// The user the process runs as.
    pub user: Option<ExecUser>,
    /// Supplementary groups (`--additional-gids`).
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the process's (`--cap`, e.g. `CAP_NET_ADMIN`).
    pub capabilities: Vec<String>,
    /// Set no_new_privs even if the process does not ask for it.
    pub no_new_privs: bool,
    /// Pass this many fds beyond 0-2 to the process.
    pub preserve_fds: u32,
}

/// Options of `events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsOptions {
    /// Report the container's resource use once and return (`--stats`).
    pub stats: bool,
    /// How often to report statistics when streaming (`--interval`, runc's default 5 s).
    pub interval: Duration,
}

impl Default for EventsOptions {
    fn default() -> EventsOptions {
        EventsOptions {
            stats: false,
            interval: Duration::from_secs(5),
        }
    }
}

/// Options of `update`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateOptions {
    /// The new limits, a runtime-spec `linux.resources` object (`--resources FILE|-`).
    pub resources: LinuxResources,
}

/// Creates container `id` from the bundle and leaves its process held before `execve`;
/// returns once crabcan can exit and leave the container to the caller.
pub fn create(store: &StateStore, id: &str, options: &CreateOptions) -> Result<(), OciError> {
    let _ = (store, id, options);
    Err(OciError::NotYetSupported {
        what: "create a container",
    })
}

/// Releases a created container's process to run its program.
pub fn start(store: &StateStore, id: &str) -> Result<(), OciError> {
    let _ = (store, id);
    Err(OciError::NotYetSupported {
        what: "start a container",
    })
}

/// `create`, `start`, and unless `detach`, waits: the container's exit code (128+N for
/// signal N), or 0 when detached.
pub fn run(store: &StateStore, id: &str, options: &CreateOptions, detach: bool) -> Result<i32, OciError> {
    let _ = (store, id, options, detach);
    Err(OciError::NotYetSupported {
        what: "run a container",
    })
}

/// Sends `signal` to the container's process (`all`: to every process in its cgroup).
/// An unknown id is [`OciError::NotExist`].
pub fn kill(store: &StateStore, id: &str, signal: i32, all: bool) -> Result<(), OciError> {
    must_exist(store, id)?;
    let _ = (signal, all);
    Err(OciError::NotYetSupported {
        what: "signal a container",
    })
}

/// Removes the container and everything it owned (`force`: kills it first if it runs). An
/// unknown id is [`OciError::NotExist`], or success with `force`.
pub fn delete(store: &StateStore, id: &str, force: bool) -> Result<(), OciError> {
    if !store.exists(id)? {
        return if force {
            Ok(())
        } else {
            Err(OciError::NotExist { id: id.to_owned() })
        };
    }
    Err(OciError::NotYetSupported {
        what: "delete a container",
    })
}

/// Runs a new process in a running container: its exit code, or 0 when detached.
pub fn exec(store: &StateStore, id: &str, options: &ExecOptions) -> Result<i32, OciError> {
    must_exist(store, id)?;
    let _ = options;
    Err(OciError::NotYetSupported {
        what: "exec in a container",
    })
}

/// The host pids of the container's processes.
pub fn ps(store: &StateStore, id: &str) -> Result<Vec<i32>, OciError> {
    must_exist(store, id)?;
    Err(OciError::NotYetSupported {
        what: "list a container's processes",
    })
}

/// Freezes every process of the container.
pub fn pause(store: &StateStore, id: &str) -> Result<(), OciError> {
    must_exist(store, id)?;
    Err(OciError::NotYetSupported {
        what: "pause a container",
    })
}

/// Thaws a paused container.
pub fn resume(store: &StateStore, id: &str) -> Result<(), OciError> {
    must_exist(store, id)?;
    Err(OciError::NotYetSupported {
        what: "resume a container",
    })
}

/// Reports the container's events (runc's `{"type": ..., "id": ..., "data": ...}` objects) to
/// `on_event`: one statistics event with `stats`, otherwise a stream until the container stops.
pub fn events(
    store: &StateStore,
    id: &str,
    options: &EventsOptions,
    on_event: &mut dyn FnMut(&serde_json::Value),
) -> Result<(), OciError> {
    must_exist(store, id)?;
    let _ = (options, on_event);
    Err(OciError::NotYetSupported {
        what: "report a container's events",
    })
}

/// Changes a running container's limits.
pub fn update(store: &StateStore, id: &str, options: &UpdateOptions) -> Result<(), OciError> {
    must_exist(store, id)?;
    let _ = options;
    Err(OciError::NotYetSupported {
        what: "update a container's limits",
    })
}

/// [`OciError::NotExist`] unless container `id` exists.
fn must_exist(store: &StateStore, id: &str) -> Result<(), OciError> {
    if store.exists(id)? {
        Ok(())
    } else {
        Err(OciError::NotExist { id: id.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids() {
        let root = std::env::temp_dir().join(format!("crabcan-runtime-{}", std::process::id()));
        let store = StateStore::new(&root);
        assert!(matches!(kill(&store, "nope", 9, false), Err(OciError::NotExist { .. })));
        assert!(matches!(delete(&store, "nope", false), Err(OciError::NotExist { .. })));
        assert!(delete(&store, "nope", true).is_ok());
        assert!(matches!(delete(&store, "../x", true), Err(OciError::InvalidId { .. })));
        assert!(!root.exists(), "nothing was created");
        assert_eq!(
            create(&store, "x", &CreateOptions::default()).unwrap_err().to_string(),
            "crabcan's OCI mode cannot create a container yet"
        );
        let refused = CgroupManager::Systemd.check("create", "--systemd-cgroup").unwrap_err();
        assert!(refused.to_string().contains("systemd"), "{refused}");
    }
}
