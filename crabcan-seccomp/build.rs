//! Links libseccomp into crabcan-seccomp: statically when `libseccomp.a` is found (Debian's
//! libseccomp-dev and Fedora's libseccomp-static ship it), so a binary built with a plain
//! `cargo build --release` has no libseccomp.so for the dynamic loader to find and relocate
//! at every start (about 0.3-0.5 ms of each container's start-up; see BENCHMARKS.md); else
//! dynamically, with a build warning saying what that costs.
//!
//! `LIBSECCOMP_LIB_PATH=DIR` names the folder of libseccomp.a (or .so);
//! `LIBSECCOMP_LIB_TYPE=dylib` forces the dynamic link, `static` makes a missing .a an error.

use std::path::{Path, PathBuf};

/// Where distributions put libseccomp (multiarch first).
const LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib64",
    "/usr/local/lib",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LIB_PATH");
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LIB_TYPE");
    let wanted = std::env::var("LIBSECCOMP_LIB_TYPE").unwrap_or_default();
    let dirs: Vec<PathBuf> = match std::env::var_os("LIBSECCOMP_LIB_PATH") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => library_dirs(),
    };
    for dir in &dirs {
        println!("cargo:rerun-if-changed={}", dir.join("libseccomp.a").display());
    }
    let static_dir = dirs.iter().find(|d| d.join("libseccomp.a").is_file());
    match (wanted.as_str(), static_dir) {
        ("dylib", _) => link_dynamic(&dirs),
        ("" | "static", Some(dir)) => link_static(dir),
        ("static", None) => panic!(
            "LIBSECCOMP_LIB_TYPE=static but no libseccomp.a in {}: install libseccomp-dev \
             (Debian) or libseccomp-static (Fedora), or set LIBSECCOMP_LIB_PATH",
            display(&dirs)
        ),
        ("", None) => {
            println!(
                "cargo:warning=libseccomp.a not found in {}: linking libseccomp.so, which every \
                 crabcan start then loads and relocates (install libseccomp-dev or \
                 libseccomp-static for the faster static link)",
                display(&dirs)
            );
            link_dynamic(&dirs);
        }
        (other, _) => panic!("LIBSECCOMP_LIB_TYPE={other}: expected static or dylib"),
    }
}

/// The library folders for the target's architecture, then the generic ones.
fn library_dirs() -> Vec<PathBuf> {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    LIB_DIRS
        .iter()
        .filter(|d| !d.contains("-linux-gnu") || d.contains(&format!("/{arch}-")))
        .map(PathBuf::from)
        .collect()
}

/// Links a copy of `dir/libseccomp.a` kept in OUT_DIR, so no system folder joins the link's
/// search path (crabcan-cli's build script puts its static libc stubs first; see there).
/// Tells dependents' build scripts (`DEP_SECCOMP_STATIC=1`) that libseccomp is static.
fn link_static(dir: &Path) {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let copy = out.join("libseccomp.a");
    std::fs::copy(dir.join("libseccomp.a"), &copy).unwrap_or_else(|e| {
        panic!(
            "cannot copy {} to {}: {e}",
            dir.join("libseccomp.a").display(),
            copy.display()
        )
    });
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=seccomp");
    println!("cargo:static=1");
}

fn link_dynamic(dirs: &[PathBuf]) {
    if let Some(dir) = dirs.iter().find(|d| has_shared(d)) {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    println!("cargo:rustc-link-lib=dylib=seccomp");
    println!("cargo:static=0");
}

fn has_shared(dir: &Path) -> bool {
    dir.join("libseccomp.so").exists()
}

fn display(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
