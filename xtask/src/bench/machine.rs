//! The machine the numbers come from: CPUs, memory, kernel, cgroup layout,
//! runtime versions and the date.

use std::path::Path;
use std::process::Command;

use super::hybrid::Layout;
use super::runtimes::version;
use crate::util::process::output_checked;

#[derive(Debug, Clone)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub cgroups: String,
    /// (program, first line of `--version`).
    pub versions: Vec<(String, String)>,
    pub date: String,
}

/// Describes this machine; `programs` are the runtimes found (name, path).
pub fn describe(layout: &Layout, programs: &[(String, std::path::PathBuf)]) -> Machine {
    Machine {
        nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model: cpu_model(),
        memory: memory(),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        cgroups: layout.describe(),
        versions: programs
            .iter()
            .map(|(name, path)| (name.clone(), version(path)))
            .collect(),
        date: output_checked(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
            .map(|d| d.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string()),
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(Path::new(path))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    text.lines()
        .find_map(|line| {
            line.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn memory() -> String {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = text.lines().find_map(|line| {
        line.strip_prefix("MemTotal:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()
    });
    match kib {
        Some(kib) => format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)),
        None => "unknown".to_string(),
    }
}
