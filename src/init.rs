//! The init role wired together: subreaper when not PID 1, absolute paths,
//! `chdir("/")`, the control socket, the signal reader, the reaper and the
//! supervisor on one current-thread tokio runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::SigSet;

use crate::config::{Config, SignalRoles};
use crate::reaper::Reaper;
use crate::supervisor::Supervisor;
use crate::{control, logging, output, signals, sys};

/// Exit code of PID 1 for a configuration error found before anything ran.
pub const EXIT_CONFIG_ERROR: i32 = 2;
/// How long an idle blocking-pool thread stays before it exits.
const BLOCKING_THREAD_KEEP_ALIVE: Duration = Duration::from_millis(200);
/// How long the exit waits for queued log lines to be written.
const OUTPUT_FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// Runs dind-init as init until shutdown; returns the process exit code.
pub fn run(config: Config, signal_mask: SigSet) -> i32 {
    if let Err(error) = output::start() {
        eprintln!("dind-init: warning: no output thread ({error}); log lines are written directly");
    }
    logging::init(config.log_level.unwrap_or(crate::config::LogLevel::Info));
    let code = match prepare(config).and_then(|config| serve(config, signal_mask)) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            EXIT_CONFIG_ERROR
        }
    };
    output::flush(OUTPUT_FLUSH_LIMIT);
    code
}

fn prepare(mut config: Config) -> Result<Config> {
    let own_pid = nix::unistd::getpid().as_raw();
    if own_pid != 1 {
        // Not fatal: without it (qemu-user, kernels before 3.4) our own
        // children are still waited for; only orphans go to another reaper.
        match nix::sys::prctl::set_child_subreaper(true) {
            // Nothing is lost then: the orphans of our descendants come to us.
            Ok(()) => tracing::debug!(
                "not running as PID 1 (pid {own_pid}): registered as child subreaper, so only orphans of our own descendants are reaped"
            ),
            Err(error) => tracing::warn!(
                "not running as PID 1 (pid {own_pid}) and cannot become child subreaper ({error}): orphans of our descendants go to another reaper"
            ),
        }
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    config.resolve_paths(cwd);
    if own_pid != 1 && config.main_command.is_empty() && !config.init_dir.is_dir() {
        // Most likely `dind-init` typed on a host: say what this silent wait is.
        tracing::warn!(
            "not PID 1 and no init.d at {}: running as an init with nothing to run, holding {} until SIGTERM or Ctrl-C (in a container it is the ENTRYPOINT; `dind-init --help` lists the subcommands)",
            config.init_dir.display(),
            config.socket.display()
        );
    }
    if config.init_dir_explicit && !config.init_dir.is_dir() {
        bail!(
            "init.d directory {} (from --init-dir or DIND_INIT_DIR) does not exist or is not a directory; create it or unset DIND_INIT_DIR",
            config.init_dir.display()
        );
    }
    if config.main_command.is_empty() {
        // No one to pass the container's fds on to (scripts never get them).
        sys::close_inherited_fds();
    }
    // No mount point stays busy because PID 1 sits in it.
    std::env::set_current_dir("/").context("cannot chdir to /")?;
    Ok(config)
}

fn serve(mut config: Config, signal_mask: SigSet) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        // The blocking thread (state saves, the quiesce's flush) goes away
        // soon after its work instead of idling for tokio's default 10 s.
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .on_thread_start(sys::reblock_handled_signals)
        .build()
        .context("cannot start the event loop")?;
    runtime.block_on(async move {
        let signal_fd = sys::async_signal_fd(&signal_mask).context("cannot open the signalfd")?;
        let listener = bind_or_warn(&mut config);
        let socket_path = config.socket.clone();
        let signal_roles = config.signals;
        let reaper = Arc::new(Reaper::new());
        let (event_sender, events) = tokio::sync::mpsc::unbounded_channel();
        let (supervisor, status) =
            Supervisor::new(config, reaper.clone(), events, event_sender.clone());
        tokio::spawn(signals::run(
            signal_fd,
            signal_roles,
            reaper.clone(),
            event_sender.clone(),
        ));
        let bound = listener.is_some();
        if let Some(listener) = listener {
            let peers = supervisor.control_peers();
            tokio::spawn(control::serve(listener, status, event_sender, peers));
        }
        // Children that exited before the signalfd existed left no SIGCHLD to read.
        reaper.reap_all();
        let code = supervisor.run().await;
        if bound {
            remove_socket(&socket_path);
        }
        Ok(code)
    })
}

/// The control socket, or `None` after one warning: an init without a
/// socket still runs its scripts and main command, answers its signals and
/// reaps, as tini would (a read-only root file system, a second `dind-init
/// -- CMD` in a container whose dind-init owns the path). When a live
/// process holds the path, the scripts and the state file are left to it
/// too, and so is quiescing: every signal goes to the main command.
fn bind_or_warn(config: &mut Config) -> Option<tokio::net::UnixListener> {
    let error = match control::bind(&config.socket) {
        Ok(listener) => return Some(listener),
        Err(error) => error,
    };
    let also = if matches!(error, control::BindError::InUse(_)) {
        config.owns_paths = false;
        // Nothing of ours to quiesce or resume: a plain wrapper, like tini.
        config.signals = SignalRoles::forward_all();
        format!(
            ", init.d scripts or state file {} (they are the live one's): only the main command runs, and every signal goes to it",
            config.state_path.display()
        )
    } else {
        String::new()
    };
    tracing::warn!(
        "{error}; running without a control socket{also}: `dind-init status`, `quiesce` and `resume` cannot reach this init (its signals still work)"
    );
    None
}

fn remove_socket(path: &Path) {
    if let Err(error) = std::fs::remove_file(path) {
        tracing::debug!("cannot remove control socket {}: {error}", path.display());
    }
}
