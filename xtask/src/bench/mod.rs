//! `cargo xtask bench`: crabcan (direct and OCI mode) against crun, runc,
//! bubblewrap and an `unshare ... chroot` floor on one busybox rootfs, and
//! under podman against podman's usual runtimes.
//!
//! Phases: start-to-exit of `/bin/true` (interleaved runs after a warm-up,
//! with peak RSS), the OCI runtimes' create + start + wait + delete, how
//! crabcan's cost grows with bind mounts and seccomp profiles, throughput
//! (back to back and K at a time), `podman run` with each runtime, where
//! crabcan's time goes (strace, debug timeline), a leak check of the host,
//! and the report (`BENCHMARKS.md` + an SVG chart). Never part of
//! `cargo test`.
//!
//! Modules: `runtimes` (command lines), `oci` (bundles), `hybrid` (cgroup
//! layout, crun's namespace workaround), `measure` (timing + rusage),
//! `scaling`, `throughput`, `engines` (podman), `breakdown`, `leaks`,
//! `machine`, `report`.

mod breakdown;
pub mod engines;
mod hybrid;
mod hyperfine;
pub mod leaks;
mod machine;
mod measure;
pub mod oci;
mod report;
pub mod runtimes;
pub mod scaling;
pub(crate) mod spawner;
mod throughput;
pub mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;

use self::engines::Engines;
use self::hybrid::{Layout, NsWorker};
use self::measure::{ErrLog, Harness, Sample, Stats, Trial};
use self::runtimes::{Env, Runtime, ALL, OCI};
use self::throughput::Throughput;
use crate::rootfs::{ensure_rootfs, RootfsOptions};
use crate::util::process::run_checked;
use crate::util::tempdir::TempDir;

pub use self::breakdown::parse_strace_summary;
pub use self::hybrid::Layout as CgroupLayout;

/// What to run and where to write.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    /// Measured runs per runtime (after the warm-up).
    pub runs: usize,
    pub warmup: usize,
    /// Containers per throughput measurement.
    pub throughput_total: usize,
    /// Rounds of throughput measurements over all runtimes, in rotated order.
    pub throughput_rounds: usize,
    pub parallel: usize,
    pub scaling_runs: usize,
    /// `podman run`s per runtime, and warm-up runs before them.
    pub engine_runs: usize,
    pub engine_warmup: usize,
    pub install: bool,
    pub out: PathBuf,
    pub svg: PathBuf,
    pub rootfs: PathBuf,
    pub crabcan: PathBuf,
}

impl Options {
    /// Defaults for a full or a `--quick` run.
    pub fn new(quick: bool, rootfs: PathBuf, crabcan: PathBuf, out: PathBuf, svg: PathBuf) -> Options {
        Options {
            quick,
            runs: if quick { 5 } else { 100 },
            warmup: if quick { 1 } else { 5 },
            throughput_total: if quick { 20 } else { 200 },
            throughput_rounds: if quick { 1 } else { 5 },
            parallel: 8,
            scaling_runs: if quick { 3 } else { 40 },
            engine_runs: if quick { 2 } else { 10 },
            engine_warmup: if quick { 1 } else { 2 },
            install: false,
            out,
            svg,
            rootfs,
            crabcan,
        }
    }
}

/// One round's throughput of a runtime: back to back, and some at a time.
type RoundPair = (Throughput, Throughput);

/// A measurement that happened, was skipped, or failed.
#[derive(Debug, Clone)]
pub enum Outcome<T> {
    Done(T),
    Skipped(String),
    Failed(String),
}

impl<T> Outcome<T> {
    pub fn done(&self) -> Option<&T> {
        match self {
            Outcome::Done(t) => Some(t),
            _ => None,
        }
    }
}

/// Everything the report shows.
#[derive(Debug)]
pub struct Results {
    pub options: Options,
    pub machine: machine::Machine,
    pub latency: Vec<(Runtime, Outcome<Stats>)>,
    /// crabcan, bwrap and the floor timed by hyperfine, in rotated rounds.
    pub hyperfine: Outcome<Vec<(Runtime, Stats)>>,
    /// The same runs, each runtime's back to back (A A A ... B B B ...).
    pub back_to_back: Vec<(Runtime, Outcome<Stats>)>,
    /// The OCI runtimes' create + start + wait + delete.
    pub lifecycle: Vec<(Runtime, Outcome<Stats>)>,
    /// `podman run` with each runtime.
    pub engines: Outcome<Engines>,
    pub scaling: Vec<(String, Outcome<Stats>)>,
    pub throughput: Vec<(Runtime, Outcome<(Throughput, Throughput)>)>,
    pub strace: Outcome<breakdown::StraceFindings>,
    pub timeline: Outcome<Vec<breakdown::Event>>,
    pub leaks: leaks::Report,
    pub layout: Layout,
    /// True if runs went through the small C helper (accurate RSS).
    pub helper: bool,
}

