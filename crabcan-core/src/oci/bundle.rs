//! A bundle's `config.json` turned into crabcan's [`ContainerConfig`]: the process, the root,
//! the mounts (as crabcan mount steps, in the config's order), masked and read-only paths,
//! namespaces, id mappings, resources and seccomp. Every field crabcan does not implement yet is
//! an error that names it ([`OciError::Unsupported`]): nothing is skipped silently. The reading
//! is bounded ([`MAX_CONFIG_BYTES`]) and a hostile bundle cannot point a mount outside its rootfs
//! (mount targets are opened inside the rootfs like every other crabcan mount).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crabcan_cgroups::Limits;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::Deserialize;
use serde_json::Value;

use super::devices::{default_devices, listed_devices, DeviceRules, Ownership};
use super::OciError;
use crate::capabilities::CapabilitySet;
use crate::config::{CapabilitySets, ContainerConfig, FileLimit, IdMapping, Personality, Rlimit, Terminal};
use crate::hooks::{Hook, HookKind, MAX_HOOKS_PER_KIND};
use crate::mounts::{
    MountAttributes, MountStep, OciBind, MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV,
    MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
};
use crate::namespaces::{NamespaceFile, NamespaceKind, NamespaceMode, Namespaces};
use crate::spec::IdRange;

/// The largest `config.json` crabcan reads.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The file of a bundle that describes its container.
pub const CONFIG_FILE: &str = "config.json";

/// What a bundle asks for, ready for crabcan-core.
#[derive(Debug)]
pub struct Bundle {
    /// The container, as crabcan-core runs it.
    pub config: ContainerConfig,
    /// The cgroup path (`linux.cgroupsPath`), relative to each hierarchy's root.
    pub cgroups_path: Option<PathBuf>,
    /// The bundle's annotations.
    pub annotations: BTreeMap<String, String>,
    /// `process.terminal`.
    pub terminal: bool,
    /// `process.consoleSize` (rows, columns): the size the terminal starts with.
    pub console_size: Option<(u16, u16)>,
    /// `config.json` exactly as it was read and parsed: `create` keeps it in the container's
    /// state folder, where `exec` reads it back ([`load_saved`]) instead of the bundle's
    /// (which the container's owner may have changed since).
    pub source: Vec<u8>,
    /// `hooks.poststart`: run by `start` once the program runs.
    pub poststart: Vec<Hook>,
    /// `hooks.poststop`: run by `delete` once the container is gone.
    pub poststop: Vec<Hook>,
}

/// The fields crabcan implements; `*` is any array index. A field present with a value that
/// asks for something (not null, empty or false) and not on this list is refused.
const SUPPORTED: &[&str] = &[
    "ociVersion",
    "root.path",
    "root.readonly",
    "hostname",
    "domainname",
    "annotations",
    "process.terminal",
    "process.consoleSize.height",
    "process.consoleSize.width",
    "process.user.uid",
    "process.user.gid",
    "process.user.umask",
    "process.user.additionalGids",
    "process.args",
    "process.env",
    "process.cwd",
    "process.capabilities.bounding",
    "process.capabilities.effective",
    "process.capabilities.inheritable",
    "process.capabilities.permitted",
    "process.capabilities.ambient",
    "process.rlimits.*.type",
    "process.rlimits.*.hard",
    "process.rlimits.*.soft",
    "process.noNewPrivileges",
    "process.oomScoreAdj",
    "mounts.*.destination",
    "mounts.*.type",
    "mounts.*.source",
    "mounts.*.options",
    "linux.namespaces.*.type",
    "linux.namespaces.*.path",
    "linux.uidMappings.*.containerID",
    "linux.uidMappings.*.hostID",
    "linux.uidMappings.*.size",
    "linux.gidMappings.*.containerID",
    "linux.gidMappings.*.hostID",
    "linux.gidMappings.*.size",
    "linux.resources.memory.limit",
    "linux.resources.memory.swap",
    "linux.resources.memory.reservation",
    "linux.resources.memory.swappiness",
    "linux.resources.memory.disableOOMKiller",
    "linux.resources.memory.kernel",
    "linux.resources.memory.kernelTCP",
    "linux.resources.memory.checkBeforeUpdate",
    "linux.resources.pids.limit",
    "linux.resources.cpu.shares",
    "linux.resources.cpu.quota",
    "linux.resources.cpu.period",
    "linux.resources.cpu.burst",
    "linux.resources.cpu.idle",
    "linux.resources.cpu.cpus",
    "linux.resources.cpu.mems",
    "linux.resources.cpu.realtimeRuntime",
    "linux.resources.cpu.realtimePeriod",
    "linux.resources.blockIO.weight",
    "linux.resources.blockIO.leafWeight",
    "linux.resources.blockIO.weightDevice.*.major",
    "linux.resources.blockIO.weightDevice.*.minor",
    "linux.resources.blockIO.weightDevice.*.weight",
    "linux.resources.blockIO.weightDevice.*.leafWeight",
    "linux.resources.blockIO.throttleReadBpsDevice",
    "linux.resources.blockIO.throttleWriteBpsDevice",
    "linux.resources.blockIO.throttleReadIOPSDevice",
    "linux.resources.blockIO.throttleWriteIOPSDevice",
    "linux.resources.hugepageLimits.*.pageSize",
    "linux.resources.hugepageLimits.*.limit",
    "linux.resources.network.classID",
    "linux.resources.network.priorities",
    "linux.resources.rdma",
    "linux.resources.unified",
    "linux.resources.devices",
    "linux.devices",
    "linux.rootfsPropagation",
    "linux.cgroupsPath",
    "linux.maskedPaths",
    "linux.readonlyPaths",
    "linux.seccomp",
    "linux.sysctl",
    "linux.personality.domain",
    "linux.personality.flags",
    "hooks.prestart.*.path",
    "hooks.prestart.*.args",
    "hooks.prestart.*.env",
    "hooks.prestart.*.timeout",
    "hooks.createRuntime.*.path",
    "hooks.createRuntime.*.args",
    "hooks.createRuntime.*.env",
    "hooks.createRuntime.*.timeout",
    "hooks.createContainer.*.path",
    "hooks.createContainer.*.args",
    "hooks.createContainer.*.env",
    "hooks.createContainer.*.timeout",
    "hooks.startContainer.*.path",
    "hooks.startContainer.*.args",
    "hooks.startContainer.*.env",
    "hooks.startContainer.*.timeout",
    "hooks.poststart.*.path",
    "hooks.poststart.*.args",
    "hooks.poststart.*.env",
    "hooks.poststart.*.timeout",
    "hooks.poststop.*.path",
    "hooks.poststop.*.args",
    "hooks.poststop.*.env",
    "hooks.poststop.*.timeout",
];

/// Reads and maps the bundle at `bundle`.
pub fn load(bundle: &Path) -> Result<Bundle, OciError> {
    let path = bundle.join(CONFIG_FILE);
    let text = read_bounded(&path, "open the bundle's config")?;
    let value = parse_config(&path, &text)?;
    let mut loaded = map_value(bundle, &path, value)?;
    loaded.source = text;
    Ok(loaded)
}

/// Maps a container's saved `config.json` (`copy`, what [`Bundle::source`] held at create; its
/// bundle folder `bundle` for relative paths), with its `process` replaced by `process` when
/// given (an `exec --process` file read by [`read_process`]). Every field is checked as in
/// [`load`]: an unsupported one of `process` is named `process.<field>`.
pub fn load_saved(copy: &Path, bundle: &Path, process: Option<Value>) -> Result<Bundle, OciError> {
    let text = read_bounded(copy, "open the container's saved config")?;
    let mut value = parse_config(copy, &text)?;
    if let (Some(process), Some(fields)) = (process, value.as_object_mut()) {
        fields.insert("process".to_owned(), process);
    }
    map_value(bundle, copy, value)
}

/// Reads a runtime-spec `process` object (`exec --process FILE`): bounded, JSON, and of the
/// spec's types (checked with oci-spec); its fields are checked when it is mapped.
pub fn read_process(path: &Path) -> Result<Value, OciError> {
    let text = read_bounded(path, "open the process file")?;
    let bad = |why: String| OciError::BadProcess {
        path: path.to_owned(),
        why,
    };
    let value: Value = serde_json::from_slice(&text).map_err(|error| bad(error.to_string()))?;
    if !value.is_object() {
        return Err(bad("it is not a JSON object".into()));
    }
    serde_json::from_value::<oci_spec::runtime::Process>(value.clone()).map_err(|error| bad(error.to_string()))?;
    Ok(value)
}

fn parse_config(path: &Path, text: &[u8]) -> Result<Value, OciError> {
    serde_json::from_slice(text).map_err(|source| OciError::BadConfig {
        path: path.to_owned(),
        why: source.to_string(),
    })
}

fn map_value(bundle: &Path, path: &Path, mut value: Value) -> Result<Bundle, OciError> {
    let bad = |why: String| OciError::BadConfig {
        path: path.to_owned(),
        why,
    };
    // Read from the value in place: no copy of the whole document.
    let spec = Spec::deserialize(&value).map_err(|source| bad(source.to_string()))?;
    // The spec's extensibility rule: a property the runtime spec does not define is ignored,
    // not refused (what oci-spec reads back out is what the spec defines). A property it
    // does define and crabcan does not implement is still an error, below.
    let known = serde_json::to_value(&spec).map_err(|source| bad(source.to_string()))?;
    for unknown in remove_unknown(&mut value, &known) {
        log::warn!("config.json: {unknown} is not a property of the runtime spec: ignored");
    }
    check_supported(&value, "")?;
    map(bundle, &spec, &value)
}

