//! Profile → BPF: builds a libseccomp filter for x86_64 only, exports it as
//! a classic BPF program and keeps it as a [`CompiledFilter`], which can be
//! stored as bytes and installed later without libseccomp (see `install.rs`).
//!
//! libseccomp is called directly rather than through syscallz's `Context`:
//! syscallz takes only the syscalls of its own enum (no raw numbers for
//! syscalls newer than its table) and has no `Log` action. syscallz is still
//! used for name → number (see `syscalls.rs`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd};

use crate::error::SeccompError;
use crate::profile::{Action, ArgCondition, CmpOp, Profile, Rule};
use crate::syscalls;

/// The few libseccomp (≥ 2.5) entry points and constants this crate uses.
pub(crate) mod ffi {
    use std::ffi::{c_char, c_int, c_uint, c_void};

    pub const SCMP_ACT_KILL_PROCESS: u32 = 0x8000_0000;
    pub const SCMP_ACT_KILL_THREAD: u32 = 0x0000_0000;
    pub const SCMP_ACT_TRAP: u32 = 0x0003_0000;
    pub const SCMP_ACT_ERRNO: u32 = 0x0005_0000;
    pub const SCMP_ACT_LOG: u32 = 0x7ffc_0000;
    pub const SCMP_ACT_ALLOW: u32 = 0x7fff_0000;

    pub const SCMP_FLTATR_ACT_BADARCH: c_int = 2;
    pub const SCMP_FLTATR_CTL_OPTIMIZE: c_int = 8;

    /// `struct scmp_arg_cmp`.
    #[repr(C)]
    pub struct ScmpArgCmp {
        pub arg: c_uint,
        /// `enum scmp_compare`: NE=1, LT, LE, EQ, GE, GT, MASKED_EQ=7.
        pub op: c_int,
        pub datum_a: u64,
        pub datum_b: u64,
    }

    #[link(name = "seccomp")]
    extern "C" {
        pub fn seccomp_init(default_action: u32) -> *mut c_void;
        pub fn seccomp_release(ctx: *mut c_void);
        pub fn seccomp_attr_set(ctx: *mut c_void, attr: c_int, value: u32) -> c_int;
        pub fn seccomp_rule_add_array(
            ctx: *mut c_void,
            action: u32,
            syscall: c_int,
            arg_count: c_uint,
            args: *const ScmpArgCmp,
        ) -> c_int;
        pub fn seccomp_export_bpf(ctx: *const c_void, fd: c_int) -> c_int;
        pub fn seccomp_syscall_resolve_name_arch(arch: u32, name: *const c_char) -> c_int;
    }
}

/// Size in bytes of one BPF instruction (`struct sock_filter`).
pub(crate) const INSTRUCTION_SIZE: usize = 8;

/// Longest program the kernel accepts (`BPF_MAXINSNS`).
pub(crate) const MAX_INSTRUCTIONS: usize = 4096;

/// A seccomp filter compiled to classic BPF for x86_64, ready to install.
///
/// Compile it in the parent (costly: libseccomp), install it in the child
/// (one syscall, no allocation): see [`CompiledFilter::install`].
#[derive(Clone)]
pub struct CompiledFilter {
    pub(crate) program: Vec<libc::sock_filter>,
}

impl std::fmt::Debug for CompiledFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledFilter")
            .field("instructions", &self.program.len())
            .finish()
    }
}

impl PartialEq for CompiledFilter {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for CompiledFilter {}

impl CompiledFilter {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// True if the program has no instruction (never for a compiled profile).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// The program as bytes: 8 per instruction, `code` (u16), `jt` (u8),
    /// `jf` (u8), `k` (u32), little endian: the kernel's layout on x86_64.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.program.len() * INSTRUCTION_SIZE);
        for instruction in &self.program {
            bytes.extend_from_slice(&instruction.code.to_le_bytes());
            bytes.push(instruction.jt);
            bytes.push(instruction.jf);
            bytes.extend_from_slice(&instruction.k.to_le_bytes());
        }
        bytes
    }

