//! Cgroup v2 delegation: the subtree of the cgroup2 hierarchy an ordinary user may manage
//! ([`find_delegated_subtree`]), as systemd gives one to every user (`user@UID.service`, with
//! `Delegate=yes`) and cgroup-v2.rst describes: a cgroup whose directory, `cgroup.procs` and
//! `cgroup.subtree_control` the user owns. An ordinary user's crabcan makes its containers'
//! cgroups there ([`crate::CgroupHost::with_v2_base`]); where there is none it gets
//! [`NoDelegation`], which says why.
//!
//! Which cgroup: crabcan's own (from `/proc/self/cgroup`) holds crabcan, and a cgroup v2 cgroup
//! with processes of its own cannot hand controllers to children ("no internal processes"), so
//! the container's cgroup goes next to crabcan's, into its parent, which must be the user's.
//! Moving the container's process there needs write access to `cgroup.procs` of the common
//! ancestor of both (that parent), which ownership of its `cgroup.procs` gives.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::host::CgroupHost;
use crate::layout::{current_cgroups, Layout, ProcCgroup};

/// Why an ordinary user has no cgroup v2 subtree to put a container's cgroup in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoDelegation {
    /// The controllers are on cgroup v1 (a v1 or hybrid host): v1 has no delegation to users.
    NotV2 {
        /// The host's layout.
        layout: Layout,
    },
    /// `/proc/self/cgroup` has no cgroup2 line (`0::PATH`).
    NoCgroup2Line,
    /// Neither crabcan's cgroup nor its parent is the user's.
    NotOwned {
        /// crabcan's cgroup, relative to the cgroup2 mount (`/` for its root).
        cgroup: String,
    },
    /// crabcan's own cgroup is the user's, but it holds crabcan (so it can give no controllers
    /// to a child), and its parent is not the user's.
    OnlyOwnCgroup {
        /// crabcan's cgroup, relative to the cgroup2 mount.
        cgroup: String,
    },
}

impl fmt::Display for NoDelegation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoDelegation::NotV2 { layout } => write!(
                f,
                "this host's cgroup controllers are on cgroup v1 ({layout:?} layout), which cannot be delegated to a user"
            ),
            NoDelegation::NoCgroup2Line => f.write_str("/proc/self/cgroup names no cgroup v2 cgroup"),
            NoDelegation::NotOwned { cgroup } => write!(
                f,
                "neither crabcan's cgroup {cgroup} nor its parent is delegated to you (owned by you, with its cgroup.procs and cgroup.subtree_control)"
            ),
            NoDelegation::OnlyOwnCgroup { cgroup } => write!(
                f,
                "crabcan's cgroup {cgroup} is delegated to you but holds crabcan itself, and its parent is not yours"
            ),
        }
    }
}

/// The cgroup v2 subtree (relative to the cgroup2 mount) that user `uid` may make the
/// container's cgroup in: the parent of the calling process's cgroup, when the user owns it
/// (the directory, its `cgroup.procs` and `cgroup.subtree_control`). [`NoDelegation`] says why
/// there is none.
pub fn find_delegated_subtree(host: &CgroupHost, uid: u32) -> Result<PathBuf, NoDelegation> {
    if host.layout() != Layout::V2 {
        return Err(NoDelegation::NotV2 { layout: host.layout() });
    }
    let Some(mount) = host.mounts.v2.clone() else {
        return Err(NoDelegation::NotV2 { layout: host.layout() });
    };
    let cgroups = current_cgroups().map_err(|_| NoDelegation::NoCgroup2Line)?;
    decide(&cgroups, |relative| owned_by(&mount.join(relative), uid))
}

/// Whether `uid` owns the cgroup directory `dir`, its `cgroup.procs` and its
/// `cgroup.subtree_control`.
fn owned_by(dir: &Path, uid: u32) -> bool {
    ["", "cgroup.procs", "cgroup.subtree_control"]
        .iter()
        .all(|file| std::fs::metadata(dir.join(file)).is_ok_and(|m| m.uid() == uid))
}

