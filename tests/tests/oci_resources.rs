//! Every `linux.resources` field of the runtime spec, as the OCI conformance suite
//! (runtime-tools' linux_cgroups_* validations) checks it: a container is created with one group
//! of fields, at an absolute and at a relative `linux.cgroupsPath`, and while it is `created`
//! the host's cgroup files are read where its process is (`/proc/PID/cgroup`, per hierarchy, as
//! the suite finds them). Then it is deleted and nothing of it may be left. A field the host's
//! cgroup version does not have is an error naming it, with nothing left either. The same tests
//! run on this hybrid host and on the VM's pure cgroup v2; what each expects depends on where
//! the host has each controller.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crabcan_tests::*;
use serde_json::{json, Value};

/// The shared OCI test folder ([`crabcan_tests::oci::Oci`]: state root, bundle, containers
/// deleted on drop), with this file's bundle shape and checks.
struct Oci {
    inner: crabcan_tests::oci::Oci,
}

impl Oci {
    fn new(tag: &str) -> Oci {
        Oci {
            inner: crabcan_tests::oci::Oci::new(&format!("res-{tag}")),
        }
    }

    fn root(&self) -> PathBuf {
        self.inner.root()
    }

    fn bundle(&self) -> PathBuf {
        self.inner.bundle()
    }

    /// `crabcan spec`'s bundle with the test rootfs, `sleep 60`, `cgroups_path` and `resources`.
    fn write_bundle(&self, cgroups_path: &str, resources: &Value) {
        self.inner.write_bundle(&["/bin/sleep", "60"], |spec| {
            spec["linux"]["cgroupsPath"] = Value::from(cgroups_path);
            let mut all = spec["linux"]["resources"].clone();
            for (key, value) in resources.as_object().unwrap() {
                all[key] = value.clone();
            }
            spec["linux"]["resources"] = all;
        });
    }

    /// `crabcan --root ROOT ARGS...`, its output in files (a created container keeps them).
    fn crabcan(&self, args: &[&str]) -> Run {
        self.inner.crabcan(args)
    }

    fn create(&self, id: &str) -> Run {
        self.crabcan(&["create", "--bundle", self.bundle().to_str().unwrap(), id])
    }

    fn pid(&self, id: &str) -> i32 {
        let state = self.inner.state(id);
        assert_eq!(state["status"], "created", "{state}");
        state["pid"].as_i64().unwrap() as i32
    }

    /// Nothing of container `id`, whose cgroup was at `cgroups_path` (first component unique to
    /// the test), is left: no state folder, no directory of the path's first component in any
    /// cgroup hierarchy.
    #[track_caller]
    fn assert_gone(&self, id: &str, cgroups_path: &str) {
        assert!(!self.root().join(id).exists(), "the state folder of {id} is left");
        let first = cgroups_path.trim_start_matches('/').split('/').next().unwrap();
        let left: Vec<PathBuf> = cgroup_mounts()
            .into_iter()
            .map(|mount| mount.join(first))
            .filter(|dir| dir.exists())
            .collect();
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }
}

/// Where the host has its cgroup controllers.
struct Host {
    /// v1 controller → its hierarchy's mount point.
    v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 mount point.
    v2: Option<PathBuf>,
}

