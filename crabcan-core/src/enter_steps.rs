//! What the processes `crabcan exec` starts do to enter a running container, in order.
//!
//! The entering process (forked by crabcan, see `enter.rs`): non-dumpable → close inherited fds
//! → the container's cgroup (unless it was cloned into it) → the container's namespaces, with
//! one setns through a pidfd of the container's first process → fork, because a pid namespace
//! applies to children only; it reports the child's host pid and exits.
//!
//! The child, inside every namespace: session (and a pty in the container's devpts with
//! `--tty`) → rlimits → capabilities and identity, as the container's first process gets them
//! (`child.rs`, the same operations) → no_new_privs → working directory → signals → umask →
//! close-on-exec on every fd but 0-2 and `--preserve-fds` → seccomp last → execve.
//!
//! Both sequences are written against [`EnterOps`] (the [`SetupOps`] of the first process and
//! four more), so their order is unit-tested without root. A failure is reported to crabcan as
//! one `Failed` message naming the step, and the process exits.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};

use crate::config::{ContainerConfig, Terminal};
use crate::error::EXIT_SETUP_FAILED;
use crate::exec;
use crate::handshake::{Channel, Message};
use crate::setup_ops::{Failure, LinuxOps, ParentLink, SetupOps};

/// One namespace of the container to join: its `CLONE_NEW*` flag and a file of it
/// (`/proc/<pid>/ns/<kind>`), for kernels that cannot setns through a pidfd (before 5.8).
pub(crate) struct Namespace {
    pub(crate) flag: CloneFlags,
    pub(crate) file: OwnedFd,
}

/// What the entering process takes into the container, all opened by crabcan beforehand.
pub(crate) struct Entry {
    /// A pidfd of the container's first process, checked to be that process.
    pub(crate) pidfd: OwnedFd,
    /// Its namespaces that differ from crabcan's, user first.
    pub(crate) namespaces: Vec<Namespace>,
    /// Files that move the writer into the container's cgroup when it writes `0` to them (v1
    /// `tasks`, cgroup2 `cgroup.procs`); empty when the process was cloned into it.
    pub(crate) cgroup_files: Vec<OwnedFd>,
    /// `--preserve-fds`: descriptors 3 to 3+N-1 pass to the command.
    pub(crate) preserved: u32,
}

/// Which side of the fork into the pid namespace.
pub(crate) enum Forked {
    /// The entering process; the child has this host pid.
    Parent(Pid),
    /// The child, which becomes the command.
    Child,
}

/// The steps of entering that the container's first process does not have.
pub(crate) trait EnterOps: SetupOps {
    /// Closes every descriptor from 3 + `preserved` up but the handshake socket and `keep`.
    fn close_inherited_fds_but(&mut self, preserved: u32, keep: &[RawFd]) -> Result<(), Failure>;
    /// Joins `namespaces` of the process behind `pidfd`.
    fn enter_namespaces(&mut self, pidfd: OwnedFd, namespaces: Vec<Namespace>) -> Result<(), Failure>;
    /// Forks; the child is in the pid namespace just joined.
    fn fork_into_pid_namespace(&mut self) -> Result<Forked, Failure>;
    /// Marks every descriptor from 3 + `preserved` up close-on-exec.
    fn close_fds_on_exec_but_preserved(&mut self, preserved: u32) -> Result<(), Failure>;
}

/// Runs in the process crabcan forked to enter the container. Never returns: the entering
/// process exits once it has forked the command's process, which execs or exits.
pub(crate) fn run(config: &ContainerConfig, entry: Entry, mut channel: Channel) -> ! {
    let mut ops = LinuxOps::new(&channel);
    let preserved = entry.preserved;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match enter(entry, &mut ops)? {
        Forked::Parent(child) => channel
            .send(&Message::Entered { pid: child.as_raw() })
            .map_err(|errno| Failure::new("handshake", errno, "sending Entered to crabcan")),
        Forked::Child => match set_up_and_exec(config, preserved, &mut channel, &mut ops)? {},
    }));
    let failure = match outcome {
        // SAFETY: _exit ends the entering process without running destructors that belong to
        // crabcan's copy of the program state.
        Ok(Ok(())) => unsafe { libc::_exit(0) },
        Ok(Err(failure)) => failure,
        Err(_) => Failure::new(
            "setup",
            Errno::EIO,
            "crabcan's exec code panicked (a bug: please report it)",
        ),
    };
    let _ = channel.send(&Message::Failed {
        step: failure.step.to_owned(),
        errno: failure.errno as i32,
        detail: failure.detail,
    });
    // SAFETY: as above.
    unsafe { libc::_exit(EXIT_SETUP_FAILED) }
}

