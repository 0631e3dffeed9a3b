//! Import and export of seccomp profiles in the OCI / Docker JSON format
//! (`defaultAction`, `defaultErrnoRet`, `syscalls: [{names, action,
//! errnoRet, args, includes, excludes}]`, as in moby's
//! `profiles/seccomp/default.json`).
//!
//! Import rules, for the container an [`ImportContext`] describes (its
//! capabilities, kernel and architecture; nothing is read from the host):
//! - `architectures` and `archMap` are ignored: the filter covers the
//!   context's architecture only.
//! - A rule with `includes.caps` applies only if the container keeps every
//!   capability listed; a rule with `excludes.caps` is skipped if it keeps any.
//! - `includes.arches` must name the context's architecture (`amd64`,
//!   `x86_64`, `arm64`, ...) for the rule to apply; `excludes.arches` naming
//!   it skips the rule.
//! - `includes.minKernel` / `excludes.minKernel` are compared with the
//!   context's kernel.
//! - Syscall names of other architectures (`socketcall`, `arm_fadvise64_64`,
//!   ...) are skipped with a debug log; names unknown everywhere are an error.
//! - `SCMP_ACT_ERRNO` without `errnoRet` means EPERM.
//! - All comparisons of a rule must hold (AND); the same argument may not be
//!   compared twice in one rule.

use std::collections::btree_map::{BTreeMap, Entry};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::SeccompError;
use crate::import_context::{parse_kernel_version, ImportContext};
use crate::oci_fields::{self as fields, Described, Number, Object, ObjectList, Text, TextList};
use crate::profile::{validate_action, Action, ArgCondition, CmpOp, Profile, Rule, MAX_ARGS};
use crate::syscalls;

/// Errno used when `SCMP_ACT_ERRNO` comes without an errno value.
const DEFAULT_ERRNO: u64 = libc::EPERM as u64;

// Every field is read through `oci_fields`, so that serde's messages name
// the field at fault and what to write there; the `expecting` texts replace
// serde's "expected struct OciProfile". No Rust type name reaches the user.
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a seccomp profile object {\"defaultAction\": ...}"
)]
struct OciProfile {
    default_action: Text<fields::DefaultAction>,
    default_errno_ret: Option<Number<fields::DefaultErrnoRet>>,
    architectures: Option<TextList<fields::Architectures>>,
    syscalls: Option<ObjectList<OciSyscall, fields::Syscalls>>,
}

impl Described for OciProfile {
    const WHAT: &'static str = "a seccomp profile object {\"defaultAction\": \"SCMP_ACT_...\", \"syscalls\": [...]}";
}

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "an entry of `syscalls`: an object {\"names\": [...], ...}"
)]
struct OciSyscall {
    names: Option<TextList<fields::Names>>,
    /// Single-name form of old Docker profiles.
    name: Option<Text<fields::Name>>,
    action: Text<fields::SyscallAction>,
    errno_ret: Option<Number<fields::ErrnoRet>>,
    args: Option<ObjectList<OciArg, fields::Args>>,
    includes: Option<Object<OciCondition>>,
    excludes: Option<Object<OciCondition>>,
}

impl Described for OciSyscall {
    const WHAT: &'static str = "an entry of `syscalls`: an object {\"names\": [...], \"action\": \"SCMP_ACT_...\"}";
}

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "an entry of `args`: an object {\"index\": ..., ...}"
)]
struct OciArg {
    index: Number<fields::Index>,
    value: Number<fields::Value>,
    value_two: Option<Number<fields::ValueTwo>>,
    op: Text<fields::Op>,
}

impl Described for OciArg {
    const WHAT: &'static str = "an entry of `args`: an object {\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_...\"}";
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", expecting = "an `includes` or `excludes` object")]
struct OciCondition {
    caps: Option<TextList<fields::Caps>>,
    arches: Option<TextList<fields::Arches>>,
    min_kernel: Option<Text<fields::MinKernel>>,
}

impl Described for OciCondition {
    const WHAT: &'static str =
        "an `includes` or `excludes` object {\"caps\": [...], \"arches\": [...], \"minKernel\": \"5.8\"}";
}

impl Profile {
    /// Reads an OCI / Docker seccomp profile for the container `context`
    /// describes (see the module documentation for how capabilities,
    /// architectures and kernel versions are handled) and validates it. Reads
    /// nothing from the host; never panics, whatever the input.
    pub fn from_oci_json_with(json: &str, context: &ImportContext) -> Result<Profile, SeccompError> {
        Profile::from_oci_json_bytes_with(json.as_bytes(), context)
    }

