//! The status snapshot the supervisor publishes after every change, as sent
//! over the control socket (`dind-init status --json`). The JSON field names
//! are a stable interface (README); the human table is in [`table`].

mod table;

pub use table::render_table;

use serde::{Deserialize, Serialize};

use crate::phase::Phase;
use crate::procs::ProcessInfo;
use crate::state::{BootInfo, BootRecord, PreviousEnding, QuiesceRecord};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Version of the dind-init that answers.
    pub version: String,
    /// Its pid (1 in a container).
    pub pid: i32,
    pub phase: Phase,
    /// Running, every start succeeded and the main command (if any) runs.
    pub healthy: bool,
    /// This boot's number and whether it restored a quiesced snapshot.
    pub boot: BootInfo,
    /// Boot history, oldest first (bounded).
    pub boots: Vec<BootRecord>,
    /// Quiesce history, oldest first (bounded); the last one is the latest result.
    pub quiesces: Vec<QuiesceRecord>,
    /// While quiesced: whether `docker commit` is safe now. Otherwise null.
    pub commit_safe: Option<bool>,
    /// How the next boot would be told this one ended, were it to end now
    /// (`DIND_INIT_PREVIOUS`): `unclean` while it runs.
    #[serde(default)]
    pub ending: PreviousEnding,
    /// Every script of the current round, in start order.
    pub scripts: Vec<ScriptStatus>,
    /// The main command given after `--`, if any.
    pub main: Option<MainStatus>,
    /// Processes left after the last quiesce's stops (empty when none).
    pub strays: Vec<ProcessInfo>,
    /// When `running` was last reached (RFC 3339 UTC); null before.
    #[serde(default)]
    pub running_since: Option<String>,
    /// This boot's phases, oldest first (bounded), with how long each took.
    #[serde(default)]
    pub phases: Vec<PhaseSpan>,
    /// Processes re-parented to dind-init that no script's start left
    /// (a main command's orphans, or found when no start or daemon explains them).
    #[serde(default)]
    pub unattributed: Vec<DaemonInfo>,
}

/// One phase this boot went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub phase: Phase,
    /// When it began (RFC 3339 UTC).
    pub at: String,
    /// How long it lasted; null for the current phase.
    pub duration_ms: Option<u64>,
}

/// A process a script's start left running, watched by dind-init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: i32,
    /// Its command line (`[comm]` when empty), cut to a few hundred bytes.
    pub command: String,
    /// When it started (RFC 3339 UTC).
    pub started_at: String,
}

/// How a watched daemon ended outside its script's `stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonExit {
    pub pid: i32,
    pub command: String,
    /// When dind-init reaped it (RFC 3339 UTC).
    pub at: String,
    /// `exited with code N` or `killed by SIGNAME`.
    pub how: String,
    /// The exit code, 128 + signal when killed.
    pub exit_code: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScriptState {
    Pending,
    Starting,
    Started,
    /// Started, then a daemon its start left running exited outside its stop.
    Degraded,
    StartFailed,
    Stopping,
    Stopped,
    StopFailed,
}

impl ScriptState {
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptState::Pending => "pending",
            ScriptState::Starting => "starting",
            ScriptState::Started => "started",
            ScriptState::Degraded => "degraded",
            ScriptState::StartFailed => "start-failed",
            ScriptState::Stopping => "stopping",
            ScriptState::Stopped => "stopped",
            ScriptState::StopFailed => "stop-failed",
        }
    }
}

/// How one run of `SCRIPT start` or `SCRIPT stop` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    /// The script could not be executed at all (bad interpreter, permissions).
    SpawnFailed,
    /// A shutdown interrupted it.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    pub outcome: Outcome,
    /// Exit code, 128 + signal when killed; null when it never ran.
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// One line saying why it failed, when it did.
    pub reason: Option<String>,
}

