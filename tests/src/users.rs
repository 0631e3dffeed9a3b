//! Ordinary users for the rootless tests: [`TestUser`] makes one (with `useradd` on a host,
//! by adding lines to `/etc/passwd` and `/etc/group` in the test VM, which has no shadow
//! tools), optionally with a subordinate range in `/etc/subuid` and `/etc/subgid`, gives it a
//! home of its own holding a copy of the crabcan binary and of the test rootfs that it owns,
//! and removes everything again on drop, even when the test panics: its processes, the account,
//! its subordinate ranges, the home.
//!
//! [`RunAs::apply`] makes a `Command` run as such a user (its own uid and gid, no
//! supplementary groups, a clean environment with `XDG_RUNTIME_DIR` in its home), optionally
//! started in a cgroup v2 cgroup first, for the delegation tests.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::{crabcan_bin, TempDir};

/// The shadow tools lock `/etc/passwd`; two at once from one test binary would fail.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Names of test users start with this, then the test process's pid.
const PREFIX: &str = "ccrl";

/// An ordinary user that exists for one test.
pub struct TestUser {
    /// Its login name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Its subordinate uids and gids (the same numbers), if it was given a range.
    pub subids: Option<(u64, u64)>,
    /// Its home, owned by it (mode 0700): `crabcan`, `rootfs`, `xdg` (its XDG_RUNTIME_DIR).
    home: TempDir,
    /// The account was made with `useradd` (else: lines added to the files, in the VM).
    with_shadow_tools: bool,
}

impl TestUser {
    /// A user without subordinate ids.
    pub fn new(tag: &str) -> TestUser {
        TestUser::create(tag, None)
    }

    /// A user with 65536 subordinate uids and gids, at a place no other test user of this run
    /// has and far below crabcan's pool (2^31).
    pub fn with_subids(tag: &str) -> TestUser {
        let start = 1_600_000_000 + u64::from(std::process::id() % 1000) * 65_536 * 4;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let slot = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4;
        TestUser::create(tag, Some((start + slot * 65_536, 65_536)))
    }

    fn create(tag: &str, subids: Option<(u64, u64)>) -> TestUser {
        crate::require_root();
        let name = account_name(tag);
        let with_shadow_tools = tool_exists("useradd");
        {
            let _serial = ACCOUNTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            remove_stale_users();
            if with_shadow_tools {
                add_with_useradd(&name, subids);
            } else {
                assert!(
                    std::env::var_os("CRABCAN_IN_VM").is_some(),
                    "the rootless tests need useradd and usermod: install passwd (Debian)"
                );
                add_to_files(&name, subids);
            }
        }
        let (uid, gid) = ids_of(&name);
        let home = TempDir::new(&format!("rootless-{tag}"));
        let user = TestUser {
            name,
            uid,
            gid,
            subids,
            home,
            with_shadow_tools,
        };
        user.fill_home();
        user
    }

