//! `cargo xtask`: crabcan's developer tasks (rootfs, run, test, test-vm).

use clap::{Parser, Subcommand};

use xtask::cmd;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "crabcan developer tasks", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the container root filesystem (Alpine, Debian from the apt sources, or busybox offline)
    Rootfs(cmd::rootfs::RootfsArgs),
    /// Build crabcan and run a command (default /bin/sh) in the rootfs
    Run(cmd::run::RunArgs),
    /// Build, run all tests (workspace, then VM) and print "N passed, N failed"
    Test(cmd::test::TestArgs),
    /// Run the privileged integration tests inside a qemu VM
    TestVm(cmd::test_vm::TestVmArgs),
    /// Benchmark crabcan against crun, runc, bwrap, alone and under podman; writes BENCHMARKS.md and docs/bench.svg
    Bench(cmd::bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Rootfs(args) => cmd::rootfs::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Test(args) => cmd::test::run(args),
        Command::TestVm(args) => cmd::test_vm::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
