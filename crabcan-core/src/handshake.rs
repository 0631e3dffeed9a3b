//! The parent/child handshake over a `SOCK_SEQPACKET` socketpair (close-on-exec on both ends).
//!
//! ```text
//! parent                              child (in the new namespaces)
//!   clone ───────────────────────────▶ waits (still dumpable, so /proc/PID is the caller's)
//!   writes uid_map/gid_map (or runs
//!   newuidmap/newgidmap), sends Go ──▶ sets itself up (hostname, mounts)
//!   makes the cgroup (v2: made
//!   before the clone), sends Joined ─▶ (hooks) joins it here (v1: through the tasks files)
//!   (hooks) runs prestart and   ◀───── RuntimeHooks: mounts made, before pivot_root
//!   createRuntime, RuntimeHooksDone ─▶ createContainer hooks, pivot_root, rlimits...
//!   (tty mode) receives the pty ◀───── PtyMaster + fd
//!                                      (no hooks) joins the cgroup here, as late as it can
//!                                      cgroup namespace, caps, identity...
//!   receives Ready ◀────────────────── Ready: held before execve
//!   sends Start ─────────────────────▶ seccomp, startContainer hooks, execve
//!   (or: another process opens the start FIFO, see `StartGate::Fifo`;
//!    or: nobody, the child goes on at once, see `StartGate::Immediately`)
//!   (learning: receives the listener ◀ Listening + fd, sent where the filter is loaded;
//!    crabcan answers the filter's notifications from then on, see `learning.rs`)
//!   EOF (close-on-exec) ◀───────────── the command runs
//! ```
//!
//! `crabcan exec` uses the same socket between crabcan and the process that enters a running
//! container: the entering process reports the host pid of the process it forked into the
//! container's pid namespace with `Entered`, then `PtyMaster` (with `--tty`), then EOF at execve
//! or `Failed`.
//!
//! A failing step sends `Failed` with the step, errno and a one-line detail. Every message is
//! checked; an EOF where a message was expected means the peer died, never a hang. The `Ready`/
//! `Start` pair is what lets a container be created now and started later by someone else.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};

/// The handshake socket broke, or carried something that is not a message.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// recvmsg failed.
    #[error("reading the handshake socket failed: {0}")]
    Read(Errno),
    /// The bytes are no message of this protocol.
    #[error("an undecodable handshake message ({length} bytes, first {first:?})")]
    Undecodable { length: usize, first: Option<u8> },
}

/// One message of the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Parent → child: id maps written; go on with the setup. Carries, as `SCM_RIGHTS`, an
    /// idmapped copy of the rootfs and of each `--add` source for which `idmapped` is true
    /// (rootfs first, then the binds in order; see `idmap.rs`). `pid` is the child's pid as
    /// crabcan sees it, for the state its hooks get.
    Go { idmapped: Vec<bool>, pid: i32 },
    /// Parent → child: the child is in its cgroup (sent while the child sets up its filesystem,
    /// so the two overlap); the child waits for it before its cgroup namespace and user code.
    Joined,
    /// Child → parent: the container's mounts are made and pivot_root is next: run the
    /// `prestart` and `createRuntime` hooks now. Sent only when there are such hooks.
    RuntimeHooks,
    /// Parent → child: the hooks ran and succeeded; go on.
    RuntimeHooksDone,
    /// Child → parent: the pseudo-terminal master follows as an `SCM_RIGHTS` fd.
    PtyMaster,
    /// Child → parent: set up completely, waiting for `Start` before execve.
    Ready,
    /// Parent → child: run the command.
    Start,
    /// Child → parent: the seccomp learning filter is installed; its listener follows as an
    /// `SCM_RIGHTS` fd (sent by crabcan-seccomp's hand-over, the one call the filter lets
    /// through).
    Listening,
    /// Child → parent: a setup step failed.
    Failed { step: String, errno: i32, detail: String },
    /// Entering process → crabcan (`exec`): it joined the container and forked the process
    /// that becomes the command, whose host pid this is.
    Entered { pid: i32 },
}

const MAX_MESSAGE: usize = 4096;
/// Most descriptors one message carries (a pty master, or a `tasks` file per v1 hierarchy).
pub const MAX_FDS: usize = 16;

