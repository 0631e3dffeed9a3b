//! Syscall name → number: one table per supported architecture (`x86_64.rs`, `aarch64.rs`),
//! taken from the kernel's syscall tables, and nothing else. Also tells a name that exists on
//! some other architecture (skipped when importing Docker profiles) from one that exists
//! nowhere (an error), by asking the other table and libseccomp's tables of the remaining
//! architectures.
//!
//! Why tables of our own rather than syscallz or libseccomp's resolver: syscallz 0.17 stops at
//! `cachestat` (451) and only knows the build target; libseccomp 2.5 (Debian 12, the static
//! build) does not know `mseal`, `setxattrat`, `file_getattr` and a dozen others the default
//! profile names. A table is the same on every host and in every build.

mod aarch64;
mod x86_64;

use std::ffi::CString;

use crate::arch::Arch;
use crate::ffi::{self, ScmpArch};

/// Syscalls of other architectures that libseccomp 2.5 may not know yet.
const NEWER_FOREIGN_SYSCALLS: &[&str] = &[
    "riscv_hwprobe",
    "riscv_flush_icache",
    "s390_guarded_storage",
    "s390_sthyi",
];

/// Architectures without a table here, asked through libseccomp by [`exists_elsewhere`].
const OTHER_ARCHES: &[ScmpArch] = &[
    ScmpArch::X86,
    ScmpArch::ARM,
    ScmpArch::PPC,
    ScmpArch::PPC64,
    ScmpArch::PPC64LE,
    ScmpArch::S390,
    ScmpArch::S390X,
    ScmpArch::MIPS,
    ScmpArch::MIPS64,
    ScmpArch::RISCV64,
];

fn table(arch: Arch) -> &'static [(&'static str, i32)] {
    match arch {
        Arch::X86_64 => x86_64::SYSCALLS,
        Arch::Aarch64 => aarch64::SYSCALLS,
    }
}

/// The number of `name` on `arch`, or `None` if `arch` has no such syscall.
pub(crate) fn number(arch: Arch, name: &str) -> Option<i32> {
    let table = table(arch);
    let index = table.binary_search_by(|(known, _)| (*known).cmp(name)).ok()?;
    table.get(index).map(|(_, number)| *number)
}

/// Every `(name, number)` of `arch`, sorted by name.
pub(crate) fn all(arch: Arch) -> &'static [(&'static str, i32)] {
    table(arch)
}

/// The name of syscall `number` on `arch`, or `None` if `arch` has no such number.
pub(crate) fn name(arch: Arch, number: i32) -> Option<&'static str> {
    table(arch)
        .iter()
        .find(|(_, known)| *known == number)
        .map(|(name, _)| *name)
}

/// True if `name` is a syscall of some architecture other than `arch` (e.g.
/// `arm_fadvise64_64`, `socketcall`, `stat64` for x86_64; `open`, `fork` for aarch64).
pub(crate) fn exists_elsewhere(arch: Arch, name: &str) -> bool {
    if NEWER_FOREIGN_SYSCALLS.contains(&name) {
        return true;
    }
    if Arch::ALL
        .iter()
        .any(|&other| other != arch && number(other, name).is_some())
    {
        return true;
    }
    let Ok(c_name) = CString::new(name) else {
        return false;
    };
    OTHER_ARCHES.iter().any(|&other| ffi::arch_has_syscall(other, &c_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for arch in Arch::ALL {
            let table = table(arch);
            assert!(table.windows(2).all(|pair| pair[0].0 < pair[1].0), "{arch}");
        }
    }

    #[test]
    fn resolves_old_and_new_names() {
        let x86 = |name| number(Arch::X86_64, name);
        assert_eq!(x86("read"), Some(0));
        assert_eq!(x86("ioctl"), Some(16));
        assert_eq!(x86("_sysctl"), Some(156));
        assert_eq!(x86("clone3"), Some(435));
        assert_eq!(x86("cachestat"), Some(451));
        assert_eq!(x86("fchmodat2"), Some(452));
        assert_eq!(x86("mseal"), Some(462));
        assert_eq!(x86("file_setattr"), Some(469));
        assert_eq!(x86("no_such_call"), None);
        assert_eq!(x86(""), None);
        let arm = |name| number(Arch::Aarch64, name);
        assert_eq!(arm("io_setup"), Some(0));
        assert_eq!(arm("ioctl"), Some(29));
        assert_eq!(arm("renameat"), Some(38));
        assert_eq!(arm("open"), None);
        assert_eq!(arm("clone3"), Some(435));
    }

    #[test]
    fn numbers_name_their_syscalls() {
        for arch in Arch::ALL {
            for (name, number) in table(arch) {
                // Numbers are unique: every one names the syscall listed with it.
                assert_eq!(super::name(arch, *number), Some(*name), "{arch} {number}");
            }
        }
        assert_eq!(super::name(Arch::X86_64, 9999), None);
    }

    #[test]
    fn native_numbers_agree_with_libc() {
        let native = |name| number(Arch::NATIVE, name).map(i64::from);
        for (name, sys) in [
            ("read", libc::SYS_read),
            ("ioctl", libc::SYS_ioctl),
            ("openat", libc::SYS_openat),
            ("clone", libc::SYS_clone),
            ("seccomp", libc::SYS_seccomp),
            ("pidfd_open", libc::SYS_pidfd_open),
            ("mseal", libc::SYS_mseal),
        ] {
            assert_eq!(native(name), Some(sys), "{name}");
        }
    }

    /// libseccomp has tables of its own (older): wherever it knows a name, it agrees.
    #[test]
    fn tables_agree_with_libseccomp() {
        for arch in Arch::ALL {
            for (name, ours) in table(arch) {
                let c_name = CString::new(*name).expect("no NUL in a syscall name");
                if let Some(theirs) = ffi::resolve(arch.scmp(), &c_name) {
                    assert_eq!(theirs, *ours, "{arch} {name}");
                }
            }
        }
    }

    #[test]
    fn tells_foreign_names_from_unknown_ones() {
        assert!(exists_elsewhere(Arch::X86_64, "arm_fadvise64_64"));
        assert!(exists_elsewhere(Arch::X86_64, "stat64"));
        assert!(exists_elsewhere(Arch::X86_64, "riscv_flush_icache"));
        assert!(exists_elsewhere(Arch::Aarch64, "open"));
        assert!(exists_elsewhere(Arch::Aarch64, "arch_prctl"));
        assert!(!exists_elsewhere(Arch::X86_64, "no_such_call"));
        assert!(!exists_elsewhere(Arch::X86_64, "nul\0inside"));
    }
}
