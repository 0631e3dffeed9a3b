//! crabcan run by ordinary users (issue 14). Each test makes users of its own (`useradd`; one
//! without subordinate ids, one with a range in /etc/subuid and /etc/subgid), which a guard
//! removes afterwards even when the test fails, and runs crabcan as them from a home they own
//! (a copy of the binary and of the test rootfs): isolation seen from inside, exit codes,
//! `--add`, the whole subordinate range through newuidmap, the errors of what an ordinary user
//! cannot have (with their fixes), the OCI mode under $XDG_RUNTIME_DIR, the escape probes, and
//! nothing left on the host. On cgroup v2 (the test VM) a subtree delegated to the user takes
//! the container's cgroup and enforces its memory limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crabcan_tests::users::{RunAs, TestUser};
use crabcan_tests::*;
use serde_json::Value;

/// A container `user` runs, in its own rootfs.
fn container(user: &TestUser, tag: &str) -> Crabcan {
    Crabcan::as_user(tag, user.rootfs(), user.run_as())
}

/// Nothing of `user`'s is left on the host: no process, nothing in its XDG_RUNTIME_DIR (but
/// the OCI mode's empty state root).
#[track_caller]
fn assert_user_left_nothing(user: &TestUser) {
    assert!(
        wait_until(10, || user.processes().is_empty()),
        "processes of {} survived: {:?}",
        user.name,
        user.processes()
    );
    let mut left = Vec::new();
    let mut dirs = vec![user.runtime_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                left.push(path);
            }
        }
    }
    assert!(left.is_empty(), "{} left state behind: {left:?}", user.name);
}

/// The `key=value` lines of a run, values with runs of blanks made one space.
fn values(run: &Run) -> std::collections::BTreeMap<String, String> {
    run.stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect()
}

const INSIDE: &str = "echo pid=$$; echo host=$(hostname); echo uid_map=$(cat /proc/self/uid_map); \
     echo gid_map=$(cat /proc/self/gid_map); echo setgroups=$(cat /proc/self/setgroups); \
     echo id=$(id -u):$(id -g); echo root_owner=$(stat -c %u:%g /); \
     for k in CapEff Seccomp NoNewPrivs; do echo $k=$(grep \"^$k:\" /proc/self/status | cut -f2); done; \
     echo processes=$(ls -d /proc/[0-9]* | wc -l); \
     touch /root/written && echo write=yes";

#[test]
fn a_users_container_is_isolated_like_roots() {
    let user = TestUser::new("iso");
    let c = container(&user, "rl-iso");
    let run = c.sh(INSIDE);
    run.expect_success();
    let got = values(&run);
    let get = |key: &str| got.get(key).map(String::as_str);
    assert_eq!(get("pid"), Some("1"), "{}", run.stdout);
    assert_eq!(get("host"), Some(c.hostname.as_str()));
    assert_eq!(
        get("uid_map"),
        Some(format!("0 {} 1", user.uid).as_str()),
        "its own uid is root"
    );
    assert_eq!(get("gid_map"), Some(format!("0 {} 1", user.gid).as_str()));
    assert_eq!(
        get("setgroups"),
        Some("deny"),
        "the kernel's rule for a user's own gid map"
    );
    assert_eq!(get("id"), Some("0:0"));
    assert_eq!(
        get("root_owner"),
        Some("0:0"),
        "the user's rootfs is the container root's"
    );
    assert_eq!(get("write"), Some("yes"));
    assert_eq!(get("Seccomp"), Some("2"));
    assert_eq!(get("NoNewPrivs"), Some("1"));
    assert!(
        get("processes").is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n <= 4)),
        "{}",
        run.stdout
    );
    // The same capabilities as root's container: Docker's less MKNOD.
    let as_root = Crabcan::new("rl-iso-root").sh("grep ^CapEff: /proc/self/status | cut -f2");
    as_root.expect_success();
    assert_eq!(get("CapEff"), Some(as_root.stdout.trim()));
    assert!(
        std::fs::metadata(user.rootfs().join("root/written")).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == user.uid
        }),
        "what the container's root writes is the user's"
    );
    assert!(
        run.stderr.is_empty(),
        "no warning for default limits without a cgroup: {}",
        run.stderr
    );
    assert_user_left_nothing(&user);
}

