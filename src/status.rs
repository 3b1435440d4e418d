//! The status snapshot the supervisor publishes after every change, as sent
//! over the control socket (`dind-init status --json`), and its rendering as
//! a human table. The JSON field names are a stable interface (README).

use std::fmt::Write as _;

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
    /// Every script of the current round, in start order.
    pub scripts: Vec<ScriptStatus>,
    /// The main command given after `--`, if any.
    pub main: Option<MainStatus>,
    /// Processes left after the last quiesce's stops (empty when none).
    pub strays: Vec<ProcessInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScriptState {
    Pending,
    Starting,
    Started,
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
            scripts: Vec::new(),
            main: None,
            strays: Vec::new(),
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

fn describe_run(run: Option<&RunResult>) -> String {
    let Some(run) = run else {
        return "-".to_string();
    };
    let outcome = match run.outcome {
        Outcome::Succeeded => "ok",
        Outcome::Failed => "failed",
        Outcome::TimedOut => "timed out",
        Outcome::SpawnFailed => "not run",
        Outcome::Interrupted => "interrupted",
    };
    match run.exit_code {
        Some(code) => format!("{outcome} ({code}) {}ms", run.duration_ms),
        None => format!("{outcome} {}ms", run.duration_ms),
    }
}

/// The human table of `dind-init status`.
pub fn render_table(status: &Status) -> String {
    let mut out = String::new();
    let health = if status.healthy {
        "healthy"
    } else {
        "not healthy"
    };
    let _ = writeln!(out, "phase:   {} ({health})", status.phase);
    let restored = match (status.boot.restored_from_quiesce, status.boot.previous) {
        (Some(id), _) => format!(", restored from quiesce #{id}"),
        (None, PreviousEnding::None) => String::new(),
        (None, previous) => format!(", previous boot ended: {}", previous.as_str()),
    };
    let since = status
        .boots
        .last()
        .map(|b| format!(", since {}", b.at))
        .unwrap_or_default();
    let _ = writeln!(out, "boot:    {}{restored}{since}", status.boot.boot);
    if let Some(main) = &status.main {
        let pid = main.pid.map(|p| format!(" pid {p}")).unwrap_or_default();
        let code = main
            .exit_code
            .map(|c| format!(" code {c}"))
            .unwrap_or_default();
        let state = serde_json::to_value(main.state).ok();
        let state = state.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
        let _ = writeln!(
            out,
            "main:    {} ({state}{pid}{code})",
            main.command.join(" ")
        );
    }
    if let Some(last) = status.quiesces.last() {
        let safety = if last.commit_safe {
            "commit-safe"
        } else {
            "NOT commit-safe"
        };
        let _ = writeln!(out, "quiesce: #{} at {}, {safety}", last.id, last.at);
    }
    if !status.strays.is_empty() {
        let _ = writeln!(out, "strays:");
        for stray in &status.strays {
            let _ = writeln!(out, "  {:>7} {}", stray.pid, stray.command);
        }
    }
    if status.scripts.is_empty() {
        let _ = writeln!(out, "scripts: none");
        return out;
    }
    let width = status
        .scripts
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        out,
        "{:<width$}  {:<12}  {:<24}  STOP",
        "SCRIPT", "STATE", "START"
    );
    for script in &status.scripts {
        let _ = writeln!(
            out,
            "{:<width$}  {:<12}  {:<24}  {}",
            script.name,
            script.state.as_str(),
            describe_run(script.start.as_ref()),
            describe_run(script.stop.as_ref())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(name: &str, state: ScriptState) -> ScriptStatus {
        ScriptStatus {
            name: name.into(),
            state,
            start: Some(RunResult {
                outcome: Outcome::Succeeded,
                exit_code: Some(0),
                duration_ms: 12,
                reason: None,
            }),
            stop: None,
        }
    }

    fn status(phase: Phase, scripts: Vec<ScriptStatus>) -> Status {
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
            scripts,
            main: None,
            strays: vec![],
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
    fn table_lists_scripts_and_boot() {
        let table = render_table(&status(
            Phase::Running,
            vec![script("10-db.sh", ScriptState::Started)],
        ));
        assert!(table.contains("phase:   running (healthy)"), "{table}");
        assert!(
            table.contains("boot:    2, restored from quiesce #1"),
            "{table}"
        );
        assert!(table.contains("10-db.sh"), "{table}");
        assert!(table.contains("ok (0) 12ms"), "{table}");
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
