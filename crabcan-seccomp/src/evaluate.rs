//! Running a [`CompiledFilter`] in user space: the classic BPF subset seccomp accepts,
//! interpreted on a [`SyscallData`] exactly as the kernel's filter would see it, to a
//! [`Verdict`]. A learning run's supervisor decides with it what the enforced profile would
//! have done with a notified call (`learn.rs`), and `--explain` reads a filter's behaviour
//! out of it without installing anything (`summary.rs`).

use crate::arch::Arch;
use crate::compile::CompiledFilter;
use crate::profile::Action;

/// The input of a seccomp filter (`struct seccomp_data`): the call as the kernel saw it at
/// syscall entry, registers only (no pointer is ever followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyscallData {
    /// The syscall number.
    pub nr: i32,
    /// The architecture token (`AUDIT_ARCH_*`), see [`Arch::audit_arch`].
    pub arch: u32,
    /// Where the call was made.
    pub instruction_pointer: u64,
    /// The six argument registers.
    pub args: [u64; 6],
}

impl SyscallData {
    /// A call of `nr` with `args` (missing ones zero) on [`Arch::NATIVE`].
    pub fn native(nr: i32, args: &[u64]) -> SyscallData {
        let mut all = [0u64; 6];
        for (slot, value) in all.iter_mut().zip(args) {
            *slot = *value;
        }
        SyscallData {
            nr,
            arch: Arch::NATIVE.audit_arch(),
            instruction_pointer: 0,
            args: all,
        }
    }

    /// The 32-bit word at byte `offset` of `struct seccomp_data` (little endian, as on both
    /// supported architectures); `None` outside it or unaligned, which the kernel refuses.
    fn word(&self, offset: u32) -> Option<u32> {
        if offset % 4 != 0 {
            return None;
        }
        let low_half = |value: u64| value as u32;
        let high_half = |value: u64| (value >> 32) as u32;
        match offset {
            0 => Some(self.nr as u32),
            4 => Some(self.arch),
            8 => Some(low_half(self.instruction_pointer)),
            12 => Some(high_half(self.instruction_pointer)),
            16..=60 => {
                let index = ((offset - 16) / 8) as usize;
                let value = *self.args.get(index)?;
                Some(if (offset - 16) % 8 == 0 {
                    low_half(value)
                } else {
                    high_half(value)
                })
            }
            _ => None,
        }
    }
}

/// `sizeof(struct seccomp_data)`, what `BPF_LEN` loads.
const SECCOMP_DATA_LEN: u32 = 64;

/// What a seccomp program returns for a call, by the kernel's action values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A [`Profile`](crate::Profile) action.
    Action(Action),
    /// `SECCOMP_RET_USER_NOTIF`: a supervisor decides.
    Notify,
    /// `SECCOMP_RET_TRACE` with its data: a ptrace tracer decides.
    Trace(u16),
}

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub(crate) const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0x0000_ffff;

impl Verdict {
    /// The kernel's reading of a filter's return value; an unknown action is
    /// `SECCOMP_RET_KILL_PROCESS`, as in the kernel.
    pub fn from_return_value(value: u32) -> Verdict {
        let data = value & RET_DATA;
        match value & RET_ACTION_FULL {
            RET_ALLOW => Verdict::Action(Action::Allow),
            RET_LOG => Verdict::Action(Action::Log),
            RET_ERRNO => Verdict::Action(Action::Errno(data)),
            RET_TRAP => Verdict::Action(Action::Trap),
            RET_KILL_THREAD => Verdict::Action(Action::KillThread),
            RET_USER_NOTIF => Verdict::Notify,
            RET_TRACE => Verdict::Trace(data as u16),
            _ => Verdict::Action(Action::KillProcess),
        }
    }
}

// Classic BPF opcodes (<linux/bpf_common.h>).
const CLASS_LD: u16 = 0x00;
const CLASS_LDX: u16 = 0x01;
const CLASS_ST: u16 = 0x02;
const CLASS_STX: u16 = 0x03;
const CLASS_ALU: u16 = 0x04;
pub(crate) const CLASS_JMP: u16 = 0x05;
pub(crate) const CLASS_RET: u16 = 0x06;
const CLASS_MISC: u16 = 0x07;
/// The instruction class bits (`BPF_CLASS`).
pub(crate) const CLASS_MASK: u16 = 0x07;
const MODE_IMM: u16 = 0x00;
const MODE_ABS: u16 = 0x20;
const MODE_MEM: u16 = 0x60;
const MODE_LEN: u16 = 0x80;
const SIZE_W: u16 = 0x00;
const SRC_X: u16 = 0x08;
const RVAL_A: u16 = 0x10;
const MISC_TXA: u16 = 0x80;
const ALU_DIV: u16 = 0x30;
const ALU_MOD: u16 = 0x90;
/// Scratch memory words (`BPF_MEMWORDS`).
const MEMWORDS: usize = 16;

