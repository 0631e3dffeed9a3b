//! The container root filesystem: an Alpine minirootfs (downloaded or from a
//! local tarball), a minimal Debian built with mmdebstrap from the machine's
//! apt sources, or, offline, a busybox rootfs with Alpine's layout. Owns the
//! public API ([`ensure_rootfs`], [`build_busybox_rootfs`],
//! [`find_static_busybox`], [`host_apt_sources`]), the options and the error
//! type.

mod alpine;
mod busybox;
mod debian;
mod download;
mod install;
mod ownership;
mod stamp;
mod unpack;

use std::fmt;
use std::path::{Path, PathBuf};

pub use alpine::{alpine_urls, DEFAULT_ALPINE_VERSION, DEFAULT_MIRROR};
pub use busybox::{applet_paths, build_busybox_rootfs, busybox_version, find_static_busybox};
pub use debian::{
    apt_sources_in, build_debian_rootfs, host_apt_sources, packages_path, version_codename, AptSources, DebianBuilt,
    DEBIAN_INCLUDE,
};
pub use stamp::{stamp_path, Stamp};
pub use unpack::unpack_tar_gz;

/// The rootfs is left owned by root, as `tar` would leave it: crabcan shows it to each
/// container owned by that container's root through an idmapped mount, and no ordinary host
/// user's subordinate ids own any of it. (`--id-offset N` shifts every owner by N, for a
/// kernel or filesystem without idmapped mounts and a fixed `--uid-map 0:N:65536`.)
pub const DEFAULT_ID_OFFSET: u32 = 0;

/// Everything that can go wrong building a rootfs; each is one clear line.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no busybox at {0}: install busybox-static (apt-get install busybox-static) or set CRABCAN_BUSYBOX")]
    BusyboxMissing(PathBuf),
    #[error("{0} is not a static executable: install busybox-static (apt-get install busybox-static) or point CRABCAN_BUSYBOX at a static busybox")]
    BusyboxNotStatic(PathBuf),
    #[error("busybox {path}: {msg}")]
    Busybox { path: PathBuf, msg: String },
    #[error("curl is not installed (apt-get install curl): cannot download {0}")]
    CurlMissing(String),
    #[error("download of {url} failed ({msg})")]
    Download { url: String, msg: String },
    #[error("checksum file {url} is malformed: {msg}")]
    BadChecksumFile { url: String, msg: String },
    #[error("SHA-256 mismatch for {path}: expected {expected}, got {actual}; refusing to unpack")]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("refusing tarball {tarball}: entry `{entry}` {reason}")]
    UnsafeEntry {
        tarball: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("reading tarball {tarball}: {msg}")]
    BadTarball { tarball: PathBuf, msg: String },
    #[error("uid/gid {id} + offset {offset} overflows for {path}")]
    IdOverflow { path: PathBuf, id: u64, offset: u32 },
    #[error(
        "changing owner of {path} to {uid}:{gid}: {source} (an id offset needs root; use --id-offset 0 otherwise)"
    )]
    Chown {
        path: PathBuf,
        uid: u32,
        gid: u32,
        source: std::io::Error,
    },
    #[error("no apt sources for a Debian rootfs: {0}; use --distro busybox (or alpine) instead")]
    NoAptSources(String),
    #[error("building the Debian rootfs needs root (mmdebstrap --mode=root leaves it owned by root): run as root, or use --distro busybox")]
    DebianNeedsRoot,
    #[error("{0}")]
    MmdebstrapMissing(String),
    #[error("mmdebstrap failed ({status}): {msg}; check that apt-get update works on this machine")]
    Mmdebstrap { status: String, msg: String },
    #[error("mmdebstrap left mounts under {path} ({mounts:?}): unmount them (umount -R) and remove it by hand")]
    MountsLeft { path: PathBuf, mounts: Vec<String> },
    #[error(
        "{0} exists but is not a crabcan rootfs (no {1}); not touching it: remove it yourself or pick another --out"
    )]
    NotOurs(PathBuf, PathBuf),
}

impl RootfsError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> RootfsError {
        RootfsError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The cause alone, for `alpine download failed (<cause>)`.
    pub fn short(&self) -> String {
        match self {
            RootfsError::Download { msg, .. } => msg.clone(),
            RootfsError::CurlMissing(_) => "curl is not installed".to_string(),
            other => other.to_string(),
        }
    }

