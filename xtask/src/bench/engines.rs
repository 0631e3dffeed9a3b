//! The engines' view: `podman run --rm IMAGE /bin/true` with crabcan, runc
//! and crun as podman's `--runtime`, interleaved after warm-ups.
//!
//! Each runtime gets podman storage of its own in the bench's scratch
//! (`--root`, `--runroot`, `--tmpdir`, `TMPDIR`, a `containers.conf` of the
//! bench's that lists all three in `runtime_supports_json`, so podman passes
//! `--log-format=json --log F` to each), an image `podman import`ed from the
//! bench rootfs, `--cgroup-manager cgroupfs --events-backend file
//! --network none` and the ulimits this machine can grant. crun runs its
//! podman in the v1-only mount namespace (see `hybrid.rs`), storage and all.
//!
//! podman is given a wrapper (`rsswrap.c`, named like the runtime, so podman
//! treats it as that runtime) that runs the real runtime as its child and
//! logs each call's `ru_maxrss`: the runtime's peak RSS is the largest of
//! the calls podman (and conmon) made in that run. podman's own peak RSS is
//! the podman client's, from the measuring helper.
//!
//! After each run the bench waits until no process mentions the podman
//! folders (conmon's `podman container cleanup` outlives `podman run`)
//! before the next run starts; that wait is not timed. Afterwards:
//! `podman rm --all --force`, `podman system reset --force` on each
//! storage, whatever is still mounted below the folders is unmounted, and
//! cgroups podman's containers left are removed (crabcan's: a leak).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::hybrid::NsWorker;
use super::measure::{ErrLog, Harness, Sample, Stats};
use super::runtimes::find_on_path;
use super::{leaks, spawner, Outcome};
use crate::util::process::{display, output_checked};

const IMAGE: &str = "localhost/xtask-bench:latest";
const WRAPPER_SOURCE: &str = include_str!("rsswrap.c");
/// How long podman's leftover processes may take to end after a run.
const QUIET_TIMEOUT: Duration = Duration::from_secs(30);
/// The subcommands a runtime call is named by in the report.
const OCI_CALLS: [&str; 13] = [
    "create", "start", "state", "kill", "delete", "exec", "pause", "resume", "update", "ps", "events", "features",
    "run",
];

/// A runtime podman is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineRuntime {
    Crabcan,
    Runc,
    Crun,
}

/// The order of the interleaved runs and of the table.
pub const ENGINE_RUNTIMES: [EngineRuntime; 3] = [EngineRuntime::Crabcan, EngineRuntime::Runc, EngineRuntime::Crun];

impl EngineRuntime {
    pub fn name(self) -> &'static str {
        match self {
            EngineRuntime::Crabcan => "crabcan",
            EngineRuntime::Runc => "runc",
            EngineRuntime::Crun => "crun",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EngineRuntime::Crabcan => "podman + crabcan",
            EngineRuntime::Runc => "podman + runc",
            EngineRuntime::Crun => "podman + crun",
        }
    }

    fn in_v1_only_namespace(self) -> bool {
        self == EngineRuntime::Crun
    }
}

/// One runtime's runs under podman.
#[derive(Debug, Clone)]
pub struct EngineStats {
    /// `podman run` start to exit; the RSS columns are the podman client's.
    pub podman: Stats,
    /// The runtime's peak RSS per run (the largest of its calls), KiB.
    pub runtime_rss_median_kib: u64,
    pub runtime_rss_max_kib: u64,
    /// The runtime calls of one run, in order (`create`, `start`, ...).
    pub calls: Vec<String>,
}

/// The section's outcome.
#[derive(Debug, Default)]
pub struct Engines {
    pub rows: Vec<(EngineRuntime, Outcome<EngineStats>)>,
    pub runs: usize,
    pub warmup: usize,
    /// What the cleanup removed (notes).
    pub cleaned: Vec<String>,
    /// What could not be removed, or crabcan's leftovers.
    pub leaks: Vec<String>,
}

/// What the section needs from the bench.
pub struct Setup<'a> {
    pub scratch: &'a Path,
    pub rootfs: &'a Path,
    pub crabcan: &'a Path,
    pub harness: &'a Harness,
    pub worker: Option<&'a NsWorker>,
    /// Programs found on PATH (`crun`, `runc`, ...).
    pub available: &'a [&'a str],
    pub runs: usize,
    pub warmup: usize,
}

