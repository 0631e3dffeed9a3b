//! The report: `BENCHMARKS.md` (machine, tables, verdicts against the
//! issue's targets, where crabcan's time goes, leak check, notes), a
//! hand-written SVG bar chart of median start-to-exit per runtime, and a
//! short summary on stdout.

use std::fmt::Write as _;
use std::path::Path;

use super::measure::{mib, ms, Stats};
use super::runtimes::{Runtime, Spec};
use super::{Outcome, Results};

/// The issue's earlier measurements, for reference (ms, MiB).
fn issue_figure(r: Runtime) -> &'static str {
    match r {
        Runtime::Crabcan => "target: ≤ 1.5× floor",
        Runtime::Crun(Spec::Default) => "8 ms, 3.3 MiB",
        Runtime::Crun(Spec::Full) => "~33 ms",
        Runtime::Runc(Spec::Default) => "25 ms, 9.7 MiB",
        Runtime::Runc(Spec::Full) => "50 ms",
        Runtime::Bwrap => "4.2 ms, 1.9 MiB",
        Runtime::Unshare => "3.9 ms",
    }
}

/// Writes the Markdown and the SVG.
pub fn write(results: &Results) -> Result<(), String> {
    let opts = &results.options;
    for path in [&opts.out, &opts.svg] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
    }
    std::fs::write(&opts.svg, svg(results))
        .map_err(|e| format!("writing {}: {e}", opts.svg.display()))?;
    std::fs::write(&opts.out, markdown(results))
        .map_err(|e| format!("writing {}: {e}", opts.out.display()))?;
    eprintln!(
        "bench: wrote {} and {}",
        opts.out.display(),
        opts.svg.display()
    );
    Ok(())
}

fn stats_of(results: &Results, r: Runtime) -> Option<&Stats> {
    results
        .latency
        .iter()
        .find(|(x, _)| *x == r)
        .and_then(|(_, o)| o.done())
}

fn per_second(results: &Results, r: Runtime) -> Option<(f64, f64)> {
    let (seq, par) = results.throughput.iter().find(|(x, _)| *x == r)?.1.done()?;
    Some((seq.per_second(), par.per_second()))
}

fn status_text<T>(o: &Outcome<T>) -> Option<String> {
    match o {
        Outcome::Done(_) => None,
        Outcome::Skipped(why) => Some(format!("skipped: {why}")),
        Outcome::Failed(why) => Some(format!("FAILED: {}", why.replace('|', "\\|"))),
    }
}

/// One line per target of the issue: met / not met, with the numbers.
pub fn verdicts(results: &Results) -> Vec<String> {
    let mut out = Vec::new();
    let crabcan = stats_of(results, Runtime::Crabcan);
    let floor = stats_of(results, Runtime::Unshare);
    out.push(match (crabcan, floor) {
        (Some(c), Some(f)) => {
            let ratio = c.median.as_secs_f64() / f.median.as_secs_f64().max(1e-9);
            let met = if ratio <= 1.5 { "met" } else { "NOT met" };
            format!("start-to-exit ≤ 1.5× the unshare floor: {met} (crabcan {} ms = {ratio:.2}× floor {} ms)", ms(c.median), ms(f.median))
        }
        _ => "start-to-exit ≤ 1.5× the unshare floor: not measured".to_string(),
    });
    let cruns = [Runtime::Crun(Spec::Default), Runtime::Crun(Spec::Full)];
    let crun_rss: Vec<u64> = cruns
        .iter()
        .filter_map(|r| stats_of(results, *r))
        .map(|s| s.rss_median_kib)
        .collect();
    out.push(match (crabcan, crun_rss.iter().min()) {
        (Some(c), Some(&best)) => {
            let met = if c.rss_median_kib < best { "met" } else { "NOT met" };
            format!("peak RSS below crun's: {met} (crabcan {} MiB, crun {} MiB; median ru_maxrss, crun's lower of default/full)", mib(c.rss_median_kib), mib(best))
        }
        _ => "peak RSS below crun's: not measured (crun missing?)".to_string(),
    });
    let crun_tp: Vec<(f64, f64)> = cruns
        .iter()
        .filter_map(|r| per_second(results, *r))
        .collect();
    let best = crun_tp
        .iter()
        .fold(None, |acc: Option<(f64, f64)>, &(s, p)| {
            Some(acc.map_or((s, p), |(a, b)| (a.max(s), b.max(p))))
        });
    out.push(match (per_second(results, Runtime::Crabcan), best) {
        (Some((cs, cp)), Some((bs, bp))) => {
            let met = if cs > bs && cp > bp { "met" } else { "NOT met" };
            let k = results.options.parallel;
            format!("throughput above crun's: {met} (sequential {cs:.0}/s vs crun {bs:.0}/s; {k} at a time {cp:.0}/s vs crun {bp:.0}/s; crun's better of default/full)")
        }
        _ => "throughput above crun's: not measured (crun missing?)".to_string(),
    });
    out
}