/// Removes from `value` each object member that `known` (the same document as oci-spec
/// reads it) does not have, and returns their paths (array indices as `*`). Empty members are
/// removed without being named: oci-spec leaves some of those out when it writes. One pass,
/// one lookup per member; a path is only formatted for a member it removes.
fn remove_unknown(value: &mut Value, known: &Value) -> Vec<String> {
    fn walk(value: &mut Value, known: &Value, path: &mut String, removed: &mut Vec<String>) {
        match (value, known) {
            (Value::Object(fields), Value::Object(known_fields)) => fields.retain(|key, member| {
                let len = path.len();
                if len > 0 {
                    path.push('.');
                }
                path.push_str(key);
                let keep = match known_fields.get(key) {
                    Some(known_member) => {
                        walk(member, known_member, path, removed);
                        true
                    }
                    None => {
                        if !is_empty(member) {
                            removed.push(path.clone());
                        }
                        false
                    }
                };
                path.truncate(len);
                keep
            }),
            (Value::Array(items), Value::Array(known_items)) if items.len() == known_items.len() => {
                let len = path.len();
                path.push_str(".*");
                for (item, known_item) in items.iter_mut().zip(known_items) {
                    walk(item, known_item, path, removed);
                }
                path.truncate(len);
            }
            _ => {}
        }
    }
    let mut removed = Vec::new();
    walk(value, known, &mut String::new(), &mut removed);
    removed
}

fn read_bounded(path: &Path, what: &'static str) -> Result<Vec<u8>, OciError> {
    let io = |what, source| OciError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| io(what, source))?;
    let metadata = file.metadata().map_err(|source| io("stat", source))?;
    if !metadata.is_file() {
        return Err(OciError::BadConfig {
            path: path.to_owned(),
            why: "it is not a regular file".into(),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| io("read", source))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(OciError::BadConfig {
            path: path.to_owned(),
            why: format!("it is larger than {MAX_CONFIG_BYTES} bytes"),
        });
    }
    Ok(bytes)
}

/// Whether `value` asks for nothing (absent, null, empty, false, or a blank string).
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.values().all(is_empty),
        Value::Number(_) => false,
    }
}

/// Whether the field at `path` (with array indices as `*`) is supported, or lies below one.
fn supported(path: &str) -> bool {
    SUPPORTED
        .iter()
        .any(|allowed| path == *allowed || is_below(path, allowed))
}

/// Whether some supported field lies below `path`, so its members must be looked at.
fn has_supported_members(path: &str) -> bool {
    path.is_empty() || SUPPORTED.iter().any(|allowed| is_below(allowed, path))
}

/// Whether the field `path` lies below the field `ancestor` (`ancestor.` starts it). Compared
/// in place: this runs for every supported field at every node of a config.
fn is_below(path: &str, ancestor: &str) -> bool {
    path.len() > ancestor.len() && path.as_bytes()[ancestor.len()] == b'.' && path.starts_with(ancestor)
}

pub(crate) fn check_supported(value: &Value, path: &str) -> Result<(), OciError> {
    if !path.is_empty() && supported(path) {
        return Ok(());
    }
    if is_empty(value) {
        return Ok(());
    }
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(fields) if has_supported_members(path) => fields
            .iter()
            .try_for_each(|(key, member)| check_supported(member, &child(key))),
        Value::Array(items) if has_supported_members(path) => {
            items.iter().try_for_each(|item| check_supported(item, &child("*")))
        }
        _ => Err(OciError::Unsupported {
            field: path.to_owned(),
            why: "crabcan does not implement it yet".into(),
        }),
    }
}

fn unsupported(field: &str, why: impl Into<String>) -> OciError {
    OciError::Unsupported {
        field: field.to_owned(),
        why: why.into(),
    }
}

fn map(bundle: &Path, spec: &Spec, value: &Value) -> Result<Bundle, OciError> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(unsupported(
            "ociVersion",
            format!("{version} is not a 1.x runtime spec"),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| unsupported("root", "a bundle needs a root"))?;
    let rootfs = match root.path() {
        path if path.is_absolute() => path.clone(),
        path => bundle.join(path),
    };
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| unsupported("process", "a container needs a process"))?;
    let args = process.args().clone().unwrap_or_default();
    let mut config = ContainerConfig::new(&rootfs, args);
    let linux = spec.linux().as_ref();
    config.namespaces = namespaces(linux)?;
    config.id_mapping = id_mapping(linux, &config.namespaces.user)?;
    set_names(&mut config, spec)?;
    config.default_env = false;
    config.env = process
        .env()
        .iter()
        .flatten()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (pair.clone(), String::new()),
        })
        .collect();
    config.workdir = process.cwd().clone();
    let user = process.user();
    config.uid = user.uid();
    config.gid = user.gid();
    config.additional_gids = user.additional_gids().clone().unwrap_or_default();
    config.umask = user.umask();
    config.no_new_privs = process.no_new_privileges().unwrap_or(false);
    config.terminal = if process.terminal().unwrap_or(false) {
        Terminal::Pty
    } else {
        Terminal::Inherit
    };
    config.capability_sets = Some(capability_sets(value)?);
    set_rlimits(&mut config, value)?;
    config.oom_score_adj = process.oom_score_adj();
    if let Some(value) = config.oom_score_adj.filter(|value| !(-1000..=1000).contains(value)) {
        return Err(unsupported(
            "process.oomScoreAdj",
            format!("{value} is out of the kernel's range, -1000 to 1000"),
        ));
    }
    config.personality = personality(linux)?;
    let limits = limits(value)?;
    // Resources the bundle sets are asked for: an ordinary user without a delegated cgroup
    // cannot have them (none set: such a container runs without a cgroup).
    config.requested_limits = crate::rootless::limit_kinds(&limits);
    config.limits = Some(limits);
    let seccomp = value.pointer("/linux/seccomp").filter(|s| !is_empty(s));
    if let Some(seccomp) = seccomp {
        config.seccomp = Some(seccomp_filter(seccomp, config.capability_sets.as_ref())?);
    }
    if let Some(output) = spec.annotations().as_ref().and_then(|all| all.get(LEARN_ANNOTATION)) {
        config.seccomp_learning = Some(learning(output, seccomp, config.capability_sets.as_ref())?);
    }
    let (plan, cgroup_view) = mount_plan(bundle, spec, value, root.readonly().unwrap_or(false), &config)?;
    config.mount_plan = Some(plan);
    config.cgroup_view = cgroup_view;
    let process_env: Vec<String> = config.env.iter().map(|(key, value)| format!("{key}={value}")).collect();
    let hooks = |kind| hooks_of(spec, kind, &process_env);
    config.hooks.prestart = hooks(HookKind::Prestart)?;
    config.hooks.create_runtime = hooks(HookKind::CreateRuntime)?;
    config.hooks.create_container = hooks(HookKind::CreateContainer)?;
    config.hooks.start_container = hooks(HookKind::StartContainer)?;
    check_start_container_hooks(&config)?;
    Ok(Bundle {
        cgroups_path: linux.and_then(|l| l.cgroups_path().clone()),
        annotations: spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        terminal: config.terminal == Terminal::Pty,
        console_size: process
            .console_size()
            .as_ref()
            .map(|size| (clamp_u16(size.height()), clamp_u16(size.width()))),
        poststart: hooks(HookKind::Poststart)?,
        poststop: hooks(HookKind::Poststop)?,
        config,
        source: Vec::new(),
    })
}

/// The hooks of `kind` in the bundle, checked (a bounded number, absolute paths, `KEY=VALUE`
/// environments, a timeout of at least a second). A hook of the container's namespaces
/// without an environment gets the container process's, as runc's do; one of the runtime's
/// gets crabcan's.
fn hooks_of(spec: &Spec, kind: HookKind, process_env: &[String]) -> Result<Vec<Hook>, OciError> {
    let Some(all) = spec.hooks() else {
        return Ok(Vec::new());
    };
    #[allow(deprecated)] // prestart is deprecated by the spec, still sent by engines
    let listed = match kind {
        HookKind::Prestart => all.prestart(),
        HookKind::CreateRuntime => all.create_runtime(),
        HookKind::CreateContainer => all.create_container(),
        HookKind::StartContainer => all.start_container(),
        HookKind::Poststart => all.poststart(),
        HookKind::Poststop => all.poststop(),
    };
    let listed = listed.as_deref().unwrap_or_default();
    if listed.len() > MAX_HOOKS_PER_KIND {
        return Err(unsupported(
            &format!("hooks.{kind}"),
            format!(
                "{} hooks are more than the {MAX_HOOKS_PER_KIND} crabcan runs",
                listed.len()
            ),
        ));
    }
    let in_container = matches!(kind, HookKind::CreateContainer | HookKind::StartContainer);
    listed
        .iter()
        .enumerate()
        .map(|(index, hook)| {
            let timeout_seconds = match hook.timeout() {
                None => None,
                Some(seconds) => Some(u64::try_from(seconds).ok().filter(|s| *s > 0).ok_or_else(|| {
                    unsupported(
                        &format!("hooks.{kind}[{index}].timeout"),
                        format!("{seconds} is not a number of seconds greater than zero"),
                    )
                })?),
            };
            let env = match (hook.env().clone(), in_container) {
                (None, true) => Some(process_env.to_vec()),
                (env, _) => env,
            };
            let hook = Hook {
                path: hook.path().clone(),
                args: hook.args().clone().unwrap_or_default(),
                env,
                timeout_seconds,
            };
            hook.check()
                .map_err(|why| unsupported(&format!("hooks.{kind}[{index}]"), why))?;
            Ok(hook)
        })
        .collect()
}

