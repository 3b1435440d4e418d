//! The command line of both roles of the one binary: the init (`dind-init
//! [OPTIONS] [-- CMD ARGS...]`) and the client subcommands (`status`,
//! `quiesce`, `resume`). Every init option is also an environment variable,
//! so an image can set them with `ENV`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::phase::Phase;

/// Default init.d directory; a missing default directory means "no scripts".
pub const DEFAULT_INIT_DIR: &str = "/etc/dind-init/init.d";
/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/dind-init.sock";
/// Default persistent state file.
pub const DEFAULT_STATE: &str = "/var/lib/dind-init/state.json";

#[derive(Debug, Parser)]
#[command(
    name = "dind-init",
    version = crate::VERSION_LINE,
    about = "PID-1 init supervisor: runs init.d scripts, reaps zombies, forwards signals, \
             and quiesces the container for `docker commit` on SIGUSR1.",
    after_help = "Run as init: dind-init [OPTIONS] [-- CMD ARGS...]\n\
                  Ask a running init: dind-init status | quiesce | resume"
)]
pub struct Cli {
    /// Control socket of the running dind-init (both roles).
    #[arg(long, env = "DIND_INIT_SOCKET", default_value = DEFAULT_SOCKET, global = true)]
    pub socket: PathBuf,

    #[command(flatten)]
    pub init: InitOptions,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Main command to run after every start script succeeded; its exit ends the
    /// container. Put it after `--`; without `--` any word but a subcommand's name works too.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub main_command: Vec<OsString>,
}

/// Options of the init role.
#[derive(Debug, Clone, Args)]
pub struct InitOptions {
    /// Directory of the init.d scripts [default: /etc/dind-init/init.d, where a
    /// missing directory means no scripts; a directory named here must exist].
    #[arg(long = "init-dir", env = "DIND_INIT_DIR", value_name = "DIR")]
    pub init_dir: Option<PathBuf>,

    /// Persistent state file (boot count, quiesce history).
    #[arg(long, env = "DIND_INIT_STATE", default_value = DEFAULT_STATE, value_name = "FILE")]
    pub state: PathBuf,

    /// Seconds a script's `start` may take before its process group is killed (0: no limit).
    #[arg(long, env = "DIND_INIT_START_TIMEOUT", default_value = "300", value_parser = parse_seconds, value_name = "SECONDS")]
    pub start_timeout: Duration,

    /// Seconds a script's `stop` may take before its process group is killed (0: no limit).
    #[arg(long, env = "DIND_INIT_STOP_TIMEOUT", default_value = "60", value_parser = parse_seconds, value_name = "SECONDS")]
    pub stop_timeout: Duration,

    /// Seconds between SIGTERM and SIGKILL for the processes left at shutdown.
    #[arg(long, env = "DIND_INIT_GRACE", default_value = "5", value_parser = parse_seconds, value_name = "SECONDS")]
    pub grace: Duration,

    /// Seconds a quiesce waits, after the last stop, for processes to exit before calling them strays.
    #[arg(long, env = "DIND_INIT_SETTLE", default_value = "2", value_parser = parse_seconds, value_name = "SECONDS")]
    pub settle: Duration,

    /// What a failed start does: `abort` stops what started and exits 3; `continue` goes on.
    #[arg(
        long,
        env = "DIND_INIT_ON_START_FAILURE",
        default_value = "abort",
        value_enum
    )]
    pub on_start_failure: StartFailurePolicy,

    /// Least severe level of dind-init's own log lines.
    #[arg(long, env = "DIND_INIT_LOG_LEVEL", default_value = "info", value_enum)]
    pub log_level: LogLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartFailurePolicy {
    /// Stop what started, in reverse, and exit non-zero.
    Abort,
    /// Log the failure and go on with the next script.
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// Client subcommands, answered by the running init over the control socket.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the phase, each script's state and the boot history; exit 0 only when
    /// running and every start succeeded (usable as a HEALTHCHECK).
    Status {
        /// Print the status as one JSON object.
        #[arg(long)]
        json: bool,
        /// Block until the init reaches this phase, then print the status.
        #[arg(long, value_name = "PHASE")]
        wait: Option<Phase>,
        /// Seconds `--wait` may block.
        #[arg(long, default_value = "300", value_parser = parse_seconds, value_name = "SECONDS")]
        timeout: Duration,
    },
    /// Stop every started script in reverse and wait until the container is safe
    /// to `docker commit`; exit 0 only when it is.
    Quiesce {
        /// Seconds to wait for the quiesce to finish.
        #[arg(long, default_value = "300", value_parser = parse_seconds, value_name = "SECONDS")]
        timeout: Duration,
    },
    /// Run the starts again after a quiesce, without a restart; exit 0 when running again.
    Resume {
        /// Seconds to wait for the starts to finish.
        #[arg(long, default_value = "300", value_parser = parse_seconds, value_name = "SECONDS")]
        timeout: Duration,
    },
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
    fn main_command_after_double_dash_and_tini_style() {
        let cli = Cli::try_parse_from(["dind-init", "--grace", "1", "--", "sleep", "-x"]).unwrap();
        assert_eq!(cli.main_command, ["sleep", "-x"]);
        assert_eq!(cli.init.grace, Duration::from_secs(1));
        let cli = Cli::try_parse_from(["dind-init", "sh", "-c", "exit 3"]).unwrap();
        assert_eq!(cli.main_command, ["sh", "-c", "exit 3"]);
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["dind-init", "--", "status"]).unwrap();
        assert_eq!(cli.main_command, ["status"]);
    }

    #[test]
    fn client_subcommands_parse() {
        let cli = Cli::try_parse_from(["dind-init", "status", "--wait", "quiesced"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Status {
                wait: Some(Phase::Quiesced),
                ..
            })
        ));
        let cli = Cli::try_parse_from(["dind-init", "--socket", "/tmp/s", "quiesce"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/s"));
        assert!(matches!(cli.command, Some(Command::Quiesce { .. })));
    }
}
