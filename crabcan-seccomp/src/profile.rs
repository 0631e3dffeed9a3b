//! The data model: a [`Profile`] is a default [`Action`] plus an ordered list
//! of [`Rule`]s, each naming one syscall, an action and optional argument
//! comparisons. Plain data: printable, comparable, serialisable. This file
//! also owns the semantic checks ([`Profile::validate`]) done before compiling.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::SeccompError;

/// Largest errno a seccomp filter can return (`MAX_ERRNO`).
pub const MAX_ERRNO: u32 = 4095;

/// Number of syscall arguments a filter can inspect (`arg0` to `arg5`).
pub const MAX_ARGS: u8 = 6;

/// What the kernel does with a syscall matched by a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Run the syscall.
    Allow,
    /// Fail the syscall with this errno (0 to 4095) without running it.
    Errno(u32),
    /// Kill the whole process (SIGSYS, core dump).
    KillProcess,
    /// Kill only the calling thread.
    KillThread,
    /// Send SIGSYS to the calling thread.
    Trap,
    /// Run the syscall and log it (audit log).
    Log,
}

/// How a syscall argument is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CmpOp {
    /// `arg != value`
    NotEqual,
    /// `arg < value`
    LessThan,
    /// `arg <= value`
    LessOrEqual,
    /// `arg == value`
    Equal,
    /// `arg >= value`
    GreaterOrEqual,
    /// `arg > value`
    GreaterThan,
    /// `arg & value == value_two` (`value` is the mask, as in OCI/Docker JSON).
    MaskedEqual,
}

/// One comparison on one syscall argument. All comparisons of a rule must
/// hold for the rule to match (logical AND), and each argument index may
/// appear at most once per rule (a libseccomp limit). Values are compared as
/// 64-bit numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ArgCondition {
    /// Argument position, 0 to 5.
    pub index: u8,
    /// The comparison.
    pub op: CmpOp,
    /// Compared value, or the mask for [`CmpOp::MaskedEqual`].
    pub value: u64,
    /// Expected masked value for [`CmpOp::MaskedEqual`]; 0 otherwise.
    pub value_two: u64,
}

/// One syscall, the action to take, and when (empty `args` = always).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    /// Syscall name as on x86_64 (`openat`, `clone3`, ...).
    pub syscall: String,
    /// What to do when the rule matches.
    pub action: Action,
    /// Conditions on the arguments, all of which must hold.
    pub args: Vec<ArgCondition>,
}

/// A complete seccomp policy: rules plus the action for every syscall that
/// no rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Action for syscalls no rule matches.
    pub default_action: Action,
    /// The rules, in order.
    pub rules: Vec<Rule>,
}

impl ArgCondition {
    /// `arg[index] == value`
    pub const fn equal(index: u8, value: u64) -> Self {
        Self::simple(index, CmpOp::Equal, value)
    }

    /// `arg[index] != value`
    pub const fn not_equal(index: u8, value: u64) -> Self {
        Self::simple(index, CmpOp::NotEqual, value)
    }

    /// `arg[index] & mask == expected`
    pub const fn masked_equal(index: u8, mask: u64, expected: u64) -> Self {
        Self {
            index,
            op: CmpOp::MaskedEqual,
            value: mask,
            value_two: expected,
        }
    }

    /// A comparison that uses only `value` (every op but `MaskedEqual`).
    pub const fn simple(index: u8, op: CmpOp, value: u64) -> Self {
        Self {
            index,
            op,
            value,
            value_two: 0,
        }
    }
}

impl Rule {
    /// A rule that applies whatever the arguments.
    pub fn new(syscall: &str, action: Action) -> Self {
        Self {
            syscall: syscall.to_owned(),
            action,
            args: Vec::new(),
        }
    }

    /// A rule that applies when every condition holds.
    pub fn with_args(syscall: &str, action: Action, args: &[ArgCondition]) -> Self {
        Self {
            syscall: syscall.to_owned(),
            action,
            args: args.to_vec(),
        }
    }

    /// The conditions in a canonical order, to compare rules whose
    /// conditions are written in a different order.
    fn sorted_args(&self) -> Vec<ArgCondition> {
        let mut args = self.args.clone();
        args.sort();
        args
    }

