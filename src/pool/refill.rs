//! Starting members and seeing them ready: what `fill` does in the
//! foreground and what the detached `pool refill` (started by `take`) does
//! in the background. A member that fails before it is ready is removed
//! and replaced, a few times at most, each with a log line saying why.
//! Removal is the claim here too: only the process whose `rm` succeeded
//! replaces a member, so concurrent tenders never replace one twice.

use std::fs::OpenOptions;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::member::{self, Member, MemberState};
use super::{
    LABEL_IMAGE, LABEL_IMAGE_ID, LABEL_POOL, LABEL_PROBE, LABEL_RUN_ARGS, PoolError, engine_call,
    log_line,
};
use crate::snapshot::Engine;

/// How often a member that is starting is looked at again.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// Failed boots a refill replaces before it gives up on the image.
const REPLACEMENT_BUDGET: u32 = 3;

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
    const ALL: [Probe; 3] = [Probe::ImageHealth, Probe::PoolHealth, Probe::Exec];

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
    /// The template a member was started from, read from its labels.
    pub fn of(member: &Member) -> Option<Template> {
        Template::from_labels(&member.labels)
    }

    /// From the labels a member carries (or the JSON object of them that a
    /// refill is given on its command line).
    pub fn from_labels(labels: &Value) -> Option<Template> {
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        Some(Template {
            pool: label(LABEL_POOL)?.to_string(),
            image: label(LABEL_IMAGE)?.to_string(),
            image_id: label(LABEL_IMAGE_ID)?.to_string(),
            run_args: serde_json::from_str(label(LABEL_RUN_ARGS)?).ok()?,
            probe: Probe::ALL
                .into_iter()
                .find(|probe| Some(probe.word()) == label(LABEL_PROBE))?,
        })
    }

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

    /// `ENGINE run -d` of one new member; its name.
    pub fn start_member(&self, engine: Engine) -> Result<String, PoolError> {
        let name = format!("{}-{}", self.pool, nonce());
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
        engine_call(engine, &args)?;
        Ok(name)
    }
}

/// The run args already say how the engine checks health.
pub fn has_health_flags(run_args: &[String]) -> bool {
    run_args
        .iter()
        .any(|arg| arg.starts_with("--health-cmd") || arg == "--no-healthcheck")
}

/// Eight hex digits, different for every member this host starts.
fn nonce() -> String {
    let mut bytes = [0u8; 4];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes));
    if random.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        bytes = (nanos ^ std::process::id().rotate_left(16)).to_le_bytes();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
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

/// Removes a member that is not healthy, with its volumes; true when this
/// process removed it (and so owes the pool a replacement).
pub fn remove_unhealthy(engine: Engine, member: &Member, why: &str, to_log: bool) -> bool {
    let removed =
        crate::snapshot::engine::run_ok(engine, &["rm", "-f", "-v", &member.name]).is_ok();
    if removed {
        let line = format!("removed {} ({why}); starting a replacement", member.name);
        if to_log {
            log_line(member.label(LABEL_POOL), &line);
        } else {
            super::say(&line);
        }
    }
    removed
}

