//! Root-only tests against the real cgroup filesystem of this host. They
//! fail loudly (never skip) when not run as root or without cgroups.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crabcan_cgroups::{
    CgroupError, CgroupHost, ContainerCgroup, Layout, LimitKind, Limits, MissingController, DEFAULT_STATE_DIR,
};

/// Panics with the reason unless we are root on a host with cgroups.
fn require_root() -> Layout {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests need root (euid is {euid}); run `sudo cargo test -p crabcan-cgroups`"
    );
    CgroupHost::detect()
        .map(|host| host.layout())
        .unwrap_or_else(|e| panic!("cgroups are not usable here: {e}"))
}

/// A per-test name; the crate appends our pid.
fn name(test: &str) -> String {
    format!("t-{test}")
}

/// Creates a cgroup under the default parent folder on this host.
fn create(name: &str, limits: &Limits, missing: MissingController) -> Result<ContainerCgroup, CgroupError> {
    CgroupHost::detect()?.create(name, limits, missing)
}

/// Kills and reaps a child on drop, so failed tests leave nothing running.
struct ChildGuard(Child);

impl ChildGuard {
    fn spawn(cmd: &mut Command) -> ChildGuard {
        ChildGuard(cmd.spawn().expect("spawn child"))
    }
    /// A `sh -c script` that waits for a line on stdin before running, so it
    /// can be moved into the cgroup first.
    fn gated_shell(script: &str) -> ChildGuard {
        let script = format!("read go; {script}");
        Self::spawn(
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(Stdio::piped())
                .stderr(Stdio::null()),
        )
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    fn start(&mut self) {
        let stdin = self.0.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"go\n").expect("start child");
    }
    /// Waits up to `limit` for the child to exit; returns its terminating signal.
    fn wait_signal(&mut self, limit: Duration) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status.signal();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("child {} still running after {limit:?}", self.pid());
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The directory (of `cg`) that has `file`: the right hierarchy on v1.
fn dir_with(cg: &ContainerCgroup, file: &str) -> PathBuf {
    cg.paths()
        .into_iter()
        .find(|d| d.join(file).exists())
        .unwrap_or_else(|| panic!("no directory of {:?} has {file}", cg.paths()))
}

fn read(cg: &ContainerCgroup, file: &str) -> String {
    let path = dir_with(cg, file).join(file);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .expect("read cgroup.procs")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

fn test_limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        memory_swap: None,
        pids: Some(32),
        cpu_weight: Some(100),
        cpu_quota: Some(0.5),
        io_weight: Some(200),
        ..Limits::unlimited()
    }
}

#[test]
fn create_limits_task_kill_remove() {
    let layout = require_root();
    let cg = create(&name("lifecycle"), &test_limits(), MissingController::Error).expect("create");
    assert!(
        cg.unapplied().iter().all(|u| u.limit == LimitKind::IoWeight),
        "{:?}",
        cg.unapplied()
    );
    let paths = cg.paths();
    assert!(!paths.is_empty());
    for p in &paths {
        assert!(p.is_dir(), "{} missing", p.display());
        assert!(p.parent().unwrap().ends_with("crabcan"), "{}", p.display());
        assert!(p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with(&format!(".{}", std::process::id())));
    }
    match layout {
        Layout::V1 | Layout::Hybrid => {
            assert_eq!(cg.v2_path(), None);
            assert_eq!(read(&cg, "memory.limit_in_bytes"), "67108864");
            if dir_with(&cg, "memory.limit_in_bytes")
                .join("memory.memsw.limit_in_bytes")
                .exists()
            {
                assert_eq!(read(&cg, "memory.memsw.limit_in_bytes"), "67108864");
            }
            assert_eq!(read(&cg, "pids.max"), "32");
            assert_eq!(read(&cg, "cpu.shares"), "2598");
            assert_eq!(read(&cg, "cpu.cfs_period_us"), "100000");
            assert_eq!(read(&cg, "cpu.cfs_quota_us"), "50000");
            let weight = cg.paths().into_iter().find_map(|d| {
                ["blkio.weight", "blkio.bfq.weight"]
                    .iter()
                    .find_map(|f| fs::read_to_string(d.join(f)).ok())
            });
            let weight = weight.expect("blkio weight file");
            assert!(
                weight.trim() == "200" || weight.trim() == "default 200",
                "blkio weight {weight:?}"
            );
            assert!(!cg
                .paths()
                .iter()
                .any(|d| fs::read_to_string(d.join("notify_on_release")).is_ok_and(|s| s.trim() != "0")));
        }
        Layout::V2 => {
            let dir = cg.v2_path().expect("v2 path").to_path_buf();
            assert_eq!(paths, vec![dir]);
            assert_eq!(read(&cg, "memory.max"), "67108864");
            assert_eq!(read(&cg, "pids.max"), "32");
            assert_eq!(read(&cg, "cpu.weight"), "100");
            assert_eq!(read(&cg, "cpu.max"), "50000 100000");
        }
    }

    let mut child = ChildGuard::spawn(Command::new("sleep").arg("100"));
    cg.add_task(child.pid()).expect("add_task");
    for p in &paths {
        assert!(
            procs(p).contains(&child.pid()),
            "{} does not list {}",
            p.display(),
            child.pid()
        );
    }
    let stats = cg.stats();
    assert!(
        stats.memory_current.is_some() && stats.pids_current == Some(1),
        "{stats:?}"
    );
    assert!(stats.cpu_usage_ns.is_some(), "{stats:?}");
    assert!(!cg.oom_killed());
    cg.kill_all().expect("kill_all");
    assert_eq!(child.wait_signal(Duration::from_secs(5)), Some(libc::SIGKILL));
    for p in &paths {
        assert!(procs(p).is_empty());
    }
    cg.remove().expect("remove");
    for p in &paths {
        assert!(!p.exists(), "{} still exists", p.display());
    }
}

