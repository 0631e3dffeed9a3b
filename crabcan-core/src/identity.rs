//! Who the container's process is: first root of its user namespace (to set itself up), then the
//! configured `--uid`/`--gid` with no supplementary groups. Also the process attributes tied to
//! identity: the parent-death signal (reset by the kernel whenever credentials change) and
//! `PR_SET_DUMPABLE`, which keeps other processes out of `/proc/<pid>/` of the setup process.

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

/// Becomes uid 0 / gid 0 of the (freshly mapped) user namespace.
pub fn become_namespace_root() -> Result<(), Errno> {
    switch_to(0, 0, &[])
}

/// Sets the supplementary groups to `additional_gids` and switches real, effective and saved ids.
pub fn switch_to(uid: u32, gid: u32, additional_gids: &[u32]) -> Result<(), Errno> {
    let groups: Vec<Gid> = additional_gids.iter().map(|gid| Gid::from_raw(*gid)).collect();
    nix::unistd::setgroups(&groups)?;
    // Keep the permitted set across the uid change: the capability sets are set explicitly
    // right after (to nothing, or to what an OCI config gives a non-root user); execve resets
    // this flag.
    prctl(libc::PR_SET_KEEPCAPS, 1)?;
    nix::unistd::setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))?;
    nix::unistd::setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))?;
    Ok(())
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
