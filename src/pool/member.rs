//! A pool's members as the engine knows them: containers labelled with the
//! pool's name, listed with `ENGINE ps` and read with `ENGINE inspect`, and
//! the state of each (starting, ready, taken, unhealthy) decided by pure
//! functions from their names and what the engine and `dind-init status` say.
//!
//! The names carry the pool's bookkeeping, because a container name is the
//! one thing the engine gives out atomically and can change later:
//! - `POOL-sK`: the member waiting (or starting) in slot K of the pool's
//!   size; a slot is held by at most one container, so refills racing each
//!   other never grow the pool past its size.
//! - `POOL-ID12-taken`: claimed. The same name for every taker of this
//!   container, and kept: the engine refuses a rename to the name a
//!   container already has, so exactly one rename wins, however late a
//!   taker that saw the member waiting comes.
//! - the volume `POOL-ID12-lease-untilT-byP`, made by the winner: the
//!   claim's lease ends at unix second T, taken for process P.
//! - `POOL-ID12-failed`: a member that failed its boot when the pool's
//!   replacement budget was spent, kept stopped for its logs.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{LABEL_POOL, PoolError, engine_call};
use crate::snapshot::Engine;

/// What a claimed member's name holds after `POOL-ID12`.
pub const TAKEN_SUFFIX: &str = "-taken";
/// What a failed member kept for its logs has after `POOL-ID12`.
pub const FAILED_SUFFIX: &str = "-failed";

/// The name of the member in slot `slot` of `pool`.
pub fn slot_name(pool: &str, slot: u32) -> String {
    format!("{pool}-s{slot}")
}

/// `POOL-ID12` and `suffix`: a name only this container gets.
pub fn claimed_name(pool: &str, id: &str, suffix: &str) -> String {
    format!("{pool}-{}{suffix}", id.get(..12).unwrap_or(id))
}

/// What a lease volume's name holds after `POOL-ID12`.
pub const LEASE_SUFFIX: &str = "-lease";

/// The lease volume of a claim: `POOL-ID12-lease-untilT-byP`.
pub fn lease_name(pool: &str, id: &str, until: u64, holder: u32) -> String {
    format!(
        "{}-until{until}-by{holder}",
        claimed_name(pool, id, LEASE_SUFFIX)
    )
}

/// The slots of `0..size` no member holds.
pub fn free_slots(size: u32, members: &[Member]) -> Vec<u32> {
    (0..size)
        .filter(|slot| !members.iter().any(|m| m.slot() == Some(*slot)))
        .collect()
}

/// Unix seconds now.
pub fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// One container of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub id: String,
    /// Unix seconds of its creation (0 when the engine's date is unreadable).
    pub created: u64,
    /// The engine's word: `created`, `running`, `exited`, `dead`, ...
    pub engine_state: String,
    pub exit_code: i64,
    /// Docker's health status (`starting`, `healthy`, `unhealthy`) and the
    /// output of the last check, when the engine runs a health check.
    pub health: Option<(String, String)>,
    pub labels: Value,
    /// `NetworkSettings.Ports`, as the engine gives it.
    pub ports: Value,
    /// Its IP address on its first network (empty when it has none): a
    /// test on this host reaches the member's services there directly.
    pub address: String,
}

/// Where a member is in its life, as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberState {
    /// Booting: its starts run, or the engine has not checked it yet.
    Starting,
    /// `dind-init status` healthy inside it; waiting to be taken.
    Ready,
    /// Claimed by a `take`.
    Taken,
    /// Exited, or `dind-init status` says it is not healthy: why.
    Unhealthy(String),
}

impl MemberState {
    pub fn word(&self) -> &'static str {
        match self {
            MemberState::Starting => "starting",
            MemberState::Ready => "ready",
            MemberState::Taken => "taken",
            MemberState::Unhealthy(_) => "unhealthy",
        }
    }
}

impl Member {
    /// A member known by its name and labels only (`take`'s fast path).
    pub fn named(name: String, labels: Value) -> Member {
        Member {
            name,
            id: String::new(),
            created: 0,
            engine_state: "running".to_string(),
            exit_code: 0,
            health: None,
            labels,
            ports: Value::Null,
            address: String::new(),
        }
    }

    pub fn is_taken(&self) -> bool {
        self.name.contains(TAKEN_SUFFIX)
    }

