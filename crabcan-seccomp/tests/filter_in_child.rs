//! Installs the shipped filters in forked children (no root needed: the
//! child sets PR_SET_NO_NEW_PRIVS) and checks what syscalls return there.
//! Children only make raw syscalls and write to a pipe before `_exit`.
//! x86_64 only: the probes include syscalls aarch64 lacks (`chmod`, ...).
#![cfg(target_arch = "x86_64")]

use std::ffi::CString;
use std::time::{Duration, Instant};

use crabcan_seccomp::{CompiledFilter, Profile};

const EPERM: i64 = -(libc::EPERM as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);
const ENOTTY: i64 = -(libc::ENOTTY as i64);

/// What a probe should return: a description and a check.
type Expectation = (&'static str, fn(i64) -> bool);

/// One syscall made in the filtered child.
struct Probe {
    what: &'static str,
    nr: libc::c_long,
    args: [u64; 6],
}

impl Probe {
    fn new(what: &'static str, nr: libc::c_long, a: &[u64]) -> Self {
        let mut args = [0u64; 6];
        args[..a.len()].copy_from_slice(a);
        Probe { what, nr, args }
    }
}

/// The syscall's return value, or `-errno`.
fn raw_syscall(probe: &Probe) -> i64 {
    let [a, b, c, d, e, f] = probe.args;
    // SAFETY: every probe passes either integers or pointers to live memory
    // prepared by the parent before fork.
    let rc = unsafe { libc::syscall(probe.nr, a, b, c, d, e, f) };
    if rc == -1 {
        // SAFETY: reading this thread's errno.
        -(unsafe { *libc::__errno_location() } as i64)
    } else {
        rc
    }
}

/// Forks; the child installs `filter`, runs the probes and writes each
/// result (i64) to a pipe. Returns the results.
fn run_probes_in_child(filter: &CompiledFilter, probes: &[Probe]) -> Vec<i64> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes syscalls and writes to the pipe, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child_main(filter, probes, fds[1]);
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    let results = read_results(fds[0], probes.len());
    let status = wait_with_timeout(pid, Duration::from_secs(20));
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed, status {status:#x}"
    );
    results
}

