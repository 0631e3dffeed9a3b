//! Cgroup layout detection: parses `/proc/self/mountinfo` into the v1
//! controller mounts and the cgroup2 mount, decides [`Layout`], and parses
//! `/proc/self/cgroup` (the cgroups the calling process belongs to).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::path::{Path, PathBuf};

use crate::error::CgroupError;

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";

/// How cgroups are mounted on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only cgroup v1 controller hierarchies.
    V1,
    /// v1 controller hierarchies plus a cgroup2 mount (systemd "hybrid");
    /// this crate uses the v1 controllers there.
    Hybrid,
    /// Only the unified cgroup2 hierarchy.
    V2,
}

/// Which cgroup interface a container cgroup is driven through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

impl Layout {
    /// The interface container cgroups are driven through on this layout.
    pub(crate) fn version(self) -> Version {
        match self {
            Layout::V1 | Layout::Hybrid => Version::V1,
            Layout::V2 => Version::V2,
        }
    }
}

/// Controllers this crate knows by their v1 names; other super options
/// (`rw`, `name=systemd`, `xattr`, ...) are ignored.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

/// The cgroup mounts of this process's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mounts {
    pub layout: Layout,
    /// v1 controller name → mount point (first mount wins; co-mounted
    /// controllers such as `cpu,cpuacct` share one mount point).
    pub v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 mount point, if any.
    pub v2: Option<PathBuf>,
}

impl Mounts {
    /// Reads `/proc/self/mountinfo`.
    pub fn detect() -> Result<Mounts, CgroupError> {
        let text = crate::fsutil::read_string(Path::new(MOUNTINFO))?;
        Mounts::from_mountinfo(&text).ok_or_else(|| CgroupError::NotMounted { path: MOUNTINFO.into() })
    }

    /// Decides the layout from mountinfo text; `None` when no cgroup2 mount
    /// and no v1 controller mount exists.
    pub fn from_mountinfo(text: &str) -> Option<Mounts> {
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for line in text.lines() {
            match parse_mountinfo_line(line) {
                Some(CgroupMount::V1 {
                    mount_point,
                    controllers,
                }) => {
                    for c in controllers {
                        v1.entry(c).or_insert_with(|| mount_point.clone());
                    }
                }
                // Prefer the canonical mount point if several exist.
                Some(CgroupMount::V2 { mount_point }) if v2.is_none() || mount_point == Path::new("/sys/fs/cgroup") => {
                    v2 = Some(mount_point);
                }
                Some(CgroupMount::V2 { .. }) | None => {}
            }
        }
        let layout = match (v1.is_empty(), v2.is_some()) {
            (false, true) => Layout::Hybrid,
            (false, false) => Layout::V1,
            (true, true) => Layout::V2,
            (true, false) => return None,
        };
        Some(Mounts { layout, v1, v2 })
    }

    /// The mount point of v1 controller `name` (e.g. "memory").
    pub fn v1_mount(&self, name: &str) -> Option<&Path> {
        self.v1.get(name).map(PathBuf::as_path)
    }
}

/// One cgroup filesystem line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CgroupMount {
    V1 {
        mount_point: PathBuf,
        controllers: Vec<String>,
    },
    V2 {
        mount_point: PathBuf,
    },
}

/// Parses one mountinfo line (see proc(5)):
/// `id parent major:minor root mount_point options [optional...] - fstype source super_options`.
fn parse_mountinfo_line(line: &str) -> Option<CgroupMount> {
    let (before, after) = line.split_once(" - ")?;
    let mut after = after.split(' ');
    let fstype = after.next()?;
    if fstype != "cgroup" && fstype != "cgroup2" {
        // Most lines: no need to decode their mount point.
        return None;
    }
    let _source = after.next()?;
    let super_options = after.next().unwrap_or("");
    let mount_point = unescape_octal(before.split(' ').nth(4)?);
    match fstype {
        "cgroup2" => Some(CgroupMount::V2 {
            mount_point: mount_point.into(),
        }),
        "cgroup" => {
            let controllers: Vec<String> = super_options
                .split(',')
                .filter(|opt| V1_CONTROLLERS.contains(opt))
                .map(str::to_string)
                .collect();
            if controllers.is_empty() {
                return None; // e.g. name=systemd: no controller
            }
            Some(CgroupMount::V1 {
                mount_point: mount_point.into(),
                controllers,
            })
        }
        _ => None,
    }
}

/// Decodes the `\NNN` octal escapes mountinfo uses for space, tab, newline and backslash.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = (u32::from(d[0] - b'0') << 6) | (u32::from(d[1] - b'0') << 3) | u32::from(d[2] - b'0');
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Hierarchy id; 0 for the cgroup2 hierarchy.
    pub hierarchy: u32,
    /// v1 controllers (or `name=...`) of the hierarchy; empty for cgroup2.
    pub controllers: Vec<String>,
    /// Path of the cgroup relative to the hierarchy's root (as seen from
    /// this process's cgroup namespace).
    pub path: String,
}

