//! The OCI mode's state store: one folder per container under the state root (`--root`,
//! [`DEFAULT_ROOT`] by default), holding `state.json` (a [`ContainerState`]) and a `lock` file.
//!
//! - **Atomic**: `state.json` is written to a temporary file and renamed over the old one, so
//!   a reader sees the old state or the new one, never half of either. Reads therefore take no
//!   lock and never wait. Nothing is fsynced, as runc does not: the state describes processes
//!   that a crash of the machine ends anyway (and the default root is a tmpfs), and each fsync
//!   cost `start` and `delete` milliseconds on a disk-backed `--root` (strace -T: 7-11 ms).
//! - **Locked per container**: a writer holds an exclusive `flock` on the container's `lock`
//!   file ([`ContainerLock`]); two crabcans on the same id take turns, crabcans on different ids
//!   never wait for each other.
//! - **Created whole**: [`StateStore::create`] builds the folder, its lock (held) and its first
//!   `state.json` under a temporary dot-name and renames it into place with `RENAME_NOREPLACE`,
//!   so an id is either absent or complete, and of two creators of one id exactly one wins.
//! - **Removed whole**: [`ContainerLock::remove`] renames the folder to a dot-name before
//!   deleting it; a crabcan that was waiting on the old lock sees the container gone.
//!
//! Names starting with `.` in the root are crabcan's own (`.ids`, `.cgroups` of the direct mode,
//! the temporary folders here), which is why ids may not start with `.`.
//!
//! The status a caller sees is derived ([`ContainerState::current_status`]): a container whose
//! process is gone, a zombie, or a different process that reuses its pid (another start time)
//! is `stopped`, whatever the file says.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{rfc3339, OciError, OCI_VERSION};

/// The state root when `--root` is not given. podman calls `state ID` with no options at all,
/// so this must never change.
pub const DEFAULT_ROOT: &str = "/run/crabcan";

/// Longest id accepted, in bytes (runc's limit).
pub const MAX_ID_LEN: usize = 1024;

const STATE_FILE: &str = "state.json";
const STATE_TEMP: &str = ".state.json.tmp";
const LOCK_FILE: &str = "lock";
/// How old an unlocked temporary folder must be before another crabcan takes it for the
/// remains of a creator or remover that died.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);
/// Prefix of a container folder being created (not yet renamed to its id).
const NEW_PREFIX: &str = ".oci-new-";
/// Prefix of a container folder being removed.
const OLD_PREFIX: &str = ".oci-old-";

/// A container's status, as the OCI runtime spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created: `create` has not finished.
    Creating,
    /// Created, held before its process runs the user's program.
    Created,
    /// Its process runs the user's program.
    Running,
    /// Frozen (`pause`).
    Paused,
    /// Its process has exited (or was never started and is gone).
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state.json` holds: the fields runc's `state` prints, and crabcan's own in
/// [`ContainerState::crabcan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    /// The OCI runtime spec version of the bundle.
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// The host pid of the container's process; 0 before there is one.
    pub pid: i32,
    /// The status last recorded; see [`ContainerState::current_status`] for the one to show.
    pub status: Status,
    /// The bundle folder, absolute.
    pub bundle: PathBuf,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
    /// When the container was created, RFC 3339.
    pub created: String,
    /// The user who owns the container (a user name, or `#UID`).
    #[serde(default)]
    pub owner: String,
    /// The bundle's annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// crabcan's own fields, never printed by `state`.
    #[serde(default)]
    pub crabcan: PrivateState,
}

/// crabcan's own part of a container's state: what later commands (`start`, `kill`, `delete`)
/// need to find what the container owns. Every field has a default, so a `state.json` written
/// before a field existed still reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivateState {
    /// The container's cgroups (one per v1 hierarchy, or one on cgroup2).
    pub cgroup_paths: Vec<PathBuf>,
    /// Its cgroup path relative to each hierarchy's root, to open it again.
    pub cgroup_path: Option<PathBuf>,
    /// The cgroup v2 subtree delegated to the ordinary user who created the container, which
    /// `cgroup_path` is relative to; `None` for root's containers.
    pub cgroup_base: Option<PathBuf>,
    /// The FIFO `start` opens to release the created container.
    pub start_fifo: Option<PathBuf>,
    /// The start time of the container's process (`/proc/PID/stat` field 22, clock ticks since
    /// boot), which tells that process from a later one that reuses its pid.
    pub init_start_time: Option<u64>,
    /// The bundle's `poststart` hooks, kept from `create` (the bundle is not read again).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<crate::hooks::Hook>,
    /// The bundle's `poststop` hooks, for `delete`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<crate::hooks::Hook>,
}

