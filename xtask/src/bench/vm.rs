//! `cargo xtask bench --vm`: crabcan's start-to-exit of `/bin/true` on
//! cgroup v2, where crabcan clones the container straight into its cgroup
//! (`clone3(CLONE_INTO_CGROUP)`), against the unshare+chroot floor. This
//! host is hybrid cgroup v1, so the runs happen in `cargo xtask test-vm`'s
//! VM (pure cgroup v2) with the bench payload ([`Payload::Bench`]): the
//! guest runs the three configurations interleaved through the bench's
//! spawner and prints one `CRABCAN-VM-BENCH <config> <ns> <rss KiB>
//! <wait status>` line per run (see `vm::init::INIT2_BENCH`); here they are
//! parsed, summed up per configuration (median, min, max, ratio to the
//! floor) and written as a self-contained Markdown section.
//!
//! The parsing, the statistics and the report are pure (unit-tested);
//! nothing is asserted about the times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::paths;
use crate::vm::{run_test_vm, Accel, Payload, TestVmOptions, VmOutcome};

/// What `--vm` runs and where it writes.
#[derive(Debug, Clone)]
pub struct VmBenchOptions {
    /// Measured rounds (each runs every configuration once).
    pub runs: u32,
    /// Warm-up rounds before them, not counted.
    pub warmup: u32,
    /// The Markdown section.
    pub out: PathBuf,
    /// Overall, the static build and the VM's boot included.
    pub timeout: Duration,
}

/// The configurations, in the guest's order: (name in the bench lines, label).
pub const CONFIGS: [(&str, &str); 3] = [
    ("crabcan", "crabcan (default isolation, cgroup v2)"),
    ("crabcan-no-cgroup", "crabcan --no-cgroup"),
    ("floor", "unshare+chroot (floor)"),
];

/// The floor's name in [`CONFIGS`], which the ratios divide by.
const FLOOR: &str = "floor";

/// The container's id map in the VM (the rootfs there is owned by shifted ids).
fn id_map() -> String {
    format!("0:{}:65536", crate::vm::VM_ID_OFFSET)
}

/// One measured run, as the spawner reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub ns: u64,
    pub rss_kib: u64,
    /// The wait status; -1 if the spawner printed no report.
    pub status: i32,
}

/// Parses `CRABCAN-VM-BENCH <config> <ns> <rss KiB> <wait status>`
/// (anywhere in a line): `None` for other lines, an error for a garbled one.
pub fn parse_bench_line(line: &str) -> Option<Result<(String, Run), String>> {
    const TAG: &str = "CRABCAN-VM-BENCH ";
    let rest = &line[line.find(TAG)? + TAG.len()..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let parsed = match fields.as_slice() {
        [config, ns, rss, status] => ns
            .parse()
            .ok()
            .zip(rss.parse().ok())
            .zip(status.parse().ok())
            .map(|((ns, rss_kib), status)| (config.to_string(), Run { ns, rss_kib, status })),
        _ => None,
    };
    Some(parsed.ok_or_else(|| format!("unreadable bench line from the VM: {:?}", line.trim())))
}

/// The value of `key=` in a `CRABCAN-VM-BOOTED` / `CRABCAN-VM-BENCH-INFO` line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// "exit status N", "killed by signal N", or why there is no status.
fn describe(status: i32) -> String {
    if status == -1 {
        "the spawner printed no report".to_string()
    } else {
        super::measure::failure(status).unwrap_or_else(|| "exit status 0".to_string())
    }
}

/// Every configuration's measured runs, in [`CONFIGS`] order. Errors on a
/// garbled line, an unknown configuration, a failed run (the guest's note on
/// it, with crabcan's stderr, is in `notes`) or a count other than `runs`.
pub fn collect(lines: &[String], runs: u32) -> Result<Vec<(&'static str, Vec<Run>)>, String> {
    let mut by_config: BTreeMap<&str, Vec<Run>> = CONFIGS.iter().map(|(name, _)| (*name, Vec::new())).collect();
    for line in lines {
        let Some(parsed) = parse_bench_line(line) else {
            continue;
        };
        let (config, run) = parsed?;
        let Some(list) = by_config.get_mut(config.as_str()) else {
            return Err(format!(
                "unknown configuration {config:?} in the VM's bench line {line:?}"
            ));
        };
        if run.status != 0 {
            return Err(format!(
                "a measured {config} run failed in the VM ({})",
                describe(run.status)
            ));
        }
        list.push(run);
    }
    let mut out = Vec::new();
    for (name, _) in CONFIGS {
        let list = by_config.remove(name).unwrap_or_default();
        if list.len() != runs as usize {
            return Err(format!(
                "the VM reported {} measured {name} runs, expected {runs}",
                list.len()
            ));
        }
        out.push((name, list));
    }
    Ok(out)
}

/// Median (mean of the middle two for an even count), min, max; peak RSS median.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigStats {
    pub runs: usize,
    pub median_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub rss_median_kib: u64,
}

