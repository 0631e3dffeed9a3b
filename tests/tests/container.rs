//! A container really runs and is really isolated: hostname, pid namespace, id maps,
//! capabilities, no_new_privs, the filesystem (no host path, masks, --add), env, workdir,
//! rlimits, exit statuses and signals. Every run checks the host is clean afterwards.

use crabcan_tests::*;

#[test]
fn hostname_is_the_containers() {
    let c = Crabcan::new("host");
    let run = c.run(&["/bin/hostname"]);
    run.expect_success();
    assert_eq!(run.stdout.trim(), c.hostname);
}

#[test]
fn generated_hostname_looks_like_adjective_noun_number() {
    // No --hostname: run the binary directly.
    let before = HostSnapshot::take();
    let output = std::process::Command::new(crabcan_bin())
        .args(["--no-tty", "--mount"])
        .arg(rootfs())
        .args(["--", "/bin/hostname"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let name = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let parts: Vec<&str> = name.split('-').collect();
    assert_eq!(parts.len(), 3, "{name}");
    assert!(parts[2].parse::<u32>().is_ok(), "{name}");
    before.assert_clean_after(&name);
}

#[test]
fn command_is_pid_1_and_sees_only_its_processes() {
    let run = Crabcan::new("pid").sh("echo pid=$$; ls /proc | grep '^[0-9]'");
    run.expect_success();
    assert_eq!(run.value("pid").as_deref(), Some("1"));
    // sh itself, the pipeline (ls, grep) and nothing of the host's hundreds of processes.
    let pids: Vec<u32> = run.stdout.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    assert!(pids.contains(&1) && pids.len() <= 3, "the container sees {pids:?}");
    assert!(pids.iter().all(|pid| *pid < 10), "the container sees {pids:?}");
}

/// By default the container gets a private slot of 65536 ids from crabcan's pool (2^31 and up
/// where /etc/subuid has no `crabcan` entry), the same for uids and gids.
#[test]
fn uid_and_gid_maps_are_a_private_range_of_crabcans_pool() {
    let run = Crabcan::new("map")
        .auto_ids()
        .sh("cat /proc/self/uid_map /proc/self/gid_map; id -u");
    run.expect_success();
    let lines: Vec<Vec<&str>> = run.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0][0], "0");
    assert_eq!(lines[0][2], "65536");
    assert_eq!(lines[0], lines[1], "uids and gids come from the same slot");
    let outside: u64 = lines[0][1].parse().unwrap();
    assert!(
        outside >= 1 << 31 && (outside - (1 << 31)).is_multiple_of(65536),
        "{outside}"
    );
    assert_eq!(lines[2], ["0"]);
}

#[test]
fn uid_map_is_configurable() {
    let run = Crabcan::new("map2")
        .args(["--uid-map", "0:200000:1000", "--gid-map", "0:300000:1000"])
        .sh("cat /proc/self/uid_map /proc/self/gid_map");
    run.expect_success();
    let lines: Vec<Vec<&str>> = run.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["0", "200000", "1000"]);
    assert_eq!(lines[1], ["0", "300000", "1000"]);
}

#[test]
fn container_processes_run_as_the_mapped_host_uid() {
    let c = Crabcan::new("hostuid");
    let mut child = c.command(&["/bin/sleep", "30"]).spawn().unwrap();
    let pid = wait_for_command(&c.hostname, "sleep");
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let host_root = uid_map.split_whitespace().nth(1).unwrap().to_owned();
    assert_ne!(host_root, "0", "{uid_map}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|id| id == host_root),
        "{uid_line} (map {uid_map})"
    );
    // SAFETY: kill(2) of the container's process, found through its cgroup.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(child.wait().unwrap().code(), Some(137));
}

