//! `--explain`: the confinement a configuration gives, as plain data ([`Confinement`]), built
//! by [`explain`] from a validated configuration without creating anything: namespaces, id
//! maps, the mount table in order (from the same plan the container process carries out),
//! masked and read-only paths, the capability sets, no_new_privs, what the seccomp filter does
//! with the calls that matter (read out of the compiled filter), the cgroup limits with the
//! file each becomes on this host, rlimits, and every request this host will not honour, with
//! the reason. The command line prints it as text or JSON; an OCI `create` stores it in the
//! container's state folder for `crabcan explain ID`.

use std::path::{Path, PathBuf};

use crabcan_cgroups::{Availability, CgroupHost, Layout, MissingController};
use crabcan_seccomp::FilterSummary;
use nix::mount::MsFlags;
use serde::{Deserialize, Serialize};

use crate::config::{ContainerConfig, IdMapping};
use crate::error::Result;
use crate::mounts::{self, MountStep};
use crate::rootless::Caller;

/// Everything that confines a container, as it would be set up on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confinement {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The root filesystem on the host.
    pub rootfs: PathBuf,
    /// The container's hostname.
    pub hostname: String,
    /// The namespaces the container gets (`user`, `mount`, `pid`, `uts`, `ipc`, `net`, `cgroup`).
    pub namespaces: Vec<String>,
    /// The user namespace's id maps.
    pub id_maps: IdMaps,
    /// The ids the command runs as, inside the container.
    pub user: UserIds,
    /// The mount table, in the order it is made.
    pub mounts: Vec<MountEntry>,
    /// Paths hidden from the container (inside it).
    pub masked_paths: Vec<String>,
    /// Paths made read-only (inside it).
    pub read_only_paths: Vec<String>,
    /// The command's capability sets.
    pub capabilities: CapabilityNames,
    /// Whether `PR_SET_NO_NEW_PRIVS` is set.
    pub no_new_privs: bool,
    /// The seccomp filter.
    pub seccomp: SeccompPlan,
    /// The cgroup and its limits; `None`: no cgroup of its own.
    pub cgroup: Option<CgroupPlan>,
    /// Resource limits of the command's process.
    pub rlimits: Vec<RlimitEntry>,
    /// Requests this host will not honour, with the reason.
    pub not_honoured: Vec<NotHonoured>,
}

/// The id maps of the user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMaps {
    /// `private` (a range of crabcan's pool, chosen at start), `given` (an engine's), `checked`
    /// (given and checked against the host's accounts) or `host` (no user namespace).
    pub kind: String,
    /// `INSIDE:OUTSIDE:COUNT`, or a description when chosen at start.
    pub uid_map: Option<String>,
    /// Same for gids.
    pub gid_map: Option<String>,
}

/// The ids the command runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserIds {
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// Its supplementary groups.
    pub additional_gids: Vec<u32>,
}

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountEntry {
    /// What is mounted: a host path, a filesystem type, or empty.
    pub source: String,
    /// Where, inside the container.
    pub target: String,
    /// The filesystem type, `bind`, or what the step does (`mask`, `propagation`, ...).
    #[serde(rename = "type")]
    pub fstype: String,
    /// Mount flags and options (`ro`, `nosuid`, `nodev`, `noexec`, `idmapped`, data options).
    pub flags: Vec<String>,
}

/// The five capability sets, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityNames {
    /// The bounding set.
    pub bounding: Vec<String>,
    /// The effective set.
    pub effective: Vec<String>,
    /// The permitted set.
    pub permitted: Vec<String>,
    /// The inheritable set.
    pub inheritable: Vec<String>,
    /// The ambient set.
    pub ambient: Vec<String>,
}

/// The seccomp filter the command gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompPlan {
    /// `filter`, `learning` (the learning filter, enforcing `summary`'s profile), or `unconfined`.
    pub mode: String,
    /// What the (enforced) filter does; `None` when unconfined.
    pub summary: Option<FilterSummary>,
    /// Where a learning run writes its profile.
    pub learning_output: Option<PathBuf>,
}

