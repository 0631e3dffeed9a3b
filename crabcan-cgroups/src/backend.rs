//! [`CgroupBackend`]: the one interface over a v1 or v2 container cgroup,
//! and the shared "apply limit writes with the missing-controller policy"
//! logic. `v1.rs` and `v2.rs` implement it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::CgroupError;
use crate::fsutil::write_file;
use crate::stats::Stats;
use crate::writes::{IfAbsent, LimitWrite};

/// What to do with a limit the host cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingController {
    /// Fail (and remove what was created). The default.
    #[default]
    Error,
    /// `log::warn!` and go on without that limit.
    Warn,
}

impl MissingController {
    /// Returns `err` under [`MissingController::Error`]; logs it otherwise.
    pub(crate) fn handle(self, err: CgroupError) -> Result<(), CgroupError> {
        match self {
            MissingController::Error => Err(err),
            MissingController::Warn => {
                match &err {
                    CgroupError::MissingController { controller, option } => {
                        log::warn!(
                            "the host has no '{controller}' cgroup controller: running without the {option} limit"
                        )
                    }
                    CgroupError::MissingFeature { what, option, .. } => {
                        log::warn!("the host does not support {what}: running without the {option} limit")
                    }
                    other => log::warn!("{other}; continuing without it"),
                }
                Ok(())
            }
        }
    }
}

/// Operations on one container's cgroup, whatever the cgroup version.
pub(crate) trait CgroupBackend: Send + Sync + fmt::Debug {
    /// The distinct directories, one per hierarchy on v1.
    fn dirs(&self) -> Vec<PathBuf>;
    /// The directory holding `write.controller`'s files; `None` if that
    /// controller is unavailable (already handled at creation).
    fn dir_for(&self, write: &LimitWrite) -> Option<&Path>;
    /// The cgroup2 directory, if this is a v2 cgroup.
    fn v2_path(&self) -> Option<&Path>;
    fn add_task(&self, pid: i32) -> Result<(), CgroupError>;
    fn kill_all(&self) -> Result<(), CgroupError>;
    fn stats(&self) -> Stats;
    fn oom_killed(&self) -> bool;
}

/// Applies `writes` in order. A missing file (after the fallback) is a
/// missing-controller case for requested limits and skipped for implied ones.
pub(crate) fn apply_writes(
    backend: &dyn CgroupBackend,
    writes: &[LimitWrite],
    missing: MissingController,
) -> Result<(), CgroupError> {
    for write in writes {
        let Some(dir) = backend.dir_for(write) else {
            if let IfAbsent::BestEffort { what } = write.if_absent {
                log::warn!(
                    "the host has no cgroup controller for {what}: running without the {} limit",
                    write.option
                );
            }
            continue;
        };
        if let Err(err) = apply_one(dir, write) {
            let absent = err.raw_os_error() == Some(libc::ENOENT);
            match (absent, write.if_absent) {
                (true, IfAbsent::Skip) => log::debug!("{err}; skipped"),
                (true, IfAbsent::BestEffort { what }) => {
                    log::warn!(
                        "the host does not support {what}: running without the {} limit",
                        write.option
                    )
                }
                (true, IfAbsent::Required { what }) => missing.handle(CgroupError::MissingFeature {
                    what,
                    path: dir.join(write.file),
                    option: write.option,
                })?,
                (false, _) => return Err(err),
            }
        }
    }
    Ok(())
}

fn apply_one(dir: &Path, write: &LimitWrite) -> Result<(), CgroupError> {
    let primary = dir.join(write.file);
    match (write_file(&primary, &write.value), &write.fallback) {
        (Err(e), Some((file, value))) if e.raw_os_error() == Some(libc::ENOENT) => {
            write_file(&dir.join(file), value).map_err(|fallback_err| {
                match fallback_err.raw_os_error() {
                    Some(libc::ENOENT) => e, // report the primary file as missing
                    _ => fallback_err,
                }
            })
        }
        (result, _) => result,
    }
}

