//! [`Limits`] (what a container may use) and [`LimitKind`] (which limit an error or an
//! [`crate::Unapplied`] is about), crabcan's default limits as named constants, the
//! validation of limits, [`parse_size`] for human sizes and the CPU/I/O weight conversions
//! between the cgroup v1 and v2 scales.

use std::fmt;

use crate::error::{CgroupError, ParseSizeError};

/// One kind of limit of [`Limits`]: errors and [`crate::Unapplied`] entries name the limit
/// they are about with it, so a caller can map it to its own words (e.g. a command-line flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LimitKind {
    /// [`Limits::memory`].
    Memory,
    /// [`Limits::memory_swap`].
    MemorySwap,
    /// [`Limits::pids`].
    Pids,
    /// [`Limits::cpu_weight`].
    CpuWeight,
    /// [`Limits::cpu_quota`].
    CpuQuota,
    /// [`Limits::io_weight`].
    IoWeight,
}

impl fmt::Display for LimitKind {
    /// The limit in words, as messages use it: "memory limit", "CPU weight", ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Memory => "memory limit",
            LimitKind::MemorySwap => "memory+swap limit",
            LimitKind::Pids => "pids limit",
            LimitKind::CpuWeight => "CPU weight",
            LimitKind::CpuQuota => "CPU quota",
            LimitKind::IoWeight => "I/O weight",
        })
    }
}

/// Resource limits for one container. `None` means "no limit".
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Total memory + swap in bytes (like `docker --memory-swap`). `None`:
    /// same as `memory`, i.e. no swap, where the host has swap accounting.
    pub memory_swap: Option<u64>,
    /// Maximum number of tasks (processes and threads).
    pub pids: Option<u64>,
    /// CPU weight on the cgroup v2 scale, 1..=10000 (v2 default 100). On v1
    /// it is converted to `cpu.shares` with [`cpu_weight_to_shares`].
    pub cpu_weight: Option<u64>,
    /// CPU bandwidth in CPUs (0.5 = half a CPU), enforced per 100 ms period.
    pub cpu_quota: Option<f64>,
    /// I/O weight on the cgroup v2 scale, 1..=10000 (v2 default 100). On v1
    /// it is clamped to the `blkio.weight` range 10..=1000.
    pub io_weight: Option<u16>,
}

/// crabcan's default memory limit: 1 GiB.
pub const DEFAULT_MEMORY: u64 = 1 << 30;
/// crabcan's default pids limit: 64 tasks.
pub const DEFAULT_PIDS: u64 = 64;
/// crabcan's default CPU share (v1 scale): 256, a quarter of a v1 cgroup's default 1024.
pub const DEFAULT_CPU_SHARES: u64 = 256;
/// crabcan's default CPU weight (v2 scale): the equivalent of [`DEFAULT_CPU_SHARES`], 10
/// (v1 hosts get 238 shares after the round trip through the v2 scale).
pub const DEFAULT_CPU_WEIGHT: u64 = cpu_shares_to_weight(DEFAULT_CPU_SHARES);
/// crabcan's default I/O weight (v2 scale; the same number on v1's `blkio.weight`): 50.
pub const DEFAULT_IO_WEIGHT: u16 = 50;

impl Default for Limits {
    /// crabcan's defaults: [`DEFAULT_MEMORY`] (1 GiB) of memory and no swap, [`DEFAULT_PIDS`]
    /// (64) tasks, [`DEFAULT_CPU_WEIGHT`] (the equivalent of 256 CPU shares), I/O weight
    /// [`DEFAULT_IO_WEIGHT`] (50), no CPU quota.
    fn default() -> Self {
        Limits {
            memory: Some(DEFAULT_MEMORY),
            memory_swap: None,
            pids: Some(DEFAULT_PIDS),
            cpu_weight: Some(DEFAULT_CPU_WEIGHT),
            cpu_quota: None,
            io_weight: Some(DEFAULT_IO_WEIGHT),
        }
    }
}

impl Limits {
    /// No limits at all.
    pub fn unlimited() -> Self {
        Limits {
            memory: None,
            memory_swap: None,
            pids: None,
            cpu_weight: None,
            cpu_quota: None,
            io_weight: None,
        }
    }

