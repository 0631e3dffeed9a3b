//! Runs one command in a container with crabcan-core alone: `run_container ROOTFS CMD ARGS...`
//! (as root). Prints what the container reports and exits with the command's status.
//!
//! ```sh
//! cargo run -p crabcan-core --example run_container -- ./rootfs /bin/sh -c 'id; hostname'
//! ```

use std::process::ExitCode;

use crabcan_core::{ContainerConfig, Limits};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(rootfs), command) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: run_container ROOTFS CMD [ARGS...]");
        return ExitCode::from(2);
    };
    if command.is_empty() {
        eprintln!("usage: run_container ROOTFS CMD [ARGS...]");
        return ExitCode::from(2);
    }
    let mut config = ContainerConfig::new(rootfs, command);
    config.hostname = "example".into();
    config.limits = Some(Limits {
        memory: Some(128 << 20),
        pids: Some(32),
        ..Limits::default()
    });
    // The three states, spelled out (crabcan_core::run does the same in one call).
    let result = crabcan_core::create(config)
        .and_then(|created| created.start())
        .and_then(|running| running.wait());
    match result {
        Ok(report) => {
            eprintln!("run_container: the command ended: {:?}", report.status);
            ExitCode::from(report.exit_code().clamp(0, 255) as u8)
        }
        Err(error) => {
            eprintln!("run_container: {error}");
            ExitCode::from(error.exit_code().clamp(0, 255) as u8)
        }
    }
}