/// Waits until every one of `names` is ready or gone (someone removed it);
/// a member that turns unhealthy first is removed and replaced. `Err`
/// names the members still not ready at the deadline, or the last failure
/// when the replacement budget is spent.
pub fn watch(
    engine: Engine,
    template: &Template,
    mut names: Vec<String>,
    timeout: Duration,
    to_log: bool,
) -> Result<(), PoolError> {
    let deadline = Instant::now().checked_add(timeout);
    let mut budget = REPLACEMENT_BUDGET;
    loop {
        let members = member::list(engine, &template.pool)?;
        let mut waiting = Vec::new();
        for name in names {
            let Some(found) = members.iter().find(|m| m.name == name) else {
                continue; // removed by someone else: not ours to replace
            };
            match state_of(engine, found) {
                MemberState::Ready if to_log => log_line(&template.pool, &format!("{name} ready")),
                MemberState::Ready | MemberState::Taken => {}
                MemberState::Starting => waiting.push(name),
                MemberState::Unhealthy(why) => {
                    if !remove_unhealthy(
                        engine,
                        found,
                        &format!("unhealthy while starting: {why}"),
                        to_log,
                    ) {
                        continue;
                    }
                    if budget == 0 {
                        return Err(PoolError::Failed(format!(
                            "{name} of pool {} turned unhealthy while starting ({why}), and so did {REPLACEMENT_BUDGET} before it: fix the image or RUN-ARGS, see `{} logs` of a new member",
                            template.pool,
                            engine.program()
                        )));
                    }
                    budget = budget.saturating_sub(1);
                    waiting.push(template.start_member(engine)?);
                }
            }
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

/// The waiting members that are unhealthy are removed (with a line each)
/// and counted: that many replacements are owed.
pub fn tend(engine: Engine, members: &[Member], to_log: bool) -> u32 {
    let mut removed = 0u32;
    for found in members.iter().filter(|m| !m.is_taken()) {
        if let MemberState::Unhealthy(why) = state_of(engine, found)
            && remove_unhealthy(engine, found, &format!("unhealthy: {why}"), to_log)
        {
            removed = removed.saturating_add(1);
        }
    }
    removed
}

/// The detached `pool refill`: tends the pool, starts `count` members from
/// `template` (the labels of the member it replaces, as JSON: the pool may
/// have no member left to read them from), and one per unhealthy member it
/// removed, sees them ready. Its lines go to the pool log.
pub fn refill(
    engine: Engine,
    pool: &str,
    count: u32,
    template: &str,
    timeout: Duration,
) -> Result<(), PoolError> {
    let template = serde_json::from_str(template)
        .ok()
        .as_ref()
        .and_then(Template::from_labels)
        .filter(|template| template.pool == pool)
        .ok_or_else(|| {
            PoolError::BadInput(format!(
                "refill of {pool}: --template is not a member's labels"
            ))
        })?;
    let members = member::list(engine, pool)?;
    let owed = count.saturating_add(tend(engine, &members, true));
    let mut started = Vec::new();
    for _ in 0..owed {
        started.push(template.start_member(engine)?);
    }
    log_line(pool, &format!("started {}", started.join(", ")));
    watch(engine, &template, started, timeout, true)
}

/// Starts `dind-init pool refill` as a process of its own that outlives
/// this one: its own process group (a Ctrl-C to the caller's does not reach
/// it), no stdin or stdout (a caller reading `take`'s output is not kept
/// waiting), stderr to the pool log.
pub fn spawn_detached(engine: Engine, template: &Template, count: u32) {
    use std::os::unix::process::CommandExt;
    let Ok(program) = std::env::current_exe() else {
        super::say("cannot find this program to start the refill: the pool is one member short");
        return;
    };
    let stderr = super::log_path()
        .and_then(|path| OpenOptions::new().create(true).append(true).open(path).ok())
        .map_or_else(Stdio::null, Stdio::from);
    let labels: serde_json::Map<String, Value> = template
        .labels()
        .into_iter()
        .map(|(key, value)| (key.to_string(), Value::from(value)))
        .collect();
    let count = count.to_string();
    let spawned = Command::new(program)
        .args([
            "pool",
            "--engine",
            engine.program(),
            "refill",
            &template.pool,
        ])
        .args([
            "--count",
            &count,
            "--template",
            &Value::from(labels).to_string(),
        ])
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

/// `[.../dind-init, pool, --engine, E, refill, POOL, ...]`
fn is_refill_of(words: &[&[u8]], pool: &str) -> bool {
    let program_ok = words
        .first()
        .is_some_and(|program| program.ends_with(b"dind-init"));
    program_ok
        && words.get(1) == Some(&b"pool".as_slice())
        && words.windows(2).any(|pair| {
            pair.first() == Some(&b"refill".as_slice()) && pair.get(1) == Some(&pool.as_bytes())
        })
}

/// The ports and id `take --json` prints.
pub fn take_json(member: &Member) -> Value {
    serde_json::json!({
        "name": member.name,
        "id": member.id,
        "ports": member.ports,
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
    }

    #[test]
    fn health_flags_in_run_args_win() {
        assert!(has_health_flags(&["--no-healthcheck".into()]));
        assert!(has_health_flags(&["--health-cmd=true".into()]));
        assert!(!has_health_flags(&["-p".into(), "5432".into()]));
        assert_eq!(nonce().len(), 8);
    }
}