/// `startContainer` hooks are the container's own programs, and run while the container's
/// first process is still crabcan's (non-dumpable) code. A process with CAP_SYS_PTRACE in the
/// host's user namespace may open that process's `/proc/PID/exe` all the same and write the
/// host's crabcan binary once nothing runs it (CVE-2019-5736), so that combination is refused:
/// CAP_SYS_PTRACE in the bounding set (what a root hook gets) without a user namespace.
fn check_start_container_hooks(config: &ContainerConfig) -> Result<(), OciError> {
    let ptrace = config
        .capability_sets
        .as_ref()
        .is_some_and(|sets| sets.bounding.contains(caps::Capability::CAP_SYS_PTRACE));
    if !config.hooks.start_container.is_empty() && ptrace && config.id_mapping == IdMapping::Host {
        return Err(unsupported(
            "hooks.startContainer",
            "with CAP_SYS_PTRACE and no user namespace, a startContainer hook could reach crabcan's own binary (CVE-2019-5736): drop the capability or add a user namespace",
        ));
    }
    Ok(())
}

/// `linux.personality`: the domain; flags are refused by name.
fn personality(linux: Option<&oci_spec::runtime::Linux>) -> Result<Option<Personality>, OciError> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    let Some(personality) = linux.and_then(|l| l.personality().as_ref()) else {
        return Ok(None);
    };
    if let Some(flags) = personality.flags().as_ref().filter(|flags| !flags.is_empty()) {
        return Err(unsupported(
            "linux.personality.flags",
            format!("crabcan sets the domain only; {} not implemented", flags.join(", ")),
        ));
    }
    Ok(Some(match personality.domain() {
        LinuxPersonalityDomain::PerLinux => Personality::Linux,
        LinuxPersonalityDomain::PerLinux32 => Personality::Linux32,
    }))
}

fn clamp_u16(n: u64) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn names(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn capability_sets(value: &Value) -> Result<CapabilitySets, OciError> {
    let set = |name: &str| {
        let listed = names(value, &format!("/process/capabilities/{name}"));
        CapabilitySet::from_names(&listed)
            .map_err(|error| unsupported(&format!("process.capabilities.{name}"), error.to_string()))
    };
    let mut sets = CapabilitySets {
        bounding: set("bounding")?,
        effective: set("effective")?,
        permitted: set("permitted")?,
        inheritable: set("inheritable")?,
        ambient: set("ambient")?,
    };
    sets.ambient = raisable_ambient(&sets);
    Ok(sets)
}

/// The ambient capabilities the kernel lets the process raise: those both permitted and
/// inheritable. `runc spec` and `crun spec` list ambient ones that are not inheritable; runc and
/// crun then run the container without them, warning, and so does crabcan (in its log).
fn raisable_ambient(sets: &CapabilitySets) -> CapabilitySet {
    let (kept, dropped): (Vec<&caps::Capability>, Vec<&caps::Capability>) = sets
        .ambient
        .0
        .iter()
        .partition(|cap| sets.permitted.contains(**cap) && sets.inheritable.contains(**cap));
    if !dropped.is_empty() {
        let mut names: Vec<String> = dropped.iter().map(|c| c.to_string()).collect();
        names.sort();
        log::warn!(
            "process.capabilities.ambient: {} not raised: an ambient capability must be permitted and inheritable too",
            names.join(", ")
        );
    }
    CapabilitySet(kept.into_iter().copied().collect())
}

fn set_rlimits(config: &mut ContainerConfig, value: &Value) -> Result<(), OciError> {
    let Some(limits) = value.pointer("/process/rlimits").and_then(Value::as_array) else {
        return Ok(());
    };
    for limit in limits {
        let kind = limit.get("type").and_then(Value::as_str).unwrap_or_default();
        let number = |key: &str| limit.get(key).and_then(Value::as_u64).unwrap_or(0);
        let (soft, hard) = (number("soft"), number("hard"));
        if kind == "RLIMIT_NOFILE" {
            config.nofile = Some(FileLimit { soft, hard });
            continue;
        }
        let resource = resource_named(kind)
            .ok_or_else(|| unsupported("process.rlimits.type", format!("{kind:?} is not a resource limit")))?;
        config.rlimits.push(Rlimit { resource, soft, hard });
    }
    Ok(())
}

fn resource_named(name: &str) -> Option<rlimit::Resource> {
    use rlimit::Resource;
    Some(match name {
        "RLIMIT_AS" => Resource::AS,
        "RLIMIT_CORE" => Resource::CORE,
        "RLIMIT_CPU" => Resource::CPU,
        "RLIMIT_DATA" => Resource::DATA,
        "RLIMIT_FSIZE" => Resource::FSIZE,
        "RLIMIT_LOCKS" => Resource::LOCKS,
        "RLIMIT_MEMLOCK" => Resource::MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::MSGQUEUE,
        "RLIMIT_NICE" => Resource::NICE,
        "RLIMIT_NPROC" => Resource::NPROC,
        "RLIMIT_RSS" => Resource::RSS,
        "RLIMIT_RTPRIO" => Resource::RTPRIO,
        "RLIMIT_RTTIME" => Resource::RTTIME,
        "RLIMIT_SIGPENDING" => Resource::SIGPENDING,
        "RLIMIT_STACK" => Resource::STACK,
        _ => return None,
    })
}

/// What the container gets of each namespace: `linux.namespaces` lists the ones it does not
/// share with crabcan (the host), new or, with a `path`, joined. A mount namespace of its own
/// is required. The cgroup namespace is new even when not listed: in the host's, the cgroup
/// view crabcan mounts at /sys/fs/cgroup would show the host's whole hierarchy.
fn namespaces(linux: Option<&oci_spec::runtime::Linux>) -> Result<Namespaces, OciError> {
    let mut namespaces = Namespaces::default();
    for kind in NamespaceKind::ALL {
        namespaces.set(kind, NamespaceMode::Host);
    }
    namespaces.cgroup = NamespaceMode::New;
    let mut listed = Vec::new();
    for (index, namespace) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("linux.namespaces[{index}]");
        let kind = match namespace.typ() {
            LinuxNamespaceType::User => NamespaceKind::User,
            LinuxNamespaceType::Mount => NamespaceKind::Mount,
            LinuxNamespaceType::Pid => NamespaceKind::Pid,
            LinuxNamespaceType::Uts => NamespaceKind::Uts,
            LinuxNamespaceType::Ipc => NamespaceKind::Ipc,
            LinuxNamespaceType::Network => NamespaceKind::Net,
            LinuxNamespaceType::Cgroup => NamespaceKind::Cgroup,
            LinuxNamespaceType::Time => {
                return Err(unsupported(
                    &format!("{field}.type"),
                    "time namespaces are not implemented",
                ))
            }
        };
        if listed.contains(&kind) {
            return Err(unsupported(&field, format!("the {kind} namespace is listed twice")));
        }
        listed.push(kind);
        let mode = match namespace.path() {
            None => NamespaceMode::New,
            Some(path) if path.as_os_str().is_empty() => NamespaceMode::New,
            Some(path) if !path.is_absolute() => {
                return Err(unsupported(&format!("{field}.path"), "must be an absolute path"))
            }
            Some(_) if kind == NamespaceKind::Mount => {
                return Err(unsupported(
                    &format!("{field}.path"),
                    "crabcan builds the container's filesystem in a mount namespace of its own (it pivots \
                     into the rootfs there), so it cannot join an existing one",
                ))
            }
            Some(path) => NamespaceMode::Join(path.clone()),
        };
        namespaces.set(kind, mode);
    }
    if !listed.contains(&NamespaceKind::Mount) {
        return Err(unsupported(
            "linux.namespaces",
            "crabcan needs a new mount namespace (there is no safe pivot_root in the host's): add {\"type\": \"mount\"}",
        ));
    }
    Ok(namespaces)
}

/// The id maps: given ones for a new user namespace (required), none without one, and for a
/// joined one none or exactly its own (checked when the container is created).
fn id_mapping(linux: Option<&oci_spec::runtime::Linux>, user: &NamespaceMode) -> Result<IdMapping, OciError> {
    let mappings =
        |field: &str, list: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> Result<Option<IdRange>, OciError> {
            match list.map(Vec::as_slice).unwrap_or_default() {
                [] => Ok(None),
                [one] => Ok(Some(IdRange {
                    inside: one.container_id(),
                    outside: one.host_id(),
                    count: one.size(),
                })),
                _ => Err(unsupported(field, "crabcan maps one range of ids for now")),
            }
        };
    let uid = mappings("linux.uidMappings", linux.and_then(|l| l.uid_mappings().as_ref()))?;
    let gid = mappings("linux.gidMappings", linux.and_then(|l| l.gid_mappings().as_ref()))?;
    match (user, uid, gid) {
        (NamespaceMode::Host, None, None) | (NamespaceMode::Join(_), None, None) => Ok(IdMapping::Host),
        (NamespaceMode::Host, _, _) => Err(unsupported(
            "linux.uidMappings",
            "id mappings need a user namespace in linux.namespaces",
        )),
        (_, Some(uid_map), Some(gid_map)) => Ok(IdMapping::Given { uid_map, gid_map }),
        (_, _, _) => Err(unsupported(
            "linux.uidMappings",
            "a user namespace needs both uid and gid mappings",
        )),
    }
}