#[test]
fn exit_codes_are_the_commands() {
    let user = TestUser::new("exit");
    container(&user, "rl-exit7").sh("exit 7").expect_code(7);
    container(&user, "rl-kill")
        .args(["--init"])
        .sh("kill -9 $$")
        .expect_code(137);
    let missing = container(&user, "rl-missing").run(&["/no/such/program"]);
    missing.expect_code(127);
    assert!(
        missing.stderr.contains("was not found in the container"),
        "{}",
        missing.stderr
    );
    assert_user_left_nothing(&user);
}

#[test]
fn add_binds_what_the_user_can_read() {
    let user = TestUser::new("add");
    let data = user.dir("data");
    std::fs::write(data.join("in"), "hello\n").unwrap();
    std::os::unix::fs::chown(data.join("in"), Some(user.uid), Some(user.gid)).unwrap();
    let run = container(&user, "rl-add")
        .args(["--add", &format!("{}:/data", data.display())])
        .args(["--add", "/etc/hostname:/host-hostname:ro"])
        .sh("cat /data/in; echo out > /data/out && echo wrote=yes; \
             cat /host-hostname >/dev/null && echo read_ro=yes; \
             echo x > /host-hostname 2>/dev/null && echo wrote_ro=yes || echo wrote_ro=no");
    run.expect_success();
    assert!(run.stdout.starts_with("hello\n"), "{}", run.stdout);
    assert_eq!(run.value("wrote").as_deref(), Some("yes"));
    assert_eq!(run.value("read_ro").as_deref(), Some("yes"));
    assert_eq!(run.value("wrote_ro").as_deref(), Some("no"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(data.join("out")).unwrap().uid(), user.uid);

    // A directory the user cannot enter cannot be bound for it.
    let secret = TempDir::new("rl-secret");
    std::fs::set_permissions(secret.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let refused = container(&user, "rl-add-secret")
        .args(["--add", &format!("{}/inner:/secret", secret.path().display())])
        .run(&["/bin/true"]);
    refused.expect_code(125);
    assert!(refused.stderr.contains("error"), "{}", refused.stderr);
    assert_user_left_nothing(&user);
}

#[test]
fn a_subordinate_range_maps_through_newuidmap() {
    if !newuidmap_available() {
        return;
    }
    let user = TestUser::with_subids("range");
    let (start, count) = user.subids.expect("a range");
    let run = container(&user, "rl-range").args(["--uid", "1000"]).sh(
        "echo id=$(id -u):$(id -g); echo uid_map=$(cat /proc/self/uid_map); \
             echo gid_map=$(cat /proc/self/gid_map); echo setgroups=$(cat /proc/self/setgroups); \
             echo CapEff=$(grep ^CapEff: /proc/self/status | cut -f2); touch /tmp/x && echo tmp=yes",
    );
    run.expect_success();
    let got = values(&run);
    let get = |key: &str| got.get(key).map(String::as_str);
    assert_eq!(get("id"), Some("1000:1000"), "{}", run.stdout);
    assert_eq!(
        get("uid_map"),
        Some(format!("0 {} 1 1 {start} {count}", user.uid).as_str())
    );
    assert_eq!(
        get("gid_map"),
        Some(format!("0 {} 1 1 {start} {count}", user.gid).as_str())
    );
    assert_eq!(
        get("setgroups"),
        Some("allow"),
        "newgidmap allows setgroups with a range"
    );
    assert_eq!(get("CapEff"), Some("0000000000000000"));
    assert_eq!(get("tmp"), Some("yes"));

    // A file of the container's uid 1000 is host uid start + 999 (written to a bind of the
    // user's that container id 1000 may write).
    let shared = user.dir("shared");
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    container(&user, "rl-range-file")
        .args(["--uid", "1000", "--add", &format!("{}:/shared", shared.display())])
        .sh("touch /shared/f")
        .expect_success();
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(shared.join("f")).unwrap().uid();
    assert_eq!(u64::from(owner), start + 999);
    assert_user_left_nothing(&user);
}

fn newuidmap_available() -> bool {
    let found = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"]
        .iter()
        .all(|tool| Path::new(tool).is_file());
    if !found && std::env::var_os("CRABCAN_IN_VM").is_some() {
        println!("crabcan-skip: the VM has no newuidmap/newgidmap (Debian's uidmap); this test runs on the host");
        return false;
    }
    assert!(found, "this test needs newuidmap and newgidmap: apt-get install uidmap");
    true
}

#[test]
fn what_a_user_cannot_have_is_one_line_with_the_fix() {
    let user = TestUser::new("errors");
    let uid = container(&user, "rl-e-uid").args(["--uid", "1000"]).run(&["/bin/true"]);
    uid.expect_code(125);
    assert_eq!(uid.stderr.lines().count(), 1, "{}", uid.stderr);
    assert!(
        uid.stderr.contains(&format!(
            "the container's uid 1000 needs subordinate uids, and /etc/subuid gives user {} none",
            user.name
        )) && uid.stderr.contains("usermod --add-subuids"),
        "{}",
        uid.stderr
    );

    // Limits asked for need a cgroup v2 subtree of the user's, which the test's cgroup is not.
    let memory = container(&user, "rl-e-mem")
        .args(["--memory", "64M"])
        .run(&["/bin/true"]);
    memory.expect_code(125);
    assert_eq!(memory.stderr.lines().count(), 1, "{}", memory.stderr);
    assert!(
        memory.stderr.contains("cgroup limits were asked for (memory limit)")
            && memory.stderr.contains("systemd-run --user --scope"),
        "{}",
        memory.stderr
    );
    assert!(container_cgroup_dirs("rl-e-mem").is_empty());
    assert_user_left_nothing(&user);
}

#[test]
fn a_range_without_newuidmap_is_named() {
    let user = TestUser::with_subids("nohelper");
    let empty = user.dir("empty-path");
    let mut command = container(&user, "rl-nohelper")
        .args(["--uid", "1000"])
        .command(&["/bin/true"]);
    command.env("PATH", &empty);
    let run = Run::from_output(command.output().expect("start crabcan"));
    run.expect_code(125);
    assert!(
        run.stderr
            .contains("needs your subordinate uids mapped by newuidmap, and there is no newuidmap in PATH")
            && run.stderr.contains("apt-get install uidmap"),
        "{}",
        run.stderr
    );
    // Root of the container alone needs no helper: it runs, with a warning naming the fix.
    let mut command = container(&user, "rl-nohelper-root").command(&["/bin/true"]);
    command.env("PATH", &empty);
    let run = Run::from_output(command.output().expect("start crabcan"));
    run.expect_success();
    assert!(run.stderr.contains("there is no newuidmap in PATH"), "{}", run.stderr);
    assert_user_left_nothing(&user);
}

/// Runs `user`'s crabcan with `args` as `user` inside a user namespace of the test's own (its
/// uids and gids 0..1000 are host ids 200000000.., `user`'s own ids are themselves), whose
/// maps the test writes and whose `user.max_user_namespaces` the namespace's root (the forked
/// child, before it becomes `user`) sets to 0. Returns what crabcan printed and its status.
fn without_user_namespaces(user: &TestUser, args: &[&str]) -> Run {
    use std::ffi::CString;
    let out = user.home().join("userns-out");
    let c = |text: &str| CString::new(text).unwrap();
    let crabcan = c(user.crabcan().to_str().unwrap());
    let argv: Vec<CString> = std::iter::once(crabcan.clone())
        .chain(args.iter().map(|a| c(a)))
        .collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let env = [c("PATH=/usr/bin:/bin"), c(&format!("HOME={}", user.home().display()))];
    let env_ptrs = [env[0].as_ptr(), env[1].as_ptr(), std::ptr::null()];
    let (out_c, home_c, sysctl) = (
        c(out.to_str().unwrap()),
        c(user.home().to_str().unwrap()),
        c("/proc/sys/user/max_user_namespaces"),
    );
    let (uid, gid) = (user.uid, user.gid);
    let mut go = [0; 2];
    // SAFETY: a pipe of two fresh descriptors.
    assert_eq!(unsafe { libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child makes only async-signal-safe syscalls on data prepared before the fork
    // (this test process has other threads), then execs or exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: see above; the child ends in execve or _exit.
        unsafe {
            let fd = libc::open(out_c.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                libc::_exit(90);
            }
            let mut byte = 0u8;
            libc::close(go[1]);
            if libc::read(go[0], (&mut byte as *mut u8).cast(), 1) != 1 {
                libc::_exit(91);
            }
            // Still holding the namespace's capabilities (no exec yet): its own sysctl.
            let limit = libc::open(sysctl.as_ptr(), libc::O_WRONLY);
            if limit < 0 || libc::write(limit, b"0".as_ptr().cast(), 1) != 1 {
                libc::_exit(92);
            }
            libc::close(limit);
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(gid, gid, gid) != 0
                || libc::setresuid(uid, uid, uid) != 0
                || libc::chdir(home_c.as_ptr()) != 0
            {
                libc::_exit(93);
            }
            libc::execve(crabcan.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
            libc::_exit(94);
        }
    }
    // SAFETY: the parent's end of the pipe it does not use.
    unsafe { libc::close(go[0]) };
    // The child's unshare is done once its uid_map is the new namespace's (empty) one.
    let uid_map = format!("/proc/{pid}/uid_map");
    assert!(
        wait_until(10, || std::fs::read_to_string(&uid_map)
            .is_ok_and(|m| m.trim().is_empty())),
        "the child never made its user namespace"
    );
    let maps = |own: u32| format!("0 200000000 1000\n{own} {own} 1\n");
    std::fs::write(&uid_map, maps(uid)).expect("write the test namespace's uid_map");
    std::fs::write(format!("/proc/{pid}/gid_map"), maps(gid)).expect("write its gid_map");
    // SAFETY: one byte to the child, then our end closed.
    unsafe {
        libc::write(go[1], b"g".as_ptr().cast(), 1);
        libc::close(go[1]);
    }
    let mut status = 0;
    // SAFETY: waiting for the child this test forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stdout: String::new(),
        stderr: std::fs::read_to_string(&out).unwrap_or_default(),
    }
}

#[test]
fn user_namespaces_disabled_by_sysctl_are_named() {
    let user = TestUser::new("nouserns");
    let rootfs = user.rootfs();
    let run = without_user_namespaces(
        &user,
        &["--mount", rootfs.to_str().unwrap(), "--no-tty", "--", "/bin/true"],
    );
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("ordinary users may not create user namespaces here (user.max_user_namespaces is 0)")
            && run.stderr.contains("sysctl -w user.max_user_namespaces="),
        "{}",
        run.stderr
    );
    assert_user_left_nothing(&user);
}

#[test]
fn escapes_fail_rootless_too() {
    let user = TestUser::new("escapes");
    let target = Target::user(&user);
    escapes::cgroup_release_agent_cannot_be_reached(&target);
    escapes::inherited_directory_descriptors_do_not_leak(&target);
    escapes::crabcan_binary_cannot_be_overwritten_through_proc(&target);
    escapes::keyring_and_file_handles_are_refused(&target);
    escapes::host_block_devices_cannot_be_created(&target);
    assert_user_left_nothing(&user);
}

#[test]
fn tiocsti_fails_rootless_too() {
    let user = TestUser::new("tiocsti");
    escapes::tiocsti_cannot_inject_into_the_callers_terminal(&Target::user(&user));
    assert_user_left_nothing(&user);
}

/// The OCI mode as `user`: crabcan's own default `--root`, $XDG_RUNTIME_DIR/crabcan.
struct UserOci<'a> {
    user: &'a TestUser,
    run_as: RunAs,
    bundle: PathBuf,
}

impl<'a> UserOci<'a> {
    /// `crabcan spec --rootless` by the user, pointed at its rootfs and running `args`.
    fn new(user: &'a TestUser, args: &[&str]) -> UserOci<'a> {
        UserOci::with_edit(user, user.run_as(), args, |_| {})
    }

    /// [`UserOci::new`], run as `run_as`, with `edit` on the config.
    fn with_edit(user: &'a TestUser, run_as: RunAs, args: &[&str], edit: impl FnOnce(&mut Value)) -> UserOci<'a> {
        let bundle = user.dir("bundle");
        // A new config each time (`spec` never replaces one).
        let _ = std::fs::remove_file(bundle.join("config.json"));
        let oci = UserOci { user, run_as, bundle };
        oci.crabcan(&["spec", "--rootless", "--bundle", oci.bundle.to_str().unwrap()])
            .expect_success();
        let path = oci.bundle.join("config.json");
        let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            spec["linux"]["uidMappings"][0]["hostID"], user.uid,
            "the caller's uid is root"
        );
        assert_eq!(spec["linux"]["gidMappings"][0]["hostID"], user.gid);
        let namespaces: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|ns| ns["type"].as_str())
            .collect();
        assert!(
            namespaces.contains(&"user") && !namespaces.contains(&"network"),
            "runc's rootless spec: a user namespace, the host's network: {namespaces:?}"
        );
        spec["root"]["path"] = Value::from(user.rootfs().display().to_string());
        spec["process"]["terminal"] = Value::Bool(false);
        spec["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        edit(&mut spec);
        std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
        oci
    }

    /// `crabcan ARGS...` as the user, stdout and stderr in files (a detached container keeps
    /// them).
    fn crabcan(&self, args: &[&str]) -> Run {
        self.crabcan_with(args, |_| {})
    }

    fn crabcan_with(&self, args: &[&str], edit: impl FnOnce(&mut Command)) -> Run {
        let out = self.user.home().join("oci-stdout");
        let err = self.user.home().join("oci-stderr");
        let mut command = Command::new(self.user.crabcan());
        self.run_as.apply(&mut command);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        edit(&mut command);
        let status = command.status().expect("start crabcan");
        Run::from_output(std::process::Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        })
    }

    fn state_root(&self) -> PathBuf {
        self.user.runtime_dir().join("crabcan")
    }
}

#[test]
fn the_oci_mode_runs_a_rootless_bundle_under_xdg_runtime_dir() {
    let user = TestUser::new("oci");
    let oci = UserOci::new(&user, &["sh", "-c", "echo uid_map=$(cat /proc/self/uid_map); exit 3"]);
    let bundle = oci.bundle.to_str().unwrap().to_owned();
    let run = oci.crabcan(&["run", "--bundle", &bundle, "rl-run"]);
    run.expect_code(3);
    assert_eq!(
        values(&run).get("uid_map").map(String::as_str),
        Some(format!("0 {} 1", user.uid).as_str()),
        "{}",
        run.stdout
    );

    // create → created → start → stopped → delete, the state in the user's own root.
    let oci = UserOci::new(&user, &["sleep", "30"]);
    oci.crabcan(&["create", "--bundle", &bundle, "rl-cycle"])
        .expect_success();
    assert!(
        oci.state_root().join("rl-cycle/state.json").is_file(),
        "state under $XDG_RUNTIME_DIR/crabcan"
    );
    let state: Value = serde_json::from_str(&oci.crabcan(&["state", "rl-cycle"]).stdout).unwrap();
    assert_eq!(state["status"], "created");
    oci.crabcan(&["start", "rl-cycle"]).expect_success();
    let state: Value = serde_json::from_str(&oci.crabcan(&["state", "rl-cycle"]).stdout).unwrap();
    assert_eq!(state["status"], "running");
    oci.crabcan(&["kill", "rl-cycle", "KILL"]).expect_success();
    assert!(wait_until(10, || {
        let state = oci.crabcan(&["state", "rl-cycle"]);
        state.stdout.contains("\"stopped\"")
    }));
    oci.crabcan(&["delete", "rl-cycle"]).expect_success();
    assert!(!oci.state_root().join("rl-cycle").exists());
    assert!(oci.crabcan(&["list", "--quiet"]).stdout.trim().is_empty());
    assert_user_left_nothing(&user);
}

#[test]
fn the_oci_mode_names_a_missing_xdg_runtime_dir_and_a_wrong_rootless() {
    let user = TestUser::new("oci-xdg");
    let oci = UserOci {
        user: &user,
        run_as: user.run_as(),
        bundle: user.home().to_owned(),
    };
    let run = oci.crabcan_with(&["list"], |command| {
        command.env_remove("XDG_RUNTIME_DIR");
    });
    run.expect_code(1);
    assert!(
        run.stderr.contains("XDG_RUNTIME_DIR is not set") && run.stderr.contains("or pass --root DIR"),
        "{}",
        run.stderr
    );
    let run = oci.crabcan(&["--rootless", "false", "list"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("--rootless false asks for root's mode"),
        "{}",
        run.stderr
    );
    oci.crabcan(&["--rootless", "true", "list"]).expect_success();
    assert_user_left_nothing(&user);
}

/// A cgroup v2 subtree delegated to `user` as systemd delegates `user@UID.service`: the
/// directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads are the user's,
/// and crabcan starts in a child of it (`caller`). Removed on drop.
struct Delegated {
    dir: PathBuf,
}

impl Delegated {
    fn new(user: &TestUser) -> Delegated {
        let dir = PathBuf::from(format!("/sys/fs/cgroup/crabcan-test-{}", user.name));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let delegated = Delegated { dir };
        for cgroup in [delegated.dir.clone(), delegated.caller()] {
            if cgroup != delegated.dir {
                std::fs::create_dir(&cgroup).unwrap();
            }
            for file in ["", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"] {
                std::os::unix::fs::chown(cgroup.join(file), Some(user.uid), Some(user.gid)).unwrap();
            }
        }
        delegated
    }

    fn caller(&self) -> PathBuf {
        self.dir.join("caller")
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.dir.join("crabcan"));
        let _ = std::fs::remove_dir(self.caller());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Whether this host is pure cgroup v2 (the VM); on a host with v1 controllers the delegation
/// tests are skipped, with the reason.
fn pure_cgroup_v2() -> bool {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.subtree_control").is_file();
    if !v2 {
        println!(
            "crabcan-skip: this host's cgroup controllers are on cgroup v1, which has no delegation to users; the delegated-subtree tests run in the VM (cargo xtask test-vm)"
        );
    }
    v2
}

#[test]
fn a_delegated_cgroup_v2_subtree_takes_the_containers_cgroup_and_its_limits() {
    if !pure_cgroup_v2() {
        return;
    }
    let user = TestUser::new("deleg");
    let delegated = Delegated::new(&user);
    let mut run_as: RunAs = user.run_as();
    run_as.cgroup = Some(delegated.caller());
    let c = Crabcan::as_user("rl-deleg", user.rootfs(), run_as.clone()).args(["--memory", "32M", "--pids", "16"]);
    let run = c.sh(
        "echo memory=$(cat /sys/fs/cgroup/memory.max); echo pids=$(cat /sys/fs/cgroup/pids.max); \
         echo cgroup=$(cat /proc/self/cgroup)",
    );
    run.expect_success();
    assert_eq!(
        run.value("memory").as_deref(),
        Some("33554432"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(run.value("pids").as_deref(), Some("16"));
    assert_eq!(run.value("cgroup").as_deref(), Some("0::/"), "its own cgroup namespace");

    // The limit holds: an allocation past it ends in an OOM kill.
    let hog = Crabcan::as_user("rl-deleg-oom", user.rootfs(), run_as)
        .args(["--memory", "32M"])
        .run(&["/usr/bin/tail", "/dev/zero"]);
    hog.expect_code(137);
    assert!(
        hog.stderr.contains("container killed: out of memory (limit 32 MiB)"),
        "{}",
        hog.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&delegated.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("caller"), std::ffi::OsString::from("crabcan")],
        "the containers' cgroups are gone; their parent folder stays"
    );
    let containers: Vec<_> = std::fs::read_dir(delegated.dir.join("crabcan"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name())
        .collect();
    assert!(containers.is_empty(), "container cgroups left: {containers:?}");
    assert_user_left_nothing(&user);
}

#[test]
fn an_oci_bundles_resources_go_in_the_delegated_subtree() {
    if !pure_cgroup_v2() {
        return;
    }
    let user = TestUser::new("oci-deleg");
    let delegated = Delegated::new(&user);
    let mut run_as = user.run_as();
    run_as.cgroup = Some(delegated.caller());
    let script = "echo memory=$(cat /sys/fs/cgroup/memory.max); echo pids=$(cat /sys/fs/cgroup/pids.max)";
    let oci = UserOci::with_edit(&user, run_as, &["sh", "-c", script], |spec| {
        spec["linux"]["resources"] = serde_json::json!({"memory": {"limit": 33554432}, "pids": {"limit": 16}});
    });
    let bundle = oci.bundle.to_str().unwrap().to_owned();
    let run = oci.crabcan(&["run", "--bundle", &bundle, "rl-oci-deleg"]);
    run.expect_success();
    assert_eq!(run.value("memory").as_deref(), Some("33554432"), "{}", run.stdout);
    assert_eq!(run.value("pids").as_deref(), Some("16"));
    assert!(
        !delegated.dir.join("crabcan/rl-oci-deleg").exists(),
        "the container's cgroup is gone with it"
    );
    assert!(delegated.caller().is_dir(), "crabcan's own cgroup and the subtree stay");
    assert_user_left_nothing(&user);
}