fn markdown(results: &Results) -> String {
    let mut md = String::new();
    header(&mut md, results);
    latency_table(&mut md, results);
    throughput_table(&mut md, results);
    scaling_table(&mut md, results);
    let _ = writeln!(md, "## Targets (issue 6)\n");
    for line in verdicts(results) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\nTargets are reported, not enforced.\n");
    time_section(&mut md, results);
    leak_section(&mut md, results);
    notes(&mut md, results);
    md
}

fn header(md: &mut String, results: &Results) {
    let m = &results.machine;
    let o = &results.options;
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(md, "Generated by `cargo xtask bench{}` on {}. Regenerate with `cargo xtask bench` (as root, on an otherwise idle machine).\n", if o.quick { " --quick" } else { "" }, m.date);
    if o.quick {
        let _ = writeln!(
            md,
            "**Quick mode: a handful of runs, the numbers are not meaningful.**\n"
        );
    }
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "- CPU: {} ({} CPUs online)", m.cpu_model, m.nproc);
    let _ = writeln!(md, "- Memory: {}", m.memory);
    let _ = writeln!(md, "- Kernel: {}", m.kernel);
    let _ = writeln!(md, "- cgroups: {}", m.cgroups);
    for (program, version) in &m.versions {
        let _ = writeln!(md, "- {program}: `{version}`");
    }
    let _ = writeln!(
        md,
        "- Rootfs: busybox, owned by 100000:100000 (`{}`)\n",
        o.rootfs.display()
    );
}

fn latency_table(md: &mut String, results: &Results) {
    let o = &results.options;
    let _ = writeln!(md, "## Start-to-exit of `/bin/true` in a fresh container\n");
    let _ = writeln!(md, "{} measured runs per runtime after {} warm-up runs, interleaved (A B C ... A B C ...). {}\n", o.runs, o.warmup, harness_text(results.helper));
    let _ = writeln!(md, "| runtime | median ms | min ms | max ms | × crabcan | peak RSS MiB (median / max) | issue's earlier figure |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|");
    let base = stats_of(results, Runtime::Crabcan).map(|s| s.median.as_secs_f64());
    for (r, outcome) in &results.latency {
        match outcome {
            Outcome::Done(s) => {
                let ratio = base.map_or("–".to_string(), |b| {
                    format!("{:.2}", s.median.as_secs_f64() / b.max(1e-9))
                });
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {ratio} | {} / {} | {} |",
                    r.label(),
                    ms(s.median),
                    ms(s.min),
                    ms(s.max),
                    mib(s.rss_median_kib),
                    mib(s.rss_max_kib),
                    issue_figure(*r)
                );
            }
            other => {
                let _ = writeln!(
                    md,
                    "| {} | – | – | – | – | – | {} |",
                    r.label(),
                    status_text(other).unwrap_or_default()
                );
            }
        }
    }
    let _ = writeln!(
        md,
        "\n![median start-to-exit per runtime]({})\n",
        relative_svg(results)
    );
}

fn harness_text(helper: bool) -> &'static str {
    if helper {
        "Each run is forked, exec'd and reaped by a tiny static C helper (`xtask/src/bench/spawner.c`), which times fork to `wait4` returning with CLOCK_MONOTONIC and reports `ru_maxrss` from that `wait4` as the peak RSS."
    } else {
        "Time is from fork+exec of the runtime by the bench to `wait4` returning. **No C compiler was found, so the peak RSS column is inflated to at least the bench's own RSS** (Linux keeps the high-water RSS across fork and exec)."
    }
}

fn relative_svg(results: &Results) -> String {
    let o = &results.options;
    let base = o.out.parent().unwrap_or(Path::new(""));
    o.svg
        .strip_prefix(base)
        .unwrap_or(&o.svg)
        .display()
        .to_string()
}

