//! The static artefacts the VM runs: crabcan and the integration test
//! binaries, built with `+crt-static` for an explicit `--target` so they
//! stay apart from the host's dynamic builds in target/. Test executables
//! are read from cargo's `--message-format=json` output.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::VmError;
use crate::paths;
use crate::util::elf;
use crate::util::process::{describe_status, display, run_checked};

pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Where Debian's libseccomp-dev (and others) put libseccomp.a.
const LIB_DIRS: &[&str] = &["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"];

/// The directory holding libseccomp.a.
fn libseccomp_static_dir() -> Result<&'static str, VmError> {
    LIB_DIRS
        .iter()
        .copied()
        .find(|d| Path::new(d).join("libseccomp.a").is_file())
        .ok_or_else(|| VmError::Build("libseccomp.a not found: apt-get install libseccomp-dev".into()))
}

/// seccomp-sys's build script links libseccomp as a dylib unless
/// LIBSECCOMP_LIB_TYPE=static, and does not rerun when that env var
/// changes. A dylib `-lseccomp` in a `+crt-static` link makes rust-lld
/// emit a broken executable (glibc: "Unexpected reloc type in static
/// binary", SIGSEGV at start), so a stale dylib build-script output under
/// the static target dir is cleaned once.
fn clean_stale_seccomp_sys() -> Result<(), VmError> {
    let build = paths::target_dir().join(STATIC_TARGET).join("release").join("build");
    let stale = std::fs::read_dir(&build)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("seccomp-sys-"))
        .filter_map(|e| std::fs::read_to_string(e.path().join("output")).ok())
        .any(|out| out.contains("rustc-link-lib=dylib=seccomp"));
    if stale {
        eprintln!("xtask: seccomp-sys was built for dynamic libseccomp under {STATIC_TARGET}: cleaning it");
        let mut cmd = Command::new(paths::cargo());
        cmd.args(["clean", "-p", "seccomp-sys", "--release", "--target", STATIC_TARGET])
            .current_dir(paths::workspace_root());
        run_checked(&mut cmd).map_err(VmError::Build)?;
    }
    Ok(())
}

/// A cargo command with static linking for [`STATIC_TARGET`].
fn static_cargo(args: &[&str]) -> Result<Command, VmError> {
    let seccomp_dir = libseccomp_static_dir()?;
    clean_stale_seccomp_sys()?;
    let mut cmd = Command::new(paths::cargo());
    cmd.args(args)
        .args(["--release", "--target", STATIC_TARGET])
        .current_dir(paths::workspace_root());
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !flags.is_empty() {
        flags.push(' ');
    }
    flags.push_str("-C target-feature=+crt-static");
    cmd.env("RUSTFLAGS", flags)
        .env("LIBSECCOMP_LIB_TYPE", "static")
        .env("LIBSECCOMP_LIB_PATH", seccomp_dir);
    Ok(cmd)
}

/// Runs `exe args` on the host: a broken static link dies by a signal
/// before main, which is far clearer to report here than in the VM.
fn smoke_run(exe: &Path, args: &[&str]) -> Result<(), VmError> {
    let status = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| VmError::io("running", exe, e))?;
    if status.code().is_some() {
        Ok(())
    } else {
        Err(VmError::Build(format!(
            "{} {} died ({}): the static link is broken",
            exe.display(),
            args.join(" "),
            describe_status(status)
        )))
    }
}

/// Builds crabcan statically and returns its path.
pub fn build_static_crabcan() -> Result<PathBuf, VmError> {
    let mut cmd = static_cargo(&["build", "-p", "crabcan-cli"])?;
    run_checked(&mut cmd).map_err(VmError::Build)?;
    let bin = paths::target_dir().join(STATIC_TARGET).join("release").join("crabcan");
    ensure_static(&bin)?;
    smoke_run(&bin, &["--help"])?;
    Ok(bin)
}

/// Static test executables and the build-script output dirs of the build
/// (where helpers such as the `crabcan-probe` live).
#[derive(Debug, Default)]
pub struct StaticTests {
    pub executables: Vec<PathBuf>,
    pub out_dirs: Vec<PathBuf>,
}

impl StaticTests {
    /// A file called `name` in one of the build-script output dirs.
    pub fn helper(&self, name: &str) -> Option<PathBuf> {
        self.out_dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
    }
}

/// Builds the test binaries of `package` (optionally one `--test`)
/// statically.
pub fn build_static_tests(package: &str, test: Option<&str>) -> Result<StaticTests, VmError> {
    let mut args = vec![
        "test",
        "--no-run",
        "-p",
        package,
        "--message-format=json-render-diagnostics",
    ];
    if let Some(test) = test {
        args.extend(["--test", test]);
    }
    let mut cmd = static_cargo(&args)?;
    cmd.stdout(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| VmError::Build(format!("cannot run `{}`: {e}", display(&cmd))))?;
    let stdout = child.stdout.take().expect("piped");
    let mut built = StaticTests::default();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(exe) = test_executable(&line) {
            built.executables.push(exe);
        } else if let Some(dir) = build_script_out_dir(&line) {
            built.out_dirs.push(dir);
        }
    }
    let status = child
        .wait()
        .map_err(|e| VmError::Build(format!("waiting for `{}`: {e}", display(&cmd))))?;
    if !status.success() {
        return Err(VmError::Build(format!(
            "`{}` failed ({})",
            display(&cmd),
            describe_status(status)
        )));
    }
    for exe in &built.executables {
        ensure_static(exe)?;
        smoke_run(exe, &["--list"])?;
    }
    Ok(built)
}

/// The `out_dir` of a `build-script-executed` message.
pub fn build_script_out_dir(json_line: &str) -> Option<PathBuf> {
    let msg: serde_json::Value = serde_json::from_str(json_line).ok()?;
    if msg.get("reason")?.as_str()? != "build-script-executed" {
        return None;
    }
    msg.get("out_dir")?.as_str().map(PathBuf::from)
}

/// The executable of a `compiler-artifact` message for a test target.
pub fn test_executable(json_line: &str) -> Option<PathBuf> {
    let msg: serde_json::Value = serde_json::from_str(json_line).ok()?;
    if msg.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    if !msg.get("profile")?.get("test")?.as_bool()? {
        return None;
    }
    msg.get("executable")?.as_str().map(PathBuf::from)
}

/// Errors unless `path` is a static executable.
pub fn ensure_static(path: &Path) -> Result<(), VmError> {
    match elf::is_static_elf(path) {
        Ok(true) => Ok(()),
        Ok(false) => Err(VmError::Build(format!(
            "{} is dynamically linked; the VM needs static binaries (is libseccomp-dev / libc6-dev installed for static linking?)",
            path.display()
        ))),
        Err(e) => Err(VmError::io("reading ELF header of", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_executables_in_cargo_json() {
        let test = r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/deps/isolation-abc"}"#;
        let lib = r#"{"reason":"compiler-artifact","profile":{"test":false},"executable":null}"#;
        let other = r#"{"reason":"build-finished","success":true}"#;
        assert_eq!(test_executable(test), Some(PathBuf::from("/t/deps/isolation-abc")));
        assert_eq!(test_executable(lib), None);
        assert_eq!(test_executable(other), None);
        assert_eq!(test_executable("not json"), None);
        let bs = r#"{"reason":"build-script-executed","package_id":"x","out_dir":"/t/build/x-1/out"}"#;
        assert_eq!(build_script_out_dir(bs), Some(PathBuf::from("/t/build/x-1/out")));
        assert_eq!(build_script_out_dir(test), None);
    }
}
