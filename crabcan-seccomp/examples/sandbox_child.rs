//! Sandboxes a child process with crabcan-seccomp alone: a profile that allows everything
//! but `mkdir`, `mkdirat` and `socket` (EPERM) is compiled in the parent, and installed in
//! the child between `fork` and `exec` (with `PR_SET_NO_NEW_PRIVS`, so no privilege is
//! needed). The child runs `mkdir DIR`, which fails with "Operation not permitted"; the same
//! command without the filter then succeeds.
//!
//! ```sh
//! cargo run -p crabcan-seccomp --example sandbox_child              # the mkdir demonstration
//! cargo run -p crabcan-seccomp --example sandbox_child -- ping -c1 ::1  # any command, filtered
//! ```
//!
//! `crabcan-seccomp/tests/sandbox_child_example.rs` includes this file and runs [`demo`], so
//! the test does exactly what the example does.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode, Output};

use crabcan_seccomp::{Action, CompiledFilter, Profile, Rule, SeccompError};

/// Allow everything except creating directories and sockets, which fail with EPERM.
pub fn sandbox_profile() -> Profile {
    let eperm = Action::Errno(libc::EPERM as u32);
    Profile {
        default_action: Action::Allow,
        rules: ["mkdir", "mkdirat", "socket"]
            .iter()
            .filter(|name| crabcan_seccomp::syscall_number(name).is_some()) // no mkdir on aarch64
            .map(|name| Rule::new(name, eperm))
            .collect(),
    }
}

/// Runs `command` with `filter` installed in the child right before `exec`, and collects its
/// output.
pub fn run_sandboxed(command: &mut Command, filter: &CompiledFilter) -> io::Result<Output> {
    let filter = filter.clone();
    // SAFETY: the closure runs in the forked child before exec. It only calls prctl and
    // seccomp (install_with_no_new_privs does not allocate) and builds an io::Error from a raw
    // errno, which does not allocate either.
    unsafe {
        command.pre_exec(move || filter.install_with_no_new_privs().map_err(|error| io_error(&error)));
    }
    command.output()
}

/// The errno of an install error, as an `io::Error` (no allocation).
fn io_error(error: &SeccompError) -> io::Error {
    let errno = match error {
        SeccompError::NoNewPrivs { source } | SeccompError::Install { source } => source.raw_os_error(),
        SeccompError::NeedsNoNewPrivs => Some(libc::EACCES),
        _ => None,
    };
    io::Error::from_raw_os_error(errno.unwrap_or(libc::EINVAL))
}

/// What [`demo`] saw.
#[derive(Debug)]
pub struct Demo {
    /// The filtered `mkdir`: its exit status and stderr.
    pub sandboxed: Output,
    /// True if the filtered `mkdir` created the directory anyway (it must not).
    pub created_under_filter: bool,
    /// True if the same `mkdir` without the filter created it.
    pub created_without_filter: bool,
}

/// Runs `mkdir DIR/denied` under the filter, then without it.
pub fn demo(scratch: &Path) -> Result<Demo, String> {
    let target = scratch.join("denied");
    let filter = sandbox_profile().compile().map_err(|error| error.to_string())?;
    let mkdir = || {
        let mut command = Command::new("mkdir");
        command.arg(&target).env("LC_ALL", "C");
        command
    };
    let sandboxed = run_sandboxed(&mut mkdir(), &filter).map_err(|error| format!("cannot run mkdir: {error}"))?;
    let created_under_filter = target.exists();
    let plain = mkdir().output().map_err(|error| format!("cannot run mkdir: {error}"))?;
    Ok(Demo {
        sandboxed,
        created_under_filter,
        created_without_filter: plain.status.success() && target.is_dir(),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((program, rest)) => run_command(program, rest),
        None => run_demo(),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("sandbox_child: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `sandbox_child PROGRAM ARGS...`: runs it under the filter, passing its output through.
fn run_command(program: &str, args: &[String]) -> Result<ExitCode, String> {
    let filter = sandbox_profile().compile().map_err(|error| error.to_string())?;
    let output = run_sandboxed(Command::new(program).args(args), &filter)
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    println!("sandbox_child: {program} exited with {}", output.status);
    Ok(if output.status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The mkdir demonstration, in a fresh directory under the system's temporary directory.
fn run_demo() -> Result<ExitCode, String> {
    let scratch = std::env::temp_dir().join(format!("crabcan-seccomp-example-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|error| format!("cannot create {}: {error}", scratch.display()))?;
    let demo = demo(&scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let demo = demo?;
    println!("profile:\n{}\n", sandbox_profile());
    println!(
        "under the filter: mkdir exited with {}: {}",
        demo.sandboxed.status,
        String::from_utf8_lossy(&demo.sandboxed.stderr).trim()
    );
    println!(
        "without the filter: mkdir created the directory: {}",
        demo.created_without_filter
    );
    let denied = !demo.sandboxed.status.success() && !demo.created_under_filter;
    Ok(if denied && demo.created_without_filter {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
