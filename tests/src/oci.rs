//! The OCI tests' common part: a test's own state root and bundle ([`Oci`], `crabcan spec`
//! pointed at the test rootfs), crabcan run with runc's command line, the host checked for
//! what a container leaves, and the console socket's receiving side ([`receive_fd`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::{cgroup_mounts, crabcan_bin, require_root, rootfs, unique_hostname, Run, TempDir};

/// A test's own state root and bundle, removed on drop.
pub struct Oci {
    pub scratch: TempDir,
}

impl Oci {
    pub fn new(tag: &str) -> Oci {
        require_root();
        Oci {
            scratch: TempDir::new(&format!("ocirun-{tag}")),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.scratch.path().join("root")
    }

    pub fn bundle(&self) -> PathBuf {
        self.scratch.path().join("bundle")
    }

    /// `crabcan spec` in the bundle (replacing the config of an earlier call), then `edit` on
    /// its JSON, with the test rootfs as root and `args` as the process.
    pub fn write_bundle(&self, args: &[&str], edit: impl FnOnce(&mut Value)) {
        std::fs::create_dir_all(self.bundle()).unwrap();
        let _ = std::fs::remove_file(self.bundle().join("config.json"));
        self.crabcan(&["spec", "--bundle", self.bundle().to_str().unwrap()])
            .expect_success();
        let path = self.bundle().join("config.json");
        let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        spec["root"]["path"] = Value::from(rootfs().display().to_string());
        spec["process"]["terminal"] = Value::Bool(false);
        spec["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        edit(&mut spec);
        std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    }

    /// `crabcan --root ROOT ARGS...`, its stdout and stderr in files: a detached container
    /// keeps crabcan's stdio (as runc's does), so pipes would never reach their end.
    pub fn crabcan(&self, args: &[&str]) -> Run {
        self.spawn(self.command(args)).wait()
    }

    /// The command line `crabcan --root ROOT ARGS...`, stdin from /dev/null.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(crabcan_bin());
        command.arg("--root").arg(self.root()).args(args).stdin(Stdio::null());
        command
    }

    /// Starts `command` with its stdout and stderr in files of the scratch folder.
    pub fn spawn(&self, mut command: Command) -> Background {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let out = self.scratch.path().join(format!("stdout.{n}"));
        let err = self.scratch.path().join(format!("stderr.{n}"));
        let child = command
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("cannot start crabcan");
        Background { child, out, err }
    }

    pub fn state(&self, id: &str) -> Value {
        let run = self.crabcan(&["state", id]);
        run.expect_success();
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("state is not JSON ({e}): {}", run.stdout))
    }

    pub fn assert_gone(&self, id: &str) {
        assert!(!self.root().join(id).exists(), "the state folder of {id} is left");
        let cgroups = cgroup_mounts()
            .into_iter()
            .map(|mount| mount.join("crabcan").join(id))
            .filter(|dir| dir.exists())
            .collect::<Vec<_>>();
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    }
}

/// A crabcan started by [`Oci::spawn`].
pub struct Background {
    pub child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Background {
    /// Waits for it to end: its status and what it wrote.
    pub fn wait(mut self) -> Run {
        let status = self.child.wait().expect("cannot wait for crabcan");
        Run::from_output(std::process::Output {
            status,
            stdout: std::fs::read(&self.out).unwrap_or_default(),
            stderr: std::fs::read(&self.err).unwrap_or_default(),
        })
    }
}

impl Drop for Oci {
    /// A test that failed halfway leaves no container behind: every one still in its root is
    /// deleted with `--force` (which kills it and removes its cgroup).
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.root()) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !id.starts_with('.') {
                let _ = self.crabcan(&["delete", "--force", &id]);
            }
        }
    }
}

pub fn unique_id(tag: &str) -> String {
    unique_hostname(&format!("oci-{tag}"))
}

/// Receives one message with one descriptor on `stream`: (payload, fd).
pub fn receive_fd(stream: &std::os::unix::net::UnixStream) -> (String, std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut payload = [0u8; 256];
    let mut control = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below is valid for the call.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = control.len();
    // SAFETY: recvmsg fills the buffers `message` points to.
    let received = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut message, 0) };
    assert!(received > 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel wrote a control message header at the start of `control`.
    let header = unsafe { libc::CMSG_FIRSTHDR(&message) };
    assert!(!header.is_null(), "no descriptor came with the message");
    // SAFETY: an SCM_RIGHTS message carries one int, the descriptor, right after the header.
    let fd = unsafe {
        assert_eq!((*header).cmsg_type, libc::SCM_RIGHTS);
        std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<i32>())
    };
    let name = String::from_utf8_lossy(&payload[..received as usize]).into_owned();
    // SAFETY: the kernel just installed this descriptor for us.
    (name, unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Everything read from a pty master until the other side is closed (the process on it
/// exited: EIO), as text.
pub fn read_until_hangup(master: &mut std::fs::File) -> String {
    use std::io::Read;
    let mut output = Vec::new();
    let mut buffer = [0u8; 1024];
    while let Ok(n) = master.read(&mut buffer) {
        if n == 0 {
            break;
        }
        output.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&output).into_owned()
}