/// Runs the section; `Skipped` without podman.
pub fn measure(setup: &Setup) -> Outcome<Engines> {
    if find_on_path("podman").is_none() {
        return Outcome::Skipped("podman not installed (apt-get install -y podman)".to_string());
    }
    let dir = setup.scratch.join("podman");
    let common = match prepare_common(&dir, setup) {
        Ok(common) => common,
        Err(e) => return Outcome::Failed(e),
    };
    let cgroup_parent_existed = !libpod_parent_dirs().is_empty();
    let mut engines = Engines {
        runs: setup.runs,
        warmup: setup.warmup,
        ..Engines::default()
    };
    let mut storages: Vec<Storage> = Vec::new();
    for runtime in ENGINE_RUNTIMES {
        match Storage::prepare(runtime, &dir, &common, setup) {
            Ok(storage) => storages.push(storage),
            Err(Unready::Skipped(why)) => engines.rows.push((runtime, Outcome::Skipped(why))),
            Err(Unready::Failed(why)) => engines.rows.push((runtime, Outcome::Failed(why))),
        }
    }
    let mut log = match ErrLog::new_in(setup.scratch) {
        Ok(log) => log,
        Err(e) => return Outcome::Failed(e),
    };
    for storage in &mut storages {
        storage.import(setup, &common, &mut log);
    }
    eprintln!(
        "bench: podman run --rm, {} runtimes x {} runs (+{} warm-up), interleaved",
        storages.iter().filter(|s| s.failure.is_none()).count(),
        setup.runs,
        setup.warmup
    );
    for round in 0..setup.warmup + setup.runs {
        for storage in storages.iter_mut().filter(|s| s.failure.is_none()) {
            match storage.run_once(setup, &common, &dir, &mut log) {
                Ok(run) if round >= setup.warmup => storage.samples.push(run),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("bench: {}: {e}", storage.runtime.label());
                    storage.failure = Some(e);
                }
            }
        }
    }
    for storage in &storages {
        storage.tear_down(setup, &common, &mut engines);
    }
    if let Err(e) = wait_until_quiet(&dir) {
        engines.leaks.push(e);
    }
    for storage in &storages {
        storage.remove_cgroups(&mut engines);
    }
    if !cgroup_parent_existed {
        remove_libpod_parent(&mut engines);
    }
    for storage in storages {
        let runtime = storage.runtime;
        engines.rows.push((runtime, storage.finish()));
    }
    engines
        .rows
        .sort_by_key(|(r, _)| ENGINE_RUNTIMES.iter().position(|x| x == r));
    Outcome::Done(engines)
}

/// What every runtime's storage shares: the image archive, the
/// containers.conf and the wrapper binary.
struct Common {
    archive: PathBuf,
    containers_conf: PathBuf,
    wrapper: PathBuf,
}

fn prepare_common(dir: &Path, setup: &Setup) -> Result<Common, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let containers_conf = dir.join("containers.conf");
    let conf = "# xtask bench: podman passes --log-format=json --log F to these.\n[engine]\nruntime_supports_json = [\"crabcan\", \"crun\", \"runc\"]\n";
    std::fs::write(&containers_conf, conf).map_err(|e| format!("writing {}: {e}", containers_conf.display()))?;
    let archive = dir.join("rootfs.tar");
    output_checked(
        Command::new("tar")
            .arg("-C")
            .arg(setup.rootfs)
            .arg("-cf")
            .arg(&archive)
            .arg("."),
    )?;
    let wrapper = spawner::compile_c(dir, "rsswrap", WRAPPER_SOURCE)
        .map_err(|e| format!("building the runtime wrapper (needs a C compiler): {e}"))?;
    Ok(Common {
        archive,
        containers_conf,
        wrapper,
    })
}

/// Why a runtime's storage was not set up.
enum Unready {
    Skipped(String),
    Failed(String),
}

/// One runtime's podman storage, wrapper and runs.
struct Storage {
    runtime: EngineRuntime,
    /// `<scratch>/podman/<runtime>`: root, runroot, tmp.
    dir: PathBuf,
    /// `<scratch>/podman/wrap-<runtime>/<runtime>`: what podman runs.
    wrapper: PathBuf,
    rss_log: PathBuf,
    failure: Option<String>,
    samples: Vec<(Sample, u64)>,
    calls: Vec<String>,
    /// Container ids seen in `create` calls.
    ids: BTreeSet<String>,
}

