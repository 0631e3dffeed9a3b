//! What a container is made of ([`ContainerConfig`]) and the checks that run before anything on
//! the system is touched ([`ContainerConfig::validate`]). Validation only reads: a configuration
//! that fails it leaves the host exactly as it was.

use std::path::{Path, PathBuf};

use crabcan_cgroups::{CgroupUses, LimitKind, Limits, MissingController};
use crabcan_seccomp::{CompiledFilter, LearningFilter};

use crate::capabilities::CapabilitySet;
use crate::error::ConfigError;
use crate::hooks::LifecycleHooks;
use crate::hostname::validate_hostname;
use crate::learning::SeccompLearning;
use crate::mounts::KERNEL_FILESYSTEMS;
use crate::namespaces::{NamespaceMode, Namespaces};
use crate::spec::{BindMount, IdRange};

/// The directories of the rootfs crabcan mounts filesystems on. They must be real directories.
pub const SYSTEM_MOUNT_POINTS: [&str; 4] = ["proc", "dev", "sys", "tmp"];

/// The PATH a container gets unless `--env PATH=...` says otherwise.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default RLIMIT_NOFILE of the container: systemd's 1024 soft, 524288 hard (the hard one
/// capped at crabcan's own hard limit, which it cannot raise).
pub const DEFAULT_NOFILE: FileLimit = FileLimit {
    soft: 1024,
    hard: 524_288,
};

/// Size of the container's `/tmp` tmpfs when it has no memory limit (with one, `/tmp` gets the
/// memory limit: its pages are charged to the container's memory anyway).
pub const DEFAULT_TMP_SIZE: u64 = 1 << 30;

/// RLIMIT_NOFILE of the container's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    /// The soft limit: what the process gets.
    pub soft: u64,
    /// The hard limit: the most it may raise the soft one to.
    pub hard: u64,
}

impl FileLimit {
    /// The same value as soft and hard limit.
    pub fn both(value: u64) -> FileLimit {
        FileLimit {
            soft: value,
            hard: value,
        }
    }
}

/// How the container's standard streams are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// The container gets a pseudo-terminal of its own, relayed to crabcan's terminal.
    Pty,
    /// The container inherits crabcan's stdin/stdout/stderr, in a new session without a
    /// controlling terminal (so TIOCSTI cannot reach the caller's terminal).
    Inherit,
}

/// Who releases a container held before execve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartGate {
    /// crabcan itself, with [`crate::CreatedContainer::start`].
    Parent,
    /// Nobody: the process goes on to execve as soon as it is set up, without waiting for
    /// [`crate::CreatedContainer::start`] (which then only reads how execve went). What
    /// [`crate::run`] uses, where nothing happens between create and start; it saves the
    /// round trip of the release. Not with [`Terminal::Pty`]: the parent sizes the pty at
    /// the release.
    Immediately,
    /// Whichever process opens this FIFO for reading (`cat PATH`): another crabcan, a script,
    /// an OCI `start`. The FIFO must exist and be writable by the container's user (e.g.
    /// `mkfifo -m 0622 PATH`).
    Fifo(PathBuf),
}

/// The execution domain of the command (`personality(2)`, OCI `linux.personality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// `PER_LINUX`: the machine's own.
    Linux,
    /// `PER_LINUX32`: a 32-bit machine (`uname -m` says i686 on x86_64).
    Linux32,
}

/// The session keyring of the container's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKeyring {
    /// A new one of its own, joined before anything of the container runs, so `keyctl` in the
    /// container never reaches the caller's session keyring (runc's default). A name lets
    /// later processes of the container join it too (runc names it `_ses.<id>`); unnamed, it
    /// is anonymous.
    New {
        /// Its name, if any.
        name: Option<String>,
    },
    /// The caller's own (`--no-new-keyring`).
    Inherit,
}

/// Which host ids a container's user namespace maps its ids onto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMapping {
    /// Run by root: a private range of [`crate::id_ranges::SLOT_SIZE`] host ids from crabcan's
    /// pool, leased for the container's life and overlapping no other container, user or
    /// account (like podman's `--userns=auto`); container ids 0..65536. Run by an ordinary
    /// user: that user's own uid and gid as the container's root, and its subordinate ranges of
    /// `/etc/subuid` and `/etc/subgid` from container id 1 on where `newuidmap`/`newgidmap`
    /// exist (see [`crate::rootless`]).
    Auto,
    /// No maps of crabcan's: the container's ids are those of the user namespace it shares
    /// (the host's: an OCI config without a user namespace, as podman and containerd send by
    /// default) or joins ([`crate::NamespaceMode::Join`], whose maps are its own).
    Host,
    /// These ranges, written as they are: an OCI engine chose them (podman's `--userns=auto`
    /// takes its own subordinate range), so crabcan does not second-guess them.
    Given {
        /// The uid map.
        uid_map: IdRange,
        /// The gid map.
        gid_map: IdRange,
    },
    /// These ranges; refused when they overlap another user's subordinate ids or an account.
    Fixed {
        /// The uid map.
        uid_map: IdRange,
        /// The gid map.
        gid_map: IdRange,
    },
}

