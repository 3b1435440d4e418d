//! The command line of both roles of the one binary: the init (`dind-init
//! [OPTIONS] [-- CMD ARGS...]`) and the client subcommands (`status`,
//! `quiesce`, `resume`, `logs`, and `snapshot` on the host, parsed in
//! `snapshot`). Every init option is also an environment variable, so an
//! image can set them with `ENV`; a flag wins over its variable.
//!
//! Parsed by hand rather than with clap: the grammar is a dozen long options
//! and four subcommands, and clap was a sixth of the binary (see the README's
//! benchmark section). `parse` is pure (arguments and environment in, a
//! decision out) and unit-tested here.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

mod subcommand;
mod values;

use crate::config::{Config, DEFAULT_INIT_DIR, DEFAULT_SOCKET, DEFAULT_STATE, SignalRoles};
use crate::sys::signal_name;

pub use subcommand::Command;
use subcommand::{parse_subcommand, subcommand_help};
use values::value_of;
pub use values::{
    MAX_SECONDS, flag_value, parse_role_signal, parse_seconds, parse_timeout, split_flag,
};

/// Everything the command line and the environment decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Cli {
    /// The init's settings; a client subcommand uses only its `socket`.
    pub config: Config,
    /// A client subcommand; `None` runs the init.
    pub command: Option<Command>,
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
  dind-init logs SCRIPT                      the last lines of a script's output
  dind-init snapshot [--engine docker|podman] [--timeout S] [--resume|--rm] CONTAINER IMAGE
                                             on the host: quiesce, commit if safe, resume
  dind-init pool fill IMAGE --size N [--name POOL] [--wait] [-- RUN-ARGS...]
  dind-init pool take POOL [--timeout S] [--json] | release NAME | ls POOL | drain POOL [--all]
                                             on the host: containers kept ready, taken in ms

Options (each also an environment variable; the flag wins):
  --init-dir DIR            DIND_INIT_DIR             [{init_dir}; missing = no scripts]
  --socket PATH             DIND_INIT_SOCKET          [{socket}]
  --state FILE              DIND_INIT_STATE           [{state}]
  --start-timeout S         DIND_INIT_START_TIMEOUT   [300; 0 = no limit]
  --stop-timeout S          DIND_INIT_STOP_TIMEOUT    [60; 0 = no limit]
  --grace S                 DIND_INIT_GRACE           [5] SIGTERM to SIGKILL at shutdown
  --settle S                DIND_INIT_SETTLE          [2] wait for strays after the stops
  --on-start-failure MODE   DIND_INIT_ON_START_FAILURE [abort] abort | continue
  --on-daemon-exit MODE     DIND_INIT_ON_DAEMON_EXIT  [degrade] degrade | restart | shutdown
  --log-level LEVEL         DIND_INIT_LOG_LEVEL       [info; warn when there are no scripts]
  --quiesce-signal SIG      DIND_INIT_QUIESCE_SIGNAL  [USR1] a signal name or number, or none
  --resume-signal SIG       DIND_INIT_RESUME_SIGNAL   [USR2] (a signal without a role is
                                                      forwarded to the main command)
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
const INIT_OPTIONS: [(&str, &str); 12] = [
    ("--quiesce-signal", "DIND_INIT_QUIESCE_SIGNAL"),
    ("--resume-signal", "DIND_INIT_RESUME_SIGNAL"),
    ("--init-dir", "DIND_INIT_DIR"),
    ("--socket", "DIND_INIT_SOCKET"),
    ("--state", "DIND_INIT_STATE"),
    ("--start-timeout", "DIND_INIT_START_TIMEOUT"),
    ("--stop-timeout", "DIND_INIT_STOP_TIMEOUT"),
    ("--grace", "DIND_INIT_GRACE"),
    ("--settle", "DIND_INIT_SETTLE"),
    ("--on-start-failure", "DIND_INIT_ON_START_FAILURE"),
    ("--on-daemon-exit", "DIND_INIT_ON_DAEMON_EXIT"),
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
            "status" | "quiesce" | "resume" | "logs" => {
                match parse_subcommand(text, &mut args, &mut given)? {
                    Some(parsed) => command = Some(parsed),
                    None => return Ok(Parsed::Help(subcommand_help(text))),
                }
                break;
            }
            "snapshot" => {
                command = Some(Command::Snapshot(crate::snapshot::parse(&mut args)?));
                break;
            }
            "pool" => {
                command = Some(Command::Pool(crate::pool::parse(&mut args)?));
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
    // A client never reads the init's options: an image's `ENV` reaches
    // `docker exec dind-init status` too, and must not be able to break it.
    let config = if command.is_some() {
        Config {
            socket,
            ..Config::default()
        }
    } else {
        init_config(&lookup, socket, main_command)?
    };
    Ok(Parsed::Run(Box::new(Cli { config, command })))
}

fn init_config(
    lookup: &impl Fn(&str) -> Option<(String, OsString)>,
    socket: PathBuf,
    main_command: Vec<OsString>,
) -> Result<Config, UsageError> {
    let defaults = Config::default();
    let init_dir = lookup("--init-dir").map(|(_, v)| PathBuf::from(v));
    Ok(Config {
        init_dir_explicit: init_dir.is_some(),
        init_dir: init_dir.unwrap_or(defaults.init_dir),
        state_path: lookup("--state").map_or(defaults.state_path, |(_, v)| PathBuf::from(v)),
        owns_paths: defaults.owns_paths,
        socket,
        start_timeout: value_of(lookup("--start-timeout"), parse_timeout)?
            .unwrap_or(defaults.start_timeout),
        stop_timeout: value_of(lookup("--stop-timeout"), parse_timeout)?
            .unwrap_or(defaults.stop_timeout),
        grace: value_of(lookup("--grace"), parse_seconds)?.unwrap_or(defaults.grace),
        settle: value_of(lookup("--settle"), parse_seconds)?.unwrap_or(defaults.settle),
        on_start_failure: value_of(lookup("--on-start-failure"), str::parse)?
            .unwrap_or(defaults.on_start_failure),
        on_daemon_exit: value_of(lookup("--on-daemon-exit"), str::parse)?
            .unwrap_or(defaults.on_daemon_exit),
        log_level: value_of(lookup("--log-level"), str::parse)?.or(defaults.log_level),
        signals: signal_roles(lookup, defaults.signals)?,
        main_command,
        main_cwd: defaults.main_cwd,
    })
}

/// The quiesce and resume signals, which must differ unless `none`.
fn signal_roles(
    lookup: &impl Fn(&str) -> Option<(String, OsString)>,
    defaults: SignalRoles,
) -> Result<SignalRoles, UsageError> {
    let quiesce = value_of(lookup("--quiesce-signal"), parse_role_signal)?;
    let resume = value_of(lookup("--resume-signal"), parse_role_signal)?;
    let roles = SignalRoles {
        quiesce: quiesce.unwrap_or(defaults.quiesce),
        resume: resume.unwrap_or(defaults.resume),
    };
    if let (Some(quiesce), Some(resume)) = (roles.quiesce, roles.resume)
        && quiesce == resume
    {
        return Err(UsageError(format!(
            "the quiesce and resume signals are both {}; give them different signals, or `none` to one",
            signal_name(quiesce)
        )));
    }
    Ok(roles)
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

#[cfg(test)]
mod tests;
