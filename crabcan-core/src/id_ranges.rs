//! Host id ranges for rootful containers. This module decides which host uids and gids a container may
//! use so that they belong to no one else (issue 16).
//!
//! It owns three things:
//!
//! * **Who owns which host ids.** It parses `/etc/subuid` and `/etc/subgid` (the subordinate ranges
//!   that `newuidmap`/`newgidmap` grant to users) and the ids of the accounts in `/etc/passwd` and
//!   `/etc/group`. The paths come in an [`IdFiles`], so tests can point at their own files.
//! * **crabcan's pool and its leases.** [`allocate`] gives a container a private slot of
//!   [`SLOT_SIZE`] ids from crabcan's pool (see [`pool`]) and holds it with an [`IdLease`] until
//!   the lease is dropped. This works like podman's `--userns=auto`.
//! * **Explicit maps.** [`check_map`] refuses a user-given map whose host side belongs to someone
//!   else.
//!
//! # Parsing rules
//!
//! * Blank lines and lines whose first non-blank character is `#` are skipped.
//! * A line that cannot be read is left out of the result and listed in `malformed` with its line
//!   number and the reason, so a front end can warn about it. It is never an error. This is safe
//!   because shadow's `newuidmap` skips such lines too, so a malformed line grants no one any ids.
//! * A subordinate line is `user:start:count` with exactly three fields. `user` is a login name or
//!   a numeric uid. The numbers are read the way shadow reads them (C `strtoul` with base 0:
//!   decimal, `0x` hex or octal with a leading `0`, an optional `+`). Unlike shadow, blanks around
//!   them are accepted. Being looser than shadow is the safe side: crabcan then treats more ids as
//!   taken, never fewer.
//! * From `/etc/passwd` and `/etc/group` only the name (1st field) and the decimal id (3rd field)
//!   are used. A passwd line also gives its primary gid (4th field). That gid counts as a gid of a
//!   real account even when `/etc/group` has no entry for it. NIS compat lines (`+…`, `-…`) are
//!   listed as malformed.
//! * Each file is read up to [`MAX_FILE_SIZE`] bytes. A larger file is an error
//!   ([`IdRangeError::FileTooLarge`]): a silently shortened file could hide an owner. A missing
//!   `/etc/subuid` or `/etc/subgid` means no one has subordinate ids. A missing passwd or group
//!   file is an error.
//!
//! Only the files are read. Accounts and subordinate ranges that come from NSS (LDAP, sssd, the
//! `subid:` line of nsswitch.conf) are not seen.
//!
//! # Leases
//!
//! A lease is the file `<state dir>/<first host uid of the slot>` (the state dir is
//! [`DEFAULT_STATE_DIR`] unless the caller picks another one). The owner holds an exclusive `flock`
//! on it for as long as the container lives; the file holds the pid of its latest owner, for
//! people who look. A slot's file is made once, by the first allocator that takes the slot, and
//! then stays: releasing a slot only closes the file, which drops the lock, and the next allocator
//! locks the same file again. (Unlinking and remaking it per container cost half a millisecond
//! where the state dir is on a disk filesystem.) So a slot is held exactly when its file is locked,
//! whatever the file says. A new file is created under a temporary name, locked, and renamed into
//! place with `renameat2(RENAME_NOREPLACE)`, so two allocators never both win a slot. The kernel
//! drops a `flock` when the last descriptor of its open file description is closed, and that
//! includes the death of the owning process: a slot whose crabcan was SIGKILLed is free again at
//! once. Any process that has the fd through `fork` shares the lock until it execs (the fd is
//! `O_CLOEXEC`). For a SIGKILLed owner, a reused slot is only private if the container died with
//! its crabcan (crabcan's container init has `PR_SET_PDEATHSIG`).
//!
//! A crabcan killed in the few microseconds between creating its temporary file and renaming it
//! leaves a `.tmp-*` file behind. Such a file is harmless and goes away with `/run` at reboot.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use nix::unistd::{geteuid, unlinkat, UnlinkatFlags};

use crate::spec::IdRange;

/// The number of ids a container gets: container ids 0..65536.
pub const SLOT_SIZE: u32 = 65_536;

/// The name whose `/etc/subuid` and `/etc/subgid` entries are crabcan's pool.
pub const POOL_OWNER: &str = "crabcan";

/// Where leases live unless the caller picks another directory. Made (mode 0700) by the first
/// lease, it stays, empty once no container runs, like the directory of the cgroup leases
/// ([`crabcan_cgroups::DEFAULT_STATE_DIR`], which says why).
pub const DEFAULT_STATE_DIR: &str = "/run/crabcan/.ids";

/// The most bytes read from any one of the id files.
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// The first host id after the last id that a map may use (`u32::MAX`, 4294967295, is the invalid
/// id `(uid_t)-1`).
const ID_LIMIT: u64 = u32::MAX as u64;

/// Uids or gids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// User ids.
    Uid,
    /// Group ids.
    Gid,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Uid => "uid",
            IdKind::Gid => "gid",
        })
    }
}

/// The files that say who owns which host ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdFiles {
    /// `/etc/subuid` or its stand-in.
    pub subuid: PathBuf,
    /// `/etc/subgid` or its stand-in.
    pub subgid: PathBuf,
    /// `/etc/passwd` or its stand-in.
    pub passwd: PathBuf,
    /// `/etc/group` or its stand-in.
    pub group: PathBuf,
}

impl IdFiles {
    /// `/etc/subuid`, `/etc/subgid`, `/etc/passwd`, `/etc/group`.
    pub fn system() -> IdFiles {
        IdFiles {
            subuid: PathBuf::from("/etc/subuid"),
            subgid: PathBuf::from("/etc/subgid"),
            passwd: PathBuf::from("/etc/passwd"),
            group: PathBuf::from("/etc/group"),
        }
    }

    /// `/etc/subuid` for uids, `/etc/subgid` for gids.
    pub fn subids(&self, kind: IdKind) -> &Path {
        match kind {
            IdKind::Uid => &self.subuid,
            IdKind::Gid => &self.subgid,
        }
    }
}

/// One line of `/etc/subuid` or `/etc/subgid`: `owner` may use host ids `start..start + count`.
/// The numbers are kept as written, even when they run past the 32-bit id space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubIdEntry {
    /// A login name or a numeric uid, as written.
    pub owner: String,
    /// The first id.
    pub start: u64,
    /// How many ids.
    pub count: u64,
    /// 1-based line number.
    pub line: usize,
}

impl SubIdEntry {
    /// One past the last id of the range.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.count)
    }
}

/// A line that was left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub why: &'static str,
}

/// The readable lines of a subordinate id file and the lines that were left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubIds {
    /// The entries read.
    pub entries: Vec<SubIdEntry>,
    /// The lines that could not be read.
    pub malformed: Vec<MalformedLine>,
}

/// An account from `/etc/passwd` (a user with uid `id`) or `/etc/group` (a group with gid `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account or group name.
    pub name: String,
    /// The id.
    pub id: u32,
    /// The primary gid (4th field) of a passwd line. `None` for group lines, and for passwd lines
    /// where that field is not a number.
    pub primary_gid: Option<u32>,
    /// 1-based line number.
    pub line: usize,
}

