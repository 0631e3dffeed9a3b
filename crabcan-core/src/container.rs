//! The parent's side of a container's life, as types: [`create`] validates, makes the cgroup,
//! clones the process and takes it through its setup, giving a [`CreatedContainer`] (held just
//! before execve); [`CreatedContainer::start`] releases it, giving a [`RunningContainer`];
//! [`RunningContainer::wait`] forwards signals, relays the pty, reaps, removes the cgroup and
//! reports. A container dropped in either state is killed and its cgroup removed; its mounts
//! live only in its own mount namespace and vanish with it, and no directory is made on the
//! host.

use std::borrow::Cow;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crabcan_cgroups::{CgroupHost, ContainerCgroup, Layout, LimitKind, Limits, Stats};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::config::{ContainerConfig, IdMapping, StartGate, Terminal};
use crate::cpu_placement::CpuPlacement;
use crate::error::{ConfigError, Error, Result};
use crate::handshake::{Channel, Message, Received};
use crate::hooks::{self, HookKind};
use crate::id_ranges::{self, IdFiles, IdKind, IdLease};
use crate::learning::{LearnReport, Learner};
use crate::namespaces::{
    clone_into_namespaces, clone_into_namespaces_and_cgroup, user_namespace_maps, CloneResult, JoinedNamespaces,
    NamespaceKind, NamespaceMode, PidNamespaceForChildren,
};
use crate::rootless::{self, Caller, IdMapPlan};
use crate::signals::{BlockedSignals, Forwarder};
use crate::spec::IdRange;
use crate::terminal::{self, PtyRelay, RelayEnd};
use crate::{child, idmap};

/// How the container's first process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this status.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

