//! Lifecycle hooks (the OCI runtime spec's `hooks`): programs a container's engine asks to run
//! at points of the container's life, each given the container's state as JSON on stdin. This
//! module owns a hook as data ([`Hook`]), the checks a hostile bundle's hooks must pass
//! ([`Hook::check`]), the hooks crabcan-core itself runs while it creates and starts a
//! container ([`LifecycleHooks`]), and running them ([`run_hooks`]).
//!
//! A hook runs like runc runs one: `args` as its argv, exactly `env` as its environment when
//! given (the runner's own otherwise), its stdout and stderr captured and quoted in the error
//! when it fails. Beyond runc: it gets no descriptor but 0, 1 and 2 (a preserved fd of the
//! container never reaches it), it runs in a process group of its own, and at its timeout the
//! whole group is killed, so nothing it started outlives it. The runner needs only pipes, fork,
//! execve, poll, kill and waitpid (and pidfd_open where allowed), so it also works in the
//! container's process, under the container's seccomp filter, for `startContainer`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};

/// The most hooks of one kind a configuration may list.
pub const MAX_HOOKS_PER_KIND: usize = 64;
/// The most arguments, and the most environment entries, one hook may have.
pub const MAX_HOOK_WORDS: usize = 4096;
/// How much of a failed hook's stdout and of its stderr the error quotes.
const CAPTURED_BYTES: usize = 1024;
/// Without a pidfd (a seccomp filter refusing pidfd_open), how often the runner looks whether
/// the hook has exited.
const EXIT_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// One program to run at a point of the container's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// The program, an absolute path (in the namespace the hook runs in).
    pub path: PathBuf,
    /// Its argv, argv\[0\] included; empty: the path alone.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its environment, `KEY=VALUE` entries, exactly; `None`: the environment of whoever runs
    /// it (crabcan's own for the hooks of the runtime namespace; the container process's for
    /// `createContainer` and `startContainer`, as the OCI bundle mapping sets it).
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Killed, and failed, after this many seconds; `None`: no limit.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

impl Hook {
    /// A hook running `path` with no arguments, the runner's environment and no timeout.
    pub fn new(path: impl Into<PathBuf>) -> Hook {
        Hook {
            path: path.into(),
            args: Vec::new(),
            env: None,
            timeout_seconds: None,
        }
    }

    /// Why the hook cannot be run as it is (a hostile bundle wrote it): a relative path, a NUL
    /// byte, too many words, an environment entry without `KEY=`, a zero timeout.
    pub fn check(&self) -> Result<(), String> {
        let path = self.path.to_string_lossy();
        if !self.path.is_absolute() {
            return Err(format!("the path {path:?} is not absolute"));
        }
        if path.contains('\0') || self.args.iter().any(|arg| arg.contains('\0')) {
            return Err("a NUL byte in the path or the arguments".into());
        }
        let env = self.env.as_deref().unwrap_or_default();
        if self.args.len() > MAX_HOOK_WORDS || env.len() > MAX_HOOK_WORDS {
            return Err(format!("more than {MAX_HOOK_WORDS} arguments or environment entries"));
        }
        if let Some(entry) = env
            .iter()
            .find(|entry| entry.contains('\0') || entry.split_once('=').is_none_or(|(key, _)| key.is_empty()))
        {
            return Err(format!("the environment entry {entry:?} is not KEY=VALUE"));
        }
        if self.timeout_seconds == Some(0) {
            return Err("a timeout must be at least 1 second".into());
        }
        Ok(())
    }
}

/// The points of a container's life a hook can run at, in the OCI runtime spec's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Deprecated `prestart`: with `createRuntime`, in the runtime namespace before pivot_root.
    Prestart,
    /// In the runtime namespace, the container's namespaces made, before pivot_root.
    CreateRuntime,
    /// In the container's namespaces before pivot_root (the path resolved on the host).
    CreateContainer,
    /// In the container, after `start` and before the program's execve.
    StartContainer,
    /// In the runtime namespace once the program runs.
    Poststart,
    /// In the runtime namespace once the container is deleted.
    Poststop,
}

