//! Entering a running container (OCI `exec`), crabcan's side.
//!
//! [`Target::open`] takes hold of the container's first process through a pidfd, checking its
//! start time before and after it reads which namespaces to join, so a pid that now belongs to
//! another process never leads into that process's namespaces; it opens the container's cgroup
//! too. [`spawn`] forks the entering process (straight into the cgroup on cgroup2, with
//! `clone3(CLONE_INTO_CGROUP)`), which joins and forks the command into the pid namespace
//! (`enter_steps.rs`), and returns once the command runs. [`Entered::wait`] then forwards
//! signals, relays a pty to crabcan's terminal and reaps the command, as crabcan is its
//! subreaper in the foreground; a detached command is left to the caller's subreaper.
//!
//! crabcan itself never joins anything: it stays on the host, outside the container.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::config::ContainerConfig;
use crate::container::{check_privileges, check_single_threaded, exec_outcome, ready, ExitStatus};
use crate::enter_steps::{self, Entry, Namespace, NAMESPACES};
use crate::error::{Error, Result};
use crate::handshake::{Channel, Message, Received};
use crate::namespaces::{clone_into_namespaces, clone_into_namespaces_and_cgroup, CloneResult};
use crate::signals::{BlockedSignals, Forwarder};
use crate::terminal::{self, PtyRelay, RelayEnd};

/// The container to enter: its first process, held by a pidfd, the namespaces of it that
/// differ from crabcan's, and its cgroup.
pub(crate) struct Target {
    pid: i32,
    pidfd: OwnedFd,
    namespaces: Vec<Namespace>,
    /// The cgroup2 directory to clone the entering process into, if the cgroup has one.
    cgroup2_dir: Option<PathBuf>,
    /// `tasks` of each v1 hierarchy: the entering process writes `0` to move itself in.
    v1_tasks: Vec<OwnedFd>,
}

impl Target {
    /// Takes hold of process `pid`, which must have started at `start_time` (clock ticks since
    /// boot, `/proc/<pid>/stat` field 22), and of its cgroup's directories `cgroup_dirs`.
    /// [`Error::ContainerProcessGone`] when the process is not there, or is another one.
    pub(crate) fn open(pid: i32, start_time: u64, cgroup_dirs: &[PathBuf]) -> Result<Target> {
        let gone = || Error::ContainerProcessGone { pid };
        let same_process = || crate::oci::state::process_start_time(pid) == Some(start_time);
        let pidfd = pidfd_open(pid).map_err(|errno| match errno {
            Errno::ESRCH => gone(),
            errno => Error::sys(format!("pidfd_open({pid})"), errno),
        })?;
        // The pidfd holds whichever process had the pid when it was opened: the container's if
        // the start time matches now (that process lived throughout).
        if !same_process() {
            return Err(gone());
        }
        let namespaces = namespaces_to_join(pid).map_err(|error| match error {
            Error::Sys {
                errno: Errno::ENOENT | Errno::ESRCH,
                ..
            } => gone(),
            other => other,
        })?;
        // And the files read in between were that process's, if it is still the one.
        if !same_process() {
            return Err(gone());
        }
        let (mut cgroup2_dir, mut v1_tasks) = (None, Vec::new());
        for dir in cgroup_dirs {
            if is_cgroup2(dir)? {
                cgroup2_dir = Some(dir.clone());
            } else {
                v1_tasks.push(open_for_writing(&dir.join("tasks"))?);
            }
        }
        Ok(Target {
            pid,
            pidfd,
            namespaces,
            cgroup2_dir,
            v1_tasks,
        })
    }
}

fn pidfd_open(pid: i32) -> std::result::Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just made this descriptor (close-on-exec, as every pidfd); we own it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
}

/// The namespaces of `pid` that are not crabcan's own, each with a file of it, in
/// [`NAMESPACES`] order.
fn namespaces_to_join(pid: i32) -> Result<Vec<Namespace>> {
    let mut namespaces = Vec::new();
    for (kind, flag) in NAMESPACES {
        let own = format!("/proc/self/ns/{kind}");
        let Ok(own) = std::fs::metadata(&own) else {
            continue; // a kernel without this kind of namespace
        };
        let path = format!("/proc/{pid}/ns/{kind}");
        let file = nix::fcntl::open(path.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|errno| Error::sys(format!("open({path})"), errno))?;
        let theirs = nix::sys::stat::fstat(&file).map_err(|errno| Error::sys(format!("fstat({path})"), errno))?;
        if (theirs.st_dev, theirs.st_ino) != (own.dev(), own.ino()) {
            namespaces.push(Namespace { flag, file });
        }
    }
    Ok(namespaces)
}

fn is_cgroup2(dir: &Path) -> Result<bool> {
    nix::sys::statfs::statfs(dir)
        .map(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .map_err(|errno| Error::sys(format!("statfs({})", dir.display()), errno))
}

fn open_for_writing(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| Error::sys(format!("open({}) for writing", path.display()), errno))
}

