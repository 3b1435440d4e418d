//! The command line of both roles of the one binary: the init (`dind-init
//! [OPTIONS] [-- CMD ARGS...]`) and the client subcommands (`status`,
//! `quiesce`, `resume`, and `snapshot` on the host, parsed in `snapshot`).
//! Every init option is also an environment variable, so an image can set
//! them with `ENV`; a flag wins over its variable.
//!
//! Parsed by hand rather than with clap: the grammar is a dozen long options
//! and three subcommands, and clap was a sixth of the binary (see the README's
//! benchmark section). `parse` is pure (arguments and environment in, a
//! decision out) and unit-tested here.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::phase::Phase;

/// Default init.d directory; a missing default directory means "no scripts".
pub const DEFAULT_INIT_DIR: &str = "/etc/dind-init/init.d";
/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/dind-init.sock";
/// Default persistent state file.
pub const DEFAULT_STATE: &str = "/var/lib/dind-init/state.json";
/// Default seconds the client subcommands wait.
const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// Everything the command line and the environment decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Cli {
    /// Control socket of the running dind-init (both roles).
    pub socket: PathBuf,
    pub init: InitOptions,
    /// A client subcommand; `None` runs the init.
    pub command: Option<Command>,
    /// Main command to run after every start script succeeded.
    pub main_command: Vec<OsString>,
}

/// Options of the init role.
#[derive(Debug, Clone, PartialEq)]
pub struct InitOptions {
    /// Directory of the init.d scripts; `None` means the default, which may be missing.
    pub init_dir: Option<PathBuf>,
    /// Persistent state file (boot count, quiesce history).
    pub state: PathBuf,
    /// How long a script's `start` may take before its process group is killed (0: no limit).
    pub start_timeout: Duration,
    /// How long a script's `stop` may take before its process group is killed (0: no limit).
    pub stop_timeout: Duration,
    /// Between SIGTERM and SIGKILL for the processes left at shutdown.
    pub grace: Duration,
    /// How long a quiesce waits, after the last stop, for processes to exit before calling them strays.
    pub settle: Duration,
    pub on_start_failure: StartFailurePolicy,
    /// Least severe level of dind-init's own log lines.
    pub log_level: LogLevel,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            init_dir: None,
            state: PathBuf::from(DEFAULT_STATE),
            start_timeout: Duration::from_secs(300),
            stop_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(5),
            settle: Duration::from_secs(2),
            on_start_failure: StartFailurePolicy::Abort,
            log_level: LogLevel::Info,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFailurePolicy {
    /// Stop what started, in reverse, and exit non-zero.
    Abort,
    /// Log the failure and go on with the next script.
    Continue,
}

impl FromStr for StartFailurePolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "abort" => Ok(StartFailurePolicy::Abort),
            "continue" => Ok(StartFailurePolicy::Continue),
            _ => Err(format!("`{text}` is not `abort` or `continue`")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            _ => Err(format!("`{text}` is not one of error, warn, info, debug")),
        }
    }
}

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
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Run(Box<Cli>),
    /// `--help`: print this text and exit 0.
    Help(String),
    /// `--version`: print this line and exit 0.
    Version(String),
}

/// A command line that cannot be run; printed as one line, exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; see `dind-init --help`", self.0)
    }
}

