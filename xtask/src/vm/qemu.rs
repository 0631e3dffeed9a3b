//! Running the VM: qemu-system-x86_64 with the serial console on stdio,
//! streamed to the terminal and to a log file. Watches for a sign of life
//! (the first serial line) and for the summary line; with `--accel auto`
//! a KVM guest that stays silent (or qemu failing under KVM) is retried
//! under TCG. An overall timeout kills qemu.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::VmError;

/// Which accelerator to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
    /// KVM if /dev/kvm opens, falling back to TCG if the guest hangs.
    Auto,
}

/// How to run the VM.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub accel: Accel,
    pub memory_mb: u32,
    pub cpus: u32,
    pub timeout: Duration,
    /// Under KVM: how long the guest may stay silent before we give up on KVM.
    pub kvm_life_timeout: Duration,
    /// Extra kernel command-line words (e.g. `KEY=VALUE` for the guest's env).
    pub extra_append: Vec<String>,
    pub log: PathBuf,
}

/// The guest's summary line, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// What a VM run reported.
#[derive(Debug, Clone)]
pub struct VmOutcome {
    pub summary: Summary,
    /// `CRABCAN-VM-SKIP` and `CRABCAN-VM-NOTE` lines, without the prefix.
    pub notes: Vec<String>,
    /// `CRABCAN-VM-RESULT` lines, without the prefix.
    pub results: Vec<String>,
    /// The `CRABCAN-VM-BOOTED` line, without the prefix (`kernel=... cpus=N`).
    pub booted: Option<String>,
    /// `CRABCAN-VM-BENCH` and `CRABCAN-VM-BENCH-INFO` lines (the bench's
    /// runs), with their prefix.
    pub bench: Vec<String>,
    pub accel_used: Accel,
    pub boot_secs: f64,
    pub total_secs: f64,
}

enum Event {
    Line(String),
    Eof,
}

/// One attempt's end.
enum Attempt {
    Done(VmOutcome),
    /// The guest never printed a line (or qemu died before it did).
    NoLife(String),
}

/// Runs the VM and returns the guest's summary.
pub fn run_vm(config: &VmConfig) -> Result<VmOutcome, VmError> {
    let log = File::create(&config.log).map_err(|e| VmError::io("creating", &config.log, e))?;
    let log = Arc::new(Mutex::new(log));
    let first = match config.accel {
        Accel::Auto if kvm_usable() => Accel::Kvm,
        Accel::Auto => {
            eprintln!("xtask: /dev/kvm is not usable: using TCG (slower)");
            Accel::Tcg
        }
        other => other,
    };
    let started = Instant::now();
    match attempt(config, first, &log, started)? {
        Attempt::Done(outcome) => Ok(outcome),
        Attempt::NoLife(why) if first == Accel::Kvm && config.accel == Accel::Auto => {
            eprintln!("\nxtask: {why} under KVM; retrying under TCG");
            log_line(&log, &format!("xtask: {why} under KVM; retrying under TCG"));
            match attempt(config, Accel::Tcg, &log, started)? {
                Attempt::Done(outcome) => Ok(outcome),
                Attempt::NoLife(why) => Err(VmError::Vm(format!(
                    "{why} under TCG either; see {}",
                    config.log.display()
                ))),
            }
        }
        Attempt::NoLife(why) => Err(VmError::Vm(format!("{why}; see {}", config.log.display()))),
    }
}

/// True if /dev/kvm can be opened read-write.
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

fn qemu_command(config: &VmConfig, accel: Accel) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    let append = std::iter::once("console=ttyS0 panic=-1 quiet".to_string())
        .chain(config.extra_append.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    match accel {
        Accel::Kvm => {
            let cpu = std::env::var("CRABCAN_VM_KVM_CPU").unwrap_or_else(|_| "host".to_string());
            cmd.args(["-accel", "kvm", "-cpu", &cpu])
        }
        _ => cmd.args(["-accel", "tcg", "-cpu", "max"]),
    };
    cmd.args(["-m", &config.memory_mb.to_string()])
        .args(["-smp", &config.cpus.to_string()])
        .args(["-display", "none", "-serial", "stdio", "-monitor", "none"])
        .args(["-no-reboot", "-nodefaults"])
        .arg("-kernel")
        .arg(&config.kernel)
        .arg("-initrd")
        .arg(&config.initrd)
        .args(["-append", &append])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn attempt(config: &VmConfig, accel: Accel, log: &Arc<Mutex<File>>, started: Instant) -> Result<Attempt, VmError> {
    let mut cmd = qemu_command(config, accel);
    let line = format!("xtask: {}", crate::util::process::display(&cmd));
    eprintln!("{line}");
    log_line(log, &line);
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            VmError::Vm("qemu-system-x86_64 not found: apt-get install qemu-system-x86".into())
        } else {
            VmError::Vm(format!("cannot start qemu: {e}"))
        }
    })?;
    let events = spawn_readers(&mut child, log);
    let result = watch(config, accel, &mut child, &events, started);
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Streams stdout (the serial console) as events and qemu's stderr to ours,
/// both copied into the log.
fn spawn_readers(child: &mut Child, log: &Arc<Mutex<File>>) -> Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    let out_log = Arc::clone(log);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.trim_end_matches(['\n', '\r']).to_string();
                    println!("{line}");
                    log_line(&out_log, &line);
                    if tx.send(Event::Line(line)).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Event::Eof);
    });
    let stderr = child.stderr.take().expect("piped");
    let err_log = Arc::clone(log);
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        for line in text.lines() {
            eprintln!("qemu: {line}");
            log_line(&err_log, &format!("qemu: {line}"));
        }
    });
    rx
}

