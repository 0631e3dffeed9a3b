//! Host state before and after the bench, to catch leaks: crabcan cgroup
//! dirs (`<cgroup mount>/**/crabcan/*`), cgroup dirs named after our
//! container ids (crun/runc), new mounts in /proc/self/mountinfo, leftover
//! processes that mention our rootfs, bundles or ids, `/tmp/crabcan*`
//! dirs, state dirs left in crabcan's OCI `--root`, and crun/runc state
//! dirs (`/run/crun/<id>`, `/run/runc/<id>`).
//!
//! crabcan runs with `--hostname <id prefix>`, so its cgroups
//! (`crabcan/<hostname>.<pid>`) are told from those of a concurrent crabcan
//! (reported, not a failure). crun/runc leftovers (state dirs, cgroups
//! named after our ids) are removed and reported as notes; anything else is
//! a leak and fails the bench.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Where the runtimes keep container state.
const STATE_DIRS: [&str; 2] = ["/run/crun", "/run/runc"];
/// How deep to look under each cgroup mount.
const CGROUP_DEPTH: usize = 4;

/// What the host looked like at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    crabcan_cgroups: BTreeSet<PathBuf>,
    mounts: BTreeSet<String>,
    tmp_dirs: BTreeSet<PathBuf>,
    processes: BTreeSet<String>,
    /// Owner and mode of the host's standard device nodes.
    devices: Vec<(PathBuf, u32, u32, u32)>,
}

/// The host device nodes containers get bound in: a runtime must never change them (crun 1.8
/// chowns the host's /dev/null to the container's root when it runs a user namespace).
const HOST_DEVICES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// The outcome of comparing two snapshots.
#[derive(Debug, Default)]
pub struct Report {
    /// Leaks: the bench fails if there is any.
    pub leaks: Vec<String>,
    /// crun/runc leftovers that were removed.
    pub cleaned: Vec<String>,
    /// New crabcan cgroups from someone else's crabcan (not ours).
    pub foreign: Vec<String>,
}

/// What identifies our own containers and files.
#[derive(Debug, Clone)]
pub struct Marks {
    pub id_prefix: String,
    /// Paths whose mention in a command line marks one of our processes.
    pub paths: Vec<String>,
    /// crabcan's OCI state folder (`--root`): anything left in it leaks.
    pub crabcan_root: PathBuf,
}

impl Snapshot {
    pub fn take(marks: &Marks) -> Snapshot {
        Snapshot {
            crabcan_cgroups: cgroup_dirs(in_crabcan_dir),
            mounts: mounts(),
            tmp_dirs: tmp_crabcan_dirs(),
            processes: our_processes(marks),
            devices: host_devices(),
        }
    }

    /// Leaks since `before`; removes crun/runc leftovers on the way.
    pub fn compare(before: &Snapshot, marks: &Marks) -> Report {
        let after = Snapshot::take(marks);
        let mut report = Report::default();
        for dir in after.crabcan_cgroups.difference(&before.crabcan_cgroups) {
            if file_name(dir).starts_with(&marks.id_prefix) {
                report
                    .leaks
                    .push(format!("crabcan cgroup left behind: {}", dir.display()));
            } else {
                report.foreign.push(format!(
                    "crabcan cgroup {} (not from the bench's runs: its hostname is not {}; a concurrent crabcan?)",
                    dir.display(),
                    marks.id_prefix
                ));
            }
        }
        for mount in after.mounts.difference(&before.mounts) {
            report.leaks.push(format!("new mount: {mount}"));
        }
        for dir in after.tmp_dirs.difference(&before.tmp_dirs) {
            report.leaks.push(format!(
                "temp dir left behind: {} (crabcan's tests also use /tmp/crabcan-*: was a test running?)",
                dir.display()
            ));
        }
        for process in after.processes.difference(&before.processes) {
            report.leaks.push(format!("process left running: {process}"));
        }
        for state in children(&marks.crabcan_root) {
            report
                .leaks
                .push(format!("crabcan OCI state left behind: {}", state.display()));
        }
        clean_runtime_leftovers(marks, &mut report);
        restore_devices(&before.devices, &after.devices, &mut report);
        report
    }
}

fn host_devices() -> Vec<(PathBuf, u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    HOST_DEVICES
        .iter()
        .filter_map(|path| {
            let meta = fs::symlink_metadata(path).ok()?;
            Some((PathBuf::from(path), meta.uid(), meta.gid(), meta.mode() & 0o7777))
        })
        .collect()
}

