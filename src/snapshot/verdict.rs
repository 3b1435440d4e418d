//! Reading the in-container status: whether it is commit-safe (and why
//! not), and the labels of the committed image. The in-container dind-init
//! may be another version, so its JSON is read by pointer, field by field.

use serde_json::Value;

use super::LABEL_PREFIX;

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
        let mut reasons = Vec::new();
        for name in at(&last, "/failed_stops").as_array().into_iter().flatten() {
            reasons.push(format!("stop of {} failed", name.as_str().unwrap_or("?")));
        }
        for stray in at(&last, "/strays").as_array().into_iter().flatten() {
            reasons.push(format!(
                "still running: pid {} {}",
                at(stray, "/pid"),
                at(stray, "/command").as_str().unwrap_or("?")
            ));
        }
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

/// The labels of the committed image, from the in-container status.
pub fn labels(status: &Value, now: &str) -> Vec<(String, String)> {
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let quiesce = at(status, "/quiesces")
        .as_array()
        .and_then(|all| all.last())
        .map_or(Value::Null, |last| at(last, "/id").clone());
    [
        ("version", text(at(status, "/version"))),
        ("boot", text(at(status, "/boot/boot"))),
        ("quiesce", text(&quiesce)),
        ("commit-safe", text(at(status, "/commit_safe"))),
        ("committed-at", now.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("{LABEL_PREFIX}{key}"), value))
    .collect()
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
            labels(&status, "2026-11-23T17:00:00Z"),
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
}