impl HookKind {
    /// The spec's name of the kind, e.g. `createRuntime`.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The hooks crabcan-core runs itself while it creates and starts a container, and the state
/// they get. (`poststart` and `poststop` belong to whoever starts and deletes the container.)
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LifecycleHooks {
    /// Run by crabcan, in order before `create_runtime`, when the container's mounts are made
    /// and before pivot_root.
    pub prestart: Vec<Hook>,
    /// Run by crabcan right after `prestart`.
    pub create_runtime: Vec<Hook>,
    /// Run by the container's process in its namespaces right after, before pivot_root.
    pub create_container: Vec<Hook>,
    /// Run by the container's process once released, as the last thing before execve.
    pub start_container: Vec<Hook>,
    /// The JSON object every hook gets on stdin (an OCI state); crabcan-core sets its `pid`
    /// (the container's process, as the host sees it) and its `status`.
    pub state: serde_json::Map<String, serde_json::Value>,
}

impl LifecycleHooks {
    /// Whether crabcan itself has hooks to run before pivot_root (`prestart`, `createRuntime`):
    /// only then does the container's process stop to let it.
    pub fn run_in_runtime_namespace(&self) -> bool {
        !self.prestart.is_empty() || !self.create_runtime.is_empty()
    }

    /// Whether any hook runs before pivot_root (`prestart`, `createRuntime`,
    /// `createContainer`), while the host's root is still there.
    pub fn run_before_pivot_root(&self) -> bool {
        self.run_in_runtime_namespace() || !self.create_container.is_empty()
    }

    /// The state on a hook's stdin: [`LifecycleHooks::state`] with `pid` and `status`.
    pub fn state_json(&self, pid: i32, status: &str) -> Vec<u8> {
        let mut state = self.state.clone();
        state.insert("pid".into(), pid.into());
        state.insert("status".into(), status.into());
        serde_json::Value::Object(state).to_string().into_bytes()
    }

    /// Every hook, with its kind.
    pub fn all(&self) -> impl Iterator<Item = (HookKind, &Hook)> {
        [
            (HookKind::Prestart, &self.prestart),
            (HookKind::CreateRuntime, &self.create_runtime),
            (HookKind::CreateContainer, &self.create_container),
            (HookKind::StartContainer, &self.start_container),
        ]
        .into_iter()
        .flat_map(|(kind, hooks)| hooks.iter().map(move |hook| (kind, hook)))
    }
}

/// A hook that failed: which one, and how.
#[derive(Debug, thiserror::Error)]
#[error("the {kind} hook {} failed: {why}", path.display())]
pub struct HookError {
    /// Its kind.
    pub kind: HookKind,
    /// Its program.
    pub path: PathBuf,
    /// What went wrong.
    pub why: HookFailure,
}

impl HookError {
    /// The errno that best describes the failure (for a report that carries one).
    pub fn errno(&self) -> Errno {
        match &self.why {
            HookFailure::Spawn(error) => Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO)),
            HookFailure::TimedOut { .. } => Errno::ETIMEDOUT,
            HookFailure::Sys { errno, .. } => *errno,
            HookFailure::Exited { .. } | HookFailure::Signaled { .. } => Errno::ECANCELED,
        }
    }
}

/// How a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    /// It could not be started (no such file, not executable, ...).
    #[error("cannot run it: {0}")]
    Spawn(io::Error),
    /// It exited with a status other than 0.
    #[error("exit status {code}{output}")]
    Exited {
        /// Its exit status.
        code: i32,
        /// What it printed.
        output: CapturedOutput,
    },
    /// A signal killed it.
    #[error("killed by signal {signal}{output}")]
    Signaled {
        /// The signal's number.
        signal: i32,
        /// What it printed.
        output: CapturedOutput,
    },
    /// It ran past its timeout; it was killed, with every process of its group.
    #[error("it ran past its timeout of {seconds} s and was killed")]
    TimedOut {
        /// The timeout.
        seconds: u64,
    },
    /// Feeding or watching it failed.
    #[error("{what} failed: {errno}")]
    Sys {
        /// The syscall, e.g. "poll".
        what: &'static str,
        /// Its errno.
        errno: Errno,
    },
}

/// The beginning of what a hook wrote to stdout and stderr, shown (quoted, on one line) when
/// it fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// Its stdout, at most 1 KiB.
    pub stdout: Vec<u8>,
    /// Its stderr, at most 1 KiB.
    pub stderr: Vec<u8>,
}

