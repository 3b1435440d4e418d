//! The client subcommands (`status`, `quiesce`, `resume`, `logs`, and
//! `snapshot` on the host): what each takes, and its `--help`.

use std::ffi::OsString;
use std::time::Duration;

use super::UsageError;
use super::values::{flag_value, parse_seconds, split_flag, value_of};
use crate::config::DEFAULT_SOCKET;
use crate::phase::Phase;

/// Default seconds the client subcommands wait.
pub(super) const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// Client subcommands, answered by the running init over the control socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Print the status (`json`: as one JSON object); with `wait`, first block
    /// until that phase, up to `timeout`.
    Status {
        json: bool,
        wait: Option<Phase>,
        timeout: Duration,
    },
    /// Quiesce and wait until the container is commit-safe, up to `timeout`.
    Quiesce { timeout: Duration },
    /// Run the starts again after a quiesce, up to `timeout`.
    Resume { timeout: Duration },
    /// On the host: quiesce a container through its engine and commit it.
    Snapshot(crate::snapshot::SnapshotRequest),
    /// On the host: fill, take from, release, list or drain a pool of ready containers.
    Pool(crate::pool::PoolRequest),
    /// Print the last lines of one script's output that the init kept.
    Logs { script: String },
}

/// The text of `dind-init SUBCOMMAND --help`.
pub(super) fn subcommand_help(name: &str) -> String {
    let (usage, what) = match name {
        "status" => (
            "status [--json[=true|false]] [--wait PHASE] [--timeout S] [--socket PATH]",
            "Prints the phase, each script's state and the boot history. Exit 0 when\nrunning and healthy, 1 otherwise, 3 when no dind-init answers. With --wait,\nblocks until PHASE (starting, running, quiescing, quiesced, shutting-down).",
        ),
        "logs" => (
            "logs SCRIPT [--socket PATH]",
            "Prints the last lines (up to 20, or 8 KiB) of SCRIPT's output that the init\nkept: its start, its stop and its daemons, control characters escaped. Exit 1\nwhen there is no such script.",
        ),
        "quiesce" => (
            "quiesce [--timeout S] [--socket PATH]",
            "Stops every script in reverse and waits. Exit 0 only when the container is\nsafe to docker commit; otherwise 1 and the reason.",
        ),
        _ => (
            "resume [--timeout S] [--socket PATH]",
            "Runs the starts again after a quiesce and waits for them. Exit 0 when running\nand healthy.",
        ),
    };
    format!(
        "Usage: dind-init {usage}\n\n{what}\n--timeout defaults to {} seconds; the socket to DIND_INIT_SOCKET or {DEFAULT_SOCKET}.\n",
        DEFAULT_CLIENT_TIMEOUT.as_secs()
    )
}

/// A subcommand's options; `None` when it was asked for its help.
pub(super) fn parse_subcommand(
    name: &str,
    args: &mut impl Iterator<Item = OsString>,
    given: &mut Vec<(&'static str, OsString)>,
) -> Result<Option<Command>, UsageError> {
    let mut json = false;
    let mut wait = None;
    let mut timeout = DEFAULT_CLIENT_TIMEOUT;
    let mut script = None;
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        let (flag, inline) = split_flag(&text);
        match flag {
            _ if name == "logs" && script.is_none() && !text.starts_with('-') => {
                script = Some(text.into_owned());
            }
            "--timeout" if name == "logs" => {
                return Err(UsageError(format!(
                    "`dind-init {name}` does not take `{text}`"
                )));
            }
            "--json" if name == "status" => {
                json = match inline.as_ref().map(|v| v.to_string_lossy()) {
                    None => true,
                    Some(value) if value == "true" => true,
                    Some(value) if value == "false" => false,
                    Some(value) => {
                        return Err(UsageError(format!(
                            "--json: `{value}` is not `true` or `false`"
                        )));
                    }
                }
            }
            "--wait" if name == "status" => {
                let phase = flag_value(flag, inline, args)?;
                wait = value_of(Some((flag.to_string(), phase)), str::parse)?;
            }
            "--timeout" => {
                let seconds = flag_value(flag, inline, args)?;
                timeout =
                    value_of(Some((flag.to_string(), seconds)), parse_seconds)?.unwrap_or(timeout);
            }
            "--socket" => given.push(("--socket", flag_value(flag, inline, args)?)),
            "-h" | "--help" => return Ok(None),
            _ => {
                return Err(UsageError(format!(
                    "`dind-init {name}` does not take `{text}`"
                )));
            }
        }
    }
    Ok(Some(match name {
        "status" => Command::Status {
            json,
            wait,
            timeout,
        },
        "quiesce" => Command::Quiesce { timeout },
        "logs" => Command::Logs {
            script: script
                .ok_or_else(|| UsageError("`dind-init logs` needs a SCRIPT name".into()))?,
        },
        _ => Command::Resume { timeout },
    }))
}
