//! The supervisor's decisions as pure functions: what a request, a signal or
//! the main command's exit means in a given phase with the intents already
//! recorded, which step the lifecycle loop takes next, when a running script
//! is interrupted, and the exit code. No process, socket or clock here, so
//! every rule is a row of a table test below.

use nix::sys::signal::Signal;

use crate::config::SignalRoles;
use crate::event::Refusal;
use crate::phase::Phase;
use crate::script::Action;

/// Exit code of PID 1 when a start script failed under `--on-start-failure=abort`.
pub const EXIT_START_FAILED: i32 = 3;
/// Exit code of PID 1 when a stop script failed during shutdown (no main command).
pub const EXIT_STOP_FAILED: i32 = 1;
/// Exit code of PID 1 when a daemon's exit shut it down (`--on-daemon-exit=shutdown`),
/// with or without a main command (which was stopped, not failing by itself).
pub const EXIT_DAEMON_EXITED: i32 = 4;

/// Why the container is shutting down; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownCause {
    Signal(i32),
    MainExited,
    StartFailed,
    /// A daemon exited under `--on-daemon-exit=shutdown`.
    DaemonExited,
}

/// Intents recorded by events and not yet acted on by the lifecycle loop.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Intents {
    /// A quiesce was asked for.
    pub quiesce: bool,
    /// A resume was asked for.
    pub resume: bool,
    /// A shutdown was asked for, and why.
    pub shutdown: Option<ShutdownCause>,
    /// A second SIGTERM/SIGINT: abort the stops and kill everything now.
    pub force: bool,
    /// A script is queued for a restart (`--on-daemon-exit=restart`).
    pub restart: bool,
}

impl Intents {
    /// A shutdown is asked for or under way: nothing else will be started.
    pub fn shutting_down(&self, phase: Phase) -> bool {
        self.shutdown.is_some() || phase == Phase::ShuttingDown
    }
}

/// The next step of the lifecycle loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Shutdown,
    Quiesce,
    Resume,
    /// Stop and start again a script whose daemon exited.
    Restart,
    /// Nothing to do: wait for the next event.
    Wait,
}

/// Shutdown first, then a quiesce, then a resume, then a restart (only
/// once running), each only where the phase allows it.
pub fn next_step(phase: Phase, intents: &Intents) -> Step {
    if intents.shutdown.is_some() {
        Step::Shutdown
    } else if intents.quiesce && phase.can_quiesce() {
        Step::Quiesce
    } else if intents.resume && phase.can_resume() {
        Step::Resume
    } else if intents.restart && phase == Phase::Running {
        Step::Restart
    } else {
        Step::Wait
    }
}

/// What a quiesce request (SIGUSR1 or `dind-init quiesce`) leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuiesceDecision {
    Refuse(Refusal),
    /// Already quiesced and no resume queued: answer at once, commit-safe or not.
    AlreadyQuiesced,
    /// One is asked for or running: answer with it.
    JoinRunning,
    /// Starts are running: finish the script in flight, then stop what started.
    AfterScriptInFlight,
    Begin,
}

impl QuiesceDecision {
    /// Whether the request records the quiesce intent. A request that joins
    /// one already asked for or running only waits for its answer: marking
    /// a running quiesce as asked for again would run a second one after
    /// the next resume's starts.
    pub fn asks_for_quiesce(self) -> bool {
        matches!(
            self,
            QuiesceDecision::Begin | QuiesceDecision::AfterScriptInFlight
        )
    }
}

pub fn quiesce_request(phase: Phase, intents: &Intents) -> QuiesceDecision {
    if intents.shutting_down(phase) {
        QuiesceDecision::Refuse(Refusal::ShuttingDown)
    } else if phase == Phase::Quiesced && intents.resume {
        QuiesceDecision::Refuse(Refusal::ResumeQueued)
    } else if phase == Phase::Quiesced {
        QuiesceDecision::AlreadyQuiesced
    } else if intents.quiesce || phase == Phase::Quiescing {
        QuiesceDecision::JoinRunning
    } else if phase == Phase::Starting {
        QuiesceDecision::AfterScriptInFlight
    } else {
        QuiesceDecision::Begin
    }
}

