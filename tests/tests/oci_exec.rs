//! `crabcan exec`: a new process in a created or running container, runc's way. It prints and
//! exits as its command does, runs in the container's namespaces and cgroup with its
//! capabilities, seccomp filter and ids (or those of the flags, or of `--process`), gets a pty
//! through a console socket, inherits no descriptor of crabcan's, and enters from a sealed copy
//! of crabcan (CVE-2019-5736), never from the host's binary. Exec into a stopped, paused or
//! unknown container fails with runc's words. The host is checked afterwards.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;

use crabcan_tests::oci::*;
use crabcan_tests::*;
use serde_json::Value;

/// A container running `sleep 600` from the test bundle (edited by `edit`), detached: its id
/// and host pid.
fn running(oci: &Oci, tag: &str, edit: impl FnOnce(&mut Value)) -> (String, i64) {
    oci.write_bundle(&["/bin/sleep", "600"], edit);
    let id = unique_id(tag);
    oci.crabcan(&["run", "--detach", "--bundle", oci.bundle().to_str().unwrap(), &id])
        .expect_success();
    let pid = oci.state(&id)["pid"].as_i64().unwrap();
    (id, pid)
}

/// Deletes the container and checks the host.
#[track_caller]
fn remove(oci: &Oci, id: &str, before: &HostSnapshot) {
    oci.crabcan(&["delete", "--force", id]).expect_success();
    oci.assert_gone(id);
    before.assert_clean_after(id);
}

fn exec(oci: &Oci, args: &[&str]) -> Run {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    oci.crabcan(&all)
}

fn namespaces_of(pid: i64) -> Vec<String> {
    ["user", "mnt", "pid", "uts", "ipc", "net", "cgroup"]
        .iter()
        .map(|kind| {
            let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
            format!("{kind}={}", link.display())
        })
        .collect()
}

#[test]
fn exec_prints_and_exits_with_the_commands_status() {
    let oci = Oci::new("exec-status");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-status", |_| {});
    let hello = exec(&oci, &[&id, "sh", "-c", "echo hello from $(hostname); exit 3"]);
    hello.expect_code(3);
    assert_eq!(hello.stdout.trim(), "hello from crabcan", "{hello:?}");
    exec(&oci, &[&id, "sh", "-c", "kill -KILL $$"]).expect_code(137);
    exec(&oci, &[&id, "sh", "-c", "kill -TERM $$"]).expect_code(143);
    exec(&oci, &[&id, "true"]).expect_success();
    remove(&oci, &id, &before);
}

#[test]
fn exec_works_in_a_created_container_before_start() {
    let oci = Oci::new("exec-created");
    oci.write_bundle(&["/bin/sleep", "600"], |_| {});
    let id = unique_id("exec-created");
    let before = HostSnapshot::take();
    oci.crabcan(&["create", "--bundle", oci.bundle().to_str().unwrap(), &id])
        .expect_success();
    let run = exec(&oci, &[&id, "sh", "-c", "echo pid1=$(cat /proc/1/comm)"]);
    run.expect_success();
    assert_eq!(oci.state(&id)["status"], "created", "exec started the container");
    assert!(run.value("pid1").is_some(), "{run:?}");
    remove(&oci, &id, &before);
}

#[test]
fn exec_runs_in_the_containers_namespaces_and_cgroup() {
    let oci = Oci::new("exec-ns");
    let before = HostSnapshot::take();
    let (id, init) = running(&oci, "exec-ns", |spec| {
        spec["hostname"] = Value::from("joined");
    });
    let pid_file = oci.scratch.path().join("exec.pid");
    let run = exec(
        &oci,
        &[
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
            "sleep",
            "600",
        ],
    );
    run.expect_success();
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(wait_until(10, || std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim() == "sleep")));
    assert_eq!(namespaces_of(pid), namespaces_of(init));
    let cgroup = |pid: i64| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // The v1 hierarchies (and cgroup2 where the container has a cgroup there) are the init's.
    let controllers = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| !line.starts_with("0::") || cgroup(init).contains("0::/crabcan"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(controllers(&cgroup(pid)), controllers(&cgroup(init)));
    assert!(cgroup(pid).contains(&id), "{}", cgroup(pid));
    let ps = oci.crabcan(&["ps", "--format", "json", &id]);
    assert!(
        ps.stdout.contains(&pid.to_string()),
        "ps does not list the exec'd process: {}",
        ps.stdout
    );
    let hostname = exec(&oci, &[&id, "hostname"]);
    assert_eq!(hostname.stdout.trim(), "joined");
    // The detached process is crabcan's no longer: deleting the container ends it.
    remove(&oci, &id, &before);
    assert!(wait_until(10, || !Path::new(&format!("/proc/{pid}")).exists()));
}

