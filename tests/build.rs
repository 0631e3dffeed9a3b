//! Builds `crabcan-probe`, a static C program the seccomp tests run inside containers, and
//! tells the tests where it is (CRABCAN_PROBE_BUILT). Static, so it runs in a busybox rootfs.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "probe/probe.c";
    println!("cargo:rerun-if-changed={source}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("crabcan-probe");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&compiler)
        .args(["-static", "-O2", "-pthread", "-o"])
        .arg(&out)
        .arg(source)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            panic!("building {source} with `{compiler} -static` failed ({status}); install gcc and libc6-dev")
        }
        Err(error) => panic!("cannot run `{compiler}` to build {source}: {error}; install gcc and libc6-dev"),
    }
    println!("cargo:rustc-env=CRABCAN_PROBE_BUILT={}", out.display());
}