/// The text of `dind-init --help`.
pub fn help() -> String {
    format!(
        "dind-init {version}
PID-1 init supervisor: runs init.d scripts, reaps zombies, forwards signals,
and quiesces the container for `docker commit` on SIGUSR1.

Usage:
  dind-init [OPTIONS] [-- CMD [ARGS...]]     run as init (CMD: the main command)
  dind-init [OPTIONS] CMD [ARGS...]          the same, when CMD is not a subcommand
  dind-init status [--json] [--wait PHASE] [--timeout S]
  dind-init quiesce [--timeout S]            exit 0 only when safe to docker commit
  dind-init resume [--timeout S]             run the starts again after a quiesce
  dind-init snapshot [--engine docker|podman] [--timeout S] [--resume|--rm] CONTAINER IMAGE
                                             on the host: quiesce, commit if safe, resume

Options (each also an environment variable; the flag wins):
  --init-dir DIR            DIND_INIT_DIR             [{init_dir}; missing = no scripts]
  --socket PATH             DIND_INIT_SOCKET          [{socket}]
  --state FILE              DIND_INIT_STATE           [{state}]
  --start-timeout S         DIND_INIT_START_TIMEOUT   [300; 0 = no limit]
  --stop-timeout S          DIND_INIT_STOP_TIMEOUT    [60; 0 = no limit]
  --grace S                 DIND_INIT_GRACE           [5] SIGTERM to SIGKILL at shutdown
  --settle S                DIND_INIT_SETTLE          [2] wait for strays after the stops
  --on-start-failure MODE   DIND_INIT_ON_START_FAILURE [abort] abort | continue
  --log-level LEVEL         DIND_INIT_LOG_LEVEL       [info] error | warn | info | debug
  -h, --help                this text
  -V, --version             version, git commit and target triple

PHASE: starting, running, quiescing, quiesced, shutting-down. S: seconds, fractions allowed.
",
        version = crate::VERSION_LINE,
        init_dir = DEFAULT_INIT_DIR,
        socket = DEFAULT_SOCKET,
        state = DEFAULT_STATE,
    )
}

/// The init options that take a value: flag, environment variable.
const INIT_OPTIONS: [(&str, &str); 9] = [
    ("--init-dir", "DIND_INIT_DIR"),
    ("--socket", "DIND_INIT_SOCKET"),
    ("--state", "DIND_INIT_STATE"),
    ("--start-timeout", "DIND_INIT_START_TIMEOUT"),
    ("--stop-timeout", "DIND_INIT_STOP_TIMEOUT"),
    ("--grace", "DIND_INIT_GRACE"),
    ("--settle", "DIND_INIT_SETTLE"),
    ("--on-start-failure", "DIND_INIT_ON_START_FAILURE"),
    ("--log-level", "DIND_INIT_LOG_LEVEL"),
];

/// Parses `args` (without the program name), falling back to `env` for the
/// init options not given as flags.
pub fn parse<I>(args: I, env: impl Fn(&str) -> Option<OsString>) -> Result<Parsed, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args = args.into_iter();
    let mut given: Vec<(&'static str, OsString)> = Vec::new();
    let mut command = None;
    let mut main_command = Vec::new();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            main_command.push(arg);
            main_command.extend(args.by_ref());
            break;
        };
        match text {
            "--" => {
                main_command.extend(args.by_ref());
                break;
            }
            "-h" | "--help" => return Ok(Parsed::Help(help())),
            "-V" | "--version" => {
                return Ok(Parsed::Version(format!(
                    "dind-init {}",
                    crate::VERSION_LINE
                )));
            }
            "help" => return Ok(Parsed::Help(help())),
            "status" | "quiesce" | "resume" => {
                command = Some(parse_subcommand(text, &mut args, &mut given)?);
                break;
            }
            "snapshot" => {
                command = Some(Command::Snapshot(crate::snapshot::parse(&mut args)?));
                break;
            }
            _ if text.starts_with('-') => {
                let (flag, value) = option_value(text, &mut args)?;
                given.push((flag, value));
            }
            _ => {
                main_command.push(arg);
                main_command.extend(args.by_ref());
                break;
            }
        }
    }
    let lookup = |flag: &str| -> Option<(String, OsString)> {
        if let Some((_, value)) = given.iter().rev().find(|(f, _)| *f == flag) {
            return Some((flag.to_string(), value.clone()));
        }
        let variable = INIT_OPTIONS.iter().find(|(f, _)| *f == flag)?.1;
        env(variable).map(|value| (variable.to_string(), value))
    };
    let socket =
        lookup("--socket").map_or_else(|| PathBuf::from(DEFAULT_SOCKET), |(_, v)| PathBuf::from(v));
    let defaults = InitOptions::default();
    // A client never reads the init's options: an image's `ENV` reaches
    // `docker exec dind-init status` too, and must not be able to break it.
    let init = if command.is_some() {
        defaults
    } else {
        init_options(&lookup, defaults)?
    };
    Ok(Parsed::Run(Box::new(Cli {
        socket,
        init,
        command,
        main_command,
    })))
}