impl Storage {
    fn prepare(runtime: EngineRuntime, dir: &Path, common: &Common, setup: &Setup) -> Result<Storage, Unready> {
        let real = match runtime {
            EngineRuntime::Crabcan => setup.crabcan.to_path_buf(),
            _ if !setup.available.contains(&runtime.name()) => {
                return Err(Unready::Skipped(format!("{} not installed", runtime.name())))
            }
            _ => find_on_path(runtime.name())
                .ok_or_else(|| Unready::Skipped(format!("{} not installed", runtime.name())))?,
        };
        if runtime.in_v1_only_namespace() && setup.worker.is_none() {
            return Err(Unready::Failed(
                "the v1-only namespace thread is not running".to_string(),
            ));
        }
        let real = std::path::absolute(&real).map_err(|e| Unready::Failed(format!("{}: {e}", real.display())))?;
        let wrap_dir = dir.join(format!("wrap-{}", runtime.name()));
        let wrapper = wrap_dir.join(runtime.name());
        let made = std::fs::create_dir_all(&wrap_dir)
            .and_then(|()| std::fs::copy(&common.wrapper, &wrapper).map(drop))
            .and_then(|()| std::fs::write(wrap_dir.join("target"), format!("{}\n", real.display())));
        made.map_err(|e| Unready::Failed(format!("writing the wrapper in {}: {e}", wrap_dir.display())))?;
        let storage_dir = dir.join(runtime.name());
        std::fs::create_dir_all(storage_dir.join("tmp"))
            .map_err(|e| Unready::Failed(format!("creating {}: {e}", storage_dir.display())))?;
        Ok(Storage {
            runtime,
            dir: storage_dir,
            wrapper,
            rss_log: wrap_dir.join("rss.log"),
            failure: None,
            samples: Vec::new(),
            calls: Vec::new(),
            ids: BTreeSet::new(),
        })
    }

