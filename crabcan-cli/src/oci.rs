//! crabcan's OCI mode: runs one runc-style subcommand and turns its outcome into runc's
//! conventions: output on stdout, and on failure one `crabcan: error: ...` line on stderr, one
//! line in `--log` (a JSON object with `--log-format json`), exit status 1.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{CommandFactory, FromArgMatches};
use crabcan_core::oci::runtime::{self, CgroupManager, CreateOptions, EventsOptions, ExecOptions, ExecUser};
use crabcan_core::oci::state::{validate_id, ContainerState, StateStore, DEFAULT_ROOT};
use crabcan_core::oci::{features, rfc3339, spec, OciError};

use crate::oci_args::{
    CgroupManagerArg, CreateArgs, ExecArgs, Format, LogFormat, OciCli, OciCommand, Rootless, Scan, UpdateLimits,
};

/// The exit status of a failed OCI subcommand, as runc's.
const EXIT_FAILED: u8 = 1;

/// Where failures are reported besides stderr.
struct ErrorLog {
    path: Option<PathBuf>,
    json: bool,
}

impl ErrorLog {
    /// Reports `message`: a line on stderr and, with `--log`, one line appended to the log.
    fn fail(&self, message: &str) -> u8 {
        crate::say(&format!("error: {message}"));
        if let Some(path) = &self.path {
            let line = log_line(message, self.json, SystemTime::now());
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(line.as_bytes()));
            if let Err(error) = written {
                crate::say(&format!("error: cannot write the log {}: {error}", path.display()));
            }
        }
        EXIT_FAILED
    }
}

/// One error line for `--log`: `{"level":"error","msg":...,"time":...}` (what runc writes through
/// logrus's JSON formatter), or logrus's text format.
fn log_line(message: &str, json: bool, time: SystemTime) -> String {
    let time = rfc3339(time);
    if json {
        let object = serde_json::json!({ "level": "error", "msg": message, "time": time });
        format!("{object}\n")
    } else {
        let quoted = serde_json::Value::from(message).to_string();
        format!("time=\"{time}\" level=error msg={quoted}\n")
    }
}

/// Runs the OCI mode on the process's arguments.
pub fn main(args: Vec<OsString>, scan: Scan) -> u8 {
    let early = ErrorLog {
        path: scan.log,
        json: scan.json_log,
    };
    let cli = match OciCli::command()
        .try_get_matches_from(args)
        .and_then(|matches| OciCli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = error.print();
                return 0;
            }
            let message = crate::clap_message(&error.to_string());
            return early.fail(&format!("{message}; see crabcan --help"));
        }
    };
    crate::init_logging(cli.debug);
    let log = ErrorLog {
        path: cli.log.clone(),
        json: cli.log_format == LogFormat::Json,
    };
    match run(cli) {
        Ok(code) => code.clamp(0, 255) as u8,
        Err(message) => log.fail(&message),
    }
}

/// The cgroup driver the global options ask for, and the option that asked.
fn cgroup_manager(cli: &OciCli) -> (CgroupManager, &'static str) {
    match (cli.cgroup_manager, cli.systemd_cgroup) {
        (Some(CgroupManagerArg::Systemd), _) => (CgroupManager::Systemd, "--cgroup-manager systemd"),
        (_, true) => (CgroupManager::Systemd, "--systemd-cgroup"),
        (Some(CgroupManagerArg::Disabled), false) => (CgroupManager::Disabled, "--cgroup-manager disabled"),
        (Some(CgroupManagerArg::Cgroupfs) | None, false) => (CgroupManager::Cgroupfs, "--cgroup-manager cgroupfs"),
    }
}

/// The state root: `--root`, or runc's defaults, `/run/crabcan` for root and
/// `$XDG_RUNTIME_DIR/crabcan` for anyone else (`runtime_dir`). `--rootless` must agree with who
/// runs crabcan (`euid`): `false` asks for root's mode, which an ordinary user cannot have; `true`
/// as root changes nothing, as with runc (it lets cgroup permission errors pass, and root's
/// containers make their cgroups anyway).
fn state_root(
    given: Option<&Path>,
    rootless: Rootless,
    euid: u32,
    runtime_dir: impl FnOnce() -> Result<PathBuf, crabcan_core::RootlessError>,
) -> Result<PathBuf, String> {
    if rootless == Rootless::False && euid != 0 {
        return Err(format!(
            "--rootless false asks for root's mode, and crabcan runs as uid {euid}: run it as root, or pass --rootless auto"
        ));
    }
    match (given, euid) {
        (Some(root), _) => Ok(root.to_owned()),
        (None, 0) => Ok(PathBuf::from(DEFAULT_ROOT)),
        (None, _) => runtime_dir().map_err(|error| format!("{error}; or pass --root DIR")),
    }
}

