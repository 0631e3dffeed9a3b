//! [`Limits`] (what a container may use) and [`LimitKind`] (which limit an error or an
//! [`crate::Unapplied`] is about), crabcan's default limits as named constants, the
//! validation of limits, [`parse_size`] for human sizes and the CPU/I/O weight conversions
//! between the cgroup v1 and v2 scales.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{CgroupError, ParseSizeError};
use crate::limit_types::{
    is_cpu_list, is_interface_name, is_page_size, is_rdma_device, v2_file_controller, DeviceThrottle, DeviceWeight,
    HugepageLimit, InterfacePriority, RdmaLimit,
};

/// One kind of limit of [`Limits`]: errors and [`crate::Unapplied`] entries name the limit
/// they are about with it, so a caller can map it to its own words (e.g. a command-line flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// [`Limits::memory`].
    Memory,
    /// [`Limits::memory_swap`].
    MemorySwap,
    /// [`Limits::pids`].
    Pids,
    /// [`Limits::cpu_weight`].
    CpuWeight,
    /// [`Limits::cpu_quota`].
    CpuQuota,
    /// [`Limits::io_weight`] and [`Limits::blkio_weight`].
    IoWeight,
    /// [`Limits::memory_reservation`].
    MemoryReservation,
    /// [`Limits::memory_swappiness`].
    MemorySwappiness,
    /// [`Limits::oom_kill_disable`].
    OomKillDisable,
    /// [`Limits::cpu_shares`].
    CpuShares,
    /// [`Limits::cpu_period_us`].
    CpuPeriod,
    /// [`Limits::cpu_burst_us`].
    CpuBurst,
    /// [`Limits::cpu_idle`].
    CpuIdle,
    /// [`Limits::cpuset_cpus`].
    CpusetCpus,
    /// [`Limits::cpuset_mems`].
    CpusetMems,
    /// [`Limits::cpu_rt_runtime_us`].
    CpuRealtimeRuntime,
    /// [`Limits::cpu_rt_period_us`].
    CpuRealtimePeriod,
    /// [`Limits::blkio_leaf_weight`].
    IoLeafWeight,
    /// [`Limits::device_weights`].
    IoDeviceWeight,
    /// [`Limits::device_throttles`].
    IoThrottle,
    /// [`Limits::hugepages`].
    Hugepages,
    /// [`Limits::net_class_id`].
    NetClassId,
    /// [`Limits::net_priorities`].
    NetPriorities,
    /// [`Limits::rdma`].
    Rdma,
    /// [`Limits::unified`].
    Unified,
}

impl fmt::Display for LimitKind {
    /// The limit in words, as messages use it: "memory limit", "CPU weight", ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Memory => "memory limit",
            LimitKind::MemorySwap => "memory+swap limit",
            LimitKind::Pids => "pids limit",
            LimitKind::CpuWeight => "CPU weight",
            LimitKind::CpuQuota => "CPU quota",
            LimitKind::IoWeight => "I/O weight",
            LimitKind::MemoryReservation => "memory reservation",
            LimitKind::MemorySwappiness => "memory swappiness",
            LimitKind::OomKillDisable => "OOM killer setting",
            LimitKind::CpuShares => "CPU shares",
            LimitKind::CpuPeriod => "CPU period",
            LimitKind::CpuBurst => "CPU burst",
            LimitKind::CpuIdle => "CPU idle setting",
            LimitKind::CpusetCpus => "cpuset CPUs",
            LimitKind::CpusetMems => "cpuset memory nodes",
            LimitKind::CpuRealtimeRuntime => "realtime CPU runtime",
            LimitKind::CpuRealtimePeriod => "realtime CPU period",
            LimitKind::IoLeafWeight => "I/O leaf weight",
            LimitKind::IoDeviceWeight => "per-device I/O weight",
            LimitKind::IoThrottle => "I/O throttle",
            LimitKind::Hugepages => "hugepage limit",
            LimitKind::NetClassId => "network class id",
            LimitKind::NetPriorities => "network interface priorities",
            LimitKind::Rdma => "RDMA limit",
            LimitKind::Unified => "cgroup v2 unified setting",
        })
    }
}