    /// Kept after a failed boot when the budget was spent.
    pub fn is_failed(&self) -> bool {
        self.name.ends_with(FAILED_SUFFIX)
    }

    /// The slot a waiting (or starting) member holds.
    pub fn slot(&self) -> Option<u32> {
        let pool = self.label(LABEL_POOL);
        let digits = self.name.strip_prefix(pool)?.strip_prefix("-s")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// A taken member's lease end (unix seconds) and holder, from the
    /// pool's lease volumes; `None` for a claim whose lease was never
    /// written (its taker died right after the rename).
    pub fn lease(&self, volumes: &[String]) -> Option<(u64, u32)> {
        let prefix = claimed_name(self.label(LABEL_POOL), &self.id, LEASE_SUFFIX);
        volumes.iter().find_map(|volume| {
            let rest = volume.strip_prefix(&prefix)?.strip_prefix("-until")?;
            let (until, holder) = rest.split_once("-by")?;
            Some((until.parse().ok()?, holder.parse().ok()?))
        })
    }

    /// A claim nobody holds any more: its lease ended before `now`, or it
    /// has none and the container is older than `default_lease`.
    pub fn is_stale_claim(&self, volumes: &[String], now: u64, default_lease: u64) -> bool {
        if !self.is_taken() {
            return false;
        }
        match self.lease(volumes) {
            Some((until, _)) => until < now,
            None => self.created.saturating_add(default_lease) < now,
        }
    }

    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).and_then(Value::as_str).unwrap_or("")
    }

    pub fn age_seconds(&self) -> u64 {
        now_seconds().saturating_sub(self.created)
    }

    /// Its state from what the engine says alone; `None` when only an exec
    /// of `dind-init status` can tell (a running member without a health
    /// check the engine runs).
    pub fn state_from_engine(&self) -> Option<MemberState> {
        if self.is_taken() {
            return Some(MemberState::Taken);
        }
        if self.is_failed() {
            return Some(MemberState::Unhealthy(
                "failed its boot with the replacement budget spent; kept for its logs".to_string(),
            ));
        }
        match self.engine_state.as_str() {
            "running" => {}
            "created" | "configured" | "initialized" => return Some(MemberState::Starting),
            "paused" => return Some(MemberState::Unhealthy("paused".to_string())),
            other => {
                // Podman says `stopped` for a container whose processes
                // have exited and whose clean-up has not run yet.
                let ended = if other == "stopped" { "exited" } else { other };
                return Some(MemberState::Unhealthy(format!(
                    "{ended} with code {}",
                    self.exit_code
                )));
            }
        }
        let (status, output) = self.health.as_ref()?;
        Some(match status.as_str() {
            "healthy" => MemberState::Ready,
            // During the start period Docker keeps "starting" whatever the
            // checks answer: the last answer tells a failed boot apart.
            "starting" => match state_from_status_text(1, output) {
                MemberState::Ready => MemberState::Starting,
                other => other,
            },
            _ => state_from_status_text(1, output),
        })
    }
}

/// A member's state from `dind-init status` (its exit code and its table,
/// as an exec or Docker's health log gives them).
pub fn state_from_status_text(exit_code: i32, text: &str) -> MemberState {
    let phase = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("phase:"))
        .map(str::trim)
        .unwrap_or("");
    match exit_code {
        0 => MemberState::Ready,
        // No answer yet (the socket comes up with the init), or still booting.
        3 => MemberState::Starting,
        126 | 127 => MemberState::Unhealthy("no dind-init on its PATH".to_string()),
        _ if phase.is_empty() || phase.starts_with("starting") => MemberState::Starting,
        _ => MemberState::Unhealthy(reason_of(text)),
    }
}

/// The status table on one line: what `ls` and the log say about a member.
fn reason_of(text: &str) -> String {
    let joined: Vec<String> = text
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| {
            !line.is_empty() && !line.starts_with("boot:") && !line.starts_with("phases:")
        })
        .collect();
    crate::text::cut(&crate::text::escape_controls(&joined.join("; ")), 300)
}

