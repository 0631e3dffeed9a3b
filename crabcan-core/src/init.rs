//! `--init`: a minimal init as the container's pid 1, in crabcan itself (no binary in the
//! rootfs), like `docker run --init`. The kernel discards a signal sent to a pid namespace's
//! init unless the init has a handler for it, and nobody else reaps orphans there; a command
//! such as `sleep` or a server never written to be pid 1 therefore ignores Ctrl-C and SIGTERM
//! and leaves zombies. With `--init` the container's first process forks: the child becomes
//! the command (in its own process group, the terminal's foreground one when there is a
//! terminal, so Ctrl-C reaches it and not the init), and the parent stays as pid 1: it forwards
//! every signal it receives to the command, reaps every process that ends, and exits with the
//! command's status (128+N when the command was killed by signal N).

use crabcan_seccomp::CompiledFilter;
use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use crate::error::EXIT_SETUP_FAILED;

/// Forks the init. Returns in the child, which goes on to become the command; the parent
/// (closing `command_only`: its copies of the handshake socket and of the start FIFO, so
/// whoever waits on them still sees the command's execve as their end) runs the init loop and
/// never returns.
pub fn fork_init(command_only: &[std::os::fd::RawFd], filter: Option<&CompiledFilter>) -> Result<(), Errno> {
    // Blocked across the fork: no signal may be lost between fork and the init's loop, and
    // SIGTTOU must not stop the child while it takes the terminal's foreground.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None)?;
    // SAFETY: the container process is single-threaded (crabcan-core refuses to clone from a
    // multi-threaded process), so the child of fork may run any code.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            become_foreground_job()?;
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        }
        ForkResult::Parent { child } => {
            for fd in command_only {
                // SAFETY: closing the init's copies of descriptors only the command uses.
                unsafe { libc::close(*fd) };
            }
            hide_command_line();
            let code = match prepare_and_run(child, filter) {
                Ok(code) => code,
                Err(_) => EXIT_SETUP_FAILED,
            };
            // SAFETY: _exit ends the init without running the parent program's destructors.
            unsafe { libc::_exit(code) }
        }
    }
}

/// In the command's process: a process group of its own, made the terminal's foreground group
/// when stdin is the container's terminal.
fn become_foreground_job() -> Result<(), Errno> {
    nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
    if crate::terminal::is_terminal(0) {
        // SAFETY: fd 0 stays open for the life of this process.
        let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        match nix::unistd::tcsetpgrp(stdin, nix::unistd::getpid()) {
            // ENOTTY: a terminal that is not this session's controlling one; nothing to take.
            Ok(()) | Err(Errno::ENOTTY) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// What the init shows as its command line and name inside the container.
const INIT_NAME: &[u8] = b"crabcan-init";

/// The init is a fork of crabcan: its command line (readable by every process of the
/// container in /proc/1/cmdline) would show crabcan's host-side arguments, the rootfs path
/// among them. Overwrites the argument area in place with "crabcan-init" and NUL bytes, and
/// renames the thread. Best effort: a failure leaves the old line.
fn hide_command_line() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may hold spaces; arg_start and
    // arg_end are fields 48 and 49 of proc(5), i.e. the 46th and 47th after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let (Some(Ok(start)), Some(Ok(end))) = (
        fields.get(45).map(|f| f.parse::<usize>()),
        fields.get(46).map(|f| f.parse::<usize>()),
    ) else {
        return;
    };
    if end <= start || end - start <= INIT_NAME.len() {
        return;
    }
    // SAFETY: [arg_start, arg_end) is this process's own argument area, mapped writable on its
    // stack by the kernel at execve; Rust's runtime copied what it needs from it at start-up,
    // and this single-threaded process reads nothing from it afterwards.
    unsafe {
        std::ptr::write_bytes(start as *mut u8, 0, end - start);
        std::ptr::copy_nonoverlapping(INIT_NAME.as_ptr(), start as *mut u8, INIT_NAME.len());
        libc::prctl(libc::PR_SET_NAME, c"crabcan-init".as_ptr());
    }
}

extern "C" fn ignore(_: libc::c_int) {}

fn prepare_and_run(command: Pid, filter: Option<&CompiledFilter>) -> Result<i32, Errno> {
    // A handler (never run: every signal stays blocked and is taken with sigwait) is what makes
    // the kernel deliver a signal to a pid namespace's init at all.
    let catch = SigAction::new(SigHandler::Handler(ignore), SaFlags::SA_RESTART, SigSet::empty());
    for signal in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: the handler does nothing, so it is async-signal-safe.
        unsafe { sigaction(signal, &catch) }?;
    }
    if let Some(filter) = filter {
        filter.install().map_err(|_| Errno::EPERM)?;
    }
    run_loop(command)
}

/// Forwards signals to `command` and reaps children until `command` ends; its status.
fn run_loop(command: Pid) -> Result<i32, Errno> {
    let all = SigSet::all();
    loop {
        let signal = all.wait()?;
        if signal != Signal::SIGCHLD {
            // ESRCH: the command just ended; its SIGCHLD is queued.
            let _ = nix::sys::signal::kill(command, signal);
            continue;
        }
        if let Some(code) = reap_all(command)? {
            return Ok(code);
        }
    }
}

/// Reaps every child that has ended; the exit code for the command once it is among them.
fn reap_all(command: Pid) -> Result<Option<i32>, Errno> {
    loop {
        let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) | Ok(WaitStatus::StillAlive) => return Ok(None),
            Err(errno) => return Err(errno),
            Ok(status) => status,
        };
        match status {
            WaitStatus::Exited(pid, code) if pid == command => return Ok(Some(code)),
            WaitStatus::Signaled(pid, signal, _) if pid == command => return Ok(Some(128 + signal as i32)),
            _ => {}
        }
    }
}
