//! Small helpers shared by the commands: ELF inspection, subprocesses, temp dirs.

pub mod elf;
pub mod process;
pub mod tempdir;