    /// Checks this rule on its own: argument indexes and errno range.
    fn validate_alone(&self) -> Result<(), SeccompError> {
        validate_action(self.action, &|| format!("rule for `{}`", self.syscall))?;
        let mut seen = [false; MAX_ARGS as usize];
        for arg in &self.args {
            let slot = seen
                .get_mut(usize::from(arg.index))
                .ok_or_else(|| SeccompError::InvalidArgIndex {
                    syscall: self.syscall.clone(),
                    index: u64::from(arg.index),
                })?;
            if *slot {
                return Err(SeccompError::DuplicateArgIndex {
                    syscall: self.syscall.clone(),
                    index: arg.index,
                });
            }
            *slot = true;
        }
        Ok(())
    }
}

/// Checks that an action can be expressed (errno in range). `context` names where it came
/// from, made only for an error.
pub(crate) fn validate_action(action: Action, context: &dyn Fn() -> String) -> Result<(), SeccompError> {
    match action {
        Action::Errno(errno) if errno > MAX_ERRNO => Err(SeccompError::InvalidErrno {
            errno: u64::from(errno),
            context: context(),
        }),
        _ => Ok(()),
    }
}

/// Most rules (whose action differs from the default action) a profile may
/// have: a seccomp filter holds at most 4096 BPF instructions
/// (`BPF_MAXINSNS`), and libseccomp's compile time grows faster than the
/// rule count (rules on one syscall: ~0.4 s for 4000, ~2.3 s for 8000), so
/// larger profiles are refused before it is called. The exact limit, the
/// exported program's length, is checked after compiling.
pub const MAX_RULES: usize = 4096;

impl Profile {
    /// Checks what libseccomp would reject or, worse, silently change:
    /// more than [`MAX_RULES`] rules, errno out of range, argument index > 5,
    /// an argument compared twice in one rule, a rule listed twice, two rules
    /// with the same arguments and different actions, and an unconditional
    /// rule that would override a conditional rule of the same syscall with
    /// another action. Syscall names are checked by [`Profile::compile`].
    ///
    /// Rules are grouped by syscall by sorting their positions (n log n name comparisons);
    /// a syscall with one rule, as most have, is checked alone. Within a group only the few
    /// earlier rules that can clash with a new rule are remembered, so a group is checked in
    /// one pass. Errors come in rule order, as a pairwise check in order would give them: a
    /// rule's own fault before its clash with an earlier rule, and a clash names the earliest
    /// rule it clashes with.
    pub fn validate(&self) -> Result<(), SeccompError> {
        validate_action(self.default_action, &|| "the default action".to_owned())?;
        let count = self
            .rules
            .iter()
            .filter(|rule| rule.action != self.default_action)
            .count();
        if count > MAX_RULES {
            return Err(SeccompError::TooManyRules { count, max: MAX_RULES });
        }
        // (name's first 8 bytes, name, position): names mostly differ in their first bytes,
        // compared as one number; each group lists its rules in profile order.
        let mut by_syscall: Vec<(u64, &str, usize)> = self
            .rules
            .iter()
            .enumerate()
            .map(|(at, rule)| (name_prefix(&rule.syscall), rule.syscall.as_str(), at))
            .collect();
        by_syscall.sort_unstable();
        // The earliest rule that clashes with an earlier one of its syscall, and how.
        let mut first_clash: Option<(usize, SeccompError)> = None;
        for group in by_syscall.chunk_by(|a, b| a.1 == b.1) {
            if group.len() < 2 {
                continue;
            }
            let mut earlier = SyscallRules::default();
            for &(_, _, at) in group {
                if first_clash.as_ref().is_some_and(|(first, _)| at > *first) {
                    break;
                }
                if let Err(clash) = earlier.add(&self.rules[at]) {
                    first_clash = Some((at, clash));
                    break;
                }
            }
        }
        let checked_alone = first_clash.as_ref().map_or(self.rules.len(), |(at, _)| at + 1);
        for rule in &self.rules[..checked_alone] {
            rule.validate_alone()?;
        }
        first_clash.map_or(Ok(()), |(_, clash)| Err(clash))
    }

