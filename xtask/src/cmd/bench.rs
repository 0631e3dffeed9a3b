//! `cargo xtask bench`: build crabcan (release) and benchmark it against
//! crun, runc, bwrap and an unshare floor, in direct and OCI mode and under
//! podman; writes BENCHMARKS.md and docs/bench.svg (see `crate::bench`).
//! With `--vm`, instead: crabcan on cgroup v2 in the test VM against the
//! floor there, written as one Markdown section (see `crate::bench::vm`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

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
    /// Markdown report [default: BENCHMARKS.md; with --vm docs/bench-vm.md, quick target/bench-vm.md]
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
    /// Instead of the host bench: crabcan on cgroup v2 (clone3 into the cgroup) against the
    /// unshare+chroot floor in the test VM; writes one Markdown section to --out
    #[arg(long, conflicts_with_all = ["svg", "install", "rootfs", "crabcan"])]
    pub vm: bool,
    /// With --vm: overall timeout in seconds, the static build and the boot included
    #[arg(long, value_name = "SECS", default_value_t = 1200, requires = "vm")]
    pub vm_timeout: u64,
}

pub fn run(args: &BenchArgs) -> Result<i32, CmdError> {
    if args.vm {
        return run_vm(args);
    }
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

/// `--vm`: the bench payload in the test VM, one Markdown section out.
fn run_vm(args: &BenchArgs) -> Result<i32, CmdError> {
    let opts = bench::vm::VmBenchOptions {
        // Under TCG a round of the three takes ~0.25 s: 100 rounds stay well under a minute.
        runs: args.runs.unwrap_or(if args.quick { 5 } else { 100 }),
        warmup: if args.quick { 1 } else { 5 },
        // Like BENCHMARKS.md, the full run's section is kept in the tree; a quick one is not.
        out: args.out.clone().unwrap_or_else(|| {
            if args.quick {
                paths::target_dir().join("bench-vm.md")
            } else {
                paths::workspace_root().join("docs").join("bench-vm.md")
            }
        }),
        timeout: Duration::from_secs(args.vm_timeout),
    };
    Ok(bench::vm::run(&opts)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|cli| cli.bench)
    }

    #[test]
    fn vm_flags_parse_and_conflict() {
        let host = parse(&[]).expect("the host bench needs no flag");
        assert!(!host.vm);
        let vm = parse(&["--vm", "--runs", "10", "--out", "x.md", "--vm-timeout", "600"]).expect("--vm");
        assert!(vm.vm && vm.runs == Some(10) && vm.vm_timeout == 600);
        assert!(parse(&["--vm-timeout", "600"]).is_err());
        assert!(parse(&["--vm", "--crabcan", "x"]).is_err());
        assert!(parse(&["--vm", "--svg", "x.svg"]).is_err());
    }
}