/// Resource limits for one container. `None` (or empty, or `false`) means "no limit", or
/// "leave as the kernel has it".
///
/// The first six are crabcan's own (its command line's); the others are the rest of the OCI
/// runtime spec's `linux.resources`, each written as given to the file runc writes it to.
/// Some exist only on one cgroup version (swappiness, the OOM killer setting, realtime CPU
/// time, leaf weights and the network controllers on v1; [`Limits::unified`] on v2): creating
/// a cgroup with one on the other version fails with [`CgroupError::NotOnVersion`].
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Total memory + swap in bytes (like `docker --memory-swap`). `None`:
    /// same as `memory`, i.e. no swap, where the host has swap accounting.
    pub memory_swap: Option<u64>,
    /// Maximum number of tasks (processes and threads).
    pub pids: Option<u64>,
    /// CPU weight on the cgroup v2 scale, 1..=10000 (v2 default 100). On v1
    /// it is converted to `cpu.shares` with [`cpu_weight_to_shares`].
    pub cpu_weight: Option<u64>,
    /// CPU bandwidth in CPUs (0.5 = half a CPU), enforced per 100 ms period.
    pub cpu_quota: Option<f64>,
    /// I/O weight on the cgroup v2 scale, 1..=10000 (v2 default 100). On v1
    /// it is clamped to the `blkio.weight` range 10..=1000.
    pub io_weight: Option<u16>,

    /// Soft memory limit in bytes: v1 `memory.soft_limit_in_bytes`, v2 `memory.low`.
    pub memory_reservation: Option<u64>,
    /// The kernel's swap tendency for the cgroup, 0..=100: v1 `memory.swappiness` (v1 only).
    pub memory_swappiness: Option<u64>,
    /// Disables the OOM killer for the cgroup (tasks wait instead of being killed at the
    /// limit): v1 `memory.oom_control` (v1 only).
    pub oom_kill_disable: bool,
    /// On [`crate::ContainerCgroup::update`] of a v2 cgroup, refuse a memory limit at or below
    /// the current usage instead of letting the kernel reclaim (and OOM-kill) to reach it, as
    /// runc does. Ignored on v1, where the kernel refuses (EBUSY) a limit it cannot reach.
    pub memory_check_before_update: bool,
    /// CPU shares on the v1 scale, 2..=262144, as OCI gives them: v1 `cpu.shares` exactly,
    /// v2 `cpu.weight` through [`oci_cpu_shares_to_weight`] (runc's conversion). Not together
    /// with [`Limits::cpu_weight`].
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per [`Limits::cpu_period_us`], as OCI gives it; -1 is no
    /// limit: v1 `cpu.cfs_quota_us`, v2 the first half of `cpu.max`. Not together with
    /// [`Limits::cpu_quota`].
    pub cpu_quota_us: Option<i64>,
    /// CFS period in microseconds, 1000..=1000000: v1 `cpu.cfs_period_us`, v2 the second half
    /// of `cpu.max` (100000 when only the quota is given).
    pub cpu_period_us: Option<u64>,
    /// CFS burst in microseconds: v1 `cpu.cfs_burst_us`, v2 `cpu.max.burst` (Linux 5.14+).
    pub cpu_burst_us: Option<u64>,
    /// SCHED_IDLE for the whole cgroup, 0 or 1: `cpu.idle` (Linux 5.15+).
    pub cpu_idle: Option<i64>,
    /// The CPUs the tasks may run on, a list such as `0-2,4`: `cpuset.cpus`.
    pub cpuset_cpus: Option<String>,
    /// The memory nodes the tasks may allocate on, a list: `cpuset.mems`.
    pub cpuset_mems: Option<String>,
    /// Realtime CPU time per realtime period, in microseconds (-1: no limit): v1
    /// `cpu.rt_runtime_us` (v1 only, kernels with CONFIG_RT_GROUP_SCHED).
    pub cpu_rt_runtime_us: Option<i64>,
    /// Realtime period in microseconds: v1 `cpu.rt_period_us` (v1 only).
    pub cpu_rt_period_us: Option<u64>,
    /// Block I/O weight on the v1/OCI scale, 10..=1000: v1 `blkio.weight` (or
    /// `blkio.bfq.weight`), v2 `io.bfq.weight` (or `io.weight`, converted as runc does). Best
    /// effort like [`Limits::io_weight`], and not together with it.
    pub blkio_weight: Option<u16>,
    /// The weight of the cgroup's own tasks against its children, 10..=1000: v1
    /// `blkio.leaf_weight` (v1 only, CFQ).
    pub blkio_leaf_weight: Option<u16>,
    /// Per-device weights.
    pub device_weights: Vec<DeviceWeight>,
    /// Per-device bandwidth and operation limits: v1 `blkio.throttle.*_device`, v2 `io.max`.
    pub device_throttles: Vec<DeviceThrottle>,
    /// Hugepage limits per page size: v1 `hugetlb.<size>.limit_in_bytes`, v2
    /// `hugetlb.<size>.max` (and the `rsvd` ones where the kernel has them). On a hybrid host
    /// whose hugetlb controller is on the cgroup2 mount, the cgroup gets a cgroup2 directory
    /// for it.
    pub hugepages: Vec<HugepageLimit>,
    /// The class id tagging the cgroup's network packets: v1 `net_cls.classid` (v1 only).
    pub net_class_id: Option<u32>,
    /// Network priorities per interface: v1 `net_prio.ifpriomap` (v1 only).
    pub net_priorities: Vec<InterfacePriority>,
    /// RDMA limits per device: `rdma.max`.
    pub rdma: Vec<RdmaLimit>,
    /// cgroup v2 interface files and the values written to them as given, after every other
    /// limit (v2 only). A file name is `CONTROLLER.PARAMETER` of a known controller (or
    /// `cgroup`, but not the files that move, kill or freeze tasks), never a path; a value of
    /// several lines is written a line at a time.
    pub unified: BTreeMap<String, String>,
}

/// crabcan's default memory limit: 1 GiB.
pub const DEFAULT_MEMORY: u64 = 1 << 30;
/// crabcan's default pids limit: 64 tasks.
pub const DEFAULT_PIDS: u64 = 64;
/// crabcan's default CPU share (v1 scale): 256, a quarter of a v1 cgroup's default 1024.
pub const DEFAULT_CPU_SHARES: u64 = 256;
/// crabcan's default CPU weight (v2 scale): the equivalent of [`DEFAULT_CPU_SHARES`], 10
/// (v1 hosts get 238 shares after the round trip through the v2 scale).
pub const DEFAULT_CPU_WEIGHT: u64 = cpu_shares_to_weight(DEFAULT_CPU_SHARES);
/// crabcan's default I/O weight (v2 scale; the same number on v1's `blkio.weight`): 50.
pub const DEFAULT_IO_WEIGHT: u16 = 50;