impl std::fmt::Display for CapturedOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, bytes) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            if !text.trim().is_empty() {
                write!(f, "; {name}: {:?}", text.trim())?;
            }
        }
        Ok(())
    }
}

/// Runs `hooks` one after the other, each with `state` on stdin; stops at the first that
/// fails.
pub fn run_hooks(kind: HookKind, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    hooks.iter().try_for_each(|hook| run_hook(kind, hook, state))
}

/// Runs one hook to its end (or its timeout) with `state` on stdin.
pub fn run_hook(kind: HookKind, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let failed = |why| HookError {
        kind,
        path: hook.path.clone(),
        why,
    };
    log::debug!("running the {kind} hook {}", hook.path.display());
    let mut child = spawn(hook).map_err(|error| failed(HookFailure::Spawn(error)))?;
    let deadline = hook
        .timeout_seconds
        .map(|seconds| Instant::now() + Duration::from_secs(seconds));
    let pidfd = pidfd_open(child.id()).ok();
    let watched = watch(&mut child, state, deadline, pidfd);
    let (status, output) = match watched {
        Ok(Some(ended)) => ended,
        Ok(None) => {
            kill_group(&mut child);
            return Err(failed(HookFailure::TimedOut {
                seconds: hook.timeout_seconds.unwrap_or_default(),
            }));
        }
        Err(why) => {
            kill_group(&mut child);
            return Err(failed(why));
        }
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(failed(HookFailure::Exited { code, output })),
        (None, signal) => Err(failed(HookFailure::Signaled {
            signal: signal.unwrap_or_default(),
            output,
        })),
    }
}

/// Starts the hook: its argv and environment, three pipes as its stdio, a process group of
/// its own, and every other descriptor closed at its execve.
fn spawn(hook: &Hook) -> io::Result<Child> {
    let mut command = Command::new(&hook.path);
    if let Some((first, rest)) = hook.args.split_first() {
        command.arg0(first).args(rest);
    }
    if let Some(env) = &hook.env {
        command.env_clear();
        for (key, value) in env.iter().filter_map(|entry| entry.split_once('=')) {
            command.env(key, value);
        }
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: the closure runs in the forked child just before execve; it makes raw syscalls
    // only (close_range, getrlimit, fcntl), which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            mark_cloexec_from_3();
            Ok(())
        })
    };
    command.spawn()
}

/// Marks every descriptor from 3 up close-on-exec (the stdio pipes are 0-2 by now), without
/// allocating: close_range(2), or fcntl on each descriptor below the open-files limit.
fn mark_cloexec_from_3() {
    // SAFETY: close_range and fcntl only change descriptor flags; getrlimit writes the struct
    // it is given.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) == 0 {
            return;
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let highest = match libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) {
            0 => limit.rlim_cur.min(1 << 16) as i32,
            _ => 1024,
        };
        for fd in 3..highest {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Which pipe or event a poll entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    Stdin,
    Stdout,
    Stderr,
    Exit,
}

