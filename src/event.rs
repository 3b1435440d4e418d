//! What reaches the supervisor from outside, and how it answers: the one
//! event channel that the signal reader, the control socket server and the
//! main command's exit watcher post into. A module of its own so that
//! neither side imports the other.

use std::fmt;

use tokio::sync::oneshot;

use crate::phase::Phase;
use crate::reaper::ChildExit;
use crate::status::Status;

/// Everything that can happen to the supervisor from outside.
#[derive(Debug)]
pub enum Event {
    /// A signal other than SIGCHLD (which the reaper handles itself).
    Signal(i32),
    /// A `quiesce` or `resume` from the control socket.
    Control(ControlRequest),
    /// The main command ended.
    MainExited(ChildExit),
    /// A watched process re-parented to dind-init (a script's daemon) ended.
    DaemonExited { pid: i32, exit: ChildExit },
    /// A watched daemon seen as its script's fork has exec'd this command.
    DaemonExec { pid: i32, command: String },
}

/// How the supervisor answers a control request once it is done: the status
/// at that moment, or why it was refused.
pub type Reply = oneshot::Sender<Result<Status, Refusal>>;

/// What the control server asks of the supervisor; answered through `reply`
/// once the operation has finished (or at once, when it is refused).
#[derive(Debug)]
pub struct ControlRequest {
    pub command: ControlCommand,
    pub reply: Reply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlCommand {
    Quiesce,
    Resume,
}

/// Why a quiesce or resume was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A shutdown has begun; nothing else will run.
    ShuttingDown,
    /// A quiesce came while a resume was queued.
    ResumeQueued,
    /// A resume came when there was nothing quiesced to resume.
    NothingToResume(Phase),
    /// The starts of a resume were cut short by a quiesce or a shutdown.
    StartsInterrupted,
    /// A second SIGTERM ended the quiesce before it was done.
    QuiesceForced,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::ShuttingDown => f.write_str("dind-init is shutting down"),
            Refusal::ResumeQueued => f.write_str("cannot quiesce: a resume is about to start"),
            Refusal::NothingToResume(phase) => write!(f, "nothing to resume: phase is {phase}"),
            Refusal::StartsInterrupted => {
                f.write_str("the starts did not complete: a quiesce or shutdown came first")
            }
            Refusal::QuiesceForced => f.write_str("a forced shutdown interrupted the quiesce"),
        }
    }
}
