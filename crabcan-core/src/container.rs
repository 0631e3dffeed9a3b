//! The parent's side of a container's life: create (validate, cgroup, clone, id maps, handshake
//! up to a process held before execve), start (release it), wait (forward signals, relay the
//! pty, reap), and clean up on every path. Dropping a [`Container`] at any point kills its
//! process and removes its cgroup; its mounts live only in its own mount namespace and vanish
//! with it, and it never creates a directory on the host.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crabcan_cgroups::{CgroupHost, ContainerCgroup, Layout, Stats};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use std::path::Path;

use crate::config::{ContainerConfig, IdMapping, StartGate};
use crate::error::{ConfigError, Error, Result};
use crate::handshake::{Channel, Message, Received};
use crate::id_ranges::{self, IdFiles, IdKind, IdLease};
use crate::idmap;
use crate::namespaces::{
    clone_flags, clone_into_namespaces, clone_into_namespaces_and_cgroup, write_id_maps, CloneResult,
};
use crate::signals::{self, BlockedSignals};
use crate::spec::IdRange;
use crate::{child, terminal};

/// How the container's first process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

/// What crabcan knows after the container is gone.
#[derive(Debug, Clone)]
pub struct ExitReport {
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process of the container (the command itself, or any
    /// other: see [`ExitReport::command_oom_killed`]), like Docker's `OOMKilled`.
    pub oom_killed: bool,
    /// The memory limit that was in force, in bytes.
    pub memory_limit: Option<u64>,
    /// Resource use read from the cgroup just before it was removed (when
    /// `ContainerConfig::collect_stats` asked for it).
    pub stats: Option<Stats>,
}

impl ExitReport {
    /// The status a CLI exits with: the command's own, 128+N for signal N (137 for an OOM kill
    /// of the command). A process of the container that the OOM killer ended while the
    /// command went on does not change it.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => 128 + signal,
        }
    }

    /// Whether the command died of SIGSYS, the signal of a seccomp filter's `KILL` action.
    pub fn killed_by_seccomp(&self) -> bool {
        self.status == ExitStatus::Signaled(Signal::SIGSYS as i32)
    }

    /// Whether the command itself died of an OOM kill (SIGKILL while the cgroup saw one).
    pub fn command_oom_killed(&self) -> bool {
        self.oom_killed && self.status == ExitStatus::Signaled(Signal::SIGKILL as i32)
    }
}

/// A container whose first process exists, set up and held before execve (after
/// [`Container::create`]) or running the command (after [`Container::start`]).
pub struct Container {
    hostname: String,
    child: Option<Pid>,
    channel: Channel,
    cgroup: Option<ContainerCgroup>,
    memory_limit: Option<u64>,
    collect_stats: bool,
    /// The container's host ids (and, for [`IdMapping::Auto`], their lease).
    host_ids: HostIds,
    /// Released through a FIFO by another process rather than by `start`.
    fifo_gate: bool,
    /// Released, but execve's outcome not yet read from the handshake socket.
    awaiting_exec: bool,
    exec_error: Option<Error>,
    pty_master: Option<OwnedFd>,
    // Declared last: the signal mask comes back only after the child is reaped.
    _blocked: BlockedSignals,
}

/// Creates, starts and waits for a container: what `crabcan --mount DIR --command CMD` does.
pub fn run(config: ContainerConfig) -> Result<ExitReport> {
    let mut container = Container::create(config)?;
    container.start()?;
    container.wait()
}

