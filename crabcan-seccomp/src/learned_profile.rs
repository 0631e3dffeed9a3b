//! A learned profile as data ([`LearnedProfile`]) and as a file: the allowlist a learning run
//! gives ([`LearnedProfile::from_learned`]), merged with the file already there (several runs
//! of a test suite build one profile), written atomically as Docker / OCI JSON:
//! `defaultAction` `SCMP_ACT_ERRNO` (EPERM), the allowed syscalls sorted, one name per line,
//! then the default profile's argument rules for the calls it constrains (`clone` without
//! namespace flags, `socket` but AF_VSOCK, `personality`, `ioctl` but TIOCSTI, the chmod family
//! without set-id bits) instead of a blanket allow, then the calls that keep another errno
//! (`clone3` and calls newer than the default profile get ENOSYS, so programs fall back as they
//! did while learning).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::SeccompError;
use crate::file::read_profile_file;
use crate::import_context::ImportContext;
use crate::learn::Learned;
use crate::profile::{Action, Profile, Rule};
use crate::tables::ShippedProfile;
use crate::Arch;

/// The errno of every call a learned profile does not name.
const EPERM: u32 = libc::EPERM as u32;

/// How a learned syscall is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Under the default profile's argument rules, when it has some for the call (`clone`
    /// without namespace flags, ...); whatever the arguments otherwise.
    AsDefault,
    /// Whatever the arguments (learned without a profile enforced).
    Any,
}

/// A learned allowlist: what a learning run (or several) saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnedProfile {
    /// The syscalls to allow, and how.
    pub allowed: BTreeMap<String, Scope>,
    /// Syscalls that fail with an errno other than EPERM (the profile's default), as they did
    /// while learning: ENOSYS for `clone3` and for calls the default profile does not know.
    pub errno: BTreeMap<String, u32>,
}

impl LearnedProfile {
    /// The allowlist of one learning run: what it let through, under the default profile's
    /// argument rules when a profile was enforced, and the non-EPERM errnos of what it denied.
    pub fn from_learned(learned: &Learned) -> LearnedProfile {
        let default = ShippedProfile::Default.profile();
        let scope = |name: &str| match learned.confined && constrains(&default, name) {
            true => Scope::AsDefault,
            false => Scope::Any,
        };
        let allowed = learned.allowed.iter().map(|name| (name.clone(), scope(name))).collect();
        let errno = learned
            .denied
            .iter()
            .filter_map(|(name, action)| match action {
                Action::Errno(errno) if *errno != EPERM => Some((name.clone(), *errno)),
                _ => None,
            })
            .collect();
        LearnedProfile { allowed, errno }
    }

    /// Adds what `other` allows (the wider scope wins) and its errnos.
    pub fn merge(&mut self, other: &LearnedProfile) {
        for (name, scope) in &other.allowed {
            let kept = self.allowed.entry(name.clone()).or_insert(*scope);
            *kept = (*kept).max(*scope);
        }
        for (name, errno) in &other.errno {
            self.errno.entry(name.clone()).or_insert(*errno);
        }
    }

