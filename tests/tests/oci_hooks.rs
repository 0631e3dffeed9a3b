//! The OCI bundle's hooks and the extras of the process and of `create`: every hook kind runs
//! where and when the runtime spec says, with the state on stdin, a failing or overrunning one
//! fails the container and leaves nothing; `process.oomScoreAdj`, `linux.personality`,
//! `--preserve-fds` (and socket activation's `LISTEN_FDS`), `--pidfd-socket`, the session
//! keyring (`--no-new-keyring`), and `--no-pivot` refused. Each test has its own `--root` and
//! checks the host afterwards.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crabcan_tests::oci::{receive_fd, unique_id, Oci};
use crabcan_tests::*;
use serde_json::{json, Value};

/// A folder of the test's scratch space bound into the container at `/hooks` (read-write),
/// holding `record.sh`, which appends `KIND MNT-NAMESPACE HOSTNAME STATE-FROM-STDIN` as one
/// line to the log named by its second argument.
struct HookDir {
    host: PathBuf,
}

impl HookDir {
    fn new(oci: &Oci) -> HookDir {
        let host = oci.scratch.path().join("hooks");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = host.join("record.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\nstate=$(cat)\necho \"$1 $(readlink /proc/self/ns/mnt) $(cat /proc/sys/kernel/hostname) $state\" >> \"$2\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(host.join("log"), "").unwrap();
        HookDir { host }
    }

    /// The hook recording `kind` from the runtime's namespaces (the host's paths).
    fn on_host(&self, kind: &str) -> Value {
        let script = self.host.join("record.sh").display().to_string();
        let log = self.host.join("log").display().to_string();
        json!({"path": script, "args": ["record.sh", kind, log], "env": ["PATH=/usr/bin:/bin"]})
    }

    /// The hook recording `kind` from inside the container (its paths).
    fn in_container(&self, kind: &str) -> Value {
        json!({"path": "/hooks/record.sh", "args": ["record.sh", kind, "/hooks/log"]})
    }

    /// The mount that shows the folder in the container.
    fn mount(&self) -> Value {
        json!({"destination": "/hooks", "type": "bind", "source": self.host.display().to_string(), "options": ["rbind", "rw"]})
    }

    /// The log's lines: (kind, mount namespace, hostname, state).
    fn records(&self) -> Vec<(String, String, String, Value)> {
        std::fs::read_to_string(self.host.join("log"))
            .unwrap()
            .lines()
            .map(|line| {
                let mut parts = line.splitn(4, ' ');
                let mut next = || parts.next().unwrap_or_default().to_owned();
                let (kind, namespace, hostname, state) = (next(), next(), next(), next());
                let state = serde_json::from_str(&state).unwrap_or(Value::Null);
                (kind, namespace, hostname, state)
            })
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.records().into_iter().map(|(kind, ..)| kind).collect()
    }
}

fn bundle_arg(oci: &Oci) -> String {
    oci.bundle().display().to_string()
}

fn mount_namespace(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .display()
        .to_string()
}

/// Whether a process whose command line is exactly `words` exists.
fn process_running(words: &[&str]) -> bool {
    let wanted: Vec<u8> = words.iter().flat_map(|w| w.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|entry| std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| cmdline == wanted))
}

