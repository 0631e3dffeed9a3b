//! Signals: which ones crabcan forwards to the container, blocking them in crabcan so they are
//! read from a signalfd instead of interrupting it, and resetting the container process's
//! dispositions and mask before execve (Rust ignores SIGPIPE at start-up; a command must not
//! inherit that).

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

/// Signals crabcan passes on to the container's first process.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Everything crabcan's event loop reads from its signalfd.
pub fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for signal in FORWARDED {
        set.add(signal);
    }
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGWINCH);
    set
}

/// Blocks `handled()` in crabcan, and SIGTTIN and SIGTTOU, so crabcan is never stopped by
/// job control while it holds a container (a terminal read or setting from the background then
/// fails or proceeds instead); the returned guard restores the previous mask.
pub struct BlockedSignals {
    previous: SigSet,
}

impl BlockedSignals {
    pub fn block() -> Result<BlockedSignals, Errno> {
        let mut set = handled();
        set.add(Signal::SIGTTIN);
        set.add(Signal::SIGTTOU);
        let mut previous = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut previous))?;
        Ok(BlockedSignals { previous })
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}

/// Whether the container's first process, `pid`, would drop `signal` although its action is
/// the default one. The kernel never applies a default action to the init of a pid namespace
/// (a signal it neither catches nor ignores is discarded), so `sleep` as the container's
/// command would never end on SIGTERM, nor an interactive shell on SIGHUP when its terminal
/// closes. Reads SigCgt and SigIgn of `/proc/<pid>/status`; false when they cannot be read.
pub fn init_would_discard(pid: nix::unistd::Pid, signal: Signal) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    };
    let bit = 1u64 << (signal as i32 - 1);
    match (mask("SigCgt:"), mask("SigIgn:")) {
        (Some(caught), Some(ignored)) => (caught | ignored) & bit == 0,
        _ => false,
    }
}

/// What [`Forwarder::forward_pending`] saw besides signals it passed on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    /// The terminal's size changed (SIGWINCH): the pty should follow.
    pub window_changed: bool,
    /// A signal whose default action crabcan applied for the container's init (it was killed
    /// with SIGKILL): the exit status should report this signal rather than SIGKILL.
    pub emulated: Option<Signal>,
}

/// Reads the signals blocked by [`BlockedSignals`] from a signalfd and passes them on to the
/// container's first process.
pub struct Forwarder {
    fd: SignalFd,
    /// The target is a pid namespace's init (see [`Forwarder::forward_pending`]).
    to_init: bool,
}

impl Forwarder {
    /// A non-blocking signalfd for [`handled`], forwarding to a container's first process (the
    /// init of its pid namespace).
    pub fn new() -> Result<Forwarder, Errno> {
        SignalFd::with_flags(&handled(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map(|fd| Forwarder { fd, to_init: true })
    }

    /// The same, forwarding to an ordinary process of the container (`crabcan exec`'s): the
    /// kernel applies default actions to it, so every signal is passed on as it is.
    pub fn to_ordinary_process() -> Result<Forwarder, Errno> {
        Forwarder::new().map(|forwarder| Forwarder {
            to_init: false,
            ..forwarder
        })
    }

    /// The descriptor to poll.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// Forwards what arrived to `child`; SIGCHLD just wakes the caller. Where the child would
    /// discard the signal ([`init_would_discard`]: it has the default action, which the kernel
    /// never applies to a pid namespace's init) crabcan applies that default action itself:
    /// the forwarded signals all terminate by default, so it kills the child and reports the
    /// signal. This also covers a container still held before execve.
    pub fn forward_pending(&self, child: Pid) -> Forwarded {
        let mut seen = Forwarded::default();
        while let Ok(Some(info)) = self.fd.read_signal() {
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match signal {
                Signal::SIGCHLD => {}
                Signal::SIGWINCH => seen.window_changed = true,
                forwarded if self.to_init && init_would_discard(child, forwarded) => {
                    log::debug!("{forwarded}: the container's init has no handler, so crabcan ends it");
                    let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                    seen.emulated = Some(forwarded);
                }
                forwarded => {
                    log::debug!("forwarding {forwarded} to the container");
                    let _ = nix::sys::signal::kill(child, forwarded);
                }
            }
        }
        seen
    }
}

/// In the container process: every signal back to its default action, none blocked.
pub fn reset_for_exec() -> Result<(), Errno> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no handler code of ours.
        unsafe { sigaction(signal, &default) }?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_with_default_actions_is_told_apart_from_one_with_handlers() {
        // This test process: SIGPIPE is ignored by Rust's runtime, SIGUSR2 has no handler.
        let me = nix::unistd::getpid();
        assert!(init_would_discard(me, Signal::SIGUSR2));
        assert!(!init_would_discard(me, Signal::SIGPIPE));
        assert!(
            !init_would_discard(nix::unistd::Pid::from_raw(i32::MAX), Signal::SIGTERM),
            "no such process"
        );
    }
}
