//! The container lifecycle behind the OCI command line: `create`, `start`, `run`, `kill`,
//! `delete`, `exec`, `ps`, `pause`, `resume`, `events`, `update`. Each takes the
//! [`StateStore`] of `--root` and a container id; none prints anything.
//!
//! `create` (detached: the container's process survives crabcan, held on a FIFO in its state
//! folder), `start`, `run`, `kill`, `delete`, `exec` (in `oci/exec.rs`), `ps`, `pause` and
//! `resume` work. `events` and `update` live in [`super::resources`].
//!
//! The bundle's hooks run where the runtime spec puts them: `prestart`, `createRuntime`,
//! `createContainer` and `startContainer` in crabcan-core (a failure fails `create` or `start`
//! and leaves nothing), `poststart` in `start` (and `run`) once the program runs, `poststop`
//! in `delete` (and at the end of `run`, and after a `create` that failed); a failure of
//! those two is a warning and the operation goes on. They are kept in the state folder at
//! `create`: the bundle is never read again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crabcan_cgroups::ContainerCgroup;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::bundle::{self, Bundle};
pub use super::resources::{events, update, EventsOptions, UpdateOptions};
use super::state::{process_start_time, validate_id, ContainerLock, ContainerState, StateStore, Status};
use super::OciError;
use crate::config::{SessionKeyring, StartGate};
use crate::container::DetachedContainer;
use crate::hooks::{self, HookKind};

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
    /// Use `chroot`-like `MS_MOVE` instead of `pivot_root` (`--no-pivot`): refused, as
    /// chroot would leave the host's root reachable.
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
    // First, before crabcan opens anything: a gap among the descriptors to pass would be
    // taken by one of crabcan's own, which the container would then get.
    let passed = PassedFds::from_caller(options.preserve_fds)?;
    validate_id(id)?;
    refuse_options(options)?;
    let bundle_dir = absolute(&options.bundle)?;
    let mut bundle = bundle::load(&bundle_dir)?;
    if bundle.terminal && options.console_socket.is_none() {
        return Err(OciError::Unsupported {
            field: "process.terminal".into(),
            why: "cannot allocate a terminal for a detached container without --console-socket".into(),
        });
    }
    let mut state = new_state(id, &bundle_dir, &mut bundle, options, &passed)?;
    let lock = store.create(&state)?;
    let created = set_up(&lock, &mut bundle, options).and_then(|(detached, _placed)| {
        state.pid = detached.pid;
        state.status = Status::Created;
        state.crabcan.cgroup_paths = detached.cgroup_paths;
        // Where the cgroup really is: an ordinary user's goes in its delegated subtree, or
        // there is none.
        state.crabcan.cgroup_path = detached.cgroup_path;
        state.crabcan.cgroup_base = detached.cgroup_base;
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
        // The spec's lifecycle goes on to delete, whose poststop hooks run.
        run_poststop_hooks(&state);
        return Err(error);
    }
    Ok(())
}

/// The state of a container about to be created from `bundle`, and what the bundle's
/// configuration gets from it and from the options: the state its hooks see, the session
/// keyring runc names after the id (none with `--no-new-keyring`), the descriptors passed.
fn new_state(
    id: &str,
    bundle_dir: &Path,
    bundle: &mut Bundle,
    options: &CreateOptions,
    passed: &PassedFds,
) -> Result<ContainerState, OciError> {
    let mut state = ContainerState::new(id, bundle_dir, &bundle.config.rootfs);
    state.annotations = bundle.annotations.clone();
    state.crabcan.poststart = bundle.poststart.clone();
    state.crabcan.poststop = bundle.poststop.clone();
    let config = &mut bundle.config;
    config.hooks.state = hook_state(&state)?;
    config.session_keyring = match options.no_new_keyring {
        true => SessionKeyring::Inherit,
        false => SessionKeyring::New {
            name: Some(format!("_ses.{id}")),
        },
    };
    config.preserved_fds = passed.count();
    config.env.extend(passed.environment());
    Ok(state)
}

/// The descriptors of crabcan's caller that the container's process gets, from 3 up, as
/// runc passes them: those of socket activation first (`LISTEN_FDS`, when `LISTEN_PID` is this
/// process), then `--preserve-fds` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PassedFds {
    listen: u32,
    preserved: u32,
}