    /// [`Profile::from_oci_json_with`] for a container that keeps no
    /// capability at all, on this host's kernel ([`running_kernel`](crate::running_kernel))
    /// and architecture ([`Arch::NATIVE`](crate::Arch::NATIVE)): rules under
    /// `includes.caps` are left out, rules under `excludes.caps` kept. A
    /// container that keeps capabilities should pass them with
    /// [`ImportContext::for_this_host`].
    pub fn from_oci_json(json: &str) -> Result<Profile, SeccompError> {
        Profile::from_oci_json_with(json, &ImportContext::for_this_host(&[]))
    }

    /// [`Profile::from_oci_json_with`] on bytes, as read from a file: bytes
    /// that are not UTF-8 are an [`SeccompError::InvalidJson`] with their position.
    pub fn from_oci_json_bytes_with(json: &[u8], context: &ImportContext) -> Result<Profile, SeccompError> {
        let Object(oci) =
            serde_json::from_slice::<Object<OciProfile>>(json).map_err(|error| SeccompError::InvalidJson {
                reason: error.to_string(),
            })?;
        if let Some(TextList(arches, _)) = &oci.architectures {
            log::debug!(
                "seccomp: ignoring architectures {arches:?}: the filter covers {} only",
                context.arch
            );
        }
        let default_errno = oci.default_errno_ret.map_or(DEFAULT_ERRNO, |errno| errno.0);
        let default_action = parse_action(&oci.default_action.0, Some(default_errno), &|| {
            "defaultAction".to_owned()
        })?;
        let mut rules = Vec::new();
        for entry in oci.syscalls.map(|list| list.0).unwrap_or_default() {
            rules.extend(import_entry(entry, context)?);
        }
        let profile = Profile {
            default_action,
            rules: keep_the_strictest(rules),
        };
        profile.validate()?;
        Ok(profile)
    }

    /// [`Profile::from_oci_json_bytes_with`] with the assumptions of
    /// [`Profile::from_oci_json`] (no capability, this host's kernel and architecture).
    pub fn from_oci_json_bytes(json: &[u8]) -> Result<Profile, SeccompError> {
        Profile::from_oci_json_bytes_with(json, &ImportContext::for_this_host(&[]))
    }

