//! [`CgroupBackend`]: the one interface over a v1 or v2 container cgroup, the
//! missing-controller policy ([`MissingController`], [`Unapplied`]) and the shared
//! "apply limit writes under that policy" logic. `v1.rs` and `v2.rs` implement the trait.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::CgroupError;
use crate::fsutil::write_file;
use crate::layout::Version;
use crate::limits::LimitKind;
use crate::stats::Stats;
use crate::writes::{IfAbsent, LimitWrite, Placement};

/// What to do with a limit the host cannot apply (no controller, no interface file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingController {
    /// Fail (and remove what was created). The default.
    #[default]
    Error,
    /// Go on without that limit, and list it in [`crate::ContainerCgroup::unapplied`].
    Warn,
}

/// A limit the cgroup was created without, under [`MissingController::Warn`] or because it
/// is best effort (an I/O weight on a host without a weight-aware I/O scheduler).
#[derive(Debug)]
pub struct Unapplied {
    /// The limit that is not applied.
    pub limit: LimitKind,
    /// Why: [`CgroupError::MissingController`], [`CgroupError::ControllerNotEnabled`] or
    /// [`CgroupError::MissingFeature`].
    pub reason: CgroupError,
}

impl fmt::Display for Unapplied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)
    }
}

impl MissingController {
    /// Applies the policy to limits the host cannot apply: under [`MissingController::Error`]
    /// the error for the first of `limits`; otherwise one [`Unapplied`] per limit.
    pub(crate) fn handle(
        self,
        limits: &[LimitKind],
        error: impl Fn(LimitKind) -> CgroupError,
        unapplied: &mut Vec<Unapplied>,
    ) -> Result<(), CgroupError> {
        match (self, limits.first()) {
            (MissingController::Error, Some(first)) => Err(error(*first)),
            _ => {
                for limit in limits {
                    push_unapplied(unapplied, *limit, error(*limit));
                }
                Ok(())
            }
        }
    }
}

/// Adds `limit` to `unapplied` unless it is listed already (creation may retry).
pub(crate) fn push_unapplied(unapplied: &mut Vec<Unapplied>, limit: LimitKind, reason: CgroupError) {
    if !unapplied.iter().any(|u| u.limit == limit) {
        unapplied.push(Unapplied { limit, reason });
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
    /// Which interface each controller's files are written through.
    fn placement(&self) -> Placement;
    fn add_task(&self, pid: i32) -> Result<(), CgroupError>;
    fn kill_all(&self) -> Result<(), CgroupError>;
    fn stats(&self) -> Stats;
    fn oom_killed(&self) -> bool;
    /// Freezes (`true`) or thaws (`false`) every process in the cgroup, waiting (bounded)
    /// until the kernel reports it done.
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError>;
}

/// Applies `writes` in order. A missing file (after the fallback) goes through the `missing`
/// policy for requested limits, is unapplied for best-effort ones and skipped for implied ones.
/// A write whose controller is unavailable was handled at creation (or is best effort). A
/// write marked [`LimitWrite::retry_after_rest`] that the kernel refuses with EINVAL is tried
/// once more after all the others.
pub(crate) fn apply_writes(
    backend: &dyn CgroupBackend,
    writes: &[LimitWrite],
    version: Version,
    missing: MissingController,
    unapplied: &mut Vec<Unapplied>,
) -> Result<(), CgroupError> {
    let mut retry = Vec::new();
    for write in writes {
        let Some(dir) = backend.dir_for(write) else {
            let controller = write.controller.name(version).to_string();
            match write.if_absent {
                IfAbsent::BestEffort { .. } => push_unapplied(
                    unapplied,
                    write.limit,
                    CgroupError::MissingController {
                        controller,
                        limit: write.limit,
                    },
                ),
                // At creation the policy was applied already (under Warn the limit is listed
                // once); on update, the cgroup was made without this controller.
                IfAbsent::Required { .. } => {
                    let error = |limit| CgroupError::NoControllerDirectory {
                        controller: controller.clone(),
                        limit,
                    };
                    missing.handle(&[write.limit], error, unapplied)?;
                }
                IfAbsent::Skip => {}
            }
            continue;
        };
        match apply_one(dir, write) {
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                absent_file(dir, write, missing, unapplied)?;
            }
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) && write.retry_after_rest => retry.push((dir, write)),
            result => result?,
        }
    }
    retry.into_iter().try_for_each(|(dir, write)| apply_one(dir, write))
}