/// What `crabcan state ID` prints, in runc's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateReport {
    /// See [`ContainerState::oci_version`].
    pub oci_version: String,
    /// See [`ContainerState::id`].
    pub id: String,
    /// The pid, 0 when the container is stopped.
    pub pid: i32,
    /// The derived status ([`ContainerState::current_status`]).
    pub status: Status,
    /// See [`ContainerState::bundle`].
    pub bundle: PathBuf,
    /// See [`ContainerState::rootfs`].
    pub rootfs: PathBuf,
    /// See [`ContainerState::created`].
    pub created: String,
    /// See [`ContainerState::annotations`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// See [`ContainerState::owner`].
    pub owner: String,
}

impl ContainerState {
    /// A new container's state: status `creating`, no pid yet, created now, owned by the
    /// effective user.
    pub fn new(id: &str, bundle: impl Into<PathBuf>, rootfs: impl Into<PathBuf>) -> ContainerState {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        ContainerState {
            oci_version: OCI_VERSION.to_owned(),
            id: id.to_owned(),
            pid: 0,
            status: Status::Creating,
            bundle: bundle.into(),
            rootfs: rootfs.into(),
            created: rfc3339(SystemTime::now()),
            owner: user_name(euid),
            annotations: BTreeMap::new(),
            crabcan: PrivateState::default(),
        }
    }

