//! Signals: which ones crabcan forwards to the container, blocking them in crabcan so they are
//! read from a signalfd instead of interrupting it, and resetting the container process's
//! dispositions and mask before execve (Rust ignores SIGPIPE at start-up; a command must not
//! inherit that).

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

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

/// Blocks `handled()` in crabcan; the returned guard restores the previous mask.
pub struct BlockedSignals {
    previous: SigSet,
}

impl BlockedSignals {
    pub fn block() -> Result<BlockedSignals, Errno> {
        let mut previous = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled()), Some(&mut previous))?;
        Ok(BlockedSignals { previous })
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
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
