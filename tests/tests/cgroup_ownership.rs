//! Whose cgroup is it? Stale-cgroup cleanup must only remove cgroups provably left by a dead
//! crabcan (an unlocked lease in /run/crabcan/.cgroups), never by reading the pid in the
//! cgroup's name in the cleaner's own pid namespace:
//! - a crabcan inside `unshare -fp --mount-proc` (whose pid means nothing on the host) keeps
//!   its container while a crabcan on the host starts and exits;
//! - a hand-made `crabcan/x.4000001` cgroup with a host process inside survives a crabcan run;
//! - a crabcan killed by SIGKILL leaves a lease and a cgroup that the next run removes.
//!
//! The tests of this file run one at a time: each checks what the crabcans of the others
//! would otherwise clean up.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use crabcan_tests::*;

/// Where crabcan keeps the cgroups' leases (crabcan_cgroups::DEFAULT_STATE_DIR).
const LEASES: &str = "/run/crabcan/.cgroups";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lease files (and temporary leases) of the container `hostname`.
fn leases_of(hostname: &str) -> Vec<PathBuf> {
    let Ok(listing) = std::fs::read_dir(LEASES) else {
        return Vec::new();
    };
    listing
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("{hostname}.")) || name.starts_with(&format!(".{hostname}."))
        })
        .map(|entry| entry.path())
        .collect()
}

/// Whether someone holds the flock of `lease`.
fn is_locked(lease: &Path) -> bool {
    let file = std::fs::File::open(lease).unwrap_or_else(|e| panic!("cannot open {}: {e}", lease.display()));
    // SAFETY: flock on a descriptor we own; closing it drops a lock we got.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

#[track_caller]
fn assert_nothing_left_of(hostname: &str) {
    let dirs = container_cgroup_dirs(hostname);
    assert!(dirs.is_empty(), "cgroup dirs of {hostname} left: {dirs:?}");
    let leases = leases_of(hostname);
    assert!(leases.is_empty(), "leases of {hostname} left: {leases:?}");
    let processes = processes_in_container_cgroup(hostname);
    assert!(processes.is_empty(), "processes of {hostname} left: {processes:?}");
}

fn pid_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Kills (SIGKILL) and reaps a child on drop, so a failed test leaves nothing running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// On drop, removes whatever the container `hostname` left (its processes, cgroup dirs and
/// leases), so a failing test does not leave the host dirty for the next ones.
struct CleanUp<'a>(&'a str);

impl Drop for CleanUp<'_> {
    fn drop(&mut self) {
        for pid in processes_in_container_cgroup(self.0) {
            sigkill(pid);
        }
        for dir in container_cgroup_dirs(self.0) {
            let _ = wait_until(5, || std::fs::remove_dir(&dir).is_ok() || !dir.exists());
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent); // only if empty
            }
        }
        for lease in leases_of(self.0) {
            let _ = std::fs::remove_file(lease);
        }
    }
}

fn sigkill(pid: i32) {
    // SAFETY: kill(2) of one process the test started or found in the container's cgroup.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn a_crabcan_in_another_pid_namespace_keeps_its_container() {
    let _serial = serial();
    if !tool_available_or_skip_in_vm("unshare", "it runs crabcan in a new pid namespace") {
        return;
    }
    if std::env::var_os("CRABCAN_IN_VM").is_some() {
        println!("crabcan-skip: busybox's unshare in the VM starts the inner crabcan as pid 1, a pid the host has too, so the test would prove nothing; it runs on the host with util-linux");
        return;
    }
    let inner = Crabcan::new("inner");
    let _clean_up = CleanUp(&inner.hostname);
    let crabcan = inner.command(&["/bin/sleep", "20"]);
    // In the new pid namespace, fork until the next pid is one no host process has, so that a
    // pid-based liveness check on the host would call the inner crabcan dead.
    let target = (300..30_000).find(|pid| !pid_exists(*pid)).expect("a free host pid");
    let script = r#"t=$1; shift
while :; do /bin/true & p=$!; wait $p; [ "$p" -ge $((t - 1)) ] && break; done
"$@""#;
    let mut unshare = Command::new("unshare");
    unshare
        .args(["-fp", "--mount-proc", "sh", "-c", script, "sh"])
        .arg(target.to_string())
        .arg(crabcan.get_program())
        .args(crabcan.get_args())
        .stdin(Stdio::null());
    let mut outer = Reaped(unshare.spawn().expect("cannot run unshare"));

    let sleep = wait_for_command(&inner.hostname, "sleep");
    let dirs = container_cgroup_dirs(&inner.hostname);
    assert!(!dirs.is_empty(), "the inner container has no cgroup");
    let leaf = dirs[0].file_name().unwrap().to_string_lossy().into_owned();
    let owner: u32 = leaf.rsplit('.').next().unwrap().parse().unwrap();
    assert!(
        !pid_exists(owner),
        "the inner crabcan's pid {owner} ({leaf}) exists on the host too: the test proves nothing"
    );

    // A crabcan on the host starts (and cleans up stale cgroups) and exits.
    Crabcan::new("outer").run(&["/bin/true"]).expect_success();

    assert!(
        outer.0.try_wait().unwrap().is_none(),
        "the inner crabcan ended while the host's ran"
    );
    assert!(
        pid_exists(sleep as u32) && processes_in_container_cgroup(&inner.hostname).contains(&sleep),
        "the host's crabcan killed the inner container"
    );
    assert_eq!(
        container_cgroup_dirs(&inner.hostname),
        dirs,
        "the inner container's cgroup was touched"
    );
    let lease = Path::new(LEASES).join(&leaf);
    assert!(is_locked(&lease), "the inner crabcan does not hold {}", lease.display());

    sigkill(sleep);
    let status = outer.0.wait().unwrap();
    assert_eq!(status.code(), Some(137), "inner crabcan: {status}");
    assert_nothing_left_of(&inner.hostname);
}

