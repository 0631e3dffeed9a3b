//! The container's view of its own cgroup at `/sys/fs/cgroup`, read-only, so the JVM, Go, .NET
//! and Node can see their memory and CPU limits. Only the container's own cgroup is shown,
//! never a hierarchy's root: the filesystems are mounted inside the container's cgroup
//! namespace, whose root is the container's cgroup, and on cgroup v1 only the hierarchies the
//! container was moved into get mounted (the root of any other would be crabcan's cgroup, maybe
//! the host's root with its `release_agent`, CVE-2022-0492). What to mount is a plan ([`plan`],
//! pure, unit-tested), carried out by [`mount`] after `unshare(CLONE_NEWCGROUP)`.

use std::path::Path;

use crabcan_cgroups::{Layout, ProcCgroup};
use nix::errno::Errno;
use nix::mount::MsFlags;

/// Where the view is mounted in the container.
pub const MOUNT_POINT: &str = "/sys/fs/cgroup";

/// What to mount at [`MOUNT_POINT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupView {
    /// Nothing: the container has no cgroup of its own.
    None,
    /// The cgroup2 filesystem.
    V2,
    /// A read-only tmpfs with one cgroup v1 mount per hierarchy, named by its controllers
    /// (`cpu,cpuacct`), with a symlink per controller of a co-mounted hierarchy.
    V1 { hierarchies: Vec<Vec<String>> },
}

/// The view for a container on a host of `layout` (`None`: no cgroup), from the process's
/// cgroups before (`before`) and after (`after`) it was moved into its own.
pub fn plan(layout: Option<Layout>, before: &[ProcCgroup], after: &[ProcCgroup]) -> CgroupView {
    match layout {
        None => CgroupView::None,
        Some(Layout::V2) => CgroupView::V2,
        Some(Layout::V1 | Layout::Hybrid) => {
            let hierarchies: Vec<Vec<String>> = after
                .iter()
                .filter(|now| now.hierarchy != 0 && !now.controllers.is_empty())
                .filter(|now| now.controllers.iter().all(|c| !c.starts_with("name=")))
                .filter(|now| {
                    let was = before.iter().find(|b| b.hierarchy == now.hierarchy);
                    was.is_some_and(|was| was.path != now.path)
                })
                .map(|now| now.controllers.clone())
                .collect();
            if hierarchies.is_empty() {
                CgroupView::None
            } else {
                CgroupView::V1 { hierarchies }
            }
        }
    }
}

const VIEW_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Mounting the view failed at `path`.
#[derive(Debug, thiserror::Error)]
#[error("mounting the container's cgroup view on {path}: {errno}")]
pub struct CgroupViewError {
    pub path: String,
    pub errno: Errno,
}

/// Mounts `view` (inside the container, after pivot_root and the cgroup namespace).
pub fn mount(view: &CgroupView) -> Result<(), CgroupViewError> {
    let at = |path: &str, errno| CgroupViewError {
        path: path.to_owned(),
        errno,
    };
    match view {
        CgroupView::None => Ok(()),
        CgroupView::V2 => {
            let cgroup2 = || nix::mount::mount(Some("cgroup2"), MOUNT_POINT, Some("cgroup2"), VIEW_FLAGS, None::<&str>);
            match cgroup2() {
                // The host's cgroup2 is there already, bound with the host's /sys (as runc's
                // rootless bundles bind it), and the kernel refuses the same filesystem on the
                // same mount point: the view goes on an empty tmpfs over it.
                Err(Errno::EBUSY) => nix::mount::mount(
                    Some("tmpfs"),
                    MOUNT_POINT,
                    Some("tmpfs"),
                    VIEW_FLAGS,
                    Some("mode=555,size=0"),
                )
                .and_then(|()| cgroup2()),
                other => other,
            }
            .map_err(|errno| at(MOUNT_POINT, errno))
        }
        CgroupView::V1 { hierarchies } => {
            nix::mount::mount(
                Some("tmpfs"),
                MOUNT_POINT,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=755,size=64k"),
            )
            .map_err(|errno| at(MOUNT_POINT, errno))?;
            for controllers in hierarchies {
                let name = controllers.join(",");
                let dir = format!("{MOUNT_POINT}/{name}");
                nix::unistd::mkdir(dir.as_str(), nix::sys::stat::Mode::from_bits_truncate(0o755))
                    .map_err(|errno| at(&dir, errno))?;
                nix::mount::mount(
                    Some("cgroup"),
                    dir.as_str(),
                    Some("cgroup"),
                    VIEW_FLAGS,
                    Some(name.as_str()),
                )
                .map_err(|errno| at(&dir, errno))?;
                if controllers.len() > 1 {
                    for controller in controllers {
                        let link = format!("{MOUNT_POINT}/{controller}");
                        std::os::unix::fs::symlink(&name, &link)
                            .map_err(|error| at(&link, Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))))?;
                    }
                }
            }
            nix::mount::mount(
                None::<&str>,
                MOUNT_POINT,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | VIEW_FLAGS,
                None::<&str>,
            )
            .map_err(|errno| at(MOUNT_POINT, errno))
        }
    }
}

/// Whether [`MOUNT_POINT`] exists in the container (a kernel without cgroups has none).
pub fn mount_point_exists() -> bool {
    Path::new(MOUNT_POINT).is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(hierarchy: u32, controllers: &str, path: &str) -> ProcCgroup {
        ProcCgroup {
            hierarchy,
            controllers: controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            path: path.to_owned(),
        }
    }

    #[test]
    fn only_the_hierarchies_the_container_joined_are_shown() {
        let before = [
            line(9, "name=systemd", "/"),
            line(8, "pids", "/"),
            line(4, "memory", "/host/slice"),
            line(2, "cpu,cpuacct", "/"),
            line(3, "cpuset", "/"),
            line(0, "", "/"),
        ];
        let after = [
            line(9, "name=systemd", "/"),
            line(8, "pids", "/crabcan/box.7"),
            line(4, "memory", "/crabcan/box.7"),
            line(2, "cpu,cpuacct", "/crabcan/box.7"),
            line(3, "cpuset", "/"),
            line(0, "", "/"),
        ];
        let view = plan(Some(Layout::Hybrid), &before, &after);
        assert_eq!(
            view,
            CgroupView::V1 {
                hierarchies: vec![
                    vec!["pids".to_owned()],
                    vec!["memory".to_owned()],
                    vec!["cpu".to_owned(), "cpuacct".to_owned()],
                ]
            },
            "cpuset, name=systemd and the cgroup2 hierarchy stay crabcan's: not shown"
        );
    }

    #[test]
    fn no_cgroup_no_view_and_v2_shows_cgroup2() {
        let lines = [line(0, "", "/crabcan/box.7")];
        assert_eq!(plan(None, &lines, &lines), CgroupView::None);
        assert_eq!(plan(Some(Layout::V2), &lines, &lines), CgroupView::V2);
        assert_eq!(
            plan(Some(Layout::V1), &[line(4, "memory", "/")], &[line(4, "memory", "/")]),
            CgroupView::None,
            "never moved: nothing of its own to show"
        );
    }
}
