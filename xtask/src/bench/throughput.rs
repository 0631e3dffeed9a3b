//! Throughput: N containers back to back, and N with K at a time (K worker
//! threads, each running its share sequentially). Each worker of a runtime
//! that needs it enters the v1-only mount namespace before the clock
//! starts; the clock runs from a barrier all workers pass to the last one
//! finishing.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::hybrid::{enter_v1_only_namespace, Layout};
use super::measure::{run_once, ErrLog};
use super::runtimes::{Env, Runtime};

/// One throughput measurement.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub containers: usize,
    pub parallel: usize,
    pub elapsed: Duration,
}

impl Throughput {
    pub fn per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.containers as f64 / secs
        } else {
            0.0
        }
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