/// Makes sure descriptors 3 to 3+`preserved`-1 are open, so that nothing crabcan opens from
/// now on takes one of those numbers and reaches the command with `--preserve-fds`: a number
/// the caller left closed gets `/dev/null`, close-on-exec (it stays closed for the command).
/// Call it before opening anything else.
pub(crate) fn reserve_preserved_fds(preserved: u32) -> Result<()> {
    for fd in 3..3 + preserved as i32 {
        // SAFETY: F_GETFD only reads the flags of a descriptor number.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            continue;
        }
        let null = nix::fcntl::open("/dev/null", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|errno| Error::sys("open(/dev/null)", errno))?;
        if null.as_raw_fd() != fd {
            // SAFETY: dup3 onto a number nothing in this process owns (F_GETFD said EBADF).
            let rc = unsafe { libc::dup3(null.as_raw_fd(), fd, libc::O_CLOEXEC) };
            if rc != fd {
                return Err(Error::sys(format!("dup3(/dev/null, {fd})"), Errno::last()));
            }
        } else {
            std::mem::forget(null); // the placeholder stays for the life of crabcan
        }
    }
    Ok(())
}

/// A command started in the container.
pub(crate) struct Entered {
    pid: Pid,
    pty_master: Option<OwnedFd>,
    /// crabcan waits for it (it is crabcan's child, crabcan being its subreaper).
    foreground: bool,
    /// Killed on drop, until waited for or detached.
    armed: bool,
    // Declared last: signals are unblocked only once the command is reaped.
    _blocked: BlockedSignals,
}

/// Starts `config`'s process in `target` (its `argv`, environment, identity, capabilities,
/// rlimits, seccomp filter, `terminal`); descriptors 3 to 3+`preserved`-1 pass to it. Returns
/// once it has exec'd, or with the reason it could not. In the `foreground`, crabcan becomes
/// its subreaper, and [`Entered::wait`] waits for it.
///
/// Must be called from a single-threaded process (checked), as root.
pub(crate) fn spawn(config: &ContainerConfig, target: Target, preserved: u32, foreground: bool) -> Result<Entered> {
    check_privileges()?;
    check_single_threaded()?;
    let (parent_end, child_end) =
        Channel::pair().map_err(|errno| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", errno))?;
    if foreground {
        // The command's parent, the entering process, exits at once: the command must become
        // crabcan's child to be waited for.
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(Error::sys("prctl(PR_SET_CHILD_SUBREAPER)", Errno::last()));
        }
    }
    let blocked = BlockedSignals::block().map_err(|errno| Error::sys("sigprocmask", errno))?;
    let Target {
        pid: target_pid,
        pidfd,
        namespaces,
        cgroup2_dir,
        mut v1_tasks,
    } = target;
    log::debug!(
        "entering the container of process {target_pid}: {} namespaces",
        namespaces.len()
    );
    let entering = match fork_entering_process(cgroup2_dir.as_deref(), &mut v1_tasks)? {
        CloneResult::Child => {
            drop(parent_end);
            let entry = Entry {
                pidfd,
                namespaces,
                cgroup_files: v1_tasks,
                preserved,
            };
            enter_steps::run(config, entry, child_end)
        }
        CloneResult::Parent { child } => child,
    };
    drop((child_end, pidfd, namespaces, v1_tasks));
    let reports = receive_reports(&parent_end);
    // The entering process exits once it has reported; its child, the command, is then
    // crabcan's (foreground) or the caller's subreaper's.
    let _ = waitpid(entering, None);
    match reports {
        Reports {
            pid: Some(pid),
            pty_master,
            failure: None,
        } => {
            log::debug!("the command runs in the container as host pid {pid}");
            Ok(Entered {
                pid,
                pty_master,
                foreground,
                armed: true,
                _blocked: blocked,
            })
        }
        Reports { pid, failure, .. } => {
            if let (true, Some(pid)) = (foreground, pid) {
                let _ = waitpid(pid, None); // it exits after its report
            }
            Err(failure.unwrap_or_else(|| Error::ChildDied {
                how: "the process entering the container exited without a report".into(),
            }))
        }
    }
}

