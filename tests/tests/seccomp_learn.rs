//! Learning a seccomp profile (`--seccomp-learn`) and enforcing it (`--seccomp-profile`): the
//! learned profile of a fixed busybox script holds what the script needs and nothing the
//! default profile denies, the enforced run passes, a syscall outside the set gets EPERM,
//! two runs merge into their union, denied calls are reported instead of learned (unless
//! `--seccomp-learn-unconfined`), and an OCI bundle learns through its annotation, its
//! learned profile covering what crabcan itself does after an early filter. Every run leaves
//! the host clean.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crabcan_tests::*;
use serde_json::Value;

/// A fixed script: files, a pipe, a subshell, a directory listing.
const SCRIPT: &str = "echo hello > /tmp/f; cat /tmp/f; ls / > /dev/null; echo $(wc -l < /tmp/f) line";

/// The syscalls a profile file allows, whatever the arguments or under some.
fn allowed_names(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let profile: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO", "{text}");
    profile["syscalls"]
        .as_array()
        .expect("a syscalls list")
        .iter()
        .filter(|entry| entry["action"] == "SCMP_ACT_ALLOW")
        .flat_map(|entry| entry["names"].as_array().cloned().unwrap_or_default())
        .map(|name| name.as_str().expect("a name").to_owned())
        .collect()
}

fn learn(tag: &str, profile: &Path, extra: &[&str], command: &[&str]) -> Run {
    Crabcan::new(tag)
        .args(["--seccomp-learn", profile.to_str().unwrap()])
        .args(extra.iter().copied())
        .run(command)
}

