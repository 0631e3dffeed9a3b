//! A bundle's devices: the nodes `linux.devices` lists and the rules of
//! `linux.resources.devices`, turned into mount steps.
//!
//! crabcan enforces the rules by construction, on cgroup v1 and v2 alike: every filesystem of
//! the container but devpts is `nodev`, so the only device nodes that can be opened are the ones
//! crabcan binds in (or makes and binds) one by one. The rules are evaluated as the device
//! cgroup evaluates them (for each access, the last rule that matches the device decides; a
//! device no rule matches is allowed, as in a cgroup without rules), and a device is put in the
//! container only if they let it be read and written:
//!
//! - crabcan's default devices (`null`, `zero`, `full`, `random`, `urandom`, `tty`) are there
//!   unless a rule naming their type denies them: the blanket "deny all" (`type` `a`) of runc's
//!   and every engine's default spec leaves them, as runc (which allows them again after the
//!   bundle's rules) does; `{"allow": false, "type": "c", "major": 1, "minor": 5}` removes
//!   `/dev/zero`.
//! - a listed device must be allowed by the rules (all of them, but for the numbers of the
//!   default devices, which are judged as those); one they deny is an error.
//!
//! crabcan cannot grant read without write (or the reverse): a node bound in is simply usable.
//! A rule set that would allow only one of them for a device crabcan puts in is refused. (The v1
//! `devices` controller is not written.)
//!
//! A listed character or block device is the host's node bound in: the given path if the host
//! has that very device there, else the node `/sys/dev/{char,block}/MAJOR:MINOR/uevent` names.
//! A bind shares the host's inode, so its mode and owner are the host's; where the bundle asks
//! for others and the container has no user namespace, crabcan makes a node of its own instead
//! (as runc does); in a user namespace, where no node can be made, it binds and warns. A FIFO
//! (`p`) is always made.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::OciError;
use crate::config::IdMapping;
use crate::mounts::{DeviceKind, DeviceNode, DeviceSource, DEVICES};
use crate::namespaces::NamespaceMode;

/// The device numbers of crabcan's default devices ([`DEVICES`], in its order).
const DEFAULT_NUMBERS: [(u64, u64); 6] = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)];

/// Which devices a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    /// `a`: every device.
    All,
    Char,
    Block,
}

/// Read, write, mknod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Access {
    read: bool,
    write: bool,
    mknod: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    kind: RuleKind,
    /// `None`: any.
    major: Option<u64>,
    minor: Option<u64>,
    access: Access,
}

/// The ordered rules of `linux.resources.devices`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeviceRules {
    rules: Vec<Rule>,
}

/// What the rules grant a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Granted {
    ReadWrite,
    Nothing,
    /// Read or write, not both: crabcan cannot give that.
    Partly {
        read: bool,
    },
}

impl DeviceRules {
    /// Parses `linux.resources.devices` (absent: no rules).
    pub(crate) fn parse(rules: Option<&Value>) -> Result<DeviceRules, OciError> {
        let Some(rules) = rules.filter(|r| !r.is_null()) else {
            return Ok(DeviceRules::default());
        };
        let rules = rules
            .as_array()
            .ok_or_else(|| bad("linux.resources.devices", "must be a list"))?;
        let parsed = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| Rule::parse(rule, &format!("linux.resources.devices[{index}]")))
            .collect::<Result<_, _>>()?;
        Ok(DeviceRules { rules: parsed })
    }

    /// What the rules grant the `kind` device `major:minor`; `blanket`: whether rules of type
    /// `a` count.
    fn granted(&self, kind: DeviceKind, major: u64, minor: u64, blanket: bool) -> Granted {
        let decides = |wanted: fn(&Access) -> bool| {
            self.rules
                .iter()
                .rev()
                .filter(|rule| blanket || rule.kind != RuleKind::All)
                .find(|rule| rule.matches(kind, major, minor) && wanted(&rule.access))
                .is_none_or(|rule| rule.allow)
        };
        match (decides(|a| a.read), decides(|a| a.write)) {
            (true, true) => Granted::ReadWrite,
            (false, false) => Granted::Nothing,
            (read, _) => Granted::Partly { read },
        }
    }
}

