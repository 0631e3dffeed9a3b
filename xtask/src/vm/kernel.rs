//! The guest kernel: `--kernel`, `$CRABCAN_VM_KERNEL`, the host's
//! `/boot/vmlinuz-*`, or Debian's `linux-image-amd64` fetched with
//! `apt-get download` and extracted under `<cache>/kernel/`. Checks its
//! config has what crabcan needs built in (=y: no modules in the initramfs).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::VmError;
use crate::util::process::{display, output_checked};

/// Options the integration tests need, all built in.
pub const REQUIRED_CONFIG: &[&str] = &[
    "CONFIG_BLK_DEV_INITRD",
    "CONFIG_RD_GZIP",
    "CONFIG_CGROUPS",
    "CONFIG_MEMCG",
    "CONFIG_CGROUP_PIDS",
    "CONFIG_CGROUP_SCHED",
    "CONFIG_NAMESPACES",
    "CONFIG_USER_NS",
    "CONFIG_PID_NS",
    "CONFIG_NET_NS",
    "CONFIG_UTS_NS",
    "CONFIG_IPC_NS",
    "CONFIG_DEVTMPFS",
    "CONFIG_UNIX98_PTYS",
    "CONFIG_TMPFS",
    "CONFIG_PROC_FS",
    "CONFIG_SYSFS",
    "CONFIG_SECCOMP",
    "CONFIG_SECCOMP_FILTER",
    "CONFIG_SERIAL_8250",
    "CONFIG_SERIAL_8250_CONSOLE",
];

/// A kernel image, where it came from and its config (if known).
#[derive(Debug, Clone)]
pub struct Kernel {
    pub image: PathBuf,
    pub config: Option<PathBuf>,
    pub origin: String,
}

/// Finds a kernel (see the module doc) and checks its config.
pub fn find_kernel(explicit: Option<&Path>, cache: &Path) -> Result<Kernel, VmError> {
    let kernel = locate(explicit, cache)?;
    check_config(&kernel)?;
    Ok(kernel)
}

fn locate(explicit: Option<&Path>, cache: &Path) -> Result<Kernel, VmError> {
    if let Some(path) = explicit {
        return given(path, "--kernel");
    }
    if let Some(path) = std::env::var_os("CRABCAN_VM_KERNEL").filter(|v| !v.is_empty()) {
        return given(Path::new(&path), "CRABCAN_VM_KERNEL");
    }
    if let Some(kernel) = host_kernel() {
        return Ok(kernel);
    }
    debian_kernel(cache)
}

fn given(path: &Path, how: &str) -> Result<Kernel, VmError> {
    if !path.is_file() {
        return Err(VmError::Kernel(format!("{how}: no kernel image at {}", path.display())));
    }
    let config = config_beside(path);
    Ok(Kernel {
        image: path.to_path_buf(),
        config,
        origin: format!("{} (from {how})", path.display()),
    })
}

/// `/boot/config-V` for `/boot/vmlinuz-V`.
fn config_beside(image: &Path) -> Option<PathBuf> {
    let name = image.file_name()?.to_str()?;
    let version = name.strip_prefix("vmlinuz-")?;
    let config = image.with_file_name(format!("config-{version}"));
    config.is_file().then_some(config)
}

fn host_kernel() -> Option<Kernel> {
    let mut images: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .filter(|p| std::fs::File::open(p).is_ok())
        .collect();
    images.sort();
    let image = images.pop()?;
    Some(Kernel {
        config: config_beside(&image),
        origin: format!("{} (the host's)", image.display()),
        image,
    })
}

/// Debian's current kernel package, downloaded once into the cache.
fn debian_kernel(cache: &Path) -> Result<Kernel, VmError> {
    let dir = cache.join("kernel");
    let package = match image_package() {
        Ok(p) => p,
        Err(first) => {
            if let Some(kernel) = cached_kernel(&dir) {
                return Ok(kernel);
            }
            apt_update()?;
            image_package().map_err(|_| first)?
        }
    };
    let unpacked = dir.join(&package);
    if let Some(kernel) = kernel_in(&unpacked, &package) {
        return Ok(kernel);
    }
    std::fs::create_dir_all(&dir).map_err(|e| VmError::io("creating", &dir, e))?;
    let deb = download_deb(&package, &dir)?;
    extract_boot(&deb, &unpacked)?;
    let _ = std::fs::remove_file(&deb);
    kernel_in(&unpacked, &package).ok_or_else(|| VmError::Kernel(format!("{} has no boot/vmlinuz-*", deb.display())))
}

/// `apt-cache depends linux-image-amd64` -> "linux-image-6.1.0-N-amd64".
fn image_package() -> Result<String, VmError> {
    let out = output_checked(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))
        .map_err(|e| VmError::Kernel(format!("{e} (no host kernel in /boot either; pass --kernel)")))?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && !p.starts_with("linux-image-amd64"))
        .map(str::to_string)
        .ok_or_else(|| {
            VmError::Kernel(
                "apt-cache depends linux-image-amd64 names no linux-image-* package (run apt-get update?)".into(),
            )
        })
}

