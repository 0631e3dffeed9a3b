//! The classic container escapes, as functions of where they run (a [`Target`]: a rootfs, and
//! root or an ordinary user running crabcan): `tests/escapes.rs` tries each in the busybox test
//! rootfs, `tests/debian.rs` again in a Debian rootfs (glibc, util-linux, python), and
//! `tests/rootless.rs` in a rootless container. Each must fail. The scripts use only POSIX sh and
//! tools both rootfs have.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use crate::*;

/// CVE-2022-0492: mount a cgroup v1 hierarchy and write its release_agent. Needs mount (seccomp
/// and no CAP_SYS_ADMIN refuse it) or a new user namespace (refused too). The container's own
/// read-only cgroup view at /sys/fs/cgroup shows no hierarchy root, so no release_agent.
pub fn cgroup_release_agent_cannot_be_reached(target: &Target) {
    let run = target.crabcan("esc-cgroup").sh(
        "mkdir -p /tmp/cg; mount -t cgroup -o memory cgroup /tmp/cg 2>/dev/null && echo mounted=yes || echo mounted=no; \
         unshare -Urm true 2>/dev/null && echo userns=yes || echo userns=no; \
         echo release_agents=$(find /sys/fs/cgroup -name release_agent 2>/dev/null | wc -l); \
         echo x > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo wrote=yes || echo wrote=no; \
         echo x > /sys/fs/cgroup/memory.max 2>/dev/null && echo wrote2=yes || echo wrote2=no",
    );
    run.expect_success();
    assert_eq!(run.value("mounted").as_deref(), Some("no"), "{}", run.stdout);
    assert_eq!(run.value("userns").as_deref(), Some("no"), "{}", run.stdout);
    assert_eq!(run.value("release_agents").as_deref(), Some("0"), "{}", run.stdout);
    assert_eq!(run.value("wrote").as_deref(), Some("no"), "{}", run.stdout);
    assert_eq!(run.value("wrote2").as_deref(), Some("no"), "{}", run.stdout);
}

/// Runs crabcan with `fd` inherited (close-on-exec cleared), and checks the host afterwards.
fn run_inheriting(c: &Crabcan, command: &[&str], fd: i32) -> std::process::Output {
    let before = HostSnapshot::take();
    let mut process = c.command(command);
    // SAFETY: clearing FD_CLOEXEC in the forked child before exec; no allocation happens.
    unsafe {
        process.pre_exec(move || {
            libc::fcntl(fd, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let output = process.output().expect("cannot start crabcan");
    before.assert_clean_after(&c.hostname);
    output
}

/// CVE-2024-21626: a descriptor inherited from crabcan's caller must not reach the container,
/// neither as an fd nor as a working directory through /proc/self/fd.
pub fn inherited_directory_descriptors_do_not_leak(target: &Target) {
    let host_dir = std::fs::File::open("/etc").unwrap();
    let fd = host_dir.as_raw_fd();
    let output = run_inheriting(
        &target.crabcan("esc-fd"),
        &["/bin/sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"],
        fd,
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        descriptors_beyond_stdio(&listing).len() <= 1,
        "fd {fd} leaked: {listing}"
    );

    let c = target
        .crabcan("esc-cwd")
        .args(["--workdir", &format!("/proc/self/fd/{fd}")]);
    let output = run_inheriting(&c, &["/bin/sh", "-c", "pwd; ls"], fd);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("passwd"),
        "the container reached the host's /etc: {stdout}"
    );
    assert_eq!(
        output.status.code(),
        Some(125),
        "a working directory through a leaked fd must be refused"
    );
}

/// CVE-2019-5736: the container must not find crabcan's binary through /proc.
pub fn crabcan_binary_cannot_be_overwritten_through_proc(target: &Target) {
    let run = target
        .crabcan("esc-exe")
        .sh("for p in /proc/[0-9]*; do readlink $p/exe; done | tr '\\n' ' '; echo; \
         echo x >> /proc/1/exe 2>/dev/null && echo wrote=yes || echo wrote=no");
    run.expect_success();
    assert!(!run.stdout.contains("crabcan"), "{}", run.stdout);
    assert_eq!(run.value("wrote").as_deref(), Some("no"));
}

/// TIOCSTI: even on a real terminal, the container cannot push input into it.
pub fn tiocsti_cannot_inject_into_the_callers_terminal(target: &Target) {
    if !tool_available_or_skip_in_vm("script", "it gives crabcan a terminal") {
        return;
    }
    let probe = probe_dir();
    let c = target.crabcan("esc-tiocsti");
    let inner = format!(
        "{} --mount {} --hostname {} --no-tty --add {}:/probe:ro -- /probe/crabcan-probe tiocsti tiocgwinsz",
        target.crabcan_bin().display(),
        target.rootfs.display(),
        c.hostname,
        probe.path().display()
    );
    let output = target
        .host_command("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("tiocsti=EPERM"), "{stdout}");
    // The terminal itself still works for ordinary ioctls.
    assert!(stdout.contains("tiocgwinsz=OK"), "{stdout}");
}

/// keyctl and open_by_handle_at: the host keyring and file handles stay out of reach.
pub fn keyring_and_file_handles_are_refused(target: &Target) {
    let results = probe_on(target, "esc-keys", &[], &["keyctl", "add_key", "open_by_handle_at"]);
    for check in ["keyctl", "add_key", "open_by_handle_at"] {
        assert_eq!(
            results.get(check).map(String::as_str),
            Some("EPERM"),
            "{check}: {results:?}"
        );
    }
}

/// A device node made inside the container cannot be used (no CAP_MKNOD over real devices in a
/// user namespace, and the rootfs' mounts are nodev where it matters).
pub fn host_block_devices_cannot_be_created(target: &Target) {
    let run = target.crabcan("esc-mknod").sh("mknod /tmp/sda b 8 0 2>/dev/null && echo made=yes || echo made=no; head -c1 /tmp/sda 2>/dev/null && echo read=yes || echo read=no");
    run.expect_success();
    assert_eq!(run.value("read").as_deref(), Some("no"), "{}", run.stdout);
}
