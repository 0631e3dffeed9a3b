//! The architectures a filter can be made for: [`Arch`], the one this build runs on
//! ([`Arch::NATIVE`]), and their names in OCI / Docker JSON. A build for any other target
//! (x32, big-endian aarch64, any other architecture) stops here with a compile error, so it
//! can never emit another architecture's numbers.

use std::fmt;

use crate::ffi::ScmpArch;

#[cfg(not(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    target_pointer_width = "64"
)))]
compile_error!(
    "crabcan-seccomp supports 64-bit x86_64 (not x32) and little-endian aarch64 only: it has \
     syscall tables for those two, and a filter built with another architecture's numbers would \
     filter the wrong calls"
);

/// A CPU architecture with a syscall table in this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86_64 (amd64), 64-bit ABI.
    X86_64,
    /// aarch64 (arm64), little endian.
    Aarch64,
}

impl Arch {
    /// The architecture this crate was built for: filters are compiled and installed for it.
    #[cfg(target_arch = "x86_64")]
    pub const NATIVE: Arch = Arch::X86_64;
    /// The architecture this crate was built for: filters are compiled and installed for it.
    #[cfg(target_arch = "aarch64")]
    pub const NATIVE: Arch = Arch::Aarch64;

    /// Every supported architecture.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The kernel's name (`uname -m`): `x86_64`, `aarch64`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// libseccomp's name, as written in OCI JSON `architectures`: `SCMP_ARCH_X86_64`, ...
    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    /// True if `name` means this architecture in OCI / Docker JSON: Go's name (`amd64`,
    /// `arm64`, used by `includes.arches`), the kernel's, or libseccomp's.
    pub fn is_named(self, name: &str) -> bool {
        let go_name = match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        };
        name == go_name || name == self.name() || name == self.scmp_name()
    }

    /// The syscall number of `name` on this architecture, or `None` if it has no such call.
    pub fn syscall_number(self, name: &str) -> Option<i32> {
        crate::syscalls::number(self, name)
    }

    /// The name of syscall `number` on this architecture, or `None` if it has none.
    pub fn syscall_name(self, number: i32) -> Option<&'static str> {
        crate::syscalls::name(self, number)
    }

    /// The kernel's audit token for this architecture (`AUDIT_ARCH_X86_64`,
    /// `AUDIT_ARCH_AARCH64`): what `seccomp_data.arch` holds for its calls.
    pub fn audit_arch(self) -> u32 {
        self.scmp().0
    }

    /// The token libseccomp and the audit subsystem use for this architecture.
    pub(crate) fn scmp(self) -> ScmpArch {
        match self {
            Arch::X86_64 => ScmpArch::X86_64,
            Arch::Aarch64 => ScmpArch::AARCH64,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_oci_json() {
        assert!(Arch::X86_64.is_named("amd64"));
        assert!(Arch::X86_64.is_named("SCMP_ARCH_X86_64"));
        assert!(!Arch::X86_64.is_named("x32"));
        assert!(Arch::Aarch64.is_named("arm64"));
        assert!(!Arch::Aarch64.is_named("arm"));
    }

    #[test]
    fn native_matches_the_target() {
        assert_eq!(Arch::NATIVE.name(), std::env::consts::ARCH);
    }
}