/// The hostname and domain name need a uts namespace of the container's own (new or joined):
/// with the host's they would rename the host.
fn set_names(config: &mut ContainerConfig, spec: &Spec) -> Result<(), OciError> {
    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    config.domainname = spec.domainname().clone().filter(|d| !d.is_empty());
    let shared = match &config.namespaces.uts {
        NamespaceMode::Host => true,
        NamespaceMode::New => false,
        // The host's own, joined by path, is shared all the same.
        NamespaceMode::Join(path) if hostname.is_some() || config.domainname.is_some() => {
            NamespaceFile::open(NamespaceKind::Uts, path)
                .map_err(|error| unsupported("linux.namespaces", error.to_string()))?
                .is_crabcans_own()
        }
        NamespaceMode::Join(_) => false,
    };
    for (field, given) in [
        ("hostname", hostname.is_some()),
        ("domainname", config.domainname.is_some()),
    ] {
        if shared && given {
            return Err(unsupported(
                field,
                "setting it needs a uts namespace of the container's own: add {\"type\": \"uts\"} to linux.namespaces",
            ));
        }
    }
    // Without a hostname the uts namespace keeps the name it has: a new one the host's it was
    // made with (as with runc), a joined one its own.
    // (`config.hostname` then only names things of crabcan's: the host's name, which may be
    // anything, e.g. "(none)", is never checked or set.)
    config.set_hostname = hostname.is_some();
    if let Some(hostname) = hostname {
        config.hostname = hostname;
    }
    Ok(())
}

/// The cgroup limits of `linux.resources` (see [`super::limits`]). Its device rules are the
/// mount plan's (see `devices.rs`): crabcan enforces them by construction.
pub(crate) fn limits(value: &Value) -> Result<Limits, OciError> {
    super::limits::from_config(value)
}

/// The members of `linux.seccomp` crabcan implements; any other with a value is refused by
/// name (`listenerPath`, `listenerMetadata`, `flags`).
const SECCOMP_FIELDS: [&str; 4] = ["defaultAction", "defaultErrnoRet", "architectures", "syscalls"];

/// The annotation that makes a run learn a seccomp profile into the absolute path it names:
/// the bundle's `linux.seccomp` is enforced while learning (nothing, without one), and still
/// confines the processes `exec` adds.
pub const LEARN_ANNOTATION: &str = "run.crabcan.seccomp.learn";

/// The learning run [`LEARN_ANNOTATION`] asks for.
fn learning(
    output: &str,
    seccomp: Option<&Value>,
    sets: Option<&CapabilitySets>,
) -> Result<crate::SeccompLearning, OciError> {
    let output = PathBuf::from(output);
    if !output.is_absolute() {
        return Err(unsupported(
            &format!("annotations.{LEARN_ANNOTATION}"),
            format!("{} is not an absolute path", output.display()),
        ));
    }
    Ok(crate::SeccompLearning {
        enforced: seccomp.map(|seccomp| seccomp_profile(seccomp, sets)).transpose()?,
        output,
    })
}

fn seccomp_filter(seccomp: &Value, sets: Option<&CapabilitySets>) -> Result<crabcan_seccomp::CompiledFilter, OciError> {
    seccomp_profile(seccomp, sets)?
        .compile()
        .map_err(|error| unsupported("linux.seccomp", error.to_string()))
}

fn seccomp_profile(seccomp: &Value, sets: Option<&CapabilitySets>) -> Result<crabcan_seccomp::Profile, OciError> {
    if let Some(fields) = seccomp.as_object() {
        if let Some((name, _)) = fields
            .iter()
            .find(|(name, value)| !SECCOMP_FIELDS.contains(&name.as_str()) && !is_empty(value))
        {
            return Err(unsupported(
                &format!("linux.seccomp.{name}"),
                "crabcan's filter takes defaultAction, defaultErrnoRet, architectures and syscalls only (no seccomp agent, no filter flags)",
            ));
        }
    }
    let text = seccomp.to_string();
    let kept: Vec<String> = sets.map(|s| s.bounding.names()).unwrap_or_default();
    let kept: Vec<&str> = kept.iter().map(String::as_str).collect();
    let context = crabcan_seccomp::ImportContext::for_this_host(&kept);
    crabcan_seccomp::Profile::from_oci_json_with(&text, &context)
        .map_err(|error| unsupported("linux.seccomp", error.to_string()))
}

/// A sysctl a container may set: one of its own namespaces' (network, ipc, uts), as runc
/// allows; a host-wide one is refused, and so is one of a namespace the container shares with
/// the host (not listed in `linux.namespaces`, or joined by a path that is the host's).
fn check_sysctl(key: &str, value: &str, namespaces: &Namespaces) -> Result<(), OciError> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let field = format!("linux.sysctl.{key}");
    let well_formed = !key.is_empty()
        && key
            .split('.')
            .all(|part| !part.is_empty() && part != ".." && !part.contains('/'))
        && !value.contains('\n');
    if !well_formed {
        return Err(unsupported(
            &field,
            "not a sysctl name (dot-separated words, one-line value)",
        ));
    }
    let kind = if key.starts_with("net.") {
        NamespaceKind::Net
    } else if key.starts_with("fs.mqueue.") || IPC.contains(&key) {
        NamespaceKind::Ipc
    } else if key == "kernel.domainname" || key == "kernel.hostname" {
        NamespaceKind::Uts
    } else {
        return Err(unsupported(
            &field,
            "it is not namespaced: it would change the host; only net.*, fs.mqueue.*, the ipc kernel.* ones and kernel.hostname/domainname are",
        ));
    };
    let shared = match namespaces.mode(kind) {
        NamespaceMode::New => false,
        NamespaceMode::Host => true,
        NamespaceMode::Join(path) => NamespaceFile::open(kind, path)
            .map_err(|error| unsupported(&field, error.to_string()))?
            .is_crabcans_own(),
    };
    if shared {
        return Err(unsupported(
            &field,
            format!("it belongs to the {kind} namespace, which the container shares with the host: setting it would change the host"),
        ));
    }
    Ok(())
}

/// What an OCI mount's options ask for.
#[derive(Debug, PartialEq, Eq)]
struct MountOptions {
    /// `mount(2)` flags of a filesystem mount.
    flags: MsFlags,
    /// Filesystem data (`size=...`, `mode=...`): every option crabcan does not know.
    data: Vec<String>,
    /// `bind` or `rbind` (`Some(true)`).
    bind: Option<bool>,
    /// Of a bind: on the bound mount, and on it and every mount below (`ro` and the `r*`
    /// options).
    top: MountAttributes,
    all: MountAttributes,
    /// An `r*` option was given (binds only).
    recursive_options: Vec<String>,
    /// Propagation changes, in order.
    propagation: Vec<MsFlags>,
    /// `idmap` (`Some(false)`) or `ridmap` (`Some(true)`).
    idmap: Option<bool>,
}

impl Default for MountOptions {
    fn default() -> MountOptions {
        MountOptions {
            flags: MsFlags::empty(),
            data: Vec::new(),
            bind: None,
            top: MountAttributes::default(),
            all: MountAttributes::default(),
            recursive_options: Vec::new(),
            propagation: Vec::new(),
            idmap: None,
        }
    }
}

