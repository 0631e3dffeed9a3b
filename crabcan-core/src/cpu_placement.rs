//! Where the container's first process runs while it sets up: on another CPU than crabcan's,
//! so that both halves of the setup (crabcan writing the id maps and making the cgroup, the
//! child closing descriptors and reading its cgroups) run side by side.
//!
//! Linux mostly starts a cloned process on its parent's CPU, where it waits until the parent
//! blocks (measured: 71% of runs on a 2-CPU VM, ~0.3 ms of waiting). The parent therefore
//! narrows the child's affinity to its allowed CPUs but the current one right after the
//! clone, and the child widens it back to exactly what crabcan had as soon as the parent's
//! Go message reaches it, before anything of the container runs. The container never keeps
//! the narrowed set: the parent narrows before it sends Go, the child restores after it.
//!
//! Both calls are best-effort. Narrowing is an optimisation, and where widening back fails,
//! narrowing failed too: the kernel refuses a set only when none of its CPUs is allowed (by
//! a cpuset), and the narrowed set is a subset of the restored one.

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// crabcan's own CPU affinity, read before the clone; the child inherits a copy.
#[derive(Clone, Copy)]
pub(crate) struct CpuPlacement {
    inherited: Option<CpuSet>,
}

impl CpuPlacement {
    /// Reads the calling process's affinity (unknown if the kernel refuses: then nothing is
    /// moved and nothing restored).
    pub(crate) fn of_this_process() -> CpuPlacement {
        CpuPlacement {
            inherited: sched_getaffinity(Pid::from_raw(0)).ok(),
        }
    }

    /// The CPUs the child should set up on: crabcan's own but the one it runs on now, or
    /// `None` when that leaves none.
    fn elsewhere(&self, current: usize) -> Option<CpuSet> {
        let mut others = self.inherited?;
        others.unset(current).ok()?;
        (0..CpuSet::count())
            .any(|cpu| others.is_set(cpu).unwrap_or(false))
            .then_some(others)
    }

    /// In the parent, right after the clone: moves the child off the parent's CPU.
    pub(crate) fn move_child_elsewhere(&self, child: Pid) {
        let Ok(current) = sched_getcpu() else { return };
        if let Some(others) = self.elsewhere(current) {
            if let Err(errno) = sched_setaffinity(child, &others) {
                log::debug!("sched_setaffinity({child}) to spread the setup: {errno}");
            }
        }
    }

    /// In the child, once the parent has sent Go: crabcan's own affinity again.
    pub(crate) fn restore_in_child(&self) {
        if let Some(inherited) = &self.inherited {
            let _ = sched_setaffinity(Pid::from_raw(0), inherited);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(cpus: &[usize]) -> CpuPlacement {
        let mut set = CpuSet::new();
        for &cpu in cpus {
            set.set(cpu).unwrap();
        }
        CpuPlacement { inherited: Some(set) }
    }

    fn members(set: &CpuSet) -> Vec<usize> {
        (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap()).collect()
    }

    #[test]
    fn the_child_goes_to_the_other_allowed_cpus() {
        let others = placement(&[0, 1, 3]).elsewhere(1).unwrap();
        assert_eq!(members(&others), [0, 3]);
    }

    #[test]
    fn a_single_allowed_cpu_or_an_unknown_affinity_moves_nothing() {
        assert!(placement(&[2]).elsewhere(2).is_none());
        assert!(CpuPlacement { inherited: None }.elsewhere(0).is_none());
    }

    #[test]
    fn a_current_cpu_outside_the_set_leaves_the_whole_set() {
        // The parent may have been moved since it read its affinity (a cpuset change).
        let others = placement(&[0, 1]).elsewhere(5).unwrap();
        assert_eq!(members(&others), [0, 1]);
    }

    #[test]
    fn the_child_gets_back_exactly_what_this_process_has() {
        let own = CpuPlacement::of_this_process();
        own.restore_in_child();
        assert_eq!(
            members(&sched_getaffinity(Pid::from_raw(0)).unwrap()),
            members(&own.inherited.unwrap())
        );
    }
}
