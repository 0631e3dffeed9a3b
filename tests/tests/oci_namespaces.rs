//! OCI bundles that share namespaces with the host or join existing ones by path, list devices
//! and device rules, and ask for mount propagation: each observed from inside the container and
//! compared with the host, and the host checked afterwards (what the test itself set up, a
//! namespace holder, a shared mount, is removed by the test).

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crabcan_tests::oci::{unique_id, Oci};
use crabcan_tests::*;
use serde_json::{json, Value};

/// `crabcan run` of the bundle as container `id`, in the foreground.
fn run_in_foreground(oci: &Oci, id: &str) -> Run {
    oci.crabcan(&["run", "--bundle", oci.bundle().to_str().unwrap(), id])
}

/// Held by every test of this file: some make mounts on the host, which another test's
/// [`HostSnapshot`] would take for its container's.
static HOST: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn host_to_ourselves() -> std::sync::MutexGuard<'static, ()> {
    HOST.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `linux.namespaces` of runc's default spec, less `leave_out`, with `paths` for some kinds.
fn namespaces(leave_out: &[&str], paths: &[(&str, &Path)]) -> Value {
    ["pid", "network", "ipc", "uts", "mount", "cgroup"]
        .iter()
        .filter(|kind| !leave_out.contains(kind))
        .map(|kind| match paths.iter().find(|(k, _)| k == kind) {
            Some((_, path)) => json!({"type": kind, "path": path}),
            None => json!({"type": kind}),
        })
        .collect()
}

