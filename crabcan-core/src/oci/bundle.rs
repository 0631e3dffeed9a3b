//! A bundle's `config.json` turned into crabcan's [`ContainerConfig`]: the process, the root,
//! the mounts (as crabcan mount steps, in the config's order), masked and read-only paths,
//! namespaces, id mappings, resources and seccomp. Every field crabcan does not implement yet is
//! an error that names it ([`OciError::Unsupported`]): nothing is skipped silently. The reading
//! is bounded ([`MAX_CONFIG_BYTES`]) and a hostile bundle cannot point a mount outside its rootfs
//! (mount targets are opened inside the rootfs like every other crabcan mount).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crabcan_cgroups::Limits;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::Value;

use super::OciError;
use crate::capabilities::CapabilitySet;
use crate::config::{CapabilitySets, ContainerConfig, FileLimit, IdMapping, Personality, Rlimit, Terminal};
use crate::hooks::{Hook, HookKind, MAX_HOOKS_PER_KIND};
use crate::mounts::{MountStep, DEVICES};
use crate::spec::{BindMount, IdRange};

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

fn map_value(bundle: &Path, path: &Path, value: Value) -> Result<Bundle, OciError> {
    check_supported(&value, "")?;
    let spec: Spec = serde_json::from_value(value.clone()).map_err(|source| OciError::BadConfig {
        path: path.to_owned(),
        why: source.to_string(),
    })?;
    map(bundle, &spec, &value)
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
        .any(|allowed| path == *allowed || path.starts_with(&format!("{allowed}.")))
}

/// Whether some supported field lies below `path`, so its members must be looked at.
fn has_supported_members(path: &str) -> bool {
    path.is_empty() || SUPPORTED.iter().any(|allowed| allowed.starts_with(&format!("{path}.")))
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
    // Without a hostname the new uts namespace keeps the one it was made with, the host's, as
    // with runc.
    config.hostname = match spec.hostname() {
        Some(hostname) => hostname.clone(),
        None => nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_else(|| config.hostname.clone()),
    };
    config.domainname = spec.domainname().clone().filter(|d| !d.is_empty());
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
    let linux = spec.linux().as_ref();
    config.personality = personality(linux)?;
    config.id_mapping = id_mapping(linux)?;
    check_namespaces(linux)?;
    let limits = limits(value)?;
    config.limits = Some(limits);
    if let Some(seccomp) = value.pointer("/linux/seccomp").filter(|s| !is_empty(s)) {
        config.seccomp = Some(seccomp_filter(seccomp, config.capability_sets.as_ref())?);
    }
    let (plan, cgroup_view) = mount_plan(bundle, spec, root.readonly().unwrap_or(false), &config)?;
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

fn id_mapping(linux: Option<&oci_spec::runtime::Linux>) -> Result<IdMapping, OciError> {
    let user_namespace = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|namespaces| namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::User));
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
    match (user_namespace, uid, gid) {
        (false, None, None) => Ok(IdMapping::Host),
        (false, _, _) => Err(unsupported(
            "linux.uidMappings",
            "id mappings need a user namespace in linux.namespaces",
        )),
        (true, Some(uid_map), Some(gid_map)) => Ok(IdMapping::Given { uid_map, gid_map }),
        (true, _, _) => Err(unsupported(
            "linux.uidMappings",
            "a user namespace needs uid and gid mappings",
        )),
    }
}

/// crabcan always gives a container new mount, pid, uts, ipc and net namespaces (and unshares
/// the cgroup namespace itself); a config that shares one with the host, or joins one by path,
/// is refused for now.
fn check_namespaces(linux: Option<&oci_spec::runtime::Linux>) -> Result<(), OciError> {
    let namespaces = linux.and_then(|l| l.namespaces().clone()).unwrap_or_default();
    for namespace in &namespaces {
        if namespace.path().is_some() {
            return Err(unsupported(
                "linux.namespaces.path",
                "joining an existing namespace is not implemented yet",
            ));
        }
    }
    for wanted in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
    ] {
        if !namespaces.iter().any(|n| n.typ() == wanted) {
            return Err(unsupported(
                "linux.namespaces",
                format!("crabcan always makes a new {wanted:?} namespace; sharing the host's is not implemented yet: add it"),
            ));
        }
    }
    Ok(())
}