impl RunResult {
    /// A run that did not succeed, and why.
    pub fn failure(
        outcome: Outcome,
        exit_code: Option<i32>,
        duration_ms: u64,
        why: String,
    ) -> Self {
        RunResult {
            outcome,
            exit_code,
            duration_ms,
            reason: Some(why),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptStatus {
    pub name: String,
    pub state: ScriptState,
    pub start: Option<RunResult>,
    pub stop: Option<RunResult>,
    /// The processes its start left running, watched (none when empty).
    #[serde(default)]
    pub daemons: Vec<DaemonInfo>,
    /// The latest daemon exit outside its stop, when there was one.
    #[serde(default)]
    pub daemon_exit: Option<DaemonExit>,
    /// How many times `--on-daemon-exit=restart` restarted it this round.
    #[serde(default)]
    pub restarts: u32,
    /// The last lines of its output (start, stop and its daemons), escaped.
    #[serde(default)]
    pub tail: Vec<String>,
    /// Its starts completed in this state before its latest one
    /// (`DIND_INIT_STARTS`; 0: that start was its first, `DIND_INIT_FIRST_START=1`).
    #[serde(default)]
    pub starts_before: u64,
    /// Its starts completed in this state so far, this boot's included.
    #[serde(default)]
    pub completed_starts: u64,
}

impl ScriptStatus {
    /// A script not run yet.
    pub fn pending(name: &str) -> Self {
        ScriptStatus {
            name: name.to_string(),
            state: ScriptState::Pending,
            start: None,
            stop: None,
            daemons: Vec::new(),
            daemon_exit: None,
            restarts: 0,
            tail: Vec::new(),
            starts_before: 0,
            completed_starts: 0,
        }
    }

    /// Whether its start or stop failed: `status` then shows its output's tail.
    pub fn failed(&self) -> bool {
        [&self.start, &self.stop]
            .into_iter()
            .flatten()
            .any(|run| run.outcome != Outcome::Succeeded)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MainState {
    /// Waiting for the starts to finish.
    Pending,
    Running,
    Exited,
    /// It could not be executed (exit code 126 or 127).
    FailedToStart,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainStatus {
    pub command: Vec<String>,
    pub pid: Option<i32>,
    pub state: MainState,
    pub exit_code: Option<i32>,
}

impl Status {
    /// What is published before the supervisor's first real snapshot.
    pub fn placeholder(pid: i32, boot: BootInfo) -> Self {
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid,
            phase: Phase::Starting,
            healthy: false,
            boot,
            boots: Vec::new(),
            quiesces: Vec::new(),
            commit_safe: None,
            ending: PreviousEnding::Unclean,
            scripts: Vec::new(),
            main: None,
            strays: Vec::new(),
            running_since: None,
            phases: Vec::new(),
            unattributed: Vec::new(),
        }
    }

    /// Whether the container is up and every start succeeded (the HEALTHCHECK answer).
    pub fn compute_healthy(
        phase: Phase,
        scripts: &[ScriptStatus],
        main: Option<&MainStatus>,
    ) -> bool {
        phase == Phase::Running
            && scripts.iter().all(|s| s.state == ScriptState::Started)
            && main.is_none_or(|m| m.state == MainState::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PreviousEnding;

    pub(super) fn script(name: &str, state: ScriptState) -> ScriptStatus {
        ScriptStatus {
            state,
            start: Some(RunResult {
                outcome: Outcome::Succeeded,
                exit_code: Some(0),
                duration_ms: 12,
                reason: None,
            }),
            ..ScriptStatus::pending(name)
        }
    }

    pub(super) fn status(phase: Phase, scripts: Vec<ScriptStatus>) -> Status {
        let healthy = Status::compute_healthy(phase, &scripts, None);
        Status {
            version: "0".into(),
            pid: 1,
            phase,
            healthy,
            boot: BootInfo {
                boot: 2,
                restored: true,
                restored_from_quiesce: Some(1),
                previous: PreviousEnding::Quiesced,
            },
            boots: vec![],
            quiesces: vec![],
            commit_safe: None,
            ending: PreviousEnding::Unclean,
            scripts,
            main: None,
            strays: vec![],
            running_since: None,
            phases: vec![],
            unattributed: vec![],
        }
    }

    #[test]
    fn healthy_only_when_running_with_every_start_ok() {
        let ok = vec![script("a.sh", ScriptState::Started)];
        assert!(Status::compute_healthy(Phase::Running, &ok, None));
        assert!(!Status::compute_healthy(Phase::Starting, &ok, None));
        let failed = vec![
            script("a.sh", ScriptState::Started),
            script("b.sh", ScriptState::StartFailed),
        ];
        assert!(!Status::compute_healthy(Phase::Running, &failed, None));
        let degraded = vec![script("a.sh", ScriptState::Degraded)];
        assert!(!Status::compute_healthy(Phase::Running, &degraded, None));
        let main_gone = MainStatus {
            command: vec![],
            pid: None,
            state: MainState::Exited,
            exit_code: Some(0),
        };
        assert!(!Status::compute_healthy(
            Phase::Running,
            &ok,
            Some(&main_gone)
        ));
    }

    #[test]
    fn json_uses_kebab_case_states() {
        let json = serde_json::to_value(status(
            Phase::Quiesced,
            vec![script("a.sh", ScriptState::StopFailed)],
        ))
        .unwrap();
        assert_eq!(json["phase"], "quiesced");
        assert_eq!(json["scripts"][0]["state"], "stop-failed");
        assert_eq!(json["scripts"][0]["start"]["outcome"], "succeeded");
        assert_eq!(json["boot"]["boot"], 2);
    }
}