fn child_main(filter: &CompiledFilter, probes: &[Probe], out: i32) -> ! {
    if filter.install_with_no_new_privs().is_err() {
        // SAFETY: leaving the child without running destructors.
        unsafe { libc::_exit(3) };
    }
    for probe in probes {
        let result = raw_syscall(probe);
        if result == 0 && probe.nr == libc::SYS_clone {
            // A clone that should have been denied succeeded: we are the new child.
            // SAFETY: as above.
            unsafe { libc::_exit(0) };
        }
        let bytes = result.to_le_bytes();
        // SAFETY: writing 8 bytes from a live buffer.
        unsafe { libc::write(out, bytes.as_ptr().cast(), bytes.len()) };
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

fn read_results(fd: i32, count: usize) -> Vec<i64> {
    let mut bytes = vec![0u8; count * 8];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: reading into the unfilled tail of `bytes`.
        let n = unsafe { libc::read(fd, bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled) };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    // SAFETY: closing our read end.
    unsafe { libc::close(fd) };
    assert_eq!(filled, bytes.len(), "child reported {} of {count} results", filled / 8);
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

fn wait_with_timeout(pid: libc::pid_t, timeout: Duration) -> i32 {
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            return status;
        }
        if start.elapsed() > timeout {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("child timed out");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Paths and buffers the probes point to, prepared before fork.
struct Fixture {
    _dir: TempDir,
    file: CString,
    pipe: [i32; 2],
    buffer: Box<[u8; 64]>,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture(tag: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("crabcan-seccomp-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("file");
    std::fs::write(&path, b"x").expect("temp file");
    let file = CString::new(path.to_str().expect("utf-8 path")).expect("no NUL");
    let mut pipe = [0; 2];
    // SAFETY: `pipe` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    Fixture {
        _dir: TempDir(dir),
        file,
        pipe,
        buffer: Box::new([0; 64]),
    }
}

fn common_probes(f: &Fixture) -> Vec<Probe> {
    let path = f.file.as_ptr() as u64;
    let buf = f.buffer.as_ptr() as u64;
    let pipe = f.pipe[0] as u64;
    let at_fdcwd = libc::AT_FDCWD as i64 as u64;
    vec![
        Probe::new("keyctl", libc::SYS_keyctl, &[0, (-3i64) as u64]),
        Probe::new(
            "unshare(CLONE_NEWUSER)",
            libc::SYS_unshare,
            &[libc::CLONE_NEWUSER as u64],
        ),
        Probe::new("chmod 04755", libc::SYS_chmod, &[path, 0o4755]),
        Probe::new("chmod 02755", libc::SYS_chmod, &[path, 0o2755]),
        Probe::new("fchmodat 04755", libc::SYS_fchmodat, &[at_fdcwd, path, 0o4755]),
        Probe::new("fchmodat2 02755", libc::SYS_fchmodat2, &[at_fdcwd, path, 0o2755, 0]),
        Probe::new("chmod 0755", libc::SYS_chmod, &[path, 0o755]),
        Probe::new(
            "ioctl TIOCGWINSZ on a pipe",
            libc::SYS_ioctl,
            &[pipe, libc::TIOCGWINSZ, buf],
        ),
        Probe::new("ioctl TIOCSTI", libc::SYS_ioctl, &[pipe, libc::TIOCSTI, buf]),
        Probe::new(
            "ioctl TIOCSTI with high bits",
            libc::SYS_ioctl,
            &[pipe, 0x1_0000_0000 | libc::TIOCSTI, buf],
        ),
        Probe::new(
            "clone(CLONE_NEWUSER)",
            libc::SYS_clone,
            &[(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64],
        ),
        Probe::new("syscall 999", 999, &[]),
    ]
}

#[test]
fn default_profile_in_a_child() {
    let f = fixture("default");
    let filter = Profile::default_profile().compile().expect("compiles");
    let mut probes = common_probes(&f);
    probes.extend([
        Probe::new("clone3", libc::SYS_clone3, &[0, 0]),
        Probe::new("mount", libc::SYS_mount, &[0, 0, 0, 0, 0]),
        Probe::new("setns", libc::SYS_setns, &[0, 0]),
        Probe::new("ptrace(TRACEME)", libc::SYS_ptrace, &[0]),
        Probe::new("personality query", libc::SYS_personality, &[0xffff_ffff]),
        Probe::new("personality ADDR_NO_RANDOMIZE", libc::SYS_personality, &[0x0040000]),
        Probe::new(
            "socket(AF_UNIX)",
            libc::SYS_socket,
            &[libc::AF_UNIX as u64, libc::SOCK_STREAM as u64],
        ),
        Probe::new(
            "socket(AF_VSOCK)",
            libc::SYS_socket,
            &[libc::AF_VSOCK as u64, libc::SOCK_STREAM as u64],
        ),
        Probe::new("getpid", libc::SYS_getpid, &[]),
        Probe::new("io_uring_setup", libc::SYS_io_uring_setup, &[1, 0]),
    ]);
    let results = run_probes_in_child(&filter, &probes);
    let expected: [Expectation; 22] = [
        ("EPERM", |r| r == EPERM),
        ("EPERM", |r| r == EPERM),
        ("EPERM", |r| r == EPERM),
        ("EPERM", |r| r == EPERM),
        ("EPERM", |r| r == EPERM),
        ("EPERM", |r| r == EPERM),
        ("success", |r| r == 0),
        ("ENOTTY", |r| r == ENOTTY),
        ("EPERM", |r| r == EPERM),
        ("EPERM", |r| r == EPERM),
        ("EPERM", |r| r == EPERM),
        ("ENOSYS", |r| r == ENOSYS),
        ("ENOSYS", |r| r == ENOSYS),
        ("EPERM", |r| r == EPERM),
        ("EPERM", |r| r == EPERM),
        ("EPERM", |r| r == EPERM),
        ("success", |r| r >= 0),
        ("ENOSYS", |r| r == ENOSYS),
        ("a descriptor", |r| r >= 0),
        ("EPERM", |r| r == EPERM),
        ("a pid", |r| r > 0),
        ("EPERM", |r| r == EPERM),
    ];
    assert_eq!(probes.len(), expected.len());
    for ((probe, result), (want, check)) in probes.iter().zip(&results).zip(expected) {
        assert!(check(*result), "{}: expected {want}, got {result}", probe.what);
    }
}

#[test]
fn tutorial_profile_from_bytes_in_a_child() {
    let f = fixture("tutorial");
    let compiled = Profile::tutorial().compile().expect("compiles");
    let filter = CompiledFilter::from_bytes(&compiled.to_bytes()).expect("decodes");
    let probes = common_probes(&f);
    let results = run_probes_in_child(&filter, &probes);
    let expected = [
        EPERM, EPERM, EPERM, EPERM, EPERM, EPERM, 0, ENOTTY, EPERM, EPERM, EPERM, ENOSYS,
    ];
    for ((probe, result), want) in probes.iter().zip(&results).zip(expected) {
        assert_eq!(*result, want, "{}", probe.what);
    }
}

/// Real programs under the default filter: a shell, coreutils, tar, and a
/// Rust thread (glibc's pthread_create tries clone3, gets ENOSYS and falls
/// back to clone).
#[test]
fn ordinary_programs_run_under_the_default_profile() {
    let f = fixture("programs");
    let dir = f._dir.0.to_str().expect("utf-8").to_owned();
    let script = format!(
        "set -e; cd {dir}; ls / >/dev/null; cp file copy; tar -cf t.tar copy; tar -tf t.tar >/dev/null; \
         chmod 755 copy; if chmod 4755 copy 2>/dev/null; then exit 41; fi; \
         grep -q '^Seccomp:.*2' /proc/self/status; cat file | wc -c >/dev/null; \
         ( sleep 0 ) & wait"
    );
    let argv: Vec<CString> = ["/bin/sh", "-c", &script]
        .iter()
        .map(|s| CString::new(*s).expect("no NUL"))
        .collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let filter = Profile::default_profile().compile().expect("compiles");
    // SAFETY: the child installs the filter and execs, or _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        if filter.install_with_no_new_privs().is_err() {
            // SAFETY: leaving the child.
            unsafe { libc::_exit(3) };
        }
        let joined = std::thread::spawn(|| 7).join().unwrap_or(0);
        if joined != 7 {
            // SAFETY: leaving the child.
            unsafe { libc::_exit(4) };
        }
        // SAFETY: argv is a NULL-terminated array of live C strings.
        unsafe { libc::execv(argv_ptrs[0], argv_ptrs.as_ptr()) };
        // SAFETY: leaving the child after a failed exec.
        unsafe { libc::_exit(5) };
    }
    let status = wait_with_timeout(pid, Duration::from_secs(30));
    assert!(libc::WIFEXITED(status), "child killed, status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "script failed under the default profile");
}
