//! How crabcan's start-to-exit grows with its configuration: 0, 10 and 100
//! `--add` bind mounts (one read-only host dir bound to distinct targets),
//! the seccomp profiles `unconfined`, `tutorial`, `default` and a
//! generated 300-rule Docker/OCI JSON profile, and without a cgroup.
//!
//! The bind targets are created in the rootfs beforehand (owned by the
//! container's root) and removed afterwards, so the runs measure mounting,
//! not mkdir.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Where the bind targets live inside the rootfs.
const BIND_DIR: &str = "mnt/xtask-bench";
/// Owner of the bind targets: the container's root on the host.
const CONTAINER_ROOT: u32 = 100_000;
/// Rules in the generated profile.
pub const BIG_PROFILE_RULES: usize = 300;

/// Real x86_64 syscalls that `/bin/true` and crabcan's exec path can do
/// without: the generated profile denies each only for arguments no one
/// passes, so every rule is compiled and checked but none fires.
const PROFILE_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "adjtimex",
    "bpf",
    "chroot",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "migrate_pages",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "personality",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "syslog",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vmsplice",
];

/// One configuration of crabcan.
#[derive(Debug, Clone)]
pub struct Variant {
    pub label: String,
    pub args: Vec<OsString>,
}

/// The bind-mount variants: `--add SRC:/mnt/xtask-bench/bN:ro` × n.
pub fn bind_variants(source: &Path) -> Vec<Variant> {
    [0usize, 10, 100]
        .into_iter()
        .map(|n| Variant {
            label: format!("{n} `--add` bind mounts"),
            args: (0..n)
                .flat_map(|i| {
                    let spec = format!("{}:/{BIND_DIR}/b{i}:ro", source.display());
                    [OsString::from("--add"), OsString::from(spec)]
                })
                .collect(),
        })
        .collect()
}

/// The seccomp variants; `big_profile` is the generated JSON file.
pub fn seccomp_variants(big_profile: &Path) -> Vec<Variant> {
    let named = |name: &str| Variant {
        label: format!("`--seccomp {name}`"),
        args: vec![OsString::from("--seccomp"), OsString::from(name)],
    };
    vec![
        Variant {
            label: "`--no-cgroup` (no limits)".to_string(),
            args: vec![OsString::from("--no-cgroup")],
        },
        named("unconfined"),
        named("tutorial"),
        named("default"),
        Variant {
            label: format!("`--seccomp-profile` ({BIG_PROFILE_RULES} rules)"),
            args: vec![OsString::from("--seccomp-profile"), big_profile.as_os_str().to_owned()],
        },
    ]
}

/// Creates the 100 bind targets in the rootfs; [`BindTargets`] removes
/// them when dropped.
pub struct BindTargets {
    dir: PathBuf,
}

impl BindTargets {
    pub fn create(rootfs: &Path, count: usize) -> Result<BindTargets, String> {
        let dir = rootfs.join(BIND_DIR);
        let targets = BindTargets { dir: dir.clone() };
        for path in std::iter::once(dir.clone()).chain((0..count).map(|i| dir.join(format!("b{i}")))) {
            std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
            std::os::unix::fs::chown(&path, Some(CONTAINER_ROOT), Some(CONTAINER_ROOT))
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
        }
        Ok(targets)
    }
}

impl Drop for BindTargets {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes the 300-rule profile to `path`: default allow, and for
/// `PROFILE_SYSCALLS` × 5 argument values an ERRNO rule matching only
/// `arg0 == 0xdead_0000 + k` (values nothing passes).
pub fn write_big_profile(path: &Path) -> Result<(), String> {
    let profile = big_profile()?;
    let text = serde_json::to_string_pretty(&profile).map_err(|e| format!("serialising the profile: {e}"))?;
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn big_profile() -> Result<Value, String> {
    let names: Vec<&str> = PROFILE_SYSCALLS
        .iter()
        .copied()
        .filter(|name| crabcan_seccomp::syscall_number(name).is_some())
        .collect();
    if names.is_empty() {
        return Err("no known x86_64 syscalls for the generated seccomp profile".to_string());
    }
    let rules: Vec<Value> = (0..BIG_PROFILE_RULES)
        .map(|i| {
            let value = 0xdead_0000u64 + (i / names.len()) as u64;
            json!({
                "names": [names[i % names.len()]],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 1,
                "args": [{ "index": 0, "value": value, "op": "SCMP_CMP_EQ" }]
            })
        })
        .collect();
    Ok(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": rules
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_profile_has_300_rules_crabcan_accepts() {
        let json = big_profile().expect("profile");
        let text = json.to_string();
        let profile = crabcan_seccomp::Profile::from_oci_json(&text).expect("crabcan accepts it");
        assert_eq!(profile.rules.len(), BIG_PROFILE_RULES);
    }

    #[test]
    fn bind_variants_add_distinct_targets() {
        let variants = bind_variants(Path::new("/src"));
        assert_eq!(variants.iter().map(|v| v.args.len()).collect::<Vec<_>>(), [0, 20, 200]);
    }
}
