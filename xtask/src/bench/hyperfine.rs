//! The second harness: start-to-exit timed by hyperfine (`-N`, no shell), for the runtimes it
//! can start from the host's namespaces (crabcan, bwrap, the unshare floor; crun needs the
//! bench's v1-only namespace thread, runc is slow enough that a second figure adds nothing).
//! Interleaved in rotated rounds: each round runs every command for a few runs, the order
//! shifted by one each round, so no command always follows the same one.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::measure::{Sample, Stats};
use super::runtimes::{Env, Runtime};
use crate::util::process::run_checked;

/// The runtimes timed by hyperfine too.
pub const TIMED: [Runtime; 3] = [Runtime::Crabcan, Runtime::Bwrap, Runtime::Unshare];

/// Runs `rounds` rounds of `runs_per_round` runs (one warm-up each) per runtime of
/// [`TIMED`] that is `available`; each runtime's stats over all its runs.
pub fn measure(
    env: &Env,
    available: &[&str],
    scratch: &Path,
    rounds: usize,
    runs_per_round: usize,
) -> Result<Vec<(Runtime, Stats)>, String> {
    let present: Vec<Runtime> = TIMED.into_iter().filter(|r| available.contains(&r.program())).collect();
    let commands: Vec<String> = present.iter().map(|r| command_line(&r.command(env))).collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); present.len()];
    let json = scratch.join("hyperfine.json");
    for round in 0..rounds {
        let order: Vec<usize> = (0..present.len()).map(|i| (i + round) % present.len()).collect();
        let mut cmd = Command::new("hyperfine");
        cmd.args(["-N", "--style", "none", "--warmup", "1", "--runs"])
            .arg(runs_per_round.to_string())
            .arg("--export-json")
            .arg(&json);
        cmd.args(order.iter().map(|&i| &commands[i]));
        run_checked(&mut cmd)?;
        let text = std::fs::read_to_string(&json).map_err(|e| format!("reading {}: {e}", json.display()))?;
        for (slot, round_times) in order.iter().zip(parse_times(&text)?) {
            times[*slot].extend(round_times);
        }
    }
    present
        .into_iter()
        .zip(times)
        .map(|(r, t)| {
            let samples: Vec<Sample> = t
                .into_iter()
                .map(|elapsed| Sample {
                    elapsed,
                    maxrss_kib: 0,
                    steps: None,
                })
                .collect();
            Stats::of(&samples)
                .map(|s| (r, s))
                .ok_or_else(|| format!("hyperfine reported no runs for {}", r.label()))
        })
        .collect()
}

/// The command as one line for hyperfine `-N`, which splits it on blanks (quotes allowed).
fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| {
            let arg = arg.to_string_lossy();
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                format!("'{}'", arg.replace('\'', "'\\''"))
            } else {
                arg.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each result's `times` (seconds), in the order of the command line.
fn parse_times(json: &str) -> Result<Vec<Vec<Duration>>, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("hyperfine's JSON: {e}"))?;
    let results = value["results"].as_array().ok_or("hyperfine's JSON has no results")?;
    results
        .iter()
        .map(|r| {
            let times = r["times"].as_array().ok_or("a hyperfine result has no times")?;
            Ok(times
                .iter()
                .filter_map(|t| t.as_f64())
                .map(Duration::from_secs_f64)
                .collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_per_command() {
        let json = r#"{"results":[{"command":"a","times":[0.004,0.005]},{"command":"b","times":[0.01]}]}"#;
        let times = parse_times(json).unwrap();
        assert_eq!(times.len(), 2);
        assert_eq!(times[0], vec![Duration::from_millis(4), Duration::from_millis(5)]);
        assert_eq!(times[1], vec![Duration::from_millis(10)]);
        assert!(parse_times("{}").is_err());
    }

    #[test]
    fn command_lines_quote_blanks() {
        let mut cmd = Command::new("/bin/crabcan");
        cmd.args(["--mount", "/a b", "--", "/bin/true"]);
        assert_eq!(command_line(&cmd), "/bin/crabcan --mount '/a b' -- /bin/true");
    }
}