impl Message {
    /// `Go` with no idmapped copies.
    pub const GO: Message = Message::Go {
        idmapped: Vec::new(),
        pid: 0,
    };

    /// Whether `other` is the same kind of message (payloads aside).
    pub fn same_kind(&self, other: &Message) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Message::Go { idmapped, pid } => {
                let mut bytes = vec![b'G'];
                bytes.extend_from_slice(&pid.to_le_bytes());
                bytes.extend(idmapped.iter().map(|&yes| u8::from(yes)));
                bytes
            }
            Message::Joined => vec![b'J'],
            Message::RuntimeHooks => vec![b'H'],
            Message::RuntimeHooksDone => vec![b'D'],
            Message::PtyMaster => vec![b'P'],
            Message::Ready => vec![b'R'],
            Message::Start => vec![b'S'],
            Message::Listening => vec![b'L'],
            Message::Failed { step, errno, detail } => {
                let step = &step.as_bytes()[..step.len().min(255)];
                let mut bytes = vec![b'F'];
                bytes.extend_from_slice(&errno.to_le_bytes());
                bytes.push(step.len() as u8);
                bytes.extend_from_slice(step);
                let room = MAX_MESSAGE - bytes.len();
                bytes.extend_from_slice(&detail.as_bytes()[..detail.len().min(room)]);
                bytes
            }
            Message::Entered { pid } => {
                let mut bytes = vec![b'E'];
                bytes.extend_from_slice(&pid.to_le_bytes());
                bytes
            }
        }
    }

    fn decode(bytes: &[u8]) -> Result<Message, HandshakeError> {
        match bytes {
            [b'G', p0, p1, p2, p3, flags @ ..] if flags.iter().all(|&b| b <= 1) => Ok(Message::Go {
                idmapped: flags.iter().map(|&b| b == 1).collect(),
                pid: i32::from_le_bytes([*p0, *p1, *p2, *p3]),
            }),
            [b'J'] => Ok(Message::Joined),
            [b'H'] => Ok(Message::RuntimeHooks),
            [b'D'] => Ok(Message::RuntimeHooksDone),
            [b'P'] => Ok(Message::PtyMaster),
            [b'R'] => Ok(Message::Ready),
            [b'S'] => Ok(Message::Start),
            [b'L'] => Ok(Message::Listening),
            [b'E', p0, p1, p2, p3] => Ok(Message::Entered {
                pid: i32::from_le_bytes([*p0, *p1, *p2, *p3]),
            }),
            [b'F', e0, e1, e2, e3, step_len, rest @ ..] if rest.len() >= *step_len as usize => {
                let (step, detail) = rest.split_at(*step_len as usize);
                Ok(Message::Failed {
                    step: String::from_utf8_lossy(step).into_owned(),
                    errno: i32::from_le_bytes([*e0, *e1, *e2, *e3]),
                    detail: String::from_utf8_lossy(detail).into_owned(),
                })
            }
            _ => Err(HandshakeError::Undecodable {
                length: bytes.len(),
                first: bytes.first().copied(),
            }),
        }
    }
}

/// One end of the handshake socket.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// What `Channel::receive` got: a message (and the fds passed with it), or the end of the
/// conversation.
#[derive(Debug)]
pub enum Received {
    Message(Message, Vec<OwnedFd>),
    /// The peer closed its end: it exited, or (seen from the parent after `Start`) it execed.
    Closed,
}