impl CompiledFilter {
    /// What this filter returns for `call`, computed in user space with the kernel's
    /// semantics for the classic BPF seccomp accepts (loads of `seccomp_data` words and its
    /// length, immediates, scratch memory, ALU, forward jumps, returns). A program the kernel
    /// would refuse (an instruction outside that subset, a load outside `seccomp_data`, a jump
    /// past the end) gives `SECCOMP_RET_KILL_PROCESS`, as does running off its end.
    pub fn evaluate(&self, call: &SyscallData) -> Verdict {
        Verdict::from_return_value(run(&self.program, call).unwrap_or(RET_KILL_PROCESS))
    }
}

/// Runs `program` on `call`; `None` where the kernel would have refused the program.
fn run(program: &[libc::sock_filter], call: &SyscallData) -> Option<u32> {
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut memory = [0u32; MEMWORDS];
    let mut pc = 0usize;
    // Classic BPF only jumps forward, so a valid program ends within its length.
    for _ in 0..=program.len() {
        let instruction = program.get(pc)?;
        let k = instruction.k;
        let code = instruction.code;
        pc += 1;
        match code & CLASS_MASK {
            CLASS_LD => {
                a = match (code & 0x18, code & 0xe0) {
                    (SIZE_W, MODE_ABS) => call.word(k)?,
                    (SIZE_W, MODE_LEN) => SECCOMP_DATA_LEN,
                    (_, MODE_IMM) => k,
                    (_, MODE_MEM) => *memory.get(k as usize)?,
                    _ => return None,
                }
            }
            CLASS_LDX => {
                x = match code & 0xe0 {
                    MODE_LEN => SECCOMP_DATA_LEN,
                    MODE_IMM => k,
                    MODE_MEM => *memory.get(k as usize)?,
                    _ => return None,
                }
            }
            CLASS_ST => *memory.get_mut(k as usize)? = a,
            CLASS_STX => *memory.get_mut(k as usize)? = x,
            CLASS_ALU => {
                let operand = if code & SRC_X != 0 { x } else { k };
                let op = code & 0xf0;
                if matches!(op, ALU_DIV | ALU_MOD) && operand == 0 {
                    // The kernel's interpreter ends the program with 0 (kill).
                    return Some(0);
                }
                a = alu(op, a, operand)?;
            }
            CLASS_JMP => {
                let operand = if code & SRC_X != 0 { x } else { k };
                let offset = match code & 0xf0 {
                    0x00 => k as usize,
                    0x10 => branch(a == operand, instruction),
                    0x20 => branch(a > operand, instruction),
                    0x30 => branch(a >= operand, instruction),
                    0x40 => branch(a & operand != 0, instruction),
                    _ => return None,
                };
                pc = pc.checked_add(offset)?;
            }
            CLASS_RET => return Some(if code & 0x18 == RVAL_A { a } else { k }),
            CLASS_MISC => {
                if code & 0xf8 == MISC_TXA {
                    a = x;
                } else {
                    x = a;
                }
            }
            _ => return None,
        }
    }
    None
}

/// The jump offset of a conditional jump.
fn branch(taken: bool, instruction: &libc::sock_filter) -> usize {
    usize::from(if taken { instruction.jt } else { instruction.jf })
}

