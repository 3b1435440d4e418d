//! One `SCRIPT start|stop` run to its end: spawned with its environment, its
//! timeout (SIGKILL to its process group), and, while it runs, the events
//! that may interrupt it (SIGTERM to a start when a shutdown comes, SIGKILL
//! to anything once the shutdown is forced). The result is a typed
//! [`RunResult`], never an early return.

use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::discovery;
use crate::reaper::ChildExit;
use crate::script::{self, Action, ScriptEnv};
use crate::status::{Outcome, RunResult};
use crate::sys::send_signal;

use super::{Supervisor, intent};

impl Supervisor {
    /// Runs the `action` of script `index` of the round.
    pub(super) async fn run_script(
        &mut self,
        index: usize,
        action: Action,
        reason: &'static str,
    ) -> RunResult {
        let Some((script, tail)) = self
            .scripts
            .get(index)
            .map(|t| (t.script.clone(), t.tail.clone()))
        else {
            return RunResult::failure(Outcome::SpawnFailed, None, 0, "no such script".into());
        };
        let label = format!("{} {}", script.name, action.as_str());
        let env = ScriptEnv {
            boot: self.boot.boot,
            restored: self.boot.restored,
            previous: self.boot.previous.as_str(),
            reason,
            socket: self.config.socket.clone(),
            starts_before: self.state.starts_of(&script.name),
        };
        let running = match script::spawn(&self.reaper, &script, action, &env, &tail) {
            Ok(running) => running,
            Err(error) => {
                let code = exec_failure_code(&error);
                let why = discovery::spawn_error(&script.path, &error);
                tracing::error!("{label}: {why}");
                return RunResult::failure(Outcome::SpawnFailed, Some(code), 0, why);
            }
        };
        tracing::info!("{label} (pid {})", running.pid);
        if action == Action::Start
            && let Some(tracked) = self.scripts.get_mut(index)
        {
            // What this start puts in the background is its own (`daemons::attribute`).
            tracked.keys.add_key(running.pid.as_raw(), self.own_ids);
            tracked.start_group = Some(running.pid.as_raw());
        }
        let timeout = match action {
            Action::Start => self.config.start_timeout,
            Action::Stop => self.config.stop_timeout,
        };
        // A negative pid names the process group; pids are positive, so this is exact.
        let group = Pid::from_raw(running.pid.as_raw().wrapping_neg());
        let mut sent: Option<Signal> = None;
        let exit = self
            .await_handling_events(exit_within(running.exit, timeout, group, &label), |s| {
                if let Some(signal) = intent::interruption(action, &s.pending.intents, sent) {
                    tracing::warn!(
                        "interrupting {label}: sending {} to its process group",
                        signal.as_str()
                    );
                    let _ = send_signal(group, signal as i32);
                    sent = Some(signal);
                }
                false
            })
            .await;
        let duration_ms = u64::try_from(running.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // What the script wrote before it exited comes before our line about it.
        script::drain_output(&running.drains).await;
        let Some((Ok(exit), timed_out)) = exit else {
            let why = "lost track of the script's process".to_string();
            tracing::error!("{label}: {why}");
            return RunResult::failure(Outcome::Failed, None, duration_ms, why);
        };
        let result = if timed_out {
            let limit = timeout.unwrap_or_default().as_secs_f64();
            RunResult::failure(
                Outcome::TimedOut,
                Some(exit.code()),
                duration_ms,
                format!("timed out after {limit:.1}s; its process group was killed"),
            )
        } else if sent.is_some() {
            RunResult::failure(
                Outcome::Interrupted,
                Some(exit.code()),
                duration_ms,
                format!("interrupted by shutdown ({exit})"),
            )
        } else if exit.success() {
            RunResult {
                outcome: Outcome::Succeeded,
                exit_code: Some(exit.code()),
                duration_ms,
                reason: None,
            }
        } else {
            RunResult::failure(
                Outcome::Failed,
                Some(exit.code()),
                duration_ms,
                exit.to_string(),
            )
        };
        if action == Action::Start && result.outcome == Outcome::Succeeded {
            self.state.record_start(&script.name);
            if let Some(tracked) = self.scripts.get_mut(index) {
                tracked.status.starts_before = env.starts_before;
                tracked.status.completed_starts = self.state.starts_of(&script.name);
            }
        }
        match &result.reason {
            None => tracing::info!("{label}: ok in {duration_ms}ms"),
            Some(why) => tracing::error!("{label} failed: {why}"),
        }
        result
    }
}

/// The script's exit, and whether it had to be killed for running past
/// `timeout` (`None`: no limit) first.
async fn exit_within(
    mut exit: tokio::sync::oneshot::Receiver<ChildExit>,
    timeout: Option<Duration>,
    group: Pid,
    label: &str,
) -> (
    Result<ChildExit, tokio::sync::oneshot::error::RecvError>,
    bool,
) {
    let Some(limit) = timeout else {
        return (exit.await, false);
    };
    tokio::select! {
        biased;
        done = &mut exit => return (done, false),
        () = tokio::time::sleep(limit) => {}
    }
    tracing::error!(
        "{label} timed out after {:.1}s: killing its process group",
        limit.as_secs_f64()
    );
    let _ = send_signal(group, Signal::SIGKILL as i32);
    (exit.await, true)
}

/// The shell's exit code for a program that could not be executed, the one
/// tini and catatonit give too: 127 when it was not found, 126 otherwise (not
/// executable, a missing interpreter's ENOEXEC, permission denied).
pub(super) fn exec_failure_code(error: &std::io::Error) -> i32 {
    if error.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}
