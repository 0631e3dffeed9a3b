//! Everything the container's first process does between clone and execve, in order:
//! close inherited fds → wait for the id maps → crabcan's CPUs back → non-dumpable → joined
//! net/ipc/uts namespaces → root of the user namespace → a session keyring of its own →
//! hostname → loopback → mounts → wait until it is in its cgroup → (hooks: prestart and
//! createRuntime by crabcan, then createContainer) → protections and pivot_root → rlimits →
//! session/pty → cgroup namespace (new or joined) → a joined user namespace → capabilities and
//! identity → no_new_privs → working directory → signals → held until released → personality
//! → close fds → seccomp → (startContainer hooks) → execve.
//!
//! The sequence is written once, against [`SetupOps`] and [`ParentLink`], so its order is
//! unit-tested without root. Any failure is reported to the parent as one `Failed` message
//! naming the step (and, once released through the start FIFO, to whoever released it), and
//! the process exits; it never returns into the parent's code.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::cgroupfs;
use crate::config::{ContainerConfig, SessionKeyring, StartGate, Terminal};
use crate::cpu_placement::CpuPlacement;
use crate::error::EXIT_SETUP_FAILED;
use crate::handshake::{Channel, Message};
use crate::hooks::HookKind;
use crate::idmap::ReceivedTrees;
use crate::namespaces::{NamespaceKind, NamespaceMode, ReceivedNamespaces};
use crate::setup_ops::{Failure, LinuxOps, ParentLink, SetupOps};
use crate::{exec, mounts};
use crabcan_cgroups::{Layout, ProcCgroup};

/// The step of a `Failed` message whose detail is `PROGRAM\nINTERPRETER`: execve found the
/// program but not its `#!` interpreter or dynamic loader.
pub(crate) const EXEC_INTERPRETER_STEP: &str = "exec interpreter";

/// Runs in the cloned child. Never returns. `cgroup_layout` is the host's cgroup layout when
/// the container has a cgroup of its own.
pub fn run(
    config: &ContainerConfig,
    cgroup_layout: Option<Layout>,
    mut channel: Channel,
    placement: CpuPlacement,
) -> ! {
    let mut ops = LinuxOps::new(&channel);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        set_up_and_exec(config, cgroup_layout, placement, &mut channel, &mut ops)
    }));
    let failure = match outcome {
        Ok(Err(failure)) => failure,
        Ok(Ok(never)) => match never {},
        Err(_) => Failure::new(
            "setup",
            Errno::EIO,
            "crabcan's setup code panicked (a bug: please report it)",
        ),
    };
    ops.tell_starter(&failure);
    let _ = channel.send(&Message::Failed {
        step: failure.step.to_owned(),
        errno: failure.errno as i32,
        detail: failure.detail,
    });
    // SAFETY: _exit ends this process at once without running destructors or atexit handlers,
    // which belong to the parent's copy of the program state.
    unsafe { libc::_exit(EXIT_SETUP_FAILED) }
}

