//! Learning a seccomp profile (`--seccomp-learn`, OCI annotation `run.crabcan.seccomp.learn`):
//! the container's process installs crabcan-seccomp's learning filter exactly where the
//! normal filter goes (last before execve, or, without no_new_privs, while CAP_SYS_ADMIN is
//! still held) and hands its listener to crabcan over the handshake socket (`Listening`, one
//! `SCM_RIGHTS` descriptor). From then on crabcan's parent answers every notification (in its
//! setup loop, while it waits for execve, in its wait loop: [`Learner`]) and, when the container
//! ends, merges what it learned into the profile file ([`LearnReport`]). A detached container
//! (OCI `create`) gets a learner process of its own that outlives crabcan: it keeps the
//! handshake socket and the listener, and writes the profile once the container's process is
//! gone ([`Learner::spawn_detached`]). Every other confinement stays as configured.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use crabcan_seccomp::{Learned, LearnedProfile, LearningFilter, Profile, Supervisor};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::handshake::{Channel, Message, Received};

/// A learning run, as configured: what it enforces and where the profile goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompLearning {
    /// The profile whose decisions the run keeps (crabcan's default; an OCI bundle's own): a
    /// call it denies gets its errno, never runs and is reported, not learned. `None` lets
    /// every call through and learns it (`--seccomp-learn-unconfined`).
    pub enforced: Option<Profile>,
    /// The learned profile: a file of Docker / OCI JSON, merged with what is there already.
    /// Absolute, in a folder that exists.
    pub output: PathBuf,
}

/// What a learning run learned and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnReport {
    /// The profile file written.
    pub output: PathBuf,
    /// The calls of this run.
    pub learned: Learned,
    /// The allowlist written: this run's merged with the file's earlier content.
    pub profile: LearnedProfile,
}

/// The parent's side of a learning run: the filter compiled for the child, then the
/// supervisor of the listener the child hands over.
#[derive(Debug)]
pub(crate) struct Learner {
    filter: LearningFilter,
    supervisor: Option<Supervisor>,
    /// No process uses the filter any more (the listener polls as hung up).
    hung_up: bool,
    output: PathBuf,
}

impl Learner {
    /// Compiles the learning filter for a child that hands its listener over on `hand_over_fd`.
    pub(crate) fn new(request: &SeccompLearning, hand_over_fd: RawFd) -> Result<Learner> {
        let filter = LearningFilter::new(request.enforced.as_ref(), hand_over_fd)?;
        Ok(Learner {
            filter,
            supervisor: None,
            hung_up: false,
            output: request.output.clone(),
        })
    }

    /// The filter the child installs.
    pub(crate) fn filter(&self) -> &LearningFilter {
        &self.filter
    }

    /// Takes the listener of a `Listening` message.
    pub(crate) fn take_listener(&mut self, fds: Vec<OwnedFd>) -> Result<()> {
        let mut fds = fds.into_iter();
        match (fds.next(), fds.next(), &self.supervisor) {
            (Some(listener), None, None) => {
                log::debug!("seccomp learning: listener received");
                self.supervisor = Some(self.filter.supervisor(listener));
                Ok(())
            }
            _ => Err(Error::Protocol {
                detail: "Listening came with other than one listener, or twice".into(),
            }),
        }
    }