/// The container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    /// `v1`, `hybrid` (v1 controllers are used) or `v2`.
    pub layout: String,
    /// The cgroup, relative to each hierarchy's mount point.
    pub path: PathBuf,
    /// The limit writes, in order.
    pub limits: Vec<LimitEntry>,
}

/// One limit and the file it becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitEntry {
    /// The limit, in words (`memory limit`).
    pub limit: String,
    /// The controller.
    pub controller: String,
    /// The file written, on the host.
    pub file: PathBuf,
    /// The value written.
    pub value: String,
    /// `yes`, `no` or `unverified` (the controller is there, the file shows only once the
    /// cgroup exists).
    pub honoured: String,
}

/// One resource limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlimitEntry {
    /// `NOFILE`, ...
    pub resource: String,
    /// The soft limit.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// A request this host will not honour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotHonoured {
    /// What was asked for.
    pub what: String,
    /// Why it cannot be applied here.
    pub reason: String,
    /// What happens: the start fails, or the container runs without it.
    pub effect: String,
}

/// The leaf of a direct-mode cgroup before the crabcan that makes it is known.
const CRABCAN_PID: &str = "<crabcan pid>";

/// The confinement `config` gives on this host. Validates it (as `create` would) and reads the
/// host's cgroup mounts; starts, creates and writes nothing.
pub fn explain(config: ContainerConfig) -> Result<Confinement> {
    let mut config = config.validate()?;
    let caller = Caller::detect()?;
    let plan = config.mount_plan.clone().unwrap_or_else(|| mounts::plan(&config));
    let user_namespace = config.id_mapping != IdMapping::Host;
    // One slot for the rootfs, then one per bind step of the plan: the trees that get an
    // idmapped copy (none without a user namespace).
    let wanted = match (user_namespace, caller) {
        // Only root's containers get idmapped copies.
        (true, Caller::Root) => crate::idmap::wanted(&config),
        _ => Vec::new(),
    };
    let mut not_honoured = idmap_unavailable(&config, &wanted);
    let idmapped: Vec<bool> = wanted.iter().map(Option::is_some).collect();
    let mut table = mount_table(&config, &plan, &idmapped);
    // Where create puts the cgroup: anywhere for root, in the subtree delegated to an ordinary
    // user (whose default limits it lacks controllers for are dropped, as create drops them).
    let cgroup_host = match (config.limits.is_some(), caller) {
        (false, _) => None,
        (true, Caller::Root) => Some(CgroupHost::detect()?),
        (true, Caller::User { uid, .. }) => crate::rootless::user_cgroup_host(&mut config, uid)?,
    };
    let cgroup = match (&config.limits, &cgroup_host) {
        (Some(limits), Some(host)) => {
            let limits = crate::container::without_idle_io_weight(limits, &config.requested_limits, || {
                host.io_weights_take_effect()
            });
            let path = config.cgroup_path.clone().unwrap_or_else(|| {
                Path::new(crabcan_cgroups::DEFAULT_PARENT).join(format!("{}.{CRABCAN_PID}", config.hostname))
            });
            let plan = cgroup_plan(&config, host, &path, &limits, &mut not_honoured)?;
            if config.cgroup_view {
                table.push(cgroup_view_entry(host.layout()));
            }
            Some(plan)
        }
        _ => None,
    };
    let mut namespaces: Vec<String> = Vec::new();
    if user_namespace {
        namespaces.push("user".into());
    }
    namespaces.extend(["mount", "pid", "uts", "ipc", "net", "cgroup"].map(String::from));
    let nofile = config.file_limit();
    let mut rlimits = vec![RlimitEntry {
        resource: "NOFILE".into(),
        soft: nofile.soft,
        hard: nofile.hard,
    }];
    rlimits.extend(config.rlimits.iter().map(|limit| RlimitEntry {
        resource: format!("{:?}", limit.resource).trim_start_matches("RLIMIT_").to_owned(),
        soft: limit.soft,
        hard: limit.hard,
    }));
    Ok(Confinement {
        command: config.argv.clone(),
        rootfs: config.rootfs.clone(),
        hostname: config.hostname.clone(),
        namespaces,
        id_maps: id_maps(&config.id_mapping),
        user: UserIds {
            uid: config.uid,
            gid: config.gid,
            additional_gids: config.additional_gids.clone(),
        },
        masked_paths: steps_paths(&plan, |step| match step {
            MountStep::Mask { path } => Some(path.to_string()),
            _ => None,
        }),
        read_only_paths: steps_paths(&plan, |step| match step {
            MountStep::ReadOnly { path } => Some(path.to_string()),
            _ => None,
        }),
        mounts: table,
        capabilities: capability_names(&config),
        no_new_privs: config.no_new_privs,
        seccomp: seccomp_plan(&config)?,
        cgroup,
        rlimits,
        not_honoured,
    })
}