/// Writes a pid to `dir/cgroup.procs`.
pub(crate) fn write_pid(dir: &Path, pid: i32) -> Result<(), CgroupError> {
    if pid <= 0 {
        let cause = io::Error::from_raw_os_error(libc::EINVAL);
        return Err(CgroupError::io(
            format!("write {pid} to"),
            dir.join("cgroup.procs"),
            cause,
        ));
    }
    write_file(&dir.join("cgroup.procs"), &pid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Version;
    use crate::limits::Limits;
    use crate::writes::limit_writes;
    use std::fs;

    /// A v1-like cgroup faked by a plain directory with regular files.
    #[derive(Debug)]
    struct FakeDir(PathBuf);

    impl CgroupBackend for FakeDir {
        fn dirs(&self) -> Vec<PathBuf> {
            vec![self.0.clone()]
        }
        fn dir_for(&self, _: &LimitWrite) -> Option<&Path> {
            Some(&self.0)
        }
        fn v2_path(&self) -> Option<&Path> {
            None
        }
        fn add_task(&self, _: i32) -> Result<(), CgroupError> {
            Ok(())
        }
        fn kill_all(&self) -> Result<(), CgroupError> {
            Ok(())
        }
        fn stats(&self) -> Stats {
            Stats::default()
        }
        fn oom_killed(&self) -> bool {
            false
        }
    }

    fn fake(test: &str, files: &[&str]) -> FakeDir {
        let dir = std::env::temp_dir().join(format!("crabcan-cgroups-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for f in files {
            fs::write(dir.join(f), "").unwrap();
        }
        FakeDir(dir)
    }

    /// Removed even when an assertion fails, so a failing test leaves nothing in /tmp.
    impl Drop for FakeDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn read(dir: &FakeDir, file: &str) -> String {
        fs::read_to_string(dir.0.join(file)).unwrap()
    }

    #[test]
    fn writes_values_uses_fallback_and_skips_implied_swap() {
        let dir = fake(
            "fallback",
            &["memory.limit_in_bytes", "pids.max", "cpu.shares", "blkio.bfq.weight"],
        );
        let writes = limit_writes(&Limits::default(), Version::V1);
        apply_writes(&dir, &writes, MissingController::Error).unwrap();
        assert_eq!(read(&dir, "memory.limit_in_bytes"), "1073741824");
        assert_eq!(read(&dir, "pids.max"), "64");
        assert_eq!(read(&dir, "cpu.shares"), "238");
        assert_eq!(read(&dir, "blkio.bfq.weight"), "50");
        assert!(!dir.0.join("memory.memsw.limit_in_bytes").exists());
    }

    #[test]
    fn missing_files_follow_the_policy() {
        let dir = fake("missing", &["memory.limit_in_bytes"]);
        let limits = Limits {
            memory: Some(1 << 20),
            memory_swap: Some(2 << 20),
            io_weight: Some(100),
            ..Limits::unlimited()
        };
        let writes = limit_writes(&limits, Version::V1);
        let err = apply_writes(&dir, &writes, MissingController::Error).unwrap_err();
        let expected = format!(
            "the host does not support swap accounting ({}/memory.memsw.limit_in_bytes is missing), needed for --memory-swap; allow missing controllers (crabcan: --allow-missing-controllers) to run without that limit",
            dir.0.display()
        );
        assert_eq!(err.to_string(), expected);
        apply_writes(&dir, &writes, MissingController::Warn).unwrap();
        assert_eq!(read(&dir, "memory.limit_in_bytes"), "1048576");
        let io_only = limit_writes(
            &Limits {
                io_weight: Some(100),
                ..Limits::unlimited()
            },
            Version::V1,
        );
        // An I/O weight is best effort: without blkio.weight (nor BFQ) the container still runs.
        apply_writes(&dir, &io_only, MissingController::Error).unwrap();
        assert!(!dir.0.join("blkio.weight").exists());
    }
}
