//! A learning run in a forked child (no root needed: the child sets PR_SET_NO_NEW_PRIVS): the
//! child installs the learning filter and hands its listener over a socketpair, makes a few
//! raw syscalls and exits; this process supervises it. What was allowed is learned, what the
//! default profile denies is reported and failed with the profile's errno, and the child's
//! own view of each call is what the enforced profile would have given it.
//! x86_64 only: the raw calls use x86_64 numbers.
#![cfg(target_arch = "x86_64")]

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crabcan_seccomp::{check_kernel_for_learning, Action, Learned, LearningFilter, Profile};

/// Bits of the child's exit status: one per check that failed.
const GETPID_FAILED: i32 = 1;
const KEYCTL_NOT_EPERM: i32 = 2;
const CLONE3_NOT_ENOSYS: i32 = 4;
const MOUNT_NOT_EPERM: i32 = 8;
const SETUP_FAILED: i32 = 64;

fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "socketpair");
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn raw(nr: libc::c_long, a: u64, b: u64) -> i64 {
    // SAFETY: integer arguments only; no memory is passed.
    let rc = unsafe { libc::syscall(nr, a, b, 0u64, 0u64, 0u64, 0u64) };
    if rc == -1 {
        // SAFETY: reading this thread's errno.
        -(unsafe { *libc::__errno_location() } as i64)
    } else {
        rc
    }
}

/// In the child: raw syscalls only, then exit with the failed checks.
fn child_main(filter: &LearningFilter, socket: RawFd, confined: bool) -> ! {
    // SAFETY: prctl with integers.
    let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    // SAFETY: `socket` is open in this process for the duration of the call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(socket) };
    if nnp != 0 || filter.install_and_hand_over(borrowed, b"L", 99).is_err() {
        // SAFETY: leaving the child at once.
        unsafe { libc::_exit(SETUP_FAILED) };
    }
    let mut failed = 0;
    if raw(libc::SYS_getpid, 0, 0) <= 0 {
        failed |= GETPID_FAILED;
    }
    let keyctl = raw(libc::SYS_keyctl, 0, u64::MAX - 2); // KEYCTL_GET_KEYRING_ID, session keyring
    let clone3 = raw(libc::SYS_clone3, 0, 0);
    let mount = raw(libc::SYS_mount, 0, 0);
    // A number no table has, and one beyond what the supervisor records one by one.
    let unknown = raw(1000, 0, 0);
    let far = raw(70_000, 0, 0);
    if confined && (unknown != -(libc::ENOSYS as i64) || far != -(libc::ENOSYS as i64)) {
        failed |= CLONE3_NOT_ENOSYS;
    }
    if confined {
        failed |= if keyctl == -(libc::EPERM as i64) {
            0
        } else {
            KEYCTL_NOT_EPERM
        };
        failed |= if clone3 == -(libc::ENOSYS as i64) {
            0
        } else {
            CLONE3_NOT_ENOSYS
        };
        failed |= if mount == -(libc::EPERM as i64) {
            0
        } else {
            MOUNT_NOT_EPERM
        };
    }
    // SAFETY: as above.
    unsafe { libc::_exit(failed) }
}

/// Receives the listener the child sends on `socket`.
fn receive_listener(socket: &OwnedFd) -> OwnedFd {
    let mut payload = [0u8; 16];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every buffer of `message` lives across the call.
    let received = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC) };
    assert!(received > 0, "the child sent no listener");
    assert_eq!(&payload[..received as usize], b"L");
    // SAFETY: the kernel filled a cmsghdr with one descriptor into `control`.
    let fd = unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        assert!(!header.is_null() && (*header).cmsg_type == libc::SCM_RIGHTS);
        std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<RawFd>())
    };
    // SAFETY: the descriptor was just installed in this process; nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Forks a child that learns under `enforced`; supervises it; its exit status and what was learned.