/// Where cgroup v1's memory controller is mounted on hosts that have it (systemd's layout and
/// every distribution's): the path [`v1_controllers_mounted`] looks at.
const USUAL_V1_MEMORY_MOUNT: &std::ffi::CStr = c"/sys/fs/cgroup/memory";
/// `f_type` of a cgroup v1 filesystem (`CGROUP_SUPER_MAGIC`).
const CGROUP_V1_MAGIC: i64 = 0x0027_e0eb;

/// Whether cgroup v1 controllers are certainly mounted in this mount namespace, from one
/// `statfs` of their usual place (`/sys/fs/cgroup/memory`) instead of the whole mount table.
/// Where it says yes, [`crate::CgroupHost::detect`] reports [`Layout::V1`] or
/// [`Layout::Hybrid`] (a v1 mount exists, and v1 hierarchies decide the layout), so a caller
/// that needs no more than that yet can read the mount table later. `false` means "not known":
/// a pure cgroup v2 host, no cgroups at all, v1 mounted elsewhere, or a failed `statfs`.
pub fn v1_controllers_mounted() -> bool {
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: statfs with a NUL-terminated path and a buffer of the type it fills, which is
    // read only after it returned 0 (filled).
    let filled = unsafe { libc::statfs(USUAL_V1_MEMORY_MOUNT.as_ptr(), fs.as_mut_ptr()) } == 0;
    // SAFETY: see above; `filled` is checked first.
    #[allow(clippy::unnecessary_cast)] // f_type is i64 on x86_64, narrower elsewhere
    let is_v1 = filled && unsafe { fs.assume_init() }.f_type as i64 == CGROUP_V1_MAGIC;
    is_v1
}

/// The cgroups the calling process belongs to (`/proc/self/cgroup`).
pub fn current_cgroups() -> Result<Vec<ProcCgroup>, CgroupError> {
    let text = crate::fsutil::read_string(Path::new(PROC_CGROUP))?;
    Ok(parse_proc_cgroup(&text))
}