#[test]
fn drop_kills_and_removes() {
    require_root();
    let cg = create(&name("drop"), &Limits::default(), MissingController::Error).expect("create");
    let paths = cg.paths();
    let mut child = ChildGuard::spawn(Command::new("sleep").arg("100"));
    cg.add_task(child.pid()).expect("add_task");
    drop(cg);
    assert_eq!(child.wait_signal(Duration::from_secs(5)), Some(libc::SIGKILL));
    for p in &paths {
        assert!(!p.exists(), "{} still exists after drop", p.display());
    }
}

#[test]
fn pids_limit_holds() {
    require_root();
    let limits = Limits {
        pids: Some(8),
        ..Limits::unlimited()
    };
    let cg = create(&name("pids"), &limits, MissingController::Error).expect("create");
    let mut child = ChildGuard::gated_shell("i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; wait");
    cg.add_task(child.pid()).expect("add_task");
    child.start();
    let start = Instant::now();
    let mut highest = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        let current: u64 = read(&cg, "pids.current").parse().expect("pids.current");
        highest = highest.max(current);
        assert!(current <= 8, "pids.current {current} exceeds the limit 8");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        highest >= 2,
        "the fork loop never ran (pids.current peaked at {highest})"
    );
    let events = read(&cg, "pids.events");
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .expect("pids.events max")
        .parse()
        .unwrap();
    assert!(refused > 0, "no fork was refused: {events}");
    if let Some(peak) = cg.stats().pids_peak {
        assert!(peak <= 8, "pids peak {peak}");
    }
    cg.kill_all().expect("kill_all");
    // dash exits by itself when a fork fails; its background sleeps stay until kill_all.
    child.wait_signal(Duration::from_secs(5));
    let paths = cg.paths();
    assert!(paths.iter().all(|p| procs(p).is_empty()), "tasks left after kill_all");
    cg.remove().expect("remove");
    assert!(paths.iter().all(|p| !p.exists()));
}

#[test]
fn memory_hog_is_oom_killed() {
    require_root();
    let limits = Limits {
        memory: Some(32 << 20),
        ..Limits::unlimited()
    };
    let cg = create(&name("oom"), &limits, MissingController::Error).expect("create");
    let mut child = ChildGuard::gated_shell("exec tail /dev/zero");
    cg.add_task(child.pid()).expect("add_task");
    child.start();
    assert_eq!(
        child.wait_signal(Duration::from_secs(30)),
        Some(libc::SIGKILL),
        "hog not killed"
    );
    assert!(cg.oom_killed(), "oom_killed() is false; stats: {}", cg.stats());
    let stats = cg.stats();
    assert!(stats.oom_kills >= 1, "{stats:?}");
    assert!(
        stats
            .memory_peak
            .is_some_and(|p| ((16 << 20)..=(33 << 20)).contains(&p)),
        "{stats:?}"
    );
    cg.remove().expect("remove");
}

