//! Terminals. Without a pty the container runs in a new session with no controlling terminal,
//! so TIOCSTI cannot push keystrokes into the caller's shell. With a pty (interactive use), the
//! container opens a pseudo-terminal in its own devpts instance, makes it its controlling
//! terminal and stdio, and hands the master to crabcan over the handshake socket; crabcan puts
//! its own terminal in raw mode and relays bytes and window sizes ([`PtyRelay`]).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, SetArg, Termios};

/// Starts a new session: the container loses the caller's controlling terminal.
pub fn new_session() -> Result<(), Errno> {
    nix::unistd::setsid().map(drop)
}

/// Opens a pty pair in the container's own /dev/pts. Returns (master, slave).
pub fn open_container_pty() -> Result<(OwnedFd, OwnedFd), Errno> {
    let master = nix::fcntl::open(
        "/dev/pts/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer, which is valid for the call.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    // SAFETY: TIOCGPTPEER opens the slave of this master and returns a new descriptor.
    let slave =
        Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY) })?;
    // SAFETY: the kernel just created `slave`; we are its only owner.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    Ok((master, slave))
}

/// Makes `slave` the controlling terminal and fds 0, 1 and 2 of this process.
pub fn attach_stdio(slave: OwnedFd) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument; this process leads a new session.
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        Errno::result(unsafe { libc::dup2(slave.as_raw_fd(), target) })?;
    }
    Ok(())
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// Whether this process is in the foreground process group of terminal `fd` (so it may change
/// its settings and read from it without being stopped by SIGTTOU/SIGTTIN).
pub fn is_foreground(fd: RawFd) -> bool {
    // SAFETY: tcgetpgrp and getpgrp only read the descriptor's and the process's state.
    unsafe { libc::tcgetpgrp(fd) == libc::getpgrp() }
}

/// Copies the window size of terminal `from` to `to` (the pty master).
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    // SAFETY: winsize is plain data; zero is a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into `size`, TIOCSWINSZ reads it.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

/// Puts a terminal in raw mode; the original settings come back when the guard is dropped.
pub struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl RawMode {
    pub fn enable(fd: BorrowedFd<'_>) -> Result<RawMode, Errno> {
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)?;
        Ok(RawMode {
            fd: fd.as_raw_fd(),
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: the descriptor was valid when the guard was made and stdin stays open for the
        // life of crabcan.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// crabcan's own standard streams, for the relay.
fn stdio(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: only used for fds 0 and 1, which stay open for the life of crabcan.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Gives the container's pty (`master`) the window size of crabcan's terminal, if crabcan has
/// one (at start and on SIGWINCH).
pub fn size_like_caller(master: BorrowedFd<'_>) {
    if is_terminal(0) {
        copy_window_size(stdio(0), master);
    }
}

/// One end of the relay that has something to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// The container's pty master: what the container wrote, for crabcan's stdout.
    Master,
    /// crabcan's stdin: what the user typed, for the container.
    Stdin,
}

/// Relays bytes between crabcan's stdin/stdout and the container's pty master, with crabcan's
/// terminal in raw mode for as long as the relay lives.
pub struct PtyRelay<'a> {
    master: BorrowedFd<'a>,
    stdin_open: bool,
    master_open: bool,
    _raw: Option<RawMode>,
}

impl<'a> PtyRelay<'a> {
    /// A relay for `master`; raw mode when stdin is a terminal.
    pub fn new(master: BorrowedFd<'a>) -> PtyRelay<'a> {
        let raw = if is_terminal(0) {
            RawMode::enable(stdio(0)).ok()
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

    /// The ends still open, each with the descriptor to poll for reading.
    pub fn open_ends(&self) -> Vec<(RelayEnd, BorrowedFd<'a>)> {
        let mut ends = Vec::with_capacity(2);
        if self.master_open {
            ends.push((RelayEnd::Master, self.master));
        }
        if self.stdin_open {
            ends.push((RelayEnd::Stdin, stdio(0)));
        }
        ends
    }

    /// Copies what `end` has to the other side; an end at EOF or failing is closed.
    pub fn pump(&mut self, end: RelayEnd) {
        match end {
            RelayEnd::Master => {
                if !copy_once(self.master, stdio(1)) {
                    self.master_open = false;
                }
            }
            RelayEnd::Stdin => {
                if !copy_once(stdio(0), self.master) {
                    self.stdin_open = false;
                }
            }
        }
    }

    /// Copies what the container wrote before it exited.
    pub fn drain(&mut self) {
        if !self.master_open {
            return;
        }
        let mut fds = [PollFd::new(self.master, PollFlags::POLLIN)];
        while matches!(nix::poll::poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            if !copy_once(self.master, stdio(1)) {
                break;
            }
        }
    }
}

/// Reads once from `from` and writes it all to `to`. False at end of file or on error.
fn copy_once(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buffer = [0u8; 8192];
    let count = match nix::unistd::read(from, &mut buffer) {
        Ok(0) | Err(_) => return false,
        Ok(count) => count,
    };
    let mut written = 0;
    while written < count {
        match nix::unistd::write(to, &buffer[written..count]) {
            Ok(n) => written += n,
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return false,
        }
    }
    true
}