/// The cgroups of the process whose `/proc/<pid>` (or `/proc/self`) directory is open as
/// `proc_dir`: its `cgroup` file, found from that descriptor rather than by path, so it reads
/// the procfs the directory was opened on, whatever `/proc` has become since (a process that
/// opened `/proc/self` before `pivot_root` still reads the host's procfs afterwards).
pub fn cgroups_of(proc_dir: BorrowedFd<'_>) -> Result<Vec<ProcCgroup>, CgroupError> {
    let shown = Path::new("<its /proc directory>/cgroup");
    // SAFETY: openat with a live directory descriptor and a NUL-terminated literal; the
    // result is checked and owned by the File at once.
    let fd = unsafe {
        libc::openat(
            proc_dir.as_raw_fd(),
            c"cgroup".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(CgroupError::io("open", shown, std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    let text = crate::fsutil::read_opened_kernel_file(file).map_err(|cause| CgroupError::io("read", shown, cause))?;
    Ok(parse_proc_cgroup(&text))
}

/// Parses `/proc/<pid>/cgroup` text; malformed lines are skipped.
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines().filter_map(parse_proc_cgroup_line).collect()
}

fn parse_proc_cgroup_line(line: &str) -> Option<ProcCgroup> {
    let mut fields = line.splitn(3, ':');
    let hierarchy = fields.next()?.parse().ok()?;
    let controllers = fields.next()?;
    let path = fields.next()?.to_string();
    let controllers = controllers
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    Some(ProcCgroup {
        hierarchy,
        controllers,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_of_an_open_proc_directory_are_those_at_its_path() {
        let dir = std::fs::File::open("/proc/self").unwrap();
        use std::os::fd::AsFd;
        assert_eq!(cgroups_of(dir.as_fd()).unwrap(), current_cgroups().unwrap());
        let not_proc = std::fs::File::open("/").unwrap();
        let err = cgroups_of(not_proc.as_fd()).unwrap_err();
        assert!(err.to_string().contains("<its /proc directory>/cgroup"), "{err}");
    }

    /// The statfs probe agrees with the mount table of this process, both ways: a yes means a
    /// v1 or hybrid layout, and memory mounted at its usual place means a yes.
    #[test]
    fn the_v1_probe_agrees_with_the_mount_table() {
        let probed = v1_controllers_mounted();
        let mounts = Mounts::detect().ok();
        if probed {
            let layout = mounts.as_ref().map(|m| m.layout);
            assert!(
                matches!(layout, Some(Layout::V1 | Layout::Hybrid)),
                "probe said v1, mountinfo: {layout:?}"
            );
        }
        let memory_at_usual_place = mounts
            .as_ref()
            .and_then(|m| m.v1_mount("memory"))
            .is_some_and(|at| at.as_os_str().as_encoded_bytes() == USUAL_V1_MEMORY_MOUNT.to_bytes());
        assert_eq!(probed, memory_at_usual_place, "{mounts:?}");
    }

    /// This very host: separate cpu and cpuacct mounts, cgroup2 at unified/.
    const HYBRID_SEPARATE: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// Classic v1 (e.g. CentOS 7): co-mounted cpu,cpuacct, optional fields present.
    const V1_COMOUNTED: &str = "\
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpuacct,cpu
29 25 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
30 25 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
31 25 0:27 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,blkio
32 25 0:28 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,freezer
33 25 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
";

    /// Ubuntu 18.04-style hybrid: co-mounted cpu,cpuacct plus unified/.
    const HYBRID_COMOUNTED: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
";

    /// Pure v2 (Fedora, Ubuntu 22.04+, Debian 11+).
    const PURE_V2: &str = "\
24 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    /// v2 with a leftover name=systemd v1 mount (no controllers) is still V2.
    const V2_WITH_NAMED_V1: &str = "\
35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw
36 35 0:40 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
";

    #[test]
    fn hybrid_with_separate_cpu_and_cpuacct() {
        let m = Mounts::from_mountinfo(HYBRID_SEPARATE).unwrap();
        assert_eq!(m.layout, Layout::Hybrid);
        assert_eq!(m.layout.version(), Version::V1);
        assert_eq!(m.v1_mount("cpu"), Some(Path::new("/sys/fs/cgroup/cpu")));
        assert_eq!(m.v1_mount("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpuacct")));
        assert_eq!(m.v1_mount("memory"), Some(Path::new("/sys/fs/cgroup/memory")));
        assert_eq!(m.v1_mount("blkio"), Some(Path::new("/sys/fs/cgroup/blkio")));
        assert_eq!(m.v1_mount("systemd"), None);
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn v1_with_comounted_cpu_cpuacct() {
        let m = Mounts::from_mountinfo(V1_COMOUNTED).unwrap();
        assert_eq!(m.layout, Layout::V1);
        assert_eq!(m.v1_mount("cpu"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(m.v1_mount("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(
            m.v1_mount("net_prio"),
            Some(Path::new("/sys/fs/cgroup/net_cls,net_prio"))
        );
        assert_eq!(m.v1_mount("pids"), Some(Path::new("/sys/fs/cgroup/pids")));
        assert_eq!(m.v2, None);
    }

    #[test]
    fn hybrid_with_comounted_cpu_cpuacct() {
        let m = Mounts::from_mountinfo(HYBRID_COMOUNTED).unwrap();
        assert_eq!(m.layout, Layout::Hybrid);
        assert_eq!(m.v1_mount("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(m.v1_mount("pids"), None);
    }

    #[test]
    fn pure_v2() {
        let m = Mounts::from_mountinfo(PURE_V2).unwrap();
        assert_eq!(m.layout, Layout::V2);
        assert_eq!(m.layout.version(), Version::V2);
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        assert!(m.v1.is_empty());
        assert_eq!(Mounts::from_mountinfo(V2_WITH_NAMED_V1).unwrap().layout, Layout::V2);
    }

    #[test]
    fn no_cgroups_and_garbage() {
        assert_eq!(Mounts::from_mountinfo(""), None);
        assert_eq!(Mounts::from_mountinfo("24 1 259:2 / / rw - ext4 /dev/sda rw\n"), None);
        assert_eq!(Mounts::from_mountinfo("garbage\n - \n-\n1 2 3\n - cgroup2"), None);
    }

    #[test]
    fn escaped_mount_points() {
        let line = "40 31 0:37 / /mnt/my\\040cgroups rw - cgroup2 none rw";
        let m = Mounts::from_mountinfo(line).unwrap();
        assert_eq!(m.v2.as_deref(), Some(Path::new("/mnt/my cgroups")));
        assert_eq!(unescape_octal("a\\134b\\0"), "a\\b\\0");
    }

    #[test]
    fn proc_cgroup_hybrid_and_v2() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/0d36\n2:cpuacct:/\n1:cpu,cpuacct:/a:b\n0::/\n";
        let parsed = parse_proc_cgroup(hybrid);
        assert_eq!(parsed.len(), 5);
        assert_eq!(
            parsed[1],
            ProcCgroup {
                hierarchy: 4,
                controllers: vec!["memory".into()],
                path: "/process_api/0d36".into()
            }
        );
        assert_eq!(parsed[3].controllers, vec!["cpu".to_string(), "cpuacct".to_string()]);
        assert_eq!(parsed[3].path, "/a:b");
        assert_eq!(
            parsed[4],
            ProcCgroup {
                hierarchy: 0,
                controllers: vec![],
                path: "/".into()
            }
        );
        let v2 = parse_proc_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n");
        assert_eq!(v2[0].path, "/user.slice/user-1000.slice/session-2.scope");
        assert!(parse_proc_cgroup("x:y\nnot a line\n").is_empty());
    }
}