    /// The learned allowlist in the profile at `path`, or `None` when there is no file. Its
    /// default action must be an errno (an allowlist); a call with an unconditional allow rule
    /// is allowed whatever its arguments, one with only conditional allow rules under the
    /// default profile's, and unconditional rules with another errno than the default's are
    /// kept.
    pub fn read(path: &Path) -> Result<Option<LearnedProfile>, SeccompError> {
        match std::fs::symlink_metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        let bytes = read_profile_file(path)?;
        let context = ImportContext {
            capabilities: &[],
            kernel: None,
            arch: Arch::NATIVE,
        };
        let profile =
            Profile::from_oci_json_bytes_with(&bytes, &context).map_err(|error| SeccompError::NotMergeable {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
        let Action::Errno(default_errno) = profile.default_action else {
            return Err(SeccompError::NotMergeable {
                path: path.to_owned(),
                reason: format!(
                    "its defaultAction is {}, so it is no allowlist; give a new path or one of a learned profile",
                    profile.default_action
                ),
            });
        };
        let mut learned = LearnedProfile::default();
        for rule in &profile.rules {
            match rule.action {
                Action::Allow | Action::Log => {
                    let scope = if rule.args.is_empty() {
                        Scope::Any
                    } else {
                        Scope::AsDefault
                    };
                    let kept = learned.allowed.entry(rule.syscall.clone()).or_insert(scope);
                    *kept = (*kept).max(scope);
                }
                Action::Errno(errno) if rule.args.is_empty() && errno != default_errno => {
                    learned.errno.insert(rule.syscall.clone(), errno);
                }
                _ => {}
            }
        }
        Ok(Some(learned))
    }

    /// The profile: EPERM by default; the calls allowed whatever their arguments, sorted; the
    /// default profile's argument rules (its EPERM ones are the default already) of the calls
    /// allowed under them; the calls that keep another errno.
    pub fn profile(&self) -> Profile {
        let default = ShippedProfile::Default.profile();
        let conditional = |name: &str| -> Vec<Rule> {
            default
                .rules
                .iter()
                .filter(|rule| rule.syscall == name && rule.action != Action::Errno(EPERM))
                .cloned()
                .collect()
        };
        let mut rules: Vec<Rule> = Vec::new();
        let mut argument_rules: Vec<Rule> = Vec::new();
        for (name, scope) in &self.allowed {
            if *scope == Scope::AsDefault && constrains(&default, name) {
                argument_rules.extend(conditional(name));
            } else {
                rules.push(Rule::new(name, Action::Allow));
            }
        }
        rules.extend(argument_rules);
        rules.extend(
            self.errno
                .iter()
                .filter(|(name, errno)| !self.allowed.contains_key(*name) && **errno != EPERM)
                .map(|(name, errno)| Rule::new(name, Action::Errno(*errno))),
        );
        Profile {
            default_action: Action::Errno(EPERM),
            rules,
        }
    }

    /// The profile as Docker / OCI JSON, one syscall name per line.
    pub fn to_json(&self) -> String {
        let mut json = self.profile().to_oci_json();
        json.push('\n');
        json
    }

    /// Merges this allowlist into the learned profile at `path` (if there is one) and writes
    /// the result there atomically (a new file in the same folder, renamed over it: a reader
    /// sees the old profile or the new one, and a symlink at `path` is replaced, not
    /// followed). Returns what was written.
    pub fn write_merged(&self, path: &Path) -> Result<LearnedProfile, SeccompError> {
        let mut merged = LearnedProfile::read(path)?.unwrap_or_default();
        merged.merge(self);
        write_atomically(path, &merged.to_json())?;
        Ok(merged)
    }
}

/// Whether `profile` has argument rules for `name`.
fn constrains(profile: &Profile, name: &str) -> bool {
    profile
        .rules
        .iter()
        .any(|rule| rule.syscall == name && !rule.args.is_empty())
}

/// Writes `text` to a new file next to `path`, then renames it over `path`.
fn write_atomically(path: &Path, text: &str) -> Result<(), SeccompError> {
    let failed = |operation, source| SeccompError::WriteFile {
        path: path.to_owned(),
        operation,
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| failed("naming the file", std::io::Error::from_raw_os_error(libc::EISDIR)))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let temp = folder.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temp)
        .map_err(|source| failed("open(O_CREAT|O_EXCL)", source))
        .and_then(|mut file| {
            file.write_all(text.as_bytes())
                .map_err(|source| failed("write", source))?;
            file.sync_all().map_err(|source| failed("fsync", source))
        })
        .and_then(|()| std::fs::rename(&temp, path).map_err(|source| failed("rename", source)));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn learned(allowed: &[&str], denied: &[(&str, u32)], confined: bool) -> Learned {
        Learned {
            allowed: allowed.iter().map(|name| name.to_string()).collect::<BTreeSet<_>>(),
            denied: denied
                .iter()
                .map(|(name, errno)| (name.to_string(), Action::Errno(*errno)))
                .collect(),
            confined,
            ..Learned::default()
        }
    }

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crabcan-seccomp-learned-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_are_sorted_one_per_line_with_the_default_profiles_argument_rules() {
        let run = learned(
            &["write", "execve", "read", "clone", "exit_group", "socket"],
            &[("clone3", 38), ("mount", 1)],
            true,
        );
        let json = LearnedProfile::from_learned(&run).to_json();
        let document: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(document["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(document["defaultErrnoRet"], 1);
        let first = &document["syscalls"][0];
        assert_eq!(first["action"], "SCMP_ACT_ALLOW");
        assert_eq!(
            first["names"],
            serde_json::json!(["execve", "exit_group", "read", "write"])
        );
        for name in ["execve", "exit_group", "read", "write"] {
            assert!(
                json.contains(&format!("\n        \"{name}\"")),
                "{name} on a line of its own:\n{json}"
            );
        }
        let profile = LearnedProfile::from_learned(&run).profile();
        let clone: Vec<&Rule> = profile.rules.iter().filter(|rule| rule.syscall == "clone").collect();
        assert_eq!(clone.len(), 1, "only the allow rule: EPERM is the default");
        assert_eq!(clone[0].action, Action::Allow);
        assert_eq!(clone[0].args[0].value, 0x7e02_0000, "no namespace flag");
        let socket: Vec<&Rule> = profile.rules.iter().filter(|rule| rule.syscall == "socket").collect();
        assert_eq!(socket.len(), 1);
        assert!(!socket[0].args.is_empty(), "socket but AF_VSOCK");
        assert!(
            profile.rules.contains(&Rule::new("clone3", Action::Errno(38))),
            "clone3 keeps ENOSYS so libc falls back to clone"
        );
        assert!(
            !profile.rules.iter().any(|rule| rule.syscall == "mount"),
            "denied with EPERM: the default"
        );
        assert_eq!(Profile::from_oci_json(&json).unwrap(), profile, "reads back the same");
        profile.check_can_exec().unwrap();
        profile.compile().unwrap();
    }

    #[test]
    fn an_unconfined_run_allows_whatever_the_arguments() {
        let profile = LearnedProfile::from_learned(&learned(&["clone", "execve", "mount"], &[], false)).profile();
        assert!(profile.rules.contains(&Rule::new("clone", Action::Allow)));
        assert!(profile.rules.contains(&Rule::new("mount", Action::Allow)));
    }

    #[test]
    fn merging_two_runs_gives_the_union() {
        let dir = scratch("union");
        let path = dir.join("profile.json");
        let first = LearnedProfile::from_learned(&learned(&["execve", "read", "clone"], &[("clone3", 38)], true));
        let second = LearnedProfile::from_learned(&learned(&["execve", "write", "mkdir"], &[], true));
        let written = first.write_merged(&path).unwrap();
        assert_eq!(written, first);
        let union = second.write_merged(&path).unwrap();
        let names: Vec<&str> = union.allowed.keys().map(String::as_str).collect();
        assert_eq!(names, ["clone", "execve", "mkdir", "read", "write"]);
        assert_eq!(
            union.allowed["clone"],
            Scope::AsDefault,
            "read back under the default's rules"
        );
        assert_eq!(union.errno.get("clone3"), Some(&38));
        assert_eq!(LearnedProfile::read(&path).unwrap(), Some(union.clone()));
        // Writing the same again changes nothing, byte for byte.
        let before = std::fs::read_to_string(&path).unwrap();
        second.write_merged(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_wider_scope_wins_a_merge() {
        let mut confined = LearnedProfile::from_learned(&learned(&["clone"], &[], true));
        confined.merge(&LearnedProfile::from_learned(&learned(&["clone"], &[], false)));
        assert_eq!(confined.allowed["clone"], Scope::Any);
    }

    #[test]
    fn a_file_that_is_no_allowlist_is_not_merged_into() {
        let dir = scratch("not-allowlist");
        let path = dir.join("allow-all.json");
        std::fs::write(&path, r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
        let error = LearnedProfile::default().write_merged(&path).unwrap_err();
        assert!(error.to_string().contains("no allowlist"), "{error}");
        assert_eq!(error.path(), Some(path.as_path()));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            LearnedProfile::default().write_merged(&path),
            Err(SeccompError::NotMergeable { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_at_the_path_is_replaced_not_followed() {
        let dir = scratch("symlink");
        let target = dir.join("elsewhere.json");
        std::fs::write(&target, r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#).unwrap();
        let path = dir.join("profile.json");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        LearnedProfile::from_learned(&learned(&["execve"], &[], true))
            .write_merged(&path)
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#
        );
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