fn throughput_table(md: &mut String, results: &Results) {
    let o = &results.options;
    let _ = writeln!(md, "## Throughput\n");
    let _ = writeln!(md, "{} containers back to back, and {} containers with {} at a time ({} threads, each running its share sequentially).\n", o.throughput_total, o.throughput_total, o.parallel, o.parallel);
    let _ = writeln!(
        md,
        "| runtime | sequential containers/s | {} at a time containers/s |",
        o.parallel
    );
    let _ = writeln!(md, "|---|---:|---:|");
    for (r, outcome) in &results.throughput {
        match outcome.done() {
            Some((seq, par)) => {
                let _ = writeln!(
                    md,
                    "| {} | {:.0} | {:.0} |",
                    r.label(),
                    seq.per_second(),
                    par.per_second()
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| {} | {} | |",
                    r.label(),
                    status_text(outcome).unwrap_or_default()
                );
            }
        }
    }
    let _ = writeln!(md);
}

fn scaling_table(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## How crabcan's cost grows\n");
    let _ = writeln!(md, "crabcan with default isolation plus the configuration shown; {} runs each after the warm-up, interleaved. The 300-rule profile is generated: default allow, 300 ERRNO rules on 60 real syscalls with an argument condition nothing matches.\n", results.options.scaling_runs);
    let _ = writeln!(md, "| configuration | median ms | min ms | max ms |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for (label, outcome) in &results.scaling {
        match outcome {
            Outcome::Done(s) => {
                let _ = writeln!(
                    md,
                    "| {label} | {} | {} | {} |",
                    ms(s.median),
                    ms(s.min),
                    ms(s.max)
                );
            }
            other => {
                let _ = writeln!(
                    md,
                    "| {label} | {} | | |",
                    status_text(other).unwrap_or_default()
                );
            }
        }
    }
    let _ = writeln!(md);
}

fn time_section(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## Where crabcan's time goes\n");
    match &results.strace {
        Outcome::Done(rows) => {
            let _ = writeln!(md, "`strace -c -f` over one `crabcan --no-tty --mount ROOTFS -- /bin/true` (all processes; system time per syscall, so blocking waits count little):\n");
            let _ = writeln!(md, "| syscall | % time | seconds | calls |");
            let _ = writeln!(md, "|---|---:|---:|---:|");
            for row in rows {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    row.name, row.percent, row.seconds, row.calls
                );
            }
        }
        other => {
            let _ = writeln!(md, "strace: {}", status_text(other).unwrap_or_default());
        }
    }
    let _ = writeln!(md);
    match &results.timeline {
        Outcome::Done(events) => {
            let _ = writeln!(md, "Timeline of one `crabcan --debug` run (median of 5 by total), each stderr line timestamped on arrival. `--debug` itself logs ~420 seccomp rule lines, so this run is slower than the ones above.\n");
            let _ = writeln!(md, "| at ms | step (log line) | since previous ms |");
            let _ = writeln!(md, "|---:|---|---:|");
            let mut prev = std::time::Duration::ZERO;
            for e in events {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    ms(e.at),
                    e.what,
                    ms(e.at.saturating_sub(prev))
                );
                prev = e.at;
            }
        }
        other => {
            let _ = writeln!(md, "timeline: {}", status_text(other).unwrap_or_default());
        }
    }
    let _ = writeln!(md);
}

fn leak_section(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## Host state after the bench\n");
    let l = &results.leaks;
    if l.leaks.is_empty() {
        let _ = writeln!(md, "No leaks: no crabcan cgroups (`*/crabcan/*`), no new mounts, no leftover processes, no `/tmp/crabcan*` dirs.");
    }
    for leak in &l.leaks {
        let _ = writeln!(md, "- LEAK: {leak}");
    }
    if l.cleaned.is_empty() {
        let _ = writeln!(
            md,
            "No crun/runc state dirs or cgroups left for the bench's container ids."
        );
    } else {
        let _ = writeln!(md, "\ncrun/runc leftovers, removed by the bench:\n");
        for c in &l.cleaned {
            let _ = writeln!(md, "- {c}");
        }
    }
    let _ = writeln!(md);
}

