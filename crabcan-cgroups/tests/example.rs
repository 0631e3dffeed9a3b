//! Runs the `limit_a_process` example's own code (included from `examples/`, so the test
//! does not depend on the example binary having been built) as root and checks that it
//! worked and left no cgroup, parent folder or lease behind.

use std::path::Path;

#[allow(dead_code)] // its `main` is the example binary's
#[path = "../examples/limit_a_process.rs"]
mod limit_a_process;

use limit_a_process::{PARENT, STATE_DIR};

/// The example's parent folders that exist, in every hierarchy mounted under /sys/fs/cgroup.
fn parent_folders() -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    if root.join(PARENT).exists() {
        found.push(root.join(PARENT));
    }
    for entry in std::fs::read_dir(root).expect("read /sys/fs/cgroup").flatten() {
        let candidate = entry.path().join(PARENT);
        if candidate.exists() {
            found.push(candidate);
        }
    }
    found
}

#[test]
fn the_example_limits_a_process_and_leaves_nothing() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root (euid is {euid})");
    assert!(
        parent_folders().is_empty(),
        "left by an earlier run: {:?}",
        parent_folders()
    );

    let outcome = limit_a_process::run().unwrap_or_else(|e| panic!("the example failed: {e}"));

    assert!(outcome.status.success(), "the process ended with {}", outcome.status);
    assert!(!outcome.paths.is_empty());
    for path in &outcome.paths {
        assert_eq!(
            path.parent().and_then(Path::file_name),
            Some(PARENT.as_ref()),
            "{path:?}"
        );
        assert!(!path.exists(), "{} left behind", path.display());
    }
    assert_eq!(outcome.running.pids_current, Some(1), "{:?}", outcome.running);
    assert!(outcome.running.memory_current.is_some(), "{:?}", outcome.running);
    assert_eq!(outcome.exited.pids_current, Some(0), "{:?}", outcome.exited);
    assert_eq!(outcome.exited.oom_kills, 0);
    assert!(
        parent_folders().is_empty(),
        "parent folders left: {:?}",
        parent_folders()
    );
    assert!(!Path::new(STATE_DIR).exists(), "{STATE_DIR} left behind");
}
