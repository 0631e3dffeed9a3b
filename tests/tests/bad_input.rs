//! Bad input gets one clear line naming the problem, the documented exit status (125 for
//! crabcan's own failures, 127/126 for the command), and leaves nothing on the host.

use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crabcan_tests::*;

/// Runs crabcan with exactly `args` (plus a unique hostname) and checks the host afterwards.
fn crabcan(args: &[&str]) -> Run {
    let hostname = unique_hostname("bad");
    crabcan_as(args, &hostname, None)
}

fn crabcan_as(args: &[&str], hostname: &str, uid: Option<u32>) -> Run {
    require_root();
    let before = HostSnapshot::take();
    let mut command = Command::new(crabcan_bin());
    command.args(["--no-tty", "--hostname", hostname]);
    let own_map = args
        .iter()
        .any(|arg| arg.starts_with("--uid-map") || arg.starts_with("--gid-map"));
    if let (Some(map), false) = (test_id_map(), own_map) {
        command.args(["--uid-map", &map, "--gid-map", &map]);
    }
    command.args(args).stdin(Stdio::null());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let output = command.output().expect("cannot start crabcan");
    before.assert_clean_after(hostname);
    Run::from_output(output)
}

/// One line, starting `crabcan: error:`, mentioning every `needles`, no Debug dump, no panic.
#[track_caller]
fn assert_one_clear_line(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, Some(code), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {}", run.stderr);
    assert!(lines[0].starts_with("crabcan: error: "), "{}", lines[0]);
    for needle in needles {
        assert!(lines[0].contains(needle), "{:?} does not mention {needle:?}", lines[0]);
    }
    for forbidden in ["panicked", "Error {", "(\"", "Some(", "Errno("] {
        assert!(
            !lines[0].contains(forbidden),
            "{:?} looks like a Debug dump or a panic",
            lines[0]
        );
    }
}

#[test]
fn missing_rootfs() {
    let run = crabcan(&["--mount", "/nonexistent/rootfs", "--", "/bin/true"]);
    assert_one_clear_line(
        &run,
        125,
        &["/nonexistent/rootfs", "does not exist", "cargo xtask rootfs"],
    );
}

#[test]
fn rootfs_is_a_file() {
    let run = crabcan(&["--mount", "/etc/hostname", "--", "/bin/true"]);
    assert_one_clear_line(&run, 125, &["/etc/hostname", "not a directory"]);
}

#[test]
fn rootfs_is_the_host_root() {
    let run = crabcan(&["--mount", "/", "--", "/bin/true"]);
    assert_one_clear_line(&run, 125, &["'/'"]);
}

#[test]
fn empty_command() {
    let rootfs = rootfs();
    let run = crabcan(&["--mount", rootfs.to_str().unwrap(), "--command", ""]);
    assert_one_clear_line(&run, 125, &["empty"]);
    let run = crabcan(&["--mount", rootfs.to_str().unwrap(), "--command", "   "]);
    assert_one_clear_line(&run, 125, &["empty"]);
}

#[test]
fn unbalanced_quotes_in_command() {
    let rootfs = rootfs();
    let run = crabcan(&["--mount", rootfs.to_str().unwrap(), "--command", "echo 'oops"]);
    assert_one_clear_line(&run, 125, &["quote"]);
}

#[test]
fn command_not_in_rootfs() {
    let rootfs = rootfs();
    let run = crabcan(&["--mount", rootfs.to_str().unwrap(), "--", "/usr/bin/no-such-tool"]);
    assert_one_clear_line(&run, 127, &["/usr/bin/no-such-tool", "not found"]);
}

#[test]
fn bad_add_specs() {
    let rootfs = rootfs();
    let rootfs = rootfs.to_str().unwrap();
    for (spec, needle) in [
        ("/tmp", "HOST:CONTAINER"),
        ("relative:/data", "absolute"),
        ("/tmp:relative", "absolute"),
        ("/tmp:/data:rx", "'ro' or 'rw'"),
        ("/tmp/../etc:/data", ".."),
    ] {
        let run = crabcan(&["--mount", rootfs, "--add", spec, "--", "/bin/true"]);
        assert_one_clear_line(&run, 125, &[spec, needle]);
    }
    let run = crabcan(&["--mount", rootfs, "--add", "/nonexistent/src:/data", "--", "/bin/true"]);
    assert_one_clear_line(&run, 125, &["/nonexistent/src", "does not exist"]);
}

#[test]
fn relative_workdir() {
    let rootfs = rootfs();
    let run = crabcan(&[
        "--mount",
        rootfs.to_str().unwrap(),
        "--workdir",
        "tmp",
        "--",
        "/bin/true",
    ]);
    assert_one_clear_line(&run, 125, &["tmp", "absolute"]);
}