    /// Reads back what [`CompiledFilter::to_bytes`] wrote. Checks the size
    /// only; the kernel verifies the program itself when it is installed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeccompError> {
        if bytes.is_empty() {
            return Err(SeccompError::InvalidBpf {
                reason: "empty program",
            });
        }
        if !bytes.chunks_exact(INSTRUCTION_SIZE).remainder().is_empty() {
            return Err(SeccompError::InvalidBpf {
                reason: "length is not a multiple of 8 bytes",
            });
        }
        if bytes.len() / INSTRUCTION_SIZE > MAX_INSTRUCTIONS {
            return Err(SeccompError::InvalidBpf {
                reason: "more than 4096 instructions",
            });
        }
        let program = bytes.chunks_exact(INSTRUCTION_SIZE).map(decode_instruction).collect();
        Ok(Self { program })
    }
}

/// One instruction from its 8 little-endian bytes.
fn decode_instruction(chunk: &[u8]) -> libc::sock_filter {
    let byte = |i: usize| chunk.get(i).copied().unwrap_or(0);
    libc::sock_filter {
        code: u16::from_le_bytes([byte(0), byte(1)]),
        jt: byte(2),
        jf: byte(3),
        k: u32::from_le_bytes([byte(4), byte(5), byte(6), byte(7)]),
    }
}

impl Profile {
    /// Validates the profile, resolves every syscall name on x86_64 and
    /// builds the BPF program with libseccomp. Needs no privilege.
    ///
    /// Rules whose action equals the default action are left out (they
    /// change nothing, and libseccomp refuses them).
    pub fn compile(&self) -> Result<CompiledFilter, SeccompError> {
        self.validate()?;
        let context = FilterContext::new(self.default_action)?;
        for rule in &self.rules {
            if rule.action == self.default_action {
                log::debug!("seccomp: skipping rule equal to the default action: {rule}");
                continue;
            }
            context.add_rule(rule)?;
        }
        let program = context.export()?;
        log::debug!(
            "seccomp: compiled {} rules into {} BPF instructions",
            self.rules.len(),
            program.len()
        );
        Ok(CompiledFilter { program })
    }
}

/// libseccomp's value for an action.
pub(crate) fn action_code(action: Action) -> u32 {
    match action {
        Action::Allow => ffi::SCMP_ACT_ALLOW,
        Action::Errno(errno) => ffi::SCMP_ACT_ERRNO | (errno & 0xffff),
        Action::KillProcess => ffi::SCMP_ACT_KILL_PROCESS,
        Action::KillThread => ffi::SCMP_ACT_KILL_THREAD,
        Action::Trap => ffi::SCMP_ACT_TRAP,
        Action::Log => ffi::SCMP_ACT_LOG,
    }
}

/// libseccomp's `enum scmp_compare` value for an operator.
fn compare_code(op: CmpOp) -> i32 {
    match op {
        CmpOp::NotEqual => 1,
        CmpOp::LessThan => 2,
        CmpOp::LessOrEqual => 3,
        CmpOp::Equal => 4,
        CmpOp::GreaterOrEqual => 5,
        CmpOp::GreaterThan => 6,
        CmpOp::MaskedEqual => 7,
    }
}

fn to_scmp_arg(condition: &ArgCondition) -> ffi::ScmpArgCmp {
    ffi::ScmpArgCmp {
        arg: u32::from(condition.index),
        op: compare_code(condition.op),
        datum_a: condition.value,
        datum_b: condition.value_two,
    }
}

/// Turns libseccomp's `-errno` return value into an error.
fn check_libseccomp(rc: i32, operation: impl FnOnce() -> String) -> Result<(), SeccompError> {
    if rc == 0 {
        return Ok(());
    }
    Err(SeccompError::Libseccomp {
        operation: operation(),
        source: io::Error::from_raw_os_error(-rc),
    })
}

/// Owns a libseccomp filter context (native arch only: x86_64).
struct FilterContext {
    raw: *mut std::ffi::c_void,
}