/// The entering process's steps, up to the fork.
fn enter(entry: Entry, ops: &mut dyn EnterOps) -> Result<Forked, Failure> {
    // Before anything of the container is joined: no process of it may read this one's memory,
    // descriptors or /proc/<pid>/exe.
    ops.hide_from_proc()?;
    let mut keep: Vec<RawFd> = vec![entry.pidfd.as_raw_fd()];
    keep.extend(entry.namespaces.iter().map(|namespace| namespace.file.as_raw_fd()));
    keep.extend(entry.cgroup_files.iter().map(AsRawFd::as_raw_fd));
    ops.close_inherited_fds_but(entry.preserved, &keep)?;
    // The cgroup first: its namespace, joined next, is rooted at the cgroup the process is in.
    if !entry.cgroup_files.is_empty() {
        ops.join_cgroup(entry.cgroup_files)?;
    }
    ops.enter_namespaces(entry.pidfd, entry.namespaces)?;
    ops.fork_into_pid_namespace()
}

/// The command's process, inside the container: the steps of the container's first process
/// from its session on (`child.rs`), then execve. Returns only on failure.
fn set_up_and_exec(
    config: &ContainerConfig,
    preserved: u32,
    parent: &mut dyn ParentLink,
    ops: &mut dyn EnterOps,
) -> Result<Infallible, Failure> {
    ops.limit_resources(config.file_limit(), &config.rlimits)?;
    ops.new_session()?;
    if config.terminal == Terminal::Pty {
        let master = ops.open_pty()?;
        parent.send(&Message::PtyMaster, &[master.as_raw_fd()])?;
    }
    // As for the first process: without no_new_privs the filter needs CAP_SYS_ADMIN, held now.
    let seccomp_now = config.seccomp.as_ref().filter(|_| !config.no_new_privs);
    if let Some(filter) = seccomp_now {
        ops.load_seccomp(filter)?;
    }
    let bounding = config
        .capability_sets
        .as_ref()
        .map_or(&config.capabilities, |sets| &sets.bounding);
    ops.restrict_bounding_set(bounding)?;
    ops.switch_identity(config.uid, config.gid, &config.additional_gids)?;
    ops.apply_capability_sets(&config.capabilities, config.capability_sets.as_ref(), config.uid == 0)?;
    if config.no_new_privs {
        ops.set_no_new_privs()?;
    }
    // After the identity change, so the user's own permissions decide (as runc does).
    ops.enter_working_directory(&config.workdir)?;
    let prepared = exec::prepare(&config.argv, &config.environment())
        .map_err(|error| Failure::new("exec", Errno::EINVAL, error.to_string()))?;
    ops.find_program(&prepared)?;
    ops.reset_signals()?;
    if let Some(mask) = config.umask {
        ops.set_umask(mask)?;
    }
    ops.close_fds_on_exec_but_preserved(preserved)?;
    if let (Some(filter), None) = (&config.seccomp, seccomp_now) {
        ops.load_seccomp(filter)?;
    }
    let errno = ops.exec(&prepared);
    if errno == Errno::ENOENT {
        if let Some((program, interpreter)) = exec::missing_interpreter(&prepared) {
            return Err(Failure::new(
                crate::child::EXEC_INTERPRETER_STEP,
                errno,
                format!("{program}\n{interpreter}"),
            ));
        }
    }
    Err(Failure::new("exec", errno, prepared.program.clone()))
}

