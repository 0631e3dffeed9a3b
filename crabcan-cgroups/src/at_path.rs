//! Cgroups at a path named by the caller ([`crate::CgroupHost::create_at`],
//! [`crate::ContainerCgroup::open_at`]): OCI runtimes get the cgroup's place from the engine
//! (`linux.cgroupsPath` in config.json, `/machine/abc` or `abc`) instead of making
//! `<parent>/<name>.<pid>` under a lease. This module parses and checks such a path.

use std::path::{Path, PathBuf};

use crate::container::validate_component;
use crate::error::CgroupError;

/// Longest accepted component of a cgroup path, in bytes (NAME_MAX).
pub(crate) const MAX_COMPONENT_LEN: usize = 255;

/// A checked cgroup path: one or more safe components, relative to a hierarchy's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupPath {
    components: Vec<String>,
}

impl CgroupPath {
    /// Parses `/a/b/c` or `a/b/c` (both relative to the hierarchy root); every component is
    /// checked by `validate_component`. Empty paths and empty components (`a//b`, `a/`) are
    /// refused.
    pub fn parse(path: &Path) -> Result<CgroupPath, CgroupError> {
        let invalid = |reason| CgroupError::InvalidName {
            name: path.to_string_lossy().into_owned(),
            reason,
        };
        let text = path.to_str().ok_or_else(|| invalid("a cgroup path must be UTF-8"))?;
        let relative = text.strip_prefix('/').unwrap_or(text);
        if relative.is_empty() {
            return Err(invalid("a cgroup path needs at least one component"));
        }
        let mut components = Vec::new();
        for component in relative.split('/') {
            if component.is_empty() {
                return Err(invalid(
                    "a cgroup path has no empty components ('//' or a trailing '/')",
                ));
            }
            validate_component(component)?;
            components.push(component.to_string());
        }
        Ok(CgroupPath { components })
    }

    /// The last component: the cgroup's own directory name.
    pub fn leaf(&self) -> &str {
        // `parse` never makes an empty path.
        self.components.last().map_or("", String::as_str)
    }

    /// The components above the leaf, as a relative path (empty for a one-component path).
    pub fn parent(&self) -> PathBuf {
        self.components[..self.parent_levels()].iter().collect()
    }

    /// How many components are above the leaf.
    pub fn parent_levels(&self) -> usize {
        self.components.len().saturating_sub(1)
    }

    /// How many of the folders above the leaf removal prunes while they are empty, deepest
    /// first: all of them, but a first component that is `kept`, the host's own parent folder
    /// ([`crate::CgroupHost::parent`]), which stays as it does for leased cgroups (an OCI
    /// container's default path is `crabcan/<id>`).
    pub fn prunable_levels(&self, kept: &str) -> usize {
        let levels = self.parent_levels();
        if levels > 0 && self.components[0] == kept {
            levels - 1
        } else {
            levels
        }
    }

    /// The whole path, relative (`a/b/c`).
    pub fn relative(&self) -> PathBuf {
        self.components.iter().collect()
    }

