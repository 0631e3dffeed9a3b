//! One real engine drives crabcan as its OCI runtime: `podman --runtime <crabcan> run --rm`
//! with an image imported offline from the test rootfs, podman's storage and state in folders
//! this test owns, removed afterwards (the full podman and containerd matrix is issue 12's).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crabcan_tests::*;

/// podman with its storage under `dir`, crabcan as its runtime, cgroupfs, no network (its
/// bridge would change the host's iptables) and the ulimits this machine can grant.
struct Podman {
    dir: TempDir,
}

const IMAGE: &str = "localhost/crabcan-test:latest";

impl Podman {
    fn new() -> Option<Podman> {
        if !tool_available_or_skip_in_vm("podman", "the engine that drives crabcan (Debian: podman)") {
            return None;
        }
        let podman = Podman {
            dir: TempDir::new("podman"),
        };
        let archive = podman.dir.path().join("rootfs.tar");
        let tar = Command::new("tar")
            .arg("-C")
            .arg(rootfs())
            .arg("-cf")
            .arg(&archive)
            .arg(".")
            .status()
            .unwrap();
        assert!(tar.success(), "cannot archive the test rootfs");
        let imported = podman.command(&["import"]).arg(&archive).arg(IMAGE).output().unwrap();
        assert!(
            imported.status.success(),
            "podman import: {}",
            String::from_utf8_lossy(&imported.stderr)
        );
        Some(podman)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("runroot"))
            .arg("--tmpdir")
            .arg(self.path("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--runtime")
            .arg(crabcan_bin())
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// `podman run --rm FLAGS IMAGE COMMAND...` with the options this machine needs.
    fn run_command(&self, flags: &[&str], command: &[&str]) -> Command {
        let mut args = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ];
        args.extend(flags);
        args.push(IMAGE);
        args.extend(command);
        self.command(&args)
    }

    fn run(&self, command: &[&str]) -> Run {
        Run::from_output(self.run_command(&[], command).output().unwrap())
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.command(&["rm", "--all", "--force"]).output();
        let _ = self.command(&["system", "reset", "--force"]).output();
        // Whatever podman left mounted below its folders goes before the folders do.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let under: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| Path::new(point).starts_with(self.dir.path()))
            .collect();
        for point in under.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
    }
}

#[test]
fn podman_runs_its_containers_with_crabcan() {
    let Some(podman) = Podman::new() else {
        return;
    };
    let hi = podman.run(&["echo", "hi"]);
    hi.expect_success();
    assert_eq!(hi.stdout.trim(), "hi", "{hi:?}");
    podman.run(&["sh", "-c", "exit 3"]).expect_code(3);
    let missing = podman.run(&["/no/such/program"]);
    missing.expect_code(127);
    podman.run(&["/etc/passwd"]).expect_code(126);
    let inside = podman.run(&[
        "sh",
        "-c",
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; echo pid=$$",
    ]);
    inside.expect_success();
    assert!(
        inside.stdout.contains("Seccomp:\t2"),
        "podman's seccomp profile is applied: {}",
        inside.stdout
    );
    assert_eq!(inside.value("pid").as_deref(), Some("1"));
    // `-it`: podman gives crabcan a console socket, which gets the container's pty master.
    if tool_available_or_skip_in_vm("script", "it gives podman a terminal for -it") {
        let command = podman.run_command(&["-it"], &["sh", "-c", "tty; echo done"]);
        let line: Vec<String> = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|arg| format!("'{}'", arg.to_string_lossy()))
            .collect();
        let output = Command::new("script")
            .args(["-qec", &line.join(" "), "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("/dev/pts/0") && stdout.contains("done"),
            "podman run -it: {stdout:?} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let left = podman.command(&["ps", "--all", "--quiet"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "podman keeps containers"
    );
}
