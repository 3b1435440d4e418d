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
    if !status.phases.is_empty() {
        let _ = writeln!(out, "phases:  {}", describe_phases(&status.phases));
    }
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
    if !status.unattributed.is_empty() {
        let _ = writeln!(
            out,
            "unattributed: {}",
            describe_daemons(&status.unattributed)
        );
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
        render_script_details(&mut out, script);
    }
    out
}

/// The indented lines under a script's row: its daemons, the exit that
/// degraded it, and the tail of its output when its start or stop failed.
fn render_script_details(out: &mut String, script: &ScriptStatus) {
    if !script.daemons.is_empty() {
        let _ = writeln!(out, "    daemons: {}", describe_daemons(&script.daemons));
    }
    if let Some(exit) = &script.daemon_exit {
        let restarts = match script.restarts {
            0 => String::new(),
            n => format!("; restarted {n} time(s)"),
        };
        let _ = writeln!(
            out,
            "    daemon {} ({}) {} at {}{restarts}",
            exit.pid, exit.command, exit.how, exit.at
        );
    }
    if script.failed() && !script.tail.is_empty() {
        let _ = writeln!(out, "    last output:");
        for line in &script.tail {
            let _ = writeln!(out, "    | {line}");
        }
    }
}

fn describe_daemons(daemons: &[DaemonInfo]) -> String {
    let described: Vec<_> = daemons
        .iter()
        .map(|d| format!("{} ({})", d.pid, d.command))
        .collect();
    described.join(", ")
}

/// `starting 1.2s, running 5.0s, quiescing 40ms, quiesced since T`.
fn describe_phases(phases: &[PhaseSpan]) -> String {
    let described: Vec<_> = phases
        .iter()
        .map(|span| match span.duration_ms {
            Some(ms) => format!("{} {}", span.phase, describe_ms(ms)),
            None => format!("{} since {}", span.phase, span.at),
        })
        .collect();
    described.join(", ")
}

fn describe_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(name: &str, state: ScriptState) -> ScriptStatus {
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
    fn a_failed_start_shows_its_last_output_and_a_degraded_script_its_daemon() {
        let mut failed = script("10-db.sh", ScriptState::StartFailed);
        failed.start = Some(RunResult::failure(
            Outcome::Failed,
            Some(1),
            5,
            "exited with code 1".into(),
        ));
        failed.tail = vec!["initdb: \\x1b oops".into()];
        let mut ok = script("20-web.sh", ScriptState::Started);
        ok.tail = vec!["not shown".into()];
        let mut degraded = script("40-dockerd.sh", ScriptState::Degraded);
        degraded.daemon_exit = Some(DaemonExit {
            pid: 123,
            command: "dockerd".into(),
            at: "2026-01-01T00:00:00Z".into(),
            how: "killed by SIGKILL".into(),
            exit_code: 137,
        });
        degraded.restarts = 2;
        let mut running = status(Phase::Running, vec![failed, ok, degraded]);
        running.phases = vec![
            PhaseSpan {
                phase: Phase::Starting,
                at: "2026-01-01T00:00:00Z".into(),
                duration_ms: Some(1500),
            },
            PhaseSpan {
                phase: Phase::Running,
                at: "2026-01-01T00:00:01Z".into(),
                duration_ms: None,
            },
        ];
        let table = render_table(&running);
        assert!(table.contains("phase:   running (not healthy)"), "{table}");
        assert!(
            table.contains("phases:  starting 1.5s, running since 2026-01-01T00:00:01Z"),
            "{table}"
        );
        assert!(table.contains("    | initdb: \\x1b oops"), "{table}");
        assert!(!table.contains("not shown"), "{table}");
        assert!(
            table.contains(
                "    daemon 123 (dockerd) killed by SIGKILL at 2026-01-01T00:00:00Z; restarted 2 time(s)"
            ),
            "{table}"
        );
        let json = serde_json::to_value(&running).unwrap();
        assert_eq!(json["scripts"][1]["tail"][0], "not shown");
        assert_eq!(json["scripts"][2]["state"], "degraded");
        assert_eq!(json["scripts"][2]["daemon_exit"]["exit_code"], 137);
        assert_eq!(json["phases"][0]["duration_ms"], 1500);
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
