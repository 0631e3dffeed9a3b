//! The command line of crabcan's OCI mode, runc's: global options, then a subcommand and its
//! options, which may come before or after the container id. Parsing only; `oci.rs` acts on it.
//! Also [`scan`], which tells an OCI invocation from a direct-mode one before clap runs.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// runc's subcommands: a first argument (after global options) that is one of these selects the
/// OCI mode.
pub const SUBCOMMANDS: &[&str] = &[
    "spec", "create", "start", "state", "kill", "delete", "run", "exec", "list", "ps", "pause", "resume", "events",
    "update", "features", "explain",
];

/// Global options that take a value (`--root DIR` or `--root=DIR`).
const VALUED_GLOBALS: &[&str] = &["--root", "--log", "--log-format", "--rootless", "--cgroup-manager"];

/// What [`scan`] learned from the raw arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The OCI mode: a subcommand comes first, or an OCI-only global option was given.
    pub oci: bool,
    /// `--log FILE`, so even an error clap reports reaches the log file.
    pub log: Option<PathBuf>,
    /// `--log-format json`.
    pub json_log: bool,
}

/// Tells the OCI mode from the direct mode: skips the global options, and looks at the first
/// other argument. `crabcan --debug --mount R` stays the direct mode (`--debug` is both's).
pub fn scan(args: &[OsString]) -> Scan {
    let mut scan = Scan::default();
    let mut saw_oci_global = false;
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let Some(text) = arg.to_str() else { break };
        if text == "--debug" {
            continue;
        }
        if text == "--systemd-cgroup" {
            saw_oci_global = true;
            continue;
        }
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) => (name, Some(OsString::from(value))),
            None => (text, None),
        };
        if VALUED_GLOBALS.contains(&name) {
            saw_oci_global = true;
            let value = inline.or_else(|| rest.next().cloned());
            match (name, value) {
                ("--log", Some(value)) => scan.log = Some(PathBuf::from(value)),
                ("--log-format", Some(value)) => scan.json_log = value == "json",
                _ => {}
            }
            continue;
        }
        scan.oci = SUBCOMMANDS.contains(&text);
        break;
    }
    scan.oci |= saw_oci_global;
    scan
}

/// crabcan's OCI mode.
#[derive(Debug, Parser)]
#[command(
    name = "crabcan",
    version,
    about = "crabcan's OCI runtime mode: runc's command line, for container engines",
    subcommand_required = true,
    disable_help_subcommand = true,
    arg_required_else_help = true,
    after_help = "The direct mode is still there: crabcan --mount ROOTFS [-- CMD...] (crabcan --help)."
)]
pub struct OciCli {
    /// Folder of the containers' state (a tmpfs, such as /run) [default: /run/crabcan for root,
    /// $XDG_RUNTIME_DIR/crabcan for anyone else]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Append errors (and, with --debug, debug lines) to this file
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Format of the lines written to --log
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log each step
    #[arg(long)]
    pub debug: bool,

    /// Manage cgroups through systemd (not available: crabcan has only its cgroupfs driver)
    #[arg(long)]
    pub systemd_cgroup: bool,

    /// Whether to run as a rootless container runtime (auto: when not run by root)
    #[arg(long, value_enum, value_name = "true|false|auto", default_value_t = Rootless::Auto)]
    pub rootless: Rootless,

    /// The cgroup driver (crun's option); systemd is not available
    #[arg(long, value_enum, value_name = "MANAGER")]
    pub cgroup_manager: Option<CgroupManagerArg>,

    #[command(subcommand)]
    pub command: OciCommand,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time="..." level=error msg="..."`
    Text,
    /// `{"level":"error","msg":"...","time":"..."}`
    Json,
}

/// `--rootless`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rootless {
    /// Rootless.
    True,
    /// Not rootless.
    False,
    /// Rootless when not run by root.
    Auto,
}

/// `--cgroup-manager`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CgroupManagerArg {
    /// crabcan's own driver.
    Cgroupfs,
    /// systemd's (not available).
    Systemd,
    /// No cgroup at all.
    Disabled,
}

/// `list --format`, `ps --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
}