#[test]
fn remove_stale_removes_abandoned_cgroups_only() {
    require_root();
    let stale = create(&name("stale"), &Limits::default(), MissingController::Error).expect("create stale");
    let stale_paths = stale.paths();
    let stale_name = stale.name().to_string();
    let mut inside = ChildGuard::spawn(Command::new("sleep").arg("100"));
    stale.add_task(inside.pid()).expect("add_task");
    stale.abandon(); // as if crabcan had crashed: the lease is no longer held
    let lease = Path::new(DEFAULT_STATE_DIR).join(&stale_name);
    assert!(lease.is_file(), "{} missing", lease.display());

    let live = create(&name("live"), &Limits::default(), MissingController::Error).expect("create live");
    let cleanup = CgroupHost::detect()
        .and_then(|host| host.remove_stale())
        .expect("remove_stale");
    let removed = cleanup.removed;
    let leftovers: Vec<_> = stale_paths.iter().filter(|p| p.exists()).collect();
    // Clean up before asserting, so a failure leaves nothing behind.
    for p in &leftovers {
        let _ = fs::remove_dir(p);
    }
    // Another crabcan process (a concurrent test run) may have cleaned it up
    // first; what matters is that it is gone, checked below.
    let raced = std::env::var_os("CRABCAN_CONCURRENT_TESTS").is_some();
    assert!(
        raced || removed.contains(&stale_name),
        "{removed:?} lacks {stale_name} (set CRABCAN_CONCURRENT_TESTS=1 if other crabcan tests run at the same time)"
    );
    assert!(!removed.contains(&live.name().to_string()));
    assert!(leftovers.is_empty(), "stale dirs left: {leftovers:?}");
    assert!(!lease.exists(), "stale lease left");
    assert_eq!(inside.wait_signal(Duration::from_secs(5)), Some(libc::SIGKILL));
    assert!(live.paths().iter().all(|p| p.is_dir()), "live cgroup was touched");
    live.remove().expect("remove live");
}

#[test]
fn unusable_limits_create_nothing() {
    require_root();
    let limits = Limits {
        pids: Some(u64::MAX),
        ..Limits::unlimited()
    };
    let err = create(&name("rollback"), &limits, MissingController::Error).unwrap_err();
    assert!(matches!(err, CgroupError::PidsOutOfRange { .. }), "{err}");
    let leaf = format!("{}.{}", name("rollback"), std::process::id());
    for mount in ["memory", "pids", "cpu", "cpuacct", "blkio", "freezer", "unified", ""] {
        let p = Path::new("/sys/fs/cgroup").join(mount).join("crabcan").join(&leaf);
        assert!(!p.exists(), "{} left behind", p.display());
    }
    assert!(!Path::new(DEFAULT_STATE_DIR).join(&leaf).exists());
}

#[test]
fn existing_cgroup_is_not_adopted_and_bad_names_are_rejected() {
    require_root();
    let first = create(&name("dup"), &Limits::unlimited(), MissingController::Error).expect("create");
    let err = create(&name("dup"), &Limits::unlimited(), MissingController::Error).unwrap_err();
    assert!(matches!(err, CgroupError::InUse { .. }), "{err}");
    assert!(
        first.paths().iter().all(|p| p.is_dir()),
        "failed duplicate removed the original"
    );
    first.remove().expect("remove");
    let err = create("../escape", &Limits::unlimited(), MissingController::Error).unwrap_err();
    assert!(matches!(err, CgroupError::InvalidName { .. }), "{err}");
}

/// A process moves itself into a v1 cgroup through descriptors opened by its parent.
#[test]
fn a_process_joins_by_itself_through_open_tasks_files() {
    let layout = require_root();
    if layout == Layout::V2 {
        println!("crabcan-skip: cgroup v2 host: processes are cloned into their cgroup instead");
        return;
    }
    let cgroup = create(&name("selfjoin"), &Limits::default(), MissingController::Warn).unwrap();
    let join = cgroup.open_self_join().unwrap().expect("v1 hosts offer a self join");
    let mut keep = join.raw_fds();
    keep.sort_unstable();
    // SAFETY: the child only closes and writes to inherited descriptors, sleeps and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // Like crabcan's container process, it closes what it inherited but the tasks files
        // first: a copy of another test's lease would keep that lease locked (and its cgroup
        // live for remove_stale) while this child sleeps.
        let mut from = 3;
        for &fd in &keep {
            if fd > from {
                // SAFETY: closes descriptors of this single-threaded child only.
                unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0) };
            }
            from = from.max(fd + 1);
        }
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0) };
        let code = if join.join_calling_thread().is_ok() { 0 } else { 1 };
        std::thread::sleep(std::time::Duration::from_millis(300));
        // SAFETY: ends the forked child without running the test harness's destructors.
        unsafe { libc::_exit(code) };
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    for dir in cgroup.paths() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|line| line == pid.to_string()),
            "{pid} not in {}",
            dir.display()
        );
    }
    let mut status = 0;
    // SAFETY: reaping the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(libc::WEXITSTATUS(status), 0);
    cgroup.remove().unwrap();
}

