//! containerd drives crabcan as its OCI runtime through containerd-shim-runc-v2, the way
//! Kubernetes nodes run containers: a containerd of the test's own (its root, state, socket
//! and config in a folder of the test, stopped afterwards), an image imported offline from the
//! test rootfs (a docker-archive tar the test writes), and `ctr` with the shim told to use
//! crabcan as its runc binary. The host is checked afterwards: no task, shim, mount or cgroup
//! of the test's is left.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crabcan_tests::*;
use sha2::{Digest, Sha256};

const IMAGE: &str = "localhost/crabcan-test:latest";

/// containerd keeps a few folders of its own under /run/containerd whatever its config says
/// (its FIFOs, its shims' sockets). One containerd at a time, so the last one can remove them
/// when it made them and they are empty.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const GLOBAL_STATE: &str = "/run/containerd";

/// A containerd of the test's own, stopped (with every shim it started) on drop.
struct Containerd {
    _turn: std::sync::MutexGuard<'static, ()>,
    /// Whether [`GLOBAL_STATE`] was there before this containerd (then it stays).
    had_global_state: bool,
    dir: TempDir,
    daemon: Child,
    /// The containerd namespace the test's containers live in (also the first component of
    /// their cgroup paths).
    namespace: String,
}

impl Containerd {
    /// Starts containerd with `config` (TOML, appended to the test's root/state/socket
    /// settings); `None` in the VM, which has no containerd.
    fn start(tag: &str, config: &str) -> Option<Containerd> {
        require_root();
        if !tool_available_or_skip_in_vm("containerd", "the engine that drives crabcan (Debian: containerd)") {
            return None;
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let had_global_state = Path::new(GLOBAL_STATE).exists();
        let dir = TempDir::new(&format!("containerd-{tag}"));
        let path = |name: &str| dir.path().join(name);
        let settings = format!(
            "version = 2\nroot = {:?}\nstate = {:?}\n[grpc]\n  address = {:?}\n[ttrpc]\n  address = {:?}\n{config}",
            path("root"),
            path("state"),
            path("containerd.sock"),
            path("containerd.sock.ttrpc"),
        );
        std::fs::write(path("config.toml"), settings).unwrap();
        let log = std::fs::File::create(path("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(path("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start containerd");
        let containerd = Containerd {
            _turn: turn,
            had_global_state,
            dir,
            daemon,
            namespace: unique_hostname("ctd"),
        };
        let up = wait_until(20, || {
            containerd
                .ctr(&["version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(up, "containerd did not come up: {}", containerd.log());
        containerd.import_image();
        Some(containerd)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("containerd.log")).unwrap_or_default()
    }

    /// `ctr` against this containerd, in the test's namespace.
    fn ctr(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(self.path("containerd.sock"))
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// `ctr ARGS`, its output; ctr's own errors are in stderr.
    fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.ctr(args).output().expect("cannot run ctr"))
    }

    /// The shim options that make it run crabcan, with its state under the test's folder.
    fn runc_options(&self) -> Vec<String> {
        vec![
            "--runc-binary".into(),
            crabcan_bin().display().to_string(),
            "--runc-root".into(),
            self.path("crabcan-root").display().to_string(),
        ]
    }

    /// `ctr run --rm` of `command` in container `id`, through crabcan.
    fn run_task(&self, id: &str, flags: &[&str], command: &[&str]) -> Run {
        let options = self.runc_options();
        let mut args: Vec<&str> = vec!["run", "--rm"];
        args.extend(options.iter().map(String::as_str));
        args.extend(flags);
        args.extend([IMAGE, id]);
        args.extend(command);
        self.run(&args)
    }

    /// A docker-archive of the test rootfs (one layer), imported as [`IMAGE`].
    fn import_image(&self) {
        let layer = self.path("layer.tar");
        let tar = Command::new("tar")
            .arg("-C")
            .arg(rootfs())
            .arg("-cf")
            .arg(&layer)
            .arg(".")
            .status()
            .unwrap();
        assert!(tar.success(), "cannot archive the test rootfs");
        let layer_bytes = std::fs::read(&layer).unwrap();
        let diff_id = format!("sha256:{:x}", Sha256::digest(&layer_bytes));
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        })
        .to_string();
        let config_name = format!("{:x}.json", Sha256::digest(config.as_bytes()));
        let manifest = serde_json::json!([{"Config": config_name, "RepoTags": [IMAGE], "Layers": ["layer.tar"]}]);
        let archive = self.path("image.tar");
        let mut builder = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        let mut add = |name: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, bytes).unwrap();
        };
        add("manifest.json", manifest.to_string().as_bytes());
        add(&config_name, config.as_bytes());
        add("layer.tar", &layer_bytes);
        builder.into_inner().unwrap().flush().unwrap();
        let imported = self.run(&["image", "import", archive.to_str().unwrap()]);
        imported.expect_success();
    }

    /// The cgroup directories of container `id` (ctr's default cgroupsPath: /NAMESPACE/ID).
    fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        cgroup_mounts()
            .into_iter()
            .map(|mount| mount.join(&self.namespace).join(id))
            .filter(|dir| dir.exists())
            .collect()
    }