    /// Writes the profile as OCI / Docker seccomp JSON (architecture
    /// [`Arch::NATIVE`](crate::Arch::NATIVE)). Consecutive rules with the same action and arguments are
    /// grouped into one entry; [`Profile::from_oci_json`] reads it back
    /// unchanged.
    pub fn to_oci_json(&self) -> String {
        let mut document = json!({ "defaultAction": action_name(self.default_action) });
        if let Action::Errno(errno) = self.default_action {
            document["defaultErrnoRet"] = json!(errno);
        }
        document["architectures"] = json!([crate::Arch::NATIVE.scmp_name()]);
        document["syscalls"] = Value::Array(group_rules(&self.rules).into_iter().map(export_group).collect());
        format!("{document:#}")
    }
}

/// Rules of one JSON entry, or none if the entry does not apply to `context`.
/// How strict an action is, for [`keep_the_strictest`].
fn strictness(action: Action) -> u8 {
    match action {
        Action::Allow => 0,
        Action::Log => 1,
        Action::Errno(_) => 2,
        Action::Trap => 3,
        Action::KillThread => 4,
        Action::KillProcess => 5,
    }
}

/// Rules of one syscall with the same arguments but different actions, as an engine's
/// resolved profile has them (podman's lists `setns` among the allowed syscalls, then again
/// as EPERM for a container without CAP_SYS_ADMIN), become one rule with the strictest
/// action: the later, capability-specific rule is there to deny what the general one allows.
/// The first rule's place is kept.
fn keep_the_strictest(rules: Vec<Rule>) -> Vec<Rule> {
    // First the verdict, borrowing the rules (no key is cloned): which rules stay, each with
    // the strictest action of its group.
    let mut kept: Vec<(usize, Action)> = Vec::with_capacity(rules.len());
    {
        let mut group_of: BTreeMap<(&str, &[ArgCondition]), usize> = BTreeMap::new();
        for (index, rule) in rules.iter().enumerate() {
            match group_of.entry((rule.syscall.as_str(), rule.args.as_slice())) {
                Entry::Occupied(group) => {
                    let action = &mut kept[*group.get()].1;
                    if strictness(rule.action) > strictness(*action) {
                        *action = rule.action;
                    }
                }
                Entry::Vacant(group) => {
                    group.insert(kept.len());
                    kept.push((index, rule.action));
                }
            }
        }
    }
    let mut kept = kept.into_iter().peekable();
    rules
        .into_iter()
        .enumerate()
        .filter_map(|(index, mut rule)| {
            let (_, action) = kept.next_if(|(first, _)| *first == index)?;
            rule.action = action;
            Some(rule)
        })
        .collect()
}

fn import_entry(entry: OciSyscall, context: &ImportContext) -> Result<Vec<Rule>, SeccompError> {
    let names: Vec<String> = entry
        .names
        .map(|names| names.0)
        .unwrap_or_default()
        .into_iter()
        .chain(entry.name.map(|name| name.0))
        .collect();
    let label = names.first().cloned().unwrap_or_else(|| "<no name>".to_owned());
    let includes = entry.includes.map(|object| object.0);
    let excludes = entry.excludes.map(|object| object.0);
    if !entry_applies(includes.as_ref(), excludes.as_ref(), &label, context)? {
        return Ok(Vec::new());
    }
    let errno = entry.errno_ret.map(|errno| errno.0);
    let action = parse_action(&entry.action.0, errno, &|| format!("rule for `{label}`"))?;
    let args = entry
        .args
        .map(|list| list.0)
        .unwrap_or_default()
        .iter()
        .map(|arg| parse_arg(arg, &label))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rules = Vec::new();
    for name in names {
        if context.arch.syscall_number(&name).is_some() {
            rules.push(Rule {
                syscall: name,
                action,
                args: args.clone(),
            });
        } else if syscalls::exists_elsewhere(context.arch, &name) {
            log::debug!("seccomp: skipping `{name}`: not a syscall on {}", context.arch);
        } else {
            return Err(SeccompError::UnknownSyscall { name });
        }
    }
    Ok(rules)
}

/// Decides from `includes` / `excludes` whether an entry applies to the
/// container `context` describes.
fn entry_applies(
    includes: Option<&OciCondition>,
    excludes: Option<&OciCondition>,
    label: &str,
    context: &ImportContext,
) -> Result<bool, SeccompError> {
    let empty = OciCondition::default();
    let includes = includes.unwrap_or(&empty);
    let excludes = excludes.unwrap_or(&empty);
    Ok(caps_allow(includes, excludes, label, context)
        && arches_allow(includes, excludes, context)
        && kernel_allows(includes, excludes, context)?)
}

/// Every capability of `includes.caps` kept, none of `excludes.caps`.
fn caps_allow(includes: &OciCondition, excludes: &OciCondition, label: &str, context: &ImportContext) -> bool {
    let listed = |condition: &OciCondition| condition.caps.as_ref().map(|caps| caps.0.clone()).unwrap_or_default();
    let needed = listed(includes);
    if let Some(missing) = needed.iter().find(|cap| !context.keeps(cap)) {
        log::debug!("seccomp: skipping rule for `{label}`: needs {missing}, which the container does not keep");
        return false;
    }
    if let Some(kept) = listed(excludes).iter().find(|cap| context.keeps(cap)) {
        log::debug!("seccomp: skipping rule for `{label}`: not for a container that keeps {kept}");
        return false;
    }
    true
}

/// `includes.arches` (if any) names the context's architecture, `excludes.arches` does not.
fn arches_allow(includes: &OciCondition, excludes: &OciCondition, context: &ImportContext) -> bool {
    let names_arch = |arches: &[String]| arches.iter().any(|arch| context.arch.is_named(arch));
    if let Some(TextList(arches, _)) = includes.arches.as_ref().filter(|arches| !arches.0.is_empty()) {
        if !names_arch(arches) {
            return false;
        }
    }
    !excludes.arches.as_ref().is_some_and(|arches| names_arch(&arches.0))
}

/// The context's kernel is at least `includes.minKernel` and below `excludes.minKernel`.
fn kernel_allows(
    includes: &OciCondition,
    excludes: &OciCondition,
    context: &ImportContext,
) -> Result<bool, SeccompError> {
    if let Some(Text(min, _)) = &includes.min_kernel {
        if !context.kernel_at_least(kernel_version(min)?) {
            return Ok(false);
        }
    }
    if let Some(Text(min, _)) = &excludes.min_kernel {
        if context.kernel_at_least(kernel_version(min)?) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A `minKernel` value as `(major, minor)`.
fn kernel_version(min: &str) -> Result<(u32, u32), SeccompError> {
    parse_kernel_version(min).ok_or_else(|| SeccompError::InvalidProfile {
        reason: format!("minKernel `{min}` is not a kernel version"),
    })
}

/// Parses an `SCMP_ACT_*` action; `errno` is used by `SCMP_ACT_ERRNO`.
/// `context` names where the action came from, made only for an error.
fn parse_action(name: &str, errno: Option<u64>, context: &dyn Fn() -> String) -> Result<Action, SeccompError> {
    let action = match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(parse_errno(errno.unwrap_or(DEFAULT_ERRNO), context)?),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_TRACE" | "SCMP_ACT_NOTIFY" => {
            return Err(SeccompError::UnsupportedAction {
                action: name.to_owned(),
                context: context(),
            })
        }
        _ => {
            return Err(SeccompError::UnknownAction {
                action: name.to_owned(),
                context: context(),
            })
        }
    };
    validate_action(action, context)?;
    Ok(action)
}

fn parse_errno(errno: u64, context: &dyn Fn() -> String) -> Result<u32, SeccompError> {
    u32::try_from(errno).map_err(|_| SeccompError::InvalidErrno {
        errno,
        context: context(),
    })
}

fn parse_arg(arg: &OciArg, syscall: &str) -> Result<ArgCondition, SeccompError> {
    let index = u8::try_from(arg.index.0)
        .ok()
        .filter(|&index| index < MAX_ARGS)
        .ok_or_else(|| SeccompError::InvalidArgIndex {
            syscall: syscall.to_owned(),
            index: arg.index.0,
        })?;
    let op = parse_op(&arg.op.0).ok_or_else(|| SeccompError::UnknownOperator {
        op: arg.op.0.clone(),
        syscall: syscall.to_owned(),
    })?;
    Ok(ArgCondition {
        index,
        op,
        value: arg.value.0,
        value_two: arg.value_two.as_ref().map_or(0, |value| value.0),
    })
}

fn parse_op(name: &str) -> Option<CmpOp> {
    let op = match name {
        "SCMP_CMP_NE" => CmpOp::NotEqual,
        "SCMP_CMP_LT" => CmpOp::LessThan,
        "SCMP_CMP_LE" => CmpOp::LessOrEqual,
        "SCMP_CMP_EQ" => CmpOp::Equal,
        "SCMP_CMP_GE" => CmpOp::GreaterOrEqual,
        "SCMP_CMP_GT" => CmpOp::GreaterThan,
        "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEqual,
        _ => return None,
    };
    Some(op)
}

fn op_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::NotEqual => "SCMP_CMP_NE",
        CmpOp::LessThan => "SCMP_CMP_LT",
        CmpOp::LessOrEqual => "SCMP_CMP_LE",
        CmpOp::Equal => "SCMP_CMP_EQ",
        CmpOp::GreaterOrEqual => "SCMP_CMP_GE",
        CmpOp::GreaterThan => "SCMP_CMP_GT",
        CmpOp::MaskedEqual => "SCMP_CMP_MASKED_EQ",
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Allow => "SCMP_ACT_ALLOW",
        Action::Errno(_) => "SCMP_ACT_ERRNO",
        Action::KillProcess => "SCMP_ACT_KILL_PROCESS",
        Action::KillThread => "SCMP_ACT_KILL_THREAD",
        Action::Trap => "SCMP_ACT_TRAP",
        Action::Log => "SCMP_ACT_LOG",
    }
}

/// Consecutive rules sharing action and arguments.
fn group_rules(rules: &[Rule]) -> Vec<&[Rule]> {
    rules
        .chunk_by(|first, second| first.action == second.action && first.args == second.args)
        .collect()
}

/// One JSON entry for a group of rules with the same action and arguments.
fn export_group(group: &[Rule]) -> Value {
    let Some(first) = group.first() else {
        return Value::Null;
    };
    let names: Vec<&str> = group.iter().map(|rule| rule.syscall.as_str()).collect();
    let mut entry = json!({ "names": names, "action": action_name(first.action) });
    if let Action::Errno(errno) = first.action {
        entry["errnoRet"] = json!(errno);
    }
    if !first.args.is_empty() {
        entry["args"] = Value::Array(first.args.iter().map(export_arg).collect());
    }
    entry
}

fn export_arg(condition: &ArgCondition) -> Value {
    let mut arg = json!({ "index": condition.index, "value": condition.value });
    if condition.value_two != 0 {
        arg["valueTwo"] = json!(condition.value_two);
    }
    arg["op"] = json!(op_name(condition.op));
    arg
}