const DANGEROUS_CAPS: [(u32, &str); 14] = [
    (21, "SYS_ADMIN"),
    (16, "SYS_MODULE"),
    (17, "SYS_RAWIO"),
    (19, "SYS_PTRACE"),
    (22, "SYS_BOOT"),
    (2, "DAC_READ_SEARCH"),
    (32, "MAC_OVERRIDE"),
    (33, "MAC_ADMIN"),
    (25, "SYS_TIME"),
    (12, "NET_ADMIN"),
    (39, "BPF"),
    (38, "PERFMON"),
    (40, "CHECKPOINT_RESTORE"),
    (9, "LINUX_IMMUTABLE"),
];

#[test]
fn capabilities_are_really_dropped() {
    let run = Crabcan::new("caps").run(&["/bin/cat", "/proc/self/status"]);
    run.expect_success();
    for key in ["CapBnd", "CapEff", "CapPrm"] {
        let mask = cap_mask(&run.stdout, key);
        for (bit, name) in DANGEROUS_CAPS {
            assert_eq!(mask & (1 << bit), 0, "{key} still has CAP_{name}: {mask:x}");
        }
        assert_eq!(
            mask.count_ones(),
            13,
            "{key} should hold exactly Docker's 14 less MKNOD: {mask:x}"
        );
        assert_eq!(mask & (1 << 27), 0, "{key} has CAP_MKNOD: {mask:x}");
    }
    assert_eq!(cap_mask(&run.stdout, "CapInh"), 0);
    assert_eq!(cap_mask(&run.stdout, "CapAmb"), 0);
}

fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status}"))
        .trim()
        .to_owned()
}

/// crabcan moves the child off its own CPU while both set up; the container must get exactly
/// crabcan's CPUs back, whichever CPU it was born on (so several runs), and under `taskset`.
#[test]
fn the_container_runs_on_exactly_crabcans_cpus() {
    let own = cpus_allowed(&std::fs::read_to_string("/proc/thread-self/status").unwrap());
    for round in 0..6 {
        let run = Crabcan::new("cpus").run(&["/bin/cat", "/proc/self/status"]);
        run.expect_success();
        assert_eq!(cpus_allowed(&run.stdout), own, "round {round}");
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut narrowed = vec!["0".to_owned()];
    if cpus >= 3 {
        narrowed.push("0,1".to_owned());
    }
    for list in narrowed {
        let c = Crabcan::new("taskset");
        let inner = c.command(&["/bin/cat", "/proc/self/status"]);
        let before = HostSnapshot::take();
        let output = std::process::Command::new("taskset")
            .args(["-c", &list])
            .arg(inner.get_program())
            .args(inner.get_args())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("cannot run taskset (util-linux, or busybox in the VM)");
        before.assert_clean_after(&c.hostname);
        let run = Run::from_output(output);
        run.expect_success();
        let expected = list.replace(',', "-");
        assert_eq!(cpus_allowed(&run.stdout), expected, "under taskset -c {list}");
    }
}

#[test]
fn cap_add_and_cap_drop_adjust_the_set() {
    let run = Crabcan::new("capadj")
        .args(["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"])
        .run(&["/bin/cat", "/proc/self/status"]);
    run.expect_success();
    assert_eq!(cap_mask(&run.stdout, "CapBnd"), 1 << 10);
    assert_eq!(cap_mask(&run.stdout, "CapEff"), 1 << 10);
}

#[test]
fn non_root_user_has_no_effective_capabilities() {
    let run = Crabcan::new("uid")
        .args(["--uid", "1000"])
        .sh("id -u; id -g; cat /proc/self/status");
    run.expect_success();
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some("1000"));
    assert_eq!(lines.next(), Some("1000"));
    assert_eq!(cap_mask(&run.stdout, "CapEff"), 0);
    assert_eq!(cap_mask(&run.stdout, "CapPrm"), 0);
}

#[test]
fn no_new_privs_is_set() {
    let run = Crabcan::new("nnp").run(&["/bin/cat", "/proc/self/status"]);
    run.expect_success();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["NoNewPrivs:", "1"]),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Seccomp:", "2"]),
        "{}",
        run.stdout
    );
}