const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// The propagation of a name (`rslave`...), as runc maps it.
fn propagation_flags(name: &str) -> Option<MsFlags> {
    let (recursive, base) = match name.strip_prefix('r') {
        Some(base) if !base.is_empty() => (MsFlags::MS_REC, base),
        _ => (MsFlags::empty(), name),
    };
    let flag = match base {
        "private" => MsFlags::MS_PRIVATE,
        "slave" => MsFlags::MS_SLAVE,
        "shared" => MsFlags::MS_SHARED,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(flag | recursive)
}

/// Parses an OCI mount's options, as runc reads them.
fn mount_options(options: &[String]) -> Result<MountOptions, String> {
    let mut parsed = MountOptions::default();
    let atime = |parsed: &mut MountOptions, flag: MsFlags, attribute: u64| {
        parsed
            .flags
            .remove(MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME);
        parsed.flags |= flag;
        parsed.top.set = (parsed.top.set & !MOUNT_ATTR_ATIME_MASK) | attribute;
        parsed.top.clear |= MOUNT_ATTR_ATIME_MASK;
    };
    for option in options {
        let option = option.as_str();
        // (flag, attribute, set): the plain flags, for filesystems and the bound mount alike.
        let plain = match option {
            "ro" => Some((MsFlags::MS_RDONLY, 0, true)),
            "rw" => Some((MsFlags::MS_RDONLY, 0, false)),
            "nosuid" => Some((MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID, true)),
            "suid" => Some((MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID, false)),
            "noexec" => Some((MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC, true)),
            "exec" => Some((MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC, false)),
            "nosymfollow" => Some((MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW, true)),
            "symfollow" => Some((MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW, false)),
            "nodiratime" => Some((MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME, true)),
            "diratime" => Some((MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME, false)),
            // Every mount but devpts is nodev whatever the options say.
            "nodev" | "dev" => Some((MsFlags::MS_NODEV, 0, true)),
            _ => None,
        };
        if let Some((flag, attribute, set)) = plain {
            parsed.flags.set(flag, set);
            if set {
                parsed.top.set |= attribute;
                parsed.top.clear &= !attribute;
            } else {
                parsed.top.clear |= attribute;
                parsed.top.set &= !attribute;
            }
            // `ro` is recursive on binds, as crabcan's `--add DIR:DIR:ro` is.
            if option == "ro" {
                parsed.all.set |= MOUNT_ATTR_RDONLY;
                parsed.all.clear &= !MOUNT_ATTR_RDONLY;
            } else if option == "rw" {
                parsed.all.set &= !MOUNT_ATTR_RDONLY;
            }
            continue;
        }
        match option {
            "relatime" => atime(&mut parsed, MsFlags::MS_RELATIME, MOUNT_ATTR_RELATIME),
            "noatime" => atime(&mut parsed, MsFlags::MS_NOATIME, MOUNT_ATTR_NOATIME),
            "strictatime" => atime(&mut parsed, MsFlags::MS_STRICTATIME, MOUNT_ATTR_STRICTATIME),
            "sync" => parsed.flags |= MsFlags::MS_SYNCHRONOUS,
            "dirsync" => parsed.flags |= MsFlags::MS_DIRSYNC,
            "defaults" | "atime" | "async" => {}
            "bind" => parsed.bind = Some(parsed.bind.unwrap_or(false)),
            "rbind" => parsed.bind = Some(true),
            "idmap" => parsed.idmap = Some(parsed.idmap.unwrap_or(false)),
            "ridmap" => parsed.idmap = Some(true),
            propagation if propagation_flags(propagation).is_some() => {
                parsed.propagation.extend(propagation_flags(propagation));
            }
            recursive if recursive.len() > 1 && recursive.starts_with('r') => {
                let (attribute, set) = match &recursive[1..] {
                    "ro" => (MOUNT_ATTR_RDONLY, true),
                    "rw" => (MOUNT_ATTR_RDONLY, false),
                    "nosuid" => (MOUNT_ATTR_NOSUID, true),
                    "suid" => (MOUNT_ATTR_NOSUID, false),
                    "noexec" => (MOUNT_ATTR_NOEXEC, true),
                    "exec" => (MOUNT_ATTR_NOEXEC, false),
                    "nosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, true),
                    "symfollow" => (MOUNT_ATTR_NOSYMFOLLOW, false),
                    "nodiratime" => (MOUNT_ATTR_NODIRATIME, true),
                    "diratime" => (MOUNT_ATTR_NODIRATIME, false),
                    "nodev" | "dev" => (MOUNT_ATTR_NODEV, true),
                    "noatime" | "relatime" | "strictatime" | "atime" => {
                        let choice = match &recursive[1..] {
                            "noatime" => MOUNT_ATTR_NOATIME,
                            "strictatime" => MOUNT_ATTR_STRICTATIME,
                            _ => MOUNT_ATTR_RELATIME,
                        };
                        parsed.all.set = (parsed.all.set & !MOUNT_ATTR_ATIME_MASK) | choice;
                        parsed.all.clear |= MOUNT_ATTR_ATIME_MASK;
                        parsed.recursive_options.push(recursive.to_owned());
                        continue;
                    }
                    _ => {
                        parsed.data.push(recursive.to_owned());
                        continue;
                    }
                };
                if set {
                    parsed.all.set |= attribute;
                    parsed.all.clear &= !attribute;
                } else {
                    parsed.all.clear |= attribute;
                    parsed.all.set &= !attribute;
                }
                parsed.recursive_options.push(recursive.to_owned());
            }
            other => parsed.data.push(other.to_owned()),
        }
    }
    Ok(parsed)
}

/// The source a kernel filesystem's mount shows in the mount table: the mount's `source` as
/// given (runc passes it to mount(2) the same way, e.g. `shm` for /dev/shm), or the type when
/// the mount has none.
fn filesystem_source(source: Option<&Path>, kind: &str) -> Result<Cow<'static, str>, String> {
    let Some(source) = source.filter(|s| !s.as_os_str().is_empty()) else {
        return Ok(kind.to_owned().into());
    };
    match source.to_str() {
        Some(name) if !name.contains('\0') => Ok(name.to_owned().into()),
        _ => Err(format!("{source:?} is not a name mount(2) takes (UTF-8, no NUL byte)")),
    }
}

/// Whether `option` means something to [`mount_options`] rather than going to the
/// filesystem as data (for the features document's test).
#[cfg(test)]
pub(crate) fn mount_option_is_known(option: &str) -> bool {
    // tmpcopyup is taken off a mount's options before they are parsed.
    option == "tmpcopyup" || mount_options(&[option.to_owned()]).is_ok_and(|parsed| parsed.data.is_empty())
}

fn relative(destination: &Path) -> String {
    destination.to_string_lossy().trim_start_matches('/').to_owned()
}

/// Whether mount `index` gives `uidMappings`/`gidMappings` (an idmapped mount). crabcan idmaps
/// through the container's own user namespace, so they must be its maps.
fn mount_id_maps(value: &Value, index: usize, config: &ContainerConfig) -> Result<bool, OciError> {
    let field = |key: &str| format!("mounts[{index}].{key}");
    let given = |key: &str| -> Result<Option<IdRange>, OciError> {
        let Some(maps) = value
            .pointer(&format!("/mounts/{index}/{key}"))
            .filter(|m| !is_empty(m))
        else {
            return Ok(None);
        };
        let ranges: Vec<oci_spec::runtime::LinuxIdMapping> =
            serde_json::from_value(maps.clone()).map_err(|error| unsupported(&field(key), error.to_string()))?;
        match ranges.as_slice() {
            [one] => Ok(Some(IdRange {
                inside: one.container_id(),
                outside: one.host_id(),
                count: one.size(),
            })),
            _ => Err(unsupported(&field(key), "crabcan maps one range of ids for now")),
        }
    };
    let (uid, gid) = (given("uidMappings")?, given("gidMappings")?);
    if uid.is_none() && gid.is_none() {
        return Ok(false);
    }
    let same = match &config.id_mapping {
        IdMapping::Given { uid_map, gid_map } => uid.is_none_or(|u| u == *uid_map) && gid.is_none_or(|g| g == *gid_map),
        _ => false,
    };
    if !same {
        return Err(unsupported(
            &field("uidMappings"),
            "crabcan idmaps a mount through the container's user namespace: its maps must be linux.uidMappings and linux.gidMappings",
        ));
    }
    Ok(true)
}

/// `linux.rootfsPropagation`: the flags for `/` before anything is mounted, and those for the
/// new root after `pivot_root` (shared and unbindable, which must not be set while the host's
/// mounts are still below).
///
/// When absent: runc's default, rslave, if a mount asks for slave or shared propagation (which
/// only works from a root that is a slave, or shared); otherwise rprivate, so no mount the host
/// makes later reaches the container (nor could a mount of the container reach the host).
/// Mounts that arrive from the host this way are the host's own, with the host's options: not
/// made `nodev` by crabcan.
fn root_propagation(spec: &Spec) -> Result<(MsFlags, Option<MsFlags>), OciError> {
    let given = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .unwrap_or_default();
    if given.is_empty() {
        let propagates = spec.mounts().iter().flatten().any(|mount| {
            mount.options().iter().flatten().any(|option| {
                propagation_flags(option).is_some_and(|flags| flags.intersects(MsFlags::MS_SLAVE | MsFlags::MS_SHARED))
            })
        });
        let flags = if propagates {
            MsFlags::MS_SLAVE
        } else {
            MsFlags::MS_PRIVATE
        };
        return Ok((MsFlags::MS_REC | flags, None));
    }
    let flags = propagation_flags(&given).ok_or_else(|| {
        unsupported(
            "linux.rootfsPropagation",
            format!("{given:?} is not one of shared, slave, private, unbindable or their r variants"),
        )
    })?;
    let after = flags
        .intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE)
        .then_some(flags);
    Ok((flags, after))
}

