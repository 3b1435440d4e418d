//! `dind-init pool take`: claim one ready member atomically (a rename by
//! id to `POOL-ID12-taken` that only one taker can win; with podman, a
//! claim volume first), record its lease (a volume), hand it out, and
//! only then start its replacement. A claim whose name never reached the
//! taker (stdout closed, inspect failed) is undone: the member goes back
//! to its slot. While nothing is ready, `take` waits (refills in flight
//! included) up to its timeout, tending the pool meanwhile.

use std::io::Write;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::member::{self, Member, MemberState, TAKEN_SUFFIX};
use super::record;
use super::refill::{self, Probe};
use super::{
    LABEL_IMAGE, LABEL_IMAGE_ID, LABEL_POOL, LABEL_PROBE, LABEL_RUN_ARGS, PoolError, engine_call,
    engine_is_down,
};
use crate::snapshot::Engine;

/// The podman volume a taker creates to claim a member (see `claim_first`).
const CLAIM_SUFFIX: &str = "-claim";
/// A claim volume older than this is a taker's that died mid-claim.
const CLAIM_VOLUME_STALE_SECONDS: u64 = 30;
/// How often `take` looks again while no member is ready.
pub(super) const TAKE_POLL: Duration = Duration::from_millis(100);
/// How often `take`, while waiting, also tends the pool (unhealthy members
/// out, stale claims reclaimed, free slots refilled).
const TAKE_TEND_EVERY: Duration = Duration::from_secs(2);

