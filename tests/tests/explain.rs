//! `crabcan --explain` (direct mode) and `crabcan explain ID` (OCI mode): the output for a
//! fixed configuration is checked field by field, nothing is started by it, and its JSON
//! matches what `/proc/self/status`, `mountinfo` and the cgroup files show inside a container
//! of the same configuration (and, for an OCI container, what its cgroup files on the host
//! hold).

use std::process::{Command, Stdio};

use crabcan_tests::*;
use serde_json::Value;

/// The capabilities the fixed configuration keeps, with their numbers (capabilities(7)).
const KEPT: [(&str, u32); 2] = [("CAP_CHOWN", 0), ("CAP_NET_BIND_SERVICE", 10)];

/// The fixed configuration's flags, with `data` bound read-only at /data.
fn flags(data: &str) -> Vec<String> {
    [
        "--memory",
        "64M",
        "--pids",
        "32",
        "--nofile",
        "100",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--cap-add",
        "NET_BIND_SERVICE",
        "--add",
        &format!("{data}:/data:ro"),
    ]
    .map(String::from)
    .to_vec()
}

/// `--explain` goes before `--`: [`Crabcan::command`] puts its arguments after the command.
trait Explain {
    fn command_with(&self, extra: &str, command: &[&str]) -> Command;
}

impl Explain for Crabcan {
    fn command_with(&self, extra: &str, command: &[&str]) -> Command {
        let mut full = self.command(&[]);
        full.arg(extra).arg("--").args(command);
        full
    }
}

fn explained(crabcan: &Crabcan, format: &str) -> Run {
    let before = HostSnapshot::take();
    let output = crabcan
        .command_with(&format!("--explain={format}"), &["/bin/true"])
        .output()
        .expect("cannot start crabcan");
    let run = Run::from_output(output);
    before.assert_clean_after(&crabcan.hostname);
    assert!(
        container_cgroup_dirs(&crabcan.hostname).is_empty(),
        "--explain made a cgroup"
    );
    run
}

#[test]
fn the_text_names_each_field_of_a_fixed_configuration() {
    let data = TempDir::new("explain-text");
    // On cgroup v1 the plan looks for pids.max in a cgroup below the hierarchy's root (which has
    // none): one container run makes the crabcan/ folder, which stays.
    Crabcan::new("explain-text-first").run(&["/bin/true"]).expect_success();
    let crabcan = Crabcan::new("explain-text").args(flags(&data.path().display().to_string()));
    let run = explained(&crabcan, "text");
    run.expect_success();
    let text = &run.stdout;
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    let starts = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"))
            .to_owned()
    };
    has("command: /bin/true");
    has(&format!("hostname: {}", crabcan.hostname));
    has("namespaces: user mount pid uts ipc net cgroup");
    has("user: uid 0 gid 0 groups (none)");
    has("  bounding: CAP_CHOWN CAP_NET_BIND_SERVICE");
    has("  effective: CAP_CHOWN CAP_NET_BIND_SERVICE");
    has("  inheritable: (none)");
    has("  ambient: (none)");
    has("no_new_privs: yes");
    has("  mount: errno(EPERM)");
    has("  clone(CLONE_NEWUSER): errno(EPERM)");
    has("  NOFILE: soft 100 hard 100");
    has("  /proc: proc (nosuid, nodev, noexec)");
    has(&format!(
        "  /data: bind from {} (rbind, nodev, ro (recursive))",
        data.path().display()
    ));
    assert!(starts("seccomp: filter; default errno(ENOSYS); ").contains("syscalls allowed"));
    assert!(starts("masked paths: ").contains("/proc/kcore"));
    assert!(starts("read-only paths: ").contains("/proc/sys"));
    let cgroup = starts("cgroup (");
    assert!(cgroup.contains(&format!("crabcan/{}.", crabcan.hostname)), "{cgroup}");
    assert!(starts("  pids limit: ").ends_with("/pids.max = 32"));
    let memory = starts("  memory limit: ");
    assert!(
        memory.ends_with("/memory.limit_in_bytes = 67108864") || memory.ends_with("/memory.max = 67108864"),
        "{memory}"
    );
    assert!(text.lines().any(|l| l.starts_with("not honoured on this host:")));
}

/// The mask of capability names, by [`KEPT`]'s numbers.
fn mask_of(names: &Value) -> u64 {
    names
        .as_array()
        .expect("a list of names")
        .iter()
        .map(|name| {
            let name = name.as_str().unwrap();
            let bit = KEPT
                .iter()
                .find(|(known, _)| *known == name)
                .unwrap_or_else(|| panic!("{name} is not one the configuration keeps"))
                .1;
            1u64 << bit
        })
        .fold(0, |mask, bit| mask | bit)
}

