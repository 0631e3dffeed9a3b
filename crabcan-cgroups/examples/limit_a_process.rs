//! Limits a process with crabcan-cgroups alone: creates a cgroup with a memory and a pids
//! limit, runs `/bin/sh -c 'read go && exec sleep 0.2'` in it, reads its stats and removes it,
//! then its parent folder and state directory.
//!
//! Needs root (cgroups are root's): `sudo cargo run -p crabcan-cgroups --example limit_a_process`.
//! `tests/example.rs` runs this same code and checks it leaves nothing behind.

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, ExitStatus, Stdio};

use crabcan_cgroups::{CgroupHost, Limits, MissingController, Stats};

/// The folder, in each hierarchy, the example's cgroup is made in.
pub const PARENT: &str = "crabcan-cgroups-example";
/// Where the example keeps its cgroup's lease.
pub const STATE_DIR: &str = "/run/crabcan-cgroups-example";

/// What the example saw.
pub struct Outcome {
    /// The cgroup's directories (one per hierarchy on cgroup v1).
    pub paths: Vec<PathBuf>,
    /// The cgroup's stats while the process ran.
    pub running: Stats,
    /// The cgroup's stats once it had exited.
    pub exited: Stats,
    /// How the process ended.
    pub status: ExitStatus,
}

fn main() -> ExitCode {
    match run() {
        Ok(outcome) => {
            println!("cgroup: {:?}", outcome.paths);
            println!("while running: {}", outcome.running);
            println!("after exit ({}): {}", outcome.status, outcome.exited);
            println!("removed");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("limit_a_process: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Creates the cgroup, runs the process in it and removes the cgroup.
pub fn run() -> Result<Outcome, Box<dyn Error>> {
    let host = CgroupHost::detect()?.with_parent(PARENT)?.with_state_dir(STATE_DIR);
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(16),
        ..Limits::unlimited()
    };
    let cgroup = host.create("limit-a-process", &limits, MissingController::Error)?;
    // The shell waits for "go" so that it is in the cgroup before it runs anything.
    let mut child = Command::new("/bin/sh")
        .args(["-c", "read go && exec sleep 0.2"])
        .stdin(Stdio::piped())
        .spawn()?;
    if let Err(error) = cgroup.add_task(child.id() as i32) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(error.into());
    }
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(b"go\n")?; // on error, dropping `cgroup` kills the child and removes it
    }
    let running = cgroup.stats();
    let status = child.wait()?;
    let exited = cgroup.stats();
    let paths = cgroup.paths();
    cgroup.remove()?;
    // The parent folder and the state directory stay for the next cgroup; this was the last.
    host.remove_empty_folders();
    Ok(Outcome {
        paths,
        running,
        exited,
        status,
    })
}
