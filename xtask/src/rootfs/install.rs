//! Building next to the destination and moving into place: a rootfs is
//! built in a staging dir beside `out` (same filesystem) and renamed over
//! it only when complete, so a failed build leaves nothing behind.

use std::path::Path;

use super::{RootfsError, Stamp};
use crate::util::tempdir::TempDir;

/// A fresh staging dir next to `out`, removed on drop unless committed.
pub fn staging_dir(out: &Path) -> Result<TempDir, RootfsError> {
    let parent = parent_of(out);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rootfs".into());
    TempDir::new_in(parent, &format!(".{name}.staging"))
        .map_err(|e| RootfsError::io("creating staging dir in", parent, e))
}

/// Replaces `out` with `staging` and writes the stamp.
pub fn commit(staging: TempDir, out: &Path, stamp: &Stamp) -> Result<(), RootfsError> {
    Stamp::remove(out)?;
    // A Debian rootfs's package list describes the rootfs being replaced, not this one.
    let packages = super::packages_path(out);
    match std::fs::remove_file(&packages) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(RootfsError::io("removing package list", &packages, e))
        }
        _ => {}
    }
    if out.symlink_metadata().is_ok() {
        let old = staging_dir(out)?;
        let old_path = old.path().join("old");
        std::fs::rename(out, &old_path).map_err(|e| RootfsError::io("moving aside old rootfs", out, e))?;
        drop(old); // removes the old rootfs
    }
    std::fs::rename(staging.path(), out).map_err(|e| RootfsError::io("moving new rootfs into place at", out, e))?;
    let _ = staging.into_path();
    stamp.write(out)
}

fn parent_of(out: &Path) -> &Path {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
