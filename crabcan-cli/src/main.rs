//! `crabcan`: parses the command line, turns it into a `ContainerConfig`, runs the container and
//! exits with its status. Every error is one line, `crabcan: error: ...`; nothing else here.
//! The process starts in `process_start.rs`.
#![cfg_attr(not(test), no_main)]

mod args;
mod explain;
mod oci;
mod oci_args;
#[cfg(not(test))]
mod process_start;
mod seccomp;

use std::io::Write;

use clap::{CommandFactory, FromArgMatches};
use crabcan_cgroups::{parse_size, LimitKind, Limits, MissingController};
use crabcan_core::{
    spec, BindMount, CapabilitySet, ContainerConfig, ExitReport, FileLimit, IdMapping, IdRange, LearnReport,
    SeccompLearning, StartGate, Terminal, EXIT_SETUP_FAILED,
};

use args::Args;

/// Under `cargo test` the test harness is the entry point instead of `process_start.rs`; this
/// keeps what the entry point runs counted as used.
#[cfg(test)]
const _: fn() -> u8 = cli_main;

/// What the process does, from its arguments to its exit status.
fn cli_main() -> u8 {
    // runc's command line when a runc subcommand comes first (after global options);
    // the direct mode otherwise.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let scan = oci_args::scan(&raw);
    if scan.oci {
        return oci::main(raw, scan);
    }
    let command = Args::command().after_help(args::after_help());
    let args = match command
        .try_get_matches_from(raw)
        .and_then(|matches| Args::from_arg_matches(&matches))
    {
        Ok(args) => args,
        Err(error) => return clap_error(error),
    };
    init_logging(args.debug);
    if let Some(format) = args.explain.clone() {
        return match explain(args, &format) {
            Ok(()) => 0,
            Err(Failure { message, code }) => {
                say(&format!("error: {message}"));
                code.clamp(0, 255) as u8
            }
        };
    }
    let code = match run(args) {
        Ok(report) => exit_code_of(&report),
        Err(Failure { message, code }) => {
            say(&format!("error: {message}"));
            code
        }
    };
    code.clamp(0, 255) as u8
}

/// One `crabcan: ...` line on stderr. A stderr that cannot be written (`2>/dev/full`, a closed
/// pipe) must not turn an error into a crash: the exit status still tells.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "crabcan: {line}");
}

/// One line for the user and the exit status.
struct Failure {
    message: String,
    code: i32,
}

impl Failure {
    fn setup(message: impl ToString) -> Failure {
        Failure {
            message: message.to_string(),
            code: EXIT_SETUP_FAILED,
        }
    }
}

impl From<crabcan_core::Error> for Failure {
    fn from(error: crabcan_core::Error) -> Failure {
        use crabcan_core::IdRangeError;
        // The library names the maps; the user wrote flags.
        let message = match &error {
            crabcan_core::Error::Ids(IdRangeError::MapOverlaps { .. } | IdRangeError::MapInPool { .. }) => error
                .to_string()
                .replace("leave the uid map out", "leave --uid-map out")
                .replace("leave the gid map out", "leave --gid-map out"),
            crabcan_core::Error::Cgroup(cgroup) if cgroup.is_missing_controller() => {
                match cgroup.limit().and_then(flag_of) {
                    Some(flag) => format!("{cgroup} ({flag}); --allow-missing-controllers runs without that limit"),
                    None => cgroup.to_string(),
                }
            }
            _ => error.to_string(),
        };
        Failure {
            code: error.exit_code(),
            message,
        }
    }
}

fn run(args: Args) -> Result<ExitReport, Failure> {
    let config = build_config(args)?;
    log::debug!(
        "rootfs {}, command {:?}, hostname {}",
        config.rootfs.display(),
        config.argv,
        config.hostname
    );
    Ok(crabcan_core::run(config)?)
}

/// `--explain`: the confinement the configuration gives, printed; nothing is started.
fn explain(args: Args, format: &str) -> Result<(), Failure> {
    let config = build_config(args)?;
    let confinement = crabcan_core::explain(config)?;
    let text = explain::render(&confinement, format).map_err(Failure::setup)?;
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|error| Failure::setup(format!("cannot write the explanation: {error}")))
}

