//! Reading the in-container status: whether it is commit-safe (and why
//! not), and the labels of the committed image. The in-container dind-init
//! may be another version, so its JSON is read by pointer, field by field.

use serde_json::Value;

use super::LABEL_PREFIX;
use crate::procs::ProcessInfo;
use crate::state::QuiesceRecord;

/// The value at a JSON pointer, or null: reading a status never panics.
fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

/// Commit-safe only when the quiesce said so and the status agrees.
pub(super) fn check_commit_safe(quiesce_code: Option<i32>, status: &Value) -> Result<(), String> {
    if at(status, "/phase") != "quiesced" {
        return Err(format!(
            "phase is {}, not quiesced",
            at(status, "/phase").as_str().unwrap_or("unknown")
        ));
    }
    if at(status, "/commit_safe") != true {
        let last = at(status, "/quiesces")
            .as_array()
            .and_then(|all| all.last())
            .cloned()
            .unwrap_or(Value::Null);
        let mut reasons = quiesce_record(&last).unsafe_reasons();
        if reasons.is_empty() {
            reasons.push("dind-init reports commit_safe false".to_string());
        }
        return Err(reasons.join("; "));
    }
    if quiesce_code != Some(0) {
        return Err(format!(
            "`dind-init quiesce` exited with {}",
            quiesce_code.map_or("a signal".to_string(), |code| code.to_string())
        ));
    }
    Ok(())
}

/// Whether `now`, the status read after the commit, still shows the quiesce
/// that `checked` showed before it: phase quiesced, commit-safe, the same
/// boot and the same latest quiesce. A resume (and any quiesce after it)
/// between the check and the commit fails this.
pub(super) fn check_still_quiesced(checked: &Value, now: &Value) -> Result<(), String> {
    let latest = |status: &Value| {
        at(status, "/quiesces")
            .as_array()
            .and_then(|all| all.last())
            .map_or(Value::Null, |last| at(last, "/id").clone())
    };
    if at(now, "/phase") != "quiesced" || at(now, "/commit_safe") != true {
        return Err(format!(
            "phase is now {}, commit_safe {}: it was resumed",
            at(now, "/phase").as_str().unwrap_or("unknown"),
            at(now, "/commit_safe")
        ));
    }
    if at(now, "/boot/boot") != at(checked, "/boot/boot") || latest(now) != latest(checked) {
        return Err(format!(
            "quiesce {} of boot {} is now the latest, not the one checked",
            latest(now),
            at(now, "/boot/boot")
        ));
    }
    Ok(())
}

/// The parts of a quiesce record (JSON of any dind-init version) that say
/// why it is not commit-safe, read field by field: what is missing or of
/// another shape is left out, never an error.
fn quiesce_record(record: &Value) -> QuiesceRecord {
    let text = |value: &Value| value.as_str().unwrap_or("?").to_string();
    QuiesceRecord {
        id: at(record, "/id").as_u64().unwrap_or(0),
        boot: at(record, "/boot").as_u64().unwrap_or(0),
        at: text(at(record, "/at")),
        commit_safe: false,
        failed_stops: at(record, "/failed_stops")
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect(),
        strays: at(record, "/strays")
            .as_array()
            .into_iter()
            .flatten()
            .map(|stray| ProcessInfo {
                pid: at(stray, "/pid")
                    .as_i64()
                    .and_then(|pid| i32::try_from(pid).ok())
                    .unwrap_or(0),
                ppid: 0,
                state: '?',
                command: text(at(stray, "/command")),
            })
            .collect(),
        not_saved: at(record, "/not_saved").as_str().map(str::to_string),
    }
}

/// The labels of the committed image, from the in-container status.
///
/// The status comes from inside the container, whose owner may craft it:
/// each value must be what a dind-init gives (a version, a count), or the
/// snapshot is refused with the field named. The values then reach the
/// engine only inside quoted `LABEL` values (see `label_instruction`).
pub fn labels(status: &Value, now: &str) -> Result<Vec<(String, String)>, String> {
    let quiesce = at(status, "/quiesces")
        .as_array()
        .and_then(|all| all.last())
        .map_or(&Value::Null, |last| at(last, "/id"));
    let version = at(status, "/version");
    let version = version
        .as_str()
        .filter(|text| is_version(text))
        .ok_or_else(|| not_from_dind_init("version", version))?;
    let count = |field: &str, value: &Value| {
        value
            .as_u64()
            .map(|count| count.to_string())
            .ok_or_else(|| not_from_dind_init(field, value))
    };
    Ok([
        ("version", version.to_string()),
        ("boot", count("boot", at(status, "/boot/boot"))?),
        ("quiesce", count("quiesce id", quiesce)?),
        ("commit-safe", "true".to_string()),
        ("committed-at", now.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("{LABEL_PREFIX}{key}"), value))
    .collect())
}

