//! Support for crabcan's privileged integration tests: finding the `crabcan` binary and a test
//! rootfs, running containers, and checking that the host is left as it was (no new mount, no
//! cgroup, no temp folder, no process of the container).
//!
//! These tests need root. When they cannot run (not root, no binary, no rootfs) they fail with
//! the reason; they never pass silently.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub mod escapes;
pub mod oci;
pub mod users;

/// Panics with the reason unless the tests run as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "crabcan's integration tests must run as root (euid is {euid}): run `sudo cargo xtask test`"
    );
}

/// The `crabcan` binary: $CRABCAN_BIN, or target/debug/crabcan of this workspace.
pub fn crabcan_bin() -> PathBuf {
    let path = std::env::var_os("CRABCAN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/crabcan"));
    assert!(
        path.is_file(),
        "the crabcan binary is missing at {}: build it with `cargo build -p crabcan-cli` or set CRABCAN_BIN (cargo xtask test does both)",
        path.display()
    );
    path
}

/// A busybox rootfs owned by root (or, in the VM, for [`test_id_map`]): $CRABCAN_TEST_ROOTFS, or built once at
/// target/test-rootfs.
pub fn rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            require_root();
            if let Some(path) = std::env::var_os("CRABCAN_TEST_ROOTFS") {
                let path = PathBuf::from(path);
                assert!(
                    path.join("bin/sh").exists(),
                    "CRABCAN_TEST_ROOTFS={} has no bin/sh",
                    path.display()
                );
                return path;
            }
            let out = xtask::paths::test_rootfs();
            let _lock = FileLock::acquire(&out.with_extension("lock"));
            if let Err(error) = xtask::ensure_rootfs(&out, &xtask::RootfsOptions::offline()) {
                panic!("cannot build the test rootfs at {}: {error}", out.display());
            }
            out
        })
        .clone()
}

/// The Debian rootfs (glibc, python3, apt; owned by root) for tests of real programs:
/// `$CRABCAN_TEST_DEBIAN_ROOTFS`, or built once (`cargo xtask rootfs --distro debian`, cached with
/// its stamp) at target/debian-rootfs. `None`, after printing `crabcan-skip: <reason>`, in the VM
/// (it keeps the small busybox rootfs) and on a machine without apt sources; a build that fails
/// where apt sources exist is a test failure.
pub fn debian_rootfs_or_skip() -> Option<PathBuf> {
    enum Debian {
        Ready(PathBuf),
        Skip(String),
        /// Kept, so the other tests of the binary fail with it instead of building again.
        Failed(String),
    }
    static DEBIAN: OnceLock<Debian> = OnceLock::new();
    let rootfs = DEBIAN.get_or_init(|| {
        if std::env::var_os("CRABCAN_IN_VM").is_some() {
            return Debian::Skip(
                "the VM keeps the busybox rootfs (its initramfs stays small); the Debian tests run on the host".into(),
            );
        }
        require_root();
        if let Some(path) = std::env::var_os("CRABCAN_TEST_DEBIAN_ROOTFS").filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            assert!(
                path.join("usr/bin/python3").exists() && path.join("usr/bin/apt-get").exists(),
                "CRABCAN_TEST_DEBIAN_ROOTFS={} has no usr/bin/python3 or usr/bin/apt-get: build it with `cargo xtask rootfs --distro debian --out DIR`",
                path.display()
            );
            return Debian::Ready(path);
        }
        if let Err(error) = xtask::rootfs::host_apt_sources(None) {
            return Debian::Skip(format!("this machine cannot build a Debian rootfs: {error}"));
        }
        let out = xtask::paths::debian_test_rootfs();
        let _lock = FileLock::acquire(&out.with_extension("lock"));
        let started = std::time::Instant::now();
        match xtask::ensure_rootfs(&out, &xtask::RootfsOptions::debian()) {
            Ok(_) => {
                eprintln!(
                    "crabcan-tests: debian rootfs at {} ready after {:.1} s",
                    out.display(),
                    started.elapsed().as_secs_f64()
                );
                Debian::Ready(out)
            }
            Err(error) => Debian::Failed(format!(
                "cannot build the Debian test rootfs at {}: {error}",
                out.display()
            )),
        }
    });
    match rootfs {
        Debian::Ready(path) => Some(path.clone()),
        Debian::Skip(reason) => {
            println!("crabcan-skip: {reason}");
            None
        }
        Debian::Failed(error) => panic!("{error}"),
    }
}