    /// Checks the limits are consistent and usable before anything is written: memory and
    /// memory+swap at least [`MIN_MEMORY`] (6 MiB, Docker's minimum), pids from 1 to
    /// [`PID_MAX_LIMIT`], a CPU quota from 0.01 to the number of CPUs this process may run on.
    pub fn validate(&self) -> Result<(), CgroupError> {
        self.validate_for_cpus(available_cpus())
    }

    /// [`Limits::validate`] with `cpus` CPUs available.
    pub(crate) fn validate_for_cpus(&self, cpus: usize) -> Result<(), CgroupError> {
        at_least_min_memory(LimitKind::Memory, self.memory)?;
        at_least_min_memory(LimitKind::MemorySwap, self.memory_swap)?;
        match (self.memory, self.memory_swap) {
            (None, Some(_)) => return Err(CgroupError::SwapWithoutMemory),
            (Some(memory), Some(swap)) if swap < memory => return Err(CgroupError::SwapBelowMemory { swap, memory }),
            _ => {}
        }
        if let Some(pids) = self.pids.filter(|pids| !(1..=PID_MAX_LIMIT).contains(pids)) {
            return Err(CgroupError::PidsOutOfRange {
                pids,
                min: 1,
                max: PID_MAX_LIMIT,
            });
        }
        weight_in_range(LimitKind::CpuWeight, self.cpu_weight)?;
        // NaN is in no range, so it is refused too.
        if let Some(q) = self.cpu_quota.filter(|q| !(MIN_CPU_QUOTA..=cpus as f64).contains(q)) {
            return Err(CgroupError::CpuQuotaOutOfRange {
                cpus: q,
                available: cpus,
            });
        }
        weight_in_range(LimitKind::IoWeight, self.io_weight.map(u64::from))
    }
}

/// [`CgroupError::MemoryBelowMinimum`] for a memory limit below [`MIN_MEMORY`].
fn at_least_min_memory(limit: LimitKind, bytes: Option<u64>) -> Result<(), CgroupError> {
    match bytes {
        Some(bytes) if bytes < MIN_MEMORY => Err(CgroupError::MemoryBelowMinimum {
            limit,
            bytes,
            min: MIN_MEMORY,
        }),
        _ => Ok(()),
    }
}

/// [`CgroupError::WeightOutOfRange`] for a CPU or I/O weight outside 1..=10000.
fn weight_in_range(limit: LimitKind, weight: Option<u64>) -> Result<(), CgroupError> {
    match weight {
        Some(weight) if !(CPU_WEIGHT_MIN..=CPU_WEIGHT_MAX).contains(&weight) => Err(CgroupError::WeightOutOfRange {
            limit,
            weight,
            min: CPU_WEIGHT_MIN,
            max: CPU_WEIGHT_MAX,
        }),
        _ => Ok(()),
    }
}

/// The smallest memory (and memory+swap) limit accepted, 6 MiB: Docker's minimum. Below it a
/// container is OOM-killed while it is still being set up.
pub const MIN_MEMORY: u64 = 6 << 20;
/// The largest pids limit the kernel accepts in `pids.max` (PID_MAX_LIMIT on 64-bit).
pub const PID_MAX_LIMIT: u64 = 4_194_304;
/// The smallest CPU quota accepted, in CPUs (Docker's 0.01).
pub const MIN_CPU_QUOTA: f64 = 0.01;

/// The CPUs this process may run on: its affinity mask (as Go's `runtime.NumCPU`, which
/// Docker uses), else the online CPUs, else 1.
pub fn available_cpus() -> usize {
    // SAFETY: cpu_set_t is plain data; all zeroes is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc == 0 {
        // SAFETY: CPU_COUNT only reads the set filled in above.
        let count = unsafe { libc::CPU_COUNT(&set) };
        if count > 0 {
            return count as usize;
        }
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).ok().filter(|n| *n > 0).unwrap_or(1)
}

