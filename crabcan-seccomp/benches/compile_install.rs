//! Tiny benchmark (no framework): median time to compile the shipped
//! profiles to BPF, and to install the default filter (in forked children,
//! since filters stack). Run with `cargo bench -p crabcan-seccomp`.

use std::time::{Duration, Instant};

use crabcan_seccomp::{set_no_new_privs, CompiledFilter, Profile, ShippedProfile};

const COMPILE_RUNS: usize = 200;
const INSTALL_RUNS: usize = 100;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn bench_compile(name: &str, profile: &Profile) {
    let samples = (0..COMPILE_RUNS)
        .map(|_| {
            let start = Instant::now();
            let filter = profile.compile().expect("compiles");
            let elapsed = start.elapsed();
            std::hint::black_box(filter);
            elapsed
        })
        .collect();
    let len = profile.compile().expect("compiles").len();
    println!(
        "compile {name:8} ({len:4} BPF instructions): median {:?} over {COMPILE_RUNS} runs",
        median(samples)
    );
}

/// Installs `filter` in a forked child and returns how long the install took.
fn install_once(filter: &CompiledFilter) -> Duration {
    let mut fds = [0; 2];
    // SAFETY: room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes syscalls, writes to the pipe and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ok = set_no_new_privs().is_ok();
        let start = Instant::now();
        let installed = ok && filter.install().is_ok();
        let nanos: u64 = if installed {
            start.elapsed().as_nanos() as u64
        } else {
            u64::MAX
        };
        // SAFETY: writing 8 bytes, then leaving the child.
        unsafe {
            libc::write(fds[1], nanos.to_le_bytes().as_ptr().cast(), 8);
            libc::_exit(0)
        }
    }
    let mut bytes = [0u8; 8];
    // SAFETY: reading 8 bytes into a live buffer; then reaping our child.
    unsafe {
        libc::close(fds[1]);
        libc::read(fds[0], bytes.as_mut_ptr().cast(), 8);
        libc::close(fds[0]);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    let nanos = u64::from_le_bytes(bytes);
    assert_ne!(nanos, u64::MAX, "install failed in the child");
    Duration::from_nanos(nanos)
}

fn main() {
    for shipped in ShippedProfile::ALL {
        bench_compile(shipped.name(), &shipped.profile());
    }
    let filter = Profile::default_profile().compile().expect("compiles");
    let samples = (0..INSTALL_RUNS).map(|_| install_once(&filter)).collect();
    println!(
        "install default ({} BPF instructions): median {:?} over {INSTALL_RUNS} runs",
        filter.len(),
        median(samples)
    );
    let bytes = filter.to_bytes();
    let start = Instant::now();
    let decoded = CompiledFilter::from_bytes(&bytes).expect("decodes");
    println!("from_bytes default ({} bytes): {:?}", bytes.len(), start.elapsed());
    std::hint::black_box(decoded);
}