/// The cgroup limits of `linux.resources` (see [`super::limits`]), its device rules checked.
pub(crate) fn limits(value: &Value) -> Result<Limits, OciError> {
    let resources = |pointer: &str| value.pointer(&format!("/linux/resources{pointer}"));
    if let Some(rules) = resources("/devices").and_then(Value::as_array) {
        check_device_rules(rules)?;
    }
    super::limits::from_config(value)
}

/// The only device rule crabcan takes for now is runc's default, "deny all": crabcan enforces
/// it by construction, as the container's /dev is a fresh tmpfs holding only the few devices
/// crabcan binds (null, zero, full, random, urandom, tty) and device nodes cannot be used from
/// another filesystem (crabcan mounts the rootfs and binds `nodev` where it matters).
fn check_device_rules(rules: &[Value]) -> Result<(), OciError> {
    let deny_all = |rule: &Value| {
        rule.get("allow") == Some(&Value::Bool(false))
            && rule.get("type").is_none_or(|t| t == "a")
            && rule.get("major").is_none_or(Value::is_null)
            && rule.get("minor").is_none_or(Value::is_null)
    };
    match rules {
        [] => Ok(()),
        [only] if deny_all(only) => Ok(()),
        _ => Err(unsupported(
            "linux.resources.devices",
            "crabcan's OCI mode takes only the rule that denies every device for now",
        )),
    }
}

/// The members of `linux.seccomp` crabcan implements; any other with a value is refused by
/// name (`listenerPath`, `listenerMetadata`, `flags`).
const SECCOMP_FIELDS: [&str; 4] = ["defaultAction", "defaultErrnoRet", "architectures", "syscalls"];

fn seccomp_filter(seccomp: &Value, sets: Option<&CapabilitySets>) -> Result<crabcan_seccomp::CompiledFilter, OciError> {
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
    let profile = crabcan_seccomp::Profile::from_oci_json_with(&text, &context)
        .map_err(|error| unsupported("linux.seccomp", error.to_string()))?;
    profile
        .compile()
        .map_err(|error| unsupported("linux.seccomp", error.to_string()))
}

/// A sysctl a container may set: one of its own namespaces' (network, ipc, uts), as runc
/// allows; a host-wide one is refused.
fn check_sysctl(key: &str, value: &str) -> Result<(), OciError> {
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
    let namespaced = key.starts_with("net.")
        || key.starts_with("fs.mqueue.")
        || IPC.contains(&key)
        || key == "kernel.domainname"
        || key == "kernel.hostname";
    match (well_formed, namespaced) {
        (false, _) => Err(unsupported(&field, "not a sysctl name (dot-separated words, one-line value)")),
        (true, false) => Err(unsupported(
            &field,
            "it is not namespaced: it would change the host; only net.*, fs.mqueue.*, the ipc kernel.* ones and kernel.hostname/domainname are",
        )),
        (true, true) => Ok(()),
    }
}

/// Mount flags and data of an OCI mount's options.
fn mount_options(options: &[String]) -> Result<(MsFlags, Vec<String>, bool), String> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut read_only = false;
    for option in options {
        match option.as_str() {
            "ro" => {
                read_only = true;
                flags |= MsFlags::MS_RDONLY
            }
            "rw" => read_only = false,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "suid" | "dev" | "exec" | "atime" | "bind" | "rbind" | "private" | "rprivate" => {}
            "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                return Err(format!(
                    "the propagation {option:?} is not implemented yet (mounts are private)"
                ))
            }
            other => data.push(other.to_owned()),
        }
    }
    Ok((flags, data, read_only))
}

fn relative(destination: &Path) -> String {
    destination.to_string_lossy().trim_start_matches('/').to_owned()
}

