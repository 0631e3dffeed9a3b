//! Host ids of rootful containers: each container gets a private range from crabcan's pool,
//! which overlaps no ordinary user's subordinate ids (so `newuidmap` gives no one a way into a
//! container or its rootfs), ranges are disjoint while containers run and reused once they are
//! gone, a map that overlaps someone's ids is refused, and a rootfs owned by root is shown to
//! the container through an idmapped mount (or, where the kernel cannot, used as it is with one
//! warning).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use crabcan_tests::*;

/// The tests of this file count crabcan's leased ranges: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A container running `sleep 60`, its crabcan killed on drop.
struct Sleeper {
    crabcan: Child,
    hostname: String,
    pid: i32,
}

impl Sleeper {
    fn start(c: Crabcan) -> Sleeper {
        let crabcan = c.command(&["/bin/sleep", "60"]).spawn().expect("cannot start crabcan");
        let pid = wait_for_command(&c.hostname, "sleep");
        Sleeper {
            crabcan,
            hostname: c.hostname.clone(),
            pid,
        }
    }

    /// The host uid of the container's root (`uid_map` seen from the host).
    fn host_root(&self) -> u64 {
        let map = std::fs::read_to_string(format!("/proc/{}/uid_map", self.pid)).unwrap();
        map.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn stop(mut self, signal: i32) {
        // SAFETY: kill(2) of the crabcan process this test started.
        unsafe { libc::kill(self.crabcan.id() as i32, signal) };
        let _ = self.crabcan.wait();
        assert!(
            wait_until(10, || processes_in_container_cgroup(&self.hostname).is_empty()),
            "the container outlived its crabcan"
        );
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.crabcan.kill();
        let _ = self.crabcan.wait();
    }
}

#[test]
fn concurrent_containers_get_disjoint_ranges_reused_only_once_gone() {
    let _serial = serial();
    let before = HostSnapshot::take();
    let first = Sleeper::start(Crabcan::new("ids-a").auto_ids());
    let second = Sleeper::start(Crabcan::new("ids-b").auto_ids());
    let (a, b) = (first.host_root(), second.host_root());
    assert!(a.abs_diff(b) >= 65536, "ranges overlap: {a} and {b}");
    for root in [a, b] {
        assert!(root >= 1 << 31, "{root} is outside crabcan's pool");
    }
    // While both run, a third gets neither range; once the first is gone its range is free.
    let third = Sleeper::start(Crabcan::new("ids-c").auto_ids());
    let c = third.host_root();
    assert!(
        c.abs_diff(a) >= 65536 && c.abs_diff(b) >= 65536,
        "{c} overlaps {a} or {b}"
    );
    first.stop(libc::SIGTERM);
    let fourth = Sleeper::start(Crabcan::new("ids-d").auto_ids());
    assert_eq!(fourth.host_root(), a, "the lowest free range is the one released");
    // A SIGKILLed crabcan's range comes back too: its lease dies with it.
    second.stop(libc::SIGKILL);
    let fifth = Sleeper::start(Crabcan::new("ids-e").auto_ids());
    assert_eq!(fifth.host_root(), b, "a SIGKILLed crabcan's range was not released");
    let hostnames = [third.hostname.clone(), fourth.hostname.clone(), fifth.hostname.clone()];
    for sleeper in [third, fourth, fifth] {
        sleeper.stop(libc::SIGTERM);
    }
    for hostname in hostnames {
        before.assert_clean_after(&hostname);
    }
}

/// An ordinary user made with `useradd` (which gives it a subordinate range), removed on drop.
struct TestUser {
    name: String,
    subuid: (u64, u64),
    subgid: (u64, u64),
}

impl TestUser {
    fn create(name: &str) -> TestUser {
        let _ = Command::new("userdel").arg(name).stderr(Stdio::null()).status();
        let status = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", name])
            .status()
            .expect("cannot run useradd (Debian package passwd)");
        assert!(status.success(), "useradd {name} failed");
        let entry = |file: &str| -> (u64, u64) {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let line = text
                .lines()
                .find(|line| line.starts_with(&format!("{name}:")))
                .unwrap_or_else(|| {
                    panic!("useradd gave {name} no range in {file}: check SUB_UID_COUNT in /etc/login.defs")
                });
            let fields: Vec<u64> = line.split(':').skip(1).map(|f| f.parse().unwrap()).collect();
            (fields[0], fields[1])
        };
        TestUser {
            name: name.to_owned(),
            subuid: entry("/etc/subuid"),
            subgid: entry("/etc/subgid"),
        }
    }

