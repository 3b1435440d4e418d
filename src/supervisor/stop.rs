//! Stopping: a stop round (every started script's `stop`, in reverse), the
//! quiesce built on it (flush, stray check, the commit-safe record), and the
//! shutdown (main command first, the stops, then whatever is left).

use nix::sys::signal::Signal;

use crate::event::Refusal;
use crate::phase::Phase;
use crate::procs::{self, ProcessInfo};
use crate::script::Action;
use crate::state::{self, Durability, QuiesceRecord};
use crate::status::{Outcome, ScriptState};

use super::intent::{Intents, ShutdownCause};
use super::teardown::KILL_WAIT;
use super::{Supervisor, answer_all};

impl Supervisor {
    /// Runs `stop` for every script that needs it, in reverse order; returns
    /// the names of those whose stop failed.
    async fn stop_round(&mut self, reason: &'static str) -> Vec<String> {
        let mut failed = Vec::new();
        for index in (0..self.scripts.len()).rev() {
            if self.pending.intents.force {
                break;
            }
            if !self.scripts.get(index).is_some_and(|t| t.needs_stop()) {
                continue;
            }
            if let Some(name) = self.stop_one(index, reason).await {
                failed.push(name);
            }
        }
        self.ending.stop_round(&failed, self.pending.intents.force);
        failed
    }

    /// Runs the `stop` of script `index`; returns its name when the stop failed.
    pub(super) async fn stop_one(&mut self, index: usize, reason: &'static str) -> Option<String> {
        let tracked = self.scripts.get_mut(index)?;
        tracked.status.state = ScriptState::Stopping;
        self.publish();
        let result = self.run_script(index, Action::Stop, reason).await;
        if result.outcome == Outcome::TimedOut {
            self.stop_daemons_left_by(index, "its stop timed out").await;
        }
        let tracked = self.scripts.get_mut(index)?;
        let succeeded = result.outcome == Outcome::Succeeded;
        tracked.status.state = if succeeded {
            ScriptState::Stopped
        } else {
            ScriptState::StopFailed
        };
        tracked.status.stop = Some(result);
        let failed = (!succeeded).then(|| tracked.script.name.clone());
        self.publish();
        failed
    }

    pub(super) async fn quiesce(&mut self) {
        self.pending.intents.quiesce = false;
        self.set_phase(Phase::Quiescing);
        tracing::info!(
            "quiescing: stopping {} script(s) in reverse order",
            self.stops_needed()
        );
        let failed_stops = self.stop_round("quiesce").await;
        self.record_results();
        if self.pending.intents.force {
            answer_all(
                &mut self.pending.quiesce_waiters,
                Err(Refusal::QuiesceForced),
            );
            return;
        }
        self.flush().await;
        self.strays = state::bounded_strays(&self.settle_strays().await);
        if self.pending.intents.shutdown.is_some() {
            // The shutdown that cut the settle short takes over; its own
            // stops have nothing left to do.
            answer_all(
                &mut self.pending.quiesce_waiters,
                Err(Refusal::ShuttingDown),
            );
            return;
        }
        let commit_safe = failed_stops.is_empty() && self.strays.is_empty();
        self.ending.quiesced(commit_safe);
        self.record_ending();
        let id = self.state.record_quiesce(QuiesceRecord {
            id: 0,
            boot: 0,
            at: state::now_rfc3339(),
            commit_safe,
            failed_stops: failed_stops.clone(),
            strays: self.strays.clone(),
            not_saved: None,
        });
        // The stops' writes were flushed above; this fsyncs the record itself.
        // A record that is not durable is no snapshot the next boot can
        // recognise: not commit-safe.
        if let Err(why) = self.save_state(Durability::Fsync).await
            && let Some(record) = self.state.quiesces.last_mut()
        {
            record.commit_safe = false;
            record.not_saved = Some(why);
            self.ending.quiesced(false);
            // The failed save may have renamed the file into place before
            // its directory fsync failed: the file must not keep saying
            // "commit-safe" for this quiesce.
            self.record_ending();
            self.save_state_in_background();
        }
        self.set_phase(Phase::Quiesced);
        match self.state.quiesces.last() {
            Some(record) if record.commit_safe => {
                tracing::info!("quiesced: safe to docker commit (quiesce #{id})")
            }
            Some(record) => tracing::warn!(
                "quiesced but NOT safe to commit (quiesce #{id}): {}",
                record.unsafe_reasons().join("; ")
            ),
            None => {}
        }
        let status = self.snapshot();
        answer_all(&mut self.pending.quiesce_waiters, Ok(status));
    }

