//! Cleanup of `<parent>/<name>.<pid>` cgroups left behind by a process that died without
//! removing them, found through their leases ([`crate::CgroupHost::remove_stale`]), and
//! [`StaleCleanup`], what it did.

use std::path::Path;

use crate::backend::CgroupBackend;
use crate::container::{validate_name, ContainerCgroup};
use crate::error::CgroupError;
use crate::host::CgroupHost;
use crate::layout::Version;
use crate::lease::{lease_names, remove_stale_temp, Lease};
use crate::v1::V1Cgroup;
use crate::v2::V2Cgroup;
use crate::DEFAULT_PARENT;

/// What [`CgroupHost::remove_stale`] did.
#[derive(Debug, Default)]
pub struct StaleCleanup {
    /// The cgroups removed, by directory name (`<name>.<pid>`).
    pub removed: Vec<String>,
    /// The leases or cgroups that could not be checked or removed, with why; a later
    /// cleanup tries them again.
    pub failed: Vec<(String, CgroupError)>,
}

/// [`CgroupHost::remove_stale`].
pub(crate) fn remove_stale(host: &CgroupHost) -> Result<StaleCleanup, CgroupError> {
    let mut cleanup = StaleCleanup::default();
    for name in lease_names(&host.state_dir)? {
        match remove_if_stale(host, &name) {
            Ok(true) => cleanup.removed.push(name),
            Ok(false) => {}
            Err(e) => cleanup.failed.push((name, e)),
        }
    }
    Ok(cleanup)
}

/// Removes the cgroup of lease `name` and the lease if nobody holds it and it is one of
/// this parent folder's. Returns whether it did; temporary leases of dead creators are
/// removed without counting.
fn remove_if_stale(host: &CgroupHost, name: &str) -> Result<bool, CgroupError> {
    if remove_stale_temp(&host.state_dir, name)? || owner_pid(name).is_none() {
        return Ok(false); // a temporary lease, or not a name of ours
    }
    let Some(lease) = Lease::take_over_if_stale(&host.state_dir, name)? else {
        return Ok(false); // its owner is alive (or it just went away)
    };
    if lease.parent()?.as_deref().unwrap_or(DEFAULT_PARENT) != host.parent {
        return Ok(false); // another parent folder's: dropping the lease unlocks it again
    }
    remove_leased(host, name.to_string(), lease).map(|()| true)
}

/// Kills and removes the directories of `leaf`, then its lease.
fn remove_leased(host: &CgroupHost, leaf: String, lease: Lease) -> Result<(), CgroupError> {
    let (mounts, parent) = (&host.mounts, host.parent.as_str());
    let backend: Box<dyn CgroupBackend> = match mounts.layout.version() {
        Version::V1 => Box::new(V1Cgroup::open(mounts, &Path::new(parent).join(&leaf))),
        Version::V2 => match V2Cgroup::open(mounts, &host.v2_base.join(parent).join(&leaf)) {
            Some(cgroup) => Box::new(cgroup),
            None => return lease.release(), // died before making its directory
        },
    };
    let base = match mounts.layout.version() {
        Version::V1 => std::path::PathBuf::new(),
        Version::V2 => host.v2_base.clone(),
    };
    let relative = Path::new(parent).join(&leaf);
    ContainerCgroup::from_stale(leaf, (relative, base), backend, lease).remove()
}