    /// Runs `script` as this user, as root of a user namespace that maps its whole subordinate
    /// range (through newuidmap/newgidmap): what any user may do without privilege.
    fn sh_as_subordinate_root(&self, script: &str) -> Run {
        let output = Command::new("runuser")
            .args(["-u", &self.name, "--", "unshare", "--user"])
            .arg(format!("--map-users={},0,{}", self.subuid.0, self.subuid.1))
            .arg(format!("--map-groups={},0,{}", self.subgid.0, self.subgid.1))
            .args(["--setuid", "0", "--setgid", "0", "--", "/bin/sh", "-c", script])
            .current_dir("/")
            .output()
            .expect("cannot run runuser/unshare");
        Run::from_output(output)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn tools_for_subordinate_ids() -> bool {
    tool_available_or_skip_in_vm("useradd", "to create an ordinary user with subordinate ids")
        && tool_available_or_skip_in_vm(
            "newuidmap",
            "an ordinary user maps its subordinate ids with it (Debian: uidmap)",
        )
}

#[test]
fn an_ordinary_user_with_subordinate_ids_cannot_touch_roots_containers() {
    if !tools_for_subordinate_ids() {
        return;
    }
    let _serial = serial();
    let user = TestUser::create("crabcan-t16");
    // The attack needs no privilege: the user really is root over its own range.
    let probe = user.sh_as_subordinate_root("id -u");
    probe.expect_success();
    assert_eq!(probe.stdout.trim(), "0", "{}", probe.stderr);

    let data = TempDir::new("t16-data");
    let c = Crabcan::new("t16")
        .auto_ids()
        .args(["--add", &format!("{}:/data", data.path().display())]);
    let container = Sleeper::start(c);
    let target = |path: &Path| path.display().to_string();
    let attack = user.sh_as_subordinate_root(&format!(
        "kill -9 {pid} 2>/dev/null; echo killed=$?; \
         echo planted > {rootfs}/root/planted 2>/dev/null; echo rootfs=$?; \
         echo planted > {data}/planted 2>/dev/null; echo data=$?",
        pid = container.pid,
        rootfs = target(&rootfs()),
        data = target(data.path()),
    ));
    assert_ne!(attack.value("killed").as_deref(), Some("0"), "{}", attack.stdout);
    assert_ne!(attack.value("rootfs").as_deref(), Some("0"), "{}", attack.stdout);
    assert_ne!(attack.value("data").as_deref(), Some("0"), "{}", attack.stdout);
    assert!(!rootfs().join("root/planted").exists());
    assert!(!data.path().join("planted").exists());
    assert!(
        Path::new(&format!("/proc/{}", container.pid)).exists(),
        "the container was killed"
    );
    let host_root = container.host_root();
    assert!(
        host_root >= user.subuid.0 + user.subuid.1 || host_root + 65536 <= user.subuid.0,
        "the container's ids {host_root}.. overlap the user's range {:?}",
        user.subuid
    );
    container.stop(libc::SIGTERM);

    // A map onto the user's ids is refused, naming whose they are and the fix.
    let map = format!("0:{}:65536", user.subuid.0);
    let run = Crabcan::new("t16-map")
        .args(["--uid-map", &map, "--gid-map", &map])
        .run(&["/bin/true"]);
    run.expect_code(125);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    for needle in ["crabcan-t16", "/etc/subuid", "--uid-map"] {
        assert!(run.stderr.contains(needle), "no {needle:?} in {}", run.stderr);
    }
}

#[test]
fn a_map_inside_crabcans_pool_or_over_an_account_is_refused() {
    let _serial = serial();
    for (map, needle) in [
        ("0:2147483648:65536", "pool"),
        ("0:65534:1", "user nobody in /etc/passwd"),
    ] {
        let run = Crabcan::new("map-refused").args(["--uid-map", map]).run(&["/bin/true"]);
        run.expect_code(125);
        assert!(run.stderr.contains(needle), "{map}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
}

/// A copy of the test rootfs owned by root, as `tar` would leave it, in `dir`.
fn root_owned_rootfs(dir: &Path) -> PathBuf {
    let copy = dir.join("rootfs");
    let status = Command::new("cp").arg("-a").arg(rootfs()).arg(&copy).status().unwrap();
    assert!(status.success(), "cp -a of the test rootfs failed");
    let status = Command::new("chown")
        .args(["-R", "-h", "0:0"])
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success(), "chown -R of the rootfs copy failed");
    copy
}

#[test]
fn a_root_owned_rootfs_is_idmapped_where_the_kernel_can_and_used_as_it_is_with_one_warning_elsewhere() {
    let _serial = serial();
    let dir = TempDir::new("idmap");
    let copy = root_owned_rootfs(dir.path());
    let run = Crabcan::new("idmap").rootfs(&copy).auto_ids().sh(
        "(echo hi > /root/x) 2>/dev/null && echo wrote=yes || echo wrote=no; echo owner=$(stat -c %u /bin/busybox)",
    );
    run.expect_success();
    if idmap_supported(dir.path()) {
        assert_eq!(run.value("wrote").as_deref(), Some("yes"), "{run:?}");
        assert_eq!(
            run.value("owner").as_deref(),
            Some("0"),
            "root's files are the container root's"
        );
        assert_eq!(
            std::fs::metadata(copy.join("root/x")).unwrap().uid(),
            0,
            "written as host root"
        );
        assert!(run.stderr.is_empty(), "{}", run.stderr);
    } else {
        assert_eq!(run.value("wrote").as_deref(), Some("no"), "{run:?}");
        let warnings: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(warnings.len(), 1, "{}", run.stderr);
        assert!(
            warnings[0].starts_with("crabcan: warn:") && warnings[0].contains("idmapped"),
            "{}",
            warnings[0]
        );
    }
}
