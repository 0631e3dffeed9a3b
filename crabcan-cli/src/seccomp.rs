//! Which seccomp filter the container gets: a shipped profile precompiled at build time
//! (see build.rs), a Docker/OCI JSON profile compiled now, or none (`unconfined`). A JSON
//! profile's conditional rules are resolved for the container crabcan runs: the capabilities
//! it keeps, this host's kernel and architecture.

use std::path::Path;

use crabcan_seccomp::{CompiledFilter, ImportContext, Profile, SeccompError, ShippedProfile};

include!(concat!(env!("OUT_DIR"), "/shipped_bpf.rs"));

/// The precompiled filter of a shipped profile.
pub fn precompiled(shipped: ShippedProfile) -> &'static [u8] {
    SHIPPED_BPF
        .iter()
        .find(|(built, _)| *built == shipped)
        .map_or(&[], |(_, bytes)| *bytes)
}

/// The filter for `--seccomp NAME` / `--seccomp-profile FILE`; `Ok(None)` for `unconfined`.
/// `capabilities` are the names of the capabilities the container keeps (`CAP_CHOWN`, ...).
pub fn filter_for(
    name: &str,
    profile_file: Option<&Path>,
    capabilities: &[String],
) -> Result<Option<CompiledFilter>, String> {
    if let Some(path) = profile_file {
        let profile = import_profile(path, capabilities)?;
        log_rules(&profile);
        return profile.compile().map(Some).map_err(|error| describe(path, error));
    }
    if name == "unconfined" {
        log::warn!("seccomp filtering is off (--seccomp unconfined): the container may make any syscall");
        return Ok(None);
    }
    let shipped = ShippedProfile::from_name(name).ok_or_else(|| {
        format!(
            "unknown seccomp profile {name:?}; use {} or unconfined, or --seccomp-profile FILE",
            ShippedProfile::names()
        )
    })?;
    if log::log_enabled!(log::Level::Debug) {
        log_rules(&shipped.profile());
    }
    CompiledFilter::from_bytes(precompiled(shipped))
        .map(Some)
        .map_err(|error| format!("the built-in {name} seccomp filter: {error}"))
}

/// The JSON profile at `path`, for a container keeping `capabilities`, refused if no command
/// could start under it.
fn import_profile(path: &Path, capabilities: &[String]) -> Result<Profile, String> {
    let capabilities: Vec<&str> = capabilities.iter().map(String::as_str).collect();
    let context = ImportContext::for_this_host(&capabilities);
    let profile = Profile::from_oci_json_file_with(path, &context).map_err(|error| describe(path, error))?;
    profile.check_can_exec().map_err(|error| describe(path, error))?;
    Ok(profile)
}

/// Errors about the file itself name it already; the others get its name in front.
fn describe(path: &Path, error: SeccompError) -> String {
    match error.path() {
        Some(_) => error.to_string(),
        None => format!("the seccomp profile {}: {error}", path.display()),
    }
}

fn log_rules(profile: &Profile) {
    log::debug!("seccomp default action: {}", profile.default_action);
    for rule in &profile.rules {
        log::debug!("seccomp rule: {rule}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precompiled_filters_match_the_rule_tables() {
        assert_eq!(SHIPPED_BPF.len(), ShippedProfile::ALL.len());
        for shipped in ShippedProfile::ALL {
            let fresh = shipped.profile().compile().unwrap();
            assert_eq!(
                precompiled(shipped),
                fresh.to_bytes().as_slice(),
                "{shipped} drifted: rebuild"
            );
        }
    }

    /// A fresh directory for this test's files.
    fn scratch(test: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("crabcan-cli-seccomp-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn error_for(path: &std::path::Path) -> String {
        filter_for("default", Some(path), &[]).unwrap_err()
    }

    #[test]
    fn profile_files_that_are_not_json_files_are_refused_in_one_line() {
        let message = error_for(std::path::Path::new("/dev/zero"));
        assert_eq!(
            message,
            "the seccomp profile /dev/zero is not a regular file but a character device; give a JSON file"
        );
        let dir = scratch("not-json");
        let message = error_for(&dir);
        assert!(message.contains("is not a regular file but a directory"), "{message}");
        let missing = dir.join("missing.json");
        let message = error_for(&missing);
        assert!(
            message.starts_with(&format!("cannot read the seccomp profile {}: ", missing.display())),
            "{message}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn profiles_that_cannot_start_a_command_are_refused() {
        let dir = scratch("deny-exec");
        for action in ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL"] {
            let path = dir.join("deny.json");
            std::fs::write(&path, format!(r#"{{"defaultAction": "{action}"}}"#)).unwrap();
            let message = error_for(&path);
            assert!(
                message.starts_with(&format!("the seccomp profile {}: ", path.display())),
                "{message}"
            );
            assert!(message.contains("no command could start"), "{message}");
        }
        let path = dir.join("array.json");
        std::fs::write(&path, "[]").unwrap();
        let message = error_for(&path);
        assert!(
            message.contains("a seccomp profile object") && !message.contains("OciProfile"),
            "{message}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_profile_names_are_refused() {
        let message = filter_for("nope", None, &[]).unwrap_err();
        assert!(
            message.contains("nope") && message.contains("use default, tutorial or unconfined"),
            "{message}"
        );
        assert!(filter_for("unconfined", None, &[]).unwrap().is_none());
        assert!(filter_for("default", None, &[]).unwrap().is_some());
    }

    /// A rule under `includes.caps` applies when the container keeps the capability, one
    /// under `excludes.caps` when it does not.
    #[test]
    fn conditional_rules_follow_the_capabilities_kept() {
        let dir = scratch("caps");
        let path = dir.join("caps.json");
        let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["execve", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}"#;
        std::fs::write(&path, json).unwrap();
        let names = |capabilities: &[&str]| -> Vec<String> {
            let capabilities: Vec<String> = capabilities.iter().map(|name| name.to_string()).collect();
            let profile = import_profile(&path, &capabilities).unwrap();
            profile.rules.into_iter().map(|rule| rule.syscall).collect()
        };
        assert_eq!(names(&["CAP_SYS_CHROOT"]), ["execve", "exit_group", "chroot", "clone3"]);
        assert_eq!(names(&[]), ["execve", "exit_group", "clone3"]);
        assert_eq!(names(&["CAP_SYS_ADMIN"]), ["execve", "exit_group"]);
        assert!(filter_for("default", Some(&path), &["CAP_SYS_CHROOT".to_owned()])
            .unwrap()
            .is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
