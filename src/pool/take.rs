//! `dind-init pool take`: claim one ready member atomically (a rename to
//! `NAME-taken` that only one taker can win; with podman, a claim volume
//! first), wait for one up to the timeout while tending the pool, and start
//! the claimed member's replacement.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::member::{self, Member, MemberState, TAKEN_SUFFIX};
use super::refill::{self, Probe, Template};
use super::{
    LABEL_IMAGE, LABEL_IMAGE_ID, LABEL_POOL, LABEL_PROBE, LABEL_RUN_ARGS, PoolError, engine_call,
    engine_is_down, say,
};
use crate::snapshot::Engine;

/// The podman volume a taker creates to claim a member (see `claim_first`).
const CLAIM_SUFFIX: &str = "-claim";
/// How often `take` looks again while no member is ready.
pub(super) const TAKE_POLL: Duration = Duration::from_millis(100);
/// How often `take`, while waiting, also tends the pool (unhealthy members
/// out, a refill when nothing is on its way).
const TAKE_TEND_EVERY: Duration = Duration::from_secs(2);

/// `take`: claims a ready member, starts a replacement, prints its name.
pub(super) fn take(
    engine: Engine,
    pool: &str,
    timeout: Duration,
    json: bool,
) -> Result<(), PoolError> {
    let started = Instant::now();
    let deadline = started.checked_add(timeout);
    let mut last_tend: Option<Instant> = None;
    let mut refill_started = false;
    // Docker's health status says which members are ready, in one call;
    // members read by exec (podman, --no-healthcheck) need the full look.
    let mut health_only = engine == Engine::Docker;
    loop {
        if health_only && let Some(claimed) = claim_first(engine, &healthy_members(engine, pool)?)?
        {
            return taken(engine, &claimed, json, 0);
        }
        let due = last_tend.is_none_or(|at| at.elapsed() >= TAKE_TEND_EVERY);
        if !health_only || due {
            last_tend = Some(Instant::now());
            let members = member::list(engine, pool)?;
            health_only = engine == Engine::Docker
                && members
                    .iter()
                    .all(|m| m.label(LABEL_PROBE) != Probe::Exec.word());
            // Empty after a refill was started: its member is on its way.
            if members.is_empty() && !refill_started {
                return Err(PoolError::BadInput(format!(
                    "no pool {pool} in {} (no container has label {LABEL_POOL}={pool}): fill it first with `dind-init pool fill IMAGE --name {pool} --size N`",
                    engine.program()
                )));
            }
            let mut ready = Vec::new();
            let mut owed = 0u32;
            let mut on_its_way = false;
            for found in members.iter().filter(|m| !m.is_taken()) {
                match refill::state_of(engine, found) {
                    MemberState::Ready => ready.push(found.clone()),
                    MemberState::Starting => on_its_way = true,
                    MemberState::Taken => {}
                    MemberState::Unhealthy(why) => {
                        if refill::remove_unhealthy(
                            engine,
                            found,
                            &format!("unhealthy: {why}"),
                            false,
                        ) {
                            owed = owed.saturating_add(1);
                        }
                    }
                }
            }
            if let Some(claimed) = claim_first(engine, &ready)? {
                return taken(engine, &claimed, json, owed);
            }
            // Nothing ready and nothing booting: someone must start one.
            if !on_its_way && !refill_started {
                owed = owed.max(1);
            }
            if owed > 0
                && let Some(template) = members.iter().find_map(Template::of)
            {
                refill::spawn_detached(engine, &template, owed);
                refill_started = true;
            }
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(PoolError::Failed(format!(
                "no member of pool {pool} got ready within {} s: see `dind-init pool ls {pool}`, or take with a longer --timeout",
                timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(TAKE_POLL);
    }
}

/// Waiting members Docker reports healthy, in name order, with the labels
/// a replacement needs (one `docker ps`: `take`'s fast path).
fn healthy_members(engine: Engine, pool: &str) -> Result<Vec<Member>, PoolError> {
    let filter = format!("label={LABEL_POOL}={pool}");
    let keys = [LABEL_IMAGE, LABEL_IMAGE_ID, LABEL_RUN_ARGS, LABEL_PROBE];
    // Tab-separated: JSON (the run args) writes a tab as `\t`.
    let format = std::iter::once("{{.Names}}".to_string())
        .chain(keys.iter().map(|key| format!("{{{{.Label \"{key}\"}}}}")))
        .collect::<Vec<_>>()
        .join("\t");
    let output = engine_call(
        engine,
        &[
            "ps",
            "--filter",
            filter.as_str(),
            "--filter",
            "health=healthy",
            "--format",
            format.as_str(),
        ],
    )?;
    let mut members: Vec<Member> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.trim().to_string();
            let mut labels = serde_json::Map::new();
            labels.insert(LABEL_POOL.to_string(), Value::from(pool));
            for (key, value) in keys.iter().zip(fields) {
                labels.insert(key.to_string(), Value::from(value));
            }
            Some(Member::named(name, Value::from(labels)))
        })
        .filter(|found| !found.name.is_empty() && !found.is_taken())
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(members)
}

/// Renames the first of `candidates` that this process wins to its taken
/// name; that member, under its new name.
///
/// Docker refuses a rename to the name a container already has (checked
/// under the container's lock), so of the takers that all ask for
/// `NAME-taken` exactly one succeeds. Podman accepts it as a no-op: a taker
/// whose lookup of `NAME` came before the winner's rename would "win" too
/// (seen in the concurrent-take test). There a volume named `NAME-claim`,
/// whose creation fails when it exists, is taken first and removed once
/// the rename is done, so no two renames of one member overlap.
fn claim_first(engine: Engine, candidates: &[Member]) -> Result<Option<Member>, PoolError> {
    for candidate in candidates {
        let claim = format!("{}{CLAIM_SUFFIX}", candidate.name);
        let pool_label = format!("{LABEL_POOL}={}", candidate.label(LABEL_POOL));
        if engine == Engine::Podman
            && lost(
                engine,
                crate::snapshot::engine::run_ok(
                    engine,
                    &["volume", "create", "--label", &pool_label, &claim],
                ),
            )?
        {
            continue;
        }
        let taken_name = format!("{}{TAKEN_SUFFIX}", candidate.name);
        let renamed =
            crate::snapshot::engine::run_ok(engine, &["rename", &candidate.name, &taken_name]);
        if engine == Engine::Podman {
            let _ = crate::snapshot::engine::run(engine, &["volume", "rm", "-f", &claim]);
        }
        if !lost(engine, renamed)? {
            return Ok(Some(Member {
                name: taken_name,
                ..candidate.clone()
            }));
        }
    }
    Ok(None)
}

/// Whether a claim step lost the race (the member gone, renamed, or
/// claimed by another taker); an engine that is down is an error.
fn lost(engine: Engine, step: Result<Output, String>) -> Result<bool, PoolError> {
    match step {
        Ok(_) => Ok(false),
        Err(why) if engine_is_down(&why) => Err(engine_call(engine, &["version"])
            .err()
            .unwrap_or(PoolError::Engine(why))),
        Err(_) => Ok(true),
    }
}

/// After a claim: the replacement (plus `owed` more) in the background,
/// the name (or, with `json`, name, id and ports) on stdout.
fn taken(engine: Engine, claimed: &Member, json: bool, owed: u32) -> Result<(), PoolError> {
    match Template::of(claimed) {
        Some(template) => refill::spawn_detached(engine, &template, owed.saturating_add(1)),
        None => say(&format!(
            "{} has no pool labels to start a replacement from: the pool is one member short",
            claimed.name
        )),
    }
    if json {
        let output = engine_call(engine, &["container", "inspect", &claimed.name])?;
        let all: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        let found = member::parse_inspect(all.get(0).unwrap_or(&Value::Null));
        println!("{}", refill::take_json(&found));
    } else {
        println!("{}", claimed.name);
    }
    Ok(())
}