/// The readable lines of a passwd or group file and the lines that were left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    /// The entries read.
    pub entries: Vec<Account>,
    /// The lines that could not be read.
    pub malformed: Vec<MalformedLine>,
}

/// Lines to read, with their 1-based numbers. Blank lines and `#` comments are left out.
fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(index, line)| {
        let trimmed = line.trim();
        (!trimmed.is_empty() && !trimmed.starts_with('#')).then_some((index + 1, line))
    })
}

/// Parses the text of `/etc/subuid` or `/etc/subgid`.
pub fn parse_subids(text: &str) -> SubIds {
    let mut parsed = SubIds::default();
    for (line, content) in content_lines(text) {
        let bad = |why| MalformedLine { line, why };
        let mut fields = content.split(':');
        let (Some(owner), Some(start), Some(count), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            parsed.malformed.push(bad("expected USER:START:COUNT"));
            continue;
        };
        let owner = owner.trim();
        if owner.is_empty() {
            parsed.malformed.push(bad("the user field is empty"));
            continue;
        }
        match (parse_c_number(start), parse_c_number(count)) {
            (Some(start), Some(count)) => parsed.entries.push(SubIdEntry {
                owner: owner.to_owned(),
                start,
                count,
                line,
            }),
            _ => parsed.malformed.push(bad("START and COUNT must be unsigned numbers")),
        }
    }
    parsed
}

/// Reads an unsigned number the way C's `strtoul(text, &end, 0)` does when `*end` must be the end
/// of the string. Unlike C, blanks are allowed on both sides, and a minus sign is refused (C would
/// wrap it around).
fn parse_c_number(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    let (digits, radix) = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        (hex, 16)
    } else if text.len() > 1 && text.starts_with('0') {
        (&text[1..], 8)
    } else {
        (text, 10)
    };
    // from_str_radix takes a sign of its own, which must not be taken twice.
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn parse_decimal_id(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_account_lines(text: &str, with_primary_gid: bool) -> Accounts {
    let mut parsed = Accounts::default();
    for (line, content) in content_lines(text) {
        let bad = |why| MalformedLine { line, why };
        if content.starts_with(['+', '-']) {
            parsed.malformed.push(bad("NIS compat entries are not followed"));
            continue;
        }
        // Fields taken one by one: a Vec of them per line was most of the parse.
        let mut fields = content.split(':');
        let (Some(name), Some(_password), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            parsed.malformed.push(bad("expected NAME:PASSWORD:ID:..."));
            continue;
        };
        let Some(id) = parse_decimal_id(id) else {
            parsed
                .malformed
                .push(bad("the id (3rd field) must be a number from 0 to 4294967295"));
            continue;
        };
        let primary_gid = if with_primary_gid {
            fields.next().and_then(parse_decimal_id)
        } else {
            None
        };
        parsed.entries.push(Account {
            name: name.to_owned(),
            id,
            primary_gid,
            line,
        });
    }
    parsed
}

/// Parses the text of `/etc/passwd`: names, uids and primary gids.
pub fn parse_passwd(text: &str) -> Accounts {
    parse_account_lines(text, true)
}

/// Parses the text of `/etc/group`: names and gids.
pub fn parse_group(text: &str) -> Accounts {
    parse_account_lines(text, false)
}

/// Reads at most [`MAX_FILE_SIZE`] bytes of `path`. `Ok(None)` if the file does not exist.
fn read_bounded(path: &Path) -> Result<Option<String>, IdRangeError> {
    let read_error = |source| IdRangeError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(read_error(error)),
    };
    // The size as capacity: one read for the whole file instead of reads doubling from 32 bytes.
    let size = file.metadata().map_or(0, |meta| meta.len()).min(MAX_FILE_SIZE);
    let mut bytes = Vec::with_capacity(size as usize + 1);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(IdRangeError::FileTooLarge {
            path: path.to_owned(),
            limit: MAX_FILE_SIZE,
        });
    }
    // Valid UTF-8 (the usual case) is taken as it is, without a lossy copy.
    Ok(Some(String::from_utf8(bytes).unwrap_or_else(|invalid| {
        String::from_utf8_lossy(invalid.as_bytes()).into_owned()
    })))
}

fn read_required(path: &Path) -> Result<String, IdRangeError> {
    read_bounded(path)?.ok_or_else(|| IdRangeError::Read {
        path: path.to_owned(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })
}

/// The lines of the four files that were left out, each with its file, so that a front end can warn
/// about them. Missing subordinate id files have no lines.
pub fn malformed_lines(files: &IdFiles) -> Result<Vec<(PathBuf, MalformedLine)>, IdRangeError> {
    let mut found = Vec::new();
    for path in [&files.subuid, &files.subgid] {
        if let Some(text) = read_bounded(path)? {
            found.extend(parse_subids(&text).malformed.into_iter().map(|m| (path.clone(), m)));
        }
    }
    let accounts = [
        (&files.passwd, parse_passwd as fn(&str) -> Accounts),
        (&files.group, parse_group),
    ];
    for (path, parse) in accounts {
        let text = read_required(path)?;
        found.extend(parse(&text).malformed.into_iter().map(|m| (path.clone(), m)));
    }
    Ok(found)
}

/// What kind of account an id belongs to (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// A uid in `/etc/passwd`.
    User,
    /// A gid in `/etc/group`.
    Group,
    /// The primary gid of a user in `/etc/passwd`.
    PrimaryGroup,
}

/// Whoever already owns a host id that crabcan wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOwner {
    /// A subordinate range of another user.
    SubIds {
        /// Uids or gids.
        kind: IdKind,
        /// The user (a name or a numeric uid).
        user: String,
        /// The first id of the range.
        first: u64,
        /// The last id of the range.
        last: u64,
        /// The path at fault.
        path: PathBuf,
        /// The line number in the file.
        line: usize,
    },
    /// The uid or gid of a real account.
    Account {
        /// Uids or gids.
        kind: AccountKind,
        /// The id.
        id: u32,
        /// The account or group name.
        name: String,
        /// The path at fault.
        path: PathBuf,
        /// The line number in the file.
        line: usize,
    },
}

impl fmt::Display for IdOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdOwner::SubIds {
                kind,
                user,
                first,
                last,
                path,
                ..
            } => write!(
                f,
                "the subordinate {kind}s {first}-{last} of user {user} in {}",
                path.display()
            ),
            IdOwner::Account {
                kind, id, name, path, ..
            } => match kind {
                AccountKind::User => write!(f, "uid {id} of user {name} in {}", path.display()),
                AccountKind::Group => write!(f, "gid {id} of group {name} in {}", path.display()),
                AccountKind::PrimaryGroup => {
                    write!(f, "gid {id}, the primary group of user {name} in {}", path.display())
                }
            },
        }
    }
}