#[test]
fn symlink_in_rootfs_pointing_out() {
    // A hostile rootfs: its /tmp is a link to the host's /etc.
    let dir = TempDir::new("hostile");
    let hostile = dir.path().join("rootfs");
    std::fs::create_dir_all(hostile.join("bin")).unwrap();
    std::fs::copy(rootfs().join("bin/busybox"), hostile.join("bin/busybox")).unwrap();
    symlink("/etc", hostile.join("tmp")).unwrap();
    let etc_before = std::fs::read_dir("/etc").unwrap().count();
    let run = crabcan(&["--mount", hostile.to_str().unwrap(), "--", "/bin/busybox", "true"]);
    assert_one_clear_line(&run, 125, &["tmp", "symlink", "/etc"]);
    assert_eq!(std::fs::read_dir("/etc").unwrap().count(), etc_before);
}

#[test]
fn add_target_through_a_symlink_stays_in_the_rootfs() {
    // rootfs/data -> /etc: a bind on /data/x must land in the rootfs's etc, never the host's.
    let dir = TempDir::new("linktarget");
    let rootfs_copy = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs_copy.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs_copy.join("etc")).unwrap();
    std::fs::copy(rootfs().join("bin/busybox"), rootfs_copy.join("bin/busybox")).unwrap();
    symlink("/etc", rootfs_copy.join("data")).unwrap();
    for path in [rootfs_copy.clone(), rootfs_copy.join("etc"), rootfs_copy.join("bin")] {
        own_for_container(&path);
    }
    let source = TempDir::new("linksource");
    let hostname = unique_hostname("link");
    let run = crabcan_as(
        &[
            "--mount",
            rootfs_copy.to_str().unwrap(),
            "--add",
            &format!("{}:/data/crabcan-bind", source.path().display()),
            "--",
            "/bin/busybox",
            "true",
        ],
        &hostname,
        None,
    );
    run.expect_success();
    assert!(
        !std::path::Path::new("/etc/crabcan-bind").exists(),
        "crabcan created a mount point in the host's /etc"
    );
    assert!(rootfs_copy.join("etc/crabcan-bind").is_dir());
}

#[test]
fn hostname_too_long() {
    let rootfs = rootfs();
    let long = "h".repeat(65);
    let run = crabcan_as(&["--mount", rootfs.to_str().unwrap(), "--", "/bin/true"], &long, None);
    assert_one_clear_line(&run, 125, &["hostname", "64"]);
}

#[test]
fn bad_sizes_and_numbers() {
    let rootfs = rootfs();
    let rootfs = rootfs.to_str().unwrap();
    assert_one_clear_line(
        &crabcan(&["--mount", rootfs, "--memory", "12X", "--", "/bin/true"]),
        125,
        &["--memory", "12X"],
    );
    assert_one_clear_line(
        &crabcan(&["--mount", rootfs, "--pids=-3", "--", "/bin/true"]),
        125,
        &["--pids"],
    );
    assert_one_clear_line(
        &crabcan(&["--mount", rootfs, "--uid", "70000", "--", "/bin/true"]),
        125,
        &["70000", "uid map"],
    );
    assert_one_clear_line(
        &crabcan(&["--mount", rootfs, "--uid-map", "0:1", "--", "/bin/true"]),
        125,
        &["0:1"],
    );
    assert_one_clear_line(
        &crabcan(&["--mount", rootfs, "--cap-add", "NOT_A_CAP", "--", "/bin/true"]),
        125,
        &["NOT_A_CAP"],
    );
    assert_one_clear_line(
        &crabcan(&["--mount", rootfs, "--seccomp", "nope", "--", "/bin/true"]),
        125,
        &["nope"],
    );
    assert_one_clear_line(
        &crabcan(&["--mount", rootfs, "--nofile", "0", "--", "/bin/true"]),
        125,
        &["open-files"],
    );
    assert_one_clear_line(
        &crabcan(&["--mount", rootfs, "--env", "=x", "--", "/bin/true"]),
        125,
        &["=x"],
    );
    assert_one_clear_line(&crabcan(&["--mount", rootfs, "--bogus-flag"]), 125, &["--bogus-flag"]);
}

#[test]
fn bad_start_fifo() {
    let rootfs = rootfs();
    let rootfs = rootfs.to_str().unwrap();
    assert_one_clear_line(
        &crabcan(&[
            "--mount",
            rootfs,
            "--start-fifo",
            "/nonexistent/fifo",
            "--",
            "/bin/true",
        ]),
        125,
        &["/nonexistent/fifo", "mkfifo"],
    );
    assert_one_clear_line(
        &crabcan(&["--mount", rootfs, "--start-fifo", "/etc/hostname", "--", "/bin/true"]),
        125,
        &["/etc/hostname", "not a FIFO"],
    );
}