/// The owner pid of a `<name>.<pid>` lease name (in the owner's pid namespace: only a
/// uniqueness aid, never a liveness test); `None` if it is not one of ours (left alone).
pub(crate) fn owner_pid(leaf: &str) -> Option<i32> {
    let (name, pid) = leaf.rsplit_once('.')?;
    validate_name(name).ok()?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse::<i32>().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::{Path, PathBuf};

    use crate::backend::MissingController;
    use crate::layout::{Layout, Mounts};
    use crate::limits::Limits;
    use crate::DEFAULT_PARENT;

    /// A v1 "host" made of plain directories (pids and memory hierarchies) and a state dir,
    /// under a fresh temporary directory: the lease logic without root or cgroupfs.
    struct FakeHost {
        root: PathBuf,
        host: CgroupHost,
    }

    impl FakeHost {
        fn new(tag: &str) -> FakeHost {
            let root = std::env::temp_dir().join(format!("crabcan-stale-test-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            let mut v1 = BTreeMap::new();
            for controller in ["pids", "memory"] {
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

        fn dirs(&self, leaf: &str) -> Vec<PathBuf> {
            ["memory", "pids"] // the order of Controller::V1_ALL
                .iter()
                .map(|c| self.root.join(c).join("crabcan").join(leaf))
                .collect()
        }

        fn lease(&self, leaf: &str) -> PathBuf {
            self.host.state_dir().join(leaf)
        }

        fn create(&self, name: &str) -> ContainerCgroup {
            self.host
                .create(name, &Limits::unlimited(), MissingController::Error)
                .expect("create")
        }
    }

    impl Drop for FakeHost {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn locked(path: &Path) -> bool {
        let file = fs::File::open(path).expect("open lease");
        // SAFETY: flock on a descriptor we own; closing it releases what we got.
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) != 0 }
    }

    #[test]
    fn create_holds_a_lease_and_remove_drops_it_after_the_dirs() {
        let fake = FakeHost::new("lifecycle");
        let cg = fake.create("web");
        let leaf = cg.name().to_string();
        assert_eq!(leaf, format!("web.{}", std::process::id()));
        assert_eq!(cg.paths(), fake.dirs(&leaf));
        assert!(cg.paths().iter().all(|d| d.is_dir()));
        assert!(locked(&fake.lease(&leaf)), "the lease is not held");
        cg.remove().expect("remove");
        assert!(fake.dirs(&leaf).iter().all(|d| !d.exists()));
        assert!(!fake.lease(&leaf).exists(), "lease left behind");
        let left: Vec<_> = fs::read_dir(fake.host.state_dir()).unwrap().collect();
        assert!(left.is_empty(), "the state directory stays, empty: {left:?}");
        assert!(fake.root.join("pids/crabcan").is_dir(), "the parent folder stays");
    }

    #[test]
    fn stale_cleanup_goes_by_leases_not_by_pids() {
        let fake = FakeHost::new("stale");
        let live = fake.create("live");
        let dead = fake.create("dead");
        let dead_leaf = dead.name().to_string();
        dead.abandon(); // as if its crabcan had been SIGKILLed
        assert!(fake.dirs(&dead_leaf).iter().all(|d| d.is_dir()));

        // A crabcan in another pid namespace: a pid that does not exist here, lease held.
        let inner = Lease::acquire(fake.host.state_dir(), "inner.4000001", "crabcan").unwrap();
        for dir in fake.dirs("inner.4000001") {
            fs::create_dir_all(dir).unwrap();
        }
        // Made by hand, no lease: not provably ours.
        let by_hand = fake.root.join("pids/crabcan/x.4000002");
        fs::create_dir_all(&by_hand).unwrap();
        // An unlocked file that is not a lease name of ours.
        fs::write(fake.host.state_dir().join("notes"), "x").unwrap();

        let removed = fake.host.remove_stale().expect("remove_stale").removed;
        assert_eq!(removed, vec![dead_leaf.clone()]);
        assert!(fake.dirs(&dead_leaf).iter().all(|d| !d.exists()), "stale dirs left");
        assert!(!fake.lease(&dead_leaf).exists(), "stale lease left");
        assert!(live.paths().iter().all(|d| d.is_dir()), "live cgroup touched");
        assert!(locked(&fake.lease(live.name())));
        assert!(
            fake.dirs("inner.4000001").iter().all(|d| d.is_dir()),
            "held lease's cgroup touched"
        );
        assert!(by_hand.is_dir(), "lease-less cgroup touched");
        assert!(fake.host.state_dir().join("notes").exists());

        // Once the inner crabcan is gone, its cgroup is stale like any other.
        drop(inner);
        assert_eq!(
            fake.host.remove_stale().unwrap().removed,
            vec!["inner.4000001".to_string()]
        );
        assert!(fake.dirs("inner.4000001").iter().all(|d| !d.exists()));
        assert!(by_hand.is_dir());
        live.remove().unwrap();
    }

    #[test]
    fn a_stale_lease_without_dirs_is_removed() {
        let fake = FakeHost::new("nodirs");
        drop(Lease::acquire(fake.host.state_dir(), "early.77", "crabcan").unwrap()); // died before mkdir
        assert_eq!(fake.host.remove_stale().unwrap().removed, vec!["early.77".to_string()]);
        assert!(!fake.lease("early.77").exists());
        assert!(fake.host.remove_stale().unwrap().removed.is_empty());
    }

    #[test]
    fn a_taken_name_is_an_error_and_nothing_is_taken_over() {
        let fake = FakeHost::new("taken");
        let first = fake.create("dup");
        let err = fake
            .host
            .create("dup", &Limits::unlimited(), MissingController::Error)
            .unwrap_err();
        assert!(matches!(err, CgroupError::InUse { .. }), "{err}");
        assert!(err.to_string().contains(&format!("crabcan/{}", first.name())), "{err}");
        assert!(first.paths().iter().all(|d| d.is_dir()) && locked(&fake.lease(first.name())));
        first.remove().unwrap();

        // A directory of that name without a lease (e.g. another pid namespace's crabcan
        // with a private state dir, or made by hand) is refused too, and left as it was.
        let leaf = format!("mine.{}", std::process::id());
        let existing = fake.root.join("memory/crabcan").join(&leaf);
        fs::create_dir_all(&existing).unwrap();
        let err = fake
            .host
            .create("mine", &Limits::unlimited(), MissingController::Error)
            .unwrap_err();
        assert!(matches!(err, CgroupError::InUse { .. }), "{err}");
        assert!(err.to_string().contains(&existing.display().to_string()), "{err}");
        assert!(existing.is_dir());
        assert!(!fake.lease(&leaf).exists(), "the failed create left its lease");
        assert!(
            !fake.root.join("pids/crabcan").join(&leaf).exists(),
            "rollback missed a dir"
        );
    }

    #[test]
    fn a_failed_limit_write_removes_the_dirs_and_the_lease() {
        let fake = FakeHost::new("rollback");
        let limits = Limits {
            pids: Some(8),
            ..Limits::unlimited()
        };
        // The fake hierarchy has no pids.max: the write fails after the dirs were made.
        let err = fake.host.create("rb", &limits, MissingController::Error).unwrap_err();
        assert!(err.to_string().contains("pids.max"), "{err}");
        let leaf = format!("rb.{}", std::process::id());
        assert!(fake.dirs(&leaf).iter().all(|d| !d.exists()), "dirs left");
        assert!(!fake.lease(&leaf).exists(), "lease left");
    }

    #[test]
    fn a_failed_removal_leaves_an_unlocked_lease_for_later() {
        let fake = FakeHost::new("busy");
        let cg = fake.create("busy");
        let leaf = cg.name().to_string();
        let blocker = fake.dirs(&leaf)[0].join("not-a-cgroup-file");
        fs::write(&blocker, "").unwrap(); // rmdir now fails with ENOTEMPTY
        assert!(cg.remove().is_err());
        assert!(fake.lease(&leaf).exists() && !locked(&fake.lease(&leaf)));
        fs::remove_file(&blocker).unwrap();
        assert_eq!(fake.host.remove_stale().unwrap().removed, vec![leaf.clone()]);
        assert!(fake.dirs(&leaf).iter().all(|d| !d.exists()));
    }

    #[test]
    fn a_failed_create_removes_the_parent_folder_it_made_but_a_live_one_stays() {
        let fake = FakeHost::new("failed-create");
        // A fake hierarchy has no pids.max: writing the limit fails after the directories.
        let limits = Limits {
            pids: Some(8),
            ..Limits::unlimited()
        };
        let err = fake.host.create("bad", &limits, MissingController::Error).unwrap_err();
        assert!(err.to_string().contains("pids.max"), "{err}");
        for hierarchy in ["memory", "pids"] {
            assert!(
                !fake.root.join(hierarchy).join("crabcan").exists(),
                "{hierarchy}/crabcan left"
            );
        }
        assert!(lease_names(fake.host.state_dir()).unwrap().is_empty(), "lease left");
        // With a container running, the folder is not this call's to remove.
        let running = fake.create("running");
        let err = fake.host.create("bad", &limits, MissingController::Error).unwrap_err();
        assert!(err.to_string().contains("pids.max"), "{err}");
        assert!(running.paths().iter().all(|d| d.is_dir()));
        let other = fake.create("other");
        assert!(!fake.host.remove_empty_folders(), "a folder in use is not empty");
        assert!(other.paths().iter().all(|d| d.is_dir()));
        other.remove().unwrap();
        running.remove().unwrap();
        assert!(
            fake.root.join("pids/crabcan").is_dir(),
            "the parent folder stays after a removal"
        );
        assert!(fake.host.remove_empty_folders());
        assert!(!fake.root.join("pids/crabcan").exists() && !fake.root.join("memory/crabcan").exists());
        assert!(!fake.host.state_dir().exists(), "the empty state directory goes too");
    }

    #[test]
    fn another_parent_folders_cgroups_are_left_alone() {
        let fake = FakeHost::new("parents");
        let other = fake.host.clone().with_parent("other").unwrap();
        let theirs = other
            .create("theirs", &Limits::unlimited(), MissingController::Error)
            .unwrap();
        let leaf = theirs.name().to_string();
        assert_eq!(theirs.paths()[0], fake.root.join("memory/other").join(&leaf));
        theirs.abandon();
        assert!(fake.host.remove_stale().unwrap().removed.is_empty());
        assert!(
            fake.root.join("pids/other").join(&leaf).is_dir(),
            "another parent's cgroup touched"
        );
        assert!(fake.lease(&leaf).exists() && !locked(&fake.lease(&leaf)));
        assert_eq!(other.remove_stale().unwrap().removed, vec![leaf.clone()]);
        assert!(!fake.root.join("pids/other").join(&leaf).exists());
    }

    #[test]
    fn owner_pids() {
        assert_eq!(owner_pid("web.1234"), Some(1234));
        assert_eq!(owner_pid("my.app.77"), Some(77));
        assert_eq!(owner_pid("web"), None);
        assert_eq!(owner_pid("web."), None);
        assert_eq!(owner_pid(".12"), None);
        assert_eq!(owner_pid("web.0"), None);
        assert_eq!(owner_pid("web.-5"), None);
        assert_eq!(owner_pid("web.+5"), None);
        assert_eq!(owner_pid("web.99999999999"), None);
        assert_eq!(owner_pid("a..b.5"), None);
    }
}
