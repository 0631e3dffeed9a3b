//! crabcan's OCI mode from the outside: the real binary driven with runc's command line. The
//! subcommands that need no container (spec, features, list, state/kill/delete of an unknown
//! id) and its error conventions: one `error` line on stderr, exit 1, one JSON object in
//! `--log` with `--log-format json`. Every test has its own `--root` and leaves nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crabcan_tests::*;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// A test's own state root (not created: crabcan must create it only when it records a
/// container) and scratch folder, both removed on drop.
struct Oci {
    scratch: TempDir,
}

impl Oci {
    fn new(tag: &str) -> Oci {
        require_root();
        Oci {
            scratch: TempDir::new(&format!("oci-{tag}")),
        }
    }

    fn root(&self) -> PathBuf {
        self.scratch.path().join("root")
    }

    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.scratch.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `crabcan --root ROOT ARGS...`.
    fn run(&self, args: &[&str]) -> Run {
        self.run_in(args, None)
    }

    fn run_in(&self, args: &[&str], cwd: Option<&Path>) -> Run {
        let mut command = Command::new(crabcan_bin());
        command.arg("--root").arg(self.root()).args(args).stdin(Stdio::null());
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        Run::from_output(command.output().expect("cannot start crabcan"))
    }

    fn assert_root_untouched(&self) {
        assert!(!self.root().exists(), "crabcan created {}", self.root().display());
    }
}

/// Exit 1, one stderr line with `error` and `needle` in it, nothing on stdout.
#[track_caller]
fn assert_failed(run: &Run, needle: &str) {
    assert_eq!(run.code, Some(1), "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {}", run.stderr);
    assert!(lines[0].contains("error"), "{}", lines[0]);
    assert!(lines[0].contains(needle), "{:?} does not say {needle:?}", lines[0]);
    assert!(!lines[0].contains("panicked"), "{}", lines[0]);
    assert_eq!(run.stdout, "");
}

fn namespaces(spec: &Spec) -> Vec<LinuxNamespaceType> {
    let linux = spec.linux().as_ref().expect("linux section");
    linux
        .namespaces()
        .as_ref()
        .expect("namespaces")
        .iter()
        .map(|ns| ns.typ())
        .collect()
}

#[test]
fn spec_writes_runcs_default_config() {
    let oci = Oci::new("spec");
    let bundle = oci.dir("bundle");
    oci.run(&["spec", "--bundle", bundle.to_str().unwrap()])
        .expect_success();
    let spec = Spec::load(bundle.join("config.json")).expect("oci-spec parses the config.json");
    let process = spec.process().as_ref().expect("process");
    assert_eq!(process.args().as_deref(), Some(&["sh".to_owned()][..]));
    assert_eq!(process.terminal(), Some(true));
    assert_eq!(spec.root().as_ref().expect("root").path(), Path::new("rootfs"));
    let kinds = namespaces(&spec);
    for kind in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} missing from {kinds:?}");
    }
    assert!(!kinds.contains(&LinuxNamespaceType::User));
    let linux = spec.linux().as_ref().unwrap();
    let masked = linux.masked_paths().as_ref().expect("maskedPaths");
    for path in ["/proc/kcore", "/proc/keys", "/sys/firmware"] {
        assert!(masked.iter().any(|p| p == path), "{path} not masked: {masked:?}");
    }
    let readonly = linux.readonly_paths().as_ref().expect("readonlyPaths");
    assert!(readonly.iter().any(|p| p == "/proc/sys"), "{readonly:?}");
    // The same from the bundle as the current folder (runc's default), and never overwritten.
    let here = oci.dir("here");
    oci.run_in(&["spec"], Some(&here)).expect_success();
    assert!(here.join("config.json").is_file());
    let before = std::fs::read(bundle.join("config.json")).unwrap();
    let again = oci.run(&["spec", "-b", bundle.to_str().unwrap()]);
    assert_failed(&again, "exists. Remove it first");
    assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), before);
    let again = oci.run_in(&["spec"], Some(&here));
    assert_failed(&again, "File config.json exists. Remove it first");
    oci.assert_root_untouched();
}