impl IdMapping {
    /// The uid and gid ranges as far as the container's side is known before the host ids are
    /// chosen (the inside ids are all that validation needs).
    pub fn inside(&self) -> (IdRange, IdRange) {
        match self {
            IdMapping::Auto => {
                let range = IdRange {
                    inside: 0,
                    outside: 0,
                    count: crate::id_ranges::SLOT_SIZE,
                };
                (range, range)
            }
            IdMapping::Fixed { uid_map, gid_map } | IdMapping::Given { uid_map, gid_map } => (*uid_map, *gid_map),
            IdMapping::Host => {
                let all = IdRange {
                    inside: 0,
                    outside: 0,
                    count: u32::MAX,
                };
                (all, all)
            }
        }
    }

    fn describe(&self, range: IdRange) -> String {
        match self {
            IdMapping::Auto => format!("(container ids {}-{})", range.inside, range.inside + (range.count - 1)),
            IdMapping::Fixed { .. } | IdMapping::Given { .. } => range.to_string(),
            IdMapping::Host => "(the host's ids)".to_owned(),
        }
    }
}

/// Everything crabcan needs to create one container.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// The root filesystem (a directory on the host).
    pub rootfs: PathBuf,
    /// The command and its arguments; the program is looked up in the container's PATH.
    pub argv: Vec<String>,
    /// The container's hostname; also names its cgroup.
    pub hostname: String,
    /// Set [`ContainerConfig::hostname`] (and the domain name) in the container's uts
    /// namespace; false keeps the names the namespace has (an OCI config that joins a uts
    /// namespace and names no hostname). Refused with the host's uts namespace.
    pub set_hostname: bool,
    /// What the container gets of each kind of namespace (default: a new one of each).
    pub namespaces: Namespaces,
    /// Which host ids the container's ids are.
    pub id_mapping: IdMapping,
    /// The uid the command runs as inside the container.
    pub uid: u32,
    /// The gid the command runs as inside the container.
    pub gid: u32,
    /// Host paths bound into the container (`--add`), in order.
    pub binds: Vec<BindMount>,
    /// Extra environment (`--env`), applied over the defaults.
    pub env: Vec<(String, String)>,
    /// The command's working directory inside the container (created if missing).
    pub workdir: PathBuf,
    /// Cgroup limits; `None` runs the container without a cgroup of its own.
    pub limits: Option<Limits>,
    /// Which of [`ContainerConfig::limits`] were asked for (a limit flag, an OCI bundle's
    /// resources), as opposed to crabcan's defaults. An ordinary user's container gets a cgroup
    /// only in a cgroup v2 subtree delegated to that user: where there is none, a limit asked
    /// for is an error and default ones are left out, and so is a default one whose controller
    /// the subtree lacks. A default I/O weight is also left out where no block device would
    /// apply it ([`crabcan_cgroups::CgroupHost::io_weights_take_effect`]).
    pub requested_limits: Vec<LimitKind>,
    /// What to do when the host lacks a cgroup controller a limit needs.
    pub missing_controllers: MissingController,
    /// RLIMIT_NOFILE; `None` is [`DEFAULT_NOFILE`], capped at crabcan's own hard limit.
    pub nofile: Option<FileLimit>,
    /// Size of the `/tmp` tmpfs in bytes; `None` is the memory limit, or [`DEFAULT_TMP_SIZE`].
    pub tmp_size: Option<u64>,
    /// The capabilities the command keeps (as root; a non-root command keeps none).
    pub capabilities: CapabilitySet,
    /// The compiled seccomp filter; `None` means unconfined.
    pub seccomp: Option<CompiledFilter>,
    /// Learn a seccomp profile: the container's process runs under crabcan-seccomp's learning
    /// filter instead of [`ContainerConfig::seccomp`] (which still confines the processes an
    /// OCI `exec` adds) and the calls it makes are merged into a profile file (see
    /// `learning.rs`). Linux 5.5+; not with `init`.
    pub seccomp_learning: Option<SeccompLearning>,
    /// Fail instead of warning when a confinement asked for cannot be applied on this host (a
    /// cgroup limit, an idmapped mount).
    pub strict: bool,
    /// A pty of its own, or crabcan's stdio in a new session.
    pub terminal: Terminal,
    /// Run a minimal init as pid 1 that forwards signals to the command and reaps zombies
    /// (like `docker run --init`).
    pub init: bool,
    /// Who releases the container held before execve.
    pub start_gate: StartGate,
    /// Read resource use from the cgroup at exit (for `--debug`); off by default, it costs a
    /// dozen file reads.
    pub collect_stats: bool,
    /// What the container's cgroup is used for besides its limits: on cgroup v1, whether it
    /// also joins the freezer hierarchy (to pause it) and the cpuacct one (CPU time in the
    /// stats). Everything by default; a run that never pauses and reads no stats can save a
    /// hierarchy's mkdir and rmdir each. Without a new pid namespace the freezer is joined
    /// whatever this says (see [`ContainerConfig::effective_cgroup_uses`]).
    pub cgroup_uses: CgroupUses,
    /// The five capability sets given one by one (OCI `process.capabilities`), applied as they
    /// are; `None` applies [`ContainerConfig::capabilities`] as Docker does (all of it for root,
    /// nothing for another uid, empty inheritable and ambient sets).
    pub capability_sets: Option<CapabilitySets>,
    /// Resource limits besides RLIMIT_NOFILE, set by the container process before execve.
    pub rlimits: Vec<Rlimit>,
    /// Start the command's environment from crabcan's defaults (PATH, HOME, TERM, HOSTNAME)
    /// under [`ContainerConfig::env`]; false gives it exactly `env` (OCI `process.env`).
    pub default_env: bool,
    /// Set `PR_SET_NO_NEW_PRIVS` (on unless an OCI config says otherwise).
    pub no_new_privs: bool,
    /// Supplementary groups of the command (inside the container).
    pub additional_gids: Vec<u32>,
    /// The command's umask; `None` leaves the inherited one.
    pub umask: Option<u32>,
    /// The container's NIS domain name (`setdomainname`), if any.
    pub domainname: Option<String>,
    /// The container process does not die with the crabcan that created it: an OCI `create`
    /// exits and leaves the container to its engine.
    pub survives_crabcan: bool,
    /// The lifecycle hooks crabcan-core runs while it creates and starts the container; none
    /// by default, and then the setup makes no round trip for them.
    pub hooks: LifecycleHooks,
    /// The container process's OOM score adjustment (-1000 to 1000, OCI
    /// `process.oomScoreAdj`), written to its `/proc/PID/oom_score_adj` by crabcan before it
    /// runs anything; `None` keeps crabcan's. Lowering it needs CAP_SYS_RESOURCE.
    pub oom_score_adj: Option<i32>,
    /// The command's execution domain, set just before execve; `None` keeps crabcan's.
    pub personality: Option<Personality>,
    /// How many descriptors of crabcan's caller, from 3 up (3, 4, ...), reach the command open
    /// across execve (`--preserve-fds`, socket activation's `LISTEN_FDS`); every other one is
    /// closed first thing. They must be open when crabcan starts (checked), so none of
    /// crabcan's own descriptors can take one of their numbers.
    pub preserved_fds: u32,
    /// The command's session keyring: a new one unless told otherwise.
    pub session_keyring: SessionKeyring,
    /// The mount steps, when a front end (the OCI bundle) gives them; `None`: crabcan's own
    /// plan from this configuration ([`crate::mounts::plan`]).
    pub(crate) mount_plan: Option<Vec<crate::mounts::MountStep>>,
    /// The learning filter, compiled by `create` once the handshake socket exists (the filter
    /// lets exactly the hand-over on that socket through).
    pub(crate) learning_filter: Option<LearningFilter>,
    /// Mount the container's cgroup view at /sys/fs/cgroup (crabcan's plan always does; an OCI
    /// config does when it lists a cgroup mount).
    pub(crate) cgroup_view: bool,
    /// Where the cgroup goes (an OCI `linux.cgroupsPath`, relative to each hierarchy's root),
    /// with no lease: its creator exits and `delete` removes it. `None`: crabcan's own
    /// `crabcan/<hostname>.<pid>`, leased.
    pub(crate) cgroup_path: Option<PathBuf>,
    /// The lines of the uid and gid maps once `create` has chosen the host ids: which ids exist
    /// inside (the mount plan names gid 5 for devpts only where it does). `None` before.
    pub(crate) mapped_inside: Option<(Vec<IdRange>, Vec<IdRange>)>,
}