impl Container {
    /// Validates `config`, creates the cgroup, clones the process into its namespaces and takes
    /// it through its whole setup. On return the process is held just before execve.
    ///
    /// Must be called from a single-threaded process (checked): the container process is a
    /// fork-like clone of the caller.
    pub fn create(config: ContainerConfig) -> Result<Container> {
        let config = config.validate()?;
        check_privileges()?;
        check_single_threaded()?;
        let host_ids = HostIds::choose(&config.id_mapping)?;
        log::debug!(
            "configuration checked; container ids are host uids {} and gids {}",
            host_ids.uid_map,
            host_ids.gid_map
        );
        // The host's cgroup mounts, read once. On cgroup v2 the cgroup exists before the clone,
        // which puts the child straight into it; elsewhere it is made while the child sets up
        // its filesystem.
        let cgroup_host = match config.limits {
            Some(_) => Some(CgroupHost::detect()?),
            None => None,
        };
        let cgroup = match &cgroup_host {
            Some(host) if host.layout() == Layout::V2 => create_cgroup(host, &config)?,
            _ => None,
        };
        let (parent_end, child_end) =
            Channel::pair().map_err(|errno| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", errno))?;
        let blocked = BlockedSignals::block().map_err(|errno| Error::sys("sigprocmask", errno))?;
        log::debug!("cloning into new namespaces (hostname {})", config.hostname);
        let (cloned, born_in_cgroup) = clone_child(cgroup.as_ref());
        let child = match cloned {
            Ok(CloneResult::Child) => {
                drop(parent_end);
                child::run(&config, cgroup_host.as_ref().map(CgroupHost::layout), child_end)
            }
            Ok(CloneResult::Parent { child }) => child,
            Err(errno) => {
                return Err(Error::sys(
                    "clone(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWNET)",
                    errno,
                ))
            }
        };
        drop(child_end);
        let mut container = Container {
            hostname: config.hostname.clone(),
            child: Some(child),
            channel: parent_end,
            memory_limit: config.limits.as_ref().and_then(|limits| limits.memory),
            collect_stats: config.collect_stats,
            host_ids,
            fifo_gate: matches!(config.start_gate, StartGate::Fifo(_)),
            awaiting_exec: false,
            exec_error: None,
            cgroup,
            pty_master: None,
            _blocked: blocked,
        };
        container.set_up_child(&config, child, born_in_cgroup, cgroup_host.as_ref())?;
        Ok(container)
    }

    /// The container's first process, as seen from the host.
    pub fn pid(&self) -> Option<i32> {
        self.child.map(Pid::as_raw)
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The container's cgroup, if it has one.
    pub fn cgroup(&self) -> Option<&ContainerCgroup> {
        self.cgroup.as_ref()
    }

    fn set_up_child(
        &mut self,
        config: &ContainerConfig,
        child: Pid,
        born_in_cgroup: bool,
        cgroup_host: Option<&CgroupHost>,
    ) -> Result<()> {
        write_id_maps(child, &self.host_ids.uid_map, &self.host_ids.gid_map)
            .map_err(|(what, errno)| Error::sys(what, errno))?;
        log::debug!("id maps written for pid {child}");
        let trees = idmap::make_trees(child, config, &idmap::wanted(config));
        let tree_fds: Vec<i32> = trees.fds.iter().map(AsRawFd::as_raw_fd).collect();
        let go = Message::Go {
            idmapped: trees.idmapped.clone(),
        };
        if let Err(errno) = self.channel.send_with_fds(&go, &tree_fds) {
            return Err(self.setup_failure(Error::sys("sending Go to the container", errno)));
        }
        drop(trees);
        if let (None, Some(host)) = (&self.cgroup, cgroup_host) {
            self.cgroup = create_cgroup(host, config)?;
        }
        let mut tasks_files = None;
        if let (Some(cgroup), false) = (&self.cgroup, born_in_cgroup) {
            tasks_files = cgroup.open_self_join()?;
            if tasks_files.is_none() {
                cgroup.add_task(child.as_raw())?;
                log::debug!("pid {child} moved into its cgroup");
            }
        }
        let fds = tasks_files.as_ref().map(|join| join.raw_fds()).unwrap_or_default();
        if let Err(errno) = self.channel.send_with_fds(&Message::Joined, &fds) {
            return Err(self.setup_failure(Error::sys("sending Joined to the container", errno)));
        }
        loop {
            let received = match self.receive() {
                Ok(received) => received,
                Err(error) => return Err(self.setup_failure(error)),
            };
            match received {
                Received::Message(Message::PtyMaster, fds) if fds.len() == 1 => {
                    self.pty_master = fds.into_iter().next()
                }
                Received::Message(Message::Ready, _) => {
                    log::debug!("container set up, held before execve");
                    return Ok(());
                }
                Received::Message(Message::Failed { step, errno, detail }, _) => {
                    return Err(Error::Setup { step, detail, errno })
                }
                Received::Message(other, _) => {
                    return Err(Error::Protocol {
                        detail: format!("{other:?} before Ready"),
                    })
                }
                Received::Closed => return Err(self.child_died()),
            }
        }
    }

    /// Releases the process held before execve. Returns once the command runs (the handshake
    /// socket closes at execve), or with the reason it could not be executed.
    ///
    /// With a [`StartGate::Fifo`], crabcan does not release the process itself: whoever opens
    /// the FIFO does, and [`Container::wait`] reports an exec failure then.
    pub fn start(&mut self) -> Result<()> {
        if self.fifo_gate {
            self.awaiting_exec = true;
            return Ok(());
        }
        if let Some(master) = &self.pty_master {
            match_caller_window_size(master);
        }
        self.channel
            .send(&Message::Start)
            .map_err(|errno| Error::sys("sending Start to the container", errno))?;
        let received = self.receive()?;
        exec_outcome(received)
    }

    /// Waits for the command to end, forwarding signals and relaying the pty meanwhile, then
    /// removes the cgroup and reports.
    pub fn wait(mut self) -> Result<ExitReport> {
        let status = self.event_loop()?;
        log::debug!("command ended: {status:?}");
        if let Some(error) = self.exec_error.take() {
            return Err(error);
        }
        let oom_killed = self.cgroup.as_ref().is_some_and(ContainerCgroup::oom_killed);
        let stats = if self.collect_stats {
            self.cgroup.as_ref().map(ContainerCgroup::stats)
        } else {
            None
        };
        if let Some(cgroup) = self.cgroup.take() {
            cgroup.remove()?;
            log::debug!("cgroup removed");
        }
        Ok(ExitReport {
            status,
            oom_killed,
            memory_limit: self.memory_limit,
            stats,
        })
    }

    fn event_loop(&mut self) -> Result<ExitStatus> {
        let Some(child) = self.child else {
            return Err(Error::Protocol {
                detail: "the container has no process to wait for".into(),
            });
        };
        let signal_fd = SignalFd::with_flags(&signals::handled(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|errno| Error::sys("signalfd", errno))?;
        let master = self.pty_master.take();
        let mut relay = master.as_ref().map(|master| PtyRelay::new(master.as_fd()));
        // A signal whose default action crabcan applied for the container's init (see
        // `handle_signals`): the exit status reports it rather than the SIGKILL that did it.
        let mut emulated_signal: Option<Signal> = None;
        loop {
            if let Some(mut status) = self.reap(child, WaitPidFlag::WNOHANG)? {
                if let (ExitStatus::Signaled(9), Some(signal)) = (status, emulated_signal) {
                    status = ExitStatus::Signaled(signal as i32);
                }
                if let Some(relay) = relay.as_mut() {
                    relay.drain();
                }
                if self.awaiting_exec {
                    // The peer is gone, so this read cannot block: it is the exec failure, or EOF.
                    self.note_exec_outcome();
                }
                return Ok(status);
            }
            let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
            if self.awaiting_exec {
                fds.push(PollFd::new(self.channel.as_fd(), PollFlags::POLLIN));
            }
            if let Some(relay) = relay.as_ref() {
                relay.add_poll_fds(&mut fds);
            }
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => return Err(Error::sys("poll", errno)),
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if ready[0] {
                if let Some(signal) = handle_signals(&signal_fd, child, master.as_ref()) {
                    emulated_signal = Some(signal);
                }
            }
            let mut next = 1;
            if self.awaiting_exec {
                if ready[1] {
                    self.note_exec_outcome();
                }
                next = 2;
            }
            if let Some(relay) = relay.as_mut() {
                relay.pump(&ready[next..]);
            }
        }
    }

    /// Reaps the child if it has ended.
    fn reap(&mut self, child: Pid, flags: WaitPidFlag) -> Result<Option<ExitStatus>> {
        let status = loop {
            match waitpid(child, Some(flags)) {
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(Error::sys(format!("waitpid({child})"), errno)),
                Ok(status) => break status,
            }
        };
        let exit = match status {
            WaitStatus::Exited(_, code) => ExitStatus::Exited(code),
            WaitStatus::Signaled(_, signal, _) => ExitStatus::Signaled(signal as i32),
            _ => return Ok(None),
        };
        self.child = None;
        Ok(Some(exit))
    }

    /// A FIFO-gated container was released (or failed to exec) while crabcan waited.
    fn note_exec_outcome(&mut self) {
        self.awaiting_exec = false;
        match self.receive().and_then(exec_outcome) {
            Ok(()) => {}
            Err(error) => self.exec_error = Some(error),
        }
    }

    fn receive(&self) -> Result<Received> {
        self.channel.receive().map_err(|detail| Error::Protocol { detail })
    }

    /// The conversation with the child broke during setup (`broken`: a send or receive that
    /// failed). The child's own report is what the user needs: it failed a step, sent why and
    /// exited, and its exit broke the socket. So read what it left in the socket first; only
    /// if it left nothing, say how it died.
    fn setup_failure(&mut self, broken: Error) -> Error {
        match self.receive() {
            Ok(Received::Message(Message::Failed { step, errno, detail }, _)) => Error::Setup { step, detail, errno },
            Ok(Received::Closed) | Err(_) if self.child.is_some() => self.child_died(),
            _ => broken,
        }
    }

    /// The child closed the socket during setup without a message: reap it and say how it died.
    fn child_died(&mut self) -> Error {
        let how = match self.child.map(|child| self.reap(child, WaitPidFlag::empty())) {
            Some(Ok(Some(ExitStatus::Exited(code)))) => format!("it exited with status {code}"),
            Some(Ok(Some(ExitStatus::Signaled(signal)))) => {
                let oom = self.cgroup.as_ref().is_some_and(ContainerCgroup::oom_killed);
                if signal == Signal::SIGKILL as i32 && oom {
                    return Error::SetupOutOfMemory {
                        limit: self.memory_limit,
                    };
                }
                format!(
                    "it was killed by {}",
                    Signal::try_from(signal).map(|s| s.as_str()).unwrap_or("a signal")
                )
            }
            _ => "its status is unknown".to_owned(),
        };
        Error::ChildDied { how }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
        }
        if let Some(cgroup) = self.cgroup.take() {
            if let Err(error) = cgroup.remove() {
                log::warn!("could not remove the cgroup of {}: {error}", self.hostname);
            }
        }
    }
}

/// What the handshake socket says after the release: closed at execve, or why exec failed.
fn exec_outcome(received: Received) -> Result<()> {
    match received {
        Received::Closed => {
            log::debug!("command started");
            Ok(())
        }
        Received::Message(Message::Failed { step, detail, .. }, _) if step == child::EXEC_INTERPRETER_STEP => {
            let (command, interpreter) = detail.split_once('\n').unwrap_or((detail.as_str(), ""));
            Err(Error::InterpreterMissing {
                command: command.to_owned(),
                interpreter: interpreter.to_owned(),
            })
        }
        Received::Message(Message::Failed { step, errno, detail }, _) if step == "exec" => {
            let errno = Errno::from_raw(errno);
            Err(match errno {
                Errno::ENOENT | Errno::ENOTDIR => Error::CommandNotFound { command: detail },
                _ => Error::CommandNotExecutable { command: detail, errno },
            })
        }
        Received::Message(Message::Failed { step, errno, detail }, _) => Err(Error::Setup { step, detail, errno }),
        Received::Message(other, _) => Err(Error::Protocol {
            detail: format!("{other:?} after Start"),
        }),
    }
}

/// Forwards what arrived on the signalfd; SIGWINCH resizes the pty, SIGCHLD just wakes us.
/// Where the container's first process would discard the signal (see
/// [`signals::init_would_discard`]: it has the default action, which the kernel never applies
/// to a pid namespace's init) crabcan applies that default action itself: the forwarded signals
/// all terminate by default, so it kills the process, and returns the signal so the exit status
/// can say 128+N for it. This also covers a container still held before execve.
fn handle_signals(signal_fd: &SignalFd, child: Pid, pty_master: Option<&OwnedFd>) -> Option<Signal> {
    let mut emulated = None;
    while let Ok(Some(info)) = signal_fd.read_signal() {
        let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        match signal {
            Signal::SIGCHLD => {}
            Signal::SIGWINCH => {
                if let Some(master) = pty_master {
                    match_caller_window_size(master);
                }
            }
            forwarded if signals::init_would_discard(child, forwarded) => {
                log::debug!("{forwarded}: the container's init has no handler, so crabcan ends it");
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                emulated = Some(forwarded);
            }
            forwarded => {
                log::debug!("forwarding {forwarded} to the container");
                let _ = nix::sys::signal::kill(child, forwarded);
            }
        }
    }
    emulated
}

/// Clones the container's process: straight into its cgroup where the host has cgroup v2 and
/// the kernel has clone3 (returns true), otherwise with clone(2), to be moved into the cgroup
/// afterwards.
fn clone_child(cgroup: Option<&ContainerCgroup>) -> (std::result::Result<CloneResult, Errno>, bool) {
    let v2_dir = cgroup.and_then(ContainerCgroup::v2_path).and_then(|path| {
        nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()
    });
    if let Some(dir) = &v2_dir {
        match clone_into_namespaces_and_cgroup(clone_flags(), dir.as_fd()) {
            Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL) => {
                log::debug!("clone3(CLONE_INTO_CGROUP) unavailable; using clone")
            }
            result => return (result, true),
        }
    }
    (clone_into_namespaces(clone_flags()), false)
}

/// The host ids of a container: the ranges written to its `uid_map` and `gid_map`.
struct HostIds {
    uid_map: IdRange,
    gid_map: IdRange,
    /// Held while the container lives, for a range from crabcan's pool.
    _lease: Option<IdLease>,
}

impl HostIds {
    /// A private range from the pool for [`IdMapping::Auto`]; the given ranges, once checked
    /// against the host's accounts and subordinate ids, for [`IdMapping::Fixed`].
    fn choose(mapping: &IdMapping) -> Result<HostIds> {
        let files = IdFiles::system();
        match mapping {
            IdMapping::Auto => {
                let lease = id_ranges::allocate(&files, Path::new(id_ranges::DEFAULT_STATE_DIR))?;
                Ok(HostIds {
                    uid_map: lease.uid_map(),
                    gid_map: lease.gid_map(),
                    _lease: Some(lease),
                })
            }
            IdMapping::Fixed { uid_map, gid_map } => {
                let caller = nix::unistd::geteuid().as_raw();
                id_ranges::check_map(uid_map, IdKind::Uid, &files, caller)?;
                id_ranges::check_map(gid_map, IdKind::Gid, &files, caller)?;
                Ok(HostIds {
                    uid_map: *uid_map,
                    gid_map: *gid_map,
                    _lease: None,
                })
            }
        }
    }
}

fn check_privileges() -> Result<(), ConfigError> {
    let has_sys_admin = caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).unwrap_or(false);
    if nix::unistd::geteuid().is_root() && has_sys_admin {
        Ok(())
    } else {
        Err(ConfigError::NotPrivileged)
    }
}

