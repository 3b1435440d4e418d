//! The command line of both roles of the one binary: the init (`dind-init
//! [OPTIONS] [-- CMD ARGS...]`) and the client subcommands (`status`,
//! `quiesce`, `resume`, `logs`, and `snapshot` and `pool` on the host,
//! parsed in their modules). Every init option is also an environment
//! variable, so an image can set them with `ENV`; a flag wins over its
//! variable. Each parser checks its flags against its [`Syntax`] table, and
//! `-h`/`--help` after any subcommand is answered here from those tables
//! ([`SYNTAXES`]), which `help_drift` walks against the help texts.
//!
//! Parsed by hand rather than with clap: the grammar is a dozen long options
//! and a few subcommands, and clap was a sixth of the binary. `parse` is
//! pure (arguments and environment in, a decision out) but for three
//! checks of the file system, so that a newcomer's mistake is named where
//! it was made: a named init.d directory must exist, `--engine NAME` must be
//! on `PATH`, and a word one edit from a subcommand must be a program there.

use std::ffi::OsString;
use std::path::PathBuf;

mod subcommand;
mod suggest;
mod values;

use crate::config::{Config, DEFAULT_INIT_DIR, DEFAULT_SOCKET, DEFAULT_STATE, SignalRoles};
use crate::sys::signal_name;

pub use crate::args::{
    MAX_SECONDS, Syntax, UsageError, flag_value, parse_seconds, parse_timeout, split_flag,
};
pub use subcommand::Command;
use subcommand::parse_subcommand;
pub use values::parse_role_signal;
use values::value_of;

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

/// The text of `dind-init --help`.
pub fn help() -> String {
    format!(
        "dind-init {version}
PID-1 init supervisor: runs init.d scripts, reaps zombies, forwards signals,
and quiesces the container for `docker commit` on SIGUSR1.

Usage:
  dind-init [OPTIONS] [-- CMD [ARGS...]]     run as init (CMD: the main command)
  dind-init [OPTIONS] CMD [ARGS...]          the same, when CMD is not a subcommand

In a container, talking to its init (each also takes --socket PATH):
  dind-init status [--json] [--wait PHASE] [--timeout S]
  dind-init quiesce [--timeout S]            exit 0 only when safe to docker commit
  dind-init resume [--timeout S]             run the starts again after a quiesce
  dind-init logs SCRIPT                      the last lines of a script's output

On the host (Linux; --engine docker|podman, default the first on PATH):
  dind-init snapshot [--engine E] [--timeout S] [--resume|--rm] CONTAINER IMAGE
                                             quiesce, commit if safe, resume (or remove)
  dind-init pool [--engine E] fill IMAGE --size N [--name POOL] [--wait] [--timeout S] [-- RUN-ARGS...]
  dind-init pool take POOL [--timeout S] [--lease S] [--json] | release NAME | ls POOL [--json] | drain POOL [--all] | gc POOL
                                             containers kept ready, taken in ms

In a docker-in-docker L2 (run by the init.d step 30-docker-storage.sh):
  dind-init storage start|stop|status        the inner engine's data: restore, save, show

`dind-init SUBCOMMAND --help` gives each one's options, defaults and exit codes.

Options of the init (each also an environment variable; the flag wins):
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

Exit codes of the init: CMD's (128+N when signal N killed it); without CMD 0,
or 1 when a stop failed or the last quiesce was not commit-safe; 2 a configuration error; 3 a start failed; 4 a daemon
exited (--on-daemon-exit shutdown). Of the subcommands: 0 yes, 1 no, 2 usage error, 3 no dind-init
answers (snapshot and pool: see their --help).
PHASE: starting, running, quiescing, quiesced, shutting-down. S: seconds, fractions allowed.
",
        version = crate::VERSION_LINE,
        init_dir = DEFAULT_INIT_DIR,
        socket = DEFAULT_SOCKET,
        state = DEFAULT_STATE,
    )
}

/// The init's flags, each with its environment variable in [`INIT_VARIABLES`].
const INIT_FLAGS: [&str; 12] = [
    "--quiesce-signal",
    "--resume-signal",
    "--init-dir",
    "--socket",
    "--state",
    "--start-timeout",
    "--stop-timeout",
    "--grace",
    "--settle",
    "--on-start-failure",
    "--on-daemon-exit",
    "--log-level",
];
const INIT_VARIABLES: [&str; 12] = [
    "DIND_INIT_QUIESCE_SIGNAL",
    "DIND_INIT_RESUME_SIGNAL",
    "DIND_INIT_DIR",
    "DIND_INIT_SOCKET",
    "DIND_INIT_STATE",
    "DIND_INIT_START_TIMEOUT",
    "DIND_INIT_STOP_TIMEOUT",
    "DIND_INIT_GRACE",
    "DIND_INIT_SETTLE",
    "DIND_INIT_ON_START_FAILURE",
    "DIND_INIT_ON_DAEMON_EXIT",
    "DIND_INIT_LOG_LEVEL",
];