    /// Copies the crabcan binary and the test rootfs into the home, all owned by the user.
    fn fill_home(&self) {
        let home = self.home.path();
        std::fs::copy(crabcan_bin(), home.join("crabcan")).expect("copy the crabcan binary");
        std::fs::set_permissions(home.join("crabcan"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let copied = Command::new("cp")
            .arg("-a")
            .arg(crate::rootfs())
            .arg(home.join("rootfs"))
            .status()
            .expect("run cp");
        assert!(copied.success(), "cannot copy the test rootfs into {}", home.display());
        std::fs::create_dir(home.join("xdg")).unwrap();
        std::fs::set_permissions(home.join("xdg"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let owned = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(home)
            .status()
            .expect("run chown");
        assert!(owned.success(), "cannot chown {} to {}", home.display(), self.name);
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    /// The user's home.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Its copy of the crabcan binary.
    pub fn crabcan(&self) -> PathBuf {
        self.home().join("crabcan")
    }

    /// Its copy of the test rootfs, owned by it.
    pub fn rootfs(&self) -> PathBuf {
        self.home().join("rootfs")
    }

    /// Its XDG_RUNTIME_DIR.
    pub fn runtime_dir(&self) -> PathBuf {
        self.home().join("xdg")
    }

    /// A directory in its home, owned by it.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.home().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(self.uid), Some(self.gid)).unwrap();
        dir
    }

    /// The pids of processes running as this user.
    pub fn processes(&self) -> Vec<i32> {
        processes_of(self.uid)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _serial = ACCOUNTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        kill_processes_of(self.uid);
        remove_account(&self.name, self.with_shadow_tools);
    }
}

/// `ccrl<pid>-<tag>`: at most 32 bytes, as useradd wants.
fn account_name(tag: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = format!("{PREFIX}{}-{n}-{tag}", std::process::id());
    name.truncate(32);
    name.trim_end_matches('-').to_owned()
}

fn tool_exists(tool: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|dir| dir.join(tool).is_file())
}

fn run_checked(command: &mut Command) {
    let output = command.stdin(Stdio::null()).output().expect("cannot run a shadow tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

fn add_with_useradd(name: &str, subids: Option<(u64, u64)>) {
    // No range of useradd's own (SUB_UID_COUNT): the test gives the range it wants.
    run_checked(Command::new("useradd").args([
        "--no-create-home",
        "--user-group",
        "--shell",
        "/bin/false",
        "-K",
        "SUB_UID_COUNT=0",
        "-K",
        "SUB_GID_COUNT=0",
        name,
    ]));
    if let Some((start, count)) = subids {
        let range = format!("{start}-{}", start + count - 1);
        run_checked(Command::new("usermod").args(["--add-subuids", &range, "--add-subgids", &range, name]));
    }
}

/// The VM: lines of its own in the (tmpfs) account files, with ids from 62000 up.
fn add_to_files(name: &str, subids: Option<(u64, u64)>) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let id = (62_000u32..64_000)
        .find(|id| {
            !passwd
                .lines()
                .any(|line| line.split(':').nth(2) == Some(&id.to_string()))
        })
        .expect("a free uid in the VM");
    append("/etc/passwd", &format!("{name}:x:{id}:{id}::/:/bin/false\n"));
    append("/etc/group", &format!("{name}:x:{id}:\n"));
    if let Some((start, count)) = subids {
        append("/etc/subuid", &format!("{name}:{start}:{count}\n"));
        append("/etc/subgid", &format!("{name}:{start}:{count}\n"));
    }
}

fn append(path: &str, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
    file.write_all(line.as_bytes())
        .unwrap_or_else(|e| panic!("write {path}: {e}"));
}

/// Removes the lines of `name` from an account file (the VM's, or what userdel left).
fn remove_lines(path: &str, name: &str) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let kept: String = text
        .lines()
        .filter(|line| line.split(':').next() != Some(name))
        .map(|line| format!("{line}\n"))
        .collect();
    if kept != text {
        let temp = format!("{path}.crabcan-test");
        if std::fs::write(&temp, kept).is_ok() {
            let _ = std::fs::rename(&temp, path);
        }
    }
}

fn remove_account(name: &str, with_shadow_tools: bool) {
    if with_shadow_tools {
        let _ = Command::new("userdel")
            .arg(name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("groupdel")
            .arg(name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    for path in ["/etc/subuid", "/etc/subgid", "/etc/passwd", "/etc/group"] {
        remove_lines(path, name);
    }
}

/// Users an earlier run of the rootless tests left (it was killed before its guards ran):
/// their names carry the pid of a process that is gone.
fn remove_stale_users() {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for line in passwd.lines() {
        let name = line.split(':').next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let alive = pid
            .parse::<i32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !pid.is_empty() && !alive {
            let uid = line.split(':').nth(2).and_then(|id| id.parse().ok());
            if let Some(uid) = uid {
                kill_processes_of(uid);
            }
            remove_account(name, tool_exists("userdel"));
        }
    }
}

fn ids_of(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd
        .lines()
        .find(|line| line.split(':').next() == Some(name))
        .unwrap_or_else(|| panic!("{name} is not in /etc/passwd"));
    let field = |n: usize| -> u32 {
        line.split(':')
            .nth(n)
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("bad /etc/passwd line {line}"))
    };
    (field(2), field(3))
}

/// The pids of processes whose real uid is `uid`.
pub fn processes_of(uid: u32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let real = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .and_then(|id| id.parse::<u32>().ok());
        if real == Some(uid) {
            pids.push(pid);
        }
    }
    pids
}

/// SIGKILLs the processes of a test user (only test users: never uid 0 or a real account).
fn kill_processes_of(uid: u32) {
    if uid < 1000 {
        return;
    }
    for pid in processes_of(uid) {
        // SAFETY: kill(2) of one process, one of the test user's own.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Who runs a command in a rootless test: a [`TestUser`]'s ids, home and crabcan binary, and
/// the cgroup it starts in (if not the test's own).
#[derive(Debug, Clone)]
pub struct RunAs {
    /// The uid.
    pub uid: u32,
    /// The gid (also the only group).
    pub gid: u32,
    /// Its home, the working directory.
    pub home: PathBuf,
    /// Its XDG_RUNTIME_DIR.
    pub runtime_dir: PathBuf,
    /// The crabcan binary it runs.
    pub crabcan: PathBuf,
    /// A cgroup v2 directory it is moved into first.
    pub cgroup: Option<PathBuf>,
}

impl TestUser {
    /// How to run commands as this user.
    pub fn run_as(&self) -> RunAs {
        RunAs {
            uid: self.uid,
            gid: self.gid,
            home: self.home().to_owned(),
            runtime_dir: self.runtime_dir(),
            crabcan: self.crabcan(),
            cgroup: None,
        }
    }
}

/// What [`RunAs::apply`] does in the forked child: everything prepared, so only syscalls run
/// there.
struct Switch {
    uid: u32,
    gid: u32,
    cgroup_procs: Option<CString>,
}

impl RunAs {
    /// Makes `command` run as the user (its uid and gid, no supplementary groups) with a clean
    /// environment (PATH, HOME and XDG_RUNTIME_DIR in its home) in its home; first moved into
    /// [`RunAs::cgroup`] when there is one.
    pub fn apply(&self, command: &mut Command) {
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .current_dir(&self.home);
        let switch = Switch {
            uid: self.uid,
            gid: self.gid,
            cgroup_procs: self.cgroup.as_ref().map(|dir| {
                CString::new(dir.join("cgroup.procs").into_os_string().into_encoded_bytes()).expect("no NUL in a path")
            }),
        };
        // SAFETY: the closure runs in the forked child before exec and makes only
        // async-signal-safe syscalls (open, write, close, setgroups, setresgid, setresuid) on
        // data prepared above.
        unsafe {
            command.pre_exec(move || {
                if let Some(procs) = &switch.cgroup_procs {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(switch.gid, switch.gid, switch.gid) != 0
                    || libc::setresuid(switch.uid, switch.uid, switch.uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}