#[test]
fn the_json_matches_what_a_container_of_the_same_configuration_sees() {
    let data = TempDir::new("explain-json");
    let flags = flags(&data.path().display().to_string());
    let explain_run = explained(&Crabcan::new("explain-json").args(flags.clone()), "json");
    explain_run.expect_success();
    let c: Value = serde_json::from_str(&explain_run.stdout)
        .unwrap_or_else(|e| panic!("--explain=json is not JSON ({e}):\n{}", explain_run.stdout));

    // The same configuration, run: what the kernel shows inside.
    let layout = c["cgroup"]["layout"].as_str().expect("a cgroup").to_owned();
    let limits = c["cgroup"]["limits"].as_array().expect("limits").clone();
    let mut script = String::from(
        "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; \
         awk '{print \"mount=\" $5 \" \" $6}' /proc/self/mountinfo; echo nofile=$(ulimit -n); ",
    );
    for limit in limits.iter().filter(|l| l["honoured"] == "yes") {
        let file = limit["file"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
        let controller = limit["controller"].as_str().unwrap();
        let inside = match layout.as_str() {
            "v2" => format!("/sys/fs/cgroup/{file}"),
            _ => format!("/sys/fs/cgroup/{controller}/{file}"),
        };
        script.push_str(&format!("echo cgroup:{file}=$(cat {inside}); "));
    }
    let run = Crabcan::new("explain-json-run").args(flags).sh(&script);
    run.expect_success();
    let status = &run.stdout;

    let caps = &c["capabilities"];
    for (key, set) in [
        ("CapBnd", "bounding"),
        ("CapEff", "effective"),
        ("CapPrm", "permitted"),
        ("CapInh", "inheritable"),
        ("CapAmb", "ambient"),
    ] {
        assert_eq!(cap_mask(status, key), mask_of(&caps[set]), "{key} vs {set}: {status}");
    }
    let no_new_privs = if c["no_new_privs"] == true { "1" } else { "0" };
    assert!(
        status.lines().any(|l| l == format!("NoNewPrivs:\t{no_new_privs}")),
        "{status}"
    );
    assert_eq!(c["seccomp"]["mode"], "filter");
    assert!(status.lines().any(|l| l == "Seccomp:\t2"), "{status}");
    assert_eq!(
        run.value("nofile").as_deref(),
        Some(c["rlimits"][0]["soft"].to_string().as_str())
    );

    let mounted: Vec<(String, String)> = status
        .lines()
        .filter_map(|l| l.strip_prefix("mount="))
        .filter_map(|l| l.split_once(' '))
        .map(|(point, options)| (point.to_owned(), options.to_owned()))
        .collect();
    let options_at = |target: &str| {
        mounted
            .iter()
            .rev()
            .find(|(point, _)| point == target)
            .map(|(_, options)| options.clone())
            .unwrap_or_else(|| panic!("{target} is no mount point inside: {mounted:?}"))
    };
    for mount in c["mounts"].as_array().unwrap() {
        let target = mount["target"].as_str().unwrap();
        let kind = mount["type"].as_str().unwrap();
        if matches!(kind, "propagation" | "attributes" | "pivot_root" | "remount" | "mask") || target == "/" {
            continue;
        }
        let options = options_at(target);
        let flags: Vec<&str> = mount["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        for flag in ["ro", "nosuid", "nodev", "noexec"] {
            if flags.contains(&flag) || (flag == "ro" && flags.contains(&"ro (recursive)")) {
                assert!(
                    options.split(',').any(|o| o == flag),
                    "{target}: {flag} not in {options}"
                );
            }
        }
    }
    for path in c["masked_paths"].as_array().unwrap() {
        let path = path.as_str().unwrap();
        if !mounted.iter().any(|(point, _)| point == path) {
            // Masked only where the path exists in this kernel's procfs or sysfs.
            let exists = Command::new("test").arg("-e").arg(path).stdout(Stdio::null()).status();
            assert!(
                !exists.is_ok_and(|s| s.success()),
                "{path} exists on the host but is not masked inside"
            );
        }
    }
    for path in c["read_only_paths"].as_array().unwrap() {
        let path = path.as_str().unwrap();
        assert!(
            options_at(path).split(',').any(|o| o == "ro"),
            "{path} is not read-only inside"
        );
    }

    let mut checked = 0;
    for limit in limits.iter().filter(|l| l["honoured"] == "yes") {
        let file = limit["file"].as_str().unwrap().rsplit('/').next().unwrap();
        let seen = run
            .value(&format!("cgroup:{file}"))
            .unwrap_or_else(|| panic!("{file} not read: {}", run.stdout));
        let value = limit["value"].as_str().unwrap();
        // A file holds the value alone ("50"), among others (cpu.max "50000 100000"), or keyed
        // as it was written (io.weight "default 50").
        assert!(
            seen == value || seen.split_whitespace().any(|word| word == value),
            "{file}: {seen} inside, {value} explained"
        );
        checked += 1;
    }
    assert!(checked >= 2, "the memory and pids limits at least: {limits:?}");
}

#[test]
fn an_oci_containers_explanation_is_read_from_its_state() {
    require_root();
    let scratch = TempDir::new("explain-oci");
    let root = scratch.path().join("root");
    let bundle = scratch.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let crabcan = |args: &[&str]| {
        let out = scratch.path().join("out");
        let status = Command::new(crabcan_bin())
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::inherit())
            .status()
            .unwrap();
        (status.success(), std::fs::read_to_string(&out).unwrap_or_default())
    };
    assert!(crabcan(&["spec", "--bundle", bundle.to_str().unwrap()]).0);
    let path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    spec["root"]["path"] = Value::from(rootfs().display().to_string());
    spec["process"]["terminal"] = Value::Bool(false);
    spec["process"]["args"] = serde_json::json!(["/bin/sleep", "60"]);
    spec["linux"]["resources"] = serde_json::json!({"pids": {"limit": 20}});
    std::fs::write(&path, spec.to_string()).unwrap();
    let id = unique_hostname("explain-oci");
    assert!(crabcan(&["create", "--bundle", bundle.to_str().unwrap(), &id]).0);
    let (ok, json) = crabcan(&["explain", "--format", "json", &id]);
    let (text_ok, text) = crabcan(&["explain", &id]);
    let host_value = |c: &Value| -> Vec<(String, String, Option<String>)> {
        c["cgroup"]["limits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let file = l["file"].as_str().unwrap().to_owned();
                let value = l["value"].as_str().unwrap().to_owned();
                let now = std::fs::read_to_string(&file).ok().map(|v| v.trim().to_owned());
                (file, value, now)
            })
            .collect()
    };
    let parsed: Result<Value, _> = serde_json::from_str(&json);
    let limits = parsed.as_ref().map(host_value).unwrap_or_default();
    assert!(crabcan(&["delete", "--force", &id]).0);
    assert!(ok && text_ok, "explain failed: {json} {text}");
    let c = parsed.expect("explain --format json is JSON");
    assert_eq!(c["hostname"], spec["hostname"]);
    assert_eq!(c["cgroup"]["path"], format!("crabcan/{id}"));
    assert_eq!(c["no_new_privs"], true);
    let pids = limits
        .iter()
        .find(|(file, _, _)| file.ends_with("/pids.max"))
        .unwrap_or_else(|| panic!("no pids.max in {limits:?}"));
    assert_eq!(pids.1, "20");
    assert_eq!(
        pids.2.as_deref(),
        Some("20"),
        "the host's file holds what was explained"
    );
    assert!(
        text.contains(&format!("hostname: {}", spec["hostname"].as_str().unwrap())),
        "{text}"
    );
    assert!(!root.join(&id).exists());
    let (missing, _) = crabcan(&["explain", "no-such-container"]);
    assert!(!missing);
}

