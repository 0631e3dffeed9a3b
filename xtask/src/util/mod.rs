//! Small helpers shared by the commands: ELF inspection, Debian packages, subprocesses, temp dirs.

pub mod elf;
pub mod packages;
pub mod process;
pub mod tempdir;