/// The capability sets of the command, each given on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitySets {
    /// The bounding set.
    pub bounding: CapabilitySet,
    /// The effective set.
    pub effective: CapabilitySet,
    /// The permitted set.
    pub permitted: CapabilitySet,
    /// The inheritable set.
    pub inheritable: CapabilitySet,
    /// The ambient set.
    pub ambient: CapabilitySet,
}

/// One resource limit (soft and hard) of the container's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// Which limit.
    pub resource: rlimit::Resource,
    /// The soft limit.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

impl ContainerConfig {
    /// A configuration with crabcan's defaults for `rootfs` and `argv`.
    pub fn new(rootfs: impl Into<PathBuf>, argv: Vec<String>) -> ContainerConfig {
        ContainerConfig {
            rootfs: rootfs.into(),
            argv,
            hostname: crate::hostname::generate_hostname(),
            set_hostname: true,
            namespaces: Namespaces::default(),
            id_mapping: IdMapping::Auto,
            uid: 0,
            gid: 0,
            binds: Vec::new(),
            env: Vec::new(),
            workdir: PathBuf::from("/"),
            limits: Some(Limits::default()),
            requested_limits: Vec::new(),
            missing_controllers: MissingController::Error,
            nofile: None,
            tmp_size: None,
            capabilities: CapabilitySet::default(),
            seccomp: None,
            seccomp_learning: None,
            strict: false,
            learning_filter: None,
            terminal: Terminal::Inherit,
            init: false,
            start_gate: StartGate::Parent,
            collect_stats: false,
            cgroup_uses: CgroupUses::ALL,
            capability_sets: None,
            rlimits: Vec::new(),
            default_env: true,
            no_new_privs: true,
            additional_gids: Vec::new(),
            umask: None,
            domainname: None,
            survives_crabcan: false,
            hooks: LifecycleHooks::default(),
            oom_score_adj: None,
            personality: None,
            preserved_fds: 0,
            session_keyring: SessionKeyring::New { name: None },
            mount_plan: None,
            cgroup_view: true,
            cgroup_path: None,
            mapped_inside: None,
        }
    }

