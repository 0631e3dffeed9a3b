//! Where crabcan's time goes: `strace -c -f` over one run (top syscalls by
//! system time), and a timeline of one `crabcan --debug` run built by
//! timestamping each stderr line as it arrives (crabcan's log has no
//! timestamps of its own; `eprintln!` is unbuffered, so arrival ≈ write).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::runtimes::{crabcan, Env};
use crate::util::process::display;

/// Debug runs; the one with the median total is reported.
const TIMELINE_RUNS: usize = 5;
/// Syscalls listed from strace's summary.
const TOP_SYSCALLS: usize = 10;

/// One row of `strace -c`.
#[derive(Debug, Clone)]
pub struct SyscallRow {
    pub name: String,
    pub percent: String,
    pub seconds: String,
    pub calls: String,
}

/// A log line and when it arrived after the spawn.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Duration,
    pub what: String,
}

/// strace's top syscalls for one crabcan run, by system time.
pub fn strace_top(env: &Env, scratch: &Path) -> Result<Vec<SyscallRow>, String> {
    let out = scratch.join("strace.txt");
    let mut cmd = Command::new("strace");
    cmd.args(["-c", "-f", "-o"]).arg(&out);
    let inner = crabcan(env, &[]);
    cmd.arg(inner.get_program()).args(inner.get_args());
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", display(&cmd)))?;
    if !status.success() {
        return Err(format!("`{}` failed ({status})", display(&cmd)));
    }
    let text =
        std::fs::read_to_string(&out).map_err(|e| format!("reading {}: {e}", out.display()))?;
    Ok(parse_strace_summary(&text))
}

/// The rows of a `strace -c` table, biggest first, without "total".
pub fn parse_strace_summary(text: &str) -> Vec<SyscallRow> {
    let mut rows: Vec<SyscallRow> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 5 || fields[0].parse::<f64>().is_err() {
                return None;
            }
            let name = (*fields.last()?).to_string();
            (name != "total").then(|| SyscallRow {
                name,
                percent: fields[0].to_string(),
                seconds: fields[1].to_string(),
                calls: fields[3].to_string(),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        let key = |r: &SyscallRow| r.seconds.parse::<f64>().unwrap_or(0.0);
        key(b).total_cmp(&key(a))
    });
    rows.truncate(TOP_SYSCALLS);
    rows
}

/// The timeline of the median of [`TIMELINE_RUNS`] `crabcan --debug` runs.
pub fn debug_timeline(env: &Env) -> Result<Vec<Event>, String> {
    let mut runs = Vec::new();
    for _ in 0..TIMELINE_RUNS {
        runs.push(one_timeline(env)?);
    }
    runs.sort_by_key(|events| events.last().map(|e| e.at).unwrap_or_default());
    Ok(runs.swap_remove(runs.len() / 2))
}

fn one_timeline(env: &Env) -> Result<Vec<Event>, String> {
    let mut cmd = crabcan(env, &[std::ffi::OsString::from("--debug")]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", display(&cmd)))?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let mut events = Vec::new();
    let mut rules = 0usize;
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let at = start.elapsed();
        let text = line.trim_start_matches("crabcan: debug: ").to_string();
        if text.starts_with("seccomp rule:") {
            rules += 1;
            if rules == 1 {
                events.push(Event {
                    at,
                    what: "first log line (process up, arguments parsed)".to_string(),
                });
            }
            continue;
        }
        events.push(Event {
            at,
            what: shorten(&text),
        });
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for crabcan: {e}"))?;
    let at = start.elapsed();
    if !status.success() {
        return Err(format!("`{}` failed ({status})", display(&cmd)));
    }
    events.push(Event {
        at,
        what: "crabcan exited (reaped)".to_string(),
    });
    Ok(events)
}

/// The log line without long lists (cgroup paths, command lines).
fn shorten(text: &str) -> String {
    let cut = text
        .find(" [")
        .or_else(|| text.find(" (\""))
        .unwrap_or(text.len());
    let short: String = text[..cut].chars().take(90).collect();
    short.replace('|', "\\|")
}