/// utime + stime of `pid`, in clock ticks (/proc/PID/stat fields 14 and 15).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The `State:` line of /proc/PID/status, e.g. "R (running)".
fn proc_state(pid: i32) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("State:")).expect("State line");
    line["State:".len()..].trim().to_string()
}

/// Whether the kernel reports `dir`'s cgroup frozen: v1 freezer.state, v2 cgroup.events.
fn reads_frozen(cg: &ContainerCgroup, layout: Layout) -> bool {
    match layout {
        Layout::V1 | Layout::Hybrid => read(cg, "freezer.state") == "FROZEN",
        Layout::V2 => read(cg, "cgroup.events").lines().any(|l| l == "frozen 1"),
    }
}

/// The OCI lifecycle: `create` makes the cgroup at the engine's path and exits (keep), later
/// processes open it (pause/resume, kill, delete); nothing is left afterwards.
#[test]
fn cgroup_at_a_path_outlives_its_creator() {
    let layout = require_root();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let unique = format!("t{}-{nanos}", std::process::id());
    let path = PathBuf::from(format!("crabcan-test-oci/{unique}"));
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(16),
        ..Limits::unlimited()
    };
    let creator = CgroupHost::detect()
        .unwrap()
        .create_at(&path, &limits, MissingController::Error)
        .expect("create_at");
    assert!(creator.unapplied().is_empty(), "{:?}", creator.unapplied());
    assert_eq!(creator.name(), unique);
    for dir in creator.paths() {
        assert!(dir.ends_with(&path) && dir.is_dir(), "{}", dir.display());
    }
    match layout {
        Layout::V1 | Layout::Hybrid => {
            assert_eq!(read(&creator, "memory.limit_in_bytes"), "67108864");
            assert!(creator.paths().iter().any(|d| d.join("freezer.state").exists()));
        }
        Layout::V2 => assert_eq!(read(&creator, "memory.max"), "67108864"),
    }
    assert_eq!(read(&creator, "pids.max"), "16");
    assert!(!Path::new(DEFAULT_STATE_DIR).join(&unique).exists(), "no lease");
    let err = CgroupHost::detect()
        .unwrap()
        .create_at(&path, &limits, MissingController::Error)
        .unwrap_err();
    assert!(matches!(err, CgroupError::InUse { .. }), "{err}");

    let mut sleeper = ChildGuard::spawn(Command::new("sleep").arg("100"));
    let mut spinner = ChildGuard::spawn(Command::new("sh").args(["-c", "while :; do :; done"]));
    creator.add_task(sleeper.pid()).expect("add sleep");
    creator.add_task(spinner.pid()).expect("add spinner");
    let dirs = creator.keep(); // the OCI `create` process exits here
    assert!(dirs.iter().all(|d| d.is_dir()));

    let second = CgroupHost::detect().unwrap();
    let cg = ContainerCgroup::open_at(&second, &Path::new("/").join(&path)).expect("open_at");
    assert_eq!(cg.paths(), dirs);
    for dir in &dirs {
        let in_it = procs(dir);
        assert!(
            in_it.contains(&sleeper.pid()) && in_it.contains(&spinner.pid()),
            "{in_it:?}"
        );
    }

    cg.freeze().expect("freeze");
    assert!(reads_frozen(&cg, layout));
    let frozen_at = cpu_ticks(spinner.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(spinner.pid()), frozen_at, "a frozen spinner ran");
    let state = proc_state(spinner.pid());
    assert!(!state.starts_with('R'), "frozen spinner is {state}");
    assert!(!proc_state(sleeper.pid()).starts_with('R'));

    cg.thaw().expect("thaw");
    assert!(!reads_frozen(&cg, layout));
    let thawed_at = cpu_ticks(spinner.pid());
    let start = Instant::now();
    while cpu_ticks(spinner.pid()) == thawed_at && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(cpu_ticks(spinner.pid()) > thawed_at, "the thawed spinner does not run");

    cg.kill_all().expect("kill_all");
    assert_eq!(sleeper.wait_signal(Duration::from_secs(5)), Some(libc::SIGKILL));
    assert_eq!(spinner.wait_signal(Duration::from_secs(5)), Some(libc::SIGKILL));
    cg.remove().expect("remove");
    for dir in &dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
        let parent = dir.parent().unwrap();
        assert!(parent.ends_with("crabcan-test-oci"));
        assert!(!parent.exists(), "{} left behind", parent.display());
        assert!(parent.parent().unwrap().is_dir(), "the hierarchy root stays");
    }
    let err = ContainerCgroup::open_at(&second, &path).unwrap_err();
    assert!(matches!(err, CgroupError::NotFound { .. }), "{err}");
}