/// An exclusive flock, so several test binaries do not build the rootfs at once.
struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    fn acquire(path: &Path) -> FileLock {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|error| panic!("cannot open the lock file {}: {error}", path.display()));
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {} failed", path.display());
        FileLock(file)
    }
}

/// A hostname no other test uses, so a test can find its own cgroup and processes.
pub fn unique_hostname(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = format!("t-{tag}-{}-{n}", std::process::id());
    name.truncate(60);
    name
}

/// The result of one crabcan run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code(),
            signal: output.status.signal(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with everything crabcan printed unless it exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit status; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn expect_success(&self) -> &Run {
        self.expect_code(0)
    }

    /// The stdout line starting with `key=`, without the key.
    pub fn value(&self, key: &str) -> Option<String> {
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")).map(str::to_owned))
    }
}

/// A crabcan command line for one container, with its own hostname.
pub struct Crabcan {
    pub hostname: String,
    args: Vec<String>,
    rootfs: PathBuf,
    /// Use crabcan's own choice of host ids even where the test rootfs asks for a fixed map.
    auto_ids: bool,
    /// Run crabcan as an ordinary user (the rootless tests) instead of root.
    run_as: Option<users::RunAs>,
}

/// The id map the test rootfs is owned for, when it is not owned by root: `$CRABCAN_TEST_ID_MAP`
/// (`INSIDE:OUTSIDE:COUNT`). The test VM sets it: its tmpfs cannot be idmapped on Linux 6.1,
/// so its rootfs is shifted to host ids no one owns and the tests pass that map.
pub fn test_id_map() -> Option<String> {
    std::env::var("CRABCAN_TEST_ID_MAP").ok().filter(|map| !map.is_empty())
}

/// Makes `path` writable by the container's root: nothing to do where crabcan idmaps a path owned
/// by root; chowned to the host id of [`test_id_map`] where the tests pass one (the VM).
pub fn own_for_container(path: &Path) {
    let host_root = files_of_container_root();
    if host_root != 0 {
        std::os::unix::fs::chown(path, Some(host_root), Some(host_root))
            .unwrap_or_else(|error| panic!("chown {}: {error}", path.display()));
    }
}

/// The host owner of files the container's root writes in the rootfs or a writable `--add`
/// source: host root through an idmapped mount, or the host id of [`test_id_map`].
pub fn files_of_container_root() -> u32 {
    let Some(map) = test_id_map() else {
        return 0;
    };
    map.split(':')
        .nth(1)
        .and_then(|outside| outside.parse().ok())
        .unwrap_or_else(|| panic!("CRABCAN_TEST_ID_MAP={map} is not INSIDE:OUTSIDE:COUNT"))
}

/// Whether the kernel can idmap mounts of the filesystem holding `path`: Linux 5.12+, and
/// tmpfs only from 6.3 (the test VM's 6.1 kernel on its tmpfs root cannot).
pub fn idmap_supported(path: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in a test path");
    // SAFETY: statfs fills the zeroed struct it is given for a NUL-terminated path.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let is_tmpfs = unsafe { libc::statfs(c_path.as_ptr(), &mut fs) } == 0 && fs.f_type as i64 == TMPFS_MAGIC;
    version >= (5, 12) && (!is_tmpfs || version >= (6, 3))
}

impl Crabcan {
    /// A container in the test rootfs ([`rootfs`]).
    pub fn new(tag: &str) -> Crabcan {
        Crabcan::with_rootfs(tag, rootfs())
    }

