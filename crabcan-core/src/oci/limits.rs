//! A runtime spec's `linux.resources` (but its device rules) as crabcan-cgroups' typed
//! [`Limits`]: every memory, CPU, cpuset, block I/O, hugepage, network, pids, RDMA and unified
//! field, read the way runc's specconv reads it (0 is "not set" where runc takes it so, -1 is
//! "no limit"), then validated, a refusal naming the field ([`field_of`]). Kernel memory
//! limits are ignored with a warning, as runc ignores them (the kernel deprecated them).
//! Whether the host's cgroup version has a limit's file is decided when the cgroup is made.

use std::collections::BTreeMap;

use crabcan_cgroups::{
    BlockDevice, DeviceThrottle, DeviceWeight, HugepageLimit, InterfacePriority, LimitKind, Limits, RdmaLimit,
    ThrottleKind,
};
use serde_json::Value;

use super::OciError;

/// `linux.resources` of `value` (a whole config.json) as [`Limits`], validated.
pub(crate) fn from_config(value: &Value) -> Result<Limits, OciError> {
    let Some(resources) = value.pointer("/linux/resources") else {
        return Ok(Limits::unlimited());
    };
    let read = Fields(resources);
    let mut limits = Limits::unlimited();
    memory(&read, &mut limits)?;
    cpu(&read, &mut limits);
    block_io(&read, &mut limits)?;
    named(&read, &mut limits)?;
    limits.validate().map_err(|error| {
        let field = error.limit().map_or("linux.resources", field_of);
        unsupported(field, error.to_string())
    })?;
    Ok(limits)
}

/// The config.json field a limit comes from, for messages.
pub(crate) fn field_of(limit: LimitKind) -> &'static str {
    match limit {
        LimitKind::Memory => "linux.resources.memory.limit",
        LimitKind::MemorySwap => "linux.resources.memory.swap",
        LimitKind::MemoryReservation => "linux.resources.memory.reservation",
        LimitKind::MemorySwappiness => "linux.resources.memory.swappiness",
        LimitKind::OomKillDisable => "linux.resources.memory.disableOOMKiller",
        LimitKind::Pids => "linux.resources.pids.limit",
        LimitKind::CpuWeight | LimitKind::CpuShares => "linux.resources.cpu.shares",
        LimitKind::CpuQuota => "linux.resources.cpu.quota",
        LimitKind::CpuPeriod => "linux.resources.cpu.period",
        LimitKind::CpuBurst => "linux.resources.cpu.burst",
        LimitKind::CpuIdle => "linux.resources.cpu.idle",
        LimitKind::CpusetCpus => "linux.resources.cpu.cpus",
        LimitKind::CpusetMems => "linux.resources.cpu.mems",
        LimitKind::CpuRealtimeRuntime => "linux.resources.cpu.realtimeRuntime",
        LimitKind::CpuRealtimePeriod => "linux.resources.cpu.realtimePeriod",
        LimitKind::IoWeight => "linux.resources.blockIO.weight",
        LimitKind::IoLeafWeight => "linux.resources.blockIO.leafWeight",
        LimitKind::IoDeviceWeight => "linux.resources.blockIO.weightDevice",
        LimitKind::IoThrottle => "linux.resources.blockIO",
        LimitKind::Hugepages => "linux.resources.hugepageLimits",
        LimitKind::NetClassId => "linux.resources.network.classID",
        LimitKind::NetPriorities => "linux.resources.network.priorities",
        LimitKind::Rdma => "linux.resources.rdma",
        LimitKind::Unified => "linux.resources.unified",
        _ => "linux.resources",
    }
}

fn unsupported(field: &str, why: impl Into<String>) -> OciError {
    OciError::Unsupported {
        field: field.to_owned(),
        why: why.into(),
    }
}

/// Typed reads of the members of one JSON object (oci-spec has checked the types already).
struct Fields<'a>(&'a Value);