/// Everything that goes wrong while choosing or checking host id ranges.
#[derive(Debug, thiserror::Error)]
pub enum IdRangeError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path at fault.
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: io::Error,
    },
    /// A file is larger than [`MAX_FILE_SIZE`].
    #[error("{path} is larger than {limit} bytes, so crabcan cannot tell which host ids are taken; shorten the file")]
    FileTooLarge {
        /// The path at fault.
        path: PathBuf,
        /// The size limit in bytes.
        limit: u64,
    },
    /// crabcan's entry holds no whole slot.
    #[error("the {owner} entry on line {line} of {path} gives {count} {kind}s from {start}, which holds no range of {SLOT_SIZE} {kind}s below 4294967295; give it a count of at least {SLOT_SIZE}", owner = POOL_OWNER)]
    PoolTooSmall {
        /// Uids or gids.
        kind: IdKind,
        /// The first id.
        start: u64,
        /// How many ids.
        count: u64,
        /// The path at fault.
        path: PathBuf,
        /// The line number in the file.
        line: usize,
    },
    /// Every slot of the pool is leased or owned by someone.
    #[error("no free host id range for the container: of the {slots} ranges of {SLOT_SIZE} ids in crabcan's pool (host uids {first_uid}-{last_uid}), {leased} are leased by running containers and {owned} overlap ids that users or accounts own; stop a container or give {POOL_OWNER} a larger range in {subuid} and {subgid}", subuid = subuid.display(), subgid = subgid.display())]
    PoolExhausted {
        /// Slots in the pool.
        slots: u32,
        /// Slots leased by running containers.
        leased: u32,
        /// Slots overlapping ids someone owns.
        owned: u32,
        /// The first uid of the pool.
        first_uid: u32,
        /// The last uid of the pool.
        last_uid: u32,
        /// `/etc/subuid` or its stand-in.
        subuid: PathBuf,
        /// `/etc/subgid` or its stand-in.
        subgid: PathBuf,
    },
    /// The lease directory could not be made or opened.
    #[error("cannot {what} the id lease directory {path}: {source}")]
    StateDir {
        /// The path at fault.
        path: PathBuf,
        /// What was attempted.
        what: &'static str,
        #[source]
        /// The underlying error.
        source: io::Error,
    },
    /// The lease directory is not owned by crabcan alone.
    #[error("the id lease directory {path} {why}; it must be a directory owned by uid {euid} and not writable by group or others: remove it so crabcan creates it again")]
    StateDirUnsafe {
        /// The path at fault.
        path: PathBuf,
        /// What is wrong.
        why: String,
        /// The effective uid that must own it.
        euid: u32,
    },
    /// A lease file could not be made, locked or removed.
    #[error("cannot {what} the id lease {path}: {source}")]
    Lease {
        /// The path at fault.
        path: PathBuf,
        /// What was attempted.
        what: &'static str,
        #[source]
        /// The underlying error.
        source: io::Error,
    },
    /// The lease directory's filesystem lacks `renameat2(RENAME_NOREPLACE)`.
    #[error("the filesystem of {path} does not support renameat2(RENAME_NOREPLACE), which id leases need; put the lease directory on a local filesystem such as tmpfs")]
    RenameUnsupported {
        /// The path at fault.
        path: PathBuf,
    },
    /// The map runs past the largest valid id.
    #[error("the {kind} map {map} runs past host {kind} 4294967294 (4294967295 is the invalid id); pick a lower host start or a smaller count")]
    MapOutOfRange {
        /// Uids or gids.
        kind: IdKind,
        /// The map as given.
        map: IdRange,
    },
    /// The map overlaps ids that someone else owns.
    #[error("the {kind} map {map} (host {kind}s {first}-{last}) overlaps {owner}; leave the {kind} map out to get a private range, or pick host {kind}s no one owns", first = map.outside, last = u64::from(map.outside) + u64::from(map.count) - 1)]
    MapOverlaps {
        /// Uids or gids.
        kind: IdKind,
        /// The map as given.
        map: IdRange,
        /// Who owns the ids.
        owner: IdOwner,
    },
    /// The map overlaps crabcan's pool of private ranges.
    #[error("the {kind} map {map} (host {kind}s {first}-{last}) overlaps crabcan's pool of private ranges (host {kind}s {pool_first}-{pool_last}), where it could share ids with another container; leave the {kind} map out to get a private range, or pick host {kind}s outside the pool", first = map.outside, last = u64::from(map.outside) + u64::from(map.count) - 1, pool_first = pool.start, pool_last = u64::from(pool.start) + u64::from(pool.count) - 1)]
    MapInPool {
        /// Uids or gids.
        kind: IdKind,
        /// The map as given.
        map: IdRange,
        /// crabcan's pool.
        pool: IdPool,
    },
}

/// A contiguous range of host ids that crabcan hands out in slots of [`SLOT_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPool {
    /// The first id.
    pub start: u32,
    /// How many ids.
    pub count: u32,
}

impl IdPool {
    /// The pool used when `/etc/subuid` (or `/etc/subgid`) has no `crabcan` entry: host ids
    /// 2147483648..4294901760. It is far above `SUB_UID_MIN` (100000), where `useradd` hands out
    /// ranges, and it keeps clear of the invalid id 4294967295.
    pub const DEFAULT: IdPool = IdPool {
        start: 1 << 31,
        count: 2_147_418_112,
    };

    /// How many slots fit. Slots are aligned to the start of the pool: slot `i` begins at
    /// `start + i * SLOT_SIZE`.
    pub fn slots(&self) -> u32 {
        self.count / SLOT_SIZE
    }

    /// The host range of slot `index`, mapped to container ids `0..SLOT_SIZE`.
    pub fn slot(&self, index: u32) -> Option<IdRange> {
        if index >= self.slots() {
            return None;
        }
        Some(IdRange {
            inside: 0,
            outside: self.start + index * SLOT_SIZE,
            count: SLOT_SIZE,
        })
    }
}

/// Who owns which host ids of one kind.
struct Owners {
    kind: IdKind,
    subids_path: PathBuf,
    subids: Vec<SubIdEntry>,
    /// Every account id of this kind, with where it came from.
    ids: Vec<(u32, AccountKind, String, usize)>,
    ids_path: PathBuf,
    passwd_path: PathBuf,
    passwd: Vec<Account>,
}

fn read_passwd(files: &IdFiles) -> Result<Vec<Account>, IdRangeError> {
    Ok(parse_passwd(&read_required(&files.passwd)?).entries)
}

/// The ids and sub-ranges that belong to the caller: they do not count as someone else's.
struct Caller {
    uid: u32,
    names: Vec<String>,
    gids: Vec<u32>,
}

impl Owners {
    fn load(files: &IdFiles, kind: IdKind) -> Result<Owners, IdRangeError> {
        Owners::load_with(files, kind, read_passwd(files)?)
    }

    /// Like [`Owners::load`], with `/etc/passwd` already read (a caller that needs both kinds
    /// reads it once).
    fn load_with(files: &IdFiles, kind: IdKind, passwd: Vec<Account>) -> Result<Owners, IdRangeError> {
        let subids_path = files.subids(kind).to_owned();
        let subids = read_bounded(&subids_path)?
            .map(|text| parse_subids(&text).entries)
            .unwrap_or_default();
        let mut ids = Vec::new();
        let ids_path = match kind {
            IdKind::Uid => {
                ids.extend(passwd.iter().map(|a| (a.id, AccountKind::User, a.name.clone(), a.line)));
                files.passwd.clone()
            }
            IdKind::Gid => {
                let group = parse_group(&read_required(&files.group)?).entries;
                ids.extend(group.into_iter().map(|a| (a.id, AccountKind::Group, a.name, a.line)));
                files.group.clone()
            }
        };
        Ok(Owners {
            kind,
            subids_path,
            subids,
            ids,
            ids_path,
            passwd_path: files.passwd.clone(),
            passwd,
        })
    }