#[test]
fn exec_gets_the_containers_capabilities_seccomp_and_limits() {
    let oci = Oci::new("exec-caps");
    let before = HostSnapshot::take();
    let (id, init) = running(&oci, "exec-caps", |spec| {
        spec["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        spec["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 777, "soft": 777}]);
    });
    let status = |text: &str, key: &str| cap_mask(text, key);
    let init_status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let run = exec(
        &oci,
        &[
            &id,
            "sh",
            "-c",
            "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; echo nofile=$(ulimit -n); \
             mkdir /tmp/denied 2>&1 || echo mkdir=refused",
        ],
    );
    run.expect_success();
    for key in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(
            status(&run.stdout, key),
            status(&init_status, key),
            "{key}: {}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("NoNewPrivs:\t1"), "{}", run.stdout);
    assert!(run.stdout.contains("Seccomp:\t2"), "{}", run.stdout);
    assert_eq!(run.value("nofile").as_deref(), Some("777"));
    assert_eq!(run.value("mkdir").as_deref(), Some("refused"), "{}", run.stdout);
    assert!(run.stdout.contains("Operation not permitted"), "{}", run.stdout);
    // --cap adds to the bounding, effective and permitted sets.
    let added = exec(&oci, &["--cap", "CAP_NET_ADMIN", &id, "cat", "/proc/self/status"]);
    added.expect_success();
    let net_admin = 1u64 << 12;
    for key in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(
            status(&added.stdout, key),
            status(&init_status, key) | net_admin,
            "{key}"
        );
    }
    remove(&oci, &id, &before);
}

#[test]
fn exec_as_another_user_in_another_folder_with_more_environment() {
    let oci = Oci::new("exec-user");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-user", |_| {});
    let run = exec(
        &oci,
        &[
            "--user",
            "1000:1000",
            "--additional-gids",
            "5",
            "--cwd",
            "/tmp",
            "--env",
            "FOO=bar",
            "--env",
            "PATH=/bin",
            &id,
            "sh",
            "-c",
            "echo uid=$(id -u) gid=$(id -g); echo groups=$(id -G); echo pwd=$(pwd); echo foo=$FOO path=$PATH",
        ],
    );
    run.expect_success();
    assert!(run.stdout.contains("uid=1000 gid=1000"), "{}", run.stdout);
    assert_eq!(run.value("groups").as_deref(), Some("1000 5"));
    assert_eq!(run.value("pwd").as_deref(), Some("/tmp"));
    assert_eq!(run.value("foo").as_deref(), Some("bar path=/bin"));
    let only_uid = exec(&oci, &["--user", "1000", &id, "id"]);
    assert!(
        only_uid.stdout.contains("uid=1000") && only_uid.stdout.contains("gid=0"),
        "{}",
        only_uid.stdout
    );
    remove(&oci, &id, &before);
}

#[test]
fn exec_runs_the_process_of_a_process_file() {
    let oci = Oci::new("exec-process");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-process", |_| {});
    let process = oci.scratch.path().join("process.json");
    let write = |value: Value| std::fs::write(&process, value.to_string()).unwrap();
    write(serde_json::json!({
        "args": ["sh", "-c", "echo uid=$(id -u) cwd=$(pwd) env=$FROM_FILE; grep CapEff /proc/self/status"],
        "env": ["PATH=/bin:/usr/bin", "FROM_FILE=yes"],
        "cwd": "/etc",
        "user": {"uid": 7, "gid": 7},
        "capabilities": {
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        },
        "noNewPrivileges": true
    }));
    let run = exec(&oci, &["--process", process.to_str().unwrap(), &id]);
    run.expect_success();
    assert_eq!(run.value("uid").as_deref(), Some("7 cwd=/etc env=yes"), "{run:?}");
    // A uid other than 0 keeps through execve only its ambient capabilities.
    assert_eq!(cap_mask(&run.stdout, "CapEff"), 1 << 5, "CAP_KILL only: {}", run.stdout);
    // A field crabcan does not implement is named, never skipped.
    write(serde_json::json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "selinuxLabel": "x"}));
    let refused = exec(&oci, &["--process", process.to_str().unwrap(), &id]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("process.selinuxLabel"), "{}", refused.stderr);
    write(serde_json::json!({"args": "not a list", "cwd": "/"}));
    let invalid = exec(&oci, &["--process", process.to_str().unwrap(), &id]);
    assert_eq!(invalid.code, Some(1));
    assert!(invalid.stderr.contains(process.to_str().unwrap()), "{}", invalid.stderr);
    remove(&oci, &id, &before);
}

