//! The measuring harness for the start-to-exit runs (and, with
//! `--lifecycle`, for create/start/wait/delete): `spawner.c`, compiled
//! with the system C compiler (`cc`, which Rust's linking needs anyway)
//! into the scratch dir, statically if possible. It forks and execs the
//! runtime, `wait4`s for it and prints the elapsed time and `ru_maxrss`.
//!
//! Why not fork from the bench itself: Linux keeps the high-water RSS
//! across fork and exec (the forked child starts with the parent's
//! resident pages, and exec records the old mm's peak), so every runtime
//! spawned by the Rust bench reported at least the bench's own ~7 MiB. The
//! static helper is ~0.1 MiB, so `ru_maxrss` is the runtime's own peak.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::process::output_checked;

const SOURCE: &str = include_str!("spawner.c");

/// Builds the helper in `dir`; static if the C library allows.
pub fn build(dir: &Path) -> Result<PathBuf, String> {
    compile_c(dir, "spawner", SOURCE)
        .map_err(|e| format!("building the measuring helper (needs a C compiler, apt-get install gcc): {e}"))
}

/// Compiles `source` into `dir/name` with `cc -O2`, statically if the C
/// library allows (a static binary has no loader to map: its RSS is tiny).
pub fn compile_c(dir: &Path, name: &str, source: &str) -> Result<PathBuf, String> {
    let source_path = dir.join(format!("{name}.c"));
    let binary = dir.join(name);
    std::fs::write(&source_path, source).map_err(|e| format!("writing {}: {e}", source_path.display()))?;
    let compile = |static_link: bool| {
        let mut cmd = Command::new("cc");
        cmd.args(["-O2", "-o"]).arg(&binary).arg(&source_path);
        if static_link {
            cmd.arg("-static");
        }
        output_checked(&mut cmd)
    };
    compile(true).or_else(|_| compile(false))?;
    Ok(binary)
}

/// The helper's report: elapsed ns, ru_maxrss KiB, wait status.
pub fn parse_report(text: &str) -> Option<(u64, u64, i32)> {
    let mut fields = text.split_whitespace();
    let ns = fields.next()?.parse().ok()?;
    let rss = fields.next()?.parse().ok()?;
    let status = fields.next()?.parse().ok()?;
    Some((ns, rss, status))
}

/// The four step times (ns) that follow the report of `--lifecycle`.
pub fn parse_steps(text: &str) -> Option<[u64; 4]> {
    let fields: Vec<u64> = text
        .split_whitespace()
        .skip(3)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    fields.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_parsed_and_garbage_is_refused() {
        assert_eq!(parse_report("1234 2048 0\n"), Some((1234, 2048, 0)));
        assert_eq!(parse_report("1234 x 0"), None);
        assert_eq!(parse_report(""), None);
    }

    #[test]
    fn lifecycle_steps_follow_the_report() {
        let report = "10 2048 0 4 3 1 2\n";
        assert_eq!(parse_report(report), Some((10, 2048, 0)));
        assert_eq!(parse_steps(report), Some([4, 3, 1, 2]));
        assert_eq!(parse_steps("10 2048 0"), None);
        assert_eq!(parse_steps("10 2048 0 4 3 1"), None);
    }
}