fn apt_update() -> Result<(), VmError> {
    eprintln!("xtask: running apt-get update");
    output_checked(Command::new("apt-get").arg("update").stdout(Stdio::null()))
        .map(|_| ())
        .map_err(VmError::Kernel)
}

fn download_deb(package: &str, dir: &Path) -> Result<PathBuf, VmError> {
    eprintln!("xtask: downloading Debian kernel package {package}");
    let mut cmd = Command::new("apt-get");
    cmd.args(["download", package]).current_dir(dir).stdout(Stdio::null());
    if output_checked(&mut cmd).is_err() {
        apt_update()?;
        output_checked(&mut cmd).map_err(VmError::Kernel)?;
    }
    let deb = std::fs::read_dir(dir)
        .map_err(|e| VmError::io("reading", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        });
    deb.ok_or_else(|| VmError::Kernel(format!("`{}` left no .deb in {}", display(&cmd), dir.display())))
}

/// Extracts only `./boot/` from a .deb (via `dpkg-deb --fsys-tarfile`).
fn extract_boot(deb: &Path, dest: &Path) -> Result<(), VmError> {
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("--fsys-tarfile").arg(deb).stdout(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| VmError::Kernel(format!("cannot run `{}`: {e}", display(&cmd))))?;
    let stdout = child.stdout.take().expect("piped");
    let staging = dest.with_extension("partial");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(staging.join("boot")).map_err(|e| VmError::io("creating", &staging, e))?;
    let result = copy_boot_entries(stdout, &staging);
    let status = child.wait().map_err(|e| VmError::Kernel(format!("dpkg-deb: {e}")))?;
    result?;
    if !status.success() {
        return Err(VmError::Kernel(format!("`{}` failed", display(&cmd))));
    }
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(&staging, dest).map_err(|e| VmError::io("renaming to", dest, e))
}

fn copy_boot_entries(reader: impl Read, staging: &Path) -> Result<(), VmError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| VmError::Kernel(format!("reading kernel package: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| VmError::Kernel(format!("reading kernel package: {e}")))?;
        let path = entry.path().map_err(|e| VmError::Kernel(e.to_string()))?.into_owned();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let in_boot = path.parent().and_then(|p| p.file_name()).is_some_and(|d| d == "boot");
        let wanted = name.starts_with("vmlinuz-") || name.starts_with("config-");
        if in_boot && wanted && entry.header().entry_type().is_file() {
            let dest = staging.join("boot").join(&name);
            let mut file = std::fs::File::create(&dest).map_err(|e| VmError::io("creating", &dest, e))?;
            std::io::copy(&mut entry, &mut file).map_err(|e| VmError::io("writing", &dest, e))?;
        }
    }
    Ok(())
}

fn kernel_in(unpacked: &Path, package: &str) -> Option<Kernel> {
    let boot = unpacked.join("boot");
    let image = std::fs::read_dir(&boot)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })?;
    Some(Kernel {
        config: config_beside(&image),
        origin: format!("Debian package {package} ({})", image.display()),
        image,
    })
}

fn cached_kernel(dir: &Path) -> Option<Kernel> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let last = dirs.pop()?;
    let package = last.file_name()?.to_string_lossy().into_owned();
    kernel_in(&last, &package)
}

/// Errors if the config shows a required option not built in; warns if
/// there is no config to check.
fn check_config(kernel: &Kernel) -> Result<(), VmError> {
    let Some(config) = &kernel.config else {
        eprintln!(
            "xtask: warning: no config-* beside {}: cannot check it has cgroup2, namespaces, seccomp built in",
            kernel.image.display()
        );
        return Ok(());
    };
    let text = std::fs::read_to_string(config).map_err(|e| VmError::io("reading", config, e))?;
    let missing = missing_options(&text);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(VmError::Kernel(format!(
            "{} lacks built-in (=y) {}: use another kernel (--kernel)",
            kernel.image.display(),
            missing.join(", ")
        )))
    }
}

/// The required options not set to `y` in a kernel config text.
pub fn missing_options(config: &str) -> Vec<&'static str> {
    REQUIRED_CONFIG
        .iter()
        .copied()
        .filter(|opt| {
            !config
                .lines()
                .any(|l| l.strip_prefix(opt).is_some_and(|rest| rest == "=y"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_options_are_found() {
        let all: String = REQUIRED_CONFIG.iter().map(|o| format!("{o}=y\n")).collect();
        assert!(missing_options(&all).is_empty());
        let modular = all.replace("CONFIG_USER_NS=y", "CONFIG_USER_NS=m");
        assert_eq!(missing_options(&modular), vec!["CONFIG_USER_NS"]);
    }
}