    /// `podman --root ... --runtime WRAPPER ARGS...`, in this storage.
    fn podman(&self, common: &Common, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--runtime")
            .arg(&self.wrapper)
            .args(args)
            .env("CONTAINERS_CONF", &common.containers_conf)
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null());
        cmd
    }

    fn run_command(&self, common: &Common) -> Command {
        self.podman(
            common,
            &[
                "run",
                "--rm",
                "--pull",
                "never",
                "--network",
                "none",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=4096:4096",
                IMAGE,
                "/bin/true",
            ],
        )
    }

    /// Runs `work` where this runtime's podman runs (the namespace thread
    /// for crun), with the harness and a stderr scratch file.
    fn on_its_thread<T: Send + 'static>(
        &self,
        setup: &Setup,
        log: &mut ErrLog,
        work: impl FnOnce(&Harness, &mut ErrLog) -> T + Send + 'static,
    ) -> Result<T, String> {
        match (self.runtime.in_v1_only_namespace(), setup.worker) {
            (true, Some(worker)) => worker.call(work),
            (true, None) => Err("the v1-only namespace thread is not running".to_string()),
            (false, _) => Ok(work(setup.harness, log)),
        }
    }

    fn import(&mut self, setup: &Setup, common: &Common, log: &mut ErrLog) {
        let mut cmd = self.podman(common, &["import"]);
        cmd.arg(&common.archive).arg(IMAGE);
        let imported = self
            .on_its_thread(setup, log, move |_, _| output_checked(&mut cmd).map(drop))
            .and_then(|r| r);
        if let Err(e) = imported {
            eprintln!("bench: {}: {e}", self.runtime.label());
            self.failure = Some(e);
        }
    }

    /// One measured `podman run`: its sample and the runtime's peak RSS.
    fn run_once(
        &mut self,
        setup: &Setup,
        common: &Common,
        dir: &Path,
        log: &mut ErrLog,
    ) -> Result<(Sample, u64), String> {
        std::fs::write(&self.rss_log, "").map_err(|e| format!("clearing {}: {e}", self.rss_log.display()))?;
        let cmd = self.run_command(common);
        let shown = display(&cmd);
        let sample = self
            .on_its_thread(setup, log, move |harness, log| harness.run(cmd, log))
            .and_then(|r| r);
        let quiet = wait_until_quiet(dir);
        let sample = sample?;
        quiet?;
        let text =
            std::fs::read_to_string(&self.rss_log).map_err(|e| format!("reading {}: {e}", self.rss_log.display()))?;
        let calls = parse_rss_log(&text);
        let peak = calls.iter().map(|c| c.rss_kib).max().ok_or_else(|| {
            format!(
                "`{shown}` made no runtime call through the wrapper {}",
                self.wrapper.display()
            )
        })?;
        self.ids.extend(calls.iter().filter_map(|c| c.created.clone()));
        self.calls = calls.into_iter().map(|c| c.name).collect();
        Ok((sample, peak))
    }

    /// Removes the storage's containers, images and folders, and unmounts
    /// what podman left below them (in the runtime's namespace). podman's
    /// own errors are notes when the bench could remove the rest itself.
    fn tear_down(&self, setup: &Setup, common: &Common, engines: &mut Engines) {
        let reset = || self.podman(common, &["system", "reset", "--force"]);
        let commands = [self.podman(common, &["rm", "--all", "--force"]), reset(), reset()];
        let dir = self.dir.clone();
        let label = self.runtime.label();
        let mut log = match ErrLog::new_in(setup.scratch) {
            Ok(log) => log,
            Err(e) => {
                engines.leaks.push(format!("{label}: cleanup: {e}"));
                return;
            }
        };
        let done = self.on_its_thread(setup, &mut log, move |_, _| {
            let [mut remove, mut reset, mut reset_again] = commands;
            let mut errors = Vec::new();
            if let Err(e) = output_checked(&mut remove) {
                errors.push(e);
            }
            // podman 4.3's reset can trip over its own events log; a second
            // one finishes the job.
            if let Err(e) = output_checked(&mut reset) {
                errors.push(e);
                let _ = wait_until_quiet(&dir);
                if let Err(e) = output_checked(&mut reset_again) {
                    errors.push(e);
                }
            }
            let unmounted = unmount_below(&dir);
            // The folder itself is the bench's (it made `tmp` in it); what
            // podman's reset left inside is worth a note.
            let left: Vec<String> = std::fs::read_dir(&dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            let removed = match std::fs::remove_dir_all(&dir) {
                Ok(()) => Ok(left),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(format!("removing {}: {e}", dir.display())),
            };
            (errors, unmounted, removed)
        });
        let (errors, unmounted, removed) = match done {
            Ok(done) => done,
            Err(e) => {
                engines.leaks.push(format!("{label}: cleanup: {e}"));
                return;
            }
        };
        for (point, outcome) in unmounted {
            match outcome {
                Ok(()) => engines
                    .cleaned
                    .push(format!("{label}: unmounted {point} (left by podman)")),
                Err(e) => engines.leaks.push(format!("{label}: mount {point} left: {e}")),
            }
        }
        match removed {
            Ok(left) => {
                let note = if left.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{label}: podman's reset left {} in {}: removed by the bench",
                        left.join(", "),
                        self.dir.display()
                    )
                };
                engines.cleaned.extend(
                    errors
                        .into_iter()
                        .map(|e| format!("{label}: podman's cleanup: {e}"))
                        .chain(Some(note).filter(|n| !n.is_empty())),
                );
            }
            Err(e) => {
                engines
                    .leaks
                    .extend(errors.into_iter().map(|e| format!("{label}: podman's cleanup: {e}")));
                engines.leaks.push(format!("{label}: {e}"));
            }
        }
    }

    /// Cgroups named after this storage's containers: removed; crabcan's
    /// are a leak all the same (it must remove them on `delete`).
    fn remove_cgroups(&self, engines: &mut Engines) {
        let label = self.runtime.label();
        let left = leaks::cgroup_dirs(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.ids.iter().any(|id| name.contains(id.as_str()))
        });
        for dir in left.into_iter().rev() {
            let outcome =
                std::fs::remove_dir(&dir).map_or_else(|e| format!(" (removing failed: {e})"), |()| String::new());
            let what = format!("{label}: container cgroup {}{outcome}", dir.display());
            if self.runtime == EngineRuntime::Crabcan || !outcome.is_empty() {
                engines.leaks.push(what);
            } else {
                engines.cleaned.push(what);
            }
        }
    }

    fn finish(self) -> Outcome<EngineStats> {
        if let Some(e) = self.failure {
            return Outcome::Failed(e);
        }
        let samples: Vec<Sample> = self.samples.iter().map(|(s, _)| *s).collect();
        let mut rss: Vec<u64> = self.samples.iter().map(|(_, r)| *r).collect();
        rss.sort_unstable();
        let (Some(podman), Some(&max)) = (Stats::of(&samples), rss.last()) else {
            return Outcome::Skipped("no runs".to_string());
        };
        let n = rss.len();
        let median = if n % 2 == 1 {
            rss[n / 2]
        } else {
            (rss[n / 2 - 1] + rss[n / 2]) / 2
        };
        Outcome::Done(EngineStats {
            podman,
            runtime_rss_median_kib: median,
            runtime_rss_max_kib: max,
            calls: self.calls,
        })
    }
}

