//! The memory controller's writes: the limit and swap (v1 memory+swap, v2 swap only), the soft
//! limit (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`), and the v1-only OOM killer
//! switch and swappiness.

use super::{not_on, Controller, LimitWrite};
use crate::error::CgroupError;
use crate::layout::Version;
use crate::limits::{LimitKind, Limits};

/// Appends the memory writes of `limits` for `version` to `writes`.
pub(super) fn writes(limits: &Limits, version: Version, writes: &mut Vec<LimitWrite>) -> Result<(), CgroupError> {
    match version {
        Version::V1 => v1(limits, writes),
        Version::V2 => v2(limits, writes)?,
    }
    Ok(())
}

/// memory.limit_in_bytes before memory.memsw.limit_in_bytes (the kernel requires memsw >=
/// limit; both start unlimited), then the soft limit, the OOM killer and swappiness (runc's
/// order).
fn v1(limits: &Limits, writes: &mut Vec<LimitWrite>) {
    use Controller::Memory;
    if let Some(memory) = limits.memory {
        writes.push(LimitWrite::new(
            Memory,
            "memory.limit_in_bytes",
            memory,
            LimitKind::Memory,
            "memory limits",
        ));
        let swap = LimitWrite::new(
            Memory,
            "memory.memsw.limit_in_bytes",
            limits.memory_swap.unwrap_or(memory),
            LimitKind::MemorySwap,
            "swap accounting",
        );
        writes.push(swap.required_if(limits.memory_swap.is_some()));
    }
    if let Some(reservation) = limits.memory_reservation {
        writes.push(LimitWrite::new(
            Memory,
            "memory.soft_limit_in_bytes",
            reservation,
            LimitKind::MemoryReservation,
            "memory soft limits",
        ));
    }
    if limits.oom_kill_disable {
        writes.push(LimitWrite::new(
            Memory,
            "memory.oom_control",
            1,
            LimitKind::OomKillDisable,
            "disabling the OOM killer",
        ));
    }
    if let Some(swappiness) = limits.memory_swappiness {
        writes.push(LimitWrite::new(
            Memory,
            "memory.swappiness",
            swappiness,
            LimitKind::MemorySwappiness,
            "memory swappiness",
        ));
    }
}

/// cgroup-v2.rst: memory.max, memory.swap.max (swap only, not memory+swap), memory.low.
fn v2(limits: &Limits, writes: &mut Vec<LimitWrite>) -> Result<(), CgroupError> {
    use Controller::Memory;
    if limits.memory_swappiness.is_some() {
        return Err(not_on(
            LimitKind::MemorySwappiness,
            Version::V2,
            "memory.swappiness exists only on cgroup v1",
        ));
    }
    if limits.oom_kill_disable {
        return Err(not_on(
            LimitKind::OomKillDisable,
            Version::V2,
            "memory.oom_control exists only on cgroup v1; cgroup v2 cannot turn the OOM killer off",
        ));
    }
    if let Some(memory) = limits.memory {
        writes.push(LimitWrite::new(
            Memory,
            "memory.max",
            memory,
            LimitKind::Memory,
            "memory limits",
        ));
        let swap_only = limits.memory_swap.map_or(0, |total| total.saturating_sub(memory));
        let swap = LimitWrite::new(
            Memory,
            "memory.swap.max",
            swap_only,
            LimitKind::MemorySwap,
            "swap limits",
        );
        writes.push(swap.required_if(limits.memory_swap.is_some()));
    }
    if let Some(reservation) = limits.memory_reservation {
        writes.push(LimitWrite::new(
            Memory,
            "memory.low",
            reservation,
            LimitKind::MemoryReservation,
            "memory protection (memory.low)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{expect, triples};
    use super::super::{limit_writes, Placement};
    use super::*;

    fn oci_memory() -> Limits {
        Limits {
            memory: Some(50_593_792),
            memory_swap: Some(50_593_792),
            memory_reservation: Some(50_593_792),
            memory_swappiness: Some(10),
            oom_kill_disable: true,
            ..Limits::unlimited()
        }
    }

    #[test]
    fn v1_writes_every_memory_setting_as_given() {
        assert_eq!(
            triples(&oci_memory(), Version::V1),
            expect(&[
                ("memory", "memory.limit_in_bytes", "50593792"),
                ("memory", "memory.memsw.limit_in_bytes", "50593792"),
                ("memory", "memory.soft_limit_in_bytes", "50593792"),
                ("memory", "memory.oom_control", "1"),
                ("memory", "memory.swappiness", "10"),
            ])
        );
    }

    #[test]
    fn v2_writes_the_soft_limit_to_memory_low_and_refuses_v1_only_settings() {
        let limits = Limits {
            memory_swappiness: None,
            oom_kill_disable: false,
            ..oci_memory()
        };
        assert_eq!(
            triples(&limits, Version::V2),
            expect(&[
                ("memory", "memory.max", "50593792"),
                ("memory", "memory.swap.max", "0"),
                ("memory", "memory.low", "50593792"),
            ])
        );
        let error = limit_writes(&oci_memory(), &Placement::only(Version::V2)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the memory swappiness cannot be applied on this host's cgroup v2: memory.swappiness exists only on cgroup v1"
        );
        assert_eq!(error.limit(), Some(LimitKind::MemorySwappiness));
        let oom = Limits {
            oom_kill_disable: true,
            ..Limits::unlimited()
        };
        let error = limit_writes(&oom, &Placement::only(Version::V2)).unwrap_err();
        assert!(error.to_string().contains("memory.oom_control"), "{error}");
        assert!(limit_writes(&oom, &Placement::only(Version::V1)).is_ok());
    }
}