fn log_line(log: &Arc<Mutex<File>>, line: &str) {
    if let Ok(mut file) = log.lock() {
        let _ = writeln!(file, "{line}");
    }
}

fn watch(
    config: &VmConfig,
    accel: Accel,
    child: &mut Child,
    events: &Receiver<Event>,
    started: Instant,
) -> Result<Attempt, VmError> {
    let attempt_start = Instant::now();
    let life_timeout = match accel {
        Accel::Kvm => config.kvm_life_timeout,
        _ => config.timeout,
    };
    let mut alive = false;
    let mut boot_secs = 0.0;
    let mut notes = Vec::new();
    let mut results = Vec::new();
    let mut booted = None;
    let mut bench = Vec::new();
    loop {
        let elapsed_total = started.elapsed();
        if elapsed_total >= config.timeout {
            return Err(VmError::Vm(format!(
                "the VM did not finish within {} s (--timeout); qemu killed; see {}",
                config.timeout.as_secs(),
                config.log.display()
            )));
        }
        if !alive && attempt_start.elapsed() >= life_timeout {
            return Ok(Attempt::NoLife(format!(
                "the guest printed nothing within {} s",
                life_timeout.as_secs()
            )));
        }
        let wait = Duration::from_millis(500);
        match events.recv_timeout(wait) {
            Ok(Event::Line(line)) => {
                if !alive {
                    alive = true;
                }
                if let Some(rest) = tagged(&line, "CRABCAN-VM-BOOTED ") {
                    boot_secs = attempt_start.elapsed().as_secs_f64();
                    booted = Some(rest);
                }
                for tag in ["CRABCAN-VM-BENCH ", "CRABCAN-VM-BENCH-INFO "] {
                    if let Some(i) = line.find(tag) {
                        bench.push(line[i..].trim().to_string());
                    }
                }
                if let Some(rest) = tagged(&line, "CRABCAN-VM-SKIP ").or_else(|| tagged(&line, "CRABCAN-VM-NOTE ")) {
                    notes.push(rest);
                }
                if let Some(rest) = tagged(&line, "CRABCAN-VM-RESULT ") {
                    results.push(rest);
                }
                if let Some(summary) = parse_summary(&line) {
                    // Give the guest a moment to power off by itself.
                    wait_exit(child, Duration::from_secs(20));
                    let outcome = VmOutcome {
                        summary,
                        notes: std::mem::take(&mut notes),
                        results: std::mem::take(&mut results),
                        booted: booted.take(),
                        bench: std::mem::take(&mut bench),
                        accel_used: accel,
                        boot_secs,
                        total_secs: started.elapsed().as_secs_f64(),
                    };
                    return Ok(Attempt::Done(outcome));
                }
            }
            Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => {
                let status = child
                    .wait()
                    .map_err(|e| VmError::Vm(format!("waiting for qemu: {e}")))?;
                let status = crate::util::process::describe_status(status);
                if !alive {
                    return Ok(Attempt::NoLife(format!(
                        "qemu exited ({status}) before the guest printed anything"
                    )));
                }
                return Err(VmError::Vm(format!(
                    "the VM did not report a result (qemu {status}); see {}",
                    config.log.display()
                )));
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn tagged(line: &str, tag: &str) -> Option<String> {
    line.find(tag).map(|i| line[i + tag.len()..].trim().to_string())
}

fn wait_exit(child: &mut Child, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Parses `CRABCAN-VM-SUMMARY passed=N failed=M skipped=K` anywhere in a line.
pub fn parse_summary(line: &str) -> Option<Summary> {
    let rest = &line[line.find("CRABCAN-VM-SUMMARY ")? + "CRABCAN-VM-SUMMARY ".len()..];
    let mut summary = Summary::default();
    let mut seen = 0;
    for word in rest.split_whitespace() {
        let (key, value) = word.split_once('=')?;
        let value: u64 = value.parse().ok()?;
        match key {
            "passed" => summary.passed = value,
            "failed" => summary.failed = value,
            "skipped" => summary.skipped = value,
            _ => continue,
        }
        seen += 1;
    }
    (seen == 3).then_some(summary)
}

/// Used by the tests: is `path` somewhere we can write a log?
pub fn default_log(target: &Path) -> PathBuf {
    target.join("test-vm.log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        assert_eq!(
            parse_summary("CRABCAN-VM-SUMMARY passed=3 failed=1 skipped=2"),
            Some(Summary {
                passed: 3,
                failed: 1,
                skipped: 2
            })
        );
        assert_eq!(
            parse_summary("[  1.0] CRABCAN-VM-SUMMARY passed=3 failed=0 skipped=0\r"),
            Some(Summary {
                passed: 3,
                failed: 0,
                skipped: 0
            })
        );
        assert_eq!(parse_summary("CRABCAN-VM-SUMMARY passed=x failed=1 skipped=2"), None);
        assert_eq!(parse_summary("echo \"CRABCAN-VM-SUMMARY passed=$P failed=$F\""), None);
    }
}