/// Runs the subcommand: its exit status, or the error line.
fn run(cli: OciCli) -> Result<i32, String> {
    if let Some(id) = cli.command.id() {
        validate_id(id).map_err(|e| e.to_string())?;
    }
    let root = match cli.command {
        OciCommand::Spec { .. } | OciCommand::Features => PathBuf::new(),
        _ => state_root(
            cli.root.as_deref(),
            cli.rootless,
            nix::unistd::geteuid().as_raw(),
            crabcan_core::rootless::state_dir,
        )?,
    };
    let store = StateStore::new(&root);
    let (manager, option) = cgroup_manager(&cli);
    let needs_cgroups = |what: &'static str| manager.check(what, option).map_err(|e| e.to_string());
    let oci = |result: Result<(), OciError>| result.map(|()| 0).map_err(|e| e.to_string());
    match cli.command {
        OciCommand::Spec { bundle, rootless } => {
            let bundle = bundle.unwrap_or_else(|| PathBuf::from("."));
            oci(spec::write_default_spec(&bundle, rootless).map(drop))
        }
        OciCommand::Features => print_json(&features::features()).map(|()| 0),
        OciCommand::Explain { format, id } => {
            let confinement = runtime::explain(&store, &id).map_err(|e| e.to_string())?;
            let text = crate::explain::render(&confinement, &format)?;
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|error| format!("cannot write the output: {error}"))?;
            Ok(0)
        }
        OciCommand::State { id } => {
            let state = store.load(&id).map_err(|e| e.to_string())?;
            print_json(&state.report()).map(|()| 0)
        }
        OciCommand::List { format, quiet } => list(&store, format, quiet).map(|()| 0),
        OciCommand::Create(create) => {
            needs_cgroups("create")?;
            let options = create_options(&create, manager);
            oci(runtime::create(&store, &create.id, &options))
        }
        OciCommand::Run(run) => {
            needs_cgroups("run")?;
            let options = create_options(&run.create, manager);
            runtime::run(&store, &run.create.id, &options, run.detach).map_err(|e| e.to_string())
        }
        OciCommand::Start { id } => oci(runtime::start(&store, &id)),
        OciCommand::Kill { all, id, signal } => {
            let signal = parse_signal(&signal)?;
            if !store.exists(&id).map_err(|e| e.to_string())? {
                return Err(OciError::NotExist { id }.to_string());
            }
            if all {
                needs_cgroups("kill --all")?;
            }
            oci(runtime::kill(&store, &id, signal, all))
        }
        OciCommand::Delete { force, id } => {
            if store.exists(&id).map_err(|e| e.to_string())? {
                needs_cgroups("delete")?;
            }
            oci(runtime::delete(&store, &id, force))
        }
        OciCommand::Exec(exec) => {
            let options = exec_options(&exec)?;
            if store.exists(&exec.id).map_err(|e| e.to_string())? {
                needs_cgroups("exec")?;
                // CVE-2019-5736: what enters the container runs from a sealed copy of crabcan,
                // never from the host's binary. Returns once this process is that copy.
                crabcan_core::sealed_exe::reexec_sealed().map_err(|e| e.to_string())?;
            }
            runtime::exec(&store, &exec.id, &options).map_err(|e| e.to_string())
        }
        OciCommand::Ps { format, id, ps_args } => {
            let pids = runtime::ps(&store, &id).map_err(|e| e.to_string())?;
            print_ps(&pids, format, &ps_args).map(|()| 0)
        }
        OciCommand::Pause { id } => oci(runtime::pause(&store, &id)),
        OciCommand::Resume { id } => oci(runtime::resume(&store, &id)),
        OciCommand::Events { stats, interval, id } => {
            let options = EventsOptions {
                stats,
                interval: parse_duration(&interval)?,
            };
            let mut print_event = |event: &serde_json::Value| {
                let _ = writeln!(std::io::stdout(), "{event}");
            };
            oci(runtime::events(&store, &id, &options, &mut print_event))
        }
        OciCommand::Update { resources, limits, id } => {
            let options = runtime::UpdateOptions {
                resources: update_resources(resources.as_deref(), &limits)?,
            };
            if store.exists(&id).map_err(|e| e.to_string())? {
                needs_cgroups("update")?;
            }
            oci(runtime::update(&store, &id, &options))
        }
    }
}