/// Runs the whole bench; returns the exit code (non-zero if crabcan failed
/// or something leaked).
pub fn run(opts: &Options) -> Result<i32, String> {
    let available = check_programs(opts)?;
    ensure_rootfs(&opts.rootfs, &RootfsOptions::offline()).map_err(|e| e.to_string())?;
    let scratch = TempDir::new("xtask-bench").map_err(|e| format!("creating a temp dir: {e}"))?;
    let env = prepare(opts, scratch.path())?;
    let layout = Layout::detect();
    let marks = leaks::Marks {
        id_prefix: env.id_prefix.clone(),
        paths: vec![opts.rootfs.display().to_string(), scratch.path().display().to_string()],
        crabcan_root: env.crabcan_root.clone(),
    };
    let before = leaks::Snapshot::take(&marks);
    let harness = harness(scratch.path());
    let worker = if available.contains(&"crun") {
        Some(NsWorker::spawn(&layout, &harness, scratch.path())?)
    } else {
        None
    };
    let ctx = Ctx {
        opts,
        env: &env,
        layout: &layout,
        worker: worker.as_ref(),
        scratch: scratch.path(),
        harness: &harness,
    };

    let latency = ctx.latency(&available)?;
    let hyperfine = ctx.hyperfine(&available);
    let back_to_back = ctx.back_to_back(&available)?;
    let lifecycle = ctx.lifecycle(&available)?;
    let scaling = ctx.scaling()?;
    let throughput = ctx.throughput(&available);
    let engines = ctx.engines(&available);
    let (strace, timeline) = ctx.breakdown();
    drop(worker);
    let mut leaks = leaks::Snapshot::compare(&before, &marks);
    if let Outcome::Done(engines) = &engines {
        leaks.leaks.extend(engines.leaks.iter().cloned());
        leaks.cleaned.extend(engines.cleaned.iter().cloned());
    }

    let programs = ALL.iter().filter(|r| available.contains(&r.program())).map(|r| {
        let path = if r.is_crabcan() {
            opts.crabcan.clone()
        } else {
            runtimes::find_on_path(r.program()).unwrap_or_default()
        };
        (r.program().to_string(), path)
    });
    let mut programs: Vec<_> = programs.collect();
    programs.dedup_by(|a, b| a.0 == b.0);
    for engine in ["podman", "conmon"] {
        if let Some(path) = runtimes::find_on_path(engine) {
            programs.push((engine.to_string(), path));
        }
    }
    let results = Results {
        options: opts.clone(),
        machine: machine::describe(&layout, &programs),
        latency,
        hyperfine,
        back_to_back,
        lifecycle,
        engines,
        scaling,
        throughput,
        strace,
        timeline,
        leaks,
        layout,
        helper: harness.helper.is_some(),
    };
    report::write(&results)?;
    report::print_summary(&results);
    Ok(exit_code(&results))
}

/// Which programs are here; installs or fails for missing ones as asked.
fn check_programs(opts: &Options) -> Result<Vec<&'static str>, String> {
    if !opts.crabcan.is_file() {
        return Err(format!(
            "no crabcan binary at {} (cargo build --release -p crabcan-cli)",
            opts.crabcan.display()
        ));
    }
    let wanted: Vec<Runtime> = ALL.into_iter().filter(|r| !r.is_crabcan()).collect();
    let missing = |rs: &[Runtime]| -> Vec<Runtime> { rs.iter().copied().filter(|r| !r.installed()).collect() };
    let mut absent = missing(&wanted);
    let tools_absent: Vec<&str> = ["strace", "hyperfine"]
        .into_iter()
        .filter(|tool| runtimes::find_on_path(tool).is_none())
        .collect();
    if opts.install && (!absent.is_empty() || !tools_absent.is_empty()) {
        let mut packages: Vec<&str> = absent.iter().map(|r| r.package()).collect();
        packages.extend(&tools_absent);
        packages.dedup();
        eprintln!("bench: installing {}", packages.join(" "));
        run_checked(Command::new("apt-get").args(["install", "-y"]).args(&packages))?;
        absent = missing(&wanted);
    }
    if !absent.is_empty() && !opts.quick {
        let r = absent[0];
        return Err(format!(
            "{} is not installed: apt-get install -y {} (or rerun with --install; --quick skips it)",
            r.program(),
            r.package()
        ));
    }
    let mut available = vec!["crabcan"];
    available.extend(wanted.iter().filter(|r| !absent.contains(r)).map(|r| r.program()));
    available.dedup();
    Ok(available)
}