impl PassedFds {
    /// Reads socket activation's variables and checks every descriptor is open.
    fn from_caller(preserve_fds: u32) -> Result<PassedFds, OciError> {
        let number = |name: &str| std::env::var(name).ok().and_then(|value| value.parse::<u32>().ok());
        let listen = match number("LISTEN_PID") == Some(std::process::id()) {
            true => number("LISTEN_FDS").unwrap_or(0),
            false => 0,
        };
        let passed = PassedFds {
            listen,
            preserved: preserve_fds,
        };
        crate::config::validate_preserved_fds(passed.count()).map_err(crate::Error::from)?;
        Ok(passed)
    }

    fn count(&self) -> u32 {
        self.listen.saturating_add(self.preserved)
    }

    /// What the container's program is told of socket activation (it is pid 1 of its pid
    /// namespace).
    fn environment(&self) -> Vec<(String, String)> {
        if self.listen == 0 {
            return Vec::new();
        }
        vec![
            ("LISTEN_FDS".to_owned(), self.listen.to_string()),
            ("LISTEN_PID".to_owned(), "1".to_owned()),
        ]
    }
}

/// What every hook of the container gets on stdin: what `state` prints (crabcan-core fills
/// in the pid and status of the moment).
fn hook_state(state: &ContainerState) -> Result<serde_json::Map<String, serde_json::Value>, OciError> {
    match serde_json::to_value(state.report()) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Ok(serde_json::Map::new()),
        Err(source) => Err(OciError::Encode {
            what: "the state for the hooks",
            source,
        }),
    }
}

/// Runs the `poststart` hooks kept in `state` (the program runs: status `running`, its pid,
/// even if it has exited already) or its `poststop` hooks (status `stopped`, pid 0, as `state`
/// shows a stopped container). A failure is a warning, the spec's rule for these two, and
/// the other hooks still run.
fn run_warning_hooks(kind: HookKind, state: &ContainerState) {
    let (hooks, status, pid) = match kind {
        HookKind::Poststart => (&state.crabcan.poststart, Status::Running, state.pid),
        _ => (&state.crabcan.poststop, Status::Stopped, 0),
    };
    if hooks.is_empty() {
        return;
    }
    let mut report = state.report();
    report.status = status;
    report.pid = pid;
    let input = match serde_json::to_vec(&report) {
        Ok(input) => input,
        Err(error) => {
            log::warn!(
                "cannot encode the state of container {} for its {kind} hooks: {error}",
                state.id
            );
            return;
        }
    };
    for hook in hooks {
        if let Err(error) = hooks::run_hook(kind, hook, &input) {
            log::warn!("container {}: {error}", state.id);
        }
    }
}

fn run_poststop_hooks(state: &ContainerState) {
    run_warning_hooks(HookKind::Poststop, state);
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
    record_confinement(lock, &bundle.config)?;
    let mut created = crate::create(bundle.config.clone())?;
    if let (true, Some(socket)) = (bundle.terminal, &options.console_socket) {
        let master = created.take_pty_master().ok_or_else(|| OciError::Unsupported {
            field: "process.terminal".into(),
            why: "the container process sent no pty".into(),
        })?;
        if let Some((rows, columns)) = bundle.console_size {
            set_window_size(&master, rows, columns);
        }
        send_console(socket, &master)?;
    }
    if let Some(socket) = &options.pidfd_socket {
        send_pidfd(socket, created.pid().unwrap_or(0))?;
    }
    Ok((created.detach()?, cgroup_path))
}

/// Hands the container's pty master to whoever listens on `socket`, as runc does: one message,
/// the pty's name as its payload and the master as its one `SCM_RIGHTS` descriptor.
pub(crate) fn send_console(socket: &Path, master: &std::os::fd::OwnedFd) -> Result<(), OciError> {
    use std::os::fd::AsRawFd;
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the pty's number into `number`, valid for the call.
    let name = match unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) } {
        0 => format!("/dev/pts/{number}"),
        _ => "/dev/ptmx".to_owned(),
    };
    send_fd(socket, "console", &name, master)
}

