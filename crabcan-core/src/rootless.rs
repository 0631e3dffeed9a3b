//! crabcan run by an ordinary user (rootless): who the caller is ([`Caller`]), whether this
//! kernel lets an ordinary user make a user namespace, how the container's `uid_map` and
//! `gid_map` get written ([`IdMapPlan`], decided as data before the clone by
//! [`plan_user_maps`]), where the container's cgroup may go (a cgroup v2 subtree delegated to
//! the user, or none) and where a user's crabcan keeps its state ([`state_dir`]).
//!
//! The user namespace maps the caller's own uid and gid to the container's root. Where
//! `/etc/subuid` and `/etc/subgid` give the user ranges and `newuidmap`/`newgidmap` (setuid
//! root, Debian's `uidmap`) are in PATH, those ranges are mapped too, from container id 1 on,
//! as podman does; otherwise crabcan writes the one-line maps itself, which the kernel allows
//! an ordinary user only after `deny` is written to `setgroups`. A user has no idmapped mounts
//! (they need CAP_SYS_ADMIN over the host's mounts), so the rootfs is used as it is: a rootfs
//! the user owns is the container root's.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crabcan_cgroups::{CgroupHost, LimitKind, Limits, NoDelegation};
use nix::errno::Errno;
use nix::unistd::Pid;

use crate::config::{ContainerConfig, IdMapping, DEFAULT_PATH};
use crate::error::{ConfigError, Error};
use crate::id_ranges::{self, IdFiles, IdKind, SubIdEntry};
use crate::spec::IdRange;

/// The most lines a uid or gid map may have (the kernel's limit since Linux 4.15).
const MAX_MAP_LINES: usize = 340;

/// What an ordinary user's crabcan cannot do here, or could not do: one line each, with the
/// reason and the fix.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    /// A sysctl forbids ordinary users to create user namespaces.
    #[error("ordinary users may not create user namespaces here ({setting} is {value}); ask an administrator to allow them (sysctl -w {setting}={allowed}), or run crabcan as root")]
    UserNamespacesDisabled {
        /// The sysctl.
        setting: &'static str,
        /// Its value.
        value: String,
        /// A value that allows them.
        allowed: &'static str,
    },
    /// AppArmor leaves an unconfined program's user namespace without capabilities.
    #[error("AppArmor gives an ordinary user's user namespace no capabilities here (kernel.apparmor_restrict_unprivileged_userns is 1 and crabcan runs unconfined), so no container can be set up; ask an administrator for an AppArmor profile that lets crabcan use user namespaces (or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0), or run crabcan as root")]
    AppArmorRestricted,
    /// The kernel refused the user namespace.
    #[error("clone(CLONE_NEWUSER) failed: {errno}: {why}")]
    CloneRefused {
        /// The errno of clone.
        errno: Errno,
        /// What it means, and the fix.
        why: &'static str,
    },
    /// The configuration has no user namespace of its own.
    #[error("crabcan runs as uid {uid}, and an ordinary user's container needs a user namespace of its own, which this configuration leaves out: add a \"user\" namespace with uidMappings and gidMappings to linux.namespaces (crabcan spec --rootless writes one), or run crabcan as root")]
    NoUserNamespace {
        /// The caller's uid.
        uid: u32,
    },
    /// Ids beyond the caller's own are wanted, and the user has no subordinate range.
    #[error("{needed_for} needs subordinate {kind}s, and {} gives user {user} none: add a range (e.g. usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}), or keep to {kind} 0 in the container, which is you", path.display())]
    NoSubordinateIds {
        /// What needs them, e.g. "the container's uid 1000".
        needed_for: String,
        /// Uids or gids.
        kind: IdKind,
        /// The user's name (or uid).
        user: String,
        /// `/etc/subuid` or `/etc/subgid`.
        path: PathBuf,
    },
    /// The user has subordinate ranges, and the helper that maps them is missing.
    #[error("{needed_for} needs your subordinate {kind}s mapped by {tool}, and there is no {tool} in PATH: install it (Debian and Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils), or keep to {kind} 0 in the container, which is you")]
    HelperMissing {
        /// What needs them.
        needed_for: String,
        /// Uids or gids.
        kind: IdKind,
        /// `newuidmap` or `newgidmap`.
        tool: &'static str,
    },
    /// A given map names host ids that are not the caller's.
    #[error("the {kind} map {map} maps host {kind}s that are not yours: an ordinary user may map only its own {kind} {own} and its subordinate {kind}s of {} ({ranges})", path.display())]
    MapNotYours {
        /// Uids or gids.
        kind: IdKind,
        /// The map as given.
        map: IdRange,
        /// The caller's own id.
        own: u32,
        /// `/etc/subuid` or `/etc/subgid`.
        path: PathBuf,
        /// The caller's subordinate ranges, in words.
        ranges: String,
    },
    /// `newuidmap` or `newgidmap` failed.
    #[error("{command} failed ({status}): {stderr}; check your entries in /etc/subuid and /etc/subgid")]
    HelperFailed {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// The first line it printed on stderr.
        stderr: String,
    },
    /// Limits were asked for, and the user has no cgroup v2 subtree of its own.
    #[error("cgroup limits were asked for ({limits}), and an ordinary user's container can have a cgroup only in a cgroup v2 subtree delegated to that user: {reason}; run crabcan in such a subtree (with systemd on cgroup v2: systemd-run --user --scope crabcan ...), or leave the limits out")]
    LimitsWithoutDelegation {
        /// The limits asked for, in words.
        limits: String,
        /// Why there is no delegated subtree.
        reason: NoDelegation,
    },
    /// What only root's crabcan can do so far.
    #[error("{what} needs root for now, and crabcan runs as uid {uid}: run it as root")]
    RootOnly {
        /// What was asked for.
        what: &'static str,
        /// The caller's uid.
        uid: u32,
    },
    /// `XDG_RUNTIME_DIR` is not set.
    #[error("XDG_RUNTIME_DIR is not set (or not an absolute path), and an ordinary user's crabcan keeps its state in $XDG_RUNTIME_DIR/crabcan; log in through a session that sets it (systemd-logind sets /run/user/UID), or set it to a directory only you can write")]
    NoRuntimeDir,
}

