//! Where things live: the workspace root, its target dir and xtask's cache.

use std::path::PathBuf;

/// The workspace root (the parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Cargo's target dir: `$CARGO_TARGET_DIR` if set, else `target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// xtask's download cache: `target/xtask-cache`.
pub fn cache_dir() -> PathBuf {
    target_dir().join("xtask-cache")
}

/// The rootfs used by `cargo xtask run`, the README and the benchmarks.
pub fn default_rootfs() -> PathBuf {
    target_dir().join("rootfs")
}

/// The rootfs used by `cargo xtask test`.
pub fn test_rootfs() -> PathBuf {
    target_dir().join("test-rootfs")
}

/// The Debian rootfs of the Debian integration tests (`tests/tests/debian.rs`).
pub fn debian_test_rootfs() -> PathBuf {
    target_dir().join("debian-rootfs")
}

/// The cargo to run: the one that runs us (`$CARGO`), else `cargo`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}
