//! `cargo xtask run`: build crabcan (release), ensure the rootfs, and exec
//! `crabcan --mount <rootfs> -- CMD` (default /bin/sh), passing its exit
//! status through.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use super::CmdError;
use crate::paths;
use crate::rootfs::{ensure_rootfs, RootfsOptions};
use crate::util::process::run_checked;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Rootfs to run in (built if missing) [default: target/rootfs]
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Command to run in the container [default: /bin/sh]
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(args: &RunArgs) -> Result<i32, CmdError> {
    crate::util::packages::ensure(&["busybox-static", "libseccomp-dev"])?;
    let mut build = Command::new(paths::cargo());
    build
        .args(["build", "--release", "-p", "crabcan-cli"])
        .current_dir(paths::workspace_root());
    run_checked(&mut build)?;
    let rootfs = args.rootfs.clone().unwrap_or_else(paths::default_rootfs);
    ensure_rootfs(&rootfs, &RootfsOptions::default())?;
    let crabcan = paths::target_dir().join("release").join("crabcan");
    let command = if args.command.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        args.command.clone()
    };
    let err = Command::new(&crabcan)
        .arg("--mount")
        .arg(&rootfs)
        .arg("--")
        .args(&command)
        .exec();
    Err(format!("cannot exec {}: {err}", crabcan.display()).into())
}