    /// True for errors where falling back to busybox makes sense (the
    /// network or the mirror, not a bad checksum or an unsafe tarball).
    pub fn is_download_failure(&self) -> bool {
        matches!(self, RootfsError::Download { .. } | RootfsError::CurlMissing(_))
    }

    /// True for errors that mean a Debian rootfs cannot be built on this machine now (no apt
    /// sources, not root, no mmdebstrap, mmdebstrap failed: usually the network), where the
    /// default chain goes on to busybox.
    pub fn is_debian_unavailable(&self) -> bool {
        matches!(
            self,
            RootfsError::NoAptSources(_)
                | RootfsError::DebianNeedsRoot
                | RootfsError::MmdebstrapMissing(_)
                | RootfsError::Mmdebstrap { .. }
        )
    }
}

/// Where the rootfs comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsSource {
    /// Download `alpine-minirootfs-<version>` from `mirror` (cached).
    Alpine { mirror: String, version: String },
    /// A local Alpine minirootfs tarball (checked against `<file>.sha256`
    /// when that file exists).
    Tarball(PathBuf),
    /// A minimal Debian (mmdebstrap's minbase variant plus [`DEBIAN_INCLUDE`]) from the
    /// machine's apt sources; `suite` `None` is the host's own suite, and then any Debian rootfs
    /// xtask built counts as up to date (`--force` rebuilds).
    Debian { suite: Option<String> },
    /// The host's static busybox, no network.
    Busybox,
}

/// Options for [`ensure_rootfs`].
#[derive(Debug, Clone)]
pub struct RootfsOptions {
    pub source: RootfsSource,
    /// When the Alpine download fails, build something else instead (default true): Debian if
    /// `debian_fallback`, then busybox.
    pub fallback: bool,
    /// Try Debian (mmdebstrap from the host's apt sources) before busybox when falling back
    /// (default true).
    pub debian_fallback: bool,
    /// Rebuild even if the stamp says it is up to date.
    pub force: bool,
    /// Shift every uid/gid by this much (0 = none).
    pub id_offset: u32,
    /// Static busybox to use; `None` = [`find_static_busybox`].
    pub busybox: Option<PathBuf>,
    /// Download cache (default `target/xtask-cache`).
    pub cache_dir: PathBuf,
}

impl Default for RootfsOptions {
    /// Alpine from the default mirror, falling back to Debian, then busybox, owned by root.
    fn default() -> Self {
        RootfsOptions {
            source: RootfsSource::Alpine {
                mirror: DEFAULT_MIRROR.to_string(),
                version: DEFAULT_ALPINE_VERSION.to_string(),
            },
            fallback: true,
            debian_fallback: true,
            force: false,
            id_offset: DEFAULT_ID_OFFSET,
            busybox: None,
            cache_dir: crate::paths::cache_dir(),
        }
    }
}

impl RootfsOptions {
    /// A busybox rootfs, no network: what tests and benchmarks want.
    pub fn offline() -> Self {
        RootfsOptions {
            source: RootfsSource::Busybox,
            ..RootfsOptions::default()
        }
    }

    /// A Debian rootfs of the host's suite, no fallback: what the Debian tests want.
    pub fn debian() -> Self {
        RootfsOptions {
            source: RootfsSource::Debian { suite: None },
            fallback: false,
            ..RootfsOptions::default()
        }
    }
}

/// What was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsKind {
    Alpine { version: String },
    Debian { suite: String },
    Busybox,
}

impl fmt::Display for RootfsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootfsKind::Alpine { version } => write!(f, "alpine {version}"),
            RootfsKind::Debian { suite } => write!(f, "debian {suite}"),
            RootfsKind::Busybox => write!(f, "busybox"),
        }
    }
}

/// Makes sure a rootfs is at `out`: builds it if missing, stale (its stamp
/// disagrees with `opts`) or `opts.force`; otherwise leaves it alone.
/// Prints one line saying what it did and why.
pub fn ensure_rootfs(out: &Path, opts: &RootfsOptions) -> Result<RootfsKind, RootfsError> {
    if !opts.force {
        if let Some(kind) = up_to_date(out, opts)? {
            eprintln!("xtask: rootfs {} is up to date ({kind})", out.display());
            return Ok(kind);
        }
    }
    build(out, opts)
}