/// The mount steps of `spec`, in its order, then crabcan's devices and /dev links where /dev is
/// a tmpfs, the masked and read-only paths, the working directory, a read-only root, and
/// pivot_root. Returns whether a cgroup mount was asked for (crabcan mounts its own view).
fn mount_plan(
    bundle: &Path,
    spec: &Spec,
    readonly_root: bool,
    config: &ContainerConfig,
) -> Result<(Vec<MountStep>, bool), OciError> {
    let mut steps = vec![MountStep::MakeEverythingPrivate, MountStep::BindRootfs];
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
        let (flags, data, read_only) = mount_options(&options).map_err(|why| unsupported(&field("options"), why))?;
        let kind = mount.typ().clone().unwrap_or_default();
        let is_bind = kind == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
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
            steps.push(MountStep::Bind(BindMount {
                source,
                target: destination.clone(),
                read_only,
            }));
            continue;
        }
        if copy_up && kind != "tmpfs" {
            return Err(unsupported(&field("options"), "tmpcopyup is for tmpfs mounts"));
        }
        match kind.as_str() {
            "cgroup" | "cgroup2" if target == "sys/fs/cgroup" => cgroup_view = true,
            "tmpfs" if copy_up => steps.push(MountStep::TmpfsCopyUp {
                target: target.clone().into(),
                flags: flags | MsFlags::MS_NODEV,
                data: data.join(","),
            }),
            "proc" | "sysfs" | "tmpfs" | "devpts" | "mqueue" => {
                dev_is_tmpfs |= kind == "tmpfs" && target == "dev";
                // nodev everywhere but devpts (its ptys are device nodes): a device node made
                // in the container's /dev tmpfs (podman's default capabilities include
                // CAP_MKNOD) can never be opened, which is how the deny-all rule holds.
                let nodev = if kind == "devpts" {
                    MsFlags::empty()
                } else {
                    MsFlags::MS_NODEV
                };
                steps.push(MountStep::Filesystem {
                    target: target.clone().into(),
                    fstype: kind.clone().into(),
                    flags: flags | nodev,
                    data: data.join(","),
                });
                if dev_is_tmpfs && target == "dev" {
                    steps.extend(DEVICES.iter().map(|name| MountStep::HostDevice { name }));
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
    for (key, value) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
    {
        check_sysctl(&key, &value)?;
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
    Ok((steps, cgroup_view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_fields_are_named_and_empty_ones_pass() {
        let ok = serde_json::json!({"ociVersion": "1.2.0", "hooks": {}, "linux": {"sysctl": {}}, "process": {"args": ["sh"]}});
        assert!(check_supported(&ok, "").is_ok());
        let hierarchy = serde_json::json!({"linux": {"resources": {"memory": {"useHierarchy": true}}}});
        let error = check_supported(&hierarchy, "").unwrap_err();
        assert!(error.to_string().contains("linux.resources.memory.useHierarchy"), "{error}");
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
        assert!(check_supported(&ns_path, "")
            .unwrap_err()
            .to_string()
            .contains("linux.namespaces.*.path"));
        let rlimit =
            serde_json::json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]}});
        assert!(check_supported(&rlimit, "").is_ok());
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
        assert!(check_sysctl("net.ipv4.ping_group_range", "0 2147483647").is_ok());
        assert!(check_sysctl("kernel.shmmax", "1024").is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", "10").is_ok());
        for (key, value) in [
            ("kernel.panic", "1"),
            ("vm.swappiness", "0"),
            ("net..x", "1"),
            ("net.a/b", "1"),
            ("net.x", "1\n2"),
        ] {
            assert!(check_sysctl(key, value).is_err(), "{key}");
        }
    }

    #[test]
    fn mount_options_become_flags_and_data() {
        let options: Vec<String> = ["nosuid", "ro", "mode=755", "size=65536k"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (flags, data, read_only) = mount_options(&options).unwrap();
        assert!(flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY));
        assert_eq!(data, ["mode=755", "size=65536k"]);
        assert!(read_only);
        assert!(mount_options(&["rshared".to_string()]).is_err());
    }

    #[test]
    fn only_the_deny_all_device_rule_is_taken() {
        assert!(check_device_rules(&[serde_json::json!({"allow": false, "access": "rwm"})]).is_ok());
        let allow = serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"});
        assert!(check_device_rules(&[serde_json::json!({"allow": false, "access": "rwm"}), allow]).is_err());
    }
}