impl Fields<'_> {
    fn get(&self, pointer: &str) -> Option<&Value> {
        self.0.pointer(pointer).filter(|v| !v.is_null())
    }
    fn signed(&self, pointer: &str) -> Option<i64> {
        self.get(pointer).and_then(Value::as_i64)
    }
    fn unsigned(&self, pointer: &str) -> Option<u64> {
        self.get(pointer).and_then(Value::as_u64)
    }
    /// A limit where 0 is "not set" and a negative number is "no limit" (runc: -1): `None` for
    /// both, as nothing needs writing to a new cgroup for them.
    fn positive(&self, pointer: &str) -> Option<u64> {
        self.signed(pointer)
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0)
    }
    fn string(&self, pointer: &str) -> Option<String> {
        self.get(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
    fn flag(&self, pointer: &str) -> bool {
        self.get(pointer).and_then(Value::as_bool).unwrap_or(false)
    }
    fn items(&self, pointer: &str) -> &[Value] {
        self.get(pointer).and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }
}

/// A u16 weight of a JSON value; one that does not fit is out of range (refused by name).
fn weight(value: Option<u64>, field: &str) -> Result<Option<u16>, OciError> {
    value
        .filter(|w| *w > 0)
        .map(|w| {
            u16::try_from(w).map_err(|_| {
                unsupported(
                    field,
                    format!("{w} is out of range: a block I/O weight must be from 10 to 1000"),
                )
            })
        })
        .transpose()
}

fn memory(read: &Fields, limits: &mut Limits) -> Result<(), OciError> {
    limits.memory = read.positive("/memory/limit");
    limits.memory_swap = read.positive("/memory/swap");
    limits.memory_reservation = read.positive("/memory/reservation");
    // runc takes -1, which a uint64 field can only hold as its largest value, as "not set".
    limits.memory_swappiness = read.unsigned("/memory/swappiness").filter(|s| *s != u64::MAX);
    limits.oom_kill_disable = read.flag("/memory/disableOOMKiller");
    limits.memory_check_before_update = read.flag("/memory/checkBeforeUpdate");
    if read.get("/memory/kernel").is_some() || read.get("/memory/kernelTCP").is_some() {
        log::warn!(
            "linux.resources.memory.kernel and kernelTCP are ignored: the kernel deprecated kernel memory limits (runc ignores them too)"
        );
    }
    Ok(())
}

fn cpu(read: &Fields, limits: &mut Limits) {
    limits.cpu_shares = read.unsigned("/cpu/shares").filter(|s| *s > 0);
    // runc writes a quota of -1 ("no limit") as given, and nothing for 0.
    limits.cpu_quota_us = read.signed("/cpu/quota").filter(|q| *q != 0);
    limits.cpu_period_us = read.unsigned("/cpu/period").filter(|p| *p > 0);
    limits.cpu_burst_us = read.unsigned("/cpu/burst");
    limits.cpu_idle = read.signed("/cpu/idle");
    limits.cpuset_cpus = read.string("/cpu/cpus");
    limits.cpuset_mems = read.string("/cpu/mems");
    limits.cpu_rt_runtime_us = read.signed("/cpu/realtimeRuntime").filter(|r| *r != 0);
    limits.cpu_rt_period_us = read.unsigned("/cpu/realtimePeriod").filter(|p| *p > 0);
}

fn block_io(read: &Fields, limits: &mut Limits) -> Result<(), OciError> {
    limits.blkio_weight = weight(read.unsigned("/blockIO/weight"), "linux.resources.blockIO.weight")?;
    limits.blkio_leaf_weight = weight(
        read.unsigned("/blockIO/leafWeight"),
        "linux.resources.blockIO.leafWeight",
    )?;
    let device = |item: &Value| BlockDevice {
        major: item.get("major").and_then(Value::as_u64).unwrap_or(0),
        minor: item.get("minor").and_then(Value::as_u64).unwrap_or(0),
    };
    let field = "linux.resources.blockIO.weightDevice";
    for item in read.items("/blockIO/weightDevice") {
        limits.device_weights.push(DeviceWeight {
            device: device(item),
            weight: weight(item.get("weight").and_then(Value::as_u64), field)?,
            leaf_weight: weight(item.get("leafWeight").and_then(Value::as_u64), field)?,
        });
    }
    for (member, kind) in [
        ("throttleReadBpsDevice", ThrottleKind::ReadBps),
        ("throttleWriteBpsDevice", ThrottleKind::WriteBps),
        ("throttleReadIOPSDevice", ThrottleKind::ReadIops),
        ("throttleWriteIOPSDevice", ThrottleKind::WriteIops),
    ] {
        for item in read.items(&format!("/blockIO/{member}")) {
            limits.device_throttles.push(DeviceThrottle {
                device: device(item),
                kind,
                rate: item.get("rate").and_then(Value::as_u64).unwrap_or(0),
            });
        }
    }
    Ok(())
}

/// pids, hugepages, network, RDMA and the unified map.
fn named(read: &Fields, limits: &mut Limits) -> Result<(), OciError> {
    limits.pids = read.positive("/pids/limit");
    for item in read.items("/hugepageLimits") {
        limits.hugepages.push(HugepageLimit {
            page_size: item
                .get("pageSize")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            limit: item.get("limit").and_then(Value::as_u64).unwrap_or(0),
        });
    }
    limits.net_class_id = read
        .unsigned("/network/classID")
        .map(|id| {
            u32::try_from(id).map_err(|_| {
                unsupported(
                    "linux.resources.network.classID",
                    format!("{id} is not a 32-bit class id"),
                )
            })
        })
        .transpose()?;
    for item in read.items("/network/priorities") {
        let priority = item.get("priority").and_then(Value::as_u64).unwrap_or(0);
        limits.net_priorities.push(InterfacePriority {
            interface: item.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            priority: u32::try_from(priority).map_err(|_| {
                unsupported(
                    "linux.resources.network.priorities",
                    format!("{priority} is not a 32-bit priority"),
                )
            })?,
        });
    }
    if let Some(devices) = read.get("/rdma").and_then(Value::as_object) {
        for (device, limit) in devices {
            let count = |key: &str| -> Result<Option<u32>, OciError> {
                limit
                    .get(key)
                    .and_then(Value::as_u64)
                    .map(|n| {
                        u32::try_from(n).map_err(|_| {
                            unsupported("linux.resources.rdma", format!("{key} {n} is not a 32-bit count"))
                        })
                    })
                    .transpose()
            };
            limits.rdma.push(RdmaLimit {
                device: device.clone(),
                hca_handles: count("hcaHandles")?,
                hca_objects: count("hcaObjects")?,
            });
        }
    }
    if let Some(unified) = read.get("/unified").and_then(Value::as_object) {
        let entries: BTreeMap<String, String> = unified
            .iter()
            .map(|(file, value)| (file.clone(), value.as_str().unwrap_or_default().to_owned()))
            .collect();
        limits.unified = entries;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(resources: Value) -> Value {
        json!({"linux": {"resources": resources}})
    }

    #[test]
    fn every_memory_field_is_read_and_kernel_memory_is_ignored() {
        let limits = from_config(&config(json!({"memory": {
            "limit": 50593792, "reservation": 50593792, "swap": 50593792, "kernel": 50593792,
            "kernelTCP": 50593792, "swappiness": 10, "disableOOMKiller": true, "checkBeforeUpdate": true
        }})))
        .unwrap();
        assert_eq!(limits.memory, Some(50_593_792));
        assert_eq!(limits.memory_swap, Some(50_593_792));
        assert_eq!(limits.memory_reservation, Some(50_593_792));
        assert_eq!(limits.memory_swappiness, Some(10));
        assert!(limits.oom_kill_disable && limits.memory_check_before_update);
        let unset = from_config(&config(json!({"memory": {"limit": -1, "swappiness": u64::MAX}}))).unwrap();
        assert_eq!((unset.memory, unset.memory_swappiness), (None, None));
        let error = from_config(&config(json!({"memory": {"swappiness": 101}}))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config.json field linux.resources.memory.swappiness is not supported: memory swappiness 101 is out of range: it must be from 0 to 100"
        );
    }

    #[test]
    fn cpu_fields_are_kept_as_given() {
        let limits = from_config(&config(json!({"cpu": {
            "shares": 1024, "quota": 200000, "period": 500000, "burst": 0, "idle": 1,
            "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "0-1", "mems": "0"
        }})))
        .unwrap();
        assert_eq!(limits.cpu_shares, Some(1024), "exactly, not through the v2 scale");
        assert_eq!(limits.cpu_weight, None);
        assert_eq!(
            (limits.cpu_quota_us, limits.cpu_period_us),
            (Some(200_000), Some(500_000))
        );
        assert_eq!(limits.cpu_quota, None, "no conversion to CPUs");
        assert_eq!((limits.cpu_burst_us, limits.cpu_idle), (Some(0), Some(1)));
        assert_eq!(
            (limits.cpu_rt_runtime_us, limits.cpu_rt_period_us),
            (Some(950_000), Some(1_000_000))
        );
        assert_eq!(limits.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(limits.cpuset_mems.as_deref(), Some("0"));
        let unlimited = from_config(&config(json!({"cpu": {"quota": -1, "shares": 0, "cpus": ""}}))).unwrap();
        assert_eq!(
            (unlimited.cpu_quota_us, unlimited.cpu_shares, unlimited.cpuset_cpus),
            (Some(-1), None, None)
        );
        let error = from_config(&config(json!({"cpu": {"cpus": "0;1"}}))).unwrap_err();
        assert!(error.to_string().contains("linux.resources.cpu.cpus"), "{error}");
        let error = from_config(&config(json!({"cpu": {"period": 10}}))).unwrap_err();
        assert!(error.to_string().contains("linux.resources.cpu.period"), "{error}");
    }

    #[test]
    fn block_io_fields_per_device() {
        let device = |rate| json!([{"major": 8, "minor": 0, "rate": rate}]);
        let limits = from_config(&config(json!({"blockIO": {
            "weight": 500, "leafWeight": 300,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
            "throttleReadBpsDevice": device(1), "throttleWriteBpsDevice": device(2),
            "throttleReadIOPSDevice": device(3), "throttleWriteIOPSDevice": device(4)
        }})))
        .unwrap();
        assert_eq!((limits.blkio_weight, limits.blkio_leaf_weight), (Some(500), Some(300)));
        assert_eq!(limits.io_weight, None, "OCI weights are on the v1 scale");
        let sda = BlockDevice { major: 8, minor: 0 };
        assert_eq!(
            limits.device_weights,
            [DeviceWeight {
                device: sda,
                weight: Some(500),
                leaf_weight: Some(300)
            }]
        );
        let rates: Vec<(ThrottleKind, u64)> = limits.device_throttles.iter().map(|t| (t.kind, t.rate)).collect();
        assert_eq!(rates, ThrottleKind::ALL.into_iter().zip(1..=4).collect::<Vec<_>>());
        let error = from_config(&config(json!({"blockIO": {"weight": 70000}}))).unwrap_err();
        assert!(error.to_string().contains("linux.resources.blockIO.weight"), "{error}");
    }

    #[test]
    fn hugepages_network_rdma_and_unified() {
        let limits = from_config(&config(json!({
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}, {"pageSize": "1GB", "limit": 1073741824u64}],
            "network": {"classID": 255, "priorities": [{"name": "lo", "priority": 10}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "max"},
            "pids": {"limit": 20}
        })))
        .unwrap();
        assert_eq!(
            limits.hugepages[0],
            HugepageLimit {
                page_size: "2MB".into(),
                limit: 0
            },
            "0 is a limit, of none"
        );
        assert_eq!(limits.hugepages[1].limit, 1 << 30);
        assert_eq!(limits.net_class_id, Some(255));
        assert_eq!(
            limits.net_priorities,
            [InterfacePriority {
                interface: "lo".into(),
                priority: 10
            }]
        );
        assert_eq!(limits.rdma[0].hca_handles, Some(3));
        assert_eq!(limits.unified["memory.high"], "max");
        assert_eq!(limits.pids, Some(20));
        let error = from_config(&config(
            json!({"hugepageLimits": [{"pageSize": "2MB/../x", "limit": 1}]}),
        ))
        .unwrap_err();
        assert!(error.to_string().contains("linux.resources.hugepageLimits"), "{error}");
        let error = from_config(&config(json!({"unified": {"../memory.max": "1"}}))).unwrap_err();
        assert!(error.to_string().contains("linux.resources.unified"), "{error}");
        assert_eq!(from_config(&json!({})).unwrap(), Limits::unlimited());
    }
}
