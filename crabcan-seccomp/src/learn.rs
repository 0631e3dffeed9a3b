//! Learning which syscalls a program makes: a [`LearningFilter`] (one seccomp filter whose
//! every call is `SECCOMP_RET_USER_NOTIF`) installed by the program's process right before
//! `execve`, its listener handed to a supervisor over a unix socket, and a [`Supervisor`] that
//! answers each notification and records the call (per architecture number, named at the end)
//! into a [`Learned`] set. Children and threads inherit the filter, so every process of the
//! program is seen, and nothing of whoever started it.
//!
//! **Denials still hold.** The kernel allows one listener per filter chain (a second one is
//! `EBUSY`), and an `ERRNO` result of any filter outranks `USER_NOTIF`, so a kernel-enforced
//! profile next to the notify filter would hide its denials from the supervisor. The run
//! therefore has one filter: the enforced profile (crabcan's default) compiled with every
//! action that lets a call run or fail with an errno turned into a notification (kill and trap
//! actions stay as they are, enforced by the kernel). The supervisor runs the enforced
//! profile's own BPF program on the notification's `seccomp_data` (the registers the kernel's
//! filter would have read; no pointer is followed, so nothing can change under it) and answers
//! `SECCOMP_USER_NOTIF_FLAG_CONTINUE` where that program allows the call, the program's errno
//! where it denies it, recording the call as learned or as denied. Only `CONTINUE` runs a call:
//! a notification nobody answers (the supervisor died) fails with `ENOSYS`, so a denied call
//! never runs.
//!
//! **Calls not notified.** Two calls with exact arguments: the one `sendmsg` that hands the
//! listener over (on the socket given to [`LearningFilter::new`], flags `MSG_NOSIGNAL |
//! MSG_DONTWAIT`: until it arrives nobody could answer), and `exit_group` with a status no
//! program passes (high bits set), the only way out if that hand-over fails. Both are allowed
//! by the enforced profile. A program that made exactly that `sendmsg` on a descriptor that
//! happens to have the socket's number would not have it recorded.
//!
//! Needs Linux 5.5 (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`; the listener itself is 5.0): see
//! [`check_kernel_for_learning`], which callers run before starting anything.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::compile::{self, action_code, CompiledFilter};
use crate::error::SeccompError;
use crate::evaluate::{SyscallData, Verdict, RET_TRACE, RET_USER_NOTIF};
use crate::ffi;
use crate::profile::{Action, ArgCondition, Profile, Rule};
use crate::Arch;

/// The oldest kernel a learning run works on: `SECCOMP_USER_NOTIF_FLAG_CONTINUE` is 5.5.
pub const LEARNING_MIN_KERNEL: (u32, u32) = (5, 5);

/// Flags of the hand-over `sendmsg`, the one the notify filter lets through.
const HAND_OVER_FLAGS: u64 = (libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) as u64;

/// The `exit_group` status of a process whose hand-over failed: the low byte is the exit
/// status its parent sees, the high bits make it a value no program passes.
const HAND_OVER_FAILED_EXIT: u64 = 0x5ecc_0000;

/// What libseccomp is told for "notify": `SECCOMP_RET_TRACE` with a datum (profiles have no
/// trace action, so nothing else returns it), replaced by `SECCOMP_RET_USER_NOTIF` in the
/// exported program. (libseccomp refuses a notify default action.)
const NOTIFY_PLACEHOLDER: u32 = RET_TRACE | 0xc7ab;

/// `BPF_RET | BPF_K`.
const BPF_RET_K: u16 = 0x06;

