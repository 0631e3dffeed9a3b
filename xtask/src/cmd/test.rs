//! `cargo xtask test`: the README's (and CI's) test command. Builds the
//! crabcan binary, runs `cargo test --workspace` with CRABCAN_BIN and
//! CRABCAN_TEST_ROOTFS set, then (unless --no-vm) the VM tests, and ends
//! with the plain line `N passed, N failed`.

use std::process::Command;

use super::test_vm::{print_report, TestVmArgs};
use super::CmdError;
use crate::paths;
use crate::rootfs::{ensure_rootfs, RootfsOptions};
use crate::util::process::{run_checked, stream_stdout};
use crate::vm::run_test_vm;

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Skip the VM phase
    #[arg(long)]
    pub no_vm: bool,
    #[command(flatten)]
    pub vm: TestVmArgs,
}

/// Pass/fail counts summed over the phases.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

impl Tally {
    /// Adds a libtest "test result: ok. X passed; Y failed; ..." line.
    pub fn add_libtest_line(&mut self, line: &str) -> bool {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return false;
        };
        let count = |word: &str| -> u64 {
            rest.split(';')
                .filter_map(|part| part.trim().rsplit_once(' '))
                .find(|(_, w)| *w == word)
                .and_then(|(n, _)| n.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0)
        };
        self.passed += count("passed");
        self.failed += count("failed");
        true
    }
}

pub fn run(args: &TestArgs) -> Result<i32, CmdError> {
    let mut tally = Tally::default();
    let ok = phases(args, &mut tally);
    if let Err(e) = &ok {
        eprintln!("xtask test: {e}");
        tally.failed += 1;
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 && ok.is_ok() { 0 } else { 1 })
}

/// What the tests need besides the Rust toolchain: busybox for the rootfs, gcc and libc.a for
/// the static seccomp probe, `script` for the pty tests, `newuidmap` for the subordinate-id tests,
/// mmdebstrap for the Debian rootfs of tests/debian.rs.
const TEST_PACKAGES: [&str; 7] = [
    "busybox-static",
    "mmdebstrap",
    "libseccomp-dev",
    "gcc",
    "libc6-dev",
    "bsdutils",
    "uidmap",
];

fn phases(args: &TestArgs, tally: &mut Tally) -> Result<(), CmdError> {
    crate::util::packages::ensure(&TEST_PACKAGES)?;
    if !args.no_vm {
        crate::util::packages::ensure(&["qemu-system-x86"])?;
    }
    let root = paths::workspace_root();
    eprintln!("xtask test: [1/3] cargo build -p crabcan-cli");
    run_checked(
        Command::new(paths::cargo())
            .args(["build", "-p", "crabcan-cli"])
            .current_dir(&root),
    )?;
    let crabcan = paths::target_dir().join("debug").join("crabcan");
    let rootfs = paths::test_rootfs();
    // Busybox, like the tests' own fallback: the same rootfs on every machine.
    ensure_rootfs(&rootfs, &RootfsOptions::offline())?;

    eprintln!("xtask test: [2/3] cargo test --workspace");
    let mut cmd = Command::new(paths::cargo());
    cmd.args(["test", "--workspace"])
        .current_dir(&root)
        .env("CRABCAN_BIN", &crabcan)
        .env("CRABCAN_TEST_ROOTFS", &rootfs);
    let mut seen_result = false;
    let status = stream_stdout(&mut cmd, |line| seen_result |= tally.add_libtest_line(line))?;
    if !status.success() && tally.failed == 0 {
        // A build error or a crash: no failed test was counted for it.
        eprintln!("xtask test: `cargo test --workspace` failed without a failed test (build error?)");
        tally.failed += 1;
    }

    if args.no_vm {
        eprintln!("xtask test: [3/3] VM tests skipped (--no-vm)");
        return Ok(());
    }
    eprintln!("xtask test: [3/3] VM tests");
    match run_test_vm(&args.vm.options()?) {
        Ok(outcome) => {
            print_report(&outcome);
            tally.passed += outcome.summary.passed;
            tally.failed += outcome.summary.failed;
        }
        Err(e) => {
            eprintln!("xtask test: test-vm: {e}");
            tally.failed += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_lines_are_summed() {
        let mut t = Tally::default();
        assert!(t.add_libtest_line(
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
        ));
        assert!(t.add_libtest_line("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out"));
        assert!(!t.add_libtest_line("running 5 tests"));
        assert_eq!(t, Tally { passed: 15, failed: 2 });
    }
}
