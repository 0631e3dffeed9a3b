//! The privileged operations the container's process makes on itself between clone and execve,
//! behind two small traits so the order of the setup steps (the security-critical part: caps
//! before identity, no_new_privs before seccomp, seccomp last, nothing inherited) is tested
//! without root: [`SetupOps`] for the process's own syscalls and [`ParentLink`] for the
//! handshake. [`LinuxOps`] and [`Channel`] are the real ones; the tests in `child.rs` record.

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use crabcan_cgroups::{ProcCgroup, SelfJoin};
use crabcan_seccomp::{CompiledFilter, LearningFilter};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use crate::capabilities::{self, CapabilitySet};
use crate::cgroupfs::CgroupView;
use crate::config::{CapabilitySets, FileLimit, Personality, Rlimit};
use crate::cpu_placement::CpuPlacement;
use crate::error::EXIT_SETUP_FAILED;
use crate::exec::{self, PreparedExec};
use crate::handshake::{Channel, Message, Received};
use crate::hooks::{self, Hook, HookKind};
use crate::idmap::ReceivedTrees;
use crate::mounts::{MountStep, Mounter};
use crate::namespaces::NamespaceKind;
use crate::{identity, network, rlimits, signals, terminal};

/// A failed setup step, as sent to the parent: the step, the errno, one line of detail.
#[derive(Debug)]
pub struct Failure {
    pub step: &'static str,
    pub errno: Errno,
    pub detail: String,
}

impl Failure {
    pub fn new(step: &'static str, errno: Errno, detail: impl Into<String>) -> Failure {
        Failure {
            step,
            errno,
            detail: detail.into(),
        }
    }
}

/// Attaches a step name and a detail to a syscall result.
trait Step<T> {
    fn step(self, step: &'static str, detail: &str) -> Result<T, Failure>;
}

impl<T> Step<T> for Result<T, Errno> {
    fn step(self, step: &'static str, detail: &str) -> Result<T, Failure> {
        self.map_err(|errno| Failure::new(step, errno, format!("{detail}: {errno}")))
    }
}

fn io_errno(error: &std::io::Error, fallback: i32) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(fallback))
}

/// The container process's side of the handshake.
pub trait ParentLink {
    /// Waits for a message of the kind of `expected`; returns it and the descriptors that came
    /// with it.
    fn wait_for(&mut self, expected: Message) -> Result<(Message, Vec<OwnedFd>), Failure>;
    fn send(&mut self, message: &Message, fds: &[RawFd]) -> Result<(), Failure>;
}

impl ParentLink for Channel {
    fn wait_for(&mut self, expected: Message) -> Result<(Message, Vec<OwnedFd>), Failure> {
        match self.receive() {
            Ok(Received::Message(message, fds)) if message.same_kind(&expected) => Ok((message, fds)),
            Ok(Received::Message(other, _)) => Err(Failure::new(
                "handshake",
                Errno::EPROTO,
                format!("expected {expected:?}, got {other:?}"),
            )),
            // crabcan is gone: there is nobody to report to.
            // SAFETY: _exit ends this cloned process without running the parent's destructors.
            Ok(Received::Closed) => unsafe { libc::_exit(EXIT_SETUP_FAILED) },
            Err(error) => Err(Failure::new("handshake", Errno::EIO, error.to_string())),
        }
    }

    fn send(&mut self, message: &Message, fds: &[RawFd]) -> Result<(), Failure> {
        self.send_with_fds(message, fds)
            .step("handshake", &format!("sending {message:?} to crabcan"))
    }
}