    /// Refuses a profile under which no command could start: the filter is
    /// installed right before `execve`, so a profile whose action for
    /// `execve` (its unconditional rule, or else the default action) neither
    /// runs the call (allow, log) nor has a conditional rule that does,
    /// makes every container die at `execve` (SIGSYS, or an errno the
    /// runtime can no longer report since its own calls are filtered too).
    /// Not part of [`Profile::validate`]: a process filtering itself with
    /// [`Profile::load`] may well forbid `execve`.
    pub fn check_can_exec(&self) -> Result<(), SeccompError> {
        let mut execve = self.rules.iter().filter(|rule| rule.syscall == "execve");
        let unconditional = execve.clone().find(|rule| rule.args.is_empty()).map(|rule| rule.action);
        let action = unconditional.unwrap_or(self.default_action);
        if runs_the_call(action) {
            return Ok(());
        }
        // libseccomp keeps only the unconditional rule when there is one.
        if unconditional.is_none() && execve.any(|rule| runs_the_call(rule.action)) {
            return Ok(());
        }
        Err(SeccompError::DeniesExec { action })
    }
}

/// True for the actions under which the syscall runs.
fn runs_the_call(action: Action) -> bool {
    matches!(action, Action::Allow | Action::Log)
}

/// The first 8 bytes of `name` as a big-endian number (zero-padded): ordering by it and then
/// by the whole name orders by name.
fn name_prefix(name: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let head = &name.as_bytes()[..name.len().min(8)];
    bytes[..head.len()].copy_from_slice(head);
    u64::from_be_bytes(bytes)
}

/// What [`Profile::validate`] remembers of the earlier rules of one
/// syscall: everything a new rule can clash with, each with its position.
#[derive(Default)]
struct SyscallRules<'a> {
    /// Every rule by its conditions in canonical order: a second rule with
    /// the same conditions is a duplicate or a conflict. (So there is at
    /// most one unconditional rule, the one under no conditions.)
    by_args: BTreeMap<Vec<ArgCondition>, (usize, &'a Rule)>,
    /// The first conditional rule, and the first conditional rule with
    /// another action: the earliest conditional rule whose action differs
    /// from a given action is one of the two.
    conditional: [Option<(usize, &'a Rule)>; 2],
    /// Rules seen so far.
    count: usize,
}

impl<'a> SyscallRules<'a> {
    /// Checks `rule` against the earlier rules of its syscall (reporting
    /// the earliest it clashes with), then remembers it.
    fn add(&mut self, rule: &'a Rule) -> Result<(), SeccompError> {
        let position = self.count;
        self.count += 1;
        let args = rule.sorted_args();
        let same_args = self.by_args.get(&args).copied();
        let shadowing = if rule.args.is_empty() {
            match self.conditional {
                [Some(first), _] if first.1.action != rule.action => Some(first),
                [_, second] => second,
            }
        } else {
            self.by_args
                .get(&Vec::new())
                .copied()
                .filter(|(_, unconditional)| unconditional.action != rule.action)
        };
        let earliest = [same_args, shadowing].into_iter().flatten().min_by_key(|(at, _)| *at);
        if let Some((_, first)) = earliest {
            check_pair(first, rule)?;
        }
        if !rule.args.is_empty() {
            match self.conditional {
                [None, _] => self.conditional[0] = Some((position, rule)),
                [Some(first), None] if first.1.action != rule.action => self.conditional[1] = Some((position, rule)),
                _ => {}
            }
        }
        self.by_args.insert(args, (position, rule));
        Ok(())
    }
}

/// Checks two rules of the same syscall against each other.
fn check_pair(first: &Rule, second: &Rule) -> Result<(), SeccompError> {
    let syscall = || second.syscall.clone();
    if first.sorted_args() == second.sorted_args() {
        if first.action == second.action {
            return Err(SeccompError::DuplicateRule { syscall: syscall() });
        }
        return Err(SeccompError::ConflictingRules {
            syscall: syscall(),
            first: first.action,
            second: second.action,
        });
    }
    if first.action == second.action {
        return Ok(());
    }
    let (unconditional, conditional) = match (first.args.is_empty(), second.args.is_empty()) {
        (true, false) => (first, second),
        (false, true) => (second, first),
        _ => return Ok(()),
    };
    Err(SeccompError::ShadowedRule {
        syscall: syscall(),
        unconditional: unconditional.action,
        conditional: conditional.action,
    })
}

/// Short names for the errno values profiles commonly return.
fn errno_name(errno: u32) -> Option<&'static str> {
    let name = match errno as i32 {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        _ => return None,
    };
    Some(name)
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("allow"),
            Action::Errno(errno) => match errno_name(*errno) {
                Some(name) => write!(f, "errno({name})"),
                None => write!(f, "errno({errno})"),
            },
            Action::KillProcess => f.write_str("kill-process"),
            Action::KillThread => f.write_str("kill-thread"),
            Action::Trap => f.write_str("trap"),
            Action::Log => f.write_str("log"),
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let symbol = match self {
            CmpOp::NotEqual => "!=",
            CmpOp::LessThan => "<",
            CmpOp::LessOrEqual => "<=",
            CmpOp::Equal | CmpOp::MaskedEqual => "==",
            CmpOp::GreaterOrEqual => ">=",
            CmpOp::GreaterThan => ">",
        };
        f.write_str(symbol)
    }
}