    /// A container in `rootfs` (the busybox test rootfs is not built for it).
    pub fn with_rootfs(tag: &str, rootfs: impl Into<PathBuf>) -> Crabcan {
        require_root();
        Crabcan {
            hostname: unique_hostname(tag),
            args: Vec::new(),
            rootfs: rootfs.into(),
            auto_ids: false,
            run_as: None,
        }
    }

    /// A container that an ordinary user runs: `run_as`'s crabcan binary, in `rootfs` (one the
    /// user can reach), with crabcan's own choice of ids (the user's).
    pub fn as_user(tag: &str, rootfs: impl Into<PathBuf>, run_as: users::RunAs) -> Crabcan {
        Crabcan {
            run_as: Some(run_as),
            ..Crabcan::with_rootfs(tag, rootfs)
        }
    }

    /// Lets crabcan pick the container's host ids, even in the VM (see [`test_id_map`]).
    pub fn auto_ids(mut self) -> Crabcan {
        self.auto_ids = true;
        self
    }

    /// Adds crabcan flags (before `--`).
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Crabcan {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn rootfs(mut self, rootfs: impl Into<PathBuf>) -> Crabcan {
        self.rootfs = rootfs.into();
        self
    }

    /// The full command for running `command` (given after `--`).
    pub fn command(&self, command: &[&str]) -> Command {
        let bin = self
            .run_as
            .as_ref()
            .map_or_else(crabcan_bin, |user| user.crabcan.clone());
        let mut cmd = Command::new(bin);
        if let Some(user) = &self.run_as {
            user.apply(&mut cmd);
        }
        cmd.arg("--mount")
            .arg(&self.rootfs)
            .arg("--hostname")
            .arg(&self.hostname)
            .arg("--no-tty");
        let own_map = self.args.iter().any(|arg| arg == "--uid-map" || arg == "--gid-map");
        let auto_ids = self.auto_ids || self.run_as.is_some();
        if let (Some(map), false, false) = (test_id_map(), own_map, auto_ids) {
            cmd.args(["--uid-map", &map, "--gid-map", &map]);
        }
        cmd.args(&self.args);
        if !command.is_empty() {
            cmd.arg("--").args(command);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `command` to the end and checks the host is clean afterwards.
    pub fn run(&self, command: &[&str]) -> Run {
        let before = HostSnapshot::take();
        let output = self.command(command).output().expect("cannot start crabcan");
        let run = Run::from_output(output);
        before.assert_clean_after(&self.hostname);
        run
    }

    /// Runs `sh -c script` in the container.
    pub fn sh(&self, script: &str) -> Run {
        self.run(&["/bin/sh", "-c", script])
    }
}

/// Where a test's containers run: a rootfs, and who runs crabcan (root, or an ordinary user).
/// The escape probes (`escapes`) take one, so they run rootless too.
#[derive(Debug, Clone)]
pub struct Target {
    /// The container's rootfs.
    pub rootfs: PathBuf,
    /// The user who runs crabcan; `None`: root.
    pub user: Option<users::RunAs>,
}

impl Target {
    /// Root runs crabcan in `rootfs`.
    pub fn root(rootfs: impl Into<PathBuf>) -> Target {
        Target {
            rootfs: rootfs.into(),
            user: None,
        }
    }

    /// A user runs crabcan in its own copy of the test rootfs.
    pub fn user(user: &users::TestUser) -> Target {
        Target {
            rootfs: user.rootfs(),
            user: Some(user.run_as()),
        }
    }

    /// A container of this target.
    pub fn crabcan(&self, tag: &str) -> Crabcan {
        match &self.user {
            Some(user) => Crabcan::as_user(tag, &self.rootfs, user.clone()),
            None => Crabcan::with_rootfs(tag, &self.rootfs),
        }
    }

    /// The crabcan binary this target's containers run with.
    pub fn crabcan_bin(&self) -> PathBuf {
        self.user.as_ref().map_or_else(crabcan_bin, |user| user.crabcan.clone())
    }

    /// A host command run as this target's user (or root).
    pub fn host_command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        if let Some(user) = &self.user {
            user.apply(&mut command);
        }
        command
    }
}

/// What the host looks like, for comparison after a container ran.
#[derive(Debug)]
pub struct HostSnapshot {
    mount_points: BTreeSet<String>,
    temp_entries: BTreeSet<String>,
    devices: Vec<(String, u32, u32, u32)>,
}

impl HostSnapshot {
    pub fn take() -> HostSnapshot {
        HostSnapshot {
            mount_points: host_mount_points(),
            temp_entries: crabcan_temp_entries(),
            devices: host_devices(),
        }
    }

    /// Panics if the container `hostname` left a mount, a cgroup, a temp folder or a process.
    #[track_caller]
    pub fn assert_clean_after(&self, hostname: &str) {
        let mounts_now = host_mount_points();
        let new_mounts: Vec<_> = mounts_now.difference(&self.mount_points).collect();
        assert!(new_mounts.is_empty(), "crabcan left mounts on the host: {new_mounts:?}");
        let temps_now = crabcan_temp_entries();
        let new_temps: Vec<_> = temps_now.difference(&self.temp_entries).collect();
        assert!(
            new_temps.is_empty(),
            "crabcan left temp folders on the host: {new_temps:?}"
        );
        let cgroups = container_cgroup_dirs(hostname);
        assert!(cgroups.is_empty(), "the container's cgroup survived it: {cgroups:?}");
        assert_eq!(
            host_devices(),
            self.devices,
            "the host's device nodes (which containers get bound in) changed owner or mode"
        );
        let processes = processes_in_container_cgroup(hostname);
        assert!(
            processes.is_empty(),
            "processes of the container survived it: {processes:?}"
        );
    }
}

/// Owner and mode of the host device nodes crabcan binds into containers.
fn host_devices() -> Vec<(String, u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    ]
    .iter()
    .filter_map(|path| {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some((path.to_string(), meta.uid(), meta.gid(), meta.mode() & 0o7777))
    })
    .collect()
}

fn host_mount_points() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("cannot read /proc/self/mountinfo")
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
        .collect()
}