/// The namespace link of this (host) process, e.g. `net:[4026531840]`.
fn own_namespace(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

/// The link text of the namespace file at `path`: `kind:[inode]`.
fn namespace_of(kind: &str, path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{kind}:[{}]", std::fs::metadata(path).unwrap().ino())
}

/// A process that holds namespaces of its own (`unshare` before it execs), killed and reaped
/// by its pid on drop; `pid` is the process that is in them.
struct Holder {
    child: Child,
    pid: u32,
}

impl Holder {
    /// `sleep` in new namespaces `flags` (not a pid namespace: see [`Holder::pid_namespace`]).
    fn new(flags: libc::c_int) -> Holder {
        let mut command = Command::new("sleep");
        command.arg("600").stdin(Stdio::null()).stdout(Stdio::null());
        // SAFETY: unshare is a plain syscall, safe between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::unshare(flags) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = command.spawn().expect("cannot start a namespace holder (sleep)");
        let pid = child.id();
        Holder { child, pid }
    }

    /// A new pid namespace whose init is a `sleep` (a shell unshares and starts it: a pid
    /// namespace is only the children's).
    fn pid_namespace() -> Holder {
        let mut command = Command::new("sh");
        command
            .args(["-c", "sleep 600 & echo $!; wait"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        // SAFETY: as in `new`.
        unsafe {
            command.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWPID) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let mut child = command.spawn().expect("cannot start a pid namespace holder (sh)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = line.trim().parse().expect("the holder's sleep pid");
        Holder { child, pid }
    }

    fn path(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{kind}", self.pid))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: kill on a pid this test started.
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mount the test made on the host, removed on drop (and its mount point with it).
struct HostMount {
    target: PathBuf,
}

impl HostMount {
    fn mount(source: &str, target: &Path, fstype: Option<&str>, flags: libc::c_ulong) -> HostMount {
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let source = c(source);
        let target_c = c(target.to_str().unwrap());
        let fstype = fstype.map(c);
        // SAFETY: valid NUL-terminated strings; no data.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target_c.as_ptr(),
                fstype.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
                flags,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "mount {}: {}", target.display(), std::io::Error::last_os_error());
        HostMount {
            target: target.to_owned(),
        }
    }

    /// Changes the propagation of the mount (e.g. MS_SHARED).
    fn propagation(&self, flag: libc::c_ulong) {
        let target = std::ffi::CString::new(self.target.to_str().unwrap()).unwrap();
        // SAFETY: a propagation change takes no source, type or data.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                flag,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "mount --make-*: {}", std::io::Error::last_os_error());
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(self.target.to_str().unwrap()).unwrap();
        // SAFETY: umount2 of a path this test mounted.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn a_namespace_left_out_is_the_hosts() {
    let _host = host_to_ourselves();
    let oci = Oci::new("hostns");
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "for k in net ipc uts pid mnt; do echo $k=$(readlink /proc/self/ns/$k); done; \
             echo links=$(ls /sys/class/net | tr '\\n' ' '); echo host=$(hostname)",
        ],
        |spec| {
            spec["linux"]["namespaces"] = namespaces(&["network", "ipc", "uts"], &[]);
            spec.as_object_mut().unwrap().remove("hostname");
        },
    );
    let id = unique_id("hostns");
    let before = HostSnapshot::take();
    let run = run_in_foreground(&oci, &id);
    run.expect_success();
    for kind in ["net", "ipc", "uts"] {
        assert_eq!(run.value(kind), Some(own_namespace(kind)), "{kind}: {}", run.stdout);
    }
    for kind in ["pid", "mnt"] {
        assert_ne!(run.value(kind), Some(own_namespace(kind)), "{kind} must be new");
    }
    let mut host_links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host_links.sort();
    let mut links: Vec<String> = run
        .value("links")
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    links.sort();
    assert_eq!(links, host_links, "the host's interfaces");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        run.value("host").as_deref(),
        Some(hostname.trim()),
        "the host's name, untouched"
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn a_network_namespace_is_joined_by_its_path() {
    let _host = host_to_ourselves();
    let oci = Oci::new("joinnet");
    // What `ip netns add` makes: a network namespace kept by a bind mount of its nsfs file.
    let holder = Holder::new(libc::CLONE_NEWNET);
    let netns_dir = TempDir::new("netns");
    let netns = netns_dir.path().join("pod");
    std::fs::write(&netns, "").unwrap();
    let bound = HostMount::mount(holder.path("net").to_str().unwrap(), &netns, None, libc::MS_BIND);
    drop(holder);
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "echo net=$(readlink /proc/self/ns/net); echo links=$(ls /sys/class/net | tr '\\n' ' ')",
        ],
        |spec| spec["linux"]["namespaces"] = namespaces(&[], &[("network", &netns)]),
    );
    let id = unique_id("joinnet");
    let before = HostSnapshot::take();
    let run = run_in_foreground(&oci, &id);
    run.expect_success();
    assert_eq!(run.value("net"), Some(namespace_of("net", &netns)), "{}", run.stdout);
    assert_ne!(run.value("net"), Some(own_namespace("net")));
    assert_eq!(
        run.value("links").as_deref().map(str::trim),
        Some("lo"),
        "the pod's own namespace"
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
    // The test removes the namespace it made, and the file that kept it.
    drop(bound);
    assert!(
        std::fs::metadata(&netns).map(|m| m.len() == 0).unwrap_or(true),
        "the netns is gone"
    );
}

#[test]
fn a_pid_namespace_is_joined_by_its_path() {
    let _host = host_to_ourselves();
    let oci = Oci::new("joinpid");
    let holder = Holder::pid_namespace();
    let pidns = holder.path("pid");
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "echo pid=$(readlink /proc/self/ns/pid); echo init=$(cat /proc/1/comm); echo me=$$",
        ],
        |spec| spec["linux"]["namespaces"] = namespaces(&[], &[("pid", &pidns)]),
    );
    let id = unique_id("joinpid");
    let before = HostSnapshot::take();
    let run = run_in_foreground(&oci, &id);
    run.expect_success();
    assert_eq!(run.value("pid"), Some(namespace_of("pid", &pidns)), "{}", run.stdout);
    assert_eq!(
        run.value("init").as_deref(),
        Some("sleep"),
        "its init is the holder's sleep"
    );
    assert_ne!(
        run.value("me").as_deref(),
        Some("1"),
        "the container joined, it is not the init"
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn a_user_namespace_is_joined_by_its_path_and_keeps_its_maps() {
    let _host = host_to_ourselves();
    let oci = Oci::new("joinuser");
    let holder = Holder::new(libc::CLONE_NEWUSER);
    let outside = match test_id_map() {
        Some(_) => files_of_container_root(),
        None => 1_000_000_000,
    };
    let map = format!("0 {outside} 65536");
    for file in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{}/{file}", holder.pid), &map).unwrap();
    }
    let userns = holder.path("user");
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "echo user=$(readlink /proc/self/ns/user); echo map=$(cat /proc/self/uid_map); echo uid=$(id -u)",
        ],
        |spec| {
            let mut listed = namespaces(&[], &[]);
            listed
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user", "path": userns}));
            spec["linux"]["namespaces"] = listed;
        },
    );
    let id = unique_id("joinuser");
    let before = HostSnapshot::take();
    let run = run_in_foreground(&oci, &id);
    run.expect_success();
    assert_eq!(run.value("user"), Some(namespace_of("user", &userns)), "{}", run.stdout);
    let shown = run.value("map").unwrap();
    assert_eq!(
        shown.split_whitespace().collect::<Vec<_>>(),
        ["0", &outside.to_string(), "65536"]
    );
    assert_eq!(run.value("uid").as_deref(), Some("0"));
    oci.assert_gone(&id);
    // Maps that are not the joined namespace's are refused before anything is made.
    oci.write_bundle(&["/bin/true"], |spec| {
        let mut listed = namespaces(&[], &[]);
        listed
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": userns}));
        spec["linux"]["namespaces"] = listed;
        spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": outside + 1, "size": 65536}]);
        spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": outside + 1, "size": 65536}]);
    });
    let refused = run_in_foreground(&oci, &id);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("not those of the joined user namespace"),
        "{}",
        refused.stderr
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn without_a_mount_namespace_the_bundle_is_refused_and_nothing_is_left() {
    let _host = host_to_ourselves();
    let oci = Oci::new("nomnt");
    oci.write_bundle(&["/bin/true"], |spec| {
        spec["linux"]["namespaces"] = namespaces(&["mount"], &[]);
    });
    let id = unique_id("nomnt");
    let before = HostSnapshot::take();
    let run = oci.crabcan(&["create", "--bundle", oci.bundle().to_str().unwrap(), &id]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("error") && run.stderr.contains("linux.namespaces") && run.stderr.contains("mount"),
        "{}",
        run.stderr
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
    // A hostname needs a uts namespace of the container's own.
    oci.write_bundle(&["/bin/true"], |spec| {
        spec["linux"]["namespaces"] = namespaces(&["uts"], &[]);
        spec["hostname"] = Value::from("renamed");
    });
    let run = run_in_foreground(&oci, &id);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("field hostname"), "{}", run.stderr);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(hostname.trim(), "renamed");
    // So does a network sysctl of the host's network namespace.
    oci.write_bundle(&["/bin/true"], |spec| {
        spec["linux"]["namespaces"] = namespaces(&["network"], &[]);
        spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    let run = run_in_foreground(&oci, &id);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("linux.sysctl.net.ipv4.ip_forward"),
        "{}",
        run.stderr
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

/// A host device the tests list in a bundle: /dev/net/tun or /dev/fuse, whose open(2) works
/// without any setup, at their own paths; where the host has neither (the test VM loads no
/// modules), /dev/full at /dev/listed-full, which crabcan finds through sysfs.
/// (container path, major, minor).
fn listable_device() -> (&'static str, u64, u64) {
    for (path, major, minor) in [("/dev/net/tun", 10, 200), ("/dev/fuse", 10, 229)] {
        if Path::new(path).exists() {
            return (path, major, minor);
        }
    }
    assert!(Path::new("/dev/full").exists(), "the host has no /dev/full");
    ("/dev/listed-full", 1, 7)
}

/// The words of `ls -ln`'s line, the first of `stdout`.
fn first_line_words(stdout: &str) -> Vec<&str> {
    stdout.lines().next().unwrap_or_default().split_whitespace().collect()
}

#[test]
fn a_listed_device_is_usable_inside() {
    let _host = host_to_ourselves();
    let oci = Oci::new("device");
    let (path, major, minor) = listable_device();
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            &format!("ls -l {path}; (: <> {path}) && echo usable=yes; [ -e /dev/kvm ] || echo kvm=absent"),
        ],
        |spec| {
            spec["linux"]["devices"] = json!([{"path": path, "type": "c", "major": major, "minor": minor}]);
            // Docker's and containerd's way: deny all, then allow the device.
            spec["linux"]["resources"]["devices"] = json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"}
            ]);
        },
    );
    let id = unique_id("device");
    let before = HostSnapshot::take();
    let run = run_in_foreground(&oci, &id);
    run.expect_success();
    assert_eq!(run.value("usable").as_deref(), Some("yes"), "{run:?}");
    assert!(run.stdout.contains(&format!("{major},")), "{}", run.stdout);
    assert_eq!(
        run.value("kvm").as_deref(),
        Some("absent"),
        "only listed devices are there"
    );
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}

#[test]
fn a_device_with_its_own_mode_is_a_node_of_its_own_and_the_hosts_is_untouched() {
    let _host = host_to_ourselves();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let oci = Oci::new("devmode");
    let host = std::fs::metadata("/dev/null").unwrap();
    oci.write_bundle(
        &["/bin/sh", "-c", "ls -ln /dev/mynull; echo x > /dev/mynull && echo written=yes"],
        |spec| {
            spec["linux"]["devices"] =
                json!([{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620, "uid": 0, "gid": 5}]);
        },
    );
    let id = unique_id("devmode");
    let run = run_in_foreground(&oci, &id);
    run.expect_success();
    let listing = first_line_words(&run.stdout);
    assert_eq!(listing[..4], ["crw--w----", "1", "0", "5"], "{}", run.stdout);
    assert_eq!(run.value("written").as_deref(), Some("yes"), "{run:?}");
    let after = std::fs::metadata("/dev/null").unwrap();
    assert_eq!(
        after.permissions().mode(),
        host.permissions().mode(),
        "the host's /dev/null changed"
    );
    assert_eq!((after.uid(), after.gid()), (host.uid(), host.gid()));
    oci.assert_gone(&id);
}

#[test]
fn a_rule_denying_c_1_5_leaves_no_dev_zero() {
    let _host = host_to_ourselves();
    let oci = Oci::new("nozero");
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "[ -e /dev/zero ] && echo zero=there || echo zero=absent; echo x > /dev/null && echo null=usable",
        ],
        |spec| {
            spec["linux"]["resources"]["devices"] = json!([
                {"allow": false, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
            ]);
        },
    );
    let id = unique_id("nozero");
    let run = run_in_foreground(&oci, &id);
    run.expect_success();
    assert_eq!(run.value("zero").as_deref(), Some("absent"), "{run:?}");
    assert_eq!(
        run.value("null").as_deref(),
        Some("usable"),
        "deny-all alone leaves the defaults"
    );
    // A listed device the rules deny is there (as runc makes it, the spec's MUST), with its
    // numbers and mode, and cannot be opened; the host need not have it (10:666 is no device).
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "ls -ln /dev/listed; (: <> /dev/listed) 2>/dev/null && echo opened=yes || echo opened=no",
        ],
        |spec| {
            spec["linux"]["devices"] =
                json!([{"path": "/dev/listed", "type": "c", "major": 10, "minor": 666, "fileMode": 0o640, "gid": 5}]);
            spec["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
        },
    );
    let denied = run_in_foreground(&oci, &id);
    denied.expect_success();
    let listing = first_line_words(&denied.stdout);
    assert_eq!(
        listing[..6],
        ["crw-r-----", "1", "0", "5", "10,", "666"],
        "{}",
        denied.stdout
    );
    assert_eq!(denied.value("opened").as_deref(), Some("no"), "{denied:?}");
    oci.assert_gone(&id);
}

