//! The client subcommands (`status`, `quiesce`, `resume`, `logs`, and
//! `snapshot` on the host): what each takes, and its `--help`.

use std::ffi::OsString;
use std::time::Duration;

use super::UsageError;
use super::values::value_of;
use crate::args::{Syntax, flag_value, parse_seconds, split_flag};
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

/// What the client subcommands accept; each parser checks its flags here.
pub const SYNTAX: [Syntax; 4] = [
    Syntax {
        words: "status",
        flags: &["--json", "--wait", "--timeout", "--socket"],
        help: || subcommand_help("status"),
    },
    Syntax {
        words: "quiesce",
        flags: &["--timeout", "--socket"],
        help: || subcommand_help("quiesce"),
    },
    Syntax {
        words: "resume",
        flags: &["--timeout", "--socket"],
        help: || subcommand_help("resume"),
    },
    Syntax {
        words: "logs",
        flags: &["--socket"],
        help: || subcommand_help("logs"),
    },
];

/// The text of `dind-init SUBCOMMAND --help`.
fn subcommand_help(name: &str) -> String {
    let timeout = format!(
        "  --timeout S        seconds to wait for the answer [{}]\n",
        DEFAULT_CLIENT_TIMEOUT.as_secs()
    );
    let (usage, what, options) = match name {
        "status" => (
            "status [--json[=true|false]] [--wait PHASE] [--timeout S] [--socket PATH]",
            "Prints the phase, each script's state and the boot history.",
            format!(
                "  --json             the same as one JSON object [false]\n  --wait PHASE       first block until PHASE: starting, running, quiescing,\n                     quiesced, shutting-down [no wait]\n{timeout}"
            ),
        ),
        "logs" => (
            "logs SCRIPT [--socket PATH]",
            "Prints the last lines (up to 20, or 8 KiB) of SCRIPT's output that the init\nkept: its start, its stop and its daemons, control characters escaped.",
            String::new(),
        ),
        "quiesce" => (
            "quiesce [--timeout S] [--socket PATH]",
            "Stops every script in reverse and waits. Exit 0 only when the container is\nsafe to docker commit; otherwise 1 and the reason.",
            timeout,
        ),
        _ => (
            "resume [--timeout S] [--socket PATH]",
            "Runs the starts again after a quiesce and waits for them.",
            timeout,
        ),
    };
    let yes = match name {
        "status" => "running and healthy (with --wait: PHASE reached)",
        "logs" => "printed",
        "quiesce" => "safe to docker commit",
        _ => "running and healthy again",
    };
    format!(
        "Usage: dind-init {usage}\n\n{what}\n\nOptions:\n{options}  --socket PATH      the init's control socket [DIND_INIT_SOCKET, else {DEFAULT_SOCKET}]\n\nExit codes: 0 {yes}; 1 no (or no such script, refused, timed out);\n2 usage error; 3 no dind-init answers on the socket.\n"
    )
}

/// The syntax of the client subcommand `name`.
fn syntax_of(name: &str) -> Result<&'static Syntax, UsageError> {
    SYNTAX
        .iter()
        .find(|syntax| syntax.words == name)
        .ok_or_else(|| UsageError(format!("`{name}` is not a subcommand")))
}

/// A client subcommand's options (`--socket` into `given`).
pub(super) fn parse_subcommand(
    name: &str,
    args: &mut impl Iterator<Item = OsString>,
    given: &mut Vec<(&'static str, OsString)>,
) -> Result<Command, UsageError> {
    let syntax = syntax_of(name)?;
    let mut json = false;
    let mut wait = None;
    let mut timeout = DEFAULT_CLIENT_TIMEOUT;
    let mut script = None;
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if name == "logs" && script.is_none() && !text.starts_with('-') {
            script = Some(text.into_owned());
            continue;
        }
        let (flag, inline) = split_flag(&text);
        match syntax.check(flag)? {
            "--json" => {
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
            "--wait" => {
                let phase = flag_value(flag, inline, args)?;
                wait = value_of(Some((flag.to_string(), phase)), str::parse)?;
            }
            "--timeout" => {
                let seconds = flag_value(flag, inline, args)?;
                timeout =
                    value_of(Some((flag.to_string(), seconds)), parse_seconds)?.unwrap_or(timeout);
            }
            "--socket" => given.push(("--socket", flag_value(flag, inline, args)?)),
            _ => return Err(syntax.unknown(&text)),
        }
    }
    Ok(match name {
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
    })
}