fn create_options(args: &CreateArgs, cgroup_manager: CgroupManager) -> CreateOptions {
    CreateOptions {
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        pidfd_socket: args.pidfd_socket.clone(),
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: args.preserve_fds,
        cgroup_manager,
    }
}

fn exec_options(args: &ExecArgs) -> Result<ExecOptions, String> {
    if args.process.is_none() && args.command.is_empty() {
        return Err("exec needs a command after the container id, or --process FILE".to_owned());
    }
    let user = args.user.as_deref().map(parse_user).transpose()?;
    Ok(ExecOptions {
        process: args.process.clone(),
        args: args.command.clone(),
        detach: args.detach,
        pid_file: args.pid_file.clone(),
        tty: args.tty,
        console_socket: args.console_socket.clone(),
        pidfd_socket: args.pidfd_socket.clone(),
        env: args.env.clone(),
        cwd: args.cwd.clone(),
        user,
        additional_gids: args.additional_gids.clone(),
        capabilities: args.cap.clone(),
        no_new_privs: args.no_new_privs,
        preserve_fds: args.preserve_fds,
    })
}

/// `UID[:GID]`, numbers (as runc's `exec --user`).
fn parse_user(text: &str) -> Result<ExecUser, String> {
    let bad = || format!("--user {text:?} is not UID or UID:GID (numbers)");
    let (uid, gid) = match text.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (text, None),
    };
    Ok(ExecUser {
        uid: uid.parse().map_err(|_| bad())?,
        gid: gid.map(|gid| gid.parse().map_err(|_| bad())).transpose()?,
    })
}

/// A signal as runc takes it: a number (`9`), or a name with or without `SIG`, any case
/// (`KILL`, `SIGKILL`, `kill`).
pub fn parse_signal(text: &str) -> Result<i32, String> {
    use std::str::FromStr;
    if let Ok(number) = text.parse::<i32>() {
        return if (1..=libc_sigrtmax()).contains(&number) {
            Ok(number)
        } else {
            Err(format!("signal {number} is out of range (1 to {})", libc_sigrtmax()))
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = format!("SIG{}", upper.strip_prefix("SIG").unwrap_or(&upper));
    nix::sys::signal::Signal::from_str(&name)
        .map(|signal| signal as i32)
        .map_err(|_| format!("unknown signal {text:?}; give a number or a name such as KILL or SIGTERM"))
}

/// The highest signal number Linux has (SIGRTMAX).
fn libc_sigrtmax() -> i32 {
    64
}

/// `5s`, `500ms`, `1m`, or seconds as a bare number.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("--interval {text:?} is not a duration such as 5s or 500ms");
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(bad)
}

/// The largest `--resources` object read.
const MAX_RESOURCES_BYTES: u64 = 1 << 20;

/// `update`'s resources: the `linux.resources` object of `--resources FILE|-` (bounded), with
/// the single-limit flags set over it.
fn update_resources(path: Option<&Path>, limits: &UpdateLimits) -> Result<serde_json::Value, String> {
    let mut resources = match path {
        Some(path) => read_resources(path)?,
        None => serde_json::json!({}),
    };
    if !resources.is_object() {
        return Err("the resources given to update are not a JSON object (runtime-spec linux.resources)".into());
    }
    let size = |flag: &str, value: &str| {
        crabcan_cgroups::parse_size(value).map_err(|error| format!("{flag} {value:?}: {error}"))
    };
    let mut set = |pointer: &str, value: serde_json::Value| {
        let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        if resources.pointer(parent).is_none_or(|v| !v.is_object()) {
            resources[parent.trim_start_matches('/')] = serde_json::json!({});
        }
        if let Some(object) = resources.pointer_mut(parent).and_then(|v| v.as_object_mut()) {
            object.insert(key.to_owned(), value);
        }
    };
    if let Some(memory) = &limits.memory {
        set("/memory/limit", size("--memory", memory)?.into());
    }
    if let Some(swap) = &limits.memory_swap {
        set("/memory/swap", size("--memory-swap", swap)?.into());
    }
    if let Some(reservation) = &limits.memory_reservation {
        set("/memory/reservation", size("--memory-reservation", reservation)?.into());
    }
    if let Some(pids) = limits.pids_limit {
        set("/pids/limit", pids.into());
    }
    if let Some(shares) = limits.cpu_shares {
        set("/cpu/shares", shares.into());
    }
    if let Some(quota) = limits.cpu_quota {
        set("/cpu/quota", quota.into());
    }
    if let Some(period) = limits.cpu_period {
        set("/cpu/period", period.into());
    }
    if let Some(period) = limits.cpu_rt_period {
        set("/cpu/realtimePeriod", period.into());
    }
    if let Some(runtime) = limits.cpu_rt_runtime {
        set("/cpu/realtimeRuntime", runtime.into());
    }
    if let Some(cpus) = &limits.cpuset_cpus {
        set("/cpu/cpus", cpus.as_str().into());
    }
    if let Some(mems) = &limits.cpuset_mems {
        set("/cpu/mems", mems.as_str().into());
    }
    if let Some(weight) = limits.blkio_weight {
        set("/blockIO/weight", weight.into());
    }
    Ok(resources)
}

/// `update --resources FILE|-`: a JSON object, at most [`MAX_RESOURCES_BYTES`].
fn read_resources(path: &Path) -> Result<serde_json::Value, String> {
    let name = if path == Path::new("-") {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    };
    let mut text = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().take(MAX_RESOURCES_BYTES + 1).read_to_end(&mut text)
    } else {
        std::fs::File::open(path).and_then(|file| file.take(MAX_RESOURCES_BYTES + 1).read_to_end(&mut text))
    };
    read.map_err(|error| format!("cannot read the resources from {name}: {error}"))?;
    if text.len() as u64 > MAX_RESOURCES_BYTES {
        return Err(format!(
            "the resources in {name} are larger than {MAX_RESOURCES_BYTES} bytes"
        ));
    }
    serde_json::from_slice(&text)
        .map_err(|error| format!("the resources in {name} are not a linux.resources object: {error}"))
}

