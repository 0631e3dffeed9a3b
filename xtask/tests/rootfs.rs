//! The rootfs builders end to end: the offline busybox rootfs, and the
//! Alpine path against a small HTTP server on 127.0.0.1 serving tarballs
//! made here (good checksum, bad checksum, unsafe entries, dead mirror).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use xtask::rootfs::{alpine_urls, stamp_path};
use xtask::util::tempdir::TempDir;
use xtask::{
    build_busybox_rootfs, ensure_rootfs, find_static_busybox, RootfsError, RootfsKind, RootfsOptions, RootfsSource,
};

const VERSION: &str = "3.20.3";

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// 100000 as root (the real case); 0 otherwise, where chown would fail.
fn offset() -> u32 {
    if is_root() {
        100_000
    } else {
        0
    }
}

fn temp() -> TempDir {
    TempDir::new("xtask-rootfs-test").unwrap()
}

fn opts(source: RootfsSource, cache: &Path) -> RootfsOptions {
    RootfsOptions {
        source,
        fallback: true,
        // The chain's Debian step (mmdebstrap, a minute, network) is tested by tests/debian.rs;
        // here the fallback goes straight to busybox.
        debian_fallback: false,
        force: false,
        id_offset: offset(),
        busybox: None,
        cache_dir: cache.to_path_buf(),
    }
}

fn alpine(mirror: &str) -> RootfsSource {
    RootfsSource::Alpine {
        mirror: mirror.to_string(),
        version: VERSION.to_string(),
    }
}

/// Only the entries the test made: no staging dir left behind.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- busybox

#[test]
fn busybox_rootfs_has_alpine_layout_and_shifted_owners() {
    let Ok(busybox) = find_static_busybox() else {
        eprintln!("crabcan-skip: no static busybox (apt-get install busybox-static)");
        return;
    };
    let tmp = temp();
    let out = tmp.path().join("rootfs");
    build_busybox_rootfs(&out, &busybox, offset()).unwrap();

    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "dev", "sys", "run", "var", "home",
    ] {
        assert!(out.join(dir).is_dir(), "missing /{dir}");
    }
    assert_eq!(
        out.join("tmp").metadata().unwrap().permissions().mode() & 0o7777,
        0o1777
    );
    let passwd = std::fs::read_to_string(out.join("etc/passwd")).unwrap();
    assert!(passwd.starts_with("root:x:0:0:root:/root:/bin/sh\n"));
    assert!(passwd.contains(":65534:"));
    assert!(std::fs::read_to_string(out.join("etc/group"))
        .unwrap()
        .contains("root:x:0:"));
    assert!(out.join("etc/hostname").is_file());
    assert!(std::fs::read_to_string(out.join("etc/os-release"))
        .unwrap()
        .contains("NAME=\"crabcan busybox rootfs\""));

    let sh = out.join("bin/sh");
    assert!(sh.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(&sh).unwrap(), Path::new("/bin/busybox"));
    assert!(out.join("usr/bin/env").symlink_metadata().is_ok());

    let want = offset();
    for path in [
        out.clone(),
        out.join("bin/busybox"),
        out.join("etc/passwd"),
        out.join("tmp"),
    ] {
        let meta = path.symlink_metadata().unwrap();
        assert_eq!((meta.uid(), meta.gid()), (want, want), "{}", path.display());
    }
    assert_eq!(sh.symlink_metadata().unwrap().uid(), want, "symlink itself (lchown)");

    let status = std::process::Command::new(out.join("bin/busybox"))
        .arg("true")
        .status()
        .unwrap();
    assert!(status.success());
    assert!(stamp_path(&out).is_file());
    assert_eq!(names_in(tmp.path()), vec!["rootfs", "rootfs.stamp"]);
}

#[test]
fn ensure_builds_once_and_refuses_foreign_dirs() {
    if find_static_busybox().is_err() {
        eprintln!("crabcan-skip: no static busybox (apt-get install busybox-static)");
        return;
    }
    let tmp = temp();
    let out = tmp.path().join("rootfs");
    let o = opts(RootfsSource::Busybox, &tmp.path().join("cache"));
    assert_eq!(ensure_rootfs(&out, &o).unwrap(), RootfsKind::Busybox);
    std::fs::write(out.join("marker"), "kept").unwrap();
    ensure_rootfs(&out, &o).unwrap();
    assert!(out.join("marker").exists(), "an up-to-date rootfs is left alone");
    let forced = RootfsOptions {
        force: true,
        ..o.clone()
    };
    ensure_rootfs(&out, &forced).unwrap();
    assert!(!out.join("marker").exists(), "--force rebuilds");

    let foreign = tmp.path().join("home");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("precious"), "x").unwrap();
    let err = ensure_rootfs(&foreign, &o).unwrap_err();
    assert!(matches!(err, RootfsError::NotOurs(..)), "{err}");
    assert!(foreign.join("precious").exists());
}