fn build_config(args: Args) -> Result<ContainerConfig, Failure> {
    let argv = match (&args.command, args.args.is_empty()) {
        (Some(command), _) => spec::split_command(command).map_err(Failure::setup)?,
        (None, false) => args.args.clone(),
        (None, true) => vec!["/bin/sh".to_owned()],
    };
    let mut config = ContainerConfig::new(&args.mount, argv);
    if let Some(hostname) = &args.hostname {
        config.hostname = hostname.clone();
    }
    config.uid = args.uid;
    config.gid = args.gid.unwrap_or(args.uid);
    config.id_mapping = id_mapping(&args)?;
    config.binds = args
        .add
        .iter()
        .map(|spec| BindMount::parse(spec))
        .collect::<Result<_, _>>()
        .map_err(Failure::setup)?;
    config.env = args
        .env
        .iter()
        .map(|spec| spec::parse_env(spec))
        .collect::<Result<_, _>>()
        .map_err(Failure::setup)?;
    config.workdir = args.workdir.clone();
    config.nofile = args.nofile.map(FileLimit::both);
    config.tmp_size = args
        .tmp_size
        .as_deref()
        .map(|value| parse_size(value).map_err(|error| Failure::setup(format!("--tmp-size {value:?}: {error}"))))
        .transpose()?;
    config.init = args.init;
    config.capabilities = CapabilitySet::adjusted(&args.cap_add, &args.cap_drop).map_err(Failure::setup)?;
    config.limits = limits(&args)?;
    config.requested_limits = [
        (LimitKind::Memory, args.memory.is_some()),
        (LimitKind::MemorySwap, args.memory_swap.is_some()),
        (LimitKind::Pids, args.pids.is_some()),
        (LimitKind::CpuWeight, args.cpu_weight.is_some()),
        (LimitKind::CpuQuota, args.cpus.is_some()),
        (LimitKind::IoWeight, args.io_weight.is_some()),
    ]
    .into_iter()
    .filter_map(|(limit, given)| given.then_some(limit))
    .collect();
    if args.allow_missing_controllers {
        config.missing_controllers = MissingController::Warn;
    }
    config.terminal = terminal(&args)?;
    if let Some(fifo) = &args.start_fifo {
        config.start_gate = StartGate::Fifo(fifo.clone());
    }
    config.collect_stats = log::log_enabled!(log::Level::Debug);
    // A direct run is never paused, and its pid namespace dies with its pid 1: on cgroup v1
    // the cgroup needs no freezer or cpuacct hierarchy (the CPU time is read with --debug only).
    config.cgroup_uses = crabcan_core::CgroupUses::LIMITS_ONLY;
    config.strict = args.strict;
    match &args.seccomp_learn {
        Some(path) => config.seccomp_learning = Some(learning(&args, path)?),
        // After the capabilities: a JSON profile's `includes.caps` rules depend on them.
        None => config.seccomp = seccomp_filter(&args, &config.capabilities)?,
    }
    Ok(config)
}

/// `--seccomp-learn FILE`: a learning run that enforces the default profile (none with
/// `--seccomp-learn-unconfined`), writing FILE (made absolute: crabcan writes it once the
/// container is gone).
fn learning(args: &Args, path: &std::path::Path) -> Result<SeccompLearning, Failure> {
    if args.seccomp != "default" {
        return Err(Failure::setup(format!(
            "--seccomp-learn enforces the default profile while it learns (none with --seccomp-learn-unconfined); drop --seccomp {}",
            args.seccomp
        )));
    }
    let output = std::path::absolute(path)
        .map_err(|error| Failure::setup(format!("--seccomp-learn {}: {error}", path.display())))?;
    Ok(SeccompLearning {
        enforced: (!args.seccomp_learn_unconfined).then(crabcan_seccomp::Profile::default_profile),
        output,
    })
}

