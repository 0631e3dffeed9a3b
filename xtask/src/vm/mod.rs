//! `cargo xtask test-vm`: the privileged integration tests in a qemu VM
//! (pure cgroup v2, a kernel that is not the host's). Owns the
//! orchestration: payload -> rootfs -> kernel -> initramfs -> qemu -> result.

pub mod cpio;
pub mod init;
pub mod initramfs;
pub mod kernel;
pub mod payload;
pub mod qemu;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use qemu::{Accel, Summary, VmOutcome};

use crate::paths;
use crate::rootfs::{self, RootfsOptions};

/// Host id of the container's root in the VM tests (below crabcan's pool, owned by no one).
pub const VM_ID_OFFSET: u32 = 1_000_000_000;

/// Everything that can go wrong in a VM run; one line each.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("kernel: {0}")]
    Kernel(String),
    #[error("build: {0}")]
    Build(String),
    #[error("rootfs: {0}")]
    Rootfs(#[from] rootfs::RootfsError),
    #[error("{0}")]
    Vm(String),
    #[error("{0}")]
    Other(String),
}

impl VmError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> VmError {
        VmError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What to run in the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// crabcan and the crabcan-tests integration tests.
    Crabcan,
    /// xtask's own `vm_placeholder` test, no crabcan: proves the machinery.
    Placeholder,
    /// `cargo xtask bench --vm`: crabcan and the bench's spawner; the guest
    /// times `warmup` then `runs` interleaved rounds instead of testing.
    Bench { runs: u32, warmup: u32 },
}

impl Payload {
    /// The initramfs file (in target/test-vm/) and the serial log: the bench's
    /// are its own, so a bench run leaves the tests' log alone.
    pub fn files(&self, target: &Path) -> (&'static str, PathBuf) {
        match self {
            Payload::Bench { .. } => ("bench-initramfs.cpio.gz", target.join("bench-vm.log")),
            _ => ("initramfs.cpio.gz", qemu::default_log(target)),
        }
    }
}

/// Options of `cargo xtask test-vm`.
#[derive(Debug, Clone)]
pub struct TestVmOptions {
    pub kernel: Option<PathBuf>,
    pub accel: Accel,
    pub timeout: Duration,
    pub payload: Payload,
    /// `KEY=VALUE` put in the guest's environment (via the kernel command line).
    pub guest_env: Vec<String>,
    pub memory_mb: u32,
    pub cpus: u32,
    /// Only this integration test binary of crabcan-tests (`--test NAME`), instead of all.
    pub only_test: Option<String>,
}

/// Builds everything, boots the VM, returns what the guest reported.
pub fn run_test_vm(opts: &TestVmOptions) -> Result<VmOutcome, VmError> {
    let started = Instant::now();
    let target = paths::target_dir();
    let work = target.join("test-vm");
    std::fs::create_dir_all(&work).map_err(|e| VmError::io("creating", &work, e))?;

    // The quick checks first: fail before a long build.
    let kernel = kernel::find_kernel(opts.kernel.as_deref(), &paths::cache_dir())?;
    eprintln!("xtask: kernel: {}", kernel.origin);
    let busybox = rootfs::find_static_busybox()?;

    let build_start = Instant::now();
    let (crabcan, tests, helpers) = build_payload(&opts.payload, opts.only_test.as_deref(), &work)?;
    let build_secs = build_start.elapsed().as_secs_f64();

    let rootfs_dir = work.join("rootfs");
    // Linux 6.1 cannot idmap the VM's tmpfs root: the test rootfs is owned by host ids no one
    // owns, and the tests pass them as the container's map (CRABCAN_TEST_ID_MAP).
    let vm_rootfs = RootfsOptions {
        id_offset: VM_ID_OFFSET,
        ..RootfsOptions::offline()
    };
    rootfs::ensure_rootfs(&rootfs_dir, &vm_rootfs)?;

    let (initrd_name, log) = opts.payload.files(&target);
    let initrd = work.join(initrd_name);
    let guest = match opts.payload {
        Payload::Bench { runs, warmup } => initramfs::Guest::Bench {
            runs,
            warmup,
            id_map: format!("0:{VM_ID_OFFSET}:65536"),
        },
        _ => initramfs::Guest::Tests {
            timeout_secs: opts.timeout.as_secs().max(60),
        },
    };
    let contents = initramfs::Contents {
        busybox,
        rootfs: rootfs_dir,
        crabcan,
        tests,
        helpers,
        guest,
    };
    initramfs::build_initramfs(&initrd, &contents)?;
    let size = std::fs::metadata(&initrd).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "xtask: initramfs {} ({:.1} MiB); prepared in {:.0} s (build {:.0} s)",
        initrd.display(),
        size as f64 / 1048576.0,
        started.elapsed().as_secs_f64(),
        build_secs
    );

    let remaining = opts
        .timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(30));
    let config = qemu::VmConfig {
        kernel: kernel.image,
        initrd,
        accel: opts.accel,
        memory_mb: opts.memory_mb,
        cpus: opts.cpus,
        timeout: remaining,
        kvm_life_timeout: Duration::from_secs(20),
        extra_append: opts.guest_env.clone(),
        log,
    };
    let outcome = qemu::run_vm(&config)?;
    eprintln!(
        "xtask: VM ({:?}) booted in {:.1} s; build {:.0} s; total {:.0} s",
        outcome.accel_used,
        outcome.boot_secs,
        build_secs,
        started.elapsed().as_secs_f64()
    );
    Ok(outcome)
}

/// Static helper programs the tests need, found in build-script output
/// dirs; each goes to /crabcan/bin/ and its env var points there.
const HELPERS: &[(&str, &str)] = &[("crabcan-probe", "CRABCAN_PROBE")];

type Built = (Option<PathBuf>, Vec<PathBuf>, Vec<initramfs::Helper>);

fn build_payload(payload: &Payload, only_test: Option<&str>, work: &Path) -> Result<Built, VmError> {
    let (crabcan, tests) = match payload {
        Payload::Crabcan => (
            Some(payload::build_static_crabcan()?),
            payload::build_static_tests("crabcan-tests", only_test)?,
        ),
        Payload::Placeholder => (None, payload::build_static_tests("xtask", Some("vm_placeholder"))?),
        Payload::Bench { .. } => return build_bench_payload(work),
    };
    let mut helpers = Vec::new();
    for (name, env) in HELPERS {
        if let Some(path) = tests.helper(name) {
            payload::ensure_static(&path)?;
            helpers.push(initramfs::Helper {
                path,
                name: name.to_string(),
                env: env.to_string(),
            });
        }
    }
    Ok((crabcan, tests.executables, helpers))
}

/// The bench's payload: crabcan and the bench's spawner (static, built in `work`), no tests.
fn build_bench_payload(work: &Path) -> Result<Built, VmError> {
    let crabcan = payload::build_static_crabcan()?;
    let spawner = crate::bench::spawner::build(work).map_err(VmError::Build)?;
    payload::ensure_static(&spawner)?;
    let helper = initramfs::Helper {
        path: spawner,
        name: "spawner".to_string(),
        env: "CRABCAN_SPAWNER".to_string(),
    };
    Ok((Some(crabcan), Vec::new(), vec![helper]))
}
