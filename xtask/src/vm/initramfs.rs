//! The test VM's initramfs (gzip'd newc cpio): static busybox and its
//! applet links, /init and /init2, the test rootfs at /crabcan/rootfs
//! (owners preserved, so the id offset carries over), crabcan at
//! /crabcan/bin/crabcan and the test binaries in /crabcan/tests/.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::cpio::{CpioWriter, Meta};
use super::{init, VmError};
use crate::rootfs::applet_paths;

/// A static helper the tests run, announced to them by an env var.
#[derive(Debug, Clone)]
pub struct Helper {
    pub path: PathBuf,
    pub name: String,
    pub env: String,
}

/// What goes into the initramfs.
#[derive(Debug, Clone)]
pub struct Contents {
    pub busybox: PathBuf,
    pub rootfs: PathBuf,
    pub crabcan: Option<PathBuf>,
    pub tests: Vec<PathBuf>,
    /// Helper programs for the tests (or the bench), at `/crabcan/bin/<name>`.
    pub helpers: Vec<Helper>,
    /// What `/init2` runs.
    pub guest: Guest,
}

/// What the guest's `/init2` runs after the set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guest {
    /// The test binaries, each with a timeout (seconds).
    Tests { timeout_secs: u64 },
    /// The bench ([`init::INIT2_BENCH`]): warm-up and measured rounds, the container's id map.
    Bench { runs: u32, warmup: u32, id_map: String },
}

const DIRS: &[&str] = &[
    "bin",
    "sbin",
    "usr",
    "usr/bin",
    "usr/sbin",
    "dev",
    "proc",
    "sys",
    "tmp",
    "run",
    "root",
    "etc",
    "newroot",
    "crabcan",
    "crabcan/bin",
    "crabcan/tests",
];

/// Writes the initramfs to `out`.
pub fn build_initramfs(out: &Path, contents: &Contents) -> Result<(), VmError> {
    let file = File::create(out).map_err(|e| VmError::io("creating", out, e))?;
    let gz = GzEncoder::new(BufWriter::new(file), Compression::fast());
    let mut cpio = CpioWriter::new(gz);
    let io = |e| VmError::io("writing", out, e);
    for dir in DIRS {
        let mode = if *dir == "tmp" { 0o1777 } else { 0o755 };
        cpio.dir(dir, Meta::root(mode)).map_err(io)?;
    }
    cpio.char_dev("dev/console", Meta::root(0o600), 5, 1).map_err(io)?;
    cpio.char_dev("dev/null", Meta::root(0o666), 1, 3).map_err(io)?;
    add_busybox(&mut cpio, &contents.busybox, out)?;
    cpio.file("init", Meta::root(0o755), init::INIT.as_bytes())
        .map_err(io)?;
    let env: Vec<(String, String)> = contents
        .helpers
        .iter()
        .map(|h| (h.env.clone(), format!("/crabcan/bin/{}", h.name)))
        .collect();
    let init2 = match &contents.guest {
        Guest::Tests { timeout_secs } => init::init2(*timeout_secs, &env),
        Guest::Bench { runs, warmup, id_map } => init::bench_init2(*runs, *warmup, id_map, &env),
    };
    cpio.file("init2", Meta::root(0o755), init2.as_bytes()).map_err(io)?;
    cpio.file("etc/passwd", Meta::root(0o644), b"root:x:0:0:root:/root:/bin/sh\n")
        .map_err(io)?;
    cpio.file("etc/group", Meta::root(0o644), b"root:x:0:\n").map_err(io)?;
    cpio.file("etc/hostname", Meta::root(0o644), b"crabcan-vm\n")
        .map_err(io)?;
    cpio.file("etc/hosts", Meta::root(0o644), b"127.0.0.1\tlocalhost crabcan-vm\n")
        .map_err(io)?;
    if let Some(crabcan) = &contents.crabcan {
        add_host_file(&mut cpio, crabcan, "crabcan/bin/crabcan", out)?;
    }
    for helper in &contents.helpers {
        add_host_file(&mut cpio, &helper.path, &format!("crabcan/bin/{}", helper.name), out)?;
    }
    for test in &contents.tests {
        let name = test
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        add_host_file(&mut cpio, test, &format!("crabcan/tests/{name}"), out)?;
    }
    add_tree(&mut cpio, &contents.rootfs, "crabcan/rootfs", out)?;
    let gz = cpio.finish().map_err(io)?;
    let mut buf = gz.finish().map_err(io)?;
    buf.flush().map_err(io)
}

type Writer = CpioWriter<GzEncoder<BufWriter<File>>>;

fn add_busybox(cpio: &mut Writer, busybox: &Path, out: &Path) -> Result<(), VmError> {
    add_host_file(cpio, busybox, "bin/busybox", out)?;
    let applets = applet_paths(busybox).map_err(|e| VmError::Other(e.to_string()))?;
    for applet in applets {
        let name = applet.to_string_lossy();
        let top_level_ok = DIRS.iter().any(|d| applet.parent() == Some(Path::new(d)));
        if top_level_ok {
            cpio.symlink(&name, b"/bin/busybox", Meta::root(0o777))
                .map_err(|e| VmError::io("writing", out, e))?;
        }
    }
    Ok(())
}

/// Adds a host file as an executable owned by root.
fn add_host_file(cpio: &mut Writer, src: &Path, name: &str, out: &Path) -> Result<(), VmError> {
    let data = std::fs::read(src).map_err(|e| VmError::io("reading", src, e))?;
    cpio.file(name, Meta::root(0o755), &data)
        .map_err(|e| VmError::io("writing", out, e))
}

/// Adds `src` and everything under it at `name`, with owners and modes as
/// on the host; devices, fifos and sockets are skipped.
fn add_tree(cpio: &mut Writer, src: &Path, name: &str, out: &Path) -> Result<(), VmError> {
    let meta = src.symlink_metadata().map_err(|e| VmError::io("reading", src, e))?;
    let m = Meta {
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime().clamp(0, u32::MAX as i64) as u32,
    };
    let werr = |e| VmError::io("writing", out, e);
    let ft = meta.file_type();
    if ft.is_dir() {
        cpio.dir(name, m).map_err(werr)?;
        let mut children: Vec<_> = std::fs::read_dir(src)
            .map_err(|e| VmError::io("reading", src, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        children.sort();
        for child in children {
            let child_name = format!("{name}/{}", child.to_string_lossy());
            add_tree(cpio, &src.join(&child), &child_name, out)?;
        }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(|e| VmError::io("reading link", src, e))?;
        use std::os::unix::ffi::OsStrExt;
        cpio.symlink(name, target.as_os_str().as_bytes(), m).map_err(werr)?;
    } else if ft.is_file() {
        let data = std::fs::read(src).map_err(|e| VmError::io("reading", src, e))?;
        cpio.file(name, m, &data).map_err(werr)?;
    }
    Ok(())
}