/// The median of `values` (in any order); `None` if empty.
pub fn median(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(((u128::from(sorted[n / 2 - 1]) + u128::from(sorted[n / 2])) / 2) as u64),
    }
}

impl ConfigStats {
    /// `None` for no runs.
    pub fn of(runs: &[Run]) -> Option<ConfigStats> {
        let times: Vec<u64> = runs.iter().map(|r| r.ns).collect();
        let rss: Vec<u64> = runs.iter().map(|r| r.rss_kib).collect();
        Some(ConfigStats {
            runs: runs.len(),
            median_ns: median(&times)?,
            min_ns: *times.iter().min()?,
            max_ns: *times.iter().max()?,
            rss_median_kib: median(&rss)?,
        })
    }
}

/// What the report says about the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    pub kernel: String,
    pub accel: Accel,
    pub cpus: String,
    /// "yes", "no" or "unknown": did crabcan clone straight into its cgroup?
    pub clone3: String,
    pub runs: u32,
    pub warmup: u32,
    /// busybox's version line (its unshare is the floor).
    pub busybox: String,
}

impl VmInfo {
    /// From the guest's `CRABCAN-VM-BOOTED` and `CRABCAN-VM-BENCH-INFO` lines.
    pub fn of(outcome: &VmOutcome, runs: u32, warmup: u32) -> VmInfo {
        let booted = outcome.booted.as_deref().unwrap_or("");
        let info = outcome
            .bench
            .iter()
            .find(|l| l.starts_with("CRABCAN-VM-BENCH-INFO "))
            .map(String::as_str)
            .unwrap_or("");
        let busybox = info
            .split_once("busybox=[")
            .and_then(|(_, rest)| rest.rsplit_once(']'))
            .map(|(version, _)| version.trim().trim_end_matches(" multi-call binary.").to_string())
            .unwrap_or_default();
        VmInfo {
            kernel: field(booted, "kernel").unwrap_or("unknown").to_string(),
            accel: outcome.accel_used,
            cpus: field(booted, "cpus").unwrap_or("?").to_string(),
            clone3: field(info, "clone3").unwrap_or("unknown").to_string(),
            runs,
            warmup,
            busybox,
        }
    }

    fn accel_name(&self) -> &'static str {
        match self.accel {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
            Accel::Auto => "auto",
        }
    }
}

fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

fn ratio(ns: u64, floor_ns: u64) -> String {
    if floor_ns == 0 {
        "-".to_string()
    } else {
        format!("{:.2}×", ns as f64 / floor_ns as f64)
    }
}

fn label(name: &str) -> &str {
    CONFIGS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(name, |(_, label)| label)
}