impl Host {
    fn detect() -> Host {
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for line in std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
            let Some((before, after)) = line.split_once(" - ") else {
                continue;
            };
            let mount = PathBuf::from(before.split(' ').nth(4).unwrap());
            let fields: Vec<&str> = after.split(' ').collect();
            match fields[0] {
                "cgroup2" => v2 = Some(mount),
                "cgroup" => {
                    for option in fields.get(2).copied().unwrap_or_default().split(',') {
                        v1.entry(option.to_owned()).or_insert_with(|| mount.clone());
                    }
                }
                _ => {}
            }
        }
        Host { v1, v2 }
    }

    /// Whether the host drives its containers through cgroup v2 (no v1 controller mounted).
    fn is_v2(&self) -> bool {
        !self.v1.contains_key("memory")
    }

    /// Whether `controller` is available: in a v1 hierarchy or the cgroup2 root's controllers.
    fn has(&self, controller: &str) -> bool {
        self.v1.contains_key(controller) || self.v2_controllers().iter().any(|c| c == controller)
    }

    fn v2_controllers(&self) -> Vec<String> {
        self.v2
            .as_ref()
            .and_then(|root| std::fs::read_to_string(root.join("cgroup.controllers")).ok())
            .map(|text| text.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// The cgroup directories of process `pid` as `/proc/PID/cgroup` gives them: controller →
/// directory on the host (cgroup2's under the key "").
struct Cgroups {
    dirs: BTreeMap<String, PathBuf>,
    /// The cgroup paths, as `/proc/PID/cgroup` shows them.
    paths: BTreeMap<String, String>,
}

impl Cgroups {
    fn of(pid: i32, host: &Host) -> Cgroups {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let mut dirs = BTreeMap::new();
        let mut paths = BTreeMap::new();
        for line in text.lines() {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next(), fields.next().unwrap(), fields.next().unwrap());
            let relative = path.trim_start_matches('/');
            if controllers.is_empty() {
                if let Some(root) = &host.v2 {
                    dirs.insert(String::new(), root.join(relative));
                    paths.insert(String::new(), path.to_owned());
                }
                continue;
            }
            for controller in controllers.split(',') {
                if let Some(mount) = host.v1.get(controller) {
                    dirs.insert(controller.to_owned(), mount.join(relative));
                    paths.insert(controller.to_owned(), path.to_owned());
                }
            }
        }
        Cgroups { dirs, paths }
    }

    /// The directory holding `controller`'s files: its v1 hierarchy's, else cgroup2's.
    fn dir(&self, controller: &str) -> &Path {
        self.dirs
            .get(controller)
            .or_else(|| self.dirs.get(""))
            .unwrap_or_else(|| panic!("the container is in no cgroup with {controller}: {:?}", self.dirs))
    }

    #[track_caller]
    fn read(&self, controller: &str, file: &str) -> String {
        let path = self.dir(controller).join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .trim()
            .to_owned()
    }
}

/// The two forms of `linux.cgroupsPath` the suite uses, both under a first component of the
/// test's own: absolute (relative to each hierarchy's root) and relative.
fn cgroups_paths(id: &str) -> [String; 2] {
    [format!("/{id}-abs/c"), format!("{id}-rel/c")]
}

/// Creates a container with `resources` at each form of cgroups path, runs `check` on its
/// cgroups while it is created, then deletes it and checks nothing is left.
fn with_each_path(tag: &str, resources: Value, check: impl Fn(&Cgroups)) {
    let oci = Oci::new(tag);
    let host = Host::detect();
    let id = unique_hostname(&format!("res-{tag}"));
    let before = HostSnapshot::take();
    for path in cgroups_paths(&id) {
        oci.write_bundle(&path, &resources);
        oci.create(&id).expect_success();
        let cgroups = Cgroups::of(oci.pid(&id), &host);
        // The suite's check: an absolute path is relative to the hierarchy's root, a relative
        // one ends the process's cgroup path.
        let key = if host.is_v2() { "" } else { "memory" };
        let shown = &cgroups.paths[key];
        match path.starts_with('/') {
            true => assert_eq!(shown, &path, "the container's memory cgroup"),
            false => assert!(shown.ends_with(&format!("/{path}")), "{shown} does not end with {path}"),
        }
        check(&cgroups);
        oci.crabcan(&["delete", "--force", &id]).expect_success();
        oci.assert_gone(&id, &path);
    }
    before.assert_clean_after(&id);
}

/// `resources` is refused: exit status 1, one error line containing every one of `needles`,
/// and neither state nor cgroup left.
#[track_caller]
fn refused(tag: &str, resources: Value, needles: &[&str]) {
    let oci = Oci::new(tag);
    let id = unique_hostname(&format!("res-{tag}"));
    let before = HostSnapshot::take();
    let path = format!("/{id}-abs/c");
    oci.write_bundle(&path, &resources);
    let run = oci.create(&id);
    run.expect_code(1);
    let errors: Vec<&str> = run.stderr.lines().filter(|line| line.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {}", run.stderr);
    for needle in needles {
        assert!(errors[0].contains(needle), "{needle:?} is not in: {}", errors[0]);
    }
    oci.assert_gone(&id, &path);
    before.assert_clean_after(&id);
}

const MEMORY: u64 = 50_593_792; // the conformance suite's

#[test]
fn memory_limits_are_written_as_given() {
    let host = Host::detect();
    if host.is_v2() {
        let resources = json!({"memory": {"limit": MEMORY, "reservation": MEMORY / 2}});
        with_each_path("mem", resources, |cgroups| {
            assert_eq!(cgroups.read("memory", "memory.max"), MEMORY.to_string());
            assert_eq!(cgroups.read("memory", "memory.low"), (MEMORY / 2).to_string());
        });
        return;
    }
    let memory_root = &host.v1["memory"];
    let swap = memory_root.join("memory.memsw.limit_in_bytes").exists();
    let mut memory = json!({
        "limit": MEMORY, "reservation": MEMORY / 2, "kernel": MEMORY, "kernelTCP": MEMORY,
        "swappiness": 10, "disableOOMKiller": true
    });
    if swap {
        memory["swap"] = json!(MEMORY * 2);
    }
    with_each_path("mem", json!({ "memory": memory }), |cgroups| {
        assert_eq!(cgroups.read("memory", "memory.limit_in_bytes"), MEMORY.to_string());
        assert_eq!(
            cgroups.read("memory", "memory.soft_limit_in_bytes"),
            (MEMORY / 2).to_string()
        );
        assert_eq!(cgroups.read("memory", "memory.swappiness"), "10");
        assert!(
            cgroups
                .read("memory", "memory.oom_control")
                .contains("oom_kill_disable 1"),
            "the OOM killer is on"
        );
        if swap {
            assert_eq!(
                cgroups.read("memory", "memory.memsw.limit_in_bytes"),
                (MEMORY * 2).to_string()
            );
        }
    });
}

#[test]
fn v1_only_memory_settings_are_refused_on_cgroup_v2() {
    if !Host::detect().is_v2() {
        refused(
            "swp",
            json!({"memory": {"swappiness": 101}}),
            &["linux.resources.memory.swappiness", "0 to 100"],
        );
        return;
    }
    refused(
        "swp",
        json!({"memory": {"limit": MEMORY, "swappiness": 10}}),
        &["memory swappiness", "cgroup v2", "memory.swappiness"],
    );
    refused(
        "oom",
        json!({"memory": {"disableOOMKiller": true}}),
        &["OOM killer", "cgroup v2"],
    );
}

#[test]
fn cpu_shares_quota_period_and_cpusets_are_written_as_given() {
    let host = Host::detect();
    let cpuset = host.has("cpuset");
    let mut cpu = json!({"shares": 2048, "quota": 200000, "period": 500000});
    if cpuset {
        cpu["cpus"] = json!("0");
        cpu["mems"] = json!("0");
    }
    with_each_path("cpu", json!({ "cpu": cpu }), |cgroups| {
        if host.is_v2() {
            // runc's conversion of shares to a weight: 1024 shares are the default weight 100.
            assert_eq!(cgroups.read("cpu", "cpu.weight"), "174");
            assert_eq!(cgroups.read("cpu", "cpu.max"), "200000 500000");
        } else {
            assert_eq!(cgroups.read("cpu", "cpu.shares"), "2048");
            assert_eq!(cgroups.read("cpu", "cpu.cfs_quota_us"), "200000");
            assert_eq!(cgroups.read("cpu", "cpu.cfs_period_us"), "500000");
        }
        if cpuset {
            assert_eq!(cgroups.read("cpuset", "cpuset.cpus"), "0");
            assert_eq!(cgroups.read("cpuset", "cpuset.mems"), "0");
            if let Some(root) = host.v1.get("cpuset") {
                // The parent crabcan made got the root's CPUs and memory nodes first.
                let parent = cgroups.dir("cpuset").parent().unwrap();
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let inherited = std::fs::read_to_string(parent.join(file)).unwrap();
                    assert_eq!(inherited, std::fs::read_to_string(root.join(file)).unwrap(), "{file}");
                }
            }
        }
    });
    if !cpuset {
        refused("cpuset", json!({"cpu": {"cpus": "0"}}), &["cpuset"]);
    }
}

#[test]
fn realtime_cpu_time_on_v1_and_refused_on_v2() {
    let host = Host::detect();
    let resources = json!({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 10000}});
    if host.is_v2() {
        refused("rt", resources, &["realtime CPU", "cgroup v2", "cpu.rt_runtime_us"]);
        return;
    }
    if !host.v1["cpu"].join("cpu.rt_runtime_us").exists() {
        refused("rt", resources, &["realtime group scheduling", "cpu.rt_period_us"]);
        return;
    }
    // The realtime budget of a cgroup comes out of its parent's: only the root has one, so the
    // cgroup is made right under it.
    let oci = Oci::new("rt");
    let id = unique_hostname("res-rt");
    let before = HostSnapshot::take();
    for path in [format!("/{id}"), id.clone()] {
        oci.write_bundle(&path, &resources);
        oci.create(&id).expect_success();
        let cgroups = Cgroups::of(oci.pid(&id), &host);
        assert_eq!(cgroups.read("cpu", "cpu.rt_period_us"), "1000000");
        assert_eq!(cgroups.read("cpu", "cpu.rt_runtime_us"), "10000");
        oci.crabcan(&["delete", "--force", &id]).expect_success();
        oci.assert_gone(&id, &path);
    }
    before.assert_clean_after(&id);
}