/// `--uid-map`/`--gid-map`: given ranges (one given alone serves for both), or a private range.
fn id_mapping(args: &Args) -> Result<IdMapping, Failure> {
    let parse =
        |flag: &str, spec: &str| IdRange::parse(spec).map_err(|error| Failure::setup(format!("{flag}: {error}")));
    let (uid_map, gid_map) = match (&args.uid_map, &args.gid_map) {
        (None, None) => return Ok(IdMapping::Auto),
        (Some(uid), None) => (parse("--uid-map", uid)?, parse("--uid-map", uid)?),
        (None, Some(gid)) => (parse("--gid-map", gid)?, parse("--gid-map", gid)?),
        (Some(uid), Some(gid)) => (parse("--uid-map", uid)?, parse("--gid-map", gid)?),
    };
    Ok(IdMapping::Fixed { uid_map, gid_map })
}

fn limits(args: &Args) -> Result<Option<Limits>, Failure> {
    let defaults = Limits::default();
    if args.no_cgroup {
        let given = [
            ("--memory", args.memory.is_some()),
            ("--memory-swap", args.memory_swap.is_some()),
            ("--pids", args.pids.is_some()),
            ("--cpu-weight", args.cpu_weight.is_some()),
            ("--cpus", args.cpus.is_some()),
            ("--io-weight", args.io_weight.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            return Err(Failure::setup(format!(
                "{flag} needs a cgroup, and --no-cgroup runs without one; drop one of the two"
            )));
        }
        return Ok(None);
    }
    let size = |flag: &str, value: &str| -> Result<Option<u64>, Failure> {
        if value == "max" {
            return Ok(None);
        }
        parse_size(value)
            .map(Some)
            .map_err(|error| Failure::setup(format!("{flag} {value:?}: {error}")))
    };
    let pids = match args.pids.as_deref() {
        None => defaults.pids,
        Some("max") => None,
        Some(text) => Some(text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            Failure::setup(format!(
                "--pids {text:?} is not a positive whole number; give e.g. --pids 64, or max"
            ))
        })?),
    };
    let limits = Limits {
        memory: match &args.memory {
            Some(memory) => size("--memory", memory)?,
            None => defaults.memory,
        },
        memory_swap: match &args.memory_swap {
            Some(swap) => size("--memory-swap", swap)?,
            None => defaults.memory_swap,
        },
        pids,
        cpu_weight: args.cpu_weight.or(defaults.cpu_weight),
        cpu_quota: args.cpus,
        io_weight: args.io_weight.or(defaults.io_weight),
        ..Limits::unlimited()
    };
    limits
        .validate()
        .map_err(|error| match error.limit().and_then(flag_of) {
            Some(flag) => Failure::setup(format!("{flag}: {error}")),
            None => Failure::setup(error),
        })?;
    Ok(Some(limits))
}

/// The flag that sets `limit` (the OCI mode's limits have none).
fn flag_of(limit: LimitKind) -> Option<&'static str> {
    Some(match limit {
        LimitKind::Memory => "--memory",
        LimitKind::MemorySwap => "--memory-swap",
        LimitKind::Pids => "--pids",
        LimitKind::CpuWeight => "--cpu-weight",
        LimitKind::CpuQuota => "--cpus",
        LimitKind::IoWeight => "--io-weight",
        _ => return None,
    })
}

/// A pty when asked for, or by default when stdin is a terminal of which crabcan is in the
/// foreground: a crabcan in the background (`crabcan ... &`, `timeout crabcan ...`) that put
/// the terminal in raw mode would be stopped by SIGTTOU and take the terminal from the shell.
fn terminal(args: &Args) -> Result<Terminal, Failure> {
    use crabcan_core::{is_foreground, is_terminal};
    if args.no_tty {
        return Ok(Terminal::Inherit);
    }
    let foreground = is_terminal(0) && is_foreground(0);
    if args.tty && is_terminal(0) && !foreground {
        return Err(Failure::setup(
            "--tty needs crabcan in the foreground of its terminal, and it runs in the background; run it in the foreground or drop --tty",
        ));
    }
    Ok(if args.tty || foreground {
        Terminal::Pty
    } else {
        Terminal::Inherit
    })
}

fn seccomp_filter(
    args: &Args,
    capabilities: &CapabilitySet,
) -> Result<Option<crabcan_seccomp::CompiledFilter>, Failure> {
    seccomp::filter_for(&args.seccomp, args.seccomp_profile.as_deref(), &capabilities.names()).map_err(Failure::setup)
}

