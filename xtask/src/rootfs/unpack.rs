//! Unpacking a `.tar.gz` without ever writing outside the destination.
//!
//! Every entry is checked before anything is written for it:
//! - its path must be relative with no `..` (absolute paths are refused);
//! - no directory on its way may be a symlink (symlinks are never
//!   followed while unpacking; a symlink's *value* may be anything, since
//!   rootfs symlinks are normally absolute like `/bin/busybox`);
//! - a hardlink's target must obey the same rules and already exist.
//!
//! Devices and fifos are skipped (crabcan sets up /dev itself). Owners are
//! the tar header's uid/gid shifted by the id offset; modes come from the
//! header (directory modes are applied last so read-only dirs can be filled).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use tar::{Archive, EntryType};

use super::{ownership, RootfsError};

/// Unpacks `tarball` (gzip-compressed tar) into the existing dir `dest`.
pub fn unpack_tar_gz(tarball: &Path, dest: &Path, id_offset: u32) -> Result<(), RootfsError> {
    let file = File::open(tarball).map_err(|e| RootfsError::io("opening tarball", tarball, e))?;
    let mut archive = Archive::new(GzDecoder::new(BufReader::new(file)));
    let unpacker = Unpacker {
        tarball,
        dest,
        id_offset,
    };
    // The root itself belongs to the container's root.
    ownership::chown_shifted(dest, 0, 0, id_offset)?;
    set_mode(dest, 0o755)?;
    let mut dir_modes = Vec::new();
    let entries = archive.entries().map_err(|e| unpacker.bad(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| unpacker.bad(e))?;
        if let Some(dir_mode) = unpacker.entry(&mut entry)? {
            dir_modes.push(dir_mode);
        }
    }
    // Deepest first, so a read-only parent is set after its children.
    for (path, mode) in dir_modes.into_iter().rev() {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|e| RootfsError::io("setting mode of", &path, e))?;
    }
    Ok(())
}

struct Unpacker<'a> {
    tarball: &'a Path,
    dest: &'a Path,
    id_offset: u32,
}