/// The namespaces in the order they are joined one by one where setns cannot take a pidfd:
/// the user namespace first (it grants the rights to join the others), the cgroup one last.
pub(crate) const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
];

impl EnterOps for LinuxOps {
    fn close_inherited_fds_but(&mut self, preserved: u32, keep: &[RawFd]) -> Result<(), Failure> {
        let mut all = keep.to_vec();
        all.push(self.handshake_fd());
        exec::close_fds_except(3 + preserved, &all).map_err(|errno| {
            Failure::new(
                "file descriptors",
                errno,
                format!("closing inherited descriptors: {errno}"),
            )
        })
    }

    fn enter_namespaces(&mut self, pidfd: OwnedFd, namespaces: Vec<Namespace>) -> Result<(), Failure> {
        let flags = namespaces
            .iter()
            .fold(CloneFlags::empty(), |flags, namespace| flags | namespace.flag);
        if flags.is_empty() {
            return Ok(());
        }
        // One call joins them all at once, and only the process the pidfd holds can be joined.
        match nix::sched::setns(pidfd.as_fd(), flags) {
            Ok(()) => return Ok(()),
            // A kernel before 5.8 takes only namespace files.
            Err(Errno::EINVAL) => log::debug!("setns through a pidfd refused; joining namespace by namespace"),
            Err(errno) => {
                return Err(Failure::new(
                    "namespaces",
                    errno,
                    format!("setns(pidfd of the container's process, {flags:?}): {errno}"),
                ))
            }
        }
        for namespace in &namespaces {
            nix::sched::setns(namespace.file.as_fd(), namespace.flag).map_err(|errno| {
                Failure::new(
                    "namespaces",
                    errno,
                    format!("setns(/proc/<pid>/ns file, {:?}): {errno}", namespace.flag),
                )
            })?;
        }
        Ok(())
    }