// ---------------------------------------------------------------- tarballs

/// An entry for [`tarball`]: (path as raw bytes, kind, data or link target).
enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A gzip'd tar of `entries`, names written raw (so `..` and `/abs` pass).
fn tarball(entries: &[Entry]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let (name, data, link) = match entry {
            Entry::Dir(name) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (*name, "", None)
            }
            Entry::File(name, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                (*name, *data, None)
            }
            Entry::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                (*name, "", Some(*target))
            }
            Entry::Hardlink(name, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                (*name, "", Some(*target))
            }
        };
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn good_tarball() -> Vec<u8> {
    tarball(&[
        Entry::Dir("./"),
        Entry::Dir("./bin/"),
        Entry::File("./bin/busybox", "#!/bin/sh\n"),
        Entry::Symlink("./bin/sh", "/bin/busybox"),
        Entry::Dir("./etc/"),
        Entry::File("./etc/os-release", "NAME=\"Alpine Linux\"\n"),
        Entry::Hardlink("./etc/os-release.link", "./etc/os-release"),
        Entry::Dir("./etc/ssl/"),
        Entry::Symlink("./etc/ssl/cert.pem", "certs/ca-certificates.crt"),
    ])
}

fn sha256_line(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}  alpine-minirootfs-{VERSION}-x86_64.tar.gz\n")
}

/// A tiny HTTP/1.0 server on 127.0.0.1 serving fixed paths; 404 otherwise.
struct Server {
    url: String,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming().take(100) {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, &files);
                }
            }
        });
        Server {
            url: format!("http://127.0.0.1:{port}/alpine"),
            stop,
            port,
            thread: Some(thread),
        }
    }

    /// Serves the Alpine layout for VERSION: the tarball and a checksum.
    fn alpine(tarball: Vec<u8>, checksum: String) -> Server {
        let (tar_url, sha_url) = alpine_urls("", VERSION);
        let mut files = HashMap::new();
        files.insert(format!("/alpine{tar_url}"), tarball);
        files.insert(format!("/alpine{sha_url}"), checksum.into_bytes());
        Server::start(files)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, files: &HashMap<String, Vec<u8>>) {
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let mut out = &stream;
    let _ = match files.get(path) {
        Some(body) => out
            .write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes())
            .and_then(|_| out.write_all(body)),
        None => out.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    };
}

#[test]
fn download_with_good_checksum_unpacks_and_caches() {
    let data = good_tarball();
    let server = Server::alpine(data.clone(), sha256_line(&data));
    let tmp = temp();
    let out = tmp.path().join("rootfs");
    let cache = tmp.path().join("cache");
    let o = opts(alpine(&server.url), &cache);
    let kind = ensure_rootfs(&out, &o).unwrap();
    assert_eq!(
        kind,
        RootfsKind::Alpine {
            version: VERSION.into()
        }
    );

    assert_eq!(
        std::fs::read_to_string(out.join("etc/os-release")).unwrap(),
        "NAME=\"Alpine Linux\"\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        out.join("etc/os-release").metadata().unwrap().ino(),
        out.join("etc/os-release.link").metadata().unwrap().ino()
    );
    let want = offset();
    for path in [
        out.clone(),
        out.join("bin"),
        out.join("bin/busybox"),
        out.join("bin/sh"),
    ] {
        let meta = path.symlink_metadata().unwrap();
        assert_eq!((meta.uid(), meta.gid()), (want, want), "{}", path.display());
    }
    assert_eq!(names_in(tmp.path()), vec!["cache", "rootfs", "rootfs.stamp"]);

    // Cached: a rebuild works with the mirror gone.
    drop(server);
    let forced = RootfsOptions { force: true, ..o };
    assert_eq!(ensure_rootfs(&out, &forced).unwrap(), kind);
}