impl Channel {
    /// A connected pair: (parent end, child end). Both are close-on-exec.
    pub fn pair() -> nix::Result<(Channel, Channel)> {
        let (parent, child) = socket::socketpair(
            socket::AddressFamily::Unix,
            socket::SockType::SeqPacket,
            None,
            socket::SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel { fd: parent }, Channel { fd: child }))
    }

    pub fn send(&self, message: &Message) -> nix::Result<()> {
        self.send_with_fds(message, &[])
    }

    /// Sends a message, with `fds` attached as `SCM_RIGHTS` (at most [`MAX_FDS`]).
    pub fn send_with_fds(&self, message: &Message, fds: &[RawFd]) -> nix::Result<()> {
        if fds.len() > MAX_FDS {
            return Err(Errno::E2BIG);
        }
        let bytes = message.encode();
        let iov = [IoSlice::new(&bytes)];
        let control: Vec<ControlMessage> = if fds.is_empty() {
            vec![]
        } else {
            vec![ControlMessage::ScmRights(fds)]
        };
        loop {
            match socket::sendmsg::<()>(self.fd.as_raw_fd(), &iov, &control, MsgFlags::MSG_NOSIGNAL, None) {
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno),
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Waits for the next message. Errors only on a broken socket or an undecodable message.
    pub fn receive(&self) -> Result<Received, HandshakeError> {
        let mut buffer = [0u8; MAX_MESSAGE];
        let mut control = nix::cmsg_space!([RawFd; MAX_FDS]);
        let mut iov = [IoSliceMut::new(&mut buffer)];
        // ECONNRESET means the peer exited with messages of ours unread; it is reported once
        // and cleared, and what the peer sent before it exited is still queued: read that.
        let mut reset_seen = false;
        let (length, passed_fd) = loop {
            match socket::recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut control),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) if !reset_seen => {
                    reset_seen = true;
                    continue;
                }
                Err(Errno::ECONNRESET) => return Ok(Received::Closed),
                Err(errno) => return Err(HandshakeError::Read(errno)),
                Ok(received) => {
                    let mut passed = Vec::new();
                    if let Ok(messages) = received.cmsgs() {
                        for control_message in messages {
                            if let ControlMessageOwned::ScmRights(fds) = control_message {
                                // SAFETY: the kernel just installed these fds for us; nothing
                                // else owns them.
                                passed.extend(fds.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                            }
                        }
                    }
                    break (received.bytes, passed);
                }
            }
        };
        if length == 0 {
            return Ok(Received::Closed);
        }
        let message = Message::decode(&buffer[..length])?;
        Ok(Received::Message(message, passed_fd))
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for message in [
            Message::GO,
            Message::Go {
                idmapped: vec![true, false, true],
                pid: 4242,
            },
            Message::Joined,
            Message::RuntimeHooks,
            Message::RuntimeHooksDone,
            Message::PtyMaster,
            Message::Ready,
            Message::Start,
            Message::Listening,
            Message::Failed {
                step: "mounts".into(),
                errno: 1,
                detail: "cannot mount proc on /proc".into(),
            },
            Message::Entered { pid: 4_194_303 },
        ] {
            assert_eq!(Message::decode(&message.encode()).unwrap(), message);
        }
        assert!(Message::decode(b"").is_err());
        assert!(Message::decode(b"X").is_err());
        assert!(Message::decode(b"F\x01\x00\x00\x00\x09ab").is_err());
    }

    #[test]
    fn socket_carries_messages_fds_and_eof() {
        let (parent, child) = Channel::pair().unwrap();
        child.send(&Message::Ready).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        child.send_with_fds(&Message::PtyMaster, &[file.as_raw_fd()]).unwrap();
        child
            .send_with_fds(
                &Message::Joined,
                &[file.as_raw_fd(), file.as_raw_fd(), file.as_raw_fd()],
            )
            .unwrap();
        assert!(matches!(parent.receive().unwrap(), Received::Message(Message::Ready, fds) if fds.is_empty()));
        assert!(matches!(parent.receive().unwrap(), Received::Message(Message::PtyMaster, fds) if fds.len() == 1));
        assert!(matches!(parent.receive().unwrap(), Received::Message(Message::Joined, fds) if fds.len() == 3));
        assert_eq!(
            child.send_with_fds(&Message::Joined, &[0; MAX_FDS + 1]),
            Err(Errno::E2BIG)
        );
        drop(child);
        assert!(matches!(parent.receive().unwrap(), Received::Closed));
    }

    #[test]
    fn a_peer_that_exits_with_unread_messages_still_gets_its_last_word_read() {
        // The child's failure report races with the parent's next message: the child exits
        // with `Joined` unread, which the kernel reports to the parent as ECONNRESET.
        let (parent, child) = Channel::pair().unwrap();
        parent.send(&Message::Joined).unwrap();
        let failed = Message::Failed {
            step: "mounts".into(),
            errno: libc::EACCES,
            detail: "cannot open the mount point proc".into(),
        };
        child.send(&failed).unwrap();
        drop(child);
        assert!(matches!(parent.receive().unwrap(), Received::Message(m, _) if m == failed));
        assert!(matches!(parent.receive().unwrap(), Received::Closed));
    }
}
