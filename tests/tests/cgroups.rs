//! Cgroup limits through the real CLI: the cgroup exists while the container runs and carries
//! the limits, an OOM kill is reported with 137, a fork bomb stops at --pids, and the cgroup is
//! gone afterwards on every path (normal exit, setup failure, kill -9 of the command or of
//! crabcan itself). Runs on whatever layout the host has: hybrid here, pure v2 in the test VM.

use crabcan_tests::*;

fn read_trimmed(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The limit file among the container's cgroup dirs, whichever hierarchy has it.
fn limit_file(dirs: &[std::path::PathBuf], names: &[&str]) -> Option<String> {
    dirs.iter()
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|p| p.exists())
        .map(|p| read_trimmed(&p))
}

#[test]
fn cgroup_exists_while_running_carries_limits_and_is_removed() {
    let c = Crabcan::new("cg-life").args([
        "--memory",
        "96M",
        "--pids",
        "20",
        "--cpus",
        "0.5",
        "--cpu-weight",
        "100",
        "--io-weight",
        "200",
    ]);
    let before = HostSnapshot::take();
    let mut child = c.command(&["/bin/sleep", "30"]).spawn().unwrap();
    wait_for_command(&c.hostname, "sleep");
    let dirs = container_cgroup_dirs(&c.hostname);
    assert!(!dirs.is_empty(), "no cgroup for the running container");
    assert_eq!(
        limit_file(&dirs, &["memory.max", "memory.limit_in_bytes"]).as_deref(),
        Some("100663296")
    );
    assert_eq!(limit_file(&dirs, &["pids.max"]).as_deref(), Some("20"));
    let cpu = limit_file(&dirs, &["cpu.max", "cpu.cfs_quota_us"]).unwrap();
    assert!(cpu == "50000 100000" || cpu == "50000", "cpu limit {cpu}");
    // Weight 100 on v2 is 2598 shares on v1 (the conversion runc and crun use).
    let weight = limit_file(&dirs, &["cpu.weight", "cpu.shares"]).unwrap();
    assert!(weight == "100" || weight == "2598", "cpu weight {weight}");
    // The I/O weight is best effort (hosts without BFQ or io.cost have no file for it).
    if let Some(io) = limit_file(
        &dirs,
        &["io.weight", "io.bfq.weight", "blkio.weight", "blkio.bfq.weight"],
    ) {
        assert!(io.ends_with("200") || io.contains("default 200"), "io weight {io}");
    }
    // The container's own view: its cgroup namespace root is its cgroup.
    let pid = processes_in_container_cgroup(&c.hostname)[0];
    assert!(std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .contains(&format!("/crabcan/{}.", c.hostname)));
    for pid in processes_in_container_cgroup(&c.hostname) {
        // SAFETY: kill(2) of the container's process, found through its cgroup.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert_eq!(child.wait().unwrap().code(), Some(137));
    before.assert_clean_after(&c.hostname);
}

/// Language runtimes size themselves from the cgroup files: the container sees its own limits
/// at /sys/fs/cgroup (cgroup2 on v2 hosts, one folder per joined hierarchy on v1), read-only.
#[test]
fn container_sees_its_own_limits_in_a_read_only_cgroupfs() {
    let run = Crabcan::new("cg-view").args(["--memory", "64M", "--pids", "20"]).sh(
        "echo memory=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
         echo pids=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max); \
         echo ro=$(awk '$2 == \"/sys/fs/cgroup\" {print $4}' /proc/mounts | cut -d, -f1)",
    );
    run.expect_success();
    assert_eq!(run.value("memory").as_deref(), Some("67108864"), "{}", run.stdout);
    assert_eq!(run.value("pids").as_deref(), Some("20"), "{}", run.stdout);
    assert_eq!(run.value("ro").as_deref(), Some("ro"), "{}", run.stdout);
    let without = Crabcan::new("cg-none")
        .args(["--no-cgroup"])
        .sh("echo entries=$(ls /sys/fs/cgroup | wc -l)");
    without.expect_success();
    assert_eq!(
        without.value("entries").as_deref(),
        Some("0"),
        "no cgroup of its own: crabcan's must not be shown: {}",
        without.stdout
    );
}