#[test]
fn every_hook_kind_runs_in_order_where_the_spec_says_with_the_state_on_stdin() {
    let oci = Oci::new("hooks");
    let hooks = HookDir::new(&oci);
    oci.write_bundle(&["/bin/sh", "-c", "echo command >> /hooks/log"], |spec| {
        spec["hostname"] = json!("hooked");
        spec["mounts"].as_array_mut().unwrap().push(hooks.mount());
        spec["hooks"] = json!({
            "prestart": [hooks.on_host("prestart")],
            "createRuntime": [hooks.on_host("createRuntime")],
            "createContainer": [hooks.on_host("createContainer")],
            "startContainer": [hooks.in_container("startContainer")],
            "poststart": [hooks.on_host("poststart")],
            "poststop": [hooks.on_host("poststop")],
        });
    });
    let id = unique_id("hooks");
    let before = HostSnapshot::take();
    oci.crabcan(&["create", "--bundle", &bundle_arg(&oci), &id])
        .expect_success();
    assert_eq!(hooks.kinds(), ["prestart", "createRuntime", "createContainer"]);
    let pid = oci.state(&id)["pid"].to_string();
    let container_namespace = mount_namespace(&pid);
    oci.crabcan(&["start", &id]).expect_success();
    assert!(
        wait_until(10, || oci.state(&id)["status"] == "stopped"),
        "never stopped"
    );
    oci.crabcan(&["delete", &id]).expect_success();
    let kinds = hooks.kinds();
    assert_eq!(
        kinds.iter().filter(|k| *k != "command").collect::<Vec<_>>(),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{kinds:?}"
    );
    assert!(
        kinds.iter().position(|k| k == "startContainer") < kinds.iter().position(|k| k == "command"),
        "startContainer runs before the program: {kinds:?}"
    );

    let host_namespace = mount_namespace("self");
    let bundle = oci.bundle().canonicalize().unwrap().display().to_string();
    for (kind, namespace, hostname, state) in hooks.records() {
        if kind == "command" {
            continue;
        }
        let (status, in_container) = match kind.as_str() {
            "prestart" | "createRuntime" => ("creating", false),
            "createContainer" => ("creating", true),
            "startContainer" => ("created", true),
            "poststart" => ("running", false),
            _ => ("stopped", false),
        };
        assert_eq!(state["id"], json!(id), "{kind}: {state}");
        assert_eq!(state["status"], status, "{kind}: {state}");
        assert_eq!(state["bundle"], json!(bundle), "{kind}: {state}");
        let expected_pid = if kind == "poststop" { "0" } else { pid.as_str() };
        assert_eq!(state["pid"].to_string(), expected_pid, "{kind}: {state}");
        if in_container {
            assert_eq!(namespace, container_namespace, "{kind} runs in the container's mounts");
            assert_eq!(hostname, "hooked", "{kind} runs in the container's uts namespace");
        } else {
            assert_eq!(namespace, host_namespace, "{kind} runs in the runtime's mounts");
            assert_ne!(hostname, "hooked");
        }
    }
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn a_failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let oci = Oci::new("hookfail");
    let hooks = HookDir::new(&oci);
    oci.write_bundle(&["/bin/true"], |spec| {
        spec["hooks"] = json!({
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo it broke >&2; exit 7"]}],
            "createContainer": [hooks.on_host("createContainer")],
            "poststop": [hooks.on_host("poststop")],
        });
    });
    let id = unique_id("hookfail");
    let before = HostSnapshot::take();
    let run = oci.crabcan(&["create", "--bundle", &bundle_arg(&oci), &id]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("error")
            && run.stderr.contains("createRuntime hook /bin/sh failed: exit status 7")
            && run.stderr.contains("it broke"),
        "{}",
        run.stderr
    );
    // The spec's lifecycle goes on to delete: poststop runs, createContainer never did.
    assert_eq!(hooks.kinds(), ["poststop"]);
    assert_eq!(oci.crabcan(&["state", &id]).code, Some(1), "the container is gone");
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn a_hook_past_its_timeout_is_killed_and_fails_create() {
    let oci = Oci::new("hooktime");
    oci.write_bundle(&["/bin/true"], |spec| {
        spec["hooks"] = json!({
            "prestart": [{"path": "/bin/sleep", "args": ["sleep", "98765"], "timeout": 1}],
        });
    });
    let id = unique_id("hooktime");
    let before = HostSnapshot::take();
    let run = oci.crabcan(&["create", "--bundle", &bundle_arg(&oci), &id]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("prestart hook /bin/sleep failed: it ran past its timeout of 1 s"),
        "{}",
        run.stderr
    );
    assert!(!process_running(&["sleep", "98765"]), "the hook outlived its timeout");
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn a_failing_start_container_hook_fails_start_and_stops_the_container() {
    let oci = Oci::new("hookstart");
    oci.write_bundle(&["/bin/sleep", "60"], |spec| {
        spec["hooks"] = json!({
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}],
        });
    });
    let id = unique_id("hookstart");
    let before = HostSnapshot::take();
    oci.crabcan(&["create", "--bundle", &bundle_arg(&oci), &id])
        .expect_success();
    let pid = oci.state(&id)["pid"].to_string();
    let run = oci.crabcan(&["start", &id]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(&format!("container \"{id}\" failed to start"))
            && run.stderr.contains("startContainer hook /bin/sh failed: exit status 4"),
        "{}",
        run.stderr
    );
    assert!(wait_until(10, || oci.state(&id)["status"] == "stopped"));
    assert!(
        !std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "sleep"),
        "the program ran"
    );
    oci.crabcan(&["delete", &id]).expect_success();
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn failing_poststart_and_poststop_hooks_are_warnings() {
    let oci = Oci::new("hookwarn");
    oci.write_bundle(&["/bin/sleep", "60"], |spec| {
        spec["hooks"] = json!({
            "poststart": [{"path": "/bin/false"}],
            "poststop": [{"path": "/nonexistent/hook"}],
        });
    });
    let id = unique_id("hookwarn");
    let before = HostSnapshot::take();
    oci.crabcan(&["create", "--bundle", &bundle_arg(&oci), &id])
        .expect_success();
    let started = oci.crabcan(&["start", &id]);
    started.expect_success();
    assert!(
        started.stderr.contains("warn") && started.stderr.contains("poststart hook /bin/false failed"),
        "{}",
        started.stderr
    );
    assert_eq!(oci.state(&id)["status"], "running");
    let deleted = oci.crabcan(&["delete", "--force", &id]);
    deleted.expect_success();
    assert!(
        deleted.stderr.contains("warn") && deleted.stderr.contains("poststop hook /nonexistent/hook failed"),
        "{}",
        deleted.stderr
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn hostile_hooks_are_refused_by_name() {
    let oci = Oci::new("hookbad");
    let id = unique_id("hookbad");
    for (hooks, field) in [
        (json!({"prestart": [{"path": "relative/hook"}]}), "hooks.prestart[0]"),
        (
            json!({"createRuntime": [{"path": "/bin/true", "env": ["NO_EQUALS"]}]}),
            "hooks.createRuntime[0]",
        ),
        (
            json!({"poststop": [{"path": "/bin/true", "timeout": 0}]}),
            "hooks.poststop[0].timeout",
        ),
        (
            json!({"poststart": vec![json!({"path": "/bin/true"}); 65]}),
            "hooks.poststart",
        ),
    ] {
        oci.write_bundle(&["/bin/true"], |spec| spec["hooks"] = hooks);
        let run = oci.crabcan(&["create", "--bundle", &bundle_arg(&oci), &id]);
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains(field), "{field}: {}", run.stderr);
        oci.assert_gone(&id);
    }
    // A startContainer hook is the container's code, run beside crabcan's: not with
    // CAP_SYS_PTRACE in the host's user namespace (CVE-2019-5736).
    oci.write_bundle(&["/bin/true"], |spec| {
        spec["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
        spec["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_PTRACE"));
    });
    let run = oci.crabcan(&["create", "--bundle", &bundle_arg(&oci), &id]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("hooks.startContainer") && run.stderr.contains("CVE-2019-5736"),
        "{}",
        run.stderr
    );
    oci.assert_gone(&id);
}

/// Whether this process has CAP_SYS_RESOURCE (bit 24), which lowering an OOM score needs.
fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    cap_mask(&status, "CapEff") & (1 << 24) != 0
}

