//! The library examples run as a user of the crates would run them.

use std::path::PathBuf;

use crabcan_tests::*;

/// `crabcan-core/examples/run_container.rs`, as `cargo build --workspace --all-targets` (and
/// `cargo test`) leave it in the target directory.
fn example(name: &str) -> Option<PathBuf> {
    let path = crabcan_bin().parent()?.join("examples").join(name);
    path.is_file().then_some(path)
}

#[test]
fn the_core_example_runs_a_command_in_a_container() {
    let Some(binary) = example("run_container") else {
        if std::env::var_os("CRABCAN_IN_VM").is_some() {
            println!("crabcan-skip: the VM's initramfs carries no example binaries; this test runs on the host");
            return;
        }
        panic!("the run_container example is not built: run `cargo build -p crabcan-core --examples`");
    };
    let before = HostSnapshot::take();
    let output = std::process::Command::new(binary)
        .arg(rootfs())
        .args(["/bin/sh", "-c", "echo host=$(hostname); exit 7"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let run = Run::from_output(output);
    run.expect_code(7);
    assert_eq!(run.value("host").as_deref(), Some("example"), "{run:?}");
    before.assert_clean_after("example");
}