    fn fork_into_pid_namespace(&mut self) -> Result<Forked, Failure> {
        // SAFETY: the entering process is a fork of single-threaded crabcan, so the child may
        // run any code; it ends in execve or _exit.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Parent { child }) => Ok(Forked::Parent(child)),
            Ok(ForkResult::Child) => Ok(Forked::Child),
            Err(errno) => Err(Failure::new(
                "namespaces",
                errno,
                format!("fork into the container's pid namespace: {errno}"),
            )),
        }
    }

    fn close_fds_on_exec_but_preserved(&mut self, preserved: u32) -> Result<(), Failure> {
        exec::mark_fds_cloexec_from(3 + preserved).map_err(|errno| {
            Failure::new(
                "file descriptors",
                errno,
                format!("close_range({}, ~0, CLOSE_RANGE_CLOEXEC): {errno}", 3 + preserved),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::tests::{Log, Recorder};

    impl EnterOps for Recorder {
        fn close_inherited_fds_but(&mut self, _: u32, keep: &[RawFd]) -> Result<(), Failure> {
            assert_eq!(
                keep.len(),
                2 + self.tasks_files,
                "the pidfd, one namespace, the cgroup files"
            );
            self.note("close_inherited_fds_but")
        }
        fn enter_namespaces(&mut self, _: OwnedFd, _: Vec<Namespace>) -> Result<(), Failure> {
            self.note("enter_namespaces")
        }
        fn fork_into_pid_namespace(&mut self) -> Result<Forked, Failure> {
            self.note("fork_into_pid_namespace")?;
            Ok(Forked::Child)
        }
        fn close_fds_on_exec_but_preserved(&mut self, _: u32) -> Result<(), Failure> {
            self.note("close_fds_on_exec_but_preserved")
        }
    }

    fn entry(cgroup_files: usize) -> Entry {
        Entry {
            pidfd: Recorder::dev_null(),
            namespaces: vec![Namespace {
                flag: CloneFlags::CLONE_NEWNS,
                file: Recorder::dev_null(),
            }],
            cgroup_files: (0..cgroup_files).map(|_| Recorder::dev_null()).collect(),
            preserved: 0,
        }
    }

    /// Both sequences against a recorder: the steps and the failure.
    fn record(config: &ContainerConfig, cgroup_files: usize, fail_at: Option<&'static str>) -> (Vec<String>, Failure) {
        let log: Log = Log::default();
        let mut ops = Recorder {
            log: log.clone(),
            fail_at,
            tasks_files: cgroup_files,
            namespace_fds: 0,
        };
        let mut parent = Recorder {
            log: log.clone(),
            fail_at: None,
            tasks_files: 0,
            namespace_fds: 0,
        };
        let failure = match enter(entry(cgroup_files), &mut ops) {
            Err(failure) => failure,
            Ok(Forked::Parent(_)) => unreachable!("the recorder forks into the child"),
            Ok(Forked::Child) => match set_up_and_exec(config, 0, &mut parent, &mut ops) {
                Err(failure) => failure,
                Ok(never) => match never {},
            },
        };
        let steps = log.borrow().clone();
        (steps, failure)
    }

    use crate::test_support::{position_of as at, recorded_config as config};

    #[test]
    fn entering_runs_in_the_safe_order() {
        let (steps, failure) = record(&config(), 2, None);
        assert_eq!(failure.step, "exec", "the fake exec fails with ENOENT");
        let order = [
            "hide_from_proc",
            "close_inherited_fds_but",
            "join_cgroup",
            "enter_namespaces",
            "fork_into_pid_namespace",
            "limit_resources",
            "new_session",
            "restrict_bounding_set",
            "switch_identity",
            "apply_capability_sets(root)",
            "set_no_new_privs",
            "enter_working_directory",
            "find_program",
            "reset_signals",
            "close_fds_on_exec_but_preserved",
            "load_seccomp",
            "exec",
        ];
        for pair in order.windows(2) {
            assert!(
                at(&steps, pair[0]) < at(&steps, pair[1]),
                "{} must come before {}: {steps:?}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(steps[0], "hide_from_proc", "non-dumpable before anything else");
        assert_eq!(at(&steps, "load_seccomp") + 1, at(&steps, "exec"), "seccomp last");
        for never in [
            "die_with_parent",
            "become_namespace_root",
            "build_filesystem",
            "open_pty",
        ] {
            assert!(!steps.iter().any(|s| s == never), "{never} in {steps:?}");
        }
    }

    #[test]
    fn a_process_cloned_into_its_cgroup_writes_no_cgroup_file() {
        let (steps, _) = record(&config(), 0, None);
        assert!(!steps.iter().any(|s| s == "join_cgroup"), "{steps:?}");
    }

    #[test]
    fn a_tty_is_opened_in_the_new_session_and_handed_over() {
        let mut config = config();
        config.terminal = Terminal::Pty;
        let (steps, _) = record(&config, 1, None);
        assert!(at(&steps, "new_session") < at(&steps, "open_pty"));
        assert!(at(&steps, "open_pty") < at(&steps, "send PtyMaster with 1 fds"));
        assert!(at(&steps, "send PtyMaster with 1 fds") < at(&steps, "restrict_bounding_set"));
    }

    #[test]
    fn without_no_new_privs_the_filter_comes_before_the_capabilities_drop() {
        let mut config = config();
        config.no_new_privs = false;
        config.uid = 1000;
        let (steps, _) = record(&config, 1, None);
        assert!(at(&steps, "load_seccomp") < at(&steps, "restrict_bounding_set"));
        assert_eq!(steps.iter().filter(|s| *s == "load_seccomp").count(), 1);
        assert!(!steps.iter().any(|s| s == "set_no_new_privs"));
        assert!(steps.contains(&"apply_capability_sets(none)".to_owned()));
    }

    #[test]
    fn a_failing_join_stops_before_the_fork() {
        let (steps, failure) = record(&config(), 1, Some("enter_namespaces"));
        assert_eq!(failure.detail, "enter_namespaces");
        assert_eq!(steps.last().map(String::as_str), Some("enter_namespaces"));
    }
}