#[test]
fn containerds_default_rule_set_is_accepted() {
    let _host = host_to_ourselves();
    let oci = Oci::new("containerd");
    let (path, major, minor) = listable_device();
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            &format!("for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo -n $d,; done; echo; (: <> {path}) && echo usable=yes"),
        ],
        |spec| {
            let allow = |major: i64, minor: Option<i64>| {
                json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"})
            };
            spec["linux"]["resources"]["devices"] = json!([
                {"allow": false, "access": "rwm"},
                allow(1, Some(3)), allow(1, Some(5)), allow(1, Some(7)), allow(1, Some(8)), allow(1, Some(9)),
                allow(5, Some(0)), allow(5, Some(1)), allow(5, Some(2)), allow(136, None), allow(10, Some(200)),
                allow(10, Some(229)),
                {"allow": true, "type": "c", "access": "m"}, {"allow": true, "type": "b", "access": "m"}
            ]);
            spec["linux"]["devices"] = json!([{"path": path, "type": "c", "major": major, "minor": minor}]);
        },
    );
    let id = unique_id("containerd");
    let run = run_in_foreground(&oci, &id);
    run.expect_success();
    assert!(run.stdout.starts_with("null,zero,full,random,urandom,tty,"), "{run:?}");
    assert_eq!(run.value("usable").as_deref(), Some("yes"));
    oci.assert_gone(&id);
}