    /// The strays still alive after the stops ([`procs::strays`]: as PID 1
    /// every process of the PID namespace, `docker exec`ed ones included,
    /// less the main command, which keeps running through a quiesce, and
    /// the chain of each client connected to the control socket, such as
    /// the one that asked): waits up to the settle time for them to go (a
    /// daemon told to stop may take a moment). Any shutdown ends the wait.
    async fn settle_strays(&mut self) -> Vec<ProcessInfo> {
        let main = self.main_pid();
        let own_pid = self.own_pid;
        let peers = self.control_peers.clone();
        let left_in =
            move |table: &[ProcessInfo]| procs::strays(table, own_pid, &peers.pids(), main);
        let shutdown = |intents: &Intents| intents.shutdown.is_some() || intents.force;
        self.wait_for_processes(self.config.settle, shutdown, own_pid != 1, left_in)
            .await
    }

    pub(super) async fn shutdown(&mut self) -> i32 {
        let cause = self
            .pending
            .intents
            .shutdown
            .unwrap_or(ShutdownCause::Signal(Signal::SIGTERM as i32));
        self.set_phase(Phase::ShuttingDown);
        answer_all(
            &mut self.pending.quiesce_waiters,
            Err(Refusal::ShuttingDown),
        );
        answer_all(&mut self.pending.resume_waiters, Err(Refusal::ShuttingDown));

        // The main command started last, so it stops first.
        if self.main_pid().is_some() {
            if !matches!(cause, ShutdownCause::Signal(_)) {
                let _ = self.reaper.signal_main(Signal::SIGTERM as i32);
            }
            self.wait_for_main_exit().await;
        }
        let stop_reason = if cause == ShutdownCause::StartFailed {
            "start-failure"
        } else {
            "shutdown"
        };
        let count = self.stops_needed();
        if count > 0 {
            tracing::info!("stopping {count} script(s) in reverse order");
        }
        self.stop_round(stop_reason).await;
        self.record_results();
        self.ending.shutdown_stopped();
        self.record_ending();
        if self.records_this_boot() {
            let _ = self.save_state(Durability::Atomic).await;
        }
        // No flush here: `docker commit` of the stopped container reads the
        // files through the page cache, and a syncfs of the container's root
        // is a sync of the host's disk under it, which took seconds on a busy
        // host (measured: 5.5 s for `dind-init -- true` beside a database
        // load). The quiesce, which promises a commit-safe disk, still flushes.
        self.terminate_remaining().await;

        // Decided where the main command was reaped: the event about its
        // exit may not have been handled yet. A last sweep collects it if
        // it is a zombie whose SIGCHLD is still unread (only then: other
        // zombies are left to the kernel, as before).
        if self.main.is_some() && self.reaper.main_exit().is_none() {
            self.reaper.reap_all();
        }
        let main_code = match self.reaper.main_exit() {
            Some(exit) => Some(exit.code()),
            None => self.main.as_ref().and_then(|m| m.exit_code),
        };
        let code = self.ending.exit_code(main_code, cause);
        tracing::info!("shutdown complete: exiting with code {code}");
        code
    }

    /// Waits up to the grace period for the main command to exit, still
    /// handling events (a further SIGTERM is the main command's business,
    /// forwarded to it: see `intent::shutdown_request`), then SIGKILLs it,
    /// unless the reaper has reaped it meanwhile, and waits for it to be
    /// reaped: the stops begin only once the main command is gone, and
    /// within one grace period of the shutdown's start, so that they fit in
    /// the engine's stop timeout.
    async fn wait_for_main_exit(&mut self) {
        if self.main_pid().is_none() {
            return;
        }
        let grace = self.config.grace;
        if !self.pending.intents.force {
            let expired = self
                .await_handling_events(tokio::time::sleep(grace), |s| {
                    s.main_pid().is_none() || s.pending.intents.force
                })
                .await;
            if self.main_pid().is_none() {
                return;
            }
            if expired.is_some() {
                tracing::warn!(
                    "main command still running after the {:.1}s grace period: sending it SIGKILL before the stops",
                    grace.as_secs_f64()
                );
            }
        }
        let _ = self.reaper.signal_main(Signal::SIGKILL as i32);
        self.await_handling_events(tokio::time::sleep(KILL_WAIT), |s| s.main_pid().is_none())
            .await;
    }
}