/// Gives the pty of `master` the size `process.consoleSize` asks for. Best effort, as runc: a
/// failure leaves the kernel's default size, which the engine's first resize replaces.
fn set_window_size(master: &std::os::fd::OwnedFd, rows: u16, columns: u16) {
    use std::os::fd::AsRawFd;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid for the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
        log::warn!(
            "cannot set the terminal size {columns}x{rows}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Hands a pidfd of the container's process (`pid`) to whoever listens on `socket`
/// (`--pidfd-socket`, runc 1.2's): one message, "standard" as its payload, as runc's init
/// sends it. The pidfd stays valid, and names that process, whatever happens to the pid.
pub(crate) fn send_pidfd(socket: &Path, pid: i32) -> Result<(), OciError> {
    let pidfd = u32::try_from(pid)
        .map_err(|_| nix::errno::Errno::ESRCH)
        .and_then(hooks::pidfd_open)
        .map_err(|errno| OciError::Io {
            what: "pidfd_open the container's process for",
            path: socket.to_owned(),
            source: errno.into(),
        })?;
    send_fd(socket, "pidfd", "standard", &pidfd)
}

/// Connects to the unix socket `socket` and sends one message: `payload`, and `fd` as its one
/// `SCM_RIGHTS` descriptor. `what` names the socket in errors ("console", "pidfd").
fn send_fd(socket: &Path, what: &'static str, payload: &str, fd: &impl std::os::fd::AsRawFd) -> Result<(), OciError> {
    use std::os::fd::AsRawFd;
    let io = |action: &str, source: std::io::Error| OciError::SocketIo {
        what,
        action: action.to_owned(),
        path: socket.to_owned(),
        source,
    };
    let stream = std::os::unix::net::UnixStream::connect(socket).map_err(|source| io("connect to", source))?;
    let iov = [std::io::IoSlice::new(payload.as_bytes())];
    let fds = [fd.as_raw_fd()];
    let control = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &control,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(|errno| io("sendmsg(SCM_RIGHTS) to", errno.into()))
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

/// The delegated subtree an ordinary user's cgroup is in (none for root's).
pub(crate) fn cgroup_base(cgroup: &ContainerCgroup) -> Option<PathBuf> {
    let base = cgroup.v2_base();
    (!base.as_os_str().is_empty()).then(|| base.to_owned())
}

/// What crabcan does not implement of `create`'s options: an error naming the option.
///
/// `--no-pivot` (runc's MS_MOVE of the rootfs onto `/` and chroot) stays refused: runc offers
/// it for a host whose root is an initramfs, where pivot_root fails; crabcan binds the rootfs
/// onto itself and pivots onto it, which works on every other root, and under chroot the
/// host's root stays in the container's mount namespace, a chroot escape away for a process
/// with CAP_SYS_CHROOT (Docker's and podman's default capabilities have it).
fn refuse_options(options: &CreateOptions) -> Result<(), OciError> {
    if options.no_pivot {
        return Err(OciError::Unsupported {
            field: "--no-pivot".into(),
            why: "crabcan always uses pivot_root (chroot would leave the host's root reachable); on a host whose root is an initramfs, switch_root to a tmpfs first".into(),
        });
    }
    Ok(())
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
    let released = release(&fifo, state.pid);
    let _ = std::fs::remove_file(&fifo);
    match released? {
        Released::Execed => {}
        Released::Failed(detail) => {
            return Err(OciError::StartFailed {
                id: id.to_owned(),
                detail,
            })
        }
    }
    state.status = Status::Running;
    lock.save(&state)?;
    // Unlocked first: a hook may well call crabcan on this container.
    drop(lock);
    run_warning_hooks(HookKind::Poststart, &state);
    Ok(())
}

/// What the container's process said through the start FIFO once released.
#[derive(Debug, PartialEq, Eq)]
enum Released {
    /// It reached execve (the FIFO closed on it).
    Execed,
    /// It failed before (a `startContainer` hook, say), and said why.
    Failed(String),
}

/// The most a container's process says through the start FIFO.
const FIFO_MESSAGE_BYTES: usize = 4096;

/// Opens the start FIFO for reading, which lets the container's process (blocked opening it
/// for writing) go on; it writes `0`, runs its `startContainer` hooks and execs, which closes
/// its end (close-on-exec), or writes why it failed and exits. Reads until that end, waiting
/// on the FIFO and a pidfd of the process together, so a process that dies is noticed at once
/// and a slow hook is waited for, with no polling interval or timeout of crabcan's own.
fn release(fifo: &Path, pid: i32) -> Result<Released, OciError> {
    use std::os::fd::AsFd;
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
    let process = match u32::try_from(pid).map_err(|_| Errno::ESRCH).and_then(hooks::pidfd_open) {
        Ok(process) => process,
        Err(Errno::ESRCH) => return Err(OciError::NotRunning),
        Err(errno) => {
            return Err(OciError::Io {
                what: "pidfd_open the container's process, to wait on",
                path: fifo.to_owned(),
                source: errno.into(),
            })
        }
    };
    let mut said = Vec::new();
    let mut gone = false;
    loop {
        let mut fds = [
            PollFd::new(file.as_fd(), PollFlags::POLLIN),
            PollFd::new(process.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(io("poll the start FIFO", errno.into())),
        }
        gone |= fds[1].revents().is_some_and(|events| !events.is_empty());
        let mut buffer = [0u8; 512];
        let ended = loop {
            match nix::unistd::read(&file, &mut buffer) {
                // No writer: it has not opened the FIFO yet, or it closed it.
                Ok(0) => break !said.is_empty(),
                Ok(n) => {
                    let room = FIFO_MESSAGE_BYTES.saturating_sub(said.len());
                    said.extend_from_slice(&buffer[..n.min(room)]);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break false,
                Err(errno) => return Err(io("read the start FIFO", errno.into())),
            }
        };
        // A process that is gone has written all it ever will.
        if ended || gone {
            break;
        }
    }
    match said.split_first() {
        None => Err(OciError::NotRunning),
        Some((b'0', [])) => Ok(Released::Execed),
        Some((b'0', failure)) => Ok(Released::Failed(String::from_utf8_lossy(failure).trim().to_owned())),
        Some(_) => Ok(Released::Failed(String::from_utf8_lossy(&said).trim().to_owned())),
    }
}

/// How long `delete` waits for a killed container's process to be gone.
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
    let passed = PassedFds::from_caller(options.preserve_fds)?;
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
    let mut state = new_state(id, &bundle_dir, &mut bundle, options, &passed)?;
    let lock = store.create(&state)?;
    let cgroup_path = place_cgroup(&mut bundle, id, options.cgroup_manager);
    let config = &bundle.config;
    let outcome = (|| {
        super::exec::save_config(lock.dir(), &bundle.source)?;
        record_confinement(&lock, config)?;
        let created = crate::create(config.clone())?;
        state.pid = created.pid().unwrap_or(0);
        state.status = Status::Created;
        // Where the cgroup really is: an ordinary user's goes in its delegated subtree, or
        // there is none.
        state.crabcan.cgroup_path = cgroup_path.and(created.cgroup().map(|c| c.relative_path().to_owned()));
        state.crabcan.cgroup_base = created.cgroup().and_then(cgroup_base);
        state.crabcan.cgroup_paths = created.cgroup().map(|c| c.paths()).unwrap_or_default();
        state.crabcan.init_start_time = process_start_time(state.pid);
        lock.save(&state)?;
        if let Some(socket) = &options.pidfd_socket {
            send_pidfd(socket, state.pid)?;
        }
        if let Some(pid_file) = &options.pid_file {
            write_pid_file(pid_file, state.pid)?;
        }
        let running = created.start()?;
        state.status = Status::Running;
        lock.save(&state)?;
        run_warning_hooks(HookKind::Poststart, &state);
        let report = running.wait()?;
        Ok::<i32, OciError>(report.exit_code())
    })();
    let _ = lock.remove();
    run_poststop_hooks(&state);
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
    lock.remove()?;
    run_poststop_hooks(&state);
    Ok(())
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
    let Ok(host) = state.cgroup_host() else {
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

/// The file of a container's state folder that holds its confinement, for [`explain`].
const CONFINEMENT_FILE: &str = "confinement.json";

/// Writes the confinement `config` gives into the container's state folder (atomically). A
/// configuration it cannot explain is created all the same (creating it reports what is
/// wrong, if anything), with a warning: `explain` then finds no record.
fn record_confinement(lock: &ContainerLock, config: &crate::ContainerConfig) -> Result<(), OciError> {
    let confinement = match crate::explain(config.clone()) {
        Ok(confinement) => confinement,
        Err(error) => {
            log::warn!(
                "cannot record the confinement of container {} for `explain`: {error}",
                lock.id()
            );
            return Ok(());
        }
    };
    let text = serde_json::to_vec(&confinement).map_err(|source| OciError::Encode {
        what: "the confinement",
        source,
    })?;
    let path = lock.dir().join(CONFINEMENT_FILE);
    let temp = lock.dir().join(format!(".{CONFINEMENT_FILE}.tmp"));
    std::fs::write(&temp, text)
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|source| OciError::io("write the confinement", &path, source))
}

/// The confinement a created or running container got, as recorded when it was created.
pub fn explain(store: &StateStore, id: &str) -> Result<crate::Confinement, OciError> {
    must_exist(store, id)?;
    let path = store.container_dir(id)?.join(CONFINEMENT_FILE);
    let text = std::fs::read(&path)
        .map_err(|source| OciError::io("read the confinement recorded at create", &path, source))?;
    serde_json::from_slice(&text).map_err(|source| OciError::CorruptState {
        id: id.to_owned(),
        path,
        source,
    })
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
        why: "a container without a cgroup (--cgroup-manager disabled, or an ordinary user's without a delegated cgroup v2 subtree) cannot be paused".into(),
    })?;
    let cgroup = ContainerCgroup::open_at(&state.cgroup_host()?, &path)?;
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
