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
    std::fs::write(&opts.svg, svg(results)).map_err(|e| format!("writing {}: {e}", opts.svg.display()))?;
    std::fs::write(&opts.out, markdown(results)).map_err(|e| format!("writing {}: {e}", opts.out.display()))?;
    eprintln!("bench: wrote {} and {}", opts.out.display(), opts.svg.display());
    Ok(())
}

fn stats_of(results: &Results, r: Runtime) -> Option<&Stats> {
    results
        .latency
        .iter()
        .find(|(x, _)| *x == r)
        .and_then(|(_, o)| o.done())
}

fn back_to_back(results: &Results, r: Runtime) -> Option<&Stats> {
    results
        .back_to_back
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
            let alone = match (
                back_to_back(results, Runtime::Crabcan),
                back_to_back(results, Runtime::Unshare),
            ) {
                (Some(bc), Some(bf)) => format!(
                    "; back to back: {} ms = {:.2}× floor {} ms",
                    ms(bc.median),
                    bc.median.as_secs_f64() / bf.median.as_secs_f64().max(1e-9),
                    ms(bf.median)
                ),
                _ => String::new(),
            };
            format!("start-to-exit ≤ 1.5× the unshare floor: {met} (interleaved: crabcan {} ms = {ratio:.2}× floor {} ms{alone})", ms(c.median), ms(f.median))
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
    let crun_tp: Vec<(f64, f64)> = cruns.iter().filter_map(|r| per_second(results, *r)).collect();
    let best = crun_tp.iter().fold(None, |acc: Option<(f64, f64)>, &(s, p)| {
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
    let _ = writeln!(
        md,
        "{} measured runs per runtime after {} warm-up runs, interleaved (A B C ... A B C ...). {}\n",
        o.runs,
        o.warmup,
        harness_text(results.helper)
    );
    let _ = writeln!(md, "The column \"back to back\" repeats the measurement with each runtime's runs one after the other instead of interleaved (same runs and warm-up): the difference is what a runtime pays for not following a run of itself; for crabcan on this host that is mostly the cgroup v1 attach (see \"Where crabcan's time goes\").\n");
    let _ = writeln!(md, "| runtime | median ms | min ms | max ms | × crabcan | peak RSS MiB (median / max) | back to back: median ms | issue's earlier figure |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|");
    let base = stats_of(results, Runtime::Crabcan).map(|s| s.median.as_secs_f64());
    for (r, outcome) in &results.latency {
        match outcome {
            Outcome::Done(s) => {
                let ratio = base.map_or("–".to_string(), |b| {
                    format!("{:.2}", s.median.as_secs_f64() / b.max(1e-9))
                });
                let alone = back_to_back(results, *r).map_or("–".to_string(), |b| ms(b.median));
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {ratio} | {} / {} | {alone} | {} |",
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
                    "| {} | – | – | – | – | – | – | {} |",
                    r.label(),
                    status_text(other).unwrap_or_default()
                );
            }
        }
    }
    let _ = writeln!(md, "\n![median start-to-exit per runtime]({})\n", relative_svg(results));
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
    o.svg.strip_prefix(base).unwrap_or(&o.svg).display().to_string()
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
                let _ = writeln!(md, "| {} | {} | |", r.label(), status_text(outcome).unwrap_or_default());
            }
        }
    }
    let _ = writeln!(md);
}

fn scaling_table(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## How crabcan's cost grows\n");
    let _ = writeln!(md, "crabcan with default isolation plus the configuration shown; {} runs each after the warm-up, interleaved. Only crabcan runs here, one right after the other, so (see below) the cgroup attach stays cheap: compare with the back-to-back column above, not the interleaved one. The 300-rule profile is generated: default allow, 300 ERRNO rules on 60 real syscalls with an argument condition nothing matches. `--no-cgroup` shows what the cgroup costs.\n", results.options.scaling_runs);
    let _ = writeln!(md, "| configuration | median ms | min ms | max ms |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for (label, outcome) in &results.scaling {
        match outcome {
            Outcome::Done(s) => {
                let _ = writeln!(md, "| {label} | {} | {} | {} |", ms(s.median), ms(s.min), ms(s.max));
            }
            other => {
                let _ = writeln!(md, "| {label} | {} | | |", status_text(other).unwrap_or_default());
            }
        }
    }
    let _ = writeln!(md);
}

