//! Compiles crabcan's shipped seccomp profiles to BPF once, at build time, so `crabcan` never
//! pays libseccomp's compile time (about 3 ms for the default profile) when it starts a
//! container. One `NAME.bpf` per [`ShippedProfile`], and `shipped_bpf.rs`, the table of them
//! that `src/seccomp.rs` includes; a unit test checks the bytes equal a fresh compile, so they
//! cannot drift from the rule tables.

use std::path::{Path, PathBuf};

use crabcan_seccomp::ShippedProfile;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    check_target_is_host();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut table = String::from("/// Each shipped profile with its BPF program, compiled by build.rs.\n");
    table.push_str("const SHIPPED_BPF: &[(ShippedProfile, &[u8])] = &[\n");
    for shipped in ShippedProfile::ALL {
        let file = write_filter(&out, shipped);
        table.push_str(&format!(
            "    (ShippedProfile::{shipped:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}\"))),\n"
        ));
    }
    table.push_str("];\n");
    let path = out.join("shipped_bpf.rs");
    std::fs::write(&path, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The filters are compiled here, by crabcan-seccomp built for the host: a cross build would
/// embed the host's syscall numbers, and the target's kernel would kill every container.
fn check_target_is_host() {
    let target = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let host = crabcan_seccomp::Arch::NATIVE;
    if target != host.name() {
        panic!(
            "crabcan-cli compiles its seccomp filters at build time for the build machine ({host}), \
             but the target is {target}: build crabcan on a {target} machine"
        );
    }
}

/// Compiles one shipped profile into `OUT_DIR/NAME.bpf`; returns the file name.
fn write_filter(out: &Path, shipped: ShippedProfile) -> String {
    let filter = shipped
        .profile()
        .compile()
        .unwrap_or_else(|e| panic!("cannot compile the {shipped} seccomp profile: {e}"));
    let file = format!("{}.bpf", shipped.name());
    let path = out.join(&file);
    std::fs::write(&path, filter.to_bytes()).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    file
}
