//! Option values: seconds, timeouts and signal names, each checked at parse
//! time so that nothing out of range reaches PID 1, and the small helpers
//! that take `--flag value` and `--flag=value` apart. Pure and unit-tested.

use std::ffi::OsString;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::UsageError;
use crate::sys::signal_name;

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

/// A signal for a role: `none`, a name (`USR1`, `SIGUSR1`, `RTMIN+3`) or a
/// number. Not one dind-init cannot catch or needs for itself.
pub fn parse_role_signal(text: &str) -> Result<Option<i32>, String> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let signo = if let Ok(number) = name.parse::<i32>() {
        number
    } else if let Some(offset) = name.strip_prefix("RTMIN") {
        let offset: i32 = match offset {
            "" => 0,
            _ => offset
                .strip_prefix('+')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("`{text}` is not a signal"))?,
        };
        libc::SIGRTMIN().saturating_add(offset)
    } else {
        format!("SIG{name}").parse::<Signal>().map_err(|_| {
            format!("`{text}` is not a signal (a name like USR1, a number, or none)")
        })? as i32
    };
    if !(1..=libc::SIGRTMAX()).contains(&signo) {
        return Err(format!("`{text}` is not a signal number of this system"));
    }
    let reserved = [libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD];
    if reserved.contains(&signo) || crate::sys::is_synchronous(signo) {
        return Err(format!(
            "{} cannot be given a role (it cannot be caught, or dind-init needs it)",
            signal_name(signo)
        ));
    }
    Ok(Some(signo))
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

/// Parses an option's value, naming the flag or variable it came from on error.
pub(super) fn value_of<T>(
    found: Option<(String, OsString)>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, UsageError> {
    let Some((source, value)) = found else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok_or_else(|| UsageError(format!("{source}: not valid UTF-8")))?;
    parse(text)
        .map(Some)
        .map_err(|why| UsageError(format!("{source}: {why}")))
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