impl Unpacker<'_> {
    fn bad(&self, e: io::Error) -> RootfsError {
        RootfsError::BadTarball {
            tarball: self.tarball.to_path_buf(),
            msg: e.to_string(),
        }
    }

    fn refuse(&self, entry: &Path, reason: &str) -> RootfsError {
        RootfsError::UnsafeEntry {
            tarball: self.tarball.to_path_buf(),
            entry: entry.display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// Unpacks one entry; returns (dir, mode) for directories.
    fn entry<R: io::Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Option<(PathBuf, u32)>, RootfsError> {
        let raw = entry.path().map_err(|e| self.bad(e))?.into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(None);
        }
        let Some(rel) = self.checked_relative(&raw)? else {
            return Ok(None); // "./": the root itself
        };
        let path = self.dest.join(&rel);
        self.check_no_symlink_on_the_way(&raw, &rel)?;
        let header = entry.header();
        let mode = header.mode().map_err(|e| self.bad(e))? & 0o7777;
        let uid = header.uid().map_err(|e| self.bad(e))?;
        let gid = header.gid().map_err(|e| self.bad(e))?;
        match kind {
            EntryType::Directory => {
                self.make_dir(&path)?;
                ownership::chown_shifted(&path, uid, gid, self.id_offset)?;
                return Ok(Some((path, mode)));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.remove_existing(&path)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| RootfsError::io("creating", &path, e))?;
                io::copy(entry, &mut file).map_err(|e| RootfsError::io("writing", &path, e))?;
                drop(file);
                ownership::chown_shifted(&path, uid, gid, self.id_offset)?;
                set_mode(&path, mode)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| self.bad(e))?
                    .ok_or_else(|| self.refuse(&raw, "is a symlink without a target"))?;
                self.remove_existing(&path)?;
                std::os::unix::fs::symlink(&target, &path)
                    .map_err(|e| RootfsError::io("creating symlink", &path, e))?;
                ownership::chown_shifted(&path, uid, gid, self.id_offset)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| self.bad(e))?
                    .ok_or_else(|| self.refuse(&raw, "is a hardlink without a target"))?
                    .into_owned();
                let target_rel = self
                    .checked_relative(&target)
                    .map_err(|_| {
                        self.refuse(
                            &raw,
                            &format!("is a hardlink to `{}`, outside the rootfs", target.display()),
                        )
                    })?
                    .ok_or_else(|| self.refuse(&raw, "is a hardlink to the rootfs itself"))?;
                self.check_no_symlink_on_the_way(&raw, &target_rel)?;
                let target_path = self.dest.join(&target_rel);
                match target_path.symlink_metadata() {
                    Ok(meta) if meta.is_file() => {}
                    _ => {
                        return Err(self.refuse(
                            &raw,
                            &format!(
                                "is a hardlink to `{}`, which is not a file unpacked before it",
                                target.display()
                            ),
                        ))
                    }
                }
                self.remove_existing(&path)?;
                fs::hard_link(&target_path, &path).map_err(|e| RootfsError::io("creating hardlink", &path, e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                // Not needed in a rootfs: crabcan populates /dev itself.
            }
            other => {
                return Err(self.refuse(&raw, &format!("has unsupported type {other:?}")));
            }
        }
        Ok(None)
    }

    /// The entry's path made relative: `Ok(None)` for the root itself,
    /// an error for an absolute path or one with `..`.
    fn checked_relative(&self, raw: &Path) -> Result<Option<PathBuf>, RootfsError> {
        let mut rel = PathBuf::new();
        for component in raw.components() {
            match component {
                Component::Normal(part) => rel.push(part),
                Component::CurDir => {}
                Component::ParentDir => return Err(self.refuse(raw, "contains `..`")),
                Component::RootDir | Component::Prefix(_) => return Err(self.refuse(raw, "is an absolute path")),
            }
        }
        Ok((!rel.as_os_str().is_empty()).then_some(rel))
    }

    /// Refuses `rel` if any of its parent directories (inside dest) is a
    /// symlink or not a directory.
    fn check_no_symlink_on_the_way(&self, raw: &Path, rel: &Path) -> Result<(), RootfsError> {
        let mut current = self.dest.to_path_buf();
        let mut parents = rel.components().collect::<Vec<_>>();
        parents.pop();
        for part in parents {
            current.push(part);
            match current.symlink_metadata() {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let through = current.strip_prefix(self.dest).unwrap_or(&current);
                    return Err(self.refuse(raw, &format!("goes through the symlink `{}`", through.display())));
                }
                Ok(meta) if !meta.is_dir() => {
                    return Err(self.refuse(raw, "has a parent that is not a directory"));
                }
                Ok(_) => {}
                Err(_) => {
                    // Missing parent (tarballs may omit dir entries).
                    fs::create_dir(&current).map_err(|e| RootfsError::io("creating directory", &current, e))?;
                }
            }
        }
        Ok(())
    }

    fn make_dir(&self, path: &Path) -> Result<(), RootfsError> {
        match path.symlink_metadata() {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => {
                self.remove_existing(path)?;
                fs::create_dir(path).map_err(|e| RootfsError::io("creating directory", path, e))
            }
            Err(_) => fs::create_dir(path).map_err(|e| RootfsError::io("creating directory", path, e)),
        }?;
        // Owner-writable while unpacking; the real mode is applied at the end.
        set_mode(path, 0o700)
    }

    /// Removes a non-directory at `path` (a later entry replaces an earlier
    /// one, as tar does); a directory there is an error.
    fn remove_existing(&self, path: &Path) -> Result<(), RootfsError> {
        match path.symlink_metadata() {
            Ok(meta) if meta.is_dir() => Err(RootfsError::io(
                "replacing directory",
                path,
                io::Error::new(io::ErrorKind::AlreadyExists, "a directory is in the way"),
            )),
            Ok(_) => fs::remove_file(path).map_err(|e| RootfsError::io("replacing", path, e)),
            Err(_) => Ok(()),
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), RootfsError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| RootfsError::io("setting mode of", path, e))
}
