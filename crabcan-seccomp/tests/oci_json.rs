//! OCI / Docker JSON import and export: a hand-written Docker-style
//! profile, typed errors, and property tests (no panic on any input;
//! export → import round trip).

use crabcan_seccomp::{Action, ArgCondition, CmpOp, Profile, Rule, SeccompError};
use proptest::prelude::*;

/// Docker-format profile exercising every feature of the format.
const DOCKER_STYLE: &str = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
  "syscalls": [
    {"names": ["read", "write", "stat64", "socketcall", "arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
     "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 1, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
     "includes": {"arches": ["s390", "s390x"]}},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["mount", "umount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
    {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
    {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
    {"name": "getpid", "action": "SCMP_ACT_LOG", "comment": "old single-name form"}
  ]
}"#;

#[test]
fn imports_a_docker_style_profile() {
    let profile = Profile::from_oci_json(DOCKER_STYLE).expect("imports");
    let names: Vec<&str> = profile.rules.iter().map(|rule| rule.syscall.as_str()).collect();
    assert_eq!(
        names,
        [
            "read",
            "write",
            "personality",
            "clone",
            "clone3",
            "arch_prctl",
            "ptrace",
            "getpid"
        ]
    );
    assert_eq!(profile.default_action, Action::Errno(1));
    assert_eq!(
        profile.rules[3].args,
        vec![ArgCondition::masked_equal(0, 0x7E02_0000, 0)]
    );
    assert_eq!(profile.rules[4].action, Action::Errno(38));
    assert_eq!(profile.rules[7].action, Action::Log);
    profile.compile().expect("compiles");
}

#[test]
fn shipped_profiles_round_trip_through_json() {
    for profile in [Profile::tutorial(), Profile::default_profile()] {
        let json = profile.to_oci_json();
        assert_eq!(Profile::from_oci_json(&json).expect("re-imports"), profile);
    }
}

fn import_error(json: &str) -> SeccompError {
    match Profile::from_oci_json(json) {
        Ok(profile) => panic!("expected an error, got {profile}"),
        Err(error) => error,
    }
}

#[test]
fn unknown_names_actions_and_ops_are_typed_errors() {
    let unknown_syscall =
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["frobnicate"],"action":"SCMP_ACT_ERRNO"}]}"#;
    match import_error(unknown_syscall) {
        SeccompError::UnknownSyscall { name } => assert_eq!(name, "frobnicate"),
        other => panic!("{other}"),
    }
    let unknown_action = r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#;
    assert!(matches!(
        import_error(unknown_action),
        SeccompError::UnknownAction { .. }
    ));
    let notify = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#;
    assert!(matches!(import_error(notify), SeccompError::UnsupportedAction { .. }));
    let bad_op = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_LOG",
        "args":[{"index":0,"value":1,"op":"SCMP_CMP_ALMOST"}]}]}"#;
    let error = import_error(bad_op);
    assert!(matches!(error, SeccompError::UnknownOperator { .. }));
    assert_eq!(
        error.to_string(),
        "unknown comparison operator `SCMP_CMP_ALMOST` in rule for `read`"
    );
    let bad_index = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_LOG",
        "args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#;
    assert!(matches!(
        import_error(bad_index),
        SeccompError::InvalidArgIndex { index: 9, .. }
    ));
    let errno = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}"#;
    assert!(matches!(
        import_error(errno),
        SeccompError::InvalidErrno { errno: 70000, .. }
    ));
    assert!(matches!(import_error("{"), SeccompError::InvalidJson { .. }));
}

#[test]
fn duplicates_merge_and_conflicts_keep_the_strictest_action() {
    // As an engine's resolved profile has them: a syscall in the general allow list, then
    // again under a capability rule that denies it.
    let twice =
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl","keyctl"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let profile = Profile::from_oci_json(twice).expect("duplicates merge");
    assert_eq!(profile.rules.len(), 1);
    let conflict = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["setns", "read"],"action":"SCMP_ACT_ALLOW"},{"names":["setns"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#;
    let profile = Profile::from_oci_json(conflict).expect("conflicts resolve");
    let setns = profile.rules.iter().find(|r| r.syscall == "setns").expect("setns kept");
    assert_eq!(setns.action, Action::Errno(1), "the stricter action wins");
    assert_eq!(profile.rules[0].syscall, "setns", "in the first rule's place");
    let kill = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["keyctl"],"action":"SCMP_ACT_KILL"},{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}"#;
    assert_eq!(
        Profile::from_oci_json(kill).unwrap().rules[0].action,
        Action::KillThread
    );
}