/// A bind of a shared host mount with `propagation`; the host then mounts a tmpfs below the
/// source. Whether the container sees it.
fn host_mount_seen_through(propagation: &str) -> bool {
    let oci = Oci::new(&format!("prop-{propagation}"));
    let scratch = TempDir::new("propsrc");
    let source = scratch.path().join("src");
    std::fs::create_dir(&source).unwrap();
    let shared = HostMount::mount("tmpfs", &source, Some("tmpfs"), 0);
    shared.propagation(libc::MS_SHARED);
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "while [ ! -e /data/go ]; do sleep 0.05; done; \
             [ -e /data/sub/marker ] && echo seen > /data/result || echo unseen > /data/result",
        ],
        |spec| {
            spec["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/data", "type": "bind", "source": source, "options": ["rbind", propagation]}),
            );
        },
    );
    let id = unique_id(&format!("prop-{propagation}"));
    let before = HostSnapshot::take();
    oci.crabcan(&["run", "--detach", "--bundle", oci.bundle().to_str().unwrap(), &id])
        .expect_success();
    // After the container started, the host mounts below the bound source.
    let sub = source.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let below = HostMount::mount("tmpfs", &sub, Some("tmpfs"), 0);
    std::fs::write(sub.join("marker"), "").unwrap();
    std::fs::write(source.join("go"), "").unwrap();
    let result = source.join("result");
    assert!(
        wait_until(20, || std::fs::read_to_string(&result).is_ok_and(|r| r.ends_with('\n'))),
        "the container never answered"
    );
    let seen = std::fs::read_to_string(&result).unwrap().trim() == "seen";
    assert!(wait_until(10, || oci.state(&id)["status"] == "stopped"));
    oci.crabcan(&["delete", &id]).expect_success();
    oci.assert_gone(&id);
    drop(below);
    before.assert_clean_after(&id);
    drop(shared);
    seen
}