    /// Nothing of container `id` is left: no task or container in containerd, no crabcan state,
    /// no cgroup (nor the namespace's parent cgroup once it is empty).
    #[track_caller]
    fn assert_gone(&self, id: &str) {
        let tasks = self.run(&["task", "ls", "--quiet"]);
        assert!(!tasks.stdout.lines().any(|line| line.trim() == id), "task {id} is left");
        let containers = self.run(&["container", "ls", "--quiet"]);
        assert!(
            !containers.stdout.lines().any(|line| line.trim() == id),
            "container {id} is left"
        );
        assert!(
            !self.path("crabcan-root").join(id).exists(),
            "crabcan's state of {id} is left"
        );
        let left = self.cgroup_dirs(id);
        assert!(left.is_empty(), "the cgroup of {id} is left: {left:?}");
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks first (the shims remove their containers' mounts), then containerd itself.
        if let Ok(output) = self.ctr(&["task", "ls", "--quiet"]).output() {
            for id in String::from_utf8_lossy(&output.stdout).lines() {
                let _ = self.ctr(&["task", "delete", "--force", id.trim()]).output();
            }
        }
        if let Ok(output) = self.ctr(&["container", "ls", "--quiet"]).output() {
            for id in String::from_utf8_lossy(&output.stdout).lines() {
                let _ = self.ctr(&["container", "delete", id.trim()]).output();
            }
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // A shim outlives containerd by design: end the ones of this containerd.
        let socket = self.path("containerd.sock").display().to_string();
        for pid in pids_whose_cmdline_has(&socket) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        unmount_below(self.dir.path());
        if !self.had_global_state {
            for dir in ["fifo", "s", "runc", ""] {
                let _ = std::fs::remove_dir(Path::new(GLOBAL_STATE).join(dir));
            }
        }
    }
}

/// Host processes whose command line contains `needle`.
fn pids_whose_cmdline_has(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn ctr_runs_tasks_through_the_shim_with_crabcan() {
    let Some(containerd) = Containerd::start("ctr", "") else {
        return;
    };
    let before = HostSnapshot::take();
    let hi = containerd.run_task("hi", &[], &["echo", "hi"]);
    hi.expect_success();
    assert_eq!(hi.stdout.trim(), "hi", "{hi:?}");
    containerd.assert_gone("hi");

    containerd
        .run_task("three", &[], &["sh", "-c", "exit 3"])
        .expect_code(3);
    containerd.assert_gone("three");

    let inside = containerd.run_task(
        "inside",
        &[],
        &[
            "sh",
            "-c",
            "echo pid=$$; grep -E '^(NoNewPrivs|CapEff):' /proc/self/status; hostname",
        ],
    );
    inside.expect_success();
    assert_eq!(inside.value("pid").as_deref(), Some("1"), "{}", inside.stdout);
    assert!(inside.stdout.contains("NoNewPrivs:\t1"), "{}", inside.stdout);
    assert!(
        !inside.stdout.contains("CapEff:\t000001ffffffffff"),
        "containerd's capability set applies: {}",
        inside.stdout
    );
    before.assert_clean_after("inside");
    assert!(
        !containerd.log().contains("level=error"),
        "containerd logged an error: {}",
        containerd.log()
    );
}

#[test]
fn ctr_tasks_are_killed_paused_measured_and_deleted() {
    let Some(containerd) = Containerd::start("task", "") else {
        return;
    };
    let id = "sleeper";
    let options = containerd.runc_options();
    let mut args: Vec<&str> = vec!["run", "--detach"];
    args.extend(options.iter().map(String::as_str));
    args.extend([IMAGE, id, "sleep", "1000"]);
    containerd.run(&args).expect_success();
    let listed = containerd.run(&["task", "ls"]);
    assert!(
        listed
            .stdout
            .lines()
            .any(|line| line.starts_with(id) && line.contains("RUNNING")),
        "{}",
        listed.stdout
    );
    assert!(
        !containerd.cgroup_dirs(id).is_empty(),
        "the task has no cgroup at /NAMESPACE/ID"
    );

    containerd.run(&["task", "pause", id]).expect_success();
    let paused = containerd.run(&["task", "ls"]);
    assert!(
        paused
            .stdout
            .lines()
            .any(|line| line.starts_with(id) && line.contains("PAUSED")),
        "{}",
        paused.stdout
    );
    containerd.run(&["task", "resume", id]).expect_success();

    // `ctr task exec`: the shim calls `crabcan exec --process FILE --detach --pid-file F`.
    let exec = containerd.run(&[
        "task",
        "exec",
        "--exec-id",
        "probe",
        id,
        "sh",
        "-c",
        "echo in=$(hostname); exit 4",
    ]);
    exec.expect_code(4);
    // No hostname in ctr's spec: the container keeps the host's, as with runc.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(exec.value("in").as_deref(), Some(host.trim()), "{exec:?}");

    let metrics = containerd.run(&["task", "metrics", "--format", "json", id]);
    metrics.expect_success();
    assert!(
        metrics.stdout.contains("pids") || metrics.stdout.contains("Pids"),
        "{}",
        metrics.stdout
    );

    containerd
        .run(&["task", "kill", "--signal", "SIGKILL", id])
        .expect_success();
    let stopped = wait_until(10, || {
        containerd
            .run(&["task", "ls"])
            .stdout
            .lines()
            .any(|line| line.starts_with(id) && line.contains("STOPPED"))
    });
    assert!(stopped, "the killed task never stopped");
    containerd.run(&["task", "delete", id]).expect_success();
    containerd.run(&["container", "delete", id]).expect_success();
    containerd.assert_gone(id);
}

/// The node setup the README shows: a CRI runtime handler `crabcan` (io.containerd.runc.v2 with
/// crabcan as BinaryName) as the default. containerd must load it (its CRI plugin refuses a bad
/// runtime table). A task then runs through the shim with the handler's binary, a wrapper that
/// notes each call: proof the shim ran crabcan, not a runc of the host. (A pod through the CRI
/// API itself needs a CRI client, which Debian does not package.)
#[test]
fn a_runtime_class_handler_for_crabcan_loads_and_runs_a_task() {
    let binary = crabcan_bin().display().to_string();
    let handler = format!(
        "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"crabcan\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crabcan]\n  runtime_type = \"io.containerd.runc.v2\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crabcan.options]\n  BinaryName = {binary:?}\n"
    );
    let Some(containerd) = Containerd::start("cri", &handler) else {
        return;
    };
    let plugins = containerd.run(&["plugins", "ls"]);
    plugins.expect_success();
    let cri = plugins
        .stdout
        .lines()
        .find(|line| line.contains("io.containerd.grpc.v1") && line.contains(" cri "))
        .unwrap_or_else(|| panic!("no CRI plugin listed: {}", plugins.stdout));
    assert!(
        cri.trim_end().ends_with("ok"),
        "the CRI plugin did not load: {cri}\n{}",
        containerd.log()
    );

    let calls = containerd.path("calls");
    let wrapper = containerd.path("crabcan-wrapper");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\necho \"$@\" >> {calls:?}\nexec {binary:?} \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let root = containerd.path("crabcan-root");
    let run = containerd.run(&[
        "run",
        "--rm",
        "--runc-binary",
        wrapper.to_str().unwrap(),
        "--runc-root",
        root.to_str().unwrap(),
        IMAGE,
        "handler",
        "sh",
        "-c",
        "echo through-the-handler",
    ]);
    run.expect_success();
    assert_eq!(run.stdout.trim(), "through-the-handler", "{run:?}");
    let calls = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        calls.contains(" create ") && calls.contains(" start "),
        "the shim did not call crabcan: {calls}"
    );
    containerd.assert_gone("handler");
}
