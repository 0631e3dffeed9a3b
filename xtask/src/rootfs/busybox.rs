//! The offline rootfs: the host's static busybox plus the directory layout
//! and /etc files of an Alpine minirootfs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use super::{install, ownership, RootfsError, Stamp};
use crate::util::elf;

/// Where to look when neither `--busybox` nor `CRABCAN_BUSYBOX` says.
const DEFAULT_BUSYBOX: &str = "/bin/busybox";

/// Directories of the layout, with their modes.
const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("sbin", 0o755),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("usr/lib", 0o755),
    ("usr/local", 0o755),
    ("usr/local/bin", 0o755),
    ("usr/share", 0o755),
    ("lib", 0o755),
    ("etc", 0o755),
    ("root", 0o700),
    ("home", 0o755),
    ("tmp", 0o1777),
    ("proc", 0o555),
    ("dev", 0o755),
    ("sys", 0o555),
    ("run", 0o755),
    ("mnt", 0o755),
    ("opt", 0o755),
    ("srv", 0o755),
    ("media", 0o755),
    ("var", 0o755),
    ("var/tmp", 0o1777),
    ("var/log", 0o755),
    ("var/cache", 0o755),
    ("var/lib", 0o755),
    ("var/empty", 0o555),
];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n";
const GROUP: &str = "root:x:0:root\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost\n";
const PROFILE: &str =
    "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\h:\\w\\$ '\n";

/// Finds the static busybox to use: `$CRABCAN_BUSYBOX`, else /bin/busybox.
pub fn find_static_busybox() -> Result<PathBuf, RootfsError> {
    let path = std::env::var_os("CRABCAN_BUSYBOX")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BUSYBOX));
    check_static_busybox(&path)
}

/// Checks that `path` exists and is a static executable.
pub fn check_static_busybox(path: &Path) -> Result<PathBuf, RootfsError> {
    if !path.exists() {
        return Err(RootfsError::BusyboxMissing(path.to_path_buf()));
    }
    match elf::is_static_elf(path) {
        Ok(true) => Ok(path.to_path_buf()),
        Ok(false) => Err(RootfsError::BusyboxNotStatic(path.to_path_buf())),
        Err(e) => Err(RootfsError::io("reading ELF header of", path, e)),
    }
}

/// busybox's version line, e.g. "BusyBox v1.35.0 (Debian 1:1.35.0-4+b1)".
pub fn busybox_version(busybox: &Path) -> Result<String, RootfsError> {
    let out = Command::new(busybox)
        .output()
        .map_err(|e| RootfsError::io("running", busybox, e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("").trim();
    let line = line.strip_suffix(" multi-call binary.").unwrap_or(line);
    Ok(line.to_string())
}

/// The applets' install paths, relative (`bin/sh`, `usr/bin/awk`, ...), from
/// `busybox --list-full` (or `--list`, all in bin/, for old busyboxes).
pub fn applet_paths(busybox: &Path) -> Result<Vec<PathBuf>, RootfsError> {
    let list = |arg: &str| -> Result<String, RootfsError> {
        let out = Command::new(busybox)
            .arg(arg)
            .output()
            .map_err(|e| RootfsError::io("running", busybox, e))?;
        if out.status.success() && !out.stdout.is_empty() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(RootfsError::Busybox {
                path: busybox.to_path_buf(),
                msg: format!("`busybox {arg}` failed"),
            })
        }
    };
    let paths: Vec<PathBuf> = match list("--list-full") {
        Ok(text) => text.lines().map(PathBuf::from).collect(),
        Err(_) => list("--list")?
            .lines()
            .map(|name| Path::new("bin").join(name))
            .collect(),
    };
    let safe = |p: &PathBuf| !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    Ok(paths
        .into_iter()
        .filter(safe)
        .filter(|p| p != Path::new("bin/busybox"))
        .filter(|p| p.components().count() > 1) // e.g. "linuxrc": not in Alpine
        .collect())
}

/// Builds a busybox rootfs at `out` (replacing what is there) from the
/// static `busybox`, owned by `id_offset` (0 = root), and stamps it.
pub fn build_busybox_rootfs(out: &Path, busybox: &Path, id_offset: u32) -> Result<(), RootfsError> {
    let busybox = check_static_busybox(busybox)?;
    let version = busybox_version(&busybox)?;
    let staging = install::staging_dir(out)?;
    let root = staging.path();
    make_layout(root)?;
    install_busybox(root, &busybox)?;
    write_etc(root, &version)?;
    set_mode(root, 0o755)?;
    ownership::shift_tree(root, id_offset)?;
    let stamp = Stamp {
        kind: "busybox".into(),
        version,
        id_offset,
        source: busybox.display().to_string(),
    };
    install::commit(staging, out, &stamp)
}

fn make_layout(root: &Path) -> Result<(), RootfsError> {
    for (dir, mode) in DIRS {
        let path = root.join(dir);
        std::fs::create_dir(&path).map_err(|e| RootfsError::io("creating directory", &path, e))?;
        set_mode(&path, *mode)?;
    }
    Ok(())
}

fn install_busybox(root: &Path, busybox: &Path) -> Result<(), RootfsError> {
    let dest = root.join("bin/busybox");
    std::fs::copy(busybox, &dest).map_err(|e| RootfsError::io("copying busybox to", &dest, e))?;
    set_mode(&dest, 0o755)?;
    for applet in applet_paths(busybox)? {
        let link = root.join(&applet);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(|e| RootfsError::io("creating directory", parent, e))?;
        }
        if link.symlink_metadata().is_ok() {
            continue;
        }
        std::os::unix::fs::symlink("/bin/busybox", &link)
            .map_err(|e| RootfsError::io("creating applet link", &link, e))?;
    }
    Ok(())
}

fn write_etc(root: &Path, busybox_version: &str) -> Result<(), RootfsError> {
    let os_release = format!(
        "NAME=\"crabcan busybox rootfs\"\nID=crabcan-busybox\nPRETTY_NAME=\"crabcan busybox rootfs ({busybox_version})\"\nVERSION_ID=1\n# Built by `cargo xtask rootfs` from the host's static busybox because no\n# Alpine minirootfs was available (offline). Same layout as Alpine's.\n"
    );
    let files: [(&str, &str, u32); 7] = [
        ("etc/passwd", PASSWD, 0o644),
        ("etc/group", GROUP, 0o644),
        ("etc/hostname", "crabcan\n", 0o644),
        ("etc/hosts", HOSTS, 0o644),
        ("etc/profile", PROFILE, 0o644),
        ("etc/shells", "/bin/sh\n/bin/ash\n", 0o644),
        ("etc/os-release", &os_release, 0o644),
    ];
    for (name, text, mode) in files {
        let path = root.join(name);
        std::fs::write(&path, text).map_err(|e| RootfsError::io("writing", &path, e))?;
        set_mode(&path, mode)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), RootfsError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| RootfsError::io("setting mode of", path, e))
}
