//! The container lifecycle behind the OCI command line: `create`, `start`, `run`, `kill`,
//! `delete`, `exec`, `ps`, `pause`, `resume`, `events`, `update`. Each takes the
//! [`StateStore`] of `--root` and a container id; none prints anything.
//!
//! `create` (detached: the container's process survives crabcan, held on a FIFO in its state
//! folder), `start`, `run`, `kill`, `delete`, `exec` (in `oci/exec.rs`), `ps`, `pause` and
//! `resume` work. `events` and `update` live in [`super::resources`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crabcan_cgroups::{CgroupHost, ContainerCgroup};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

pub use super::resources::{events, update, EventsOptions, UpdateOptions};
use super::bundle::{self, Bundle};
use super::state::{process_start_time, validate_id, ContainerLock, ContainerState, StateStore, Status};
use super::OciError;
use crate::config::StartGate;
use crate::container::DetachedContainer;

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

/// Where a container's cgroup goes when its bundle names none: `crabcan/<id>` under each
/// hierarchy's root.
fn default_cgroup_path(id: &str) -> PathBuf {
    PathBuf::from(crabcan_cgroups::DEFAULT_PARENT).join(id)
}

/// The start gate in the container's state folder: the container's process holds it open
/// for writing until `start` opens it for reading.
const START_FIFO: &str = "exec.fifo";

/// Creates container `id` from the bundle and leaves its process held before `execve`;
/// returns once crabcan can exit and leave the container to the caller.
pub fn create(store: &StateStore, id: &str, options: &CreateOptions) -> Result<(), OciError> {
    validate_id(id)?;
    let bundle_dir = absolute(&options.bundle)?;
    let mut bundle = bundle::load(&bundle_dir)?;
    if bundle.terminal && options.console_socket.is_none() {
        return Err(OciError::Unsupported {
            field: "process.terminal".into(),
            why: "cannot allocate a terminal for a detached container without --console-socket".into(),
        });
    }
    refuse_options(options)?;
    let mut state = ContainerState::new(id, &bundle_dir, &bundle.config.rootfs);
    state.annotations = bundle.annotations.clone();
    let lock = store.create(&state)?;
    let created = set_up(&lock, &mut bundle, options).and_then(|(detached, cgroup_path)| {
        state.pid = detached.pid;
        state.status = Status::Created;
        state.crabcan.cgroup_paths = detached.cgroup_paths;
        state.crabcan.cgroup_path = cgroup_path;
        state.crabcan.start_fifo = Some(lock.dir().join(START_FIFO));
        state.crabcan.init_start_time = process_start_time(detached.pid);
        lock.save(&state)?;
        if let Some(pid_file) = &options.pid_file {
            write_pid_file(pid_file, detached.pid)?;
        }
        Ok(())
    });
    if let Err(error) = created {
        if state.pid > 0 {
            kill_and_clean(&state);
        }
        let _ = lock.remove();
        return Err(error);
    }
    Ok(())
}

/// The part of `create` that makes the container: its start FIFO, its process held before
/// execve, detached. Returns it and the cgroup path it got.
fn set_up(
    lock: &ContainerLock,
    bundle: &mut Bundle,
    options: &CreateOptions,
) -> Result<(DetachedContainer, Option<PathBuf>), OciError> {
    super::exec::save_config(lock.dir(), &bundle.source)?;
    let fifo = lock.dir().join(START_FIFO);
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622)).map_err(|errno| OciError::Io {
        what: "create the start FIFO",
        path: fifo.clone(),
        source: errno.into(),
    })?;
    // The container's user (root of its user namespace, a host id of its own) opens it.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622)).map_err(|source| {
        OciError::Io {
            what: "chmod the start FIFO",
            path: fifo.clone(),
            source,
        }
    })?;
    bundle.config.start_gate = StartGate::Fifo(fifo);
    bundle.config.survives_crabcan = true;
    let cgroup_path = place_cgroup(bundle, lock.id(), options.cgroup_manager);
    let mut created = crate::create(bundle.config.clone())?;
    if let (true, Some(socket)) = (bundle.terminal, &options.console_socket) {
        let master = created.take_pty_master().ok_or_else(|| OciError::Unsupported {
            field: "process.terminal".into(),
            why: "the container process sent no pty".into(),
        })?;
        send_console(socket, &master)?;
    }
    Ok((created.detach()?, cgroup_path))
}