    /// The listener to poll, while a process uses the filter.
    pub(crate) fn pollable(&self) -> Option<BorrowedFd<'_>> {
        self.supervisor
            .as_ref()
            .filter(|_| !self.hung_up)
            .map(Supervisor::listener)
    }

    /// Answers the waiting notification, or notes that the listener hung up (every process
    /// of the filter is gone). Call it when the listener polls ready.
    pub(crate) fn service(&mut self) -> Result<()> {
        let Some(supervisor) = self.supervisor.as_mut() else {
            return Ok(());
        };
        let mut fds = [PollFd::new(supervisor.listener(), PollFlags::POLLIN)];
        let events = match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0].revents().unwrap_or(PollFlags::empty()),
            Err(Errno::EINTR) => return Ok(()),
            Err(errno) => return Err(Error::sys("poll on the seccomp listener", errno)),
        };
        if events.contains(PollFlags::POLLIN) {
            supervisor.answer_one()?;
        } else if events.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
            self.hung_up = true;
        }
        Ok(())
    }

    /// Receives the next message on `channel`, answering notifications meanwhile; a
    /// `Listening` message is taken here, never returned.
    pub(crate) fn receive(&mut self, channel: &Channel) -> Result<Received> {
        loop {
            if let Some(listener) = self.pollable() {
                let mut fds = [
                    PollFd::new(channel.as_fd(), PollFlags::POLLIN),
                    PollFd::new(listener, PollFlags::POLLIN),
                ];
                match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(errno) => return Err(Error::sys("poll", errno)),
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|events| !events.is_empty());
                let (channel_ready, listener_ready) = (ready(&fds[0]), ready(&fds[1]));
                if listener_ready {
                    self.service()?;
                }
                if !channel_ready {
                    continue;
                }
            }
            match channel.receive()? {
                Received::Message(Message::Listening, fds) => self.take_listener(fds)?,
                other => return Ok(other),
            }
        }
    }

    /// What was learned, merged into the profile file.
    pub(crate) fn finish(self) -> Result<LearnReport> {
        let (learned, output) = self.into_learned();
        write_report(learned, output)
    }

    /// What was learned, and where it goes.
    fn into_learned(self) -> (Learned, PathBuf) {
        (self.supervisor.map(Supervisor::finish).unwrap_or_default(), self.output)
    }

    /// Leaves the learning of a detached container (OCI `create`) to a process of its own,
    /// which keeps `channel` and the listener, answers until the container's process `child`
    /// is gone, then writes the profile (only if the command was executed), and exits. It
    /// holds nothing else of this process: its standard streams are /dev/null and every other
    /// descriptor is closed, so it holds no lock and no pipe of the caller.
    pub(crate) fn spawn_detached(self, channel: &Channel, child: Pid) -> Result<()> {
        // SAFETY: pidfd_open takes a pid and flags; a negative result is an error.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0) };
        if pidfd < 0 {
            return Err(Error::sys(format!("pidfd_open({child})"), Errno::last()));
        }
        // SAFETY: the kernel just returned this descriptor; nobody else owns it.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
        // SAFETY: crabcan-core refuses to create containers from a multi-threaded process, so
        // the children of fork may run any code.
        match unsafe { nix::unistd::fork() }.map_err(|errno| Error::sys("fork (seccomp learner)", errno))? {
            nix::unistd::ForkResult::Parent { child: middle } => {
                // The middle process exits at once: the learner is nobody's child here.
                let _ = nix::sys::wait::waitpid(middle, None);
                Ok(())
            }
            nix::unistd::ForkResult::Child => {
                let code = match unsafe { nix::unistd::fork() } {
                    Ok(nix::unistd::ForkResult::Child) => {
                        let keep = [channel.as_raw_fd(), pidfd.as_raw_fd()]
                            .into_iter()
                            .chain(self.pollable().map(|fd| fd.as_raw_fd()));
                        detach_from_caller(&keep.collect::<Vec<_>>());
                        self.run_detached(channel, &pidfd)
                    }
                    _ => 0,
                };
                // SAFETY: _exit ends this forked process without the parent's destructors.
                unsafe { libc::_exit(code) }
            }
        }
    }

    /// The detached learner's loop; its exit status.
    fn run_detached(mut self, channel: &Channel, pidfd: &OwnedFd) -> i32 {
        let mut channel_open = true;
        let mut exec_failed = false;
        loop {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            if channel_open {
                fds.push(PollFd::new(channel.as_fd(), PollFlags::POLLIN));
            }
            let listener = self.pollable();
            if let Some(listener) = listener {
                fds.push(PollFd::new(listener, PollFlags::POLLIN));
            }
            let listening = listener.is_some();
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return 1,
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|fd| fd.revents().is_some_and(|events| !events.is_empty()))
                .collect();
            drop(fds);
            if listening && ready.last() == Some(&true) && self.service().is_err() {
                return 1;
            }
            if channel_open && ready.get(1) == Some(&true) {
                match channel.receive() {
                    Ok(Received::Message(Message::Listening, fds)) => {
                        if self.take_listener(fds).is_err() {
                            return 1;
                        }
                    }
                    Ok(Received::Message(Message::Failed { .. }, _)) => exec_failed = true,
                    Ok(_) | Err(_) => channel_open = false,
                }
            }
            if ready.first() == Some(&true) {
                break;
            }
        }
        // A container deleted before it ran its command, or whose command could not be
        // executed, taught nothing worth writing.
        let (learned, output) = self.into_learned();
        if exec_failed || !learned.allowed.contains("execve") {
            return 1;
        }
        match write_report(learned, output) {
            Ok(_) => 0,
            Err(_) => 1,
        }
    }
}

/// Merges `learned` into the profile at `output`.
fn write_report(learned: Learned, output: PathBuf) -> Result<LearnReport> {
    let profile = LearnedProfile::from_learned(&learned).write_merged(&output)?;
    log::debug!(
        "seccomp learning: {} calls answered, {} syscalls learned, {} denied; {} written",
        learned.calls,
        learned.allowed.len(),
        learned.denied.len(),
        output.display()
    );
    Ok(LearnReport {
        output,
        learned,
        profile,
    })
}

/// In a forked process that must hold nothing of its caller: a session of its own, `/` as its
/// working folder (it keeps no filesystem busy), the signals crabcan blocked while creating
/// unblocked (a SIGTERM ends it), /dev/null as its standard streams, and every descriptor but
/// `keep` closed.
fn detach_from_caller(keep: &[RawFd]) {
    let _ = nix::unistd::setsid();
    let _ = nix::unistd::chdir("/");
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for stdio in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(null.as_raw_fd(), stdio) };
        }
    }
    let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str().and_then(|name| name.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    for fd in open.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // SAFETY: closing a descriptor this process does not use; the directory listing's own
        // descriptor is already closed (EBADF is harmless).
        unsafe { libc::close(fd) };
    }
}