/// Who runs crabcan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Root with CAP_SYS_ADMIN: host ids from crabcan's pool, idmapped mounts, cgroups anywhere.
    Root,
    /// An ordinary user (its effective ids): its own ids and subordinate ranges, no idmapped
    /// mounts, a cgroup only in a subtree delegated to it.
    User {
        /// The effective uid.
        uid: u32,
        /// The effective gid.
        gid: u32,
    },
}

impl Caller {
    /// Root with CAP_SYS_ADMIN, or an ordinary user whose kernel lets it create user
    /// namespaces. Root without CAP_SYS_ADMIN is [`ConfigError::NotPrivileged`].
    pub fn detect() -> Result<Caller, Error> {
        let uid = nix::unistd::geteuid().as_raw();
        if uid == 0 {
            let has_sys_admin =
                caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).unwrap_or(false);
            return match has_sys_admin {
                true => Ok(Caller::Root),
                false => Err(ConfigError::NotPrivileged.into()),
            };
        }
        check_user_namespaces(&UsernsSettings::read())?;
        Ok(Caller::User {
            uid,
            gid: nix::unistd::getegid().as_raw(),
        })
    }

    /// The error a failed clone of the container's process means for this caller: for an
    /// ordinary user, the kernel's refusal of the user namespace in words; `None` otherwise.
    pub fn clone_refused(&self, errno: Errno) -> Option<RootlessError> {
        if *self == Caller::Root {
            return None;
        }
        let why = match errno {
            Errno::EPERM => "this system does not let ordinary users create user namespaces (a seccomp policy, a chroot or a security module refuses it); allow unprivileged user namespaces, or run crabcan as root",
            Errno::ENOSPC | Errno::EUSERS => "the limit of user namespaces is reached (user.max_user_namespaces, or 32 nested ones); raise the sysctl or end other containers",
            _ => return None,
        };
        Some(RootlessError::CloneRefused { errno, why })
    }
}

/// The settings that decide whether an ordinary user may create a user namespace, as read
/// (`None`: the kernel has no such file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UsernsSettings {
    /// `/proc/sys/kernel/unprivileged_userns_clone` (Debian's and Ubuntu's kernels).
    pub unprivileged_userns_clone: Option<String>,
    /// `/proc/sys/user/max_user_namespaces`.
    pub max_user_namespaces: Option<String>,
    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+).
    pub apparmor_restrict: Option<String>,
    /// This process's AppArmor label (`unconfined`, or a profile's name).
    pub apparmor_label: Option<String>,
}

impl UsernsSettings {
    fn read() -> UsernsSettings {
        let read = |path: &str| std::fs::read_to_string(path).ok().map(|text| text.trim().to_owned());
        UsernsSettings {
            unprivileged_userns_clone: read("/proc/sys/kernel/unprivileged_userns_clone"),
            max_user_namespaces: read("/proc/sys/user/max_user_namespaces"),
            apparmor_restrict: read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            apparmor_label: read("/proc/self/attr/apparmor/current").or_else(|| read("/proc/self/attr/current")),
        }
    }
}

/// Whether `settings` let an ordinary user create a user namespace with capabilities in it.
pub(crate) fn check_user_namespaces(settings: &UsernsSettings) -> Result<(), RootlessError> {
    if settings.unprivileged_userns_clone.as_deref() == Some("0") {
        return Err(RootlessError::UserNamespacesDisabled {
            setting: "kernel.unprivileged_userns_clone",
            value: "0".into(),
            allowed: "1",
        });
    }
    if settings.max_user_namespaces.as_deref() == Some("0") {
        return Err(RootlessError::UserNamespacesDisabled {
            setting: "user.max_user_namespaces",
            value: "0".into(),
            allowed: "15000",
        });
    }
    let unconfined = settings
        .apparmor_label
        .as_deref()
        .is_none_or(|label| label == "unconfined");
    if settings.apparmor_restrict.as_deref() == Some("1") && unconfined {
        return Err(RootlessError::AppArmorRestricted);
    }
    Ok(())
}

