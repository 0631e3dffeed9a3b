//! The cpu and cpuset controllers' writes: the weight (crabcan's v2-scale weight, or OCI's
//! v1-scale shares written exactly on v1 and converted as runc does on v2), the CFS bandwidth
//! (crabcan's quota in CPUs over a 100 ms period, or OCI's quota and period in microseconds as
//! given), the burst, `cpu.idle`, v1's realtime runtime and period, and the cpuset lists.

use super::{not_on, Controller, LimitWrite};
use crate::error::CgroupError;
use crate::layout::Version;
use crate::limits::{
    cpu_weight_to_shares, oci_cpu_shares_to_weight, LimitKind, Limits, CPU_QUOTA_MIN_US, CPU_WEIGHT_MAX, CPU_WEIGHT_MIN,
};

/// CFS period used for crabcan's quota in CPUs, and for an OCI quota without a period, in
/// microseconds (the kernel's default).
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// Appends the cpu controller's writes of `limits` for `version` to `writes`.
pub(super) fn writes(limits: &Limits, version: Version, writes: &mut Vec<LimitWrite>) -> Result<(), CgroupError> {
    match version {
        Version::V1 => v1(limits, writes),
        Version::V2 => v2(limits, writes)?,
    }
    Ok(())
}

/// `cpuset.cpus` and `cpuset.mems`: the same files on v1 and v2.
pub(super) fn cpuset_writes(limits: &Limits, writes: &mut Vec<LimitWrite>) {
    for (file, list, limit) in [
        ("cpuset.cpus", &limits.cpuset_cpus, LimitKind::CpusetCpus),
        ("cpuset.mems", &limits.cpuset_mems, LimitKind::CpusetMems),
    ] {
        if let Some(list) = list {
            writes.push(LimitWrite::new(Controller::Cpuset, file, list, limit, "cpusets"));
        }
    }
}

fn cpu_quota_us(cpus: f64) -> u64 {
    let quota = (cpus * CPU_PERIOD_US as f64).round();
    // `as` saturates for huge values; NaN becomes 0 and is then raised to the minimum.
    (quota as u64).max(CPU_QUOTA_MIN_US)
}

fn clamp_cpu_weight(weight: u64) -> u64 {
    weight.clamp(CPU_WEIGHT_MIN, CPU_WEIGHT_MAX)
}

fn write(file: &'static str, value: impl ToString, limit: LimitKind, what: &'static str) -> LimitWrite {
    LimitWrite::new(Controller::Cpu, file, value, limit, what)
}

/// runc's v1 order: shares, period, burst, quota (a period or burst the kernel refuses before
/// the quota is written again after it), idle, realtime period then runtime.
fn v1(limits: &Limits, writes: &mut Vec<LimitWrite>) {
    if let Some(weight) = limits.cpu_weight {
        let shares = cpu_weight_to_shares(clamp_cpu_weight(weight));
        writes.push(write("cpu.shares", shares, LimitKind::CpuWeight, "CPU shares"));
    }
    if let Some(shares) = limits.cpu_shares {
        writes.push(write("cpu.shares", shares, LimitKind::CpuShares, "CPU shares"));
    }
    if let Some(cpus) = limits.cpu_quota {
        let bandwidth = "CPU bandwidth limits";
        writes.push(write(
            "cpu.cfs_period_us",
            CPU_PERIOD_US,
            LimitKind::CpuQuota,
            bandwidth,
        ));
        writes.push(write(
            "cpu.cfs_quota_us",
            cpu_quota_us(cpus),
            LimitKind::CpuQuota,
            bandwidth,
        ));
    }
    let quota_follows = limits.cpu_quota_us.is_some();
    if let Some(period) = limits.cpu_period_us {
        let period = write(
            "cpu.cfs_period_us",
            period,
            LimitKind::CpuPeriod,
            "CPU bandwidth limits",
        );
        writes.push(period.retried_if(quota_follows));
    }
    if let Some(burst) = limits.cpu_burst_us {
        let burst = write(
            "cpu.cfs_burst_us",
            burst,
            LimitKind::CpuBurst,
            "CPU bursts (Linux 5.14)",
        );
        writes.push(burst.retried_if(quota_follows));
    }
    if let Some(quota) = limits.cpu_quota_us {
        writes.push(write(
            "cpu.cfs_quota_us",
            quota,
            LimitKind::CpuQuota,
            "CPU bandwidth limits",
        ));
    }
    if let Some(idle) = limits.cpu_idle {
        writes.push(write("cpu.idle", idle, LimitKind::CpuIdle, "cpu.idle (Linux 5.15)"));
    }
    let realtime = "realtime group scheduling (CONFIG_RT_GROUP_SCHED)";
    if let Some(period) = limits.cpu_rt_period_us {
        let period = write("cpu.rt_period_us", period, LimitKind::CpuRealtimePeriod, realtime);
        writes.push(period.retried_if(limits.cpu_rt_runtime_us.is_some()));
    }
    if let Some(runtime) = limits.cpu_rt_runtime_us {
        writes.push(write(
            "cpu.rt_runtime_us",
            runtime,
            LimitKind::CpuRealtimeRuntime,
            realtime,
        ));
    }
}

