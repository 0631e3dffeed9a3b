//! The contenders and their command lines: crabcan (default isolation),
//! crabcan's OCI mode, crun and runc (OCI "default spec" and "full"
//! bundles), bubblewrap, and `unshare ... chroot` as the floor; the four
//! calls an engine makes of an OCI runtime. Also finding them on PATH,
//! their versions and the apt package that provides each.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use super::measure::Lifecycle;
use crate::util::process::output_checked;

/// Which OCI bundle an OCI runtime's run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `crun spec`'s default: pid, net, ipc, uts, mount namespaces only.
    Default,
    /// Comparable to crabcan's default isolation (see `oci.rs`).
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Crabcan,
    /// `crabcan run --bundle B ID`, crabcan's OCI mode.
    CrabcanOci(Spec),
    Crun(Spec),
    Runc(Spec),
    Bwrap,
    Unshare,
}

/// The order of the interleaved runs and of the tables.
pub const ALL: [Runtime; 9] = [
    Runtime::Crabcan,
    Runtime::CrabcanOci(Spec::Default),
    Runtime::CrabcanOci(Spec::Full),
    Runtime::Crun(Spec::Default),
    Runtime::Crun(Spec::Full),
    Runtime::Runc(Spec::Default),
    Runtime::Runc(Spec::Full),
    Runtime::Bwrap,
    Runtime::Unshare,
];

/// The OCI runtimes, for the create/start/wait/delete section.
pub const OCI: [Runtime; 6] = [
    Runtime::CrabcanOci(Spec::Default),
    Runtime::Crun(Spec::Default),
    Runtime::Runc(Spec::Default),
    Runtime::CrabcanOci(Spec::Full),
    Runtime::Crun(Spec::Full),
    Runtime::Runc(Spec::Full),
];

/// Everything a command line needs.
#[derive(Debug, Clone)]
pub struct Env {
    pub crabcan: PathBuf,
    pub rootfs: PathBuf,
    pub bundle_default: PathBuf,
    pub bundle_full: PathBuf,
    /// crabcan's OCI state folder (`--root`), in the bench's scratch.
    pub crabcan_root: PathBuf,
    /// Where the create/start/wait/delete runs' `--pid-file`s go.
    pub pid_dir: PathBuf,
    /// Container ids are `<prefix>-<n>`, unique per run.
    pub id_prefix: String,
}

impl Env {
    fn bundle(&self, spec: Spec) -> &Path {
        match spec {
            Spec::Default => &self.bundle_default,
            Spec::Full => &self.bundle_full,
        }
    }

    fn next_id(&self) -> String {
        format!("{}-{}", self.id_prefix, NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Runtime {
    pub fn label(self) -> &'static str {
        match self {
            Runtime::Crabcan => "crabcan",
            Runtime::CrabcanOci(Spec::Default) => "crabcan OCI (default spec)",
            Runtime::CrabcanOci(Spec::Full) => "crabcan OCI (full)",
            Runtime::Crun(Spec::Default) => "crun (default spec)",
            Runtime::Crun(Spec::Full) => "crun (full)",
            Runtime::Runc(Spec::Default) => "runc (default spec)",
            Runtime::Runc(Spec::Full) => "runc (full)",
            Runtime::Bwrap => "bwrap",
            Runtime::Unshare => "unshare+chroot (floor)",
        }
    }

    /// The executable looked up on PATH (crabcan is the built binary).
    pub fn program(self) -> &'static str {
        match self {
            Runtime::Crabcan | Runtime::CrabcanOci(_) => "crabcan",
            Runtime::Crun(_) => "crun",
            Runtime::Runc(_) => "runc",
            Runtime::Bwrap => "bwrap",
            Runtime::Unshare => "unshare",
        }
    }

    /// The Debian package that provides [`Runtime::program`].
    pub fn package(self) -> &'static str {
        match self {
            Runtime::Crabcan | Runtime::CrabcanOci(_) => "(built from this workspace)",
            Runtime::Crun(_) => "crun",
            Runtime::Runc(_) => "runc",
            Runtime::Bwrap => "bubblewrap",
            Runtime::Unshare => "util-linux coreutils",
        }
    }

