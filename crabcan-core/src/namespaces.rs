//! Cloning the container's first process into its new namespaces, and the parent's side of the
//! user namespace: writing `/proc/<pid>/uid_map` and `gid_map`.
//!
//! The clone has fork semantics (no new stack, no shared memory): the child runs on a
//! copy-on-write copy of the parent's memory, which is why crabcan must be single-threaded when
//! it clones. The cgroup namespace is not part of the clone: the child unshares it only after the
//! parent has moved it into its cgroup, so that cgroup becomes the root the container sees.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::spec::IdRange;

/// The namespaces the container's process is cloned into: a user namespace when it has id
/// maps of its own, and always new mount, pid, uts, ipc and net namespaces.
pub fn clone_flags(user_namespace: bool) -> CloneFlags {
    let user = if user_namespace {
        CloneFlags::CLONE_NEWUSER
    } else {
        CloneFlags::empty()
    };
    user | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
}

/// Which side of the clone we are on.
pub enum CloneResult {
    Parent { child: Pid },
    Child,
}

/// `struct clone_args` of clone3(2), up to the `cgroup` field (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) with fork semantics straight into the cgroup v2 directory `cgroup`: the child is
/// born in its cgroup, so no migration (and no wait for an RCU grace period the kernel needs to
/// move a task) is on the start-up path. ENOSYS or E2BIG on kernels before 5.7.
pub fn clone_into_namespaces_and_cgroup(flags: CloneFlags, cgroup: BorrowedFd<'_>) -> Result<CloneResult, Errno> {
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: like `clone_into_namespaces`: no CLONE_VM and no stack, so the child continues here
    // on a copy of the address space; `args` is a valid clone_args whose size is passed.
    let result = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match result {
        -1 => Err(Errno::last()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// clone(2) with fork semantics into new namespaces. The child gets SIGCHLD as exit signal.
pub fn clone_into_namespaces(flags: CloneFlags) -> Result<CloneResult, Errno> {
    // SAFETY: a clone without CLONE_VM and with a NULL stack behaves like fork(2): the child gets
    // its own copy of the address space and continues here. The caller is single-threaded (no
    // lock can be held by another thread), and the child only runs our setup code, then execve
    // or _exit.
    let result = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() as libc::c_long) | libc::SIGCHLD as libc::c_long,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match result {
        -1 => Err(Errno::last()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// Writes the child's uid and gid maps. crabcan runs as root, so `setgroups` stays allowed and
/// the container can manage its supplementary groups.
pub fn write_id_maps(child: Pid, uid_map: &IdRange, gid_map: &IdRange) -> Result<(), crate::Error> {
    for (file, range) in [("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = format!("/proc/{child}/{file}");
        std::fs::write(&path, range.map_line()).map_err(|error| {
            let errno = Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO));
            crate::Error::sys(format!("writing {:?} to {path}", range.map_line().trim_end()), errno)
        })?;
    }
    Ok(())
}
