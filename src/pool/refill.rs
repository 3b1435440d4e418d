//! Starting members and seeing them ready: what `fill` does in the
//! foreground and what the detached `pool refill` (started by `take`) does
//! in the background. Members start only into the free slots of the
//! pool's size (`POOL-sK`; the engine gives a name out once), so any number
//! of refills at once never grow the pool past it. A member that fails
//! its boot is replaced within the pool's one budget (see [`record`]),
//! whoever notices it; once spent, the pool is broken until the next fill.
//!
//! [`record`]: super::record

use std::fs::OpenOptions;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::member::{self, FAILED_SUFFIX, Member, MemberState};
use super::record::{self, Record};
use super::{
    LABEL_IMAGE, LABEL_IMAGE_ID, LABEL_POOL, LABEL_PROBE, LABEL_RUN_ARGS, PoolError, engine_call,
    log_line,
};
use crate::snapshot::Engine;

/// How often a member that is starting is looked at again.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// Lines of a failed member's log in the line `take` fails with.
const FAILED_LOG_LINES: &str = "5";

/// The health check a Docker member gets when its image has none: `take`
/// then reads readiness from `docker ps --filter health=healthy` in one
/// call. Failures during the long start period do not count, the first
/// success makes it healthy; afterwards two failures make it unhealthy.
const DOCKER_HEALTH_ARGS: [&str; 10] = [
    "--health-cmd",
    "dind-init status",
    "--health-interval",
    "1s",
    "--health-timeout",
    "10s",
    "--health-retries",
    "2",
    "--health-start-period",
    "600s",
];

/// How a member's readiness is known, recorded in its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Docker runs the image's (or the RUN-ARGS') health check.
    ImageHealth,
    /// Docker runs the pool's health check, [`DOCKER_HEALTH_ARGS`].
    PoolHealth,
    /// `ENGINE exec MEMBER dind-init status` (podman runs no health checks
    /// without systemd's timers, and `--no-healthcheck` turns Docker's off).
    Exec,
}

impl Probe {
    pub const ALL: [Probe; 3] = [Probe::ImageHealth, Probe::PoolHealth, Probe::Exec];

    pub fn word(self) -> &'static str {
        match self {
            Probe::ImageHealth => "image-health",
            Probe::PoolHealth => "pool-health",
            Probe::Exec => "exec",
        }
    }
}

/// What every member of a pool is started from.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub pool: String,
    pub image: String,
    pub image_id: String,
    pub run_args: Vec<String>,
    pub probe: Probe,
}

impl Template {
    /// The labels every member gets: the pool, and all a replacement needs.
    pub fn labels(&self) -> Vec<(&'static str, String)> {
        vec![
            (LABEL_POOL, self.pool.clone()),
            (LABEL_IMAGE, self.image.clone()),
            (LABEL_IMAGE_ID, self.image_id.clone()),
            (
                LABEL_RUN_ARGS,
                serde_json::to_string(&self.run_args).unwrap_or_else(|_| "[]".into()),
            ),
            (LABEL_PROBE, self.probe.word().to_string()),
        ]
    }

    /// `ENGINE run -d` of one new member in `slot`; its name, or `None`
    /// when another process filled the slot first.
    pub fn start_member(&self, engine: Engine, slot: u32) -> Result<Option<String>, PoolError> {
        let name = member::slot_name(&self.pool, slot);
        let mut args: Vec<String> = ["run", "-d", "--name", &name]
            .into_iter()
            .map(str::to_string)
            .collect();
        for (key, value) in self.labels() {
            args.push("--label".to_string());
            args.push(format!("{key}={value}"));
        }
        if self.probe == Probe::PoolHealth {
            args.extend(DOCKER_HEALTH_ARGS.map(str::to_string));
        }
        args.extend(self.run_args.iter().cloned());
        args.push(self.image_id.clone());
        match crate::snapshot::engine::run_ok(engine, &args) {
            Ok(_) => Ok(Some(name)),
            Err(why) if why.contains("already in use") => Ok(None),
            Err(_) => engine_call(engine, &args).map(|_| None),
        }
    }
}

/// Starts a member in every free slot of the pool's size; their names.
/// Nothing when the pool is broken.
pub fn start_free_slots(engine: Engine, record: &Record) -> Result<Vec<String>, PoolError> {
    if record.broken.is_some() {
        return Ok(Vec::new());
    }
    let members = member::list(engine, &record.template.pool)?;
    let mut started = Vec::new();
    for slot in member::free_slots(record.size, &members) {
        if let Some(name) = record.template.start_member(engine, slot)? {
            started.push(name);
        }
    }
    Ok(started)
}

/// The run args already say how the engine checks health.
pub fn has_health_flags(run_args: &[String]) -> bool {
    run_args
        .iter()
        .any(|arg| arg.starts_with("--health-cmd") || arg == "--no-healthcheck")
}