/// `take`: claims a ready member, prints its name (or JSON), then starts
/// a replacement.
pub(super) fn take(
    engine: Engine,
    pool: &str,
    timeout: Duration,
    lease: Duration,
    json: bool,
) -> Result<(), PoolError> {
    let started = Instant::now();
    let deadline = started.checked_add(timeout);
    let mut last_tend: Option<Instant> = None;
    // Docker's health status says which members are ready, in one call;
    // members read by exec (podman, --no-healthcheck) need the full look.
    let mut health_only = engine == Engine::Docker;
    loop {
        if health_only
            && let Some(claimed) = claim_first(engine, &healthy_members(engine, pool)?, lease)?
        {
            return hand_out(engine, &claimed, json);
        }
        let due = last_tend.is_none_or(|at| at.elapsed() >= TAKE_TEND_EVERY);
        if !health_only || due {
            last_tend = Some(Instant::now());
            if let Some(claimed) = tend_and_claim(engine, pool, lease, &mut health_only)? {
                return hand_out(engine, &claimed, json);
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

/// The full look: the record (a broken pool fails here), stale claims
/// reclaimed, failed members replaced, a ready one claimed, else a refill
/// started when a slot is free.
fn tend_and_claim(
    engine: Engine,
    pool: &str,
    lease: Duration,
    health_only: &mut bool,
) -> Result<Option<Claim>, PoolError> {
    let found_record = record::read(engine, pool)?;
    let members = member::list(engine, pool)?;
    // Without a record (never filled, or drained) nothing will come: only
    // members already waiting can still be taken.
    if found_record.is_none() && !members.iter().any(|m| m.slot().is_some()) {
        return Err(PoolError::BadInput(format!(
            "no pool {pool} in {} (no record {pool}.pool, no member waiting): fill it first with `dind-init pool fill IMAGE --name {pool} --size N`",
            engine.program()
        )));
    }
    if let Some(broken) = found_record.as_ref().and_then(|r| r.broken.clone()) {
        return Err(PoolError::Failed(broken));
    }
    *health_only = engine == Engine::Docker
        && members
            .iter()
            .all(|m| m.label(LABEL_PROBE) != Probe::Exec.word());
    // Its lines go to the pool log: stderr is for the answer's error only.
    refill::reclaim_stale(engine, pool, &members, true)?;
    let mut ready = Vec::new();
    let mut replaced = false;
    for found in members.iter().filter(|m| m.slot().is_some()) {
        match refill::state_of(engine, found) {
            MemberState::Ready => ready.push(found.clone()),
            MemberState::Starting | MemberState::Taken => {}
            MemberState::Unhealthy(why) => {
                if let Some(record) = &found_record {
                    replaced |= refill::replace_failed(
                        engine,
                        &record.template,
                        found,
                        &format!("unhealthy: {why}"),
                        true,
                    )?;
                }
            }
        }
    }
    if let Some(claimed) = claim_first(engine, &ready, lease)? {
        return Ok(Some(claimed));
    }
    if let Some(record) = &found_record
        && (replaced || !member::free_slots(record.size, &members).is_empty())
    {
        refill::spawn_detached(engine, pool);
    }
    Ok(None)
}

/// Waiting members Docker reports healthy, in slot order, with the labels
/// the claim needs (one `docker ps`: `take`'s fast path).
fn healthy_members(engine: Engine, pool: &str) -> Result<Vec<Member>, PoolError> {
    let filter = format!("label={LABEL_POOL}={pool}");
    let keys = [LABEL_IMAGE, LABEL_IMAGE_ID, LABEL_RUN_ARGS, LABEL_PROBE];
    // Tab-separated: JSON (the run args) writes a tab as `\t`.
    let format = ["{{.ID}}", "{{.Names}}"]
        .into_iter()
        .map(str::to_string)
        .chain(keys.iter().map(|key| format!("{{{{.Label \"{key}\"}}}}")))
        .collect::<Vec<_>>()
        .join("\t");
    let output = engine_call(
        engine,
        &[
            "ps",
            "--no-trunc",
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
            let id = fields.next()?.trim().to_string();
            let name = fields.next()?.trim().to_string();
            let mut labels = serde_json::Map::new();
            labels.insert(LABEL_POOL.to_string(), Value::from(pool));
            for (key, value) in keys.iter().zip(fields) {
                labels.insert(key.to_string(), Value::from(value));
            }
            Some(Member {
                id,
                ..Member::named(name, Value::from(labels))
            })
        })
        .filter(|found| found.slot().is_some())
        .collect();
    members.sort_by_key(Member::slot);
    Ok(members)
}

/// A member this taker won, and the slot it left.
pub(super) struct Claim {
    member: Member,
    slot: Option<u32>,
}

/// Claims the first of `candidates` that this process wins.
///
/// The rename is by id, so a new member that meanwhile took the slot's
/// name is never claimed by a taker that saw the old one. Docker refuses
/// a rename to the name a container already has (checked under the
/// container's lock), and the taken name stays, so of the takers that all
/// ask for `POOL-ID12-taken` exactly one succeeds, however late the others
/// come. Podman accepts it as a no-op: there a volume `POOL-ID12-claim`,
/// whose creation fails when it exists, is taken first and kept while the
/// member is; one a taker left when it died before its rename is removed
/// once older than [`CLAIM_VOLUME_STALE_SECONDS`]. The winner then records
/// its lease in a volume `POOL-ID12-lease-untilT-byP`.
fn claim_first(
    engine: Engine,
    candidates: &[Member],
    lease: Duration,
) -> Result<Option<Claim>, PoolError> {
    for candidate in candidates {
        let pool = candidate.label(LABEL_POOL).to_string();
        let claim = member::claimed_name(&pool, &candidate.id, CLAIM_SUFFIX);
        if engine == Engine::Podman && !claim_volume(engine, &pool, &claim)? {
            continue;
        }
        let taken = member::claimed_name(&pool, &candidate.id, TAKEN_SUFFIX);
        let renamed = crate::snapshot::engine::run_ok(engine, &["rename", &candidate.id, &taken]);
        if lost(engine, renamed)? {
            if engine == Engine::Podman {
                let _ = crate::snapshot::engine::run(engine, &["volume", "rm", "-f", &claim]);
            }
            continue;
        }
        let until = member::now_seconds().saturating_add(lease.as_secs());
        let holder = std::os::unix::process::parent_id();
        let lease_volume = member::lease_name(&pool, &candidate.id, until, holder);
        let label = format!("{LABEL_POOL}={pool}");
        engine_call(
            engine,
            &["volume", "create", "--label", &label, &lease_volume],
        )?;
        return Ok(Some(Claim {
            member: Member {
                name: taken,
                ..candidate.clone()
            },
            slot: candidate.slot(),
        }));
    }
    Ok(None)
}

/// Creates the podman claim volume; false when another taker holds it.
fn claim_volume(engine: Engine, pool: &str, claim: &str) -> Result<bool, PoolError> {
    let label = format!("{LABEL_POOL}={pool}");
    let create = ["volume", "create", "--label", label.as_str(), claim];
    if !lost(engine, crate::snapshot::engine::run_ok(engine, &create))? {
        return Ok(true);
    }
    let created = crate::snapshot::engine::run_ok(
        engine,
        &["volume", "inspect", "--format", "{{.CreatedAt}}", claim],
    )
    .ok()
    .and_then(|output| member::unix_seconds_of(String::from_utf8_lossy(&output.stdout).trim()));
    let stale = created
        .is_some_and(|at| at.saturating_add(CLAIM_VOLUME_STALE_SECONDS) < member::now_seconds());
    if !stale {
        return Ok(false);
    }
    let _ = crate::snapshot::engine::run(engine, &["volume", "rm", "-f", claim]);
    Ok(!lost(
        engine,
        crate::snapshot::engine::run_ok(engine, &create),
    )?)
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

/// After a claim: the name (or, with `json`, name, id, ports and address)
/// on stdout, then the replacement in the background. When the answer
/// cannot be given the claim is undone.
fn hand_out(engine: Engine, claim: &Claim, json: bool) -> Result<(), PoolError> {
    let claimed = &claim.member;
    let pool = claimed.label(LABEL_POOL).to_string();
    let answer = if json {
        engine_call(engine, &["container", "inspect", &claimed.id]).map(|output| {
            let all: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
            let found = member::parse_inspect(all.get(0).unwrap_or(&Value::Null));
            refill::take_json(&found).to_string()
        })
    } else {
        Ok(claimed.name.clone())
    };
    let written = answer.and_then(|line| {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .map_err(|error| {
                PoolError::Failed(format!(
                    "cannot write {} to stdout ({error}): the claim is undone, take again with an open stdout",
                    claimed.name
                ))
            })
    });
    if let Err(error) = written {
        undo_claim(engine, claim, &pool);
        return Err(error);
    }
    refill::spawn_detached(engine, &pool);
    Ok(())
}

/// Gives a claimed member back: to its slot when that is still free, else
/// removed (and its slot refilled).
fn undo_claim(engine: Engine, claim: &Claim, pool: &str) {
    let id = &claim.member.id;
    let back = claim.slot.map(|slot| member::slot_name(pool, slot));
    let returned = back.is_some_and(|name| {
        crate::snapshot::engine::run_ok(engine, &["rename", id, &name]).is_ok()
    });
    if returned {
        super::remove_volumes_of(engine, pool, id);
    } else {
        super::remove_member(engine, &claim.member);
        refill::spawn_detached(engine, pool);
    }
}
