//! The pure mapping of [`Limits`] to cgroup interface files for v1 and v2
//! ([`limit_writes`]), kept free of I/O so it is unit-tested without root.
//! File names and formats follow the kernel's
//! Documentation/admin-guide/cgroup-v2.rst and cgroup-v1/*.rst.

use std::collections::BTreeMap;

use crate::layout::Version;
use crate::limits::{
    cpu_weight_to_shares, io_weight_to_blkio_weight, LimitKind, Limits, CPU_WEIGHT_MAX, CPU_WEIGHT_MIN,
};

/// CFS period used for `cpu.max` / `cpu.cfs_period_us`, in microseconds.
pub(crate) const CPU_PERIOD_US: u64 = 100_000;
/// The kernel's minimum CFS quota (1 ms).
const CPU_QUOTA_MIN_US: u64 = 1_000;

/// A controller crabcan uses. On v1 each has its own hierarchy (or shares
/// one when co-mounted); on v2 they are enabled in `cgroup.subtree_control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Controller {
    Memory,
    Pids,
    Cpu,
    /// v1 only: CPU usage statistics.
    CpuAcct,
    /// `blkio` on v1, `io` on v2.
    Io,
    /// v1 only: used to stop processes while killing them.
    Freezer,
}

impl Controller {
    /// Every controller crabcan creates a v1 directory for, when mounted.
    pub const V1_ALL: [Controller; 6] = [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::CpuAcct,
        Controller::Io,
        Controller::Freezer,
    ];

    /// The v1 name (of its hierarchy).
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::CpuAcct => "cpuacct",
            Controller::Io => "blkio",
            Controller::Freezer => "freezer",
        }
    }

    /// The v2 name; `None` for what v2 has built in (freezer, cpu stats).
    pub fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Memory => Some("memory"),
            Controller::Pids => Some("pids"),
            Controller::Cpu => Some("cpu"),
            Controller::Io => Some("io"),
            Controller::CpuAcct | Controller::Freezer => None,
        }
    }

    /// The name on `version` (v1's for what v2 has built in).
    pub fn name(self, version: Version) -> &'static str {
        match version {
            Version::V1 => self.v1_name(),
            Version::V2 => self.v2_name().unwrap_or(self.v1_name()),
        }
    }
}

