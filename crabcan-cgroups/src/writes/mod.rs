//! The pure mapping of [`Limits`] to cgroup interface files for v1 and v2
//! ([`limit_writes`]), kept free of I/O so it is unit-tested without root: the shared types
//! here (controllers, one write, where each controller's files are), one submodule per group
//! of limits (`memory`, `cpu`, `io`, `named`: hugetlb, network, RDMA and unified). File names,
//! formats and the order of writes follow the kernel's Documentation/admin-guide/cgroup-v2.rst
//! and cgroup-v1/*.rst, and runc's libcontainer/cgroups `fs` and `fs2` (opencontainers/cgroups).

mod cpu;
mod io;
mod memory;
mod named;

use std::collections::{BTreeMap, BTreeSet};

use crate::error::CgroupError;
use crate::layout::Version;
use crate::limits::{LimitKind, Limits};

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
    Cpuset,
    Hugetlb,
    /// v1 only.
    NetCls,
    /// v1 only.
    NetPrio,
    Rdma,
    Misc,
    /// The cgroup's core interface files (`cgroup.*`): always there, no controller to enable.
    Core,
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

    /// Controllers that get a v1 directory only when a limit writes to them (a cpuset
    /// directory needs its CPUs and memory nodes set before a task can join it; the others
    /// are rarely mounted at all).
    pub const V1_ON_DEMAND: [Controller; 6] = [
        Controller::Cpuset,
        Controller::Hugetlb,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::Rdma,
        Controller::Misc,
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
            Controller::Cpuset => "cpuset",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
            Controller::Core => "cgroup",
        }
    }

    /// The v2 name; `None` for what v2 has built in (freezer, cpu stats, the core files) or
    /// lacks (net_cls, net_prio).
    pub fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Memory => Some("memory"),
            Controller::Pids => Some("pids"),
            Controller::Cpu => Some("cpu"),
            Controller::Io => Some("io"),
            Controller::Cpuset => Some("cpuset"),
            Controller::Hugetlb => Some("hugetlb"),
            Controller::Rdma => Some("rdma"),
            Controller::Misc => Some("misc"),
            Controller::CpuAcct | Controller::Freezer | Controller::NetCls | Controller::NetPrio | Controller::Core => {
                None
            }
        }
    }

    /// The controller of cgroup v2 name `name`; `Core` for `cgroup`.
    pub fn from_v2_name(name: &str) -> Option<Controller> {
        [
            Controller::Memory,
            Controller::Pids,
            Controller::Cpu,
            Controller::Io,
            Controller::Cpuset,
            Controller::Hugetlb,
            Controller::Rdma,
            Controller::Misc,
        ]
        .into_iter()
        .find(|c| c.v2_name() == Some(name))
        .or((name == "cgroup").then_some(Controller::Core))
    }

    /// The name on `version` (v1's for what v2 has built in).
    pub fn name(self, version: Version) -> &'static str {
        match version {
            Version::V1 => self.v1_name(),
            Version::V2 => self.v2_name().unwrap_or(self.v1_name()),
        }
    }
}

/// Which interface each controller's files are written through: `version` for all but the
/// controllers of `on_unified`, which a hybrid host has on its cgroup2 mount (hugetlb on
/// systemd's hybrid hosts) and get the v2 files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    pub version: Version,
    pub on_unified: BTreeSet<Controller>,
}

impl Placement {
    /// Every controller through `version`.
    pub fn only(version: Version) -> Placement {
        Placement {
            version,
            on_unified: BTreeSet::new(),
        }
    }

    /// The interface of `controller`'s files.
    pub fn version_of(&self, controller: Controller) -> Version {
        match self.on_unified.contains(&controller) {
            true => Version::V2,
            false => self.version,
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
    /// An implied setting ("no swap" when only memory is limited, the reserved hugepages
    /// limit next to the hugepages limit): skip.
    Skip,
}

/// One file write in the cgroup directory of `controller`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LimitWrite {
    pub controller: Controller,
    pub file: String,
    pub value: String,
    /// Tried when `file` does not exist (e.g. the BFQ weight file).
    pub fallback: Option<(String, String)>,
    pub if_absent: IfAbsent,
    /// The limit this write applies.
    pub limit: LimitKind,
    /// Written once more after the other writes if the kernel refuses it (EINVAL) the first
    /// time, as runc does for a CFS or realtime period (or a burst) that only the quota or
    /// runtime written after it makes valid.
    pub retry_after_rest: bool,
}

impl LimitWrite {
    fn new(
        controller: Controller,
        file: impl Into<String>,
        value: impl ToString,
        limit: LimitKind,
        what: &'static str,
    ) -> Self {
        LimitWrite {
            controller,
            file: file.into(),
            value: value.to_string(),
            fallback: None,
            if_absent: IfAbsent::Required { what },
            limit,
            retry_after_rest: false,
        }
    }