/// Feeds `state` to the hook's stdin and collects its output until it exits (seen on `pidfd`,
/// or without one by looking every [`EXIT_CHECK_INTERVAL`]): its status and output, or `None`
/// once `deadline` passes first.
fn watch(
    child: &mut Child,
    state: &[u8],
    deadline: Option<Instant>,
    pidfd: Option<OwnedFd>,
) -> Result<Option<(ExitStatus, CapturedOutput)>, HookFailure> {
    let sys = |what| move |errno| HookFailure::Sys { what, errno };
    let mut stdin = child.stdin.take().map(OwnedFd::from).filter(|_| !state.is_empty());
    let mut stdout = child.stdout.take().map(OwnedFd::from);
    let mut stderr = child.stderr.take().map(OwnedFd::from);
    for fd in [&stdin, &stdout, &stderr].into_iter().flatten() {
        set_nonblocking(fd).map_err(sys("fcntl(O_NONBLOCK) on a hook's pipe"))?;
    }
    let mut written = 0;
    let mut output = CapturedOutput::default();
    loop {
        let mut watching: Vec<Watched> = Vec::new();
        let mut poll_fds: Vec<PollFd> = Vec::new();
        for (watched, fd, events) in [
            (Watched::Stdin, &stdin, PollFlags::POLLOUT),
            (Watched::Stdout, &stdout, PollFlags::POLLIN),
            (Watched::Stderr, &stderr, PollFlags::POLLIN),
            (Watched::Exit, &pidfd, PollFlags::POLLIN),
        ] {
            if let Some(fd) = fd {
                watching.push(watched);
                poll_fds.push(PollFd::new(fd.as_fd(), events));
            }
        }
        let mut wait = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        if pidfd.is_none() {
            wait = Some(wait.map_or(EXIT_CHECK_INTERVAL, |left| left.min(EXIT_CHECK_INTERVAL)));
        }
        let timeout = wait.map_or(PollTimeout::NONE, |left| {
            PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
        });
        match nix::poll::poll(&mut poll_fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(HookFailure::Sys { what: "poll", errno }),
        }
        let ready: Vec<Watched> = watching
            .iter()
            .zip(&poll_fds)
            .filter(|(_, fd)| fd.revents().is_some_and(|events| !events.is_empty()))
            .map(|(watched, _)| *watched)
            .collect();
        drop(poll_fds);
        let mut exited = ready.contains(&Watched::Exit);
        for watched in ready {
            match watched {
                Watched::Stdin => {
                    if feed(&mut stdin, &state[written..], &mut written) {
                        stdin = None;
                    }
                }
                Watched::Stdout => collect(&mut stdout, &mut output.stdout),
                Watched::Stderr => collect(&mut stderr, &mut output.stderr),
                Watched::Exit => {}
            }
        }
        if written == state.len() {
            stdin = None;
        }
        if pidfd.is_none() {
            exited = child.try_wait().map_err(|e| sys("waitpid")(io_errno(&e)))?.is_some();
        }
        if exited {
            // Whatever it wrote before it exited is in the pipes now; what a process it left
            // behind writes later is not waited for.
            collect(&mut stdout, &mut output.stdout);
            collect(&mut stderr, &mut output.stderr);
            let status = child.wait().map_err(|e| sys("waitpid")(io_errno(&e)))?;
            return Ok(Some((status, output)));
        }
        if deadline.is_some_and(|at| Instant::now() >= at) {
            return Ok(None);
        }
    }
}

/// Writes what is left of the state to the hook's stdin; true when stdin is done with (all
/// written, or the hook closed it).
fn feed(stdin: &mut Option<OwnedFd>, rest: &[u8], written: &mut usize) -> bool {
    let Some(fd) = stdin else {
        return true;
    };
    match nix::unistd::write(&*fd, rest) {
        Ok(n) => {
            *written += n;
            n == rest.len()
        }
        Err(Errno::EAGAIN | Errno::EINTR) => false,
        // EPIPE: the hook does not read its stdin, which is its right.
        Err(_) => true,
    }
}

