//! Where crabcan's time goes: `strace -c -f` over one run (top syscalls by
//! system time), and a timeline of one `crabcan --debug` run built by
//! timestamping each stderr line as it arrives (crabcan's log has no
//! timestamps of its own; `eprintln!` is unbuffered, so arrival ≈ write).

use std::collections::HashMap;
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

/// One slow syscall from `strace -f -T`.
#[derive(Debug, Clone)]
pub struct SlowCall {
    pub seconds: f64,
    /// The call as strace printed it, shortened.
    pub call: String,
}

/// What strace says about crabcan runs.
#[derive(Debug, Clone)]
pub struct StraceFindings {
    pub top: Vec<SyscallRow>,
    pub slowest: Vec<SlowCall>,
}

/// Calls that block waiting for crabcan's other process, not doing work.
const WAITS: &[&str] = &[
    "wait4",
    "waitid",
    "recvmsg",
    "recvfrom",
    "read",
    "poll",
    "ppoll",
    "epoll_wait",
    "epoll_pwait",
    "futex",
    "nanosleep",
    "clock_nanosleep",
    "select",
    "pselect6",
];
/// Slowest calls listed.
const SLOWEST: usize = 6;
/// Pause before the `-T` run, as between interleaved runs.
const PAUSE: Duration = Duration::from_millis(50);

/// A log line of `crabcan --debug`.
#[derive(Debug, Clone)]
pub struct Event {
    /// When the bench read it, after the spawn.
    pub at: Duration,
    /// crabcan's own "[ N ms pid P]" stamp, if it has one.
    pub own_ms: Option<f64>,
    /// "crabcan" or "container" (pid 1 in its namespace).
    pub who: &'static str,
    pub what: String,
}

/// `strace -c -f` (top syscalls by system time) and `strace -f -T` (the
/// slowest single calls that are not waits) over crabcan runs.
pub fn strace(env: &Env, scratch: &Path) -> Result<StraceFindings, String> {
    let top = parse_strace_summary(&strace_text(env, scratch, &["-c", "-f"])?);
    std::thread::sleep(PAUSE);
    let slowest = parse_slowest(&strace_text(env, scratch, &["-f", "-T", "-y"])?);
    Ok(StraceFindings { top, slowest })
}

/// The slowest calls in `strace -f -T` output, waits left out. A call
/// split by another process ("<unfinished ...>" / "<... resumed>") is
/// shown with its start, which has the arguments.
pub fn parse_slowest(text: &str) -> Vec<SlowCall> {
    let mut pending: HashMap<&str, &str> = HashMap::new();
    let mut calls = Vec::new();
    for line in text.lines() {
        let (pid, body) = split_pid(line.trim_end());
        if let Some(begun) = body.strip_suffix("<unfinished ...>") {
            pending.insert(pid, begun.trim_end());
            continue;
        }
        let Some((name, seconds)) = name_and_seconds(body) else {
            continue;
        };
        let begun = body.starts_with("<... ").then(|| pending.remove(pid)).flatten();
        if WAITS.contains(&name) {
            continue;
        }
        let shown = match begun {
            Some(begun) => format!("{begun} ...{}", body.split_once("resumed>").map_or("", |(_, r)| r)),
            None => body.to_string(),
        };
        let shown = shown
            .rsplit_once(" <")
            .map_or(shown.as_str(), |(call, _)| call)
            .to_string();
        let shown = shown.split_whitespace().collect::<Vec<_>>().join(" ");
        let call: String = shown.chars().take(140).collect();
        calls.push(SlowCall {
            seconds,
            call: call.replace('|', "\\|"),
        });
    }
    calls.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    calls.truncate(SLOWEST);
    calls
}