#[test]
fn the_oom_score_and_the_personality_reach_the_process() {
    let oci = Oci::new("oomper");
    let id = unique_id("oomper");
    let script = "echo oom=$(cat /proc/self/oom_score_adj); echo machine=$(uname -m)";
    oci.write_bundle(&["/bin/sh", "-c", script], |spec| {
        spec["process"]["oomScoreAdj"] = json!(500);
        spec["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    let run = oci.crabcan(&["run", "--bundle", &bundle_arg(&oci), &id]);
    run.expect_success();
    assert_eq!(run.value("oom").as_deref(), Some("500"), "{run:?}");
    assert_eq!(run.value("machine").as_deref(), Some("i686"), "{run:?}");

    // Also in a user namespace, whose root does not own the process's /proc files.
    let map = test_id_map().unwrap_or_else(|| "0:1500000000:65536".to_owned());
    let numbers: Vec<u64> = map.split(':').map(|n| n.parse().unwrap()).collect();
    let mapping = json!([{"containerID": numbers[0], "hostID": numbers[1], "size": numbers[2]}]);
    oci.write_bundle(&["/bin/sh", "-c", script], |spec| {
        spec["process"]["oomScoreAdj"] = json!(600);
        spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        spec["linux"]["uidMappings"] = mapping.clone();
        spec["linux"]["gidMappings"] = mapping.clone();
    });
    let run = oci.crabcan(&["run", "--bundle", &bundle_arg(&oci), &id]);
    run.expect_success();
    assert_eq!(run.value("oom").as_deref(), Some("600"), "{run:?}");

    // Lowering it needs CAP_SYS_RESOURCE, which this machine may lack.
    oci.write_bundle(&["/bin/sh", "-c", script], |spec| {
        spec["process"]["oomScoreAdj"] = json!(-500)
    });
    let before = HostSnapshot::take();
    let run = oci.crabcan(&["run", "--bundle", &bundle_arg(&oci), &id]);
    if has_cap_sys_resource() {
        run.expect_success();
        assert_eq!(run.value("oom").as_deref(), Some("-500"), "{run:?}");
    } else {
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(
            run.stderr.contains("process.oomScoreAdj") && run.stderr.contains("CAP_SYS_RESOURCE"),
            "{}",
            run.stderr
        );
    }
    oci.assert_gone(&id);
    before.assert_clean_after(&id);

    oci.write_bundle(&["/bin/true"], |spec| {
        spec["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]});
    });
    let run = oci.crabcan(&["run", "--bundle", &bundle_arg(&oci), &id]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("linux.personality.flags") && run.stderr.contains("ADDR_NO_RANDOMIZE"),
        "{}",
        run.stderr
    );
    oci.assert_gone(&id);
}

/// What a container that prints `fdN=TARGET` for descriptors 3 to 20 says, for a
/// `crabcan ... run` started by `sh -c` with `redirections` (`3<FILE`) and `environment`.
fn descriptors_seen(oci: &Oci, id: &str, run_args: &str, redirections: &str, environment: &str) -> Run {
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "for fd in $(seq 3 20); do echo fd$fd=$(readlink /proc/self/fd/$fd); done; echo listen=$LISTEN_FDS/$LISTEN_PID",
        ],
        |_| {},
    );
    let command = format!("{environment} exec \"$0\" --root \"$1\" run --bundle \"$2\" {run_args} {id} {redirections}");
    let mut sh = std::process::Command::new("/bin/sh");
    sh.args(["-c", &command])
        .arg(crabcan_bin())
        .arg(oci.root())
        .arg(oci.bundle())
        .stdin(std::process::Stdio::null());
    oci.spawn(sh).wait()
}

#[test]
fn preserved_descriptors_reach_the_container_and_no_other() {
    let oci = Oci::new("preserve");
    let id = unique_id("preserve");
    let files: Vec<PathBuf> = (1..=3).map(|n| oci.scratch.path().join(format!("file{n}"))).collect();
    for file in &files {
        std::fs::write(file, "x").unwrap();
    }
    let before = HostSnapshot::take();
    let redirections = format!(
        "3<{} 4<{} 5<{}",
        files[0].display(),
        files[1].display(),
        files[2].display()
    );
    let run = descriptors_seen(&oci, &id, "--preserve-fds 2", &redirections, "");
    run.expect_success();
    assert_eq!(run.value("fd3"), Some(files[0].display().to_string()), "{run:?}");
    assert_eq!(run.value("fd4"), Some(files[1].display().to_string()), "{run:?}");
    for fd in 5..=20 {
        assert_eq!(
            run.value(&format!("fd{fd}")).as_deref(),
            Some(""),
            "fd {fd} leaked: {run:?}"
        );
    }
    assert_eq!(run.value("listen").as_deref(), Some("/"));

    // Socket activation: LISTEN_FDS descriptors first, then --preserve-fds more.
    let run = descriptors_seen(
        &oci,
        &id,
        "--preserve-fds 1",
        &redirections,
        "export LISTEN_PID=$$ LISTEN_FDS=1;",
    );
    run.expect_success();
    assert_eq!(run.value("fd3"), Some(files[0].display().to_string()), "{run:?}");
    assert_eq!(run.value("fd4"), Some(files[1].display().to_string()), "{run:?}");
    assert_eq!(run.value("fd5").as_deref(), Some(""), "{run:?}");
    assert_eq!(run.value("listen").as_deref(), Some("1/1"), "{run:?}");

    // A gap among them would be a number crabcan's own descriptors could take.
    let run = descriptors_seen(&oci, &id, "--preserve-fds 2", &format!("3<{}", files[0].display()), "");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("descriptor 4 is not open"), "{}", run.stderr);
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn the_pidfd_socket_receives_a_pidfd_of_the_container_process() {
    use std::os::fd::AsRawFd;
    let oci = Oci::new("pidfd");
    oci.write_bundle(&["/bin/sleep", "60"], |_| {});
    let id = unique_id("pidfd");
    let before = HostSnapshot::take();
    let socket = oci.scratch.path().join("pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let creator = oci.spawn(oci.command(&[
        "create",
        "--bundle",
        &bundle_arg(&oci),
        "--pidfd-socket",
        socket.to_str().unwrap(),
        &id,
    ]));
    let (stream, _) = listener.accept().unwrap();
    let (payload, pidfd) = receive_fd(&stream);
    creator.wait().expect_success();
    assert_eq!(payload, "standard");
    let pid = oci.state(&id)["pid"].as_i64().unwrap();
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).unwrap();
    assert!(fdinfo.contains(&format!("Pid:\t{pid}\n")), "{fdinfo}");
    // SAFETY: pidfd_send_signal with signal 0 only checks the process can be signalled.
    let sent = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), 0, 0, 0) };
    assert_eq!(sent, 0, "{}", std::io::Error::last_os_error());
    oci.crabcan(&["delete", "--force", &id]).expect_success();
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