/// The subcommands, as runc names them.
#[derive(Debug, Subcommand)]
pub enum OciCommand {
    /// Write a default config.json into a bundle
    Spec {
        /// The bundle folder (default: the current folder)
        #[arg(short, long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        /// The rootless variant: a user namespace mapping you to root
        #[arg(long)]
        rootless: bool,
    },
    /// Create a container from a bundle, held before its program runs
    Create(CreateArgs),
    /// Run the program of a created container
    Start {
        /// The container's id
        id: String,
    },
    /// Print a container's state as JSON
    State {
        /// The container's id
        id: String,
    },
    /// Send a signal to a container's process (default SIGTERM)
    Kill {
        /// Send it to every process of the container
        #[arg(short, long)]
        all: bool,
        /// The container's id
        id: String,
        /// A number or name: 9, KILL, SIGKILL
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a container and everything it owned
    Delete {
        /// Kill it first if it is running; an unknown id is not an error
        #[arg(short, long)]
        force: bool,
        /// The container's id
        id: String,
    },
    /// Create and start a container, and wait for it
    Run(RunArgs),
    /// Run a new process in a running container
    Exec(ExecArgs),
    /// List the containers
    List {
        /// Output format
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// List a container's processes
    Ps {
        /// Output format (json: the pids)
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// The container's id
        id: String,
        /// Options for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "PS_ARGS")]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container
    Pause {
        /// The container's id
        id: String,
    },
    /// Thaw a paused container
    Resume {
        /// The container's id
        id: String,
    },
    /// Report a container's events and resource use
    Events {
        /// Report resource use once and exit
        #[arg(long)]
        stats: bool,
        /// How often to report resource use, e.g. 5s, 500ms
        #[arg(long, value_name = "DURATION", default_value = "5s")]
        interval: String,
        /// The container's id
        id: String,
    },
    /// Change a running container's limits
    Update {
        /// A runtime-spec linux.resources JSON object, from a file or - for stdin
        #[arg(short, long, value_name = "FILE|-")]
        resources: Option<PathBuf>,
        /// The single limits below, which override the same ones in --resources
        #[command(flatten)]
        limits: UpdateLimits,
        /// The container's id
        id: String,
    },
    /// Print the OCI features this runtime supports, as JSON
    Features,
    /// Print the confinement a created or running container got (crabcan's own subcommand)
    Explain {
        /// Output format
        #[arg(short, long, value_parser = ["text", "json"], default_value = "text")]
        format: String,
        /// The container's id
        id: String,
    },
}

/// runc's single-limit flags of `update`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct UpdateLimits {
    /// Memory limit, in bytes or with a unit (64m, 1g)
    #[arg(short, long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory plus swap limit, in bytes or with a unit
    #[arg(long, value_name = "SIZE")]
    pub memory_swap: Option<String>,
    /// Maximum number of tasks
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<i64>,
    /// Memory reservation (soft limit), in bytes or with a unit
    #[arg(long, value_name = "SIZE")]
    pub memory_reservation: Option<String>,
    /// CPU shares (relative weight, v1 scale)
    #[arg(long, visible_alias = "cpu-share", value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds per period
    #[arg(long, value_name = "US")]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU realtime period in microseconds (cgroup v1)
    #[arg(long, value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds per realtime period (cgroup v1)
    #[arg(long, value_name = "US")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs the container may run on (0-3,5)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may allocate on (0-1)
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Block I/O weight, 10 to 1000
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
}

impl OciCommand {
    /// The container id the subcommand is about, if it takes one.
    pub fn id(&self) -> Option<&str> {
        match self {
            OciCommand::Spec { .. } | OciCommand::Features | OciCommand::List { .. } => None,
            OciCommand::Create(create) => Some(&create.id),
            OciCommand::Run(run) => Some(&run.create.id),
            OciCommand::Exec(exec) => Some(&exec.id),
            OciCommand::Start { id }
            | OciCommand::State { id }
            | OciCommand::Kill { id, .. }
            | OciCommand::Delete { id, .. }
            | OciCommand::Ps { id, .. }
            | OciCommand::Pause { id }
            | OciCommand::Resume { id }
            | OciCommand::Events { id, .. }
            | OciCommand::Explain { id, .. }
            | OciCommand::Update { id, .. } => Some(id),
        }
    }
}

/// The options `create` and `run` share.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle folder, holding config.json (default: the current folder)
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container process's pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when the process has a terminal
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the container's process
    #[arg(long, value_name = "SOCKET")]
    pub pidfd_socket: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (refused: crabcan always pivots)
    #[arg(long)]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one named after the container
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many fds beyond stdin, stdout and stderr (3, 4, ...) to the container
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container's id
    pub id: String,
}

/// `run`: `create`'s options and these.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container started instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Do not make crabcan a child subreaper
    #[arg(long)]
    pub no_subreaper: bool,
}