    fn caller(&self, uid: u32) -> Caller {
        let accounts = self.passwd.iter().filter(|a| a.id == uid);
        let names = accounts.clone().map(|a| a.name.clone()).collect();
        let mut gids: Vec<u32> = accounts.filter_map(|a| a.primary_gid).collect();
        if uid == 0 && gids.is_empty() {
            gids.push(0);
        }
        Caller { uid, names, gids }
    }

    /// crabcan's pool: the first `crabcan` entry, or [`IdPool::DEFAULT`].
    fn pool(&self) -> Result<IdPool, IdRangeError> {
        let Some(entry) = self.subids.iter().find(|e| e.owner == POOL_OWNER) else {
            return Ok(IdPool::DEFAULT);
        };
        let too_small = || IdRangeError::PoolTooSmall {
            kind: self.kind,
            start: entry.start,
            count: entry.count,
            path: self.subids_path.clone(),
            line: entry.line,
        };
        if entry.start >= ID_LIMIT {
            return Err(too_small());
        }
        let end = entry.end().min(ID_LIMIT);
        let pool = IdPool {
            start: entry.start as u32,
            count: (end - entry.start) as u32,
        };
        if pool.slots() == 0 {
            return Err(too_small());
        }
        Ok(pool)
    }

    /// The first owner of any host id in `first..end`, other than crabcan and `caller`.
    fn owner_of(&self, first: u64, end: u64, caller: Option<&Caller>) -> Option<IdOwner> {
        let is_callers_entry = |owner: &str| {
            caller.is_some_and(|c| c.names.iter().any(|n| n == owner) || parse_decimal_id(owner) == Some(c.uid))
        };
        let overlaps = |start: u64, stop: u64| start < end && first < stop;
        let range = self
            .subids
            .iter()
            .filter(|e| e.owner != POOL_OWNER && !is_callers_entry(&e.owner))
            .find(|e| overlaps(e.start, e.end()));
        if let Some(entry) = range {
            return Some(IdOwner::SubIds {
                kind: self.kind,
                user: entry.owner.clone(),
                first: entry.start,
                last: entry.end() - 1,
                path: self.subids_path.clone(),
                line: entry.line,
            });
        }
        let is_callers_id = |id: u32| {
            caller.is_some_and(|c| match self.kind {
                IdKind::Uid => id == c.uid,
                IdKind::Gid => c.gids.contains(&id),
            })
        };
        let in_range = |id: u32| overlaps(u64::from(id), u64::from(id) + 1) && !is_callers_id(id);
        if let Some((id, kind, name, line)) = self.ids.iter().find(|(id, ..)| in_range(*id)) {
            return Some(IdOwner::Account {
                kind: *kind,
                id: *id,
                name: name.clone(),
                path: self.ids_path.clone(),
                line: *line,
            });
        }
        if self.kind == IdKind::Gid {
            let primary = self
                .passwd
                .iter()
                .find(|a| a.primary_gid.is_some_and(in_range))
                .and_then(|a| Some((a, a.primary_gid?)));
            if let Some((account, gid)) = primary {
                return Some(IdOwner::Account {
                    kind: AccountKind::PrimaryGroup,
                    id: gid,
                    name: account.name.clone(),
                    path: self.passwd_path.clone(),
                    line: account.line,
                });
            }
        }
        None
    }
}

/// crabcan's pool of `kind` ids: the range of the `crabcan` entry in `/etc/subuid` (resp.
/// `/etc/subgid`) if there is one (the first, if there are several), otherwise [`IdPool::DEFAULT`].
/// The part of an entry at or above 4294967295 is cut off.
pub fn pool(files: &IdFiles, kind: IdKind) -> Result<IdPool, IdRangeError> {
    Owners::load(files, kind)?.pool()
}

/// Checks a map that the user gave. Its host ids (`outside..outside + count`) must overlap no
/// subordinate range of another user (ranges of `crabcan` and of the caller's own entries, by name
/// or by uid, are allowed) and no id of a real account other than the caller's own. The caller's
/// own ids are uid `caller_uid` and, for gids, the primary gids of the caller's passwd entries (gid
/// 0 for root without one). So host id 0 can only be mapped by root.
///
/// A map that overlaps crabcan's pool is refused too: it could share ids with a container that
/// got its range from [`allocate`].
pub fn check_map(map: &IdRange, kind: IdKind, files: &IdFiles, caller_uid: u32) -> Result<(), IdRangeError> {
    let first = u64::from(map.outside);
    let end = first + u64::from(map.count);
    if end > ID_LIMIT || u64::from(map.inside) + u64::from(map.count) > ID_LIMIT {
        return Err(IdRangeError::MapOutOfRange { kind, map: *map });
    }
    if map.count == 0 {
        return Ok(());
    }
    let owners = Owners::load(files, kind)?;
    let caller = owners.caller(caller_uid);
    if let Some(owner) = owners.owner_of(first, end, Some(&caller)) {
        return Err(IdRangeError::MapOverlaps { kind, map: *map, owner });
    }
    let pool = owners.pool()?;
    let (pool_first, pool_end) = (u64::from(pool.start), u64::from(pool.start) + u64::from(pool.count));
    if first < pool_end && pool_first < end {
        return Err(IdRangeError::MapInPool { kind, map: *map, pool });
    }
    Ok(())
}

/// A user's own subordinate ranges of one kind: the entries of `/etc/subuid` (or
/// `/etc/subgid`) that name user `uid` by one of its login names in `/etc/passwd` or by the
/// number, in file order, as `newuidmap`/`newgidmap` grant them; and those login names.
pub fn user_subids(files: &IdFiles, kind: IdKind, uid: u32) -> Result<(Vec<String>, Vec<SubIdEntry>), IdRangeError> {
    let owners = Owners::load(files, kind)?;
    let caller = owners.caller(uid);
    let entries = owners
        .subids
        .into_iter()
        .filter(|e| caller.names.contains(&e.owner) || parse_decimal_id(&e.owner) == Some(uid))
        .collect();
    Ok((caller.names, entries))
}

/// A slot of crabcan's pool that this process holds. While it lives, no other [`allocate`] hands
/// out the same ids. Dropping it releases the slot: the lease file is closed, which drops the lock,
/// and stays for the next allocator. If the process dies without dropping it, the kernel drops the
/// lock all the same.
#[derive(Debug)]
pub struct IdLease {
    uid_map: IdRange,
    gid_map: IdRange,
    slot: u32,
    /// The lease file's path.
    path: PathBuf,
    /// Held for its lock: closing it (on drop) releases the slot.
    _file: File,
}