impl Default for Limits {
    /// crabcan's defaults: [`DEFAULT_MEMORY`] (1 GiB) of memory and no swap, [`DEFAULT_PIDS`]
    /// (64) tasks, [`DEFAULT_CPU_WEIGHT`] (the equivalent of 256 CPU shares), I/O weight
    /// [`DEFAULT_IO_WEIGHT`] (50), no CPU quota.
    fn default() -> Self {
        Limits {
            memory: Some(DEFAULT_MEMORY),
            memory_swap: None,
            pids: Some(DEFAULT_PIDS),
            cpu_weight: Some(DEFAULT_CPU_WEIGHT),
            cpu_quota: None,
            io_weight: Some(DEFAULT_IO_WEIGHT),
            ..Limits::unlimited()
        }
    }
}

impl Limits {
    /// No limits at all.
    pub fn unlimited() -> Self {
        Limits {
            memory: None,
            memory_swap: None,
            pids: None,
            cpu_weight: None,
            cpu_quota: None,
            io_weight: None,
            memory_reservation: None,
            memory_swappiness: None,
            oom_kill_disable: false,
            memory_check_before_update: false,
            cpu_shares: None,
            cpu_quota_us: None,
            cpu_period_us: None,
            cpu_burst_us: None,
            cpu_idle: None,
            cpuset_cpus: None,
            cpuset_mems: None,
            cpu_rt_runtime_us: None,
            cpu_rt_period_us: None,
            blkio_weight: None,
            blkio_leaf_weight: None,
            device_weights: Vec::new(),
            device_throttles: Vec::new(),
            hugepages: Vec::new(),
            net_class_id: None,
            net_priorities: Vec::new(),
            rdma: Vec::new(),
            unified: BTreeMap::new(),
        }
    }

    /// Checks the limits are consistent and usable before anything is written: memory and
    /// memory+swap at least [`MIN_MEMORY`] (6 MiB, Docker's minimum), pids from 1 to
    /// [`PID_MAX_LIMIT`], a CPU quota from 0.01 to the number of CPUs this process may run on.
    pub fn validate(&self) -> Result<(), CgroupError> {
        self.validate_for_cpus(available_cpus())
    }

    /// [`Limits::validate`] with `cpus` CPUs available.
    pub(crate) fn validate_for_cpus(&self, cpus: usize) -> Result<(), CgroupError> {
        at_least_min_memory(LimitKind::Memory, self.memory)?;
        at_least_min_memory(LimitKind::MemorySwap, self.memory_swap)?;
        match (self.memory, self.memory_swap) {
            (None, Some(_)) => return Err(CgroupError::SwapWithoutMemory),
            (Some(memory), Some(swap)) if swap < memory => return Err(CgroupError::SwapBelowMemory { swap, memory }),
            _ => {}
        }
        if let Some(pids) = self.pids.filter(|pids| !(1..=PID_MAX_LIMIT).contains(pids)) {
            return Err(CgroupError::PidsOutOfRange {
                pids,
                min: 1,
                max: PID_MAX_LIMIT,
            });
        }
        weight_in_range(LimitKind::CpuWeight, self.cpu_weight)?;
        // NaN is in no range, so it is refused too.
        if let Some(q) = self.cpu_quota.filter(|q| !(MIN_CPU_QUOTA..=cpus as f64).contains(q)) {
            return Err(CgroupError::CpuQuotaOutOfRange {
                cpus: q,
                available: cpus,
            });
        }
        weight_in_range(LimitKind::IoWeight, self.io_weight.map(u64::from))?;
        self.validate_memory_and_cpu()?;
        self.validate_io()?;
        self.validate_named()
    }

    /// The OCI memory and CPU limits: ranges the kernel would refuse anyway, checked before
    /// anything is written, and pairs of limits that set the same file.
    fn validate_memory_and_cpu(&self) -> Result<(), CgroupError> {
        in_range(LimitKind::MemorySwappiness, self.memory_swappiness, 0, 100)?;
        if self.cpu_shares.is_some() && self.cpu_weight.is_some() {
            return Err(CgroupError::GivenTwice {
                limit: LimitKind::CpuShares,
                how: "as CPU shares and as a CPU weight",
            });
        }
        in_range(LimitKind::CpuShares, self.cpu_shares, CPU_SHARES_MIN, CPU_SHARES_MAX)?;
        if self.cpu_quota.is_some() && (self.cpu_quota_us.is_some() || self.cpu_period_us.is_some()) {
            return Err(CgroupError::GivenTwice {
                limit: LimitKind::CpuQuota,
                how: "in CPUs and in microseconds per period",
            });
        }
        if let Some(quota) = self.cpu_quota_us.filter(|q| *q != -1 && *q < CPU_QUOTA_MIN_US as i64) {
            return Err(CgroupError::OutOfRange {
                limit: LimitKind::CpuQuota,
                value: format!("{quota} µs"),
                expected: "the kernel takes -1 (no limit) or at least 1000 µs",
            });
        }
        in_range(
            LimitKind::CpuPeriod,
            self.cpu_period_us,
            CPU_QUOTA_MIN_US,
            CPU_PERIOD_MAX_US,
        )?;
        if let Some(idle) = self.cpu_idle.filter(|idle| !(0..=1).contains(idle)) {
            return Err(CgroupError::OutOfRange {
                limit: LimitKind::CpuIdle,
                value: idle.to_string(),
                expected: "it is 0 or 1",
            });
        }
        if let Some(runtime) = self.cpu_rt_runtime_us.filter(|r| *r < -1) {
            return Err(CgroupError::OutOfRange {
                limit: LimitKind::CpuRealtimeRuntime,
                value: format!("{runtime} µs"),
                expected: "the kernel takes -1 (no limit) or from 0 µs",
            });
        }
        in_range(LimitKind::CpuRealtimePeriod, self.cpu_rt_period_us, 1, u64::MAX)?;
        for (limit, list) in [
            (LimitKind::CpusetCpus, &self.cpuset_cpus),
            (LimitKind::CpusetMems, &self.cpuset_mems),
        ] {
            if let Some(list) = list.as_ref().filter(|list| !is_cpu_list(list)) {
                return Err(CgroupError::InvalidValue {
                    limit,
                    value: list.clone(),
                    why: "expected a list of numbers and ranges such as 0-2,4",
                });
            }
        }
        Ok(())
    }