/// `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A JSON file with the process to run (runtime-spec process object)
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process started instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Write the new process's pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Give the process a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the new process
    #[arg(long, value_name = "SOCKET")]
    pub pidfd_socket: Option<PathBuf>,
    /// Set an environment variable; repeatable
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working folder inside the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// The user to run as
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// A supplementary group; repeatable
    #[arg(short = 'g', long, value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability, e.g. CAP_NET_ADMIN; repeatable
    #[arg(short, long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass this many fds beyond stdin, stdout and stderr to the process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container's id
    pub id: String,
    /// The command and its arguments (everything after the id that is not an option)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn parse(args: &[&str]) -> OciCli {
        OciCli::try_parse_from(args).unwrap_or_else(|error| panic!("{args:?}: {error}"))
    }

    #[test]
    fn the_first_argument_after_global_options_picks_the_mode() {
        assert!(!scan(&os(&["crabcan", "--mount", "r", "--command", "/bin/sh"])).oci);
        assert!(!scan(&os(&["crabcan", "--mount", "r", "--", "state"])).oci);
        assert!(!scan(&os(&["crabcan", "--debug", "-m", "r"])).oci);
        assert!(!scan(&os(&["crabcan", "--help"])).oci);
        assert!(!scan(&os(&["crabcan"])).oci);
        assert!(scan(&os(&["crabcan", "state", "x"])).oci);
        assert!(scan(&os(&["crabcan", "--debug", "list"])).oci);
        let full = scan(&os(&[
            "crabcan",
            "--root",
            "/r",
            "--log=/l",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "kill",
            "x",
        ]));
        assert_eq!(
            full,
            Scan {
                oci: true,
                log: Some("/l".into()),
                json_log: true
            }
        );
        // An OCI-only global option without a subcommand is the OCI mode, whose parser says
        // what is missing.
        assert!(scan(&os(&["crabcan", "--root", "/r"])).oci);
        assert!(scan(&os(&["crabcan", "--root", "/r", "--bogus"])).oci);
    }

    #[test]
    fn global_options_and_defaults() {
        let cli = parse(&["crabcan", "list"]);
        assert_eq!(cli.root, None, "chosen by who runs crabcan (oci::state_root)");
        assert_eq!(cli.log_format, LogFormat::Text);
        assert_eq!(cli.rootless, Rootless::Auto);
        assert!(!cli.debug && !cli.systemd_cgroup && cli.log.is_none() && cli.cgroup_manager.is_none());
        let cli = parse(&[
            "crabcan",
            "--root",
            "/tmp/r",
            "--log",
            "/tmp/l",
            "--log-format",
            "json",
            "--debug",
            "--systemd-cgroup",
            "--rootless",
            "false",
            "--cgroup-manager",
            "disabled",
            "state",
            "x",
        ]);
        assert_eq!(cli.root, Some(PathBuf::from("/tmp/r")));
        assert_eq!(cli.log, Some(PathBuf::from("/tmp/l")));
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(cli.debug && cli.systemd_cgroup);
        assert_eq!(cli.rootless, Rootless::False);
        assert_eq!(cli.cgroup_manager, Some(CgroupManagerArg::Disabled));
        assert!(matches!(cli.command, OciCommand::State { id } if id == "x"));
        assert!(OciCli::try_parse_from(["crabcan", "--log-format", "xml", "list"]).is_err());
        assert!(OciCli::try_parse_from(["crabcan", "--rootless", "maybe", "list"]).is_err());
    }

    #[test]
    fn options_before_or_after_the_id() {
        for args in [
            &[
                "crabcan",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "--preserve-fds",
                "2",
                "c1",
            ][..],
            &[
                "crabcan",
                "create",
                "c1",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "--preserve-fds",
                "2",
            ][..],
            &[
                "crabcan",
                "create",
                "-b",
                "/b",
                "c1",
                "--pid-file=/p",
                "--preserve-fds=2",
            ][..],
        ] {
            let OciCommand::Create(create) = parse(args).command else {
                panic!("{args:?}")
            };
            assert_eq!(create.id, "c1");
            assert_eq!(create.bundle, PathBuf::from("/b"));
            assert_eq!(create.pid_file, Some(PathBuf::from("/p")));
            assert_eq!(create.preserve_fds, 2);
        }
        for args in [
            &["crabcan", "delete", "--force", "c1"][..],
            &["crabcan", "delete", "c1", "--force"][..],
            &["crabcan", "delete", "c1", "-f"][..],
        ] {
            assert!(matches!(parse(args).command, OciCommand::Delete { force: true, id } if id == "c1"));
        }
        for args in [
            &["crabcan", "kill", "--all", "c1", "KILL"][..],
            &["crabcan", "kill", "c1", "KILL", "--all"][..],
            &["crabcan", "kill", "c1", "-a", "KILL"][..],
        ] {
            assert!(
                matches!(parse(args).command, OciCommand::Kill { all: true, id, signal } if id == "c1" && signal == "KILL")
            );
        }
        assert!(
            matches!(parse(&["crabcan", "kill", "c1"]).command, OciCommand::Kill { signal, .. } if signal == "SIGTERM")
        );
        let OciCommand::Run(run) = parse(&["crabcan", "run", "c1", "-d", "--bundle", "/b"]).command else {
            panic!()
        };
        assert!(run.detach && run.create.id == "c1" && run.create.bundle == Path::new("/b"));
        assert!(matches!(
            parse(&["crabcan", "list", "-q", "--format", "json"]).command,
            OciCommand::List {
                quiet: true,
                format: Format::Json
            }
        ));
        assert!(matches!(
            parse(&["crabcan", "update", "c1", "--resources", "-"]).command,
            OciCommand::Update { id, resources: Some(resources), .. } if id == "c1" && resources == Path::new("-")
        ));
        assert!(matches!(
            parse(&["crabcan", "events", "c1", "--stats", "--interval", "1s"]).command,
            OciCommand::Events { stats: true, id, interval } if id == "c1" && interval == "1s"
        ));
        assert!(matches!(
            parse(&["crabcan", "spec", "--rootless", "-b", "/b"]).command,
            OciCommand::Spec { rootless: true, bundle: Some(b) } if b == Path::new("/b")
        ));
    }

    #[test]
    fn exec_keeps_the_commands_own_options() {
        let OciCommand::Exec(exec) = parse(&[
            "crabcan",
            "exec",
            "--tty",
            "c1",
            "--env",
            "A=1",
            "-u",
            "1000:1000",
            "sh",
            "-c",
            "echo --tty",
        ])
        .command
        else {
            panic!()
        };
        assert!(exec.tty);
        assert_eq!(exec.id, "c1");
        assert_eq!(exec.env, ["A=1"]);
        assert_eq!(exec.user.as_deref(), Some("1000:1000"));
        assert_eq!(exec.command, ["sh", "-c", "echo --tty"]);
        let OciCommand::Exec(exec) = parse(&["crabcan", "exec", "c1", "ls", "-l", "--detach"]).command else {
            panic!()
        };
        assert!(!exec.detach, "after the command, options are the command's");
        assert_eq!(exec.command, ["ls", "-l", "--detach"]);
        let OciCommand::Ps { ps_args, .. } = parse(&["crabcan", "ps", "c1", "-eo", "pid"]).command else {
            panic!()
        };
        assert_eq!(ps_args, ["-eo", "pid"]);
    }

    #[test]
    fn every_subcommand_is_known_to_the_scanner_and_has_help() {
        use clap::CommandFactory;
        let command = OciCli::command();
        let names: Vec<&str> = command.get_subcommands().map(|s| s.get_name()).collect();
        let mut expected = SUBCOMMANDS.to_vec();
        expected.sort_unstable();
        let mut names_sorted = names.clone();
        names_sorted.sort_unstable();
        assert_eq!(names_sorted, expected);
        command.debug_assert();
        let help = OciCli::try_parse_from(["crabcan", "create", "--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
    }
}