impl IdLease {
    /// The uid map: container uids 0..65536 to the slot's host uids.
    pub fn uid_map(&self) -> IdRange {
        self.uid_map
    }

    /// The gid map: container gids 0..65536 to the slot's host gids.
    pub fn gid_map(&self) -> IdRange {
        self.gid_map
    }

    /// The index of the slot in crabcan's pool (the same for uids and gids).
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Picks the lowest free usable slot of crabcan's pool and leases it. A slot is usable when neither
/// its uids nor its gids overlap a subordinate range of anyone but `crabcan` or an id of a real
/// account. It is free when no live process holds its lease. `state_dir` is created with mode 0700
/// if it is missing (its parents with the default mode). It must be owned by the effective uid and
/// not writable by group or others.
pub fn allocate(files: &IdFiles, state_dir: &Path) -> Result<IdLease, IdRangeError> {
    let mut attempts = 0;
    loop {
        match allocate_once(files, state_dir) {
            // The lease directory was removed between our open and our create (crabcan keeps
            // it, but an administrator, or a crabcan from before it kept it, may not): make it
            // again.
            Err(IdRangeError::Lease { source, .. }) if source.kind() == io::ErrorKind::NotFound && attempts < 3 => {
                attempts += 1
            }
            result => return result,
        }
    }
}

fn allocate_once(files: &IdFiles, state_dir: &Path) -> Result<IdLease, IdRangeError> {
    let passwd = read_passwd(files)?;
    let uids = Owners::load_with(files, IdKind::Uid, passwd.clone())?;
    let gids = Owners::load_with(files, IdKind::Gid, passwd)?;
    let (uid_pool, gid_pool) = (uids.pool()?, gids.pool()?);
    let slots = uid_pool.slots().min(gid_pool.slots());

    let dir = open_state_dir(state_dir)?;
    let mut temp = None;
    let (mut leased, mut owned) = (0, 0);
    for slot in 0..slots {
        let (Some(uid_map), Some(gid_map)) = (uid_pool.slot(slot), gid_pool.slot(slot)) else {
            break;
        };
        let span = |range: IdRange| {
            (
                u64::from(range.outside),
                u64::from(range.outside) + u64::from(range.count),
            )
        };
        let ((uid_first, uid_end), (gid_first, gid_end)) = (span(uid_map), span(gid_map));
        if uids.owner_of(uid_first, uid_end, None).is_some() || gids.owner_of(gid_first, gid_end, None).is_some() {
            owned += 1;
            continue;
        }
        let name = uid_map.outside.to_string();
        match claim(dir.as_fd(), state_dir, &name, &mut temp)? {
            Some(file) => {
                // Unlinks the temporary file if the slot's own file was taken instead.
                drop(temp);
                return Ok(IdLease {
                    uid_map,
                    gid_map,
                    slot,
                    path: state_dir.join(&name),
                    _file: file,
                });
            }
            None => leased += 1,
        }
    }
    drop(temp);
    let last_uid = u64::from(uid_pool.start) + u64::from(slots) * u64::from(SLOT_SIZE);
    Err(IdRangeError::PoolExhausted {
        slots,
        leased,
        owned,
        first_uid: uid_pool.start,
        last_uid: last_uid.saturating_sub(1) as u32,
        subuid: files.subuid.clone(),
        subgid: files.subgid.clone(),
    })
}

fn open_state_dir(path: &Path) -> Result<OwnedFd, IdRangeError> {
    let fail = |what, source| IdRangeError::StateDir {
        path: path.to_owned(),
        what,
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| fail("create the parent of", e))?;
    }
    match nix::unistd::mkdir(path, Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => return Err(fail("create", errno.into())),
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let dir = nix::fcntl::open(path, flags, Mode::empty()).map_err(|errno| fail("open", errno.into()))?;
    let stat = fstat(&dir).map_err(|errno| fail("stat", errno.into()))?;
    let euid = geteuid().as_raw();
    let unsafe_dir = |why: String| IdRangeError::StateDirUnsafe {
        path: path.to_owned(),
        why,
        euid,
    };
    if stat.st_uid != euid {
        return Err(unsafe_dir(format!("is owned by uid {}", stat.st_uid)));
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(unsafe_dir(format!("has mode {:o}", stat.st_mode & 0o7777)));
    }
    Ok(dir)
}

/// `flock(2)`. nix's `Flock` guard would panic in `Drop` if unlocking failed. A lease never unlocks
/// explicitly: closing its file drops the lock. So this takes a plain borrowed fd.
fn flock(fd: BorrowedFd<'_>, operation: libc::c_int) -> Result<(), Errno> {
    // SAFETY: flock(2) reads no memory of ours; it only takes an fd and a flag word, and `fd` is
    // borrowed, so it stays open for the whole call.
    let rc = unsafe { libc::flock(fd.as_raw_fd(), operation) };
    Errno::result(rc).map(drop)
}

fn same_file(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// Unlinks `dir/name` if it still is `file`. An administrator could have replaced it. Then it is
/// another allocator's lease and must stay.
fn unlink_if_same(dir: BorrowedFd<'_>, name: &str, file: &File) -> Result<(), Errno> {
    let ours = fstat(file)?;
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(theirs) if same_file(&ours, &theirs) => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir),
        Ok(_) | Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(errno),
    }
}

/// The bytes [`write_owner`] writes: a pid (at most 7 digits, `PID_MAX_LIMIT` being 4194304),
/// padded with blanks, and a newline.
const OWNER_LEN: u64 = 8;

/// Writes our pid into a lease file, for people who look at the directory. Always [`OWNER_LEN`]
/// bytes at offset 0, so a file that held another pid is overwritten in place, never truncated:
/// on ext4, a truncate followed by a write makes the last close flush the file to disk (its
/// `auto_da_alloc` heuristic), which cost 0.4 ms per container. Only a longer file (not one of
/// ours) is cut to size, `size` being what the caller found by `fstat`.
fn write_owner(file: &File, size: u64) -> io::Result<()> {
    let line = format!("{:<width$}\n", std::process::id(), width = OWNER_LEN as usize - 1);
    file.write_all_at(line.as_bytes(), 0)?;
    if size > OWNER_LEN {
        file.set_len(OWNER_LEN)?;
    }
    Ok(())
}

/// A locked file under a temporary name in the state dir, waiting to be renamed into a slot.
/// Unlinked on drop unless a rename took it.
struct TempLease<'dir> {
    dir: BorrowedFd<'dir>,
    name: String,
    file: Option<File>,
}

impl<'dir> TempLease<'dir> {
    fn create(dir: BorrowedFd<'dir>, state_dir: &Path) -> Result<TempLease<'dir>, IdRangeError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        loop {
            let name = format!(
                ".tmp-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = state_dir.join(&name);
            let fail = |what, source| IdRangeError::Lease { path, what, source };
            let fd = match openat(dir, name.as_str(), flags, Mode::S_IRUSR | Mode::S_IWUSR) {
                Ok(fd) => fd,
                // Left by an earlier process with our pid: pick the next name.
                Err(Errno::EEXIST) => continue,
                Err(errno) => return Err(fail("create", errno.into())),
            };
            // From here on, dropping `temp` removes the file again.
            let temp = TempLease {
                dir,
                name,
                file: Some(File::from(fd)),
            };
            if let Some(file) = &temp.file {
                // No one else knows this file yet, so the lock is free.
                if let Err(errno) = flock(file.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
                    return Err(fail("lock", errno.into()));
                }
                if let Err(error) = write_owner(file, 0) {
                    return Err(fail("write", error));
                }
            }
            return Ok(temp);
        }
    }
}

impl Drop for TempLease<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            // Nothing can be reported from drop. A leftover temp file only takes a directory entry.
            let _ = unlink_if_same(self.dir, &self.name, &file);
        }
    }
}

