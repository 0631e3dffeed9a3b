//! The report: `BENCHMARKS.md` (machine, tables, verdicts against the
//! issues' targets, the OCI runtimes' create/start/wait/delete, `podman run`
//! with each runtime, where crabcan's time goes, leak check, notes), a
//! hand-written SVG bar chart of median start-to-exit per runtime, and a
//! short summary on stdout.

use std::fmt::Write as _;
use std::path::Path;

use super::engines::{EngineRuntime, EngineStats};
use super::measure::{mib, ms, Stats};
use super::runtimes::{Runtime, Spec};
use super::throughput::Throughput;
use super::{Outcome, Results};

/// The issue's earlier measurements, for reference (ms, MiB).
fn issue_figure(r: Runtime) -> &'static str {
    match r {
        Runtime::Crabcan => "target: ≤ 1.5× floor",
        Runtime::CrabcanOci(_) => "target (issue 12): below crun and runc",
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

fn lifecycle_of(results: &Results, r: Runtime) -> Option<&Stats> {
    results
        .lifecycle
        .iter()
        .find(|(x, _)| *x == r)
        .and_then(|(_, o)| o.done())
}

fn engine_of(results: &Results, r: EngineRuntime) -> Option<&EngineStats> {
    let engines = results.engines.done()?;
    engines.rows.iter().find(|(x, _)| *x == r).and_then(|(_, o)| o.done())
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

/// One line per start-up target of issue 13: ≤ 1.3× the floor and below bwrap by both
/// harnesses, throughput at a time above bwrap's.
pub fn startup_verdicts(results: &Results) -> Vec<String> {
    let mut out = Vec::new();
    let spawner = |r| stats_of(results, r).map(|s| s.median);
    let hyperfine = |r| {
        results
            .hyperfine
            .done()
            .and_then(|rows| rows.iter().find(|(x, _)| *x == r))
            .map(|(_, s)| s.median)
    };
    for (harness, median) in [
        (
            "spawner, interleaved",
            &spawner as &dyn Fn(Runtime) -> Option<std::time::Duration>,
        ),
        ("hyperfine, rotated rounds", &hyperfine),
    ] {
        let line = match (
            median(Runtime::Crabcan),
            median(Runtime::Unshare),
            median(Runtime::Bwrap),
        ) {
            (Some(c), Some(f), Some(b)) => {
                let ratio = c.as_secs_f64() / f.as_secs_f64().max(1e-9);
                let met = |ok: bool| if ok { "met" } else { "NOT met" };
                format!(
                    "start-to-exit ({harness}) ≤ 1.3× the floor: {} (crabcan {} ms = {ratio:.2}× floor {} ms); below bwrap: {} (bwrap {} ms = {:.2}× floor)",
                    met(ratio <= 1.3),
                    ms(c),
                    ms(f),
                    met(c < b),
                    ms(b),
                    b.as_secs_f64() / f.as_secs_f64().max(1e-9)
                )
            }
            _ => format!("start-to-exit ({harness}) against the floor and bwrap: not measured"),
        };
        out.push(line);
    }
    out.push(
        match (
            per_second(results, Runtime::Crabcan),
            per_second(results, Runtime::Bwrap),
        ) {
            (Some((_, cp)), Some((_, bp))) => {
                let met = if cp > bp { "met" } else { "NOT met" };
                let k = results.options.parallel;
                format!("throughput {k} at a time above bwrap's: {met} (crabcan {cp:.0}/s, bwrap {bp:.0}/s)")
            }
            _ => "throughput above bwrap's: not measured (bwrap missing?)".to_string(),
        },
    );
    out
}

/// One line per target of issue 12: crabcan fastest and smallest of the
/// OCI runtimes, alone and under podman.
pub fn engine_verdicts(results: &Results) -> Vec<String> {
    let mut out = Vec::new();
    for (what, pick) in [
        ("fastest", (|s: &Stats| s.median.as_nanos() as u64) as fn(&Stats) -> u64),
        ("lowest peak RSS", |s: &Stats| s.rss_median_kib),
    ] {
        let mut parts = Vec::new();
        let mut all_met = true;
        let mut measured = false;
        for spec in [Spec::Default, Spec::Full] {
            let Some(c) = lifecycle_of(results, Runtime::CrabcanOci(spec)) else {
                continue;
            };
            let others: Vec<(Runtime, &Stats)> = [Runtime::Crun(spec), Runtime::Runc(spec)]
                .into_iter()
                .filter_map(|r| Some((r, lifecycle_of(results, r)?)))
                .collect();
            if others.is_empty() {
                continue;
            }
            measured = true;
            all_met &= others.iter().all(|(_, o)| pick(c) < pick(o));
            let show = |s: &Stats| {
                if what == "fastest" {
                    format!("{} ms", ms(s.median))
                } else {
                    format!("{} MiB", mib(s.rss_median_kib))
                }
            };
            let rest: Vec<String> = others
                .iter()
                .map(|(r, s)| format!("{} {}", r.label(), show(s)))
                .collect();
            parts.push(format!(
                "{} {}, {}",
                Runtime::CrabcanOci(spec).label(),
                show(c),
                rest.join(", ")
            ));
        }
        out.push(if measured {
            let met = if all_met { "met" } else { "NOT met" };
            format!("create + start + wait + delete, crabcan {what} of the OCI runtimes: {met} ({}; medians)", parts.join("; "))
        } else {
            format!("create + start + wait + delete, crabcan {what} of the OCI runtimes: not measured (crun and runc missing?)")
        });
    }
    let crabcan = engine_of(results, EngineRuntime::Crabcan);
    let others: Vec<(EngineRuntime, &EngineStats)> = [EngineRuntime::Runc, EngineRuntime::Crun]
        .into_iter()
        .filter_map(|r| Some((r, engine_of(results, r)?)))
        .collect();
    match crabcan {
        Some(c) if !others.is_empty() => {
            let fastest = others.iter().all(|(_, o)| c.podman.median < o.podman.median);
            let times: Vec<String> = others
                .iter()
                .map(|(r, o)| format!("{} {} ms", r.name(), ms(o.podman.median)))
                .collect();
            out.push(format!(
                "podman run, crabcan fastest: {} (crabcan {} ms, {}; medians)",
                if fastest { "met" } else { "NOT met" },
                ms(c.podman.median),
                times.join(", ")
            ));
            let smallest = others
                .iter()
                .all(|(_, o)| c.runtime_rss_median_kib < o.runtime_rss_median_kib);
            let sizes: Vec<String> = others
                .iter()
                .map(|(r, o)| format!("{} {} MiB", r.name(), mib(o.runtime_rss_median_kib)))
                .collect();
            out.push(format!(
                "podman run, crabcan's peak RSS lowest: {} (crabcan {} MiB, {}; the runtime's largest call, median)",
                if smallest { "met" } else { "NOT met" },
                mib(c.runtime_rss_median_kib),
                sizes.join(", ")
            ));
        }
        _ => out.push("podman run, crabcan fastest and smallest: not measured (see the podman section)".to_string()),
    }
    out
}

fn markdown(results: &Results) -> String {
    let mut md = String::new();
    header(&mut md, results);
    latency_table(&mut md, results);
    hyperfine_table(&mut md, results);
    throughput_table(&mut md, results);
    lifecycle_table(&mut md, results);
    engines_section(&mut md, results);
    scaling_table(&mut md, results);
    let _ = writeln!(md, "## Targets (issue 6)\n");
    for line in verdicts(results) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\n## Targets (issue 12)\n");
    for line in engine_verdicts(results) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\n## Targets (issue 13)\n");
    for line in startup_verdicts(results) {
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
    let _ = writeln!(md, "\"crabcan OCI\" is crabcan's OCI mode, `crabcan --root SCRATCH/crabcan-root run --bundle B <unique id>` (create + start + wait + delete in one call), on the same \"default spec\" and \"full\" bundles as crun and runc (see the notes).\n");
    let _ = writeln!(md, "The column \"back to back\" repeats the measurement with each runtime's runs one after the other instead of interleaved (same runs and warm-up): the difference is what a runtime pays for not following a run of itself; for crabcan on this host that is mostly its cgroup v1 work (the directories' mkdir and rmdir, the memory cgroup's setup and teardown; compare `--no-cgroup` in \"How crabcan's cost grows\").\n");
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

/// The second harness's figures beside the spawner's, and why they differ.
fn hyperfine_table(md: &mut String, results: &Results) {
    let _ = writeln!(
        md,
        "### The same, timed by hyperfine
"
    );
    let rows = match &results.hyperfine {
        Outcome::Done(rows) => rows,
        other => {
            let _ = writeln!(md, "{}\n", status_text(other).unwrap_or_default());
            return;
        }
    };
    let _ = writeln!(md, "`hyperfine -N --warmup 1 --runs 10` over crabcan, bwrap and the floor, in rounds whose order rotates by one each round (A B C, B C A, C A B, ...), as many runs in all as above. Where the two harnesses differ: hyperfine (a Rust program) spawns and reaps each run itself and reports wall time, and runs a command's runs one after the other within a round, so a runtime mostly follows itself: its figures sit between the spawner's interleaved and back-to-back ones, and a cost paid for following another runtime (crabcan's cgroup v1 work) weighs less. Compare the ratios to the floor, which both harnesses measure alike.\n");
    let _ = writeln!(
        md,
        "| runtime | hyperfine median ms | min ms | × floor | spawner median ms | × floor |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    let floor = rows
        .iter()
        .find(|(r, _)| *r == Runtime::Unshare)
        .map(|(_, s)| s.median.as_secs_f64());
    let spawner_floor = stats_of(results, Runtime::Unshare).map(|s| s.median.as_secs_f64());
    let ratio = |x: f64, base: Option<f64>| base.map_or("–".to_string(), |b| format!("{:.2}", x / b.max(1e-9)));
    for (r, s) in rows {
        let spawner = stats_of(results, *r);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r.label(),
            ms(s.median),
            ms(s.min),
            ratio(s.median.as_secs_f64(), floor),
            spawner.map_or("–".to_string(), |x| ms(x.median)),
            spawner.map_or("–".to_string(), |x| ratio(x.median.as_secs_f64(), spawner_floor)),
        );
    }
    let _ = writeln!(md);
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
    let rounds = match o.throughput_rounds {
        0 | 1 => "in one round".to_string(),
        n => format!("in {n} rounds: each round measures every runtime once, in an order rotated by one from the round before, so a drift of the machine weighs on all of them alike"),
    };
    let _ = writeln!(md, "{} containers back to back, and {} containers with {} at a time ({} threads, each running its share sequentially), {rounds}. A figure is all of a runtime's containers over all of their time; the range is its slowest and its fastest round.\n", o.throughput_total, o.throughput_total, o.parallel, o.parallel);
    let _ = writeln!(
        md,
        "| runtime | sequential containers/s | range | {} at a time containers/s | range |",
        o.parallel
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    let range = |t: &Throughput| match t.round_range() {
        Some((min, max)) => format!("{min:.0}-{max:.0}"),
        None => String::new(),
    };
    for (r, outcome) in &results.throughput {
        match outcome.done() {
            Some((seq, par)) => {
                let _ = writeln!(
                    md,
                    "| {} | {:.0} | {} | {:.0} | {} |",
                    r.label(),
                    seq.per_second(),
                    range(seq),
                    par.per_second(),
                    range(par)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| {} | {} | | | |",
                    r.label(),
                    status_text(outcome).unwrap_or_default()
                );
            }
        }
    }
    let _ = writeln!(md);
}

fn lifecycle_table(md: &mut String, results: &Results) {
    let o = &results.options;
    let _ = writeln!(md, "## What an engine calls: create, start, wait, delete\n");
    let _ = writeln!(md, "The four calls podman (through conmon) and containerd (through its shim) make of an OCI runtime for one container: `create --bundle B --pid-file F ID`, `start ID`, wait for the container's process to end, `delete ID`. {} runs per runtime after {} warm-up runs, interleaved. The C helper plays the engine: it is a child subreaper (`PR_SET_CHILD_SUBREAPER`, as conmon and the shim are), so the process `create` leaves behind becomes its child; it times each call from fork to `wait4` and the wait from `start` returning to the container's process reaped. Peak RSS is the largest `ru_maxrss` of the three runtime processes and of the container's process (the runtime's own code until it execs `/bin/true`: `runc init`, crun's and crabcan's container process). crabcan uses `--root SCRATCH/crabcan-root`, crun and runc their default roots; crun runs in the v1-only namespace (see the notes). Each column is that step's own median, so the steps need not add up to the total.\n", o.runs, o.warmup);
    let _ = writeln!(md, "| runtime | create ms | start ms | wait ms | delete ms | total: median ms | min ms | max ms | × crabcan OCI | peak RSS MiB (median / max) |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (r, outcome) in &results.lifecycle {
        let spec = match r {
            Runtime::CrabcanOci(spec) | Runtime::Crun(spec) | Runtime::Runc(spec) => *spec,
            _ => Spec::Full,
        };
        let base = lifecycle_of(results, Runtime::CrabcanOci(spec)).map(|s| s.median.as_secs_f64());
        match outcome {
            Outcome::Done(s) => {
                let ratio = base.map_or("–".to_string(), |b| {
                    format!("{:.2}", s.median.as_secs_f64() / b.max(1e-9))
                });
                let step = |pick: fn(&super::measure::Steps) -> std::time::Duration| {
                    s.steps.as_ref().map_or("–".to_string(), |steps| ms(pick(steps)))
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {ratio} | {} / {} |",
                    r.label(),
                    step(|x| x.create),
                    step(|x| x.start),
                    step(|x| x.wait),
                    step(|x| x.delete),
                    ms(s.median),
                    ms(s.min),
                    ms(s.max),
                    mib(s.rss_median_kib),
                    mib(s.rss_max_kib)
                );
            }
            other => {
                let _ = writeln!(
                    md,
                    "| {} | {} | | | | | | | | |",
                    r.label(),
                    status_text(other).unwrap_or_default()
                );
            }
        }
    }
    let _ = writeln!(md);
}

fn engines_section(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## Under an engine: `podman run --rm IMAGE /bin/true`\n");
    let engines = match &results.engines {
        Outcome::Done(engines) => engines,
        other => {
            let _ = writeln!(md, "podman: {}\n", status_text(other).unwrap_or_default());
            return;
        }
    };
    let _ = writeln!(md, "`podman --runtime R run --rm --pull never --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 IMAGE /bin/true`, {} runs per runtime after {} warm-up runs, interleaved; timed by the C helper from fork to `podman run` reaped. Each runtime has podman storage of its own in the bench's scratch (`--root`, `--runroot`, `--tmpdir`, `TMPDIR`, `--cgroup-manager cgroupfs`, `--events-backend file`) and an image `podman import`ed from the bench rootfs; a `containers.conf` of the bench's lists all three runtimes in `runtime_supports_json`, so podman passes each `--log-format=json --log F`. crun's podman runs in the v1-only namespace (see the notes). After each run the bench waits, untimed, until no process mentions the podman folders (conmon's `podman container cleanup` outlives `podman run`).\n", engines.runs, engines.warmup);
    let _ = writeln!(md, "The runtime's peak RSS: podman is given a small static wrapper named like the runtime (`xtask/src/bench/rsswrap.c`) that runs the real runtime as its child and logs each call's `ru_maxrss`; a run's figure is its largest call. It is the runtime processes' own (podman's and conmon's are not in it, nor the container's process, which conmon reaps). The wrapper adds one fork and exec of a static binary to every runtime call, for each runtime alike. podman's peak RSS is the podman client's.\n");
    let _ = writeln!(md, "| podman --runtime | median ms | min ms | max ms | × crabcan | runtime's peak RSS MiB (median / max) | podman's peak RSS MiB (median) | runtime calls per run |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|");
    let base = engine_of(results, EngineRuntime::Crabcan).map(|s| s.podman.median.as_secs_f64());
    for (r, outcome) in &engines.rows {
        match outcome {
            Outcome::Done(e) => {
                let s = &e.podman;
                let ratio = base.map_or("–".to_string(), |b| {
                    format!("{:.2}", s.median.as_secs_f64() / b.max(1e-9))
                });
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {ratio} | {} / {} | {} | {} |",
                    r.name(),
                    ms(s.median),
                    ms(s.min),
                    ms(s.max),
                    mib(e.runtime_rss_median_kib),
                    mib(e.runtime_rss_max_kib),
                    mib(s.rss_median_kib),
                    e.calls.join(", ")
                );
            }
            other => {
                let _ = writeln!(
                    md,
                    "| {} | {} | | | | | | |",
                    r.name(),
                    status_text(other).unwrap_or_default()
                );
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
        let _ = writeln!(md, "No leaks: no crabcan cgroups (`*/crabcan/*`, and those of podman's crabcan containers), no new mounts, no leftover processes, no `/tmp/crabcan*` dirs, nothing left in crabcan's OCI `--root`.");
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
            "No crun/runc state dirs or cgroups left for the bench's container ids, nothing of podman's left to remove."
        );
    } else {
        let _ = writeln!(md, "\nLeftovers of crun, runc and podman, removed by the bench:\n");
        for c in &l.cleaned {
            let _ = writeln!(md, "- {c}");
        }
    }
    let _ = writeln!(md);
}

fn notes(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## Notes\n");
    let _ = writeln!(md, "- crabcan: `crabcan --no-tty --mount ROOTFS --hostname xtask-bench-PID -- /bin/true` (the hostname only names the cgroup, for the leak check): user, mount, pid, uts, ipc, net and cgroup namespaces, default seccomp profile, cgroup limits (1G memory, 64 pids, cpu and io weight), capabilities dropped.");
    let _ = writeln!(md, "- crabcan OCI: `crabcan --root SCRATCH/crabcan-root run --bundle B <unique id>` on the same two bundles as crun and runc. One change to `crun spec`'s config, for all three runtimes: the ambient capability set is empty. `crun spec` (and `runc spec`) list three ambient capabilities that are not inheritable, which the kernel refuses to raise (`PR_CAP_AMBIENT_RAISE`: EPERM); crun and runc drop the error silently (their containers run with `CapAmb: 0`), crabcan refuses the config. Emptied, the set is what crun and runc run with anyway, so no runtime's work changes.");
    let _ = writeln!(md, "- crun/runc \"default spec\": `crun spec`'s config (pid, net, ipc, uts, mount namespaces; no user or cgroup namespace, no seccomp, no limits). \"full\": plus user namespace (0→100000, 65536 ids), cgroup namespace, memory 1 GiB and pids 64 limits, and crabcan's default seccomp profile as OCI JSON. Both run `crun run --bundle B <unique id>` (non-detached, so the container is deleted on exit).");
    if let super::hybrid::Layout::Hybrid(unified) = &results.layout {
        let _ = writeln!(md, "- This host has the hybrid cgroup layout, which crun 1.8 refuses (`cgroups in hybrid mode not supported`). crun therefore runs from bench threads that moved into a private mount namespace (`unshare(CLONE_NEWNS)`, `/` made rprivate) where {} is unmounted, so crun sees plain cgroup v1. This is done once per thread in the bench process: crun's times contain no extra processes. runc, crabcan, bwrap and unshare run in the host's namespace.", unified.join(", "));
    }
    let _ = writeln!(md, "- bwrap: `bwrap --unshare-all --bind ROOTFS / --proc /proc --dev /dev /bin/true` (as root; `--unshare-all` includes the user namespace). No cgroup limits, no seccomp.");
    let _ = writeln!(md, "- floor: `unshare --user --map-root-user --mount --pid --fork --uts --ipc --net --cgroup chroot ROOTFS /bin/true`.");
    let _ = writeln!(md, "- `ru_maxrss` from `wait4` is the peak of the runtime process and of descendants it reaped (the container's `/bin/true` is a static busybox, far smaller than any runtime). Linux carries the high-water RSS across fork and exec, so a runtime forked straight from the (Rust, ~7 MiB) bench would report the bench's RSS; hence the small static C helper (`xtask/src/bench/spawner.c`, ~0.1 MiB) that forks, execs and reaps each runtime.");
    let _ = writeln!(md, "- cgroup v2, where crabcan clones the container straight into its cgroup (`clone3(CLONE_INTO_CGROUP)`), is measured in the test VM by `cargo xtask bench --vm`: [docs/bench-vm.md](docs/bench-vm.md). That VM runs under TCG emulation on this host, so only its ratios to the floor mean anything, and only roughly.");
    let _ = writeln!(md, "- The crabcan measured is what `cargo build --release` (and `cargo install --path crabcan-cli`) gives: a static PIE with libseccomp linked in (crabcan-cli's and crabcan-seccomp's build scripts), so no dynamic loader runs at start (callgrind: about 359 k user-space instructions for `crabcan --version` against 712 k for the dynamic build with libseccomp.so; `strace -f -c`: 48 fewer syscalls per container). The cost: the binary holds glibc and libseccomp (about 1.1 MiB), building needs the static archives (libc6-dev's libc.a, libseccomp-dev's libseccomp.a; without them the build warns and links dynamically), glibc is not updated with the host's (rebuild for glibc fixes), and NSS and dlopen are unavailable (crabcan uses neither). `CRABCAN_LINK=dynamic` gives the dynamic build. With glibc 2.36 or later its relative relocations are packed (RELR: a bitmap of a few KiB instead of a table of hundreds paged in at each start; about 0.7 MiB less peak RSS). The release profile is opt-level `s`, fat LTO, one codegen unit: crabcan's time is in syscalls, so smaller code starts faster (fewer pages faulted in) and keeps the peak RSS down (a /bin/true container 3.9 against 3.1 MiB with opt-level 3 and thin LTO); the binary is 3.7 MiB, and a clean release build takes about 80 s instead of 40. Measured and not taken: a position-dependent static binary (`-static -no-pie`) started a /bin/true container about 0.5 ms sooner on this host (A/B in rotated rounds, 400 each: 5.11 against 5.59 ms), as applying the relocations writes the ~55 pages of `.data.rel.ro` and the GOT at every start, each a copy-on-write fault. crabcan stays a PIE, so the code that runs as root keeps its address-space randomization (runc's static build is a static PIE too). It starts without Rust's runtime start (`#![no_main]`, `crabcan-cli/src/process_start.rs`): on glibc that start reads `/proc/self/maps` to place the main thread's stack guard, about 0.1 ms per container (A/B, 200 rounds: 4.19 against 4.36 ms); crabcan makes sure of stdio descriptors 0-2 and ignores SIGPIPE itself.");
    let _ = writeln!(md, "- What every start pays on this VM before any runtime work: glibc's start-up asks the CPU for its cache sizes with `cpuid`, which the hypervisor intercepts (7.7 µs per instruction here, dozens of them): an empty static glibc program takes 0.80 ms from fork to `wait4`, one without a libc 0.25 ms (measured by hand on 2026-12-02 with the spawner, 200 runs each). So each glibc program a runtime execs costs it about 0.55 ms: the floor runs three (`unshare`, `chroot`, `/bin/true`, a glibc busybox), bwrap and crabcan two each (themselves and `/bin/true`), crun's and runc's OCI runs one (`crun`) or two (`runc`, `runc init`) besides. On hardware without a hypervisor `cpuid` costs about a hundred nanoseconds, and the floor's lead shrinks accordingly.");
    let _ = writeln!(md, "- What crabcan pays that bwrap does not, on this hybrid host (A/B of builds with one step left out, 200-250 rounds each, 2026-12-02): the cgroup about 0.45-0.5 ms in all, of which its read-only view in the container (a tmpfs and four cgroup v1 mounts, mounted and later torn down) ~0.1 ms, the container process moving itself into four hierarchies ~0.065 ms, and the removal after the command ended (oom read, four `rmdir`s, the lease's `unlink` on this host's disk-backed `/run`) ~0.1 ms; creating the cgroup (~0.25 ms) overlaps the container's own setup, and so does the read of the host's mount table since the clone no longer waits for it (one `statfs` tells a v1 host first; 3.100 -> 3.073 ms, 500 rounds). Without its cgroup (`--no-cgroup`) crabcan is faster than the floor and ~0.25 ms faster than bwrap, and since its start no longer relocates regex's Unicode tables (below), crabcan is below bwrap here with its four v1 hierarchies too, by about the noise between bench runs (on cgroup v2 it is one directory that the child is cloned into; not measured on hardware here, see the VM section).");
    let _ = writeln!(md, "- Where a start goes, crabcan against bwrap (2026-12-03; `raw_syscalls` and `sched_process_exec` tracepoints, 50 runs of each in alternation, medians; tracing slows crabcan's more numerous syscalls more): from the runtime's exec to its clone 0.77 against 0.79 ms, from the clone to `/bin/true`'s exec 1.41 against 1.56 ms, `/bin/true` itself 0.5 ms, from its exit to the runtime's exit 0.27 against 0.135 ms. The last is where crabcan loses: the container's last process tears down its mount, network and pid namespaces before crabcan hears of its exit (bwrap's init inside holds them while it tells the outer bwrap through a pipe), then crabcan removes the cgroup (oom read, four `rmdir`s, the lease, ~0.1 ms) and its own exit unmaps it (~0.1 ms).");
    let _ = writeln!(md, "- The container's first process sets up on another CPU than crabcan's (`crabcan-core/src/cpu_placement.rs`): Linux started the clone on its parent's CPU in 71% of runs here, where it waited ~0.3 ms for the parent (id maps, cgroup) to block. The parent narrows the child's affinity to its own CPUs but the current one (one `sched_setaffinity`, ~40 µs, most of it waking the idle vCPU), the child takes crabcan's affinity back once the parent's Go arrives. A/B, 500 interleaved rounds: 3.135 -> 3.088 ms (bwrap 3.101 ms in the same rounds); 8 at a time it changes nothing measurable (495 against 504 containers/s, within the noise), as both CPUs are busy anyway.");
    let _ = writeln!(md, "- After the VM has idled (50 ms before each run, 150 rounds, 2026-12-03) every runtime starts about 1 ms slower than back to back, as both vCPUs wake from idle; there crabcan without the CPU placement took 4.23 ms, with it 4.16 ms, bwrap 4.15 ms (fresh copies of each crabcan build, alternating). Without the pause: 3.21, 3.19 and 3.19 ms.");
    let _ = writeln!(md, "- A direct run on cgroup v1 joins blkio only for an I/O weight that a device would apply (2026-12-03): only BFQ applies weights there (CFQ left Linux in 5.0), and the blkio root's `blkio.bfq.io_serviced` lists each device whose queue uses it (here none, so `Total 0`; one 16-byte read tells). crabcan's default I/O weight is then left out, in `--explain` too; `--io-weight` is always written, OCI mode keeps a blkio cgroup to count a container's I/O, and cgroup v2 is unchanged. One hierarchy fewer to make, join, mount in the view and remove: A/B of fresh copies, 300 rounds rotated with bwrap and the floor, 3.248 -> 3.203 ms (bwrap 3.331); 8 at a time 440-461 -> 463-475 containers/s in a shell loop of 400.");
    let _ = writeln!(md, "- Fewer calls in the container's setup (2026-12-03): a mount target that exists is opened with one `openat2` instead of one per path component, a missing one is made below its parent's descriptor, and a created mount-point file's own descriptor is used instead of resolving it again (openat2 74 -> 52, close 103 -> 81); the bounding set is dropped from without a `PR_CAPBSET_READ` of each of the 41 capabilities first (prctl 77 -> 36). 538 -> 449 syscalls per /bin/true container (strace -f -c); the openat2 change alone: 3.477 -> 3.457 ms, paired against bwrap -87 -> -145 µs, 8 at a time 406-430 -> 423-452/s.");
    let _ = writeln!(md, "- What is made directly in a tmpfs the setup has just mounted (the mount points of the /dev nodes, `/dev/pts`, `/dev/shm`, the `/dev/fd` symlinks) is made below that tmpfs's root, opened once, instead of resolving `dev/...` inside the rootfs again for each (2026-12-03; `crabcan-core/src/fresh_tmpfs.rs`): openat2 52 -> 30, 449 -> 420 syscalls per /bin/true container. A/B of fresh copies, 2 x 1000 rounds alternating: -30 and -4 µs. A system call here costs well under a microsecond of its own; what the figures of these notes move with is the kernel work some calls do (namespaces, superblocks, cgroups) and page faults, not the number of calls.");
    let _ = writeln!(md, "- Throughput 8 at a time is bound by CPU time: the two vCPUs are busy about 4.3-4.5 ms per crabcan container against 4.0-4.3 ms per bwrap one (from `/proc/stat` over 800 containers, 8 shell workers, 2026-12-03). What crabcan's cgroup costs there, in alternating rounds of 800 containers (6 rounds; means): default 446/s, without the memory hierarchy (`--memory max`) 462/s, without pids (`--pids max`) 458/s, without any cgroup (`--no-cgroup`) 546/s, bwrap 467/s in the same rounds. So each v1 hierarchy costs about 3% (mkdir, limit writes, the self-join, rmdir, and the kworkers' css offline and RCU frees: a Python loop of mkdir, join, leave and rmdir takes 85 µs of CPU for memory, 55 for cpu,cpuacct, 40 for pids), and having a cgroup at all about 12% more: the host's mount table read, the lease on the disk-backed `/run`, the probes, the container's read-only view (~2.7% on its own, measured with a build that leaves it out), the cgroup namespace and the removal. The cgroup alone (0.5 ms of CPU per container) is more than bwrap's whole lead; without it crabcan is ~17% above bwrap. With its default limits crabcan stays 3-5% below bwrap 8 at a time on this host, and above it one after the other.");
    let _ = writeln!(md, "- Page faults are dear on this VM (2026-12-03): crabcan takes ~146 per /bin/true container before the exec (107 in crabcan, 39 in the container's process after the clone), and `perf` samples put ~0.24 ms of CPU in them (~1.6 µs each; a first touch of fresh anonymous memory costs ~5 µs in a C loop, the hypervisor backing the page). Of crabcan's own: 42 are code (fault-around maps 64 KiB each; the cloned child faults its code in again, as fork copies no page-table entries of unwritten file mappings), 22 the copy-on-write of `.data.rel.ro` that the static-pie start relocates, 38 heap, 19 stack. A static non-PIE build would spare the 22 relocation copies and the relocation itself (~60 µs) but gives up address-space randomisation of crabcan's code, so it is not taken; `opt-level = \"z\"` made the binary 3.73 -> 3.60 MB but took 193 faults against 185.");
    let _ = writeln!(md, "- Tried on 2026-12-03 and not kept, each measured below the noise: opening a cgroup's files below a descriptor of its directory instead of by full path (5 of 120 µs in a Python replay of crabcan's cgroup calls: kernfs path walks are cached and cheap), and bind mounts of the container's cgroup directories instead of cgroup v1 mounts for its view (35 µs against 34-47 µs per view made and torn down; the cgroup mounts share the hierarchies' superblocks already).");
    let _ = writeln!(md, "- How a binary's pages sit in the page cache moves its start by up to 0.1 ms here, which is more than most of the changes these notes measure (2026-12-03): the same crabcan bytes started 0.06 ms sooner as a `cp` copy than as the linker wrote them (230 against 241 page faults per container), and 0.1-0.2 ms later once dropped from the cache and read back by the first exec (251 faults), the state bwrap's and every installed binary is in after a reboot. The A/B figures in these notes therefore compare copies made the same way at the same moment; a figure from another bench run may differ by that much.");
    let _ = writeln!(md, "- crabcan's own user-space work before its clone, counted by callgrind (2026-12-03, parent process, one container): 841 k instructions, down from 994 k (the id lease read /etc/passwd once per id kind and built a Vec per line: 265 k -> 133 k; the cgroup mount table: 76 k -> 55 k). What is left: clap's parse 200 k, the mount and cgroup plans the rest. With the generated 300-rule JSON profile of the table above: 6.92 M -> 4.56 M instructions (an action's error context was formatted for every rule, and validation hashed each rule's name and conditions four times; A/B of fresh copies, 300 rounds, at 4.75 M: 4.453 -> 4.344 ms), of which serde_json's parse is 1.9 M, validation twice (on import and again in `compile`) 0.65 M. crabcan's default profile as OCI JSON, what the \"full\" bundles and engines pass (61 entries, 421 rules): 3.22 M -> 2.44 M, now that a syscall with a single rule is validated alone and rules are grouped by a sort on their names' first bytes (validation, twice: 0.41 M). An OCI `run` of `crabcan spec`'s config: 5.81 M -> 2.00 M instructions, as the check for unsupported config fields formatted two strings per supported field at every node of the config (A/B, 300 rounds: 4.601 -> 4.391 ms); engines' create calls gain the same.");
    let _ = writeln!(md, "- oci-spec validates `process.execCPUAffinity` with one pattern and for that depends on the full `regex` crate, whose Unicode tables put ~6,800 pointers into the binary's relocated data; the static-pie loader rewrites them at every start, direct mode included, with a copy-on-write fault (~2 µs here) on each of their pages. The workspace builds that pattern with regex-lite instead (`patches/regex`, a stand-in named `regex` through `[patch.crates-io]`): relocated words 11,563 -> 4,761, on 59 -> 25 pages; page faults per /bin/true container 255 -> 190; the binary 4.9 -> 3.7 MiB; start-to-exit 3.714 -> 3.454 ms against bwrap's 3.556 in the same rounds (fresh copies, rotated with bwrap and the floor, 250 rounds, 2026-12-03). The one difference: `\\d` in that pattern matches ASCII digits only, and crabcan refuses `execCPUAffinity` as unsupported before oci-spec parses it anyway.");
    let _ = writeln!(md, "- Measured on this VM and not taken (2026-12-02): a musl build. An empty static Rust program starts in 0.15 ms with musl against 0.63 ms with glibc (spawner, 200 runs each; glibc's `cpuid` probing above), which would put crabcan below bwrap here; but `cargo build --release` would then put the binary in `target/x86_64-unknown-linux-musl/release/` instead of `target/release/`, building needs the musl target from rustup, and Debian has no libseccomp for musl (its glibc-built `libseccomp.a` links only with a shim for glibc's `__fprintf_chk`). Creating the network namespace in a thread of the container's process while the parent writes the id maps: +0.35 ms (the thread competes with the parent and child for two CPUs). Holding the container's namespaces open in the parent so that their teardown leaves the container's exit: +0.09 ms (the parent pays it instead). Waking a task on the other, idle vCPU costs 45 µs here (median; 1.4 µs on the same CPU), which is why bwrap started on one CPU (`taskset -c 0`) is ~0.2 ms faster than bwrap free to use both, while crabcan is no faster on one CPU: its parent's cgroup work overlapping the child's setup pays for the wake-ups.");
    let _ = writeln!(md, "- Between bench runs of one session on this VM (2026-12-03, seven runs within an hour) the floor's interleaved median went from 2.98 to 3.47 ms with nothing of it changed, and every runtime moved with it: compare a runtime with the floor and with bwrap within one run, not across runs.");
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
        let (solid, light) = if r.is_crabcan() {
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
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>9}",
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
            other => println!("{:<30} {}", r.label(), status_text(other).unwrap_or_default()),
        }
    }
    for (r, outcome) in &results.lifecycle {
        match outcome {
            Outcome::Done(s) => println!(
                "{:<30} {:>9} {:>9} {:>9} {:>9} {:>9}",
                format!("{} *", r.label()),
                ms(s.median),
                ms(s.min),
                ms(s.max),
                "",
                mib(s.rss_median_kib)
            ),
            other => println!(
                "{:<30} {}",
                format!("{} *", r.label()),
                status_text(other).unwrap_or_default()
            ),
        }
    }
    println!("(* create + start + wait + delete)");
    match &results.engines {
        Outcome::Done(engines) => {
            for (r, outcome) in &engines.rows {
                match outcome {
                    Outcome::Done(e) => println!(
                        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>9}",
                        r.label(),
                        ms(e.podman.median),
                        ms(e.podman.min),
                        ms(e.podman.max),
                        "",
                        mib(e.runtime_rss_median_kib)
                    ),
                    other => println!("{:<30} {}", r.label(), status_text(other).unwrap_or_default()),
                }
            }
        }
        other => println!("podman: {}", status_text(other).unwrap_or_default()),
    }
    for line in verdicts(results)
        .into_iter()
        .chain(engine_verdicts(results))
        .chain(startup_verdicts(results))
    {
        println!("{line}");
    }
    for leak in &results.leaks.leaks {
        println!("LEAK: {leak}");
    }
    for note in results.leaks.foreign.iter().chain(&results.leaks.cleaned) {
        println!("note: {note}");
    }
}