#[test]
fn no_host_path_is_visible() {
    let marker = TempDir::new("marker");
    std::fs::write(marker.path().join("host-secret"), "secret").unwrap();
    let run = Crabcan::new("fs").sh(&format!(
        "test -e {} && echo visible=yes; echo mounts; cut -d' ' -f5 /proc/self/mountinfo",
        marker.path().join("host-secret").display()
    ));
    run.expect_success();
    assert!(
        !run.stdout.contains("visible=yes"),
        "a host path is visible: {}",
        run.stdout
    );
    let allowed = ["/", "/proc", "/dev", "/sys", "/tmp"];
    for mount_point in run.stdout.lines().skip_while(|l| *l != "mounts").skip(1) {
        assert!(
            allowed
                .iter()
                .any(|prefix| mount_point == *prefix || mount_point.starts_with(&format!("{prefix}/"))),
            "unexpected mount point {mount_point} in the container"
        );
    }
}

#[test]
fn kernel_files_are_masked_and_proc_sys_is_read_only() {
    let run = Crabcan::new("mask").sh(
        "echo sys=$(echo 1 > /proc/sys/kernel/ns_last_pid 2>&1 && echo writable || echo refused); \
         echo firmware=$(ls -A /sys/firmware | wc -l); echo keys=$(wc -c < /proc/keys); \
         echo sysfs=$(touch /sys/crabcan 2>/dev/null && echo writable || echo refused)",
    );
    run.expect_success();
    assert_eq!(run.value("sys").as_deref(), Some("refused"), "{}", run.stdout);
    assert_eq!(run.value("firmware").as_deref(), Some("0"));
    assert_eq!(run.value("keys").as_deref(), Some("0"));
    assert_eq!(run.value("sysfs").as_deref(), Some("refused"));
}

/// Every path Docker masks is empty (a file) or an empty directory, and what it makes read-only
/// refuses writes.
#[test]
fn every_path_docker_masks_is_masked() {
    let run = Crabcan::new("masks").sh(
        "for p in /proc/asound /proc/acpi /proc/interrupts /proc/kcore /proc/keys /proc/latency_stats \
                  /proc/timer_list /proc/timer_stats /proc/sched_debug /proc/scsi /proc/sysrq-trigger \
                  /sys/firmware /sys/devices/virtual/powercap; do \
           if [ -d $p ]; then echo \"$p=$(ls -A $p | wc -l)\"; elif [ -e $p ]; then echo \"$p=$(head -c 64 $p | wc -c)\"; fi; \
         done; \
         for p in /proc/bus /proc/fs /proc/irq /proc/sys; do \
           [ -e $p ] && echo \"$p=$(awk -v p=$p '$2 == p {split($4, o, \",\"); print o[1]}' /proc/mounts)\"; \
         done",
    );
    run.expect_success();
    assert!(run.stdout.contains("/proc/interrupts="), "{}", run.stdout);
    for line in run.stdout.lines() {
        let (path, value) = line.split_once('=').unwrap();
        let expected = if ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"].contains(&path) {
            "ro"
        } else {
            "0"
        };
        assert_eq!(value, expected, "{path} is not masked: {}", run.stdout);
    }
}

/// Masked directories are read-only, nosuid, nodev and noexec mounts of one empty tmpfs (a copy
/// of the first one's mount each, not a tmpfs each).
#[test]
fn masked_directories_share_one_locked_down_empty_tmpfs() {
    let run = Crabcan::new("maskdirs").run(&["/bin/cat", "/proc/self/mountinfo"]);
    run.expect_success();
    let masked: Vec<(&str, &str, &str)> = run
        .stdout
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            let (device, target, options) = (fields[2], fields[4], fields[5]);
            // An empty tmpfs: of no size.
            let (fs, super_options) = (fields.get(dash + 1)?, fields.get(dash + 3)?);
            let is_masked = *fs == "tmpfs" && super_options.split(',').any(|o| o == "size=0k");
            is_masked.then_some((target, device, options))
        })
        .collect();
    assert!(
        masked.iter().any(|(target, ..)| *target == "/sys/firmware"),
        "{}",
        run.stdout
    );
    for (target, device, options) in &masked {
        let options: Vec<&str> = options.split(',').collect();
        for wanted in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(options.contains(&wanted), "{target} lacks {wanted}: {options:?}");
        }
        assert_eq!(*device, masked[0].1, "{target} is a tmpfs of its own: {masked:?}");
    }
}

