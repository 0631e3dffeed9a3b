//! Compiles crabcan's shipped seccomp profiles to BPF once, at build time, so `crabcan` never
//! pays libseccomp's compile time (about 3 ms for the default profile) when it starts a
//! container. One `NAME.bpf` per [`ShippedProfile`], and `shipped_bpf.rs`, the table of them
//! that `src/seccomp.rs` includes; a unit test checks the bytes equal a fresh compile, so they
//! cannot drift from the rule tables.
//!
//! It also links `crabcan` as a static PIE when it can (see [`link_static_pie`]): no dynamic
//! loader, no shared library to map and relocate at each start, which is half of crabcan's
//! user-space instructions before `main` (BENCHMARKS.md's notes).

use std::path::{Path, PathBuf};

use crabcan_seccomp::ShippedProfile;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    check_target_is_host();
    link_static_pie();
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

/// The static archives a static PIE needs in place of the shared libraries rustc asks for
/// (`-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc`), as the C compiler finds them.
const STATIC_STUBS: &[(&str, &[&str])] = &[
    ("libc.so", &["libc.a"]),
    ("libm.so", &["libm.a"]),
    ("librt.so", &["librt.a"]),
    ("libutil.so", &["libutil.a"]),
    ("libpthread.so", &["libpthread.a"]),
    ("libdl.so", &["libdl.a"]),
    ("libgcc_s.so", &["libgcc_eh.a", "libgcc.a"]),
];

/// Links crabcan (and its unit-test binary) with `-static-pie` on glibc targets, unless
/// `CRABCAN_LINK=dynamic`, libseccomp is linked dynamically, or a static archive is missing
/// (then a build warning says so and the link stays dynamic).
///
/// A plain `cargo build`/`cargo install` cannot set `-C target-feature=+crt-static` for one
/// crate (without `--target` it would reach the proc-macros, which cannot be static), and
/// `-static-pie` alone leaves rustc's `-Bdynamic -lgcc_s ... -lc` asking for shared
/// libraries, which a static PIE cannot load. So this writes a linker script named after each
/// of those shared libraries (`libc.so` saying `INPUT(/usr/lib/.../libc.a)`), in a folder
/// searched before the system's: the linker resolves each `-l` to its static archive, the
/// same objects `+crt-static` would link.
fn link_static_pie() {
    println!("cargo:rerun-if-env-changed=CRABCAN_LINK");
    println!("cargo:rerun-if-env-changed=CC");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if os != "linux" || env != "gnu" || features.split(',').any(|f| f == "crt-static") {
        return; // another libc, or already static (xtask's --target +crt-static build)
    }
    let dynamic = |why: &str| {
        println!("cargo:warning=crabcan is linked dynamically ({why}): each start then pays the dynamic loader");
    };
    match std::env::var("CRABCAN_LINK").as_deref() {
        Ok("dynamic") => return,
        Ok("static") | Ok("") | Err(_) => {}
        Ok(other) => panic!("CRABCAN_LINK={other}: expected static or dynamic"),
    }
    if std::env::var("DEP_SECCOMP_STATIC").as_deref() != Ok("1") {
        return dynamic("libseccomp.a was not found, and a static PIE cannot load libseccomp.so");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let stubs = out.join("static-libs");
    if let Err(e) = std::fs::create_dir_all(&stubs) {
        panic!("cannot create {}: {e}", stubs.display());
    }
    for (shared, archives) in STATIC_STUBS {
        let mut paths = Vec::new();
        for archive in *archives {
            match static_archive(archive) {
                Some(path) => paths.push(path),
                None => return dynamic(&format!("{archive} not found: install libc6-dev / glibc-static")),
            }
        }
        let script = format!(
            "INPUT({})\n",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let path = stubs.join(shared);
        std::fs::write(&path, script).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    println!("cargo:rustc-link-search=native={}", stubs.display());
    println!("cargo:rustc-link-arg=-static-pie");
    if glibc_at_least(2, 36) {
        // RELR: the ~16,500 relative relocations of a static PIE as a 5 KiB bitmap instead of
        // a 390 KiB table, which each start would page in (~0.7 MiB less peak RSS). glibc
        // applies RELR from 2.36; an older libc.a would leave them unapplied, so not there.
        println!("cargo:rustc-link-arg=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the build machine's glibc (the target's too: see [`check_target_is_host`]) is at
/// least `major.minor`, as `getconf GNU_LIBC_VERSION` says (`glibc 2.36`); false if unknown.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(output) = std::process::Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

/// Where the C compiler (the linker driver rustc uses) finds `archive`, if it does.
fn static_archive(archive: &str) -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let output = std::process::Command::new(cc)
        .arg(format!("-print-file-name={archive}"))
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    // Not found, cc prints the bare name back.
    (path.is_absolute() && path.is_file()).then_some(path)
}