/// A whole disk of this machine (`MAJOR:MINOR`), to throttle. `None` in the test VM, which
/// has none (an initramfs and no block driver modules), after saying so.
fn a_block_device() -> Option<(u64, u64)> {
    let mut disks: Vec<(u64, u64)> = std::fs::read_dir("/sys/block")
        .expect("cannot list /sys/block")
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("dev")).ok())
        .filter_map(|dev| {
            let (major, minor) = dev.trim().split_once(':')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        })
        .collect();
    disks.sort();
    if disks.is_empty() && std::env::var_os("CRABCAN_IN_VM").is_some() {
        println!("crabcan-skip: the VM has no block device to throttle; this test runs on the host");
        return None;
    }
    Some(
        *disks
            .first()
            .expect("this machine has no block device in /sys/block to throttle"),
    )
}

#[test]
fn block_io_throttles_per_device() {
    let host = Host::detect();
    let Some((major, minor)) = a_block_device() else {
        return;
    };
    let device = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
    let resources = json!({"blockIO": {
        "throttleReadBpsDevice": device(102400), "throttleWriteBpsDevice": device(204800),
        "throttleReadIOPSDevice": device(300), "throttleWriteIOPSDevice": device(400)
    }});
    with_each_path("blkio", resources, |cgroups| {
        let disk = format!("{major}:{minor}");
        if host.is_v2() {
            let max = cgroups.read("io", "io.max");
            let line = max
                .lines()
                .find(|l| l.starts_with(&format!("{disk} ")))
                .unwrap_or_default();
            assert_eq!(
                line,
                format!("{disk} rbps=102400 wbps=204800 riops=300 wiops=400"),
                "{max}"
            );
        } else {
            for (file, rate) in [
                ("blkio.throttle.read_bps_device", 102400),
                ("blkio.throttle.write_bps_device", 204800),
                ("blkio.throttle.read_iops_device", 300),
                ("blkio.throttle.write_iops_device", 400),
            ] {
                assert_eq!(cgroups.read("blkio", file), format!("{disk} {rate}"), "{file}");
            }
        }
    });
}