/// `Some(kind)` if `out` holds a rootfs that satisfies `opts`.
fn up_to_date(out: &Path, opts: &RootfsOptions) -> Result<Option<RootfsKind>, RootfsError> {
    let exists = out.symlink_metadata().is_ok();
    let stamp = Stamp::read(out);
    match (exists, stamp) {
        (false, _) => Ok(None),
        (true, None) => {
            if is_empty_dir(out) {
                Ok(None)
            } else {
                Err(RootfsError::NotOurs(out.to_path_buf(), stamp_path(out)))
            }
        }
        (true, Some(stamp)) => Ok(stamp.satisfies(opts).then(|| stamp.kind())),
    }
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map(|mut d| d.next().is_none()).unwrap_or(false)
}

/// Builds unconditionally, replacing whatever is at `out`.
fn build(out: &Path, opts: &RootfsOptions) -> Result<RootfsKind, RootfsError> {
    // Even with --force: never replace a directory we did not build.
    if out.symlink_metadata().is_ok() && Stamp::read(out).is_none() && !is_empty_dir(out) {
        return Err(RootfsError::NotOurs(out.to_path_buf(), stamp_path(out)));
    }
    match &opts.source {
        RootfsSource::Busybox => build_busybox_stamped(out, opts, "offline: built a busybox rootfs".to_string()),
        RootfsSource::Debian { suite } => {
            let built = build_debian_rootfs(out, suite.as_deref(), opts.id_offset)?;
            Ok(debian_built(out, built))
        }
        RootfsSource::Tarball(tarball) => {
            alpine::install_tarball(out, tarball, None, opts)?;
            let version = alpine::version_from_filename(tarball);
            eprintln!(
                "xtask: built an alpine rootfs at {} from {}",
                out.display(),
                tarball.display()
            );
            Ok(RootfsKind::Alpine { version })
        }
        RootfsSource::Alpine { mirror, version } => match alpine::install_from_mirror(out, mirror, version, opts) {
            Ok(()) => {
                eprintln!("xtask: built an alpine {version} rootfs at {}", out.display());
                Ok(RootfsKind::Alpine {
                    version: version.clone(),
                })
            }
            Err(e) if e.is_download_failure() && opts.fallback && opts.debian_fallback => {
                eprintln!(
                    "xtask: alpine download failed ({}); building a debian rootfs from this machine's apt sources instead",
                    e.short()
                );
                match build_debian_rootfs(out, None, opts.id_offset) {
                    Ok(built) => Ok(debian_built(out, built)),
                    Err(d) if d.is_debian_unavailable() => {
                        let reason = format!("debian rootfs unavailable ({d}); built a busybox rootfs instead");
                        build_busybox_stamped(out, opts, reason)
                    }
                    Err(d) => Err(d),
                }
            }
            Err(e) if e.is_download_failure() && opts.fallback => {
                let reason = format!("alpine download failed ({}); built a busybox rootfs instead", e.short());
                build_busybox_stamped(out, opts, reason)
            }
            Err(e) => Err(e),
        },
    }
}

/// Says what was built (one line) and returns its kind.
fn debian_built(out: &Path, built: DebianBuilt) -> RootfsKind {
    eprintln!(
        "xtask: built a debian {} rootfs at {} from this machine's apt sources ({} packages, listed in {}; {} s)",
        built.suite,
        out.display(),
        built.packages,
        packages_path(out).display(),
        built.seconds
    );
    RootfsKind::Debian { suite: built.suite }
}

fn build_busybox_stamped(out: &Path, opts: &RootfsOptions, reason: String) -> Result<RootfsKind, RootfsError> {
    let busybox = match &opts.busybox {
        Some(path) => busybox::check_static_busybox(path)?,
        None => find_static_busybox()?,
    };
    build_busybox_rootfs(out, &busybox, opts.id_offset)?;
    let version = busybox_version(&busybox).unwrap_or_else(|_| "unknown".to_string());
    eprintln!(
        "xtask: {reason} ({version}, {}) at {}",
        busybox.display(),
        out.display()
    );
    Ok(RootfsKind::Busybox)
}