    /// Checks the configuration against the host without changing anything. Returns the
    /// configuration with the rootfs made absolute and canonical.
    pub fn validate(mut self) -> Result<ContainerConfig, ConfigError> {
        self.rootfs = validate_rootfs(&self.rootfs)?;
        if self.argv.first().is_none_or(|program| program.is_empty()) {
            return Err(crate::error::SpecError::EmptyCommand.into());
        }
        validate_hostname(&self.hostname)?;
        validate_namespaces(&self)?;
        for mount in &self.binds {
            validate_bind_mount(mount)?;
        }
        let (uid_map, gid_map) = self.id_mapping.inside();
        if !uid_map.contains_inside(self.uid) {
            return Err(ConfigError::UidNotMapped {
                uid: self.uid,
                map: self.id_mapping.describe(uid_map),
            });
        }
        if !gid_map.contains_inside(self.gid) {
            return Err(ConfigError::GidNotMapped {
                gid: self.gid,
                map: self.id_mapping.describe(gid_map),
            });
        }
        if !self.workdir.is_absolute() {
            return Err(ConfigError::WorkdirNotAbsolute {
                path: self.workdir.clone(),
            });
        }
        if let Some(limit) = self.nofile {
            validate_nofile(limit)?;
        }
        if self.tmp_size == Some(0) {
            return Err(ConfigError::BadTmpSize);
        }
        match &self.start_gate {
            StartGate::Fifo(path) => validate_start_fifo(path)?,
            StartGate::Immediately if self.terminal == Terminal::Pty => return Err(ConfigError::ImmediateStartWithPty),
            StartGate::Parent | StartGate::Immediately => {}
        }
        for (kind, hook) in self.hooks.all() {
            hook.check().map_err(|why| ConfigError::BadHook {
                kind: kind.name(),
                path: hook.path.clone(),
                why,
            })?;
        }
        if let Some(value) = self.oom_score_adj.filter(|value| !(-1000..=1000).contains(value)) {
            return Err(ConfigError::BadOomScoreAdj { value });
        }
        validate_preserved_fds(self.preserved_fds)?;
        if let SessionKeyring::New { name: Some(name) } = &self.session_keyring {
            if name.is_empty() || name.contains('\0') {
                return Err(ConfigError::BadKeyringName { name: name.clone() });
            }
        }
        if let Some(learning) = &self.seccomp_learning {
            validate_learning(learning, self.init)?;
        }
        Ok(self)
    }

    /// Whether container gid `gid` is mapped: by the maps `create` chose, or before that as far
    /// as [`IdMapping::inside`] knows.
    pub(crate) fn gid_mapped_inside(&self, gid: u32) -> bool {
        match &self.mapped_inside {
            Some((_, gid_maps)) => gid_maps.iter().any(|range| range.contains_inside(gid)),
            None => self.id_mapping.inside().1.contains_inside(gid),
        }
    }

