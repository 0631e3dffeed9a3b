//! The stamp `<out>.stamp` next to a rootfs: what kind it is, which
//! version, which id offset. `ensure_rootfs` compares it with the options
//! to decide whether the rootfs is up to date. Plain `key=value` lines.

use std::path::{Path, PathBuf};

use super::{RootfsError, RootfsKind, RootfsOptions, RootfsSource};

const HEADER: &str = "crabcan-rootfs-stamp 1";

/// The stamp of the rootfs at `out`: `<out>.stamp`.
pub fn stamp_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "rootfs".into());
    name.push(".stamp");
    out.with_file_name(name)
}

/// The contents of a stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// `alpine`, `debian` or `busybox`.
    pub kind: String,
    /// Alpine version, Debian suite, or busybox's version line.
    pub version: String,
    pub id_offset: u32,
    /// Mirror URL, tarball path, the mmdebstrap command line, or busybox path.
    pub source: String,
}

impl Stamp {
    /// Reads `<out>.stamp`; `None` if missing or unreadable.
    pub fn read(out: &Path) -> Option<Stamp> {
        let text = std::fs::read_to_string(stamp_path(out)).ok()?;
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut stamp = Stamp {
            kind: String::new(),
            version: String::new(),
            id_offset: 0,
            source: String::new(),
        };
        for line in lines {
            let (key, value) = line.split_once('=')?;
            match key {
                "kind" => stamp.kind = value.to_string(),
                "version" => stamp.version = value.to_string(),
                "id_offset" => stamp.id_offset = value.parse().ok()?,
                "source" => stamp.source = value.to_string(),
                _ => {}
            }
        }
        (!stamp.kind.is_empty()).then_some(stamp)
    }

    /// Writes `<out>.stamp`.
    pub fn write(&self, out: &Path) -> Result<(), RootfsError> {
        let path = stamp_path(out);
        let text = format!(
            "{HEADER}\nkind={}\nversion={}\nid_offset={}\nsource={}\n",
            self.kind,
            one_line(&self.version),
            self.id_offset,
            one_line(&self.source)
        );
        std::fs::write(&path, text).map_err(|e| RootfsError::io("writing stamp", &path, e))
    }

    /// Removes `<out>.stamp` if present.
    pub fn remove(out: &Path) -> Result<(), RootfsError> {
        let path = stamp_path(out);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RootfsError::io("removing stamp", &path, e)),
            _ => Ok(()),
        }
    }

    pub fn kind(&self) -> RootfsKind {
        match self.kind.as_str() {
            "alpine" => RootfsKind::Alpine {
                version: self.version.clone(),
            },
            "debian" => RootfsKind::Debian {
                suite: self.version.clone(),
            },
            _ => RootfsKind::Busybox,
        }
    }

    /// Whether a rootfs with this stamp is what `opts` asks for. A Debian or
    /// busybox rootfs built as a fallback satisfies an Alpine request (while
    /// that fallback is allowed): `--force` retries the download. A Debian
    /// request without a suite takes any Debian rootfs.
    pub fn satisfies(&self, opts: &RootfsOptions) -> bool {
        if self.id_offset != opts.id_offset {
            return false;
        }
        match &opts.source {
            RootfsSource::Busybox => self.kind == "busybox",
            RootfsSource::Alpine { version, .. } => {
                (self.kind == "alpine" && &self.version == version)
                    || (self.kind == "busybox" && opts.fallback)
                    || (self.kind == "debian" && opts.fallback && opts.debian_fallback)
            }
            RootfsSource::Debian { suite } => {
                self.kind == "debian" && suite.as_ref().is_none_or(|suite| &self.version == suite)
            }
            RootfsSource::Tarball(path) => self.kind == "alpine" && self.source == path.display().to_string(),
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian_stamp(suite: &str) -> Stamp {
        Stamp {
            kind: "debian".into(),
            version: suite.into(),
            id_offset: 0,
            source: "mmdebstrap ...".into(),
        }
    }

    #[test]
    fn a_debian_stamp_satisfies_debian_and_the_default_chain() {
        let stamp = debian_stamp("bookworm");
        assert_eq!(
            stamp.kind(),
            RootfsKind::Debian {
                suite: "bookworm".into()
            }
        );
        assert!(stamp.satisfies(&RootfsOptions::debian()), "no suite asked: any debian");
        let trixie = RootfsOptions {
            source: RootfsSource::Debian {
                suite: Some("trixie".into()),
            },
            ..RootfsOptions::debian()
        };
        assert!(!stamp.satisfies(&trixie));
        assert!(stamp.satisfies(&RootfsOptions::default()), "built as alpine's fallback");
        let no_debian = RootfsOptions {
            debian_fallback: false,
            ..RootfsOptions::default()
        };
        assert!(!stamp.satisfies(&no_debian));
        assert!(!stamp.satisfies(&RootfsOptions::offline()));
        let shifted = RootfsOptions {
            id_offset: 1_000_000_000,
            ..RootfsOptions::debian()
        };
        assert!(!stamp.satisfies(&shifted), "another id offset is another rootfs");
    }
}
