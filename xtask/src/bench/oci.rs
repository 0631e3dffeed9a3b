//! The OCI bundles for crun, runc and crabcan's OCI mode, all on the bench
//! rootfs:
//!
//! - "default spec": what `crun spec` writes (pid, network, ipc, uts and
//!   mount namespaces, three capabilities, no seccomp, no user or cgroup
//!   namespace, no limits), running `/bin/true` without a terminal. One
//!   change: the ambient capability set is empty. `crun spec` (and `runc
//!   spec`) list the three capabilities as ambient but none as inheritable,
//!   so the kernel refuses to raise them (`PR_CAP_AMBIENT_RAISE`: EPERM);
//!   crun and runc drop that error silently (the container runs with
//!   `CapAmb: 0`), crabcan refuses the config. Empty, the set is what crun
//!   and runc end up with anyway.
//! - "full": comparable to crabcan's default isolation: adds the user
//!   namespace (0→100000, 65536 ids, so the rootfs ownership matches), the
//!   cgroup namespace, memory 1 GiB and pids 64 limits, and the seccomp
//!   profile crabcan uses by default (`crabcan_seccomp`'s Docker-equivalent
//!   profile, as OCI JSON).
//!
//! Both have `noNewPrivileges` and a writable root (like crabcan's).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::runtimes::Spec;

/// Host ids of container id 0, and how many.
const ID_OFFSET: u32 = 100_000;
const ID_COUNT: u32 = 65_536;

/// Writes `<dir>/default/config.json` and `<dir>/full/config.json`;
/// returns the two bundle dirs.
pub fn write_bundles(dir: &Path, rootfs: &Path) -> Result<(PathBuf, PathBuf), String> {
    let default = write_bundle(&dir.join("default"), &config(rootfs, Spec::Default)?)?;
    let full = write_bundle(&dir.join("full"), &config(rootfs, Spec::Full)?)?;
    Ok((default, full))
}

fn write_bundle(bundle: &Path, config: &Value) -> Result<PathBuf, String> {
    std::fs::create_dir_all(bundle).map_err(|e| format!("creating {}: {e}", bundle.display()))?;
    let path = bundle.join("config.json");
    let text = serde_json::to_string_pretty(config).map_err(|e| format!("serialising {}: {e}", path.display()))?;
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(bundle.to_path_buf())
}

/// The config.json of one bundle.
pub fn config(rootfs: &Path, spec: Spec) -> Result<Value, String> {
    let mut config = default_spec(rootfs);
    if spec == Spec::Full {
        make_full(&mut config)?;
    }
    Ok(config)
}

fn default_spec(rootfs: &Path) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.0",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "inheritable": [], "permitted": caps, "ambient": []
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": rootfs.display().to_string(), "readonly": false },
        "hostname": "bench",
        "mounts": mounts(),
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": namespaces(&["pid", "network", "ipc", "uts", "mount"]),
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// `crun spec`'s mounts.
fn mounts() -> Value {
    json!([
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
          "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
        { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
          "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
        { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
          "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
        { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
          "options": ["nosuid", "noexec", "nodev"] },
        { "destination": "/sys", "type": "sysfs", "source": "sysfs",
          "options": ["nosuid", "noexec", "nodev", "ro"] },
        { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
    ])
}

fn namespaces(kinds: &[&str]) -> Value {
    Value::Array(kinds.iter().map(|kind| json!({ "type": kind })).collect())
}

/// Adds what crabcan does by default and the default spec does not.
fn make_full(config: &mut Value) -> Result<(), String> {
    let mapping = json!([{ "containerID": 0, "hostID": ID_OFFSET, "size": ID_COUNT }]);
    let seccomp = default_seccomp()?;
    let linux = config
        .get_mut("linux")
        .and_then(Value::as_object_mut)
        .ok_or("the default spec has no linux section")?;
    linux.insert(
        "namespaces".to_string(),
        namespaces(&["pid", "network", "ipc", "uts", "mount", "user", "cgroup"]),
    );
    linux.insert("uidMappings".to_string(), mapping.clone());
    linux.insert("gidMappings".to_string(), mapping);
    linux.insert(
        "resources".to_string(),
        json!({
            "devices": [{ "allow": false, "access": "rwm" }],
            "memory": { "limit": 1u64 << 30 },
            "pids": { "limit": 64 }
        }),
    );
    linux.insert("seccomp".to_string(), seccomp);
    Ok(())
}

/// crabcan's default seccomp profile as an OCI `linux.seccomp` object.
fn default_seccomp() -> Result<Value, String> {
    let text = crabcan_seccomp::Profile::default_profile().to_oci_json();
    serde_json::from_str(&text).map_err(|e| format!("crabcan's default seccomp profile as OCI JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_adds_user_namespace_limits_and_seccomp() {
        let default = config(Path::new("/r"), Spec::Default).expect("default");
        let full = config(Path::new("/r"), Spec::Full).expect("full");
        assert!(default["linux"].get("seccomp").is_none());
        assert_eq!(full["linux"]["namespaces"].as_array().map(Vec::len), Some(7));
        assert_eq!(full["linux"]["uidMappings"][0]["hostID"], 100_000);
        assert_eq!(full["linux"]["resources"]["pids"]["limit"], 64);
        assert!(full["linux"]["seccomp"]["syscalls"]
            .as_array()
            .is_some_and(|s| !s.is_empty()));
        assert_eq!(full["root"]["path"], "/r");
        // No ambient capability that is not also inheritable: it cannot be raised.
        let caps = &default["process"]["capabilities"];
        assert_eq!(caps["ambient"], json!([]));
        assert_eq!(caps["inheritable"], json!([]));
    }
}
