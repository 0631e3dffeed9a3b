//! libseccomp (≥ 2.5): the `extern` block, the constants this crate uses, and the safe
//! wrappers around them. This is the only file that calls libseccomp; every `unsafe` block
//! here says why it is sound.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::error::SeccompError;

/// `SCMP_ACT_KILL_PROCESS`.
pub(crate) const SCMP_ACT_KILL_PROCESS: u32 = 0x8000_0000;
/// `SCMP_ACT_KILL_THREAD` (also `SCMP_ACT_KILL`).
pub(crate) const SCMP_ACT_KILL_THREAD: u32 = 0x0000_0000;
/// `SCMP_ACT_TRAP`.
pub(crate) const SCMP_ACT_TRAP: u32 = 0x0003_0000;
/// `SCMP_ACT_ERRNO(0)`; the errno goes in the low 16 bits.
pub(crate) const SCMP_ACT_ERRNO: u32 = 0x0005_0000;
/// `SCMP_ACT_LOG`.
pub(crate) const SCMP_ACT_LOG: u32 = 0x7ffc_0000;
/// `SCMP_ACT_ALLOW`.
pub(crate) const SCMP_ACT_ALLOW: u32 = 0x7fff_0000;

/// `SCMP_FLTATR_ACT_BADARCH`: the action for a syscall made under another architecture.
const SCMP_FLTATR_ACT_BADARCH: c_int = 2;
/// `SCMP_FLTATR_CTL_OPTIMIZE`: 2 = binary tree of syscalls.
const SCMP_FLTATR_CTL_OPTIMIZE: c_int = 8;

/// An architecture as libseccomp and the kernel's audit subsystem name it
/// (`AUDIT_ARCH_*` in `<linux/audit.h>`, `SCMP_ARCH_*` in `<seccomp.h>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScmpArch(pub(crate) u32);

impl ScmpArch {
    pub(crate) const X86_64: ScmpArch = ScmpArch(0xC000_003E);
    pub(crate) const AARCH64: ScmpArch = ScmpArch(0xC000_00B7);
    pub(crate) const X86: ScmpArch = ScmpArch(0x4000_0003);
    pub(crate) const ARM: ScmpArch = ScmpArch(0x4000_0028);
    pub(crate) const PPC: ScmpArch = ScmpArch(0x0000_0014);
    pub(crate) const PPC64: ScmpArch = ScmpArch(0x8000_0015);
    pub(crate) const PPC64LE: ScmpArch = ScmpArch(0xC000_0015);
    pub(crate) const S390: ScmpArch = ScmpArch(0x0000_0016);
    pub(crate) const S390X: ScmpArch = ScmpArch(0x8000_0016);
    pub(crate) const MIPS: ScmpArch = ScmpArch(0x0000_0008);
    pub(crate) const MIPS64: ScmpArch = ScmpArch(0x8000_0008);
    pub(crate) const RISCV64: ScmpArch = ScmpArch(0xC000_00F3);
}

/// `struct scmp_arg_cmp`.
#[repr(C)]
pub(crate) struct ScmpArgCmp {
    pub(crate) arg: c_uint,
    /// `enum scmp_compare`: NE=1, LT, LE, EQ, GE, GT, MASKED_EQ=7.
    pub(crate) op: c_int,
    pub(crate) datum_a: u64,
    pub(crate) datum_b: u64,
}

// Linked by build.rs: statically when libseccomp.a is installed, else as libseccomp.so.
extern "C" {
    fn seccomp_init(default_action: u32) -> *mut c_void;
    fn seccomp_release(ctx: *mut c_void);
    fn seccomp_attr_set(ctx: *mut c_void, attr: c_int, value: u32) -> c_int;
    fn seccomp_rule_add_array(
        ctx: *mut c_void,
        action: u32,
        syscall: c_int,
        arg_count: c_uint,
        args: *const ScmpArgCmp,
    ) -> c_int;
    fn seccomp_export_bpf(ctx: *const c_void, fd: c_int) -> c_int;
    fn seccomp_syscall_resolve_name_arch(arch: u32, name: *const c_char) -> c_int;
    fn seccomp_arch_native() -> u32;
}

