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
        podman.write_containers_conf();
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
            .args(["--runtime", "crabcan"])
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            // conmon writes an `oom` file into its working folder when it sees an OOM kill.
            .current_dir(self.dir.path())
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// The containers.conf of the README: crabcan as a named runtime that takes JSON logs
    /// (`--log-format json --log F`, where podman reads a runtime's errors from).
    fn write_containers_conf(&self) {
        let conf = format!(
            "[engine]\nruntime_supports_json = [\"crun\", \"runc\", \"crabcan\"]\n[engine.runtimes]\ncrabcan = [{:?}]\n",
            crabcan_bin().display().to_string()
        );
        std::fs::write(self.path("containers.conf"), conf).unwrap();
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
        unmount_below(self.dir.path());
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
        let seen = typed_at(&podman, &[], &["sh", "-c", "tty; echo done"], &[]);
        assert!(
            seen.contains("/dev/pts/0") && seen.contains("done"),
            "podman run -it: {seen:?}"
        );
    }
    let left = podman.command(&["ps", "--all", "--quiet"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "podman keeps containers"
    );
}

impl Podman {
    /// `podman ARGS` with the options this machine needs after `run`, `create` and the like.
    fn podman(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().unwrap())
    }

    /// `podman run -d --name NAME ... IMAGE COMMAND`; the container's id.
    fn run_detached(&self, name: &str, command: &[&str]) -> String {
        let mut args = vec![
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
            IMAGE,
        ];
        args.extend(command);
        let run = self.podman(&args);
        run.expect_success();
        run.stdout.trim().to_owned()
    }

    /// One field of `podman inspect` of container `name`, e.g. `{{.State.Status}}`.
    fn inspect(&self, name: &str, format: &str) -> String {
        let run = self.podman(&["inspect", "--format", format, name]);
        run.expect_success();
        run.stdout.trim().to_owned()
    }

    /// The host pid of container `name`'s first process.
    fn pid(&self, name: &str) -> i32 {
        self.inspect(name, "{{.State.Pid}}").parse().unwrap_or(0)
    }

    /// No container is left in podman, nor crabcan's state (podman calls crabcan without
    /// `--root`: the default, /run/crabcan) of the containers `ids`.
    #[track_caller]
    fn assert_no_containers(&self, ids: &[String]) {
        let left = self.podman(&["ps", "--all", "--quiet"]);
        assert!(
            left.stdout.trim().is_empty(),
            "podman keeps containers: {}",
            left.stdout
        );
        for id in ids {
            let state = Path::new("/run/crabcan").join(id);
            assert!(
                !state.exists(),
                "crabcan's state of podman's container is left: {}",
                state.display()
            );
        }
    }
}

#[test]
fn podman_manages_detached_containers_run_by_crabcan() {
    let Some(podman) = Podman::new() else {
        return;
    };
    let before = HostSnapshot::take();
    let mut ids = vec![podman.run_detached("sleeper", &["sh", "-c", "echo started; exec sleep 1000"])];
    let pid = podman.pid("sleeper");
    assert!(pid > 0, "no pid for a running container");
    let ps = podman.podman(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.stdout.contains("sleeper Up"), "{}", ps.stdout);
    assert!(wait_until(10, || podman
        .podman(&["logs", "sleeper"])
        .stdout
        .contains("started")));
    let top = podman.podman(&["top", "sleeper"]);
    top.expect_success();
    assert!(top.stdout.contains("sleep 1000"), "{}", top.stdout);
    let stats = podman.podman(&["stats", "--no-stream", "--format", "{{.PIDs}}", "sleeper"]);
    stats.expect_success();
    assert_eq!(stats.stdout.trim(), "1", "{stats:?}");

    podman.podman(&["pause", "sleeper"]).expect_success();
    assert_eq!(podman.inspect("sleeper", "{{.State.Status}}"), "paused");
    podman.podman(&["unpause", "sleeper"]).expect_success();
    assert_eq!(podman.inspect("sleeper", "{{.State.Status}}"), "running");

    podman.podman(&["kill", "sleeper"]).expect_success();
    podman.podman(&["wait", "sleeper"]).expect_success();
    assert_eq!(podman.inspect("sleeper", "{{.State.ExitCode}}"), "137");
    podman.podman(&["rm", "sleeper"]).expect_success();

    // `stop`: SIGTERM first; a command that takes it exits at once, one that ignores it is
    // SIGKILLed after the timeout (pid 1 ignores signals it has no handler for).
    ids.push(podman.run_detached(
        "polite",
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.1; done",
        ],
    ));
    podman.podman(&["stop", "--time", "10", "polite"]).expect_success();
    assert_eq!(podman.inspect("polite", "{{.State.ExitCode}}"), "0");
    assert!(podman.podman(&["logs", "polite"]).stdout.contains("got TERM"));
    ids.push(podman.run_detached("stubborn", &["sleep", "1000"]));
    podman.podman(&["stop", "--time", "1", "stubborn"]).expect_success();
    assert_eq!(podman.inspect("stubborn", "{{.State.ExitCode}}"), "137");
    ids.push(podman.run_detached("removed", &["sleep", "1000"]));
    let removed_pid = podman.pid("removed");
    podman
        .podman(&["rm", "--force", "polite", "stubborn", "removed"])
        .expect_success();
    assert!(
        !Path::new(&format!("/proc/{removed_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{removed_pid}/stat"))
                .unwrap_or_default()
                .contains(") Z"),
        "rm --force left the container's process"
    );
    podman.assert_no_containers(&ids);
    before.assert_clean_after("sleeper");
}