    /// The status to show: the recorded one while the container's process lives, `stopped` once
    /// it is gone, a zombie, or its pid belongs to another process (a start time other than
    /// [`PrivateState::init_start_time`]). A container still `creating` without a pid stays
    /// `creating`.
    pub fn current_status(&self) -> Status {
        if self.status == Status::Stopped {
            return Status::Stopped;
        }
        if self.pid <= 0 {
            return if self.status == Status::Creating {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        match process_info(self.pid) {
            ProcessInfo::Gone => Status::Stopped,
            ProcessInfo::Unreadable => self.status,
            ProcessInfo::Alive { state, start_time } => {
                let zombie = matches!(state, 'Z' | 'X' | 'x');
                let reused = self
                    .crabcan
                    .init_start_time
                    .is_some_and(|recorded| recorded != start_time);
                if zombie || reused {
                    Status::Stopped
                } else {
                    self.status
                }
            }
        }
    }

    /// The host's cgroups as the container's were made: below its delegated subtree
    /// ([`PrivateState::cgroup_base`]) for an ordinary user's.
    pub fn cgroup_host(&self) -> Result<crabcan_cgroups::CgroupHost, crabcan_cgroups::CgroupError> {
        let host = crabcan_cgroups::CgroupHost::detect()?;
        match &self.crabcan.cgroup_base {
            Some(base) => host.with_v2_base(base),
            None => Ok(host),
        }
    }

    /// What `state` prints: the derived status, and pid 0 when stopped.
    pub fn report(&self) -> StateReport {
        let status = self.current_status();
        StateReport {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped { 0 } else { self.pid },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: self.annotations.clone(),
            owner: self.owner.clone(),
        }
    }
}

/// What `/proc/PID/stat` says about a process.
enum ProcessInfo {
    /// No such process.
    Gone,
    /// There, but its stat could not be read or parsed: assume the recorded status.
    Unreadable,
    /// Its state letter (field 3) and start time (field 22).
    Alive { state: char, start_time: u64 },
}

fn process_info(pid: i32) -> ProcessInfo {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => parse_stat(&stat).map_or(ProcessInfo::Unreadable, |(state, start_time)| ProcessInfo::Alive {
            state,
            start_time,
        }),
        Err(error) if error.kind() == ErrorKind::NotFound || error.raw_os_error() == Some(libc::ESRCH) => {
            ProcessInfo::Gone
        }
        Err(_) => ProcessInfo::Unreadable,
    }
}

/// The state letter and start time in a `/proc/PID/stat` line. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4..=21 come between the state (3) and the start time (22).
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

/// The start time of process `pid` (`/proc/PID/stat` field 22, clock ticks since boot), or
/// `None` when it does not exist or cannot be read. Record it as
/// [`PrivateState::init_start_time`] when the container's process is born.
pub fn process_start_time(pid: i32) -> Option<u64> {
    match process_info(pid) {
        ProcessInfo::Alive { start_time, .. } => Some(start_time),
        _ => None,
    }
}

/// The name of user `uid` in `/etc/passwd`, or `#UID` (what runc's `list` shows).
fn user_name(uid: u32) -> String {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id: u32 = fields.nth(1)?.parse().ok()?;
            (id == uid).then(|| name.to_owned())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Checks a container id: runc's rule (`^[\w+\-.]+$` with `\w` ASCII, not `.` or `..`, at
/// most [`MAX_ID_LEN`] bytes) and crabcan's (no leading `.`).
pub fn validate_id(id: &str) -> Result<(), OciError> {
    let invalid = |reason| {
        Err(OciError::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return invalid("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return invalid("it is longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return invalid("it is . or ..");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return invalid("only letters, digits, _, +, - and . are allowed");
    }
    if id.starts_with('.') {
        return invalid("it starts with . (names starting with . are crabcan's own state)");
    }
    Ok(())
}

/// The state root: every container's folder. Cheap to make; it touches the disk only when used.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

/// An exclusive lock on one container's state, held until dropped. Only a holder writes the
/// container's `state.json` or removes it.
#[derive(Debug)]
pub struct ContainerLock {
    id: String,
    dir: PathBuf,
    /// The open lock file: the flock lasts as long as it is open.
    _held: File,
}

impl StateStore {
    /// The store rooted at `root` ([`DEFAULT_ROOT`] unless the caller says otherwise).
    pub fn new(root: impl Into<PathBuf>) -> StateStore {
        StateStore { root: root.into() }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of container `id` (which need not exist), after checking the id.
    pub fn container_dir(&self, id: &str) -> Result<PathBuf, OciError> {
        validate_id(id)?;
        Ok(self.root.join(id))
    }

    /// Whether container `id` exists.
    pub fn exists(&self, id: &str) -> Result<bool, OciError> {
        let dir = self.container_dir(id)?;
        match fs::symlink_metadata(dir.join(LOCK_FILE)) {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
            Err(error) => Err(OciError::io("look up the state folder", &dir, error)),
        }
    }

    /// Records a new container, `state.id` being its id, and returns its lock, held: the folder
    /// (mode 0700), its lock and its first `state.json` appear at once. Fails with
    /// [`OciError::AlreadyExists`] when the id is taken, even by a creator running at the same
    /// moment. The root is created (0700) if missing.
    pub fn create(&self, state: &ContainerState) -> Result<ContainerLock, OciError> {
        let id = state.id.as_str();
        let dir = self.container_dir(id)?;
        if self.exists(id)? {
            return Err(OciError::AlreadyExists { id: id.to_owned() });
        }
        self.ensure_root()?;
        self.remove_stale();
        let temp = self.root.join(format!("{NEW_PREFIX}{}", unique_suffix()));
        DirBuilder::new()
            .mode(0o700)
            .create(&temp)
            .map_err(|e| OciError::io("create the state folder", &temp, e))?;
        let result = (|| {
            let file = open_lock(&temp.join(LOCK_FILE), true)?;
            flock(&file, libc::LOCK_EX, &temp)?;
            write_state(&temp, state)?;
            rename_noreplace(&temp, &dir).map_err(|error| match error.raw_os_error() {
                Some(libc::EEXIST | libc::ENOTEMPTY) => OciError::AlreadyExists { id: id.to_owned() },
                _ => OciError::io("move the new state folder to", &dir, error),
            })?;
            Ok(ContainerLock {
                id: id.to_owned(),
                dir: dir.clone(),
                _held: file,
            })
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&temp);
        }
        result
    }

    /// Waits for the lock of container `id` and returns it; [`OciError::NotExist`] if there is
    /// no such container (or it was removed while this waited).
    pub fn lock(&self, id: &str) -> Result<ContainerLock, OciError> {
        let dir = self.container_dir(id)?;
        let path = dir.join(LOCK_FILE);
        let not_exist = || OciError::NotExist { id: id.to_owned() };
        // A container removed and created again while this waited has a new lock file: take
        // that one instead. Bounded, so a pathological churn cannot spin forever.
        for _ in 0..64 {
            let file = match open_lock(&path, false) {
                Err(OciError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => return Err(not_exist()),
                other => other?,
            };
            flock(&file, libc::LOCK_EX, &path)?;
            let held = file
                .metadata()
                .map_err(|e| OciError::io("inspect the lock file", &path, e))?;
            match fs::symlink_metadata(&path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(ContainerLock {
                        id: id.to_owned(),
                        dir,
                        _held: file,
                    })
                }
                Ok(_) => continue,
                Err(error) if error.kind() == ErrorKind::NotFound => return Err(not_exist()),
                Err(error) => return Err(OciError::io("inspect the lock file", &path, error)),
            }
        }
        Err(not_exist())
    }

    /// The recorded state of container `id`, without waiting for its lock (writes are atomic).
    pub fn load(&self, id: &str) -> Result<ContainerState, OciError> {
        let dir = self.container_dir(id)?;
        read_state(id, &dir)
    }

    /// Every container's recorded state, sorted by id. An empty list when the root does not
    /// exist; a container removed while this reads is left out.
    pub fn list(&self) -> Result<Vec<ContainerState>, OciError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(OciError::io("read the state root", &self.root, error)),
        };
        let mut states = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| OciError::io("read the state root", &self.root, e))?;
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if validate_id(&id).is_err() || !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            match read_state(&id, &entry.path()) {
                Ok(state) => states.push(state),
                Err(OciError::NotExist { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        states.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(states)
    }

    /// Creates the root (0700) when missing; an existing root is left as it is (the direct mode
    /// shares it).
    fn ensure_root(&self) -> Result<(), OciError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| OciError::io("create the state root", &self.root, e))
    }

    /// Removes the temporary folders of creators and removers that died half-way: those whose
    /// lock nobody holds. Best effort; a failure here only leaves a dot-folder behind.
    fn remove_stale(&self) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with(NEW_PREFIX) && !name.starts_with(OLD_PREFIX) {
                continue;
            }
            let path = entry.path();
            let lock = path.join(LOCK_FILE);
            // A creator makes the folder, then its lock file, then takes the lock: a young
            // folder may be one in those few instructions, so only an old one is judged.
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > STALE_AFTER);
            let unlocked = match open_lock(&lock, false) {
                Ok(file) => flock(&file, libc::LOCK_EX | libc::LOCK_NB, &lock).is_ok(),
                Err(_) => true,
            };
            if old && unlocked {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
}

impl ContainerLock {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container's state folder: a place for what it owns (e.g. its start FIFO).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The recorded state.
    pub fn load(&self) -> Result<ContainerState, OciError> {
        read_state(&self.id, &self.dir)
    }

    /// Replaces the recorded state, atomically.
    pub fn save(&self, state: &ContainerState) -> Result<(), OciError> {
        write_state(&self.dir, state)
    }

    /// Removes the container's folder and everything in it, then releases the lock. The folder
    /// is first renamed away, so from that moment the id is free and waiters see it gone.
    pub fn remove(self) -> Result<(), OciError> {
        let Some(root) = self.dir.parent() else {
            return Err(OciError::io(
                "remove the state folder",
                &self.dir,
                std::io::Error::from(ErrorKind::InvalidInput),
            ));
        };
        let away = root.join(format!("{OLD_PREFIX}{}", unique_suffix()));
        fs::rename(&self.dir, &away).map_err(|e| OciError::io("remove the state folder", &self.dir, e))?;
        match fs::remove_dir_all(&away) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
            Err(error) => Err(OciError::io("remove the state folder", &away, error)),
        }
    }
}

fn read_state(id: &str, dir: &Path) -> Result<ContainerState, OciError> {
    let path = dir.join(STATE_FILE);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => return Err(OciError::NotExist { id: id.to_owned() }),
        Err(error) => return Err(OciError::io("read the container state", &path, error)),
    };
    serde_json::from_slice(&text).map_err(|source| OciError::CorruptState {
        id: id.to_owned(),
        path,
        source,
    })
}

/// Writes `state.json` in `dir` through a temporary file renamed over it (not fsynced: see the
/// module doc). The caller holds the folder's lock, so the temporary name is its alone.
fn write_state(dir: &Path, state: &ContainerState) -> Result<(), OciError> {
    let text = serde_json::to_vec(state).map_err(|source| OciError::Encode {
        what: "the container state",
        source,
    })?;
    let temp = dir.join(STATE_TEMP);
    let path = dir.join(STATE_FILE);
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&temp)?;
        file.write_all(&text)
    };
    if let Err(error) = write() {
        let _ = fs::remove_file(&temp);
        return Err(OciError::io("write the container state", &temp, error));
    }
    fs::rename(&temp, &path).map_err(|e| OciError::io("write the container state", &path, e))?;
    Ok(())
}