impl FilterContext {
    fn new(default_action: Action) -> Result<Self, SeccompError> {
        // SAFETY: plain FFI call; a null result is handled below.
        let raw = unsafe { ffi::seccomp_init(action_code(default_action)) };
        if raw.is_null() {
            return Err(SeccompError::Libseccomp {
                operation: format!("seccomp_init({default_action})"),
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let context = Self { raw };
        context.set_attribute(
            ffi::SCMP_FLTATR_ACT_BADARCH,
            ffi::SCMP_ACT_KILL_PROCESS,
            "bad-arch action",
        )?;
        context.set_attribute(ffi::SCMP_FLTATR_CTL_OPTIMIZE, 2, "binary-tree optimisation")?;
        Ok(context)
    }

    fn set_attribute(&self, attribute: i32, value: u32, what: &str) -> Result<(), SeccompError> {
        // SAFETY: `self.raw` is a live context from seccomp_init.
        let rc = unsafe { ffi::seccomp_attr_set(self.raw, attribute, value) };
        check_libseccomp(rc, || format!("setting the {what}"))
    }

    fn add_rule(&self, rule: &Rule) -> Result<(), SeccompError> {
        let number = syscalls::x86_64_number(&rule.syscall).ok_or_else(|| SeccompError::UnknownSyscall {
            name: rule.syscall.clone(),
        })?;
        let args: Vec<ffi::ScmpArgCmp> = rule.args.iter().map(to_scmp_arg).collect();
        let count = args.len() as u32; // at most 6, checked by validate()
                                       // SAFETY: `self.raw` is a live context; `args` holds `count` valid
                                       // structs and outlives the call; libseccomp copies them.
        let rc =
            unsafe { ffi::seccomp_rule_add_array(self.raw, action_code(rule.action), number, count, args.as_ptr()) };
        check_libseccomp(rc, || format!("adding rule `{rule}`"))
    }

    /// Exports the BPF program through a memfd and reads it back.
    fn export(&self) -> Result<Vec<libc::sock_filter>, SeccompError> {
        let mut memfd = create_memfd().map_err(|source| SeccompError::Export { source })?;
        // SAFETY: `self.raw` is a live context; the fd is open and owned by `memfd`.
        let rc = unsafe { ffi::seccomp_export_bpf(self.raw, memfd.as_raw_fd()) };
        check_libseccomp(rc, || "exporting BPF".to_owned())?;
        let mut bytes = Vec::new();
        memfd
            .seek(SeekFrom::Start(0))
            .and_then(|_| memfd.read_to_end(&mut bytes))
            .map_err(|source| SeccompError::Export { source })?;
        CompiledFilter::from_bytes(&bytes).map(|filter| filter.program)
    }
}

impl Drop for FilterContext {
    fn drop(&mut self) {
        // SAFETY: `self.raw` came from seccomp_init and is released once.
        unsafe { ffi::seccomp_release(self.raw) };
    }
}

/// An anonymous in-memory file to receive the exported program.
fn create_memfd() -> io::Result<File> {
    // SAFETY: the name is a valid NUL-terminated string.
    let fd = unsafe { libc::memfd_create(c"crabcan-seccomp-bpf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created, is valid and owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let profile = Profile {
            default_action: Action::Allow,
            rules: vec![Rule::new("keyctl", Action::Errno(1))],
        };
        let filter = profile.compile().expect("compiles");
        assert!(!filter.is_empty());
        let again = CompiledFilter::from_bytes(&filter.to_bytes()).expect("decodes");
        assert_eq!(filter, again);
        assert_eq!(filter.len(), again.len());
    }

    #[test]
    fn from_bytes_rejects_garbage() {
        assert!(CompiledFilter::from_bytes(&[]).is_err());
        assert!(CompiledFilter::from_bytes(&[0; 7]).is_err());
        assert!(CompiledFilter::from_bytes(&vec![0; 8 * 4097]).is_err());
    }

    #[test]
    fn unknown_syscall_is_a_typed_error() {
        let profile = Profile {
            default_action: Action::Allow,
            rules: vec![Rule::new("frobnicate", Action::Errno(1))],
        };
        match profile.compile() {
            Err(SeccompError::UnknownSyscall { name }) => assert_eq!(name, "frobnicate"),
            other => panic!("expected UnknownSyscall, got {other:?}"),
        }
    }

    #[test]
    fn rules_equal_to_default_are_skipped() {
        let profile = Profile {
            default_action: Action::Errno(38),
            rules: vec![Rule::new("read", Action::Allow), Rule::new("clone3", Action::Errno(38))],
        };
        assert!(profile.compile().is_ok());
    }
}