pub(crate) const CPU_WEIGHT_MIN: u64 = 1;
pub(crate) const CPU_WEIGHT_MAX: u64 = 10_000;
const CPU_SHARES_MIN: u64 = 2;
const CPU_SHARES_MAX: u64 = 262_144;

/// v1 `cpu.shares` (2..=262144, clamped) to v2 `cpu.weight` (1..=10000),
/// with the formula runc/crun/systemd use: `1 + ((shares - 2) * 9999) / 262142`.
pub const fn cpu_shares_to_weight(shares: u64) -> u64 {
    // `Ord::clamp` is not const.
    let shares = if shares < CPU_SHARES_MIN {
        CPU_SHARES_MIN
    } else if shares > CPU_SHARES_MAX {
        CPU_SHARES_MAX
    } else {
        shares
    };
    1 + ((shares - CPU_SHARES_MIN) * 9999) / (CPU_SHARES_MAX - CPU_SHARES_MIN)
}

/// Inverse of [`cpu_shares_to_weight`]: v2 weight (clamped to 1..=10000) to
/// v1 shares, `2 + ((weight - 1) * 262142) / 9999`. Exact at both ends;
/// `cpu_shares_to_weight(cpu_weight_to_shares(w)) == w` for every weight.
pub fn cpu_weight_to_shares(weight: u64) -> u64 {
    let weight = weight.clamp(CPU_WEIGHT_MIN, CPU_WEIGHT_MAX);
    CPU_SHARES_MIN + ((weight - CPU_WEIGHT_MIN) * (CPU_SHARES_MAX - CPU_SHARES_MIN)).div_ceil(9999)
}

/// v2 I/O weight to v1 `blkio.weight`: clamped to 10..=1000 (the v1 range),
/// so the default weight 50 stays 50 on v1 hosts.
pub fn io_weight_to_blkio_weight(weight: u16) -> u16 {
    weight.clamp(10, 1000)
}

/// Parses a size: a decimal number (fraction allowed) and an optional
/// binary unit, case-insensitive: `B`, `K`/`KB`/`KiB`, `M`, `G`, `T`, `P`
/// (all powers of 1024, like docker). Examples: `"100"` (bytes), `"1024k"`,
/// `"512M"`, `"64MiB"`, `"1.5G"`. Fractions of a byte are truncated once a
/// unit is given (`1.3K` = 1331); a bare fractional byte count is an error.
pub fn parse_size(s: &str) -> Result<u64, ParseSizeError> {
    let input = s.trim();
    if input.is_empty() {
        return Err(ParseSizeError::Empty);
    }
    let split = input
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(input.len());
    let (number, unit) = input.split_at(split);
    let (whole, fraction) = split_number(number).ok_or_else(|| ParseSizeError::InvalidNumber(input.to_string()))?;
    let multiplier = unit_multiplier(unit.trim_start()).ok_or_else(|| ParseSizeError::UnknownUnit {
        input: input.to_string(),
        unit: unit.trim_start().to_string(),
    })?;
    let overflow = || ParseSizeError::Overflow(input.to_string());
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().map_err(|_| overflow())?.into()
    };
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(overflow)?;
    let fraction_bytes = fraction_of(fraction, multiplier);
    if multiplier == 1 && fraction.bytes().any(|b| b != b'0') {
        return Err(ParseSizeError::FractionalBytes(input.to_string()));
    }
    bytes = bytes.checked_add(fraction_bytes).ok_or_else(overflow)?;
    u64::try_from(bytes).map_err(|_| overflow())
}

/// Splits "12.5" into ("12", "5"); `None` if not digits[.digits] with at least one digit.
fn split_number(number: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    Some((whole, fraction))
}

/// `0.<fraction> * multiplier`, truncated; only the first 18 digits count.
fn fraction_of(fraction: &str, multiplier: u128) -> u128 {
    let digits = &fraction[..fraction.len().min(18)];
    if digits.is_empty() {
        return 0;
    }
    let numerator: u128 = digits.parse().unwrap_or(0);
    let denominator = 10u128.pow(digits.len() as u32);
    numerator * multiplier / denominator
}