/// Hands the container's pty master to whoever listens on `socket`, as runc does: one message,
/// the pty's name as its payload and the master as its one `SCM_RIGHTS` descriptor.
pub(crate) fn send_console(socket: &Path, master: &std::os::fd::OwnedFd) -> Result<(), OciError> {
    use std::os::fd::AsRawFd;
    let io = |what, source| OciError::Io {
        what,
        path: socket.to_owned(),
        source,
    };
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|source| io("connect to the console socket", source))?;
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the pty's number into `number`, valid for the call.
    let name = match unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) } {
        0 => format!("/dev/pts/{number}"),
        _ => "/dev/ptmx".to_owned(),
    };
    let iov = [std::io::IoSlice::new(name.as_bytes())];
    let fds = [master.as_raw_fd()];
    let control = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &control,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(|errno| io("send the pty to the console socket", errno.into()))
}

/// Where the container's cgroup goes: the bundle's `linux.cgroupsPath`, else
/// [`default_cgroup_path`], set in its configuration; none with `--cgroup-manager disabled`.
fn place_cgroup(bundle: &mut Bundle, id: &str, manager: CgroupManager) -> Option<PathBuf> {
    let config = &mut bundle.config;
    if manager == CgroupManager::Disabled {
        config.limits = None;
        config.cgroup_path = None;
        return None;
    }
    let path = bundle.cgroups_path.clone().unwrap_or_else(|| default_cgroup_path(id));
    config.cgroup_path = Some(path.clone());
    Some(path)
}

/// What crabcan does not implement of `create`'s options: an error naming the option.
fn refuse_options(options: &CreateOptions) -> Result<(), OciError> {
    let refused = [
        ("--pidfd-socket", options.pidfd_socket.is_some()),
        ("--no-pivot", options.no_pivot),
        ("--preserve-fds", options.preserve_fds > 0),
    ];
    match refused.iter().find(|(_, given)| *given) {
        Some((option, _)) => Err(OciError::Unsupported {
            field: (*option).into(),
            why: "crabcan's OCI mode does not implement this option yet".into(),
        }),
        None => Ok(()),
    }
}

fn absolute(path: &Path) -> Result<PathBuf, OciError> {
    std::fs::canonicalize(path).map_err(|source| OciError::Io {
        what: "find the bundle",
        path: path.to_owned(),
        source,
    })
}

/// Writes `pid` to `path` atomically (a temporary file in the same folder, then a rename).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), OciError> {
    let temp = path.with_file_name(format!(
        ".{}.crabcan-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let io = |what, source| OciError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    std::fs::write(&temp, pid.to_string()).map_err(|source| io("write the pid file", source))?;
    std::fs::rename(&temp, path).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        io("rename the pid file into place", source)
    })
}

/// Releases a created container's process to run its program.
pub fn start(store: &StateStore, id: &str) -> Result<(), OciError> {
    let lock = store.lock(id)?;
    let mut state = lock.load()?;
    match state.current_status() {
        Status::Created => {}
        Status::Stopped => return Err(OciError::NotRunning),
        other => {
            return Err(OciError::WrongState {
                id: id.to_owned(),
                status: other,
                wanted: "created",
            })
        }
    }
    let fifo = state
        .crabcan
        .start_fifo
        .clone()
        .unwrap_or_else(|| lock.dir().join(START_FIFO));
    release(&fifo, state.pid)?;
    let _ = std::fs::remove_file(&fifo);
    state.status = Status::Running;
    lock.save(&state)
}