    /// The OCI block I/O limits: weights on the 10..=1000 scale, one weight per device at least.
    fn validate_io(&self) -> Result<(), CgroupError> {
        if self.blkio_weight.is_some() && self.io_weight.is_some() {
            return Err(CgroupError::GivenTwice {
                limit: LimitKind::IoWeight,
                how: "on the v1 scale (blkio weight) and on the v2 scale",
            });
        }
        let blkio =
            |limit, weight: Option<u16>| in_range(limit, weight.map(u64::from), BLKIO_WEIGHT_MIN, BLKIO_WEIGHT_MAX);
        blkio(LimitKind::IoWeight, self.blkio_weight)?;
        blkio(LimitKind::IoLeafWeight, self.blkio_leaf_weight)?;
        for device in &self.device_weights {
            if device.weight.is_none() && device.leaf_weight.is_none() {
                return Err(CgroupError::InvalidValue {
                    limit: LimitKind::IoDeviceWeight,
                    value: device.device.to_string(),
                    why: "a device weight needs a weight or a leaf weight",
                });
            }
            blkio(LimitKind::IoDeviceWeight, device.weight)?;
            blkio(LimitKind::IoDeviceWeight, device.leaf_weight)?;
        }
        Ok(())
    }

    /// The limits whose names become part of a cgroup file name or line: page sizes, interface
    /// and RDMA device names, unified file names and values.
    fn validate_named(&self) -> Result<(), CgroupError> {
        let invalid = |limit, value: &str, why| {
            Err(CgroupError::InvalidValue {
                limit,
                value: value.to_owned(),
                why,
            })
        };
        for hugepage in &self.hugepages {
            if !is_page_size(&hugepage.page_size) {
                return invalid(
                    LimitKind::Hugepages,
                    &hugepage.page_size,
                    "a page size is a number and B, KB, MB, GB, TB or PB, as the kernel names them (2MB, 1GB)",
                );
            }
        }
        for priority in &self.net_priorities {
            if !is_interface_name(&priority.interface) {
                return invalid(
                    LimitKind::NetPriorities,
                    &priority.interface,
                    "not a network interface name (1 to 15 printable bytes, no '/' or ':')",
                );
            }
        }
        for rdma in &self.rdma {
            if !is_rdma_device(&rdma.device) {
                return invalid(
                    LimitKind::Rdma,
                    &rdma.device,
                    "not an RDMA device name (printable, no spaces)",
                );
            }
            if rdma.hca_handles.is_none() && rdma.hca_objects.is_none() {
                return invalid(
                    LimitKind::Rdma,
                    &rdma.device,
                    "an RDMA limit needs hcaHandles or hcaObjects",
                );
            }
        }
        for (file, value) in &self.unified {
            let Some(controller) = v2_file_controller(file) else {
                return invalid(
                    LimitKind::Unified,
                    file,
                    "not a cgroup v2 interface file name (CONTROLLER.PARAMETER, no '/' or '..')",
                );
            };
            if controller == "cgroup" && UNIFIED_REFUSED.contains(&file.as_str()) {
                return invalid(
                    LimitKind::Unified,
                    file,
                    "it moves, kills or freezes tasks or changes the cgroup's type or children: the runtime's business, not a limit",
                );
            }
            if controller != "cgroup" && !UNIFIED_CONTROLLERS.contains(&controller) {
                return invalid(LimitKind::Unified, file, "no cgroup v2 controller has that name");
            }
            if value.contains('\0') {
                return invalid(LimitKind::Unified, file, "its value holds a NUL byte");
            }
        }
        Ok(())
    }
}

/// The cgroup v2 controllers a [`Limits::unified`] file may belong to.
pub(crate) const UNIFIED_CONTROLLERS: [&str; 8] = ["cpu", "cpuset", "io", "memory", "hugetlb", "pids", "rdma", "misc"];

/// cgroup core files [`Limits::unified`] may not write: they move, kill or freeze tasks, or
/// change the cgroup's type or its children's controllers (a hostile bundle must not pull a
/// host process into the container's cgroup, where `delete` would kill it).
const UNIFIED_REFUSED: [&str; 6] = [
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.kill",
    "cgroup.freeze",
    "cgroup.type",
    "cgroup.subtree_control",
];

/// [`CgroupError::OutOfRange`] for a value outside `min..=max`.
fn in_range(limit: LimitKind, value: Option<u64>, min: u64, max: u64) -> Result<(), CgroupError> {
    match value {
        Some(value) if !(min..=max).contains(&value) => Err(CgroupError::OutOfRange {
            limit,
            value: value.to_string(),
            expected: range_text(limit),
        }),
        _ => Ok(()),
    }
}

