//! The primitives of every command line of the binary, the init's and the
//! host subcommands' alike: a usage error, the [`Syntax`] table each parser
//! checks its flags against, `--flag value` and `--flag=value`, and seconds
//! bounded at parse time. A leaf: it uses nothing
//! else of the crate, so `cli`, `snapshot` and `pool` share it without
//! importing each other. Pure and unit-tested.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

/// A command line that cannot be run; printed as one line, exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains("--help`") {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{}; see `dind-init --help`", self.0)
        }
    }
}

/// What one command line of the binary accepts, in the one table that its
/// parser checks every flag against before it matches it, and that the
/// help-drift test walks against its `--help`, the top-level help and
/// docs/reference.md (the contract: docs/development.md, "Command-line
/// help"). `-h`/`--help` are answered by `cli` for every entry, from
/// `help`, before the parser runs.
#[derive(Debug, Clone, Copy)]
pub struct Syntax {
    /// The words after `dind-init` that select it (`status`, `pool fill`);
    /// empty for the init itself.
    pub words: &'static str,
    /// Every flag its parser accepts, long form (`--timeout`), `-h`/`--help` aside.
    pub flags: &'static [&'static str],
    /// Its `--help`: usage, options and their defaults, exit codes.
    pub help: fn() -> String,
}

impl Syntax {
    /// `flag` when this command line takes it, else the usage error every
    /// parser gives for a flag it does not take.
    pub fn check<'a>(&self, flag: &'a str) -> Result<&'a str, UsageError> {
        if self.flags.contains(&flag) {
            Ok(flag)
        } else {
            Err(self.unknown(flag))
        }
    }

    /// The usage error for an argument this command line does not take.
    pub fn unknown(&self, given: &str) -> UsageError {
        UsageError(format!(
            "`{}` does not take `{given}`; see `{} --help`",
            self.command(),
            self.command()
        ))
    }

    /// `dind-init` and its words.
    pub fn command(&self) -> String {
        if self.words.is_empty() {
            "dind-init".to_string()
        } else {
            format!("dind-init {}", self.words)
        }
    }
}

/// The longest time any option accepts: a year. Longer values are almost
/// certainly a mistake (a unit mix-up), and every deadline computed from an
/// accepted value stays far from the clock's limits.
pub const MAX_SECONDS: u64 = 365 * 86_400;

/// Parses a number of seconds, fractions allowed (`0.5`), at most [`MAX_SECONDS`].
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` must be zero or more seconds"));
    }
    if seconds > MAX_SECONDS as f64 {
        return Err(format!(
            "`{text}` is more than a year ({MAX_SECONDS} seconds); give a shorter time"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A timeout in seconds where zero means "no limit" (`None`).
pub fn parse_timeout(text: &str) -> Result<Option<Duration>, String> {
    parse_seconds(text).map(|timeout| (!timeout.is_zero()).then_some(timeout))
}

/// `--flag=value` gives the flag and its value; `--flag` the flag alone.
pub fn split_flag(text: &str) -> (&str, Option<OsString>) {
    match text.split_once('=') {
        Some((flag, value)) => (flag, Some(OsString::from(value))),
        None => (text, None),
    }
}

/// The value given inline, or else the next argument.
pub fn flag_value(
    flag: &str,
    inline: Option<OsString>,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<OsString, UsageError> {
    inline
        .or_else(|| args.next())
        .ok_or_else(|| UsageError(format!("`{flag}` needs a value")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_fractions_and_reject_garbage() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds(" 3 "), Ok(Duration::from_secs(3)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("inf").is_err());
    }
}