#[test]
fn spec_rootless_has_a_user_namespace_mapping_the_caller() {
    let oci = Oci::new("rootless");
    let bundle = oci.dir("bundle");
    oci.run(&["spec", "--rootless", "--bundle", bundle.to_str().unwrap()])
        .expect_success();
    let spec = Spec::load(bundle.join("config.json")).expect("oci-spec parses the config.json");
    let kinds = namespaces(&spec);
    assert!(kinds.contains(&LinuxNamespaceType::User), "{kinds:?}");
    assert!(!kinds.contains(&LinuxNamespaceType::Network), "{kinds:?}");
    let linux = spec.linux().as_ref().unwrap();
    let uid = linux.uid_mappings().as_ref().expect("uidMappings")[0];
    let gid = linux.gid_mappings().as_ref().expect("gidMappings")[0];
    // The tests run as root: root is mapped to root, one id.
    assert_eq!((uid.container_id(), uid.host_id(), uid.size()), (0, 0, 1));
    assert_eq!((gid.container_id(), gid.host_id(), gid.size()), (0, 0, 1));
    oci.assert_root_untouched();
}

#[test]
fn features_is_the_oci_features_document() {
    let oci = Oci::new("features");
    let run = oci.run(&["features"]);
    run.expect_success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("features is JSON");
    let _: oci_spec::runtime::Features = serde_json::from_value(json.clone()).expect("oci-spec reads it");
    assert_eq!(json["ociVersionMin"], "1.0.0");
    assert!(json["ociVersionMax"].is_string());
    assert!(json["hooks"].is_array());
    assert!(json["mountOptions"].as_array().unwrap().contains(&"ro".into()));
    let linux = &json["linux"];
    for ns in ["mount", "pid", "network", "ipc", "uts", "user", "cgroup"] {
        assert!(linux["namespaces"].as_array().unwrap().contains(&ns.into()), "{ns}");
    }
    assert!(linux["capabilities"]
        .as_array()
        .unwrap()
        .contains(&"CAP_NET_ADMIN".into()));
    assert!(linux["cgroup"].is_object());
    let seccomp = &linux["seccomp"];
    assert_eq!(seccomp["enabled"], true);
    assert!(seccomp["actions"]
        .as_array()
        .unwrap()
        .contains(&"SCMP_ACT_ALLOW".into()));
    assert!(seccomp["operators"].as_array().unwrap().contains(&"SCMP_CMP_EQ".into()));
    assert!(seccomp["archs"]
        .as_array()
        .unwrap()
        .contains(&"SCMP_ARCH_X86_64".into()));
    assert_eq!(linux["apparmor"]["enabled"], false);
    assert_eq!(linux["selinux"]["enabled"], false);
    assert_eq!(
        linux["mountExtensions"]["idmap"]["enabled"],
        idmap_supported(Path::new("/")) || kernel_at_least_5_12(),
        "idmap.enabled is the kernel's support for idmapped mounts"
    );
    oci.assert_root_untouched();
}

fn kernel_at_least_5_12() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut numbers = release.trim().split(|c: char| !c.is_ascii_digit());
    let major: u32 = numbers.next().unwrap().parse().unwrap();
    let minor: u32 = numbers.next().unwrap().parse().unwrap();
    (major, minor) >= (5, 12)
}

#[test]
fn unknown_ids_fail_in_runcs_words() {
    let oci = Oci::new("unknown");
    for args in [
        &["state", "nope"][..],
        &["kill", "nope"][..],
        &["kill", "nope", "KILL"][..],
        &["kill", "--all", "nope", "9"][..],
        &["delete", "nope"][..],
        &["pause", "nope"][..],
        &["exec", "nope", "true"][..],
    ] {
        assert_failed(&oci.run(args), "container \"nope\" does not exist");
    }
    // With --force an unknown id is deleted already.
    oci.run(&["delete", "--force", "nope"]).expect_success();
    oci.run(&["delete", "nope", "--force"]).expect_success();
    oci.assert_root_untouched();
}