    /// crabcan, in either mode.
    pub fn is_crabcan(self) -> bool {
        matches!(self, Runtime::Crabcan | Runtime::CrabcanOci(_))
    }

    /// True if its programs are on PATH (the floor also needs `chroot`).
    pub fn installed(self) -> bool {
        let chroot_ok = self != Runtime::Unshare || find_on_path("chroot").is_some();
        chroot_ok && find_on_path(self.program()).is_some()
    }

    /// crun 1.8 must run in the v1-only mount namespace on hybrid hosts.
    pub fn needs_v1_only_namespace(self) -> bool {
        matches!(self, Runtime::Crun(_))
    }

    /// The command that runs `/bin/true` in a fresh container.
    pub fn command(self, env: &Env) -> Command {
        match self {
            Runtime::Crabcan => crabcan(env, &[]),
            Runtime::CrabcanOci(spec) | Runtime::Crun(spec) | Runtime::Runc(spec) => {
                let mut cmd = self.oci_command(env);
                cmd.arg("run").arg("--bundle").arg(env.bundle(spec)).arg(env.next_id());
                cmd
            }
            Runtime::Bwrap => {
                let mut cmd = Command::new("bwrap");
                cmd.args(["--unshare-all", "--bind"]).arg(&env.rootfs).args([
                    "/",
                    "--proc",
                    "/proc",
                    "--dev",
                    "/dev",
                    "/bin/true",
                ]);
                cmd
            }
            Runtime::Unshare => {
                let mut cmd = Command::new("unshare");
                cmd.args([
                    "--user",
                    "--map-root-user",
                    "--mount",
                    "--pid",
                    "--fork",
                    "--uts",
                    "--ipc",
                    "--net",
                    "--cgroup",
                    "chroot",
                ])
                .arg(&env.rootfs)
                .arg("/bin/true");
                cmd
            }
        }
    }
}

impl Runtime {
    /// The OCI runtime's program with its global options: crabcan's OCI
    /// mode gets its own `--root` (crun and runc keep their default ones,
    /// which the leak check knows).
    fn oci_command(self, env: &Env) -> Command {
        match self {
            Runtime::CrabcanOci(_) => {
                let mut cmd = Command::new(&env.crabcan);
                cmd.arg("--root").arg(&env.crabcan_root);
                cmd
            }
            _ => Command::new(self.program()),
        }
    }

    /// The four calls an engine makes (create, start, wait, delete) on a
    /// fresh id; `None` for a runtime without an OCI command line.
    pub fn lifecycle(self, env: &Env) -> Option<Lifecycle> {
        let (Runtime::CrabcanOci(spec) | Runtime::Crun(spec) | Runtime::Runc(spec)) = self else {
            return None;
        };
        let id = env.next_id();
        let pid_file = env.pid_dir.join(format!("{id}.pid"));
        let call = |args: &[&str]| {
            let mut cmd = self.oci_command(env);
            cmd.args(args);
            cmd
        };
        let mut create = call(&["create", "--bundle"]);
        create.arg(env.bundle(spec)).arg("--pid-file").arg(&pid_file).arg(&id);
        Some(Lifecycle {
            create,
            start: call(&["start", &id]),
            delete: call(&["delete", &id]),
            force_delete: call(&["delete", "--force", &id]),
            pid_file,
        })
    }
}

/// `crabcan --no-tty --mount ROOTFS --hostname ID-PREFIX EXTRA... -- /bin/true`.
pub fn crabcan(env: &Env, extra: &[OsString]) -> Command {
    let mut cmd = Command::new(&env.crabcan);
    cmd.arg("--no-tty").arg("--mount").arg(&env.rootfs);
    // Names the container's cgroup, so the leak check knows it is ours.
    cmd.arg("--hostname").arg(&env.id_prefix);
    cmd.args(extra).args(["--", "/bin/true"]);
    cmd
}

/// `program`'s full path if it is on PATH.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The first line of `program --version`.
pub fn version(program: &Path) -> String {
    match output_checked(Command::new(program).arg("--version")) {
        Ok(out) => out.lines().next().unwrap_or("").trim().to_string(),
        Err(e) => format!("unknown ({e})"),
    }
}
