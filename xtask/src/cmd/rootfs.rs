//! `cargo xtask rootfs`: build (or refresh) a container root filesystem.

use std::path::PathBuf;

use super::CmdError;
use crate::paths;
use crate::rootfs::{
    ensure_rootfs, RootfsOptions, RootfsSource, DEFAULT_ALPINE_VERSION, DEFAULT_ID_OFFSET, DEFAULT_MIRROR,
};

#[derive(Debug, clap::Args)]
pub struct RootfsArgs {
    /// Where to put the rootfs [default: target/rootfs]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Use this local Alpine minirootfs tarball instead of downloading
    #[arg(long, value_name = "FILE")]
    pub tarball: Option<PathBuf>,
    /// Alpine mirror to download from
    #[arg(long, value_name = "URL", default_value = DEFAULT_MIRROR)]
    pub mirror: String,
    /// Alpine version to download
    #[arg(long, value_name = "V", default_value = DEFAULT_ALPINE_VERSION)]
    pub alpine_version: String,
    /// Don't download: build the busybox rootfs
    #[arg(long)]
    pub offline: bool,
    /// Fail instead of building busybox when the download fails
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
    pub fn options(&self) -> RootfsOptions {
        let source = if self.offline {
            RootfsSource::Busybox
        } else if let Some(tarball) = &self.tarball {
            RootfsSource::Tarball(absolute(tarball))
        } else {
            RootfsSource::Alpine {
                mirror: self.mirror.clone(),
                version: self.alpine_version.clone(),
            }
        };
        RootfsOptions {
            source,
            fallback: !self.no_fallback,
            force: self.force,
            id_offset: self.id_offset,
            busybox: self.busybox.clone(),
            cache_dir: paths::cache_dir(),
        }
    }
}

fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn run(args: &RootfsArgs) -> Result<i32, CmdError> {
    let out = args.out.clone().unwrap_or_else(paths::default_rootfs);
    let kind = ensure_rootfs(&out, &args.options())?;
    println!("{kind} rootfs ready at {}", out.display());
    Ok(0)
}
