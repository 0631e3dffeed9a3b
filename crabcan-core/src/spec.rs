//! Parsing of the small textual specs a user writes on the command line: the command string,
//! `--add HOST:CONTAINER[:ro]` bind mounts, `--uid-map INSIDE:OUTSIDE:COUNT` id ranges and
//! `--env KEY=VALUE` pairs. Pure functions, no system access, so they are tested without root and
//! can be reused by other front ends (an OCI `config.json` reader, for instance).

use std::fmt;
use std::path::PathBuf;

use crate::error::SpecError;

/// Splits a command given as one string the way a POSIX shell splits words: blanks separate
/// words, single and double quotes group, backslash escapes. No expansion of any kind happens.
pub fn split_command(command: &str) -> Result<Vec<String>, SpecError> {
    let words = shlex::split(command).ok_or_else(|| SpecError::UnbalancedQuotes {
        command: command.to_owned(),
    })?;
    if words.is_empty() || words[0].is_empty() {
        return Err(SpecError::EmptyCommand);
    }
    Ok(words)
}

/// Quotes words so that [`split_command`] gives them back unchanged.
pub fn join_command(words: &[String]) -> String {
    words.iter().map(|word| quote_word(word)).collect::<Vec<_>>().join(" ")
}

/// A word as a person should read it in a message: plain when it is plain, in single quotes
/// when it has blanks or shell characters, and as `$'...'` with `\xNN` escapes when it holds
/// control characters (which would otherwise garble the terminal).
pub fn display_word(word: &str) -> String {
    if !word.chars().any(char::is_control) {
        return quote_word(word);
    }
    let mut shown = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => shown.push_str("\\\\"),
            '\'' => shown.push_str("\\'"),
            c if c.is_control() && (c as u32) < 0x100 => shown.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => shown.push_str(&format!("\\u{:04x}", c as u32)),
            c => shown.push(c),
        }
    }
    shown.push('\'');
    shown
}