/// The accepted range of a limit [`in_range`] checks, in words.
fn range_text(limit: LimitKind) -> &'static str {
    match limit {
        LimitKind::MemorySwappiness => "it must be from 0 to 100",
        LimitKind::CpuShares => "it must be from 2 to 262144",
        LimitKind::CpuPeriod => "it must be from 1000 to 1000000 µs",
        LimitKind::CpuRealtimePeriod => "it must be at least 1 µs",
        _ => "a block I/O weight must be from 10 to 1000",
    }
}

/// [`CgroupError::MemoryBelowMinimum`] for a memory limit below [`MIN_MEMORY`].
fn at_least_min_memory(limit: LimitKind, bytes: Option<u64>) -> Result<(), CgroupError> {
    match bytes {
        Some(bytes) if bytes < MIN_MEMORY => Err(CgroupError::MemoryBelowMinimum {
            limit,
            bytes,
            min: MIN_MEMORY,
        }),
        _ => Ok(()),
    }
}

/// [`CgroupError::WeightOutOfRange`] for a CPU or I/O weight outside 1..=10000.
fn weight_in_range(limit: LimitKind, weight: Option<u64>) -> Result<(), CgroupError> {
    match weight {
        Some(weight) if !(CPU_WEIGHT_MIN..=CPU_WEIGHT_MAX).contains(&weight) => Err(CgroupError::WeightOutOfRange {
            limit,
            weight,
            min: CPU_WEIGHT_MIN,
            max: CPU_WEIGHT_MAX,
        }),
        _ => Ok(()),
    }
}

/// The smallest memory (and memory+swap) limit accepted, 6 MiB: Docker's minimum. Below it a
/// container is OOM-killed while it is still being set up.
pub const MIN_MEMORY: u64 = 6 << 20;
/// The largest pids limit the kernel accepts in `pids.max` (PID_MAX_LIMIT on 64-bit).
pub const PID_MAX_LIMIT: u64 = 4_194_304;
/// The smallest CPU quota accepted, in CPUs (Docker's 0.01).
pub const MIN_CPU_QUOTA: f64 = 0.01;

/// The CPUs this process may run on: its affinity mask (as Go's `runtime.NumCPU`, which
/// Docker uses), else the online CPUs, else 1.
pub fn available_cpus() -> usize {
    // SAFETY: cpu_set_t is plain data; all zeroes is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc == 0 {
        // SAFETY: CPU_COUNT only reads the set filled in above.
        let count = unsafe { libc::CPU_COUNT(&set) };
        if count > 0 {
            return count as usize;
        }
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).ok().filter(|n| *n > 0).unwrap_or(1)
}

pub(crate) const CPU_WEIGHT_MIN: u64 = 1;
pub(crate) const CPU_WEIGHT_MAX: u64 = 10_000;
const CPU_SHARES_MIN: u64 = 2;
const CPU_SHARES_MAX: u64 = 262_144;
/// The kernel's smallest CFS quota and period (1 ms).
pub(crate) const CPU_QUOTA_MIN_US: u64 = 1_000;
/// The kernel's largest CFS period (1 s).
const CPU_PERIOD_MAX_US: u64 = 1_000_000;
const BLKIO_WEIGHT_MIN: u64 = 10;
const BLKIO_WEIGHT_MAX: u64 = 1_000;

/// OCI's v1-scale `cpu.shares` to a v2 `cpu.weight` as runc (opencontainers/cgroups
/// `ConvertCPUSharesToCgroupV2Value`) and crun convert it: a quadratic curve through 2 → 1,
/// 1024 → 100 (the default of both scales) and 262144 → 10000, so a container with the
/// default shares gets the default weight. 0 stays 0 ("unset").
pub fn oci_cpu_shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        CPU_SHARES_MAX.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// OCI's v1-scale block I/O weight (10..=1000) to a v2 `io.weight` (1..=10000), as runc
/// converts it: `1 + (weight - 10) * 9999 / 990`. 0 stays 0 ("unset").
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    match weight {
        0 => 0,
        _ => 1 + u64::from(weight.max(10) - 10) * 9999 / 990,
    }
}

/// v1 `cpu.shares` (2..=262144, clamped) to v2 `cpu.weight` (1..=10000),
/// with the formula runc/crun/systemd use: `1 + ((shares - 2) * 9999) / 262142`.
pub const fn cpu_shares_to_weight(shares: u64) -> u64 {
    // `Ord::clamp` is not const.
    let shares = if shares < CPU_SHARES_MIN {
        CPU_SHARES_MIN
    } else if shares > CPU_SHARES_MAX {
        CPU_SHARES_MAX
    } else {
        shares
    };
    1 + ((shares - CPU_SHARES_MIN) * 9999) / (CPU_SHARES_MAX - CPU_SHARES_MIN)
}

/// Inverse of [`cpu_shares_to_weight`]: v2 weight (clamped to 1..=10000) to
/// v1 shares, `2 + ((weight - 1) * 262142) / 9999`. Exact at both ends;
/// `cpu_shares_to_weight(cpu_weight_to_shares(w)) == w` for every weight.
pub fn cpu_weight_to_shares(weight: u64) -> u64 {
    let weight = weight.clamp(CPU_WEIGHT_MIN, CPU_WEIGHT_MAX);
    CPU_SHARES_MIN + ((weight - CPU_WEIGHT_MIN) * (CPU_SHARES_MAX - CPU_SHARES_MIN)).div_ceil(9999)
}

/// v2 I/O weight to v1 `blkio.weight`: clamped to 10..=1000 (the v1 range),
/// so the default weight 50 stays 50 on v1 hosts.
pub fn io_weight_to_blkio_weight(weight: u16) -> u16 {
    weight.clamp(10, 1000)
}

