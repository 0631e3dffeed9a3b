//! Which seccomp filter the container gets: a shipped profile precompiled at build time
//! (see build.rs), a Docker/OCI JSON profile compiled now, or none (`unconfined`).

use crabcan_seccomp::{CompiledFilter, Profile};

const DEFAULT_BPF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default.bpf"));
const TUTORIAL_BPF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tutorial.bpf"));

/// The precompiled filter of a shipped profile, if `name` is one.
pub fn precompiled(name: &str) -> Option<&'static [u8]> {
    match name {
        "default" => Some(DEFAULT_BPF),
        "tutorial" => Some(TUTORIAL_BPF),
        _ => None,
    }
}

/// The filter for `--seccomp NAME` / `--seccomp-profile FILE`; `Ok(None)` for `unconfined`.
pub fn filter_for(name: &str, profile_file: Option<&std::path::Path>) -> Result<Option<CompiledFilter>, String> {
    if let Some(path) = profile_file {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read the seccomp profile {}: {error}", path.display()))?;
        let profile = Profile::from_oci_json(&text)
            .map_err(|error| format!("the seccomp profile {}: {error}", path.display()))?;
        log_rules(&profile);
        return profile
            .compile()
            .map(Some)
            .map_err(|error| format!("the seccomp profile {}: {error}", path.display()));
    }
    if name == "unconfined" {
        log::warn!("seccomp filtering is off (--seccomp unconfined): the container may make any syscall");
        return Ok(None);
    }
    let unknown =
        || format!("unknown seccomp profile {name:?}; use default, tutorial or unconfined, or --seccomp-profile FILE");
    let bytes = precompiled(name).ok_or_else(unknown)?;
    if log::log_enabled!(log::Level::Debug) {
        log_rules(&Profile::by_name(name).ok_or_else(unknown)?);
    }
    CompiledFilter::from_bytes(bytes)
        .map(Some)
        .map_err(|error| format!("the built-in {name} seccomp filter: {error}"))
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
        for name in ["default", "tutorial"] {
            let fresh = Profile::by_name(name).unwrap().compile().unwrap();
            assert_eq!(
                precompiled(name).unwrap(),
                fresh.to_bytes().as_slice(),
                "{name} drifted: rebuild"
            );
        }
    }

    #[test]
    fn unknown_profile_names_are_refused() {
        assert!(filter_for("nope", None).unwrap_err().contains("nope"));
        assert!(filter_for("unconfined", None).unwrap().is_none());
        assert!(filter_for("default", None).unwrap().is_some());
    }
}