fn unit_multiplier(unit: &str) -> Option<u128> {
    let exponent = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 2,
        "g" | "gb" | "gib" => 3,
        "t" | "tb" | "tib" => 4,
        "p" | "pb" | "pib" => 5,
        _ => return None,
    };
    Some(1u128 << (10 * exponent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_examples() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64mb"), Ok(64 << 20));
        assert_eq!(parse_size("1024k"), Ok(1 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size(" 2 g "), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size(".5K"), Ok(512));
        assert_eq!(parse_size("1.K"), Ok(1024));
        assert_eq!(parse_size("1.3K"), Ok(1331));
        assert_eq!(parse_size("15P"), Ok(15 << 50));
    }

    #[test]
    fn rejects_bad_sizes_with_clear_errors() {
        assert_eq!(parse_size(""), Err(ParseSizeError::Empty));
        assert_eq!(parse_size("   "), Err(ParseSizeError::Empty));
        assert!(matches!(parse_size("abc"), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("M"), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("."), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("1.2.3M"), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("-1M"), Err(ParseSizeError::InvalidNumber(_))));
        assert!(matches!(parse_size("12X"), Err(ParseSizeError::UnknownUnit { .. })));
        assert!(matches!(parse_size("12 M B"), Err(ParseSizeError::UnknownUnit { .. })));
        assert!(matches!(parse_size("1.5"), Err(ParseSizeError::FractionalBytes(_))));
        assert!(matches!(
            parse_size("18446744073709551616"),
            Err(ParseSizeError::Overflow(_))
        ));
        assert!(matches!(parse_size("16384P"), Err(ParseSizeError::Overflow(_))));
        assert!(matches!(parse_size("17179869184G"), Err(ParseSizeError::Overflow(_))));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        let msg = parse_size("12X").unwrap_err().to_string();
        assert!(msg.contains("'12X'") && msg.contains("'X'"), "{msg}");
    }

    #[test]
    fn shares_weight_conversion() {
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(256), 10);
        assert_eq!(cpu_shares_to_weight(0), 1);
        assert_eq!(cpu_shares_to_weight(u64::MAX), 10_000);
        assert_eq!(cpu_weight_to_shares(1), 2);
        assert_eq!(cpu_weight_to_shares(10_000), 262_144);
        assert_eq!(cpu_weight_to_shares(0), 2);
        assert_eq!(cpu_weight_to_shares(u64::MAX), 262_144);
        for w in 1..=10_000 {
            assert_eq!(cpu_shares_to_weight(cpu_weight_to_shares(w)), w, "weight {w}");
        }
    }

    #[test]
    fn defaults_are_crabcans() {
        let d = Limits::default();
        assert_eq!(d.memory, Some(1 << 30));
        assert_eq!(d.pids, Some(64));
        assert_eq!(d.cpu_weight, Some(10));
        assert_eq!(d.cpu_weight, Some(cpu_shares_to_weight(256)));
        assert_eq!(d.io_weight, Some(50));
        assert!(d.validate().is_ok());
        assert_eq!(io_weight_to_blkio_weight(50), 50);
        assert_eq!(io_weight_to_blkio_weight(1), 10);
        assert_eq!(io_weight_to_blkio_weight(10_000), 1000);
    }

    #[test]
    fn validation() {
        let base = Limits::unlimited();
        let mib = 1u64 << 20;
        assert!(base.validate().is_ok());
        assert!(Limits {
            memory_swap: Some(64 * mib),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            memory: Some(64 * mib),
            memory_swap: Some(32 * mib),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            memory: Some(64 * mib),
            memory_swap: Some(64 * mib),
            ..base.clone()
        }
        .validate()
        .is_ok());
        assert!(Limits {
            cpu_weight: Some(0),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            cpu_weight: Some(10_001),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            io_weight: Some(0),
            ..base.clone()
        }
        .validate()
        .is_err());
    }

    fn check(limits: Limits, cpus: usize) -> Result<(), String> {
        limits.validate_for_cpus(cpus).map_err(|e| e.to_string())
    }

    #[test]
    fn memory_limits_below_6_mib_are_refused_with_the_bound() {
        let base = Limits::unlimited();
        for (bytes, shown) in [
            (0, "0 bytes"),
            (1, "1 byte"),
            (4 << 10, "4 KiB"),
            (100 << 10, "100 KiB"),
            (MIN_MEMORY - 1, "6291455 bytes"),
        ] {
            let err = Limits {
                memory: Some(bytes),
                ..base.clone()
            }
            .validate()
            .unwrap_err();
            assert!(
                matches!(err, CgroupError::MemoryBelowMinimum { limit: LimitKind::Memory, bytes: b, min: MIN_MEMORY } if b == bytes),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("memory limit {shown} is below the minimum allowed memory limit, 6 MiB")
            );
        }
        assert_eq!(
            check(
                Limits {
                    memory: Some(64 << 20),
                    memory_swap: Some(1 << 20),
                    ..base.clone()
                },
                2
            ),
            Err("memory+swap limit 1 MiB is below the minimum allowed memory+swap limit, 6 MiB".into())
        );
        assert!(Limits {
            memory: Some(MIN_MEMORY),
            memory_swap: Some(MIN_MEMORY),
            ..base
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn pids_limits_are_bounded_by_pid_max_limit() {
        let base = Limits::unlimited();
        let with = |pids| Limits {
            pids: Some(pids),
            ..base.clone()
        };
        assert!(with(1).validate().is_ok());
        assert!(with(PID_MAX_LIMIT).validate().is_ok());
        for pids in [0, PID_MAX_LIMIT + 1, u64::MAX] {
            let err = with(pids).validate().unwrap_err();
            assert!(matches!(err, CgroupError::PidsOutOfRange { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("pids limit {pids} is out of range: it must be from 1 to 4194304 (the kernel's PID_MAX_LIMIT)")
            );
        }
    }

    #[test]
    fn cpu_quotas_are_bounded_by_the_available_cpus() {
        let with = |cpus| Limits {
            cpu_quota: Some(cpus),
            ..Limits::unlimited()
        };
        assert!(check(with(0.01), 2).is_ok());
        assert!(check(with(0.5), 2).is_ok());
        assert!(check(with(2.0), 2).is_ok());
        assert!(check(with(16.0), 16).is_ok());
        assert_eq!(
            check(with(1000.0), 2),
            Err("CPU quota 1000 is out of range: the range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available".into())
        );
        for cpus in [2.001, 0.0, 0.009, -1.0, f64::NAN, f64::INFINITY] {
            let err = with(cpus).validate_for_cpus(2).unwrap_err();
            assert!(
                matches!(err, CgroupError::CpuQuotaOutOfRange { available: 2, .. }),
                "{err:?}"
            );
        }
        assert!(available_cpus() >= 1);
        // validate() uses this process's CPUs.
        assert!(with(available_cpus() as f64).validate().is_ok());
        assert!(with(available_cpus() as f64 + 1.0).validate().is_err());
    }

    #[test]
    fn limit_messages_name_no_cli_flag() {
        let errors = [
            Limits {
                memory: Some(1),
                ..Limits::unlimited()
            },
            Limits {
                pids: Some(u64::MAX),
                ..Limits::unlimited()
            },
            Limits {
                cpu_quota: Some(1e9),
                ..Limits::unlimited()
            },
        ];
        for limits in errors {
            let msg = limits.validate().unwrap_err().to_string();
            assert!(!msg.contains("--") && !msg.contains('\n'), "{msg}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".*") {
            let _ = parse_size(&s);
        }

        #[test]
        fn size_like_strings_never_panic(s in "[0-9.]{0,40}[ kKmMgGtTpPiIbB]{0,4}") {
            let _ = parse_size(&s);
        }

        #[test]
        fn megabytes_parse(n in 0u64..(u64::MAX >> 20)) {
            prop_assert_eq!(parse_size(&format!("{n}M")), Ok(n * 1024 * 1024));
        }

        #[test]
        fn plain_bytes_parse(n in any::<u64>()) {
            prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
        }

        #[test]
        fn weight_shares_roundtrip(w in 1u64..=10_000) {
            prop_assert_eq!(cpu_shares_to_weight(cpu_weight_to_shares(w)), w);
        }
    }
}