/// The Markdown section (heading, method, table, caveats).
pub fn report(info: &VmInfo, stats: &[(&str, ConfigStats)]) -> String {
    let floor = stats.iter().find(|(name, _)| *name == FLOOR).map(|(_, s)| *s);
    let floor_median = floor.map_or(0, |s| s.median_ns);
    let median_of = |name: &str| stats.iter().find(|(n, _)| *n == name).map(|(_, s)| s.median_ns);
    let map = id_map();
    let mut md = String::new();
    md.push_str("## cgroup v2 in the VM (clone3 into the cgroup)\n\n");
    md.push_str(
        "This host's cgroups are hybrid v1, where crabcan moves the container's process into its cgroup \
         after cloning it. On cgroup v2 crabcan clones it straight into its cgroup with \
         `clone3(CLONE_INTO_CGROUP)`. To measure that path, `cargo xtask bench --vm` boots the VM of \
         `cargo xtask test-vm` (pure cgroup v2, busybox initramfs on a tmpfs root) and times \
         start-to-exit of `/bin/true` there: crabcan with its full default isolation, the same with \
         `--no-cgroup`, and the unshare+chroot floor, interleaved (one run of each per round), ",
    );
    md.push_str(&format!(
        "{} warm-up rounds, then {} measured ones, each run timed by the bench's static spawner \
         (fork, exec, `wait4`: elapsed time and `ru_maxrss`). A failed run fails the bench; none is \
         averaged in.\n\n",
        info.warmup, info.runs
    ));
    md.push_str(&format!(
        "VM: Linux {}, {} vCPUs, {} (qemu). crabcan cloned into its cgroup with clone3: **{}** \
         (from a `--debug` run before the measured ones).\n\n",
        info.kernel,
        info.cpus,
        info.accel_name(),
        info.clone3
    ));
    md.push_str("| configuration | runs | median | min | max | peak RSS (median) | median / floor |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for (name, s) in stats {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} MiB | {} |\n",
            label(name),
            s.runs,
            ms(s.median_ns),
            ms(s.min_ns),
            ms(s.max_ns),
            s.rss_median_kib as f64 / 1024.0,
            ratio(s.median_ns, floor_median)
        ));
    }
    md.push('\n');
    md.push_str(&format!(
        "- crabcan: `crabcan --no-tty --mount ROOTFS --uid-map {map} --gid-map {map} -- /bin/true`, \
         with the id maps the VM tests pass (Linux 6.1 cannot idmap the VM's tmpfs, so its rootfs is \
         owned by shifted ids); its cgroup is made, cloned into and removed on every run.\n"
    ));
    if let (Some(with), Some(without)) = (median_of("crabcan"), median_of("crabcan-no-cgroup")) {
        let diff = with as f64 / 1e6 - without as f64 / 1e6;
        md.push_str(&format!(
            "- `--no-cgroup`: the same without a cgroup; the cgroup's share of the median: {diff:+.2} ms.\n"
        ));
    }
    let busybox = if info.busybox.is_empty() {
        "busybox".to_string()
    } else {
        format!("busybox ({})", info.busybox)
    };
    md.push_str(&format!(
        "- floor: {busybox} `unshare -r -m -p -f -u -i -n chroot ROOTFS /bin/true`. busybox's \
         `unshare` has neither `--cgroup` nor the long options, so unlike the host's floor \
         (`unshare --user --map-root-user --mount --pid --fork --uts --ipc --net --cgroup`) it makes \
         no cgroup namespace.\n\n"
    ));
    match info.accel {
        Accel::Kvm => md.push_str(
            "Caveats: the VM ran under KVM, so its times are near native but come from another kernel \
             and a small VM: compare the ratio to the floor, not the absolute times, with the tables \
             measured on the host.\n",
        ),
        _ => md.push_str(
            "Caveats: the VM ran under TCG (qemu's emulation of the CPU; KVM guests do not run on \
             this host). Its absolute times are many times the host's and are not comparable with the \
             tables measured on the host. TCG does not slow every kind of work by the same factor: \
             translated user-space code, system calls, page faults and TLB flushes each pay \
             differently (user-space work is expected to be inflated more than kernel work; that was \
             not measured here). crabcan runs more of its own code than the floor, whose cost is \
             almost all the kernel's, so its ratio to the floor here, although measured in the same \
             VM and interleaved, is only indicative of the ratio on real hardware under cgroup v2.\n",
        ),
    }
    md
}

/// The section from a finished VM run: the runs checked and summed up.
pub fn evaluate(outcome: &VmOutcome, runs: u32, warmup: u32) -> Result<(VmInfo, String), String> {
    if outcome.summary.failed > 0 {
        let first = outcome
            .notes
            .iter()
            .find(|n| n.starts_with("bench: "))
            .map_or(String::new(), |n| {
                format!(" (first: {})", n.trim_start_matches("bench: "))
            });
        return Err(format!(
            "{} of {} bench runs failed in the VM{first}",
            outcome.summary.failed,
            outcome.summary.failed + outcome.summary.passed
        ));
    }
    let collected = collect(&outcome.bench, runs)?;
    let mut stats = Vec::new();
    for (name, list) in &collected {
        let s = ConfigStats::of(list).ok_or_else(|| format!("no measured {name} run"))?;
        stats.push((*name, s));
    }
    let info = VmInfo::of(outcome, runs, warmup);
    let md = report(&info, &stats);
    Ok((info, md))
}

