//! `crabcan spec`: the default bundle configuration, runc's (`runc spec`), and writing it as a
//! bundle's `config.json` without ever replacing one.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources, Spec};
use serde::Serialize;

use super::{OciError, OCI_VERSION};

/// The bundle file a spec lives in.
pub const CONFIG_FILE: &str = "config.json";

/// runc's default configuration: `sh` on a terminal in `rootfs` (read-only), new pid, network,
/// ipc, uts, mount and cgroup namespaces, the audit-write, kill and net-bind-service
/// capabilities, no new privileges, every device denied, /proc and /sys paths masked or
/// read-only.
pub fn default_spec() -> Spec {
    let mut spec = Spec::default();
    adjust(&mut spec);
    if let Some(linux) = spec.linux_mut() {
        let deny_all = LinuxDeviceCgroup::default(); // allow: false
        let mut deny_all = deny_all;
        deny_all.set_access(Some("rwm".to_owned()));
        let mut resources = LinuxResources::default();
        resources.set_devices(Some(vec![deny_all]));
        linux.set_resources(Some(resources));
    }
    spec
}

/// runc's `spec --rootless`: [`default_spec`] with a user namespace mapping `uid` and `gid`
/// (the caller's) to root, no network namespace, no cgroup resources, `/sys` bound from the host
/// and `/dev/pts` without `gid=5`.
pub fn rootless_spec(uid: u32, gid: u32) -> Spec {
    let mut spec = Spec::rootless(uid, gid);
    adjust(&mut spec);
    spec
}

/// What crabcan changes in oci-spec's defaults to make them runc's.
fn adjust(spec: &mut Spec) {
    spec.set_version(OCI_VERSION.to_owned());
    spec.set_hostname(Some("crabcan".to_owned()));
    spec.set_annotations(None);
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
    }
    if let Some(linux) = spec.linux_mut() {
        let mut masked = linux.masked_paths().clone().unwrap_or_default();
        for path in ["/proc/interrupts", "/sys/devices/virtual/powercap"] {
            if !masked.iter().any(|p| p == path) {
                masked.push(path.to_owned());
            }
        }
        linux.set_masked_paths(Some(masked));
    }
}

/// Writes [`default_spec`] (or [`rootless_spec`] for the caller's effective uid and gid) as
/// `bundle/config.json`, tab-indented as runc writes it, and returns its path. An existing
/// `config.json` is never replaced: [`OciError::SpecExists`].
pub fn write_default_spec(bundle: &Path, rootless: bool) -> Result<PathBuf, OciError> {
    let spec = if rootless {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        rootless_spec(uid, gid)
    } else {
        default_spec()
    };
    let path = if bundle.as_os_str().is_empty() || bundle == Path::new(".") {
        PathBuf::from(CONFIG_FILE)
    } else {
        bundle.join(CONFIG_FILE)
    };
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, formatter);
    spec.serialize(&mut serializer).map_err(|source| OciError::Encode {
        what: "the default spec",
        source,
    })?;
    text.push(b'\n');
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::AlreadyExists => return Err(OciError::SpecExists { path }),
        Err(error) => return Err(OciError::io("create", &path, error)),
    };
    if let Err(error) = file.write_all(&text).and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(&path);
        return Err(OciError::io("write", &path, error));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceType;

    #[test]
    fn the_default_is_runcs() {
        let spec = default_spec();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let linux = spec.linux().as_ref().unwrap();
        let kinds: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|ns| ns.typ()).collect();
        assert!(!kinds.contains(&LinuxNamespaceType::User));
        assert!(kinds.contains(&LinuxNamespaceType::Network));
        let devices = linux.resources().as_ref().unwrap().devices().as_ref().unwrap();
        assert!(!devices[0].allow());
        assert_eq!(devices[0].access().as_deref(), Some("rwm"));
        let json = serde_json::to_value(&spec).unwrap();
        assert!(json.get("annotations").is_none());
        assert_eq!(json["ociVersion"], OCI_VERSION);
    }

    #[test]
    fn rootless_maps_the_caller_to_root() {
        let spec = rootless_spec(1000, 1001);
        let linux = spec.linux().as_ref().unwrap();
        let kinds: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|ns| ns.typ()).collect();
        assert!(kinds.contains(&LinuxNamespaceType::User));
        assert!(!kinds.contains(&LinuxNamespaceType::Network));
        let uid = &linux.uid_mappings().as_ref().unwrap()[0];
        let gid = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!((uid.container_id(), uid.host_id(), uid.size()), (0, 1000, 1));
        assert_eq!((gid.container_id(), gid.host_id(), gid.size()), (0, 1001, 1));
        assert!(linux.resources().is_none());
    }
}
