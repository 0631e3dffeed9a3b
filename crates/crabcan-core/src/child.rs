//! Everything the container's first process does between clone and execve, in order:
//! close inherited fds → wait for the id maps → root of the user namespace → hostname →
//! loopback → mounts and pivot_root → rlimits → session/pty → wait until it is in its cgroup →
//! cgroup namespace → capabilities and identity → no_new_privs → working directory → signals →
//! held until Start → close fds → seccomp → execve. Any failure is reported to the parent as one `Failed` message naming the
//! step, and the process exits; it never returns into the parent's code.

use std::convert::Infallible;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sched::CloneFlags;

use crabcan_cgroups::SelfJoin;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::config::{ContainerConfig, StartGate, Terminal};
use crate::error::EXIT_SETUP_FAILED;
use crate::handshake::{Channel, Message, Received};
use crate::{capabilities, exec, identity, mounts, network, rlimits, signals, terminal};

/// A failed setup step, as sent to the parent.
struct Failure {
    step: &'static str,
    errno: Errno,
    detail: String,
}

impl Failure {
    fn new(step: &'static str, errno: Errno, detail: impl Into<String>) -> Failure {
        Failure { step, errno, detail: detail.into() }
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

/// Runs in the cloned child. Never returns.
pub fn run(config: &ContainerConfig, channel: Channel) -> ! {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| set_up_and_exec(config, &channel)));
    let failure = match outcome {
        Ok(Err(failure)) => failure,
        Ok(Ok(never)) => match never {},
        Err(_) => Failure::new("setup", Errno::EIO, "crabcan's setup code panicked (a bug: please report it)"),
    };
    let _ = channel.send(&Message::Failed {
        step: failure.step.to_owned(),
        errno: failure.errno as i32,
        detail: failure.detail,
    });
    // SAFETY: _exit ends this process at once without running destructors or atexit handlers,
    // which belong to the parent's copy of the program state.
    unsafe { libc::_exit(EXIT_SETUP_FAILED) }
}

fn set_up_and_exec(config: &ContainerConfig, channel: &Channel) -> Result<Infallible, Failure> {
    identity::die_with_parent().step("handshake", "prctl(PR_SET_PDEATHSIG)")?;
    identity::hide_from_proc().step("handshake", "prctl(PR_SET_DUMPABLE, 0)")?;
    // Nothing crabcan's caller had open may reach the container, not even during setup (a
    // directory fd and `--workdir /proc/self/fd/N` would be an escape, CVE-2024-21626).
    exec::close_inherited_fds(channel.as_raw_fd()).step("file descriptors", "closing inherited descriptors")?;
    // A start FIFO lives on the host: take hold of it before the host's root goes away.
    let start_fifo = match &config.start_gate {
        StartGate::Parent => None,
        StartGate::Fifo(path) => Some(
            nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .step("start gate", &format!("opening the start FIFO {}", path.display()))?,
        ),
    };
    wait_for(channel, Message::Go)?;

    identity::become_namespace_root().step("user namespace", "becoming root of the user namespace (setresuid/setresgid 0)")?;
    nix::unistd::sethostname(&config.hostname).step("hostname", &format!("sethostname({:?})", config.hostname))?;
    network::bring_up_loopback().step("network", "bringing up the loopback device")?;

    let mut mounter = mounts::Mounter::new(&config.rootfs).map_err(|e| Failure::new("mounts", e.errno, format!("{}: {}", e.detail, e.errno)))?;
    mounter
        .run(&mounts::plan(config))
        .map_err(|e| Failure::new("mounts", e.errno, format!("{}: {}", e.detail, e.errno)))?;
    drop(mounter); // its descriptor of the rootfs is not needed after pivot_root
    log::debug!("filesystem ready, pivoted into {}", config.rootfs.display());

    rlimits::apply(config.nofile).map_err(|error| {
        let errno = Errno::from_raw(error.raw_os_error().unwrap_or(libc::EINVAL));
        Failure::new("rlimits", errno, format!("setrlimit(RLIMIT_NOFILE, {}): {error}", config.nofile))
    })?;

    terminal::new_session().step("terminal", "setsid")?;
    if config.terminal == Terminal::Pty {
        let (master, slave) = terminal::open_container_pty().step("terminal", "opening a pty in /dev/pts")?;
        terminal::attach_stdio(slave).step("terminal", "making the pty the controlling terminal")?;
        channel
            .send_with_fds(&Message::PtyMaster, &[master.as_raw_fd()])
            .step("handshake", "sending the pty to crabcan")?;
    }

    // From here on the process must be in its cgroup; its cgroup namespace is rooted there.
    // On v1 the parent hands over the cgroup's `tasks` files and the process moves itself in.
    let tasks_files = wait_for(channel, Message::Joined)?;
    if !tasks_files.is_empty() {
        SelfJoin::from_fds(tasks_files).join_calling_thread().map_err(|error| {
            let errno = Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO));
            Failure::new("cgroup", errno, format!("moving into the container's cgroup (writing 0 to its tasks files): {error}"))
        })?;
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).step("namespaces", "unshare(CLONE_NEWCGROUP)")?;

    capabilities::restrict_bounding_set(&config.capabilities)
        .map_err(|error| Failure::new("capabilities", Errno::EPERM, format!("dropping from the bounding set: {error}")))?;
    identity::switch_to(config.uid, config.gid)
        .step("identity", &format!("switching to uid {} gid {}", config.uid, config.gid))?;
    capabilities::apply_process_sets(&config.capabilities, config.uid == 0)
        .map_err(|error| Failure::new("capabilities", Errno::EPERM, format!("setting the capability sets: {error}")))?;
    identity::die_with_parent().step("identity", "prctl(PR_SET_PDEATHSIG)")?;
    identity::set_no_new_privs().step("no_new_privs", "prctl(PR_SET_NO_NEW_PRIVS)")?;

    enter_working_directory(config)?;
    let prepared = exec::prepare(&config.argv, &config.environment()).map_err(|why| Failure::new("exec", Errno::EINVAL, why))?;
    signals::reset_for_exec().step("signals", "resetting signal dispositions")?;

    log::debug!("identity, capabilities and limits applied");
    channel.send(&Message::Ready).step("handshake", "telling crabcan the container is ready")?;
    match start_fifo {
        None => drop(wait_for(channel, Message::Start)?),
        Some(fifo) => wait_for_fifo_reader(fifo)?,
    }

    exec::mark_inherited_fds_cloexec().step("file descriptors", "close_range(3, ~0, CLOSE_RANGE_CLOEXEC)")?;
    if let Some(filter) = &config.seccomp {
        filter
            .install()
            .map_err(|error| Failure::new("seccomp", Errno::EINVAL, format!("loading the seccomp filter: {error}")))?;
    }
    let errno = exec::exec(&prepared);
    Err(Failure::new("exec", errno, prepared.program.clone()))
}

