//! Syscall name → x86_64 number. First syscallz's table (complete up to
//! `cachestat`, 451), then our own small table of newer x86_64 numbers taken
//! from the kernel's `arch/x86/entry/syscalls/syscall_64.tbl`. Also tells
//! "exists on another architecture" (skipped when importing Docker profiles)
//! from "does not exist at all" (an error), asking libseccomp's tables.

use std::ffi::CString;

use crate::compile::ffi;

/// x86_64 syscalls newer than syscallz 0.17's table (or missing from it).
const NEWER_X86_64_SYSCALLS: &[(&str, i32)] = &[
    ("uretprobe", 335),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("statmount", 457),
    ("listmount", 458),
    ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
    ("file_getattr", 468),
    ("file_setattr", 469),
];

/// Syscalls of other architectures that libseccomp 2.5 may not know yet.
const NEWER_FOREIGN_SYSCALLS: &[&str] = &[
    "riscv_hwprobe",
    "riscv_flush_icache",
    "s390_guarded_storage",
    "s390_sthyi",
];

/// Audit arch tokens of the architectures checked by [`exists_on_other_arch`]:
/// i386, arm, aarch64, ppc, ppc64, ppc64le, s390, s390x, mips, mips64, riscv64.
const FOREIGN_ARCHES: &[u32] = &[
    0x4000_0003,
    0x4000_0028,
    0xC000_00B7,
    0x0000_0014,
    0x8000_0015,
    0xC000_0015,
    0x0000_0016,
    0x8000_0016,
    0x0000_0008,
    0x8000_0008,
    0xC000_00F3,
];

/// The x86_64 number of a syscall, or `None` if x86_64 has no such syscall.
pub fn x86_64_number(name: &str) -> Option<i32> {
    if let Some(syscall) = syscallz::Syscall::from_name(name) {
        return Some(syscall.into_i32());
    }
    NEWER_X86_64_SYSCALLS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, number)| *number)
}

/// True if `name` is a syscall of some other architecture (e.g.
/// `arm_fadvise64_64`, `socketcall`, `stat64`) though not of x86_64.
pub fn exists_on_other_arch(name: &str) -> bool {
    if NEWER_FOREIGN_SYSCALLS.contains(&name) {
        return true;
    }
    let Ok(c_name) = CString::new(name) else {
        return false;
    };
    FOREIGN_ARCHES.iter().any(|&arch| {
        // SAFETY: `c_name` is a valid NUL-terminated string that outlives the
        // call; libseccomp only reads it. Negative results mean "not on
        // this arch" (pseudo-syscall) or unknown.
        let number = unsafe { ffi::seccomp_syscall_resolve_name_arch(arch, c_name.as_ptr()) };
        number >= 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_old_and_new_names() {
        assert_eq!(x86_64_number("read"), Some(0));
        assert_eq!(x86_64_number("ioctl"), Some(16));
        assert_eq!(x86_64_number("clone3"), Some(435));
        assert_eq!(x86_64_number("cachestat"), Some(451));
        assert_eq!(x86_64_number("fchmodat2"), Some(452));
        assert_eq!(x86_64_number("mseal"), Some(462));
        assert_eq!(x86_64_number("no_such_call"), None);
        assert_eq!(x86_64_number(""), None);
    }

    #[test]
    fn our_numbers_agree_with_libc() {
        assert_eq!(x86_64_number("fchmodat2"), Some(libc::SYS_fchmodat2 as i32));
        assert_eq!(x86_64_number("mseal"), Some(libc::SYS_mseal as i32));
    }

    #[test]
    fn tells_foreign_names_from_unknown_ones() {
        assert!(exists_on_other_arch("arm_fadvise64_64"));
        assert!(exists_on_other_arch("stat64"));
        assert!(exists_on_other_arch("riscv_flush_icache"));
        assert!(!exists_on_other_arch("no_such_call"));
        assert!(!exists_on_other_arch("nul\0inside"));
    }
}