fn notes(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## Notes\n");
    let _ = writeln!(md, "- crabcan: `crabcan --no-tty --mount ROOTFS -- /bin/true`: user, mount, pid, uts, ipc, net and cgroup namespaces, default seccomp profile, cgroup limits (1G memory, 64 pids, cpu and io weight), capabilities dropped.");
    let _ = writeln!(md, "- crun/runc \"default spec\": `crun spec`'s config (pid, net, ipc, uts, mount namespaces; no user or cgroup namespace, no seccomp, no limits). \"full\": plus user namespace (0→100000, 65536 ids), cgroup namespace, memory 1 GiB and pids 64 limits, and crabcan's default seccomp profile as OCI JSON. Both run `crun run --bundle B <unique id>` (non-detached, so the container is deleted on exit).");
    if let super::hybrid::Layout::Hybrid(unified) = &results.layout {
        let _ = writeln!(md, "- This host has the hybrid cgroup layout, which crun 1.8 refuses (`cgroups in hybrid mode not supported`). crun therefore runs from bench threads that moved into a private mount namespace (`unshare(CLONE_NEWNS)`, `/` made rprivate) where {} is unmounted, so crun sees plain cgroup v1. This is done once per thread in the bench process: crun's times contain no extra processes. runc, crabcan, bwrap and unshare run in the host's namespace.", unified.join(", "));
    }
    let _ = writeln!(md, "- bwrap: `bwrap --unshare-all --bind ROOTFS / --proc /proc --dev /dev /bin/true` (as root; `--unshare-all` includes the user namespace). No cgroup limits, no seccomp.");
    let _ = writeln!(md, "- floor: `unshare --user --map-root-user --mount --pid --fork --uts --ipc --net --cgroup chroot ROOTFS /bin/true`.");
    let _ = writeln!(md, "- `ru_maxrss` from `wait4` is the peak of the runtime process and of descendants it reaped (the container's `/bin/true` is a static busybox, far smaller than any runtime). Linux carries the high-water RSS across fork and exec, so a runtime forked straight from the (Rust, ~7 MiB) bench would report the bench's RSS; hence the small static C helper (`xtask/src/bench/spawner.c`, ~0.1 MiB) that forks, execs and reaps each runtime.");
    let _ = writeln!(md, "- Run as root on a machine possibly loaded by other work: medians are robust, maxima are not.");
}

/// A horizontal bar chart of median start-to-exit per runtime.
fn svg(results: &Results) -> String {
    let bars: Vec<(&str, f64)> = results
        .latency
        .iter()
        .filter_map(|(r, o)| Some((r.label(), o.done()?.median.as_secs_f64() * 1000.0)))
        .collect();
    let max = bars
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0f64, f64::max)
        .max(0.001);
    let (label_w, bar_w, row_h, top) = (190.0, 420.0, 28.0, 40.0);
    let height = top + row_h * bars.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="sans-serif" font-size="13">"#,
        w = label_w + bar_w + 90.0
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="10" y="24" font-size="15" font-weight="bold">Median start-to-exit of /bin/true (ms, lower is better)</text>"#
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = top + row_h * i as f64;
        let width = (value / max * bar_w).max(1.0);
        let color = if *label == "crabcan" {
            "#d9480f"
        } else {
            "#4c6ef5"
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 8.0,
            y + 17.0,
            xml_escape(label)
        );
        let _ = writeln!(
            s,
            r#"<rect x="{label_w}" y="{}" width="{width:.1}" height="{}" fill="{color}"/>"#,
            y + 4.0,
            row_h - 8.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}">{value:.2}</text>"#,
            label_w + width + 6.0,
            y + 17.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="10" y="{}" font-size="11" fill="#555">{} · {} · cargo xtask bench</text>"##,
        height - 10.0,
        xml_escape(&results.machine.kernel),
        xml_escape(&results.machine.date)
    );
    s.push_str("</svg>\n");
    s
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The headline numbers and verdicts on stdout.
pub fn print_summary(results: &Results) {
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "runtime", "median", "min", "max", "xcrabcan", "RSS MiB"
    );
    let base = stats_of(results, Runtime::Crabcan).map(|s| s.median.as_secs_f64());
    for (r, outcome) in &results.latency {
        match outcome {
            Outcome::Done(s) => {
                let ratio = base.map_or(0.0, |b| s.median.as_secs_f64() / b.max(1e-9));
                println!(
                    "{:<24} {:>9} {:>9} {:>9} {:>9.2} {:>9}",
                    r.label(),
                    ms(s.median),
                    ms(s.min),
                    ms(s.max),
                    ratio,
                    mib(s.rss_median_kib)
                );
            }
            other => println!(
                "{:<24} {}",
                r.label(),
                status_text(other).unwrap_or_default()
            ),
        }
    }
    for line in verdicts(results) {
        println!("{line}");
    }
    for leak in &results.leaks.leaks {
        println!("LEAK: {leak}");
    }
}