/// The setup sequence. Returns only on failure (success ends in execve).
fn set_up_and_exec(
    config: &ContainerConfig,
    cgroup_layout: Option<Layout>,
    placement: CpuPlacement,
    parent: &mut dyn ParentLink,
    ops: &mut dyn SetupOps,
) -> Result<Infallible, Failure> {
    if !config.survives_crabcan {
        ops.die_with_parent()?;
    }
    // Nothing crabcan's caller had open may reach the container, not even during setup (a
    // directory fd and `--workdir /proc/self/fd/N` would be an escape, CVE-2024-21626), but
    // the descriptors it asked to pass (which only the command gets, at execve).
    ops.close_inherited_fds(config.preserved_fds)?;
    if let StartGate::Fifo(path) = &config.start_gate {
        ops.hold_start_fifo(path)?;
    }
    // On cgroup v1 the hierarchies the process moves into are its own; the others stay
    // crabcan's. Told apart by comparing its cgroups before and after the move, both read
    // through its /proc directory opened now: the move may come after pivot_root, when /proc
    // is whatever the rootfs holds.
    let mut proc_dir = match cgroup_layout {
        Some(Layout::V1 | Layout::Hybrid) => Some(ops.open_own_proc_dir()?),
        Some(Layout::V2) | None => None,
    };
    let cgroups_before = match &proc_dir {
        Some(dir) => ops.own_cgroups(dir.as_fd())?,
        None => Vec::new(),
    };
    let (go, mut go_fds) = parent.wait_for(Message::GO)?;
    let Message::Go { idmapped, pid } = go else {
        unreachable!("wait_for returns the kind it was asked for")
    };
    // Set up on another CPU than crabcan's until now (see cpu_placement); the container gets
    // crabcan's CPUs.
    ops.restore_cpu_affinity(&placement)?;
    let wrong_count = || {
        Failure::new(
            "handshake",
            Errno::EPROTO,
            "Go came with the wrong number of mount trees and namespaces",
        )
    };
    let mut namespaces = ReceivedNamespaces::split_off(&mut go_fds, &config.namespaces).ok_or_else(wrong_count)?;
    let trees = ReceivedTrees::new(&idmapped, go_fds).ok_or_else(wrong_count)?;
    // Non-dumpable only now: until its maps are written the process must stay dumpable, or
    // /proc/<pid>/ is root's and an ordinary user's crabcan (or newuidmap, which checks the
    // owner) cannot write them. Nothing of the container runs before this point.
    ops.hide_from_proc()?;

    // Joined namespaces: net, ipc and uts before anything uses them; the cgroup namespace where
    // a new one would be made, the user namespace after everything that needs the host's root.
    for kind in [NamespaceKind::Net, NamespaceKind::Ipc, NamespaceKind::Uts] {
        if let Some(fd) = namespaces.take(kind) {
            ops.join_namespace(kind, fd)?;
        }
    }
    ops.become_namespace_root()?;
    if let SessionKeyring::New { name } = &config.session_keyring {
        let in_user_namespace = config.namespaces.user != NamespaceMode::Host;
        ops.join_session_keyring(name.as_deref(), in_user_namespace)?;
    }
    if config.set_hostname || config.domainname.is_some() {
        let hostname = config.set_hostname.then_some(config.hostname.as_str());
        ops.set_hostname(hostname, config.domainname.as_deref())?;
    }
    if config.namespaces.is_new(NamespaceKind::Net) {
        ops.bring_up_loopback()?;
    }
    let plan = config.mount_plan.clone().unwrap_or_else(|| mounts::plan(config));
    let (mounts, protections_and_pivot) = mounts::split_for_hooks(&plan);
    ops.build_filesystem(&config.rootfs, mounts, trees)?;

    // The process must be in its cgroup before the hooks run (they may look for it there) and
    // before its cgroup namespace is made (rooted there). The parent makes the cgroup while the
    // process sets up its mounts, so the later the process waits for it, the less it waits:
    // without hooks, only once the filesystem is finished.
    let hooks = &config.hooks;
    let mut cgroups_after = None;
    if hooks.run_before_pivot_root() {
        cgroups_after = Some(join_own_cgroup(parent, ops, proc_dir.take())?);
    }

    // The hooks of the runtime and of the container's namespaces see its mounts before
    // pivot_root, the host's root still there.
    if hooks.run_in_runtime_namespace() {
        parent.send(&Message::RuntimeHooks, &[])?;
        parent.wait_for(Message::RuntimeHooksDone)?;
    }
    if !hooks.create_container.is_empty() {
        let state = hooks.state_json(pid, "creating");
        ops.run_hooks(HookKind::CreateContainer, &hooks.create_container, &state)?;
    }
    ops.finish_filesystem(protections_and_pivot)?;
    log::debug!("filesystem ready, pivoted into {}", config.rootfs.display());
    ops.limit_resources(config.file_limit(), &config.rlimits)?;
    ops.new_session()?;
    if config.terminal == Terminal::Pty {
        let master = ops.open_pty()?;
        parent.send(&Message::PtyMaster, &[master.as_raw_fd()])?;
    }

    let cgroups_after = match cgroups_after {
        Some(cgroups) => cgroups,
        None => join_own_cgroup(parent, ops, proc_dir.take())?,
    };
    match namespaces.take(NamespaceKind::Cgroup) {
        Some(fd) => ops.join_namespace(NamespaceKind::Cgroup, fd)?,
        None => ops.enter_cgroup_namespace()?,
    }
    let view = match config.cgroup_view {
        true => cgroupfs::plan(cgroup_layout, &cgroups_before, &cgroups_after),
        false => cgroupfs::CgroupView::None,
    };
    ops.mount_cgroup_view(&view)?;
    // No capability over the host's namespaces is left after this.
    if let Some(fd) = namespaces.take(NamespaceKind::User) {
        ops.join_namespace(NamespaceKind::User, fd)?;
    }

    // A filter needs no_new_privs or CAP_SYS_ADMIN to be loaded. Without no_new_privs (an OCI
    // config can ask for that) it is loaded now, while the capability is still held, as runc
    // does; the rest of the setup then runs under it.
    let filter_now = !config.no_new_privs;
    if filter_now {
        load_filter(config, ops)?;
    }

    // The bounding set needs CAP_SETPCAP, so it shrinks before the identity changes; the
    // parent-death signal is reset by the kernel on every credential change.
    let bounding = config
        .capability_sets
        .as_ref()
        .map_or(&config.capabilities, |sets| &sets.bounding);
    ops.restrict_bounding_set(bounding)?;
    ops.switch_identity(config.uid, config.gid, &config.additional_gids)?;
    ops.apply_capability_sets(&config.capabilities, config.capability_sets.as_ref(), config.uid == 0)?;
    if !config.survives_crabcan {
        ops.die_with_parent()?;
    }
    if config.no_new_privs {
        ops.set_no_new_privs()?;
    }

    ops.enter_working_directory(&config.workdir)?;
    let prepared = exec::prepare(&config.argv, &config.environment())
        .map_err(|error| Failure::new("exec", Errno::EINVAL, error.to_string()))?;
    ops.find_program(&prepared)?;
    ops.reset_signals()?;

    log::debug!("identity, capabilities and limits applied");
    parent.send(&Message::Ready, &[])?;
    match config.start_gate {
        StartGate::Parent => drop(parent.wait_for(Message::Start)?),
        StartGate::Fifo(_) => ops.wait_for_fifo_reader()?,
        StartGate::Immediately => {}
    }

    if config.init {
        ops.start_init(config.seccomp.as_ref())?;
    }
    if let Some(mask) = config.umask {
        ops.set_umask(mask)?;
    }
    if let Some(personality) = config.personality {
        ops.set_personality(personality)?;
    }
    // Last, in this order: nothing but stdio (and the descriptors the caller passes) crosses
    // execve, and the filter (which needs no_new_privs) is the very last thing before it, but
    // for the startContainer hooks, which run as the command would: confined by it (as runc's).
    ops.close_fds_on_exec(config.preserved_fds)?;
    if !filter_now {
        load_filter(config, ops)?;
    }
    if !hooks.start_container.is_empty() {
        let state = hooks.state_json(pid, "created");
        ops.run_hooks(HookKind::StartContainer, &hooks.start_container, &state)?;
    }
    let errno = ops.exec(&prepared);
    if errno == Errno::ENOENT {
        if let Some((program, interpreter)) = exec::missing_interpreter(&prepared) {
            return Err(Failure::new(
                EXEC_INTERPRETER_STEP,
                errno,
                format!("{program}\n{interpreter}"),
            ));
        }
    }
    Err(Failure::new("exec", errno, prepared.program.clone()))
}

