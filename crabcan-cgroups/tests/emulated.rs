//! Layouts this hybrid host does not have, emulated as root in a private
//! mount namespace (`unshare -m` + `umount`), so the v2 lifecycle and the
//! missing-controller handling run against the real kernel:
//! - "pure v2": every v1 mount unmounted, only the cgroup2 mount is left
//!   (on this host it has no controllers we use, so limits go through the
//!   missing-controller policy while create/add/kill/remove are real);
//! - v1 without the pids controller.
//!
//! The `inner_*` tests are `#[ignore]`d and run only by their outer test in
//! the namespace; they fail loudly if run outside it.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crabcan_cgroups::{CgroupError, CgroupHost, ContainerCgroup, Layout, LimitKind, Limits, MissingController};

fn require_root() -> Layout {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "these tests need root (euid is {euid})");
    CgroupHost::detect()
        .map(|host| host.layout())
        .unwrap_or_else(|e| panic!("cgroups are not usable here: {e}"))
}

/// Creates a cgroup under the default parent folder on this (emulated) host.
fn create(name: &str, limits: &Limits, missing: MissingController) -> Result<ContainerCgroup, CgroupError> {
    CgroupHost::detect()?.create(name, limits, missing)
}

/// Mount points of v1 cgroup hierarchies (fstype "cgroup").
fn v1_mounts() -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            after
                .starts_with("cgroup ")
                .then(|| before.split(' ').nth(4).map(str::to_string))?
        })
        .collect()
}

/// Runs the ignored test `inner` in a new mount namespace after unmounting `unmount`.
fn run_in_namespace(inner: &str, unmount: &[String]) {
    let exe = std::env::current_exe().expect("current exe");
    let umounts: String = unmount.iter().map(|m| format!("umount '{m}' && ")).collect();
    let script = format!("{umounts}exec \"$0\" --exact --ignored --test-threads=1 {inner}");
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(exe)
        .env("CRABCAN_EMULATED", "1")
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{inner} in a mount namespace failed:\n{text}"
    );
}

fn require_emulated() {
    assert_eq!(
        std::env::var("CRABCAN_EMULATED").as_deref(),
        Ok("1"),
        "run through its outer test (unshare)"
    );
}

fn wait_gone(pid: &mut std::process::Child) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(status) = pid.try_wait().expect("try_wait") {
            return status.signal();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = pid.kill();
    panic!("child still running");
}

#[test]
fn v2_lifecycle_on_unified_mount() {
    match require_root() {
        Layout::Hybrid => run_in_namespace("inner_v2_lifecycle", &v1_mounts()),
        Layout::V2 => run_in_namespace("inner_v2_lifecycle", &[]),
        Layout::V1 => panic!("no cgroup2 mount on this host: cannot run the v2 lifecycle test"),
    }
}

#[test]
#[ignore = "run by v2_lifecycle_on_unified_mount inside a mount namespace"]
fn inner_v2_lifecycle() {
    require_emulated();
    assert_eq!(require_root(), Layout::V2);
    let controllers = fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .or_else(|_| fs::read_to_string("/sys/fs/cgroup/cgroup.controllers"))
        .expect("cgroup.controllers");
    let has_memory = controllers.split_whitespace().any(|c| c == "memory");

    let limits = Limits::default();
    if !has_memory {
        let err = create("v2-err", &limits, MissingController::Error).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the host has no 'memory' cgroup controller, needed for the memory limit"
        );
        assert_eq!(err.limit(), Some(LimitKind::Memory));
    }
    let cg = create("v2-life", &limits, MissingController::Warn).expect("create with Warn");
    if !has_memory {
        let unapplied: Vec<LimitKind> = cg.unapplied().iter().map(|u| u.limit).collect();
        assert!(unapplied.contains(&LimitKind::Memory), "{:?}", cg.unapplied());
        assert!(cg.unapplied().iter().all(|u| u.reason.is_missing_controller()));
    }
    let dir = cg.v2_path().expect("v2 path").to_path_buf();
    assert_eq!(cg.paths(), vec![dir.clone()]);
    assert!(
        dir.is_dir() && dir.parent().unwrap().ends_with("crabcan"),
        "{}",
        dir.display()
    );
    if has_memory {
        assert_eq!(fs::read_to_string(dir.join("memory.max")).unwrap().trim(), "1073741824");
    }

    let mut child = Command::new("sleep").arg("100").spawn().expect("spawn sleep");
    cg.add_task(child.id() as i32).expect("add_task");
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == child.id().to_string()), "{procs}");
    assert!(
        cg.stats().cpu_usage_ns.is_some(),
        "cpu.stat usage_usec: {:?}",
        cg.stats()
    );
    assert!(!cg.oom_killed());
    cg.kill_all().expect("kill_all (cgroup.kill)");
    assert_eq!(wait_gone(&mut child), Some(libc::SIGKILL));
    cg.remove().expect("remove");
    assert!(!dir.exists());
    // The parent folder stays for the next container; this test leaves nothing behind.
    let parent = dir.parent().unwrap();
    assert!(parent.is_dir(), "the crabcan/ parent folder stays");
    fs::remove_dir(parent).expect("the crabcan/ parent folder is empty");
}