/// The container process is cloned with fork semantics and allocates before execve: another
/// thread holding a lock (malloc's, stderr's) at that moment would deadlock it.
fn check_single_threaded() -> Result<(), ConfigError> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|tasks| tasks.count())
        .unwrap_or(1);
    if threads > 1 {
        return Err(ConfigError::MultiThreaded { threads });
    }
    Ok(())
}

fn create_cgroup(host: &CgroupHost, config: &ContainerConfig) -> Result<Option<ContainerCgroup>> {
    let Some(limits) = &config.limits else {
        return Ok(None);
    };
    match host.remove_stale() {
        Ok(cleanup) => {
            for name in cleanup.removed {
                log::info!("removed the stale cgroup {name} of a crabcan that is gone");
            }
            for (name, error) in cleanup.failed {
                log::warn!("cannot remove stale cgroup {name}: {error}");
            }
        }
        Err(error) => log::warn!("could not look for stale cgroups: {error}"),
    }
    let cgroup = host.create(&config.hostname, limits, config.missing_controllers)?;
    for unapplied in cgroup.unapplied() {
        log::warn!("{}; running without it", unapplied.reason);
    }
    Ok(Some(cgroup))
}

/// Gives the container's pty the window size of crabcan's terminal (at start and on SIGWINCH).
fn match_caller_window_size(master: &OwnedFd) {
    if terminal::is_terminal(0) {
        terminal::copy_window_size(unsafe_borrow(0), master.as_fd());
    }
}