/// Parses a size: a decimal number (fraction allowed) and an optional
/// binary unit, case-insensitive: `B`, `K`/`KB`/`KiB`, `M`, `G`, `T`, `P`
/// (all powers of 1024, like docker). Examples: `"100"` (bytes), `"1024k"`,
/// `"512M"`, `"64MiB"`, `"1.5G"`. Fractions of a byte are truncated once a
/// unit is given (`1.3K` = 1331); a bare fractional byte count is an error.
pub fn parse_size(s: &str) -> Result<u64, ParseSizeError> {
    let input = s.trim();
    if input.is_empty() {
        return Err(ParseSizeError::Empty);
    }
    let split = input
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(input.len());
    let (number, unit) = input.split_at(split);
    let (whole, fraction) = split_number(number).ok_or_else(|| ParseSizeError::InvalidNumber(input.to_string()))?;
    let multiplier = unit_multiplier(unit.trim_start()).ok_or_else(|| ParseSizeError::UnknownUnit {
        input: input.to_string(),
        unit: unit.trim_start().to_string(),
    })?;
    let overflow = || ParseSizeError::Overflow(input.to_string());
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().map_err(|_| overflow())?.into()
    };
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(overflow)?;
    let fraction_bytes = fraction_of(fraction, multiplier);
    if multiplier == 1 && fraction.bytes().any(|b| b != b'0') {
        return Err(ParseSizeError::FractionalBytes(input.to_string()));
    }
    bytes = bytes.checked_add(fraction_bytes).ok_or_else(overflow)?;
    u64::try_from(bytes).map_err(|_| overflow())
}

/// Splits "12.5" into ("12", "5"); `None` if not digits[.digits] with at least one digit.
fn split_number(number: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    Some((whole, fraction))
}

/// `0.<fraction> * multiplier`, truncated; only the first 18 digits count.
fn fraction_of(fraction: &str, multiplier: u128) -> u128 {
    let digits = &fraction[..fraction.len().min(18)];
    if digits.is_empty() {
        return 0;
    }
    let numerator: u128 = digits.parse().unwrap_or(0);
    let denominator = 10u128.pow(digits.len() as u32);
    numerator * multiplier / denominator
}

