//! Who the container's process is: first root of its user namespace (to set itself up), then the
//! configured `--uid`/`--gid` with no supplementary groups. Also the process attributes tied to
//! identity: the parent-death signal (reset by the kernel whenever credentials change),
//! `PR_SET_DUMPABLE` (which keeps other processes out of `/proc/<pid>/` of the setup process),
//! the session keyring and the execution domain (personality).

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

/// Becomes uid 0 / gid 0 of the (freshly mapped) user namespace.
pub fn become_namespace_root() -> Result<(), Errno> {
    switch_to(0, 0, &[])
}

/// Sets the supplementary groups to `additional_gids` and switches real, effective and saved ids.
pub fn switch_to(uid: u32, gid: u32, additional_gids: &[u32]) -> Result<(), Errno> {
    set_groups(additional_gids)?;
    // Keep the permitted set across the uid change: the capability sets are set explicitly
    // right after (to nothing, or to what an OCI config gives a non-root user); execve resets
    // this flag.
    prctl(libc::PR_SET_KEEPCAPS, 1)?;
    nix::unistd::setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))?;
    nix::unistd::setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))?;
    Ok(())
}

/// setgroups(2). Where the user namespace denies it (an ordinary user mapped only its own ids:
/// the kernel requires `deny` in `setgroups` for that) and no group is wanted, the process keeps
/// the groups its creator had, which show as the overflow gid (nogroup) inside: the kernel
/// allows nothing else, and they grant nothing the user did not have.
fn set_groups(additional_gids: &[u32]) -> Result<(), Errno> {
    let groups: Vec<Gid> = additional_gids.iter().map(|gid| Gid::from_raw(*gid)).collect();
    match nix::unistd::setgroups(&groups) {
        Err(Errno::EPERM) if groups.is_empty() && setgroups_denied() => Ok(()),
        other => other,
    }
}

/// Whether this process's user namespace denies setgroups (`/proc/self/setgroups`).
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|text| text.trim() == "deny")
}

/// Kills this process with SIGKILL when crabcan (its parent) dies.
pub fn die_with_parent() -> Result<(), Errno> {
    prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
}

/// Marks the process non-dumpable until execve: no other process of the container can open
/// `/proc/<pid>/exe`, `mem` or `fd/` of crabcan's setup code (CVE-2019-5736 family).
pub fn hide_from_proc() -> Result<(), Errno> {
    prctl(libc::PR_SET_DUMPABLE, 0)
}

/// `PR_SET_NO_NEW_PRIVS`: no execve can ever grant more privileges (setuid bits, file caps).
pub fn set_no_new_privs() -> Result<(), Errno> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
}

fn prctl(option: libc::c_int, value: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: prctl with an integer argument and zeroed unused arguments; no memory is passed.
    let result = unsafe {
        libc::prctl(
            option,
            value,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(result).map(drop)
}

/// Sets the NIS domain name of the container's uts namespace.
pub fn set_domainname(name: &str) -> Result<(), Errno> {
    // SAFETY: setdomainname reads `len` bytes from the pointer, which is valid for the call.
    Errno::result(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) }).map(drop)
}

/// `KEYCTL_JOIN_SESSION_KEYRING`, `KEYCTL_SETPERM` and `KEYCTL_DESCRIBE` of keyctl(2).
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
const KEYCTL_SETPERM: libc::c_int = 5;
const KEYCTL_DESCRIBE: libc::c_int = 6;
/// The search permission of a key for its owner's uid and for everyone else (keyctl(2)).
const KEY_USR_SEARCH: u32 = 0x0008_0000;
const KEY_OTH_SEARCH: u32 = 0x0000_0008;

/// Joins a new session keyring, so the process (and its command) no longer possesses the
/// caller's: `name` is joined if it exists and may be searched, else created; `None` makes an
/// anonymous one. A named one is made searchable, as runc does, for later processes of the
/// container: by its owner's uid, or by anyone with a user namespace (whose processes may run
/// as other uids). A kernel without keyrings (ENOSYS) is left as it is, as runc does.
pub fn join_session_keyring(name: Option<&str>, user_namespace: bool) -> Result<(), Errno> {
    let name = name
        .map(std::ffi::CString::new)
        .transpose()
        .map_err(|_| Errno::EINVAL)?;
    let name_ptr = name.as_ref().map_or(std::ptr::null(), |name| name.as_ptr());
    // SAFETY: keyctl(JOIN_SESSION_KEYRING) reads a NUL-terminated name (or takes NULL).
    let serial = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name_ptr) };
    if serial < 0 {
        return match Errno::last() {
            Errno::ENOSYS => Ok(()),
            errno => Err(errno),
        };
    }
    if name.is_none() {
        return Ok(());
    }
    let search = if user_namespace { KEY_OTH_SEARCH } else { KEY_USR_SEARCH };
    let perm = keyring_permissions(serial)?;
    // SAFETY: keyctl(SETPERM) takes a key serial and a permission mask; no memory is passed.
    Errno::result(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, perm | search) }).map(drop)
}

/// The permission mask of key `serial`: the 4th field of its description
/// (`type;uid;gid;perm;name`, the mask in hexadecimal).
fn keyring_permissions(serial: libc::c_long) -> Result<u32, Errno> {
    let mut buffer = [0u8; 512];
    // SAFETY: keyctl(DESCRIBE) writes at most `buffer.len()` bytes into the buffer.
    let length = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            serial,
            buffer.as_mut_ptr(),
            buffer.len(),
        )
    };
    let length = usize::try_from(Errno::result(length)?).map_err(|_| Errno::EINVAL)?;
    let text = std::str::from_utf8(&buffer[..length.min(buffer.len())]).map_err(|_| Errno::EINVAL)?;
    let field = text.split(';').nth(3).ok_or(Errno::EINVAL)?;
    u32::from_str_radix(field.trim_end_matches('\0'), 16).map_err(|_| Errno::EINVAL)
}

/// Sets the execution domain (personality(2)): `PER_LINUX` or `PER_LINUX32`.
pub fn set_personality(personality: crate::config::Personality) -> Result<(), Errno> {
    const PER_LINUX32: libc::c_ulong = 0x0008;
    let persona = match personality {
        crate::config::Personality::Linux => 0,
        crate::config::Personality::Linux32 => PER_LINUX32,
    };
    // SAFETY: personality takes a number and changes only this process's execution domain.
    Errno::result(unsafe { libc::personality(persona) }).map(drop)
}