/// Reads what the pipe holds now into `kept` (up to [`CAPTURED_BYTES`], the rest is read and
/// dropped); closes it at its end.
fn collect(pipe: &mut Option<OwnedFd>, kept: &mut Vec<u8>) {
    let Some(fd) = pipe else {
        return;
    };
    let mut buffer = [0u8; 4096];
    loop {
        match nix::unistd::read(&*fd, &mut buffer) {
            Ok(0) => {
                *pipe = None;
                return;
            }
            Ok(n) => {
                let room = CAPTURED_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return,
            Err(_) => {
                *pipe = None;
                return;
            }
        }
    }
}

/// Kills the hook and every process of its group, and reaps it.
fn kill_group(child: &mut Child) {
    // SAFETY: kill with a negative pid signals the hook's own process group (it was made the
    // leader of a new one at spawn, and is not reaped yet, so the id is still its own).
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), Errno> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// A pidfd of process `pid` (Linux 5.3), readable once it exits.
pub(crate) fn pidfd_open(pid: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor (close-on-exec),
    // which is owned here and nowhere else.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the descriptor was just returned by the kernel and is not owned elsewhere.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
}

fn io_errno(error: &io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: Some(vec!["PATH=/usr/bin:/bin".into()]),
            timeout_seconds: None,
        }
    }

    #[test]
    fn a_hook_gets_the_state_on_stdin_its_args_and_exactly_its_env() {
        let dir = crate::test_support::TempTree::new("hook-stdin");
        let out = dir.join("out");
        let mut hook = sh(&format!(
            "read state; echo \"$0 $1 $state HOME=${{HOME-unset}} X=$X\" > {}",
            out.display()
        ));
        hook.args.extend(["zero".into(), "first".into()]);
        hook.env.as_mut().unwrap().push("X=1".into());
        run_hook(HookKind::CreateRuntime, &hook, b"{\"id\":\"c1\"}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "zero first {\"id\":\"c1\"} HOME=unset X=1\n"
        );
    }

    #[test]
    fn a_failing_hook_is_named_with_its_status_and_output() {
        let error = run_hook(HookKind::Prestart, &sh("echo out; echo oops >&2; exit 3"), b"{}").unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("the prestart hook /bin/sh failed: exit status 3"),
            "{message}"
        );
        assert!(
            message.contains("stdout: \"out\"") && message.contains("stderr: \"oops\""),
            "{message}"
        );
        assert_eq!(message.lines().count(), 1);
        let missing = run_hook(HookKind::Poststop, &Hook::new("/nonexistent/hook"), b"{}").unwrap_err();
        assert_eq!(missing.errno(), Errno::ENOENT, "{missing}");
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_with_its_group() {
        let dir = crate::test_support::TempTree::new("hook-timeout");
        let pid_file = dir.join("pid");
        let mut hook = sh(&format!("sleep 100 & echo $! > {}; wait", pid_file.display()));
        hook.timeout_seconds = Some(1);
        let error = run_hook(HookKind::CreateRuntime, &hook, b"{}").unwrap_err();
        assert!(matches!(error.why, HookFailure::TimedOut { seconds: 1 }), "{error}");
        let sleeper: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        // The sleep was in the hook's group: killed too (a zombie until init reaps it at most).
        // SIGKILL is delivered at once but the dying takes a moment on a loaded machine.
        let stat = || std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(stat().is_empty() || stat().contains(") Z")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let state = stat();
        assert!(
            state.is_empty() || state.contains(") Z"),
            "the hook's child survived: {state}"
        );
    }

    #[test]
    fn without_a_pidfd_the_exit_and_the_timeout_are_still_seen() {
        let mut child = spawn(&sh("cat > /dev/null; echo done")).unwrap();
        let (status, output) = watch(&mut child, b"{}", None, None).unwrap().unwrap();
        assert!(status.success());
        assert_eq!(output.stdout, b"done\n");
        let mut child = spawn(&sh("sleep 100")).unwrap();
        let deadline = Instant::now() + Duration::from_millis(200);
        assert!(watch(&mut child, b"{}", Some(deadline), None).unwrap().is_none());
        kill_group(&mut child);
    }

    #[test]
    fn a_hook_that_ignores_a_large_state_still_ends() {
        let state = vec![b' '; 1 << 20];
        run_hook(HookKind::Poststart, &sh("exit 0"), &state).unwrap();
        run_hook(HookKind::Poststart, &sh("cat > /dev/null"), &state).unwrap();
    }

    #[test]
    fn hostile_hooks_are_refused() {
        assert!(Hook::new("/bin/true").check().is_ok());
        assert!(Hook::new("bin/true").check().unwrap_err().contains("absolute"));
        let mut hook = Hook::new("/bin/true");
        hook.env = Some(vec!["=x".into()]);
        assert!(hook.check().is_err());
        hook.env = Some(vec!["NOEQUALS".into()]);
        assert!(hook.check().is_err());
        hook.env = None;
        hook.timeout_seconds = Some(0);
        assert!(hook.check().is_err());
        hook.timeout_seconds = None;
        hook.args = vec!["a\0b".into()];
        assert!(hook.check().is_err());
    }

    #[test]
    fn the_state_gets_the_pid_and_status() {
        let mut hooks = LifecycleHooks::default();
        hooks.state.insert("id".into(), "c1".into());
        let state: serde_json::Value = serde_json::from_slice(&hooks.state_json(42, "creating")).unwrap();
        assert_eq!(state, serde_json::json!({"id": "c1", "pid": 42, "status": "creating"}));
    }
}