#[test]
fn block_io_leaf_weights_need_v1_with_cfq() {
    let host = Host::detect();
    let resources = json!({"blockIO": {"leafWeight": 300}});
    if host.is_v2() {
        refused("leaf", resources, &["I/O leaf weight", "cgroup v2"]);
    } else if !host.v1["blkio"].join("blkio.leaf_weight").exists() {
        refused("leaf", resources, &["I/O leaf weight", "blkio.leaf_weight is missing"]);
    } else {
        with_each_path("leaf", resources, |cgroups| {
            assert_eq!(cgroups.read("blkio", "blkio.leaf_weight"), "300")
        });
    }
}

/// The page sizes of this machine as the kernel names them in hugetlb files (`2MB`, `1GB`).
fn page_sizes() -> Vec<String> {
    let mut sizes: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|listing| {
            listing
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let kib: u64 = name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
                    Some(match kib {
                        k if k % (1 << 20) == 0 => format!("{}GB", k >> 20),
                        k if k % (1 << 10) == 0 => format!("{}MB", k >> 10),
                        k => format!("{k}KB"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort();
    sizes
}

#[test]
fn hugepage_limits_per_page_size() {
    let host = Host::detect();
    let sizes = page_sizes();
    if !host.has("hugetlb") {
        refused(
            "huge",
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}),
            &["hugetlb"],
        );
        return;
    }
    assert!(
        !sizes.is_empty(),
        "the host has a hugetlb controller but no /sys/kernel/mm/hugepages sizes"
    );
    // As Kubernetes sends them: one per page size, 0 for those the pod gets none of.
    let limits: Vec<Value> = sizes
        .iter()
        .enumerate()
        .map(|(i, size)| json!({"pageSize": size, "limit": if i == 0 { 2u64 << 30 } else { 0 }}))
        .collect();
    let on_v1 = host.v1.contains_key("hugetlb");
    with_each_path("huge", json!({ "hugepageLimits": limits }), |cgroups| {
        for (i, size) in sizes.iter().enumerate() {
            let file = match on_v1 {
                true => format!("hugetlb.{size}.limit_in_bytes"),
                false => format!("hugetlb.{size}.max"), // v2, or a hybrid host's cgroup2 mount
            };
            let expected = if i == 0 {
                (2u64 << 30).to_string()
            } else {
                "0".to_owned()
            };
            assert_eq!(cgroups.read("hugetlb", &file), expected, "{file}");
        }
    });
    // runtime-tools' wrong page size: the kernel has no such files.
    refused(
        "huge3",
        json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 314572800}]}),
        &["hugetlb.3MB"],
    );
    refused(
        "hugebad",
        json!({"hugepageLimits": [{"pageSize": "2MB/../x", "limit": 0}]}),
        &["linux.resources.hugepageLimits"],
    );
}

