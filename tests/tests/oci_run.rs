//! Containers run from OCI bundles through runc's command line: `run`, and the
//! create → created → start → running → kill → stopped → delete cycle, with the container's
//! process outliving the `crabcan create` that made it. The bundle is what `crabcan spec`
//! writes, pointed at the test rootfs (read-only, as runc's default asks) with a command of the
//! test's. Each test has its own `--root`; the host is checked afterwards.

use std::path::Path;
use std::process::{Command, Stdio};

use crabcan_tests::oci::*;
use crabcan_tests::*;
use serde_json::Value;

#[test]
fn run_gives_the_commands_status_and_leaves_nothing() {
    let oci = Oci::new("run");
    oci.write_bundle(&["/bin/sh", "-c", "echo hello from $(hostname); exit 3"], |_| {});
    let id = unique_id("run");
    let before = HostSnapshot::take();
    let run = oci.crabcan(&["run", "--bundle", oci.bundle().to_str().unwrap(), &id]);
    run.expect_code(3);
    assert_eq!(run.stdout.trim(), "hello from crabcan", "{run:?}");
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn create_start_kill_delete_and_the_state_in_between() {
    let oci = Oci::new("cycle");
    oci.write_bundle(&["/bin/sleep", "60"], |_| {});
    let id = unique_id("cycle");
    let before = HostSnapshot::take();
    let pid_file = oci.scratch.path().join("pid");
    let created = oci.crabcan(&[
        "create",
        "--bundle",
        oci.bundle().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    created.expect_success();
    // crabcan has exited; the container's process is held before execve.
    let state = oci.state(&id);
    assert_eq!(state["status"], "created", "{state}");
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), pid.to_string());
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let exists = oci.crabcan(&["create", "--bundle", oci.bundle().to_str().unwrap(), &id]);
    assert_eq!(exists.code, Some(1));
    assert!(exists.stderr.contains("already exists"), "{}", exists.stderr);

    oci.crabcan(&["start", &id]).expect_success();
    assert_eq!(oci.state(&id)["status"], "running");
    let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert!(
        wait_until(10, || comm().trim() == "sleep"),
        "the command never ran: {}",
        comm()
    );
    let refused = oci.crabcan(&["delete", &id]);
    assert_eq!(refused.code, Some(1), "a running container was deleted without --force");

    oci.crabcan(&["kill", &id, "KILL"]).expect_success();
    assert!(
        wait_until(10, || oci.state(&id)["status"] == "stopped"),
        "never stopped"
    );
    assert_eq!(oci.state(&id)["pid"], 0);
    oci.crabcan(&["delete", &id]).expect_success();
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn delete_force_kills_a_running_container() {
    let oci = Oci::new("force");
    oci.write_bundle(&["/bin/sleep", "60"], |_| {});
    let id = unique_id("force");
    let before = HostSnapshot::take();
    oci.crabcan(&["run", "--detach", "--bundle", oci.bundle().to_str().unwrap(), &id])
        .expect_success();
    let pid = oci.state(&id)["pid"].as_i64().unwrap();
    oci.crabcan(&["delete", "--force", &id]).expect_success();
    assert!(
        wait_until(10, || !Path::new(&format!("/proc/{pid}")).exists()),
        "the container lives on"
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn the_bundles_process_settings_are_what_the_container_gets() {
    let oci = Oci::new("inside");
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status; echo uid=$(id -u); \
             echo host=$(hostname); echo keys=$(wc -c < /proc/keys); \
             (echo x > /root/x) 2>/dev/null && echo root=writable || echo root=read-only; \
             echo env=$FROM_BUNDLE; echo ping=$(cat /proc/sys/net/ipv4/ping_group_range | tr '\\t' ' '); \
             echo devnodev=$(awk '$2 == \"/dev\" {print $4}' /proc/mounts | tr ',' '\\n' | grep -c '^nodev$')",
        ],
        |spec| {
            spec["hostname"] = Value::from("bundled");
            spec["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ping_group_range": "0 1000"});
            spec["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(Value::from("FROM_BUNDLE=yes"));
        },
    );
    let id = unique_id("inside");
    let run = oci.crabcan(&["run", "--bundle", oci.bundle().to_str().unwrap(), &id]);
    run.expect_success();
    assert_eq!(run.value("uid").as_deref(), Some("0"), "{run:?}");
    assert_eq!(run.value("host").as_deref(), Some("bundled"));
    assert_eq!(run.value("keys").as_deref(), Some("0"), "/proc/keys is not masked");
    assert_eq!(
        run.value("root").as_deref(),
        Some("read-only"),
        "root.readonly is not applied"
    );
    assert_eq!(run.value("env").as_deref(), Some("yes"));
    assert_eq!(
        run.value("ping").as_deref(),
        Some("0 1000"),
        "linux.sysctl is not applied"
    );
    assert_eq!(
        run.value("devnodev").as_deref(),
        Some("1"),
        "/dev must be nodev: {}",
        run.stdout
    );
    // runc's default spec keeps AUDIT_WRITE, KILL and NET_BIND_SERVICE (bits 29, 5, 10).
    let expected = (1u64 << 29) | (1 << 5) | (1 << 10);
    assert_eq!(cap_mask(&run.stdout, "CapBnd"), expected, "{}", run.stdout);
    assert_eq!(cap_mask(&run.stdout, "CapEff"), expected, "{}", run.stdout);
    assert!(run.stdout.contains("NoNewPrivs:\t1"), "{}", run.stdout);
    oci.assert_gone(&id);
}

/// The container's cgroup view comes from what the kernel says of the process's cgroups, read
/// through the host's procfs: not from the bundle's `/proc`, which may be missing, or a
/// bundle's own tree claiming other cgroups (a view of the host's hierarchies, if believed).
#[test]
fn the_cgroup_view_does_not_trust_the_bundles_proc() {
    let oci = Oci::new("fakeproc");
    let list = ["/bin/sh", "-c", "ls /sys/fs/cgroup | tr '\\n' ' '"];
    oci.write_bundle(&list, |_| {});
    let run_once = |tag: &str| {
        let id = unique_id(tag);
        let run = oci.crabcan(&["run", "--bundle", oci.bundle().to_str().unwrap(), &id]);
        run.expect_success();
        oci.assert_gone(&id);
        run.stdout.trim().to_owned()
    };
    let normal = run_once("fakeproc");
    assert!(!normal.is_empty(), "no cgroup view at all");

    // No /proc mount: the rootfs's empty /proc stays after pivot_root.
    let without_proc = |spec: &mut Value| {
        let mounts = spec["mounts"].as_array_mut().unwrap();
        mounts.retain(|mount| mount["destination"] != "/proc");
    };
    oci.write_bundle(&list, without_proc);
    assert_eq!(run_once("noproc"), normal, "without a /proc mount");

    // The same in a rootfs whose /proc/self/cgroup claims every hierarchy moved.
    let fake_root = oci.scratch.path().join("rootfs");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(rootfs())
        .arg(&fake_root)
        .status()
        .unwrap();
    assert!(copied.success());
    let hierarchies = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let claimed: String = hierarchies
        .lines()
        .filter_map(|line| line.rsplit_once(':'))
        .map(|(head, _)| format!("{head}:/claimed\n"))
        .collect();
    std::fs::create_dir_all(fake_root.join("proc/self")).unwrap();
    std::fs::write(fake_root.join("proc/self/cgroup"), claimed).unwrap();
    oci.write_bundle(&list, |spec| {
        without_proc(spec);
        spec["root"]["path"] = Value::from(fake_root.display().to_string());
    });
    assert_eq!(run_once("fakeproc2"), normal, "with a made-up /proc/self/cgroup");
}

#[test]
fn an_unsupported_field_is_named_and_nothing_is_left() {
    let oci = Oci::new("unsupported");
    oci.write_bundle(&["/bin/true"], |spec| {
        spec["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "0"});
    });
    let id = unique_id("unsupported");
    let before = HostSnapshot::take();
    let run = oci.crabcan(&["create", "--bundle", oci.bundle().to_str().unwrap(), &id]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("linux.sysctl") && run.stderr.contains("error"),
        "{}",
        run.stderr
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
    let missing = oci.crabcan(&["create", "--bundle", "/nonexistent/bundle", &unique_id("nobundle")]);
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("/nonexistent/bundle"), "{}", missing.stderr);
}

/// The runtime spec's rules runtime-tools' validation checks: a property the spec does not
/// define is ignored (with a warning), never an error, and so are filesystem options on a bind;
/// a kernel filesystem's mount shows the bundle's `source` in the mount table (`shm` for
/// /dev/shm), as the spec's mounts are matched.
#[test]
fn unknown_properties_and_a_binds_filesystem_options_are_ignored_and_a_mounts_source_is_the_bundles() {
    let oci = Oci::new("extensible");
    oci.write_bundle(&["/bin/cat", "/proc/self/mountinfo"], |spec| {
        spec["org.example.unknown"] = serde_json::json!({"anything": [1, 2]});
        spec["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"destination": "/mnt", "type": "tmpfs", "source": "scratch-space"}));
        // runtime-tools gives every mount the same options, binds too: mount(2) ignores them there.
        spec["mounts"].as_array_mut().unwrap().push(
            serde_json::json!({"destination": "/opt", "source": "/etc", "options": ["bind", "ro", "mode=755", "size=1k"]}),
        );
    });
    let id = unique_id("extensible");
    let before = HostSnapshot::take();
    let run = oci.crabcan(&["run", "--bundle", oci.bundle().to_str().unwrap(), &id]);
    run.expect_success();
    assert!(
        run.stderr.contains("org.example.unknown"),
        "the warning names it: {}",
        run.stderr
    );
    let source_of = |mountpoint: &str| {
        run.stdout.lines().find_map(|line| {
            let (before_dash, after_dash) = line.split_once(" - ")?;
            (before_dash.split(' ').nth(4) == Some(mountpoint))
                .then(|| after_dash.split(' ').nth(1).map(str::to_owned))?
        })
    };
    assert_eq!(source_of("/mnt").as_deref(), Some("scratch-space"), "{}", run.stdout);
    assert_eq!(
        source_of("/dev/shm").as_deref(),
        Some("shm"),
        "crabcan spec's /dev/shm: {}",
        run.stdout
    );
    assert!(
        run.stdout.lines().any(|l| l.contains(" /opt ro,")),
        "the bind, read-only: {}",
        run.stdout
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn pause_freezes_and_resume_thaws_and_ps_lists_the_processes() {
    let oci = Oci::new("pause");
    oci.write_bundle(&["/bin/sh", "-c", "while :; do :; done"], |_| {});
    let id = unique_id("pause");
    let before = HostSnapshot::take();
    oci.crabcan(&["run", "--detach", "--bundle", oci.bundle().to_str().unwrap(), &id])
        .expect_success();
    let pid = oci.state(&id)["pid"].as_i64().unwrap();
    let ps = oci.crabcan(&["ps", "--format", "json", &id]);
    ps.expect_success();
    assert!(ps.stdout.contains(&pid.to_string()), "{}", ps.stdout);
    let cpu_time = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // After the command name: state, ppid, ..., utime (12th), stime (13th) of proc(5)'s
        // fields 3 and on.
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map(|(_, rest)| rest.split(' ').collect())
            .unwrap_or_default();
        let field = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        field(11) + field(12)
    };
    oci.crabcan(&["pause", &id]).expect_success();
    assert_eq!(oci.state(&id)["status"], "paused");
    let frozen_at = cpu_time();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(cpu_time(), frozen_at, "a paused container kept running");
    oci.crabcan(&["resume", &id]).expect_success();
    assert_eq!(oci.state(&id)["status"], "running");
    assert!(
        wait_until(5, || cpu_time() > frozen_at),
        "a resumed container stays frozen"
    );
    oci.crabcan(&["delete", "--force", &id]).expect_success();
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

/// `process.terminal` with `--console-socket`: the pty master goes to the socket (the engine's
/// side, here the test's), and the container's stdio is its terminal.
#[test]
fn a_terminal_is_handed_to_the_console_socket() {
    let oci = Oci::new("console");
    oci.write_bundle(
        &["/bin/sh", "-c", "tty; echo size=$(stty size); echo from-the-pty"],
        |spec| {
            spec["process"]["terminal"] = Value::Bool(true);
            spec["process"]["consoleSize"] = serde_json::json!({"height": 33, "width": 101});
        },
    );
    let id = unique_id("console");
    let before = HostSnapshot::take();
    let socket = oci.scratch.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let bundle = oci.bundle();
    let socket_arg = socket.display().to_string();
    let creator = {
        let (root, bundle, id) = (oci.root(), bundle.clone(), id.clone());
        std::thread::spawn(move || {
            Command::new(crabcan_bin())
                .arg("--root")
                .arg(root)
                .args([
                    "create",
                    "--bundle",
                    bundle.to_str().unwrap(),
                    "--console-socket",
                    &socket_arg,
                    &id,
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
        })
    };
    let (stream, _) = listener.accept().unwrap();
    let (name, master) = receive_fd(&stream);
    assert!(creator.join().unwrap().success(), "create failed");
    assert!(name.starts_with("/dev/pts/"), "{name}");
    oci.crabcan(&["start", &id]).expect_success();
    let output = read_until_hangup(&mut std::fs::File::from(master));
    assert!(
        output.contains("/dev/pts/0") && output.contains("from-the-pty"),
        "{output:?}"
    );
    assert!(output.contains("size=33 101"), "process.consoleSize: {output:?}");
    assert!(wait_until(10, || oci.state(&id)["status"] == "stopped"));
    oci.crabcan(&["delete", &id]).expect_success();
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

/// The value of `file` in the container's cgroup directory of the hierarchy holding it.
fn cgroup_file(id: &str, file: &str) -> Option<String> {
    cgroup_mounts()
        .into_iter()
        .map(|mount| mount.join("crabcan").join(id).join(file))
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_owned())
}

#[test]
fn events_report_the_cgroups_numbers_and_update_changes_its_limits() {
    let oci = Oci::new("update");
    oci.write_bundle(&["/bin/sleep", "1000"], |spec| {
        spec["linux"]["resources"] = serde_json::json!({"pids": {"limit": 30}, "memory": {"limit": 134217728}});
    });
    let id = unique_id("update");
    let before = HostSnapshot::take();
    oci.crabcan(&["run", "--detach", "--bundle", oci.bundle().to_str().unwrap(), &id])
        .expect_success();
    assert_eq!(cgroup_file(&id, "pids.max").as_deref(), Some("30"));

    let stats = oci.crabcan(&["events", "--stats", &id]);
    stats.expect_success();
    let event: Value = serde_json::from_str(stats.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", stats.stdout));
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], id.as_str());
    assert!(event["data"]["pids"]["current"].as_u64() >= Some(1), "{event}");
    assert!(event["data"]["memory"]["usage"]["usage"].as_u64() > Some(0), "{event}");

    oci.crabcan(&["update", "--pids-limit", "7", &id]).expect_success();
    assert_eq!(cgroup_file(&id, "pids.max").as_deref(), Some("7"));
    let resources = oci.scratch.path().join("resources.json");
    std::fs::write(&resources, r#"{"memory": {"limit": 268435456}}"#).unwrap();
    oci.crabcan(&["update", "--resources", resources.to_str().unwrap(), &id])
        .expect_success();
    let memory = cgroup_file(&id, "memory.limit_in_bytes").or_else(|| cgroup_file(&id, "memory.max"));
    assert_eq!(memory.as_deref(), Some("268435456"));
    assert_eq!(
        cgroup_file(&id, "pids.max").as_deref(),
        Some("7"),
        "what update was not given stays"
    );

    std::fs::write(&resources, r#"{"memory": {"useHierarchy": true}}"#).unwrap();
    let refused = oci.crabcan(&["update", "--resources", resources.to_str().unwrap(), &id]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("linux.resources.memory.useHierarchy"),
        "{}",
        refused.stderr
    );
    let refused = oci.crabcan(&["update", "--memory", "1k", &id]);
    refused.expect_code(1);
    assert_eq!(
        memory,
        cgroup_file(&id, "memory.limit_in_bytes").or_else(|| cgroup_file(&id, "memory.max"))
    );

    oci.crabcan(&["delete", "--force", &id]).expect_success();
    let gone = oci.crabcan(&["events", "--stats", &id]);
    gone.expect_code(1);
    assert!(gone.stderr.contains("does not exist"), "{}", gone.stderr);
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn an_events_stream_ends_when_the_container_stops() {
    let oci = Oci::new("events");
    oci.write_bundle(&["/bin/sleep", "1"], |_| {});
    let id = unique_id("events");
    let before = HostSnapshot::take();
    oci.crabcan(&["run", "--detach", "--bundle", oci.bundle().to_str().unwrap(), &id])
        .expect_success();
    let stream = oci.crabcan(&["events", "--interval", "200ms", &id]);
    stream.expect_success();
    let events: Vec<Value> = stream
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(events.len() >= 2, "a second's stream at 200 ms: {}", stream.stdout);
    assert!(events.iter().all(|e| e["type"] == "stats" && e["id"] == id.as_str()));
    oci.crabcan(&["delete", &id]).expect_success();
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn twenty_containers_created_at_once_each_get_their_own_state_and_cgroup() {
    let oci = Oci::new("twenty");
    oci.write_bundle(&["/bin/sh", "-c", "exit 0"], |_| {});
    let before = HostSnapshot::take();
    let ids: Vec<String> = (0..20).map(|n| unique_id(&format!("par{n}"))).collect();
    let creates: Vec<std::process::Child> = ids
        .iter()
        .map(|id| {
            Command::new(crabcan_bin())
                .arg("--root")
                .arg(oci.root())
                .args(["create", "--bundle", oci.bundle().to_str().unwrap(), id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for (mut create, id) in creates.into_iter().zip(&ids) {
        assert!(create.wait().unwrap().success(), "create {id} failed");
    }
    let list = oci.crabcan(&["list", "--format", "json"]);
    list.expect_success();
    let listed: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(listed.len(), 20, "{}", list.stdout);
    assert!(listed.iter().all(|c| c["status"] == "created"), "{}", list.stdout);
    let pids: std::collections::BTreeSet<i64> = listed.iter().filter_map(|c| c["pid"].as_i64()).collect();
    assert_eq!(pids.len(), 20, "each has a process of its own");
    for id in &ids {
        assert!(cgroup_file(id, "cgroup.procs").is_some(), "{id} has no cgroup");
    }
    // A created container can be killed before it ever starts.
    oci.crabcan(&["kill", &ids[0], "KILL"]).expect_success();
    assert!(wait_until(10, || oci.state(&ids[0])["status"] == "stopped"));
    for id in &ids[1..] {
        oci.crabcan(&["start", id]).expect_success();
    }
    for id in &ids {
        assert!(
            wait_until(10, || oci.state(id)["status"] == "stopped"),
            "{id} never stopped"
        );
        oci.crabcan(&["delete", id]).expect_success();
        oci.assert_gone(id);
        before.assert_clean_after(id);
    }
}