/// `--tty --detach --console-socket`: the master of a pty made in the container goes to the
/// socket (here the test's own), and what is written to it reaches the process.
#[test]
fn a_tty_is_handed_to_the_console_socket() {
    let oci = Oci::new("exec-tty");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-tty", |_| {});
    let socket = oci.scratch.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let exec = oci.spawn(oci.command(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        socket.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; read line; echo got=$line",
    ]));
    let (stream, _) = listener.accept().unwrap();
    let (name, master) = receive_fd(&stream);
    exec.wait().expect_success();
    assert!(name.starts_with("/dev/pts/"), "{name}");
    let mut master = std::fs::File::from(master);
    master.write_all(b"typed\n").unwrap();
    let output = read_until_hangup(&mut master);
    assert!(
        output.contains("/dev/pts/") && output.contains("got=typed"),
        "{output:?}"
    );
    remove(&oci, &id, &before);
}

#[test]
fn a_foreground_tty_without_a_terminal_is_relayed() {
    let oci = Oci::new("exec-relay");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-relay", |_| {});
    let run = exec(&oci, &["--tty", &id, "sh", "-c", "tty; exit 4"]);
    run.expect_code(4);
    assert!(run.stdout.starts_with("/dev/pts/"), "{run:?}");
    let refused = exec(&oci, &["--tty", "--detach", &id, "true"]);
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("--console-socket"), "{}", refused.stderr);
    remove(&oci, &id, &before);
}

#[test]
fn exec_into_a_stopped_paused_or_unknown_container_fails_with_runcs_words() {
    let oci = Oci::new("exec-stopped");
    let before = HostSnapshot::take();
    oci.write_bundle(&["/bin/true"], |_| {});
    let id = unique_id("exec-stopped");
    oci.crabcan(&["run", "--detach", "--bundle", oci.bundle().to_str().unwrap(), &id])
        .expect_success();
    assert!(wait_until(10, || oci.state(&id)["status"] == "stopped"));
    let stopped = exec(&oci, &[&id, "true"]);
    assert_eq!(stopped.code, Some(1), "{stopped:?}");
    assert_eq!(stopped.stderr.lines().count(), 1, "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("error") && stopped.stderr.contains("cannot exec in a stopped container"),
        "{}",
        stopped.stderr
    );
    remove(&oci, &id, &before);
    let unknown = exec(&oci, &["no-such-container", "true"]);
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown
            .stderr
            .contains("container \"no-such-container\" does not exist"),
        "{}",
        unknown.stderr
    );
    let (id, _) = running(&oci, "exec-paused", |_| {});
    oci.crabcan(&["pause", &id]).expect_success();
    let paused = exec(&oci, &[&id, "true"]);
    assert_eq!(paused.code, Some(1));
    assert!(
        paused.stderr.contains("cannot exec in a paused container"),
        "{}",
        paused.stderr
    );
    oci.crabcan(&["resume", &id]).expect_success();
    remove(&oci, &id, &before);
}

