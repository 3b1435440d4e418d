//! A start round, at boot and at every resume: discover the scripts, run
//! each one's `start` in order, then the main command (once), then
//! `running`. A quiesce or a shutdown asked for meanwhile ends the round
//! after the script in flight.

use crate::config::StartFailurePolicy;
use crate::discovery;
use crate::event::Refusal;
use crate::logging;
use crate::phase::Phase;
use crate::script::Action;
use crate::state::PreviousEnding;
use crate::status::{MainState, Outcome, ScriptState};
use crate::tail::{self, SharedTail};
use crate::text::escape_controls;

use super::daemons::Moment;
use super::intent::{EXIT_START_FAILED, ShutdownCause};
use super::{Supervisor, Tracked, answer_all};

impl Supervisor {
    /// The output tail of script `name`: the one of the round before, so a
    /// resume keeps what the quiesce's stops said, else a new one that
    /// updates the published status with every line (so `status` shows a
    /// failed start's last words even before the supervisor's next snapshot).
    fn tail_of(&self, name: &str) -> SharedTail {
        if let Some(tracked) = self.scripts.iter().find(|t| t.script.name == name) {
            return tracked.tail.clone();
        }
        let published = self.published.clone();
        let name = name.to_string();
        tail::shared(Box::new(move |lines| {
            published.send_if_modified(|status| {
                match status.scripts.iter_mut().find(|s| s.name == name) {
                    Some(script) => {
                        script.tail = lines;
                        true
                    }
                    None => false,
                }
            });
        }))
    }

    pub(super) async fn start_round(&mut self, reason: &'static str) {
        self.set_phase(Phase::Starting);
        // A restart queued before a quiesce is moot: every start runs again now.
        self.pending.restarts.clear();
        self.pending.intents.restart = false;
        self.discover();
        if reason == "boot" {
            self.log_boot();
        }
        self.publish();
        for index in 0..self.scripts.len() {
            let intents = &self.pending.intents;
            if intents.shutdown.is_some() || intents.quiesce {
                break;
            }
            if !self.start_one(index, reason).await {
                break;
            }
        }
        self.record_results();
        if self
            .scripts
            .iter()
            .any(|t| t.status.state == ScriptState::Started)
        {
            // The starts just counted survive a `docker kill` too; written
            // in the background, so nothing waits for the disk.
            self.save_state_in_background();
        }
        let intents = &self.pending.intents;
        if intents.shutdown.is_some() || intents.quiesce {
            answer_all(
                &mut self.pending.resume_waiters,
                Err(Refusal::StartsInterrupted),
            );
            return;
        }
        if self
            .main
            .as_ref()
            .is_some_and(|m| m.state == MainState::Pending)
        {
            self.start_main();
            if self.pending.intents.shutdown.is_some() {
                return;
            }
        }
        self.set_phase(Phase::Running);
        self.log_running();
        let status = self.snapshot();
        answer_all(&mut self.pending.resume_waiters, Ok(status));
    }

    /// Runs the start of script `index`; false when the round must end here
    /// (a failed start under the abort policy).
    pub(super) async fn start_one(&mut self, index: usize, reason: &'static str) -> bool {
        let Some(tracked) = self.scripts.get_mut(index) else {
            return false;
        };
        tracked.status.state = ScriptState::Starting;
        let name = tracked.script.name.clone();
        self.publish();
        let result = self.run_script(index, Action::Start, reason).await;
        let outcome = result.outcome;
        // Whatever the start left running is its daemons, even after a failure
        // (then only listed: the exit of a daemon of a failed start is not news).
        self.adopt_children(Moment::AfterStart(index));
        if let Some(tracked) = self.scripts.get_mut(index) {
            tracked.status.state = if outcome == Outcome::Succeeded {
                ScriptState::Started
            } else {
                ScriptState::StartFailed
            };
            tracked.status.start = Some(result);
        }
        self.publish();
        if matches!(outcome, Outcome::Succeeded | Outcome::Interrupted) {
            return true;
        }
        self.stop_daemons_left_by(index, "its start failed").await;
        if self.config.on_start_failure == StartFailurePolicy::Abort {
            tracing::error!(
                "start of {name} failed: stopping what started, then exiting {EXIT_START_FAILED} (DIND_INIT_ON_START_FAILURE=continue goes on instead)"
            );
            self.pending
                .intents
                .shutdown
                .get_or_insert(ShutdownCause::StartFailed);
            return false;
        }
        tracing::warn!("start of {name} failed; going on (on-start-failure=continue)");
        true
    }

    /// The boot's first line. With no scripts and no log level asked for,
    /// dind-init has nothing to tell and goes quiet (warnings and errors
    /// only), so a main command's terminal shows only its own output.
    fn log_boot(&self) {
        if self.scripts.is_empty() && self.config.log_level.is_none() {
            logging::quiet();
        }
        let boot = self.boot.boot;
        match (self.boot.previous, self.boot.restored_from_quiesce) {
            (PreviousEnding::Unclean, _) => tracing::warn!(
                "boot {boot}: the previous boot did not end cleanly (a crash, docker kill, or a docker commit without quiesce): its services may need recovery; scripts get DIND_INIT_PREVIOUS=unclean"
            ),
            (_, Some(id)) => tracing::info!("boot {boot}, restored from quiesce #{id}"),
            (PreviousEnding::Shutdown, None) => {
                tracing::info!("boot {boot}, after a clean shutdown")
            }
            _ => tracing::info!("boot {boot}"),
        }
    }

    fn log_running(&self) {
        let failed = self
            .scripts
            .iter()
            .filter(|t| !matches!(t.status.state, ScriptState::Started | ScriptState::Degraded))
            .count();
        let main = self
            .main_pid()
            .map(|pid| format!(", main command pid {pid}"))
            .unwrap_or_default();
        if failed == 0 {
            tracing::info!("running: {} script(s) started{main}", self.scripts.len());
        } else {
            tracing::warn!(
                "running with {failed} failed start(s) of {} script(s){main}",
                self.scripts.len()
            );
        }
    }

    fn discover(&mut self) {
        if !self.config.owns_paths {
            // A second dind-init: the scripts are the live one's to run.
            self.scripts.clear();
            return;
        }
        let dir = &self.config.init_dir;
        match discovery::discover(dir, self.config.init_dir_explicit) {
            Ok(found) => {
                for (name, reason) in &found.skipped {
                    let path = dir.join(name);
                    let shown = escape_controls(&path.to_string_lossy()).into_owned();
                    tracing::warn!("skipping {shown}: {reason}");
                }
                let own_uid = nix::unistd::geteuid().as_raw();
                for script in &found.scripts {
                    if let Some(risk) = discovery::trust_warning(&script.path, own_uid) {
                        tracing::warn!("{} {risk}", script.name);
                    }
                }
                let scripts: Vec<_> = found
                    .scripts
                    .into_iter()
                    .map(|script| {
                        let tail = self.tail_of(&script.name);
                        let completed_starts = self.state.starts_of(&script.name);
                        let mut tracked = Tracked::new(script, tail);
                        tracked.status.completed_starts = completed_starts;
                        tracked
                    })
                    .collect();
                self.scripts = scripts;
            }
            Err(error) => {
                tracing::error!(
                    "cannot read init.d directory {}: {error}; no scripts run",
                    dir.display()
                );
                self.scripts.clear();
            }
        }
    }
}