#[test]
fn json_log_gets_exactly_one_error_object() {
    let oci = Oci::new("log");
    let logs = oci.dir("logs");
    for (n, args) in [
        &["state", "nope"][..],
        &["kill", "nope", "SIGKILL"][..],
        &["delete", "nope"][..],
    ]
    .iter()
    .enumerate()
    {
        let log = logs.join(format!("log-{n}.json"));
        let log_arg = log.to_str().unwrap();
        let mut full = vec!["--log", log_arg, "--log-format", "json"];
        full.extend_from_slice(args);
        assert_failed(&oci.run(&full), "does not exist");
        let text = std::fs::read_to_string(&log).expect("the log is written");
        // podman decodes the whole file as one object.
        let object: serde_json::Value = serde_json::from_str(&text).expect("the log is one JSON object");
        assert_eq!(object["level"], "error");
        assert_eq!(object["msg"], "container \"nope\" does not exist");
        let time = object["time"].as_str().expect("time");
        assert!(
            time.len() >= 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
            "{time} is not RFC 3339"
        );
    }
    // Text format: a logrus-style line.
    let log = logs.join("log.txt");
    let run = oci.run(&["--log", log.to_str().unwrap(), "state", "nope"]);
    assert_failed(&run, "does not exist");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("level=error") && text.contains("does not exist"),
        "{text}"
    );
    // A parse error reaches the log too.
    let log = logs.join("parse.json");
    let run = oci.run(&["--log", log.to_str().unwrap(), "--log-format", "json", "kill"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let object: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    assert_eq!(object["level"], "error");
    oci.assert_root_untouched();
}

#[test]
fn list_of_an_empty_root() {
    let oci = Oci::new("list");
    let run = oci.run(&["list"]);
    run.expect_success();
    assert_eq!(run.stdout.lines().collect::<Vec<_>>().len(), 1, "{}", run.stdout);
    let header: Vec<&str> = run.stdout.split_whitespace().collect();
    assert_eq!(header, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]);
    let run = oci.run(&["list", "--format", "json"]);
    run.expect_success();
    assert_eq!(run.stdout.trim(), "[]");
    let run = oci.run(&["list", "-q"]);
    run.expect_success();
    assert_eq!(run.stdout, "");
    oci.assert_root_untouched();
}

#[test]
fn bad_ids_are_refused() {
    let oci = Oci::new("ids");
    let bundle = oci.dir("bundle");
    for id in ["a/b", "..", "../escape", ".ids", "a b"] {
        for args in [
            vec!["state", id],
            vec!["delete", "--force", id],
            vec!["create", "--bundle", bundle.to_str().unwrap(), id],
        ] {
            assert_failed(&oci.run(&args), "invalid container id");
        }
    }
    let long = "x".repeat(1025);
    assert_failed(&oci.run(&["state", &long]), "invalid container id");
    oci.assert_root_untouched();
    assert!(!oci.scratch.path().join("escape").exists());
}

#[test]
fn global_options_and_help() {
    let oci = Oci::new("globals");
    // Accepted before the subcommand.
    oci.run(&[
        "--debug",
        "--rootless",
        "false",
        "--cgroup-manager",
        "cgroupfs",
        "--log-format",
        "text",
        "list",
    ])
    .expect_success();
    // A cgroup driver crabcan does not have is named.
    let bundle = oci.dir("bundle");
    let run = oci.run(&["--systemd-cgroup", "create", "-b", bundle.to_str().unwrap(), "c1"]);
    assert_failed(&run, "--systemd-cgroup");
    let run = oci.run(&[
        "--cgroup-manager",
        "systemd",
        "run",
        "-b",
        bundle.to_str().unwrap(),
        "c1",
    ]);
    assert_failed(&run, "systemd");
    // A bad value is one error line, exit 1.
    assert_failed(&oci.run(&["--log-format", "xml", "list"]), "xml");
    assert_failed(&oci.run(&["frobnicate"]), "frobnicate");
    for args in [&["--help"][..], &["create", "--help"][..], &["exec", "--help"][..]] {
        let run = oci.run(args);
        run.expect_success();
        assert!(run.stdout.contains("Usage"), "{}", run.stdout);
    }
    let run = oci.run(&["create", "--help"]);
    for option in [
        "--bundle",
        "--pid-file",
        "--console-socket",
        "--pidfd-socket",
        "--no-pivot",
        "--no-new-keyring",
        "--preserve-fds",
    ] {
        assert!(run.stdout.contains(option), "create --help lacks {option}");
    }
    oci.assert_root_untouched();
}

#[test]
fn a_bundle_without_config_json_is_one_clear_error_and_no_state() {
    let oci = Oci::new("noconfig");
    let bundle = oci.dir("bundle");
    let run = oci.run(&["create", "--bundle", bundle.to_str().unwrap(), "c1"]);
    assert_failed(&run, "config.json");
    oci.assert_root_untouched();
}

#[test]
fn the_direct_mode_is_unchanged() {
    require_root();
    let hostname = unique_hostname("oci-direct");
    let mut command = Command::new(crabcan_bin());
    command
        .args(["--no-tty", "--hostname", &hostname, "--mount"])
        .arg(rootfs());
    if let Some(map) = test_id_map() {
        command.args(["--uid-map", &map, "--gid-map", &map]);
    }
    // A command named like a subcommand, after `--`, is the container's.
    command.args(["--", "/bin/sh", "-c", "echo list"]).stdin(Stdio::null());
    let before = HostSnapshot::take();
    let run = Run::from_output(command.output().expect("cannot start crabcan"));
    before.assert_clean_after(&hostname);
    run.expect_success();
    assert_eq!(run.stdout.trim(), "list");
}