/// One ALU operation (a division by zero is handled by the caller).
fn alu(op: u16, a: u32, operand: u32) -> Option<u32> {
    Some(match op {
        0x00 => a.wrapping_add(operand),
        0x10 => a.wrapping_sub(operand),
        0x20 => a.wrapping_mul(operand),
        ALU_DIV => a.checked_div(operand).unwrap_or(0),
        0x40 => a | operand,
        0x50 => a & operand,
        0x60 => a.checked_shl(operand).unwrap_or(0),
        0x70 => a.checked_shr(operand).unwrap_or(0),
        0x80 => a.wrapping_neg(),
        ALU_MOD => a.checked_rem(operand).unwrap_or(0),
        0xa0 => a ^ operand,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{ArgCondition, Profile, Rule};
    use crate::ShippedProfile;

    const EPERM: Action = Action::Errno(libc::EPERM as u32);
    const ENOSYS: Action = Action::Errno(libc::ENOSYS as u32);

    fn verdict(filter: &CompiledFilter, name: &str, args: &[u64]) -> Verdict {
        let nr = Arch::NATIVE.syscall_number(name).expect("a native syscall");
        filter.evaluate(&SyscallData::native(nr, args))
    }

    #[test]
    fn the_default_profile_decides_as_its_rules_say() {
        let filter = Profile::default_profile().compile().unwrap();
        let allowed = Verdict::Action(Action::Allow);
        assert_eq!(verdict(&filter, "read", &[]), allowed);
        assert_eq!(verdict(&filter, "execve", &[]), allowed);
        assert_eq!(verdict(&filter, "mount", &[]), Verdict::Action(EPERM));
        assert_eq!(verdict(&filter, "keyctl", &[]), Verdict::Action(EPERM));
        assert_eq!(verdict(&filter, "clone3", &[]), Verdict::Action(ENOSYS));
        let sigchld = libc::SIGCHLD as u64;
        assert_eq!(verdict(&filter, "clone", &[sigchld]), allowed);
        let new_user = libc::CLONE_NEWUSER as u64 | sigchld;
        assert_eq!(verdict(&filter, "clone", &[new_user]), Verdict::Action(EPERM));
        assert_eq!(verdict(&filter, "ioctl", &[0, 0x5413]), allowed);
        assert_eq!(verdict(&filter, "ioctl", &[0, 0x5412]), Verdict::Action(EPERM));
        assert_eq!(verdict(&filter, "ioctl", &[0, 0x1_0000_5412]), Verdict::Action(EPERM));
        assert_eq!(verdict(&filter, "socket", &[libc::AF_INET as u64]), allowed);
        assert_eq!(
            verdict(&filter, "socket", &[libc::AF_VSOCK as u64]),
            Verdict::Action(EPERM)
        );
        assert_eq!(verdict(&filter, "personality", &[0x8]), allowed);
        assert_eq!(verdict(&filter, "personality", &[0x0400000]), Verdict::Action(ENOSYS));
        assert_eq!(verdict(&filter, "chmod", &[0, 0o755]), allowed);
        assert_eq!(verdict(&filter, "chmod", &[0, 0o4755]), Verdict::Action(EPERM));
        // A number no table has: the default action.
        assert_eq!(
            filter.evaluate(&SyscallData::native(1000, &[])),
            Verdict::Action(ENOSYS)
        );
    }

    /// Every syscall the default profile names unconditionally gets its rule's action.
    #[test]
    fn every_unconditional_rule_of_the_default_profile() {
        let profile = ShippedProfile::Default.profile();
        let filter = profile.compile().unwrap();
        for rule in profile.rules.iter().filter(|rule| rule.args.is_empty()) {
            assert_eq!(
                verdict(&filter, &rule.syscall, &[]),
                Verdict::Action(rule.action),
                "{rule}"
            );
        }
    }

    #[test]
    fn a_foreign_architecture_is_killed() {
        let filter = Profile::default_profile().compile().unwrap();
        let mut call = SyscallData::native(0, &[]);
        call.arch = 0x4000_0003; // i386
        assert_eq!(filter.evaluate(&call), Verdict::Action(Action::KillProcess));
    }

    #[test]
    fn high_argument_halves_are_compared() {
        let profile = Profile {
            default_action: Action::Allow,
            rules: vec![Rule::with_args("kill", EPERM, &[ArgCondition::equal(1, 0x1_0000_0009)])],
        };
        let filter = profile.compile().unwrap();
        assert_eq!(verdict(&filter, "kill", &[1, 0x1_0000_0009]), Verdict::Action(EPERM));
        assert_eq!(verdict(&filter, "kill", &[1, 9]), Verdict::Action(Action::Allow));
    }

    #[test]
    fn programs_the_kernel_would_refuse_kill() {
        let ret = |k| libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k,
        };
        let load = |k| libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k,
        };
        let filter = |program: Vec<libc::sock_filter>| CompiledFilter { program };
        let call = SyscallData::native(0, &[]);
        assert_eq!(
            filter(vec![ret(RET_ALLOW)]).evaluate(&call),
            Verdict::Action(Action::Allow)
        );
        assert_eq!(
            filter(vec![load(64), ret(RET_ALLOW)]).evaluate(&call),
            Verdict::Action(Action::KillProcess),
            "a load past seccomp_data"
        );
        assert_eq!(
            filter(vec![load(0)]).evaluate(&call),
            Verdict::Action(Action::KillProcess),
            "running off the end"
        );
        let jump_out = libc::sock_filter {
            code: 0x05,
            jt: 0,
            jf: 0,
            k: 5,
        };
        assert_eq!(
            filter(vec![jump_out, ret(RET_ALLOW)]).evaluate(&call),
            Verdict::Action(Action::KillProcess)
        );
        assert_eq!(filter(vec![ret(RET_USER_NOTIF)]).evaluate(&call), Verdict::Notify);
        assert_eq!(filter(vec![ret(RET_TRACE | 7)]).evaluate(&call), Verdict::Trace(7));
        assert_eq!(
            filter(vec![ret(0x1234_0000)]).evaluate(&call),
            Verdict::Action(Action::KillProcess)
        );
    }
}