/// What crabcan knows after the container is gone.
#[derive(Debug, Clone)]
pub struct ExitReport {
    /// How the command ended.
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process of the container (the command itself, or any
    /// other: see [`ExitReport::command_oom_killed`]), like Docker's `OOMKilled`.
    pub oom_killed: bool,
    /// The memory limit that was in force, in bytes.
    pub memory_limit: Option<u64>,
    /// Resource use read from the cgroup just before it was removed (when
    /// `ContainerConfig::collect_stats` asked for it).
    pub stats: Option<Stats>,
    /// What a learning run learned and wrote ([`crate::ContainerConfig::seccomp_learning`]).
    pub learned: Option<LearnReport>,
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

/// Creates, starts and waits for a container: what `crabcan --mount DIR --command CMD` does.
/// Nothing happens between create and start, so the process is not held for a release
/// ([`StartGate::Immediately`]), but with a pty, which is sized at the release.
pub fn run(mut config: ContainerConfig) -> Result<ExitReport> {
    if config.start_gate == StartGate::Parent && config.terminal != Terminal::Pty {
        config.start_gate = StartGate::Immediately;
    }
    create(config)?.start()?.wait()
}

/// Validates `config`, chooses the container's host ids, creates its cgroup, clones its process
/// into new namespaces and takes it through its whole setup. The process is then held just
/// before execve.
///
/// Run by root it needs CAP_SYS_ADMIN; run by an ordinary user it makes a rootless container
/// (see [`crate::rootless`]).
///
/// Must be called from a single-threaded process (checked): the container process is a
/// fork-like clone of the caller.
pub fn create(config: ContainerConfig) -> Result<CreatedContainer> {
    let mut config = config.validate()?;
    let caller = Caller::detect()?;
    check_single_threaded()?;
    // Every namespace to join is opened and checked before anything is made on the host.
    let joined = JoinedNamespaces::open(&config.namespaces)?;
    check_joined_user_namespace(&config, &joined)?;
    let host_ids = HostIds::choose(&config, &caller)?;
    config.mapped_inside = host_ids.plan.as_ref().map(|plan| (plan.uid_maps(), plan.gid_maps()));
    config.check_mapped()?;
    log::debug!("configuration checked; container ids are {}", host_ids.describe());
    // The host's cgroup mounts, read once. On cgroup v2 the cgroup exists before the clone,
    // which puts the child straight into it; elsewhere it is made while the child sets up its
    // filesystem (and so are stale cgroups removed, see `create_cgroup`), and so is the mount
    // table read. An ordinary user's goes in the subtree delegated to it, or there is none.
    let cgroup_host = match (config.limits.is_some(), caller) {
        (false, _) => HostCgroups::None,
        (true, Caller::Root) if crabcan_cgroups::v1_controllers_mounted() => HostCgroups::V1Unread,
        (true, Caller::Root) => HostCgroups::Read(root_cgroup_host(&config)?),
        (true, Caller::User { uid, .. }) => match rootless::user_cgroup_host(&mut config, uid)? {
            Some(host) => HostCgroups::Read(host),
            None => HostCgroups::None,
        },
    };
    let cgroup = match &cgroup_host {
        HostCgroups::Read(host) if host.layout() == Layout::V2 => create_cgroup(host, &config)?,
        _ => None,
    };
    let (parent_end, child_end) =
        Channel::pair().map_err(|errno| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", errno))?;
    // The learning filter lets exactly the hand-over on the child's end of the socket through.
    let learner = match &config.seccomp_learning {
        Some(request) => Some(Learner::new(request, child_end.as_raw_fd())?),
        None => None,
    };
    config.learning_filter = learner.as_ref().map(|learner| learner.filter().clone());
    let blocked = BlockedSignals::block().map_err(|errno| Error::sys("sigprocmask", errno))?;
    let flags = config.namespaces.clone_flags();
    log::debug!("cloning into new namespaces {flags:?} (hostname {})", config.hostname);
    // A joined pid namespace is the one the child is born in.
    let pid_namespace = match joined.get(NamespaceKind::Pid) {
        Some(file) => Some(PidNamespaceForChildren::enter(file)?),
        None => None,
    };
    let placement = CpuPlacement::of_this_process();
    let (cloned, born_in_cgroup) = clone_child(flags, cgroup.as_ref());
    let child = match cloned {
        Ok(CloneResult::Child) => {
            drop(parent_end);
            child::run(&config, cgroup_host.layout(), child_end, placement)
        }
        Ok(CloneResult::Parent { child }) => {
            placement.move_child_elsewhere(child);
            child
        }
        Err(errno) => {
            if let Some(refused) = caller.clone_refused(errno) {
                return Err(refused.into());
            }
            return Err(Error::sys(format!("clone({flags:?})"), errno));
        }
    };
    drop(pid_namespace);
    drop(child_end);
    let mut inner = Inner {
        hostname: config.hostname.clone(),
        child: Some(child),
        channel: parent_end,
        memory_limit: config.limits.as_ref().and_then(|limits| limits.memory),
        collect_stats: config.collect_stats,
        start_gate: config.start_gate.clone(),
        host_ids,
        cgroup,
        pty_master: None,
        learner,
        strict: config.strict,
        _blocked: blocked,
    };
    inner.set_up_child(&config, child, born_in_cgroup, cgroup_host, joined)?;
    Ok(CreatedContainer { inner })
}

/// A container whose first process is set up and held just before execve.
pub struct CreatedContainer {
    inner: Inner,
}

/// A created container left to run on its own ([`CreatedContainer::detach`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedContainer {
    /// The container's first process, as seen from the host.
    pub pid: i32,
    /// Its cgroup's directories, which whoever deletes the container removes.
    pub cgroup_paths: Vec<std::path::PathBuf>,
    /// Its cgroup's path, which [`ContainerCgroup::open_at`] finds it by (relative to
    /// `cgroup_base` for an ordinary user's); `None` without a cgroup.
    pub cgroup_path: Option<std::path::PathBuf>,
    /// The cgroup v2 subtree delegated to the ordinary user who made the container, which
    /// `cgroup_path` is relative to ([`crabcan_cgroups::CgroupHost::with_v2_base`]); `None`
    /// for root's.
    pub cgroup_base: Option<std::path::PathBuf>,
}

/// A container whose command runs (or, with a [`StartGate::Fifo`], runs once another process
/// opens the FIFO).
pub struct RunningContainer {
    inner: Inner,
    /// Released through the FIFO by someone else: execve's outcome is still to be read from
    /// the handshake socket while waiting.
    exec_pending: bool,
    exec_error: Option<Error>,
}

impl CreatedContainer {
    /// Leaves the container to run on without this process: its process is not killed and its
    /// cgroup not removed when this value goes (for an OCI `create`, which exits and leaves the
    /// container to its engine; the process must have been configured with
    /// `survives_crabcan`, and a start gate another process opens).
    ///
    /// Refused for a container whose host ids are leased from crabcan's pool
    /// ([`IdMapping::Auto`]): the lease dies with this process, and the range would be handed
    /// to another container while this one runs.
    pub fn detach(mut self) -> Result<DetachedContainer> {
        if self.inner.host_ids._lease.is_some() {
            return Err(Error::Protocol {
                detail: "a container with host ids leased from crabcan's pool cannot outlive its crabcan".into(),
            });
        }
        if let (Some(learner), Some(child)) = (self.inner.learner.take(), self.inner.child) {
            learner.spawn_detached(&self.inner.channel, child)?;
        }
        let pid = self.inner.child.take().map_or(0, Pid::as_raw);
        let cgroup = self.inner.cgroup.take();
        let cgroup_path = cgroup.as_ref().map(|c| c.relative_path().to_owned());
        let cgroup_base = cgroup
            .as_ref()
            .map(|c| c.v2_base().to_owned())
            .filter(|base| !base.as_os_str().is_empty());
        let cgroup_paths = cgroup.map(ContainerCgroup::keep).unwrap_or_default();
        Ok(DetachedContainer {
            pid,
            cgroup_paths,
            cgroup_path,
            cgroup_base,
        })
    }

    /// The master of the container's pty (when it was configured with [`crate::Terminal::Pty`]),
    /// for a caller that hands it on instead of relaying it (an OCI `--console-socket`).
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.inner.pty_master.take()
    }

    /// Releases the process held before execve. Returns once the command runs (the handshake
    /// socket closes at execve), or with the reason it could not be executed.
    ///
    /// With a [`StartGate::Fifo`], crabcan does not release the process itself: whoever opens
    /// the FIFO does, and [`RunningContainer::wait`] reports an exec failure then.
    pub fn start(self) -> Result<RunningContainer> {
        let mut running = RunningContainer {
            exec_pending: matches!(self.inner.start_gate, StartGate::Fifo(_)),
            inner: self.inner,
            exec_error: None,
        };
        match running.inner.start_gate {
            StartGate::Fifo(_) => return Ok(running),
            StartGate::Parent => {
                if let Some(master) = &running.inner.pty_master {
                    terminal::size_like_caller(master.as_fd());
                }
                running
                    .inner
                    .channel
                    .send(&Message::Start)
                    .map_err(|errno| Error::sys("sending Start to the container", errno))?;
            }
            // It went on by itself after Ready: only execve's outcome is left to read.
            StartGate::Immediately => {}
        }
        let received = running.inner.receive()?;
        exec_outcome(received)?;
        Ok(running)
    }
}

/// What a container shows in either state: its process, hostname and cgroup.
macro_rules! container_facts {
    ($($state:ty),*) => {$(
        impl $state {
            /// The container's first process, as seen from the host.
            pub fn pid(&self) -> Option<i32> {
                self.inner.pid()
            }

            /// The container's hostname (which also names its cgroup).
            pub fn hostname(&self) -> &str {
                &self.inner.hostname
            }

            /// The container's cgroup, if it has one.
            pub fn cgroup(&self) -> Option<&ContainerCgroup> {
                self.inner.cgroup.as_ref()
            }

        }
    )*};
}

container_facts!(CreatedContainer, RunningContainer);

/// What the event loop of [`RunningContainer::wait`] polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Signals,
    Handshake,
    Pty(RelayEnd),
    /// The seccomp listener of a learning run.
    Listener,
}

