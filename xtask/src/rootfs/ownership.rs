//! Shifting file ownership by the id offset (`--id-offset N`), for a rootfs used with a fixed
//! `--uid-map 0:N:65536` where idmapped mounts are unavailable. By default there is no shift.
//! Always lchown: symlinks are never followed.

use std::path::Path;

use super::RootfsError;

/// Sets `path`'s owner to `uid + offset`, `gid + offset` (not following a
/// symlink).
pub fn chown_shifted(path: &Path, uid: u64, gid: u64, offset: u32) -> Result<(), RootfsError> {
    let shift = |id: u64| -> Result<u32, RootfsError> {
        id.checked_add(offset as u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v != u32::MAX)
            .ok_or(RootfsError::IdOverflow {
                path: path.to_path_buf(),
                id,
                offset,
            })
    };
    let (new_uid, new_gid) = (shift(uid)?, shift(gid)?);
    std::os::unix::fs::lchown(path, Some(new_uid), Some(new_gid)).map_err(|source| RootfsError::Chown {
        path: path.to_path_buf(),
        uid: new_uid,
        gid: new_gid,
        source,
    })
}

/// Shifts the owner of `root` and everything under it by `offset`.
pub fn shift_tree(root: &Path, offset: u32) -> Result<(), RootfsError> {
    if offset == 0 {
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    let meta = root
        .symlink_metadata()
        .map_err(|e| RootfsError::io("reading metadata of", root, e))?;
    // chown clears setuid/setgid bits: restore the mode afterwards.
    chown_shifted(root, meta.uid() as u64, meta.gid() as u64, offset)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.mode() & 0o6000 != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| RootfsError::io("restoring mode of", root, e))?;
    }
    if meta.is_dir() {
        let entries = std::fs::read_dir(root).map_err(|e| RootfsError::io("reading directory", root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| RootfsError::io("reading directory", root, e))?;
            shift_tree(&entry.path(), offset)?;
        }
    }
    Ok(())
}
