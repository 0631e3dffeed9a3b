//! Runs the `sandbox_child` example's own code (the file is included, not copied): the
//! filtered `mkdir` fails with EPERM and creates nothing, the unfiltered one succeeds.
//! Including the file rather than spawning `cargo run --example` keeps the test free of a
//! nested cargo (which would wait on the build directory lock the outer one holds).

#[allow(dead_code)]
#[path = "../examples/sandbox_child.rs"]
mod sandbox_child;

#[test]
fn the_example_denies_mkdir_in_its_child_only() {
    let scratch = std::env::temp_dir().join(format!("crabcan-seccomp-example-test-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let demo = sandbox_child::demo(&scratch).expect("the demo runs");
    std::fs::remove_dir_all(&scratch).unwrap();
    let stderr = String::from_utf8_lossy(&demo.sandboxed.stderr);
    assert!(!demo.sandboxed.status.success(), "{demo:?}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert!(!demo.created_under_filter);
    assert!(demo.created_without_filter);
}

#[test]
fn the_example_profile_denies_socket() {
    let rules = sandbox_child::sandbox_profile().rules;
    assert!(rules.iter().any(|rule| rule.syscall == "socket"));
    sandbox_child::sandbox_profile().compile().expect("compiles");
}
