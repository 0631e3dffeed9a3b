//! Reading a profile file with bounds: a path given on a command line may
//! name `/dev/zero` (endless), a FIFO (blocks until a writer comes) or a
//! file of gigabytes. [`read_profile_file`] refuses all three promptly, and
//! never reads more than [`MAX_PROFILE_BYTES`] + 1 bytes.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::SeccompError;
use crate::import_context::ImportContext;
use crate::profile::Profile;

/// Largest profile file accepted, in bytes (1 MiB). Docker's default
/// profile is about 20 KiB; a filter of [`MAX_RULES`](crate::MAX_RULES)
/// rules written one per line fits well within it.
pub const MAX_PROFILE_BYTES: u64 = 1024 * 1024;

/// Reads a profile file, refusing anything but a regular file of at most
/// [`MAX_PROFILE_BYTES`]. The file is opened with `O_NONBLOCK` (a FIFO
/// swapped in after the first check cannot block the open) and
/// `O_NOCTTY`, checked again with `fstat`, and read through a bounded
/// reader, never whole. The bytes are not checked for UTF-8 here: the JSON
/// parser reports bad bytes with their position.
pub fn read_profile_file(path: &Path) -> Result<Vec<u8>, SeccompError> {
    let read_error = |source| SeccompError::ReadFile {
        path: path.to_owned(),
        source,
    };
    // stat before open: opening a device can have side effects (a tape
    // rewinds, a tty becomes ours), so those are refused without an open.
    check_metadata(path, &std::fs::metadata(path).map_err(read_error)?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    check_metadata(path, &metadata)?;
    read_bounded(path, file)
}

/// Refuses what is not a regular file, or a regular file above the bound.
fn check_metadata(path: &Path, metadata: &Metadata) -> Result<(), SeccompError> {
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_dir() {
            "directory"
        } else if file_type.is_fifo() {
            "FIFO"
        } else if file_type.is_char_device() {
            "character device"
        } else if file_type.is_block_device() {
            "block device"
        } else if file_type.is_socket() {
            "socket"
        } else {
            "special file"
        };
        return Err(SeccompError::NotARegularFile {
            path: path.to_owned(),
            kind,
        });
    }
    if metadata.len() > MAX_PROFILE_BYTES {
        return Err(SeccompError::FileTooLarge {
            path: path.to_owned(),
            size: Some(metadata.len()),
            max: MAX_PROFILE_BYTES,
        });
    }
    Ok(())
}

/// Reads at most `MAX_PROFILE_BYTES + 1` bytes: one more than allowed tells
/// a file that grew (or a `/proc`-like file whose size says 0) from one
/// that fits.
fn read_bounded(path: &Path, file: File) -> Result<Vec<u8>, SeccompError> {
    let mut bytes = Vec::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| SeccompError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(SeccompError::FileTooLarge {
            path: path.to_owned(),
            size: None,
            max: MAX_PROFILE_BYTES,
        });
    }
    Ok(bytes)
}

impl Profile {
    /// Reads an OCI / Docker seccomp profile from a file with the bounds of
    /// [`read_profile_file`], then imports it for `context` as
    /// [`Profile::from_oci_json_with`] does. Errors about the file itself
    /// name its path ([`SeccompError::path`]); import errors do not.
    pub fn from_oci_json_file_with(path: &Path, context: &ImportContext) -> Result<Profile, SeccompError> {
        let bytes = read_profile_file(path)?;
        Profile::from_oci_json_bytes_with(&bytes, context)
    }

    /// [`Profile::from_oci_json_file_with`] with the assumptions of
    /// [`Profile::from_oci_json`]: a container that keeps no capability, on
    /// this host's kernel and architecture.
    pub fn from_oci_json_file(path: &Path) -> Result<Profile, SeccompError> {
        Profile::from_oci_json_file_with(path, &ImportContext::for_this_host(&[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_at_and_above_the_bound() {
        let dir = std::env::temp_dir().join(format!("crabcan-seccomp-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let at = dir.join("at.json");
        std::fs::write(&at, vec![b' '; MAX_PROFILE_BYTES as usize]).unwrap();
        assert_eq!(read_profile_file(&at).unwrap().len() as u64, MAX_PROFILE_BYTES);
        let above = dir.join("above.json");
        std::fs::write(&above, vec![b' '; MAX_PROFILE_BYTES as usize + 1]).unwrap();
        let error = read_profile_file(&above).unwrap_err();
        assert!(matches!(
            error,
            SeccompError::FileTooLarge {
                size: Some(1_048_577),
                ..
            }
        ));
        assert_eq!(error.path(), Some(above.as_path()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
