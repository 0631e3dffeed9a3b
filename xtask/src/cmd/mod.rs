//! The `cargo xtask` subcommands, one module each. Each returns the process
//! exit code or an error (printed by main as one line).

pub mod bench;
pub mod rootfs;
pub mod run;
pub mod test;
pub mod test_vm;

/// A command's failure: one line for the user.
pub type CmdError = Box<dyn std::error::Error>;
