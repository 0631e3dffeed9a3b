//! [`CgroupHost::plan_limits`]: the file writes a container's [`Limits`] become on this host,
//! each with the file it goes to and whether this host will honour it, read without creating
//! or writing anything. What `crabcan --explain` shows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::container::plan_writes;
use crate::error::CgroupError;
use crate::host::CgroupHost;
use crate::layout::{Mounts, Version};
use crate::limits::{LimitKind, Limits};
use crate::v2::parse_controllers;
use crate::writes::{Controller, IfAbsent, LimitWrite, Placement};

/// cgroup v2 files that exist wherever their controller is enabled.
const V2_CORE_FILES: [&str; 4] = ["memory.max", "pids.max", "cpu.weight", "cpu.max"];

/// Whether this host will apply a planned write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Its controller is there and its file exists in the cgroups of this hierarchy.
    Available,
    /// It cannot be applied here; why.
    Missing(String),
    /// Its controller is there, but no cgroup of the hierarchy shows whether the file exists
    /// (it is made only in child cgroups): known once the cgroup is made.
    Unverified,
}

/// One limit write of a container's cgroup on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLimit {
    /// The limit it applies.
    pub limit: LimitKind,
    /// The controller, as this host's cgroup version names it (`blkio` on v1, `io` on v2).
    pub controller: &'static str,
    /// The file written, in the container's cgroup directory of that controller: the
    /// fallback (the BFQ weight) where this host's cgroups have it and not the usual file.
    pub file: PathBuf,
    /// What is written there.
    pub value: String,
    /// What happens without it: `required` (a limit asked for: creation fails, or warns under
    /// [`crate::MissingController::Warn`]), `best effort` (the I/O weight: the container runs
    /// without it) or `implied` (no swap beyond the memory limit, skipped where the host has
    /// no swap accounting).
    pub need: &'static str,
    /// Whether the host will apply it.
    pub availability: Availability,
}

impl CgroupHost {
    /// The writes `limits` become for a cgroup at `rel` (relative to each hierarchy's mount
    /// point, e.g. `crabcan/web.1234`), in the order they are made, each with the absolute
    /// file on this host and whether this host will honour it (on cgroup v2 below
    /// [`CgroupHost::v2_base`]). Reads the hierarchies'
    /// controller lists and existing cgroups; creates and writes nothing. Fails only for
    /// limits that cannot be written at all.
    pub fn plan_limits(&self, rel: &Path, limits: &Limits) -> Result<Vec<PlannedLimit>, CgroupError> {
        let (placement, writes) = plan_writes(self, limits)?;
        Ok(writes
            .iter()
            .map(|write| plan_one(&self.mounts, &self.v2_base, &placement, rel, write))
            .collect())
    }
}

/// One write; on cgroup v2 the cgroup is below `v2_base` (a subtree delegated to the user),
/// whose controllers are the ones it can use.
fn plan_one(mounts: &Mounts, v2_base: &Path, placement: &Placement, rel: &Path, write: &LimitWrite) -> PlannedLimit {
    let version = placement.version_of(write.controller);
    let controller = write.controller.name(version);
    let missing = |reason: String| (Availability::Missing(reason), false);
    let (dir, (availability, fallback)) = match version {
        Version::V1 => match mounts.v1_mount(write.controller.v1_name()) {
            Some(mount) => (mount.join(rel), file_availability(mount, write, |_| true)),
            None => (
                PathBuf::from(format!("(no {controller} hierarchy)")).join(rel),
                missing(format!("the host has no {controller} cgroup hierarchy mounted")),
            ),
        },
        Version::V2 => match mounts.v2.as_ref().map(|mount| mount.join(v2_base)) {
            Some(root) => {
                let root = &root;
                let available = read_controllers(&root.join("cgroup.controllers"));
                let availability = if available.contains(controller) {
                    let found = file_availability(root, write, |dir| {
                        read_controllers(&dir.join("cgroup.controllers")).contains(controller)
                    });
                    match found {
                        // Every cgroup with the controller enabled has these files (crabcan
                        // enables it top-down); only swap and I/O weights depend on more.
                        (Availability::Unverified, _) if V2_CORE_FILES.contains(&write.file.as_str()) => {
                            (Availability::Available, false)
                        }
                        other => other,
                    }
                } else {
                    missing(format!(
                        "the host's cgroup2 root does not offer the {controller} controller"
                    ))
                };
                (root.join(rel), availability)
            }
            None => (rel.to_path_buf(), missing("the host has no cgroup2 mount".to_owned())),
        },
    };
    let (need, what) = match write.if_absent {
        IfAbsent::Required { what } => ("required", what),
        IfAbsent::BestEffort { what } => ("best effort", what),
        IfAbsent::Skip => ("implied", "it"),
    };
    let availability = match availability {
        Availability::Missing(reason) if write.controller == Controller::Io || reason.starts_with("no file") => {
            Availability::Missing(format!("the host does not support {what}: {reason}"))
        }
        other => other,
    };
    let (file, value) = match (&write.fallback, fallback) {
        (Some((file, value)), true) => (file.as_str(), value.clone()),
        _ => (write.file.as_str(), write.value.clone()),
    };
    PlannedLimit {
        limit: write.limit,
        controller,
        file: dir.join(file),
        value,
        need,
        availability,
    }
}