/// A writable bind of a root-owned sysfs folder wants an idmapped copy sysfs cannot give:
/// `--explain` lists it as not honoured, a run warns and goes on, `--strict` refuses to start.
#[test]
fn strict_refuses_what_explain_lists_as_not_honoured() {
    let flags = ["--add", "/sys/kernel/mm:/mm"];
    let explain = explained(&Crabcan::new("strict-explain").args(flags), "json");
    explain.expect_success();
    let c: Value = serde_json::from_str(&explain.stdout).unwrap();
    let item = c["not_honoured"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["what"].as_str().unwrap().contains("/sys/kernel/mm"))
        .unwrap_or_else(|| panic!("the sysfs bind is not listed: {}", c["not_honoured"]));
    assert!(item["reason"].as_str().unwrap().contains("sysfs"), "{item}");

    let warned = Crabcan::new("strict-warn").args(flags).run(&["/bin/ls", "/mm"]);
    warned.expect_success();
    assert!(
        warned
            .stderr
            .contains("crabcan: warn: /sys/kernel/mm is owned by host root"),
        "{}",
        warned.stderr
    );
    let strict = Crabcan::new("strict")
        .args(flags)
        .args(["--strict"])
        .run(&["/bin/ls", "/mm"]);
    strict.expect_code(125);
    assert!(
        strict.stderr.contains("/sys/kernel/mm") && strict.stderr.contains("strict mode"),
        "{}",
        strict.stderr
    );
    assert!(strict.stdout.is_empty(), "the command ran: {}", strict.stdout);
    let explained_strict = explained(&Crabcan::new("strict-explained").args(flags).args(["--strict"]), "text");
    assert!(
        explained_strict.stdout.contains("the start fails (strict mode)"),
        "{}",
        explained_strict.stdout
    );
}