/// `write`'s file does not exist in `dir`: what [`IfAbsent`] says.
fn absent_file(
    dir: &Path,
    write: &LimitWrite,
    missing: MissingController,
    unapplied: &mut Vec<Unapplied>,
) -> Result<(), CgroupError> {
    let feature = |what| {
        move |limit| CgroupError::MissingFeature {
            what,
            path: dir.join(&write.file),
            limit,
        }
    };
    match write.if_absent {
        IfAbsent::Skip => Ok(()),
        IfAbsent::BestEffort { what } => {
            push_unapplied(unapplied, write.limit, feature(what)(write.limit));
            Ok(())
        }
        IfAbsent::Required { what } => missing.handle(&[write.limit], feature(what), unapplied),
    }
}

fn apply_one(dir: &Path, write: &LimitWrite) -> Result<(), CgroupError> {
    let primary = dir.join(&write.file);
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
    use crate::limits::Limits;
    use crate::writes::tests::writes as limit_writes;
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
        fn placement(&self) -> Placement {
            Placement::only(Version::V1)
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
        fn set_frozen(&self, _: bool) -> Result<(), CgroupError> {
            Ok(())
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
            &["memory.limit_in_bytes", "pids.max", "cpu.shares", "blkio.weight"],
        );
        let writes = limit_writes(&Limits::default(), Version::V1);
        let mut unapplied = Vec::new();
        apply_writes(&dir, &writes, Version::V1, MissingController::Error, &mut unapplied).unwrap();
        assert!(unapplied.is_empty(), "{unapplied:?}");
        assert_eq!(read(&dir, "memory.limit_in_bytes"), "1073741824");
        assert_eq!(read(&dir, "pids.max"), "64");
        assert_eq!(read(&dir, "cpu.shares"), "238");
        assert_eq!(read(&dir, "blkio.weight"), "50"); // a CFQ host: the fallback
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
        let mut unapplied = Vec::new();
        let err = apply_writes(&dir, &writes, Version::V1, MissingController::Error, &mut unapplied).unwrap_err();
        let expected = format!(
            "the host does not support swap accounting ({}/memory.memsw.limit_in_bytes is missing), needed for the memory+swap limit",
            dir.0.display()
        );
        assert_eq!(err.to_string(), expected);
        assert_eq!(err.limit(), Some(LimitKind::MemorySwap));
        apply_writes(&dir, &writes, Version::V1, MissingController::Warn, &mut unapplied).unwrap();
        assert_eq!(read(&dir, "memory.limit_in_bytes"), "1048576");
        let limits: Vec<LimitKind> = unapplied.iter().map(|u| u.limit).collect();
        assert_eq!(limits, [LimitKind::MemorySwap, LimitKind::IoWeight]);
        assert!(unapplied.iter().all(|u| u.reason.is_missing_controller()));
        let io_only = limit_writes(
            &Limits {
                io_weight: Some(100),
                ..Limits::unlimited()
            },
            Version::V1,
        );
        // An I/O weight is best effort: without blkio.weight (nor BFQ) the container still runs.
        let mut unapplied = Vec::new();
        apply_writes(&dir, &io_only, Version::V1, MissingController::Error, &mut unapplied).unwrap();
        assert!(!dir.0.join("blkio.weight").exists() && !dir.0.join("blkio.bfq.weight").exists());
        assert_eq!(unapplied.len(), 1);
        assert_eq!(unapplied[0].limit, LimitKind::IoWeight);
    }
}