#[test]
fn with_rslave_a_host_mount_made_after_start_appears_in_the_container() {
    let _host = host_to_ourselves();
    assert!(host_mount_seen_through("rslave"));
}

#[test]
fn with_rprivate_a_host_mount_made_after_start_does_not() {
    let _host = host_to_ourselves();
    assert!(!host_mount_seen_through("rprivate"));
}

#[test]
fn bind_options_are_applied_recursive_ones_to_every_mount_below() {
    let _host = host_to_ourselves();
    let oci = Oci::new("bindopts");
    let scratch = TempDir::new("bindsrc");
    let source = scratch.path().join("src");
    std::fs::create_dir_all(source.join("inner")).unwrap();
    let inner = HostMount::mount("tmpfs", &source.join("inner"), Some("tmpfs"), 0);
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "awk '$5 == \"/data\" {print \"top=\" $6} $5 == \"/data/inner\" {print \"inner=\" $6}' /proc/self/mountinfo; \
             (echo x > /data/inner/f) 2>/dev/null && echo inner_write=yes || echo inner_write=no",
        ],
        |spec| {
            spec["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/data", "type": "bind", "source": source,
                "options": ["rbind", "nosuid", "noexec", "rro", "nosymfollow", "rprivate"]
            }));
        },
    );
    let id = unique_id("bindopts");
    let before = HostSnapshot::take();
    let run = run_in_foreground(&oci, &id);
    run.expect_success();
    let options = |key: &str| {
        run.value(key)
            .unwrap_or_default()
            .split(',')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for wanted in ["ro", "nosuid", "nodev", "noexec", "nosymfollow"] {
        assert!(
            options("top").iter().any(|o| o == wanted),
            "{wanted} missing: {}",
            run.stdout
        );
    }
    let inner_options = options("inner");
    assert!(inner_options.iter().any(|o| o == "ro") && inner_options.iter().any(|o| o == "nodev"));
    assert!(
        !inner_options.iter().any(|o| o == "nosuid"),
        "nosuid is the bound mount's only"
    );
    assert_eq!(run.value("inner_write").as_deref(), Some("no"), "rro reaches below");
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
    drop(inner);
}