#[test]
fn network_class_id_and_priorities_are_cgroup_v1_controllers() {
    let host = Host::detect();
    let resources = json!({"network": {"classID": 255, "priorities": [{"name": "lo", "priority": 10}]}});
    if host.is_v2() {
        refused("net", resources, &["network class id", "cgroup v2"]);
    } else if !host.v1.contains_key("net_cls") {
        refused("net", resources, &["no 'net_cls' cgroup controller"]);
    } else if !host.v1.contains_key("net_prio") {
        refused("net", resources, &["no 'net_prio' cgroup controller"]);
    } else {
        with_each_path("net", resources, |cgroups| {
            assert_eq!(cgroups.read("net_cls", "net_cls.classid"), "255");
            let map = cgroups.read("net_prio", "net_prio.ifpriomap");
            assert!(map.lines().any(|line| line == "lo 10"), "{map}");
        });
    }
}

#[test]
fn pids_limit() {
    with_each_path("pids", json!({"pids": {"limit": 20}}), |cgroups| {
        assert_eq!(cgroups.read("pids", "pids.max"), "20");
    });
}

#[test]
fn unified_files_on_cgroup_v2_only() {
    let host = Host::detect();
    let resources = json!({"unified": {"pids.max": "7", "memory.high": "67108864"}});
    if host.is_v2() {
        with_each_path("unified", resources, |cgroups| {
            assert_eq!(cgroups.read("pids", "pids.max"), "7");
            assert_eq!(cgroups.read("memory", "memory.high"), "67108864");
        });
    } else {
        refused("unified", resources, &["cgroup v2 unified setting", "cgroup v1"]);
    }
    refused(
        "unipath",
        json!({"unified": {"../../pids.max": "1"}}),
        &["linux.resources.unified", "../../pids.max"],
    );
    refused(
        "uniprocs",
        json!({"unified": {"cgroup.procs": "1"}}),
        &["linux.resources.unified", "cgroup.procs"],
    );
}

