//! Timing one container: fork+exec the runtime with stdin/stdout on
//! /dev/null and stderr in a scratch file, `wait4` for it, and keep the wall
//! time (spawn to reaped) and the peak RSS from the child's `rusage`. Also
//! the four calls an engine makes ([`Lifecycle`]: create, start, wait for
//! the container's process, delete), timed step by step by the C helper.
//!
//! `ru_maxrss` from `wait4` is the largest resident set of the runtime
//! process itself and of any descendant it waited for (for a runtime that
//! forks the container, that includes the container's `/bin/true`, which is
//! tiny here).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::process::display;

/// One container, start to exit.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub elapsed: Duration,
    /// Peak RSS in KiB (`ru_maxrss`).
    pub maxrss_kib: u64,
    /// Step by step, for a [`Lifecycle`].
    pub steps: Option<Steps>,
}

/// The four calls of a [`Lifecycle`], each timed (for [`Stats`]: each
/// step's own median).
#[derive(Debug, Clone, Copy, Default)]
pub struct Steps {
    /// `create` spawned to reaped.
    pub create: Duration,
    /// `start` spawned to reaped.
    pub start: Duration,
    /// `start` reaped to the container's process reaped.
    pub wait: Duration,
    /// `delete` spawned to reaped.
    pub delete: Duration,
}

/// What one measured run is.
#[derive(Debug)]
pub enum Trial {
    /// A command that runs a container and exits with it.
    Spawn(Command),
    /// The engines' four calls.
    Lifecycle(Box<Lifecycle>),
}

/// `create --pid-file PID_FILE`, `start`, wait for the process, `delete`;
/// `force_delete` (`delete --force`) cleans up if a step fails.
#[derive(Debug)]
pub struct Lifecycle {
    pub pid_file: PathBuf,
    pub create: Command,
    pub start: Command,
    pub delete: Command,
    pub force_delete: Command,
}

/// A scratch file that receives the runtime's stderr, so a failure can be
/// reported with the runtime's own message. One per thread.
#[derive(Debug)]
pub struct ErrLog {
    file: File,
}

impl ErrLog {
    /// Creates `<dir>/stderr.<thread-unique n>`.
    pub fn new_in(dir: &Path) -> Result<ErrLog, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = dir.join(format!("stderr.{}", N.fetch_add(1, Ordering::Relaxed)));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(ErrLog { file })
    }

    fn reset(&mut self) -> io::Result<Stdio> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        Ok(Stdio::from(self.file.try_clone()?))
    }

    /// The last non-empty line the runtime wrote.
    fn last_line(&mut self) -> String {
        let mut text = String::new();
        let _ = self.file.seek(SeekFrom::Start(0));
        let _ = self.file.read_to_string(&mut text);
        let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        line.trim().chars().take(300).collect()
    }
}

/// Runs `cmd` once and measures it; an error (with the runtime's last
/// stderr line) unless it exits 0.
pub fn run_once(mut cmd: Command, log: &mut ErrLog) -> Result<Sample, String> {
    let stderr = log.reset().map_err(|e| format!("stderr scratch file: {e}"))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", display(&cmd)))?;
    let (status, usage) = wait4(child.id())?;
    let elapsed = start.elapsed();
    if let Some(why) = failure(status) {
        let last = log.last_line();
        let sep = if last.is_empty() { "" } else { ": " };
        return Err(format!("`{}` failed ({why}){sep}{last}", display(&cmd)));
    }
    Ok(Sample {
        elapsed,
        maxrss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        steps: None,
    })
}

/// How start-to-exit runs are spawned: through the small C helper (see
/// `spawner.rs`) so `ru_maxrss` is the runtime's own, or directly.
#[derive(Debug, Clone)]
pub struct Harness {
    pub helper: Option<std::path::PathBuf>,
}

impl Harness {
    /// Runs `cmd` once and measures it.
    pub fn run(&self, cmd: Command, log: &mut ErrLog) -> Result<Sample, String> {
        match &self.helper {
            Some(helper) => run_via_helper(helper, &cmd, log),
            None => run_once(cmd, log),
        }
    }

    /// Runs one trial and measures it. A lifecycle needs the helper (a
    /// child subreaper that the container's process is reparented to).
    pub fn run_trial(&self, trial: Trial, log: &mut ErrLog) -> Result<Sample, String> {
        match (trial, &self.helper) {
            (Trial::Spawn(cmd), _) => self.run(cmd, log),
            (Trial::Lifecycle(lifecycle), Some(helper)) => run_lifecycle(helper, &lifecycle, log),
            (Trial::Lifecycle(_), None) => {
                Err("create/start/wait/delete needs the C helper (no C compiler found)".to_string())
            }
        }
    }
}

