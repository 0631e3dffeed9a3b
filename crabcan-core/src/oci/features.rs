//! `crabcan features`: the OCI features document (runtime-spec `features.md`), saying what
//! crabcan's OCI mode recognizes. Conservative: a feature is listed only when crabcan-core
//! implements it.

use oci_spec::runtime::{
    Apparmor, Arch, Cgroup, Features, IDMap, LinuxFeature, LinuxNamespaceType, LinuxSeccompAction, MountExtensions,
    Seccomp, Selinux,
};

/// The oldest runtime spec version crabcan reads.
pub const OCI_VERSION_MIN: &str = "1.0.0";

/// The mount options the bundle loader takes (`dev`/`rdev` are taken and overruled: every
/// mount but devpts is nodev).
pub const MOUNT_OPTIONS: &[&str] = &[
    "bind",
    "rbind",
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "nosymfollow",
    "symfollow",
    "nodiratime",
    "diratime",
    "relatime",
    "noatime",
    "strictatime",
    "atime",
    "sync",
    "dirsync",
    "async",
    "defaults",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnosymfollow",
    "rsymfollow",
    "rnodiratime",
    "rdiratime",
    "rnoatime",
    "rrelatime",
    "rstrictatime",
    "ratime",
    "idmap",
    "ridmap",
    "tmpcopyup",
];

/// The features document. `mountExtensions.idmap.enabled` is [`idmapped_mounts_supported`]:
/// the `idmap`/`ridmap` options and a mount's `uidMappings` (the container's own) work there.
pub fn features() -> Features {
    let mut features = Features::default();
    features.set_oci_version_min(OCI_VERSION_MIN.to_owned());
    features.set_oci_version_max(super::OCI_VERSION.to_owned());
    features.set_hooks(Some(
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ]
        .map(str::to_owned)
        .to_vec(),
    ));
    features.set_mount_options(Some(MOUNT_OPTIONS.iter().map(|o| o.to_string()).collect()));

    let mut linux = LinuxFeature::default();
    linux.set_namespaces(Some(vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Cgroup,
    ]));
    let mut capabilities: Vec<String> = caps::all().into_iter().map(|cap| cap.to_string()).collect();
    capabilities.sort();
    linux.set_capabilities(Some(capabilities));

    let mut cgroup = Cgroup::default();
    cgroup.set_v1(Some(true));
    cgroup.set_v2(Some(true));
    cgroup.set_systemd(Some(false));
    cgroup.set_systemd_user(Some(false));
    cgroup.set_rdma(Some(true));
    linux.set_cgroup(Some(cgroup));

    // What crabcan-seccomp's OCI import accepts.
    let mut seccomp = Seccomp::default();
    seccomp.set_enabled(Some(true));
    seccomp.set_actions(Some(vec![
        LinuxSeccompAction::ScmpActAllow,
        LinuxSeccompAction::ScmpActErrno,
        LinuxSeccompAction::ScmpActKill,
        LinuxSeccompAction::ScmpActKillThread,
        LinuxSeccompAction::ScmpActKillProcess,
        LinuxSeccompAction::ScmpActTrap,
        LinuxSeccompAction::ScmpActLog,
    ]));
    seccomp.set_operators(Some(
        [
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
        ]
        .map(str::to_owned)
        .to_vec(),
    ));
    seccomp.set_archs(Some(vec![Arch::ScmpArchX86_64]));
    seccomp.set_known_flags(Some(Vec::new()));
    seccomp.set_supported_flags(Some(Vec::new()));
    linux.set_seccomp(Some(seccomp));

    let mut apparmor = Apparmor::default();
    apparmor.set_enabled(Some(false));
    linux.set_apparmor(Some(apparmor));
    let mut selinux = Selinux::default();
    selinux.set_enabled(Some(false));
    linux.set_selinux(Some(selinux));

    let mut idmap = IDMap::default();
    idmap.set_enabled(Some(idmapped_mounts_supported()));
    let mut extensions = MountExtensions::default();
    extensions.set_idmap(Some(idmap));
    linux.set_mount_extensions(Some(extensions));

    features.set_linux(Some(linux));
    features
}

/// Whether this kernel has idmapped mounts (`mount_setattr` with `MOUNT_ATTR_IDMAP`): Linux 5.12
/// or later, read from `/proc/sys/kernel/osrelease`. Whether a given filesystem supports them
/// (tmpfs only from 6.3, for example) is known only when a mount is tried; crabcan-core's
/// idmapped-mount code falls back with a warning there.
pub fn idmapped_mounts_supported() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|release| kernel_version(&release))
        .is_some_and(|version| version >= (5, 12))
}

/// `(major, minor)` of a kernel release such as `6.1.0-18-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut numbers = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.1.0-18-amd64\n"), Some((6, 1)));
        assert_eq!(kernel_version("5.12"), Some((5, 12)));
        assert_eq!(kernel_version("4.19.0+"), Some((4, 19)));
        assert_eq!(kernel_version("garbage"), None);
    }

    #[test]
    fn the_document_has_the_spec_fields() {
        let json = serde_json::to_value(features()).unwrap();
        for key in ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux"] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        assert_eq!(json["hooks"].as_array().unwrap().len(), 6, "every hook kind runs");
        let linux = &json["linux"];
        assert!(linux["namespaces"].as_array().unwrap().contains(&"user".into()));
        assert!(linux["capabilities"]
            .as_array()
            .unwrap()
            .contains(&"CAP_SYS_ADMIN".into()));
        assert_eq!(linux["apparmor"]["enabled"], false);
        assert_eq!(linux["selinux"]["enabled"], false);
        assert_eq!(linux["cgroup"]["systemd"], false);
        assert!(linux["seccomp"]["actions"]
            .as_array()
            .unwrap()
            .contains(&"SCMP_ACT_ERRNO".into()));
        assert!(linux["mountExtensions"]["idmap"]["enabled"].is_boolean());
        let options = json["mountOptions"].as_array().unwrap();
        for option in ["rro", "rslave", "idmap", "nosymfollow"] {
            assert!(options.contains(&option.into()), "{option}");
        }
    }

    #[test]
    fn every_listed_mount_option_is_taken_by_the_bundle_loader() {
        for option in MOUNT_OPTIONS {
            let parsed = super::super::bundle::mount_option_is_known(option);
            assert!(parsed, "{option} is listed but not parsed");
        }
    }
}