    /// Checks the container's uid, gid and supplementary gids against the maps `create` chose
    /// (which an ordinary user's may narrow to its own ids).
    pub(crate) fn check_mapped(&self) -> Result<(), ConfigError> {
        let Some((uid_maps, gid_maps)) = &self.mapped_inside else {
            return Ok(());
        };
        let shown = |maps: &[IdRange]| maps.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        if !uid_maps.iter().any(|range| range.contains_inside(self.uid)) {
            return Err(ConfigError::UidNotMapped {
                uid: self.uid,
                map: shown(uid_maps),
            });
        }
        for gid in std::iter::once(&self.gid).chain(&self.additional_gids) {
            if !gid_maps.iter().any(|range| range.contains_inside(*gid)) {
                return Err(ConfigError::GidNotMapped {
                    gid: *gid,
                    map: shown(gid_maps),
                });
            }
        }
        Ok(())
    }

    /// [`ContainerConfig::cgroup_uses`], with the freezer (and the CPU time) whenever it is
    /// needed: the stats are collected, or the container has no pid namespace of its own, so
    /// that killing its pid 1 does not kill the rest and the cgroup has to be frozen to be
    /// emptied reliably.
    pub fn effective_cgroup_uses(&self) -> CgroupUses {
        CgroupUses {
            freeze: self.cgroup_uses.freeze || self.namespaces.pid != NamespaceMode::New,
            cpu_usage: self.cgroup_uses.cpu_usage || self.collect_stats,
            io_accounting: self.cgroup_uses.io_accounting,
        }
    }

    /// RLIMIT_NOFILE the container gets: the configured one, or the default capped at this
    /// process's own hard limit.
    pub fn file_limit(&self) -> FileLimit {
        self.nofile.unwrap_or_else(|| {
            let own_hard = own_nofile_hard_limit();
            FileLimit {
                soft: DEFAULT_NOFILE.soft.min(own_hard),
                hard: DEFAULT_NOFILE.hard.min(own_hard),
            }
        })
    }

    /// Size of the `/tmp` tmpfs in bytes.
    pub fn tmp_size(&self) -> u64 {
        self.tmp_size
            .or_else(|| self.limits.as_ref().and_then(|limits| limits.memory))
            .unwrap_or(DEFAULT_TMP_SIZE)
    }

    /// The environment the command starts with: PATH, HOME, TERM, HOSTNAME, then `--env`.
    pub fn environment(&self) -> Vec<(String, String)> {
        if !self.default_env {
            return self.env.clone();
        }
        let home = if self.uid == 0 { "/root" } else { "/" };
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".to_owned());
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), DEFAULT_PATH.into()),
            ("HOME".into(), home.into()),
            ("TERM".into(), term),
            ("HOSTNAME".into(), self.hostname.clone()),
        ];
        for (key, value) in &self.env {
            env.retain(|(existing, _)| existing != key);
            env.push((key.clone(), value.clone()));
        }
        env
    }
}

/// The namespaces must fit together: a new mount namespace; a hostname only with a uts
/// namespace of the container's own; id maps exactly when crabcan makes the user namespace (a
/// joined one may be given the maps it has, which `create` checks).
fn validate_namespaces(config: &ContainerConfig) -> Result<(), ConfigError> {
    let namespaces = &config.namespaces;
    match &namespaces.mount {
        NamespaceMode::New => {}
        NamespaceMode::Host => {
            return Err(ConfigError::MountNamespaceNotNew {
                mode: "the host's".into(),
            })
        }
        NamespaceMode::Join(path) => {
            return Err(ConfigError::MountNamespaceNotNew {
                mode: format!("the existing one {} (joining it would change it)", path.display()),
            })
        }
    }
    if namespaces.uts == NamespaceMode::Host && (config.set_hostname || config.domainname.is_some()) {
        return Err(ConfigError::HostnameWithoutUtsNamespace);
    }
    let maps = |why: &str| Err(ConfigError::UserNamespaceMaps { why: why.to_owned() });
    match (&namespaces.user, &config.id_mapping) {
        (NamespaceMode::New, IdMapping::Host) => maps("a new user namespace needs id maps"),
        (NamespaceMode::Host, IdMapping::Host) | (NamespaceMode::New, _) => Ok(()),
        (NamespaceMode::Host, _) => maps("id maps need a new user namespace; the host's has its own"),
        (NamespaceMode::Join(_), IdMapping::Host | IdMapping::Given { .. }) => Ok(()),
        (NamespaceMode::Join(path), _) => maps(&format!(
            "the joined user namespace {} has its own maps; crabcan can only check given ones against them",
            path.display()
        )),
    }
}

