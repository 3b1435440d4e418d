//! The settings the init role runs with, as typed values: what the command
//! line and the environment decided (`cli` builds it), resolved against the
//! directory dind-init was started in (`init`). The core reads only this,
//! never the command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Default init.d directory; a missing default directory means "no scripts".
pub const DEFAULT_INIT_DIR: &str = "/etc/dind-init/init.d";
/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/dind-init.sock";
/// Default persistent state file.
pub const DEFAULT_STATE: &str = "/var/lib/dind-init/state.json";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Directory of the init.d scripts.
    pub init_dir: PathBuf,
    /// Given by flag or environment: a missing directory is then an error,
    /// where a missing default directory only means "no scripts".
    pub init_dir_explicit: bool,
    /// Persistent state file (boot count, quiesce history).
    pub state_path: PathBuf,
    /// False for a second dind-init whose socket path a live one listens on
    /// (a nested `dind-init -- CMD`): the init.d scripts and the state file
    /// are that one's, so this one runs only its main command, as tini
    /// would, and keeps its state in memory.
    pub owns_paths: bool,
    /// The control socket the server binds and scripts are told about.
    pub socket: PathBuf,
    /// How long a script's `start` may take before its process group is killed; `None`: no limit.
    pub start_timeout: Option<Duration>,
    /// How long a script's `stop` may take before its process group is killed; `None`: no limit.
    pub stop_timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL for the processes left at shutdown.
    pub grace: Duration,
    /// How long a quiesce waits, after the last stop, for processes to exit before calling them strays.
    pub settle: Duration,
    /// What a failed start leads to.
    pub on_start_failure: StartFailurePolicy,
    /// What the exit of a daemon a start left running leads to.
    pub on_daemon_exit: DaemonExitPolicy,
    /// Least severe level of dind-init's own log lines; `None`: info, or
    /// only warnings and errors when there are no init.d scripts.
    pub log_level: Option<LogLevel>,
    /// Which signals quiesce and resume; any other is forwarded to the main command.
    pub signals: SignalRoles,
    /// The main command after `--`; empty for none.
    pub main_command: Vec<OsString>,
    /// The directory dind-init was started in, which the main command keeps.
    pub main_cwd: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            init_dir: PathBuf::from(DEFAULT_INIT_DIR),
            init_dir_explicit: false,
            state_path: PathBuf::from(DEFAULT_STATE),
            owns_paths: true,
            socket: PathBuf::from(DEFAULT_SOCKET),
            start_timeout: Some(Duration::from_secs(300)),
            stop_timeout: Some(Duration::from_secs(60)),
            grace: Duration::from_secs(5),
            settle: Duration::from_secs(2),
            on_start_failure: StartFailurePolicy::Abort,
            on_daemon_exit: DaemonExitPolicy::Degrade,
            log_level: None,
            signals: SignalRoles::default(),
            main_command: Vec::new(),
            main_cwd: PathBuf::from("/"),
        }
    }
}

impl Config {
    /// Makes every path absolute against `cwd`, the directory dind-init was
    /// started in, which the main command also keeps; dind-init itself then
    /// moves to `/`.
    pub fn resolve_paths(&mut self, cwd: PathBuf) {
        self.init_dir = cwd.join(&self.init_dir);
        self.state_path = cwd.join(&self.state_path);
        self.socket = cwd.join(&self.socket);
        self.main_cwd = cwd;
    }
}

/// The signals dind-init acts on itself rather than forwarding: signal
/// numbers, `None` where the role has no signal (`none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalRoles {
    /// Quiesces like `dind-init quiesce` (default SIGUSR1).
    pub quiesce: Option<i32>,
    /// Resumes like `dind-init resume` (default SIGUSR2).
    pub resume: Option<i32>,
}

impl SignalRoles {
    /// No roles: SIGUSR1 and SIGUSR2 are forwarded like any other signal.
    pub fn forward_all() -> Self {
        SignalRoles {
            quiesce: None,
            resume: None,
        }
    }
}

impl Default for SignalRoles {
    fn default() -> Self {
        SignalRoles {
            quiesce: Some(libc::SIGUSR1),
            resume: Some(libc::SIGUSR2),
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

/// What dind-init does when a daemon a script's start left running exits
/// outside that script's `stop` (the script is `degraded` in every case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonExitPolicy {
    /// Log it; status is unhealthy until a quiesce and resume or a restart.
    Degrade,
    /// Run the script's `stop`, then its `start`, with back-off and a limit per minute.
    Restart,
    /// Stop everything and exit with `EXIT_DAEMON_EXITED`.
    Shutdown,
}

impl FromStr for DaemonExitPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "degrade" => Ok(DaemonExitPolicy::Degrade),
            "restart" => Ok(DaemonExitPolicy::Restart),
            "shutdown" => Ok(DaemonExitPolicy::Shutdown),
            _ => Err(format!(
                "`{text}` is not `degrade`, `restart` or `shutdown`"
            )),
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
