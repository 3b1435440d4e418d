//! `dind-init status` as a human table: phase, boot, main command, last
//! quiesce, strays, then one row per script, and under a script that failed
//! or is degraded, its last output and its daemon's exit.

use std::fmt::Write as _;

use super::{DaemonInfo, Outcome, PhaseSpan, RunResult, ScriptStatus, Status};
use crate::state::PreviousEnding;

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
    use crate::phase::Phase;
    use crate::status::tests::{script, status};
    use crate::status::{DaemonExit, ScriptState};

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
}