/// cgroup-v2.rst: cpu.weight, cpu.idle, cpu.max.burst, cpu.max "$MAX $PERIOD" ("max" for no
/// quota, period 100000 when only a quota is given, as runc writes it).
fn v2(limits: &Limits, writes: &mut Vec<LimitWrite>) -> Result<(), CgroupError> {
    for (limit, given) in [
        (LimitKind::CpuRealtimeRuntime, limits.cpu_rt_runtime_us.is_some()),
        (LimitKind::CpuRealtimePeriod, limits.cpu_rt_period_us.is_some()),
    ] {
        if given {
            return Err(not_on(
                limit,
                Version::V2,
                "cpu.rt_runtime_us and cpu.rt_period_us exist only on cgroup v1",
            ));
        }
    }
    if let Some(weight) = limits.cpu_weight {
        writes.push(write(
            "cpu.weight",
            clamp_cpu_weight(weight),
            LimitKind::CpuWeight,
            "CPU weights",
        ));
    }
    if let Some(shares) = limits.cpu_shares {
        let weight = oci_cpu_shares_to_weight(shares);
        writes.push(write("cpu.weight", weight, LimitKind::CpuShares, "CPU weights"));
    }
    if let Some(idle) = limits.cpu_idle {
        writes.push(write("cpu.idle", idle, LimitKind::CpuIdle, "cpu.idle (Linux 5.15)"));
    }
    if let Some(cpus) = limits.cpu_quota {
        let value = format!("{} {}", cpu_quota_us(cpus), CPU_PERIOD_US);
        writes.push(write("cpu.max", value, LimitKind::CpuQuota, "CPU bandwidth limits"));
    }
    let bandwidth = limits.cpu_quota_us.is_some() || limits.cpu_period_us.is_some();
    if let Some(burst) = limits.cpu_burst_us {
        let burst = write("cpu.max.burst", burst, LimitKind::CpuBurst, "CPU bursts (Linux 5.14)");
        writes.push(burst.retried_if(bandwidth));
    }
    if bandwidth {
        let quota = match limits.cpu_quota_us {
            Some(quota) if quota > 0 => quota.to_string(),
            _ => "max".to_owned(),
        };
        let period = limits.cpu_period_us.unwrap_or(CPU_PERIOD_US);
        let limit = match limits.cpu_quota_us {
            Some(_) => LimitKind::CpuQuota,
            None => LimitKind::CpuPeriod,
        };
        writes.push(write(
            "cpu.max",
            format!("{quota} {period}"),
            limit,
            "CPU bandwidth limits",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{expect, triples, writes};
    use super::super::{limit_writes, Placement};
    use super::*;

    fn oci_cpu() -> Limits {
        Limits {
            cpu_shares: Some(1024),
            cpu_quota_us: Some(200_000),
            cpu_period_us: Some(500_000),
            cpu_burst_us: Some(10_000),
            cpu_idle: Some(0),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            ..Limits::unlimited()
        }
    }

    #[test]
    fn v1_writes_oci_cpu_settings_as_given() {
        let limits = Limits {
            cpu_rt_period_us: Some(1_000_000),
            cpu_rt_runtime_us: Some(950_000),
            ..oci_cpu()
        };
        assert_eq!(
            triples(&limits, Version::V1),
            expect(&[
                ("cpu", "cpu.shares", "1024"),
                ("cpu", "cpu.cfs_period_us", "500000"),
                ("cpu", "cpu.cfs_burst_us", "10000"),
                ("cpu", "cpu.cfs_quota_us", "200000"),
                ("cpu", "cpu.idle", "0"),
                ("cpu", "cpu.rt_period_us", "1000000"),
                ("cpu", "cpu.rt_runtime_us", "950000"),
                ("cpuset", "cpuset.cpus", "0-1"),
                ("cpuset", "cpuset.mems", "0"),
            ])
        );
        let retried: Vec<String> = writes(&limits, Version::V1)
            .into_iter()
            .filter(|w| w.retry_after_rest)
            .map(|w| w.file)
            .collect();
        assert_eq!(retried, ["cpu.cfs_period_us", "cpu.cfs_burst_us", "cpu.rt_period_us"]);
        let period_alone = Limits {
            cpu_period_us: Some(50_000),
            ..Limits::unlimited()
        };
        assert!(!writes(&period_alone, Version::V1)[0].retry_after_rest);
    }

    #[test]
    fn v2_converts_shares_as_runc_and_writes_cpu_max() {
        assert_eq!(
            triples(&oci_cpu(), Version::V2),
            expect(&[
                ("cpu", "cpu.weight", "100"),
                ("cpu", "cpu.idle", "0"),
                ("cpu", "cpu.max.burst", "10000"),
                ("cpu", "cpu.max", "200000 500000"),
                ("cpuset", "cpuset.cpus", "0-1"),
                ("cpuset", "cpuset.mems", "0"),
            ])
        );
        let quota_alone = Limits {
            cpu_quota_us: Some(50_000),
            ..Limits::unlimited()
        };
        assert_eq!(
            triples(&quota_alone, Version::V2),
            expect(&[("cpu", "cpu.max", "50000 100000")])
        );
        let unlimited = Limits {
            cpu_quota_us: Some(-1),
            cpu_period_us: Some(20_000),
            ..Limits::unlimited()
        };
        assert_eq!(
            triples(&unlimited, Version::V2),
            expect(&[("cpu", "cpu.max", "max 20000")])
        );
        let realtime = Limits {
            cpu_rt_runtime_us: Some(1),
            ..Limits::unlimited()
        };
        let error = limit_writes(&realtime, &Placement::only(Version::V2)).unwrap_err();
        assert_eq!(error.limit(), Some(LimitKind::CpuRealtimeRuntime));
        assert!(error.to_string().contains("cpu.rt_runtime_us"), "{error}");
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
            expect(&[("cpu", "cpu.shares", "262144"), ("blkio", "blkio.bfq.weight", "10")])
        );
        let l = Limits {
            io_weight: Some(5000),
            ..Limits::unlimited()
        };
        let io = writes(&l, Version::V2).pop().unwrap();
        assert_eq!(io.value, "default 5000");
        assert_eq!(io.fallback, Some(("io.bfq.weight".into(), "1000".to_string())));
    }
}
