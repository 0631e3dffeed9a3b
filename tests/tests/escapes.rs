//! The classic container escapes, tried from inside a crabcan container in the busybox test
//! rootfs. Each must fail. The attempts live in `crabcan_tests::escapes`, shared with
//! `tests/debian.rs`, which repeats them in a Debian rootfs.

use crabcan_tests::escapes;
use crabcan_tests::{rootfs, Target};

#[test]
fn cgroup_release_agent_cannot_be_reached() {
    escapes::cgroup_release_agent_cannot_be_reached(&Target::root(rootfs()));
}

#[test]
fn inherited_directory_descriptors_do_not_leak() {
    escapes::inherited_directory_descriptors_do_not_leak(&Target::root(rootfs()));
}

#[test]
fn crabcan_binary_cannot_be_overwritten_through_proc() {
    escapes::crabcan_binary_cannot_be_overwritten_through_proc(&Target::root(rootfs()));
}

#[test]
fn tiocsti_cannot_inject_into_the_callers_terminal() {
    escapes::tiocsti_cannot_inject_into_the_callers_terminal(&Target::root(rootfs()));
}

#[test]
fn keyring_and_file_handles_are_refused() {
    escapes::keyring_and_file_handles_are_refused(&Target::root(rootfs()));
}

#[test]
fn host_block_devices_cannot_be_created() {
    escapes::host_block_devices_cannot_be_created(&Target::root(rootfs()));
}