/// Forks the entering process: on cgroup2 straight into the container's cgroup when the kernel
/// can (5.7), otherwise to move itself in through `cgroup.procs`, added to `cgroup_files`.
fn fork_entering_process(cgroup2_dir: Option<&Path>, cgroup_files: &mut Vec<OwnedFd>) -> Result<CloneResult> {
    let fork_failed = |errno| Error::sys("fork (the process that enters the container)", errno);
    if let Some(dir) = cgroup2_dir {
        let dir_fd = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| Error::sys(format!("open({})", dir.display()), errno))?;
        match clone_into_namespaces_and_cgroup(CloneFlags::empty(), dir_fd.as_fd()) {
            Err(Errno::ENOSYS | Errno::E2BIG) => log::debug!("clone3(CLONE_INTO_CGROUP) unavailable; using fork"),
            Err(errno) => {
                return Err(Error::sys(
                    format!(
                        "clone3(CLONE_INTO_CGROUP {}) (the process that enters the container)",
                        dir.display()
                    ),
                    errno,
                ))
            }
            Ok(result) => return Ok(result),
        }
        cgroup_files.push(open_for_writing(&dir.join("cgroup.procs"))?);
    }
    clone_into_namespaces(CloneFlags::empty()).map_err(fork_failed)
}

/// What the entering process and the command's process reported.
struct Reports {
    /// The command's host pid.
    pid: Option<Pid>,
    pty_master: Option<OwnedFd>,
    /// The first failure reported.
    failure: Option<Error>,
}

/// Reads the reports until both processes are done with the socket (the entering one exited,
/// the command's exec'd or exited).
fn receive_reports(channel: &Channel) -> Reports {
    let mut reports = Reports {
        pid: None,
        pty_master: None,
        failure: None,
    };
    loop {
        let received = match channel.receive() {
            Ok(received) => received,
            Err(error) => {
                reports.failure = reports.failure.or(Some(error.into()));
                return reports;
            }
        };
        match received {
            Received::Message(Message::Entered { pid }, _) => reports.pid = Some(Pid::from_raw(pid)),
            Received::Message(Message::PtyMaster, fds) if fds.len() == 1 => reports.pty_master = fds.into_iter().next(),
            Received::Closed => return reports,
            failed @ Received::Message(Message::Failed { .. }, _) => {
                reports.failure = reports.failure.or(exec_outcome(failed).err());
            }
            Received::Message(other, _) => {
                reports.failure = reports.failure.or(Some(Error::Protocol {
                    detail: format!("{other:?} from the process entering the container"),
                }))
            }
        }
    }
}

/// What the event loop of [`Entered::wait`] polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Signals,
    Pty(RelayEnd),
}

impl Entered {
    /// The command's host pid.
    pub(crate) fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// The master of the command's pty, for a caller that hands it on (`--console-socket`)
    /// instead of relaying it.
    pub(crate) fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// Leaves the command to run on its own (`--detach`).
    pub(crate) fn detach(mut self) {
        self.armed = false;
    }

    /// Waits for the command to end (foreground only), forwarding crabcan's signals to it and
    /// relaying its pty to crabcan's terminal meanwhile.
    pub(crate) fn wait(mut self) -> Result<ExitStatus> {
        if !self.foreground {
            return Err(Error::Protocol {
                detail: "a detached command cannot be waited for".into(),
            });
        }
        let signals = Forwarder::to_ordinary_process().map_err(|errno| Error::sys("signalfd", errno))?;
        let master = self.pty_master.take();
        if let Some(master) = &master {
            terminal::size_like_caller(master.as_fd());
        }
        let mut relay = master.as_ref().map(|master| PtyRelay::new(master.as_fd()));
        loop {
            if let Some(status) = self.reap(WaitPidFlag::WNOHANG)? {
                if let Some(relay) = relay.as_mut() {
                    relay.drain();
                }
                return Ok(status);
            }
            let mut sources = vec![(Source::Signals, signals.as_fd())];
            if let Some(relay) = relay.as_ref() {
                sources.extend(relay.open_ends().into_iter().map(|(end, fd)| (Source::Pty(end), fd)));
            }
            for source in ready(&sources)? {
                match source {
                    Source::Signals => {
                        let seen = signals.forward_pending(self.pid);
                        if let (true, Some(master)) = (seen.window_changed, master.as_ref()) {
                            terminal::size_like_caller(master.as_fd());
                        }
                    }
                    Source::Pty(end) => {
                        if let Some(relay) = relay.as_mut() {
                            relay.pump(end);
                        }
                    }
                }
            }
        }
    }

    fn reap(&mut self, flags: WaitPidFlag) -> Result<Option<ExitStatus>> {
        let status = loop {
            match waitpid(self.pid, Some(flags)) {
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(Error::sys(format!("waitpid({})", self.pid), errno)),
                Ok(status) => break status,
            }
        };
        let exit = match status {
            WaitStatus::Exited(_, code) => ExitStatus::Exited(code),
            WaitStatus::Signaled(_, signal, _) => ExitStatus::Signaled(signal as i32),
            _ => return Ok(None),
        };
        self.armed = false;
        Ok(Some(exit))
    }
}

impl Drop for Entered {
    /// A command crabcan could not finish starting (its pid file or console socket failed) is
    /// killed, and reaped when it is crabcan's child.
    fn drop(&mut self) {
        if self.armed {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
            if self.foreground {
                let _ = waitpid(self.pid, None);
            }
        }
    }
}