/// Checks that libseccomp builds filters for `expected` (the arch whose numbers this crate
/// passes it); returns libseccomp's own token when it does not.
pub(crate) fn check_native_arch(expected: ScmpArch) -> Result<(), u32> {
    // SAFETY: plain FFI call without arguments; it reads a constant.
    let native = unsafe { seccomp_arch_native() };
    if native == expected.0 {
        Ok(())
    } else {
        Err(native)
    }
}

/// The number libseccomp's table gives `name` on `arch`; `None` if unknown there.
pub(crate) fn resolve(arch: ScmpArch, name: &CStr) -> Option<i32> {
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call; libseccomp only
    // reads it. Negative results mean "not on this arch" (pseudo-syscall) or unknown.
    let number = unsafe { seccomp_syscall_resolve_name_arch(arch.0, name.as_ptr()) };
    (number >= 0).then_some(number)
}

/// True if libseccomp's table for `arch` has a syscall called `name`.
pub(crate) fn arch_has_syscall(arch: ScmpArch, name: &CStr) -> bool {
    resolve(arch, name).is_some()
}

/// Turns libseccomp's `-errno` return value into an error.
fn check(rc: c_int, operation: impl FnOnce() -> String) -> Result<(), SeccompError> {
    if rc == 0 {
        return Ok(());
    }
    Err(SeccompError::Libseccomp {
        operation: operation(),
        source: io::Error::from_raw_os_error(rc.checked_neg().unwrap_or(libc::EINVAL)),
    })
}

/// An owned libseccomp filter context for the native architecture, released on drop.
pub(crate) struct FilterContext {
    raw: *mut c_void,
}

impl FilterContext {
    /// A context with `default_action` (a `SCMP_ACT_*` value), killing the process on a
    /// foreign architecture and optimising the syscall lookup into a binary tree. Refuses a
    /// libseccomp whose native architecture is not `arch`.
    pub(crate) fn new(
        arch: ScmpArch,
        default_action: u32,
        describe: impl FnOnce() -> String,
    ) -> Result<Self, SeccompError> {
        check_native_arch(arch).map_err(|native| SeccompError::ForeignLibseccomp {
            native,
            expected: crate::Arch::NATIVE,
        })?;
        // SAFETY: plain FFI call with an integer; a null result is handled below.
        let raw = unsafe { seccomp_init(default_action) };
        if raw.is_null() {
            return Err(SeccompError::Libseccomp {
                operation: describe(),
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let context = Self { raw };
        context.set_attribute(SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS, "bad-arch action")?;
        context.set_attribute(SCMP_FLTATR_CTL_OPTIMIZE, 2, "binary-tree optimisation")?;
        Ok(context)
    }

    fn set_attribute(&self, attribute: c_int, value: u32, what: &str) -> Result<(), SeccompError> {
        // SAFETY: `self.raw` is a live context from seccomp_init, not yet released.
        let rc = unsafe { seccomp_attr_set(self.raw, attribute, value) };
        check(rc, || format!("setting the {what}"))
    }

    /// Adds one rule: `action` for syscall `number` when every comparison in `args` holds.
    /// `describe` names the rule in the error.
    pub(crate) fn add_rule(
        &self,
        action: u32,
        number: i32,
        args: &[ScmpArgCmp],
        describe: impl FnOnce() -> String,
    ) -> Result<(), SeccompError> {
        // At most 6 comparisons (checked by Profile::validate); never truncates.
        let count = c_uint::try_from(args.len()).unwrap_or(c_uint::MAX);
        // SAFETY: `self.raw` is a live context; `args` holds `count` valid structs and
        // outlives the call; libseccomp copies them.
        let rc = unsafe { seccomp_rule_add_array(self.raw, action, number, count, args.as_ptr()) };
        check(rc, describe)
    }

    /// Writes the classic BPF program to `fd`.
    pub(crate) fn export_bpf(&self, fd: BorrowedFd<'_>) -> Result<(), SeccompError> {
        // SAFETY: `self.raw` is a live context; `fd` is an open descriptor borrowed for the
        // duration of the call.
        let rc = unsafe { seccomp_export_bpf(self.raw, fd.as_raw_fd()) };
        check(rc, || "exporting BPF".to_owned())
    }
}

impl Drop for FilterContext {
    fn drop(&mut self) {
        // SAFETY: `self.raw` came from seccomp_init and is released exactly once, here.
        unsafe { seccomp_release(self.raw) };
    }
}