/// Opens the start FIFO for reading, which lets the container's process (blocked opening it
/// for writing) go on to execve, and reads the byte it writes. Non-blocking, so a container
/// whose process is gone is an error, never a hang.
fn release(fifo: &Path, pid: i32) -> Result<(), OciError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |what, source| OciError::Io {
        what,
        path: fifo.to_owned(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(fifo)
        .map_err(|source| io("open the start FIFO", source))?;
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    loop {
        let mut byte = [0u8; 1];
        match nix::unistd::read(&file, &mut byte) {
            Ok(1) => return Ok(()),
            Err(Errno::EAGAIN) | Ok(_) if Instant::now() < deadline && process_alive(pid) => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(Errno::EAGAIN) | Ok(_) => return Err(OciError::NotRunning),
            Err(errno) => return Err(io("read the start FIFO", errno.into())),
        }
    }
}

/// How long `start` waits for the container's process to take the start FIFO.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

fn process_alive(pid: i32) -> bool {
    pid > 0 && nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
}

/// `create`, `start`, and unless `detach`, waits: the container's exit code (128+N for
/// signal N), or 0 when detached.
pub fn run(store: &StateStore, id: &str, options: &CreateOptions, detach: bool) -> Result<i32, OciError> {
    if detach {
        create(store, id, options)?;
        start(store, id)?;
        return Ok(0);
    }
    validate_id(id)?;
    refuse_options(options)?;
    if options.console_socket.is_some() {
        return Err(OciError::Unsupported {
            field: "--console-socket".into(),
            why: "a foreground run relays its terminal itself; pass --detach to hand the pty to the socket".into(),
        });
    }
    let bundle_dir = absolute(&options.bundle)?;
    let mut bundle = bundle::load(&bundle_dir)?;
    let mut state = ContainerState::new(id, &bundle_dir, &bundle.config.rootfs);
    state.annotations = bundle.annotations.clone();
    let lock = store.create(&state)?;
    let cgroup_path = place_cgroup(&mut bundle, id, options.cgroup_manager);
    let config = &bundle.config;
    let outcome = (|| {
        super::exec::save_config(lock.dir(), &bundle.source)?;
        let created = crate::create(config.clone())?;
        state.pid = created.pid().unwrap_or(0);
        state.status = Status::Running;
        state.crabcan.cgroup_path = cgroup_path;
        state.crabcan.cgroup_paths = created.cgroup().map(|c| c.paths()).unwrap_or_default();
        state.crabcan.init_start_time = process_start_time(state.pid);
        lock.save(&state)?;
        if let Some(pid_file) = &options.pid_file {
            write_pid_file(pid_file, state.pid)?;
        }
        let report = created.start()?.wait()?;
        Ok::<i32, OciError>(report.exit_code())
    })();
    let _ = lock.remove();
    outcome
}

/// Sends `signal` to the container's process (`all`: to every process in its cgroup).
/// An unknown id is [`OciError::NotExist`].
pub fn kill(store: &StateStore, id: &str, signal: i32, all: bool) -> Result<(), OciError> {
    must_exist(store, id)?;
    let state = store.load(id)?;
    if state.current_status() == Status::Stopped {
        return Err(OciError::NotRunning);
    }
    let signal = Signal::try_from(signal).map_err(|_| OciError::BadSignal { signal })?;
    let mut pids = vec![state.pid];
    if all {
        pids.extend(cgroup_pids(&state));
    }
    for pid in pids {
        match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => {
                return Err(OciError::Io {
                    what: "signal the container's process",
                    path: PathBuf::from(format!("/proc/{pid}")),
                    source: errno.into(),
                })
            }
        }
    }
    Ok(())
}

/// The pids in the container's cgroup directories.
fn cgroup_pids(state: &ContainerState) -> Vec<i32> {
    let mut pids: Vec<i32> = state
        .crabcan
        .cgroup_paths
        .iter()
        .filter_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
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
    let lock = store.lock(id)?;
    let state = lock.load()?;
    let status = state.current_status();
    if status != Status::Stopped && !force {
        return Err(OciError::WrongState {
            id: id.to_owned(),
            status,
            wanted: "stopped (or use --force)",
        });
    }
    kill_and_clean(&state);
    lock.remove()
}