#[test]
fn podman_run_options_reach_the_container() {
    let Some(podman) = Podman::new() else {
        return;
    };
    let in_container = |flags: &[&str], script: &str| {
        let run = Run::from_output(podman.run_command(flags, &["sh", "-c", script]).output().unwrap());
        run.expect_success();
        run
    };
    let limits = in_container(
        &["--memory", "64m", "--pids-limit", "10", "--cpus", "0.5"],
        "echo memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max); \
         echo pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max); \
         echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max)",
    );
    assert_eq!(limits.value("memory").as_deref(), Some("67108864"), "{}", limits.stdout);
    assert_eq!(limits.value("pids").as_deref(), Some("10"), "{}", limits.stdout);
    let quota = limits.value("quota").unwrap_or_default();
    assert!(quota == "50000" || quota.starts_with("50000 "), "{}", limits.stdout);
    // Past the memory limit the command is OOM-killed (podman reports 137; its OOMKilled flag
    // stays false on this host with runc too).
    let oom = Run::from_output(
        podman
            .run_command(
                &["--memory", "64m", "--memory-swap", "64m"],
                &["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"],
            )
            .output()
            .unwrap(),
    );
    oom.expect_code(137);

    let read_only = in_container(
        &["--read-only"],
        "touch /x 2>/dev/null && echo root=writable || echo root=ro; touch /tmp/y && echo tmp=writable; ls /etc > /dev/null",
    );
    assert_eq!(read_only.value("root").as_deref(), Some("ro"));
    assert_eq!(read_only.value("tmp").as_deref(), Some("writable"));
    // --tmpfs over an image folder starts with its files (podman asks for tmpcopyup).
    let tmpfs = in_container(
        &["--tmpfs", "/etc"],
        "grep -c ' /etc tmpfs' /proc/mounts; grep -c '^root:' /etc/passwd",
    );
    assert_eq!(tmpfs.stdout.lines().collect::<Vec<_>>(), ["1", "1"], "{}", tmpfs.stdout);

    let data = podman.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello"), "from the host").unwrap();
    let volume = format!("{}:/data", data.display());
    let rw = in_container(&["-v", &volume], "cat /data/hello; echo; echo made > /data/made");
    assert!(rw.stdout.contains("from the host"));
    assert_eq!(std::fs::read_to_string(data.join("made")).unwrap().trim(), "made");
    let volume_ro = format!("{}:/data:ro", data.display());
    let ro = in_container(
        &["-v", &volume_ro],
        "touch /data/other 2>/dev/null && echo data=rw || echo data=ro",
    );
    assert_eq!(ro.value("data").as_deref(), Some("ro"));

    let caps = in_container(
        &["--cap-drop", "all", "--cap-add", "NET_ADMIN"],
        "grep CapEff /proc/self/status",
    );
    assert!(
        caps.stdout.contains("0000000000001000"),
        "only CAP_NET_ADMIN (bit 12): {}",
        caps.stdout
    );

    let profile = podman.path("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let seccomp = format!("seccomp={}", profile.display());
    let denied = in_container(
        &["--security-opt", &seccomp],
        "mkdir /d 2>/dev/null && echo mkdir=ok || echo mkdir=denied",
    );
    assert_eq!(denied.value("mkdir").as_deref(), Some("denied"));

    let identity = in_container(
        &[
            "--user",
            "1000:1000",
            "-e",
            "GREETING=hello",
            "-w",
            "/tmp",
            "--hostname",
            "podhost",
        ],
        "echo uid=$(id -u) gid=$(id -g); echo greeting=$GREETING; echo cwd=$(pwd); echo host=$(hostname)",
    );
    assert_eq!(identity.value("uid").as_deref(), Some("1000 gid=1000"));
    assert_eq!(identity.value("greeting").as_deref(), Some("hello"));
    assert_eq!(identity.value("cwd").as_deref(), Some("/tmp"));
    assert_eq!(identity.value("host").as_deref(), Some("podhost"));

    // A user namespace the engine asks for.
    let mapped = in_container(
        &["--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536"],
        "cat /proc/self/uid_map",
    );
    let fields: Vec<&str> = mapped.stdout.split_whitespace().collect();
    assert_eq!(fields, ["0", "300000", "65536"], "{}", mapped.stdout);
    podman.assert_no_containers(&[]);
}

/// `podman exec` into a running container: podman (through conmon) calls `crabcan exec
/// --detach --process FILE --pid-file F` and reports the status conmon reaps.
#[test]
fn podman_exec_runs_in_a_running_container() {
    let Some(podman) = Podman::new() else {
        return;
    };
    // Mounts are compared below podman's own folders only: other tests (and podman's storage,
    // which mounts its overlay folder once) mount and unmount elsewhere meanwhile.
    let mounts_of_the_container = || -> Vec<String> {
        let storage = podman.path("root").join("overlay");
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| Path::new(point).starts_with(podman.dir.path()) && Path::new(point) != storage)
            .map(str::to_owned)
            .collect()
    };
    let before = mounts_of_the_container();
    let id = podman.run_detached("execed", &["sleep", "1000"]);
    let exec = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        podman.podman(&all)
    };
    let hi = exec(&["execed", "echo", "hi"]);
    hi.expect_success();
    assert_eq!(hi.stdout.trim(), "hi", "{hi:?}");
    exec(&["execed", "sh", "-c", "exit 3"]).expect_code(3);
    exec(&["execed", "/no/such/program"]).expect_code(127);
    exec(&["execed", "/etc/passwd"]).expect_code(126);
    let inside = exec(&[
        "--user",
        "1000",
        "--workdir",
        "/tmp",
        "--env",
        "GREETING=hello",
        "execed",
        "sh",
        "-c",
        "echo pid1=$(cat /proc/1/comm) uid=$(id -u) pwd=$(pwd) greeting=$GREETING",
    ]);
    inside.expect_success();
    assert_eq!(
        inside.value("pid1").as_deref(),
        Some("sleep uid=1000 pwd=/tmp greeting=hello"),
        "{inside:?}"
    );
    podman
        .podman(&["rm", "--force", "--time", "0", "execed"])
        .expect_success();
    podman.assert_no_containers(std::slice::from_ref(&id));
    let leaf = format!("libpod-{id}");
    let cgroups: Vec<PathBuf> = cgroup_mounts()
        .into_iter()
        .map(|mount| mount.join("libpod_parent").join(&leaf))
        .filter(|dir| dir.exists())
        .collect();
    assert!(cgroups.is_empty(), "the container's cgroups are left: {cgroups:?}");
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| std::fs::read_to_string(entry.path().join("cgroup")).is_ok_and(|cgroup| cgroup.contains(&leaf)))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        survivors.is_empty(),
        "processes of the container survive it: {survivors:?}"
    );
    assert_eq!(mounts_of_the_container(), before, "mounts of the container are left");
}