/// How the container's id maps are written, decided before the clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdMapPlan {
    /// crabcan writes `uid_map` and `gid_map` itself: root any range; an ordinary user one line
    /// mapping its own uid and gid (the kernel's rule), after writing `deny` to `setgroups`.
    Direct {
        /// The uid map.
        uid_map: IdRange,
        /// The gid map.
        gid_map: IdRange,
        /// Write `deny` to `setgroups` first (an ordinary user's one-line gid map needs it).
        deny_setgroups: bool,
    },
    /// `newuidmap` and `newgidmap` write them (as podman does): the caller's own ids and its
    /// subordinate ranges, which those setuid helpers check against `/etc/subuid`/`/etc/subgid`.
    Helper {
        /// The `newuidmap` found in PATH.
        newuidmap: PathBuf,
        /// The `newgidmap` found in PATH.
        newgidmap: PathBuf,
        /// The lines of the uid map.
        uid_maps: Vec<IdRange>,
        /// The lines of the gid map.
        gid_maps: Vec<IdRange>,
    },
}

impl IdMapPlan {
    /// The lines of the uid map.
    pub fn uid_maps(&self) -> Vec<IdRange> {
        match self {
            IdMapPlan::Direct { uid_map, .. } => vec![*uid_map],
            IdMapPlan::Helper { uid_maps, .. } => uid_maps.clone(),
        }
    }

    /// The lines of the gid map.
    pub fn gid_maps(&self) -> Vec<IdRange> {
        match self {
            IdMapPlan::Direct { gid_map, .. } => vec![*gid_map],
            IdMapPlan::Helper { gid_maps, .. } => gid_maps.clone(),
        }
    }

    /// Writes the maps of the user namespace of `child`, which waits for them (its `Go`).
    pub fn write(&self, child: Pid) -> Result<(), Error> {
        match self {
            IdMapPlan::Direct {
                uid_map,
                gid_map,
                deny_setgroups,
            } => {
                if *deny_setgroups {
                    let path = format!("/proc/{child}/setgroups");
                    std::fs::write(&path, "deny").map_err(|error| {
                        let errno = Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO));
                        Error::sys(format!("writing \"deny\" to {path}"), errno)
                    })?;
                }
                crate::namespaces::write_id_maps(child, uid_map, gid_map)
            }
            IdMapPlan::Helper {
                newuidmap,
                newgidmap,
                uid_maps,
                gid_maps,
            } => {
                run_helper(newuidmap, child, uid_maps)?;
                run_helper(newgidmap, child, gid_maps)
            }
        }
    }

    /// What the debug log says about it.
    pub fn describe(&self) -> String {
        let shown = |maps: &[IdRange]| maps.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        match self {
            IdMapPlan::Direct {
                uid_map,
                gid_map,
                deny_setgroups,
            } => format!(
                "host uids {uid_map} and gids {gid_map}{}",
                if *deny_setgroups { " (setgroups denied)" } else { "" }
            ),
            IdMapPlan::Helper { uid_maps, gid_maps, .. } => format!(
                "host uids {} and gids {}, mapped by newuidmap and newgidmap",
                shown(uid_maps),
                shown(gid_maps)
            ),
        }
    }
}

/// `newuidmap PID INSIDE OUTSIDE COUNT...` (or `newgidmap`).
fn run_helper(tool: &Path, child: Pid, maps: &[IdRange]) -> Result<(), Error> {
    let mut args = vec![child.to_string()];
    for map in maps {
        args.extend([map.inside, map.outside, map.count].map(|n| n.to_string()));
    }
    let command = format!("{} {}", tool.display(), args.join(" "));
    let failed = |status: String, stderr: String| RootlessError::HelperFailed {
        command: command.clone(),
        status,
        stderr,
    };
    let output = Command::new(tool)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|error| failed(format!("it could not be started: {error}"), "no output".into()))?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let first = text.lines().find(|line| !line.trim().is_empty()).unwrap_or("no output");
    Err(failed(output.status.to_string(), first.trim().to_owned()).into())
}

/// What the container's process uses inside beyond id 0: what decides whether the caller's own
/// ids suffice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WantedIds {
    /// The container's uid.
    pub uid: u32,
    /// The container's gid.
    pub gid: u32,
    /// It has supplementary groups (which need `setgroups`).
    pub supplementary: bool,
}

impl WantedIds {
    pub fn of(config: &ContainerConfig) -> WantedIds {
        WantedIds {
            uid: config.uid,
            gid: config.gid,
            supplementary: !config.additional_gids.is_empty(),
        }
    }

    /// The first thing that needs more than the container's ids 0, in words, and its kind.
    fn beyond_zero(&self) -> Option<(IdKind, String)> {
        if self.uid != 0 {
            Some((IdKind::Uid, format!("the container's uid {}", self.uid)))
        } else if self.gid != 0 {
            Some((IdKind::Gid, format!("the container's gid {}", self.gid)))
        } else if self.supplementary {
            Some((IdKind::Gid, "supplementary groups in the container".to_owned()))
        } else {
            None
        }
    }
}