/// Kills what is left of the container and removes its cgroup. Best effort: what cannot be
/// removed now is left for the next `delete`.
fn kill_and_clean(state: &ContainerState) {
    if state.current_status() != Status::Stopped {
        let _ = nix::sys::signal::kill(Pid::from_raw(state.pid), Signal::SIGKILL);
    }
    let Some(path) = &state.crabcan.cgroup_path else {
        return;
    };
    let Ok(host) = CgroupHost::detect() else {
        return;
    };
    if let Ok(cgroup) = ContainerCgroup::open_at(&host, path) {
        if let Err(error) = cgroup.remove() {
            log::warn!("cannot remove the cgroup of container {}: {error}", state.id);
        }
    }
    // The container's first process is the engine's child (or init's): it reaps it; wait until
    // it is gone so a following create of the same id finds nothing of this one.
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    while process_alive(state.pid) && state.current_status() != Status::Stopped && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs a new process in a created or running container: its exit code (128+N for signal N),
/// or 0 once it has exec'd with `--detach`. This process must run from a sealed copy of
/// crabcan ([`crate::sealed_exe::reexec_sealed`]), and be single-threaded. It never joins the
/// container itself: a process it forks does. Descriptors 3 to 3+`preserve_fds`-1 pass to
/// the new process (a number among them that is closed here gets a close-on-exec `/dev/null`
/// placeholder, so nothing of crabcan's takes it).
pub fn exec(store: &StateStore, id: &str, options: &ExecOptions) -> Result<i32, OciError> {
    super::exec::exec(store, id, options)
}

/// The host pids of the container's processes.
pub fn ps(store: &StateStore, id: &str) -> Result<Vec<i32>, OciError> {
    must_exist(store, id)?;
    let state = store.load(id)?;
    if state.current_status() == Status::Stopped {
        return Ok(Vec::new());
    }
    let mut pids = cgroup_pids(&state);
    if pids.is_empty() && state.pid > 0 {
        pids.push(state.pid);
    }
    Ok(pids)
}

/// Freezes every process of the container (its cgroup's freezer).
pub fn pause(store: &StateStore, id: &str) -> Result<(), OciError> {
    set_frozen(store, id, true)
}

/// Thaws a paused container.
pub fn resume(store: &StateStore, id: &str) -> Result<(), OciError> {
    set_frozen(store, id, false)
}

fn set_frozen(store: &StateStore, id: &str, frozen: bool) -> Result<(), OciError> {
    must_exist(store, id)?;
    let lock = store.lock(id)?;
    let mut state = lock.load()?;
    let (wanted, now) = if frozen {
        (Status::Running, Status::Paused)
    } else {
        (Status::Paused, Status::Running)
    };
    match state.current_status() {
        Status::Stopped => return Err(OciError::NotRunning),
        status if status != wanted => {
            return Err(OciError::WrongState {
                id: id.to_owned(),
                status,
                wanted: if frozen { "running" } else { "paused" },
            })
        }
        _ => {}
    }
    let path = state.crabcan.cgroup_path.clone().ok_or_else(|| OciError::Unsupported {
        field: "linux.cgroupsPath".into(),
        why: "a container without a cgroup (--cgroup-manager disabled) cannot be paused".into(),
    })?;
    let cgroup = ContainerCgroup::open_at(&CgroupHost::detect()?, &path)?;
    if frozen {
        cgroup.freeze()?;
    } else {
        cgroup.thaw()?;
    }
    state.status = now;
    lock.save(&state)
}

/// [`OciError::NotExist`] unless container `id` exists.
pub(super) fn must_exist(store: &StateStore, id: &str) -> Result<(), OciError> {
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
        let missing = CreateOptions {
            bundle: root.join("no-bundle"),
            ..CreateOptions::default()
        };
        assert!(matches!(create(&store, "x", &missing), Err(OciError::Io { .. })));
        assert!(!root.exists(), "a failed create leaves no state");
        assert_eq!(
            pause(&store, "nope").unwrap_err().to_string(),
            "container \"nope\" does not exist"
        );
        let refused = CgroupManager::Systemd.check("create", "--systemd-cgroup").unwrap_err();
        assert!(refused.to_string().contains("systemd"), "{refused}");
    }
}
