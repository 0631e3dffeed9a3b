//! A minimal Debian rootfs built offline-from-the-internet, from the machine's own apt sources:
//! `mmdebstrap --mode=root --variant=minbase --include=python3-minimal SUITE DIR SOURCES...`,
//! where SUITE is the host's (`VERSION_CODENAME` in /etc/os-release, else the first suite its
//! sources name) and SOURCES are the host's apt source files that name that suite. The rootfs is
//! left owned by root, as mmdebstrap leaves it (shifted by `--id-offset` when one is given); the
//! packages it holds are listed in `<out>.packages`, next to its stamp.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{install, ownership, RootfsError, Stamp};

/// What mmdebstrap installs on top of the minbase variant (Essential and Priority: required).
pub const DEBIAN_INCLUDE: &[&str] = &["python3-minimal"];

/// The machine's apt sources for one suite: what mmdebstrap builds from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSources {
    /// e.g. `bookworm`.
    pub suite: String,
    /// The host's source files (one-line `.list` or deb822 `.sources`) that name the suite.
    pub files: Vec<PathBuf>,
}

/// The host's apt sources for `suite` (default: the host's own suite). An error says why there
/// are none (not a Debian-like system, no `deb` entry, no entry for the suite).
pub fn host_apt_sources(suite: Option<&str>) -> Result<AptSources, RootfsError> {
    apt_sources_in(Path::new("/"), suite)
}

/// [`host_apt_sources`] for the system whose root is `root` (tests use a temp dir).
pub fn apt_sources_in(root: &Path, suite: Option<&str>) -> Result<AptSources, RootfsError> {
    let apt = root.join("etc/apt");
    if !apt.is_dir() {
        return Err(RootfsError::NoAptSources(format!(
            "{} does not exist (not a Debian-like system)",
            apt.display()
        )));
    }
    let mut files: Vec<(PathBuf, Vec<String>)> = Vec::new();
    let list = apt.join("sources.list");
    if let Ok(text) = std::fs::read_to_string(&list) {
        files.push((list, one_line_suites(&text)));
    }
    let dir = apt.join("sources.list.d");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            match path.extension().and_then(|e| e.to_str()) {
                Some("list") => files.push((path, one_line_suites(&text))),
                Some("sources") => files.push((path, deb822_suites(&text))),
                _ => {} // e.g. `.disabled`, `.save`: apt ignores them too
            }
        }
    }
    files.retain(|(_, suites)| !suites.is_empty());
    if files.is_empty() {
        return Err(RootfsError::NoAptSources(format!(
            "no `deb` entry in {} or {}/*.list, *.sources",
            apt.join("sources.list").display(),
            dir.display()
        )));
    }
    let os_release = std::fs::read_to_string(root.join("etc/os-release")).unwrap_or_default();
    let suite = match suite {
        Some(suite) => suite.to_string(),
        None => version_codename(&os_release).unwrap_or_else(|| files[0].1[0].clone()),
    };
    let matching: Vec<PathBuf> = files
        .into_iter()
        .filter(|(_, suites)| suites.iter().any(|s| same_release(s, &suite)))
        .map(|(path, _)| path)
        .collect();
    if matching.is_empty() {
        return Err(RootfsError::NoAptSources(format!(
            "no apt source of {} names the suite {suite}",
            apt.display()
        )));
    }
    Ok(AptSources { suite, files: matching })
}

/// `bookworm`, `bookworm-updates`, `bookworm-security` and `bookworm/updates` are one release.
fn same_release(entry: &str, suite: &str) -> bool {
    entry
        .strip_prefix(suite)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-') || rest.starts_with('/'))
}

/// `VERSION_CODENAME=bookworm` (quotes allowed) from /etc/os-release.
pub fn version_codename(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|line| line.strip_prefix("VERSION_CODENAME="))
        .map(|value| value.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|value| !value.is_empty())
}