/// The names of the pool's volumes: the claims' leases (and podman's
/// claim volumes).
pub fn volumes(engine: Engine, pool: &str) -> Result<Vec<String>, PoolError> {
    let filter = format!("label={LABEL_POOL}={pool}");
    let output = engine_call(engine, &["volume", "ls", "-q", "--filter", &filter])?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// The volumes of `pool` that belong to the container `id`.
pub fn volumes_of<'a>(pool: &str, id: &str, volumes: &'a [String]) -> Vec<&'a String> {
    let prefix = claimed_name(pool, id, "-");
    volumes
        .iter()
        .filter(|volume| volume.starts_with(&prefix))
        .collect()
}

/// Every container labelled with the pool's name, taken or not.
pub fn list(engine: Engine, pool: &str) -> Result<Vec<Member>, PoolError> {
    inspect_all(engine, &format!("label={LABEL_POOL}={pool}"))
}

/// Every container `ENGINE ps -a --filter FILTER` lists, inspected.
pub fn inspect_all(engine: Engine, filter: &str) -> Result<Vec<Member>, PoolError> {
    let ids = engine_call(
        engine,
        &["ps", "-a", "-q", "--no-trunc", "--filter", filter],
    )?;
    let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["container".to_string(), "inspect".to_string()];
    args.extend(ids);
    // A member removed since `ps` makes inspect fail for it alone: read
    // what it printed for the others.
    let output = crate::snapshot::engine::run(engine, &args).map_err(PoolError::Engine)?;
    let all: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    Ok(all
        .as_array()
        .into_iter()
        .flatten()
        .map(parse_inspect)
        .collect())
}

/// One element of `ENGINE container inspect`'s array (docker and podman
/// agree on these fields; docker's name starts with `/`).
pub fn parse_inspect(value: &Value) -> Member {
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let health = value
        .pointer("/State/Health/Status")
        .and_then(Value::as_str)
        .filter(|status| !status.is_empty())
        .map(|status| {
            let last_output = value
                .pointer("/State/Health/Log")
                .and_then(Value::as_array)
                .and_then(|log| log.last())
                .and_then(|entry| entry.get("Output"))
                .and_then(Value::as_str)
                .unwrap_or("");
            (status.to_string(), last_output.to_string())
        });
    Member {
        name: text("/Name").trim_start_matches('/').to_string(),
        id: text("/Id"),
        created: unix_seconds_of(&text("/Created")).unwrap_or(0),
        engine_state: text("/State/Status"),
        exit_code: value
            .pointer("/State/ExitCode")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        health,
        labels: value
            .pointer("/Config/Labels")
            .cloned()
            .unwrap_or(Value::Null),
        ports: value
            .pointer("/NetworkSettings/Ports")
            .cloned()
            .unwrap_or(Value::Null),
        address: value
            .pointer("/NetworkSettings/Networks")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|networks| networks.values())
            .filter_map(|network| network.get("IPAddress").and_then(Value::as_str))
            .find(|address| !address.is_empty())
            .unwrap_or("")
            .to_string(),
    }
}