impl Rule {
    fn parse(rule: &Value, field: &str) -> Result<Rule, OciError> {
        let allow = rule
            .get("allow")
            .and_then(Value::as_bool)
            .ok_or_else(|| bad(&format!("{field}.allow"), "must be true or false"))?;
        let kind = match rule.get("type").and_then(Value::as_str).unwrap_or("a") {
            "a" => RuleKind::All,
            "c" | "u" => RuleKind::Char,
            "b" => RuleKind::Block,
            other => return Err(bad(&format!("{field}.type"), format!("{other:?} is not a, c or b"))),
        };
        let number = |key: &str| -> Result<Option<u64>, OciError> {
            match rule.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => match value.as_i64() {
                    Some(-1) => Ok(None),
                    Some(n) if n >= 0 => Ok(Some(n as u64)),
                    _ => Err(bad(
                        &format!("{field}.{key}"),
                        "must be a device number, -1 or null (any)",
                    )),
                },
            }
        };
        let mut access = Access::default();
        for letter in rule.get("access").and_then(Value::as_str).unwrap_or("rwm").chars() {
            match letter {
                'r' => access.read = true,
                'w' => access.write = true,
                'm' => access.mknod = true,
                other => return Err(bad(&format!("{field}.access"), format!("{other:?} is not r, w or m"))),
            }
        }
        Ok(Rule {
            allow,
            kind,
            major: number("major")?,
            minor: number("minor")?,
            access,
        })
    }

    fn matches(&self, kind: DeviceKind, major: u64, minor: u64) -> bool {
        let kind_matches = match self.kind {
            RuleKind::All => true,
            RuleKind::Char => kind == DeviceKind::Char,
            RuleKind::Block => kind == DeviceKind::Block,
        };
        kind_matches && self.major.is_none_or(|m| m == major) && self.minor.is_none_or(|m| m == minor)
    }
}

fn bad(field: &str, why: impl Into<String>) -> OciError {
    OciError::Unsupported {
        field: field.to_owned(),
        why: why.into(),
    }
}

/// crabcan's default devices the rules leave (names of [`DEVICES`]).
pub(crate) fn default_devices(rules: &DeviceRules) -> Result<Vec<&'static str>, OciError> {
    let mut kept = Vec::new();
    for (name, (major, minor)) in DEVICES.iter().zip(DEFAULT_NUMBERS) {
        match rules.granted(DeviceKind::Char, major, minor, false) {
            Granted::ReadWrite => kept.push(*name),
            Granted::Nothing => log::debug!("/dev/{name} ({major}:{minor}) is denied by linux.resources.devices"),
            Granted::Partly { read } => return Err(partly("linux.resources.devices", &format!("/dev/{name}"), read)),
        }
    }
    Ok(kept)
}

fn partly(field: &str, device: &str, read: bool) -> OciError {
    let only = if read { "read" } else { "write" };
    bad(
        field,
        format!(
            "it allows {device} {only} access only; crabcan binds device nodes, which gives read and write together"
        ),
    )
}

/// What a listed device needs to know of the container: whether it has a user namespace,
/// and the uid/gid maps that a new one is given.
pub(crate) struct Ownership<'a> {
    pub(crate) user: &'a NamespaceMode,
    pub(crate) id_mapping: &'a IdMapping,
}

impl Ownership<'_> {
    /// The host id of container uid/gid `id`, where it is known.
    fn host_id(&self, id: u32, uid: bool) -> Option<u32> {
        match (self.user, self.id_mapping) {
            (NamespaceMode::Host, _) => Some(id),
            (_, IdMapping::Given { uid_map, gid_map } | IdMapping::Fixed { uid_map, gid_map }) => {
                let map = if uid { uid_map } else { gid_map };
                map.contains_inside(id).then(|| map.outside + (id - map.inside))
            }
            _ => None,
        }
    }
}