/// The mount steps of `spec`, in its order, then crabcan's devices and /dev links where /dev is
/// a tmpfs, the bundle's devices, the masked and read-only paths, the working directory, a
/// read-only root, and pivot_root. Returns whether a cgroup mount was asked for (crabcan mounts
/// its own view).
fn mount_plan(
    bundle: &Path,
    spec: &Spec,
    value: &Value,
    readonly_root: bool,
    config: &ContainerConfig,
) -> Result<(Vec<MountStep>, bool), OciError> {
    let (root_flags, new_root_flags) = root_propagation(spec)?;
    // No device node of the rootfs can be opened: devices are the nodes bound one by one.
    let mut steps = vec![
        MountStep::RootPropagation(root_flags),
        MountStep::BindRootfs,
        MountStep::NoDevices,
    ];
    let rules = DeviceRules::parse(value.pointer("/linux/resources/devices"))?;
    let ownership = Ownership {
        user: &config.namespaces.user,
        id_mapping: &config.id_mapping,
    };
    let listed = listed_devices(value.pointer("/linux/devices"), &rules, &ownership)?;
    let defaults: Vec<&'static str> = default_devices(&rules)?
        .into_iter()
        .filter(|name| !listed.iter().any(|node| node.target == Path::new("/dev").join(name)))
        .collect();
    let mut cgroup_view = false;
    let mut dev_is_tmpfs = false;
    for (index, mount) in spec.mounts().iter().flatten().enumerate() {
        let field = |name: &str| format!("mounts[{index}].{name}");
        let destination = mount.destination();
        if !destination.is_absolute() {
            return Err(unsupported(&field("destination"), "must be an absolute path"));
        }
        let target = relative(destination);
        if target.is_empty() || target.split('/').any(|c| c == "..") {
            return Err(unsupported(
                &field("destination"),
                "must name a path below / without '..'",
            ));
        }
        let mut options = mount.options().clone().unwrap_or_default();
        let copy_up = options.iter().any(|o| o == "tmpcopyup");
        options.retain(|o| o != "tmpcopyup");
        let mut parsed = mount_options(&options).map_err(|why| unsupported(&field("options"), why))?;
        let kind = mount.typ().clone().unwrap_or_default();
        let is_bind = kind == "bind" || parsed.bind.is_some();
        if mount_id_maps(value, index, config)? && parsed.idmap.is_none() {
            parsed.idmap = Some(false);
        }
        if parsed.idmap.is_some() && !is_bind {
            return Err(unsupported(
                &field("options"),
                "idmap and ridmap apply to bind mounts only",
            ));
        }
        if parsed.idmap.is_some() && config.namespaces.user == NamespaceMode::Host {
            return Err(unsupported(
                &field("options"),
                "an idmapped mount is mapped through the container's user namespace, and linux.namespaces has none",
            ));
        }
        if target == "proc" && kind != "proc" || target.starts_with("proc/") {
            return Err(unsupported(
                &field("destination"),
                "nothing but procfs may be mounted on or under /proc",
            ));
        }
        if is_bind {
            let source = mount
                .source()
                .clone()
                .ok_or_else(|| unsupported(&field("source"), "a bind needs a source"))?;
            let source = if source.is_absolute() {
                source
            } else {
                bundle.join(source)
            };
            if !parsed.data.is_empty() {
                // mount(2) ignores the data of a bind, and runc hands it over all the same:
                // bundles that give every mount the same options (runtime-tools' do) run.
                log::warn!(
                    "config.json: {} {:?}: a bind mount takes no filesystem options (the kernel ignores them): ignored",
                    field("options"),
                    parsed.data.join(",")
                );
            }
            let mut all = parsed.all;
            all.set |= MOUNT_ATTR_NODEV;
            all.clear &= !MOUNT_ATTR_NODEV;
            steps.push(MountStep::OciBind(Box::new(OciBind {
                source,
                target: destination.clone(),
                recursive: parsed.bind == Some(true),
                idmap: parsed.idmap,
                top: parsed.top,
                all,
                propagation: parsed.propagation,
            })));
            continue;
        }
        if copy_up && kind != "tmpfs" {
            return Err(unsupported(&field("options"), "tmpcopyup is for tmpfs mounts"));
        }
        if !parsed.recursive_options.is_empty() {
            return Err(unsupported(
                &field("options"),
                format!(
                    "the recursive options {:?} apply to bind mounts only",
                    parsed.recursive_options.join(",")
                ),
            ));
        }
        let named_source =
            || filesystem_source(mount.source().as_deref(), &kind).map_err(|why| unsupported(&field("source"), why));
        match kind.as_str() {
            "cgroup" | "cgroup2" if target == "sys/fs/cgroup" => cgroup_view = true,
            "cgroup" | "cgroup2" => {
                return Err(unsupported(
                    &field("destination"),
                    "crabcan mounts the container's own read-only cgroup view at /sys/fs/cgroup only; a cgroup \
                     filesystem anywhere else is not supported",
                ))
            }
            "tmpfs" if copy_up => {
                steps.push(MountStep::TmpfsCopyUp {
                    target: target.clone().into(),
                    source: named_source()?,
                    flags: parsed.flags | MsFlags::MS_NODEV,
                    data: parsed.data.join(","),
                });
                if !parsed.propagation.is_empty() {
                    steps.push(MountStep::Propagation {
                        target: target.clone(),
                        flags: parsed.propagation,
                    });
                }
            }
            "proc" | "sysfs" | "tmpfs" | "devpts" | "mqueue" => {
                dev_is_tmpfs |= kind == "tmpfs" && target == "dev";
                // nodev everywhere but devpts (its ptys are device nodes): a device node made
                // in the container's /dev tmpfs (podman's default capabilities include
                // CAP_MKNOD) can never be opened, which is how the device rules hold.
                let mut flags = parsed.flags;
                flags.set(MsFlags::MS_NODEV, kind != "devpts");
                steps.push(MountStep::Filesystem {
                    target: target.clone().into(),
                    source: named_source()?,
                    fstype: kind.clone().into(),
                    flags,
                    data: parsed.data.join(","),
                });
                if !parsed.propagation.is_empty() {
                    steps.push(MountStep::Propagation {
                        target: target.clone(),
                        flags: parsed.propagation,
                    });
                }
                if dev_is_tmpfs && target == "dev" {
                    steps.extend(defaults.iter().map(|name| MountStep::HostDevice { name }));
                    steps.extend(
                        crate::mounts::DEV_LINKS
                            .iter()
                            .map(|(path, to)| MountStep::Symlink { path, target: to }),
                    );
                }
            }
            other => {
                return Err(unsupported(
                    &field("type"),
                    format!("{other:?} mounts are not implemented yet"),
                ))
            }
        }
    }
    steps.extend(listed.into_iter().map(MountStep::Device));
    for (key, value) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
    {
        check_sysctl(&key, &value, &config.namespaces)?;
        steps.push(MountStep::Sysctl { key, value });
    }
    let paths = |field: &str| -> Result<Vec<String>, OciError> {
        let listed = match field {
            "maskedPaths" => spec.linux().as_ref().and_then(|l| l.masked_paths().clone()),
            _ => spec.linux().as_ref().and_then(|l| l.readonly_paths().clone()),
        };
        let listed = listed.unwrap_or_default();
        for path in &listed {
            if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
                return Err(unsupported(
                    &format!("linux.{field}"),
                    format!("{path:?} must be absolute, without '..'"),
                ));
            }
        }
        Ok(listed.iter().map(|p| p.trim_start_matches('/').to_owned()).collect())
    };
    steps.extend(
        paths("maskedPaths")?
            .into_iter()
            .map(|path| MountStep::Mask { path: path.into() }),
    );
    steps.extend(
        paths("readonlyPaths")?
            .into_iter()
            .map(|path| MountStep::ReadOnly { path: path.into() }),
    );
    steps.push(MountStep::WorkingDirectory(config.workdir.clone()));
    if readonly_root {
        steps.push(MountStep::ReadOnlyRoot);
    }
    steps.push(MountStep::PivotRoot);
    steps.extend(new_root_flags.map(MountStep::NewRootPropagation));
    Ok((steps, cgroup_view))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// oci-spec checks `process.execCPUAffinity` with a pattern, which this workspace's build
    /// compiles with regex-lite (patches/regex): it must compile there (oci-spec panics if it
    /// does not) and still tell a CPU list from anything else.
    #[test]
    fn oci_specs_cpu_affinity_pattern_works_with_the_regex_stand_in() {
        let process = |initial: &str| {
            let json = serde_json::json!({"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "execCPUAffinity": {"initial": initial}});
            serde_json::from_value::<oci_spec::runtime::Process>(json)
        };
        for good in ["0", "0-3", "0-3,7", "1,2,10-12"] {
            assert!(process(good).is_ok(), "{good}: {:?}", process(good).err());
        }
        for bad in ["", "0-", "-3", "0-x", "1,,2", " 1", "\u{0663}"] {
            assert!(process(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsupported_fields_are_named_and_empty_ones_pass() {
        let ok = serde_json::json!({"ociVersion": "1.2.0", "hooks": {}, "linux": {"sysctl": {}}, "process": {"args": ["sh"]}});
        assert!(check_supported(&ok, "").is_ok());
        let hierarchy = serde_json::json!({"linux": {"resources": {"memory": {"useHierarchy": true}}}});
        let error = check_supported(&hierarchy, "").unwrap_err();
        assert!(
            error.to_string().contains("linux.resources.memory.useHierarchy"),
            "{error}"
        );
        let hugepages =
            serde_json::json!({"linux": {"resources": {"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}}});
        assert!(check_supported(&hugepages, "").is_ok());
        let hooks = serde_json::json!({"hooks": {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]}});
        assert!(check_supported(&hooks, "").is_ok());
        let hooks = serde_json::json!({"hooks": {"prestart": [{"path": "/bin/true", "bogus": 1}]}});
        assert!(check_supported(&hooks, "")
            .unwrap_err()
            .to_string()
            .contains("hooks.prestart.*.bogus"));
        let hooks = serde_json::json!({"hooks": {"onReboot": [{"path": "/bin/true"}]}});
        assert!(check_supported(&hooks, "")
            .unwrap_err()
            .to_string()
            .contains("hooks.onReboot"));
        let ns_path = serde_json::json!({"linux": {"namespaces": [{"type": "network", "path": "/proc/1/ns/net"}]}});
        assert!(check_supported(&ns_path, "").is_ok());
        let rlimit =
            serde_json::json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]}});
        assert!(check_supported(&rlimit, "").is_ok());
    }

    fn strings(options: &[&str]) -> Vec<String> {
        options.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mount_options_become_flags_data_attributes_and_propagation() {
        let parsed = mount_options(&strings(&["nosuid", "ro", "mode=755", "size=65536k"])).unwrap();
        assert!(parsed.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY));
        assert_eq!(parsed.data, ["mode=755", "size=65536k"]);
        assert_eq!(parsed.bind, None);
        let bind = mount_options(&strings(&[
            "rbind",
            "nosuid",
            "noexec",
            "rro",
            "rslave",
            "shared",
            "nosymfollow",
        ]))
        .unwrap();
        assert_eq!(bind.bind, Some(true));
        assert_eq!(
            bind.top.set,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSYMFOLLOW
        );
        assert_eq!(bind.all.set, MOUNT_ATTR_RDONLY);
        assert_eq!(
            bind.propagation,
            [MsFlags::MS_REC | MsFlags::MS_SLAVE, MsFlags::MS_SHARED],
            "in the order given"
        );
        assert_eq!(bind.recursive_options, ["rro"]);
        let plain = mount_options(&strings(&["bind", "ro", "noatime"])).unwrap();
        assert_eq!(plain.bind, Some(false));
        assert_eq!(
            plain.all.set, MOUNT_ATTR_RDONLY,
            "ro is recursive, as crabcan's --add :ro"
        );
        assert_eq!(
            (plain.top.set, plain.top.clear),
            (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME_MASK)
        );
        let rw = mount_options(&strings(&["ro", "rw"])).unwrap();
        assert!(
            !rw.flags.contains(MsFlags::MS_RDONLY) && rw.all.set == 0,
            "the last one wins"
        );
        assert_eq!(mount_options(&strings(&["idmap"])).unwrap().idmap, Some(false));
        assert_eq!(mount_options(&strings(&["idmap", "ridmap"])).unwrap().idmap, Some(true));
    }

    #[test]
    fn the_root_is_private_or_a_slave_for_mounts_that_propagate_unless_the_bundle_says() {
        let spec = |propagation: Option<&str>| -> Spec {
            let mut json = serde_json::json!({"ociVersion": "1.2.0", "linux": {}});
            if let Some(propagation) = propagation {
                json["linux"]["rootfsPropagation"] = Value::from(propagation);
            }
            serde_json::from_value(json).unwrap()
        };
        assert_eq!(
            root_propagation(&spec(None)).unwrap(),
            (MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
        );
        let slave_mount: Spec = serde_json::from_value(serde_json::json!({"ociVersion": "1.2.0",
            "mounts": [{"destination": "/v", "type": "bind", "source": "/v", "options": ["rbind", "rslave"]}]}))
        .unwrap();
        assert_eq!(
            root_propagation(&slave_mount).unwrap(),
            (MsFlags::MS_REC | MsFlags::MS_SLAVE, None),
            "runc's default, which the mount needs"
        );
        assert_eq!(
            root_propagation(&spec(Some("private"))).unwrap(),
            (MsFlags::MS_PRIVATE, None)
        );
        let shared = MsFlags::MS_REC | MsFlags::MS_SHARED;
        assert_eq!(
            root_propagation(&spec(Some("rshared"))).unwrap(),
            (shared, Some(shared))
        );
        let unbindable = MsFlags::MS_UNBINDABLE;
        assert_eq!(
            root_propagation(&spec(Some("unbindable"))).unwrap(),
            (unbindable, Some(unbindable))
        );
        let error = root_propagation(&spec(Some("sideways"))).unwrap_err();
        assert!(error.to_string().contains("linux.rootfsPropagation"), "{error}");
    }

    fn plan_of(mounts: Value) -> Result<Vec<MountStep>, OciError> {
        let json = serde_json::json!({"ociVersion": "1.2.0", "mounts": mounts, "linux": {}});
        let spec: Spec = serde_json::from_value(json.clone()).unwrap();
        // runc's default: no user namespace.
        let mut config = ContainerConfig::new("/srv/rootfs", vec!["sh".into()]);
        config.namespaces.user = NamespaceMode::Host;
        config.id_mapping = IdMapping::Host;
        mount_plan(Path::new("/srv/bundle"), &spec, &json, false, &config).map(|(steps, _)| steps)
    }

    /// The plan's first bind of the bundle's.
    fn first_bind(steps: &[MountStep]) -> &OciBind {
        steps
            .iter()
            .find_map(|step| match step {
                MountStep::OciBind(bind) => Some(bind.as_ref()),
                _ => None,
            })
            .expect("a bind in the plan")
    }

    #[test]
    fn the_plan_makes_the_rootfs_nodev_and_binds_with_their_options() {
        let steps = plan_of(serde_json::json!([
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "nosuid", "rslave"]},
        ]))
        .unwrap();
        assert_eq!(
            steps[0],
            MountStep::RootPropagation(MsFlags::MS_REC | MsFlags::MS_SLAVE),
            "an rslave mount"
        );
        assert_eq!(steps[1..3], [MountStep::BindRootfs, MountStep::NoDevices]);
        let bind = first_bind(&steps);
        assert_eq!(bind.source, Path::new("/srv/bundle/data"), "relative to the bundle");
        assert!(bind.recursive);
        assert_eq!(bind.all.set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV, "nodev always");
        assert_eq!(bind.top.set, MOUNT_ATTR_NOSUID);
        assert_eq!(bind.propagation, [MsFlags::MS_REC | MsFlags::MS_SLAVE]);
        let devices = steps
            .iter()
            .filter(|s| matches!(s, MountStep::HostDevice { .. }))
            .count();
        assert_eq!(devices, crate::mounts::DEVICES.len());
        assert_eq!(steps.last(), Some(&MountStep::PivotRoot));
        let dev = steps
            .iter()
            .find_map(|step| match step {
                MountStep::Filesystem { target, flags, .. } if target == "dev" => Some(*flags),
                _ => None,
            })
            .unwrap();
        assert!(dev.contains(MsFlags::MS_NODEV | MsFlags::MS_NOSUID));
    }

    #[test]
    fn a_filesystems_source_is_the_bundles_or_its_type() {
        let steps = plan_of(serde_json::json!([
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid"]},
            {"destination": "/run", "type": "tmpfs", "options": ["tmpcopyup"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": ""},
        ]))
        .unwrap();
        let source_of = |wanted: &str| {
            steps.iter().find_map(|step| match step {
                MountStep::Filesystem { target, source, .. } | MountStep::TmpfsCopyUp { target, source, .. }
                    if target == wanted =>
                {
                    Some(source.to_string())
                }
                _ => None,
            })
        };
        assert_eq!(
            source_of("dev/shm").as_deref(),
            Some("shm"),
            "as runc: the mount table shows it"
        );
        assert_eq!(source_of("run").as_deref(), Some("tmpfs"), "none given: the type");
        assert_eq!(source_of("dev/mqueue").as_deref(), Some("mqueue"), "empty: the type");
        let error =
            plan_of(serde_json::json!([{"destination": "/x", "type": "tmpfs", "source": "a\u{0}b"}])).unwrap_err();
        assert!(error.to_string().contains("mounts[0].source"), "{error}");
    }

    #[test]
    fn a_binds_filesystem_options_are_ignored_as_the_kernel_does() {
        let steps = plan_of(serde_json::json!([
            {"destination": "/b", "type": "bind", "source": "/x", "options": ["bind", "ro", "mode=755", "size=1k"]},
        ]))
        .unwrap();
        let bind = first_bind(&steps);
        assert_eq!(
            bind.all.set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV,
            "its flags still hold"
        );
    }

    #[test]
    fn properties_the_runtime_spec_does_not_define_are_removed_and_named() {
        let mut value = serde_json::json!({
            "ociVersion": "1.2.0",
            "unknown": "unknown",
            "emptyUnknown": {},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "vendorThing": 1},
            "mounts": [{"destination": "/tmp", "type": "tmpfs", "x-extra": true}],
            "annotations": {"org.example.key": ""},
            "linux": {"resources": {"memory": {"useHierarchy": true}}},
        });
        let spec = Spec::deserialize(&value).unwrap();
        let known = serde_json::to_value(&spec).unwrap();
        let removed = remove_unknown(&mut value, &known);
        assert_eq!(removed, ["mounts.*.x-extra", "process.vendorThing", "unknown"]);
        assert!(value.get("emptyUnknown").is_none());
        assert_eq!(
            value["annotations"]["org.example.key"], "",
            "annotation keys are the bundle's own"
        );
        // A property the spec defines and crabcan does not implement stays, and is refused.
        let error = check_supported(&value, "").unwrap_err();
        assert!(
            error.to_string().contains("linux.resources.memory.useHierarchy"),
            "{error}"
        );
    }

    #[test]
    fn an_idmapped_bind_uses_the_containers_user_namespace() {
        let mounts = serde_json::json!([{"destination": "/b", "type": "bind", "source": "/x", "options": ["rbind", "ridmap"],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}]);
        let json = serde_json::json!({"ociVersion": "1.2.0", "mounts": mounts, "linux": {}});
        let spec: Spec = serde_json::from_value(json.clone()).unwrap();
        let mut config = ContainerConfig::new("/srv/rootfs", vec!["sh".into()]);
        let range = IdRange {
            inside: 0,
            outside: 100000,
            count: 65536,
        };
        config.id_mapping = IdMapping::Given {
            uid_map: range,
            gid_map: range,
        };
        let (steps, _) = mount_plan(Path::new("/srv"), &spec, &json, false, &config).unwrap();
        let bind = first_bind(&steps);
        assert_eq!(bind.idmap, Some(true));
        config.id_mapping = IdMapping::Given {
            uid_map: IdRange { outside: 1, ..range },
            gid_map: range,
        };
        let error = mount_plan(Path::new("/srv"), &spec, &json, false, &config).unwrap_err();
        assert!(error.to_string().contains("field mounts[0].uidMappings "), "{error}");
    }

    #[test]
    fn mounts_crabcan_cannot_make_are_refused_by_field() {
        for (mounts, field) in [
            (
                serde_json::json!([{"destination": "/cg", "type": "cgroup2", "source": "cgroup"}]),
                "mounts[0].destination",
            ),
            (
                serde_json::json!([{"destination": "/t", "type": "tmpfs", "source": "t", "options": ["rro"]}]),
                "mounts[0].options",
            ),
            (
                serde_json::json!([{"destination": "/t", "type": "proc", "source": "t", "options": ["tmpcopyup"]}]),
                "mounts[0].options",
            ),
            (
                serde_json::json!([{"destination": "/b", "type": "bind", "source": "/x",
                    "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}]),
                "mounts[0].uidMappings",
            ),
            (
                serde_json::json!([{"destination": "/b", "type": "bind", "source": "/x", "options": ["idmap"]}]),
                "mounts[0].options",
            ),
            (
                serde_json::json!([{"destination": "/t", "type": "tmpfs", "source": "t", "options": ["idmap"]}]),
                "mounts[0].options",
            ),
        ] {
            let error = plan_of(mounts.clone()).unwrap_err();
            assert!(
                error.to_string().contains(&format!("field {field} ")),
                "{mounts}: {error}"
            );
        }
    }

    fn linux(namespaces: Value) -> oci_spec::runtime::Linux {
        serde_json::from_value(serde_json::json!({ "namespaces": namespaces })).unwrap()
    }

    #[test]
    fn unlisted_namespaces_are_the_hosts_and_paths_are_joined() {
        let listed = linux(serde_json::json!([
            {"type": "mount"}, {"type": "network", "path": "/run/netns/pod"}, {"type": "pid", "path": ""}
        ]));
        let namespaces = namespaces(Some(&listed)).unwrap();
        assert_eq!(namespaces.mount, NamespaceMode::New);
        assert_eq!(namespaces.net, NamespaceMode::Join("/run/netns/pod".into()));
        assert_eq!(namespaces.pid, NamespaceMode::New, "an empty path is a new one");
        for shared in [&namespaces.uts, &namespaces.ipc, &namespaces.user] {
            assert_eq!(*shared, NamespaceMode::Host);
        }
        assert_eq!(
            namespaces.cgroup,
            NamespaceMode::New,
            "kept new: see the doc of namespaces()"
        );
    }

    #[test]
    fn the_mount_namespace_must_be_new_and_every_kind_listed_once() {
        for (listed, field) in [
            (serde_json::json!([{"type": "pid"}]), "linux.namespaces"),
            (
                serde_json::json!([{"type": "mount", "path": "/proc/1/ns/mnt"}]),
                "linux.namespaces[0].path",
            ),
            (
                serde_json::json!([{"type": "mount"}, {"type": "time"}]),
                "linux.namespaces[1].type",
            ),
            (
                serde_json::json!([{"type": "mount"}, {"type": "pid"}, {"type": "pid"}]),
                "linux.namespaces[2]",
            ),
            (
                serde_json::json!([{"type": "mount"}, {"type": "network", "path": "netns/x"}]),
                "linux.namespaces[1].path",
            ),
        ] {
            let error = namespaces(Some(&linux(listed.clone()))).unwrap_err();
            assert!(
                error.to_string().contains(&format!("field {field} ")),
                "{listed}: {error}"
            );
        }
    }

    #[test]
    fn id_maps_follow_the_user_namespace() {
        let maps: oci_spec::runtime::Linux = serde_json::from_value(serde_json::json!({
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        }))
        .unwrap();
        assert!(matches!(
            id_mapping(Some(&maps), &NamespaceMode::New),
            Ok(IdMapping::Given { .. })
        ));
        assert!(id_mapping(Some(&maps), &NamespaceMode::Host).is_err());
        let joined = NamespaceMode::Join("/proc/7/ns/user".into());
        assert!(
            matches!(id_mapping(Some(&maps), &joined), Ok(IdMapping::Given { .. })),
            "to be checked"
        );
        assert_eq!(
            id_mapping(None, &joined).unwrap(),
            IdMapping::Host,
            "its own, none written"
        );
        assert!(id_mapping(None, &NamespaceMode::New).is_err());
    }

    #[test]
    fn a_hostname_needs_a_uts_namespace_of_its_own() {
        let spec = |namespaces: Value, hostname: Option<&str>| -> Spec {
            let mut json = serde_json::json!({"ociVersion": "1.2.0", "linux": {"namespaces": namespaces}});
            if let Some(name) = hostname {
                json["hostname"] = Value::from(name);
            }
            serde_json::from_value(json).unwrap()
        };
        let names = |spec: &Spec| {
            let mut config = ContainerConfig::new("/srv", vec!["sh".into()]);
            config.namespaces = namespaces(spec.linux().as_ref())?;
            set_names(&mut config, spec).map(|()| config)
        };
        let shared = spec(serde_json::json!([{"type": "mount"}]), Some("box"));
        assert!(names(&shared).unwrap_err().to_string().contains("field hostname"));
        let config = names(&spec(serde_json::json!([{"type": "mount"}]), None)).unwrap();
        assert!(!config.set_hostname, "the host's uts namespace keeps the host's name");
        let joined = serde_json::json!([{"type": "mount"}, {"type": "uts", "path": "/proc/7/ns/uts"}]);
        assert!(
            !names(&spec(joined.clone(), None)).unwrap().set_hostname,
            "the pod's name stays"
        );
        let missing = serde_json::json!([{"type": "mount"}, {"type": "uts", "path": "/nonexistent/ns/uts"}]);
        let error = names(&spec(missing, Some("pod"))).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ns/uts"), "{error}");
        let hosts = serde_json::json!([{"type": "mount"}, {"type": "uts", "path": "/proc/self/ns/uts"}]);
        assert!(names(&spec(hosts, Some("pod")))
            .unwrap_err()
            .to_string()
            .contains("field hostname"));
        let kept = names(&spec(serde_json::json!([{"type": "mount"}, {"type": "uts"}]), None)).unwrap();
        assert!(
            !kept.set_hostname,
            "a new one keeps the host's name it was made with, as with runc"
        );
    }

    #[test]
    fn a_seccomp_agent_or_filter_flags_are_refused_by_name() {
        for (field, value) in [
            ("listenerPath", serde_json::json!("/run/agent.sock")),
            ("flags", serde_json::json!(["SECCOMP_FILTER_FLAG_LOG"])),
        ] {
            let mut seccomp = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []});
            seccomp[field] = value;
            let error = seccomp_filter(&seccomp, None).unwrap_err().to_string();
            assert!(error.contains(&format!("linux.seccomp.{field}")), "{error}");
        }
        let empty_flags = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": []});
        assert!(seccomp_filter(&empty_flags, None).is_ok());
    }

    #[test]
    fn only_namespaced_sysctls_are_taken() {
        let new = Namespaces::default();
        assert!(check_sysctl("net.ipv4.ping_group_range", "0 2147483647", &new).is_ok());
        assert!(check_sysctl("kernel.shmmax", "1024", &new).is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", "10", &new).is_ok());
        let host_net = Namespaces {
            net: NamespaceMode::Host,
            ..Namespaces::default()
        };
        let error = check_sysctl("net.ipv4.ping_group_range", "0 1", &host_net).unwrap_err();
        assert!(error.to_string().contains("shares with the host"), "{error}");
        assert!(check_sysctl("kernel.shmmax", "1024", &host_net).is_ok());
        let own_net = Namespaces {
            net: NamespaceMode::Join("/proc/self/ns/net".into()),
            ..Namespaces::default()
        };
        assert!(
            check_sysctl("net.ipv4.ip_forward", "1", &own_net).is_err(),
            "crabcan's own is the host's"
        );
        for (key, value) in [
            ("kernel.panic", "1"),
            ("vm.swappiness", "0"),
            ("net..x", "1"),
            ("net.a/b", "1"),
            ("net.x", "1\n2"),
        ] {
            assert!(check_sysctl(key, value, &new).is_err(), "{key}");
        }
    }
}