/// `podman run --annotation run.crabcan.seccomp.learn=FILE` learns a profile while podman's own
/// profile is enforced; `--security-opt seccomp=FILE` then runs the same command under it.
#[test]
fn podman_learns_a_seccomp_profile_through_the_annotation() {
    let Some(podman) = Podman::new() else { return };
    let profile = podman.path("learned.json");
    let annotation = format!("run.crabcan.seccomp.learn={}", profile.display());
    let script = [
        "/bin/sh",
        "-c",
        "echo learned by $(cat /etc/hostname | wc -c) bytes; ls / > /dev/null",
    ];
    let learning = Run::from_output(
        podman
            .run_command(&["--annotation", &annotation, "--hostname", "h"], &script)
            .output()
            .unwrap(),
    );
    learning.expect_success();
    assert!(
        wait_until(20, || profile.exists()),
        "no profile learned: {}",
        learning.stderr
    );
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(text.contains("\"execve\"") && !text.contains("\"mount\""), "{text}");
    let seccomp = format!("seccomp={}", profile.display());
    let enforced = Run::from_output(
        podman
            .run_command(&["--security-opt", &seccomp, "--hostname", "h"], &script)
            .output()
            .unwrap(),
    );
    enforced.expect_success();
    assert_eq!(enforced.stdout, learning.stdout, "{}", enforced.stderr);
}