/// Blocks until some process opens the start FIFO for reading, then tells it the container is
/// running by writing one byte. The FIFO is reopened through /proc/self/fd, which the
/// container's own /proc resolves to the descriptor taken before pivot_root.
fn wait_for_fifo_reader(fifo: std::os::fd::OwnedFd) -> Result<(), Failure> {
    let path = crate::safe_path::fd_path(&fifo);
    let writer = loop {
        match nix::fcntl::open(path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Err(Errno::EINTR) => continue,
            other => break other.step("start gate", "opening the start FIFO for writing")?,
        }
    };
    nix::unistd::write(&writer, b"0").step("start gate", "writing to the start FIFO")?;
    Ok(())
}

fn enter_working_directory(config: &ContainerConfig) -> Result<(), Failure> {
    let workdir = config.workdir.display().to_string();
    nix::unistd::chdir(&config.workdir).step("workdir", &format!("chdir({workdir})"))?;
    // After pivot_root a directory outside the new root shows up as "(unreachable)" or fails.
    let cwd = nix::unistd::getcwd().step("workdir", "getcwd")?;
    if !cwd.is_absolute() {
        return Err(Failure::new("workdir", Errno::EPERM, format!("the working directory {workdir} is outside the container")));
    }
    Ok(())
}

/// Waits for `expected` and returns the descriptors that came with it.
fn wait_for(channel: &Channel, expected: Message) -> Result<Vec<std::os::fd::OwnedFd>, Failure> {
    match channel.receive() {
        Ok(Received::Message(message, fds)) if message == expected => Ok(fds),
        Ok(Received::Message(other, _)) => Err(Failure::new("handshake", Errno::EPROTO, format!("expected {expected:?}, got {other:?}"))),
        // crabcan is gone: nothing to report to.
        // SAFETY: see `run`.
        Ok(Received::Closed) => unsafe { libc::_exit(EXIT_SETUP_FAILED) },
        Err(why) => Err(Failure::new("handshake", Errno::EIO, why)),
    }
}
