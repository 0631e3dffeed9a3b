//! Resource limits of the container's process, set by the process itself before execve (so the
//! command really gets them; setting them in the parent after clone, as the tutorial did, changes
//! nothing for the child). Soft and hard limits are equal, so the container cannot raise the soft
//! limit, and without CAP_SYS_RESOURCE in the initial user namespace it cannot raise the hard one.

use rlimit::Resource;

use crate::config::{FileLimit, Rlimit};

/// Sets RLIMIT_NOFILE of the calling process.
pub fn apply(nofile: FileLimit) -> std::io::Result<()> {
    Resource::NOFILE.set(nofile.soft, nofile.hard)
}

/// Sets one resource limit of the calling process.
pub fn apply_one(limit: &Rlimit) -> std::io::Result<()> {
    limit.resource.set(limit.soft, limit.hard)
}