#[test]
fn update_writes_the_new_limits_to_the_live_cgroup() {
    let oci = Oci::new("update");
    let host = Host::detect();
    let id = unique_hostname("res-update");
    let before = HostSnapshot::take();
    let path = format!("/{id}-abs/c");
    oci.write_bundle(&path, &json!({"memory": {"limit": MEMORY}, "cpu": {"shares": 512}}));
    oci.create(&id).expect_success();
    let cgroups = Cgroups::of(oci.pid(&id), &host);
    let resources = oci.inner.scratch.path().join("resources.json");
    let new = json!({
        "memory": {"limit": MEMORY * 2, "reservation": MEMORY},
        "cpu": {"shares": 1024, "quota": 50000, "period": 250000},
        "pids": {"limit": 30}
    });
    std::fs::write(&resources, new.to_string()).unwrap();
    oci.crabcan(&["update", "--resources", resources.to_str().unwrap(), &id])
        .expect_success();
    assert_eq!(cgroups.read("pids", "pids.max"), "30");
    if host.is_v2() {
        assert_eq!(cgroups.read("memory", "memory.max"), (MEMORY * 2).to_string());
        assert_eq!(cgroups.read("memory", "memory.low"), MEMORY.to_string());
        assert_eq!(cgroups.read("cpu", "cpu.weight"), "100");
        assert_eq!(cgroups.read("cpu", "cpu.max"), "50000 250000");
    } else {
        assert_eq!(
            cgroups.read("memory", "memory.limit_in_bytes"),
            (MEMORY * 2).to_string()
        );
        assert_eq!(cgroups.read("memory", "memory.soft_limit_in_bytes"), MEMORY.to_string());
        assert_eq!(cgroups.read("cpu", "cpu.shares"), "1024");
        assert_eq!(cgroups.read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroups.read("cpu", "cpu.cfs_period_us"), "250000");
    }
    if host.has("cpuset") {
        std::fs::write(&resources, json!({"cpu": {"cpus": "0"}}).to_string()).unwrap();
        let run = oci.crabcan(&["update", "--resources", resources.to_str().unwrap(), &id]);
        if host.is_v2() {
            // Every controller the host offers is enabled for the cgroup when it is made.
            run.expect_success();
            assert_eq!(cgroups.read("cpuset", "cpuset.cpus"), "0");
        } else {
            // A v1 cgroup made without a cpuset directory cannot get one while it runs.
            run.expect_code(1);
            assert!(run.stderr.contains("no 'cpuset' controller"), "{}", run.stderr);
        }
    }
    oci.crabcan(&["delete", "--force", &id]).expect_success();
    oci.assert_gone(&id, &path);
    before.assert_clean_after(&id);
}
