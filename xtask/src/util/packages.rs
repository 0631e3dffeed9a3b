//! The Debian packages a command needs. Missing ones are installed with apt-get when xtask runs
//! as root on a Debian-like system (so the README's two commands work on a fresh machine), and
//! named in a clear error otherwise. `CRABCAN_NO_APT=1` turns installing off.

use std::process::{Command, Stdio};

/// Makes sure every package in `packages` is installed.
pub fn ensure(packages: &[&str]) -> Result<(), String> {
    if Command::new("dpkg-query")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        return Ok(()); // not Debian: the tools themselves will say what is missing
    }
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || std::env::var_os("CRABCAN_NO_APT").is_some() {
        return Err(format!(
            "missing Debian packages: {list}; install them with `apt-get install -y {list}`"
        ));
    }
    eprintln!("xtask: installing {list} (apt-get)");
    let update = Command::new("apt-get").args(["update", "-qq"]).status();
    if !update.is_ok_and(|s| s.success()) {
        return Err(format!("apt-get update failed; install {list} by hand"));
    }
    let install = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    match install {
        Ok(status) if status.success() => Ok(()),
        _ => Err(format!("apt-get install {list} failed; install them by hand")),
    }
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
}
