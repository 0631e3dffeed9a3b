//! Compiles crabcan's shipped seccomp profiles to BPF once, at build time, so `crabcan` never
//! pays libseccomp's compile time (about 3 ms for the default profile) when it starts a
//! container. The bytes are embedded by `src/seccomp.rs`; a unit test checks they equal a fresh
//! compile, so they cannot drift from the rule tables.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in ["default", "tutorial"] {
        let profile = crabcan_seccomp::Profile::by_name(name).unwrap_or_else(|| panic!("no shipped profile {name}"));
        let filter = profile
            .compile()
            .unwrap_or_else(|e| panic!("cannot compile the {name} seccomp profile: {e}"));
        let path = out.join(format!("{name}.bpf"));
        std::fs::write(&path, filter.to_bytes()).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