/// The decision, on the calling process's cgroups and an ownership test of a cgroup (relative
/// to the cgroup2 mount).
fn decide(cgroups: &[ProcCgroup], owned: impl Fn(&Path) -> bool) -> Result<PathBuf, NoDelegation> {
    let line = cgroups
        .iter()
        .find(|c| c.hierarchy == 0 && c.controllers.is_empty())
        .ok_or(NoDelegation::NoCgroup2Line)?;
    let own = Path::new(line.path.trim_start_matches('/')).to_path_buf();
    let parent = own.parent().map(Path::to_path_buf);
    match parent {
        Some(parent) if !own.as_os_str().is_empty() && owned(&parent) => Ok(parent),
        _ if !own.as_os_str().is_empty() && owned(&own) => Err(NoDelegation::OnlyOwnCgroup {
            cgroup: line.path.clone(),
        }),
        _ => Err(NoDelegation::NotOwned {
            cgroup: line.path.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;

    use super::*;
    use crate::backend::MissingController;
    use crate::layout::Mounts;
    use crate::limits::Limits;
    use crate::ContainerCgroup;
    use crate::DEFAULT_PARENT;

    fn line(path: &str) -> Vec<ProcCgroup> {
        vec![
            ProcCgroup {
                hierarchy: 1,
                controllers: vec!["name=systemd".into()],
                path: "/".into(),
            },
            ProcCgroup {
                hierarchy: 0,
                controllers: vec![],
                path: path.into(),
            },
        ]
    }

    const SCOPE: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope";

    #[test]
    fn the_parent_of_crabcans_cgroup_when_the_user_owns_it() {
        let owned_from = |top: &'static str| move |path: &Path| path.starts_with(top);
        assert_eq!(
            decide(&line(SCOPE), owned_from("user.slice/user-1000.slice/user@1000.service")),
            Ok(PathBuf::from("user.slice/user-1000.slice/user@1000.service/app.slice"))
        );
        // A login session's scope is root's, and so is its slice.
        let session = "/user.slice/user-1000.slice/session-3.scope";
        assert_eq!(
            decide(
                &line(session),
                owned_from("user.slice/user-1000.slice/user@1000.service")
            ),
            Err(NoDelegation::NotOwned { cgroup: session.into() })
        );
        // Its own cgroup alone holds crabcan: no controllers for a child there.
        assert_eq!(
            decide(&line(SCOPE), |path: &Path| path == Path::new(&SCOPE[1..])),
            Err(NoDelegation::OnlyOwnCgroup { cgroup: SCOPE.into() })
        );
        assert_eq!(
            decide(&line("/"), |_: &Path| true),
            Err(NoDelegation::NotOwned { cgroup: "/".into() }),
            "the root is never delegated"
        );
        assert_eq!(
            decide(&line(SCOPE)[..1], |_: &Path| true),
            Err(NoDelegation::NoCgroup2Line)
        );
        let message = NoDelegation::OnlyOwnCgroup { cgroup: SCOPE.into() }.to_string();
        assert!(message.contains("holds crabcan itself"), "{message}");
    }

    #[test]
    fn ownership_is_of_the_directory_and_its_two_files() {
        let dir = std::env::temp_dir().join(format!("crabcan-delegation-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        assert!(!owned_by(&dir, me), "no cgroup.procs: not a delegated cgroup");
        fs::write(dir.join("cgroup.procs"), "").unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        assert!(owned_by(&dir, me));
        assert!(!owned_by(&dir, me.wrapping_add(1)));
        let _ = fs::remove_dir_all(&dir);
    }

    /// A cgroup2 "mount" of plain directories and files: a cgroup made below a delegated base
    /// touches nothing above it.
    #[test]
    fn a_base_is_where_cgroups_go_and_nothing_above_it_is_written() {
        let root = std::env::temp_dir().join(format!("crabcan-v2-base-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let base = root.join("user.slice/user@1000.service");
        fs::create_dir_all(&base).unwrap();
        for dir in [&root, &root.join("user.slice"), &base] {
            fs::write(dir.join("cgroup.controllers"), "memory pids\n").unwrap();
            fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        }
        let host = CgroupHost {
            mounts: Mounts {
                layout: Layout::V2,
                v1: BTreeMap::new(),
                v2: Some(root.clone()),
            },
            state_dir: root.join("state"),
            parent: DEFAULT_PARENT.to_string(),
            v2_base: PathBuf::new(),
            uses: crate::CgroupUses::ALL,
        }
        .with_v2_base("user.slice/user@1000.service")
        .unwrap();
        assert_eq!(
            host.available_controllers().unwrap(),
            ["memory", "pids"].iter().map(|c| c.to_string()).collect()
        );
        let cgroup = host
            .create_at(Path::new("abc"), &Limits::unlimited(), MissingController::Error)
            .unwrap();
        assert_eq!(cgroup.paths(), vec![base.join("abc")]);
        assert_eq!(cgroup.relative_path(), Path::new("abc"));
        assert_eq!(cgroup.v2_base(), Path::new("user.slice/user@1000.service"));
        for above in [&root, &root.join("user.slice")] {
            assert_eq!(fs::read_to_string(above.join("cgroup.subtree_control")).unwrap(), "");
        }
        assert_ne!(
            fs::read_to_string(base.join("cgroup.subtree_control")).unwrap(),
            "",
            "the controllers are enabled from the base down"
        );
        drop(cgroup.keep());
        // A later process finds it through a host with the same base, and removing it leaves
        // the base alone.
        let opened = ContainerCgroup::open_at(&host, Path::new("abc")).unwrap();
        assert_eq!(opened.paths(), vec![base.join("abc")]);
        fs::remove_dir(base.join("abc")).unwrap();
        assert!(base.is_dir());
        let _ = fs::remove_dir_all(&root);
    }
}