/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE`.
const USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// The highest call number recorded as itself: a program calling every number up to 2^31
/// must not grow the supervisor's records without bound. Numbers outside 0..=this (no table
/// has one) are recorded as one, [`OUT_OF_RANGE`].
const MAX_RECORDED_NUMBER: i32 = 1023;

/// Where calls of numbers outside 0..=[`MAX_RECORDED_NUMBER`] are recorded.
pub const OUT_OF_RANGE: i32 = -1;

/// Fails with [`SeccompError::KernelTooOld`] on a kernel older than [`LEARNING_MIN_KERNEL`]
/// (there a learning run could not let calls through); an unreadable version passes.
pub fn check_kernel_for_learning() -> Result<(), SeccompError> {
    match crate::running_kernel() {
        Some(kernel) if kernel < LEARNING_MIN_KERNEL => Err(SeccompError::KernelTooOld {
            what: "learning a profile (SECCOMP_USER_NOTIF_FLAG_CONTINUE)",
            needed: LEARNING_MIN_KERNEL,
            running: kernel,
        }),
        _ => Ok(()),
    }
}

/// The filter of a learning run, compiled (in the parent, before the fork) for a process that
/// will hand its listener over on descriptor `hand_over_fd`.
#[derive(Debug, Clone)]
pub struct LearningFilter {
    /// `SECCOMP_RET_USER_NOTIF` for every call the enforced profile lets run or fails with an
    /// errno; its kill and trap actions as they are.
    notify: CompiledFilter,
    /// The enforced profile's own program, run by the supervisor; `None`: nothing is denied.
    enforced: Option<CompiledFilter>,
    hand_over_fd: RawFd,
}

impl LearningFilter {
    /// Compiles the learning filter. `enforced` is the profile whose decisions the run keeps
    /// (crabcan's default profile); `None` lets every call through (`--seccomp-learn-unconfined`).
    /// The enforced profile must let `execve`, `sendmsg` and `exit_group` run whatever their
    /// arguments (the hand-over needs the last two), and its default action must let a call
    /// run or fail with an errno (it becomes the filter's: a notification).
    pub fn new(enforced: Option<&Profile>, hand_over_fd: RawFd) -> Result<LearningFilter, SeccompError> {
        let fd = u64::try_from(hand_over_fd).map_err(|_| SeccompError::InvalidProfile {
            reason: format!("the hand-over descriptor {hand_over_fd} is not a descriptor"),
        })?;
        let hand_over = hand_over_rules(fd);
        let (default_code, mut rules) = match enforced {
            Some(profile) => {
                profile.validate()?;
                profile.check_can_exec()?;
                if notify_code(profile.default_action) != NOTIFY_PLACEHOLDER {
                    return Err(SeccompError::InvalidProfile {
                        reason: format!(
                            "a learning run needs a profile whose default action lets a call run or fail with an \
                             errno, not {}",
                            profile.default_action
                        ),
                    });
                }
                for name in ["sendmsg", "exit_group"] {
                    check_runs_unconditionally(profile, name)?;
                }
                let rules: Vec<(Rule, u32)> = profile
                    .rules
                    .iter()
                    .filter(|rule| rule.syscall != "sendmsg" && rule.syscall != "exit_group")
                    .map(|rule| (rule.clone(), notify_code(rule.action)))
                    .collect();
                (notify_code(profile.default_action), rules)
            }
            None => (NOTIFY_PLACEHOLDER, Vec::new()),
        };
        rules.extend(hand_over);
        let borrowed: Vec<(&Rule, u32)> = rules.iter().map(|(rule, code)| (rule, *code)).collect();
        let mut notify = compile::build(default_code, &borrowed, || "seccomp_init(notify)".to_owned())?;
        for instruction in &mut notify.program {
            if instruction.code == BPF_RET_K && instruction.k == NOTIFY_PLACEHOLDER {
                instruction.k = RET_USER_NOTIF;
            }
        }
        let enforced = enforced.map(Profile::compile).transpose()?;
        Ok(LearningFilter {
            notify,
            enforced,
            hand_over_fd,
        })
    }

    /// The descriptor the listener is handed over on.
    pub fn hand_over_fd(&self) -> RawFd {
        self.hand_over_fd
    }

    /// Whether the run enforces a profile (`false`: every call is let through).
    pub fn is_confined(&self) -> bool {
        self.enforced.is_some()
    }

    /// In the process to learn, as its last step before `execve`: installs the filter (which
    /// needs `PR_SET_NO_NEW_PRIVS` or CAP_SYS_ADMIN) and sends its listener over `socket`
    /// (the descriptor given to [`LearningFilter::new`]) with `payload`, as one `SCM_RIGHTS`
    /// message. Does not allocate.
    ///
    /// Before the filter is installed a failure returns the error. Once it is installed, every
    /// other call of this process waits for a supervisor that only the hand-over creates, so a
    /// failed hand-over ends the process at once with exit status `failure_exit`.
    pub fn install_and_hand_over(
        &self,
        socket: BorrowedFd<'_>,
        payload: &[u8],
        failure_exit: u8,
    ) -> Result<(), SeccompError> {
        if socket.as_raw_fd() != self.hand_over_fd {
            return Err(SeccompError::InvalidProfile {
                reason: format!(
                    "the listener goes over descriptor {}, and the filter lets only {} through",
                    socket.as_raw_fd(),
                    self.hand_over_fd
                ),
            });
        }
        let listener = self.notify.install_with_listener()?;
        if send_listener(socket.as_raw_fd(), payload, listener).is_err() {
            // SAFETY: exit_group with integers only; the one exit the filter lets through.
            unsafe { libc::syscall(libc::SYS_exit_group, HAND_OVER_FAILED_EXIT | u64::from(failure_exit)) };
        }
        Ok(())
    }

    /// The supervisor for the listener a process of this filter handed over.
    pub fn supervisor(&self, listener: OwnedFd) -> Supervisor {
        Supervisor {
            listener,
            enforced: self.enforced.clone(),
            allowed: BTreeMap::new(),
            denied: BTreeMap::new(),
            calls: 0,
        }
    }
}

/// The notify filter's return value for an action of the enforced profile.
fn notify_code(action: Action) -> u32 {
    match action {
        Action::Allow | Action::Log | Action::Errno(_) => NOTIFY_PLACEHOLDER,
        Action::KillProcess | Action::KillThread | Action::Trap => action_code(action),
    }
}

/// The hand-over `sendmsg` and the failure `exit_group` run; every other call of the two
/// falls to the filter's default, a notification.
fn hand_over_rules(fd: u64) -> Vec<(Rule, u32)> {
    let allow = ffi::SCMP_ACT_ALLOW;
    let hand_over = [ArgCondition::equal(0, fd), ArgCondition::equal(2, HAND_OVER_FLAGS)];
    let failed = [ArgCondition::masked_equal(0, !0xff, HAND_OVER_FAILED_EXIT)];
    vec![
        (Rule::with_args("sendmsg", Action::Allow, &hand_over), allow),
        (Rule::with_args("exit_group", Action::Allow, &failed), allow),
    ]
}

/// Refuses an enforced profile that does not let `name` run whatever the arguments.
fn check_runs_unconditionally(profile: &Profile, name: &str) -> Result<(), SeccompError> {
    let rules: Vec<&Rule> = profile.rules.iter().filter(|rule| rule.syscall == name).collect();
    let unconditional = rules.iter().find(|rule| rule.args.is_empty()).map(|rule| rule.action);
    let action = unconditional.unwrap_or(profile.default_action);
    let conditional = rules.iter().any(|rule| !rule.args.is_empty());
    if matches!(action, Action::Allow | Action::Log) && !conditional {
        return Ok(());
    }
    Err(SeccompError::InvalidProfile {
        reason: format!("a learning run needs a profile that lets `{name}` run whatever its arguments"),
    })
}

/// `struct seccomp_data`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawSeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawNotification {
    id: u64,
    pid: u32,
    flags: u32,
    data: RawSeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawResponse {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `_IOWR('!', nr, size)` (the same encoding on x86_64 and aarch64).
const fn seccomp_iowr(nr: u32, size: usize) -> u32 {
    (3 << 30) | ((size as u32) << 16) | ((b'!' as u32) << 8) | nr
}

/// `SECCOMP_IOCTL_NOTIF_RECV`.
const NOTIF_RECV: u32 = seccomp_iowr(0, std::mem::size_of::<RawNotification>());
/// `SECCOMP_IOCTL_NOTIF_SEND`.
const NOTIF_SEND: u32 = seccomp_iowr(1, std::mem::size_of::<RawResponse>());

/// Sends `payload` with `listener` as `SCM_RIGHTS` over `socket`, flags [`HAND_OVER_FLAGS`]:
/// exactly the call the notify filter lets through. Raw libc, no allocation.
fn send_listener(socket: RawFd, payload: &[u8], listener: RawFd) -> Result<(), i32> {
    /// Room for one `cmsghdr` carrying one descriptor, aligned like one.
    #[repr(C, align(8))]
    struct ControlBuffer([u8; 64]);
    let mut control = ControlBuffer([0; 64]);
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid (empty) value.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as libc::c_uint) } as usize;
    message.msg_controllen = space as _;
    // SAFETY: msg_control points to `space` (<= 64) writable, aligned bytes; CMSG_FIRSTHDR
    // returns a pointer into them (never null: the buffer holds a whole header), and
    // CMSG_DATA a pointer to the descriptor's room right after the header.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as libc::c_uint) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<RawFd>(), listener);
    }
    loop {
        // SAFETY: `message` and everything it points to live across the call.
        let sent = unsafe { libc::sendmsg(socket, &message, HAND_OVER_FLAGS as libc::c_int) };
        if sent >= 0 {
            return Ok(());
        }
        match io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) {
            libc::EINTR => continue,
            errno => return Err(errno),
        }
    }
}

/// The parent's side of a learning run: answers the notifications of one listener and
/// records each call.
#[derive(Debug)]
pub struct Supervisor {
    listener: OwnedFd,
    enforced: Option<CompiledFilter>,
    /// Call number → how often it was let through.
    allowed: BTreeMap<i32, u64>,
    /// Call number → what the enforced profile did, and how often.
    denied: BTreeMap<i32, (Action, u64)>,
    calls: u64,
}

impl Supervisor {
    /// The listener, to poll: readable when a notification waits, hung up (Linux 5.9+) once no
    /// process uses the filter any more.
    pub fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Receives one notification and answers it: `CONTINUE` where the enforced profile lets
    /// the call run (recorded as learned), its errno where it denies it (recorded as denied).
    /// Call it when [`Supervisor::listener`] is readable: with nothing pending it blocks. A
    /// notification whose process died or was interrupted meanwhile is no error.
    pub fn answer_one(&mut self) -> Result<(), SeccompError> {
        let mut notification = RawNotification::default();
        // SAFETY: NOTIF_RECV fills the zeroed struct seccomp_notif it is given, whose size the
        // request encodes.
        let rc = unsafe { libc::ioctl(self.listener.as_raw_fd(), NOTIF_RECV as _, &mut notification) };
        if rc != 0 {
            return match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR | libc::ENOENT) => Ok(()),
                _ => Err(SeccompError::Notify {
                    operation: "ioctl(SECCOMP_IOCTL_NOTIF_RECV)",
                    source: io::Error::last_os_error(),
                }),
            };
        }
        let data = notification.data;
        let call = SyscallData {
            nr: data.nr,
            arch: data.arch,
            instruction_pointer: data.instruction_pointer,
            args: data.args,
        };
        let mut response = RawResponse {
            id: notification.id,
            ..RawResponse::default()
        };
        match self.decide(&call) {
            Ok(()) => response.flags = USER_NOTIF_FLAG_CONTINUE,
            Err(errno) => response.error = -(errno as i32),
        }
        self.calls += 1;
        // SAFETY: NOTIF_SEND reads the struct seccomp_notif_resp it is given.
        let rc = unsafe { libc::ioctl(self.listener.as_raw_fd(), NOTIF_SEND as _, &response) };
        if rc != 0 {
            return match io::Error::last_os_error().raw_os_error() {
                // The process died, or a signal interrupted its call (which is made again).
                Some(libc::EINTR | libc::ENOENT) => Ok(()),
                _ => Err(SeccompError::Notify {
                    operation: "ioctl(SECCOMP_IOCTL_NOTIF_SEND)",
                    source: io::Error::last_os_error(),
                }),
            };
        }
        Ok(())
    }

    /// What the enforced profile does with `call`: `Ok` to let it run (recorded), or the errno
    /// it fails with (recorded as denied). Anything but allow or errno (which the notify filter
    /// never sends here) fails closed with EPERM.
    fn decide(&mut self, call: &SyscallData) -> Result<(), u32> {
        let verdict = match &self.enforced {
            Some(filter) => filter.evaluate(call),
            None => Verdict::Action(Action::Allow),
        };
        let number = match call.nr {
            nr @ 0..=MAX_RECORDED_NUMBER => nr,
            _ => OUT_OF_RANGE,
        };
        let (action, errno) = match verdict {
            Verdict::Action(Action::Allow | Action::Log) => {
                *self.allowed.entry(number).or_default() += 1;
                return Ok(());
            }
            Verdict::Action(Action::Errno(errno)) => (Action::Errno(errno), errno),
            Verdict::Action(other) => (other, libc::EPERM as u32),
            Verdict::Notify | Verdict::Trace(_) => (Action::Errno(libc::EPERM as u32), libc::EPERM as u32),
        };
        let entry = self.denied.entry(number).or_insert((action, 0));
        entry.1 += 1;
        Err(errno)
    }

    /// What was learned, by name.
    pub fn finish(self) -> Learned {
        let mut learned = Learned {
            confined: self.enforced.is_some(),
            calls: self.calls,
            ..Learned::default()
        };
        for number in self.allowed.keys() {
            match Arch::NATIVE.syscall_name(*number) {
                Some(name) => {
                    learned.allowed.insert(name.to_owned());
                }
                None => {
                    learned.unnamed.insert(*number);
                }
            }
        }
        for (number, (action, _)) in &self.denied {
            match Arch::NATIVE.syscall_name(*number) {
                Some(name) => {
                    learned.denied.insert(name.to_owned(), *action);
                }
                None => {
                    learned.unnamed.insert(*number);
                }
            }
        }
        learned
    }
}

/// The syscalls a learning run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Learned {
    /// Calls made and let through (by the enforced profile, or all of them when unconfined).
    pub allowed: BTreeSet<String>,
    /// Calls the enforced profile denied, with what they got (the first time). A call denied
    /// for some arguments and allowed for others (`clone` with a namespace flag) is in both.
    pub denied: BTreeMap<String, Action>,
    /// Numbers this crate's syscall table has no name for (newer calls; [`OUT_OF_RANGE`] for
    /// any number below 0 or above 1023): seen, but not writable into a profile.
    pub unnamed: BTreeSet<i32>,
    /// How many calls were answered.
    pub calls: u64,
    /// Whether a profile was enforced during the run.
    pub confined: bool,
}