fn time_section(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## Where crabcan's time goes\n");
    match &results.strace {
        Outcome::Done(found) => {
            let _ = writeln!(md, "`strace -c -f` over one `crabcan --no-tty --mount ROOTFS --hostname ... -- /bin/true` (all processes; system time per syscall, so blocking waits count little):\n");
            let _ = writeln!(md, "| syscall | % time | seconds | calls |");
            let _ = writeln!(md, "|---|---:|---:|---:|");
            for row in &found.top {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    row.name, row.percent, row.seconds, row.calls
                );
            }
            let _ = writeln!(md, "\nThe slowest single calls of one `strace -f -T` run started after a 50 ms pause (as between interleaved runs), leaving out calls that wait for crabcan's other process (wait4, read, recvmsg, poll, ...):\n");
            let _ = writeln!(md, "| ms | call |");
            let _ = writeln!(md, "|---:|---|");
            for call in &found.slowest {
                let _ = writeln!(
                    md,
                    "| {:.2} | `{}` |",
                    call.seconds * 1000.0,
                    call.call.replace('`', "'")
                );
            }
            cgroup_attach_note(md, &found.slowest);
        }
        other => {
            let _ = writeln!(md, "strace: {}", status_text(other).unwrap_or_default());
        }
    }
    let _ = writeln!(md);
    match &results.timeline {
        Outcome::Done(events) => timeline_table(md, events),
        other => {
            let _ = writeln!(md, "timeline: {}", status_text(other).unwrap_or_default());
        }
    }
    let _ = writeln!(md);
}

fn timeline_table(md: &mut String, events: &[super::breakdown::Event]) {
    let _ = writeln!(md, "Timeline of one `crabcan --debug` run (the median of 5 by total, each started after a 50 ms pause like the interleaved runs). \"crabcan ms\" is crabcan's own stamp (ms since it started), \"bench ms\" when the bench read the line (ms since the spawn). `--debug` logs ~420 seccomp rule lines, so this run is a little slower than the measured ones.\n");
    let _ = writeln!(
        md,
        "| crabcan ms | bench ms | process | step (log line) | since previous ms |"
    );
    let _ = writeln!(md, "|---:|---:|---|---|---:|");
    let mut prev: Option<f64> = None;
    for e in events {
        let now = e.own_ms.unwrap_or(e.at.as_secs_f64() * 1000.0);
        let own = e.own_ms.map_or("–".to_string(), |t| format!("{t:.2}"));
        let since = match (prev, e.own_ms) {
            (Some(p), Some(_)) => format!("{:.2}", now - p),
            _ => "–".to_string(),
        };
        let _ = writeln!(md, "| {own} | {} | {} | {} | {since} |", ms(e.at), e.who, e.what);
        if e.own_ms.is_some() {
            prev = Some(now);
        }
    }
}