fn validate_rootfs(rootfs: &Path) -> Result<PathBuf, ConfigError> {
    let metadata = std::fs::metadata(rootfs).map_err(|_| ConfigError::RootfsMissing {
        path: rootfs.to_owned(),
    })?;
    if !metadata.is_dir() {
        return Err(ConfigError::RootfsNotDirectory {
            path: rootfs.to_owned(),
        });
    }
    let canonical = rootfs.canonicalize().map_err(|_| ConfigError::RootfsMissing {
        path: rootfs.to_owned(),
    })?;
    if canonical == Path::new("/") {
        return Err(ConfigError::RootfsIsHostRoot {
            path: rootfs.to_owned(),
        });
    }
    for name in SYSTEM_MOUNT_POINTS {
        validate_mount_point(&canonical.join(name))?;
    }
    Ok(canonical)
}

/// A missing mount point is fine (crabcan creates it); a symlink or a file is refused, because
/// crabcan would otherwise mount where the link points.
fn validate_mount_point(path: &Path) -> Result<(), ConfigError> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if metadata.file_type().is_symlink() {
        let target = std::fs::read_link(path).unwrap_or_default();
        return Err(ConfigError::MountPointIsSymlink {
            path: path.to_owned(),
            target,
        });
    }
    if !metadata.is_dir() {
        return Err(ConfigError::MountPointNotDirectory { path: path.to_owned() });
    }
    Ok(())
}

fn validate_bind_mount(mount: &BindMount) -> Result<(), ConfigError> {
    if std::fs::metadata(&mount.source).is_err() {
        return Err(ConfigError::BindSourceMissing {
            path: mount.source.clone(),
        });
    }
    // `Path::components` drops `.` and repeated slashes, so `//proc/./x` is seen as `/proc/x`.
    let target: PathBuf = mount.target.components().collect();
    if target == Path::new("/") {
        return Err(ConfigError::BindTargetIsRoot {
            path: mount.target.clone(),
        });
    }
    if let Some(kernel) = KERNEL_FILESYSTEMS.iter().find(|kernel| target.starts_with(kernel)) {
        return Err(ConfigError::BindTargetOnKernelFilesystem {
            path: mount.target.clone(),
            filesystem: kernel,
        });
    }
    Ok(())
}

fn validate_start_fifo(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let bad = |why: &'static str| ConfigError::BadStartFifo {
        path: path.to_owned(),
        why,
    };
    if !path.is_absolute() {
        return Err(bad("it must be an absolute path"));
    }
    let metadata =
        std::fs::metadata(path).map_err(|_| bad("it does not exist; create it with `mkfifo -m 0622 PATH`"))?;
    if !metadata.file_type().is_fifo() {
        return Err(bad("it is not a FIFO; create one with `mkfifo -m 0622 PATH`"));
    }
    if metadata.permissions().mode() & 0o002 == 0 {
        return Err(bad(
            "the container's user cannot write it; create it with `mkfifo -m 0622 PATH` or chmod o+w it",
        ));
    }
    Ok(())
}

/// The most descriptors a container can be given (`--preserve-fds`).
pub const MAX_PRESERVED_FDS: u32 = 1 << 16;

/// Checks that descriptors 3 to 3+`count`-1 are all open: a gap among them is a number that
/// one of crabcan's own descriptors could take, which the container would then be given.
/// Call it before opening anything (the OCI `create` does, first thing).
pub fn validate_preserved_fds(count: u32) -> Result<(), ConfigError> {
    if count > MAX_PRESERVED_FDS {
        return Err(ConfigError::TooManyPreservedFds {
            count,
            max: MAX_PRESERVED_FDS,
        });
    }
    for fd in 3..3 + count as i32 {
        // SAFETY: F_GETFD reads the flags of a descriptor number; nothing is changed.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(ConfigError::PreservedFdClosed { fd, count });
        }
    }
    Ok(())
}

/// A learning run needs a kernel that can let calls through, no init of its own (whose
/// process would need a listener of its own), and a profile path crabcan can write.
fn validate_learning(learning: &SeccompLearning, init: bool) -> Result<(), ConfigError> {
    let path = &learning.output;
    let bad = |why: String| ConfigError::BadLearning {
        path: path.clone(),
        why,
    };
    crabcan_seccomp::check_kernel_for_learning().map_err(|error| bad(error.to_string()))?;
    if init {
        return Err(bad(
            "--init runs a process of its own, whose calls the run would not learn; drop --init for the learning run"
                .into(),
        ));
    }
    if !path.is_absolute() {
        return Err(bad("the path must be absolute".into()));
    }
    if path.is_dir() {
        return Err(bad("it is a directory; give a file name".into()));
    }
    match path.parent() {
        Some(folder) if folder.is_dir() => Ok(()),
        _ => Err(bad("its folder does not exist; create it first".into())),
    }
}