fn open_lock(path: &Path, create: bool) -> Result<File, OciError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| OciError::io("open the lock file", path, e))
}

fn flock(file: &File, operation: libc::c_int, path: &Path) -> Result<(), OciError> {
    loop {
        // SAFETY: flock on a descriptor `file` owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != ErrorKind::Interrupted {
            return Err(OciError::io("lock", path, error));
        }
    }
}

/// `rename(from, to)` that fails with EEXIST instead of replacing an existing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c_path = |path: &Path| {
        CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::Error::from(ErrorKind::InvalidInput))
    };
    let (from, to) = (c_path(from)?, c_path(to)?);
    // SAFETY: renameat2 reads two NUL-terminated paths that live across the call. Called
    // through syscall(2) because not every libc (musl) has the wrapper.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A name no other crabcan process (nor this one, again) picks at the same time.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    fn temp_root(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crabcan-state-{tag}-{}", unique_suffix()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn state(id: &str) -> ContainerState {
        ContainerState::new(id, "/bundle", "/bundle/rootfs")
    }

    #[test]
    fn ids_follow_runcs_rule_and_refuse_dot_names() {
        for good in ["a", "abc-DEF_1.2+3", "x.", &"a".repeat(MAX_ID_LEN)] {
            assert!(validate_id(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".ids",
            ".cgroups",
            "a/b",
            "../x",
            "a b",
            "é",
            "a\0b",
            &"a".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(
                matches!(validate_id(bad), Err(OciError::InvalidId { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn create_load_save_list_remove() {
        let root = temp_root("cycle");
        let store = StateStore::new(&root);
        assert!(store.list().unwrap().is_empty(), "a missing root lists nothing");
        let lock = store.create(&state("one")).unwrap();
        let mode = fs::metadata(&root).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(fs::metadata(lock.dir()).unwrap().mode() & 0o777, 0o700);
        let mut recorded = lock.load().unwrap();
        assert_eq!(recorded, state("one").clone_with_created(&recorded.created));
        recorded.status = Status::Created;
        recorded.crabcan.cgroup_paths.push("/sys/fs/cgroup/x".into());
        lock.save(&recorded).unwrap();
        assert_eq!(store.load("one").unwrap(), recorded);
        drop(lock);
        drop(store.create(&state("two")).unwrap());
        let ids: Vec<String> = store.list().unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["one", "two"]);
        assert!(matches!(
            store.create(&state("one")),
            Err(OciError::AlreadyExists { id }) if id == "one"
        ));
        store.lock("one").unwrap().remove().unwrap();
        assert!(matches!(store.load("one"), Err(OciError::NotExist { .. })));
        assert!(matches!(store.lock("one"), Err(OciError::NotExist { .. })));
        store.lock("two").unwrap().remove().unwrap();
        let left: Vec<_> = fs::read_dir(&root).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        fs::remove_dir(&root).unwrap();
    }

    impl ContainerState {
        fn clone_with_created(mut self, created: &str) -> ContainerState {
            self.created = created.to_owned();
            self
        }
    }

    #[test]
    fn state_json_is_replaced_atomically_and_private_fields_default() {
        let root = temp_root("atomic");
        let store = StateStore::new(&root);
        let lock = store.create(&state("a")).unwrap();
        let dir = lock.dir().to_owned();
        // Readers racing a writer always see a whole state.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    store.load("a").unwrap();
                    reads += 1;
                }
                reads
            })
        };
        let mut current = lock.load().unwrap();
        for n in 0..200 {
            current.annotations.insert(format!("k{n}"), "v".repeat(n));
            lock.save(&current).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert!(!dir.join(STATE_TEMP).exists(), "the temporary file is renamed away");
        // A state.json without the private part (an older crabcan's) still reads.
        fs::write(
            dir.join(STATE_FILE),
            r#"{"ociVersion":"1.0.2","id":"a","pid":0,"status":"created","bundle":"/b","rootfs":"/b/r","created":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let old = store.load("a").unwrap();
        assert_eq!(old.crabcan, PrivateState::default());
        assert_eq!(old.owner, "");
        fs::write(dir.join(STATE_FILE), "{").unwrap();
        assert!(matches!(store.load("a"), Err(OciError::CorruptState { .. })));
        lock.remove().unwrap();
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn one_lock_per_id_and_ids_do_not_wait_for_each_other() {
        let root = temp_root("lock");
        let store = StateStore::new(&root);
        drop(store.create(&state("a")).unwrap());
        drop(store.create(&state("b")).unwrap());
        let held = store.lock("a").unwrap();
        // Another id is free at once.
        let started = Instant::now();
        drop(store.lock("b").unwrap());
        assert!(started.elapsed() < Duration::from_secs(1));
        // The same id waits until the holder lets go.
        let waiter = {
            let store = store.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let lock = store.lock("a");
                (started.elapsed(), lock.map(|_| ()))
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        // Removed while the other waited: it sees the container gone.
        held.remove().unwrap();
        let (waited, result) = waiter.join().unwrap();
        assert!(waited >= Duration::from_millis(250), "waited only {waited:?}");
        assert!(matches!(result, Err(OciError::NotExist { .. })), "{result:?}");
        store.lock("b").unwrap().remove().unwrap();
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn concurrent_creates_of_one_id_have_one_winner() {
        let root = temp_root("race");
        let store = StateStore::new(&root);
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.create(&state("same")).map(drop)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(OciError::AlreadyExists { .. }))));
        store.lock("same").unwrap().remove().unwrap();
        let left: Vec<_> = fs::read_dir(&root).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn stale_temporary_folders_are_removed() {
        let root = temp_root("stale");
        let store = StateStore::new(&root);
        store.ensure_root().unwrap();
        let stale = root.join(format!("{NEW_PREFIX}dead"));
        fs::create_dir(&stale).unwrap();
        File::create(stale.join(LOCK_FILE)).unwrap();
        let long_ago = std::time::SystemTime::now() - STALE_AFTER * 2;
        File::open(&stale).unwrap().set_modified(long_ago).unwrap();
        // A creator between making its folder and taking its lock: young, so left alone.
        let young = root.join(format!("{NEW_PREFIX}young"));
        fs::create_dir(&young).unwrap();
        File::create(young.join(LOCK_FILE)).unwrap();
        drop(store.create(&state("a")).unwrap());
        assert!(!stale.exists());
        assert!(young.exists(), "a creator's folder was taken for stale");
        store.lock("a").unwrap().remove().unwrap();
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn status_is_derived_from_the_process() {
        let mut state = state("s");
        assert_eq!(state.current_status(), Status::Creating, "creating, no pid yet");
        state.status = Status::Created;
        assert_eq!(state.current_status(), Status::Stopped, "no pid");
        // This process: alive.
        let me = std::process::id() as i32;
        state.pid = me;
        state.status = Status::Running;
        assert_eq!(state.current_status(), Status::Running);
        state.crabcan.init_start_time = process_start_time(me);
        assert!(state.crabcan.init_start_time.is_some());
        assert_eq!(state.current_status(), Status::Running);
        assert_eq!(state.report().pid, me);
        // Same pid, another start time: a reused pid.
        state.crabcan.init_start_time = state.crabcan.init_start_time.map(|t| t + 1);
        assert_eq!(state.current_status(), Status::Stopped);
        assert_eq!(state.report().pid, 0);
        // A process that exited and was reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        state.pid = pid;
        state.crabcan.init_start_time = None;
        assert_eq!(state.current_status(), Status::Stopped);
        // A zombie.
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).unwrap())
            .unwrap()
            .0
            != 'Z'
        {
            assert!(Instant::now() < deadline, "child never became a zombie");
            std::thread::sleep(Duration::from_millis(5));
        }
        state.pid = pid;
        state.status = Status::Running;
        assert_eq!(state.current_status(), Status::Stopped);
        drop(child);
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line =
            "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 123_456)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_report_has_runcs_fields_in_runcs_order() {
        let mut state = state("r");
        state.status = Status::Stopped;
        state.crabcan.start_fifo = Some("/x".into());
        let json = serde_json::to_string(&state.report()).unwrap();
        let keys: Vec<&str> = json
            .split(&[',', '{'][..])
            .filter_map(|part| part.split('"').nth(1))
            .collect();
        assert_eq!(
            keys,
            [
                "ociVersion",
                "id",
                "pid",
                "status",
                "bundle",
                "rootfs",
                "created",
                "owner"
            ]
        );
        assert!(json.contains(r#""status":"stopped""#));
        state.annotations.insert("a".into(), "b".into());
        assert!(serde_json::to_string(&state.report())
            .unwrap()
            .contains(r#""annotations":{"a":"b"}"#));
    }
}