impl RunningContainer {
    /// Waits for the command to end, forwarding signals and relaying the pty meanwhile, then
    /// removes the cgroup and reports.
    pub fn wait(mut self) -> Result<ExitReport> {
        let status = self.event_loop()?;
        log::debug!("command ended: {status:?}");
        if let Some(error) = self.exec_error.take() {
            return Err(error);
        }
        let inner = &mut self.inner;
        let oom_killed = inner.cgroup.as_ref().is_some_and(ContainerCgroup::oom_killed);
        let stats = if inner.collect_stats {
            inner.cgroup.as_ref().map(ContainerCgroup::stats)
        } else {
            None
        };
        if let Some(cgroup) = inner.cgroup.take() {
            cgroup.remove()?;
            log::debug!("cgroup removed");
        }
        let learned = inner.learner.take().map(Learner::finish).transpose()?;
        Ok(ExitReport {
            status,
            oom_killed,
            memory_limit: inner.memory_limit,
            stats,
            learned,
        })
    }

    fn event_loop(&mut self) -> Result<ExitStatus> {
        let Some(child) = self.inner.child else {
            return Err(Error::Protocol {
                detail: "the container has no process to wait for".into(),
            });
        };
        let signals = Forwarder::new().map_err(|errno| Error::sys("signalfd", errno))?;
        let master = self.inner.pty_master.take();
        let mut relay = master.as_ref().map(|master| PtyRelay::new(master.as_fd()));
        // A signal whose default action crabcan applied for the container's init: the exit
        // status reports it rather than the SIGKILL that did it.
        let mut emulated_signal: Option<Signal> = None;
        loop {
            if let Some(mut status) = self.inner.reap(child, WaitPidFlag::WNOHANG)? {
                if let (ExitStatus::Signaled(9), Some(signal)) = (status, emulated_signal) {
                    status = ExitStatus::Signaled(signal as i32);
                }
                if let Some(relay) = relay.as_mut() {
                    relay.drain();
                }
                if self.exec_pending {
                    // The peer is gone, so this read cannot block: it is the exec failure, or EOF.
                    self.note_exec_outcome();
                }
                return Ok(status);
            }
            let mut sources = vec![(Source::Signals, signals.as_fd())];
            if self.exec_pending {
                sources.push((Source::Handshake, self.inner.channel.as_fd()));
            }
            if let Some(relay) = relay.as_ref() {
                sources.extend(relay.open_ends().into_iter().map(|(end, fd)| (Source::Pty(end), fd)));
            }
            if let Some(listener) = self.inner.learner.as_ref().and_then(Learner::pollable) {
                sources.push((Source::Listener, listener));
            }
            let readable = ready(&sources)?;
            drop(sources);
            for source in readable {
                match source {
                    Source::Signals => {
                        let seen = signals.forward_pending(child);
                        if let (true, Some(master)) = (seen.window_changed, master.as_ref()) {
                            terminal::size_like_caller(master.as_fd());
                        }
                        emulated_signal = seen.emulated.or(emulated_signal);
                    }
                    Source::Handshake => self.note_exec_outcome(),
                    Source::Pty(end) => {
                        if let Some(relay) = relay.as_mut() {
                            relay.pump(end);
                        }
                    }
                    Source::Listener => {
                        if let Some(learner) = self.inner.learner.as_mut() {
                            learner.service()?;
                        }
                    }
                }
            }
        }
    }

