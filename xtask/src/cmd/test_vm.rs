//! `cargo xtask test-vm`: the integration tests inside a qemu VM; the exit
//! status is the suite's.

use std::path::PathBuf;
use std::time::Duration;

use super::CmdError;
use crate::vm::{run_test_vm, Accel, Payload, TestVmOptions, VmOutcome};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AccelArg {
    Tcg,
    Kvm,
    Auto,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PayloadArg {
    /// crabcan + the crabcan-tests integration tests
    Crabcan,
    /// xtask's own small VM self-test (no crabcan needed)
    Placeholder,
}

#[derive(Debug, clap::Args)]
pub struct TestVmArgs {
    /// Guest kernel [default: $CRABCAN_VM_KERNEL, /boot/vmlinuz-*, or Debian's linux-image-amd64]
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Accelerator: auto tries KVM and falls back to TCG if the guest hangs
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelArg,
    /// Overall timeout in seconds, counted from the start (the static build included)
    #[arg(long, value_name = "SECS", default_value_t = 1200)]
    pub timeout: u64,
    /// What to run in the VM
    #[arg(long, value_enum, default_value = "crabcan")]
    pub payload: PayloadArg,
    /// Put KEY=VALUE in the guest's environment (repeatable)
    #[arg(long, value_name = "KEY=VALUE")]
    pub guest_env: Vec<String>,
    /// Guest memory in MiB
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    pub memory: u32,
    /// Guest CPUs
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub cpus: u32,
    /// Run only this integration test of crabcan-tests (e.g. rootless), not all of them
    #[arg(long, value_name = "NAME")]
    pub test: Option<String>,
}

impl TestVmArgs {
    pub fn options(&self) -> Result<TestVmOptions, CmdError> {
        for kv in &self.guest_env {
            let ok = kv.split_once('=').is_some_and(|(k, v)| {
                !k.is_empty()
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !v.contains(char::is_whitespace)
            });
            if !ok {
                return Err(format!("--guest-env {kv:?}: expected KEY=VALUE (no spaces)").into());
            }
        }
        Ok(TestVmOptions {
            kernel: self.kernel.clone(),
            accel: match self.accel {
                AccelArg::Tcg => Accel::Tcg,
                AccelArg::Kvm => Accel::Kvm,
                AccelArg::Auto => Accel::Auto,
            },
            timeout: Duration::from_secs(self.timeout),
            payload: match self.payload {
                PayloadArg::Crabcan => Payload::Crabcan,
                PayloadArg::Placeholder => Payload::Placeholder,
            },
            guest_env: self.guest_env.clone(),
            memory_mb: self.memory,
            cpus: self.cpus,
            only_test: self.test.clone(),
        })
    }
}

pub fn run(args: &TestVmArgs) -> Result<i32, CmdError> {
    let outcome = run_test_vm(&args.options()?)?;
    print_report(&outcome);
    Ok(if outcome.summary.failed == 0 { 0 } else { 1 })
}

/// Per-binary results, skip reasons, and the plain closing line.
pub fn print_report(outcome: &VmOutcome) {
    println!("--- test-vm ---");
    for result in &outcome.results {
        println!("vm: {result}");
    }
    for note in &outcome.notes {
        println!("vm: skipped/note: {note}");
    }
    let s = &outcome.summary;
    if s.passed + s.failed + s.skipped == 0 {
        println!("vm: warning: no test ran in the VM");
    }
    println!("vm: {} passed, {} failed, {} skipped", s.passed, s.failed, s.skipped);
}