/// A member's state, exec'ing `dind-init status` in it when the engine
/// alone cannot tell.
pub fn state_of(engine: Engine, member: &Member) -> MemberState {
    if let Some(state) = member.state_from_engine() {
        return state;
    }
    match crate::snapshot::engine::run(engine, &["exec", &member.name, "dind-init", "status"]) {
        Ok(output) => member::state_from_status_text(
            output.status.code().unwrap_or(1),
            &format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ),
        Err(_) => MemberState::Starting,
    }
}

/// A line to the pool log (in a refill) or to stderr (in the foreground).
fn note(pool: &str, line: &str, to_log: bool) {
    if to_log {
        log_line(pool, line);
    } else {
        super::say(line);
    }
}

/// A member that failed (its boot, or later) is replaced within the
/// pool's budget: claimed by a rename to `POOL-ID12-failed` (one noticer
/// wins), then removed when the budget allows a replacement (true: the
/// caller starts it), else kept stopped for its logs and the pool marked
/// broken with a line naming the image, its last log lines and the
/// command to see more.
pub fn replace_failed(
    engine: Engine,
    template: &Template,
    found: &Member,
    why: &str,
    to_log: bool,
) -> Result<bool, PoolError> {
    let pool = &template.pool;
    let failed = member::claimed_name(pool, &found.id, FAILED_SUFFIX);
    let target = if found.id.is_empty() {
        &found.name
    } else {
        &found.id
    };
    if crate::snapshot::engine::run_ok(engine, &["rename", target, &failed]).is_err() {
        return Ok(false);
    }
    if record::spend_one(engine, template)? {
        engine_call(engine, &["rm", "-f", "-v", &failed])?;
        note(
            pool,
            &format!("removed {} ({why}); starting a replacement", found.name),
            to_log,
        );
        return Ok(true);
    }
    let _ = crate::snapshot::engine::run(engine, &["stop", "-t", "1", &failed]);
    let logs = crate::snapshot::engine::run(engine, &["logs", "--tail", FAILED_LOG_LINES, &failed])
        .map(|output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .unwrap_or_default();
    let lines: Vec<String> = logs
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    let line = format!(
        "pool {pool}: members of `{}` fail to boot ({why}), {} replaced since the last fill, so none is started until `dind-init pool fill` runs again; last lines of {failed}: {}; see `{} logs {failed}`",
        template.image,
        record::REPLACEMENT_BUDGET,
        crate::text::cut(&crate::text::escape_controls(&lines.join(" | ")), 600),
        engine.program()
    );
    record::mark_broken(engine, template, &line)?;
    note(pool, &line, to_log);
    Ok(false)
}

/// Waits until every one of `names` is ready or gone (someone removed it);
/// a member that turns unhealthy first is replaced within the budget.
/// `Err` names the members still not ready at the deadline, or says the
/// pool is broken.
pub fn watch(
    engine: Engine,
    record: &Record,
    mut names: Vec<String>,
    timeout: Duration,
    to_log: bool,
) -> Result<(), PoolError> {
    let template = &record.template;
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let members = member::list(engine, &template.pool)?;
        let mut waiting = Vec::new();
        let mut failed = false;
        for name in names {
            let Some(found) = members.iter().find(|m| m.name == name) else {
                continue; // taken or removed by someone else
            };
            match state_of(engine, found) {
                MemberState::Ready => {
                    if to_log {
                        log_line(&template.pool, &format!("{name} ready"));
                    }
                }
                MemberState::Taken => {}
                MemberState::Starting => waiting.push(name),
                MemberState::Unhealthy(why) => {
                    let why = format!("unhealthy while starting: {why}");
                    replace_failed(engine, template, found, &why, to_log)?;
                    failed = true;
                }
            }
        }
        if failed {
            if let Some(broken) = record::read(engine, &template.pool)?.and_then(|now| now.broken) {
                return Err(PoolError::Failed(broken));
            }
            waiting.extend(start_free_slots(engine, record)?);
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(PoolError::Failed(format!(
                "{} of pool {} not ready after {} s: see `{} logs {}`",
                waiting.join(", "),
                template.pool,
                timeout.as_secs(),
                engine.program(),
                waiting.first().map_or("", String::as_str)
            )));
        }
        names = waiting;
        std::thread::sleep(WATCH_INTERVAL);
    }
}

/// The members in slots that are unhealthy are replaced within the
/// budget; how many replacements are owed.
pub fn tend(
    engine: Engine,
    template: &Template,
    members: &[Member],
    to_log: bool,
) -> Result<u32, PoolError> {
    let mut owed = 0u32;
    for found in members.iter().filter(|m| m.slot().is_some()) {
        if let MemberState::Unhealthy(why) = state_of(engine, found)
            && replace_failed(
                engine,
                template,
                found,
                &format!("unhealthy: {why}"),
                to_log,
            )?
        {
            owed = owed.saturating_add(1);
        }
    }
    Ok(owed)
}