/// Builds, boots, measures, writes the section; prints a summary.
pub fn run(opts: &VmBenchOptions) -> Result<i32, String> {
    let vm_opts = TestVmOptions {
        kernel: None,
        accel: Accel::Auto,
        timeout: opts.timeout,
        payload: Payload::Bench {
            runs: opts.runs,
            warmup: opts.warmup,
        },
        guest_env: Vec::new(),
        memory_mb: 2048,
        cpus: 2,
        only_test: None,
    };
    let log = vm_opts.payload.files(&paths::target_dir()).1;
    let outcome = run_test_vm(&vm_opts).map_err(|e| e.to_string())?;
    println!("--- bench --vm ---");
    for note in &outcome.notes {
        println!("vm: note: {note}");
    }
    let (info, md) = evaluate(&outcome, opts.runs, opts.warmup).map_err(|e| format!("{e}; see {}", log.display()))?;
    write(&opts.out, &md)?;
    print!("{md}");
    println!(
        "vm: Linux {}, {}, clone3 into the cgroup: {}; section written to {}",
        info.kernel,
        info.accel_name(),
        info.clone3,
        opts.out.display()
    );
    Ok(0)
}

fn write(out: &Path, md: &str) -> Result<(), String> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(out, md).map_err(|e| format!("writing {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Summary;

    fn outcome(bench: Vec<String>, passed: u64, failed: u64, notes: Vec<String>) -> VmOutcome {
        VmOutcome {
            summary: Summary {
                passed,
                failed,
                skipped: 0,
            },
            notes,
            results: Vec::new(),
            booted: Some("kernel=6.1.0-37-amd64 root=tmpfs cgroup=[cpu io memory pids] cpus=2".to_string()),
            bench,
            accel_used: Accel::Tcg,
            boot_secs: 10.0,
            total_secs: 60.0,
        }
    }

    fn lines(runs: u32) -> Vec<String> {
        let mut out = vec![
            "CRABCAN-VM-BENCH-INFO clone3=yes runs=3 warmup=1 busybox=[BusyBox v1.35.0 (Debian) multi-call binary.]"
                .to_string(),
        ];
        for i in 0..u64::from(runs) {
            out.push(format!(
                "CRABCAN-VM-BENCH crabcan {} 3100 0",
                90_000_000 + i * 1_000_000
            ));
            out.push(format!(
                "CRABCAN-VM-BENCH crabcan-no-cgroup {} 3000 0",
                80_000_000 + i * 1_000_000
            ));
            out.push(format!(
                "[   12.3] CRABCAN-VM-BENCH floor {} 1500 0\r",
                40_000_000 + i * 1_000_000
            ));
        }
        out
    }

    #[test]
    fn bench_lines_are_parsed_and_garbage_is_refused() {
        let run = Run {
            ns: 1234,
            rss_kib: 2048,
            status: 0,
        };
        assert_eq!(
            parse_bench_line("CRABCAN-VM-BENCH crabcan 1234 2048 0"),
            Some(Ok(("crabcan".to_string(), run)))
        );
        assert_eq!(
            parse_bench_line("[ 1.0] CRABCAN-VM-BENCH floor 1234 2048 256\r"),
            Some(Ok(("floor".to_string(), Run { status: 256, ..run })))
        );
        assert_eq!(parse_bench_line("CRABCAN-VM-BENCH-INFO clone3=yes"), None);
        assert_eq!(parse_bench_line("CRABCAN-VM-BENCH-WARMUP floor 1 2 0"), None);
        assert_eq!(parse_bench_line("CRABCAN-VM-RESULT x rc=0"), None);
        assert!(matches!(
            parse_bench_line("CRABCAN-VM-BENCH floor 12x 2048 0"),
            Some(Err(_))
        ));
        assert!(matches!(
            parse_bench_line("CRABCAN-VM-BENCH floor 1234 2048"),
            Some(Err(_))
        ));
        assert!(matches!(
            parse_bench_line("CRABCAN-VM-BENCH floor 1 2 0 9"),
            Some(Err(_))
        ));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7));
        assert_eq!(median(&[9, 1, 5]), Some(5));
        assert_eq!(median(&[4, 1, 3, 2]), Some(2));
        assert_eq!(median(&[1, 2]), Some(1));
        assert_eq!(median(&[3, 5]), Some(4));
        assert_eq!(median(&[u64::MAX, u64::MAX]), Some(u64::MAX));
        let runs = [30, 10, 20].map(|ns| Run {
            ns,
            rss_kib: ns * 100,
            status: 0,
        });
        assert_eq!(
            ConfigStats::of(&runs),
            Some(ConfigStats {
                runs: 3,
                median_ns: 20,
                min_ns: 10,
                max_ns: 30,
                rss_median_kib: 2000
            })
        );
        assert_eq!(ConfigStats::of(&[]), None);
    }

    #[test]
    fn runs_are_collected_per_configuration() {
        let collected = collect(&lines(3), 3).expect("three runs each");
        let names: Vec<&str> = collected.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["crabcan", "crabcan-no-cgroup", "floor"]);
        assert!(collected.iter().all(|(_, runs)| runs.len() == 3));
        assert_eq!(collected[2].1[0].ns, 40_000_000);
        let err = collect(&lines(2), 3).unwrap_err();
        assert!(err.contains("2 measured crabcan runs, expected 3"), "{err}");
    }

    #[test]
    fn a_failed_or_unknown_run_is_an_error_not_a_sample() {
        let mut failed = lines(3);
        failed.push("CRABCAN-VM-BENCH crabcan 5 3100 256".to_string());
        let err = collect(&failed, 3).unwrap_err();
        assert!(
            err.contains("crabcan run failed") && err.contains("exit status 1"),
            "{err}"
        );
        let mut no_report = lines(3);
        no_report[1] = "CRABCAN-VM-BENCH crabcan 0 0 -1".to_string();
        let err = collect(&no_report, 3).unwrap_err();
        assert!(err.contains("no report"), "{err}");
        let mut unknown = lines(3);
        unknown.push("CRABCAN-VM-BENCH crun 5 3100 0".to_string());
        assert!(collect(&unknown, 3).unwrap_err().contains("unknown configuration"));
        let note = "bench: floor (warm-up run 1) failed (wait status 256): unshare: ...".to_string();
        let err = evaluate(&outcome(lines(3), 9, 1, vec![note]), 3, 1).unwrap_err();
        assert_eq!(
            err,
            "1 of 10 bench runs failed in the VM (first: floor (warm-up run 1) failed (wait status 256): unshare: ...)"
        );
    }

    #[test]
    fn the_report_has_the_section_heading_table_and_caveats() {
        let (info, md) = evaluate(&outcome(lines(3), 10, 0, Vec::new()), 3, 1).expect("a report");
        assert_eq!(info.kernel, "6.1.0-37-amd64");
        assert_eq!(info.cpus, "2");
        assert_eq!(info.clone3, "yes");
        assert_eq!(info.busybox, "BusyBox v1.35.0 (Debian)");
        assert!(
            md.starts_with("## cgroup v2 in the VM (clone3 into the cgroup)\n\n"),
            "{md}"
        );
        assert!(md.contains("Linux 6.1.0-37-amd64, 2 vCPUs, TCG (qemu)"), "{md}");
        assert!(md.contains("clone3: **yes**"), "{md}");
        assert!(md.contains("1 warm-up rounds, then 3 measured ones"), "{md}");
        // Medians: 91, 81 and 41 ms.
        assert!(
            md.contains(
                "| crabcan (default isolation, cgroup v2) | 3 | 91.00 ms | 90.00 ms | 92.00 ms | 3.0 MiB | 2.22× |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| unshare+chroot (floor) | 3 | 41.00 ms | 40.00 ms | 42.00 ms | 1.5 MiB | 1.00× |"),
            "{md}"
        );
        assert!(md.contains("the cgroup's share of the median: +10.00 ms"), "{md}");
        assert!(md.contains("--uid-map 0:1000000000:65536"), "{md}");
        assert!(md.contains("only indicative"), "{md}");
        assert!(md.contains("no cgroup namespace"), "{md}");
        let kvm = report(
            &VmInfo {
                accel: Accel::Kvm,
                ..info
            },
            &[],
        );
        assert!(kvm.contains("under KVM") && !kvm.contains("TCG"), "{kvm}");
    }
}