/// Whether `write`'s file (or its fallback: then `true`) exists in the cgroups under `root`:
/// looked up in the first existing child cgroup for which `uses_controller` holds (interface
/// files are the same in every cgroup below the root), else in the root itself, which lacks
/// some of them.
fn file_availability(root: &Path, write: &LimitWrite, uses_controller: impl Fn(&Path) -> bool) -> (Availability, bool) {
    let uses_fallback = |dir: &Path| {
        !dir.join(&write.file).exists() && write.fallback.as_ref().is_some_and(|(file, _)| dir.join(file).exists())
    };
    let has_file = |dir: &Path| dir.join(&write.file).exists() || uses_fallback(dir);
    let mut children: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                .map(|entry| entry.path())
                .collect()
        })
        .unwrap_or_default();
    children.sort();
    match children.into_iter().find(|dir| uses_controller(dir)) {
        Some(child) if has_file(&child) => (Availability::Available, uses_fallback(&child)),
        Some(child) => {
            let fallback = write
                .fallback
                .as_ref()
                .map(|(file, _)| format!(" nor {file}"))
                .unwrap_or_default();
            let reason = format!(
                "no file {}{fallback} in {} (the cgroups of this hierarchy)",
                write.file,
                child.display()
            );
            (Availability::Missing(reason), false)
        }
        None if has_file(root) => (Availability::Available, uses_fallback(root)),
        None => (Availability::Unverified, false),
    }
}

fn read_controllers(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .map(|text| parse_controllers(&text))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Mounts;
    use crate::DEFAULT_STATE_DIR;

    /// A fake v1 host under a temp dir: memory and blkio hierarchies, one existing cgroup each.
    fn fake_v1(test: &str, blkio_files: &[&str]) -> (PathBuf, CgroupHost) {
        let base = std::env::temp_dir().join(format!("crabcan-cgroups-plan-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for (hierarchy, files) in [("memory", &["memory.limit_in_bytes"][..]), ("blkio", blkio_files)] {
            let child = base.join(hierarchy).join("other");
            std::fs::create_dir_all(&child).unwrap();
            for file in files {
                std::fs::write(child.join(file), "").unwrap();
            }
        }
        let mountinfo = format!(
            "30 22 0:26 / {base}/memory rw - cgroup cgroup rw,memory\n31 22 0:27 / {base}/blkio rw - cgroup cgroup rw,blkio\n",
            base = base.display()
        );
        let host = CgroupHost {
            mounts: Mounts::from_mountinfo(&mountinfo).unwrap(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            parent: "crabcan".into(),
            v2_base: PathBuf::new(),
            uses: crate::CgroupUses::ALL,
        };
        (base, host)
    }

    #[test]
    fn each_limit_becomes_a_file_of_this_host_with_what_it_lacks() {
        let (base, host) = fake_v1("v1", &["blkio.bfq.weight"]);
        let limits = Limits {
            memory: Some(64 << 20),
            pids: Some(32),
            io_weight: Some(500),
            ..Limits::unlimited()
        };
        let plan = host.plan_limits(Path::new("crabcan/web.1"), &limits).unwrap();
        let memory = &plan[0];
        assert_eq!(memory.file, base.join("memory/crabcan/web.1/memory.limit_in_bytes"));
        assert_eq!(memory.value, "67108864");
        assert_eq!(memory.availability, Availability::Available);
        assert_eq!(plan[1].limit, LimitKind::MemorySwap);
        assert_eq!(plan[1].need, "implied");
        let pids = plan.iter().find(|p| p.limit == LimitKind::Pids).unwrap();
        assert!(
            matches!(&pids.availability, Availability::Missing(reason) if reason.contains("no pids cgroup hierarchy")),
            "{pids:?}"
        );
        let io = plan.iter().find(|p| p.limit == LimitKind::IoWeight).unwrap();
        assert_eq!(io.availability, Availability::Available, "through the BFQ fallback");
        assert_eq!(io.file, base.join("blkio/crabcan/web.1/blkio.bfq.weight"));
        assert_eq!(io.need, "best effort");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn an_io_weight_without_a_weight_file_is_not_honoured() {
        let (base, host) = fake_v1("no-bfq", &["blkio.throttle.read_bps_device"]);
        let limits = Limits {
            io_weight: Some(100),
            ..Limits::unlimited()
        };
        let plan = host.plan_limits(Path::new("crabcan/web.1"), &limits).unwrap();
        match &plan[0].availability {
            Availability::Missing(reason) => {
                assert!(
                    reason.contains("I/O weights") && reason.contains("blkio.weight"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn on_cgroup2_the_root_offers_the_controllers() {
        let base = std::env::temp_dir().join(format!("crabcan-cgroups-plan-v2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let mountinfo = format!("35 22 0:30 / {} rw - cgroup2 cgroup2 rw\n", base.display());
        let host = CgroupHost {
            mounts: Mounts::from_mountinfo(&mountinfo).unwrap(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            parent: "crabcan".into(),
            v2_base: PathBuf::new(),
            uses: crate::CgroupUses::ALL,
        };
        let limits = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            io_weight: Some(100),
            ..Limits::unlimited()
        };
        let plan = host.plan_limits(Path::new("crabcan/web.1"), &limits).unwrap();
        assert_eq!(plan[0].file, base.join("crabcan/web.1/memory.max"));
        assert_eq!(plan[0].availability, Availability::Available);
        assert_eq!(
            plan[1].availability,
            Availability::Unverified,
            "swap needs swap accounting"
        );
        let io = plan.iter().find(|p| p.limit == LimitKind::IoWeight).unwrap();
        assert!(
            matches!(&io.availability, Availability::Missing(reason) if reason.contains("io controller")),
            "{io:?}"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