/// Relays bytes between crabcan's stdin/stdout and the container's pty master, with crabcan's
/// terminal in raw mode for as long as the relay lives.
struct PtyRelay<'a> {
    master: BorrowedFd<'a>,
    stdin_open: bool,
    master_open: bool,
    _raw: Option<terminal::RawMode>,
}

impl<'a> PtyRelay<'a> {
    fn new(master: BorrowedFd<'a>) -> PtyRelay<'a> {
        let raw = if terminal::is_terminal(0) {
            terminal::RawMode::enable(unsafe_borrow(0)).ok()
        } else {
            None
        };
        PtyRelay {
            master,
            stdin_open: true,
            master_open: true,
            _raw: raw,
        }
    }

    /// Adds, in order, the master and stdin to the poll set (only those still open).
    fn add_poll_fds(&self, fds: &mut Vec<PollFd<'a>>) {
        if self.master_open {
            fds.push(PollFd::new(self.master, PollFlags::POLLIN));
        }
        if self.stdin_open {
            fds.push(PollFd::new(unsafe_borrow(0), PollFlags::POLLIN));
        }
    }

    fn pump(&mut self, ready: &[bool]) {
        let mut index = 0;
        if self.master_open {
            if ready.get(index).copied().unwrap_or(false) && !copy_once(self.master.as_raw_fd(), 1) {
                self.master_open = false;
            }
            index += 1;
        }
        if self.stdin_open && ready.get(index).copied().unwrap_or(false) && !copy_once(0, self.master.as_raw_fd()) {
            self.stdin_open = false;
        }
    }

    /// Copies what the container wrote before it exited.
    fn drain(&mut self) {
        if !self.master_open {
            return;
        }
        let mut fds = [PollFd::new(self.master, PollFlags::POLLIN)];
        while matches!(nix::poll::poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            if !copy_once(self.master.as_raw_fd(), 1) {
                break;
            }
        }
    }
}

/// Reads once from `from` and writes it all to `to`. False at end of file or on error.
fn copy_once(from: i32, to: i32) -> bool {
    let mut buffer = [0u8; 8192];
    let count = match nix::unistd::read(unsafe_borrow(from), &mut buffer) {
        Ok(0) | Err(_) => return false,
        Ok(count) => count,
    };
    let mut written = 0;
    while written < count {
        match nix::unistd::write(unsafe_borrow(to), &buffer[written..count]) {
            Ok(n) => written += n,
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return false,
        }
    }
    true
}

fn unsafe_borrow(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: only used for fds 0 and 1 and the pty master, which outlive every relay call.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: ExitStatus, oom_killed: bool) -> ExitReport {
        ExitReport {
            status,
            oom_killed,
            memory_limit: None,
            stats: None,
        }
    }