/// A child killed by the OOM killer is a fact to report, not the command's fate: the command's
/// own status stays, with a warning line.
#[test]
fn an_oom_killed_child_leaves_the_commands_status() {
    let run = Crabcan::new("oom-child")
        .args(["--memory", "64M"])
        .sh("dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null; sleep 1; exit 3");
    run.expect_code(3);
    assert!(
        run.stderr
            .contains("a process of the container was killed: out of memory (limit 64 MiB)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("container killed"), "{}", run.stderr);
    let ok = Crabcan::new("oom-child-0")
        .args(["--memory", "64M"])
        .sh("dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null; exit 0");
    ok.expect_code(0);
}

#[test]
fn container_sees_its_cgroup_as_root() {
    let run = Crabcan::new("cg-ns").run(&["/bin/cat", "/proc/self/cgroup"]);
    run.expect_success();
    for line in run.stdout.lines() {
        let path = line.rsplit(':').next().unwrap();
        assert_eq!(path, "/", "the container sees a host cgroup path: {line}");
    }
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let run = Crabcan::new("cg-oom")
        .args(["--memory", "64M"])
        .run(&["/usr/bin/tail", "/dev/zero"]);
    run.expect_code(137);
    assert!(
        run.stderr.contains("container killed: out of memory (limit 64 MiB)"),
        "{}",
        run.stderr
    );
}

#[test]
fn fork_loop_stops_at_the_pids_limit() {
    // The container tries to start 100 sleepers; the host counts what really runs.
    let c = Crabcan::new("cg-pids").args(["--pids", "32"]);
    let before = HostSnapshot::take();
    let mut child = c
        .command(&[
            "/bin/sh",
            "-c",
            "( i=0; while [ $i -lt 100 ]; do sleep 2 & i=$((i+1)); done ) 2>/dev/null; sleep 2",
        ])
        .spawn()
        .unwrap();
    let mut most = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while std::time::Instant::now() < deadline {
        most = most.max(processes_in_container_cgroup(&c.hostname).len());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(most <= 32, "{most} processes ran with --pids 32");
    assert!(most >= 20, "only {most} processes: the loop did not really run");
    before.assert_clean_after(&c.hostname);
}

#[test]
fn cgroup_is_removed_after_a_setup_failure() {
    let c = Crabcan::new("cg-setupfail");
    let run = c.run(&["/no/such/command"]);
    run.expect_code(127);
    // `run` already checked the host; check again explicitly for the cgroup.
    assert!(container_cgroup_dirs(&c.hostname).is_empty());
}

#[test]
fn no_cgroup_flag_runs_without_one() {
    let c = Crabcan::new("cg-none").args(["--no-cgroup"]);
    let mut child = c.command(&["/bin/sleep", "5"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(container_cgroup_dirs(&c.hostname).is_empty());
    // SAFETY: kill(2) of the crabcan process we started; its child dies with it.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

/// The v1 hierarchies (mount point names) the running container `c`'s cgroup is in.
fn joined_hierarchies(c: &Crabcan) -> Vec<String> {
    let mut names: Vec<String> = container_cgroup_dirs(&c.hostname)
        .iter()
        .filter_map(|dir| dir.parent()?.parent()?.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// On cgroup v1, a direct run joins the hierarchies its limits are in (memory, pids, cpu, and
/// blkio where a block device uses BFQ, the one scheduler that applies the default I/O weight,
/// or where `--io-weight` asks for one), not freezer and cpuacct, which a run that is never
/// paused and reads no CPU time does not need (a hierarchy co-mounted with cpu is joined with
/// it); `--debug`, which reports the CPU time, joins cpuacct too. On v2 the one cgroup has
/// everything.
#[test]
fn a_direct_run_joins_only_the_v1_hierarchies_it_uses() {
    let mounts = cgroup_mounts();
    let v1: Vec<String> = mounts
        .iter()
        .filter(|m| !m.join("cgroup.controllers").exists())
        .filter_map(|m| m.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    // Whether a device's queue uses BFQ: the blkio root lists such devices (`MAJ:MIN ...`).
    let bfq_in_use = mounts
        .iter()
        .find(|m| m.file_name().is_some_and(|n| n == "blkio"))
        .and_then(|m| std::fs::read_to_string(m.join("blkio.bfq.io_serviced")).ok())
        .is_some_and(|listing| listing.starts_with(|c: char| c.is_ascii_digit()));
    for (debug, io_weight, tag) in [
        (false, false, "cg-lean"),
        (true, false, "cg-lean-debug"),
        (false, true, "cg-lean-io"),
    ] {
        let c = Crabcan::new(tag);
        let c = if debug { c.args(["--debug"]) } else { c };
        let c = if io_weight { c.args(["--io-weight", "100"]) } else { c };
        let before = HostSnapshot::take();
        let mut child = c.command(&["/bin/sleep", "30"]).spawn().unwrap();
        wait_for_command(&c.hostname, "sleep");
        let joined = joined_hierarchies(&c);
        if v1.is_empty() {
            assert_eq!(
                container_cgroup_dirs(&c.hostname).len(),
                1,
                "one cgroup on v2: {joined:?}"
            );
        } else {
            for wanted in ["memory", "pids"] {
                assert!(joined.iter().any(|h| h == wanted), "{wanted} not joined: {joined:?}");
            }
            let blkio = joined.iter().any(|h| h == "blkio");
            assert_eq!(
                blkio,
                io_weight || bfq_in_use,
                "blkio joined for an I/O weight that takes effect or is asked for (BFQ in use: {bfq_in_use}): {joined:?}"
            );
            assert!(
                joined.iter().any(|h| h.split(',').any(|c| c == "cpu")),
                "cpu not joined: {joined:?}"
            );
            assert!(!joined.iter().any(|h| h == "freezer"), "freezer joined: {joined:?}");
            let cpuacct = joined.iter().any(|h| h.split(',').any(|c| c == "cpuacct"));
            let co_mounted = v1
                .iter()
                .any(|h| h.split(',').any(|c| c == "cpu") && h.contains("cpuacct"));
            assert_eq!(cpuacct, debug || co_mounted, "cpuacct with --debug only: {joined:?}");
        }
        for pid in processes_in_container_cgroup(&c.hostname) {
            // SAFETY: kill(2) of the container's process, found through its cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        assert_eq!(child.wait().unwrap().code(), Some(137));
        before.assert_clean_after(&c.hostname);
    }
}