/// Unix seconds of an RFC 3339 time (`2026-12-01T12:00:53.123Z`, or with
/// an offset `+01:00`), as the engines write `Created`.
// Fields are bounded by their digit counts (years < 10000), far inside i64.
#[allow(clippy::arithmetic_side_effects)]
pub fn unix_seconds_of(text: &str) -> Option<u64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let rest = text.get(19..)?;
    let zone = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone {
        "Z" | "" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let hours: i64 = zone.get(1..3)?.parse().ok()?;
            let minutes: i64 = zone.get(4..6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, state: &str, health: Option<(&str, &str)>) -> Member {
        Member {
            name: name.into(),
            id: "id".into(),
            created: 0,
            engine_state: state.into(),
            exit_code: 137,
            health: health.map(|(s, o)| (s.into(), o.into())),
            labels: Value::Null,
            ports: Value::Null,
            address: String::new(),
        }
    }

    #[test]
    fn states_from_the_engine_and_the_status_table() {
        let unhealthy = "phase:   running (unhealthy)\nboot:    1\nscripts: 20-db.sh degraded (daemon exited)\n";
        assert_eq!(
            member("p-1-taken", "exited", None).state_from_engine(),
            Some(MemberState::Taken)
        );
        assert_eq!(
            member("p-1", "exited", None).state_from_engine(),
            Some(MemberState::Unhealthy("exited with code 137".into()))
        );
        assert_eq!(
            member("p-1", "stopped", None).state_from_engine(),
            Some(MemberState::Unhealthy("exited with code 137".into()))
        );
        assert_eq!(
            member("p-1", "created", None).state_from_engine(),
            Some(MemberState::Starting)
        );
        assert_eq!(member("p-1", "running", None).state_from_engine(), None);
        assert_eq!(
            member("p-1", "running", Some(("healthy", ""))).state_from_engine(),
            Some(MemberState::Ready)
        );
        assert_eq!(
            member("p-1", "running", Some(("starting", "phase: starting\n"))).state_from_engine(),
            Some(MemberState::Starting)
        );
        assert_eq!(
            member("p-1", "running", Some(("starting", unhealthy))).state_from_engine(),
            Some(MemberState::Unhealthy(
                "phase: running (unhealthy); scripts: 20-db.sh degraded (daemon exited)".into()
            ))
        );
        assert_eq!(
            state_from_status_text(0, "phase: running (healthy)"),
            MemberState::Ready
        );
        assert_eq!(
            state_from_status_text(3, "no dind-init answers"),
            MemberState::Starting
        );
    }

    #[test]
    fn names_carry_slots_claims_and_leases() {
        let labels = serde_json::json!({"io.dind-init.pool": "p-s1"});
        let id = "0123456789abcdef";
        let named = |name: &str| Member {
            labels: labels.clone(),
            created: 100,
            id: id.into(),
            ..member(name, "running", None)
        };
        assert_eq!(named("p-s1-s3").slot(), Some(3));
        assert_eq!(named("p-s1-s").slot(), None);
        assert_eq!(named("p-s1-s3-taken").slot(), None);
        assert_eq!(claimed_name("p", id, TAKEN_SUFFIX), "p-0123456789ab-taken");
        let taken = named(&claimed_name("p-s1", id, TAKEN_SUFFIX));
        assert!(taken.is_taken() && taken.slot().is_none());
        let volumes = [
            "p-s1-0123456789ab-claim".to_string(),
            lease_name("p-s1", id, 500, 42),
            lease_name("p-s1", "ffffffffffff", 900, 1),
        ];
        assert_eq!(volumes[1], "p-s1-0123456789ab-lease-until500-by42");
        assert_eq!(taken.lease(&volumes), Some((500, 42)));
        assert!(!taken.is_stale_claim(&volumes, 500, 3600));
        assert!(taken.is_stale_claim(&volumes, 501, 3600));
        assert_eq!(volumes_of("p-s1", id, &volumes).len(), 2);
        assert_eq!(taken.lease(&[]), None);
        assert!(!taken.is_stale_claim(&[], 3700, 3600));
        assert!(taken.is_stale_claim(&[], 3701, 3600));
        assert!(!named("p-s1-s0").is_stale_claim(&[], u64::MAX, 0));
        let members = [named("p-s1-s0"), named("p-s1-s2"), taken];
        assert_eq!(free_slots(4, &members), [1, 3]);
        assert_eq!(free_slots(2, &members), [1]);
    }

    #[test]
    fn engine_dates() {
        assert_eq!(unix_seconds_of("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds_of("2000-02-29T00:00:00.123456789Z"),
            Some(951_782_400)
        );
        assert_eq!(
            unix_seconds_of("2000-02-29T01:00:00+01:00"),
            Some(951_782_400)
        );
        assert_eq!(unix_seconds_of("garbage"), None);
    }

    #[test]
    fn inspect_fields_of_docker() {
        let value = serde_json::json!({
            "Id": "abc", "Name": "/p-1", "Created": "2000-02-29T00:00:00Z",
            "State": {"Status": "running", "ExitCode": 0,
                      "Health": {"Status": "healthy", "Log": [{"Output": "old"}, {"Output": "phase: running"}]}},
            "Config": {"Labels": {"io.dind-init.pool": "p"}},
            "NetworkSettings": {"Ports": {"5432/tcp": [{"HostPort": "49153"}]},
                                "Networks": {"bridge": {"IPAddress": "172.17.0.5"}}},
        });
        let parsed = parse_inspect(&value);
        assert_eq!(parsed.name, "p-1");
        assert_eq!(parsed.created, 951_782_400);
        assert_eq!(
            parsed.health,
            Some(("healthy".into(), "phase: running".into()))
        );
        assert_eq!(parsed.label("io.dind-init.pool"), "p");
        assert_eq!(parsed.address, "172.17.0.5");
    }
}