/// crabcan's own hard RLIMIT_NOFILE: the most a container can get (raising it needs
/// CAP_SYS_RESOURCE).
fn own_nofile_hard_limit() -> u64 {
    rlimit::Resource::NOFILE
        .get()
        .map(|(_, hard)| hard)
        .unwrap_or(DEFAULT_NOFILE.soft)
}

fn validate_nofile(limit: FileLimit) -> Result<(), ConfigError> {
    let max = own_nofile_hard_limit();
    for value in [limit.soft, limit.hard] {
        if value == 0 || value > max {
            return Err(ConfigError::BadFileLimit { value, max });
        }
    }
    if limit.soft > limit.hard {
        return Err(ConfigError::BadFileLimit {
            value: limit.soft,
            max: limit.hard,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempTree;
    use std::os::unix::fs::symlink;

    fn temp_rootfs(tag: &str) -> TempTree {
        let dir = TempTree::new(tag);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        dir
    }

    fn config(rootfs: &Path) -> ContainerConfig {
        ContainerConfig::new(rootfs, vec!["/bin/sh".into()])
    }

    #[test]
    fn accepts_a_plain_rootfs() {
        let rootfs = temp_rootfs("plain");
        let checked = config(&rootfs).validate().unwrap();
        assert!(checked.rootfs.is_absolute());
    }

    #[test]
    fn refuses_missing_file_and_host_root() {
        assert!(matches!(
            config(Path::new("/nonexistent/rootfs")).validate(),
            Err(ConfigError::RootfsMissing { .. })
        ));
        assert!(matches!(
            config(Path::new("/etc/hostname")).validate(),
            Err(ConfigError::RootfsNotDirectory { .. })
        ));
        assert!(matches!(
            config(Path::new("/")).validate(),
            Err(ConfigError::RootfsIsHostRoot { .. })
        ));
    }

    #[test]
    fn refuses_symlinked_mount_points() {
        let rootfs = temp_rootfs("symlink");
        symlink("/etc", rootfs.join("tmp")).unwrap();
        let error = config(&rootfs).validate().unwrap_err();
        assert!(matches!(error, ConfigError::MountPointIsSymlink { .. }), "{error}");
        assert!(error.to_string().contains("/etc"));
    }

    #[test]
    fn refuses_bad_fields() {
        let rootfs = temp_rootfs("fields");
        let mut bad = config(&rootfs);
        bad.argv.clear();
        assert!(bad.validate().is_err());
        let mut bad = config(&rootfs);
        bad.uid = 70_000;
        assert!(matches!(bad.validate(), Err(ConfigError::UidNotMapped { .. })));
        let mut bad = config(&rootfs);
        bad.workdir = PathBuf::from("relative");
        assert!(matches!(bad.validate(), Err(ConfigError::WorkdirNotAbsolute { .. })));
        let mut bad = config(&rootfs);
        bad.binds.push(BindMount::parse("/nonexistent/source:/data").unwrap());
        assert!(matches!(bad.validate(), Err(ConfigError::BindSourceMissing { .. })));
        let mut bad = config(&rootfs);
        bad.hostname = "x".repeat(65);
        assert!(matches!(bad.validate(), Err(ConfigError::BadHostname { .. })));
        let mut bad = config(&rootfs);
        bad.nofile = Some(FileLimit::both(0));
        assert!(matches!(bad.validate(), Err(ConfigError::BadFileLimit { .. })));
        for target in ["/proc", "/proc/self", "//sys/./kernel", "/dev", "/dev/shm"] {
            let mut bad = config(&rootfs);
            bad.binds.push(BindMount::parse(&format!("/tmp:{target}")).unwrap());
            assert!(
                matches!(bad.validate(), Err(ConfigError::BindTargetOnKernelFilesystem { .. })),
                "{target}"
            );
        }
        let mut fine = config(&rootfs);
        fine.binds.push(BindMount::parse("/tmp:/procfs").unwrap());
        assert!(fine.validate().is_ok(), "/procfs is not /proc");
    }

    #[test]
    fn namespaces_must_fit_together() {
        let rootfs = temp_rootfs("namespaces");
        let with = |edit: &dyn Fn(&mut ContainerConfig)| {
            let mut cfg = config(&rootfs);
            edit(&mut cfg);
            cfg.validate()
        };
        assert!(with(&|_| {}).is_ok(), "all new, crabcan's default");
        assert!(matches!(
            with(&|c| c.namespaces.mount = NamespaceMode::Host),
            Err(ConfigError::MountNamespaceNotNew { .. })
        ));
        assert!(matches!(
            with(&|c| c.namespaces.mount = NamespaceMode::Join("/proc/1/ns/mnt".into())),
            Err(ConfigError::MountNamespaceNotNew { .. })
        ));
        assert!(matches!(
            with(&|c| c.namespaces.uts = NamespaceMode::Host),
            Err(ConfigError::HostnameWithoutUtsNamespace)
        ));
        assert!(with(&|c| {
            c.namespaces.uts = NamespaceMode::Host;
            c.set_hostname = false;
        })
        .is_ok());
        assert!(
            matches!(
                with(&|c| c.namespaces.user = NamespaceMode::Host),
                Err(ConfigError::UserNamespaceMaps { .. })
            ),
            "Auto maps need a new user namespace"
        );
        assert!(with(&|c| {
            c.namespaces.user = NamespaceMode::Host;
            c.id_mapping = IdMapping::Host;
        })
        .is_ok());
        assert!(
            matches!(
                with(&|c| c.id_mapping = IdMapping::Host),
                Err(ConfigError::UserNamespaceMaps { .. })
            ),
            "a new user namespace needs maps"
        );
        assert!(with(&|c| {
            c.namespaces.user = NamespaceMode::Join("/proc/7/ns/user".into());
            c.id_mapping = IdMapping::Host;
        })
        .is_ok());
    }

    #[test]
    fn the_chosen_maps_must_hold_the_containers_ids() {
        let mut cfg = config(Path::new("/tmp"));
        assert!(cfg.check_mapped().is_ok(), "nothing chosen yet");
        let own = IdRange {
            inside: 0,
            outside: 1000,
            count: 1,
        };
        cfg.mapped_inside = Some((vec![own], vec![own]));
        assert!(cfg.check_mapped().is_ok());
        cfg.additional_gids = vec![5];
        let refused = cfg.check_mapped();
        assert!(
            matches!(refused, Err(ConfigError::GidNotMapped { gid: 5, .. })),
            "{refused:?}"
        );
        cfg.additional_gids.clear();
        cfg.uid = 1;
        let refused = cfg.check_mapped();
        assert!(
            matches!(refused, Err(ConfigError::UidNotMapped { uid: 1, .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn start_fifo_must_be_a_writable_fifo() {
        let rootfs = temp_rootfs("fifo");
        let fifo = rootfs.join("gate");
        let with_gate = |path: &Path| {
            let mut cfg = config(&rootfs);
            cfg.start_gate = StartGate::Fifo(path.to_owned());
            cfg.validate()
        };
        assert!(matches!(
            with_gate(Path::new("relative")),
            Err(ConfigError::BadStartFifo { .. })
        ));
        assert!(
            matches!(with_gate(&fifo), Err(ConfigError::BadStartFifo { .. })),
            "missing"
        );
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert!(
            matches!(with_gate(&fifo), Err(ConfigError::BadStartFifo { .. })),
            "not writable"
        );
        std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622)).unwrap();
        assert!(with_gate(&fifo).is_ok());
        assert!(
            matches!(with_gate(&rootfs.join("bin")), Err(ConfigError::BadStartFifo { .. })),
            "a directory"
        );
    }

    #[test]
    fn an_immediate_start_needs_no_pty() {
        let rootfs = temp_rootfs("immediate");
        let mut cfg = config(&rootfs);
        cfg.start_gate = StartGate::Immediately;
        assert!(cfg.clone().validate().is_ok());
        cfg.terminal = Terminal::Pty;
        assert!(matches!(cfg.validate(), Err(ConfigError::ImmediateStartWithPty)));
    }

    #[test]
    fn defaults_for_open_files_and_tmp() {
        let mut cfg = config(Path::new("/tmp"));
        let limit = cfg.file_limit();
        assert!(limit.soft <= 1024 && limit.hard <= 524_288 && limit.soft <= limit.hard);
        cfg.nofile = Some(FileLimit::both(50));
        assert_eq!(cfg.file_limit(), FileLimit::both(50));
        assert_eq!(cfg.tmp_size(), 1 << 30, "the default memory limit");
        cfg.limits = None;
        assert_eq!(cfg.tmp_size(), DEFAULT_TMP_SIZE);
        cfg.tmp_size = Some(4096);
        assert_eq!(cfg.tmp_size(), 4096);
    }

    #[test]
    fn environment_has_defaults_and_overrides() {
        let mut cfg = config(Path::new("/tmp"));
        cfg.hostname = "box".into();
        cfg.env.push(("PATH".into(), "/custom".into()));
        cfg.env.push(("FOO".into(), "bar".into()));
        let env = cfg.environment();
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/custom"));
        assert_eq!(get("HOSTNAME"), Some("box"));
        assert_eq!(get("HOME"), Some("/root"));
        assert_eq!(get("FOO"), Some("bar"));
        assert_eq!(env.iter().filter(|(k, _)| k == "PATH").count(), 1);
    }
}