/// Explains a slow cgroup v1 attach when strace caught one.
fn cgroup_attach_note(md: &mut String, slowest: &[super::breakdown::SlowCall]) {
    let slow_attach = slowest
        .iter()
        .find(|c| c.call.contains("cgroup.procs") && c.seconds > 0.002);
    if let Some(attach) = slow_attach {
        let _ = writeln!(md, "\nThe slowest call writes the container's pid to a cgroup v1 `cgroup.procs` ({:.1} ms). Moving a task between v1 cgroups takes the global `cgroup_threadgroup_rwsem` for writing, and that percpu rwsem first waits for an RCU grace period unless a writer used it moments ago. Back-to-back crabcan runs keep it warm; interleaved runs (and a host that starts a container now and then) pay the grace period, which is most of the gap between the interleaved and back-to-back medians above. Ways out for crabcan: `clone3(CLONE_INTO_CGROUP)` on cgroup v2; on v1 the host can mount the hierarchies with `favordynmods` (Linux 6.0+), which makes task migration cheap at some cost to fork and exit.", attach.seconds * 1000.0);
    }
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
    for f in &l.foreign {
        let _ = writeln!(md, "- not ours: {f}");
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
    let _ = writeln!(md, "- crabcan: `crabcan --no-tty --mount ROOTFS --hostname xtask-bench-PID -- /bin/true` (the hostname only names the cgroup, for the leak check): user, mount, pid, uts, ipc, net and cgroup namespaces, default seccomp profile, cgroup limits (1G memory, 64 pids, cpu and io weight), capabilities dropped.");
    let _ = writeln!(md, "- crun/runc \"default spec\": `crun spec`'s config (pid, net, ipc, uts, mount namespaces; no user or cgroup namespace, no seccomp, no limits). \"full\": plus user namespace (0→100000, 65536 ids), cgroup namespace, memory 1 GiB and pids 64 limits, and crabcan's default seccomp profile as OCI JSON. Both run `crun run --bundle B <unique id>` (non-detached, so the container is deleted on exit).");
    if let super::hybrid::Layout::Hybrid(unified) = &results.layout {
        let _ = writeln!(md, "- This host has the hybrid cgroup layout, which crun 1.8 refuses (`cgroups in hybrid mode not supported`). crun therefore runs from bench threads that moved into a private mount namespace (`unshare(CLONE_NEWNS)`, `/` made rprivate) where {} is unmounted, so crun sees plain cgroup v1. This is done once per thread in the bench process: crun's times contain no extra processes. runc, crabcan, bwrap and unshare run in the host's namespace.", unified.join(", "));
    }
    let _ = writeln!(md, "- bwrap: `bwrap --unshare-all --bind ROOTFS / --proc /proc --dev /dev /bin/true` (as root; `--unshare-all` includes the user namespace). No cgroup limits, no seccomp.");
    let _ = writeln!(md, "- floor: `unshare --user --map-root-user --mount --pid --fork --uts --ipc --net --cgroup chroot ROOTFS /bin/true`.");
    let _ = writeln!(md, "- `ru_maxrss` from `wait4` is the peak of the runtime process and of descendants it reaped (the container's `/bin/true` is a static busybox, far smaller than any runtime). Linux carries the high-water RSS across fork and exec, so a runtime forked straight from the (Rust, ~7 MiB) bench would report the bench's RSS; hence the small static C helper (`xtask/src/bench/spawner.c`, ~0.1 MiB) that forks, execs and reaps each runtime.");
    let _ = writeln!(
        md,
        "- Run as root on a machine possibly loaded by other work: medians are robust, maxima are not."
    );
}

/// A horizontal bar chart of median start-to-exit per runtime: a solid
/// bar for the interleaved runs, a light one for the back-to-back runs.
fn svg(results: &Results) -> String {
    let bars: Vec<(Runtime, f64, Option<f64>)> = results
        .latency
        .iter()
        .filter_map(|(r, o)| {
            let alone = back_to_back(results, *r).map(|b| b.median.as_secs_f64() * 1000.0);
            Some((*r, o.done()?.median.as_secs_f64() * 1000.0, alone))
        })
        .collect();
    let max = bars
        .iter()
        .map(|b| b.1.max(b.2.unwrap_or(0.0)))
        .fold(0.001f64, f64::max);
    let (label_w, bar_w, row_h, top) = (190.0, 420.0, 34.0, 58.0);
    let (width, height) = (label_w + bar_w + 90.0, top + row_h * bars.len() as f64 + 30.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">Median start-to-exit of /bin/true in a fresh container (ms, lower is better)</text>"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="10" y="32" width="12" height="10" fill="#4c6ef5"/><text x="28" y="42" font-size="11">interleaved runs</text><rect x="140" y="32" width="12" height="10" fill="#a5b4fc"/><text x="158" y="42" font-size="11">each runtime back to back</text>"##
    );
    for (i, (r, value, alone)) in bars.iter().enumerate() {
        let y = top + row_h * i as f64;
        let (solid, light) = if *r == Runtime::Crabcan {
            ("#d9480f", "#ffa94d")
        } else {
            ("#4c6ef5", "#a5b4fc")
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 8.0,
            y + 18.0,
            xml_escape(r.label())
        );
        bar(
            &mut s,
            label_w,
            y + 3.0,
            value / max * bar_w,
            16.0,
            solid,
            &format!("{value:.2}"),
        );
        if let Some(alone) = alone {
            bar(
                &mut s,
                label_w,
                y + 21.0,
                alone / max * bar_w,
                8.0,
                light,
                &format!("{alone:.2}"),
            );
        }
    }
    let _ = writeln!(
        s,
        r##"<text x="10" y="{}" font-size="11" fill="#555">{} · {} · {} · cargo xtask bench</text>"##,
        height - 10.0,
        xml_escape(&results.machine.cpu_model),
        xml_escape(&results.machine.kernel),
        xml_escape(&results.machine.date)
    );
    s.push_str("</svg>\n");
    s
}

/// One bar with its value after it.
fn bar(s: &mut String, x: f64, y: f64, w: f64, h: f64, color: &str, value: &str) {
    let w = w.max(1.0);
    let _ = writeln!(
        s,
        r#"<rect x="{x}" y="{y}" width="{w:.1}" height="{h}" fill="{color}"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="{}">{value}</text>"#,
        x + w + 6.0,
        y + h - 2.0,
        if h > 10.0 { 12 } else { 10 }
    );
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
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
            other => println!("{:<24} {}", r.label(), status_text(other).unwrap_or_default()),
        }
    }
    for line in verdicts(results) {
        println!("{line}");
    }
    for leak in &results.leaks.leaks {
        println!("LEAK: {leak}");
    }
    for note in results.leaks.foreign.iter().chain(&results.leaks.cleaned) {
        println!("note: {note}");
    }
}
