//! Helpers for the unit tests of this crate.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, removed when dropped (also when a test fails).
pub struct TempTree(PathBuf);

impl TempTree {
    pub fn new(tag: &str) -> TempTree {
        let dir = std::env::temp_dir().join(format!("crabcan-core-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempTree(dir)
    }
}

impl Deref for TempTree {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