    #[test]
    fn refuses_to_clone_from_a_multi_threaded_process() {
        // libtest runs tests on threads of its own, so this process has several.
        let _keep_a_thread = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(2)));
        let rootfs = crate::test_support::TempTree::new("multi-threaded");
        let result = Container::create(ContainerConfig::new(&*rootfs, vec!["/bin/true".into()]));
        match result {
            Err(Error::Config(ConfigError::MultiThreaded { threads })) => assert!(threads > 1),
            Err(Error::Config(ConfigError::NotPrivileged)) => assert!(!nix::unistd::geteuid().is_root()),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a container was created from a multi-threaded process"),
        }
    }

    #[test]
    fn exit_codes_follow_container_conventions() {
        assert_eq!(report(ExitStatus::Exited(0), false).exit_code(), 0);
        assert_eq!(report(ExitStatus::Exited(3), false).exit_code(), 3);
        assert_eq!(report(ExitStatus::Signaled(9), false).exit_code(), 137);
        assert_eq!(report(ExitStatus::Signaled(15), false).exit_code(), 143);
        assert_eq!(report(ExitStatus::Signaled(9), true).exit_code(), 137);
    }

    #[test]
    fn an_oom_kill_of_another_process_leaves_the_commands_status() {
        let child_killed = report(ExitStatus::Exited(0), true);
        assert_eq!(child_killed.exit_code(), 0);
        assert!(child_killed.oom_killed && !child_killed.command_oom_killed());
        assert_eq!(report(ExitStatus::Exited(3), true).exit_code(), 3);
        assert!(report(ExitStatus::Signaled(9), true).command_oom_killed());
        assert!(!report(ExitStatus::Signaled(9), false).command_oom_killed());
        assert!(!report(ExitStatus::Signaled(15), true).command_oom_killed());
    }
}
