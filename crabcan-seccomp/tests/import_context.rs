//! OCI import resolved against an `ImportContext`: the same JSON and context always give the
//! same profile, and `includes` / `excludes` on capabilities, architectures and kernel versions
//! follow what the caller passes, as Docker resolves them.

use crabcan_seccomp::{Arch, ImportContext, Profile};

const CONDITIONAL: &str = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "syscalls": [
    {"names": ["read", "open", "socketcall"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE", "CAP_SYS_ADMIN"]}},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"]}},
    {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
    {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["arm64"]}},
    {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.8"}},
    {"names": ["gettid"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.8"}}
  ]
}"#;

const X86_64_ON_6_1: ImportContext<'static> = ImportContext {
    capabilities: &[],
    kernel: Some((6, 1)),
    arch: Arch::X86_64,
};

fn names(context: &ImportContext) -> Vec<String> {
    let profile = Profile::from_oci_json_with(CONDITIONAL, context).expect("imports");
    profile.rules.into_iter().map(|rule| rule.syscall).collect()
}

#[test]
fn without_capabilities_only_unconditional_and_excluded_cap_rules_apply() {
    assert_eq!(
        names(&X86_64_ON_6_1),
        ["read", "open", "clone3", "arch_prctl", "getpid", "kcmp"]
    );
}

#[test]
fn includes_caps_needs_every_capability_and_excludes_caps_any() {
    let admin = ImportContext {
        capabilities: &["CAP_SYS_ADMIN"],
        ..X86_64_ON_6_1
    };
    assert_eq!(names(&admin), ["read", "open", "mount", "arch_prctl", "getpid", "kcmp"]);
    let both = ImportContext {
        capabilities: &["SYS_ADMIN", "cap_sys_ptrace"],
        ..X86_64_ON_6_1
    };
    assert!(names(&both).contains(&"ptrace".to_owned()));
    let bpf = ImportContext {
        capabilities: &["CAP_BPF"],
        ..X86_64_ON_6_1
    };
    assert!(!names(&bpf).contains(&"clone3".to_owned()));
}

#[test]
fn kernel_versions_come_from_the_context() {
    let old = ImportContext {
        kernel: Some((5, 4)),
        ..X86_64_ON_6_1
    };
    let names_old = names(&old);
    assert!(!names_old.contains(&"kcmp".to_owned()) && names_old.contains(&"gettid".to_owned()));
    let unknown = ImportContext {
        kernel: None,
        ..X86_64_ON_6_1
    };
    assert_eq!(names(&unknown), names(&X86_64_ON_6_1), "unknown counts as new enough");
}

#[test]
fn another_architecture_keeps_its_own_names() {
    let arm = ImportContext {
        arch: Arch::Aarch64,
        ..X86_64_ON_6_1
    };
    // open and arch_prctl are x86_64 calls, skipped; getpid is excluded on arm64.
    assert_eq!(names(&arm), ["read", "clone3", "kcmp"]);
}

#[test]
fn the_wrapper_assumes_no_capabilities_on_this_host() {
    let here = ImportContext::for_this_host(&[]);
    assert_eq!(here.arch, Arch::NATIVE);
    assert_eq!(
        Profile::from_oci_json(CONDITIONAL).expect("imports"),
        Profile::from_oci_json_with(CONDITIONAL, &here).expect("imports")
    );
}