#[test]
fn tmp_is_a_tmpfs_of_bounded_size() {
    let size_kib = |run: &Run| -> u64 {
        let line = run.stdout.lines().last().unwrap_or_default().to_owned();
        line.split_whitespace()
            .nth(1)
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    let limited = Crabcan::new("tmp-64m").args(["--memory", "64M"]).sh("df -k /tmp");
    limited.expect_success();
    assert_eq!(size_kib(&limited), 64 * 1024, "{}", limited.stdout);
    let sized = Crabcan::new("tmp-size").args(["--tmp-size", "8M"]).sh("df -k /tmp");
    sized.expect_success();
    assert_eq!(size_kib(&sized), 8 * 1024, "{}", sized.stdout);
    let default = Crabcan::new("tmp-default").sh("df -k /tmp");
    default.expect_success();
    assert_eq!(
        size_kib(&default),
        1024 * 1024,
        "the default memory limit, 1G: {}",
        default.stdout
    );
}

#[test]
fn open_files_default_to_1024_soft_and_524288_hard_capped_at_crabcans_own() {
    let mut own = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut own) }, 0);
    let hard = own.rlim_max.min(524_288);
    let run = Crabcan::new("nofile-default").sh("echo soft=$(ulimit -n); echo hard=$(ulimit -Hn)");
    run.expect_success();
    assert_eq!(run.value("soft"), Some(hard.min(1024).to_string()), "{}", run.stdout);
    assert_eq!(run.value("hard"), Some(hard.to_string()), "{}", run.stdout);
}

#[test]
fn root_can_write_in_its_rootfs_and_tmp() {
    let run = Crabcan::new("write").sh("echo hi > /root/.crabcan-write-test && rm /root/.crabcan-write-test && echo ok=1; echo x > /tmp/y && echo tmp=1");
    run.expect_success();
    assert_eq!(run.value("ok").as_deref(), Some("1"), "{}{}", run.stdout, run.stderr);
    assert_eq!(run.value("tmp").as_deref(), Some("1"));
}

#[test]
fn bind_mounts_work_and_read_only_refuses_writes() {
    let rw = TempDir::new("rw");
    // Owned by root: crabcan idmaps it, so the container's root may write there (in the VM,
    // whose tmpfs cannot be idmapped, it is owned for the tests' fixed map instead).
    own_for_container(rw.path());
    let ro = TempDir::new("ro");
    std::fs::write(ro.path().join("file"), "from-host").unwrap();
    let run = Crabcan::new("add")
        .args(["--add", &format!("{}:/data/rw", rw.path().display())])
        .args(["--add", &format!("{}:/data/ro:ro", ro.path().display())])
        .sh(
            "cat /data/ro/file; echo; echo new > /data/ro/new 2>/dev/null && echo ro=writable || echo ro=refused; \
             echo written > /data/rw/out && echo rw=ok",
        );
    run.expect_success();
    assert!(run.stdout.starts_with("from-host"), "{}", run.stdout);
    assert_eq!(run.value("ro").as_deref(), Some("refused"));
    assert_eq!(run.value("rw").as_deref(), Some("ok"));
    assert_eq!(std::fs::read_to_string(rw.path().join("out")).unwrap(), "written\n");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(rw.path().join("out")).unwrap());
    assert_eq!(owner, files_of_container_root(), "the file's host owner");
    assert!(!ro.path().join("new").exists());
}