fn crabcan_temp_entries() -> BTreeSet<String> {
    let mut entries = BTreeSet::new();
    for dir in ["/tmp", "/var/tmp", "/run"] {
        if let Ok(listing) = std::fs::read_dir(dir) {
            for entry in listing.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // /run/crabcan holds the cgroup leases of whichever containers run right now
                // (other tests' too); leases are checked by tests/cgroup_ownership.rs.
                let state_dir = dir == "/run" && name == "crabcan";
                if name.starts_with("crabcan") && name != "crabcan-probe" && !state_dir {
                    entries.insert(format!("{dir}/{name}"));
                }
            }
        }
    }
    entries
}

/// Every cgroup mount point of the host (v1 hierarchies and cgroup2).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("cannot read /proc/self/mountinfo")
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            let fstype = fields.get(dash + 1)?;
            (*fstype == "cgroup" || *fstype == "cgroup2").then(|| PathBuf::from(fields[4]))
        })
        .collect()
}

/// The cgroup directories of the container `hostname` (`crabcan/<hostname>.<pid>`), in every
/// hierarchy.
pub fn container_cgroup_dirs(hostname: &str) -> Vec<PathBuf> {
    let prefix = format!("{hostname}.");
    let mut dirs = Vec::new();
    for mount in cgroup_mounts() {
        if let Ok(listing) = std::fs::read_dir(mount.join("crabcan")) {
            for entry in listing.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    dirs.push(entry.path());
                }
            }
        }
    }
    dirs
}

/// Host pids of processes whose cgroup path names the container `hostname`.
pub fn processes_in_container_cgroup(hostname: &str) -> Vec<i32> {
    let needle = format!("/crabcan/{hostname}.");
    let mut pids = Vec::new();
    if let Ok(listing) = std::fs::read_dir("/proc") {
        for entry in listing.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(cgroups) = std::fs::read_to_string(entry.path().join("cgroup")) {
                if cgroups.contains(&needle) {
                    pids.push(pid);
                }
            }
        }
    }
    pids
}

