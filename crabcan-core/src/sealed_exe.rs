//! Running crabcan from a sealed in-memory copy of itself, against CVE-2019-5736.
//!
//! `crabcan exec` forks processes that enter a running container. While they set up, before
//! their execve, `/proc/<pid>/exe` of each names the program they run: were that the host's
//! crabcan binary, a process of the container allowed to open it (the CVE: runc's) could write
//! through it and replace crabcan on the host. So before `exec` joins anything, crabcan copies
//! its binary into a memfd, seals it (`F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW |
//! F_SEAL_WRITE`: nobody can change it any more, not even crabcan) and re-executes itself from
//! it with the same arguments and environment, as runc and crun do. `/proc/<pid>/exe` then
//! names that sealed copy, which no one can write, and the host binary is never reachable.
//!
//! The copy costs a memfd the size of the binary and one `sendfile`; only `exec` pays it (the
//! direct mode and `create`/`start` never join a container that runs user code).

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::MFdFlags;
use nix::sys::stat::Mode;

/// The file the running program was executed from.
const SELF_EXE: &str = "/proc/self/exe";

/// The name of the copy, as `/proc/<pid>/exe` shows it (`/memfd:crabcan-sealed (deleted)`).
const MEMFD_NAME: &std::ffi::CStr = c"crabcan-sealed";

/// `MFD_EXEC` (Linux 6.3): the memfd may be executed even where `vm.memfd_noexec` makes memfds
/// non-executable by default. Older kernels refuse the flag, and every memfd is executable there.
const MFD_EXEC: u32 = 0x10;

/// The seals that make the copy immutable.
fn required_seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

/// Making or running the sealed copy failed, or this process does not run from one.
#[derive(Debug, thiserror::Error)]
pub enum SealedExeError {
    /// A syscall failed.
    #[error("cannot run crabcan from a sealed copy of itself (CVE-2019-5736): {what} failed: {errno}")]
    Sys {
        /// The syscall and path, e.g. `sendfile(/proc/self/exe -> memfd)`.
        what: &'static str,
        /// The errno.
        errno: Errno,
    },
    /// [`require_sealed`]: this process runs from a file anyone with access to it could
    /// write.
    #[error("entering a container needs crabcan to run from a sealed copy of itself (CVE-2019-5736), not from {path}: call crabcan_core::sealed_exe::reexec_sealed() first")]
    NotSealed {
        /// What `/proc/self/exe` names.
        path: std::path::PathBuf,
    },
}

fn failed(what: &'static str) -> impl FnOnce(Errno) -> SealedExeError {
    move |errno| SealedExeError::Sys { what, errno }
}

/// [`SealedExeError::NotSealed`] unless this process runs from a sealed copy.
pub fn require_sealed() -> Result<(), SealedExeError> {
    if running_sealed()? {
        return Ok(());
    }
    Err(SealedExeError::NotSealed {
        path: std::fs::read_link(SELF_EXE).unwrap_or_else(|_| SELF_EXE.into()),
    })
}

/// Whether this process runs from a sealed memfd copy ([`reexec_sealed`] made it, or it was
/// started from one).
pub fn running_sealed() -> Result<bool, SealedExeError> {
    let exe = nix::fcntl::open(SELF_EXE, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(failed("open(/proc/self/exe)"))?;
    Ok(is_sealed(&exe))
}

/// Whether `file` is a memfd carrying every seal of [`required_seals`]. A file that cannot
/// be sealed (any other filesystem) answers EINVAL: not sealed.
fn is_sealed(file: &OwnedFd) -> bool {
    nix::fcntl::fcntl(file, FcntlArg::F_GET_SEALS)
        .map(SealFlag::from_bits_truncate)
        .is_ok_and(|seals| seals.contains(required_seals()))
}

/// Re-executes this program from a sealed memfd copy of its binary, with the same arguments
/// and environment, unless it already runs from one (then it returns `Ok`). On success the
/// process image is replaced and this never returns; the descriptors that are not
/// close-on-exec stay open, the copy's own descriptor does not.
pub fn reexec_sealed() -> Result<(), SealedExeError> {
    let exe = nix::fcntl::open(SELF_EXE, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(failed("open(/proc/self/exe)"))?;
    if is_sealed(&exe) {
        return Ok(());
    }
    let copy = sealed_copy(&exe)?;
    drop(exe);
    let to_c = |text: OsString| CString::new(text.into_vec()).map_err(|_| Errno::EINVAL);
    let args = std::env::args_os()
        .map(to_c)
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed("reading the command line (a NUL byte)"))?;
    let env = std::env::vars_os()
        .map(|(key, value)| {
            let mut pair = key;
            pair.push("=");
            pair.push(value);
            to_c(pair)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed("reading the environment (a NUL byte)"))?;
    log::debug!("re-executing from a sealed memfd copy of crabcan");
    let Err(errno) = nix::unistd::fexecve(copy.as_fd(), &args, &env);
    Err(failed("fexecve(the sealed memfd copy of /proc/self/exe)")(errno))
}

/// A memfd holding a copy of `exe`, sealed against every change.
fn sealed_copy(exe: &OwnedFd) -> Result<OwnedFd, SealedExeError> {
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let copy = match nix::sys::memfd::memfd_create(MEMFD_NAME, flags | MFdFlags::from_bits_retain(MFD_EXEC)) {
        Err(Errno::EINVAL) => nix::sys::memfd::memfd_create(MEMFD_NAME, flags),
        other => other,
    }
    .map_err(failed("memfd_create(MFD_ALLOW_SEALING)"))?;
    let size = nix::sys::stat::fstat(exe)
        .map_err(failed("fstat(/proc/self/exe)"))?
        .st_size;
    let mut copied: i64 = 0;
    while copied < size {
        let left = usize::try_from(size - copied).unwrap_or(usize::MAX);
        match nix::sys::sendfile::sendfile(&copy, exe, None, left) {
            Ok(0) => return Err(failed("sendfile(/proc/self/exe -> memfd)")(Errno::EIO)),
            Ok(count) => copied += count as i64,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(failed("sendfile(/proc/self/exe -> memfd)")(errno)),
        }
    }
    nix::fcntl::fcntl(&copy, FcntlArg::F_ADD_SEALS(required_seals())).map_err(failed("fcntl(memfd, F_ADD_SEALS)"))?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_whole_sealed_and_unwritable() {
        let exe = nix::fcntl::open(SELF_EXE, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        assert!(!is_sealed(&exe), "the test binary is a file on disk");
        assert!(!running_sealed().unwrap());
        let copy = sealed_copy(&exe).unwrap();
        assert!(is_sealed(&copy));
        let original = std::fs::read(SELF_EXE).unwrap();
        let copied = std::fs::read(crate::safe_path::fd_path(&copy)).unwrap();
        assert!(copied == original, "the copy differs from the binary");
        assert_eq!(
            nix::unistd::write(&copy, b"x"),
            Err(Errno::EPERM),
            "a sealed copy is written"
        );
        assert_eq!(nix::unistd::ftruncate(&copy, 0), Err(Errno::EPERM));
    }
}