/// What to do when a limit's interface file does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfAbsent {
    /// The user asked for this limit: apply the missing-controller policy.
    Required { what: &'static str },
    /// A soft limit (I/O weight): without it the container still runs, listed as unapplied,
    /// as Docker's containers run without their blkio weight on hosts without CFQ/BFQ.
    BestEffort { what: &'static str },
    /// An implied setting ("no swap" when only memory is limited): skip.
    Skip,
}

/// One file write in the cgroup directory of `controller`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LimitWrite {
    pub controller: Controller,
    pub file: &'static str,
    pub value: String,
    /// Tried when `file` does not exist (e.g. the BFQ weight file).
    pub fallback: Option<(&'static str, String)>,
    pub if_absent: IfAbsent,
    /// The limit this write applies.
    pub limit: LimitKind,
}

impl LimitWrite {
    fn new(
        controller: Controller,
        file: &'static str,
        value: impl ToString,
        limit: LimitKind,
        what: &'static str,
    ) -> Self {
        LimitWrite {
            controller,
            file,
            value: value.to_string(),
            fallback: None,
            if_absent: IfAbsent::Required { what },
            limit,
        }
    }

    fn with_fallback(mut self, file: &'static str, value: impl ToString) -> Self {
        self.fallback = Some((file, value.to_string()));
        self
    }

    fn skip_if_absent(mut self) -> Self {
        self.if_absent = IfAbsent::Skip;
        self
    }

    fn best_effort(mut self) -> Self {
        if let IfAbsent::Required { what } = self.if_absent {
            self.if_absent = IfAbsent::BestEffort { what };
        }
        self
    }

    /// Whether the container may not start without this write (subject to the
    /// missing-controller policy).
    pub fn is_required(&self) -> bool {
        matches!(self.if_absent, IfAbsent::Required { .. })
    }

    /// A write the user asked for explicitly must happen; an implied one (a default) is
    /// skipped where the host lacks the file.
    fn required_if(self, explicit: bool) -> Self {
        if explicit {
            self
        } else {
            self.skip_if_absent()
        }
    }
}

/// The controllers the required writes of `writes` need, each with the limits that need it
/// (in order, once each): what the missing-controller policy is about.
pub(crate) type Needed = BTreeMap<Controller, Vec<LimitKind>>;

/// [`Needed`] for `writes`.
pub(crate) fn needed(writes: &[LimitWrite]) -> Needed {
    let mut needed = Needed::new();
    for write in writes.iter().filter(|w| w.is_required()) {
        let limits = needed.entry(write.controller).or_default();
        if !limits.contains(&write.limit) {
            limits.push(write.limit);
        }
    }
    needed
}

/// The file writes that apply `limits`, in order. Expects validated limits
/// ([`Limits::validate`]); out-of-range values are clamped, never rejected.
pub(crate) fn limit_writes(limits: &Limits, version: Version) -> Vec<LimitWrite> {
    match version {
        Version::V1 => v1_writes(limits),
        Version::V2 => v2_writes(limits),
    }
}

/// pids.max: the same file on v1 and v2.
fn pids_write(limits: &Limits) -> Option<LimitWrite> {
    limits
        .pids
        .map(|pids| LimitWrite::new(Controller::Pids, "pids.max", pids, LimitKind::Pids, "pids limits"))
}

fn cpu_quota_us(cpus: f64) -> u64 {
    let quota = (cpus * CPU_PERIOD_US as f64).round();
    // `as` saturates for huge values; NaN becomes 0 and is then raised to the minimum.
    (quota as u64).max(CPU_QUOTA_MIN_US)
}

fn clamp_cpu_weight(weight: u64) -> u64 {
    weight.clamp(CPU_WEIGHT_MIN, CPU_WEIGHT_MAX)
}

/// cgroup v1: memory.limit_in_bytes before memory.memsw.limit_in_bytes (the
/// kernel requires memsw >= limit; both start unlimited), cpu period before quota.
fn v1_writes(limits: &Limits) -> Vec<LimitWrite> {
    use Controller::*;
    let mut writes = Vec::new();
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
    writes.extend(pids_write(limits));
    if let Some(weight) = limits.cpu_weight {
        let shares = cpu_weight_to_shares(clamp_cpu_weight(weight));
        writes.push(LimitWrite::new(
            Cpu,
            "cpu.shares",
            shares,
            LimitKind::CpuWeight,
            "CPU shares",
        ));
    }
    if let Some(cpus) = limits.cpu_quota {
        writes.push(LimitWrite::new(
            Cpu,
            "cpu.cfs_period_us",
            CPU_PERIOD_US,
            LimitKind::CpuQuota,
            "CPU bandwidth limits",
        ));
        writes.push(LimitWrite::new(
            Cpu,
            "cpu.cfs_quota_us",
            cpu_quota_us(cpus),
            LimitKind::CpuQuota,
            "CPU bandwidth limits",
        ));
    }
    if let Some(weight) = limits.io_weight {
        let weight = io_weight_to_blkio_weight(weight);
        writes.push(
            LimitWrite::new(
                Io,
                "blkio.weight",
                weight,
                LimitKind::IoWeight,
                "I/O weights (no CFQ or BFQ scheduler)",
            )
            .with_fallback("blkio.bfq.weight", weight)
            .best_effort(),
        );
    }
    writes
}

/// cgroup v2 (cgroup-v2.rst): memory.max, memory.swap.max (swap only,
/// not memory+swap), pids.max, cpu.weight, cpu.max "$MAX $PERIOD",
/// io.weight "default N" (io.bfq.weight "N", range 1..=1000, as fallback).
fn v2_writes(limits: &Limits) -> Vec<LimitWrite> {
    use Controller::*;
    let mut writes = Vec::new();
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
    writes.extend(pids_write(limits));
    if let Some(weight) = limits.cpu_weight {
        writes.push(LimitWrite::new(
            Cpu,
            "cpu.weight",
            clamp_cpu_weight(weight),
            LimitKind::CpuWeight,
            "CPU weights",
        ));
    }
    if let Some(cpus) = limits.cpu_quota {
        let value = format!("{} {}", cpu_quota_us(cpus), CPU_PERIOD_US);
        writes.push(LimitWrite::new(
            Cpu,
            "cpu.max",
            value,
            LimitKind::CpuQuota,
            "CPU bandwidth limits",
        ));
    }
    if let Some(weight) = limits.io_weight {
        let weight = weight.clamp(1, 10_000);
        writes.push(
            LimitWrite::new(
                Io,
                "io.weight",
                format!("default {weight}"),
                LimitKind::IoWeight,
                "I/O weights (no io.cost or BFQ)",
            )
            .with_fallback("io.bfq.weight", weight.min(1000))
            .best_effort(),
        );
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (controller, file, value) triples, the shape the tests compare.
    fn triples(limits: &Limits, version: Version) -> Vec<(&'static str, &'static str, String)> {
        limit_writes(limits, version)
            .into_iter()
            .map(|w| (w.controller.name(version), w.file, w.value))
            .collect()
    }

    fn all_limits() -> Limits {
        Limits {
            memory: Some(64 << 20),
            memory_swap: Some(96 << 20),
            pids: Some(32),
            cpu_weight: Some(100),
            cpu_quota: Some(0.5),
            io_weight: Some(500),
        }
    }

    #[test]
    fn v1_mapping() {
        let expected = vec![
            ("memory", "memory.limit_in_bytes", "67108864".to_string()),
            ("memory", "memory.memsw.limit_in_bytes", "100663296".to_string()),
            ("pids", "pids.max", "32".to_string()),
            ("cpu", "cpu.shares", "2598".to_string()),
            ("cpu", "cpu.cfs_period_us", "100000".to_string()),
            ("cpu", "cpu.cfs_quota_us", "50000".to_string()),
            ("blkio", "blkio.weight", "500".to_string()),
        ];
        assert_eq!(triples(&all_limits(), Version::V1), expected);
        let blkio = limit_writes(&all_limits(), Version::V1).pop().unwrap();
        assert_eq!(blkio.fallback, Some(("blkio.bfq.weight", "500".to_string())));
        assert!(matches!(blkio.if_absent, IfAbsent::BestEffort { .. }));
        assert!(!blkio.is_required());
    }

    #[test]
    fn v2_mapping() {
        let expected = vec![
            ("memory", "memory.max", "67108864".to_string()),
            ("memory", "memory.swap.max", "33554432".to_string()),
            ("pids", "pids.max", "32".to_string()),
            ("cpu", "cpu.weight", "100".to_string()),
            ("cpu", "cpu.max", "50000 100000".to_string()),
            ("io", "io.weight", "default 500".to_string()),
        ];
        assert_eq!(triples(&all_limits(), Version::V2), expected);
        let io = limit_writes(&all_limits(), Version::V2).pop().unwrap();
        assert_eq!(io.fallback, Some(("io.bfq.weight", "500".to_string())));
    }

    #[test]
    fn defaults() {
        let v1 = triples(&Limits::default(), Version::V1);
        assert_eq!(v1[0], ("memory", "memory.limit_in_bytes", "1073741824".to_string()));
        assert_eq!(
            v1[1],
            ("memory", "memory.memsw.limit_in_bytes", "1073741824".to_string())
        );
        assert_eq!(v1[2], ("pids", "pids.max", "64".to_string()));
        assert_eq!(v1[3], ("cpu", "cpu.shares", "238".to_string()));
        assert_eq!(v1[4], ("blkio", "blkio.weight", "50".to_string()));
        assert_eq!(v1.len(), 5);
        let v2 = triples(&Limits::default(), Version::V2);
        assert_eq!(v2[1], ("memory", "memory.swap.max", "0".to_string()));
        assert_eq!(v2[3], ("cpu", "cpu.weight", "10".to_string()));
        assert_eq!(v2[4], ("io", "io.weight", "default 50".to_string()));
    }

    #[test]
    fn implied_no_swap_is_skipped_when_absent_but_explicit_swap_is_required() {
        let implied = Limits {
            memory: Some(1 << 20),
            ..Limits::unlimited()
        };
        for version in [Version::V1, Version::V2] {
            assert_eq!(limit_writes(&implied, version)[1].if_absent, IfAbsent::Skip);
            let explicit = Limits {
                memory_swap: Some(2 << 20),
                ..implied.clone()
            };
            assert!(matches!(
                limit_writes(&explicit, version)[1].if_absent,
                IfAbsent::Required { .. }
            ));
        }
    }

    #[test]
    fn needed_controllers_name_their_limits_once() {
        let needed = needed(&limit_writes(&all_limits(), Version::V1));
        assert_eq!(needed[&Controller::Memory], [LimitKind::Memory, LimitKind::MemorySwap]);
        assert_eq!(needed[&Controller::Pids], [LimitKind::Pids]);
        assert_eq!(needed[&Controller::Cpu], [LimitKind::CpuWeight, LimitKind::CpuQuota]);
        assert!(!needed.contains_key(&Controller::Io), "the I/O weight is best effort");
    }

    #[test]
    fn unlimited_writes_nothing() {
        assert!(limit_writes(&Limits::unlimited(), Version::V1).is_empty());
        assert!(limit_writes(&Limits::unlimited(), Version::V2).is_empty());
    }

    #[test]
    fn cpu_quota_rounding_and_minimum() {
        assert_eq!(cpu_quota_us(2.0), 200_000);
        assert_eq!(cpu_quota_us(0.001), 1_000);
        assert_eq!(cpu_quota_us(0.0), 1_000);
        assert_eq!(cpu_quota_us(1.234567), 123_457);
        assert_eq!(cpu_quota_us(f64::NAN), 1_000);
    }

    #[test]
    fn weights_are_clamped() {
        let l = Limits {
            cpu_weight: Some(50_000),
            io_weight: Some(5),
            ..Limits::unlimited()
        };
        assert_eq!(
            triples(&l, Version::V1),
            vec![
                ("cpu", "cpu.shares", "262144".to_string()),
                ("blkio", "blkio.weight", "10".to_string()),
            ]
        );
        let l = Limits {
            io_weight: Some(5000),
            ..Limits::unlimited()
        };
        let io = limit_writes(&l, Version::V2).pop().unwrap();
        assert_eq!(io.value, "default 5000");
        assert_eq!(io.fallback, Some(("io.bfq.weight", "1000".to_string())));
    }
}
