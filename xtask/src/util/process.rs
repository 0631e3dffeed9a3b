//! Running subprocesses: a printable command line, a checked run, and
//! streaming a child's stdout line by line while it runs.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Command, ExitStatus, Stdio};

/// `prog arg arg` for messages (env vars are not shown).
pub fn display(cmd: &Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

/// Runs `cmd` with inherited stdio; error unless it exits 0.
pub fn run_checked(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", display(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({})", display(cmd), describe_status(status)))
    }
}

/// Runs `cmd` and returns its stdout; error unless it exits 0.
pub fn output_checked(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", display(cmd)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        Err(format!(
            "`{}` failed ({}){}{}",
            display(cmd),
            describe_status(out.status),
            if last.is_empty() { "" } else { ": " },
            last.trim()
        ))
    }
}

/// Runs `cmd` with stdout piped: each line is echoed to our stdout and
/// handed to `on_line`. stderr is inherited. Returns the exit status.
pub fn stream_stdout(cmd: &mut Command, mut on_line: impl FnMut(&str)) -> Result<ExitStatus, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", display(cmd)))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut out = io::stdout();
    for line in BufReader::new(stdout).split(b'\n') {
        let line = match line {
            Ok(line) => line,
            Err(_) => break,
        };
        let text = String::from_utf8_lossy(&line);
        let _ = writeln!(out, "{text}");
        on_line(&text);
    }
    let _ = out.flush();
    child.wait().map_err(|e| format!("waiting for `{}`: {e}", display(cmd)))
}

/// "exit status 3" / "killed by signal 9".
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

/// The exit code to pass on for `status` (128+signal for a signal).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1)
}