#[test]
fn v1_without_pids_controller() {
    match require_root() {
        Layout::V1 | Layout::Hybrid => {
            let pids: Vec<String> = v1_mounts().into_iter().filter(|m| m.ends_with("/pids")).collect();
            assert_eq!(pids.len(), 1, "expected one pids mount");
            run_in_namespace("inner_v1_without_pids", &pids);
        }
        Layout::V2 => panic!("v1 layout needed for this test, host is pure v2"),
    }
}

#[test]
#[ignore = "run by v1_without_pids_controller inside a mount namespace"]
fn inner_v1_without_pids() {
    require_emulated();
    require_root();
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(8),
        ..Limits::unlimited()
    };
    let err = create("nopids", &limits, MissingController::Error).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the host has no 'pids' cgroup controller, needed for the pids limit"
    );
    assert!(matches!(
        err,
        CgroupError::MissingController {
            limit: LimitKind::Pids,
            ..
        }
    ));
    let leaf = format!("nopids.{}", std::process::id());
    assert!(!std::path::Path::new("/sys/fs/cgroup/memory/crabcan")
        .join(&leaf)
        .exists());

    let cg = create("nopids", &limits, MissingController::Warn).expect("create with Warn");
    let unapplied: Vec<LimitKind> = cg.unapplied().iter().map(|u| u.limit).collect();
    assert_eq!(unapplied, [LimitKind::Pids]);
    assert!(cg.paths().iter().all(|p| !p.starts_with("/sys/fs/cgroup/pids")));
    let memory = cg
        .paths()
        .into_iter()
        .find(|p| p.starts_with("/sys/fs/cgroup/memory"))
        .expect("memory dir");
    assert_eq!(
        fs::read_to_string(memory.join("memory.limit_in_bytes")).unwrap().trim(),
        "67108864"
    );
    cg.remove().expect("remove");
    assert!(!memory.exists());
}

#[test]
fn v2_cgroup_at_a_path_freezes() {
    match require_root() {
        Layout::Hybrid => run_in_namespace("inner_v2_cgroup_at_a_path", &v1_mounts()),
        Layout::V2 => run_in_namespace("inner_v2_cgroup_at_a_path", &[]),
        Layout::V1 => panic!("no cgroup2 mount on this host: cannot run the v2 create_at test"),
    }
}

/// create_at, keep, open_at, freeze (cgroup.freeze), thaw, kill_all, remove on cgroup v2.
#[test]
#[ignore = "run by v2_cgroup_at_a_path_freezes inside a mount namespace"]
fn inner_v2_cgroup_at_a_path() {
    require_emulated();
    assert_eq!(require_root(), Layout::V2);
    let path = std::path::PathBuf::from(format!("/crabcan-test-oci-v2/t{}", std::process::id()));
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(16),
        ..Limits::unlimited()
    };
    let host = CgroupHost::detect().expect("detect");
    let creator = host
        .create_at(&path, &limits, MissingController::Warn)
        .expect("create_at");
    let dir = creator.v2_path().expect("v2 path").to_path_buf();
    assert!(dir.ends_with("crabcan-test-oci-v2/".to_string() + creator.name()) && dir.is_dir());
    let mut child = Command::new("sleep").arg("100").spawn().expect("spawn sleep");
    creator.add_task(child.id() as i32).expect("add_task");
    assert_eq!(creator.keep(), vec![dir.clone()]);

    let cg = ContainerCgroup::open_at(&host, &path).expect("open_at");
    let events = || fs::read_to_string(dir.join("cgroup.events")).expect("cgroup.events");
    cg.freeze().expect("freeze");
    assert!(events().lines().any(|l| l == "frozen 1"), "{}", events());
    cg.thaw().expect("thaw");
    assert!(events().lines().any(|l| l == "frozen 0"), "{}", events());
    cg.freeze().expect("freeze again");
    cg.kill_all().expect("kill_all kills a frozen cgroup");
    assert_eq!(wait_gone(&mut child), Some(libc::SIGKILL));
    cg.remove().expect("remove");
    assert!(!dir.exists());
    assert!(
        !dir.parent().unwrap().exists(),
        "the parent create_at made is left behind"
    );
}