/// `spawner --lifecycle PID_FILE N1 CREATE... N2 START... N3 DELETE... N4 FORCE...`.
fn run_lifecycle(helper: &Path, lifecycle: &Lifecycle, log: &mut ErrLog) -> Result<Sample, String> {
    let stderr = log.reset().map_err(|e| format!("stderr scratch file: {e}"))?;
    let mut wrapped = Command::new(helper);
    wrapped.arg("--lifecycle").arg(&lifecycle.pid_file);
    for cmd in [
        &lifecycle.create,
        &lifecycle.start,
        &lifecycle.delete,
        &lifecycle.force_delete,
    ] {
        wrapped
            .arg((1 + cmd.get_args().len()).to_string())
            .arg(cmd.get_program())
            .args(cmd.get_args());
    }
    wrapped.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
    let out = wrapped
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", display(&wrapped)))?;
    let report = String::from_utf8_lossy(&out.stdout);
    let parsed = super::spawner::parse_report(&report).zip(super::spawner::parse_steps(&report));
    let Some(((ns, rss, status), [create, start, wait, delete])) = parsed else {
        return Err(format!(
            "`{}`: unreadable report {:?} ({})",
            display(&wrapped),
            report.trim(),
            out.status
        ));
    };
    if let Some(why) = failure(status) {
        let last = log.last_line();
        let sep = if last.is_empty() { "" } else { ": " };
        return Err(format!(
            "`{}` (create, start, wait, delete) failed ({why}){sep}{last}",
            display(&lifecycle.create)
        ));
    }
    Ok(Sample {
        elapsed: Duration::from_nanos(ns),
        maxrss_kib: rss,
        steps: Some(Steps {
            create: Duration::from_nanos(create),
            start: Duration::from_nanos(start),
            wait: Duration::from_nanos(wait),
            delete: Duration::from_nanos(delete),
        }),
    })
}

/// Runs `cmd` under the helper, which times and reaps it.
fn run_via_helper(helper: &Path, cmd: &Command, log: &mut ErrLog) -> Result<Sample, String> {
    let stderr = log.reset().map_err(|e| format!("stderr scratch file: {e}"))?;
    let mut wrapped = Command::new(helper);
    wrapped.arg(cmd.get_program()).args(cmd.get_args());
    wrapped.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
    let out = wrapped
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", display(&wrapped)))?;
    let report = String::from_utf8_lossy(&out.stdout);
    let (ns, rss, status) = super::spawner::parse_report(&report)
        .ok_or_else(|| format!("`{}`: unreadable report {:?}", display(&wrapped), report.trim()))?;
    if let Some(why) = failure(status) {
        let last = log.last_line();
        let sep = if last.is_empty() { "" } else { ": " };
        return Err(format!("`{}` failed ({why}){sep}{last}", display(cmd)));
    }
    Ok(Sample {
        elapsed: Duration::from_nanos(ns),
        maxrss_kib: rss,
        steps: None,
    })
}

/// Reaps `pid`, returning its wait status and resource usage.
fn wait4(pid: u32) -> Result<(libc::c_int, libc::rusage), String> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are valid for writes for the whole call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(format!("wait4({pid}): {err}"));
        }
    }
}

/// `None` for exit status 0, else "exit status N" / "killed by signal N".
pub(crate) fn failure(status: libc::c_int) -> Option<String> {
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => None,
            code => Some(format!("exit status {code}")),
        }
    } else if libc::WIFSIGNALED(status) {
        Some(format!("killed by signal {}", libc::WTERMSIG(status)))
    } else {
        Some(format!("wait status {status:#x}"))
    }
}

/// Median, min and max of a set of samples.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
    /// Median and max of the peak RSS, KiB.
    pub rss_median_kib: u64,
    pub rss_max_kib: u64,
    /// Each step's median, when every sample has steps.
    pub steps: Option<Steps>,
}

impl Stats {
    /// `None` for no samples.
    pub fn of(samples: &[Sample]) -> Option<Stats> {
        let mut times: Vec<Duration> = samples.iter().map(|s| s.elapsed).collect();
        let mut rss: Vec<u64> = samples.iter().map(|s| s.maxrss_kib).collect();
        times.sort_unstable();
        rss.sort_unstable();
        Some(Stats {
            n: times.len(),
            median: median(&times)?,
            min: *times.first()?,
            max: *times.last()?,
            rss_median_kib: median_u64(&rss)?,
            rss_max_kib: *rss.last()?,
            steps: step_medians(samples),
        })
    }
}

fn step_medians(samples: &[Sample]) -> Option<Steps> {
    let steps: Vec<Steps> = samples.iter().map(|s| s.steps).collect::<Option<_>>()?;
    let of = |pick: fn(&Steps) -> Duration| {
        let mut times: Vec<Duration> = steps.iter().map(pick).collect();
        times.sort_unstable();
        median(&times)
    };
    Some(Steps {
        create: of(|s| s.create)?,
        start: of(|s| s.start)?,
        wait: of(|s| s.wait)?,
        delete: of(|s| s.delete)?,
    })
}

/// The median of a sorted slice (the mean of the middle two for even n).
pub fn median(sorted: &[Duration]) -> Option<Duration> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// The median of sorted integers.
fn median_u64(sorted: &[u64]) -> Option<u64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// Milliseconds with two decimals, for tables.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// MiB with one decimal, from KiB.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}