#[test]
fn env_and_workdir() {
    let run = Crabcan::new("env")
        .args(["--env", "GREETING=hello world", "--workdir", "/tmp/work"])
        .sh("echo greet=$GREETING; echo pwd=$(pwd); echo home=$HOME; echo path=$PATH; echo host=$HOSTNAME");
    run.expect_success();
    assert_eq!(run.value("greet").as_deref(), Some("hello world"));
    assert_eq!(run.value("pwd").as_deref(), Some("/tmp/work"));
    assert_eq!(run.value("home").as_deref(), Some("/root"));
    assert!(run.value("path").unwrap().contains("/bin"));
    assert!(run.value("host").unwrap().starts_with("t-env-"));
}

#[test]
fn command_given_as_one_string_is_split_like_a_shell() {
    let c = Crabcan::new("string");
    let before = HostSnapshot::take();
    let output = std::process::Command::new(crabcan_bin())
        .args(["--no-tty", "--hostname", &c.hostname, "--mount"])
        .arg(rootfs())
        .args(["--command", "/bin/sh -c 'echo \"a  b\"; exit 3'"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "a  b\n");
    before.assert_clean_after(&c.hostname);
}

#[test]
fn open_files_limit_is_set_and_cannot_be_raised() {
    let run = Crabcan::new("rlimit").args(["--nofile", "50"]).sh("echo soft=$(ulimit -n); echo hard=$(ulimit -Hn); ulimit -n 100 2>/dev/null && echo raised=yes || echo raised=no");
    run.expect_success();
    assert_eq!(run.value("soft").as_deref(), Some("50"));
    assert_eq!(run.value("hard").as_deref(), Some("50"));
    assert_eq!(run.value("raised").as_deref(), Some("no"));
}

#[test]
fn only_stdio_descriptors_reach_the_command() {
    let run = Crabcan::new("fds").sh("ls /proc/self/fd | tr '\\n' ' '");
    run.expect_success();
    // 0 1 2, plus the descriptor `ls` itself has open on the directory.
    let beyond = descriptors_beyond_stdio(&run.stdout);
    assert!(beyond.len() <= 1, "leaked descriptors: {}", run.stdout);
}

#[test]
fn crabcan_binary_is_not_reachable_from_inside() {
    let run = Crabcan::new("exe").sh("for p in /proc/[0-9]*; do readlink $p/exe; done");
    run.expect_success();
    assert!(
        !run.stdout.contains("crabcan"),
        "the container can see crabcan's binary: {}",
        run.stdout
    );
}

#[test]
fn loopback_is_up() {
    let run = Crabcan::new("lo").sh("cat /sys/class/net/lo/operstate; ip link 2>/dev/null | grep -c lo || true");
    run.expect_success();
    assert!(
        run.stdout.starts_with("unknown") || run.stdout.starts_with("up"),
        "{}",
        run.stdout
    );
}

#[test]
fn exit_status_is_the_commands() {
    Crabcan::new("exit0").run(&["/bin/true"]).expect_code(0);
    Crabcan::new("exit1").run(&["/bin/false"]).expect_code(1);
    Crabcan::new("exit42").sh("exit 42").expect_code(42);
}

#[test]
fn missing_command_is_127_and_non_executable_is_126() {
    let run = Crabcan::new("e127").run(&["/no/such/program"]);
    run.expect_code(127);
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
    let run = Crabcan::new("e127b").run(&["no-such-program-in-path"]);
    run.expect_code(127);
    let run = Crabcan::new("e126").run(&["/etc/passwd"]);
    run.expect_code(126);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
}

#[test]
fn sigterm_is_forwarded_to_the_container() {
    let c = Crabcan::new("sigterm");
    let before = HostSnapshot::take();
    let mut child = c
        .command(&[
            "/bin/sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    // SAFETY: kill(2) of the crabcan process we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(status.code(), Some(42), "output: {rest}");
    assert!(rest.contains("got-term"));
    before.assert_clean_after(&c.hostname);
}

#[test]
fn a_signal_ends_a_command_without_handlers_although_it_is_init() {
    // `sleep` as pid 1 has no SIGTERM handler; the kernel would discard the forwarded signal.
    let c = Crabcan::new("sigdfl");
    let before = HostSnapshot::take();
    let mut child = c.command(&["/bin/sleep", "60"]).spawn().unwrap();
    wait_for_command(&c.hostname, "sleep");
    // SAFETY: kill(2) of the crabcan process we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(143));
    before.assert_clean_after(&c.hostname);
}

#[test]
fn command_killed_by_a_signal_gives_128_plus_n_and_leaves_nothing() {
    let c = Crabcan::new("kill9");
    let before = HostSnapshot::take();
    let mut child = c.command(&["/bin/sleep", "60"]).spawn().unwrap();
    let pid = wait_for_command(&c.hostname, "sleep");
    // SAFETY: kill(2) of the container's process, found through its cgroup.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    before.assert_clean_after(&c.hostname);
}

#[test]
fn container_dies_when_crabcan_is_killed() {
    let c = Crabcan::new("pdeath");
    let mut child = c.command(&["/bin/sleep", "60"]).spawn().unwrap();
    wait_for_command(&c.hostname, "sleep");
    // SAFETY: kill(2) of the crabcan process we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert!(
        wait_until(10, || processes_in_container_cgroup(&c.hostname).is_empty()),
        "the container outlived crabcan"
    );
    // The stale cgroup is removed by the next crabcan run.
    Crabcan::new("after-pdeath").run(&["/bin/true"]).expect_success();
    assert!(
        container_cgroup_dirs(&c.hostname).is_empty(),
        "the stale cgroup was not cleaned: {:?}",
        container_cgroup_dirs(&c.hostname)
    );
}

#[test]
fn interactive_pty_gives_the_container_its_own_terminal() {
    // `script` gives crabcan a terminal as stdin, so crabcan allocates a pty for the container.
    if !tool_available_or_skip_in_vm("script", "it gives crabcan a terminal") {
        return;
    }
    let c = Crabcan::new("pty");
    let before = HostSnapshot::take();
    let inner = format!(
        "{} --mount {} --hostname {} --tty -- /bin/sh -c 'tty; test -t 0 && echo stdin-is-tty'",
        crabcan_bin().display(),
        rootfs().display(),
        c.hostname
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("/dev/pts/0"),
        "the container's tty is not its own: {stdout}"
    );
    assert!(stdout.contains("stdin-is-tty"), "{stdout}");
    before.assert_clean_after(&c.hostname);
}

fn make_fifo(dir: &TempDir) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let fifo = dir.path().join("start");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o622) }, 0);
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622)).unwrap();
    fifo
}