fn unit_multiplier(unit: &str) -> Option<u128> {
    let exponent = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 2,
        "g" | "gb" | "gib" => 3,
        "t" | "tb" | "tib" => 4,
        "p" | "pb" | "pib" => 5,
        _ => return None,
    };
    Some(1u128 << (10 * exponent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_examples() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64mb"), Ok(64 << 20));
        assert_eq!(parse_size("1024k"), Ok(1 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size(" 2 g "), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size(".5K"), Ok(512));
        assert_eq!(parse_size("1.K"), Ok(1024));
        assert_eq!(parse_size("1.3K"), Ok(1331));
        assert_eq!(parse_size("15P"), Ok(15 << 50));
    }

    #[test]
    fn rejects_bad_sizes_with_clear_errors() {
        assert_eq!(parse_size(""), Err(ParseSizeError::Empty));
        assert_eq!(parse_size("   "), Err(ParseSizeError::Empty));
        assert!(matches!(parse_size("abc"), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("M"), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("."), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("1.2.3M"), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("-1M"), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("12X"), Err(ParseSizeError::UnknownUnit { .. })));
        assert!(matches!(parse_size("12 M B"), Err(ParseSizeError::UnknownUnit { .. })));
        assert!(matches!(parse_size("1.5"), Err(ParseSizeError::FractionalBytes(_))));
        assert!(matches!(
            parse_size("18446744073709551616"),
            Err(ParseSizeError::Overflow(_))
        ));
        assert!(matches!(parse_size("16384P"), Err(ParseSizeError::Overflow(_))));
        assert!(matches!(parse_size("17179869184G"), Err(ParseSizeError::Overflow(_))));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        let msg = parse_size("12X").unwrap_err().to_string();
        assert!(msg.contains("'12X'") && msg.contains("'X'"), "{msg}");
    }

    #[test]
    fn shares_weight_conversion() {
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(256), 10);
        assert_eq!(cpu_shares_to_weight(0), 1);
        assert_eq!(cpu_shares_to_weight(u64::MAX), 10_000);
        assert_eq!(cpu_weight_to_shares(1), 2);
        assert_eq!(cpu_weight_to_shares(10_000), 262_144);
        assert_eq!(cpu_weight_to_shares(0), 2);
        assert_eq!(cpu_weight_to_shares(u64::MAX), 262_144);
        for w in 1..=10_000 {
            assert_eq!(cpu_shares_to_weight(cpu_weight_to_shares(w)), w, "weight {w}");
        }
    }

    #[test]
    fn defaults_are_crabcans() {
        let d = Limits::default();
        assert_eq!(d.memory, Some(1 << 30));
        assert_eq!(d.pids, Some(64));
        assert_eq!(d.cpu_weight, Some(10));
        assert_eq!(d.cpu_weight, Some(cpu_shares_to_weight(256)));
        assert_eq!(d.io_weight, Some(50));
        assert!(d.validate().is_ok());
        assert_eq!(io_weight_to_blkio_weight(50), 50);
        assert_eq!(io_weight_to_blkio_weight(1), 10);
        assert_eq!(io_weight_to_blkio_weight(10_000), 1000);
    }

    #[test]
    fn validation() {
        let base = Limits::unlimited();
        let mib = 1u64 << 20;
        assert!(base.validate().is_ok());
        assert!(Limits {
            memory_swap: Some(64 * mib),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            memory: Some(64 * mib),
            memory_swap: Some(32 * mib),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            memory: Some(64 * mib),
            memory_swap: Some(64 * mib),
            ..base.clone()
        }
        .validate()
        .is_ok());
        assert!(Limits {
            cpu_weight: Some(0),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            cpu_weight: Some(10_001),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            io_weight: Some(0),
            ..base.clone()
        }
        .validate()
        .is_err());
    }

    fn check(limits: Limits, cpus: usize) -> Result<(), String> {
        limits.validate_for_cpus(cpus).map_err(|e| e.to_string())
    }

    #[test]
    fn memory_limits_below_6_mib_are_refused_with_the_bound() {
        let base = Limits::unlimited();
        for (bytes, shown) in [
            (0, "0 bytes"),
            (1, "1 byte"),
            (4 << 10, "4 KiB"),
            (100 << 10, "100 KiB"),
            (MIN_MEMORY - 1, "6291455 bytes"),
        ] {
            let err = Limits {
                memory: Some(bytes),
                ..base.clone()
            }
            .validate()
            .unwrap_err();
            assert!(
                matches!(err, CgroupError::MemoryBelowMinimum { limit: LimitKind::Memory, bytes: b, min: MIN_MEMORY } if b == bytes),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("memory limit {shown} is below the minimum allowed memory limit, 6 MiB")
            );
        }
        assert_eq!(
            check(
                Limits {
                    memory: Some(64 << 20),
                    memory_swap: Some(1 << 20),
                    ..base.clone()
                },
                2
            ),
            Err("memory+swap limit 1 MiB is below the minimum allowed memory+swap limit, 6 MiB".into())
        );
        assert!(Limits {
            memory: Some(MIN_MEMORY),
            memory_swap: Some(MIN_MEMORY),
            ..base
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn pids_limits_are_bounded_by_pid_max_limit() {
        let base = Limits::unlimited();
        let with = |pids| Limits {
            pids: Some(pids),
            ..base.clone()
        };
        assert!(with(1).validate().is_ok());
        assert!(with(PID_MAX_LIMIT).validate().is_ok());
        for pids in [0, PID_MAX_LIMIT + 1, u64::MAX] {
            let err = with(pids).validate().unwrap_err();
            assert!(matches!(err, CgroupError::PidsOutOfRange { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("pids limit {pids} is out of range: it must be from 1 to 4194304 (the kernel's PID_MAX_LIMIT)")
            );
        }
    }

    #[test]
    fn cpu_quotas_are_bounded_by_the_available_cpus() {
        let with = |cpus| Limits {
            cpu_quota: Some(cpus),
            ..Limits::unlimited()
        };
        assert!(check(with(0.01), 2).is_ok());
        assert!(check(with(0.5), 2).is_ok());
        assert!(check(with(2.0), 2).is_ok());
        assert!(check(with(16.0), 16).is_ok());
        assert_eq!(
            check(with(1000.0), 2),
            Err("CPU quota 1000 is out of range: the range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available".into())
        );
        for cpus in [2.001, 0.0, 0.009, -1.0, f64::NAN, f64::INFINITY] {
            let err = with(cpus).validate_for_cpus(2).unwrap_err();
            assert!(
                matches!(err, CgroupError::CpuQuotaOutOfRange { available: 2, .. }),
                "{err:?}"
            );
        }
        assert!(available_cpus() >= 1);
        // validate() uses this process's CPUs.
        assert!(with(available_cpus() as f64).validate().is_ok());
        assert!(with(available_cpus() as f64 + 1.0).validate().is_err());
    }

    #[test]
    fn limit_messages_name_no_cli_flag() {
        let errors = [
            Limits {
                memory: Some(1),
                ..Limits::unlimited()
            },
            Limits {
                pids: Some(u64::MAX),
                ..Limits::unlimited()
            },
            Limits {
                cpu_quota: Some(1e9),
                ..Limits::unlimited()
            },
        ];
        for limits in errors {
            let msg = limits.validate().unwrap_err().to_string();
            assert!(!msg.contains("--") && !msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn oci_conversions_are_runcs() {
        for (shares, weight) in [
            (0, 0),
            (1, 1),
            (2, 1),
            (3, 2),
            (1024, 100),
            (262_143, 10_000),
            (262_144, 10_000),
            (262_145, 10_000),
        ] {
            assert_eq!(oci_cpu_shares_to_weight(shares), weight, "shares {shares}");
        }
        assert_eq!(oci_cpu_shares_to_weight(2048), 174);
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn oci_limits_are_checked_before_anything_is_written() {
        let base = Limits::unlimited();
        let refused = |limits: Limits| limits.validate_for_cpus(2).unwrap_err();
        let error = refused(Limits {
            memory_swappiness: Some(101),
            ..base.clone()
        });
        assert_eq!(
            error.to_string(),
            "memory swappiness 101 is out of range: it must be from 0 to 100"
        );
        assert_eq!(error.limit(), Some(LimitKind::MemorySwappiness));
        let error = refused(Limits {
            cpu_shares: Some(1),
            ..base.clone()
        });
        assert_eq!(
            error.to_string(),
            "CPU shares 1 is out of range: it must be from 2 to 262144"
        );
        let error = refused(Limits {
            cpu_shares: Some(1024),
            cpu_weight: Some(10),
            ..base.clone()
        });
        assert!(
            matches!(
                error,
                CgroupError::GivenTwice {
                    limit: LimitKind::CpuShares,
                    ..
                }
            ),
            "{error}"
        );
        let error = refused(Limits {
            cpu_quota: Some(0.5),
            cpu_period_us: Some(100_000),
            ..base.clone()
        });
        assert!(
            matches!(
                error,
                CgroupError::GivenTwice {
                    limit: LimitKind::CpuQuota,
                    ..
                }
            ),
            "{error}"
        );
        for quota in [0, 999, -2] {
            let error = refused(Limits {
                cpu_quota_us: Some(quota),
                ..base.clone()
            });
            assert_eq!(error.limit(), Some(LimitKind::CpuQuota), "{quota}: {error}");
        }
        for period in [999, 1_000_001] {
            assert!(Limits {
                cpu_period_us: Some(period),
                ..base.clone()
            }
            .validate()
            .is_err());
        }
        let error = refused(Limits {
            cpuset_cpus: Some("0-1\n".into()),
            ..base.clone()
        });
        assert_eq!(
            error.to_string(),
            "invalid cpuset CPUs \"0-1\\n\": expected a list of numbers and ranges such as 0-2,4"
        );
        assert!(refused(Limits {
            cpu_idle: Some(2),
            ..base.clone()
        })
        .to_string()
        .contains("0 or 1"));
        assert!(refused(Limits {
            blkio_weight: Some(5),
            ..base.clone()
        })
        .to_string()
        .contains("from 10 to 1000"));
        assert!(refused(Limits {
            blkio_weight: Some(500),
            io_weight: Some(500),
            ..base.clone()
        })
        .to_string()
        .contains("given twice"));
        let no_weight = crate::DeviceWeight {
            device: crate::BlockDevice { major: 8, minor: 0 },
            weight: None,
            leaf_weight: None,
        };
        assert!(refused(Limits {
            device_weights: vec![no_weight],
            ..base.clone()
        })
        .to_string()
        .contains("8:0"));
        let everything = Limits {
            memory: Some(64 << 20),
            memory_reservation: Some(32 << 20),
            memory_swappiness: Some(100),
            oom_kill_disable: true,
            cpu_shares: Some(1024),
            cpu_quota_us: Some(-1),
            cpu_period_us: Some(100_000),
            cpu_burst_us: Some(0),
            cpu_idle: Some(1),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            cpu_rt_runtime_us: Some(-1),
            cpu_rt_period_us: Some(1_000_000),
            blkio_weight: Some(10),
            blkio_leaf_weight: Some(1000),
            ..base.clone()
        };
        assert!(everything.validate_for_cpus(2).is_ok());
    }

    #[test]
    fn names_that_reach_cgroup_files_are_checked() {
        let base = Limits::unlimited();
        let hugepage = |size: &str| Limits {
            hugepages: vec![crate::HugepageLimit {
                page_size: size.into(),
                limit: 0,
            }],
            ..base.clone()
        };
        assert!(hugepage("2MB").validate().is_ok());
        let error = hugepage("../../x").validate().unwrap_err();
        assert!(
            matches!(
                error,
                CgroupError::InvalidValue {
                    limit: LimitKind::Hugepages,
                    ..
                }
            ),
            "{error}"
        );
        let priority = Limits {
            net_priorities: vec![crate::InterfacePriority {
                interface: "eth0 1\nlo".into(),
                priority: 1,
            }],
            ..base.clone()
        };
        assert!(priority.validate().is_err());
        let rdma = |handles| Limits {
            rdma: vec![crate::RdmaLimit {
                device: "mlx5_1".into(),
                hca_handles: handles,
                hca_objects: None,
            }],
            ..base.clone()
        };
        assert!(rdma(Some(1)).validate().is_ok());
        assert!(rdma(None)
            .validate()
            .unwrap_err()
            .to_string()
            .contains("hcaHandles or hcaObjects"));
        let unified = |key: &str, value: &str| Limits {
            unified: [(key.to_string(), value.to_string())].into(),
            ..base.clone()
        };
        assert!(unified("memory.high", "max").validate().is_ok());
        assert!(unified("cgroup.max.depth", "2").validate().is_ok());
        assert!(unified("io.max", "8:0 rbps=1\n8:16 rbps=2").validate().is_ok());
        for (key, why) in [
            ("../memory.max", "not a cgroup v2 interface file name"),
            ("memory/max", "not a cgroup v2 interface file name"),
            ("memory", "not a cgroup v2 interface file name"),
            ("cgroup.procs", "moves, kills or freezes"),
            ("cgroup.kill", "moves, kills or freezes"),
            ("blkio.weight", "no cgroup v2 controller"),
        ] {
            let error = unified(key, "1").validate().unwrap_err().to_string();
            assert!(error.contains(why) && error.contains(key), "{key}: {error}");
        }
        assert!(unified("memory.high", "1\0").validate().is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".*") {
            let _ = parse_size(&s);
        }

        #[test]
        fn size_like_strings_never_panic(s in "[0-9.]{0,40}[ kKmMgGtTpPiIbB]{0,4}") {
            let _ = parse_size(&s);
        }

        #[test]
        fn megabytes_parse(n in 0u64..(u64::MAX >> 20)) {
            prop_assert_eq!(parse_size(&format!("{n}M")), Ok(n * 1024 * 1024));
        }

        #[test]
        fn plain_bytes_parse(n in any::<u64>()) {
            prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
        }

        #[test]
        fn weight_shares_roundtrip(w in 1u64..=10_000) {
            prop_assert_eq!(cpu_shares_to_weight(cpu_weight_to_shares(w)), w);
        }
    }
}
