//! A stand-in payload for `cargo xtask test-vm --payload placeholder`: it
//! checks what the VM promises the real integration tests (tmpfs root so
//! pivot_root works, cgroup2 with controllers, the env vars, the rootfs
//! with shifted owners). Outside the VM (no CRABCAN_IN_VM) it checks
//! nothing and passes. `CRABCAN_VM_PLACEHOLDER_FAIL=1` (e.g. via
//! `--guest-env`) makes one test fail, to prove a failure fails the run.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn in_vm() -> bool {
    std::env::var_os("CRABCAN_IN_VM").is_some()
}

#[test]
fn root_is_tmpfs_not_ramfs() {
    if !in_vm() {
        return;
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let root = mounts
        .lines()
        .rfind(|l| l.split_whitespace().nth(1) == Some("/"))
        .unwrap();
    assert_eq!(root.split_whitespace().nth(2), Some("tmpfs"), "{root}");
}

#[test]
fn cgroup2_with_controllers() {
    if !in_vm() {
        return;
    }
    let controllers = std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control").unwrap();
    for c in ["memory", "pids", "cpu"] {
        assert!(controllers.contains(c), "{c} not enabled: {controllers}");
    }
}

#[test]
fn rootfs_is_shifted_and_runs() {
    if !in_vm() {
        return;
    }
    let rootfs = std::env::var("CRABCAN_TEST_ROOTFS").expect("CRABCAN_TEST_ROOTFS");
    let busybox = Path::new(&rootfs).join("bin/busybox");
    assert_eq!(busybox.metadata().unwrap().uid(), 100_000);
    let status = std::process::Command::new(&busybox).arg("true").status().unwrap();
    assert!(status.success());
}

#[test]
fn skips_say_why() {
    if !in_vm() {
        return;
    }
    eprintln!("crabcan-skip: placeholder skip, to show skip reasons reach the summary");
}

#[test]
fn deliberate_failure_on_request() {
    let fail = std::env::var("CRABCAN_VM_PLACEHOLDER_FAIL").is_ok_and(|v| v == "1");
    assert!(!fail, "CRABCAN_VM_PLACEHOLDER_FAIL=1: failing on purpose");
}