/// What the container's process does to itself while it sets up, one method per step.
pub trait SetupOps {
    fn die_with_parent(&mut self) -> Result<(), Failure>;
    fn hide_from_proc(&mut self) -> Result<(), Failure>;
    /// Gives the process back the CPUs crabcan had (best-effort, see `cpu_placement`).
    fn restore_cpu_affinity(&mut self, placement: &CpuPlacement) -> Result<(), Failure>;
    /// Closes every descriptor but 0, 1, 2, the `preserved` ones from 3 up and the handshake
    /// socket.
    fn close_inherited_fds(&mut self, preserved: u32) -> Result<(), Failure>;
    /// Takes hold of the start FIFO (a host path) while the host's root is still there.
    fn hold_start_fifo(&mut self, path: &Path) -> Result<(), Failure>;
    fn become_namespace_root(&mut self) -> Result<(), Failure>;
    /// Joins a new session keyring (named `name`, or anonymous), searchable by the container's
    /// other processes (with a user namespace, whatever their uid) so they can join it by name.
    fn join_session_keyring(&mut self, name: Option<&str>, user_namespace: bool) -> Result<(), Failure>;
    /// Enters an existing namespace (setns) through the descriptor the parent sent.
    fn join_namespace(&mut self, kind: NamespaceKind, fd: OwnedFd) -> Result<(), Failure>;
    /// Sets the hostname and the NIS domain name, those given.
    fn set_hostname(&mut self, hostname: Option<&str>, domainname: Option<&str>) -> Result<(), Failure>;
    fn bring_up_loopback(&mut self) -> Result<(), Failure>;
    /// Carries out the first part of the mount plan: the container's mounts.
    fn build_filesystem(&mut self, rootfs: &Path, plan: &[MountStep], trees: ReceivedTrees) -> Result<(), Failure>;
    /// Carries out the rest (protections, working directory), ending with pivot_root.
    fn finish_filesystem(&mut self, plan: &[MountStep]) -> Result<(), Failure>;
    /// Runs `hooks` of `kind` in order, `state` on their stdin; the first failure stops.
    fn run_hooks(&mut self, kind: HookKind, hooks: &[Hook], state: &[u8]) -> Result<(), Failure>;
    /// RLIMIT_NOFILE and the other resource limits.
    fn limit_resources(&mut self, nofile: FileLimit, others: &[Rlimit]) -> Result<(), Failure>;
    fn new_session(&mut self) -> Result<(), Failure>;
    /// Opens a pty in the container's devpts, makes it the controlling terminal and stdio;
    /// returns the master.
    fn open_pty(&mut self) -> Result<OwnedFd, Failure>;
    /// Moves the process into its cgroup through `tasks` files (cgroup v1).
    fn join_cgroup(&mut self, tasks_files: Vec<OwnedFd>) -> Result<(), Failure>;
    fn enter_cgroup_namespace(&mut self) -> Result<(), Failure>;
    /// Opens the process's `/proc/self` directory, for [`SetupOps::own_cgroups`] to read the
    /// host's procfs through after pivot_root too.
    fn open_own_proc_dir(&mut self) -> Result<OwnedFd, Failure>;
    /// The process's cgroups (`cgroup` in the `/proc/self` directory open as `proc_dir`).
    fn own_cgroups(&mut self, proc_dir: BorrowedFd<'_>) -> Result<Vec<ProcCgroup>, Failure>;
    /// Mounts the container's read-only view of its cgroup at /sys/fs/cgroup.
    fn mount_cgroup_view(&mut self, view: &CgroupView) -> Result<(), Failure>;
    fn restrict_bounding_set(&mut self, keep: &CapabilitySet) -> Result<(), Failure>;
    fn switch_identity(&mut self, uid: u32, gid: u32, additional_gids: &[u32]) -> Result<(), Failure>;
    /// `sets` when given, else `keep` the Docker way (all for root, none for another uid).
    fn apply_capability_sets(
        &mut self,
        keep: &CapabilitySet,
        sets: Option<&CapabilitySets>,
        as_root: bool,
    ) -> Result<(), Failure>;
    fn set_umask(&mut self, mask: u32) -> Result<(), Failure>;
    fn set_personality(&mut self, personality: Personality) -> Result<(), Failure>;
    fn set_no_new_privs(&mut self) -> Result<(), Failure>;
    fn enter_working_directory(&mut self, workdir: &Path) -> Result<(), Failure>;
    fn reset_signals(&mut self) -> Result<(), Failure>;
    /// Checks that the program can be found and executed (before the container is ready).
    fn find_program(&mut self, prepared: &PreparedExec) -> Result<(), Failure>;
    /// Blocks until another process opens the start FIFO for reading; the FIFO stays open
    /// (close-on-exec) so that reader sees execve as its end, or a failure before it.
    fn wait_for_fifo_reader(&mut self) -> Result<(), Failure>;
    /// Forks the `--init` (see [`crate::init`]); returns in the process that becomes the
    /// command.
    fn start_init(&mut self, filter: Option<&CompiledFilter>) -> Result<(), Failure>;
    /// Marks every descriptor from 3+`preserved` up close-on-exec, the preserved ones not.
    fn close_fds_on_exec(&mut self, preserved: u32) -> Result<(), Failure>;
    fn load_seccomp(&mut self, filter: &CompiledFilter) -> Result<(), Failure>;
    /// Installs the seccomp learning filter and hands its listener to crabcan (`Listening`);
    /// every later call of the process waits for crabcan's answer.
    fn start_learning(&mut self, filter: &LearningFilter) -> Result<(), Failure>;
    /// Only returns on failure.
    fn exec(&mut self, prepared: &PreparedExec) -> Errno;
}

/// The real operations, for the process cloned by `Container::create`.
pub struct LinuxOps {
    /// The handshake socket: survives `close_inherited_fds`.
    keep_fd: RawFd,
    start_fifo: Option<OwnedFd>,
    /// The start FIFO opened for writing, once released: its reader learns of a failure
    /// before execve through it, and sees execve itself as its end.
    start_fifo_writer: Option<OwnedFd>,
    /// The mounter between `build_filesystem` and `finish_filesystem`.
    mounter: Option<Mounter>,
}

impl LinuxOps {
    pub fn new(channel: &Channel) -> LinuxOps {
        LinuxOps {
            keep_fd: channel.as_raw_fd(),
            start_fifo: None,
            start_fifo_writer: None,
            mounter: None,
        }
    }