enum TakeOver {
    /// The slot's file was free, and is locked by us now; its size, for [`write_owner`].
    Taken(File, u64),
    /// A live process holds it.
    Live,
    /// There is no file for the slot (or it was replaced while we locked it): make one.
    Missing,
}

/// The most times one slot is tried while its lease file keeps coming and going.
const CLAIM_ATTEMPTS: usize = 8;

/// Tries to lease the slot whose lease file is `dir/name`: locks the file if it is there, or makes
/// it from `temp` (created on first need, kept across slots) if it is not. Returns the locked lease
/// file, or `None` if a live process holds the slot.
fn claim<'dir>(
    dir: BorrowedFd<'dir>,
    state_dir: &Path,
    name: &str,
    temp: &mut Option<TempLease<'dir>>,
) -> Result<Option<File>, IdRangeError> {
    let path = state_dir.join(name);
    for _ in 0..CLAIM_ATTEMPTS {
        match take_over(dir, name).map_err(|(what, errno)| IdRangeError::Lease {
            path: path.clone(),
            what,
            source: errno.into(),
        })? {
            TakeOver::Taken(file, size) => {
                write_owner(&file, size).map_err(|source| IdRangeError::Lease {
                    path: path.clone(),
                    what: "write",
                    source,
                })?;
                return Ok(Some(file));
            }
            TakeOver::Live => return Ok(None),
            TakeOver::Missing => {}
        }
        let fresh = match temp {
            Some(fresh) => fresh,
            None => temp.insert(TempLease::create(dir, state_dir)?),
        };
        match renameat2(dir, fresh.name.as_str(), dir, name, RenameFlags::RENAME_NOREPLACE) {
            // The temporary file is the lease now: it must not be unlinked with `temp`.
            Ok(()) => return Ok(temp.take().and_then(|mut fresh| fresh.file.take())),
            // Another allocator made it first: try to lock theirs.
            Err(Errno::EEXIST) => {}
            Err(Errno::EINVAL | Errno::ENOSYS) => return Err(IdRangeError::RenameUnsupported { path }),
            Err(errno) => {
                return Err(IdRangeError::Lease {
                    path,
                    what: "rename a new lease file to",
                    source: errno.into(),
                })
            }
        }
    }
    // The slot kept changing hands: count it as taken.
    Ok(None)
}