/// A cgroup made by hand under `crabcan/`, with a host `sleep` inside; removed on drop.
struct HandMade {
    dir: PathBuf,
    sleep: Reaped,
}

impl HandMade {
    fn new(leaf: &str) -> HandMade {
        let mounts = cgroup_mounts();
        let mount = mounts
            .iter()
            .find(|m| m.ends_with("pids") || m.ends_with("memory"))
            .or_else(|| mounts.iter().find(|m| m.join("cgroup.subtree_control").exists()))
            .expect("a pids or memory hierarchy (or cgroup2)")
            .clone();
        let dir = mount.join("crabcan").join(leaf);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let sleep = Reaped(Command::new("sleep").arg("30").spawn().expect("spawn sleep"));
        let made = HandMade { dir, sleep };
        std::fs::write(made.dir.join("cgroup.procs"), made.sleep.0.id().to_string())
            .unwrap_or_else(|e| panic!("cannot move sleep into {}: {e}", made.dir.display()));
        made
    }

    fn procs(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    }
}

impl Drop for HandMade {
    fn drop(&mut self) {
        let _ = self.sleep.0.kill();
        let _ = self.sleep.0.wait();
        let _ = wait_until(5, || std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists());
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent); // only if empty
        }
    }
}

#[test]
fn a_hand_made_cgroup_and_its_process_survive_a_crabcan_run() {
    let _serial = serial();
    let mut made = HandMade::new("x.4000001");
    let sleep = made.sleep.0.id();
    assert_eq!(made.procs(), vec![sleep]);

    Crabcan::new("handmade").run(&["/bin/true"]).expect_success();

    assert!(
        made.sleep.0.try_wait().unwrap().is_none(),
        "crabcan killed a host process in a cgroup it did not make"
    );
    assert!(made.dir.is_dir(), "crabcan removed {}", made.dir.display());
    assert_eq!(made.procs(), vec![sleep]);
    let dir = made.dir.clone();
    drop(made);
    assert!(!dir.exists(), "cannot clean up {}", dir.display());
    assert!(leases_of("x").is_empty(), "a lease for the hand-made cgroup appeared");
}

#[test]
fn a_sigkilled_crabcan_leaves_a_stale_lease_that_the_next_run_removes() {
    let _serial = serial();
    let killed = Crabcan::new("killed");
    let _clean_up = CleanUp(&killed.hostname);
    let mut child = Reaped(killed.command(&["/bin/sleep", "30"]).spawn().unwrap());
    wait_for_command(&killed.hostname, "sleep");
    let leaf = format!("{}.{}", killed.hostname, child.0.id());
    let lease = Path::new(LEASES).join(&leaf);
    assert!(
        lease.is_file(),
        "no lease {} for the running container",
        lease.display()
    );
    assert!(is_locked(&lease), "the running crabcan does not hold its lease");

    sigkill(child.0.id() as i32);
    let _ = child.0.wait();
    assert!(
        wait_until(10, || processes_in_container_cgroup(&killed.hostname).is_empty()),
        "the container outlived crabcan"
    );
    let dirs = container_cgroup_dirs(&killed.hostname);
    assert!(!dirs.is_empty(), "the killed crabcan's cgroup is already gone");
    assert!(
        lease.is_file() && !is_locked(&lease),
        "the killed crabcan's lease should be left, unlocked"
    );

    Crabcan::new("after-kill").run(&["/bin/true"]).expect_success();
    assert_nothing_left_of(&killed.hostname);
}
