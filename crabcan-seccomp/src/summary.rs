//! What a compiled filter does, read out of the filter itself ([`FilterSummary`]): its default
//! action, how many syscalls of [`Arch::NATIVE`] it lets run, and what it does with the calls
//! that matter for a container's confinement (mounts, bpf, ptrace, keyrings, io_uring, new
//! namespaces through `clone`/`unshare`/`setns`, ...). Every answer comes from running the
//! filter's BPF on that call (`evaluate.rs`), so it holds for shipped, imported and learned
//! profiles alike.

use serde::{Deserialize, Serialize};

use crate::compile::CompiledFilter;
use crate::evaluate::{SyscallData, Verdict};
use crate::profile::Action;
use crate::Arch;

/// One call worth knowing about, with the arguments that make it dangerous.
struct NotableCall {
    label: &'static str,
    syscall: &'static str,
    args: [u64; 2],
}

const fn call(label: &'static str, syscall: &'static str, args: [u64; 2]) -> NotableCall {
    NotableCall { label, syscall, args }
}

/// The calls `--explain` reports, in this order.
const NOTABLE: &[NotableCall] = &[
    call("mount", "mount", [0, 0]),
    call("umount2", "umount2", [0, 0]),
    call("pivot_root", "pivot_root", [0, 0]),
    call("open_tree (new mount API)", "open_tree", [0, 0]),
    call("fsopen (new mount API)", "fsopen", [0, 0]),
    call("unshare(CLONE_NEWUSER)", "unshare", [libc::CLONE_NEWUSER as u64, 0]),
    call("unshare(CLONE_NEWNS)", "unshare", [libc::CLONE_NEWNS as u64, 0]),
    call("setns", "setns", [0, 0]),
    call(
        "clone(CLONE_NEWUSER)",
        "clone",
        [(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64, 0],
    ),
    call(
        "clone(CLONE_NEWNS)",
        "clone",
        [(libc::CLONE_NEWNS | libc::SIGCHLD) as u64, 0],
    ),
    call("clone3", "clone3", [0, 0]),
    call("bpf", "bpf", [0, 0]),
    call("ptrace", "ptrace", [0, 0]),
    call("process_vm_readv", "process_vm_readv", [0, 0]),
    call("keyctl", "keyctl", [0, 0]),
    call("add_key", "add_key", [0, 0]),
    call("io_uring_setup", "io_uring_setup", [0, 0]),
    call("perf_event_open", "perf_event_open", [0, 0]),
    call("userfaultfd", "userfaultfd", [0, 0]),
    call("open_by_handle_at", "open_by_handle_at", [0, 0]),
    call("kexec_load", "kexec_load", [0, 0]),
    call("init_module", "init_module", [0, 0]),
    call("reboot", "reboot", [0, 0]),
    call("chroot", "chroot", [0, 0]),
    call("ioctl(TIOCSTI)", "ioctl", [0, libc::TIOCSTI]),
    call("socket(AF_VSOCK)", "socket", [libc::AF_VSOCK as u64, 0]),
    call("chmod(S_ISUID)", "chmod", [0, 0o4755]),
];

/// A filter's behaviour, as `--explain` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterSummary {
    /// What a syscall the filter does not name gets (one no table knows).
    pub default_action: String,
    /// How many syscalls of the native table run (allow or log) when their arguments are
    /// zero.
    pub allowed: usize,
    /// How many syscalls the native table has.
    pub known: usize,
    /// What the filter does with each notable call, in a fixed order.
    pub notable: Vec<NotableVerdict>,
}

/// What a filter does with one notable call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotableVerdict {
    /// The call, with the arguments that matter: `clone(CLONE_NEWUSER)`.
    pub call: String,
    /// `allow`, `errno(EPERM)`, `kill-process`, ...
    pub action: String,
    /// Whether the call runs.
    pub runs: bool,
}

impl CompiledFilter {
    /// Reads the filter's behaviour out of its program (see [`FilterSummary`]).
    pub fn summary(&self) -> FilterSummary {
        let verdict_of = |name: &str, args: &[u64]| {
            Arch::NATIVE
                .syscall_number(name)
                .map(|nr| self.evaluate(&SyscallData::native(nr, args)))
        };
        let table = crate::syscalls::all(Arch::NATIVE);
        let allowed = table
            .iter()
            .filter(|(_, nr)| runs(self.evaluate(&SyscallData::native(*nr, &[]))))
            .count();
        // No table has this number, on any architecture: only the default action applies.
        let default = self.evaluate(&SyscallData::native(0x3fff, &[]));
        let notable = NOTABLE
            .iter()
            .filter_map(|notable| {
                let verdict = verdict_of(notable.syscall, &notable.args)?;
                Some(NotableVerdict {
                    call: notable.label.to_owned(),
                    action: describe(verdict),
                    runs: runs(verdict),
                })
            })
            .collect();
        FilterSummary {
            default_action: describe(default),
            allowed,
            known: table.len(),
            notable,
        }
    }
}

fn runs(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Action(Action::Allow | Action::Log))
}

fn describe(verdict: Verdict) -> String {
    match verdict {
        Verdict::Action(action) => action.to_string(),
        Verdict::Notify => "notify".to_owned(),
        Verdict::Trace(data) => format!("trace({data})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Profile;

    #[test]
    fn the_default_profile_summary() {
        let summary = Profile::default_profile().compile().unwrap().summary();
        assert_eq!(summary.default_action, "errno(ENOSYS)");
        assert!(summary.allowed > 250 && summary.allowed < summary.known, "{summary:?}");
        let action = |call: &str| {
            summary
                .notable
                .iter()
                .find(|notable| notable.call == call)
                .map(|notable| notable.action.clone())
                .unwrap_or_else(|| panic!("{call} missing"))
        };
        for denied in [
            "mount",
            "bpf",
            "ptrace",
            "keyctl",
            "io_uring_setup",
            "clone(CLONE_NEWUSER)",
            "ioctl(TIOCSTI)",
        ] {
            assert_eq!(action(denied), "errno(EPERM)", "{denied}");
        }
        assert_eq!(action("clone3"), "errno(ENOSYS)");
        assert!(summary.notable.iter().all(|notable| !notable.runs), "{summary:?}");
    }

    #[test]
    fn an_allow_all_profile_lets_everything_run() {
        let profile = Profile {
            default_action: Action::Allow,
            rules: Vec::new(),
        };
        let summary = profile.compile().unwrap().summary();
        assert_eq!(summary.default_action, "allow");
        assert_eq!(summary.allowed, summary.known);
        assert!(summary.notable.iter().all(|notable| notable.runs));
    }
}
