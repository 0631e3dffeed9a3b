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

/// The configuration the setup-order tests record: a fixed rootfs and command, with the
/// tutorial filter so the seccomp steps show.
pub fn recorded_config() -> crate::config::ContainerConfig {
    let mut config = crate::config::ContainerConfig::new("/srv/rootfs", vec!["/bin/true".into()]);
    config.seccomp = Some(crabcan_seccomp::Profile::tutorial().compile().unwrap());
    config
}

/// Where `step` is in a recorded sequence of steps (a test failure if it is missing).
pub fn position_of(steps: &[String], step: &str) -> usize {
    steps
        .iter()
        .position(|s| s == step)
        .unwrap_or_else(|| panic!("{step} missing from {steps:?}"))
}