#[test]
fn download_with_bad_checksum_is_refused_and_unpacks_nothing() {
    let data = good_tarball();
    let server = Server::alpine(data, sha256_line(b"something else"));
    let tmp = temp();
    let out = tmp.path().join("rootfs");
    let cache = tmp.path().join("cache");
    let err = ensure_rootfs(&out, &opts(alpine(&server.url), &cache)).unwrap_err();
    assert!(matches!(err, RootfsError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("SHA-256 mismatch"), "{err}");
    assert_eq!(names_in(tmp.path()), vec!["cache"], "nothing unpacked");
    assert!(
        names_in(&cache.join("alpine")).is_empty(),
        "nothing cached: {:?}",
        names_in(&cache.join("alpine"))
    );
}

fn refused(entries: &[Entry], bad_entry: &str) {
    let tmp = temp();
    let tarball_path = tmp.path().join("alpine-minirootfs-9.9.9-x86_64.tar.gz");
    std::fs::write(&tarball_path, tarball(entries)).unwrap();
    let out = tmp.path().join("sub").join("rootfs");
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    let o = opts(RootfsSource::Tarball(tarball_path), &tmp.path().join("cache"));
    let err = ensure_rootfs(&out, &o).unwrap_err();
    match &err {
        RootfsError::UnsafeEntry { entry, .. } => assert_eq!(entry, bad_entry, "{err}"),
        other => panic!("expected UnsafeEntry for {bad_entry}, got: {other}"),
    }
    assert!(
        names_in(&tmp.path().join("sub")).is_empty(),
        "a refused tarball leaves nothing"
    );
    assert!(!tmp.path().join("evil").exists());
    assert!(!Path::new("/evil-xtask-test").exists());
}

#[test]
fn parent_dir_entry_is_refused() {
    refused(&[Entry::Dir("./bin/"), Entry::File("../evil", "x")], "../evil");
    refused(&[Entry::File("bin/../../evil", "x")], "bin/../../evil");
}

#[test]
fn absolute_entry_is_refused() {
    refused(&[Entry::File("/evil-xtask-test", "x")], "/evil-xtask-test");
}

#[test]
fn entry_under_a_symlinked_dir_is_refused() {
    let tmp = temp();
    let target = tmp.path().to_string_lossy().into_owned();
    refused(
        &[Entry::Symlink("./lib", &target), Entry::File("./lib/evil", "x")],
        "./lib/evil",
    );
    // Relative symlink too, and a symlink to a dir inside the rootfs.
    refused(&[Entry::Symlink("up", ".."), Entry::File("up/evil", "x")], "up/evil");
    refused(
        &[
            Entry::Dir("usr/"),
            Entry::Symlink("lib", "usr"),
            Entry::File("lib/x", "x"),
        ],
        "lib/x",
    );
    assert_eq!(names_in(tmp.path()), Vec::<String>::new());
}

#[test]
fn escaping_hardlink_is_refused() {
    refused(&[Entry::Hardlink("passwd", "../../../etc/passwd")], "passwd");
    refused(&[Entry::Hardlink("shadow", "/etc/shadow")], "shadow");
}

#[test]
fn dead_mirror_falls_back_to_busybox_or_fails_clearly() {
    if find_static_busybox().is_err() {
        eprintln!("crabcan-skip: no static busybox (apt-get install busybox-static)");
        return;
    }
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed now
    let mirror = format!("http://127.0.0.1:{port}/alpine");
    let tmp = temp();
    let cache = tmp.path().join("cache");

    let strict = RootfsOptions {
        fallback: false,
        ..opts(alpine(&mirror), &cache)
    };
    let err = ensure_rootfs(&tmp.path().join("strict"), &strict).unwrap_err();
    assert!(matches!(err, RootfsError::Download { .. }), "{err}");
    assert!(err.to_string().contains("curl:"), "{err}");
    assert!(!tmp.path().join("strict").exists());

    let out = tmp.path().join("rootfs");
    let kind = ensure_rootfs(&out, &opts(alpine(&mirror), &cache)).unwrap();
    assert_eq!(kind, RootfsKind::Busybox);
    assert!(out.join("bin/busybox").is_file());
}

#[test]
fn local_tarball_is_checked_against_its_sha256_file() {
    let tmp = temp();
    let data = good_tarball();
    let path: PathBuf = tmp.path().join(format!("alpine-minirootfs-{VERSION}-x86_64.tar.gz"));
    std::fs::write(&path, &data).unwrap();
    std::fs::write(
        tmp.path()
            .join(format!("alpine-minirootfs-{VERSION}-x86_64.tar.gz.sha256")),
        sha256_line(b"nope"),
    )
    .unwrap();
    let out = tmp.path().join("rootfs");
    let o = opts(RootfsSource::Tarball(path.clone()), &tmp.path().join("cache"));
    let err = ensure_rootfs(&out, &o).unwrap_err();
    assert!(matches!(err, RootfsError::ChecksumMismatch { .. }), "{err}");
    assert!(!out.exists());
    std::fs::write(
        tmp.path()
            .join(format!("alpine-minirootfs-{VERSION}-x86_64.tar.gz.sha256")),
        sha256_line(&data),
    )
    .unwrap();
    assert_eq!(
        ensure_rootfs(&out, &o).unwrap(),
        RootfsKind::Alpine {
            version: VERSION.into()
        }
    );
    let mut s = String::new();
    std::fs::File::open(out.join("bin/busybox"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "#!/bin/sh\n");
}
