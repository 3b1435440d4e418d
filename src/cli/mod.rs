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
mod tests {
    use super::*;
    use crate::config::{DaemonExitPolicy, StartFailurePolicy};
    use crate::phase::Phase;
    use std::time::Duration;
    use subcommand::DEFAULT_CLIENT_TIMEOUT;

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
    fn zero_timeout_means_no_limit() {
        assert_eq!(parse_timeout("0"), Ok(None));
        assert_eq!(parse_timeout("2"), Ok(Some(Duration::from_secs(2))));
        let cli = run(&["--start-timeout", "0"], &[]);
        assert_eq!(cli.config.start_timeout, None);
        assert_eq!(cli.config.stop_timeout, Config::default().stop_timeout);
    }

    #[test]
    fn huge_values_are_a_usage_error_not_a_panic() {
        for huge in ["1e20", "1e19", "31536001", "18446744073709551616"] {
            let error = parse_with(&["--grace", huge], &[]).unwrap_err().0;
            assert!(error.contains("more than a year"), "{huge}: {error}");
            let error = parse_with(&[], &[("DIND_INIT_SETTLE", huge)])
                .unwrap_err()
                .0;
            assert!(error.starts_with("DIND_INIT_SETTLE: "), "{error}");
            let error = parse_with(&["status", "--timeout", huge], &[])
                .unwrap_err()
                .0;
            assert!(error.starts_with("--timeout: "), "{error}");
        }
        assert_eq!(
            parse_seconds("31536000"),
            Ok(Duration::from_secs(MAX_SECONDS))
        );
    }

    #[test]
    fn role_signals_by_name_number_or_none() {
        assert_eq!(parse_role_signal("USR1"), Ok(Some(libc::SIGUSR1)));
        assert_eq!(parse_role_signal("sighup"), Ok(Some(libc::SIGHUP)));
        assert_eq!(parse_role_signal("12"), Ok(Some(12)));
        assert_eq!(parse_role_signal("none"), Ok(None));
        assert_eq!(parse_role_signal("RTMIN+2"), Ok(Some(libc::SIGRTMIN() + 2)));
        for refused in [
            "KILL", "STOP", "CHLD", "SEGV", "0", "65", "bogus", "RTMIN+x",
        ] {
            assert!(parse_role_signal(refused).is_err(), "{refused}");
        }
        let cli = run(
            &["--quiesce-signal", "HUP"],
            &[("DIND_INIT_RESUME_SIGNAL", "none")],
        );
        assert_eq!(
            cli.config.signals,
            SignalRoles {
                quiesce: Some(libc::SIGHUP),
                resume: None
            }
        );
        let error = parse_with(&["--resume-signal", "USR1"], &[]).unwrap_err().0;
        assert!(error.contains("both SIGUSR1"), "{error}");
    }

    #[test]
    fn json_flag_takes_true_or_false() {
        let json_of = |args: &[&str]| match run(args, &[]).command {
            Some(Command::Status { json, .. }) => json,
            other => panic!("not status: {other:?}"),
        };
        assert!(json_of(&["status", "--json"]));
        assert!(json_of(&["status", "--json=true"]));
        assert!(!json_of(&["status", "--json=false"]));
        assert!(!json_of(&["status"]));
        assert!(parse_with(&["status", "--json=yes"], &[]).is_err());
    }

    #[test]
    fn subcommand_help_is_help_not_an_error() {
        for name in ["status", "quiesce", "resume", "logs"] {
            match parse_with(&[name, "--help"], &[]) {
                Ok(Parsed::Help(text)) => {
                    assert!(
                        text.starts_with(&format!("Usage: dind-init {name}")),
                        "{text}"
                    )
                }
                other => panic!("{name} --help: {other:?}"),
            }
        }
    }

    #[test]
    fn defaults_without_arguments_or_environment() {
        let cli = run(&[], &[]);
        assert_eq!(cli.config, Config::default());
        assert!(cli.command.is_none() && cli.config.main_command.is_empty());
    }

    #[test]
    fn main_command_after_double_dash_and_tini_style() {
        let cli = run(&["--grace", "1", "--", "sleep", "-x"], &[]);
        assert_eq!(cli.config.main_command, ["sleep", "-x"]);
        assert_eq!(cli.config.grace, Duration::from_secs(1));
        let cli = run(&["sh", "-c", "exit 3"], &[]);
        assert_eq!(cli.config.main_command, ["sh", "-c", "exit 3"]);
        assert!(cli.command.is_none());
        let cli = run(&["--", "status", "--json"], &[]);
        assert_eq!(cli.config.main_command, ["status", "--json"]);
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
        assert_eq!(cli.config.grace, Duration::from_secs(2));
        assert_eq!(cli.config.settle, Duration::from_millis(500));
        assert_eq!(cli.config.init_dir, PathBuf::from("/from/env"));
        assert!(cli.config.init_dir_explicit);
        assert_eq!(cli.config.on_start_failure, StartFailurePolicy::Continue);
        let cli = run(
            &["--on-daemon-exit=restart"],
            &[("DIND_INIT_ON_DAEMON_EXIT", "shutdown")],
        );
        assert_eq!(cli.config.on_daemon_exit, DaemonExitPolicy::Restart);
        let cli = run(&[], &[("DIND_INIT_ON_DAEMON_EXIT", "shutdown")]);
        assert_eq!(cli.config.on_daemon_exit, DaemonExitPolicy::Shutdown);
        assert_eq!(
            parse_with(&["--on-daemon-exit", "ignore"], &[])
                .unwrap_err()
                .0,
            "--on-daemon-exit: `ignore` is not `degrade`, `restart` or `shutdown`"
        );
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
        assert_eq!(cli.config.socket, PathBuf::from("/tmp/s"));
        assert_eq!(
            cli.command,
            Some(Command::Quiesce {
                timeout: DEFAULT_CLIENT_TIMEOUT
            })
        );
        let cli = run(&["resume", "--socket=/x"], &[]);
        assert_eq!(cli.config.socket, PathBuf::from("/x"));
        let cli = run(&["status"], &[("DIND_INIT_SOCKET", "/env")]);
        assert_eq!(cli.config.socket, PathBuf::from("/env"));
        let cli = run(&["logs", "10-db.sh", "--socket=/y"], &[]);
        assert_eq!(
            cli.command,
            Some(Command::Logs {
                script: "10-db.sh".into()
            })
        );
        assert_eq!(cli.config.socket, PathBuf::from("/y"));
        assert_eq!(
            parse_with(&["logs"], &[]).unwrap_err().0,
            "`dind-init logs` needs a SCRIPT name"
        );
        assert!(parse_with(&["logs", "a.sh", "b.sh"], &[]).is_err());
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
        assert_eq!(cli.config, Config::default());
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