/// This process's session keyring serial (its user's session keyring when it has none).
fn own_session_keyring() -> i64 {
    // SAFETY: KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3), without creating.
    unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) }
}

#[test]
fn the_container_gets_a_session_keyring_of_its_own_unless_no_new_keyring() {
    let oci = Oci::new("keyring");
    let probe = probe_dir();
    oci.write_bundle(&["/probe/crabcan-probe", "session_keyring"], |spec| {
        spec["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/probe", "type": "bind", "source": probe.path().display().to_string(), "options": ["rbind", "ro"]
        }));
    });
    let id = unique_id("keyring");
    let before = HostSnapshot::take();
    let own = own_session_keyring();
    assert!(own > 0, "{}", std::io::Error::last_os_error());
    let serial = |run: &Run| -> (i64, String) {
        let value = run.value("session_keyring").unwrap_or_default();
        let (serial, description) = value.split_once(';').unwrap_or_else(|| panic!("{run:?}"));
        (serial.parse().unwrap(), description.to_owned())
    };
    let run = oci.crabcan(&["run", "--bundle", &bundle_arg(&oci), &id]);
    run.expect_success();
    let (new, description) = serial(&run);
    assert_ne!(new, own, "the container shares crabcan's session keyring");
    assert!(description.ends_with(&format!(";_ses.{id}")), "{description}");
    let run = oci.crabcan(&["run", "--no-new-keyring", "--bundle", &bundle_arg(&oci), &id]);
    run.expect_success();
    assert_eq!(serial(&run).0, own, "--no-new-keyring keeps crabcan's");
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn no_pivot_is_refused_with_the_reason() {
    let oci = Oci::new("nopivot");
    oci.write_bundle(&["/bin/true"], |_| {});
    let id = unique_id("nopivot");
    let before = HostSnapshot::take();
    let run = oci.crabcan(&["create", "--no-pivot", "--bundle", &bundle_arg(&oci), &id]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("--no-pivot") && run.stderr.contains("pivot_root"),
        "{}",
        run.stderr
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}
