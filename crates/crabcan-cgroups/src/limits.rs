//! [`Limits`] (what a container may use), [`parse_size`] for human sizes and
//! the CPU/I/O weight conversions between cgroup v1 and v2 scales.

use crate::error::{CgroupError, ParseSizeError};

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

/// The tutorial's CPU shares default (v1 scale).
pub const DEFAULT_CPU_SHARES: u64 = 256;

impl Default for Limits {
    /// The tutorial's defaults: 1 GiB memory (no swap), 64 tasks, the v2
    /// equivalent of 256 CPU shares (weight 10; v1 hosts get 238 shares
    /// after the round trip), I/O weight 50.
    fn default() -> Self {
        Limits {
            memory: Some(1 << 30),
            memory_swap: None,
            pids: Some(64),
            cpu_weight: Some(cpu_shares_to_weight(DEFAULT_CPU_SHARES)),
            cpu_quota: None,
            io_weight: Some(50),
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

    /// Checks the limits are consistent before anything is written.
    pub fn validate(&self) -> Result<(), CgroupError> {
        let invalid = |msg: String| Err(CgroupError::InvalidLimits(msg));
        match (self.memory, self.memory_swap) {
            (None, Some(_)) => return invalid("a memory+swap limit needs a memory limit too".into()),
            (Some(mem), Some(swap)) if swap < mem => {
                return invalid(format!("memory+swap limit {swap} is below the memory limit {mem}"))
            }
            _ => {}
        }
        if let Some(w) = self.cpu_weight {
            if !(CPU_WEIGHT_MIN..=CPU_WEIGHT_MAX).contains(&w) {
                return invalid(format!("cpu weight {w} is outside 1..=10000"));
            }
        }
        if let Some(q) = self.cpu_quota {
            if !q.is_finite() || q <= 0.0 || q > 1e6 {
                return invalid(format!("cpu quota {q} must be a positive number of CPUs"));
            }
        }
        if let Some(w) = self.io_weight {
            if !(1..=10000).contains(&w) {
                return invalid(format!("io weight {w} is outside 1..=10000"));
            }
        }
        Ok(())
    }
}

pub(crate) const CPU_WEIGHT_MIN: u64 = 1;
pub(crate) const CPU_WEIGHT_MAX: u64 = 10_000;
const CPU_SHARES_MIN: u64 = 2;
const CPU_SHARES_MAX: u64 = 262_144;

/// v1 `cpu.shares` (2..=262144, clamped) to v2 `cpu.weight` (1..=10000),
/// with the formula runc/crun/systemd use: `1 + ((shares - 2) * 9999) / 262142`.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(CPU_SHARES_MIN, CPU_SHARES_MAX);
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
/// so the tutorial's weight 50 stays 50 on v1 hosts.
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
    fn defaults_match_the_tutorial() {
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
        assert!(base.validate().is_ok());
        assert!(Limits {
            memory_swap: Some(1),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            memory: Some(2),
            memory_swap: Some(1),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            memory: Some(2),
            memory_swap: Some(2),
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
            cpu_quota: Some(f64::NAN),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            cpu_quota: Some(0.0),
            ..base.clone()
        }
        .validate()
        .is_err());
        assert!(Limits {
            cpu_quota: Some(0.5),
            ..base.clone()
        }
        .validate()
        .is_ok());
        assert!(Limits {
            io_weight: Some(0),
            ..base.clone()
        }
        .validate()
        .is_err());
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