/// Prints `value` as indented JSON (runc's `state` and `features` output).
fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|error| format!("cannot encode the output: {error}"))?;
    writeln!(std::io::stdout(), "{text}").map_err(|error| format!("cannot write the output: {error}"))
}

fn list(store: &StateStore, format: Format, quiet: bool) -> Result<(), String> {
    let states = store.list().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let written = if quiet {
        states.iter().try_for_each(|state| writeln!(out, "{}", state.id))
    } else {
        match format {
            Format::Json => {
                let reports: Vec<_> = states.iter().map(ContainerState::report).collect();
                let text =
                    serde_json::to_string(&reports).map_err(|error| format!("cannot encode the list: {error}"))?;
                writeln!(out, "{text}")
            }
            Format::Table => write!(out, "{}", list_table(&states)),
        }
    };
    written.map_err(|error| format!("cannot write the list: {error}"))
}

/// runc's `list` table: ID, PID, STATUS, BUNDLE, CREATED, OWNER in columns at least 12 wide,
/// 3 spaces of padding, the last column unpadded (Go's tabwriter as runc sets it).
fn list_table(states: &[ContainerState]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(str::to_owned)
        .to_vec()];
    for state in states {
        let report = state.report();
        rows.push(vec![
            report.id,
            report.pid.to_string(),
            report.status.to_string(),
            report.bundle.display().to_string(),
            report.created,
            report.owner,
        ]);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut table = String::new();
    for row in &rows {
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == columns {
                table.push_str(cell);
            } else {
                table.push_str(&format!("{cell:<width$}", width = widths[column]));
            }
        }
        table.push('\n');
    }
    table
}