/// The suites of the `deb` lines of a one-line sources file (`deb [opts] URI SUITE COMPONENTS`).
fn one_line_suites(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("").trim();
            let rest = line.strip_prefix("deb ")?.trim_start();
            let rest = match rest.strip_prefix('[') {
                Some(options) => options.split_once(']')?.1,
                None => rest,
            };
            rest.split_whitespace().nth(1).map(str::to_string)
        })
        .collect()
}

/// The suites of the enabled `Types: deb` stanzas of a deb822 `.sources` file.
fn deb822_suites(text: &str) -> Vec<String> {
    let mut suites = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .filter(|line| !line.starts_with('#'))
                .find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
                })
                .unwrap_or_default()
        };
        let enabled = !field("Enabled").eq_ignore_ascii_case("no");
        if enabled && field("Types").split_whitespace().any(|t| t == "deb") {
            suites.extend(field("Suites").split_whitespace().map(str::to_string));
        }
    }
    suites
}

/// The package list next to the rootfs at `out`: `<out>.packages`.
pub fn packages_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "rootfs".into());
    name.push(".packages");
    out.with_file_name(name)
}

/// What [`build_debian_rootfs`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianBuilt {
    pub suite: String,
    /// How many packages `<out>.packages` lists.
    pub packages: usize,
    pub seconds: u64,
}

/// Builds the Debian rootfs at `out` (replacing what is there), owned by root shifted by
/// `id_offset`, stamps it and writes its package list.
pub fn build_debian_rootfs(out: &Path, suite: Option<&str>, id_offset: u32) -> Result<DebianBuilt, RootfsError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(RootfsError::DebianNeedsRoot);
    }
    let sources = host_apt_sources(suite)?;
    crate::util::packages::ensure(&["mmdebstrap"]).map_err(RootfsError::MmdebstrapMissing)?;
    let started = Instant::now();
    let staging = install::staging_dir(out)?;
    let mut cmd = Command::new("mmdebstrap");
    cmd.args(["--mode=root", "--format=directory", "--variant=minbase", "--quiet"])
        .arg(format!("--include={}", DEBIAN_INCLUDE.join(",")))
        .arg(&sources.suite)
        .arg(staging.path())
        .args(&sources.files)
        .stdin(Stdio::null());
    let command_line = crate::util::process::display(&cmd).replace(&staging.path().display().to_string(), "DIR");
    eprintln!("xtask: {command_line} (a minute or less)");
    let output = cmd.output();
    // mmdebstrap mounts /proc, /sys and /dev/pts under the tree while it works and unmounts them
    // when it ends; never remove a tree that still has a mount in it (that would recurse into it).
    let left = mounts_under(staging.path());
    if !left.is_empty() {
        let path = staging.into_path();
        return Err(RootfsError::MountsLeft { path, mounts: left });
    }
    let output = output.map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => RootfsError::MmdebstrapMissing(
            "mmdebstrap is not installed; install it with `apt-get install -y mmdebstrap`".to_string(),
        ),
        _ => RootfsError::io("running", Path::new("mmdebstrap"), error),
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|line| line.starts_with("E:"))
            .or_else(|| stderr.lines().rev().find(|line| !line.trim().is_empty()))
            .unwrap_or("no message")
            .trim()
            .to_string();
        return Err(RootfsError::Mmdebstrap {
            status: crate::util::process::describe_status(output.status),
            msg: last,
        });
    }
    let packages = package_list(staging.path())?;
    ownership::shift_tree(staging.path(), id_offset)?;
    let stamp = Stamp {
        kind: "debian".into(),
        version: sources.suite.clone(),
        id_offset,
        source: command_line,
    };
    install::commit(staging, out, &stamp)?;
    let list = packages_path(out);
    std::fs::write(&list, &packages).map_err(|e| RootfsError::io("writing", &list, e))?;
    Ok(DebianBuilt {
        suite: sources.suite,
        packages: packages.lines().count(),
        seconds: started.elapsed().as_secs(),
    })
}

