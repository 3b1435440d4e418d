//! What each event means for the supervisor: signals by their role,
//! quiesce and resume requests with the clients waiting on them, a shutdown
//! asked for. Each handler asks [`intent`](super::intent) what to do and
//! records it; the lifecycle loop acts between stages.

use crate::event::{ControlCommand, Event, Reply};
use crate::status::ScriptState;
use crate::sys::signal_name;

use super::intent::{self, QuiesceDecision, ShutdownCause, ShutdownDecision, SignalRole};
use super::{Supervisor, answer};

impl Supervisor {
    pub(super) fn handle(&mut self, event: Event) {
        match event {
            Event::Signal(signo) => self.on_signal(signo),
            Event::Control(request) => match request.command {
                ControlCommand::Quiesce => self.request_quiesce(Some(request.reply)),
                ControlCommand::Resume => self.request_resume(Some(request.reply)),
            },
            Event::MainExited(exit) => self.on_main_exit(exit),
            Event::DaemonExited { pid, exit } => self.on_daemon_exit(pid, exit),
            Event::DaemonExec { pid, command } => self.on_daemon_exec(pid, command),
        }
    }

    /// The signal task already forwarded what the main command should get
    /// (`signals::is_forwarded`); here only what dind-init itself acts on.
    fn on_signal(&mut self, signo: i32) {
        match intent::signal_role(signo, &self.config.signals) {
            SignalRole::Quiesce => self.request_quiesce(None),
            SignalRole::Resume => self.request_resume(None),
            SignalRole::Shutdown => self.request_shutdown(ShutdownCause::Signal(signo)),
            SignalRole::None => tracing::debug!("{} received", signal_name(signo)),
        }
    }

    fn request_shutdown(&mut self, cause: ShutdownCause) {
        let name = match cause {
            ShutdownCause::Signal(signo) => signal_name(signo),
            _ => "shutdown".to_string(),
        };
        let main_running = self.main_pid().is_some();
        let stops_left = self
            .scripts
            .iter()
            .filter(|t| t.needs_stop() || t.status.state == ScriptState::Starting)
            .count();
        match intent::shutdown_request(self.phase, &self.pending.intents, main_running, stops_left)
        {
            ShutdownDecision::LeaveToMain => {
                tracing::debug!("{name} forwarded: the main command decides when to exit")
            }
            ShutdownDecision::Begin => {
                tracing::info!("{name} received: shutting down");
                self.pending.intents.shutdown = Some(cause);
            }
            ShutdownDecision::Force => {
                tracing::warn!(
                    "second {name}: skipping the remaining stops and killing every process now"
                );
                self.pending.intents.force = true;
            }
            ShutdownDecision::Nothing => {}
        }
    }

    fn request_quiesce(&mut self, waiter: Option<Reply>) {
        let decision = intent::quiesce_request(self.phase, &self.pending.intents);
        match decision {
            QuiesceDecision::Refuse(refusal) => {
                tracing::warn!("cannot quiesce: {refusal}");
                answer(waiter, Err(refusal));
                return;
            }
            QuiesceDecision::AlreadyQuiesced => {
                tracing::info!("quiesce requested: already quiesced; nothing to do");
                answer(waiter, Ok(self.snapshot()));
                return;
            }
            QuiesceDecision::JoinRunning => {
                tracing::info!("quiesce requested: already quiescing; it will answer when done")
            }
            QuiesceDecision::AfterScriptInFlight => tracing::info!(
                "quiesce requested: finishing the script in flight, then stopping what started"
            ),
            QuiesceDecision::Begin => tracing::info!("quiesce requested"),
        }
        if decision.asks_for_quiesce() {
            self.pending.intents.quiesce = true;
        }
        self.pending.quiesce_waiters.extend(waiter);
    }

    fn request_resume(&mut self, waiter: Option<Reply>) {
        match intent::resume_request(self.phase, &self.pending.intents) {
            Ok(()) => {
                if self.phase.can_resume() {
                    tracing::info!("resume requested: running the starts again");
                } else {
                    tracing::info!("resume requested: the starts run again once the quiesce ends");
                }
                self.pending.intents.resume = true;
                self.pending.resume_waiters.extend(waiter);
            }
            Err(refusal) => {
                tracing::warn!("{refusal}");
                answer(waiter, Err(refusal));
            }
        }
    }
}