    /// The parent components each after a '/' (`/a/b`; empty for a one-component path), for
    /// [`CgroupError::InUse`], whose message reads `cgroup {parent}/{leaf}`.
    pub fn parent_display(&self) -> String {
        self.components[..self.parent_levels()]
            .iter()
            .map(|c| format!("/{c}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::fs;

    use crate::backend::MissingController;
    use crate::host::CgroupHost;
    use crate::layout::{Layout, Mounts};
    use crate::limits::Limits;
    use crate::{ContainerCgroup, DEFAULT_PARENT};

    #[test]
    fn paths_parse_with_or_without_a_leading_slash() {
        for text in ["/machine/abc", "machine/abc"] {
            let path = CgroupPath::parse(Path::new(text)).unwrap();
            assert_eq!(path.leaf(), "abc");
            assert_eq!(path.parent(), PathBuf::from("machine"));
            assert_eq!(path.parent_levels(), 1);
            assert_eq!(path.relative(), PathBuf::from("machine/abc"));
            assert_eq!(path.parent_display(), "/machine");
        }
        let one = CgroupPath::parse(Path::new("abc")).unwrap();
        assert_eq!((one.leaf(), one.parent_levels()), ("abc", 0));
        assert_eq!(one.parent(), PathBuf::new());
        assert_eq!(one.parent_display(), "");
        let long = format!("/libpod_parent/libpod-{}", "f".repeat(64));
        assert_eq!(CgroupPath::parse(Path::new(&long)).unwrap().parent_levels(), 1);
    }

    #[test]
    fn unsafe_paths_are_refused() {
        let long = "x".repeat(256);
        for text in [
            "",
            "/",
            "//",
            "a//b",
            "a/",
            "/a/../b",
            "..",
            "a/./b",
            "./a",
            "a b",
            "a/b:c",
            "a/*",
            long.as_str(),
        ] {
            let err = CgroupPath::parse(Path::new(text)).unwrap_err();
            assert!(matches!(err, CgroupError::InvalidName { .. }), "{text:?}: {err}");
        }
        use std::os::unix::ffi::OsStrExt;
        let not_utf8 = Path::new(std::ffi::OsStr::from_bytes(b"a/\xff"));
        assert!(matches!(
            CgroupPath::parse(not_utf8),
            Err(CgroupError::InvalidName { .. })
        ));
    }

    /// A v1 "host" of plain directories (memory, pids and freezer hierarchies, the freezer
    /// optional) under a fresh temporary directory: create_at/open_at without root.
    struct FakeHost {
        root: PathBuf,
        host: CgroupHost,
    }

    impl FakeHost {
        fn new(tag: &str, controllers: &[&str]) -> FakeHost {
            let root = std::env::temp_dir().join(format!("crabcan-at-path-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            let mut v1 = BTreeMap::new();
            for controller in controllers {
                fs::create_dir_all(root.join(controller)).unwrap();
                v1.insert(controller.to_string(), root.join(controller));
            }
            let mounts = Mounts {
                layout: Layout::V1,
                v1,
                v2: None,
            };
            let host = CgroupHost {
                mounts,
                state_dir: root.join("run/state"),
                parent: DEFAULT_PARENT.to_string(),
                v2_base: PathBuf::new(),
                uses: crate::CgroupUses::ALL,
            };
            FakeHost { root, host }
        }

        /// `<root>/<controller>/<rel>` for each controller.
        fn dirs(&self, controllers: &[&str], rel: &str) -> Vec<PathBuf> {
            controllers.iter().map(|c| self.root.join(c).join(rel)).collect()
        }
    }

    impl Drop for FakeHost {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    /// Regular files stand for the interface files the kernel would provide.
    fn touch(dir: &Path, files: &[&str]) {
        for f in files {
            fs::write(dir.join(f), "").unwrap();
        }
    }

    const ALL: [&str; 3] = ["memory", "pids", "freezer"];

    #[test]
    fn create_at_makes_parents_takes_no_lease_and_remove_prunes_empty_parents() {
        let fake = FakeHost::new("lifecycle", &ALL);
        let cg = fake
            .host
            .create_at(Path::new("/oci/abc"), &Limits::unlimited(), MissingController::Error)
            .expect("create_at");
        assert_eq!(cg.name(), "abc");
        assert_eq!(cg.relative_path(), Path::new("oci/abc"));
        assert_eq!(cg.paths(), fake.dirs(&["memory", "pids", "freezer"], "oci/abc"));
        assert!(cg.paths().iter().all(|d| d.is_dir()));
        assert!(!fake.host.state_dir().exists(), "no lease is taken");
        // A sibling keeps the shared parent alive in one hierarchy.
        fs::create_dir(fake.root.join("memory/oci/sibling")).unwrap();
        let dirs = cg.keep();
        assert!(dirs.iter().all(|d| d.is_dir()), "keep removes nothing");

        let opened = ContainerCgroup::open_at(&fake.host, Path::new("oci/abc")).expect("open_at");
        assert_eq!(opened.paths(), dirs);
        assert_eq!(opened.relative_path(), Path::new("oci/abc"));
        drop(opened);
        assert!(
            dirs.iter().all(|d| d.is_dir()),
            "dropping an opened handle removes nothing"
        );

        let opened = ContainerCgroup::open_at(&fake.host, Path::new("/oci/abc")).unwrap();
        opened.remove().expect("remove");
        assert!(dirs.iter().all(|d| !d.exists()));
        assert!(
            fake.root.join("memory/oci/sibling").is_dir(),
            "a non-empty parent stays"
        );
        assert!(!fake.root.join("pids/oci").exists() && !fake.root.join("freezer/oci").exists());
        assert!(ALL.iter().all(|c| fake.root.join(c).is_dir()), "hierarchy roots stay");
        let err = ContainerCgroup::open_at(&fake.host, Path::new("/oci/abc")).unwrap_err();
        assert!(matches!(err, CgroupError::NotFound { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "no cgroup at /oci/abc in any cgroup hierarchy crabcan uses"
        );
    }

    #[test]
    fn the_hosts_own_parent_folder_at_the_top_of_a_path_stays() {
        let one = CgroupPath::parse(Path::new("crabcan/abc")).unwrap();
        assert_eq!((one.parent_levels(), one.prunable_levels(DEFAULT_PARENT)), (1, 0));
        let deeper = CgroupPath::parse(Path::new("/crabcan/pod/abc")).unwrap();
        assert_eq!(deeper.prunable_levels(DEFAULT_PARENT), 1);
        let other = CgroupPath::parse(Path::new("machine/crabcan/abc")).unwrap();
        assert_eq!(other.prunable_levels(DEFAULT_PARENT), 2, "only at the top");
        assert_eq!(
            CgroupPath::parse(Path::new("crabcan"))
                .unwrap()
                .prunable_levels(DEFAULT_PARENT),
            0
        );

        let fake = FakeHost::new("kept-parent", &ALL);
        for path in ["crabcan/abc", "crabcan/pod/abc"] {
            let cg = fake
                .host
                .create_at(Path::new(path), &Limits::unlimited(), MissingController::Error)
                .expect("create_at");
            let dirs = cg.paths();
            cg.remove().expect("remove");
            assert!(dirs.iter().all(|d| !d.exists()), "{path}: the leaves go");
            for controller in ALL {
                let kept = fake.root.join(controller).join(DEFAULT_PARENT);
                assert!(kept.is_dir(), "{path}: {} stays", kept.display());
                assert!(!kept.join("pod").exists(), "{path}: a folder below it is pruned");
            }
        }
        // Opened again (as OCI `delete` does, in another process), the same holds.
        let cg = fake
            .host
            .create_at(Path::new("crabcan/def"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        drop(cg.keep());
        ContainerCgroup::open_at(&fake.host, Path::new("crabcan/def"))
            .unwrap()
            .remove()
            .unwrap();
        assert!(ALL.iter().all(|c| fake.root.join(c).join(DEFAULT_PARENT).is_dir()));
    }

    #[test]
    fn limits_only_skips_the_freezer_and_cpuacct_hierarchies() {
        let controllers = ["memory", "pids", "cpuacct", "freezer"];
        let fake = FakeHost::new("uses", &controllers);
        let all = fake
            .host
            .create_at(Path::new("all/c"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        assert_eq!(all.paths(), fake.dirs(&controllers, "all/c"));
        let host = fake.host.clone().with_uses(crate::CgroupUses::LIMITS_ONLY);
        let lean = host
            .create_at(Path::new("lean/c"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        assert_eq!(lean.paths(), fake.dirs(&["memory", "pids"], "lean/c"));
        assert!(!fake.root.join("freezer/lean").exists() && !fake.root.join("cpuacct/lean").exists());
        let freeze_only = fake.host.clone().with_uses(crate::CgroupUses {
            freeze: true,
            cpu_usage: false,
            io_accounting: false,
        });
        let frozen = freeze_only
            .create_at(Path::new("freeze/c"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        assert_eq!(frozen.paths(), fake.dirs(&["memory", "pids", "freezer"], "freeze/c"));
        // Removal removes what was made, and finding it again finds only that.
        let opened = ContainerCgroup::open_at(&host, Path::new("lean/c")).unwrap();
        assert_eq!(opened.paths(), lean.paths());
        drop(opened);
        for cgroup in [all, lean, frozen] {
            cgroup.remove().unwrap();
        }
        assert!(controllers
            .iter()
            .all(|c| fs::read_dir(fake.root.join(c)).unwrap().next().is_none()));
    }

    #[test]
    fn limits_only_joins_blkio_for_an_io_limit_alone() {
        let fake = FakeHost::new("uses-io", &["memory", "blkio"]);
        fs::write(fake.root.join("blkio/blkio.bfq.weight"), "").unwrap();
        let lean = fake.host.clone().with_uses(crate::CgroupUses::LIMITS_ONLY);
        let unweighted = lean
            .create_at(Path::new("plain/c"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        assert_eq!(unweighted.paths(), fake.dirs(&["memory"], "plain/c"));
        let weight = Limits {
            io_weight: Some(100),
            ..Limits::unlimited()
        };
        let weighted = lean
            .create_at(Path::new("weighted/c"), &weight, MissingController::Warn)
            .unwrap();
        assert_eq!(weighted.paths(), fake.dirs(&["memory", "blkio"], "weighted/c"));
        let all = fake
            .host
            .create_at(Path::new("all/c"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        assert_eq!(
            all.paths(),
            fake.dirs(&["memory", "blkio"], "all/c"),
            "ALL counts I/O anyway"
        );
        for cgroup in [unweighted, weighted, all] {
            cgroup.remove().unwrap();
        }
    }

    #[test]
    fn a_hierarchy_co_mounted_with_a_joined_one_is_joined_whatever_the_uses() {
        let fake = FakeHost::new("co-mounted", &["memory"]);
        let shared = fake.root.join("cpu,cpuacct");
        fs::create_dir_all(&shared).unwrap();
        let mut host = fake.host.clone().with_uses(crate::CgroupUses::LIMITS_ONLY);
        host.mounts.v1.insert("cpu".into(), shared.clone());
        host.mounts.v1.insert("cpuacct".into(), shared.clone());
        let cg = host
            .create_at(Path::new("x"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        assert_eq!(cg.paths(), vec![fake.root.join("memory/x"), shared.join("x")]);
        fs::write(shared.join("x/cpuacct.usage"), "4200\n").unwrap();
        assert_eq!(
            cg.stats().cpu_usage_ns,
            Some(4200),
            "cpu time is read where cpu is joined"
        );
        fs::remove_file(shared.join("x/cpuacct.usage")).unwrap();
        cg.remove().unwrap();
    }

    #[test]
    fn dropping_a_created_handle_removes_it() {
        let fake = FakeHost::new("drop", &ALL);
        let cg = fake
            .host
            .create_at(Path::new("a/b/c"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        drop(cg);
        assert!(ALL.iter().all(|c| !fake.root.join(c).join("a").exists()));
    }

    #[test]
    fn an_existing_leaf_is_in_use_and_nothing_made_stays() {
        let fake = FakeHost::new("in-use", &ALL);
        // The leaf exists in the last hierarchy only: the others' leaves and parents go again.
        fs::create_dir_all(fake.root.join("freezer/x/y/leaf")).unwrap();
        let err = fake
            .host
            .create_at(Path::new("/x/y/leaf"), &Limits::unlimited(), MissingController::Error)
            .unwrap_err();
        assert!(matches!(err, CgroupError::InUse { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "cgroup /x/y/leaf is already in use ({} exists); choose another name",
                fake.root.join("freezer/x/y/leaf").display()
            )
        );
        assert!(!fake.root.join("memory/x").exists() && !fake.root.join("pids/x").exists());
        assert!(
            fake.root.join("freezer/x/y/leaf").is_dir(),
            "someone else's cgroup is not touched"
        );
        let one = fake
            .host
            .create_at(Path::new("leaf2"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        let err = fake
            .host
            .create_at(Path::new("leaf2"), &Limits::unlimited(), MissingController::Error)
            .unwrap_err();
        assert!(err.to_string().starts_with("cgroup /leaf2 is already in use"), "{err}");
        one.remove().unwrap();
    }

    #[test]
    fn a_failed_limit_removes_the_leaves_and_the_parents_it_made_only() {
        let fake = FakeHost::new("failed-limit", &ALL);
        fs::create_dir(fake.root.join("memory/existing")).unwrap();
        let limits = Limits {
            memory: Some(64 << 20),
            ..Limits::unlimited()
        };
        // No memory.limit_in_bytes in a plain directory: a required interface file is missing.
        let err = fake
            .host
            .create_at(Path::new("existing/new/leaf"), &limits, MissingController::Error)
            .unwrap_err();
        assert!(err.is_missing_controller(), "{err}");
        assert!(
            fake.root.join("memory/existing").is_dir(),
            "a parent it did not make stays"
        );
        assert!(!fake.root.join("memory/existing/new").exists());
        assert!(!fake.root.join("pids/existing").exists());
        assert!(!fake.root.join("freezer/existing").exists());
    }

    #[test]
    fn missing_interface_files_follow_the_policy() {
        let fake = FakeHost::new("warn", &ALL);
        let limits = Limits {
            memory: Some(64 << 20),
            pids: Some(16),
            ..Limits::unlimited()
        };
        // Plain directories have no interface files: under Warn both limits are unapplied.
        let cg = fake
            .host
            .create_at(Path::new("w/leaf"), &limits, MissingController::Warn)
            .expect("create_at with Warn");
        let unapplied: Vec<_> = cg.unapplied().iter().map(|u| u.limit).collect();
        assert_eq!(unapplied, [crate::LimitKind::Memory, crate::LimitKind::Pids]);
        assert!(cg.unapplied().iter().all(|u| u.reason.is_missing_controller()));
        cg.remove().unwrap();
        assert!(ALL.iter().all(|c| !fake.root.join(c).join("w").exists()));
    }

    #[test]
    fn freeze_and_thaw_write_the_v1_freezer_state() {
        let fake = FakeHost::new("freeze", &ALL);
        let cg = fake
            .host
            .create_at(Path::new("f/leaf"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        let state = fake.root.join("freezer/f/leaf/freezer.state");
        touch(state.parent().unwrap(), &["freezer.state"]);
        cg.freeze().expect("freeze");
        assert_eq!(fs::read_to_string(&state).unwrap(), "FROZEN");
        cg.thaw().expect("thaw");
        assert_eq!(fs::read_to_string(&state).unwrap(), "THAWED");
        fs::remove_file(&state).unwrap();
        cg.remove().unwrap();
    }

    #[test]
    fn freezing_without_a_freezer_hierarchy_names_the_controller() {
        let fake = FakeHost::new("no-freezer", &["memory", "pids"]);
        let cg = fake
            .host
            .create_at(Path::new("nf"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        for err in [cg.freeze().unwrap_err(), cg.thaw().unwrap_err()] {
            assert!(
                matches!(
                    err,
                    CgroupError::FreezerUnavailable {
                        controller: "freezer",
                        ..
                    }
                ),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "cannot freeze or thaw {}: the host has no 'freezer' cgroup controller for it",
                    fake.root.join("memory/nf").display()
                )
            );
        }
        cg.remove().unwrap();
    }

    #[test]
    fn keep_on_a_leased_cgroup_removes_the_lease_only() {
        let fake = FakeHost::new("keep-leased", &["memory", "pids"]);
        let cg = fake
            .host
            .create("web", &Limits::unlimited(), MissingController::Error)
            .unwrap();
        let lease = fake.host.state_dir().join(cg.name());
        assert!(lease.exists());
        assert_eq!(cg.relative_path(), Path::new("crabcan").join(cg.name()));
        let dirs = cg.keep();
        assert_eq!(dirs.len(), 2);
        assert!(dirs.iter().all(|d| d.is_dir()));
        assert!(!lease.exists(), "the lease is given up with the cgroup");
        let cleanup = fake.host.remove_stale().unwrap();
        assert!(cleanup.failed.is_empty());
        assert!(
            dirs.iter().all(|d| d.is_dir()),
            "stale cleanup leaves a kept cgroup alone"
        );
    }
}