/// An ordinary user runs rootless containers (tests/rootless.rs), with its own ids only.
#[test]
fn an_ordinary_user_cannot_map_ids_that_are_not_its_own() {
    let rootfs = rootfs();
    let hostname = unique_hostname("nonroot");
    let run = crabcan_as(
        &[
            "--mount",
            rootfs.to_str().unwrap(),
            "--uid-map",
            "0:100000:65536",
            "--",
            "/bin/true",
        ],
        &hostname,
        Some(65534),
    );
    assert_one_clear_line(&run, 125, &["0:100000:65536", "not yours", "/etc/subuid"]);
}

#[test]
fn a_missing_required_flag_is_named() {
    let run = crabcan(&["--", "/bin/true"]);
    assert_one_clear_line(&run, 125, &["--mount", "not provided", "crabcan --help"]);
}

#[test]
fn negative_and_oversized_limits_are_refused_naming_the_flag() {
    let rootfs = rootfs();
    let rootfs = rootfs.to_str().unwrap();
    for (args, needles) in [
        (vec!["--memory", "-1"], vec!["--memory", "-1"]),
        (vec!["--memory", "0"], vec!["--memory", "6 MiB"]),
        (vec!["--memory", "4k"], vec!["--memory", "6 MiB"]),
        (vec!["--memory", "100K"], vec!["--memory", "6 MiB"]),
        (vec!["--pids", "18446744073709551615"], vec!["--pids", "4194304"]),
        (vec!["--cpus", "1000"], vec!["--cpus", "CPUs available"]),
        (vec!["--nofile", "-5"], vec!["--nofile"]),
        (vec!["--no-cgroup", "--memory", "64M"], vec!["--memory", "--no-cgroup"]),
        (vec!["--no-cgroup", "--pids", "10"], vec!["--pids", "--no-cgroup"]),
    ] {
        let mut full = vec!["--mount", rootfs];
        full.extend(&args);
        full.extend(["--", "/bin/true"]);
        assert_one_clear_line(&crabcan(&full), 125, &needles);
    }
}

#[test]
fn binds_onto_the_kernel_filesystems_are_refused() {
    let rootfs = rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let source = TempDir::new("kernel-bind");
    let source = source.path().display().to_string();
    for target in ["/proc", "/proc/1", "/sys", "//sys/./kernel", "/dev", "/dev/shm/x"] {
        let spec = format!("{source}:{target}");
        let run = crabcan(&["--mount", rootfs, "--add", &spec, "--", "/bin/true"]);
        assert_one_clear_line(&run, 125, &[target, "kernel filesystem"]);
    }
    let run = crabcan(&["--mount", rootfs, "--add", "/proc:/proc", "--", "/bin/true"]);
    assert_one_clear_line(&run, 125, &["/proc"]);
}

#[test]
fn an_unwritable_stderr_does_not_crash_crabcan() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let status = Command::new(crabcan_bin())
        .args(["--mount", "/nonexistent/rootfs", "--", "/bin/true"])
        .stdin(Stdio::null())
        .stderr(full)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(125), "{status:?}: crabcan must not abort (134)");
}

#[test]
fn control_characters_in_a_command_are_shown_escaped() {
    let rootfs = rootfs();
    let run = crabcan(&["--mount", rootfs.to_str().unwrap(), "--", "/bin/true\u{1}"]);
    assert_one_clear_line(&run, 127, &[r"$'/bin/true\x01'", "not found"]);
    assert!(!run.stderr.contains('\u{1}'));
}

#[test]
fn a_script_whose_interpreter_is_missing_says_so() {
    let dir = TempDir::new("interp");
    let copy = dir.path().join("rootfs");
    let status = Command::new("cp").arg("-a").arg(rootfs()).arg(&copy).status().unwrap();
    assert!(status.success());
    let script = copy.join("bin/needs-python");
    std::fs::write(&script, "#!/usr/bin/python3\nprint('hi')\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = crabcan(&["--mount", copy.to_str().unwrap(), "--", "/bin/needs-python"]);
    assert_one_clear_line(
        &run,
        127,
        &["/bin/needs-python", "interpreter /usr/bin/python3", "missing"],
    );
}

/// A rootfs the container's root cannot enter: the child's own error (EACCES on the first mount
/// point, with the fix) must win over the broken handshake it leaves behind, every time.
#[test]
fn the_containers_own_setup_error_wins_the_race_every_time() {
    let dir = TempDir::new("locked");
    let locked = dir.path().join("rootfs");
    let status = Command::new("cp")
        .arg("-a")
        .arg(rootfs())
        .arg(&locked)
        .status()
        .unwrap();
    assert!(status.success());
    // Owned by a host uid outside every container's map, closed to everyone else.
    let status = Command::new("chown")
        .args(["-R", "-h", "12345:12345"])
        .arg(&locked)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    for _ in 0..20 {
        let run = crabcan(&["--mount", locked.to_str().unwrap(), "--", "/bin/true"]);
        assert_one_clear_line(&run, 125, &["EACCES", "cannot enter the rootfs", "chown"]);
    }
}