fn id_maps(mapping: &IdMapping) -> IdMaps {
    let (kind, maps) = match mapping {
        IdMapping::Auto => {
            let private = format!(
                "0:(a private range of crabcan's pool, chosen at start):{}",
                crate::id_ranges::SLOT_SIZE
            );
            ("private", Some((private.clone(), private)))
        }
        IdMapping::Host => ("host", None),
        IdMapping::Given { uid_map, gid_map } => ("given", Some((uid_map.to_string(), gid_map.to_string()))),
        IdMapping::Fixed { uid_map, gid_map } => ("checked", Some((uid_map.to_string(), gid_map.to_string()))),
    };
    IdMaps {
        kind: kind.into(),
        uid_map: maps.as_ref().map(|(uid, _)| uid.clone()),
        gid_map: maps.map(|(_, gid)| gid),
    }
}

/// The paths of the steps `pick` takes, as container paths (`/proc/kcore`).
fn steps_paths(plan: &[MountStep], pick: impl Fn(&MountStep) -> Option<String>) -> Vec<String> {
    plan.iter().filter_map(pick).map(|path| absolute(&path)).collect()
}

fn absolute(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

/// The mount steps of `plan` as a mount table; `idmapped` says which of [rootfs, binds...]
/// get an idmapped copy (empty: none).
fn mount_table(config: &ContainerConfig, plan: &[MountStep], idmapped: &[bool]) -> Vec<MountEntry> {
    let entry = |source: &str, target: &str, fstype: &str, flags: Vec<String>| MountEntry {
        source: source.to_owned(),
        target: absolute(target),
        fstype: fstype.to_owned(),
        flags,
    };
    let idmapped_at = |index: usize| idmapped.get(index).copied().unwrap_or(false);
    let mut binds = 0;
    let mut table = Vec::new();
    for step in plan {
        let line = match step {
            MountStep::RootPropagation(flags) | MountStep::NewRootPropagation(flags) => {
                entry("", "/", "propagation", propagation_names(*flags))
            }
            MountStep::Propagation { target, flags } => entry(
                "",
                target,
                "propagation",
                flags.iter().flat_map(|flags| propagation_names(*flags)).collect(),
            ),
            MountStep::OciBind(bind) => {
                binds += 1;
                let mut flags = vec![
                    if bind.recursive { "rbind" } else { "bind" }.to_owned(),
                    "nodev".to_owned(),
                ];
                flags.extend(attribute_names(bind.top.set | bind.all.set));
                flags.extend(bind.propagation.iter().flat_map(|flags| propagation_names(*flags)));
                if idmapped_at(binds) {
                    flags.push("idmapped".into());
                }
                entry(
                    &bind.source.display().to_string(),
                    &bind.target.display().to_string(),
                    "bind",
                    flags,
                )
            }
            MountStep::Device(device) => {
                let source = match &device.source {
                    crate::mounts::DeviceSource::Host(path) => path.display().to_string(),
                    crate::mounts::DeviceSource::Own { .. } => format!("a node {}:{}", device.major, device.minor),
                    crate::mounts::DeviceSource::Denied { .. } => {
                        format!(
                            "a node {}:{} that cannot be opened (denied)",
                            device.major, device.minor
                        )
                    }
                };
                entry(
                    &source,
                    &device.target.display().to_string(),
                    "device",
                    vec!["bind".into()],
                )
            }
            MountStep::BindRootfs => {
                let mut flags = vec!["rbind".to_owned()];
                if idmapped_at(0) {
                    flags.push("idmapped".into());
                }
                entry(&config.rootfs.display().to_string(), "/", "bind", flags)
            }
            MountStep::NoDevices => entry("", "/", "attributes", vec!["nodev (recursive)".into()]),
            MountStep::Filesystem {
                target,
                source,
                fstype,
                flags,
                data,
            } => entry(source, target, fstype, with_data(flag_names(*flags), data)),
            MountStep::TmpfsCopyUp {
                target,
                source,
                flags,
                data,
            } => {
                let mut names = with_data(flag_names(*flags), data);
                names.push("tmpcopyup".into());
                entry(source, target, "tmpfs", names)
            }
            MountStep::HostDevice { name } => entry(
                &format!("/dev/{name}"),
                &crate::mounts::host_device_target(name),
                "bind",
                vec!["bind".into()],
            ),
            MountStep::Bind(bind) => {
                binds += 1;
                let mut flags = vec!["rbind".to_owned(), "nodev".to_owned()];
                if bind.read_only {
                    flags.push("ro (recursive)".into());
                }
                if idmapped_at(binds) {
                    flags.push("idmapped".into());
                }
                entry(
                    &bind.source.display().to_string(),
                    &bind.target.display().to_string(),
                    "bind",
                    flags,
                )
            }
            MountStep::Mask { path } => entry(
                "/dev/null or an empty tmpfs",
                path,
                "mask",
                vec!["ro".into(), "nosuid".into(), "nodev".into(), "noexec".into()],
            ),
            MountStep::ReadOnly { path } => entry(
                &absolute(path),
                path,
                "bind",
                vec!["rbind".into(), "ro (recursive)".into()],
            ),
            MountStep::ReadOnlyRoot => entry("", "/", "remount", vec!["ro".into()]),
            MountStep::PivotRoot => entry(
                &config.rootfs.display().to_string(),
                "/",
                "pivot_root",
                vec!["old root detached".into()],
            ),
            MountStep::Directory { .. }
            | MountStep::Symlink { .. }
            | MountStep::Sysctl { .. }
            | MountStep::WorkingDirectory(_) => continue,
        };
        table.push(line);
    }
    table
}

fn cgroup_view_entry(layout: Layout) -> MountEntry {
    let (source, fstype) = match layout {
        Layout::V2 => ("cgroup2", "cgroup2"),
        Layout::V1 | Layout::Hybrid => ("tmpfs and the container's cgroup v1 hierarchies", "cgroup"),
    };
    MountEntry {
        source: source.into(),
        target: crate::cgroupfs::MOUNT_POINT.into(),
        fstype: fstype.into(),
        flags: ["ro", "nosuid", "nodev", "noexec", "rooted at the container's cgroup"]
            .map(String::from)
            .to_vec(),
    }
}

fn with_data(mut flags: Vec<String>, data: &str) -> Vec<String> {
    flags.extend(data.split(',').filter(|option| !option.is_empty()).map(str::to_owned));
    flags
}

/// The propagation of a propagation change, as `mount` names it.
fn propagation_names(flags: MsFlags) -> Vec<String> {
    let recursive = if flags.contains(MsFlags::MS_REC) { "r" } else { "" };
    [
        (MsFlags::MS_PRIVATE, "private"),
        (MsFlags::MS_SLAVE, "slave"),
        (MsFlags::MS_SHARED, "shared"),
        (MsFlags::MS_UNBINDABLE, "unbindable"),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| format!("{recursive}{name}"))
    .collect()
}

/// The names of `mount_setattr` attributes (`MOUNT_ATTR_*`).
fn attribute_names(attributes: u64) -> Vec<String> {
    [
        (0x1, "ro"),
        (0x2, "nosuid"),
        (0x8, "noexec"),
        (0x10, "noatime"),
        (0x80, "nodiratime"),
        (0x0020_0000, "nosymfollow"),
    ]
    .into_iter()
    .filter(|(bit, _)| attributes & bit != 0)
    .map(|(_, name)| name.to_owned())
    .collect()
}

/// The names of mount flags, as `mount` prints them.
fn flag_names(flags: MsFlags) -> Vec<String> {
    [
        (MsFlags::MS_RDONLY, "ro"),
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
        (MsFlags::MS_NOATIME, "noatime"),
        (MsFlags::MS_NODIRATIME, "nodiratime"),
        (MsFlags::MS_RELATIME, "relatime"),
        (MsFlags::MS_STRICTATIME, "strictatime"),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| name.to_owned())
    .collect()
}

/// The idmapped copies this host cannot make, by the filesystem each path is on: the tree is
/// then used as it is and the container's root cannot write it. (The kernel tells for sure
/// only when the copy is made; a filesystem this table does not know is not listed.)
fn idmap_unavailable(config: &ContainerConfig, wanted: &[Option<crate::idmap::Wanted>]) -> Vec<NotHonoured> {
    let kernel = crabcan_seccomp::running_kernel().unwrap_or((0, 0));
    wanted
        .iter()
        .flatten()
        .filter_map(|want| {
            let why = idmap_refusal(kernel, &want.path)?;
            let effect = match want.required {
                true => "the start fails (the bundle asks for it)".to_owned(),
                false => strict_effect(config, "it is used as it is: the container's root cannot write to it"),
            };
            Some(NotHonoured {
                what: format!("an idmapped mount of {}", want.path.display()),
                reason: why,
                effect,
            })
        })
        .collect()
}

/// Why `path` cannot be idmapped on a kernel of version `kernel`; `None` when it can, or when
/// its filesystem is not one this table knows.
fn idmap_refusal(kernel: (u32, u32), path: &Path) -> Option<String> {
    use nix::sys::statfs::{self, FsType};
    if kernel < (5, 12) {
        return Some("this kernel has no idmapped mounts (Linux 5.12+)".to_owned());
    }
    let kind = statfs::statfs(path).ok()?.filesystem_type();
    // Filesystems that cannot be idmapped, and those that can from a later kernel.
    let never: [(FsType, &str); 6] = [
        (statfs::PROC_SUPER_MAGIC, "procfs"),
        (statfs::SYSFS_MAGIC, "sysfs"),
        (statfs::CGROUP_SUPER_MAGIC, "cgroupfs"),
        (statfs::CGROUP2_SUPER_MAGIC, "cgroup2"),
        (statfs::NFS_SUPER_MAGIC, "NFS"),
        (statfs::FUSE_SUPER_MAGIC, "FUSE"),
    ];
    let from: [(FsType, &str, (u32, u32)); 2] = [
        (statfs::TMPFS_MAGIC, "tmpfs", (6, 3)),
        (statfs::OVERLAYFS_SUPER_MAGIC, "overlayfs", (5, 19)),
    ];
    if let Some((_, name)) = never.iter().find(|(magic, _)| *magic == kind) {
        return Some(format!("it is on {name}, which cannot be idmapped"));
    }
    from.iter()
        .find(|(magic, _, since)| *magic == kind && kernel < *since)
        .map(|(_, name, (major, minor))| format!("it is on {name}, which Linux idmaps from {major}.{minor}"))
}

/// What happens to a confinement that cannot be applied and that the container can run
/// without: `otherwise`, or, in strict mode, a failed start.
fn strict_effect(config: &ContainerConfig, otherwise: &str) -> String {
    if config.strict {
        "the start fails (strict mode)".to_owned()
    } else {
        otherwise.to_owned()
    }
}

fn cgroup_plan(
    config: &ContainerConfig,
    host: &CgroupHost,
    path: &Path,
    limits: &crabcan_cgroups::Limits,
    not_honoured: &mut Vec<NotHonoured>,
) -> Result<CgroupPlan> {
    let layout = match host.layout() {
        Layout::V1 => "v1",
        Layout::Hybrid => "hybrid",
        Layout::V2 => "v2",
    };
    let mut entries = Vec::new();
    for planned in host.plan_limits(path, limits)? {
        let honoured = match &planned.availability {
            Availability::Available => "yes",
            Availability::Unverified => "unverified",
            Availability::Missing(reason) => {
                let effect = match (planned.need, config.missing_controllers) {
                    ("implied", _) => Some("skipped: it was not asked for".to_owned()),
                    ("required", MissingController::Error) => {
                        Some("the start fails (--allow-missing-controllers runs without it)".to_owned())
                    }
                    _ => Some(strict_effect(config, "the container runs without it, with a warning")),
                };
                if let (Some(effect), false) = (effect, planned.need == "implied") {
                    not_honoured.push(NotHonoured {
                        what: format!("the {} ({} = {})", planned.limit, planned.file.display(), planned.value),
                        reason: reason.clone(),
                        effect,
                    });
                }
                "no"
            }
        };
        entries.push(LimitEntry {
            limit: planned.limit.to_string(),
            controller: planned.controller.to_owned(),
            file: planned.file.clone(),
            value: planned.value.clone(),
            honoured: honoured.into(),
        });
    }
    Ok(CgroupPlan {
        layout: layout.into(),
        path: path.to_owned(),
        limits: entries,
    })
}

fn capability_names(config: &ContainerConfig) -> CapabilityNames {
    match &config.capability_sets {
        Some(sets) => CapabilityNames {
            bounding: sets.bounding.names(),
            effective: sets.effective.names(),
            permitted: sets.permitted.names(),
            inheritable: sets.inheritable.names(),
            ambient: sets.ambient.names(),
        },
        None => {
            let kept = config.capabilities.names();
            let process = if config.uid == 0 { kept.clone() } else { Vec::new() };
            CapabilityNames {
                bounding: kept,
                effective: process.clone(),
                permitted: process,
                inheritable: Vec::new(),
                ambient: Vec::new(),
            }
        }
    }
}

fn seccomp_plan(config: &ContainerConfig) -> Result<SeccompPlan> {
    if let Some(learning) = &config.seccomp_learning {
        let summary = match &learning.enforced {
            Some(profile) => Some(profile.compile()?.summary()),
            None => None,
        };
        return Ok(SeccompPlan {
            mode: "learning".into(),
            summary,
            learning_output: Some(learning.output.clone()),
        });
    }
    Ok(match &config.seccomp {
        Some(filter) => SeccompPlan {
            mode: "filter".into(),
            summary: Some(filter.summary()),
            learning_output: None,
        },
        None => SeccompPlan {
            mode: "unconfined".into(),
            summary: None,
            learning_output: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempTree;

    fn config(rootfs: &Path) -> ContainerConfig {
        let mut config = ContainerConfig::new(rootfs, vec!["/bin/true".into()]);
        config.hostname = "explained".into();
        config.limits = None;
        config.seccomp = Some(crabcan_seccomp::Profile::default_profile().compile().unwrap());
        config
    }

    #[test]
    fn the_mount_table_follows_the_plan_in_order() {
        let rootfs = TempTree::new("explain-mounts");
        let mut cfg = config(&rootfs);
        cfg.binds.push(crate::BindMount::parse("/tmp:/data:ro").unwrap());
        let explained = explain(cfg).unwrap();
        let targets: Vec<(&str, &str)> = explained
            .mounts
            .iter()
            .map(|m| (m.target.as_str(), m.fstype.as_str()))
            .collect();
        let position = |wanted: (&str, &str)| {
            targets
                .iter()
                .position(|t| *t == wanted)
                .unwrap_or_else(|| panic!("{wanted:?} missing from {targets:?}"))
        };
        assert!(position(("/proc", "proc")) < position(("/dev", "tmpfs")));
        assert!(position(("/dev/pts", "devpts")) < position(("/sys", "sysfs")));
        assert!(position(("/tmp", "tmpfs")) < position(("/data", "bind")));
        assert!(position(("/data", "bind")) < position(("/proc/kcore", "mask")));
        assert_eq!(targets.last(), Some(&("/", "pivot_root")));
        let data = &explained.mounts[position(("/data", "bind"))];
        assert_eq!(data.source, "/tmp");
        assert!(data.flags.contains(&"ro (recursive)".to_owned()) && data.flags.contains(&"nodev".to_owned()));
        let proc = &explained.mounts[position(("/proc", "proc"))];
        assert_eq!(proc.flags, ["nosuid", "nodev", "noexec"]);
        assert!(explained.masked_paths.contains(&"/proc/kcore".to_owned()));
        assert!(explained.read_only_paths.contains(&"/proc/sys".to_owned()));
        assert_eq!(
            explained.namespaces,
            ["user", "mount", "pid", "uts", "ipc", "net", "cgroup"]
        );
        assert_eq!(explained.id_maps.kind, "private");
    }

    #[test]
    fn capabilities_seccomp_and_rlimits() {
        let rootfs = TempTree::new("explain-caps");
        let explained = explain(config(&rootfs)).unwrap();
        assert_eq!(explained.capabilities.bounding.len(), 13);
        assert_eq!(explained.capabilities.effective, explained.capabilities.bounding);
        assert!(explained.capabilities.ambient.is_empty());
        assert!(explained.no_new_privs);
        let summary = explained.seccomp.summary.as_ref().unwrap();
        assert_eq!(explained.seccomp.mode, "filter");
        assert_eq!(summary.default_action, "errno(ENOSYS)");
        assert_eq!(explained.rlimits[0].resource, "NOFILE");
        assert!(explained.cgroup.is_none());
        let mut other_user = config(&rootfs);
        other_user.uid = 1000;
        other_user.gid = 1000;
        let explained = explain(other_user).unwrap();
        assert!(explained.capabilities.effective.is_empty() && !explained.capabilities.bounding.is_empty());
        let json = serde_json::to_string(&explained).unwrap();
        let back: Confinement = serde_json::from_str(&json).unwrap();
        assert_eq!(back, explained);
    }

    #[test]
    fn filesystems_that_cannot_be_idmapped_are_named() {
        let sysfs = idmap_refusal((6, 18), Path::new("/sys/kernel")).unwrap();
        assert!(sysfs.contains("sysfs"), "{sysfs}");
        assert!(idmap_refusal((5, 10), Path::new("/")).unwrap().contains("5.12"));
        let tmp = std::env::temp_dir();
        if nix::sys::statfs::statfs(&tmp).is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC) {
            assert!(idmap_refusal((6, 1), &tmp).unwrap().contains("6.3"));
            assert_eq!(idmap_refusal((6, 3), &tmp), None);
        }
    }

    #[test]
    fn a_configuration_that_cannot_work_is_refused_as_create_would() {
        let error = explain(config(Path::new("/nonexistent/rootfs"))).unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");
    }
}
