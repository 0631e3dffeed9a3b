//! The Alpine minirootfs: URLs on a mirror, the download cache under
//! `target/xtask-cache/alpine`, the SHA-256 check against the published
//! `.sha256` file, then the safe unpack.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::download::{download, Limits};
use super::{install, unpack, RootfsError, RootfsOptions, Stamp};

pub const DEFAULT_MIRROR: &str = "https://dl-cdn.alpinelinux.org/alpine";
pub const DEFAULT_ALPINE_VERSION: &str = "3.20.3";

/// (tarball URL, checksum URL) for `version` on `mirror`.
pub fn alpine_urls(mirror: &str, version: &str) -> (String, String) {
    let arch = std::env::consts::ARCH;
    let branch = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let tarball = format!(
        "{}/v{branch}/releases/{arch}/{}",
        mirror.trim_end_matches('/'),
        tarball_name(version)
    );
    let sha = format!("{tarball}.sha256");
    (tarball, sha)
}

fn tarball_name(version: &str) -> String {
    format!("alpine-minirootfs-{version}-{}.tar.gz", std::env::consts::ARCH)
}

/// "alpine-minirootfs-3.20.3-x86_64.tar.gz" -> "3.20.3" ("local" otherwise).
pub fn version_from_filename(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("alpine-minirootfs-"))
        .and_then(|n| n.split('-').next())
        .map(str::to_string)
        .unwrap_or_else(|| "local".to_string())
}

/// Downloads (once, cached) and installs the minirootfs at `out`.
pub fn install_from_mirror(out: &Path, mirror: &str, version: &str, opts: &RootfsOptions) -> Result<(), RootfsError> {
    let tarball = fetch_cached(mirror, version, &opts.cache_dir)?;
    let expected = read_checksum_file(&sha_path(&tarball), &sha_path(&tarball).display().to_string())?;
    install_tarball_checked(out, &tarball, &expected, opts, mirror)
}

/// Installs a local tarball at `out`; checks it against `expected` or,
/// failing that, `<tarball>.sha256` when that file exists.
pub fn install_tarball(
    out: &Path,
    tarball: &Path,
    expected: Option<&str>,
    opts: &RootfsOptions,
) -> Result<(), RootfsError> {
    if !tarball.is_file() {
        return Err(RootfsError::io(
            "reading tarball",
            tarball,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let sha = sha_path(tarball);
    let expected = match expected {
        Some(e) => Some(e.to_string()),
        None if sha.is_file() => Some(read_checksum_file(&sha, &sha.display().to_string())?),
        None => {
            eprintln!(
                "xtask: no {} next to the tarball: not checking its SHA-256",
                sha.display()
            );
            None
        }
    };
    if let Some(expected) = &expected {
        verify_sha256(tarball, expected)?;
    }
    unpack_and_commit(out, tarball, opts, &tarball.display().to_string())
}

fn install_tarball_checked(
    out: &Path,
    tarball: &Path,
    expected: &str,
    opts: &RootfsOptions,
    mirror: &str,
) -> Result<(), RootfsError> {
    verify_sha256(tarball, expected)?;
    unpack_and_commit(out, tarball, opts, mirror)
}

fn unpack_and_commit(out: &Path, tarball: &Path, opts: &RootfsOptions, source: &str) -> Result<(), RootfsError> {
    let staging = install::staging_dir(out)?;
    unpack::unpack_tar_gz(tarball, staging.path(), opts.id_offset)?;
    let stamp = Stamp {
        kind: "alpine".into(),
        version: version_from_filename(tarball),
        id_offset: opts.id_offset,
        source: source.to_string(),
    };
    install::commit(staging, out, &stamp)
}

/// The cached tarball for `version`, downloading it and its checksum file
/// if not cached yet. A download is verified before it enters the cache.
fn fetch_cached(mirror: &str, version: &str, cache: &Path) -> Result<PathBuf, RootfsError> {
    let dir = cache.join("alpine");
    let tarball = dir.join(tarball_name(version));
    let sha = sha_path(&tarball);
    if tarball.is_file() && sha.is_file() {
        eprintln!("xtask: using cached {}", tarball.display());
        return Ok(tarball);
    }
    std::fs::create_dir_all(&dir).map_err(|e| RootfsError::io("creating cache dir", &dir, e))?;
    let (tar_url, sha_url) = alpine_urls(mirror, version);
    let sha_part = with_suffix(&sha, ".part");
    download(
        &sha_url,
        &sha_part,
        false,
        &Limits {
            connect_secs: 5,
            max_secs: 30,
        },
    )?;
    let expected = read_checksum_file(&sha_part, &sha_url)?;
    eprintln!("xtask: downloading {tar_url}");
    let tar_part = with_suffix(&tarball, ".part");
    download(
        &tar_url,
        &tar_part,
        true,
        &Limits {
            connect_secs: 5,
            max_secs: 600,
        },
    )?;
    if let Err(e) = verify_sha256(&tar_part, &expected) {
        let _ = std::fs::remove_file(&tar_part);
        let _ = std::fs::remove_file(&sha_part);
        return Err(e);
    }
    rename(&sha_part, &sha)?;
    rename(&tar_part, &tarball)?;
    Ok(tarball)
}

fn rename(from: &Path, to: &Path) -> Result<(), RootfsError> {
    std::fs::rename(from, to).map_err(|e| RootfsError::io("renaming into cache", to, e))
}

fn sha_path(tarball: &Path) -> PathBuf {
    with_suffix(tarball, ".sha256")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Reads "<64 hex>  filename" and returns the lowercase hex.
fn read_checksum_file(path: &Path, what: &str) -> Result<String, RootfsError> {
    let text = std::fs::read_to_string(path).map_err(|e| RootfsError::io("reading checksum file", path, e))?;
    parse_checksum(&text).ok_or_else(|| RootfsError::BadChecksumFile {
        url: what.to_string(),
        msg: "expected a 64-digit hex SHA-256 first".to_string(),
    })
}

fn parse_checksum(text: &str) -> Option<String> {
    let hex = text.split_whitespace().next()?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
}

/// The SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, RootfsError> {
    let mut file = std::fs::File::open(path).map_err(|e| RootfsError::io("opening", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| RootfsError::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn verify_sha256(path: &Path, expected: &str) -> Result<(), RootfsError> {
    let actual = sha256_file(path)?;
    if actual == expected {
        Ok(())
    } else {
        Err(RootfsError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_alpine_layout() {
        let (tar, sha) = alpine_urls("https://m.example/alpine/", "3.20.3");
        let arch = std::env::consts::ARCH;
        assert_eq!(
            tar,
            format!("https://m.example/alpine/v3.20/releases/{arch}/alpine-minirootfs-3.20.3-{arch}.tar.gz")
        );
        assert_eq!(sha, format!("{tar}.sha256"));
    }

    #[test]
    fn checksum_parsing() {
        let hex = "a".repeat(64);
        assert_eq!(parse_checksum(&format!("{hex}  f.tar.gz\n")), Some(hex));
        assert_eq!(parse_checksum("<html>not found</html>"), None);
    }

    #[test]
    fn version_from_name() {
        let p = Path::new("/x/alpine-minirootfs-3.19.1-x86_64.tar.gz");
        assert_eq!(version_from_filename(p), "3.19.1");
        assert_eq!(version_from_filename(Path::new("/x/foo.tar.gz")), "local");
    }
}