#[test]
fn container_is_held_until_another_process_opens_the_start_fifo() {
    let gate = TempDir::new("fifo");
    let fifo = make_fifo(&gate);
    let out = TempDir::new("fifo-out");
    own_for_container(out.path());
    let c = Crabcan::new("fifo")
        .args(["--start-fifo", fifo.to_str().unwrap()])
        .args(["--add", &format!("{}:/out", out.path().display())]);
    let before = HostSnapshot::take();
    let mut child = c
        .command(&["/bin/sh", "-c", "echo started > /out/marker"])
        .spawn()
        .unwrap();
    // Set up and held: the process is in its cgroup, but the command has not run.
    assert!(
        wait_until(20, || !processes_in_container_cgroup(&c.hostname).is_empty()),
        "the container was never set up"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !out.path().join("marker").exists(),
        "the command ran before the FIFO was opened"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "crabcan gave up while the container was held"
    );
    // Another process (this test) releases it.
    let released = std::fs::read(&fifo).unwrap();
    assert_eq!(released, b"0");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(std::fs::read_to_string(out.path().join("marker")).unwrap(), "started\n");
    before.assert_clean_after(&c.hostname);
}

#[test]
fn a_held_container_reports_a_missing_command_at_once_and_an_exec_failure_once_released() {
    // A program that is not there fails before the container is held: nobody needs to open
    // the FIFO to learn it.
    let gate = TempDir::new("fifo127");
    let fifo = make_fifo(&gate);
    let c = Crabcan::new("fifo127").args(["--start-fifo", fifo.to_str().unwrap()]);
    let before = HostSnapshot::take();
    let output = c.command(&["/no/such/program"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(127), "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
    before.assert_clean_after(&c.hostname);

    // One that is there but cannot start (its #! interpreter is missing) fails at execve, after
    // the release, and the FIFO's opener is told through crabcan's exit status.
    let dir = TempDir::new("fifo-interp");
    let copy = dir.path().join("rootfs");
    assert!(std::process::Command::new("cp")
        .arg("-a")
        .arg(rootfs())
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    let script = copy.join("bin/needs-perl");
    std::fs::write(&script, "#!/usr/bin/perl\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let gate = TempDir::new("fifo-interp-gate");
    let fifo = make_fifo(&gate);
    let c = Crabcan::new("fifo-interp")
        .rootfs(&copy)
        .args(["--start-fifo", fifo.to_str().unwrap()]);
    let before = HostSnapshot::take();
    let child = c
        .command(&["/bin/needs-perl"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _ = std::fs::read(&fifo).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(127), "{stderr}");
    assert!(stderr.contains("interpreter /usr/bin/perl"), "{stderr}");
    before.assert_clean_after(&c.hostname);
}

#[test]
fn held_container_dies_with_a_signal_to_crabcan() {
    let gate = TempDir::new("fifosig");
    let fifo = make_fifo(&gate);
    let c = Crabcan::new("fifosig").args(["--start-fifo", fifo.to_str().unwrap()]);
    let before = HostSnapshot::take();
    let mut child = c.command(&["/bin/true"]).spawn().unwrap();
    assert!(
        wait_until(20, || !processes_in_container_cgroup(&c.hostname).is_empty()),
        "the container was never set up"
    );
    // SAFETY: kill(2) of the crabcan process we started. The held process (init of its pid
    // namespace, no handler) would discard SIGTERM, so crabcan applies its default action.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(143));
    before.assert_clean_after(&c.hostname);
}

/// The zombie children of `hostname`'s container processes (a zombie has left its cgroup, so
/// it is found through its parent).
fn zombies_of(hostname: &str) -> Vec<i32> {
    let parents = processes_in_container_cgroup(hostname);
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        let (state, ppid) = (fields.next(), fields.next().and_then(|p| p.parse::<i32>().ok()));
        if state == Some("Z") && ppid.is_some_and(|ppid| parents.contains(&ppid)) {
            zombies.push(pid);
        }
    }
    zombies
}

/// `--init`: a pid 1 that forwards signals to the command and reaps orphans, so a command
/// never written to be pid 1 ends on SIGTERM and leaves no zombies.
#[test]
fn init_forwards_signals_and_reaps_orphans() {
    // An orphan ends while the command (exec'd `sleep`, no reaper) runs: without an init it
    // stays a zombie of pid 1.
    let orphan = "sh -c 'sleep 0.2 &'; exec sleep 30";
    for (init, zombies_expected) in [(false, true), (true, false)] {
        let c = Crabcan::new("init-reap").args(if init { vec!["--init"] } else { vec![] });
        let mut child = c.command(&["/bin/sh", "-c", orphan]).spawn().unwrap();
        wait_for_command(&c.hostname, "sleep");
        if zombies_expected {
            let zombie = wait_until(5, || !zombies_of(&c.hostname).is_empty());
            assert!(zombie, "the test needs a zombie without --init");
        } else {
            // The orphan ends 0.2 s in; a zombie of the init would show by then.
            std::thread::sleep(std::time::Duration::from_millis(800));
            assert!(
                zombies_of(&c.hostname).is_empty(),
                "--init left zombies: {:?}",
                zombies_of(&c.hostname)
            );
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let run = Crabcan::new("init-pid")
        .args(["--init"])
        .sh("echo pid=$$; echo init=$(tr '\\0' ' ' < /proc/1/cmdline)");
    run.expect_success();
    assert_eq!(
        run.value("pid").as_deref(),
        Some("2"),
        "the command is not pid 2: {}",
        run.stdout
    );
    let init = run.value("init").unwrap_or_default();
    assert_eq!(
        init.trim(),
        "crabcan-init",
        "no host path in the init's command line: {init}"
    );
    // SIGTERM to crabcan reaches `sleep`, which dies of it: 128 + 15.
    let c = Crabcan::new("init-term").args(["--init"]);
    let before = HostSnapshot::take();
    let mut child = c.command(&["/bin/sleep", "30"]).spawn().unwrap();
    wait_for_command(&c.hostname, "sleep");
    // SAFETY: kill(2) of the crabcan this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(143));
    before.assert_clean_after(&c.hostname);
}

/// Ctrl-C typed at the container's terminal interrupts a command that is not pid 1 (`--init`).
#[test]
fn ctrl_c_behind_a_pty_stops_the_command_with_init() {
    if !tool_available_or_skip_in_vm("script", "it gives crabcan a terminal") {
        return;
    }
    use std::io::Write;
    let c = Crabcan::new("init-ctrl-c");
    let before = HostSnapshot::take();
    let inner = format!(
        "{} --mount {} --hostname {} --init -- sleep 100; echo rc=$?",
        crabcan_bin().display(),
        rootfs().display(),
        c.hostname
    );
    let mut script = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_command(&c.hostname, "sleep");
    script.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let output = script.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("rc=130"),
        "Ctrl-C did not end sleep with SIGINT: {stdout:?}"
    );
    before.assert_clean_after(&c.hostname);
}

/// A crabcan whose stdin is a terminal it is not the foreground of (`crabcan ... &`, `timeout
/// crabcan ...`) takes no pty, so it is never stopped by SIGTTOU.
#[test]
fn a_crabcan_in_the_background_of_a_terminal_does_not_hang() {
    if !tool_available_or_skip_in_vm("script", "it gives crabcan a terminal") {
        return;
    }
    let c = Crabcan::new("background");
    let before = HostSnapshot::take();
    let inner = format!(
        "timeout 20 {} --mount {} --hostname {} -- /bin/true; echo rc=$?",
        crabcan_bin().display(),
        rootfs().display(),
        c.hostname
    );
    let output = std::process::Command::new("timeout")
        .args(["30", "script", "-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("rc=0"),
        "crabcan hung or failed in the background: {stdout:?}"
    );
    before.assert_clean_after(&c.hostname);
}

/// crabcan starts without Rust's runtime start, so it makes sure of what that start did: a
/// closed stdin, stdout or stderr is `/dev/null` (for crabcan and for the command, never a
/// descriptor crabcan opened later), and a reader that goes away is a write error, not a
/// SIGPIPE that would kill crabcan before it cleans up.
#[test]
fn closed_stdio_is_dev_null_and_a_gone_reader_does_not_kill_crabcan() {
    use std::os::unix::process::CommandExt;
    let c = Crabcan::new("stdio");
    let before = HostSnapshot::take();
    let mut command = c.command(&["/bin/sh", "-c", "readlink /proc/self/fd/0 >&2"]);
    // SAFETY: close(2) only, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::close(0);
            Ok(())
        });
    }
    let run = Run::from_output(command.output().unwrap());
    run.expect_success();
    assert_eq!(run.stderr.trim(), "/dev/null", "{run:?}");
    before.assert_clean_after(&c.hostname);

    // A reader that is gone before crabcan writes: its help text is lost, not its life.
    let mut ends = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors, which the Files below own.
    assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
    // SAFETY: both ends were just made and nothing else owns them.
    let (reader, writer) = unsafe {
        use std::os::fd::FromRawFd;
        (std::fs::File::from_raw_fd(ends[0]), std::fs::File::from_raw_fd(ends[1]))
    };
    drop(reader);
    let status = std::process::Command::new(crabcan_bin())
        .arg("--help")
        .stdout(writer)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "killed by SIGPIPE? {status:?}");
}
