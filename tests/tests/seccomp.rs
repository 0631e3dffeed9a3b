//! The seccomp filter inside a real container: with the default profile each denied call returns
//! EPERM (ENOSYS for clone3 and unknown calls) and each allowed neighbour still works; the same
//! with a JSON profile, and nothing filtered with `--seccomp unconfined`.

use crabcan_tests::*;

#[track_caller]
fn assert_results(results: &std::collections::BTreeMap<String, String>, expected: &[(&str, &str)]) {
    for (check, want) in expected {
        assert_eq!(
            results.get(*check).map(String::as_str),
            Some(*want),
            "{check}: all results {results:?}"
        );
    }
}

const DENIED_EPERM: [&str; 22] = [
    "keyctl",
    "add_key",
    "request_key",
    "unshare_user",
    "unshare_ns",
    "clone_newuser",
    "chmod_suid",
    "chmod_sgid",
    "fchmodat2_suid",
    "tiocsti",
    "tiocsti_high",
    "mount",
    "umount",
    "pivot_root",
    "setns",
    "ptrace",
    "open_by_handle_at",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "mbind",
];

#[test]
fn default_profile_denies_and_allows() {
    let mut checks: Vec<&str> = DENIED_EPERM.to_vec();
    checks.extend(["kexec_load", "init_module", "reboot", "syslog", "open_tree", "fsopen"]);
    checks.extend([
        "clone3",
        "unknown_syscall",
        "chmod_plain",
        "fork",
        "thread",
        "tiocgwinsz",
        "fionread",
        "getpid",
    ]);
    let results = probe("sc-default", &[], &checks);
    let mut expected: Vec<(&str, &str)> = DENIED_EPERM.iter().map(|c| (*c, "EPERM")).collect();
    expected.extend([
        ("kexec_load", "EPERM"),
        ("init_module", "EPERM"),
        ("reboot", "EPERM"),
        ("syslog", "EPERM"),
        ("open_tree", "EPERM"),
        ("fsopen", "EPERM"),
        ("clone3", "ENOSYS"),
        ("unknown_syscall", "ENOSYS"),
        ("chmod_plain", "OK"),
        ("fork", "OK"),
        ("thread", "OK"),
        ("getpid", "OK"),
    ]);
    assert_results(&results, &expected);
    // Terminal ioctls next to TIOCSTI are not caught by its rule (stdin is /dev/null here).
    assert_eq!(results["tiocgwinsz"], "ENOTTY");
    assert_ne!(results["fionread"], "EPERM");
}

#[test]
fn tutorial_profile_has_the_seed_rules() {
    let results = probe(
        "sc-tutorial",
        &["--seccomp", "tutorial"],
        &[
            "keyctl",
            "chmod_suid",
            "chmod_sgid",
            "chmod_plain",
            "unshare_user",
            "tiocsti",
            "tiocgwinsz",
            "mbind",
            "clone3",
            "getpid",
        ],
    );
    assert_results(
        &results,
        &[
            ("keyctl", "EPERM"),
            ("chmod_suid", "EPERM"),
            ("chmod_sgid", "EPERM"),
            ("chmod_plain", "OK"),
            ("unshare_user", "EPERM"),
            ("tiocsti", "EPERM"),
            ("tiocgwinsz", "ENOTTY"),
            ("mbind", "EPERM"),
            ("getpid", "OK"),
        ],
    );
}

#[test]
fn json_profile_is_loaded() {
    let dir = TempDir::new("sc-json");
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["keyctl", "bpf"], "action": "SCMP_ACT_ERRNO"}
            ]
        }"#,
    )
    .unwrap();
    let results = probe(
        "sc-json",
        &["--seccomp-profile", profile.to_str().unwrap()],
        &["getpid", "keyctl", "bpf", "fork"],
    );
    assert_results(
        &results,
        &[
            ("getpid", "EOTHER"),
            ("keyctl", "EPERM"),
            ("bpf", "EPERM"),
            ("fork", "OK"),
        ],
    );
}

#[test]
fn bad_json_profile_is_a_clear_error() {
    let dir = TempDir::new("sc-badjson");
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let run = Crabcan::new("sc-badjson")
        .args(["--seccomp-profile", profile.to_str().unwrap()])
        .run(&["/bin/true"]);
    run.expect_code(125);
    assert!(run.stderr.contains("no_such_call"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn unconfined_turns_filtering_off() {
    let results = probe(
        "sc-unconfined",
        &["--seccomp", "unconfined"],
        &["keyctl", "clone3", "chmod_suid"],
    );
    // keyctl now reaches the kernel; clone3 works; setuid bits can be set by the file's owner.
    assert_ne!(results["keyctl"], "EPERM", "{results:?}");
    assert_eq!(results["clone3"], "OK", "{results:?}");
    assert_eq!(results["chmod_suid"], "OK", "{results:?}");
}

#[test]
fn ordinary_programs_keep_working_under_the_default_profile() {
    let run = Crabcan::new("sc-busybox").sh(
        "set -e; mkdir -p /tmp/a/b; echo data > /tmp/a/b/f; cp -r /tmp/a /tmp/c; tar -cf /tmp/x.tar -C /tmp c; \
         tar -tf /tmp/x.tar | grep -q c/b/f; ls -l /tmp >/dev/null; sort /etc/passwd | head -n1 >/dev/null; \
         (sleep 0.01 &) ; wait; chmod 755 /tmp/a; echo fine",
    );
    run.expect_success();
    assert_eq!(run.stdout.trim(), "fine", "{}", run.stderr);
}

#[test]
fn loopback_networking_works_under_the_default_profile() {
    let run = Crabcan::new("sc-net").sh(
        "mkdir -p /tmp/www && echo served > /tmp/www/index.html; httpd -p 127.0.0.1:8080 -h /tmp/www; \
         sleep 0.2; wget -q -O - http://127.0.0.1:8080/index.html",
    );
    run.expect_success();
    assert_eq!(run.stdout.trim(), "served", "{}", run.stderr);
}