/// The host pid of the container's process running `comm` (after its execve), waiting up to
/// 20 s for it: killing a process still in setup tests something else.
pub fn wait_for_command(hostname: &str, comm: &str) -> i32 {
    let mut found = None;
    let started = wait_until(20, || {
        found = processes_in_container_cgroup(hostname)
            .into_iter()
            .find(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm));
        found.is_some()
    });
    assert!(started, "the container {hostname} never ran {comm}");
    found.unwrap_or_default()
}

/// Whether a test that needs the host tool `tool` can run. On a normal host a missing tool is a
/// failure with the reason; inside the test VM (busybox only) the test is reported as skipped,
/// with the reason, through the VM runner's `crabcan-skip:` convention.
pub fn tool_available_or_skip_in_vm(tool: &str, why: &str) -> bool {
    let available = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if available {
        return true;
    }
    if std::env::var_os("CRABCAN_IN_VM").is_some() {
        println!("crabcan-skip: `{tool}` is not in the VM's busybox initramfs ({why}); this test runs on the host");
        return false;
    }
    panic!("this test needs `{tool}` ({why}): install it (Debian: bsdutils/util-linux)");
}

/// Lazily unmounts every mount point below `dir`, deepest first: what an engine (podman,
/// containerd) left mounted in a test's folders goes before the folders do.
pub fn unmount_below(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let under: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(dir))
        .collect();
    for point in under.iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(point).status();
    }
}

/// Waits up to `seconds` for `condition`, polling every 20 ms.
pub fn wait_until(seconds: u64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    condition()
}

/// A temporary host directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("cctest-{tag}-{}-{}", std::process::id(), unique_hostname("d")));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The static probe program (tests/probe/probe.c), embedded in the test binary so it also
/// travels into the test VM.
const PROBE: &[u8] = include_bytes!(env!("CRABCAN_PROBE_BUILT"));

/// A temp dir holding `crabcan-probe`, for tests to bind into the container at /probe.
pub fn probe_dir() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("probe");
    let path = dir.path().join("crabcan-probe");
    std::fs::write(&path, PROBE).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod the probe");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod the probe dir");
    dir
}

/// Runs the probe with `checks` in a container (tag `tag`, extra crabcan `flags`); returns
/// check → result (`OK` or an errno name).
pub fn probe(tag: &str, flags: &[&str], checks: &[&str]) -> std::collections::BTreeMap<String, String> {
    probe_in(&rootfs(), tag, flags, checks)
}

/// [`probe`] in the container rootfs `rootfs`.
pub fn probe_in(
    rootfs: &Path,
    tag: &str,
    flags: &[&str],
    checks: &[&str],
) -> std::collections::BTreeMap<String, String> {
    probe_on(&Target::root(rootfs), tag, flags, checks)
}

/// [`probe`] in a container of `target`.
pub fn probe_on(
    target: &Target,
    tag: &str,
    flags: &[&str],
    checks: &[&str],
) -> std::collections::BTreeMap<String, String> {
    let dir = probe_dir();
    let mut command = vec!["/probe/crabcan-probe"];
    command.extend_from_slice(checks);
    let run = target
        .crabcan(tag)
        .args(["--add", &format!("{}:/probe:ro", dir.path().display())])
        .args(flags.iter().copied())
        .run(&command);
    run.expect_success();
    run.stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The descriptors above 2 in a listing of `/proc/self/fd` made by `ls` inside the container
/// (numbers separated by white space). `ls` itself holds one, on the directory it lists.
pub fn descriptors_beyond_stdio(listing: &str) -> Vec<u32> {
    listing
        .split_whitespace()
        .map(|fd| fd.parse().expect("a descriptor number"))
        .filter(|fd| *fd > 2)
        .collect()
}

/// Parses a capability mask line such as `CapEff:\t00000000a80425fb` from `/proc/<pid>/status`.
pub fn cap_mask(status: &str, key: &str) -> u64 {
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} missing from:\n{status}"));
    let hex = line.split_whitespace().nth(1).expect("a mask value");
    u64::from_str_radix(hex, 16).expect("a hexadecimal mask")
}
