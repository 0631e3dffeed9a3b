//! The command line of `crabcan`: flags, their defaults and value parsers. Parsing only; turning
//! the flags into a container configuration happens in `main.rs`.

use std::path::PathBuf;

use clap::Parser;

/// The examples and exit statuses shown after the flags, before the defaults (see [`after_help`]).
const EXAMPLES: &str = "\
Examples:
  crabcan --mount ./rootfs                         interactive shell (/bin/sh)
  crabcan --mount ./rootfs --command \"echo hi\"     one command, given as a string
  crabcan --mount ./rootfs -- ls -l /              one command, given as arguments
  crabcan --mount ./rootfs --add /srv/data:/data:ro --memory 256M --pids 32 -- sh
  crabcan --mount ./rootfs --uid 1000 --env LANG=C.UTF-8 --workdir /tmp -- id
  mkfifo -m 0622 /run/go; crabcan --mount ./rootfs --start-fifo /run/go -- date &
  cat /run/go                                      set up now, start later from another process
  crabcan --mount ./rootfs --seccomp-learn sh.json -- sh -c 'ls /'   learn the syscalls it makes
  crabcan --mount ./rootfs --seccomp-profile sh.json -- sh -c 'ls /'  then enforce just those
  crabcan --mount ./rootfs --explain=json -- sh    the confinement it would get, not started

OCI runtime mode (runc's command line, for container engines): crabcan [--root DIR] SUBCOMMAND,
e.g. crabcan spec, crabcan state ID, crabcan list; crabcan spec --help for one subcommand's options.

Exit status: the command's own; 128+N if it was killed by signal N (137 after an out-of-memory
kill); 125 if crabcan failed before the command ran; 126 if the command cannot be executed;
127 if it was not found in the container.

Build a root filesystem with `cargo xtask rootfs`, or run everything at once with `cargo xtask run`.";

#[derive(Debug, Parser)]
#[command(name = "crabcan", version, about = "Run a command in an isolated Linux container")]
pub struct Args {
    /// Root filesystem of the container (a directory)
    #[arg(short, long, value_name = "DIR")]
    pub mount: PathBuf,

    /// Command to run, as one string split like a shell would (default /bin/sh)
    #[arg(short, long, value_name = "CMD", conflicts_with = "args")]
    pub command: Option<String>,

    /// Command and arguments to run, after `--`
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,

    /// User id the command runs as inside the container
    #[arg(short, long, default_value_t = 0, value_name = "UID", allow_hyphen_values = true)]
    pub uid: u32,

    /// Group id the command runs as inside the container (default: same as --uid)
    #[arg(short, long, value_name = "GID", allow_hyphen_values = true)]
    pub gid: Option<u32>,

    /// Bind a host path into the container; repeatable
    #[arg(short, long = "add", value_name = "HOST:CONTAINER[:ro]")]
    pub add: Vec<String>,

    /// Hostname of the container (default: a generated name like soft-world-116)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Set an environment variable; repeatable
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Working directory inside the container
    #[arg(short, long, default_value = "/", value_name = "DIR")]
    pub workdir: PathBuf,

    /// User namespace uid map (default: a private range of 65536 host ids for this container,
    /// from crabcan's entry in /etc/subuid or above every range listed there)
    #[arg(long, value_name = "INSIDE:OUTSIDE:COUNT")]
    pub uid_map: Option<String>,

    /// User namespace gid map (default: the same numbers as --uid-map, or a private range)
    #[arg(long, value_name = "INSIDE:OUTSIDE:COUNT")]
    pub gid_map: Option<String>,

    /// Memory limit, e.g. 512M or 1G, at least 6M ("max" for none)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,

    /// Memory plus swap limit (default: no swap beyond --memory)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,

    /// Maximum number of processes and threads ("max" for none)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids: Option<String>,

    /// CPU weight, 1 to 10000 (cgroup v2 scale; v1 hosts get the equivalent shares)
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub cpu_weight: Option<u64>,

    /// CPU quota in CPUs, e.g. 0.5
    #[arg(long, value_name = "CPUS", allow_hyphen_values = true)]
    pub cpus: Option<f64>,

    /// I/O weight, 1 to 10000 (the default one is left out on cgroup v1 where no block device
    /// uses the BFQ scheduler, which alone applies weights there)
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub io_weight: Option<u16>,