fn take_over(dir: BorrowedFd<'_>, name: &str) -> Result<TakeOver, (&'static str, Errno)> {
    let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let file = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::ENOENT) => return Ok(TakeOver::Missing),
        Err(errno) => return Err(("open", errno)),
    };
    match flock(file.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {}
        Err(Errno::EWOULDBLOCK) => return Ok(TakeOver::Live),
        Err(errno) => return Err(("lock", errno)),
    }
    // crabcan keeps lease files, but an administrator (or a crabcan from before it did) may have
    // unlinked this one between our open and our lock. Then we hold a lock on a file that is no
    // longer the lease, and someone else may have a new one there.
    let ours = fstat(&file).map_err(|errno| ("stat", errno))?;
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(theirs) if same_file(&ours, &theirs) => Ok(TakeOver::Taken(file, ours.st_size.max(0) as u64)),
        Ok(_) | Err(Errno::ENOENT) => Ok(TakeOver::Missing),
        Err(errno) => Err(("stat", errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempTree;
    use proptest::prelude::*;
    use std::fs;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/sbin/nologin\n\
                          crabbars:x:1000:1000::/home/crabbars:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:\nnogroup:x:65534:\ncrabbars:x:1000:\n";

    /// Id files and a state dir under a fresh temp tree.
    struct Host {
        tree: TempTree,
        files: IdFiles,
    }

    impl Host {
        fn new(tag: &str, subuid: &str, subgid: &str) -> Host {
            let tree = TempTree::new(&format!("id-ranges-{tag}"));
            let files = IdFiles {
                subuid: tree.join("subuid"),
                subgid: tree.join("subgid"),
                passwd: tree.join("passwd"),
                group: tree.join("group"),
            };
            fs::write(&files.subuid, subuid).unwrap();
            fs::write(&files.subgid, subgid).unwrap();
            fs::write(&files.passwd, PASSWD).unwrap();
            fs::write(&files.group, GROUP).unwrap();
            Host { tree, files }
        }

        fn state(&self) -> PathBuf {
            self.tree.join("run/crabcan/.ids")
        }

        fn allocate(&self) -> Result<IdLease, IdRangeError> {
            allocate(&self.files, &self.state())
        }
    }

    fn range(outside: u32, count: u32) -> IdRange {
        IdRange {
            inside: 0,
            outside,
            count,
        }
    }

    #[test]
    fn parses_subordinate_ids() {
        let text = "# comment\n\ncrabbars:100000:65536\n1001:0x30d40:0200000\n  \nbad line\n\
                    :1:2\nx:1:2:3\ny:-1:5\nz:1:\ncrabcan:2147483648:65536";
        let parsed = parse_subids(text);
        let owners: Vec<(&str, u64, u64, usize)> = parsed
            .entries
            .iter()
            .map(|e| (e.owner.as_str(), e.start, e.count, e.line))
            .collect();
        assert_eq!(
            owners,
            vec![
                ("crabbars", 100_000, 65_536, 3),
                ("1001", 200_000, 65_536, 4),
                ("crabcan", 1 << 31, 65_536, 11)
            ]
        );
        let bad_lines: Vec<usize> = parsed.malformed.iter().map(|m| m.line).collect();
        assert_eq!(bad_lines, vec![6, 7, 8, 9, 10]);

        let host = Host::new("malformed", text, "");
        let found = malformed_lines(&host.files).unwrap();
        assert_eq!(found.len(), 5);
        assert!(found.iter().all(|(path, _)| *path == host.files.subuid));
    }

    #[test]
    fn reads_numbers_like_strtoul() {
        assert_eq!(parse_c_number("0"), Some(0));
        assert_eq!(parse_c_number(" +42 "), Some(42));
        assert_eq!(parse_c_number("0x10"), Some(16));
        assert_eq!(parse_c_number("010"), Some(8));
        for bad in ["", "-1", "+", "++1", "0x", "0x-1", "08", "1e3", "4 2"] {
            assert_eq!(parse_c_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_accounts() {
        let passwd = parse_passwd("root:x:0:0::/:/bin/sh\n+nis\nshort:x\nbad:x:abc:1\nalice:x:1000:100:::\n");
        let ids: Vec<(&str, u32, Option<u32>)> = passwd
            .entries
            .iter()
            .map(|a| (a.name.as_str(), a.id, a.primary_gid))
            .collect();
        assert_eq!(ids, vec![("root", 0, Some(0)), ("alice", 1000, Some(100))]);
        assert_eq!(passwd.malformed.len(), 3);
        let group = parse_group("wheel:x:10:alice,bob\n");
        assert_eq!(group.entries[0].id, 10);
        assert_eq!(group.entries[0].primary_gid, None);
    }

    #[test]
    fn pool_is_the_crabcan_entry_or_the_default() {
        let host = Host::new("pool", "crabbars:100000:65536\ncrabcan:300000:655360\n", "");
        assert_eq!(
            pool(&host.files, IdKind::Uid).unwrap(),
            IdPool {
                start: 300_000,
                count: 655_360
            }
        );
        assert_eq!(pool(&host.files, IdKind::Gid).unwrap(), IdPool::DEFAULT);
        assert_eq!(IdPool::DEFAULT.slots(), 32_767);
        let last = IdPool::DEFAULT.slot(32_766).unwrap();
        assert_eq!(u64::from(last.outside) + u64::from(last.count), 4_294_901_760);
        assert_eq!(IdPool::DEFAULT.slot(32_767), None);

        let small = Host::new("pool-small", "crabcan:300000:1000\n", "");
        assert!(matches!(
            pool(&small.files, IdKind::Uid),
            Err(IdRangeError::PoolTooSmall { line: 1, .. })
        ));
        // Cut off below the invalid id 4294967295.
        let high = Host::new("pool-high", "crabcan:4294836224:200000\n", "");
        assert_eq!(pool(&high.files, IdKind::Uid).unwrap().slots(), 1);
    }

    #[test]
    fn missing_subid_files_mean_no_owners() {
        let host = Host::new("missing", "", "");
        fs::remove_file(&host.files.subuid).unwrap();
        fs::remove_file(&host.files.subgid).unwrap();
        assert_eq!(pool(&host.files, IdKind::Uid).unwrap(), IdPool::DEFAULT);
        fs::remove_file(&host.files.passwd).unwrap();
        assert!(matches!(pool(&host.files, IdKind::Uid), Err(IdRangeError::Read { .. })));
    }

    #[test]
    fn allocates_from_the_default_pool() {
        let host = Host::new("default", "crabbars:100000:65536\n", "crabbars:100000:65536\n");
        let lease = host.allocate().unwrap();
        assert_eq!(lease.slot(), 0);
        assert_eq!(lease.uid_map(), range(1 << 31, SLOT_SIZE));
        assert_eq!(lease.gid_map(), range(1 << 31, SLOT_SIZE));
        assert_eq!(lease.path(), host.state().join("2147483648"));
        assert!(lease.path().exists());
        let mode = fs::metadata(host.state()).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o700
        );
    }

    #[test]
    fn skips_slots_that_others_own() {
        // Slot 0: another user's subuid range overlaps. Slot 1: a subgid range overlaps.
        // Slot 2: an account's uid. Slot 3: a group's gid. Slot 4: a primary gid. Slot 5 is free.
        let base = 1_000_000u32;
        let at = |slot: u32, offset: u32| base + slot * SLOT_SIZE + offset;
        let subuid = format!("crabcan:{base}:{}\nalice:{}:10\n", 10 * SLOT_SIZE, at(0, 65_530));
        let subgid = format!("crabcan:{base}:{}\nbob:{}:1\n", 10 * SLOT_SIZE, at(1, 0));
        let host = Host::new("skip", &subuid, &subgid);
        let passwd = format!(
            "{PASSWD}svc:x:{}:0::/:/bin/false\nother:x:5:{}::/:/bin/false\n",
            at(2, 7),
            at(4, 1)
        );
        fs::write(&host.files.passwd, passwd).unwrap();
        fs::write(&host.files.group, format!("{GROUP}grp:x:{}:\n", at(3, 65_535))).unwrap();
        let lease = host.allocate().unwrap();
        assert_eq!(lease.slot(), 5);
        assert_eq!(lease.uid_map().outside, at(5, 0));
        drop(lease);

        // With those owners and one slot fewer, nothing is left.
        let subuid = format!("crabcan:{base}:{}\nalice:{}:10\n", 5 * SLOT_SIZE, at(0, 65_530));
        fs::write(&host.files.subuid, subuid).unwrap();
        match host.allocate() {
            Err(
                error @ IdRangeError::PoolExhausted {
                    slots: 5,
                    leased: 0,
                    owned: 5,
                    ..
                },
            ) => {
                assert!(error.to_string().contains("give crabcan a larger range"), "{error}");
            }
            other => panic!("expected PoolExhausted, got {other:?}"),
        }
    }

    #[test]
    fn live_leases_are_disjoint_and_released_on_drop() {
        let host = Host::new("leases", "crabcan:1000000:196608\n", "crabcan:5000000:196608\n");
        let first = host.allocate().unwrap();
        let second = host.allocate().unwrap();
        assert_eq!((first.slot(), second.slot()), (0, 1));
        assert_eq!(second.uid_map(), range(1_065_536, SLOT_SIZE));
        assert_eq!(second.gid_map(), range(5_065_536, SLOT_SIZE));
        let third = host.allocate().unwrap();
        assert!(matches!(
            host.allocate(),
            Err(IdRangeError::PoolExhausted {
                leased: 3,
                owned: 0,
                ..
            })
        ));
        let path = first.path().to_owned();
        drop(first);
        // Released, the slot's file stays, unlocked, and the next allocator locks it again.
        assert!(unlocked(&path), "a dropped lease is unlocked");
        let again = host.allocate().unwrap();
        assert_eq!((again.slot(), again.path()), (0, path.as_path()));
        assert!(!unlocked(&path), "a new lease holds the lock");
        drop((again, second, third));
        // Once all are released, the directory holds the three slots' files and nothing else (no
        // temporary file), none of them locked.
        let mut left: Vec<String> = fs::read_dir(host.state())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["1000000", "1065536", "1131072"]);
        assert!(left.iter().all(|name| unlocked(&host.state().join(name))));
    }

    /// True if `path` can be locked now, i.e. no lease holds it.
    fn unlocked(path: &Path) -> bool {
        let file = File::open(path).unwrap();
        flock(file.as_fd(), libc::LOCK_EX | libc::LOCK_NB).is_ok()
    }

    #[test]
    fn racing_allocators_get_disjoint_slots() {
        let host = Host::new("race", "", "");
        let leases: Vec<IdLease> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8).map(|_| scope.spawn(|| host.allocate())).collect();
            workers.into_iter().map(|w| w.join().unwrap().unwrap()).collect()
        });
        let mut slots: Vec<u32> = leases.iter().map(IdLease::slot).collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn takes_over_the_lease_of_a_dead_owner() {
        let host = Host::new("dead", "", "");
        fs::create_dir_all(host.state()).unwrap();
        let stale = host.state().join("2147483648");
        fs::write(&stale, "1234567\n").unwrap();
        let lease = host.allocate().unwrap();
        assert_eq!(lease.slot(), 0);
        let owner = fs::read_to_string(&stale).unwrap();
        assert_eq!(owner.len() as u64, OWNER_LEN, "{owner:?}");
        assert_eq!(owner.trim_end(), std::process::id().to_string());
        // Taken over, it is locked like any other lease.
        assert_eq!(host.allocate().unwrap().slot(), 1);
        drop(lease);

        // A longer file than crabcan writes (not one of its own) is cut to the owner line.
        fs::write(&stale, "not a pid, and longer than one\n").unwrap();
        let _lease = host.allocate().unwrap();
        assert_eq!(
            fs::read_to_string(&stale).unwrap().trim_end(),
            std::process::id().to_string()
        );
    }

    #[test]
    fn skips_a_lease_locked_through_another_open_file() {
        let host = Host::new("locked", "", "");
        fs::create_dir_all(host.state()).unwrap();
        let held = host.state().join("2147483648");
        fs::write(&held, "").unwrap();
        let other = File::open(&held).unwrap();
        flock(other.as_fd(), libc::LOCK_EX | libc::LOCK_NB).unwrap();
        assert_eq!(host.allocate().unwrap().slot(), 1);
        assert!(held.exists());
        drop(other);
        assert_eq!(host.allocate().unwrap().slot(), 0);
    }

    #[test]
    fn refuses_an_unsafe_state_dir() {
        let host = Host::new("unsafe", "", "");
        fs::create_dir_all(host.state()).unwrap();
        fs::set_permissions(host.state(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        assert!(matches!(host.allocate(), Err(IdRangeError::StateDirUnsafe { .. })));
    }

    #[test]
    fn check_map_refuses_other_users_ranges() {
        let host = Host::new(
            "check-sub",
            "crabbars:100000:65536\ncrabcan:300000:65536\nroot:400000:65536\n",
            "crabbars:100000:65536\n",
        );
        let error = check_map(&range(100_000, 65_536), IdKind::Uid, &host.files, 0).unwrap_err();
        let expected = format!(
            "the uid map 0:100000:65536 (host uids 100000-165535) overlaps the subordinate uids 100000-165535 of \
             user crabbars in {}; leave the uid map out to get a private range, or pick host uids no one owns",
            host.files.subuid.display()
        );
        assert_eq!(error.to_string(), expected);
        assert!(check_map(&range(165_535, 1), IdKind::Gid, &host.files, 0).is_err());
        assert!(check_map(&range(165_536, 1000), IdKind::Gid, &host.files, 0).is_ok());
        // crabcan's own range is its pool of private ranges: a fixed map there is refused. The
        // caller's own entries are allowed; the crabbars entry is crabbars' own when crabbars asks.
        let in_pool = check_map(&range(300_000, 65_536), IdKind::Uid, &host.files, 0).unwrap_err();
        assert!(matches!(in_pool, IdRangeError::MapInPool { .. }), "{in_pool}");
        assert!(check_map(&range(370_000, 1), IdKind::Uid, &host.files, 0).is_ok());
        assert!(check_map(&range(400_000, 65_536), IdKind::Uid, &host.files, 0).is_ok());
        assert!(check_map(&range(400_000, 65_536), IdKind::Uid, &host.files, 1000).is_err());
        assert!(check_map(&range(100_000, 65_536), IdKind::Uid, &host.files, 1000).is_ok());
    }

    #[test]
    fn a_users_own_subordinate_ranges_by_name_or_number() {
        let host = Host::new(
            "user-subids",
            "crabbars:100000:65536\nother:200000:10\n1000:300000:5\ncrabcan:400000:65536\n",
            "crabbars:500000:65536\n",
        );
        let (names, uids) = user_subids(&host.files, IdKind::Uid, 1000).unwrap();
        assert_eq!(names, vec!["crabbars".to_owned()]);
        let starts: Vec<u64> = uids.iter().map(|e| e.start).collect();
        assert_eq!(starts, vec![100_000, 300_000]);
        let (_, gids) = user_subids(&host.files, IdKind::Gid, 1000).unwrap();
        assert_eq!(gids.iter().map(|e| e.start).collect::<Vec<_>>(), vec![500_000]);
        let (names, none) = user_subids(&host.files, IdKind::Uid, 4242).unwrap();
        assert!(names.is_empty() && none.is_empty());
    }

    #[test]
    fn check_map_refuses_accounts_other_than_the_caller() {
        let host = Host::new("check-acct", "", "");
        let error = check_map(&range(0, 2000), IdKind::Uid, &host.files, 0).unwrap_err();
        assert!(
            error.to_string().contains("overlaps uid 1000 of user crabbars in"),
            "{error}"
        );
        // Root may map itself, no one else may map root.
        assert!(check_map(&range(0, 1), IdKind::Uid, &host.files, 0).is_ok());
        assert!(check_map(&range(0, 1), IdKind::Gid, &host.files, 0).is_ok());
        let error = check_map(&range(0, 1), IdKind::Uid, &host.files, 1000).unwrap_err();
        assert!(error.to_string().contains("uid 0 of user root"), "{error}");
        let error = check_map(&range(50, 100), IdKind::Gid, &host.files, 0).unwrap_err();
        assert!(error.to_string().contains("gid 100 of group users in"), "{error}");
        assert!(check_map(&range(1000, 1), IdKind::Gid, &host.files, 1000).is_ok());
        // A primary gid with no group entry still belongs to its user.
        fs::write(&host.files.passwd, format!("{PASSWD}svc:x:7000:7001::/:/bin/false\n")).unwrap();
        let error = check_map(&range(7001, 1), IdKind::Gid, &host.files, 0).unwrap_err();
        assert!(
            error.to_string().contains("gid 7001, the primary group of user svc"),
            "{error}"
        );
        // A range in crabcan's default pool is refused; a free one below it passes.
        assert!(matches!(
            check_map(&range(1 << 31, 65_536), IdKind::Uid, &host.files, 0),
            Err(IdRangeError::MapInPool { .. })
        ));
        assert!(check_map(&range((1 << 31) - 65_536, 65_536), IdKind::Gid, &host.files, 0).is_ok());
        assert!(matches!(
            check_map(&range(u32::MAX - 10, 11), IdKind::Uid, &host.files, 0),
            Err(IdRangeError::MapOutOfRange { .. })
        ));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in any::<String>()) {
            let _ = parse_subids(&text);
            let _ = parse_passwd(&text);
            let _ = parse_group(&text);
        }

        #[test]
        fn colon_heavy_input_never_panics(text in "[a-z0-9:+\\-x# \n]{0,200}") {
            let parsed = parse_subids(&text);
            for entry in parsed.entries {
                prop_assert!(entry.end() >= entry.start);
            }
            let _ = parse_passwd(&text);
        }

        #[test]
        fn malformed_files_do_not_break_allocation(subuid in "[a-z0-9:\n]{0,120}", passwd in "[a-z0-9:\n]{0,120}") {
            let host = Host::new("prop", &subuid, "");
            fs::write(&host.files.passwd, &passwd).unwrap();
            let _ = check_map(&range(100_000, 65_536), IdKind::Uid, &host.files, 0);
            let _ = pool(&host.files, IdKind::Uid);
            let _ = host.allocate();
        }
    }
}