/// `package<TAB>version<TAB>architecture` of every package installed in `root`, sorted.
fn package_list(root: &Path) -> Result<String, RootfsError> {
    let admindir = root.join("var/lib/dpkg");
    let output = Command::new("dpkg-query")
        .arg(format!("--admindir={}", admindir.display()))
        .args(["-W", "-f=${Package}\t${Version}\t${Architecture}\n"])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| RootfsError::io("running dpkg-query on", &admindir, e))?;
    if !output.status.success() {
        return Err(RootfsError::Mmdebstrap {
            status: crate::util::process::describe_status(output.status),
            msg: format!(
                "dpkg-query --admindir={}: {}",
                admindir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    let mut lines: Vec<&str> = std::str::from_utf8(&output.stdout)
        .unwrap_or_default()
        .lines()
        .collect();
    lines.sort_unstable();
    Ok(lines.iter().map(|line| format!("{line}\n")).collect())
}

/// Mount points at or under `path`, from /proc/self/mountinfo.
fn mounts_under(path: &Path) -> Vec<String> {
    let prefix = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| *point == prefix || point.starts_with(&format!("{prefix}/")))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::tempdir::TempDir;

    fn system(files: &[(&str, &str)]) -> TempDir {
        let root = TempDir::new("xtask-apt-test").unwrap();
        for (path, text) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::fs::create_dir_all(root.path().join("etc/apt")).unwrap();
        root
    }

    const DEB822: &str = "Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n";

    #[test]
    fn suite_comes_from_os_release_and_sources_naming_it_are_used() {
        let root = system(&[
            (
                "etc/os-release",
                "NAME=\"Debian GNU/Linux\"\nVERSION_CODENAME=bookworm\n",
            ),
            ("etc/apt/sources.list.d/debian.sources", DEB822),
            (
                "etc/apt/sources.list.d/nodesource.list",
                "deb [signed-by=/k.gpg] https://deb.nodesource.com/node nodistro main\n",
            ),
            ("etc/apt/sources.list.d/old.sources.disabled", DEB822),
        ]);
        let sources = apt_sources_in(root.path(), None).unwrap();
        assert_eq!(sources.suite, "bookworm");
        assert_eq!(
            sources.files,
            vec![root.path().join("etc/apt/sources.list.d/debian.sources")]
        );
    }

    #[test]
    fn one_line_sources_and_an_explicit_suite() {
        let root = system(&[(
            "etc/apt/sources.list",
            "# deb http://x/debian sid main\ndeb-src http://x/debian trixie main\ndeb [arch=amd64] http://x/debian trixie main\ndeb http://x/security trixie-security main # updates\n",
        )]);
        let sources = apt_sources_in(root.path(), None).unwrap();
        assert_eq!(sources.suite, "trixie", "no os-release: the first suite of the sources");
        assert_eq!(sources.files, vec![root.path().join("etc/apt/sources.list")]);
        let err = apt_sources_in(root.path(), Some("bookworm")).unwrap_err();
        assert!(matches!(err, RootfsError::NoAptSources(_)), "{err}");
        assert!(err.to_string().contains("names the suite bookworm"), "{err}");
    }

    #[test]
    fn no_sources_is_a_clear_error() {
        let root = system(&[(
            "etc/apt/sources.list.d/debian.sources",
            "Types: deb\nEnabled: no\nURIs: http://x\nSuites: bookworm\n",
        )]);
        let err = apt_sources_in(root.path(), None).unwrap_err();
        assert!(err.to_string().contains("no `deb` entry"), "{err}");
        let err = apt_sources_in(&root.path().join("nothing"), None).unwrap_err();
        assert!(err.to_string().contains("not a Debian-like system"), "{err}");
    }

    #[test]
    fn release_matching() {
        assert!(same_release("bookworm", "bookworm"));
        assert!(same_release("bookworm-security", "bookworm"));
        assert!(same_release("bookworm/updates", "bookworm"));
        assert!(!same_release("bookworms", "bookworm"));
        assert_eq!(
            version_codename("VERSION_CODENAME=\"noble\"\n").as_deref(),
            Some("noble")
        );
        assert_eq!(version_codename("ID=debian\n"), None);
    }
}
