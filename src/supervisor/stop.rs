//! Stopping: a stop round (every started script's `stop`, in reverse), the
//! quiesce built on it (flush, stray check, the commit-safe record), and the
//! shutdown (main command first, the stops, then whatever is left).

use std::collections::HashSet;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::event::Refusal;
use crate::phase::Phase;
use crate::procs::ProcessInfo;
use crate::script::Action;
use crate::state::{self, Durability, QuiesceRecord};
use crate::status::{Outcome, ScriptState};
use crate::sys::send_signal;

use super::intent::{self, Intents, ShutdownCause};
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
        }
        self.set_phase(Phase::Quiesced);
        match self.state.quiesces.last() {
            Some(record) if record.commit_safe => {
                tracing::info!("quiesced: safe to docker commit (quiesce #{id})")
            }
            Some(record) => tracing::warn!(
                "quiesced but NOT safe to commit (quiesce #{id}): {}",
                unsafe_reasons(record)
            ),
            None => {}
        }
        let status = self.snapshot();
        answer_all(&mut self.pending.quiesce_waiters, Ok(status));
    }

    /// Our descendants that are still alive after the stops: waits up to the
    /// settle time for them to go (a daemon told to stop may take a moment),
    /// less the main command, which keeps running through a quiesce. A
    /// descendant that asked for the quiesce itself is a stray like any
    /// other: it may still be writing. (A `docker exec`ed client is no
    /// descendant of ours, so it is never one.) Any shutdown ends the wait.
    async fn settle_strays(&mut self) -> Vec<ProcessInfo> {
        let main = self.main_pid();
        let not_strays = move |_: &[ProcessInfo]| -> HashSet<i32> { main.into_iter().collect() };
        let shutdown = |intents: &Intents| intents.shutdown.is_some() || intents.force;
        self.wait_for_descendants(self.config.settle, shutdown, not_strays)
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
        if let Some(pid) = self.main_pid() {
            if !matches!(cause, ShutdownCause::Signal(_)) {
                let _ = send_signal(Pid::from_raw(pid), Signal::SIGTERM as i32);
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
        let failed_stops = self.stop_round(stop_reason).await;
        self.record_results();
        // Every stop ran: the next boot may take the disk as a clean restore.
        self.state.shut_down_cleanly = failed_stops.is_empty() && !self.pending.intents.force;
        let _ = self.save_state(Durability::Atomic).await;
        // No flush here: `docker commit` of the stopped container reads the
        // files through the page cache, and a syncfs of the container's root
        // is a sync of the host's disk under it, which took seconds on a busy
        // host (measured: 5.5 s for `dind-init -- true` beside a database
        // load). The quiesce, which promises a commit-safe disk, still flushes.
        self.terminate_remaining().await;

        let main_code = self.main.as_ref().and_then(|m| m.exit_code);
        let code = intent::exit_code(main_code, cause, !failed_stops.is_empty());
        tracing::info!("shutdown complete: exiting with code {code}");
        code
    }

    /// Waits up to the grace period for the main command to exit, still
    /// handling events (a second SIGTERM cuts the wait short).
    async fn wait_for_main_exit(&mut self) {
        if self.main_pid().is_none() || self.pending.intents.force {
            return;
        }
        let grace = self.config.grace;
        let expired = self
            .await_handling_events(tokio::time::sleep(grace), |s| {
                s.main_pid().is_none() || s.pending.intents.force
            })
            .await;
        if expired.is_some() {
            tracing::warn!(
                "main command still running after {:.1}s; it will be killed with the rest",
                grace.as_secs_f64()
            );
        }
    }
}

/// Why a quiesce is not commit-safe, in one line.
fn unsafe_reasons(record: &QuiesceRecord) -> String {
    let mut reasons = Vec::new();
    if !record.failed_stops.is_empty() {
        reasons.push(format!("failed stops: {}", record.failed_stops.join(", ")));
    }
    if !record.strays.is_empty() {
        let strays: Vec<_> = record
            .strays
            .iter()
            .map(|p| format!("{} ({})", p.pid, p.command))
            .collect();
        reasons.push(format!("processes still running: {}", strays.join(", ")));
    }
    if let Some(why) = &record.not_saved {
        reasons.push(format!("the quiesce record is not durable: {why}"));
    }
    reasons.join("; ")
}