    fn with_fallback(mut self, file: impl Into<String>, value: impl ToString) -> Self {
        self.fallback = Some((file.into(), value.to_string()));
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

    fn retried_if(mut self, retried: bool) -> Self {
        self.retry_after_rest = retried;
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

/// [`Needed`] for `writes` (the core files need no controller).
pub(crate) fn needed(writes: &[LimitWrite]) -> Needed {
    let mut needed = Needed::new();
    for write in writes
        .iter()
        .filter(|w| w.is_required() && w.controller != Controller::Core)
    {
        let limits = needed.entry(write.controller).or_default();
        if !limits.contains(&write.limit) {
            limits.push(write.limit);
        }
    }
    needed
}

/// [`CgroupError::NotOnVersion`] for a limit `version` lacks, with `why` naming the files.
fn not_on(limit: LimitKind, version: Version, why: &'static str) -> CgroupError {
    CgroupError::NotOnVersion {
        limit,
        version: match version {
            Version::V1 => 1,
            Version::V2 => 2,
        },
        why,
    }
}

/// The file writes that apply `limits`, in order: memory, pids, CPU, cpuset, block I/O,
/// hugetlb, network, RDMA, then the unified files (which may override any of them). Expects
/// validated limits ([`Limits::validate`]); out-of-range values are clamped, never rejected.
/// [`CgroupError::NotOnVersion`] for a limit its controller's interface lacks.
pub(crate) fn limit_writes(limits: &Limits, placement: &Placement) -> Result<Vec<LimitWrite>, CgroupError> {
    let mut writes = Vec::new();
    memory::writes(limits, placement.version_of(Controller::Memory), &mut writes)?;
    if let Some(pids) = limits.pids {
        writes.push(LimitWrite::new(
            Controller::Pids,
            "pids.max",
            pids,
            LimitKind::Pids,
            "pids limits",
        ));
    }
    cpu::writes(limits, placement.version_of(Controller::Cpu), &mut writes)?;
    cpu::cpuset_writes(limits, &mut writes);
    io::writes(limits, placement.version_of(Controller::Io), &mut writes)?;
    named::hugetlb_writes(limits, placement.version_of(Controller::Hugetlb), &mut writes);
    named::network_writes(limits, placement.version, &mut writes)?;
    named::rdma_writes(limits, &mut writes);
    named::unified_writes(limits, placement.version, &mut writes)?;
    Ok(writes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (controller, file, value) triples, the shape the tests compare.
    pub(crate) fn triples(limits: &Limits, version: Version) -> Vec<(&'static str, String, String)> {
        writes(limits, version)
            .into_iter()
            .map(|w| (w.controller.name(version), w.file, w.value))
            .collect()
    }

    /// The writes on a host of `version` alone.
    pub(crate) fn writes(limits: &Limits, version: Version) -> Vec<LimitWrite> {
        limit_writes(limits, &Placement::only(version)).unwrap()
    }

    /// Triples as literals, for comparisons.
    pub(crate) fn expect(rows: &[(&'static str, &str, &str)]) -> Vec<(&'static str, String, String)> {
        rows.iter()
            .map(|(c, f, v)| (*c, f.to_string(), v.to_string()))
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
            ..Limits::unlimited()
        }
    }

    #[test]
    fn v1_mapping() {
        let expected = expect(&[
            ("memory", "memory.limit_in_bytes", "67108864"),
            ("memory", "memory.memsw.limit_in_bytes", "100663296"),
            ("pids", "pids.max", "32"),
            ("cpu", "cpu.shares", "2598"),
            ("cpu", "cpu.cfs_period_us", "100000"),
            ("cpu", "cpu.cfs_quota_us", "50000"),
            ("blkio", "blkio.bfq.weight", "500"),
        ]);
        assert_eq!(triples(&all_limits(), Version::V1), expected);
        let blkio = writes(&all_limits(), Version::V1).pop().unwrap();
        assert_eq!(blkio.fallback, Some(("blkio.weight".into(), "500".to_string())));
        assert!(matches!(blkio.if_absent, IfAbsent::BestEffort { .. }));
        assert!(!blkio.is_required());
    }

    #[test]
    fn v2_mapping() {
        let expected = expect(&[
            ("memory", "memory.max", "67108864"),
            ("memory", "memory.swap.max", "33554432"),
            ("pids", "pids.max", "32"),
            ("cpu", "cpu.weight", "100"),
            ("cpu", "cpu.max", "50000 100000"),
            ("io", "io.weight", "default 500"),
        ]);
        assert_eq!(triples(&all_limits(), Version::V2), expected);
        let io = writes(&all_limits(), Version::V2).pop().unwrap();
        assert_eq!(io.fallback, Some(("io.bfq.weight".into(), "500".to_string())));
    }

    #[test]
    fn defaults() {
        let v1 = triples(&Limits::default(), Version::V1);
        assert_eq!(
            v1,
            expect(&[
                ("memory", "memory.limit_in_bytes", "1073741824"),
                ("memory", "memory.memsw.limit_in_bytes", "1073741824"),
                ("pids", "pids.max", "64"),
                ("cpu", "cpu.shares", "238"),
                ("blkio", "blkio.bfq.weight", "50"),
            ])
        );
        let v2 = triples(&Limits::default(), Version::V2);
        assert_eq!(v2[1], ("memory", "memory.swap.max".into(), "0".to_string()));
        assert_eq!(v2[3], ("cpu", "cpu.weight".into(), "10".to_string()));
        assert_eq!(v2[4], ("io", "io.weight".into(), "default 50".to_string()));
    }

    #[test]
    fn implied_no_swap_is_skipped_when_absent_but_explicit_swap_is_required() {
        let implied = Limits {
            memory: Some(1 << 20),
            ..Limits::unlimited()
        };
        for version in [Version::V1, Version::V2] {
            assert_eq!(writes(&implied, version)[1].if_absent, IfAbsent::Skip);
            let explicit = Limits {
                memory_swap: Some(2 << 20),
                ..implied.clone()
            };
            assert!(matches!(
                writes(&explicit, version)[1].if_absent,
                IfAbsent::Required { .. }
            ));
        }
    }

    #[test]
    fn needed_controllers_name_their_limits_once() {
        let needed = needed(&writes(&all_limits(), Version::V1));
        assert_eq!(needed[&Controller::Memory], [LimitKind::Memory, LimitKind::MemorySwap]);
        assert_eq!(needed[&Controller::Pids], [LimitKind::Pids]);
        assert_eq!(needed[&Controller::Cpu], [LimitKind::CpuWeight, LimitKind::CpuQuota]);
        assert!(!needed.contains_key(&Controller::Io), "the I/O weight is best effort");
        let unified = Limits {
            unified: [("cgroup.max.descendants".to_string(), "10".to_string())].into(),
            ..Limits::unlimited()
        };
        assert!(
            super::needed(&writes(&unified, Version::V2)).is_empty(),
            "core files need no controller"
        );
    }

    #[test]
    fn unlimited_writes_nothing() {
        assert!(writes(&Limits::unlimited(), Version::V1).is_empty());
        assert!(writes(&Limits::unlimited(), Version::V2).is_empty());
    }

    #[test]
    fn a_hybrid_host_writes_the_unified_controllers_v2_files() {
        let limits = Limits {
            memory: Some(64 << 20),
            hugepages: vec![crate::HugepageLimit {
                page_size: "2MB".into(),
                limit: 0,
            }],
            ..Limits::unlimited()
        };
        let placement = Placement {
            version: Version::V1,
            on_unified: [Controller::Hugetlb].into(),
        };
        let files: Vec<String> = limit_writes(&limits, &placement)
            .unwrap()
            .into_iter()
            .map(|w| w.file)
            .collect();
        assert_eq!(
            files,
            [
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "hugetlb.2MB.max",
                "hugetlb.2MB.rsvd.max"
            ]
        );
    }

    #[test]
    fn controllers_by_v2_name() {
        assert_eq!(Controller::from_v2_name("memory"), Some(Controller::Memory));
        assert_eq!(Controller::from_v2_name("io"), Some(Controller::Io));
        assert_eq!(Controller::from_v2_name("cgroup"), Some(Controller::Core));
        assert_eq!(Controller::from_v2_name("blkio"), None);
        assert_eq!(Controller::from_v2_name("net_cls"), None);
    }
}
