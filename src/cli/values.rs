//! The init's option values that need more than [`crate::args`]: signal
//! names for the quiesce and resume roles, checked at parse time so that
//! nothing out of range reaches PID 1, and naming the flag or variable a bad
//! value came from. Pure and unit-tested.

use std::ffi::OsString;

use nix::sys::signal::Signal;

use crate::args::UsageError;
use crate::sys::signal_name;

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
    if reserved.contains(&signo) || crate::sys::is_fault_signal(signo) {
        return Err(format!(
            "{} cannot be given a role (it cannot be caught, dind-init needs it, or it reports a fault)",
            signal_name(signo)
        ));
    }
    Ok(Some(signo))
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