/// What planning an ordinary user's maps needs to know of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserFacts {
    /// The caller's effective uid.
    pub uid: u32,
    /// The caller's effective gid.
    pub gid: u32,
    /// Its login name, or the uid as text.
    pub name: String,
    /// Its entries in `/etc/subuid`.
    pub subuids: Vec<SubIdEntry>,
    /// Its entries in `/etc/subgid`.
    pub subgids: Vec<SubIdEntry>,
    /// The id files read.
    pub files: IdFiles,
    /// `newuidmap` in PATH.
    pub newuidmap: Option<PathBuf>,
    /// `newgidmap` in PATH.
    pub newgidmap: Option<PathBuf>,
}

impl UserFacts {
    /// Reads the caller's subordinate ranges from `files` and looks for the helpers in PATH.
    pub fn gather(uid: u32, gid: u32, files: &IdFiles) -> Result<UserFacts, Error> {
        let (names, subuids) = id_ranges::user_subids(files, IdKind::Uid, uid)?;
        let (_, subgids) = id_ranges::user_subids(files, IdKind::Gid, uid)?;
        Ok(UserFacts {
            uid,
            gid,
            name: names.into_iter().next().unwrap_or_else(|| uid.to_string()),
            subuids,
            subgids,
            files: files.clone(),
            newuidmap: find_in_path("newuidmap"),
            newgidmap: find_in_path("newgidmap"),
        })
    }

    fn entries(&self, kind: IdKind) -> &[SubIdEntry] {
        match kind {
            IdKind::Uid => &self.subuids,
            IdKind::Gid => &self.subgids,
        }
    }

    fn own(&self, kind: IdKind) -> u32 {
        match kind {
            IdKind::Uid => self.uid,
            IdKind::Gid => self.gid,
        }
    }
}

/// A plan, and a warning worth one line (or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    pub plan: IdMapPlan,
    pub warning: Option<String>,
}

/// How an ordinary user's container maps its ids (see the module's documentation):
///
/// - [`IdMapping::Auto`]: the caller's uid and gid as container root, then its subordinate
///   ranges from container id 1 on through the helpers, when it has both ranges and both
///   helpers; otherwise the caller's own ids alone, written directly, which serves a container
///   that uses only its ids 0, and anything else is an error naming what is missing.
/// - [`IdMapping::Fixed`] and [`IdMapping::Given`]: written directly when each is the caller's
///   own id alone, through the helpers when they name subordinate ids of the caller; ids of
///   anyone else are refused.
/// - [`IdMapping::Host`]: refused, a user's container needs a user namespace.
pub(crate) fn plan_user_maps(
    mapping: &IdMapping,
    wanted: &WantedIds,
    facts: &UserFacts,
) -> Result<Planned, RootlessError> {
    let own = |kind| IdRange {
        inside: 0,
        outside: facts.own(kind),
        count: 1,
    };
    let helpers = facts.newuidmap.clone().zip(facts.newgidmap.clone());
    match mapping {
        IdMapping::Host => Err(RootlessError::NoUserNamespace { uid: facts.uid }),
        IdMapping::Auto => {
            let subuids = subordinate_maps(&facts.subuids);
            let subgids = subordinate_maps(&facts.subgids);
            if let (false, false, Some((newuidmap, newgidmap))) = (subuids.is_empty(), subgids.is_empty(), &helpers) {
                let uid_maps = std::iter::once(own(IdKind::Uid)).chain(subuids).collect();
                let gid_maps = std::iter::once(own(IdKind::Gid)).chain(subgids).collect();
                return Ok(Planned {
                    plan: IdMapPlan::Helper {
                        newuidmap: newuidmap.clone(),
                        newgidmap: newgidmap.clone(),
                        uid_maps,
                        gid_maps,
                    },
                    warning: None,
                });
            }
            if let Some((_, needed_for)) = wanted.beyond_zero() {
                return Err(missing_for_range(
                    needed_for,
                    facts,
                    subuids.is_empty(),
                    subgids.is_empty(),
                ));
            }
            let warning = match (subuids.is_empty(), subgids.is_empty(), &helpers) {
                (true, true, _) => None,
                (false, false, None) => {
                    let tool = if facts.newuidmap.is_none() {
                        "newuidmap"
                    } else {
                        "newgidmap"
                    };
                    Some(format!(
                        "you have subordinate ids, and there is no {tool} in PATH to map them: the container has only your own uid and gid, as its root (install uidmap to map the whole range)"
                    ))
                }
                (no_subuids, _, _) => {
                    let (missing, given) = match no_subuids {
                        true => (&facts.files.subuid, &facts.files.subgid),
                        false => (&facts.files.subgid, &facts.files.subuid),
                    };
                    Some(format!(
                        "{} gives you no range, only {} does: the container has only your own uid and gid, as its root",
                        missing.display(),
                        given.display()
                    ))
                }
            };
            Ok(Planned {
                plan: IdMapPlan::Direct {
                    uid_map: own(IdKind::Uid),
                    gid_map: own(IdKind::Gid),
                    deny_setgroups: true,
                },
                warning,
            })
        }
        IdMapping::Fixed { uid_map, gid_map } | IdMapping::Given { uid_map, gid_map } => {
            let own_alone = |map: &IdRange, kind| map.count == 1 && map.outside == facts.own(kind);
            if own_alone(uid_map, IdKind::Uid) && own_alone(gid_map, IdKind::Gid) && !wanted.supplementary {
                return Ok(Planned {
                    plan: IdMapPlan::Direct {
                        uid_map: *uid_map,
                        gid_map: *gid_map,
                        deny_setgroups: true,
                    },
                    warning: None,
                });
            }
            for (map, kind) in [(uid_map, IdKind::Uid), (gid_map, IdKind::Gid)] {
                if !own_alone(map, kind) && !facts.entries(kind).iter().any(|entry| holds(entry, map)) {
                    return Err(RootlessError::MapNotYours {
                        kind,
                        map: *map,
                        own: facts.own(kind),
                        path: facts.files.subids(kind).to_owned(),
                        ranges: describe_entries(facts.entries(kind)),
                    });
                }
            }
            let Some((newuidmap, newgidmap)) = helpers else {
                let (kind, tool) = match facts.newuidmap {
                    None => (IdKind::Uid, "newuidmap"),
                    Some(_) => (IdKind::Gid, "newgidmap"),
                };
                return Err(RootlessError::HelperMissing {
                    needed_for: format!("the uid map {uid_map} and gid map {gid_map}"),
                    kind,
                    tool,
                });
            };
            Ok(Planned {
                plan: IdMapPlan::Helper {
                    newuidmap,
                    newgidmap,
                    uid_maps: vec![*uid_map],
                    gid_maps: vec![*gid_map],
                },
                warning: None,
            })
        }
    }
}