    /// Run without a cgroup of its own (no memory, pids, CPU or I/O limits)
    #[arg(long)]
    pub no_cgroup: bool,

    /// Warn instead of failing when the host lacks a cgroup controller for a limit
    #[arg(long)]
    pub allow_missing_controllers: bool,

    /// Open files limit (RLIMIT_NOFILE), soft and hard
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub nofile: Option<u64>,

    /// Size of the container's /tmp tmpfs
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub tmp_size: Option<String>,

    /// Run a minimal init as pid 1 that forwards signals (Ctrl-C) to the command and reaps
    /// zombies, like `docker run --init`
    #[arg(long)]
    pub init: bool,

    /// Add a capability to the default set (e.g. NET_ADMIN, or ALL); repeatable
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a capability from the default set (or ALL); repeatable
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// Seccomp profile: one crabcan ships (listed below), or unconfined (no filter)
    #[arg(
        long,
        default_value = "default",
        value_name = "PROFILE",
        conflicts_with = "seccomp_profile"
    )]
    pub seccomp: String,

    /// Seccomp profile in Docker/OCI JSON format
    #[arg(long, value_name = "FILE")]
    pub seccomp_profile: Option<PathBuf>,

    /// Learn a seccomp profile: run the command under a filter that reports each of its
    /// syscalls to crabcan (calls the default profile denies still fail, and are reported),
    /// then merge those it made into FILE (Docker/OCI JSON, created if missing); Linux 5.5+
    #[arg(long, value_name = "FILE", conflicts_with_all = ["seccomp_profile", "init"])]
    pub seccomp_learn: Option<PathBuf>,

    /// With --seccomp-learn: deny nothing while learning, and learn the calls the default
    /// profile would deny too
    #[arg(long, requires = "seccomp_learn")]
    pub seccomp_learn_unconfined: bool,

    /// Print the confinement the container would get (namespaces, mounts, capabilities,
    /// seccomp, cgroup files, rlimits, what this host cannot honour) without starting it
    #[arg(
        long,
        value_name = "FORMAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "text",
        value_parser = ["text", "json"]
    )]
    pub explain: Option<String>,

    /// Fail instead of warning when a confinement asked for cannot be applied on this host
    /// (an I/O weight without a weight-aware scheduler, a controller missing under
    /// --allow-missing-controllers, an idmapped mount the filesystem cannot make)
    #[arg(long)]
    pub strict: bool,

    /// Give the container its own pseudo-terminal (default: when stdin is a terminal)
    #[arg(short, long, conflicts_with = "no_tty")]
    pub tty: bool,

    /// Never give the container a pseudo-terminal
    #[arg(long)]
    pub no_tty: bool,

    /// Hold the container before its command runs until another process opens this FIFO for
    /// reading (`cat PATH`); make it with `mkfifo -m 0622 PATH`
    #[arg(long, value_name = "PATH")]
    pub start_fifo: Option<PathBuf>,

    /// Log each setup step (also RUST_LOG=debug)
    #[arg(short, long)]
    pub debug: bool,
}

/// What `--help` shows after the flags: the examples, then the defaults, read from where each
/// default lives (crabcan-core and crabcan-cgroups), so help never disagrees with behaviour.
pub fn after_help() -> String {
    let limits = crabcan_core::Limits::default();
    let size = |bytes: Option<u64>| bytes.map(crabcan_core::human_size).unwrap_or_else(|| "none".into());
    let number = |value: Option<u64>| value.map(|n| n.to_string()).unwrap_or_else(|| "none".into());
    let nofile = crabcan_core::DEFAULT_NOFILE;
    format!(
        "{EXAMPLES}\n\nDefaults: --memory {}, --memory-swap none beyond it, --pids {}, --cpu-weight {}, \
         --io-weight {}, --nofile {} soft / {} hard (at most crabcan's own hard limit), --tmp-size the \
         memory limit (or {} without one), capabilities: Docker's less MKNOD ({}), --seccomp default \
         (shipped: {}), host ids: a private range from crabcan's pool.",
        size(limits.memory),
        number(limits.pids),
        number(limits.cpu_weight),
        number(limits.io_weight.map(u64::from)),
        nofile.soft,
        nofile.hard,
        crabcan_core::human_size(crabcan_core::DEFAULT_TMP_SIZE),
        crabcan_core::DEFAULT_CAPABILITIES.len(),
        crabcan_seccomp::ShippedProfile::names(),
    )
}
