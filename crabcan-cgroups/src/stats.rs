//! [`Stats`]: best-effort resource usage of a container cgroup.

use std::fmt;

/// Resource usage read from the cgroup files; `None` where the host does
/// not provide the number (e.g. `memory.peak` needs Linux 5.19 on v2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Peak memory use in bytes (v2 memory.peak, v1 memory.max_usage_in_bytes).
    pub memory_peak: Option<u64>,
    /// Current memory use in bytes.
    pub memory_current: Option<u64>,
    /// Number of processes killed by the OOM killer in this cgroup.
    pub oom_kills: u64,
    /// Current number of tasks.
    pub pids_current: Option<u64>,
    /// Peak number of tasks (pids.peak, Linux 6.1+).
    pub pids_peak: Option<u64>,
    /// Total CPU time in nanoseconds (v2 cpu.stat usage_usec, v1 cpuacct.usage).
    pub cpu_usage_ns: Option<u64>,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        match self.memory_peak {
            Some(peak) => write!(f, "memory peak {:.1} MiB", mib(peak))?,
            None => write!(f, "memory peak n/a")?,
        }
        write!(f, ", oom kills {}", self.oom_kills)?;
        match self.pids_peak.or(self.pids_current) {
            Some(n) if self.pids_peak.is_some() => write!(f, ", pids peak {n}")?,
            Some(n) => write!(f, ", pids {n}")?,
            None => write!(f, ", pids n/a")?,
        }
        match self.cpu_usage_ns {
            Some(ns) => write!(f, ", cpu {:.3}s", ns as f64 / 1e9),
            None => write!(f, ", cpu n/a"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let s = Stats {
            memory_peak: Some(3 << 19),
            memory_current: None,
            oom_kills: 1,
            pids_current: Some(2),
            pids_peak: Some(5),
            cpu_usage_ns: Some(1_234_500_000),
        };
        assert_eq!(
            s.to_string(),
            "memory peak 1.5 MiB, oom kills 1, pids peak 5, cpu 1.234s"
        );
        assert_eq!(
            Stats::default().to_string(),
            "memory peak n/a, oom kills 0, pids n/a, cpu n/a"
        );
    }
}