/// Whether a resume request (SIGUSR2 or `dind-init resume`) is carried out:
/// at once when quiesced, and once the quiesce ends when one is running or
/// asked for (a client that gave up waiting for its quiesce, as `snapshot`
/// after its timeout, must not leave the container stopped).
pub fn resume_request(phase: Phase, intents: &Intents) -> Result<(), Refusal> {
    if intents.shutting_down(phase) {
        Err(Refusal::ShuttingDown)
    } else if phase.can_resume() || phase == Phase::Quiescing || intents.quiesce {
        Ok(())
    } else {
        Err(Refusal::NothingToResume(phase))
    }
}

/// What a shutdown signal leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownDecision {
    Begin,
    /// The second one: skip the remaining stops and kill every process now.
    Force,
    /// Already forced: nothing more to do.
    Nothing,
    /// The main command got the signal and decides: dind-init shuts down
    /// when it exits, as tini does.
    LeaveToMain,
}

/// Who owns shutdown. While the main command runs and no script is left to
/// stop, the main command does: the signal was forwarded to it and
/// dind-init waits for it to exit, however long the engine lets it take.
/// Once a shutdown runs, further signals while the main command is still
/// running are its business too. Otherwise the first signal begins the
/// graceful sequence (main command, stops in reverse, the rest) and a second
/// one forces it.
pub fn shutdown_request(
    phase: Phase,
    intents: &Intents,
    main_running: bool,
    stops_left: usize,
) -> ShutdownDecision {
    let shutting_down = intents.shutting_down(phase);
    if main_running && (stops_left == 0 || shutting_down) {
        ShutdownDecision::LeaveToMain
    } else if !shutting_down {
        ShutdownDecision::Begin
    } else if !intents.force {
        ShutdownDecision::Force
    } else {
        ShutdownDecision::Nothing
    }
}

/// What dind-init itself does with a signal (forwarding to the main command
/// happens in the signal task, before this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRole {
    Quiesce,
    Resume,
    Shutdown,
    /// Nothing beyond the forwarding.
    None,
}

pub fn signal_role(signo: i32, roles: &SignalRoles) -> SignalRole {
    if roles.quiesce == Some(signo) {
        return SignalRole::Quiesce;
    }
    if roles.resume == Some(signo) {
        return SignalRole::Resume;
    }
    match Signal::try_from(signo) {
        Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) => SignalRole::Shutdown,
        _ => SignalRole::None,
    }
}

/// The signal a running `start` or `stop` should have been sent by now:
/// SIGKILL once a shutdown is forced, SIGTERM to a start when a shutdown is
/// asked for; `None` while it may run on. Never de-escalates.
pub fn interruption(action: Action, intents: &Intents, sent: Option<Signal>) -> Option<Signal> {
    let wanted = if intents.force {
        Signal::SIGKILL
    } else if action == Action::Start && intents.shutdown.is_some() {
        Signal::SIGTERM
    } else {
        return None;
    };
    match sent {
        Some(Signal::SIGKILL) => None,
        Some(already) if already == wanted => None,
        _ => Some(wanted),
    }
}

/// PID 1's exit code: a daemon's exit under the shutdown policy, else the
/// main command's when it has one, else whether the starts or the stops failed.
pub fn exit_code(main_exit_code: Option<i32>, cause: ShutdownCause, stop_failed: bool) -> i32 {
    match (main_exit_code, cause) {
        (_, ShutdownCause::DaemonExited) => EXIT_DAEMON_EXITED,
        (Some(code), _) => code,
        (None, ShutdownCause::StartFailed) => EXIT_START_FAILED,
        (None, _) if stop_failed => EXIT_STOP_FAILED,
        (None, _) => 0,
    }
}

#[cfg(test)]
mod tests;
