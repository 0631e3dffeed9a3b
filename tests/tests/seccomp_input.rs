//! `--seccomp-profile` with input that used to hang, eat memory or kill the command without a
//! word: each is refused before the container starts, with one clear line and exit status 125.

use std::process::{Command, Stdio};

use crabcan_tests::*;

/// Runs crabcan with `args` (plus a unique hostname), failing if it takes over 30 s (a FIFO
/// used to block it forever), and checks the host afterwards.
fn crabcan(args: &[&str]) -> Run {
    require_root();
    let hostname = unique_hostname("scin");
    let before = HostSnapshot::take();
    let mut child = Command::new(crabcan_bin())
        .args(["--no-tty", "--hostname", &hostname])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start crabcan");
    let finished = wait_until(30, || matches!(child.try_wait(), Ok(Some(_))));
    if !finished {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("crabcan's output");
    assert!(finished, "crabcan did not finish within 30 s: {args:?}");
    before.assert_clean_after(&hostname);
    Run::from_output(output)
}

/// One line, starting `crabcan: error:`, with exit status 125 and every `needles`.
#[track_caller]
fn assert_refused(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, Some(125), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {}", run.stderr);
    assert!(lines[0].starts_with("crabcan: error: "), "{}", lines[0]);
    for needle in needles {
        assert!(lines[0].contains(needle), "{:?} does not mention {needle:?}", lines[0]);
    }
    for forbidden in ["panicked", "OciProfile", "struct", "Error {"] {
        assert!(!lines[0].contains(forbidden), "{:?} leaks {forbidden:?}", lines[0]);
    }
}

fn with_profile(profile: &str) -> Run {
    let rootfs = rootfs();
    crabcan(&[
        "--mount",
        rootfs.to_str().unwrap(),
        "--seccomp-profile",
        profile,
        "--",
        "/bin/true",
    ])
}

#[test]
fn endless_and_blocking_paths_are_refused_at_once() {
    assert_refused(
        &with_profile("/dev/zero"),
        &[
            "the seccomp profile /dev/zero is not a regular file",
            "give a JSON file",
        ],
    );
    let dir = TempDir::new("seccomp-fifo");
    let fifo = dir.path().join("profile.json");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
    assert_refused(
        &with_profile(fifo.to_str().unwrap()),
        &["is not a regular file but a FIFO"],
    );
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .and_then(|file| file.set_len(3 << 30))
        .unwrap();
    assert_refused(
        &with_profile(huge.to_str().unwrap()),
        &["3221225472 bytes", "1048576 bytes"],
    );
}

#[test]
fn profiles_that_refuse_execve_are_refused_with_a_reason() {
    let dir = TempDir::new("seccomp-deny");
    for action in ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL"] {
        let path = dir.path().join(format!("{action}.json"));
        std::fs::write(&path, format!(r#"{{"defaultAction": "{action}"}}"#)).unwrap();
        assert_refused(
            &with_profile(path.to_str().unwrap()),
            &["no command could start", "allow execve", "exit_group"],
        );
    }
    let array = dir.path().join("array.json");
    std::fs::write(&array, "[]").unwrap();
    assert_refused(&with_profile(array.to_str().unwrap()), &["a seccomp profile object"]);
}

#[test]
fn a_minimal_allowing_profile_still_runs_the_command() {
    let dir = TempDir::new("seccomp-ok");
    let path = dir.path().join("allow.json");
    std::fs::write(&path, r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
    let run = with_profile(path.to_str().unwrap());
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
}
