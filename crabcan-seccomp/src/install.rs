//! Installing a [`CompiledFilter`] on the calling thread with `seccomp(2)`
//! (fallback: `prctl(PR_SET_SECCOMP)`), and setting `PR_SET_NO_NEW_PRIVS`.
//! Nothing here allocates: it is meant to run in a freshly cloned child
//! right before `execve`.

use std::io;

use crate::compile::CompiledFilter;
use crate::error::SeccompError;
use crate::profile::Profile;

/// `SECCOMP_SET_MODE_FILTER` operation of `seccomp(2)`.
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a listener for the filter's notifications.
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;

/// `SECCOMP_MODE_FILTER` for `prctl(PR_SET_SECCOMP)`.
const SECCOMP_MODE_FILTER: libc::c_ulong = 2;

/// Sets `PR_SET_NO_NEW_PRIVS` on the calling thread (inherited by children
/// and kept across `execve`): setuid binaries stop gaining privileges, and
/// an unprivileged thread may then install seccomp filters. Cannot be undone.
/// Does not allocate.
pub fn set_no_new_privs() -> Result<(), SeccompError> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc != 0 {
        return Err(SeccompError::NoNewPrivs {
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

impl CompiledFilter {
    /// Installs the filter on the calling thread (and everything it later
    /// forks or execs). Does not allocate, so it is safe in a child created
    /// by `clone()`/`fork()` of a multi-threaded parent.
    ///
    /// The caller must have set `PR_SET_NO_NEW_PRIVS` first (see
    /// [`set_no_new_privs`]) unless the thread has `CAP_SYS_ADMIN`;
    /// otherwise this returns [`SeccompError::NeedsNoNewPrivs`].
    /// Install it last, right before `execve`: from then on, the calling
    /// code is filtered too.
    pub fn install(&self) -> Result<(), SeccompError> {
        let program = self.fprog();
        let errno = match seccomp_set_mode_filter(&program) {
            Ok(()) => return Ok(()),
            Err(errno) if errno == libc::ENOSYS => match prctl_set_seccomp(&program) {
                Ok(()) => return Ok(()),
                Err(errno) => errno,
            },
            Err(errno) => errno,
        };
        if errno == libc::EACCES {
            return Err(SeccompError::NeedsNoNewPrivs);
        }
        Err(SeccompError::Install {
            source: io::Error::from_raw_os_error(errno),
        })
    }

    /// Installs the filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER` and returns the listener
    /// descriptor (close-on-exec) the kernel made for its `SECCOMP_RET_USER_NOTIF` calls.
    /// Linux 5.0+; a thread may have one listener in its filter chain. Does not allocate.
    pub(crate) fn install_with_listener(&self) -> Result<libc::c_int, SeccompError> {
        let program = self.fprog();
        // SAFETY: as in `seccomp_set_mode_filter`; the kernel copies the program.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &program as *const libc::sock_fprog,
            )
        };
        if rc >= 0 {
            // A descriptor number always fits an int.
            return Ok(rc as libc::c_int);
        }
        match last_errno() {
            libc::EACCES => Err(SeccompError::NeedsNoNewPrivs),
            errno => Err(SeccompError::Install {
                source: io::Error::from_raw_os_error(errno),
            }),
        }
    }

    /// The program as the kernel takes it.
    fn fprog(&self) -> libc::sock_fprog {
        libc::sock_fprog {
            // Never truncates: a CompiledFilter holds at most 4096 instructions.
            len: self.program.len() as libc::c_ushort,
            filter: self.program.as_ptr().cast_mut(),
        }
    }

    /// Sets `PR_SET_NO_NEW_PRIVS`, then [`installs`](CompiledFilter::install)
    /// the filter. Does not allocate.
    pub fn install_with_no_new_privs(&self) -> Result<(), SeccompError> {
        set_no_new_privs()?;
        self.install()
    }
}

impl Profile {
    /// Compiles the profile and installs it on the calling thread, setting
    /// `PR_SET_NO_NEW_PRIVS` first: for programs that just want to filter
    /// themselves. (crabcan instead compiles in the parent and installs the
    /// [`CompiledFilter`] in the child.)
    pub fn load(&self) -> Result<(), SeccompError> {
        self.compile()?.install_with_no_new_privs()
    }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, program)`; `Err(errno)` on failure.
fn seccomp_set_mode_filter(program: &libc::sock_fprog) -> Result<(), i32> {
    // SAFETY: `program` points to a valid sock_fprog whose `filter` points
    // to `len` instructions; the kernel copies them before returning.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            0 as libc::c_ulong,
            program as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, program)` for kernels < 3.17.
fn prctl_set_seccomp(program: &libc::sock_fprog) -> Result<(), i32> {
    // SAFETY: as above; the kernel copies the program.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            SECCOMP_MODE_FILTER,
            program as *const libc::sock_fprog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// errno of the last failed call, without allocating.
fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}