#[test]
fn a_learned_profile_runs_the_script_and_nothing_else() {
    let dir = TempDir::new("learn-script");
    let profile = dir.path().join("script.json");
    let learned = learn("learn", &profile, &[], &["/bin/sh", "-c", SCRIPT]);
    learned.expect_success();
    assert_eq!(learned.stdout, "hello\n1 line\n");
    assert!(learned.stderr.contains("crabcan: learned "), "{}", learned.stderr);
    let names = allowed_names(&profile);
    for needed in ["execve", "read", "write", "openat", "exit_group", "wait4", "getdents64"] {
        assert!(names.contains(needed), "{needed} missing from {names:?}");
    }
    for never in ["mount", "ptrace", "unshare", "setns", "keyctl", "sendmsg"] {
        assert!(!names.contains(never), "{never} learned: {names:?}");
    }
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(text.contains("\n        \"execve\",\n"), "one name per line:\n{text}");
    let sorted: Vec<&String> = names.iter().collect();
    let listed: Vec<String> = serde_json::from_str::<Value>(&text).unwrap()["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    assert!(listed.windows(2).all(|pair| pair[0] < pair[1]), "sorted: {listed:?}");
    assert!(!sorted.is_empty());

    let enforced = Crabcan::new("enforce")
        .args(["--seccomp-profile", profile.to_str().unwrap()])
        .sh(SCRIPT);
    enforced.expect_success();
    assert_eq!(enforced.stdout, "hello\n1 line\n", "{}", enforced.stderr);
    assert!(!names.contains("mkdir"), "the script makes no directory");
    let outside = Crabcan::new("outside")
        .args(["--seccomp-profile", profile.to_str().unwrap()])
        .sh("mkdir /tmp/d");
    assert_ne!(outside.code, Some(0));
    assert!(outside.stderr.contains("Operation not permitted"), "{}", outside.stderr);
}

#[test]
fn a_probe_outside_the_learned_set_gets_eperm() {
    let dir = TempDir::new("learn-probe");
    let probe = probe_dir();
    let profile = dir.path().join("probe.json");
    let bind = format!("{}:/probe:ro", probe.path().display());
    learn(
        "probe",
        &profile,
        &["--add", &bind],
        &["/probe/crabcan-probe", "getpid"],
    )
    .expect_success();
    assert!(!allowed_names(&profile).contains("chmod"));
    let run = Crabcan::new("probe-enforced")
        .args(["--add", &bind, "--seccomp-profile", profile.to_str().unwrap()])
        .run(&["/probe/crabcan-probe", "getpid", "chmod_plain"]);
    run.expect_success();
    assert_eq!(run.value("getpid").as_deref(), Some("OK"), "{run:?}");
    assert_eq!(run.value("chmod_plain").as_deref(), Some("EPERM"), "{run:?}");
}

#[test]
fn two_runs_merge_into_their_union() {
    let dir = TempDir::new("learn-merge");
    let (first, second, both) = (
        dir.path().join("a.json"),
        dir.path().join("b.json"),
        dir.path().join("ab.json"),
    );
    let make_dir = ["/bin/sh", "-c", "mkdir /tmp/d && rmdir /tmp/d"];
    let list = ["/bin/sh", "-c", "ls -l / > /dev/null"];
    learn("merge-a", &first, &[], &make_dir).expect_success();
    learn("merge-b", &second, &[], &list).expect_success();
    learn("merge-ab", &both, &[], &make_dir).expect_success();
    let after_one = allowed_names(&both);
    let run = learn("merge-ab", &both, &[], &list);
    run.expect_success();
    assert!(
        run.stderr.contains(&format!("{} now allows", both.display())),
        "{}",
        run.stderr
    );
    let union: BTreeSet<String> = allowed_names(&first).union(&allowed_names(&second)).cloned().collect();
    assert_eq!(allowed_names(&both), union);
    assert!(union.contains("mkdir") && union.contains("rmdir") && union.len() > after_one.len());
}

#[test]
fn denied_calls_are_reported_not_learned_unless_unconfined() {
    let dir = TempDir::new("learn-denied");
    let probe = probe_dir();
    let bind = format!("{}:/probe:ro", probe.path().display());
    let command = ["/probe/crabcan-probe", "keyctl", "mount", "clone3", "getpid"];
    let confined = dir.path().join("confined.json");
    let run = learn("denied", &confined, &["--add", &bind], &command);
    run.expect_success();
    assert_eq!(run.value("keyctl").as_deref(), Some("EPERM"), "{run:?}");
    assert_eq!(run.value("mount").as_deref(), Some("EPERM"));
    assert_eq!(
        run.value("clone3").as_deref(),
        Some("ENOSYS"),
        "as under the default profile"
    );
    let report = run
        .stderr
        .lines()
        .find(|line| line.contains("denied while learning"))
        .unwrap_or_else(|| panic!("no report of the denials: {}", run.stderr));
    for name in [
        "keyctl (errno(EPERM))",
        "mount (errno(EPERM))",
        "clone3 (errno(ENOSYS))",
    ] {
        assert!(report.contains(name), "{name} not reported: {report}");
    }
    let names = allowed_names(&confined);
    assert!(names.contains("getpid") && !names.contains("keyctl") && !names.contains("mount"));
    let text = std::fs::read_to_string(&confined).unwrap();
    assert!(
        text.contains("\"clone3\""),
        "clone3 keeps its ENOSYS so libc falls back:\n{text}"
    );

    let unconfined = dir.path().join("unconfined.json");
    let run = learn(
        "unconfined",
        &unconfined,
        &["--add", &bind, "--seccomp-learn-unconfined"],
        &command,
    );
    run.expect_success();
    assert_ne!(run.value("keyctl").as_deref(), Some("EPERM"), "{run:?}");
    let names = allowed_names(&unconfined);
    for name in ["keyctl", "mount", "clone3", "getpid"] {
        assert!(names.contains(name), "{name} not learned: {names:?}");
    }
}

#[test]
fn a_learning_run_that_cannot_write_its_profile_is_refused_before_anything_starts() {
    let hostname = unique_hostname("learn-bad");
    let run = Crabcan::new("learn-bad")
        .args(["--seccomp-learn", "/nonexistent/folder/x.json"])
        .sh("true");
    run.expect_code(125);
    assert!(
        run.stderr.contains("/nonexistent/folder/x.json") && run.stderr.contains("folder does not exist"),
        "{}",
        run.stderr
    );
    assert!(container_cgroup_dirs(&hostname).is_empty());
    let with_init = Crabcan::new("learn-init")
        .args(["--seccomp-learn", "/tmp/x.json", "--init"])
        .sh("true");
    with_init.expect_code(125);
    assert!(with_init.stderr.contains("--init"), "{}", with_init.stderr);
}

/// An OCI state root and bundle of this test, every container in it deleted on drop.
struct Bundle {
    scratch: TempDir,
}

impl Bundle {
    fn new(tag: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
        let bundle = Bundle {
            scratch: TempDir::new(tag),
        };
        std::fs::create_dir_all(bundle.dir()).unwrap();
        bundle
            .crabcan(&["spec", "--bundle", bundle.dir().to_str().unwrap()])
            .expect_success();
        let path = bundle.dir().join("config.json");
        let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        spec["root"]["path"] = Value::from(rootfs().display().to_string());
        spec["process"]["terminal"] = Value::Bool(false);
        spec["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        edit(&mut spec);
        std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
        bundle
    }

    fn dir(&self) -> PathBuf {
        self.scratch.path().join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.scratch.path().join("root")
    }

    /// `crabcan --root ROOT ARGS...`, output in files (a detached container keeps crabcan's
    /// stdio, so pipes would not end).
    fn crabcan(&self, args: &[&str]) -> Run {
        self.crabcan_into("stdout", args)
    }

    /// [`Bundle::crabcan`] with its stdout in the file `name` of the scratch folder, which a
    /// container it creates writes to as well.
    fn crabcan_into(&self, name: &str, args: &[&str]) -> Run {
        let out = self.scratch.path().join(name);
        let err = self.scratch.path().join("stderr");
        let status = Command::new(crabcan_bin())
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .expect("cannot start crabcan");
        Run::from_output(std::process::Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        })
    }

    /// Processes whose command line names this test's state root (a learner left behind).
    fn processes(&self) -> Vec<i32> {
        let root = self.root().display().to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|line| String::from_utf8_lossy(&line).contains(&root))
            })
            .collect()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(self.root()).into_iter().flatten().flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !id.starts_with('.') {
                let _ = self.crabcan(&["delete", "--force", &id]);
            }
        }
    }
}