/// `podman run -it FLAGS IMAGE COMMAND` under `script` (which gives podman a terminal), fed
/// `keys` one by one with a pause after each (what a person types), its stdin kept open until
/// podman is done; returns what the terminal showed.
fn typed_at(podman: &Podman, flags: &[&str], command: &[&str], keys: &[&[u8]]) -> String {
    use std::io::{Read, Write};
    let mut all_flags = vec!["-it"];
    all_flags.extend(flags);
    let podman_command = podman.run_command(&all_flags, command);
    let line: Vec<String> = std::iter::once(podman_command.get_program())
        .chain(podman_command.get_args())
        .map(|arg| format!("'{}'", arg.to_string_lossy()))
        .collect();
    let mut script = Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .envs(podman_command.get_envs().filter_map(|(key, value)| Some((key, value?))))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = script.stdin.take().unwrap();
    let mut stdout = script.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let _ = stdout.read_to_end(&mut seen);
        String::from_utf8_lossy(&seen).into_owned()
    });
    // Give the container its terminal before the first key.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for key in keys {
        stdin.write_all(key).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    let ended = wait_until(30, || script.try_wait().ok().flatten().is_some());
    if !ended {
        let _ = script.kill();
    }
    let _ = script.wait();
    drop(stdin);
    let seen = reader.join().unwrap();
    assert!(ended, "podman run -it never ended: {seen:?}");
    seen
}

#[test]
fn podman_run_it_is_a_real_terminal_where_ctrl_c_interrupts() {
    let Some(podman) = Podman::new() else {
        return;
    };
    if !tool_available_or_skip_in_vm("script", "it gives podman a terminal for -it") {
        return;
    }
    // Typed at the container's shell: its terminal and size, input reaching it, and a Ctrl-C
    // that ends the `sleep` typed at it, not the shell.
    let seen = typed_at(
        &podman,
        &[],
        &["sh"],
        &[
            // `script` without a terminal of its own gives the pty no size (0x0, as with
            // runc): the container's shell sets one, which a real terminal takes.
            b"tty; stty rows 33 cols 101; stty size; echo typed-$((20+22))\n",
            b"sleep 100\n",
            b"\x03",
            b"echo survived-$((1+1))\n",
            b"exit\n",
        ],
    );
    assert!(seen.contains("/dev/pts/0"), "{seen:?}");
    assert!(seen.contains("33 101"), "stty size: {seen:?}");
    assert!(
        seen.contains("typed-42"),
        "typed input never reached the shell: {seen:?}"
    );
    assert!(
        seen.contains("survived-2"),
        "Ctrl-C ended the shell, not its sleep: {seen:?}"
    );
    // With podman's init (catatonit) as pid 1, Ctrl-C stops a `sleep` that is the command.
    if Path::new("/usr/libexec/podman/catatonit").exists() {
        // typed_at fails if it has not ended within 30 s of the keys: the sleep is 100 s.
        let _ = typed_at(&podman, &["--init"], &["sleep", "100"], &[b"\x03"]);
    } else {
        panic!("podman's init /usr/libexec/podman/catatonit is missing: install catatonit (.ci/run does)");
    }
    podman.assert_no_containers(&[]);
}