    /// The handshake socket these operations keep open.
    pub fn handshake_fd(&self) -> RawFd {
        self.keep_fd
    }

    /// Tells whoever released the container through the start FIFO (an OCI `start`) why it
    /// failed after all; nothing to do before it was released.
    pub fn tell_starter(&mut self, failure: &Failure) {
        if let Some(writer) = self.start_fifo_writer.take() {
            let line = match failure.step {
                "exec" => format!("cannot execute {}: {}", failure.detail, failure.errno.desc()),
                step => format!("setup failed at {step}: {}", failure.detail),
            };
            let _ = nix::unistd::write(&writer, line.as_bytes());
        }
    }
}

fn mount_failure(e: crate::mounts::MountError) -> Failure {
    let hint = if e.errno == Errno::EACCES {
        "; the container's root cannot enter the rootfs: make it readable and searchable by the \
         container's ids (owned by root on a filesystem with idmapped mounts, or chown -R it to the \
         host ids of the container's root)"
    } else {
        ""
    };
    Failure::new("mounts", e.errno, format!("{e}{hint}"))
}

impl SetupOps for LinuxOps {
    fn die_with_parent(&mut self) -> Result<(), Failure> {
        identity::die_with_parent().step("identity", "prctl(PR_SET_PDEATHSIG)")
    }

    fn hide_from_proc(&mut self) -> Result<(), Failure> {
        identity::hide_from_proc().step("identity", "prctl(PR_SET_DUMPABLE, 0)")
    }

    fn restore_cpu_affinity(&mut self, placement: &CpuPlacement) -> Result<(), Failure> {
        placement.restore_in_child();
        Ok(())
    }

    fn close_inherited_fds(&mut self, preserved: u32) -> Result<(), Failure> {
        exec::close_inherited_fds(self.keep_fd, preserved).step("file descriptors", "closing inherited descriptors")
    }

    fn hold_start_fifo(&mut self, path: &Path) -> Result<(), Failure> {
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .step("start gate", &format!("opening the start FIFO {}", path.display()))?;
        self.start_fifo = Some(fd);
        Ok(())
    }

    fn become_namespace_root(&mut self) -> Result<(), Failure> {
        identity::become_namespace_root().step(
            "user namespace",
            "becoming root of the user namespace (setresuid/setresgid 0)",
        )
    }

    fn join_session_keyring(&mut self, name: Option<&str>, user_namespace: bool) -> Result<(), Failure> {
        identity::join_session_keyring(name, user_namespace).step(
            "keyring",
            &format!(
                "keyctl(KEYCTL_JOIN_SESSION_KEYRING, {})",
                name.map_or("anonymous".to_owned(), |n| format!("{n:?}"))
            ),
        )
    }

    fn join_namespace(&mut self, kind: NamespaceKind, fd: OwnedFd) -> Result<(), Failure> {
        crate::namespaces::join(std::os::fd::AsFd::as_fd(&fd), kind).step(
            "namespaces",
            &format!("setns({kind} namespace, {:?})", kind.clone_flag()),
        )
    }

    fn set_hostname(&mut self, hostname: Option<&str>, domainname: Option<&str>) -> Result<(), Failure> {
        if let Some(hostname) = hostname {
            nix::unistd::sethostname(hostname).step("hostname", &format!("sethostname({hostname:?})"))?;
        }
        if let Some(domain) = domainname {
            identity::set_domainname(domain).step("hostname", &format!("setdomainname({domain:?})"))?;
        }
        Ok(())
    }

