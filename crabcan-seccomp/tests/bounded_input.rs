//! Profiles from untrusted paths and of untrusted size: endless devices,
//! FIFOs and huge files are refused promptly without being read whole;
//! large rule sets compile in bounded time or are refused before libseccomp
//! runs; JSON of the wrong shape is described in the format's own words;
//! profiles that refuse `execve` are refused.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crabcan_seccomp::{Action, Profile, SeccompError, MAX_PROFILE_BYTES, MAX_RULES};

/// A fresh directory for one test's files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("crabcan-seccomp-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads `path` on another thread and fails the test if that takes more
/// than a few seconds (a blocking open or an endless read).
fn read_promptly(path: &Path) -> Result<Profile, SeccompError> {
    let (send, receive) = mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let _ = send.send(Profile::from_oci_json_file(&path));
    });
    receive
        .recv_timeout(Duration::from_secs(5))
        .expect("reading the profile did not return within 5 s")
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let scratch = Scratch::new("fifo");
    let fifo = scratch.path("profile.json");
    let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
    let error = read_promptly(&fifo).expect_err("a FIFO is refused");
    assert!(
        matches!(error, SeccompError::NotARegularFile { kind: "FIFO", .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the seccomp profile {} is not a regular file but a FIFO; give a JSON file",
            fifo.display()
        )
    );
}

#[test]
fn endless_devices_and_directories_are_refused() {
    let error = read_promptly(Path::new("/dev/zero")).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "the seccomp profile /dev/zero is not a regular file but a character device; give a JSON file"
    );
    assert_eq!(error.path(), Some(Path::new("/dev/zero")));
    let error = read_promptly(Path::new("/")).expect_err("refused");
    assert!(
        matches!(error, SeccompError::NotARegularFile { kind: "directory", .. }),
        "{error}"
    );
    let error = read_promptly(Path::new("/nonexistent/profile.json")).expect_err("refused");
    assert!(matches!(error, SeccompError::ReadFile { .. }), "{error}");
}

#[test]
fn files_above_one_mebibyte_are_refused_unread() {
    let scratch = Scratch::new("large");
    let just_above = scratch.path("above.json");
    std::fs::write(&just_above, vec![b' '; MAX_PROFILE_BYTES as usize + 1]).expect("write");
    let error = read_promptly(&just_above).expect_err("refused");
    assert!(
        matches!(
            error,
            SeccompError::FileTooLarge {
                size: Some(1_048_577),
                max: 1_048_576,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("1048577 bytes, larger than the 1048576 bytes (1024 KiB) accepted"),
        "{error}"
    );
    // 3 GB, sparse: refused by its size, not after reading it.
    let huge = scratch.path("huge.json");
    std::fs::File::create(&huge)
        .and_then(|file| file.set_len(3 << 30))
        .expect("sparse file");
    let start = Instant::now();
    let error = read_promptly(&huge).expect_err("refused");
    assert!(
        matches!(
            error,
            SeccompError::FileTooLarge {
                size: Some(3_221_225_472),
                ..
            }
        ),
        "{error}"
    );
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
}

#[test]
fn a_file_of_exactly_one_mebibyte_is_read() {
    let scratch = Scratch::new("at-bound");
    let path = scratch.path("profile.json");
    let mut json = br#"{"defaultAction": "SCMP_ACT_ALLOW"}"#.to_vec();
    json.resize(MAX_PROFILE_BYTES as usize, b' ');
    std::fs::write(&path, json).expect("write");
    assert_eq!(read_promptly(&path).expect("read").default_action, Action::Allow);
}

/// `count` rules on `ioctl`, each for another request number: the shape
/// that made validation quadratic (and libseccomp, within its bound).
fn ioctl_rules_json(count: usize) -> String {
    let entries: Vec<String> = (0..count)
        .map(|request| {
            format!(
                r#"{{"names":["ioctl"],"action":"SCMP_ACT_ERRNO","args":[{{"index":1,"value":{request},"op":"SCMP_CMP_EQ"}}]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{}]}}"#,
        entries.join(",")
    )
}

#[test]
fn four_thousand_rules_compile_in_bounded_time() {
    // Before: 1.3 s to import and 1.7 s to compile in a debug build
    // (pairwise validation, twice); now ~0.4 s, nearly all in libseccomp.
    let json = ioctl_rules_json(4000);
    let start = Instant::now();
    let profile = Profile::from_oci_json(&json).expect("imports");
    let filter = profile.compile().expect("4000 rules fit in a filter");
    let elapsed = start.elapsed();
    assert!(filter.len() <= 4096, "{} instructions", filter.len());
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[test]
fn sixty_thousand_rules_are_refused_before_libseccomp() {
    let json = ioctl_rules_json(60_000);
    let start = Instant::now();
    let error = Profile::from_oci_json(&json).expect_err("refused");
    assert!(
        matches!(
            error,
            SeccompError::TooManyRules {
                count: 60_000,
                max: MAX_RULES
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("more than the 4096 accepted"), "{error}");
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
}

#[test]
fn shape_errors_speak_of_the_format_not_of_rust_types() {
    let cases = [
        ("[]", "a seccomp profile object {\"defaultAction\""),
        (
            "[{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"}]",
            "a seccomp profile object",
        ),
        ("\"SCMP_ACT_ALLOW\"", "a seccomp profile object"),
        (r#"{"defaultAction": 1}"#, "`defaultAction` as a string"),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "1"}"#,
            "`defaultErrnoRet` as a number",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}"#,
            "`syscalls` as a list",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": ["read"]}"#,
            "an entry of `syscalls`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read", "action": "SCMP_ACT_LOG"}]}"#,
            "`names` as a list",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG", "args": [1]}]}"#,
            "an entry of `args`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG",
                "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "`value` as a number",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG", "includes": []}]}"#,
            "an `includes` or `excludes` object",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG",
                "excludes": {"minKernel": 5}}]}"#,
            "`minKernel` as a string",
        ),
    ];
    for (json, expected) in cases {
        let message = Profile::from_oci_json(json).expect_err(json).to_string();
        assert!(message.contains(expected), "{json}: {message}");
        for internal in ["Oci", "struct", "u64", "u8", "String", "Vec"] {
            assert!(!message.contains(internal), "{json}: `{internal}` in {message}");
        }
    }
}

#[test]
fn deny_all_and_kill_all_profiles_cannot_start_a_command() {
    for action in [
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let profile = Profile::from_oci_json(&format!(r#"{{"defaultAction": "{action}"}}"#)).expect("imports");
        let error = profile.check_can_exec().expect_err(action);
        assert!(matches!(error, SeccompError::DeniesExec { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("no command could start"), "{message}");
        assert!(message.contains("allow execve, and exit_group"), "{message}");
    }
    let minimal = r#"{"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["execve", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#;
    assert!(Profile::from_oci_json(minimal)
        .expect("imports")
        .check_can_exec()
        .is_ok());
}
