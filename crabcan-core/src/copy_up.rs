//! `tmpcopyup` (an OCI mount option podman sends for `--tmpfs` and `--read-only`): a tmpfs
//! mounted over a directory of the image starts with that directory's contents. The directory
//! is opened before the tmpfs covers it; afterwards its entries are copied from that descriptor
//! into the new tmpfs, every step relative to a descriptor and without following symlinks, so
//! a hostile image cannot send the copy outside the two trees. Regular files, directories and
//! symlinks are copied with their modes and owners; device nodes, FIFOs and sockets are not
//! (the container's mounts are nodev; a FIFO or socket of an image means nothing in a fresh
//! tmpfs).

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

/// How deep a copied tree may go: an image's tree deeper than this is refused (ELOOP) rather
/// than copied with unbounded recursion.
const MAX_DEPTH: usize = 64;

/// Copies the entries of the directory `from` into the directory `to` (both readable
/// directory descriptors), recursively.
pub fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    copy_entries(from, to, 0)
}

/// Opens the directory `name` below `dir` for reading, never through a symlink.
fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fd)
}

/// Reopens a directory descriptor (an `O_PATH` one too) for reading its entries.
pub fn readable_dir(dir: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    open_dir_at(dir, c".")
}

fn copy_entries(from: BorrowedFd<'_>, to: BorrowedFd<'_>, depth: usize) -> Result<(), Errno> {
    if depth > MAX_DEPTH {
        return Err(Errno::ELOOP);
    }
    let listing = nix::dir::Dir::from_fd(readable_dir(from)?)?;
    let names: Vec<CString> = listing
        .into_iter()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_owned())
        .filter(|name| name.as_bytes() != b"." && name.as_bytes() != b"..")
        .collect();
    for name in names {
        copy_entry(from, to, &name, depth)?;
    }
    Ok(())
}

fn copy_entry(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &CStr, depth: usize) -> Result<(), Errno> {
    let stat = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
    let mode = Mode::from_bits_truncate(stat.st_mode & 0o7777);
    let owner = (Some(Uid::from_raw(stat.st_uid)), Some(Gid::from_raw(stat.st_gid)));
    match kind {
        SFlag::S_IFDIR => {
            match mkdirat(to, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(errno) => return Err(errno),
            }
            let source = open_dir_at(from, name)?;
            let target = open_dir_at(to, name)?;
            copy_entries(source.as_fd(), target.as_fd(), depth + 1)?;
            fchownat(to, name, owner.0, owner.1, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            fchmodat(to, name, mode, FchmodatFlags::FollowSymlink)?;
        }
        SFlag::S_IFREG => {
            let source = openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let target = openat(
                to,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            let mut source = File::from(source);
            let mut target = File::from(target);
            std::io::copy(&mut source, &mut target)
                .map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO)))?;
            nix::unistd::fchown(target.as_fd(), owner.0, owner.1)?;
            nix::sys::stat::fchmod(target.as_fd(), mode)?;
        }
        SFlag::S_IFLNK => {
            let link = readlinkat(from, name)?;
            nix::unistd::symlinkat(link.as_os_str(), to, name)?;
            fchownat(to, name, owner.0, owner.1, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        }
        _ => log::debug!(
            "tmpcopyup skips {:?} (not a file, directory or symlink)",
            OsStr::from_bytes(name.to_bytes())
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn dir_fd(path: &std::path::Path) -> OwnedFd {
        // SAFETY: a plain open(2) of a path we own; the result is checked before use.
        let fd = unsafe {
            libc::open(
                CString::new(path.as_os_str().as_bytes()).unwrap().as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        assert!(fd >= 0);
        // SAFETY: `fd` was just opened and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    #[test]
    fn files_directories_and_symlinks_are_copied_and_symlinks_are_not_followed() {
        let base = std::env::temp_dir().join(format!("crabcan-copyup-{}", std::process::id()));
        let (from, to) = (base.join("from"), base.join("to"));
        std::fs::create_dir_all(from.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(from.join("sub/deeper/file"), "data").unwrap();
        std::fs::set_permissions(from.join("sub/deeper/file"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.join("link")).unwrap();
        copy_tree(dir_fd(&from).as_fd(), dir_fd(&to).as_fd()).unwrap();
        assert_eq!(std::fs::read_to_string(to.join("sub/deeper/file")).unwrap(), "data");
        assert_eq!(
            std::fs::metadata(to.join("sub/deeper/file")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::read_link(to.join("link")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
