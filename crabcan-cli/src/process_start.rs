//! The process's entry point. crabcan starts without Rust's runtime start (`#![no_main]`):
//! on glibc that start asks for the main thread's stack bounds to place a stack-overflow guard,
//! which glibc answers by reading `/proc/self/maps`, with a signal stack and handlers besides:
//! about 0.1 ms of every container's start-to-exit (BENCHMARKS.md). Of what that start does,
//! crabcan needs two things, and does them here first: descriptors 0-2 are open, so nothing
//! crabcan opens later takes their place (and receives its error messages), and SIGPIPE is
//! ignored, so a reader that goes away (`crabcan list | head -1`, a closed pty relay) gives
//! write errors instead of killing crabcan before it removes what it made. A stack overflow is
//! then a plain SIGSEGV instead of a message saying so, and stdout is flushed here at the end.

use std::ffi::{c_char, c_int};
use std::io::Write;
use std::os::fd::{BorrowedFd, IntoRawFd};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigHandler, Signal};
use nix::sys::stat::Mode;

/// Called by the C runtime with the process's arguments, which `std::env::args_os` reads on
/// its own (glibc hands them to Rust's standard library before this runs).
#[no_mangle]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    prepare_process();
    let status = crate::cli_main();
    let _ = std::io::stdout().flush();
    c_int::from(status)
}

/// Opens `/dev/null` on any of descriptors 0-2 that is closed, then ignores SIGPIPE. Failures
/// leave things as they were: there is no one to tell yet (stderr may be the closed one).
fn prepare_process() {
    // SAFETY: 0, 1 and 2 are only polled (a closed one reports POLLNVAL); nothing is read,
    // written or closed through these borrows, and none outlives the poll.
    let stdio = [0, 1, 2].map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
    let mut polled = stdio.map(|fd| PollFd::new(fd, PollFlags::empty()));
    if nix::poll::poll(&mut polled, PollTimeout::ZERO).is_ok() {
        for poll_fd in &polled {
            if poll_fd
                .revents()
                .is_some_and(|events| events.contains(PollFlags::POLLNVAL))
            {
                // The lowest free descriptor is the closed one. It stays open for good, and
                // across execve (no O_CLOEXEC): it is the container command's stdio too.
                if let Ok(null) = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
                    let _ = null.into_raw_fd();
                }
            }
        }
    }
    // SAFETY: SIG_IGN installs no handler code of ours.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}