/// Why a container that needs more than id 0 cannot have it: the first missing piece.
fn missing_for_range(needed_for: String, facts: &UserFacts, no_subuids: bool, no_subgids: bool) -> RootlessError {
    let none = |kind: IdKind| RootlessError::NoSubordinateIds {
        needed_for: needed_for.clone(),
        kind,
        user: facts.name.clone(),
        path: facts.files.subids(kind).to_owned(),
    };
    if no_subuids {
        return none(IdKind::Uid);
    }
    if no_subgids {
        return none(IdKind::Gid);
    }
    let (kind, tool) = match facts.newuidmap {
        None => (IdKind::Uid, "newuidmap"),
        Some(_) => (IdKind::Gid, "newgidmap"),
    };
    RootlessError::HelperMissing { needed_for, kind, tool }
}

/// Whether the subordinate range `entry` holds every host id of `map`.
fn holds(entry: &SubIdEntry, map: &IdRange) -> bool {
    let first = u64::from(map.outside);
    entry.start <= first && first + u64::from(map.count) <= entry.end()
}

fn describe_entries(entries: &[SubIdEntry]) -> String {
    if entries.is_empty() {
        return "none".to_owned();
    }
    entries
        .iter()
        .map(|e| format!("{}-{}", e.start, e.end().saturating_sub(1)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The user's subordinate ranges as map lines from container id 1 on, in file order: empty
/// ranges and ranges past the largest id are left out, and so is what does not fit in a map.
fn subordinate_maps(entries: &[SubIdEntry]) -> Vec<IdRange> {
    const ID_LIMIT: u64 = u32::MAX as u64;
    let mut maps = Vec::new();
    let mut next_inside: u64 = 1;
    for entry in entries {
        if entry.count == 0 || entry.end() > ID_LIMIT || maps.len() + 1 >= MAX_MAP_LINES {
            continue;
        }
        let count = entry.count.min(ID_LIMIT - next_inside);
        if count == 0 {
            break;
        }
        maps.push(IdRange {
            inside: next_inside as u32,
            outside: entry.start as u32,
            count: count as u32,
        });
        next_inside += count;
    }
    maps
}

/// The executable `name` in PATH (or crabcan's default PATH where none is set).
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Where an ordinary user's crabcan keeps its state: `$XDG_RUNTIME_DIR/crabcan` (the OCI
/// mode's default `--root`, and the direct mode's cgroup leases). [`RootlessError::NoRuntimeDir`]
/// when `XDG_RUNTIME_DIR` is unset or relative.
pub fn state_dir() -> Result<PathBuf, RootlessError> {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => Ok(dir.join("crabcan")),
        _ => Err(RootlessError::NoRuntimeDir),
    }
}

/// The cgroup host for an ordinary user's container: its cgroup goes in the cgroup v2 subtree
/// delegated to the user, with its lease in the user's [`state_dir`]. Where there is none, a
/// limit that was asked for is an error ([`RootlessError::LimitsWithoutDelegation`]), and
/// crabcan's default ones are dropped (said at debug level): the container runs without a
/// cgroup. Default limits whose controller the subtree does not offer are dropped too.
pub(crate) fn user_cgroup_host(config: &mut ContainerConfig, uid: u32) -> Result<Option<CgroupHost>, Error> {
    let Some(limits) = config.limits.clone() else {
        return Ok(None);
    };
    let delegated = CgroupHost::detect()
        .map_err(|_| NoDelegation::NoCgroup2Line)
        .and_then(|host| crabcan_cgroups::find_delegated_subtree(&host, uid).map(|base| (host, base)));
    let (host, base) = match delegated {
        Ok(found) => found,
        Err(reason) if !config.requested_limits.is_empty() => {
            return Err(RootlessError::LimitsWithoutDelegation {
                limits: describe_limits(&config.requested_limits),
                reason,
            }
            .into())
        }
        Err(reason) => {
            log::debug!("the container runs without a cgroup ({reason}): crabcan's default limits are left out; rlimits still apply");
            config.limits = None;
            return Ok(None);
        }
    };
    log::debug!(
        "the container's cgroup goes in the delegated subtree {}",
        base.display()
    );
    let host = host
        .with_v2_base(&base)?
        .with_state_dir(state_dir()?.join(".cgroups"))
        .with_uses(config.effective_cgroup_uses());
    let available = host.available_controllers()?;
    config.limits = Some(keep_delegated(limits, &config.requested_limits, &available));
    Ok(Some(host))
}

/// `limits` without the default ones (not in `requested`) whose controller `available` lacks,
/// each said at debug level. A requested one stays, to fail with the controller's name.
fn keep_delegated(
    mut limits: Limits,
    requested: &[LimitKind],
    available: &std::collections::BTreeSet<String>,
) -> Limits {
    let lacks = |controller: &str, kinds: &[LimitKind]| {
        let lacking = !available.contains(controller);
        let dropped: Vec<&LimitKind> = kinds.iter().filter(|kind| !requested.contains(kind)).collect();
        if lacking && !dropped.is_empty() {
            log::debug!("the delegated cgroup subtree offers no {controller} controller: crabcan's default {controller} limits are left out");
        }
        lacking
    };
    let default = |kind: LimitKind| !requested.contains(&kind);
    if lacks("memory", &[LimitKind::Memory, LimitKind::MemorySwap]) {
        if default(LimitKind::Memory) {
            limits.memory = None;
        }
        if default(LimitKind::MemorySwap) {
            limits.memory_swap = None;
        }
    }
    if lacks("pids", &[LimitKind::Pids]) && default(LimitKind::Pids) {
        limits.pids = None;
    }
    if lacks("cpu", &[LimitKind::CpuWeight, LimitKind::CpuQuota]) {
        if default(LimitKind::CpuWeight) {
            limits.cpu_weight = None;
        }
        if default(LimitKind::CpuQuota) {
            limits.cpu_quota = None;
        }
    }
    if lacks("io", &[LimitKind::IoWeight]) && default(LimitKind::IoWeight) {
        limits.io_weight = None;
    }
    limits
}

/// The kinds of limit `limits` sets (every field of [`Limits`]: an OCI bundle can set any).
pub(crate) fn limit_kinds(limits: &Limits) -> Vec<LimitKind> {
    [
        (LimitKind::Memory, limits.memory.is_some()),
        (LimitKind::MemorySwap, limits.memory_swap.is_some()),
        (LimitKind::Pids, limits.pids.is_some()),
        (LimitKind::CpuWeight, limits.cpu_weight.is_some()),
        (
            LimitKind::CpuQuota,
            limits.cpu_quota.is_some() || limits.cpu_quota_us.is_some(),
        ),
        (
            LimitKind::IoWeight,
            limits.io_weight.is_some() || limits.blkio_weight.is_some(),
        ),
        (LimitKind::MemoryReservation, limits.memory_reservation.is_some()),
        (LimitKind::MemorySwappiness, limits.memory_swappiness.is_some()),
        (LimitKind::OomKillDisable, limits.oom_kill_disable),
        (LimitKind::CpuShares, limits.cpu_shares.is_some()),
        (LimitKind::CpuPeriod, limits.cpu_period_us.is_some()),
        (LimitKind::CpuBurst, limits.cpu_burst_us.is_some()),
        (LimitKind::CpuIdle, limits.cpu_idle.is_some()),
        (LimitKind::CpusetCpus, limits.cpuset_cpus.is_some()),
        (LimitKind::CpusetMems, limits.cpuset_mems.is_some()),
        (LimitKind::CpuRealtimeRuntime, limits.cpu_rt_runtime_us.is_some()),
        (LimitKind::CpuRealtimePeriod, limits.cpu_rt_period_us.is_some()),
        (LimitKind::IoLeafWeight, limits.blkio_leaf_weight.is_some()),
        (LimitKind::IoDeviceWeight, !limits.device_weights.is_empty()),
        (LimitKind::IoThrottle, !limits.device_throttles.is_empty()),
        (LimitKind::Hugepages, !limits.hugepages.is_empty()),
        (LimitKind::NetClassId, limits.net_class_id.is_some()),
        (LimitKind::NetPriorities, !limits.net_priorities.is_empty()),
        (LimitKind::Rdma, !limits.rdma.is_empty()),
        (LimitKind::Unified, !limits.unified.is_empty()),
    ]
    .into_iter()
    .filter_map(|(kind, set)| set.then_some(kind))
    .collect()
}

/// Limits in words: "memory limit, pids limit".
fn describe_limits(kinds: &[LimitKind]) -> String {
    kinds.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(owner: &str, start: u64, count: u64) -> SubIdEntry {
        SubIdEntry {
            owner: owner.into(),
            start,
            count,
            line: 1,
        }
    }

    fn range(inside: u32, outside: u32, count: u32) -> IdRange {
        IdRange { inside, outside, count }
    }

    fn facts(subids: bool, helpers: bool) -> UserFacts {
        let ranges = if subids {
            vec![entry("alice", 100_000, 65_536)]
        } else {
            vec![]
        };
        UserFacts {
            uid: 1000,
            gid: 1001,
            name: "alice".into(),
            subuids: ranges.clone(),
            subgids: ranges,
            files: IdFiles::system(),
            newuidmap: helpers.then(|| PathBuf::from("/usr/bin/newuidmap")),
            newgidmap: helpers.then(|| PathBuf::from("/usr/bin/newgidmap")),
        }
    }

    fn root_only() -> WantedIds {
        WantedIds::default()
    }

    fn as_uid(uid: u32) -> WantedIds {
        WantedIds {
            uid,
            gid: uid,
            supplementary: false,
        }
    }

    #[test]
    fn the_callers_own_ids_alone_are_written_directly_with_setgroups_denied() {
        let planned = plan_user_maps(&IdMapping::Auto, &root_only(), &facts(false, true)).unwrap();
        assert_eq!(
            planned.plan,
            IdMapPlan::Direct {
                uid_map: range(0, 1000, 1),
                gid_map: range(0, 1001, 1),
                deny_setgroups: true,
            }
        );
        assert_eq!(planned.warning, None);
        assert_eq!(planned.plan.uid_maps(), vec![range(0, 1000, 1)]);
    }

    #[test]
    fn a_subordinate_range_and_the_helpers_map_the_whole_range() {
        let planned = plan_user_maps(&IdMapping::Auto, &as_uid(1000), &facts(true, true)).unwrap();
        assert_eq!(
            planned.plan,
            IdMapPlan::Helper {
                newuidmap: "/usr/bin/newuidmap".into(),
                newgidmap: "/usr/bin/newgidmap".into(),
                uid_maps: vec![range(0, 1000, 1), range(1, 100_000, 65_536)],
                gid_maps: vec![range(0, 1001, 1), range(1, 100_000, 65_536)],
            }
        );
        // The same for a container that only uses its root: podman maps the range too.
        let root = plan_user_maps(&IdMapping::Auto, &root_only(), &facts(true, true)).unwrap();
        assert!(matches!(root.plan, IdMapPlan::Helper { .. }));
    }

    #[test]
    fn without_a_range_or_a_helper_only_the_containers_root_works() {
        let error = plan_user_maps(&IdMapping::Auto, &as_uid(1000), &facts(false, true)).unwrap_err();
        assert!(
            matches!(&error, RootlessError::NoSubordinateIds { kind: IdKind::Uid, user, .. } if user == "alice"),
            "{error}"
        );
        let text = error.to_string();
        assert!(
            text.starts_with("the container's uid 1000 needs subordinate uids, and /etc/subuid gives user alice none"),
            "{text}"
        );
        assert!(text.contains("usermod --add-subuids"), "{text}");

        let error = plan_user_maps(&IdMapping::Auto, &as_uid(1000), &facts(true, false)).unwrap_err();
        assert!(
            matches!(error, RootlessError::HelperMissing { tool: "newuidmap", .. }),
            "{error}"
        );
        assert!(error.to_string().contains("apt-get install uidmap"), "{error}");

        let groups = WantedIds {
            supplementary: true,
            ..WantedIds::default()
        };
        let error = plan_user_maps(&IdMapping::Auto, &groups, &facts(false, false)).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("supplementary groups in the container need"),
            "{error}"
        );

        // A range without its helper still runs a container of root alone, with a warning.
        let planned = plan_user_maps(&IdMapping::Auto, &root_only(), &facts(true, false)).unwrap();
        assert!(matches!(
            planned.plan,
            IdMapPlan::Direct {
                deny_setgroups: true,
                ..
            }
        ));
        assert!(planned.warning.is_some_and(|w| w.contains("no newuidmap in PATH")));
    }

    #[test]
    fn given_maps_must_be_the_callers_own() {
        let own = IdMapping::Fixed {
            uid_map: range(0, 1000, 1),
            gid_map: range(0, 1001, 1),
        };
        let planned = plan_user_maps(&own, &root_only(), &facts(false, false)).unwrap();
        assert!(matches!(
            planned.plan,
            IdMapPlan::Direct {
                deny_setgroups: true,
                ..
            }
        ));

        let sub = IdMapping::Given {
            uid_map: range(0, 100_000, 1000),
            gid_map: range(0, 1001, 1),
        };
        let planned = plan_user_maps(&sub, &root_only(), &facts(true, true)).unwrap();
        assert_eq!(planned.plan.uid_maps(), vec![range(0, 100_000, 1000)]);
        assert!(matches!(planned.plan, IdMapPlan::Helper { .. }));
        assert!(matches!(
            plan_user_maps(&sub, &root_only(), &facts(true, false)),
            Err(RootlessError::HelperMissing { .. })
        ));

        let theirs = IdMapping::Fixed {
            uid_map: range(0, 5000, 10),
            gid_map: range(0, 1001, 1),
        };
        let error = plan_user_maps(&theirs, &root_only(), &facts(true, true)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the uid map 0:5000:10 maps host uids that are not yours: an ordinary user may map only its own uid 1000 and its subordinate uids of /etc/subuid (100000-165535)"
        );
        let past = IdMapping::Fixed {
            uid_map: range(0, 165_000, 1000),
            gid_map: range(0, 1001, 1),
        };
        assert!(matches!(
            plan_user_maps(&past, &root_only(), &facts(true, true)),
            Err(RootlessError::MapNotYours { .. })
        ));
        assert!(matches!(
            plan_user_maps(&IdMapping::Host, &root_only(), &facts(true, true)),
            Err(RootlessError::NoUserNamespace { uid: 1000 })
        ));
    }

    #[test]
    fn several_ranges_follow_each_other_inside() {
        let maps = subordinate_maps(&[
            entry("alice", 100_000, 10),
            entry("alice", 0, 0),
            entry("alice", 4_294_967_290, 100),
            entry("alice", 300_000, 5),
        ]);
        assert_eq!(maps, vec![range(1, 100_000, 10), range(11, 300_000, 5)]);
    }

    #[test]
    fn user_namespace_settings() {
        let fine = UsernsSettings {
            unprivileged_userns_clone: Some("1".into()),
            max_user_namespaces: Some("63000".into()),
            apparmor_restrict: Some("0".into()),
            apparmor_label: Some("unconfined".into()),
        };
        assert!(check_user_namespaces(&fine).is_ok());
        assert!(
            check_user_namespaces(&UsernsSettings::default()).is_ok(),
            "no such files: allowed"
        );
        let off = UsernsSettings {
            unprivileged_userns_clone: Some("0".into()),
            ..fine.clone()
        };
        assert_eq!(
            check_user_namespaces(&off).unwrap_err().to_string(),
            "ordinary users may not create user namespaces here (kernel.unprivileged_userns_clone is 0); ask an administrator to allow them (sysctl -w kernel.unprivileged_userns_clone=1), or run crabcan as root"
        );
        let none = UsernsSettings {
            max_user_namespaces: Some("0".into()),
            ..fine.clone()
        };
        assert!(check_user_namespaces(&none)
            .unwrap_err()
            .to_string()
            .contains("user.max_user_namespaces is 0"));
        let restricted = UsernsSettings {
            apparmor_restrict: Some("1".into()),
            ..fine.clone()
        };
        assert!(matches!(
            check_user_namespaces(&restricted),
            Err(RootlessError::AppArmorRestricted)
        ));
        let profiled = UsernsSettings {
            apparmor_label: Some("crabcan (enforce)".into()),
            ..restricted
        };
        assert!(
            check_user_namespaces(&profiled).is_ok(),
            "a profile may allow user namespaces"
        );
    }

    #[test]
    fn a_refused_clone_is_explained_to_a_user_only() {
        let user = Caller::User { uid: 1000, gid: 1000 };
        assert!(user
            .clone_refused(Errno::EPERM)
            .is_some_and(|e| e.to_string().starts_with("clone(CLONE_NEWUSER) failed: EPERM")));
        assert!(user.clone_refused(Errno::ENOSPC).is_some());
        assert!(user.clone_refused(Errno::ENOMEM).is_none());
        assert!(Caller::Root.clone_refused(Errno::EPERM).is_none());
    }

    #[test]
    fn default_limits_without_their_controller_are_left_out() {
        let available = ["memory", "pids"].iter().map(|c| c.to_string()).collect();
        let kept = keep_delegated(Limits::default(), &[], &available);
        assert_eq!(kept.memory, Limits::default().memory);
        assert_eq!(kept.pids, Limits::default().pids);
        assert_eq!((kept.cpu_weight, kept.io_weight), (None, None));
        let none = keep_delegated(Limits::default(), &[], &Default::default());
        assert_eq!((none.memory, none.pids), (None, None));
        // Asked for, it stays, and creating the cgroup names the missing controller.
        let asked = keep_delegated(Limits::default(), &[LimitKind::IoWeight], &available);
        assert_eq!(asked.io_weight, Limits::default().io_weight);
        assert_eq!(asked.cpu_weight, None);
        let all = limit_kinds(&Limits::default());
        assert_eq!(
            describe_limits(&all),
            "memory limit, pids limit, CPU weight, I/O weight"
        );
        assert!(limit_kinds(&Limits::unlimited()).is_empty());
    }

    #[test]
    fn helpers_are_found_in_path() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("crabcan-no-such-tool").is_none());
    }
}
