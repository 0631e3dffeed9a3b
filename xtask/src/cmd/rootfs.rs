//! `cargo xtask rootfs`: build (or refresh) a container root filesystem.

use std::path::PathBuf;

use super::CmdError;
use crate::paths;
use crate::rootfs::{
    ensure_rootfs, RootfsOptions, RootfsSource, DEFAULT_ALPINE_VERSION, DEFAULT_ID_OFFSET, DEFAULT_MIRROR,
};

/// Which rootfs `--distro` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Distro {
    /// Alpine's minirootfs, downloaded (checksum checked) or from --tarball
    Alpine,
    /// A minimal Debian from this machine's apt sources (mmdebstrap, as root)
    Debian,
    /// The host's static busybox with Alpine's layout, no network
    Busybox,
}

#[derive(Debug, clap::Args)]
pub struct RootfsArgs {
    /// Where to put the rootfs [default: target/rootfs]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exactly this kind of rootfs, or an error [default: alpine, else debian, else busybox]
    #[arg(long, value_enum, value_name = "DISTRO", conflicts_with = "offline")]
    pub distro: Option<Distro>,
    /// Debian suite to build [default: the host's VERSION_CODENAME]
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Use this local Alpine minirootfs tarball instead of downloading
    #[arg(long, value_name = "FILE")]
    pub tarball: Option<PathBuf>,
    /// Alpine mirror to download from
    #[arg(long, value_name = "URL", default_value = DEFAULT_MIRROR)]
    pub mirror: String,
    /// Alpine version to download
    #[arg(long, value_name = "V", default_value = DEFAULT_ALPINE_VERSION)]
    pub alpine_version: String,
    /// Don't download: build the busybox rootfs (= --distro busybox)
    #[arg(long)]
    pub offline: bool,
    /// Fail instead of building debian or busybox when the Alpine download fails
    #[arg(long)]
    pub no_fallback: bool,
    /// Static busybox for the offline rootfs [default: $CRABCAN_BUSYBOX or /bin/busybox]
    #[arg(long, value_name = "PATH")]
    pub busybox: Option<PathBuf>,
    /// Shift every uid/gid by N, for `crabcan --uid-map 0:N:65536` where idmapped mounts are
    /// unavailable; 0 (the default) leaves the rootfs owned by root
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ID_OFFSET)]
    pub id_offset: u32,
    /// Rebuild even if up to date (replaces DIR, if it is a rootfs built by xtask)
    #[arg(long)]
    pub force: bool,
}

impl RootfsArgs {
    pub fn options(&self) -> Result<RootfsOptions, CmdError> {
        let distro = if self.offline {
            Some(Distro::Busybox)
        } else {
            self.distro
        };
        if self.suite.is_some() && distro != Some(Distro::Debian) {
            return Err("--suite is for --distro debian".into());
        }
        if self.tarball.is_some() && !matches!(distro, None | Some(Distro::Alpine)) {
            return Err("--tarball is an Alpine minirootfs: it goes with --distro alpine".into());
        }
        let alpine = || match &self.tarball {
            Some(tarball) => RootfsSource::Tarball(absolute(tarball)),
            None => RootfsSource::Alpine {
                mirror: self.mirror.clone(),
                version: self.alpine_version.clone(),
            },
        };
        let (source, fallback) = match distro {
            // The default: Alpine, else Debian, else busybox (unless --no-fallback).
            None => (alpine(), !self.no_fallback),
            // A named distro is that distro or an error.
            Some(Distro::Alpine) => (alpine(), false),
            Some(Distro::Debian) => (
                RootfsSource::Debian {
                    suite: self.suite.clone(),
                },
                false,
            ),
            Some(Distro::Busybox) => (RootfsSource::Busybox, false),
        };
        Ok(RootfsOptions {
            source,
            fallback,
            debian_fallback: true,
            force: self.force,
            id_offset: self.id_offset,
            busybox: self.busybox.clone(),
            cache_dir: paths::cache_dir(),
        })
    }
}

fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn run(args: &RootfsArgs) -> Result<i32, CmdError> {
    let out = args.out.clone().unwrap_or_else(paths::default_rootfs);
    let kind = ensure_rootfs(&out, &args.options()?)?;
    println!("{kind} rootfs ready at {}", out.display());
    Ok(0)
}
