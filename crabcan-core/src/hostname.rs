//! The container's hostname: validation of a user-given name and generation of a readable one
//! (`soft-world-116`) when none is given. The hostname also names the container's cgroup.

use crate::error::ConfigError;

const ADJECTIVES: &[&str] = &[
    "soft", "brave", "calm", "quick", "quiet", "bright", "bold", "clever", "eager", "gentle", "happy", "jolly", "keen",
    "lucky", "merry", "proud", "shy", "swift", "tidy", "witty", "amber", "azure", "coral", "misty", "sunny", "snowy",
    "rusty", "silver", "golden", "lunar",
];
const NOUNS: &[&str] = &[
    "world", "crab", "reef", "shell", "wave", "tide", "shore", "pearl", "coast", "harbor", "island", "lagoon", "kelp",
    "sand", "dune", "cliff", "river", "delta", "bay", "cove", "comet", "star", "moon", "orbit", "cloud", "storm",
    "field", "forest", "meadow", "stone",
];

/// Longest hostname the kernel accepts (`HOST_NAME_MAX`).
pub const MAX_HOSTNAME_LEN: usize = 64;

/// Checks a hostname: 1 to 64 bytes of letters, digits, '-' and '.', labels not starting or
/// ending with '-'.
pub fn validate_hostname(name: &str) -> Result<(), ConfigError> {
    let bad = |why: &'static str| ConfigError::BadHostname {
        name: name.to_owned(),
        why,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_HOSTNAME_LEN {
        return Err(bad("it is longer than 64 bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(bad("use only letters, digits, '-' and '.'"));
    }
    if name
        .split('.')
        .any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-'))
    {
        return Err(bad(
            "each dot-separated label must be non-empty and not start or end with '-'",
        ));
    }
    Ok(())
}

/// A fresh name like `soft-world-116`, from a few random bytes of the kernel.
pub fn generate_hostname() -> String {
    let mut seed = [0u8; 8];
    if getrandom_bytes(&mut seed).is_err() {
        // Fall back on the clock: uniqueness is not required, a readable name is.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        seed = (nanos ^ u64::from(std::process::id())).to_le_bytes();
    }
    let value = u64::from_le_bytes(seed);
    let adjective = ADJECTIVES[(value % ADJECTIVES.len() as u64) as usize];
    let noun = NOUNS[((value >> 16) % NOUNS.len() as u64) as usize];
    let number = (value >> 32) % 1000;
    format!("{adjective}-{noun}-{number}")
}

fn getrandom_bytes(buffer: &mut [u8]) -> std::io::Result<()> {
    // SAFETY: the pointer and length describe `buffer`, which the kernel fills.
    let filled = unsafe { libc::getrandom(buffer.as_mut_ptr().cast(), buffer.len(), libc::GRND_NONBLOCK) };
    if filled == buffer.len() as isize {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for _ in 0..200 {
            let name = generate_hostname();
            validate_hostname(&name).unwrap();
            assert_eq!(name.split('-').count(), 3, "{name}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        assert!(validate_hostname("").is_err());
        assert!(validate_hostname(&"a".repeat(65)).is_err());
        assert!(validate_hostname(&"a".repeat(64)).is_ok());
        assert!(validate_hostname("has space").is_err());
        assert!(validate_hostname("-lead").is_err());
        assert!(validate_hostname("a..b").is_err());
        assert!(validate_hostname("web-1.local").is_ok());
    }
}