/// Names known to resolve on x86_64, used to generate profiles.
const NAMES: &[&str] = &[
    "read",
    "write",
    "openat",
    "close",
    "mmap",
    "ioctl",
    "clone",
    "clone3",
    "chmod",
    "fchmodat2",
    "keyctl",
    "socket",
    "personality",
    "unshare",
    "mseal",
    "futex_wake",
    "statx",
    "execve",
    "kill",
    "bpf",
];

fn any_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        (0u32..=4095).prop_map(Action::Errno),
        Just(Action::KillProcess),
        Just(Action::KillThread),
        Just(Action::Trap),
        Just(Action::Log),
    ]
}

fn any_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::NotEqual),
        Just(CmpOp::LessThan),
        Just(CmpOp::LessOrEqual),
        Just(CmpOp::Equal),
        Just(CmpOp::GreaterOrEqual),
        Just(CmpOp::GreaterThan),
        Just(CmpOp::MaskedEqual),
    ]
}

/// Up to 6 conditions on distinct argument indexes.
fn any_args() -> impl Strategy<Value = Vec<ArgCondition>> {
    proptest::sample::subsequence((0u8..6).collect::<Vec<_>>(), 0..=3).prop_flat_map(|indexes| {
        let count = indexes.len();
        proptest::collection::vec((any_op(), any::<u64>(), any::<u64>()), count).prop_map(move |parts| {
            indexes
                .iter()
                .zip(parts)
                .map(|(&index, (op, value, second))| {
                    let value_two = if op == CmpOp::MaskedEqual { second } else { 0 };
                    ArgCondition {
                        index,
                        op,
                        value,
                        value_two,
                    }
                })
                .collect()
        })
    })
}

/// Profiles with one rule per distinct syscall (so always valid).
fn any_profile() -> impl Strategy<Value = Profile> {
    let names = proptest::sample::subsequence(NAMES.to_vec(), 0..NAMES.len()).prop_shuffle();
    (any_action(), names).prop_flat_map(|(default_action, names)| {
        let count = names.len();
        proptest::collection::vec((any_action(), any_args()), count).prop_map(move |parts| Profile {
            default_action,
            rules: names
                .iter()
                .zip(parts)
                .map(|(name, (action, args))| Rule {
                    syscall: (*name).to_owned(),
                    action,
                    args,
                })
                .collect(),
        })
    })
}

/// Arbitrary JSON trees, biased towards the profile's field names.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop_oneof![
        Just("defaultAction".to_owned()),
        Just("defaultErrnoRet".to_owned()),
        Just("syscalls".to_owned()),
        Just("names".to_owned()),
        Just("action".to_owned()),
        Just("errnoRet".to_owned()),
        Just("args".to_owned()),
        Just("index".to_owned()),
        Just("value".to_owned()),
        Just("valueTwo".to_owned()),
        Just("op".to_owned()),
        Just("includes".to_owned()),
        Just("excludes".to_owned()),
        Just("caps".to_owned()),
        Just("arches".to_owned()),
        Just("minKernel".to_owned()),
        "[a-zA-Z]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("SCMP_ACT_ALLOW".to_owned()),
            Just("SCMP_ACT_ERRNO".to_owned()),
            Just("SCMP_CMP_MASKED_EQ".to_owned()),
            Just("read".to_owned()),
            Just("4.8".to_owned()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn importer_never_panics_on_strings(input in ".{0,400}") {
        let _ = Profile::from_oci_json(&input);
    }

    #[test]
    fn importer_never_panics_on_json_trees(value in any_json()) {
        let _ = Profile::from_oci_json(&value.to_string());
    }

    #[test]
    fn generated_profiles_round_trip(profile in any_profile()) {
        let json = profile.to_oci_json();
        let back = Profile::from_oci_json(&json);
        prop_assert!(back.is_ok(), "{:?}\n{}", back, json);
        prop_assert_eq!(back.ok(), Some(profile));
    }
}