    /// A FIFO-gated container was released (or failed to exec) while crabcan waited.
    fn note_exec_outcome(&mut self) {
        self.exec_pending = false;
        if let Err(error) = self.inner.receive().and_then(exec_outcome) {
            self.exec_error = Some(error);
        }
    }
}

/// Polls `sources` until one is readable (or a signal interrupts); the readable ones.
pub(crate) fn ready<T: Copy>(sources: &[(T, BorrowedFd<'_>)]) -> Result<Vec<T>> {
    let mut fds: Vec<PollFd> = sources
        .iter()
        .map(|(_, fd)| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    match nix::poll::poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(errno) => return Err(Error::sys("poll", errno)),
    }
    Ok(sources
        .iter()
        .zip(&fds)
        .filter(|(_, fd)| fd.revents().is_some_and(|events| !events.is_empty()))
        .map(|((source, _), _)| *source)
        .collect())
}

/// What both states hold: the process, the handshake, the cgroup and the host ids. Dropping it
/// kills the process, then removes the cgroup, then releases the ids.
struct Inner {
    hostname: String,
    child: Option<Pid>,
    channel: Channel,
    cgroup: Option<ContainerCgroup>,
    memory_limit: Option<u64>,
    collect_stats: bool,
    /// Who lets the held process go on to execve.
    start_gate: StartGate,
    /// The container's host ids (and, for [`IdMapping::Auto`], their lease).
    host_ids: HostIds,
    pty_master: Option<OwnedFd>,
    /// A learning run's supervisor, which answers the child's seccomp notifications.
    learner: Option<Learner>,
    /// Fail rather than run without a confinement asked for.
    strict: bool,
    // Declared last: the signal mask comes back only after the child is reaped.
    _blocked: BlockedSignals,
}

impl Inner {
    fn pid(&self) -> Option<i32> {
        self.child.map(Pid::as_raw)
    }

    fn set_up_child(
        &mut self,
        config: &ContainerConfig,
        child: Pid,
        born_in_cgroup: bool,
        cgroup_host: HostCgroups,
        joined: JoinedNamespaces,
    ) -> Result<()> {
        if let Some(value) = config.oom_score_adj {
            set_oom_score_adj(child, value)?;
        }
        if let Some(plan) = &self.host_ids.plan {
            plan.write(child)?;
            log::debug!("id maps written for pid {child}");
        }
        // Only root's containers get idmapped copies: an ordinary user cannot make them (they
        // need CAP_SYS_ADMIN over the host's mounts) and uses its trees as they are, so only a
        // bundle's explicit idmap is refused.
        let mut wanted = idmap::wanted(config);
        if !self.host_ids.idmapped_mounts {
            if wanted.iter().flatten().any(|want| want.required) {
                return Err(rootless::RootlessError::RootOnly {
                    what: "an idmapped mount (a mount's idmap or ridmap option)",
                    uid: nix::unistd::geteuid().as_raw(),
                }
                .into());
            }
            wanted.iter_mut().for_each(|want| *want = None);
        }
        // Idmapped trees are mapped through the container's user namespace: its new one, or
        // the one it joins (last, so it is not the child's yet).
        let userns = match joined.get(NamespaceKind::User) {
            Some(file) => Some(file.try_clone().map_err(|errno| Error::sys("dup", errno))?),
            None if self.host_ids.plan.is_some() => Some(
                nix::fcntl::open(
                    format!("/proc/{child}/ns/user").as_str(),
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|errno| Error::sys(format!("open(/proc/{child}/ns/user)"), errno))?,
            ),
            None => None,
        };
        let trees = match &userns {
            Some(userns) => idmap::make_trees(userns, &wanted)?,
            None => idmap::Trees::none(config),
        };
        for fallback in &trees.fallbacks {
            if self.strict {
                return Err(Error::NotHonoured { what: fallback.clone() });
            }
            log::warn!("{fallback}");
        }
        // The idmapped trees, then the namespaces the child joins itself.
        let mut go_fds: Vec<i32> = trees.fds.iter().map(AsRawFd::as_raw_fd).collect();
        go_fds.extend(joined.child_fds());
        let go = Message::Go {
            idmapped: trees.idmapped.clone(),
            pid: child.as_raw(),
        };
        if let Err(errno) = self.channel.send_with_fds(&go, &go_fds) {
            return Err(self.setup_failure(Error::sys("sending Go to the container", errno)));
        }
        drop(trees);
        drop(joined);
        if self.cgroup.is_none() {
            if let Some(host) = cgroup_host.read(config)? {
                self.cgroup = create_cgroup(&host, config)?;
            }
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
                Received::Message(Message::RuntimeHooks, _) => {
                    run_runtime_hooks(config, child)?;
                    if let Err(errno) = self.channel.send(&Message::RuntimeHooksDone) {
                        return Err(self.setup_failure(Error::sys("sending RuntimeHooksDone to the container", errno)));
                    }
                }
                Received::Message(Message::Ready, _) => {
                    log::debug!("container set up, held before execve");
                    return Ok(());
                }
                failed @ Received::Message(Message::Failed { .. }, _) => {
                    // A setup step, or the program's check before Ready: exec_outcome names it.
                    exec_outcome(failed)?;
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

    /// The next message from the child; in a learning run the child's seccomp notifications
    /// are answered meanwhile (its setup calls wait for them).
    fn receive(&mut self) -> Result<Received> {
        match self.learner.as_mut() {
            Some(learner) => learner.receive(&self.channel),
            None => self.channel.receive().map_err(Error::from),
        }
    }

    /// The conversation with the child broke during setup (`broken`: a send or receive that
    /// failed). The child's own report is what the user needs: it failed a step, sent why and
    /// exited, and its exit broke the socket. So read what it left in the socket first; only
    /// if it left nothing, say how it died.
    fn setup_failure(&mut self, broken: Error) -> Error {
        match self.receive() {
            Ok(Received::Message(Message::Failed { step, errno, detail }, _)) => Error::Setup {
                step,
                detail,
                errno: Errno::from_raw(errno),
            },
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

impl Drop for Inner {
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

/// Sets the container process's OOM score adjustment before it runs anything (its children
/// and the command inherit it). Written by crabcan: the process's own `/proc/self` file is
/// owned by the host's root, whom a user namespace does not map.
fn set_oom_score_adj(child: Pid, value: i32) -> Result<()> {
    let path = std::path::PathBuf::from(format!("/proc/{child}/oom_score_adj"));
    std::fs::write(&path, value.to_string()).map_err(|error| Error::OomScoreAdj {
        value,
        path,
        errno: Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// The `prestart`, then the `createRuntime` hooks, in crabcan's own namespaces, while the
/// container's process waits with its mounts made, before pivot_root. A failure fails the
/// create (the caller drops the container: killed, its cgroup removed).
fn run_runtime_hooks(config: &ContainerConfig, child: Pid) -> Result<()> {
    let hooks = &config.hooks;
    let state = hooks.state_json(child.as_raw(), "creating");
    hooks::run_hooks(HookKind::Prestart, &hooks.prestart, &state)?;
    hooks::run_hooks(HookKind::CreateRuntime, &hooks.create_runtime, &state)?;
    log::debug!("prestart and createRuntime hooks ran");
    Ok(())
}

/// What the handshake socket says after the release: closed at execve, or why exec failed.
pub(crate) fn exec_outcome(received: Received) -> Result<()> {
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
        Received::Message(Message::Failed { step, errno, detail }, _) => Err(Error::Setup {
            step,
            detail,
            errno: Errno::from_raw(errno),
        }),
        Received::Message(other, _) => Err(Error::Protocol {
            detail: format!("{other:?} after Start"),
        }),
    }
}

/// Clones the container's process: straight into its cgroup where the host has cgroup v2 and
/// the kernel has clone3 (returns true), otherwise with clone(2), to be moved into the cgroup
/// afterwards.
fn clone_child(
    flags: nix::sched::CloneFlags,
    cgroup: Option<&ContainerCgroup>,
) -> (std::result::Result<CloneResult, Errno>, bool) {
    let v2_dir = cgroup.and_then(ContainerCgroup::v2_path).and_then(|path| {
        nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()
    });
    if let Some(dir) = &v2_dir {
        match clone_into_namespaces_and_cgroup(flags, dir.as_fd()) {
            Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL) => {
                log::debug!("clone3(CLONE_INTO_CGROUP) unavailable; using clone")
            }
            result => return (result, true),
        }
    }
    (clone_into_namespaces(flags), false)
}

/// The host ids of a container: how its `uid_map` and `gid_map` are written.
struct HostIds {
    /// The plan for the maps of the user namespace; `None`: no user namespace.
    plan: Option<IdMapPlan>,
    /// Root's containers get idmapped copies of root-owned trees (an ordinary user cannot
    /// make them).
    idmapped_mounts: bool,
    /// Held while the container lives, for a range from crabcan's pool.
    _lease: Option<IdLease>,
}

impl HostIds {
    /// None unless crabcan makes the user namespace. For root: then a private range from the
    /// pool for [`IdMapping::Auto`]; the given ranges, once checked against the host's accounts
    /// and subordinate ids, for [`IdMapping::Fixed`]; as they are for [`IdMapping::Given`]. For
    /// an ordinary user: its own ids and subordinate ranges ([`rootless::plan_user_maps`]).
    fn choose(config: &ContainerConfig, caller: &Caller) -> Result<HostIds> {
        let idmapped_mounts = *caller == Caller::Root;
        let none = HostIds {
            plan: None,
            idmapped_mounts,
            _lease: None,
        };
        match (&config.namespaces.user, *caller) {
            // A joined user namespace has maps of its own.
            (NamespaceMode::Join(_), _) | (NamespaceMode::Host, Caller::Root) => return Ok(none),
            (NamespaceMode::Host, Caller::User { uid, .. }) => {
                return Err(rootless::RootlessError::NoUserNamespace { uid }.into())
            }
            (NamespaceMode::New, _) => {}
        }
        let files = IdFiles::system();
        if let Caller::User { uid, gid } = *caller {
            let facts = rootless::UserFacts::gather(uid, gid, &files)?;
            let wanted = rootless::WantedIds::of(config);
            let planned = rootless::plan_user_maps(&config.id_mapping, &wanted, &facts)?;
            if let Some(warning) = planned.warning {
                log::warn!("{warning}");
            }
            return Ok(HostIds {
                plan: Some(planned.plan),
                idmapped_mounts,
                _lease: None,
            });
        }
        let direct = |uid_map: IdRange, gid_map: IdRange| IdMapPlan::Direct {
            uid_map,
            gid_map,
            deny_setgroups: false,
        };
        let plan = match &config.id_mapping {
            IdMapping::Auto => {
                let lease = id_ranges::allocate(&files, Path::new(id_ranges::DEFAULT_STATE_DIR))?;
                return Ok(HostIds {
                    plan: Some(direct(lease.uid_map(), lease.gid_map())),
                    idmapped_mounts: true,
                    _lease: Some(lease),
                });
            }
            IdMapping::Host => None,
            IdMapping::Given { uid_map, gid_map } => Some(direct(*uid_map, *gid_map)),
            IdMapping::Fixed { uid_map, gid_map } => {
                let caller = nix::unistd::geteuid().as_raw();
                id_ranges::check_map(uid_map, IdKind::Uid, &files, caller)?;
                id_ranges::check_map(gid_map, IdKind::Gid, &files, caller)?;
                Some(direct(*uid_map, *gid_map))
            }
        };
        Ok(HostIds {
            plan,
            idmapped_mounts: true,
            _lease: None,
        })
    }

    /// What the debug log says about them.
    fn describe(&self) -> String {
        match &self.plan {
            Some(plan) => plan.describe(),
            None => "the host's own (no user namespace)".to_owned(),
        }
    }
}

/// A joined user namespace keeps its own maps: the container's uid and gid must be in them,
/// and maps the configuration gives (an OCI config may repeat them) must be exactly them.
fn check_joined_user_namespace(config: &ContainerConfig, joined: &JoinedNamespaces) -> Result<()> {
    let Some(file) = joined.get(NamespaceKind::User) else {
        return Ok(());
    };
    let (uid_maps, gid_maps) = user_namespace_maps(file)?;
    let shown = |maps: &[IdRange]| maps.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let where_ = format!(
        "of the joined user namespace {} ({})",
        file.path.display(),
        shown(&uid_maps)
    );
    if let IdMapping::Given { uid_map, gid_map } = &config.id_mapping {
        if uid_maps != [*uid_map] || gid_maps != [*gid_map] {
            return Err(ConfigError::UserNamespaceMaps {
                why: format!(
                    "the uid map {uid_map} and gid map {gid_map} given are not those of the joined user namespace {}: uids {}, gids {}",
                    file.path.display(),
                    shown(&uid_maps),
                    shown(&gid_maps)
                ),
            }
            .into());
        }
    }
    if !uid_maps.iter().any(|range| range.contains_inside(config.uid)) {
        return Err(ConfigError::UidNotMapped {
            uid: config.uid,
            map: where_,
        }
        .into());
    }
    if !gid_maps.iter().any(|range| range.contains_inside(config.gid)) {
        return Err(ConfigError::GidNotMapped {
            gid: config.gid,
            map: format!(
                "of the joined user namespace {} ({})",
                file.path.display(),
                shown(&gid_maps)
            ),
        }
        .into());
    }
    Ok(())
}

/// Root with CAP_SYS_ADMIN, which entering a running container (OCI `exec`) needs: an ordinary
/// user cannot do that yet ([`rootless::RootlessError::RootOnly`]).
pub(crate) fn check_privileges() -> Result<()> {
    match Caller::detect()? {
        Caller::Root => Ok(()),
        Caller::User { uid, .. } => Err(rootless::RootlessError::RootOnly {
            what: "entering a running container (exec)",
            uid,
        }
        .into()),
    }
}

/// The container process is cloned with fork semantics and allocates before execve: another
/// thread holding a lock (malloc's, stderr's) at that moment would deadlock it.
pub(crate) fn check_single_threaded() -> Result<(), ConfigError> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|tasks| tasks.count())
        .unwrap_or(1);
    if threads > 1 {
        return Err(ConfigError::MultiThreaded { threads });
    }
    Ok(())
}

/// The host's cgroup mounts as far as [`create`] knows them before the clone.
enum HostCgroups {
    /// The container gets no cgroup.
    None,
    /// Read before the clone: on cgroup v2 the cgroup is made before it (the child is cloned
    /// straight into it), and an ordinary user's is in the subtree delegated to it.
    Read(CgroupHost),
    /// cgroup v1 controllers are mounted (one `statfs` said so): the layout is v1 or hybrid,
    /// and the cgroup is made after the clone, so the mount table is read then too, while the
    /// child sets up.
    V1Unread,
}

impl HostCgroups {
    /// The layout the child is told: all it needs to know is v1-style (moves itself into
    /// hierarchies) or v2, so an unread v1 host is [`Layout::V1`], a hybrid one included.
    fn layout(&self) -> Option<Layout> {
        match self {
            HostCgroups::None => None,
            HostCgroups::Read(host) => Some(host.layout()),
            HostCgroups::V1Unread => Some(Layout::V1),
        }
    }

    /// The host, its mount table read now if it was not yet.
    fn read(self, config: &ContainerConfig) -> Result<Option<CgroupHost>> {
        match self {
            HostCgroups::None => Ok(None),
            HostCgroups::Read(host) => Ok(Some(host)),
            HostCgroups::V1Unread => root_cgroup_host(config).map(Some),
        }
    }
}

/// Root's cgroup host: the mount table read now, the cgroups used as `config` says.
fn root_cgroup_host(config: &ContainerConfig) -> Result<CgroupHost> {
    Ok(CgroupHost::detect()?.with_uses(config.effective_cgroup_uses()))
}

/// Removes the cgroups of crabcans that are gone (their lease is no longer held), so a
/// SIGKILLed crabcan leaves nothing behind for long.
fn remove_stale_cgroups(host: &CgroupHost) {
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
}

/// Removes the cgroups of crabcans that are gone first (whose leases nobody holds), then
/// creates this container's.
fn create_cgroup(host: &CgroupHost, config: &ContainerConfig) -> Result<Option<ContainerCgroup>> {
    remove_stale_cgroups(host);
    let Some(limits) = &config.limits else {
        return Ok(None);
    };
    let limits = without_idle_io_weight(limits, &config.requested_limits, || host.io_weights_take_effect());
    let cgroup = match &config.cgroup_path {
        Some(path) => host.create_at(path, &limits, config.missing_controllers)?,
        None => host.create(&config.hostname, &limits, config.missing_controllers)?,
    };
    if let (true, Some(unapplied)) = (config.strict, cgroup.unapplied().first()) {
        return Err(Error::NotHonoured {
            what: unapplied.reason.to_string(),
        });
    }
    for unapplied in cgroup.unapplied() {
        log::warn!("{}; running without it", unapplied.reason);
    }
    Ok(Some(cgroup))
}

/// `limits` without crabcan's default I/O weight where the host says no block device would
/// apply it (`weights_take_effect`, asked only then: [`CgroupHost::io_weights_take_effect`]),
/// else `limits` as they are. On cgroup v1 that weight alone costs a blkio cgroup, made,
/// joined and removed for nothing. A weight asked for (`requested`) is always written.
pub(crate) fn without_idle_io_weight<'a>(
    limits: &'a Limits,
    requested: &[LimitKind],
    weights_take_effect: impl FnOnce() -> Option<bool>,
) -> Cow<'a, Limits> {
    let default_weight = limits.io_weight.is_some() && !requested.contains(&LimitKind::IoWeight);
    if !default_weight || weights_take_effect() != Some(false) {
        return Cow::Borrowed(limits);
    }
    log::debug!("no block device's queue uses BFQ, which alone applies I/O weights here: crabcan's default I/O weight is left out");
    Cow::Owned(Limits {
        io_weight: None,
        ..limits.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_io_weight_goes_only_where_no_device_would_apply_it() {
        let limits = Limits::default();
        let asked = [LimitKind::IoWeight];
        let Cow::Owned(lighter) = without_idle_io_weight(&limits, &[], || Some(false)) else {
            panic!("the default weight is left out where no device applies it")
        };
        assert_eq!(lighter.io_weight, None);
        assert_eq!(
            Limits {
                io_weight: limits.io_weight,
                ..lighter
            },
            limits,
            "only the I/O weight goes"
        );
        let kept = |limits| matches!(limits, Cow::Borrowed(_));
        assert!(
            kept(without_idle_io_weight(&limits, &asked, || Some(false))),
            "asked for"
        );
        assert!(kept(without_idle_io_weight(&limits, &[], || Some(true))), "BFQ in use");
        assert!(kept(without_idle_io_weight(&limits, &[], || None)), "cannot tell");
        let unweighted = Limits {
            io_weight: None,
            ..Limits::default()
        };
        let probe = || -> Option<bool> { panic!("the host is asked only about a default weight") };
        assert!(kept(without_idle_io_weight(&unweighted, &[], probe)));
    }

    fn report(status: ExitStatus, oom_killed: bool) -> ExitReport {
        ExitReport {
            status,
            oom_killed,
            memory_limit: None,
            stats: None,
            learned: None,
        }
    }

    #[test]
    fn refuses_to_clone_from_a_multi_threaded_process() {
        // libtest runs tests on threads of its own, so this process has several.
        let _keep_a_thread = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(2)));
        let rootfs = crate::test_support::TempTree::new("multi-threaded");
        let result = create(ContainerConfig::new(&*rootfs, vec!["/bin/true".into()]));
        match result {
            Err(Error::Config(ConfigError::MultiThreaded { threads })) => assert!(threads > 1),
            Err(Error::Rootless(_)) => assert!(!nix::unistd::geteuid().is_root(), "root is not rootless"),
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