/// The nodes of `linux.devices` (`devices`: its JSON), checked against the rules; each is a
/// mount step. `taken`: the container paths they occupy, so crabcan's defaults are not bound
/// there too.
pub(crate) fn listed_devices(
    devices: Option<&Value>,
    rules: &DeviceRules,
    ownership: &Ownership<'_>,
) -> Result<Vec<DeviceNode>, OciError> {
    let Some(devices) = devices.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut nodes: Vec<DeviceNode> = Vec::new();
    for (index, device) in devices.iter().enumerate() {
        let field = format!("linux.devices[{index}]");
        let node = listed_device(device, &field, rules, ownership)?;
        if nodes.iter().any(|other| other.target == node.target) {
            return Err(bad(&field, format!("{} is listed twice", node.target.display())));
        }
        nodes.push(node);
    }
    Ok(nodes)
}

fn listed_device(
    device: &Value,
    field: &str,
    rules: &DeviceRules,
    ownership: &Ownership<'_>,
) -> Result<DeviceNode, OciError> {
    let target = device
        .get("path")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| bad(&format!("{field}.path"), "a device needs a path"))?;
    let shown = target.display().to_string();
    let in_container = target
        .strip_prefix("/")
        .ok()
        .filter(|relative| {
            !relative.as_os_str().is_empty()
                && relative
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
        .filter(|relative| !relative.starts_with("proc") && !relative.starts_with("sys"));
    if in_container.is_none() {
        return Err(bad(
            &format!("{field}.path"),
            format!("{shown:?} must be an absolute path below / without '.' or '..', not on /proc or /sys"),
        ));
    }
    let kind = match device.get("type").and_then(Value::as_str) {
        Some("c" | "u") => DeviceKind::Char,
        Some("b") => DeviceKind::Block,
        Some("p") => DeviceKind::Fifo,
        other => return Err(bad(&format!("{field}.type"), format!("{other:?} is not c, u, b or p"))),
    };
    let number = |key: &str| -> Result<u64, OciError> {
        match device.get(key) {
            None | Some(Value::Null) if kind == DeviceKind::Fifo => Ok(0),
            Some(value) => value
                .as_u64()
                .ok_or_else(|| bad(&format!("{field}.{key}"), "must be a device number")),
            None => Err(bad(&format!("{field}.{key}"), "a device needs its number")),
        }
    };
    let (major, minor) = (number("major")?, number("minor")?);
    let mode = device
        .get("fileMode")
        .and_then(Value::as_u64)
        .map(|m| (m & 0o7777) as u32);
    let id = |key: &str| device.get(key).and_then(Value::as_u64).map(|id| id as u32);
    let (uid, gid) = (id("uid"), id("gid"));
    // A node crabcan makes without a host node to follow: the bundle's mode and owner, else
    // 0666 and root's.
    let (own_mode, own_uid, own_gid) = (mode.unwrap_or(0o666), uid.unwrap_or(0), gid.unwrap_or(0));
    if kind == DeviceKind::Fifo {
        return Ok(DeviceNode {
            target,
            kind,
            major: 0,
            minor: 0,
            source: DeviceSource::Own {
                mode: own_mode,
                uid: own_uid,
                gid: own_gid,
            },
        });
    }
    let numbers = format!("{} {major}:{minor}", if kind == DeviceKind::Char { "c" } else { "b" });
    // One of crabcan's default devices (under another path) is judged as they are.
    let blanket = !(kind == DeviceKind::Char && DEFAULT_NUMBERS.contains(&(major, minor)));
    match rules.granted(kind, major, minor, blanket) {
        Granted::ReadWrite => {}
        // Listed, so there (the spec's MUST), and denied, so never opened: a node of the
        // container's own on the nodev /dev, as runc makes it and its device cgroup denies it.
        Granted::Nothing if *ownership.user == NamespaceMode::Host => {
            return Ok(DeviceNode {
                target,
                kind,
                major,
                minor,
                source: DeviceSource::Denied {
                    mode: own_mode,
                    uid: own_uid,
                    gid: own_gid,
                },
            })
        }
        Granted::Nothing => {
            return Err(bad(
                field,
                format!(
                    "{shown} ({numbers}) is denied by linux.resources.devices, and no node that cannot be opened \
                     can be made in a user namespace: allow it there, or leave it out"
                ),
            ))
        }
        Granted::Partly { read } => {
            return Err(partly("linux.resources.devices", &format!("{shown} ({numbers})"), read))
        }
    }
    let (host, metadata) = host_node(kind, major, minor, &target).ok_or_else(|| {
        bad(
            field,
            format!("the host has no device {numbers} (looked at {shown} and /sys/dev) for {shown}; crabcan binds the host's node"),
        )
    })?;
    let host_mode = metadata.mode() & 0o7777;
    let mode_differs = mode.is_some_and(|m| m != host_mode);
    let owner_differs = [(uid, metadata.uid(), true), (gid, metadata.gid(), false)]
        .into_iter()
        .any(|(wanted, host_owner, is_uid)| {
            wanted.is_some_and(|id| {
                ownership
                    .host_id(id, is_uid)
                    .is_none_or(|host_id| host_id != host_owner)
            })
        });
    if !(mode_differs || owner_differs) {
        return Ok(DeviceNode {
            target,
            kind,
            major,
            minor,
            source: DeviceSource::Host(host),
        });
    }
    if *ownership.user == NamespaceMode::Host {
        return Ok(DeviceNode {
            target,
            kind,
            major,
            minor,
            source: DeviceSource::Own {
                mode: mode.unwrap_or(host_mode),
                uid: uid.unwrap_or(metadata.uid()),
                gid: gid.unwrap_or(metadata.gid()),
            },
        });
    }
    log::warn!(
        "{field}: {shown} is the host's {} bound in (no node can be made in a user namespace), so it keeps the host's \
         mode {host_mode:o} and owner {}:{}; the fileMode/uid/gid asked for are not applied (as with runc)",
        host.display(),
        metadata.uid(),
        metadata.gid()
    );
    Ok(DeviceNode {
        target,
        kind,
        major,
        minor,
        source: DeviceSource::Host(host),
    })
}

/// The host's node of the `kind` device `major:minor`: at `path` if that is it, else the one
/// sysfs names.
fn host_node(kind: DeviceKind, major: u64, minor: u64, path: &Path) -> Option<(PathBuf, std::fs::Metadata)> {
    let is_it = |candidate: &Path| {
        let metadata = std::fs::metadata(candidate).ok()?;
        let file_type = metadata.file_type();
        let kind_matches = match kind {
            DeviceKind::Char => file_type.is_char_device(),
            DeviceKind::Block => file_type.is_block_device(),
            DeviceKind::Fifo => false,
        };
        (kind_matches && metadata.rdev() == nix::sys::stat::makedev(major, minor)).then_some(metadata)
    };
    if let Some(metadata) = is_it(path) {
        return Some((path.to_owned(), metadata));
    }
    let class = if kind == DeviceKind::Char { "char" } else { "block" };
    let uevent = std::fs::read_to_string(format!("/sys/dev/{class}/{major}:{minor}/uevent")).ok()?;
    let name = uevent.lines().find_map(|line| line.strip_prefix("DEVNAME="))?;
    if name.split('/').any(|part| part == ".." || part.is_empty()) {
        return None;
    }
    let candidate = Path::new("/dev").join(name);
    is_it(&candidate).map(|metadata| (candidate, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(rules: Value) -> DeviceRules {
        DeviceRules::parse(Some(&rules)).unwrap()
    }

    /// containerd's (and CRI's) default rule set.
    fn containerd() -> DeviceRules {
        let allow = |kind: &str, major: i64, minor: Option<i64>| json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": "rwm"});
        rules(json!([
            {"allow": false, "access": "rwm"},
            allow("c", 1, Some(3)), allow("c", 1, Some(5)), allow("c", 1, Some(7)), allow("c", 1, Some(8)),
            allow("c", 1, Some(9)), allow("c", 5, Some(0)), allow("c", 5, Some(1)), allow("c", 5, Some(2)),
            allow("c", 136, None), allow("c", 10, Some(200)), allow("c", 10, Some(229)),
            {"allow": true, "type": "c", "access": "m"}, {"allow": true, "type": "b", "access": "m"}
        ]))
    }

    #[test]
    fn the_default_numbers_are_the_default_devices() {
        for (name, (major, minor)) in DEVICES.iter().zip(DEFAULT_NUMBERS) {
            let path = format!("/dev/{name}");
            if let Ok(metadata) = std::fs::metadata(&path) {
                assert_eq!(metadata.rdev(), nix::sys::stat::makedev(major, minor), "{path}");
            }
        }
    }

    #[test]
    fn the_last_matching_rule_decides_and_no_rule_allows() {
        assert_eq!(
            DeviceRules::default().granted(DeviceKind::Block, 8, 0, true),
            Granted::ReadWrite
        );
        let deny_all = rules(json!([{"allow": false, "access": "rwm"}]));
        assert_eq!(deny_all.granted(DeviceKind::Char, 10, 229, true), Granted::Nothing);
        let set = containerd();
        assert_eq!(set.granted(DeviceKind::Char, 10, 229, true), Granted::ReadWrite);
        assert_eq!(
            set.granted(DeviceKind::Char, 136, 4, true),
            Granted::ReadWrite,
            "136:* wildcard"
        );
        assert_eq!(
            set.granted(DeviceKind::Char, 10, 232, true),
            Granted::Nothing,
            "kvm: only m"
        );
        assert_eq!(set.granted(DeviceKind::Block, 8, 0, true), Granted::Nothing);
        let again = rules(json!([
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "access": "rw"}
        ]));
        assert_eq!(
            again.granted(DeviceKind::Char, 1, 5, true),
            Granted::Nothing,
            "the later rule wins"
        );
        let read_only = rules(json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "r"}
        ]));
        assert_eq!(
            read_only.granted(DeviceKind::Char, 10, 200, true),
            Granted::Partly { read: true }
        );
    }

    #[test]
    fn default_devices_stay_unless_named() {
        let deny_all = rules(json!([{"allow": false, "access": "rwm"}]));
        assert_eq!(default_devices(&deny_all).unwrap(), DEVICES, "runc's default spec");
        assert_eq!(default_devices(&containerd()).unwrap(), DEVICES);
        let no_zero = rules(json!([
            {"allow": false, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
        ]));
        let kept = default_devices(&no_zero).unwrap();
        assert!(!kept.contains(&"zero") && kept.contains(&"null"), "{kept:?}");
        let no_char = rules(json!([{"allow": false, "type": "c", "access": "rwm"}]));
        assert!(default_devices(&no_char).unwrap().is_empty());
        let only_read = rules(json!([{"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]));
        assert!(default_devices(&only_read).is_err());
    }

    #[test]
    fn bad_rules_are_named() {
        for (rule, field) in [
            (json!([{"type": "c"}]), "linux.resources.devices[0].allow"),
            (json!([{"allow": true, "type": "x"}]), "linux.resources.devices[0].type"),
            (
                json!([{"allow": true, "access": "rwx"}]),
                "linux.resources.devices[0].access",
            ),
            (
                json!([{"allow": true, "major": -3}]),
                "linux.resources.devices[0].major",
            ),
        ] {
            let error = DeviceRules::parse(Some(&rule)).unwrap_err();
            assert!(error.to_string().contains(&format!("field {field} ")), "{error}");
        }
    }

    #[test]
    fn listed_devices_are_the_hosts_nodes_or_made() {
        let host = Ownership {
            user: &NamespaceMode::Host,
            id_mapping: &IdMapping::Host,
        };
        let metadata = std::fs::metadata("/dev/null").unwrap();
        let null_device = |path: &str, mode: Option<u32>| {
            let mut device = json!({"path": path, "type": "c", "major": 1, "minor": 3});
            if let Some(mode) = mode {
                device["fileMode"] = Value::from(mode);
            }
            device
        };
        let nodes = listed_devices(
            Some(&json!([null_device("/dev/mynull", None)])),
            &DeviceRules::default(),
            &host,
        )
        .unwrap();
        assert_eq!(
            nodes[0].source,
            DeviceSource::Host("/dev/null".into()),
            "found through sysfs"
        );
        let same_mode = null_device("/dev/null", Some(metadata.mode() | libc::S_IFCHR));
        let nodes = listed_devices(Some(&json!([same_mode])), &DeviceRules::default(), &host).unwrap();
        assert_eq!(
            nodes[0].source,
            DeviceSource::Host("/dev/null".into()),
            "the type bits are not the mode"
        );
        let other_mode = null_device("/dev/null", Some(0o600));
        let nodes = listed_devices(Some(&json!([other_mode.clone()])), &DeviceRules::default(), &host).unwrap();
        assert!(
            matches!(nodes[0].source, DeviceSource::Own { mode: 0o600, .. }),
            "{:?}",
            nodes[0]
        );
        let in_userns = Ownership {
            user: &NamespaceMode::New,
            id_mapping: &IdMapping::Auto,
        };
        let nodes = listed_devices(Some(&json!([other_mode])), &DeviceRules::default(), &in_userns).unwrap();
        assert!(
            matches!(nodes[0].source, DeviceSource::Host(_)),
            "no mknod in a user namespace"
        );
        let denied = rules(json!([{"allow": false, "access": "rwm"}]));
        assert!(
            listed_devices(Some(&json!([null_device("/dev/null", None)])), &denied, &host).is_ok(),
            "1:3 is a default device: deny-all leaves it"
        );
        let kvm = json!([{"path": "/dev/kvm", "type": "c", "major": 10, "minor": 232, "fileMode": 0o640, "gid": 7}]);
        let nodes = listed_devices(Some(&kvm), &denied, &host).unwrap();
        assert_eq!(
            nodes[0].source,
            DeviceSource::Denied {
                mode: 0o640,
                uid: 0,
                gid: 7
            },
            "listed and denied: there, never usable"
        );
        let error = listed_devices(Some(&kvm), &denied, &in_userns).unwrap_err();
        assert!(
            error.to_string().contains("denied by linux.resources.devices"),
            "{error}"
        );
        let missing = json!([{"path": "/dev/nothing", "type": "c", "major": 4095, "minor": 1048575}]);
        let error = listed_devices(Some(&missing), &DeviceRules::default(), &host).unwrap_err();
        assert!(error.to_string().contains("field linux.devices[0] ") && error.to_string().contains("c 4095:1048575"));
        for path in ["dev/x", "/dev/../etc/x", "/proc/x", "/"] {
            let device = json!([{"path": path, "type": "c", "major": 1, "minor": 3}]);
            assert!(
                listed_devices(Some(&device), &DeviceRules::default(), &host).is_err(),
                "{path}"
            );
        }
        let fifo = json!([{"path": "/dev/myfifo", "type": "p", "fileMode": 0o640}]);
        let nodes = listed_devices(Some(&fifo), &denied, &host).unwrap();
        assert_eq!(
            nodes[0].source,
            DeviceSource::Own {
                mode: 0o640,
                uid: 0,
                gid: 0
            },
            "a FIFO is no device for the rules"
        );
    }
}