/// Removes the claims whose lease ended (`take` never hands them out
/// again: their holder is done or gone), each with a line; how many.
pub fn reclaim_stale(
    engine: Engine,
    pool: &str,
    members: &[Member],
    to_log: bool,
) -> Result<usize, PoolError> {
    if !members.iter().any(Member::is_taken) {
        return Ok(0);
    }
    let volumes = member::volumes(engine, pool)?;
    let now = member::now_seconds();
    let default_lease = super::request::DEFAULT_LEASE.as_secs();
    let mut reclaimed = 0usize;
    for found in members
        .iter()
        .filter(|m| m.is_stale_claim(&volumes, now, default_lease))
    {
        if super::remove_member(engine, found) {
            reclaimed = reclaimed.saturating_add(1);
            note(
                pool,
                &format!("reclaimed {}: its lease ended", found.name),
                to_log,
            );
        }
    }
    Ok(reclaimed)
}

/// The detached `pool refill`: tends the pool, starts members into its
/// free slots, sees them ready. Its lines go to the pool log.
pub fn refill(engine: Engine, pool: &str, timeout: Duration) -> Result<(), PoolError> {
    let Some(record) = record::read(engine, pool)? else {
        return Ok(()); // drained meanwhile
    };
    let members = member::list(engine, pool)?;
    tend(engine, &record.template, &members, true)?;
    let started = start_free_slots(engine, &record)?;
    if started.is_empty() {
        return Ok(());
    }
    log_line(pool, &format!("started {}", started.join(", ")));
    watch(engine, &record, started, timeout, true)
}

/// Starts `dind-init pool refill POOL` as a process of its own that
/// outlives this one: its own process group (a Ctrl-C to the caller's does
/// not reach it), no stdin or stdout (a caller reading `take`'s output is
/// not kept waiting), stderr to the pool log.
pub fn spawn_detached(engine: Engine, pool: &str) {
    use std::os::unix::process::CommandExt;
    let Ok(program) = std::env::current_exe() else {
        super::say("cannot find this program to start the refill: the pool is one member short");
        return;
    };
    let stderr = super::log_path()
        .and_then(|path| OpenOptions::new().create(true).append(true).open(path).ok())
        .map_or_else(Stdio::null, Stdio::from);
    let spawned = Command::new(program)
        .args(["pool", "--engine", engine.program(), "refill", pool])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn();
    if let Err(error) = spawned {
        super::say(&format!(
            "cannot start the refill ({error}): the pool is one member short; `dind-init pool fill` tops it up"
        ));
    }
}

/// The refills in flight for `pool` on this host (their pids), which
/// `drain` waits for: they may be about to start a member.
pub fn refills_in_flight(pool: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| u32::try_from(*pid).ok() != Some(own))
        .filter(|pid| {
            let Ok(bytes) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let words: Vec<&[u8]> = bytes.split(|byte| *byte == 0).collect();
            is_refill_of(&words, pool)
        })
        .collect()
}

/// `[PROGRAM, pool, --engine, E, refill, POOL, ...]`, whatever the
/// program's file is called (a release keeps `dind-init-0.1.0-x86_64`).
fn is_refill_of(words: &[&[u8]], pool: &str) -> bool {
    words.get(1) == Some(&b"pool".as_slice())
        && words.windows(2).any(|pair| {
            pair.first() == Some(&b"refill".as_slice()) && pair.get(1) == Some(&pool.as_bytes())
        })
}

/// What `take --json` prints: the member, its published ports, and its
/// address for reaching its services without `ENGINE exec`.
pub fn take_json(member: &Member) -> Value {
    serde_json::json!({
        "name": member.name,
        "id": member.id,
        "ports": member.ports,
        "address": member.address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_are_recognised_by_their_command_line() {
        let words = |line: &str| line.split(' ').map(str::to_string).collect::<Vec<_>>();
        let matches = |line: &str, pool: &str| {
            let owned = words(line);
            let borrowed: Vec<&[u8]> = owned.iter().map(|w| w.as_bytes()).collect();
            is_refill_of(&borrowed, pool)
        };
        assert!(matches(
            "/usr/bin/dind-init pool --engine docker refill p --count 1",
            "p"
        ));
        assert!(!matches(
            "/usr/bin/dind-init pool --engine docker refill p2 --count 1",
            "p"
        ));
        assert!(!matches(
            "/usr/bin/dind-init pool --engine docker take p",
            "p"
        ));
        assert!(!matches("/bin/sh refill p", "p"));
        assert!(matches(
            "/opt/dind-init-0.1.0-x86_64 pool --engine docker refill p",
            "p"
        ));
    }

    #[test]
    fn health_flags_in_run_args_win() {
        assert!(has_health_flags(&["--no-healthcheck".into()]));
        assert!(has_health_flags(&["--health-cmd=true".into()]));
        assert!(!has_health_flags(&["-p".into(), "5432".into()]));
    }
}