/// Bundles, the bind source, the big seccomp profile.
fn prepare(opts: &Options, scratch: &Path) -> Result<Env, String> {
    let rootfs = std::path::absolute(&opts.rootfs).map_err(|e| format!("{}: {e}", opts.rootfs.display()))?;
    let (bundle_default, bundle_full) = oci::write_bundles(&scratch.join("bundles"), &rootfs)?;
    let (crabcan_root, pid_dir) = (scratch.join("crabcan-root"), scratch.join("pids"));
    for dir in [&crabcan_root, &pid_dir] {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let bind_source = scratch.join("bind-source");
    std::fs::create_dir_all(&bind_source).map_err(|e| format!("creating {}: {e}", bind_source.display()))?;
    scaling::write_big_profile(&scratch.join("seccomp-300.json"))?;
    Ok(Env {
        crabcan: opts.crabcan.clone(),
        rootfs,
        bundle_default,
        bundle_full,
        crabcan_root,
        pid_dir,
        id_prefix: format!("xtask-bench-{}", std::process::id()),
    })
}

/// The C helper if it builds, else direct spawning (RSS then includes the
/// bench's own, which the report says).
fn harness(scratch: &Path) -> Harness {
    match spawner::build(scratch) {
        Ok(helper) => Harness { helper: Some(helper) },
        Err(e) => {
            eprintln!("bench: {e}; spawning directly (peak RSS will include the bench's own)");
            Harness { helper: None }
        }
    }
}

fn exit_code(results: &Results) -> i32 {
    let crabcan_failed_in = |rows: &[(Runtime, Outcome<Stats>)]| {
        rows.iter()
            .any(|(r, o)| r.is_crabcan() && matches!(o, Outcome::Failed(_)))
    };
    let engine_failed = match &results.engines {
        Outcome::Done(engines) => engines
            .rows
            .iter()
            .any(|(r, o)| *r == engines::EngineRuntime::Crabcan && matches!(o, Outcome::Failed(_))),
        Outcome::Failed(_) => true,
        Outcome::Skipped(_) => false,
    };
    let crabcan_failed = crabcan_failed_in(&results.latency)
        || crabcan_failed_in(&results.lifecycle)
        || engine_failed
        || results.scaling.iter().any(|(_, o)| matches!(o, Outcome::Failed(_)))
        || results
            .throughput
            .iter()
            .any(|(r, o)| r.is_crabcan() && matches!(o, Outcome::Failed(_)));
    i32::from(crabcan_failed || !results.leaks.leaks.is_empty())
}

/// One command to measure repeatedly.
struct Job {
    label: String,
    make: Box<dyn Fn() -> Trial>,
    in_namespace: bool,
    samples: Vec<Sample>,
    failure: Option<String>,
}

/// What the phases share.
struct Ctx<'a> {
    opts: &'a Options,
    env: &'a Env,
    layout: &'a Layout,
    worker: Option<&'a NsWorker>,
    scratch: &'a Path,
    harness: &'a Harness,
}