/// `ps`: the pids as JSON, or ps(1)'s lines (run with `ps_args`, default `-ef`) for those pids.
fn print_ps(pids: &[i32], format: Format, ps_args: &[String]) -> Result<(), String> {
    if format == Format::Json {
        let text = serde_json::to_string(pids).map_err(|error| format!("cannot encode the pids: {error}"))?;
        return writeln!(std::io::stdout(), "{text}").map_err(|error| format!("cannot write the output: {error}"));
    }
    let args: Vec<&str> = if ps_args.is_empty() {
        vec!["-ef"]
    } else {
        ps_args.iter().map(String::as_str).collect()
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|error| format!("cannot run ps: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("ps {}: {}", args.join(" "), stderr.trim()));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(pid_column) = header.split_whitespace().position(|field| field == "PID") else {
        return Err(format!("ps {} printed no PID column", args.join(" ")));
    };
    let mut out = std::io::stdout().lock();
    let mut result = writeln!(out, "{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_column)
            .and_then(|pid| pid.parse::<i32>().ok());
        if pid.is_some_and(|pid| pids.contains(&pid)) {
            result = result.and_then(|()| writeln!(out, "{line}"));
        }
    }
    result.map_err(|error| format!("cannot write the output: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_or_name() {
        for text in ["9", "KILL", "SIGKILL", "kill", "sigkill"] {
            assert_eq!(parse_signal(text), Ok(9), "{text}");
        }
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("34"), Ok(34));
        for bad in ["0", "65", "-1", "NOPE", "SIG", ""] {
            assert!(parse_signal(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn runcs_update_flags_become_resources() {
        let limits = UpdateLimits {
            memory_reservation: Some("32m".into()),
            cpu_shares: Some(512),
            cpu_rt_period: Some(1_000_000),
            cpu_rt_runtime: Some(10_000),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            ..UpdateLimits::default()
        };
        let resources = update_resources(None, &limits).unwrap();
        assert_eq!(
            resources,
            serde_json::json!({
                "memory": {"reservation": 33554432},
                "cpu": {"shares": 512, "realtimePeriod": 1000000, "realtimeRuntime": 10000, "cpus": "0-1", "mems": "0"}
            })
        );
        let cli = <OciCli as clap::Parser>::try_parse_from(["crabcan", "update", "--cpu-share", "100", "c1"]).unwrap();
        let OciCommand::Update { limits, .. } = cli.command else {
            panic!("not update");
        };
        assert_eq!(limits.cpu_shares, Some(100), "runc's --cpu-share");
    }

    #[test]
    fn error_log_lines() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
        let line = log_line("container \"x\" does not exist", true, time);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let object: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(object["level"], "error");
        assert_eq!(object["msg"], "container \"x\" does not exist");
        assert_eq!(object["time"], "1970-01-02T00:00:00Z");
        assert_eq!(
            log_line("a \"b\"", false, time),
            "time=\"1970-01-02T00:00:00Z\" level=error msg=\"a \\\"b\\\"\"\n"
        );
    }

    #[test]
    fn users_and_durations() {
        assert_eq!(parse_user("1000"), Ok(ExecUser { uid: 1000, gid: None }));
        assert_eq!(parse_user("1:2"), Ok(ExecUser { uid: 1, gid: Some(2) }));
        assert!(parse_user("root").is_err() && parse_user("1:x").is_err());
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err() && parse_duration("5x").is_err() && parse_duration("").is_err());
    }

    #[test]
    fn the_state_root_follows_who_runs_crabcan() {
        let xdg = || Ok(PathBuf::from("/run/user/1000/crabcan"));
        let unset = || Err(crabcan_core::RootlessError::NoRuntimeDir);
        assert_eq!(
            state_root(None, Rootless::Auto, 0, unset),
            Ok(PathBuf::from(DEFAULT_ROOT))
        );
        assert_eq!(
            state_root(None, Rootless::True, 0, xdg),
            Ok(PathBuf::from(DEFAULT_ROOT))
        );
        assert_eq!(
            state_root(None, Rootless::Auto, 1000, xdg),
            Ok(PathBuf::from("/run/user/1000/crabcan"))
        );
        let given = Path::new("/tmp/states");
        assert_eq!(
            state_root(Some(given), Rootless::Auto, 1000, unset),
            Ok(given.to_owned())
        );
        let error = state_root(None, Rootless::Auto, 1000, unset).unwrap_err();
        assert!(
            error.starts_with("XDG_RUNTIME_DIR is not set") && error.ends_with("or pass --root DIR"),
            "{error}"
        );
        let error = state_root(Some(given), Rootless::False, 1000, xdg).unwrap_err();
        assert!(error.starts_with("--rootless false asks for root's mode"), "{error}");
        assert!(state_root(None, Rootless::False, 0, unset).is_ok());
    }

    #[test]
    fn an_empty_list_is_the_header() {
        assert_eq!(
            list_table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }
}