/// What the init accepts before its main command.
const INIT_SYNTAX: [Syntax; 1] = [Syntax {
    words: "",
    flags: &INIT_FLAGS,
    help,
}];

/// Every command line of the binary, one table per parser: the help-drift
/// test walks them all, and `--help` after a subcommand is answered from them.
pub const SYNTAXES: [&[Syntax]; 4] = [
    &INIT_SYNTAX,
    &subcommand::SYNTAX,
    crate::snapshot::SYNTAX,
    crate::pool::SYNTAX,
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
                let rest: Vec<OsString> = args.by_ref().collect();
                if let Some(text) = asked_help(&subcommand::SYNTAX, text, &rest) {
                    return Ok(Parsed::Help(text));
                }
                command = Some(parse_subcommand(text, &mut rest.into_iter(), &mut given)?);
                break;
            }
            "snapshot" => {
                let rest: Vec<OsString> = args.by_ref().collect();
                if let Some(text) = asked_help(crate::snapshot::SYNTAX, text, &rest) {
                    return Ok(Parsed::Help(text));
                }
                let request = crate::snapshot::parse(&mut rest.into_iter())?;
                if let Some(engine) = request.engine {
                    engine_installed(engine, env("PATH").as_deref())?;
                }
                command = Some(Command::Snapshot(request));
                break;
            }
            "pool" => {
                let rest: Vec<OsString> = args.by_ref().collect();
                if let Some(text) = asked_help(crate::pool::SYNTAX, text, &rest) {
                    return Ok(Parsed::Help(text));
                }
                command = Some(Command::Pool(crate::pool::parse(&mut rest.into_iter())?));
                break;
            }
            _ if text.starts_with('-') => {
                let (flag, value) = option_value(text, &mut args)?;
                given.push((flag, value));
            }
            _ => {
                if let Some(meant) = suggest::subcommand_meant(text, env("PATH").as_deref()) {
                    return Err(UsageError(format!(
                        "`{text}` is not a subcommand and no program on PATH; did you mean `{meant}`? (to run a program `{text}` as the main command: `dind-init -- {text}`)"
                    )));
                }
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
        let (_, variable) = INIT_FLAGS
            .iter()
            .zip(INIT_VARIABLES)
            .find(|(f, _)| **f == flag)?;
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
    let init_dir = named_init_dir(lookup("--init-dir"))?;
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
    let [init] = &INIT_SYNTAX;
    init.check(name)?;
    let Some(flag) = INIT_FLAGS.into_iter().find(|f| *f == name) else {
        return Err(init.unknown(name));
    };
    Ok((flag, flag_value(flag, inline, args)?))
}

/// The init.d directory given by flag or variable, which must exist: named,
/// a missing one is a mistake, where the default missing means no scripts.
/// The one check of the command line that reads the file system, so that
/// the error names where the path came from.
fn named_init_dir(given: Option<(String, OsString)>) -> Result<Option<PathBuf>, UsageError> {
    let Some((source, value)) = given else {
        return Ok(None);
    };
    let dir = PathBuf::from(value);
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "{source} {}: no such directory; create it and put the init.d scripts there, or leave {source} out to run without scripts",
            dir.display()
        )));
    }
    Ok(Some(dir))
}

/// `--engine NAME` only when NAME's CLI is on `path`: else how to get it.
fn engine_installed(
    engine: crate::snapshot::Engine,
    path: Option<&std::ffi::OsStr>,
) -> Result<(), UsageError> {
    if engine.is_on_path(path) {
        return Ok(());
    }
    Err(UsageError(format!(
        "--engine {name}: no `{name}` on PATH; install it ({how}), or leave --engine out to use the engine that is on PATH",
        name = engine.program(),
        how = engine.install_hint()
    )))
}

/// The help text when `-h` or `--help` comes after subcommand `word`
/// (before any `--`): that of the entry of `table` whose words all appear,
/// the most words winning, else the bare word's.
fn asked_help(table: &[Syntax], word: &str, rest: &[OsString]) -> Option<String> {
    let before_dashes = rest.iter().take_while(|arg| *arg != "--");
    let mut words = Vec::new();
    let mut asked = false;
    for arg in before_dashes {
        match arg.to_str() {
            Some("-h" | "--help") => asked = true,
            Some(text) => words.push(text),
            None => {}
        }
    }
    if !asked {
        return None;
    }
    let chosen = table
        .iter()
        .filter(|syntax| {
            let mut own = syntax.words.split_whitespace();
            own.next() == Some(word) && own.all(|verb| words.contains(&verb))
        })
        .max_by_key(|syntax| syntax.words.split_whitespace().count())?;
    Some((chosen.help)())
}

#[cfg(test)]
mod help_drift;
#[cfg(test)]
mod tests;