impl Ctx<'_> {
    fn latency(&self, available: &[&str]) -> Result<Vec<(Runtime, Outcome<Stats>)>, String> {
        let present: Vec<Runtime> = ALL.into_iter().filter(|r| available.contains(&r.program())).collect();
        let jobs = present
            .iter()
            .map(|&r| {
                let env = self.env.clone();
                job(r.label(), r.needs_v1_only_namespace(), move || {
                    Trial::Spawn(r.command(&env))
                })
            })
            .collect();
        eprintln!(
            "bench: start-to-exit, {} runtimes x {} runs (+{} warm-up), interleaved",
            present.len(),
            self.opts.runs,
            self.opts.warmup
        );
        let done = self.interleave(jobs, self.opts.runs)?;
        let mut out: Vec<(Runtime, Outcome<Stats>)> = present.into_iter().zip(done).collect();
        for r in ALL.into_iter().filter(|r| !available.contains(&r.program())) {
            out.push((
                r,
                Outcome::Skipped(format!(
                    "{} not installed (apt-get install -y {})",
                    r.program(),
                    r.package()
                )),
            ));
        }
        out.sort_by_key(|(r, _)| ALL.iter().position(|x| x == r));
        Ok(out)
    }

    /// The second harness: hyperfine `-N`, in rotated rounds of 10 runs (quick: 1 round of 3),
    /// as many runs in all as the spawner's.
    fn hyperfine(&self, available: &[&str]) -> Outcome<Vec<(Runtime, Stats)>> {
        if runtimes::find_on_path("hyperfine").is_none() {
            return Outcome::Skipped("hyperfine not installed (apt-get install -y hyperfine)".to_string());
        }
        let per_round = if self.opts.quick { 3 } else { 10 };
        let rounds = self.opts.runs.div_ceil(per_round).max(1);
        eprintln!("bench: start-to-exit by hyperfine, {rounds} rotated rounds x {per_round} runs");
        outcome(hyperfine::measure(self.env, available, self.scratch, rounds, per_round))
    }

    /// Each runtime alone, warm-up then runs, one after the other: no
    /// runtime pays for the previous one's asynchronous teardown.
    fn back_to_back(&self, available: &[&str]) -> Result<Vec<(Runtime, Outcome<Stats>)>, String> {
        eprintln!("bench: start-to-exit again, each runtime back to back");
        let mut out = Vec::new();
        for r in ALL.into_iter().filter(|r| available.contains(&r.program())) {
            let env = self.env.clone();
            let one = vec![job(r.label(), r.needs_v1_only_namespace(), move || {
                Trial::Spawn(r.command(&env))
            })];
            let mut done = self.interleave(one, self.opts.runs)?;
            out.push((r, done.pop().unwrap_or(Outcome::Skipped("no runs".to_string()))));
        }
        Ok(out)
    }

    /// The four calls an engine makes (create, start, wait for the
    /// process, delete) for each OCI runtime, interleaved.
    fn lifecycle(&self, available: &[&str]) -> Result<Vec<(Runtime, Outcome<Stats>)>, String> {
        let present: Vec<Runtime> = OCI.into_iter().filter(|r| available.contains(&r.program())).collect();
        let jobs = present
            .iter()
            .map(|&r| {
                let env = self.env.clone();
                job(r.label(), r.needs_v1_only_namespace(), move || {
                    match r.lifecycle(&env) {
                        Some(lifecycle) => Trial::Lifecycle(Box::new(lifecycle)),
                        None => Trial::Spawn(r.command(&env)),
                    }
                })
            })
            .collect();
        eprintln!(
            "bench: create + start + wait + delete, {} OCI runtimes x {} runs (+{} warm-up), interleaved",
            present.len(),
            self.opts.runs,
            self.opts.warmup
        );
        let done = self.interleave(jobs, self.opts.runs)?;
        let mut out: Vec<(Runtime, Outcome<Stats>)> = present.into_iter().zip(done).collect();
        for r in OCI.into_iter().filter(|r| !available.contains(&r.program())) {
            out.push((r, Outcome::Skipped(format!("{} not installed", r.program()))));
        }
        out.sort_by_key(|(r, _)| OCI.iter().position(|x| x == r));
        Ok(out)
    }

    /// `podman run --rm IMAGE /bin/true` with each runtime.
    fn engines(&self, available: &[&str]) -> Outcome<Engines> {
        engines::measure(&engines::Setup {
            scratch: self.scratch,
            rootfs: &self.env.rootfs,
            crabcan: &self.env.crabcan,
            harness: self.harness,
            worker: self.worker,
            available,
            runs: self.opts.engine_runs,
            warmup: self.opts.engine_warmup,
        })
    }

    fn scaling(&self) -> Result<Vec<(String, Outcome<Stats>)>, String> {
        let bind_source = self.scratch.join("bind-source");
        let _targets = scaling::BindTargets::create(&self.env.rootfs, 100)?;
        let variants: Vec<scaling::Variant> = scaling::bind_variants(&bind_source)
            .into_iter()
            .chain(scaling::seccomp_variants(&self.scratch.join("seccomp-300.json")))
            .collect();
        let labels: Vec<String> = variants.iter().map(|v| v.label.clone()).collect();
        let jobs = variants
            .into_iter()
            .map(|v| {
                let env = self.env.clone();
                job(&v.label, false, move || Trial::Spawn(runtimes::crabcan(&env, &v.args)))
            })
            .collect();
        eprintln!(
            "bench: crabcan cost growth, {} configurations x {} runs",
            labels.len(),
            self.opts.scaling_runs
        );
        let done = self.interleave(jobs, self.opts.scaling_runs)?;
        Ok(labels.into_iter().zip(done).collect())
    }

    /// Runs the jobs round-robin, `warmup` + `runs` rounds; a job that
    /// fails once is dropped from later rounds.
    fn interleave(&self, mut jobs: Vec<Job>, runs: usize) -> Result<Vec<Outcome<Stats>>, String> {
        let mut log = ErrLog::new_in(self.scratch)?;
        for round in 0..self.opts.warmup + runs {
            for job in jobs.iter_mut().filter(|j| j.failure.is_none()) {
                match self.measure_one(job, &mut log) {
                    Ok(sample) if round >= self.opts.warmup => job.samples.push(sample),
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("bench: {}: {e}", job.label);
                        job.failure = Some(e);
                    }
                }
            }
        }
        Ok(jobs.into_iter().map(finish).collect())
    }

    fn measure_one(&self, job: &Job, log: &mut ErrLog) -> Result<Sample, String> {
        let trial = (job.make)();
        match (job.in_namespace, self.worker) {
            (true, Some(worker)) => worker.run(trial),
            (true, None) => Err("the v1-only namespace thread is not running".to_string()),
            (false, _) => self.harness.run_trial(trial, log),
        }
    }

    /// Every runtime's throughput, back to back and `parallel` at a time, in rounds: each
    /// round measures every runtime once, in an order rotated by one from the round before,
    /// and a runtime's figures add its rounds up. A runtime that fails is left out of the
    /// later rounds.
    fn throughput(&self, available: &[&str]) -> Vec<(Runtime, Outcome<(Throughput, Throughput)>)> {
        let (total, parallel, rounds) = (
            self.opts.throughput_total,
            self.opts.parallel,
            self.opts.throughput_rounds,
        );
        eprintln!(
            "bench: throughput, {rounds} rounds of {total} containers back to back and {total} {parallel} at a time"
        );
        let mut measured: Vec<(Runtime, Result<Vec<RoundPair>, String>)> = ALL
            .into_iter()
            .filter(|r| available.contains(&r.program()))
            .map(|r| (r, Ok(Vec::new())))
            .collect();
        for round in 0..rounds.max(1) {
            let count = measured.len().max(1);
            for index in (0..measured.len()).map(|i| (i + round) % count) {
                let (r, so_far) = &mut measured[index];
                let Ok(pairs) = so_far else { continue };
                let measure = |k| throughput::measure(*r, self.env, self.layout, self.scratch, total, k);
                match measure(1).and_then(|seq| Ok((seq, measure(parallel)?))) {
                    Ok(pair) => pairs.push(pair),
                    Err(e) => {
                        eprintln!("bench: throughput {}: {e}", r.label());
                        *so_far = Err(e);
                    }
                }
            }
        }
        ALL.into_iter()
            .map(|r| {
                let outcome = match measured.iter().find(|(m, _)| *m == r) {
                    None => Outcome::Skipped(format!("{} not installed", r.program())),
                    Some((_, Err(e))) => Outcome::Failed(e.clone()),
                    Some((_, Ok(pairs))) => {
                        let (seq, par): (Vec<Throughput>, Vec<Throughput>) = pairs.iter().cloned().unzip();
                        match (Throughput::combine(&seq), Throughput::combine(&par)) {
                            (Some(seq), Some(par)) => Outcome::Done((seq, par)),
                            _ => Outcome::Failed("no round was measured".to_string()),
                        }
                    }
                };
                (r, outcome)
            })
            .collect()
    }

    fn breakdown(&self) -> (Outcome<breakdown::StraceFindings>, Outcome<Vec<breakdown::Event>>) {
        eprintln!("bench: where crabcan's time goes (strace -c -f, --debug timeline)");
        let strace = if runtimes::find_on_path("strace").is_none() {
            Outcome::Skipped("strace not installed (apt-get install -y strace)".to_string())
        } else {
            outcome(breakdown::strace(self.env, self.scratch))
        };
        (strace, outcome(breakdown::debug_timeline(self.env)))
    }
}

fn job(label: &str, in_namespace: bool, make: impl Fn() -> Trial + 'static) -> Job {
    Job {
        label: label.to_string(),
        make: Box::new(make),
        in_namespace,
        samples: Vec::new(),
        failure: None,
    }
}

fn finish(job: Job) -> Outcome<Stats> {
    match (job.failure, Stats::of(&job.samples)) {
        (Some(e), _) => Outcome::Failed(e),
        (None, Some(stats)) => Outcome::Done(stats),
        (None, None) => Outcome::Skipped("no runs".to_string()),
    }
}

fn outcome<T>(result: Result<T, String>) -> Outcome<T> {
    match result {
        Ok(t) => Outcome::Done(t),
        Err(e) => Outcome::Failed(e),
    }
}