fn learn(enforced: Option<&Profile>) -> (i32, Learned) {
    check_kernel_for_learning().expect("this kernel can learn");
    let (parent_end, child_end) = socketpair();
    let filter = LearningFilter::new(enforced, child_end.as_raw_fd()).expect("compiles");
    // SAFETY: the child makes raw syscalls only before _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        child_main(&filter, child_end.as_raw_fd(), enforced.is_some());
    }
    drop(child_end);
    let mut supervisor = filter.supervisor(receive_listener(&parent_end));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break status;
        }
        assert!(Instant::now() < deadline, "the child never ended");
        let mut poll = libc::pollfd {
            fd: supervisor.listener().as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut poll, 1, 50) } > 0 && poll.revents & libc::POLLIN != 0 {
            supervisor.answer_one().expect("answers");
        }
    };
    assert!(libc::WIFEXITED(status), "the child was killed: status {status:#x}");
    (libc::WEXITSTATUS(status), supervisor.finish())
}

#[test]
fn denied_calls_are_reported_and_fail_as_the_default_profile_says() {
    let (code, learned) = learn(Some(&Profile::default_profile()));
    assert_eq!(code, 0, "failed checks (bits): {code}");
    assert!(learned.confined);
    for name in ["getpid", "exit_group"] {
        assert!(learned.allowed.contains(name), "{name} learned: {learned:?}");
    }
    assert!(
        !learned.allowed.contains("sendmsg"),
        "the hand-over is not the program's"
    );
    assert_eq!(learned.denied.get("keyctl"), Some(&Action::Errno(libc::EPERM as u32)));
    assert_eq!(learned.denied.get("mount"), Some(&Action::Errno(libc::EPERM as u32)));
    assert_eq!(learned.denied.get("clone3"), Some(&Action::Errno(libc::ENOSYS as u32)));
    assert!(!learned.allowed.contains("keyctl") && !learned.allowed.contains("mount"));
    assert!(learned.unnamed.contains(&1000), "{learned:?}");
    assert!(learned.unnamed.contains(&crabcan_seccomp::OUT_OF_RANGE), "{learned:?}");
}

#[test]
fn an_unconfined_run_learns_everything() {
    let (code, learned) = learn(None);
    assert_eq!(code, 0);
    assert!(!learned.confined && learned.denied.is_empty());
    for name in ["getpid", "keyctl", "clone3", "mount", "exit_group"] {
        assert!(learned.allowed.contains(name), "{name} learned: {learned:?}");
    }
}

#[test]
fn a_failed_hand_over_ends_the_process_with_the_status_given() {
    let (parent_end, child_end) = socketpair();
    let filter = LearningFilter::new(Some(&Profile::default_profile()), child_end.as_raw_fd()).unwrap();
    // SAFETY: the child makes raw syscalls only before _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // The socket can send no more, so the hand-over fails with EPIPE. (Closing this
        // test's end would not do: a child another test forks meanwhile may hold a copy.)
        // SAFETY: shutdown and prctl with integers.
        unsafe {
            libc::shutdown(child_end.as_raw_fd(), libc::SHUT_WR);
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        }
        let _ = filter.install_and_hand_over(child_end.as_fd(), b"L", 7);
        // SAFETY: not reached when the hand-over failed as it should.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7,
        "status {status:#x}"
    );
    drop(parent_end);
}

#[test]
fn a_socket_other_than_the_one_compiled_for_is_refused_before_installing() {
    let (_parent_end, child_end) = socketpair();
    let (_other, other_end) = socketpair();
    let filter = LearningFilter::new(None, child_end.as_raw_fd()).unwrap();
    assert!(filter.install_and_hand_over(other_end.as_fd(), b"L", 1).is_err());
}

#[test]
fn profiles_a_learning_run_cannot_use_are_refused() {
    let kill_by_default = Profile {
        default_action: Action::KillProcess,
        rules: vec![crabcan_seccomp::Rule::new("execve", Action::Allow)],
    };
    assert!(LearningFilter::new(Some(&kill_by_default), 3).is_err());
    let no_sendmsg = Profile {
        default_action: Action::Errno(1),
        rules: vec![
            crabcan_seccomp::Rule::new("execve", Action::Allow),
            crabcan_seccomp::Rule::new("exit_group", Action::Allow),
        ],
    };
    let error = LearningFilter::new(Some(&no_sendmsg), 3).unwrap_err();
    assert!(error.to_string().contains("sendmsg"), "{error}");
}