    fn bring_up_loopback(&mut self) -> Result<(), Failure> {
        network::bring_up_loopback().step("network", "bringing up the loopback device")
    }

    fn build_filesystem(&mut self, rootfs: &Path, plan: &[MountStep], trees: ReceivedTrees) -> Result<(), Failure> {
        let mut mounter = Mounter::new(rootfs, trees).map_err(mount_failure)?;
        mounter.run(plan).map_err(mount_failure)?;
        self.mounter = Some(mounter);
        Ok(())
    }

    fn finish_filesystem(&mut self, plan: &[MountStep]) -> Result<(), Failure> {
        // The mounter's descriptor of the rootfs is dropped with it, right after pivot_root.
        let Some(mut mounter) = self.mounter.take() else {
            return Err(Failure::new("mounts", Errno::EINVAL, "the filesystem was never built"));
        };
        mounter.run(plan).map_err(mount_failure)
    }

    fn run_hooks(&mut self, kind: HookKind, hooks: &[Hook], state: &[u8]) -> Result<(), Failure> {
        hooks::run_hooks(kind, hooks, state).map_err(|error| Failure::new("hooks", error.errno(), error.to_string()))
    }

    fn limit_resources(&mut self, nofile: FileLimit, others: &[Rlimit]) -> Result<(), Failure> {
        for limit in others {
            rlimits::apply_one(limit).map_err(|error| {
                Failure::new(
                    "rlimits",
                    io_errno(&error, libc::EINVAL),
                    format!(
                        "setrlimit({:?}, {}, {}): {error}",
                        limit.resource, limit.soft, limit.hard
                    ),
                )
            })?;
        }
        rlimits::apply(nofile).map_err(|error| {
            Failure::new(
                "rlimits",
                io_errno(&error, libc::EINVAL),
                format!("setrlimit(RLIMIT_NOFILE, {}, {}): {error}", nofile.soft, nofile.hard),
            )
        })
    }

    fn new_session(&mut self) -> Result<(), Failure> {
        terminal::new_session().step("terminal", "setsid")
    }

    fn open_pty(&mut self) -> Result<OwnedFd, Failure> {
        let (master, slave) = terminal::open_container_pty().step("terminal", "opening a pty in /dev/pts")?;
        terminal::attach_stdio(slave).step("terminal", "making the pty the controlling terminal")?;
        Ok(master)
    }

    fn join_cgroup(&mut self, tasks_files: Vec<OwnedFd>) -> Result<(), Failure> {
        SelfJoin::from_fds(tasks_files).join_calling_thread().map_err(|error| {
            Failure::new(
                "cgroup",
                io_errno(&error, libc::EIO),
                format!("moving into the container's cgroup (writing 0 to its tasks files): {error}"),
            )
        })
    }

    fn enter_cgroup_namespace(&mut self) -> Result<(), Failure> {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).step("namespaces", "unshare(CLONE_NEWCGROUP)")
    }

