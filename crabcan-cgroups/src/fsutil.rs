//! Small file helpers for cgroupfs: single-write file updates, reading
//! numbers and "key value" files, directory creation and bounded-retry
//! removal. Every error names the operation and the path.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::error::CgroupError;

/// Writes `value` to an existing cgroup file in one `write(2)` (never creates it).
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let write = || -> io::Result<()> {
        let mut file = fs::OpenOptions::new().write(true).open(path)?;
        file.write_all(value.as_bytes())
    };
    write().map_err(|e| CgroupError::io(format!("write {value} to"), path, e))
}

/// The most bytes read from one kernel file (`/proc/self/mountinfo` of a host with tens of
/// thousands of mounts stays below it).
const MAX_KERNEL_FILE: u64 = 16 << 20;

/// Reads a cgroupfs or procfs file, at most [`MAX_KERNEL_FILE`] bytes (more is an
/// `InvalidData` error). Such files report size 0, so `fs::read_to_string` would start with a
/// 32-byte read and double it: a page-sized buffer reads the usual file in one call.
pub(crate) fn read_kernel_file(path: &Path) -> io::Result<String> {
    read_opened_kernel_file(fs::File::open(path)?)
}

/// [`read_kernel_file`] of a file already open.
pub(crate) fn read_opened_kernel_file(file: fs::File) -> io::Result<String> {
    let mut bytes = Vec::with_capacity(8192);
    file.take(MAX_KERNEL_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KERNEL_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_KERNEL_FILE} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(crate) fn read_string(path: &Path) -> Result<String, CgroupError> {
    read_kernel_file(path).map_err(|e| CgroupError::io("read", path, e))
}

/// Reads a single-number file ("max" and unreadable files give `None`).
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    read_kernel_file(path).ok()?.trim().parse().ok()
}

/// Reads `key` from a flat-keyed file such as memory.events or cpu.stat.
pub(crate) fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    let text = read_kernel_file(path).ok()?;
    keyed_value(&text, key)
}

pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Parses cgroup.procs content into pids.
pub(crate) fn parse_pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

pub(crate) fn read_pids(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    read_string(&dir.join("cgroup.procs")).map(|t| parse_pids(&t))
}

/// `mkdir` (mode 0755 less the umask) that accepts an existing directory (for shared
/// parents); a directory it creates is pushed to `made` (once).
pub(crate) fn ensure_dir_tracked(path: &Path, made: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => {
            if !made.iter().any(|m| m == path) {
                made.push(path.to_path_buf());
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CgroupError::io("create directory", path, e)),
    }
}

/// `mkdir` that fails if the directory exists (a container cgroup is never adopted).
pub(crate) fn create_dir(path: &Path) -> Result<(), CgroupError> {
    fs::create_dir(path).map_err(|e| CgroupError::io("create directory", path, e))
}

/// Removes a cgroup directory, retrying while the kernel reports EBUSY (tasks
/// still exiting) for at most `limit`. A missing directory is success.
pub(crate) fn remove_dir_retrying(path: &Path, limit: Duration) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < limit => {
                sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(CgroupError::io("remove directory", path, e)),
        }
    }
}

/// Removes a shared parent folder (`crabcan/`, or a component of a `create_at` path) if it
/// is empty; whether it is gone now. Another crabcan may be creating or using it at the same
/// time, so EBUSY, ENOTEMPTY and ENOENT are expected and ignored; creators retry if it
/// vanishes under them.
pub(crate) fn remove_parent_if_empty(path: &Path) -> bool {
    match fs::remove_dir(path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => {
            let expected = [libc::EBUSY, libc::ENOTEMPTY, libc::EEXIST];
            if !e.raw_os_error().is_some_and(|code| expected.contains(&code)) {
                log::debug!("cannot remove {}: {e}", path.display());
            }
            false
        }
    }
}

/// Sends SIGKILL to `pid`; a process that already exited is not an error.
pub(crate) fn sigkill(pid: i32) {
    if pid <= 0 {
        return; // never signal process groups or everything
    }
    // SAFETY: kill(2) has no memory-safety preconditions; pid > 0 targets one process.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    if rc != 0 {
        log::debug!("kill({pid}, SIGKILL): {}", io::Error::last_os_error());
    }
}

/// Polls `done` every 10 ms until it returns true or `limit` elapses.
pub(crate) fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_files_are_read_whole_and_bounded() {
        let mountinfo = read_kernel_file(Path::new("/proc/self/mountinfo")).unwrap();
        assert!(
            mountinfo.lines().count() > 1 && mountinfo.ends_with('\n'),
            "{mountinfo}"
        );
        let dir = std::env::temp_dir().join(format!("crabcan-fsutil-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big");
        fs::File::create(&big).unwrap().set_len(MAX_KERNEL_FILE + 1).unwrap(); // sparse
        let err = read_kernel_file(&big).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        fs::File::create(&big).unwrap().set_len(MAX_KERNEL_FILE).unwrap();
        assert_eq!(read_kernel_file(&big).unwrap().len() as u64, MAX_KERNEL_FILE);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keyed_files() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(2));
        assert_eq!(keyed_value(events, "oom"), Some(3));
        assert_eq!(keyed_value(events, "missing"), None);
        assert_eq!(
            keyed_value("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "oom_kill"),
            Some(1)
        );
        assert_eq!(
            keyed_value("usage_usec 1234\nuser_usec 1000\n", "usage_usec"),
            Some(1234)
        );
    }

    #[test]
    fn pid_lists() {
        assert_eq!(parse_pids("12\n345\n\n"), vec![12, 345]);
        assert!(parse_pids("").is_empty());
    }

    #[test]
    fn io_errors_name_path_and_operation() {
        let err = write_file(Path::new("/nonexistent-dir/memory.max"), "67108864").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot write 67108864 to /nonexistent-dir/memory.max: No such file or directory"
        );
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}
