//! `cargo xtask bench`: build crabcan (release) and benchmark it against
//! crun, runc, bwrap and an unshare floor, in direct and OCI mode and under
//! podman; writes BENCHMARKS.md and docs/bench.svg (see `crate::bench`).

use std::path::PathBuf;
use std::process::Command;

use super::CmdError;
use crate::bench::{self, Options};
use crate::paths;
use crate::util::process::run_checked;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A few runs only (CI smoke test; skips missing runtimes); writes to target/bench-quick/ unless --out is given
    #[arg(long)]
    pub quick: bool,
    /// Measured runs per runtime [default: 100, quick 5]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub runs: Option<u32>,
    /// Markdown report [default: BENCHMARKS.md]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// SVG chart [default: docs/bench.svg, or next to --out]
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// apt-get install missing runtimes and tools (crun runc bubblewrap strace hyperfine)
    #[arg(long)]
    pub install: bool,
    /// Rootfs to use (a busybox one is built if missing) [default: target/bench-rootfs]
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Use this crabcan binary instead of building it
    #[arg(long, value_name = "PATH")]
    pub crabcan: Option<PathBuf>,
}

pub fn run(args: &BenchArgs) -> Result<i32, CmdError> {
    let crabcan = match &args.crabcan {
        Some(path) => path.clone(),
        None => build_crabcan()?,
    };
    let (out, svg) = outputs(args);
    let rootfs = args
        .rootfs
        .clone()
        .unwrap_or_else(|| paths::target_dir().join("bench-rootfs"));
    let mut opts = Options::new(args.quick, rootfs, crabcan, out, svg);
    opts.install = args.install;
    if let Some(runs) = args.runs {
        opts.runs = runs as usize;
    }
    Ok(bench::run(&opts)?)
}

/// The crabcan that is measured: what `cargo build --release` (and `cargo install`) gives,
/// a static PIE with libseccomp linked in (crabcan-cli's build.rs), so the figures are the
/// ones a user gets. Errors if that build came out dynamic (static archives missing).
fn build_crabcan() -> Result<PathBuf, CmdError> {
    let mut build = Command::new(paths::cargo());
    build
        .args(["build", "--release", "-p", "crabcan-cli"])
        .current_dir(paths::workspace_root());
    run_checked(&mut build)?;
    let crabcan = paths::target_dir().join("release").join("crabcan");
    crate::vm::payload::ensure_static(&crabcan)?;
    Ok(crabcan)
}

/// Where the report and the chart go (quick runs stay out of the tree).
fn outputs(args: &BenchArgs) -> (PathBuf, PathBuf) {
    let root = paths::workspace_root();
    let default_dir = if args.quick {
        paths::target_dir().join("bench-quick")
    } else {
        root.clone()
    };
    let out = args.out.clone().unwrap_or_else(|| default_dir.join("BENCHMARKS.md"));
    let svg = match (&args.svg, &args.out, args.quick) {
        (Some(svg), _, _) => svg.clone(),
        (None, Some(out), _) => out.parent().unwrap_or(&root).join("bench.svg"),
        (None, None, true) => default_dir.join("bench.svg"),
        (None, None, false) => root.join("docs").join("bench.svg"),
    };
    (out, svg)
}