fn init_options(
    lookup: &impl Fn(&str) -> Option<(String, OsString)>,
    defaults: InitOptions,
) -> Result<InitOptions, UsageError> {
    Ok(InitOptions {
        init_dir: lookup("--init-dir").map(|(_, v)| PathBuf::from(v)),
        state: lookup("--state").map_or(defaults.state, |(_, v)| PathBuf::from(v)),
        start_timeout: value_of(lookup("--start-timeout"), parse_seconds)?
            .unwrap_or(defaults.start_timeout),
        stop_timeout: value_of(lookup("--stop-timeout"), parse_seconds)?
            .unwrap_or(defaults.stop_timeout),
        grace: value_of(lookup("--grace"), parse_seconds)?.unwrap_or(defaults.grace),
        settle: value_of(lookup("--settle"), parse_seconds)?.unwrap_or(defaults.settle),
        on_start_failure: value_of(lookup("--on-start-failure"), str::parse)?
            .unwrap_or(defaults.on_start_failure),
        log_level: value_of(lookup("--log-level"), str::parse)?.unwrap_or(defaults.log_level),
    })
}

/// An init option and its value, `--flag=value` or `--flag value`.
fn option_value(
    text: &str,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<(&'static str, OsString), UsageError> {
    let (name, inline) = split_flag(text);
    let Some(&(flag, _)) = INIT_OPTIONS.iter().find(|(f, _)| *f == name) else {
        return Err(UsageError(format!("unknown option `{name}`")));
    };
    Ok((flag, flag_value(flag, inline, args)?))
}

/// `--flag=value` gives the flag and its value; `--flag` the flag alone.
pub(crate) fn split_flag(text: &str) -> (&str, Option<OsString>) {
    match text.split_once('=') {
        Some((flag, value)) => (flag, Some(OsString::from(value))),
        None => (text, None),
    }
}

/// The value given inline, or else the next argument.
pub(crate) fn flag_value(
    flag: &str,
    inline: Option<OsString>,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<OsString, UsageError> {
    inline
        .or_else(|| args.next())
        .ok_or_else(|| UsageError(format!("`{flag}` needs a value")))
}

/// Parses an option's value, naming the flag or variable it came from on error.
fn value_of<T>(
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

fn parse_subcommand(
    name: &str,
    args: &mut impl Iterator<Item = OsString>,
    given: &mut Vec<(&'static str, OsString)>,
) -> Result<Command, UsageError> {
    let mut json = false;
    let mut wait = None;
    let mut timeout = DEFAULT_CLIENT_TIMEOUT;
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        let (flag, inline) = split_flag(&text);
        match flag {
            "--json" if name == "status" => json = true,
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
            "-h" | "--help" => {
                return Err(UsageError(format!(
                    "`dind-init {name}` takes the options shown by `dind-init --help`"
                )));
            }
            _ => {
                return Err(UsageError(format!(
                    "`dind-init {name}` does not take `{text}`"
                )));
            }
        }
    }
    Ok(match name {
        "status" => Command::Status {
            json,
            wait,
            timeout,
        },
        "quiesce" => Command::Quiesce { timeout },
        _ => Command::Resume { timeout },
    })
}

/// Parses a number of seconds, fractions allowed (`0.5`).
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` must be zero or more seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A timeout where zero means "no limit".
pub fn limit(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then_some(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed, UsageError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(args.iter().map(OsString::from), |name| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Cli {
        match parse_with(args, env) {
            Ok(Parsed::Run(cli)) => *cli,
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn seconds_accept_fractions_and_reject_garbage() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds(" 3 "), Ok(Duration::from_secs(3)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("inf").is_err());
    }

    #[test]
    fn zero_timeout_means_no_limit() {
        assert_eq!(limit(Duration::ZERO), None);
        assert_eq!(limit(Duration::from_secs(2)), Some(Duration::from_secs(2)));
    }

    #[test]
    fn defaults_without_arguments_or_environment() {
        let cli = run(&[], &[]);
        assert_eq!(cli.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(cli.init, InitOptions::default());
        assert!(cli.command.is_none() && cli.main_command.is_empty());
    }

    #[test]
    fn main_command_after_double_dash_and_tini_style() {
        let cli = run(&["--grace", "1", "--", "sleep", "-x"], &[]);
        assert_eq!(cli.main_command, ["sleep", "-x"]);
        assert_eq!(cli.init.grace, Duration::from_secs(1));
        let cli = run(&["sh", "-c", "exit 3"], &[]);
        assert_eq!(cli.main_command, ["sh", "-c", "exit 3"]);
        assert!(cli.command.is_none());
        let cli = run(&["--", "status", "--json"], &[]);
        assert_eq!(cli.main_command, ["status", "--json"]);
        assert!(cli.command.is_none());
    }

    #[test]
    fn flags_win_over_environment_and_both_forms_work() {
        let env = [
            ("DIND_INIT_GRACE", "7"),
            ("DIND_INIT_DIR", "/from/env"),
            ("DIND_INIT_ON_START_FAILURE", "continue"),
        ];
        let cli = run(&["--grace=2", "--settle", "0.5"], &env);
        assert_eq!(cli.init.grace, Duration::from_secs(2));
        assert_eq!(cli.init.settle, Duration::from_millis(500));
        assert_eq!(cli.init.init_dir, Some(PathBuf::from("/from/env")));
        assert_eq!(cli.init.on_start_failure, StartFailurePolicy::Continue);
    }

    #[test]
    fn client_subcommands_parse() {
        let cli = run(
            &["status", "--wait", "quiesced", "--json", "--timeout", "2"],
            &[],
        );
        assert_eq!(
            cli.command,
            Some(Command::Status {
                json: true,
                wait: Some(Phase::Quiesced),
                timeout: Duration::from_secs(2)
            })
        );
        let cli = run(
            &["--socket", "/tmp/s", "quiesce"],
            &[("DIND_INIT_SOCKET", "/env")],
        );
        assert_eq!(cli.socket, PathBuf::from("/tmp/s"));
        assert_eq!(
            cli.command,
            Some(Command::Quiesce {
                timeout: DEFAULT_CLIENT_TIMEOUT
            })
        );
        let cli = run(&["resume", "--socket=/x"], &[]);
        assert_eq!(cli.socket, PathBuf::from("/x"));
        let cli = run(&["status"], &[("DIND_INIT_SOCKET", "/env")]);
        assert_eq!(cli.socket, PathBuf::from("/env"));
    }

    #[test]
    fn bad_input_names_the_flag_or_variable() {
        let error = |args: &[&str], env: &[(&str, &str)]| parse_with(args, env).unwrap_err().0;
        assert_eq!(
            error(&["--grace", "soon"], &[]),
            "--grace: `soon` is not a number of seconds"
        );
        assert_eq!(
            error(&[], &[("DIND_INIT_STOP_TIMEOUT", "-3")]),
            "DIND_INIT_STOP_TIMEOUT: `-3` must be zero or more seconds"
        );
        assert_eq!(
            error(&["--on-start-failure", "retry"], &[]),
            "--on-start-failure: `retry` is not `abort` or `continue`"
        );
        assert_eq!(error(&["--bogus"], &[]), "unknown option `--bogus`");
        assert_eq!(error(&["--grace"], &[]), "`--grace` needs a value");
        assert_eq!(
            error(&["status", "--wait", "later"], &[]).split(':').next(),
            Some("--wait")
        );
        assert_eq!(
            error(&["quiesce", "--json"], &[]),
            "`dind-init quiesce` does not take `--json`"
        );
    }

    #[test]
    fn a_client_ignores_the_init_options_of_the_environment() {
        let cli = run(&["status"], &[("DIND_INIT_GRACE", "not a number")]);
        assert_eq!(cli.init, InitOptions::default());
        assert!(matches!(cli.command, Some(Command::Status { .. })));
    }

    #[test]
    fn help_and_version() {
        assert!(
            matches!(parse_with(&["--help"], &[]), Ok(Parsed::Help(text)) if text.contains("DIND_INIT_GRACE"))
        );
        assert!(matches!(parse_with(&["help"], &[]), Ok(Parsed::Help(_))));
        assert!(
            matches!(parse_with(&["-V"], &[]), Ok(Parsed::Version(line)) if line.starts_with("dind-init "))
        );
    }
}
