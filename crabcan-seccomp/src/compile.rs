//! Profile → BPF: builds a libseccomp filter for the native architecture ([`Arch::NATIVE`]),
//! exports it as a classic BPF program and keeps it as a [`CompiledFilter`], which can be
//! stored as bytes and installed later without libseccomp (see `install.rs`). Syscall numbers
//! come from the crate's own table for that architecture (`syscalls/`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, FromRawFd};

use crate::arch::Arch;
use crate::compact;
use crate::error::SeccompError;
use crate::ffi::{self, FilterContext, ScmpArgCmp};
use crate::profile::{Action, ArgCondition, CmpOp, Profile, Rule};

/// Size in bytes of one BPF instruction (`struct sock_filter`).
pub(crate) const INSTRUCTION_SIZE: usize = 8;

/// Longest program the kernel accepts (`BPF_MAXINSNS`).
pub(crate) const MAX_INSTRUCTIONS: usize = 4096;

/// A seccomp filter compiled to classic BPF for [`Arch::NATIVE`], ready to install.
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
    /// `jf` (u8), `k` (u32), little endian: the kernel's layout on x86_64 and
    /// aarch64, the two architectures this crate builds for.
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
    /// Validates the profile, resolves every syscall name on [`Arch::NATIVE`]
    /// and builds the BPF program with libseccomp. Needs no privilege.
    ///
    /// Rules whose action equals the default action are left out (they
    /// change nothing, and libseccomp refuses them).
    pub fn compile(&self) -> Result<CompiledFilter, SeccompError> {
        self.validate()?;
        let rules: Vec<(&Rule, u32)> = self.rules.iter().map(|rule| (rule, action_code(rule.action))).collect();
        let filter = build(action_code(self.default_action), &rules, || {
            format!("seccomp_init({})", self.default_action)
        })?;
        log::debug!(
            "seccomp: compiled {} rules into {} BPF instructions",
            self.rules.len(),
            filter.len()
        );
        Ok(filter)
    }
}

/// Builds the program for [`Arch::NATIVE`] with libseccomp from a default return value and
/// rules with theirs (`SCMP_ACT_*` values); rules whose value equals the default are left
/// out. The rules must be valid ([`Profile::validate`]).
pub(crate) fn build(
    default_code: u32,
    rules: &[(&Rule, u32)],
    describe: impl FnOnce() -> String,
) -> Result<CompiledFilter, SeccompError> {
    let mut filter = build_uncompacted(default_code, rules, describe)?;
    if let Some(program) = compact::compact(&filter.program) {
        log::debug!(
            "seccomp: syscall dispatch laid out as ranges: {} instructions instead of {}",
            program.len(),
            filter.program.len()
        );
        filter.program = program;
    }
    Ok(filter)
}

/// [`build`] as libseccomp exports it, without [`compact::compact`].
pub(crate) fn build_uncompacted(
    default_code: u32,
    rules: &[(&Rule, u32)],
    describe: impl FnOnce() -> String,
) -> Result<CompiledFilter, SeccompError> {
    let context = FilterContext::new(Arch::NATIVE.scmp(), default_code, describe)?;
    for (rule, code) in rules {
        if *code == default_code {
            log::debug!("seccomp: skipping rule equal to the default action: {rule}");
            continue;
        }
        add_rule(&context, rule, *code)?;
    }
    let program = export(&context)?;
    Ok(CompiledFilter { program })
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

fn to_scmp_arg(condition: &ArgCondition) -> ScmpArgCmp {
    ScmpArgCmp {
        arg: u32::from(condition.index),
        op: compare_code(condition.op),
        datum_a: condition.value,
        datum_b: condition.value_two,
    }
}

/// Adds one rule with return value `code`, its syscall resolved on the native architecture.
fn add_rule(context: &FilterContext, rule: &Rule, code: u32) -> Result<(), SeccompError> {
    let number = Arch::NATIVE
        .syscall_number(&rule.syscall)
        .ok_or_else(|| SeccompError::UnknownSyscall {
            name: rule.syscall.clone(),
        })?;
    let args: Vec<ScmpArgCmp> = rule.args.iter().map(to_scmp_arg).collect();
    context.add_rule(code, number, &args, || format!("adding rule `{rule}`"))
}

/// Exports the BPF program through a memfd and reads it back.
fn export(context: &FilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut memfd = create_memfd().map_err(|source| SeccompError::Export { source })?;
    context.export_bpf(memfd.as_fd())?;
    let mut bytes = Vec::new();
    memfd
        .seek(SeekFrom::Start(0))
        .and_then(|_| memfd.read_to_end(&mut bytes))
        .map_err(|source| SeccompError::Export { source })?;
    CompiledFilter::from_bytes(&bytes).map(|filter| filter.program)
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