/// A version as Cargo writes one (`0.1.0`, `1.2.3-rc.1+git`): letters,
/// digits and `.+-_~`, at most 64 characters.
fn is_version(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-_~".contains(c))
}

fn not_from_dind_init(field: &str, value: &Value) -> String {
    let shown = crate::text::cut(&crate::text::escape_controls(&value.to_string()), 80);
    format!(
        "its status gives {field} {shown}, which no dind-init gives; is PID 1 really dind-init?"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_in_container_status() {
        let status = serde_json::json!({
            "version": "0.1.0", "phase": "quiesced", "commit_safe": true,
            "boot": {"boot": 3, "restored": true},
            "quiesces": [{"id": 1}, {"id": 2, "failed_stops": [], "strays": []}],
        });
        assert_eq!(
            labels(&status, "2026-11-23T17:00:00Z").unwrap(),
            [
                ("io.dind-init.version", "0.1.0"),
                ("io.dind-init.boot", "3"),
                ("io.dind-init.quiesce", "2"),
                ("io.dind-init.commit-safe", "true"),
                ("io.dind-init.committed-at", "2026-11-23T17:00:00Z"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(check_commit_safe(Some(0), &status), Ok(()));
        assert!(check_commit_safe(Some(1), &status).is_err());
    }

    #[test]
    fn only_the_quiesce_that_was_checked_may_be_kept() {
        let status = |phase: &str, boot: u64, last: u64| {
            serde_json::json!({
                "phase": phase, "commit_safe": phase == "quiesced",
                "boot": {"boot": boot}, "quiesces": [{"id": 1}, {"id": last}],
            })
        };
        let checked = status("quiesced", 3, 2);
        assert_eq!(check_still_quiesced(&checked, &checked), Ok(()));
        let refused = [
            status("starting", 3, 2),
            status("running", 3, 2),
            // Resumed and quiesced again: another quiesce.
            status("quiesced", 3, 3),
            // Restarted and quiesced: another boot.
            status("quiesced", 4, 2),
            serde_json::json!({"phase": "quiesced", "commit_safe": false,
                               "boot": {"boot": 3}, "quiesces": [{"id": 2}]}),
            serde_json::json!({}),
        ];
        for now in refused {
            assert!(check_still_quiesced(&checked, &now).is_err(), "{now}");
        }
    }

    #[test]
    fn an_unsafe_quiesce_is_refused_with_its_reasons() {
        let status = serde_json::json!({
            "phase": "quiesced", "commit_safe": false,
            "quiesces": [{"id": 1, "failed_stops": ["20-db.sh"],
                          "strays": [{"pid": 42, "command": "sleep 1000"}]}],
        });
        assert_eq!(
            check_commit_safe(Some(1), &status).unwrap_err(),
            "stop of 20-db.sh failed; still running: pid 42 sleep 1000"
        );
        let running = serde_json::json!({"phase": "running", "commit_safe": null});
        assert_eq!(
            check_commit_safe(Some(1), &running).unwrap_err(),
            "phase is running, not quiesced"
        );
    }

    #[test]
    fn a_crafted_status_gives_no_labels() {
        let good = serde_json::json!({
            "version": "0.1.0", "boot": {"boot": 3}, "quiesces": [{"id": 2}],
        });
        assert!(labels(&good, "now").is_ok());
        let hostile = "0.1\"\nENTRYPOINT [\"/bin/evil\"]\nENV INJECTED=1\nLABEL x=\"y";
        let mut status = good.clone();
        status["version"] = hostile.into();
        let why = labels(&status, "now").unwrap_err();
        assert!(
            why.starts_with("its status gives version \"0.1\\\"\\nENTRYPOINT"),
            "{why}"
        );
        for (pointer, value) in [
            ("/boot/boot", serde_json::json!("1\nENV B=2")),
            ("/boot/boot", serde_json::json!(-1)),
            ("/quiesces/0/id", serde_json::json!(1.5)),
            ("/version", serde_json::json!("")),
            ("/version", serde_json::json!("1.0 $HOME")),
        ] {
            let mut status = good.clone();
            *status.pointer_mut(pointer).unwrap() = value.clone();
            assert!(labels(&status, "now").is_err(), "{pointer} = {value}");
        }
    }
}