/// ("1234", rest) for a line that starts with a pid.
fn split_pid(line: &str) -> (&str, &str) {
    match line.split_once(' ') {
        Some((pid, rest)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => (pid, rest.trim_start()),
        _ => ("", line),
    }
}

/// The syscall's name and the seconds strace measured (`<0.000123>`).
fn name_and_seconds(body: &str) -> Option<(&str, f64)> {
    let (_, secs) = body.strip_suffix('>')?.rsplit_once('<')?;
    let seconds: f64 = secs.parse().ok()?;
    let name = match body.strip_prefix("<... ") {
        Some(resumed) => resumed.split(' ').next()?,
        None => body.split('(').next()?,
    };
    Some((name, seconds))
}

/// Runs crabcan under `strace FLAGS -o FILE` and returns FILE's text.
fn strace_text(env: &Env, scratch: &Path, flags: &[&str]) -> Result<String, String> {
    let out = scratch.join("strace.txt");
    let mut cmd = Command::new("strace");
    cmd.args(flags).arg("-o").arg(&out);
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
    std::fs::read_to_string(&out).map_err(|e| format!("reading {}: {e}", out.display()))
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

/// The timeline of the median of [`TIMELINE_RUNS`] `crabcan --debug` runs,
/// each started after a pause as between interleaved runs.
pub fn debug_timeline(env: &Env) -> Result<Vec<Event>, String> {
    let mut runs = Vec::new();
    for _ in 0..TIMELINE_RUNS {
        std::thread::sleep(PAUSE);
        runs.push(one_timeline(env)?);
    }
    runs.sort_by_key(|events| events.last().map(|e| e.at).unwrap_or_default());
    Ok(runs.swap_remove(runs.len() / 2))
}

fn one_timeline(env: &Env) -> Result<Vec<Event>, String> {
    let mut cmd = crabcan(env, &[std::ffi::OsString::from("--debug")]);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", display(&cmd)))?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let mut events = Vec::new();
    let mut rules = 0usize;
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let mut event = parse_event(&line, start.elapsed());
        if event.what.starts_with("seccomp rule:") {
            rules += 1;
            if rules > 1 {
                continue;
            }
            event.what = "first seccomp rule logged".to_string();
        }
        events.push(event);
    }
    let status = child.wait().map_err(|e| format!("waiting for crabcan: {e}"))?;
    let at = start.elapsed();
    if !status.success() {
        return Err(format!("`{}` failed ({status})", display(&cmd)));
    }
    events.push(Event {
        at,
        own_ms: None,
        who: "bench",
        what: "crabcan reaped".to_string(),
    });
    Ok(events)
}

/// Splits "crabcan: debug: [   2.740 ms pid 1] text" (the stamp is
/// optional: older crabcans have none).
pub fn parse_event(line: &str, at: Duration) -> Event {
    let text = line.trim_start_matches("crabcan: debug: ");
    let stamped = text.strip_prefix('[').and_then(|rest| rest.split_once(']'));
    let (own_ms, who, what) = match stamped {
        Some((stamp, what)) => {
            let mut words = stamp.split_whitespace();
            let own_ms = words.next().and_then(|n| n.parse::<f64>().ok());
            let pid = words.nth(2);
            let who = if pid == Some("1") { "container" } else { "crabcan" };
            (own_ms, who, what.trim())
        }
        None => (None, "crabcan", text),
    };
    Event {
        at,
        own_ms,
        who,
        what: shorten(what),
    }
}

/// The log line without long lists (cgroup paths, command lines).
fn shorten(text: &str) -> String {
    let cut = text.find(" [").or_else(|| text.find(" (\"")).unwrap_or(text.len());
    let short: String = text[..cut].chars().take(90).collect();
    short.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_summary_is_parsed_biggest_first() {
        let text = "% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 30.00    0.000300          10        30           mmap
 60.00    0.000600         300         2         1 wait4
------ ----------- ----------- --------- --------- ----------------
100.00    0.001000                    32         1 total
";
        let rows = parse_strace_summary(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "wait4");
        assert_eq!(rows[0].calls, "2");
        assert_eq!(rows[1].name, "mmap");
    }

    #[test]
    fn stamped_and_plain_debug_lines_are_parsed() {
        let e = parse_event("crabcan: debug: [   2.740 ms pid 1] filesystem ready", Duration::ZERO);
        assert_eq!(
            (e.own_ms, e.who, e.what.as_str()),
            (Some(2.74), "container", "filesystem ready")
        );
        let e = parse_event("crabcan: debug: created cgroup [\"/a\"] (Hybrid)", Duration::ZERO);
        assert_eq!((e.own_ms, e.who, e.what.as_str()), (None, "crabcan", "created cgroup"));
    }

    #[test]
    fn resumed_calls_show_their_start() {
        let text = "7 write(4</x/cgroup.procs>, \"8\", 1 <unfinished ...>
8 mkdir(\"/y\", 0777) = 0 <0.000100>
7 <... write resumed>) = 1 <0.008000>
";
        let slow = parse_slowest(text);
        assert!(slow[0].call.contains("cgroup.procs"), "{:?}", slow[0]);
        assert!((slow[0].seconds - 0.008).abs() < 1e-9);
    }

    #[test]
    fn slowest_calls_skip_waits() {
        let text = "12 write(4, \"28422\", 5) = 5 <0.010371>
12 <... recvmsg resumed>{msg_name=NULL}, 0) = 1 <0.020000>
13 mkdir(\"/x\", 0777) = 0 <0.000100>
garbage <x>
";
        let slow = parse_slowest(text);
        assert_eq!(slow.len(), 2);
        assert!(slow[0].call.starts_with("write(4"));
    }
}