#[test]
fn an_idmapped_bind_shows_host_roots_files_as_the_containers_roots() {
    use std::os::unix::fs::MetadataExt;
    let _host = host_to_ourselves();
    let oci = Oci::new("idmap");
    let scratch = TempDir::new("idmapsrc");
    let source = scratch.path().join("shared");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("hosts-file"), "").unwrap();
    let outside = 1_000_000_000u32;
    oci.write_bundle(
        &[
            "/bin/sh",
            "-c",
            "echo owner=$(stat -c %u /data/hosts-file); touch /data/made && echo made=yes",
        ],
        |spec| {
            let mut listed = namespaces(&[], &[]);
            listed.as_array_mut().unwrap().push(json!({"type": "user"}));
            spec["linux"]["namespaces"] = listed;
            let map = json!([{"containerID": 0, "hostID": outside, "size": 65536}]);
            spec["linux"]["uidMappings"] = map.clone();
            spec["linux"]["gidMappings"] = map;
            spec["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/data", "type": "bind", "source": source, "options": ["rbind", "idmap"]}));
        },
    );
    let id = unique_id("idmap");
    let before = HostSnapshot::take();
    let run = run_in_foreground(&oci, &id);
    if !idmap_supported(&source) {
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(
            run.stderr.contains("MOUNT_ATTR_IDMAP") && run.stderr.contains(source.to_str().unwrap()),
            "{}",
            run.stderr
        );
    } else {
        run.expect_success();
        assert_eq!(
            run.value("owner").as_deref(),
            Some("0"),
            "host root's file is the container root's: {run:?}"
        );
        assert_eq!(run.value("made").as_deref(), Some("yes"));
        assert_eq!(
            std::fs::metadata(source.join("made")).unwrap().uid(),
            0,
            "and what it makes is host root's"
        );
    }
    oci.assert_gone(&id);
    before.assert_clean_after(&id);
}