#[test]
fn an_oci_bundle_learns_through_its_annotation_and_runs_under_what_it_learned() {
    require_root();
    let learned = TempDir::new("oci-learned");
    let profile = learned.path().join("oci.json");
    let enforced_while_learning = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["keyctl", "mount"], "action": "SCMP_ACT_ERRNO"}]
    });
    let script = "echo hi from oci; ls / > /dev/null";
    // Without noNewPrivileges the filter goes in while CAP_SYS_ADMIN is held, before crabcan's
    // last setup steps: the learned profile must cover those too.
    let bundle = Bundle::new("oci-learn", &["/bin/sh", "-c", script], |spec| {
        spec["process"]["noNewPrivileges"] = Value::Bool(false);
        spec["linux"]["seccomp"] = enforced_while_learning.clone();
        spec["annotations"] = serde_json::json!({ "run.crabcan.seccomp.learn": profile.display().to_string() });
    });
    let id = unique_hostname("oci-learn");
    let before = HostSnapshot::take();
    bundle
        .crabcan(&["create", "--bundle", bundle.dir().to_str().unwrap(), &id])
        .expect_success();
    bundle.crabcan(&["start", &id]).expect_success();
    assert!(
        wait_until(20, || profile.exists() && bundle.processes().is_empty()),
        "the learner wrote no profile, or outlived the container: {:?}",
        bundle.processes()
    );
    let state: Value = serde_json::from_str(&bundle.crabcan(&["state", &id]).stdout).unwrap();
    assert_eq!(state["status"], "stopped");
    bundle.crabcan(&["delete", &id]).expect_success();
    before.assert_clean_after(&id);
    let names = allowed_names(&profile);
    for needed in ["execve", "write", "capset", "setresuid"] {
        assert!(names.contains(needed), "{needed} missing from {names:?}");
    }
    assert!(!names.contains("keyctl") && !names.contains("mount"));

    let learned_json: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    let enforced = Bundle::new("oci-enforce", &["/bin/sh", "-c", script], |spec| {
        spec["process"]["noNewPrivileges"] = Value::Bool(false);
        spec["linux"]["seccomp"] = learned_json;
    });
    // Enforced the way it was learned, through create and start (as podman runs containers):
    // crabcan's own calls after the early filter depend on how the container is released.
    let id = unique_hostname("oci-enforce");
    let before = HostSnapshot::take();
    enforced
        .crabcan_into(
            "container-output",
            &["create", "--bundle", enforced.dir().to_str().unwrap(), &id],
        )
        .expect_success();
    enforced.crabcan(&["start", &id]).expect_success();
    assert!(
        wait_until(20, || enforced.crabcan(&["state", &id]).stdout.contains("\"stopped\"")),
        "the enforced container never stopped"
    );
    enforced.crabcan(&["delete", &id]).expect_success();
    before.assert_clean_after(&id);
    let output = std::fs::read_to_string(enforced.scratch.path().join("container-output")).unwrap();
    assert_eq!(
        output, "hi from oci\n",
        "the command ran to its end under the learned profile"
    );
}