/// Puts back the owner and mode of every host device node a runtime changed, and says so.
fn restore_devices(before: &[(PathBuf, u32, u32, u32)], after: &[(PathBuf, u32, u32, u32)], report: &mut Report) {
    use std::os::unix::fs::PermissionsExt;
    for (path, uid, gid, mode) in before {
        let Some((_, now_uid, now_gid, now_mode)) = after.iter().find(|(p, ..)| p == path) else {
            continue;
        };
        if (now_uid, now_gid, now_mode) == (uid, gid, mode) {
            continue;
        }
        let restored = std::os::unix::fs::lchown(path, Some(*uid), Some(*gid))
            .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(*mode)));
        let outcome = restored.map_or_else(|e| format!(" (restoring failed: {e})"), |()| " (restored)".into());
        report.cleaned.push(format!(
            "host {} was changed to {now_uid}:{now_gid} mode {now_mode:o} by a runtime (crun 1.8 chowns it when it runs a user namespace){outcome}",
            path.display()
        ));
    }
}

fn clean_runtime_leftovers(marks: &Marks, report: &mut Report) {
    let ours = |path: &Path| file_name(path).starts_with(&marks.id_prefix);
    for state in STATE_DIRS {
        for dir in children(Path::new(state)).into_iter().filter(|p| ours(p)) {
            let outcome =
                fs::remove_dir_all(&dir).map_or_else(|e| format!(" (removing failed: {e})"), |()| String::new());
            report
                .cleaned
                .push(format!("runtime state dir {}{outcome}", dir.display()));
        }
    }
    // Deepest first, so nested dirs go before their parents.
    let runtime_cgroup = |path: &Path| ours(path) && !in_crabcan_dir(path);
    for dir in cgroup_dirs(runtime_cgroup).into_iter().rev() {
        let outcome = fs::remove_dir(&dir).map_or_else(|e| format!(" (removing failed: {e})"), |()| String::new());
        report
            .cleaned
            .push(format!("runtime cgroup {}{outcome}", dir.display()));
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn children(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// A dir whose parent is named `crabcan` (a container's cgroup).
fn in_crabcan_dir(path: &Path) -> bool {
    path.parent().map(|p| file_name(p) == "crabcan").unwrap_or(false)
}

/// Directories under every cgroup mount (to [`CGROUP_DEPTH`]) that `want`.
pub(super) fn cgroup_dirs(want: impl Fn(&Path) -> bool) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    for root in cgroup_mounts() {
        walk(&root, CGROUP_DEPTH, &want, &mut found);
    }
    found
}

fn walk(dir: &Path, depth: usize, want: &impl Fn(&Path) -> bool, found: &mut BTreeSet<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir {
            continue;
        }
        let path = entry.path();
        if want(&path) {
            found.insert(path.clone());
        }
        walk(&path, depth - 1, want, found);
    }
}

fn cgroup_mounts() -> Vec<PathBuf> {
    mountinfo_entries()
        .into_iter()
        .filter(|(_, fstype, _)| fstype == "cgroup" || fstype == "cgroup2")
        .map(|(mount_point, _, _)| PathBuf::from(mount_point))
        .collect()
}

/// (mount point, fstype, source) of each line of /proc/self/mountinfo.
fn mountinfo_entries() -> Vec<(String, String, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?.to_string();
            let mut right = right.split(' ');
            let fstype = right.next()?.to_string();
            let source = right.next().unwrap_or("").to_string();
            Some((mount_point, fstype, source))
        })
        .collect()
}

fn mounts() -> BTreeSet<String> {
    mountinfo_entries()
        .into_iter()
        .map(|(mount_point, fstype, source)| format!("{mount_point} ({fstype} from {source})"))
        .collect()
}

fn tmp_crabcan_dirs() -> BTreeSet<PathBuf> {
    children(Path::new("/tmp"))
        .into_iter()
        .filter(|p| file_name(p).starts_with("crabcan"))
        .collect()
}

/// "pid: cmdline" of processes (not us) that mention our paths or ids, or
/// that are our children.
fn our_processes(marks: &Marks) -> BTreeSet<String> {
    let me = std::process::id().to_string();
    let mut found = BTreeSet::new();
    for dir in children(Path::new("/proc")) {
        let pid = file_name(&dir);
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let is_child = stat.rsplit_once(')').and_then(|(_, rest)| rest.split(' ').nth(2)) == Some(me.as_str());
        let mentions = cmdline.contains(&marks.id_prefix) || marks.paths.iter().any(|p| cmdline.contains(p.as_str()));
        if is_child || mentions {
            found.insert(format!("{pid}: {}", cmdline.trim()));
        }
    }
    found
}