    fn open_own_proc_dir(&mut self) -> Result<OwnedFd, Failure> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        nix::fcntl::open("/proc/self", flags, Mode::empty()).step("cgroup", "open(/proc/self)")
    }

    fn own_cgroups(&mut self, proc_dir: BorrowedFd<'_>) -> Result<Vec<ProcCgroup>, Failure> {
        crabcan_cgroups::cgroups_of(proc_dir)
            .map_err(|error| Failure::new("cgroup", Errno::EIO, format!("reading /proc/self/cgroup: {error}")))
    }

    fn mount_cgroup_view(&mut self, view: &CgroupView) -> Result<(), Failure> {
        if *view == CgroupView::None || !crate::cgroupfs::mount_point_exists() {
            return Ok(());
        }
        crate::cgroupfs::mount(view).map_err(|error| Failure::new("cgroup", error.errno, error.to_string()))
    }

    fn restrict_bounding_set(&mut self, keep: &CapabilitySet) -> Result<(), Failure> {
        capabilities::restrict_bounding_set(keep).map_err(|errno| {
            Failure::new(
                "capabilities",
                errno,
                "dropping from the bounding set: prctl(PR_CAPBSET_DROP)".to_owned(),
            )
        })
    }

    fn switch_identity(&mut self, uid: u32, gid: u32, additional_gids: &[u32]) -> Result<(), Failure> {
        identity::switch_to(uid, gid, additional_gids).step("identity", &format!("switching to uid {uid} gid {gid}"))
    }

    fn set_umask(&mut self, mask: u32) -> Result<(), Failure> {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask as libc::mode_t));
        Ok(())
    }

    fn set_personality(&mut self, personality: Personality) -> Result<(), Failure> {
        identity::set_personality(personality).step("personality", &format!("personality({personality:?})"))
    }

    fn apply_capability_sets(
        &mut self,
        keep: &CapabilitySet,
        sets: Option<&CapabilitySets>,
        as_root: bool,
    ) -> Result<(), Failure> {
        let applied = match sets {
            Some(sets) => capabilities::apply_given_sets(sets),
            None => capabilities::apply_process_sets(keep, as_root),
        };
        applied.map_err(|error| {
            Failure::new(
                "capabilities",
                Errno::EPERM,
                format!("setting the capability sets: {error}"),
            )
        })
    }

    fn set_no_new_privs(&mut self) -> Result<(), Failure> {
        identity::set_no_new_privs().step("no_new_privs", "prctl(PR_SET_NO_NEW_PRIVS)")
    }

    fn enter_working_directory(&mut self, workdir: &Path) -> Result<(), Failure> {
        let shown = workdir.display().to_string();
        nix::unistd::chdir(workdir).step("workdir", &format!("chdir({shown})"))?;
        // After pivot_root a directory outside the new root shows up as "(unreachable)" or fails.
        let cwd = nix::unistd::getcwd().step("workdir", "getcwd")?;
        if !cwd.is_absolute() {
            return Err(Failure::new(
                "workdir",
                Errno::EPERM,
                format!("the working directory {shown} is outside the container"),
            ));
        }
        Ok(())
    }

    fn find_program(&mut self, prepared: &PreparedExec) -> Result<(), Failure> {
        exec::find_program(prepared).map_err(|errno| Failure::new("exec", errno, prepared.program.clone()))
    }

    fn reset_signals(&mut self) -> Result<(), Failure> {
        signals::reset_for_exec().step("signals", "resetting signal dispositions")
    }

    /// The FIFO is reopened through /proc/self/fd, which the container's own /proc resolves to
    /// the descriptor taken before pivot_root; one byte tells the reader the container runs.
    fn wait_for_fifo_reader(&mut self) -> Result<(), Failure> {
        let Some(fifo) = self.start_fifo.take() else {
            return Err(Failure::new("start gate", Errno::EBADF, "no start FIFO was opened"));
        };
        let path = crate::safe_path::fd_path(&fifo);
        let writer = loop {
            match nix::fcntl::open(path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
                Err(Errno::EINTR) => continue,
                other => break other.step("start gate", "opening the start FIFO for writing")?,
            }
        };
        nix::unistd::write(&writer, b"0").step("start gate", "writing to the start FIFO")?;
        self.start_fifo_writer = Some(writer);
        Ok(())
    }

    fn start_init(&mut self, filter: Option<&CompiledFilter>) -> Result<(), Failure> {
        let mut command_only = vec![self.keep_fd];
        command_only.extend(self.start_fifo_writer.as_ref().map(std::os::fd::AsRawFd::as_raw_fd));
        crate::init::fork_init(&command_only, filter).step("init", "starting the container's init (fork)")
    }

    fn close_fds_on_exec(&mut self, preserved: u32) -> Result<(), Failure> {
        exec::mark_inherited_fds_cloexec(preserved).step(
            "file descriptors",
            &format!("close_range({}, ~0, CLOSE_RANGE_CLOEXEC)", 3 + preserved),
        )
    }

    fn load_seccomp(&mut self, filter: &CompiledFilter) -> Result<(), Failure> {
        filter
            .install()
            .map_err(|error| Failure::new("seccomp", Errno::EINVAL, format!("loading the seccomp filter: {error}")))
    }

    fn start_learning(&mut self, filter: &LearningFilter) -> Result<(), Failure> {
        // Encoded before the filter is installed: after it, only the hand-over itself runs
        // without crabcan's answer.
        let payload = Message::Listening.encode();
        // SAFETY: the handshake socket stays open for the life of this process.
        let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.keep_fd) };
        filter
            .install_and_hand_over(socket, &payload, EXIT_SETUP_FAILED as u8)
            .map_err(|error| Failure::new("seccomp", Errno::EINVAL, format!("starting to learn: {error}")))
    }

    fn exec(&mut self, prepared: &PreparedExec) -> Errno {
        exec::exec(prepared)
    }
}