fn quote_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A host directory or file made visible inside the container (`--add HOST:CONTAINER[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Absolute path on the host.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: PathBuf,
    /// Mounted read-only: writes fail with EROFS.
    pub read_only: bool,
}

impl BindMount {
    /// Parses `HOST:CONTAINER`, `HOST:CONTAINER:ro` or `HOST:CONTAINER:rw`.
    /// Both paths must be absolute; neither may contain `..` components.
    pub fn parse(spec: &str) -> Result<BindMount, SpecError> {
        let bad = |why: &'static str| SpecError::BadBindMount {
            spec: spec.to_owned(),
            why,
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [source, target] => (*source, *target, false),
            [source, target, "ro"] => (*source, *target, true),
            [source, target, "rw"] => (*source, *target, false),
            [_, _, _] => return Err(bad("the third field must be 'ro' or 'rw'")),
            _ => return Err(bad("expected HOST:CONTAINER or HOST:CONTAINER:ro")),
        };
        for path in [source, target] {
            if !path.starts_with('/') {
                return Err(bad("both paths must be absolute (start with '/')"));
            }
            if path.split('/').any(|component| component == "..") {
                return Err(bad("paths may not contain '..'"));
            }
            if path.contains('\0') {
                return Err(bad("paths may not contain NUL bytes"));
            }
        }
        Ok(BindMount {
            source: PathBuf::from(source),
            target: PathBuf::from(target),
            read_only,
        })
    }
}

impl fmt::Display for BindMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source.display(), self.target.display())?;
        if self.read_only {
            write!(f, ":ro")?;
        }
        Ok(())
    }
}

/// One line of a user namespace id map: `count` ids starting at `inside` in the container are
/// `outside`.. on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// The first id inside the container.
    pub inside: u32,
    /// The host id it is.
    pub outside: u32,
    /// How many ids follow, one to one.
    pub count: u32,
}

impl IdRange {
    /// Parses `INSIDE:OUTSIDE:COUNT`.
    pub fn parse(spec: &str) -> Result<IdRange, SpecError> {
        let bad = |why: &'static str| SpecError::BadIdMap {
            spec: spec.to_owned(),
            why,
        };
        let numbers: Vec<&str> = spec.split(':').collect();
        let [inside, outside, count] = numbers.as_slice() else {
            return Err(bad("expected INSIDE:OUTSIDE:COUNT, e.g. 0:100000:65536"));
        };
        let number = |text: &str| {
            text.parse::<u32>()
                .map_err(|_| bad("each field must be a number from 0 to 4294967295"))
        };
        let range = IdRange {
            inside: number(inside)?,
            outside: number(outside)?,
            count: number(count)?,
        };
        if range.count == 0 {
            return Err(bad("COUNT must be at least 1"));
        }
        if range.inside.checked_add(range.count).is_none() || range.outside.checked_add(range.count).is_none() {
            return Err(bad("the range runs past the largest id"));
        }
        Ok(range)
    }

    /// Whether container id `id` lies in this range.
    pub fn contains_inside(&self, id: u32) -> bool {
        id >= self.inside && id - self.inside < self.count
    }

    /// The host id of container id `id`, if it is mapped.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        self.contains_inside(id).then(|| self.outside + (id - self.inside))
    }

    /// The line written to `/proc/<pid>/uid_map`.
    pub fn map_line(&self) -> String {
        format!("{} {} {}\n", self.inside, self.outside, self.count)
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.inside, self.outside, self.count)
    }
}

/// Parses `KEY=VALUE` for `--env`. The key is a non-empty name without `=` or NUL.
pub fn parse_env(spec: &str) -> Result<(String, String), SpecError> {
    let bad = |why: &'static str| SpecError::BadEnv {
        spec: spec.to_owned(),
        why,
    };
    let (key, value) = spec.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
    if key.is_empty() {
        return Err(bad("the name before '=' is empty"));
    }
    if spec.contains('\0') {
        return Err(bad("NUL bytes are not allowed"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split_command("/bin/sh -c 'echo hi there'").unwrap(),
            vec!["/bin/sh", "-c", "echo hi there"]
        );
        assert_eq!(split_command(r#"echo "a b" c\ d"#).unwrap(), vec!["echo", "a b", "c d"]);
        assert!(matches!(
            split_command("echo 'oops"),
            Err(SpecError::UnbalancedQuotes { .. })
        ));
        assert!(matches!(split_command("   "), Err(SpecError::EmptyCommand)));
        assert!(matches!(split_command("''"), Err(SpecError::EmptyCommand)));
    }

    #[test]
    fn words_are_shown_readably() {
        assert_eq!(display_word("/bin/true"), "/bin/true");
        assert_eq!(display_word("a b"), "'a b'");
        assert_eq!(display_word("/bin/true\u{1}"), "$'/bin/true\\x01'");
        assert_eq!(display_word("it's\n"), "$'it\\'s\\x0a'");
    }

    #[test]
    fn parses_bind_mounts() {
        let mount = BindMount::parse("/srv/data:/data:ro").unwrap();
        assert_eq!(mount.source, PathBuf::from("/srv/data"));
        assert_eq!(mount.target, PathBuf::from("/data"));
        assert!(mount.read_only);
        assert!(!BindMount::parse("/a:/b").unwrap().read_only);
        for bad in ["a:/b", "/a:b", "/a", "/a:/b:rx", "/a:/b:ro:x", "/a/../etc:/b", ""] {
            assert!(BindMount::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn parses_id_maps() {
        let range = IdRange::parse("0:100000:65536").unwrap();
        assert_eq!(
            range,
            IdRange {
                inside: 0,
                outside: 100_000,
                count: 65_536
            }
        );
        assert_eq!(range.to_host(0), Some(100_000));
        assert_eq!(range.to_host(65_535), Some(165_535));
        assert_eq!(range.to_host(65_536), None);
        assert_eq!(range.map_line(), "0 100000 65536\n");
        for bad in ["0:1", "a:b:c", "0:0:0", "4294967295:0:2", "-1:0:1"] {
            assert!(IdRange::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn parses_env() {
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_env("EMPTY=").unwrap(), ("EMPTY".into(), "".into()));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("NOEQUALS").is_err());
    }

    proptest! {
        #[test]
        fn command_splitter_never_panics(input in any::<String>()) {
            let _ = split_command(&input);
        }

        #[test]
        fn command_round_trips(words in prop::collection::vec("[^\\x00]{1,12}", 1..6)) {
            let joined = join_command(&words);
            prop_assert_eq!(split_command(&joined).unwrap(), words);
        }

        #[test]
        fn bind_spec_never_panics(input in any::<String>()) {
            let _ = BindMount::parse(&input);
        }

        #[test]
        fn valid_bind_specs_round_trip(
            source in "(/[a-z0-9_.]{1,8}){1,4}",
            target in "(/[a-z0-9_]{1,8}){1,4}",
            read_only in any::<bool>(),
        ) {
            prop_assume!(!source.split('/').any(|c| c == ".."));
            let spec = format!("{source}:{target}{}", if read_only { ":ro" } else { "" });
            let mount = BindMount::parse(&spec).unwrap();
            prop_assert_eq!(mount.to_string(), spec);
        }

        #[test]
        fn id_map_never_panics(input in any::<String>()) {
            let _ = IdRange::parse(&input);
        }
    }
}