fn exit_code_of(report: &ExitReport) -> i32 {
    let limit = report
        .memory_limit
        .map(|bytes| format!(" (limit {})", crabcan_core::human_size(bytes)))
        .unwrap_or_default();
    if report.command_oom_killed() {
        say(&format!("container killed: out of memory{limit}"));
    } else if report.oom_killed {
        say(&format!(
            "warn: a process of the container was killed: out of memory{limit}; the command went on"
        ));
    }
    if report.killed_by_seccomp() {
        say("warn: the command was killed by SIGSYS: the seccomp profile kills a syscall it made (--debug lists the profile's rules)");
    }
    if let Some(stats) = &report.stats {
        log::debug!("resource use: {stats}");
    }
    if let Some(learned) = &report.learned {
        for line in learn_summary(learned) {
            say(&line);
        }
    }
    report.exit_code()
}

/// What a learning run says when it is done: what it learned and wrote, what the enforced
/// profile denied, and the numbers it could not name.
fn learn_summary(report: &LearnReport) -> Vec<String> {
    let learned = &report.learned;
    let mut lines = vec![format!(
        "learned {} syscalls ({} calls); {} now allows {}",
        learned.allowed.len(),
        learned.calls,
        report.output.display(),
        report.profile.allowed.len()
    )];
    if !learned.denied.is_empty() {
        let denied: Vec<String> = learned
            .denied
            .iter()
            .map(|(name, action)| format!("{name} ({action})"))
            .collect();
        lines.push(format!("denied while learning, so not learned: {}", denied.join(", ")));
    }
    if !learned.unnamed.is_empty() {
        let numbers: Vec<String> = learned
            .unnamed
            .iter()
            .map(|number| match *number {
                crabcan_seccomp::OUT_OF_RANGE => "beyond 1023".to_owned(),
                number => number.to_string(),
            })
            .collect();
        lines.push(format!(
            "warn: syscalls {} have no name in crabcan's table and are not in the profile",
            numbers.join(", ")
        ));
    }
    lines
}

/// `crabcan: warn: ...` lines; debug and trace lines carry the milliseconds since start, so
/// `--debug` shows where a container's start-up time goes (the container process logs too,
/// with its pid).
fn init_logging(debug: bool) {
    let started = std::time::Instant::now();
    let default_level = if debug { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format(move |buffer, record| {
            let level = record.level().as_str().to_ascii_lowercase();
            if record.level() >= log::Level::Debug {
                let millis = started.elapsed().as_secs_f64() * 1000.0;
                writeln!(
                    buffer,
                    "crabcan: {level}: [{millis:8.3} ms pid {}] {}",
                    std::process::id(),
                    record.args()
                )
            } else {
                writeln!(buffer, "crabcan: {level}: {}", record.args())
            }
        })
        .init();
}

/// clap's own errors, as one line and exit status 125; --help and --version print normally.
fn clap_error(error: clap::Error) -> u8 {
    use clap::error::ErrorKind;
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = error.print();
        return 0;
    }
    say(&format!(
        "error: {}; see crabcan --help",
        clap_message(&error.to_string())
    ));
    EXIT_SETUP_FAILED as u8
}

/// clap's message as one line: its first line, and when that ends in a colon (a list of missing
/// arguments follows, e.g. "the following required arguments were not provided:"), the items
/// of that list joined to it. Usage and tips are dropped.
fn clap_message(rendered: &str) -> String {
    let mut lines = rendered.lines();
    let first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ");
    let Some(head) = first.strip_suffix(':') else {
        return first.to_owned();
    };
    let items: Vec<&str> = lines.map(str::trim).take_while(|line| !line.is_empty()).collect();
    if items.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {}", items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::clap_message;

    #[test]
    fn clap_errors_keep_the_names_of_missing_arguments() {
        let rendered = "error: the following required arguments were not provided:\n  --mount <DIR>\n\nUsage: crabcan --mount <DIR> [ARGS]...\n\nFor more information, try '--help'.\n";
        assert_eq!(
            clap_message(rendered),
            "the following required arguments were not provided: --mount <DIR>"
        );
        assert_eq!(
            clap_message("error: unexpected argument '-x' found\n\nUsage: crabcan\n"),
            "unexpected argument '-x' found"
        );
    }
}
