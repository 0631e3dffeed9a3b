//! Capabilities: the allowlist a container keeps (Docker's, less CAP_MKNOD), `--cap-add`/`--cap-drop`
//! adjustments, and applying the result to the bounding, inheritable, ambient, permitted and
//! effective sets of the container process. An allowlist, not a drop list: a capability a future
//! kernel adds is never kept by accident.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

use crate::error::ConfigError;

/// The capabilities a container keeps unless told otherwise: Docker's default set without
/// CAP_MKNOD (in a user namespace it cannot make a usable device node anyway; `--cap-add MKNOD`
/// brings it back).
pub const DEFAULT_CAPABILITIES: [Capability; 13] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// The set of capabilities the container's process keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitySet(pub CapsHashSet);

impl Default for CapabilitySet {
    fn default() -> Self {
        CapabilitySet(DEFAULT_CAPABILITIES.into_iter().collect())
    }
}

impl CapabilitySet {
    /// The default set with `--cap-drop` names removed, then `--cap-add` names added (so
    /// `--cap-drop ALL --cap-add NET_BIND_SERVICE` keeps just that one). `ALL` is accepted in
    /// both lists.
    pub fn adjusted(add: &[String], drop: &[String]) -> Result<CapabilitySet, ConfigError> {
        let mut set = CapabilitySet::default().0;
        for name in drop {
            for capability in parse_capabilities(name)? {
                set.remove(&capability);
            }
        }
        for name in add {
            set.extend(parse_capabilities(name)?);
        }
        Ok(CapabilitySet(set))
    }

    /// The set of the capabilities `names` (as OCI configs list them: `CAP_CHOWN`, ...).
    pub fn from_names(names: &[String]) -> Result<CapabilitySet, ConfigError> {
        let mut set = CapsHashSet::new();
        for name in names {
            set.extend(parse_capabilities(name)?);
        }
        Ok(CapabilitySet(set))
    }

    /// Whether the set keeps `capability`.
    pub fn contains(&self, capability: Capability) -> bool {
        self.0.contains(&capability)
    }

    fn as_hash_set(&self) -> CapsHashSet {
        self.0.clone()
    }

    /// The names, sorted (for logs and messages).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.iter().map(|c| c.to_string()).collect();
        names.sort();
        names
    }
}

/// Parses `NET_ADMIN`, `cap_net_admin` or `ALL`.
pub fn parse_capabilities(name: &str) -> Result<Vec<Capability>, ConfigError> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(caps::all().into_iter().collect());
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    Capability::from_str(&full)
        .map(|capability| vec![capability])
        .map_err(|_| ConfigError::UnknownCapability { name: name.to_owned() })
}

/// Drops every capability outside `keep` from the bounding set. Needs CAP_SETPCAP, so it runs
/// before the other sets are reduced. Each capability is dropped without first asking whether
/// the set holds it (dropping one it lacks succeeds): one `prctl` per capability, not two. One
/// this kernel does not know (EINVAL) is in no set to drop it from.
pub fn restrict_bounding_set(keep: &CapabilitySet) -> Result<(), nix::errno::Errno> {
    for capability in caps::all() {
        if keep.contains(capability) {
            continue;
        }
        let number = libc::c_ulong::from(capability.index());
        // SAFETY: PR_CAPBSET_DROP takes a capability number and reads or writes no memory.
        let dropped = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, number, 0, 0, 0) };
        match nix::errno::Errno::result(dropped) {
            Ok(_) | Err(nix::errno::Errno::EINVAL) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Sets the process's own capability sets for the command: `keep` as permitted and effective when
/// the command runs as root in the container, nothing for another uid (as Docker does); the
/// inheritable and ambient sets are always empty, so nothing leaks through execve to a program
/// with file capabilities.
pub fn apply_process_sets(keep: &CapabilitySet, as_root: bool) -> Result<(), caps::errors::CapsError> {
    let kept = if as_root {
        keep.as_hash_set()
    } else {
        CapsHashSet::new()
    };
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    caps::set(None, CapSet::Effective, &kept)?;
    caps::set(None, CapSet::Permitted, &kept)?;
    Ok(())
}

/// Sets the process's capability sets to exactly `sets` (the bounding set is restricted
/// separately, before the identity changes), the ambient one last, as it must be a subset of
/// the permitted and inheritable ones.
pub fn apply_given_sets(sets: &crate::config::CapabilitySets) -> Result<(), caps::errors::CapsError> {
    // Each call is one capset(2) with the other sets unchanged, so the order keeps every step
    // legal: inheritable while permitted is still whole, effective before permitted shrinks
    // below it, ambient last.
    caps::clear(None, CapSet::Ambient)?;
    caps::set(None, CapSet::Inheritable, &sets.inheritable.as_hash_set())?;
    caps::set(None, CapSet::Effective, &sets.effective.as_hash_set())?;
    caps::set(None, CapSet::Permitted, &sets.permitted.as_hash_set())?;
    caps::set(None, CapSet::Ambient, &sets.ambient.as_hash_set())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_docker_like_and_safe() {
        let set = CapabilitySet::default();
        assert_eq!(set.0.len(), 13);
        for dangerous in [
            Capability::CAP_MKNOD,
            Capability::CAP_SYS_ADMIN,
            Capability::CAP_SYS_MODULE,
            Capability::CAP_SYS_RAWIO,
            Capability::CAP_SYS_PTRACE,
            Capability::CAP_SYS_BOOT,
            Capability::CAP_DAC_READ_SEARCH,
            Capability::CAP_MAC_ADMIN,
            Capability::CAP_MAC_OVERRIDE,
            Capability::CAP_SYS_TIME,
            Capability::CAP_NET_ADMIN,
            Capability::CAP_BPF,
            Capability::CAP_PERFMON,
            Capability::CAP_CHECKPOINT_RESTORE,
            Capability::CAP_LINUX_IMMUTABLE,
            Capability::CAP_SYS_RESOURCE,
        ] {
            assert!(!set.contains(dangerous), "{dangerous} must not be kept");
        }
    }

    #[test]
    fn add_and_drop_adjust_the_set() {
        let set = CapabilitySet::adjusted(&["net_admin".into()], &["CAP_CHOWN".into(), "KILL".into()]).unwrap();
        let only = CapabilitySet::adjusted(&["NET_BIND_SERVICE".into()], &["ALL".into()]).unwrap();
        assert_eq!(only.names(), vec!["CAP_NET_BIND_SERVICE".to_owned()]);
        assert!(set.contains(Capability::CAP_NET_ADMIN));
        assert!(!set.contains(Capability::CAP_CHOWN));
        assert!(!set.contains(Capability::CAP_KILL));
        let none = CapabilitySet::adjusted(&[], &["all".into()]).unwrap();
        assert!(none.0.is_empty());
        assert!(CapabilitySet::adjusted(&["NOT_A_CAP".into()], &[]).is_err());
    }
}
