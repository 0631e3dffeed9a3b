//! Throughput: N containers back to back, and N with K at a time (K worker
//! threads, each running its share sequentially). Each worker of a runtime
//! that needs it enters the v1-only mount namespace before the clock
//! starts; the clock runs from a barrier all workers pass to the last one
//! finishing. The bench repeats both in rounds over all runtimes (see
//! `mod.rs`), and [`Throughput::combine`] adds a runtime's rounds up, so a
//! drift of the machine during the bench weighs on every runtime alike.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::hybrid::{enter_v1_only_namespace, Layout};
use super::measure::{run_once, ErrLog};
use super::runtimes::{Env, Runtime};

/// One throughput measurement, or the sum of several rounds of it.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub containers: usize,
    pub parallel: usize,
    pub elapsed: Duration,
    /// The containers per second of each round added up here (one for a single measurement).
    pub round_rates: Vec<f64>,
}

impl Throughput {
    /// Containers per second over everything measured.
    pub fn per_second(&self) -> f64 {
        rate(self.containers, self.elapsed)
    }

    /// The rounds as one measurement: all their containers over all their time.
    pub fn combine(rounds: &[Throughput]) -> Option<Throughput> {
        let first = rounds.first()?;
        Some(Throughput {
            containers: rounds.iter().map(|r| r.containers).sum(),
            parallel: first.parallel,
            elapsed: rounds.iter().map(|r| r.elapsed).sum(),
            round_rates: rounds.iter().flat_map(|r| r.round_rates.iter().copied()).collect(),
        })
    }

    /// The slowest and the fastest round, in containers per second.
    pub fn round_range(&self) -> Option<(f64, f64)> {
        let min = self.round_rates.iter().copied().reduce(f64::min)?;
        let max = self.round_rates.iter().copied().reduce(f64::max)?;
        Some((min, max))
    }
}

fn rate(containers: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        containers as f64 / secs
    } else {
        0.0
    }
}

/// Runs `total` containers of `runtime`, `parallel` at a time.
pub fn measure(
    runtime: Runtime,
    env: &Env,
    layout: &Layout,
    log_dir: &Path,
    total: usize,
    parallel: usize,
) -> Result<Throughput, String> {
    let parallel = parallel.clamp(1, total.max(1));
    let barrier = Barrier::new(parallel + 1);
    let mut elapsed = Duration::ZERO;
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..parallel)
            .map(|worker| {
                let share = total / parallel + usize::from(worker < total % parallel);
                let barrier = &barrier;
                scope.spawn(move || worker_loop(runtime, env, layout, log_dir, share, barrier))
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a worker thread panicked".to_string())))
            .collect();
        elapsed = start.elapsed();
        results
    });
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    Ok(Throughput {
        containers: total,
        parallel,
        elapsed,
        round_rates: vec![rate(total, elapsed)],
    })
}

/// One worker: set up, wait for the start, run `share` containers. Always
/// reaches the barrier, so a failing setup cannot hang the others.
fn worker_loop(
    runtime: Runtime,
    env: &Env,
    layout: &Layout,
    log_dir: &Path,
    share: usize,
    barrier: &Barrier,
) -> Result<(), String> {
    let setup = setup(runtime, layout, log_dir);
    barrier.wait();
    let mut log = setup?;
    for _ in 0..share {
        run_once(runtime.command(env), &mut log)?;
    }
    Ok(())
}

fn setup(runtime: Runtime, layout: &Layout, log_dir: &Path) -> Result<ErrLog, String> {
    if runtime.needs_v1_only_namespace() {
        enter_v1_only_namespace(layout)?;
    }
    ErrLog::new_in(log_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(containers: usize, millis: u64) -> Throughput {
        let elapsed = Duration::from_millis(millis);
        Throughput {
            containers,
            parallel: 8,
            elapsed,
            round_rates: vec![rate(containers, elapsed)],
        }
    }

    #[test]
    fn rounds_add_up_to_all_containers_over_all_time() {
        let combined = Throughput::combine(&[round(200, 400), round(200, 500), round(200, 600)]).unwrap();
        assert_eq!(combined.containers, 600);
        assert_eq!(combined.elapsed, Duration::from_millis(1500));
        assert!((combined.per_second() - 400.0).abs() < 1e-9);
        assert_eq!(combined.round_range(), Some((200.0 / 0.6, 500.0)));
        assert!(Throughput::combine(&[]).is_none());
    }
}
