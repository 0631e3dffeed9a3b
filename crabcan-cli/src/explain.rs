//! Printing a [`Confinement`] (`crabcan --explain`, `crabcan explain ID`): as text for people,
//! one section per kind of confinement, or as the JSON of the data itself for programs.

use std::fmt::Write as _;

use crabcan_core::Confinement;

/// `text` or `json`, as `--explain=FORMAT` takes it.
pub fn render(confinement: &Confinement, format: &str) -> Result<String, String> {
    if format == "json" {
        return serde_json::to_string_pretty(confinement)
            .map(|mut text| {
                text.push('\n');
                text
            })
            .map_err(|error| format!("cannot encode the confinement: {error}"));
    }
    Ok(text(confinement))
}

/// `yes` / `no`.
fn yes(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// A list on one line, or `(none)`.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(" ")
    }
}

/// The confinement as text: a `name: value` line per field, indented lines per item.
pub fn text(c: &Confinement) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("command: {}", crabcan_core::spec::join_command(&c.command)));
    line(format!("rootfs: {}", c.rootfs.display()));
    line(format!("hostname: {}", c.hostname));
    line(format!("namespaces: {}", c.namespaces.join(" ")));
    match (&c.id_maps.uid_map, &c.id_maps.gid_map) {
        (Some(uid), Some(gid)) => line(format!("id maps ({}): uid {uid}, gid {gid}", c.id_maps.kind)),
        _ => line(format!(
            "id maps ({}): the host's ids, no user namespace",
            c.id_maps.kind
        )),
    }
    let groups = c.user.additional_gids.iter().map(u32::to_string).collect::<Vec<_>>();
    line(format!(
        "user: uid {} gid {} groups {}",
        c.user.uid,
        c.user.gid,
        list(&groups)
    ));
    line("mounts (in order):".to_owned());
    for mount in &c.mounts {
        let source = match mount.source.as_str() {
            "" => String::new(),
            same if same == mount.fstype => String::new(),
            other => format!(" from {other}"),
        };
        let flags = match mount.flags.is_empty() {
            true => String::new(),
            false => format!(" ({})", mount.flags.join(", ")),
        };
        line(format!("  {}: {}{source}{flags}", mount.target, mount.fstype));
    }
    line(format!("masked paths: {}", list(&c.masked_paths)));
    line(format!("read-only paths: {}", list(&c.read_only_paths)));
    line("capabilities:".to_owned());
    let caps = &c.capabilities;
    for (set, names) in [
        ("bounding", &caps.bounding),
        ("effective", &caps.effective),
        ("permitted", &caps.permitted),
        ("inheritable", &caps.inheritable),
        ("ambient", &caps.ambient),
    ] {
        line(format!("  {set}: {}", list(names)));
    }
    line(format!("no_new_privs: {}", yes(c.no_new_privs)));
    let mut seccomp = format!("seccomp: {}", c.seccomp.mode);
    if let Some(output) = &c.seccomp.learning_output {
        let _ = write!(seccomp, " into {}", output.display());
    }
    if let Some(summary) = &c.seccomp.summary {
        let _ = write!(
            seccomp,
            "; default {}; {} of {} syscalls allowed",
            summary.default_action, summary.allowed, summary.known
        );
    }
    line(seccomp);
    if let Some(summary) = &c.seccomp.summary {
        for notable in &summary.notable {
            line(format!("  {}: {}", notable.call, notable.action));
        }
    }
    match &c.cgroup {
        Some(cgroup) => {
            line(format!("cgroup ({}): {}", cgroup.layout, cgroup.path.display()));
            for limit in &cgroup.limits {
                let honoured = match limit.honoured.as_str() {
                    "yes" => String::new(),
                    other => format!(" (honoured: {other})"),
                };
                line(format!(
                    "  {}: {} = {}{honoured}",
                    limit.limit,
                    limit.file.display(),
                    limit.value
                ));
            }
        }
        None => line("cgroup: none (no limits)".to_owned()),
    }
    line("rlimits:".to_owned());
    for rlimit in &c.rlimits {
        line(format!(
            "  {}: soft {} hard {}",
            rlimit.resource, rlimit.soft, rlimit.hard
        ));
    }
    if c.not_honoured.is_empty() {
        line("not honoured on this host: (none)".to_owned());
    } else {
        line("not honoured on this host:".to_owned());
        for item in &c.not_honoured {
            line(format!("  {}: {}; {}", item.what, item.reason, item.effect));
        }
    }
    out
}