/// One line of a wrapper's `rss.log`.
#[derive(Debug, PartialEq, Eq)]
pub struct RuntimeCall {
    pub rss_kib: u64,
    /// `create`, `start`, `delete --force`, ... (`?` if none is known).
    pub name: String,
    /// The container id, for a `create` (its last argument).
    pub created: Option<String>,
}

/// Parses `"<ru_maxrss KiB> <args...>"` lines; unreadable lines are skipped.
pub fn parse_rss_log(text: &str) -> Vec<RuntimeCall> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let rss_kib = words.next()?.parse().ok()?;
            let args: Vec<&str> = words.collect();
            let at = args.iter().position(|a| OCI_CALLS.contains(a));
            let name = match at {
                Some(i) if args[i] == "delete" && args[i..].contains(&"--force") => "delete --force".to_string(),
                Some(i) => args[i].to_string(),
                None if args.contains(&"--version") => "--version".to_string(),
                None => "?".to_string(),
            };
            let created = match at {
                Some(i) if args[i] == "create" => args.last().map(|id| id.to_string()),
                _ => None,
            };
            Some(RuntimeCall { rss_kib, name, created })
        })
        .collect()
}

/// Waits until no process mentions `dir` in its command line (podman's
/// cleanup processes end after `podman run` returns); an error naming them
/// after [`QUIET_TIMEOUT`].
fn wait_until_quiet(dir: &Path) -> Result<(), String> {
    let needle = dir.display().to_string();
    let start = Instant::now();
    loop {
        let busy = processes_mentioning(&needle);
        if busy.is_empty() {
            return Ok(());
        }
        if start.elapsed() > QUIET_TIMEOUT {
            return Err(format!(
                "podman's processes still running {} s after a run: {}",
                QUIET_TIMEOUT.as_secs(),
                busy.join("; ")
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(needle)
                .then(|| format!("{pid}: {}", cmdline.trim().chars().take(200).collect::<String>()))
        })
        .collect()
}

/// Unmounts (lazily, deepest first) every mount below `dir` in the calling
/// thread's mount namespace.
fn unmount_below(dir: &Path) -> Vec<(String, Result<(), String>)> {
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap_or_default();
    let points: Vec<String> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(dir))
        .map(str::to_string)
        .collect();
    points
        .into_iter()
        .rev()
        .map(|point| {
            let outcome = output_checked(Command::new("umount").arg("-l").arg(&point)).map(drop);
            (point, outcome)
        })
        .collect()
}

/// `libpod_parent` (and its `conmon` child) in each cgroup hierarchy.
fn libpod_parent_dirs() -> BTreeSet<PathBuf> {
    leaks::cgroup_dirs(|path| {
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let parent_name = path.parent().map(name).unwrap_or_default();
        name(path) == "libpod_parent" || (name(path) == "conmon" && parent_name == "libpod_parent")
    })
}

/// Removes the `libpod_parent` cgroups podman made during the bench (they
/// were not there before), deepest first.
fn remove_libpod_parent(engines: &mut Engines) {
    for dir in libpod_parent_dirs().into_iter().rev() {
        match std::fs::remove_dir(&dir) {
            Ok(()) => engines
                .cleaned
                .push(format!("cgroup {} (made by podman)", dir.display())),
            Err(e) => engines
                .cleaned
                .push(format!("cgroup {} (made by podman) not removed: {e}", dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_calls_are_named_and_create_gives_the_id() {
        let log = "4640 --log-format=json --log /r/oci-log create --bundle /b --pid-file /p abc123\n\
                   3696 start abc123\n\
                   3952 delete --force abc123\n\
                   garbage\n\
                   100 --version\n";
        let calls = parse_rss_log(log);
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["create", "start", "delete --force", "--version"]);
        assert_eq!(calls[0].created.as_deref(), Some("abc123"));
        assert_eq!(calls[0].rss_kib, 4640);
        assert!(calls[1].created.is_none());
    }
}
