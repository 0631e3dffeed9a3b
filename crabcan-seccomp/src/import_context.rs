//! What the conditional rules of an OCI / Docker profile (`includes` / `excludes` on `caps`,
//! `arches`, `minKernel`) are resolved against: an [`ImportContext`] the caller fills in, so
//! one JSON text always imports to the same profile for the same context, whatever the host.
//! [`running_kernel`] reads the host's kernel version for callers that want it.

use crate::arch::Arch;

/// The container a profile is imported for (the same example runs as the unit test
/// `the_documented_example_holds`).
///
/// ```no_run
/// use crabcan_seccomp::{Arch, ImportContext, Profile};
///
/// let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
///     {"names": ["read", "write", "execve", "exit_group"], "action": "SCMP_ACT_ALLOW"},
///     {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}}]}"#;
/// let keeps_chroot = ImportContext { capabilities: &["CAP_SYS_CHROOT"], kernel: Some((6, 1)), arch: Arch::X86_64 };
/// assert_eq!(Profile::from_oci_json_with(json, &keeps_chroot)?.rules.len(), 5);
/// let keeps_none = ImportContext { capabilities: &[], ..keeps_chroot };
/// assert_eq!(Profile::from_oci_json_with(json, &keeps_none)?.rules.len(), 4);
/// # Ok::<(), crabcan_seccomp::SeccompError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportContext<'a> {
    /// The capabilities the container keeps (its bounding set), as `CAP_SYS_ADMIN` or
    /// `SYS_ADMIN`, any case. A rule with `includes.caps` applies only if every capability
    /// listed is here; a rule with `excludes.caps` is skipped if any capability listed is here
    /// (as Docker does with the container's bounding set).
    pub capabilities: &'a [&'a str],
    /// The kernel the filter will run on, `(major, minor)`, compared with `minKernel`; `None`
    /// for unknown, which counts every `minKernel` as met (as on the newest kernel).
    pub kernel: Option<(u32, u32)>,
    /// The architecture the filter is for: `includes.arches` / `excludes.arches` are matched
    /// against its names, and syscall names it lacks but another architecture has are skipped.
    pub arch: Arch,
}

impl<'a> ImportContext<'a> {
    /// A container that keeps `capabilities`, on this host: the running kernel
    /// ([`running_kernel`]) and [`Arch::NATIVE`].
    pub fn for_this_host(capabilities: &'a [&'a str]) -> Self {
        Self {
            capabilities,
            kernel: running_kernel(),
            arch: Arch::NATIVE,
        }
    }

    /// True if the container keeps `capability` (`CAP_` prefix and case do not matter).
    pub fn keeps(&self, capability: &str) -> bool {
        let wanted = capability_key(capability);
        self.capabilities.iter().any(|kept| capability_key(kept) == wanted)
    }

    /// True if the kernel is at least `wanted` (or unknown).
    pub(crate) fn kernel_at_least(&self, wanted: (u32, u32)) -> bool {
        match self.kernel {
            Some(kernel) => kernel >= wanted,
            None => true,
        }
    }
}

/// `cap_sys_admin`, `CAP_SYS_ADMIN` and `SYS_ADMIN` all become `SYS_ADMIN`.
fn capability_key(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("CAP_") {
        Some(rest) => rest.to_owned(),
        None => upper,
    }
}

/// Parses `major.minor[...]` (`6.18.44-fc`, `5.8`, `5`) into a comparable pair.
pub(crate) fn parse_kernel_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |minor| minor.parse().ok())?;
    Some((major, minor))
}

/// The release of the running kernel (`uname -r`) as `(major, minor)`, or `None` if it cannot
/// be read or parsed.
pub fn running_kernel() -> Option<(u32, u32)> {
    // SAFETY: utsname is plain bytes; an all-zero value is valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname that outlives the call.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let release: Vec<u8> = uts.release.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    parse_kernel_version(&String::from_utf8_lossy(&release))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_example_holds() {
        use crate::{Arch, Profile};
        let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "write", "execve", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}}]}"#;
        let keeps_chroot = ImportContext {
            capabilities: &["CAP_SYS_CHROOT"],
            kernel: Some((6, 1)),
            arch: Arch::X86_64,
        };
        assert_eq!(Profile::from_oci_json_with(json, &keeps_chroot).unwrap().rules.len(), 5);
        let keeps_none = ImportContext {
            capabilities: &[],
            ..keeps_chroot
        };
        assert_eq!(Profile::from_oci_json_with(json, &keeps_none).unwrap().rules.len(), 4);
    }

    use super::*;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("6.18.44-fc-v595"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5"), Some((5, 0)));
        assert_eq!(parse_kernel_version("x.y"), None);
        assert!(running_kernel().is_some());
    }

    #[test]
    fn capability_names_match_loosely() {
        let context = ImportContext {
            capabilities: &["CAP_SYS_CHROOT", "net_raw"],
            kernel: None,
            arch: Arch::X86_64,
        };
        assert!(context.keeps("CAP_SYS_CHROOT"));
        assert!(context.keeps("sys_chroot"));
        assert!(context.keeps("CAP_NET_RAW"));
        assert!(!context.keeps("CAP_SYS_ADMIN"));
        assert!(context.kernel_at_least((99, 0)));
    }
}