/// Waits for the parent's `Joined`: the cgroup exists, and on cgroup v1 its `tasks` files
/// come with it, through which the process moves itself in. Returns the process's cgroups
/// after the move, read through `proc_dir` (on v1; empty otherwise), which goes then.
fn join_own_cgroup(
    parent: &mut dyn ParentLink,
    ops: &mut dyn SetupOps,
    proc_dir: Option<OwnedFd>,
) -> Result<Vec<ProcCgroup>, Failure> {
    let (_, tasks_files) = parent.wait_for(Message::Joined)?;
    if !tasks_files.is_empty() {
        ops.join_cgroup(tasks_files)?;
    }
    match proc_dir {
        Some(dir) => ops.own_cgroups(dir.as_fd()),
        None => Ok(Vec::new()),
    }
}

/// Loads the container's seccomp filter: the learning filter of a learning run (its listener
/// handed to crabcan), else the profile's, if any.
fn load_filter(config: &ContainerConfig, ops: &mut dyn SetupOps) -> Result<(), Failure> {
    match (&config.learning_filter, &config.seccomp) {
        (Some(learning), _) => ops.start_learning(learning),
        (None, Some(filter)) => ops.load_seccomp(filter),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::RefCell;
    use std::os::fd::{BorrowedFd, RawFd};
    use std::path::Path;
    use std::rc::Rc;

    use crabcan_seccomp::{CompiledFilter, Profile};

    use super::*;
    use crate::capabilities::CapabilitySet;
    use crate::cgroupfs::CgroupView;
    use crate::config::Personality;
    use crate::exec::PreparedExec;
    use crate::hooks::Hook;
    use crate::mounts::MountStep;
    use crate::namespaces::NamespaceMode;

    pub(crate) type Log = Rc<RefCell<Vec<String>>>;

    /// Records every step; fails the one named `fail_at`. (`enter_steps.rs` records the steps
    /// of `crabcan exec` with it too.)
    pub(crate) struct Recorder {
        pub(crate) log: Log,
        pub(crate) fail_at: Option<&'static str>,
        pub(crate) tasks_files: usize,
        /// The namespace descriptors that come with Go.
        pub(crate) namespace_fds: usize,
    }

    impl Recorder {
        pub(crate) fn note(&mut self, step: &'static str) -> Result<(), Failure> {
            self.log.borrow_mut().push(step.to_owned());
            match self.fail_at {
                Some(failing) if failing == step => Err(Failure::new("test", Errno::EPERM, step)),
                _ => Ok(()),
            }
        }

        pub(crate) fn dev_null() -> OwnedFd {
            std::fs::File::open("/dev/null").unwrap().into()
        }
    }

    impl ParentLink for Recorder {
        fn wait_for(&mut self, expected: Message) -> Result<(Message, Vec<OwnedFd>), Failure> {
            let shown = match &expected {
                Message::Go { .. } => "Go".to_owned(),
                other => format!("{other:?}"),
            };
            self.log.borrow_mut().push(format!("wait {shown}"));
            let fds = match expected {
                Message::Joined => (0..self.tasks_files).map(|_| Self::dev_null()).collect(),
                Message::Go { .. } => (0..self.namespace_fds).map(|_| Self::dev_null()).collect(),
                _ => vec![],
            };
            let message = match expected {
                Message::Go { idmapped, .. } => Message::Go { idmapped, pid: 4242 },
                other => other,
            };
            Ok((message, fds))
        }

        fn send(&mut self, message: &Message, fds: &[RawFd]) -> Result<(), Failure> {
            self.log
                .borrow_mut()
                .push(format!("send {message:?} with {} fds", fds.len()));
            Ok(())
        }
    }

    /// Recorder methods for the steps whose arguments do not matter to the order: each just
    /// notes its own name.
    macro_rules! noted {
        ($($step:ident($($arg:ty),*);)*) => {
            $(fn $step(&mut self, $(_: $arg),*) -> Result<(), Failure> {
                self.note(stringify!($step))
            })*
        };
    }

    impl SetupOps for Recorder {
        noted! {
            die_with_parent();
            hide_from_proc();
            restore_cpu_affinity(&CpuPlacement);
            close_inherited_fds(u32);
            hold_start_fifo(&Path);
            become_namespace_root();
            join_session_keyring(Option<&str>, bool);
            set_personality(Personality);
            set_hostname(Option<&str>, Option<&str>);
            bring_up_loopback();
            limit_resources(crate::config::FileLimit, &[crate::config::Rlimit]);
            new_session();
            enter_cgroup_namespace();
            restrict_bounding_set(&CapabilitySet);
            switch_identity(u32, u32, &[u32]);
            set_umask(u32);
            set_no_new_privs();
            enter_working_directory(&Path);
            reset_signals();
            wait_for_fifo_reader();
            start_init(Option<&CompiledFilter>);
            close_fds_on_exec(u32);
            load_seccomp(&CompiledFilter);
            start_learning(&crabcan_seccomp::LearningFilter);
        }
        fn join_namespace(&mut self, kind: NamespaceKind, _: OwnedFd) -> Result<(), Failure> {
            self.log.borrow_mut().push(format!("join_namespace({kind})"));
            Ok(())
        }
        fn build_filesystem(&mut self, _: &Path, plan: &[MountStep], _: ReceivedTrees) -> Result<(), Failure> {
            assert!(!plan.contains(&MountStep::PivotRoot));
            self.note("build_filesystem")
        }
        fn finish_filesystem(&mut self, plan: &[MountStep]) -> Result<(), Failure> {
            assert_eq!(plan.last(), Some(&MountStep::PivotRoot));
            self.note("finish_filesystem")
        }
        fn run_hooks(&mut self, kind: HookKind, hooks: &[Hook], state: &[u8]) -> Result<(), Failure> {
            assert!(!hooks.is_empty());
            let state: serde_json::Value = serde_json::from_slice(state).unwrap();
            assert_eq!(state["pid"], 4242, "the pid crabcan sent with Go");
            self.note(match (kind, state["status"].as_str()) {
                (HookKind::CreateContainer, Some("creating")) => "run_hooks(createContainer)",
                (HookKind::StartContainer, Some("created")) => "run_hooks(startContainer)",
                _ => "run_hooks(wrong kind or status)",
            })
        }
        fn open_pty(&mut self) -> Result<OwnedFd, Failure> {
            self.note("open_pty")?;
            Ok(Self::dev_null())
        }
        fn join_cgroup(&mut self, files: Vec<OwnedFd>) -> Result<(), Failure> {
            assert_eq!(files.len(), self.tasks_files);
            self.note("join_cgroup")
        }
        fn open_own_proc_dir(&mut self) -> Result<OwnedFd, Failure> {
            self.note("open_own_proc_dir")?;
            Ok(Self::dev_null())
        }
        fn own_cgroups(&mut self, _: BorrowedFd<'_>) -> Result<Vec<ProcCgroup>, Failure> {
            self.note("own_cgroups")?;
            Ok(Vec::new())
        }
        fn mount_cgroup_view(&mut self, view: &CgroupView) -> Result<(), Failure> {
            self.note(match view {
                CgroupView::None => "mount_cgroup_view(none)",
                _ => "mount_cgroup_view",
            })
        }
        fn apply_capability_sets(
            &mut self,
            _: &CapabilitySet,
            _: Option<&crate::config::CapabilitySets>,
            as_root: bool,
        ) -> Result<(), Failure> {
            self.note(if as_root {
                "apply_capability_sets(root)"
            } else {
                "apply_capability_sets(none)"
            })
        }
        fn find_program(&mut self, _: &PreparedExec) -> Result<(), Failure> {
            self.note("find_program")
        }
        fn exec(&mut self, _: &PreparedExec) -> Errno {
            let _ = self.note("exec");
            Errno::ENOENT
        }
    }

    /// Runs the sequence against a recorder; returns the steps and the failure.
    fn record(config: &ContainerConfig, fail_at: Option<&'static str>, tasks_files: usize) -> (Vec<String>, Failure) {
        record_on(config, Some(Layout::V2), fail_at, tasks_files)
    }

    fn record_on(
        config: &ContainerConfig,
        layout: Option<Layout>,
        fail_at: Option<&'static str>,
        tasks_files: usize,
    ) -> (Vec<String>, Failure) {
        let log: Log = Rc::default();
        let namespace_fds = config.namespaces.joined_by_child().count();
        let mut parent = Recorder {
            log: log.clone(),
            fail_at: None,
            tasks_files,
            namespace_fds,
        };
        let mut ops = Recorder {
            log: log.clone(),
            fail_at,
            tasks_files,
            namespace_fds,
        };
        let failure = match set_up_and_exec(config, layout, CpuPlacement::of_this_process(), &mut parent, &mut ops) {
            Err(failure) => failure,
            Ok(never) => match never {},
        };
        let steps = log.borrow().clone();
        (steps, failure)
    }

    use crate::test_support::{position_of as at, recorded_config as config};

    #[test]
    fn the_steps_run_in_the_safe_order() {
        let (steps, failure) = record(&config(), None, 0);
        assert_eq!(failure.step, "exec", "the fake exec fails with ENOENT");
        let order = [
            "close_inherited_fds",
            "wait Go",
            "become_namespace_root",
            "join_session_keyring",
            "set_hostname",
            "build_filesystem",
            "finish_filesystem",
            "limit_resources",
            "new_session",
            "wait Joined",
            "enter_cgroup_namespace",
            "restrict_bounding_set",
            "switch_identity",
            "apply_capability_sets(root)",
            "set_no_new_privs",
            "enter_working_directory",
            "reset_signals",
            "send Ready with 0 fds",
            "wait Start",
            "close_fds_on_exec",
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
        // Seccomp is the very last thing before execve.
        assert_eq!(at(&steps, "load_seccomp") + 1, at(&steps, "exec"));
        // The parent-death signal is set again after the identity change resets it.
        assert!(steps.iter().rposition(|s| s == "die_with_parent").unwrap() > at(&steps, "switch_identity"));
        assert!(
            !steps.iter().any(|s| s == "join_cgroup"),
            "no tasks files: nothing to join"
        );
        // Nothing a plain container does not ask for: no hooks and no round trip for them, no
        // personality.
        for absent in ["send RuntimeHooks with 0 fds", "set_personality"] {
            assert!(!steps.iter().any(|s| s == absent), "{absent}: {steps:?}");
        }
        assert!(!steps.iter().any(|s| s.starts_with("run_hooks")), "{steps:?}");
    }

    fn with_hooks(kinds: &[HookKind]) -> ContainerConfig {
        let mut config = config();
        let hooks = &mut config.hooks;
        for kind in kinds {
            let list = match kind {
                HookKind::Prestart => &mut hooks.prestart,
                HookKind::CreateRuntime => &mut hooks.create_runtime,
                HookKind::CreateContainer => &mut hooks.create_container,
                HookKind::StartContainer => &mut hooks.start_container,
                HookKind::Poststart | HookKind::Poststop => unreachable!("not crabcan-core's"),
            };
            list.push(Hook::new("/bin/true"));
        }
        config
    }

    #[test]
    fn hooks_run_between_the_mounts_and_pivot_root_and_just_before_execve() {
        let config = with_hooks(&[
            HookKind::CreateRuntime,
            HookKind::CreateContainer,
            HookKind::StartContainer,
        ]);
        let (steps, _) = record(&config, None, 0);
        let order = [
            "build_filesystem",
            "wait Joined",
            "send RuntimeHooks with 0 fds",
            "wait RuntimeHooksDone",
            "run_hooks(createContainer)",
            "finish_filesystem",
            "send Ready with 0 fds",
            "wait Start",
            "close_fds_on_exec",
            "load_seccomp",
            "run_hooks(startContainer)",
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
        assert_eq!(at(&steps, "run_hooks(startContainer)") + 1, at(&steps, "exec"));
    }

    #[test]
    fn only_runtime_hooks_make_a_round_trip() {
        let (steps, _) = record(&with_hooks(&[HookKind::CreateContainer]), None, 0);
        assert!(!steps.iter().any(|s| s.contains("RuntimeHooks")), "{steps:?}");
        assert!(at(&steps, "run_hooks(createContainer)") < at(&steps, "finish_filesystem"));
        let (steps, _) = record(&with_hooks(&[HookKind::Prestart]), None, 0);
        assert!(at(&steps, "send RuntimeHooks with 0 fds") < at(&steps, "finish_filesystem"));
        assert!(!steps.iter().any(|s| s.starts_with("run_hooks")), "{steps:?}");
    }

    #[test]
    fn a_failing_create_container_hook_stops_before_pivot_root() {
        let config = with_hooks(&[HookKind::CreateContainer]);
        let (steps, failure) = record(&config, Some("run_hooks(createContainer)"), 0);
        assert_eq!(failure.detail, "run_hooks(createContainer)");
        assert!(!steps
            .iter()
            .any(|s| s == "finish_filesystem" || s.starts_with("send Ready")));
    }

    #[test]
    fn the_personality_is_set_just_before_execve() {
        let mut config = config();
        config.personality = Some(Personality::Linux32);
        let (steps, _) = record(&config, None, 0);
        assert!(at(&steps, "wait Start") < at(&steps, "set_personality"));
        assert!(at(&steps, "set_personality") < at(&steps, "close_fds_on_exec"));
    }

    #[test]
    fn a_new_session_keyring_is_joined_as_root_of_the_namespace_unless_inherited() {
        let (steps, _) = record(&config(), None, 0);
        assert!(at(&steps, "become_namespace_root") < at(&steps, "join_session_keyring"));
        assert!(at(&steps, "join_session_keyring") < at(&steps, "build_filesystem"));
        let mut inherit = config();
        inherit.session_keyring = SessionKeyring::Inherit;
        let (steps, _) = record(&inherit, None, 0);
        assert!(!steps.iter().any(|s| s == "join_session_keyring"), "{steps:?}");
    }

    #[test]
    fn joined_namespaces_are_entered_in_order_and_the_user_namespace_last() {
        let mut config = config();
        for kind in [
            NamespaceKind::Net,
            NamespaceKind::Uts,
            NamespaceKind::Cgroup,
            NamespaceKind::User,
        ] {
            config
                .namespaces
                .set(kind, NamespaceMode::Join(format!("/proc/7/ns/{kind}").into()));
        }
        config.no_new_privs = false;
        let (steps, _) = record(&config, None, 0);
        assert!(at(&steps, "wait Go") < at(&steps, "join_namespace(net)"));
        assert!(
            at(&steps, "join_namespace(uts)") < at(&steps, "set_hostname"),
            "named in its own"
        );
        assert!(
            !steps.iter().any(|s| s == "bring_up_loopback"),
            "a joined network is its owner's"
        );
        assert!(!steps.iter().any(|s| s == "enter_cgroup_namespace"), "joined, not made");
        assert!(at(&steps, "wait Joined") < at(&steps, "join_namespace(cgroup)"));
        assert!(at(&steps, "join_namespace(cgroup)") < at(&steps, "mount_cgroup_view"));
        // After everything that needs the host's root, before the filter (which may forbid setns).
        assert!(at(&steps, "mount_cgroup_view") < at(&steps, "join_namespace(user)"));
        assert!(at(&steps, "join_namespace(user)") < at(&steps, "load_seccomp"));
        assert!(at(&steps, "join_namespace(user)") < at(&steps, "restrict_bounding_set"));
    }

    #[test]
    fn a_shared_network_gets_no_loopback_and_a_kept_name_no_sethostname() {
        let mut config = config();
        config.namespaces.net = NamespaceMode::Host;
        config.set_hostname = false;
        let (steps, _) = record(&config, None, 0);
        assert!(
            !steps.iter().any(|s| s == "bring_up_loopback" || s == "set_hostname"),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s.starts_with("join_namespace")));
        let (steps, _) = record(&self::config(), None, 0);
        assert!(at(&steps, "set_hostname") < at(&steps, "bring_up_loopback"));
    }

    #[test]
    fn the_process_turns_non_dumpable_once_its_maps_are_written() {
        let (steps, _) = record(&config(), None, 0);
        assert!(at(&steps, "wait Go") < at(&steps, "hide_from_proc"), "{steps:?}");
        assert!(at(&steps, "hide_from_proc") < at(&steps, "become_namespace_root"));
    }

    #[test]
    fn the_process_gets_crabcans_cpus_back_once_the_parent_has_placed_it() {
        let (steps, _) = record(&config(), None, 0);
        assert!(at(&steps, "wait Go") < at(&steps, "restore_cpu_affinity"), "{steps:?}");
        assert!(
            at(&steps, "restore_cpu_affinity") < at(&steps, "hide_from_proc"),
            "before anything of the container: {steps:?}"
        );
    }

    #[test]
    fn a_non_root_user_keeps_no_capabilities() {
        let mut config = config();
        config.uid = 1000;
        let (steps, _) = record(&config, None, 0);
        assert!(steps.contains(&"apply_capability_sets(none)".to_owned()), "{steps:?}");
    }

    #[test]
    fn v1_tasks_files_are_joined_before_the_cgroup_namespace() {
        let (steps, _) = record(&config(), None, 3);
        assert!(at(&steps, "wait Joined") < at(&steps, "join_cgroup"));
        assert!(
            at(&steps, "finish_filesystem") < at(&steps, "wait Joined"),
            "without hooks, as late as the cgroup namespace allows: {steps:?}"
        );
        assert!(at(&steps, "join_cgroup") < at(&steps, "enter_cgroup_namespace"));
    }

    #[test]
    fn hooks_that_may_look_for_the_cgroup_run_after_the_join() {
        for kinds in [
            &[HookKind::CreateContainer][..],
            &[HookKind::Prestart],
            &[HookKind::CreateRuntime],
        ] {
            let (steps, _) = record(&with_hooks(kinds), None, 3);
            let first_hook = steps
                .iter()
                .position(|s| s == "run_hooks(createContainer)" || s == "send RuntimeHooks with 0 fds")
                .unwrap_or_else(|| panic!("{kinds:?}: no hook ran: {steps:?}"));
            assert!(at(&steps, "join_cgroup") < first_hook, "{kinds:?}: {steps:?}");
            assert_eq!(steps.iter().filter(|s| *s == "wait Joined").count(), 1, "{steps:?}");
        }
        // startContainer hooks run after the cgroup namespace anyway: the join stays late.
        let (steps, _) = record(&with_hooks(&[HookKind::StartContainer]), None, 3);
        assert!(at(&steps, "finish_filesystem") < at(&steps, "wait Joined"), "{steps:?}");
    }

    #[test]
    fn an_immediate_start_waits_for_nobody_after_ready() {
        let mut config = config();
        config.start_gate = StartGate::Immediately;
        let (steps, failure) = record(&config, None, 0);
        assert_eq!(failure.step, "exec", "{steps:?}");
        assert!(at(&steps, "send Ready with 0 fds") < at(&steps, "exec"));
        assert!(
            !steps.iter().any(|s| s == "wait Start" || s == "wait_for_fifo_reader"),
            "{steps:?}"
        );
    }

    #[test]
    fn the_cgroup_view_is_mounted_inside_the_cgroup_namespace() {
        let (steps, _) = record(&config(), None, 0);
        assert!(at(&steps, "enter_cgroup_namespace") < at(&steps, "mount_cgroup_view"));
        assert!(!steps.iter().any(|s| s == "own_cgroups"), "v2 needs no comparison");
        let (steps, _) = record_on(&config(), Some(Layout::Hybrid), None, 3);
        let reads: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| *s == "own_cgroups")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(reads.len(), 2, "{steps:?}");
        assert!(reads[0] < at(&steps, "wait Go"), "before the move");
        assert!(at(&steps, "join_cgroup") < reads[1] && reads[1] < at(&steps, "enter_cgroup_namespace"));
        let (steps, _) = record_on(&config(), None, None, 0);
        assert!(
            steps.contains(&"mount_cgroup_view(none)".to_owned()),
            "no cgroup: no view"
        );
    }

    #[test]
    fn a_pty_is_handed_over_before_ready() {
        let mut config = config();
        config.terminal = Terminal::Pty;
        let (steps, _) = record(&config, None, 0);
        assert!(at(&steps, "new_session") < at(&steps, "open_pty"));
        assert!(at(&steps, "send PtyMaster with 1 fds") < at(&steps, "send Ready with 0 fds"));
    }

    #[test]
    fn a_fifo_gate_is_held_from_the_start_and_waited_on_instead_of_start() {
        let mut config = config();
        config.start_gate = StartGate::Fifo("/run/start".into());
        let (steps, _) = record(&config, None, 0);
        assert!(at(&steps, "close_inherited_fds") < at(&steps, "hold_start_fifo"));
        assert!(
            at(&steps, "hold_start_fifo") < at(&steps, "build_filesystem"),
            "the FIFO is a host path"
        );
        assert!(at(&steps, "send Ready with 0 fds") < at(&steps, "wait_for_fifo_reader"));
        assert!(!steps.contains(&"wait Start".to_owned()));
    }

    #[test]
    fn the_init_is_forked_once_released_and_before_the_commands_last_steps() {
        let (steps, _) = record(&config(), None, 0);
        assert!(!steps.iter().any(|s| s == "start_init"), "no --init: no init");
        let mut config = config();
        config.init = true;
        let (steps, _) = record(&config, None, 0);
        assert!(at(&steps, "wait Start") < at(&steps, "start_init"));
        assert!(at(&steps, "start_init") < at(&steps, "close_fds_on_exec"));
        assert_eq!(at(&steps, "load_seccomp") + 1, at(&steps, "exec"));
    }

    #[test]
    fn without_no_new_privs_the_filter_is_loaded_while_cap_sys_admin_is_held() {
        let mut config = config();
        config.no_new_privs = false;
        let (steps, _) = record(&config, None, 0);
        assert!(
            at(&steps, "load_seccomp") < at(&steps, "restrict_bounding_set"),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s == "set_no_new_privs"));
        assert_eq!(steps.iter().filter(|s| *s == "load_seccomp").count(), 1, "loaded once");
    }

    fn learning_config(no_new_privs: bool) -> ContainerConfig {
        let mut config = config();
        config.seccomp = None;
        config.no_new_privs = no_new_privs;
        let default = Profile::default_profile();
        config.learning_filter = Some(crabcan_seccomp::LearningFilter::new(Some(&default), 5).unwrap());
        config
    }

    #[test]
    fn the_learning_filter_goes_where_the_filter_goes_and_replaces_it() {
        let (steps, _) = record(&learning_config(true), None, 0);
        assert_eq!(
            at(&steps, "start_learning") + 1,
            at(&steps, "exec"),
            "last before execve"
        );
        assert!(at(&steps, "close_fds_on_exec") < at(&steps, "start_learning"));
        assert!(!steps.iter().any(|s| s == "load_seccomp"), "{steps:?}");
        // Without no_new_privs, where the filter goes then: while CAP_SYS_ADMIN is held.
        let (steps, _) = record(&learning_config(false), None, 0);
        assert!(
            at(&steps, "start_learning") < at(&steps, "restrict_bounding_set"),
            "{steps:?}"
        );
        assert_eq!(steps.iter().filter(|s| *s == "start_learning").count(), 1);
        assert!(!steps.iter().any(|s| s == "load_seccomp"));
    }

    #[test]
    fn unconfined_loads_no_filter() {
        let mut config = config();
        config.seccomp = None;
        let (steps, _) = record(&config, None, 0);
        assert!(!steps.contains(&"load_seccomp".to_owned()));
    }

    #[test]
    fn a_failing_step_stops_the_sequence() {
        let (steps, failure) = record(&config(), Some("build_filesystem"), 0);
        assert_eq!(failure.detail, "build_filesystem");
        assert_eq!(steps.last().map(String::as_str), Some("build_filesystem"));
        assert!(!steps.iter().any(|s| s == "exec" || s.starts_with("send Ready")));
    }
}