#[test]
fn a_missing_or_unexecutable_program_is_named_as_podman_expects() {
    let oci = Oci::new("exec-missing");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-missing", |_| {});
    let missing = exec(&oci, &[&id, "/no/such/program"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("no such file or directory"),
        "{}",
        missing.stderr
    );
    let denied = exec(&oci, &[&id, "/etc/passwd"]);
    assert_eq!(denied.code, Some(1));
    assert!(denied.stderr.contains("permission denied"), "{}", denied.stderr);
    remove(&oci, &id, &before);
}

/// `command` with `file` open as descriptors 3, 4 and 9 (not close-on-exec), as a caller's
/// descriptors reach crabcan.
fn with_descriptors(mut command: std::process::Command, file: &std::fs::File) -> std::process::Command {
    let source = file.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2) are made.
    unsafe {
        command.pre_exec(move || {
            let high = libc::fcntl(source, libc::F_DUPFD_CLOEXEC, 50);
            for target in [3, 4, 9] {
                if high < 0 || libc::dup2(high, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command
}

#[test]
fn no_descriptor_reaches_the_process_but_the_preserved_ones() {
    let oci = Oci::new("exec-fds");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-fds", |_| {});
    let file = std::fs::File::open("/etc/hostname").unwrap();
    // `ls` runs as the shell's last command, so it is $$ and holds one descriptor of its own,
    // on the folder it lists: the next free number.
    let listing = |preserve: &str| {
        let command = oci.command(&["exec", "--preserve-fds", preserve, &id, "sh", "-c", "ls /proc/$$/fd"]);
        let run = oci.spawn(with_descriptors(command, &file)).wait();
        run.expect_success();
        descriptors_beyond_stdio(&run.stdout)
    };
    assert_eq!(listing("0"), [3], "crabcan's or its caller's descriptors leak");
    assert_eq!(listing("2"), [3, 4, 5], "3 and 4 are passed on, 9 is not");
    assert_eq!(
        listing("3"),
        [3, 4, 5],
        "5 was closed for crabcan: closed for the process too"
    );
    remove(&oci, &id, &before);
}

/// CVE-2019-5736: while crabcan exec runs, `/proc/<pid>/exe` of it (and of the processes it
/// forks into the container, which share its image) is a sealed memfd copy, not the host's
/// binary.
#[test]
fn exec_runs_from_a_sealed_copy_of_crabcan() {
    let oci = Oci::new("exec-memfd");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-memfd", |_| {});
    let mut background = oci.spawn(oci.command(&["exec", &id, "sleep", "600"]));
    let crabcan = background.child.id();
    // The command is crabcan's child (crabcan is its subreaper) once it runs.
    let command = || {
        std::fs::read_to_string(format!("/proc/{crabcan}/task/{crabcan}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .find_map(|pid| {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
                (comm.trim() == "sleep").then(|| pid.to_owned())
            })
    };
    assert!(wait_until(10, || command().is_some()), "the command never ran");
    let exe = std::fs::read_link(format!("/proc/{crabcan}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:crabcan-sealed"),
        "crabcan exec runs from {}",
        exe.display()
    );
    assert_ne!(exe, crabcan_bin().canonicalize().unwrap());
    let opened = std::fs::File::open(format!("/proc/{crabcan}/exe")).unwrap();
    // SAFETY: F_GET_SEALS reads the seals of a descriptor we own.
    let seals = unsafe { libc::fcntl(opened.as_raw_fd(), libc::F_GET_SEALS) };
    let all = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    assert_eq!(seals & all, all, "the copy is not sealed: {seals:#x}");
    let writable = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{crabcan}/exe"));
    assert!(writable.is_err(), "crabcan's image can be opened for writing");
    let sleep: i32 = command().unwrap().parse().unwrap();
    // SAFETY: kill with a pid and a signal.
    unsafe { libc::kill(sleep, libc::SIGKILL) };
    let _ = background.child.wait();
    remove(&oci, &id, &before);
}

#[test]
fn signals_reach_a_foreground_exec() {
    let oci = Oci::new("exec-signal");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-signal", |_| {});
    let background = oci.spawn(oci.command(&[
        "exec",
        &id,
        "sh",
        "-c",
        "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 1; done",
    ]));
    let crabcan = background.child.id() as i32;
    let out = oci.scratch.path().read_dir().unwrap().count();
    let _ = out;
    assert!(wait_until(10, || std::fs::read_to_string(format!(
        "/proc/{crabcan}/task/{crabcan}/children"
    ))
    .is_ok_and(|children| !children.trim().is_empty())));
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: kill with a pid and a signal.
    unsafe { libc::kill(crabcan, libc::SIGTERM) };
    let run = background.wait();
    run.expect_code(7);
    assert!(run.stdout.contains("got-term"), "{run:?}");
    remove(&oci, &id, &before);
}

#[allow(dead_code)]
fn unused(_: std::os::fd::OwnedFd) -> std::fs::File {
    // SAFETY: not called.
    unsafe { std::fs::File::from_raw_fd(-1) }
}

#[test]
fn a_detached_exec_hands_a_pidfd_of_its_process_to_the_pidfd_socket() {
    use std::os::fd::AsRawFd;
    let oci = Oci::new("exec-pidfd");
    let before = HostSnapshot::take();
    let (id, _) = running(&oci, "exec-pidfd", |_| {});
    let socket = oci.scratch.path().join("pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let pid_file = oci.scratch.path().join("exec.pid");
    let execer = oci.spawn(oci.command(&[
        "exec",
        "--detach",
        "--pidfd-socket",
        socket.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "600",
    ]));
    let (stream, _) = listener.accept().unwrap();
    let (payload, pidfd) = receive_fd(&stream);
    execer.wait().expect_success();
    assert_eq!(payload, "standard");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).unwrap();
    assert!(fdinfo.contains(&format!("Pid:\t{}\n", pid.trim())), "{fdinfo}");
    remove(&oci, &id, &before);
}