impl fmt::Display for ArgCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            CmpOp::MaskedEqual => write!(f, "arg{} & {:#x} == {:#x}", self.index, self.value, self.value_two),
            op => write!(f, "arg{} {op} {:#x}", self.index, self.value),
        }
    }
}

/// One line: `chmod: errno(EPERM) if arg1 & 0x800 == 0x800`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.syscall, self.action)?;
        for (position, arg) in self.args.iter().enumerate() {
            let joiner = if position == 0 { " if " } else { " and " };
            write!(f, "{joiner}{arg}")?;
        }
        Ok(())
    }
}

/// A `default: <action>` line, then one line per rule.
impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "default: {}", self.default_action)?;
        for rule in &self.rules {
            write!(f, "\n{rule}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use proptest::prelude::*;

    /// The pairwise check `validate` did before it became linear: every
    /// rule against every earlier rule of its syscall, in order.
    fn validate_pairwise(profile: &Profile) -> Result<(), SeccompError> {
        validate_action(profile.default_action, &|| "the default action".to_owned())?;
        let mut by_syscall: HashMap<&str, Vec<&Rule>> = HashMap::new();
        for rule in &profile.rules {
            rule.validate_alone()?;
            let earlier = by_syscall.entry(rule.syscall.as_str()).or_default();
            for other in earlier.iter() {
                check_pair(other, rule)?;
            }
            earlier.push(rule);
        }
        Ok(())
    }

    /// Few syscalls, actions and conditions, so that rules clash often.
    fn clashing_rule() -> impl Strategy<Value = Rule> {
        let syscall = prop_oneof![Just("read"), Just("ioctl"), Just("chmod")];
        let action = prop_oneof![Just(Action::Allow), Just(EPERM), Just(Action::Log)];
        let condition = (0u8..2, 0u64..2).prop_map(|(index, value)| ArgCondition::equal(index, value));
        let args = proptest::collection::vec(condition, 0..=2);
        (syscall, action, args).prop_map(|(syscall, action, args)| Rule::with_args(syscall, action, &args))
    }

    proptest! {
        #[test]
        fn linear_validate_reports_what_the_pairwise_check_did(
            rules in proptest::collection::vec(clashing_rule(), 0..12)
        ) {
            let profile = Profile { default_action: Action::Errno(38), rules };
            let linear = profile.validate().map_err(|error| error.to_string());
            let pairwise = validate_pairwise(&profile).map_err(|error| error.to_string());
            prop_assert_eq!(linear, pairwise);
        }
    }

    /// Rules of one syscall whose conditions all differ: the shape whose
    /// pairwise check was quadratic.
    fn many_ioctl_rules(count: usize) -> Profile {
        Profile {
            default_action: Action::Allow,
            rules: (0..count as u64)
                .map(|value| Rule::with_args("ioctl", EPERM, &[ArgCondition::equal(1, value)]))
                .collect(),
        }
    }

    #[test]
    fn validate_is_linear_in_the_rule_count() {
        // Pairwise, 4000 rules of one syscall took 1.3 s in a debug build.
        let profile = many_ioctl_rules(MAX_RULES);
        let start = std::time::Instant::now();
        profile.validate().expect("valid");
        let elapsed = start.elapsed();
        assert!(elapsed < std::time::Duration::from_millis(300), "took {elapsed:?}");
    }

    #[test]
    fn too_many_rules_are_refused_before_anything_else() {
        let error = many_ioctl_rules(60_000).validate().unwrap_err();
        assert!(matches!(
            error,
            SeccompError::TooManyRules {
                count: 60_000,
                max: MAX_RULES
            }
        ));
        assert!(error.to_string().contains("at most 4096 BPF instructions"), "{error}");
        // Rules equal to the default action compile to nothing: not counted.
        let mut profile = many_ioctl_rules(MAX_RULES);
        profile.rules.push(Rule::new("read", Action::Allow));
        assert!(profile.validate().is_ok());
    }

    #[test]
    fn profiles_that_refuse_execve_are_refused() {
        let deny_all = Profile {
            default_action: EPERM,
            rules: vec![],
        };
        let error = deny_all.check_can_exec().unwrap_err();
        assert!(matches!(error, SeccompError::DeniesExec { action } if action == EPERM));
        let message = error.to_string();
        assert!(
            message.contains("execve") && message.contains("exit_group"),
            "{message}"
        );
        let kill_all = Profile {
            default_action: Action::KillThread,
            rules: vec![Rule::new("exit_group", Action::Allow)],
        };
        assert!(kill_all.check_can_exec().is_err());
        let allow_all_but_execve = Profile {
            default_action: Action::Allow,
            rules: vec![Rule::new("execve", Action::KillProcess)],
        };
        assert!(allow_all_but_execve.check_can_exec().is_err());
        let allowed = Profile {
            default_action: Action::KillProcess,
            rules: vec![Rule::new("execve", Action::Log), Rule::new("exit_group", Action::Allow)],
        };
        assert!(allowed.check_can_exec().is_ok());
        let conditionally_allowed = Profile {
            default_action: EPERM,
            rules: vec![Rule::with_args(
                "execve",
                Action::Allow,
                &[ArgCondition::not_equal(0, 0)],
            )],
        };
        assert!(conditionally_allowed.check_can_exec().is_ok());
        assert!(Profile::default_profile().check_can_exec().is_ok());
        assert!(Profile::tutorial().check_can_exec().is_ok());
    }

    const EPERM: Action = Action::Errno(libc::EPERM as u32);

    #[test]
    fn rule_display_is_one_readable_line() {
        let rule = Rule::with_args("ioctl", EPERM, &[ArgCondition::masked_equal(1, 0xffff_ffff, 0x5412)]);
        assert_eq!(rule.to_string(), "ioctl: errno(EPERM) if arg1 & 0xffffffff == 0x5412");
        let rule = Rule::with_args(
            "personality",
            Action::Allow,
            &[ArgCondition::equal(0, 8), ArgCondition::not_equal(1, 0)],
        );
        assert_eq!(rule.to_string(), "personality: allow if arg0 == 0x8 and arg1 != 0x0");
    }

    #[test]
    fn validate_rejects_duplicates_conflicts_and_shadowing() {
        let profile = |rules: Vec<Rule>| Profile {
            default_action: Action::Allow,
            rules,
        };
        let dup = profile(vec![Rule::new("read", EPERM), Rule::new("read", EPERM)]);
        assert!(matches!(dup.validate(), Err(SeccompError::DuplicateRule { syscall }) if syscall == "read"));
        let conflict = profile(vec![Rule::new("read", EPERM), Rule::new("read", Action::Trap)]);
        assert!(matches!(
            conflict.validate(),
            Err(SeccompError::ConflictingRules { .. })
        ));
        let shadow = profile(vec![
            Rule::with_args("ioctl", EPERM, &[ArgCondition::equal(1, 0x5412)]),
            Rule::new("ioctl", Action::Log),
        ]);
        assert!(matches!(shadow.validate(), Err(SeccompError::ShadowedRule { .. })));
        let same_action_ok = profile(vec![
            Rule::with_args("chmod", EPERM, &[ArgCondition::masked_equal(1, 0o4000, 0o4000)]),
            Rule::with_args("chmod", EPERM, &[ArgCondition::masked_equal(1, 0o2000, 0o2000)]),
        ]);
        assert!(same_action_ok.validate().is_ok());
    }

    #[test]
    fn validate_rejects_bad_args_and_errno() {
        let bad_index = Profile {
            default_action: Action::Allow,
            rules: vec![Rule::with_args("read", EPERM, &[ArgCondition::equal(6, 0)])],
        };
        assert!(matches!(
            bad_index.validate(),
            Err(SeccompError::InvalidArgIndex { index: 6, .. })
        ));
        let twice = Profile {
            default_action: Action::Allow,
            rules: vec![Rule::with_args(
                "read",
                EPERM,
                &[ArgCondition::equal(0, 0), ArgCondition::equal(0, 1)],
            )],
        };
        assert!(matches!(
            twice.validate(),
            Err(SeccompError::DuplicateArgIndex { index: 0, .. })
        ));
        let errno = Profile {
            default_action: Action::Errno(5000),
            rules: vec![],
        };
        assert!(matches!(
            errno.validate(),
            Err(SeccompError::InvalidErrno { errno: 5000, .. })
        ));
    }
}
