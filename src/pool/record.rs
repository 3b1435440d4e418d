//! What a pool is, kept in the engine beside its members: the record
//! (`POOL.pool`: its size and what members start from) and the replacement
//! budget (`POOL.failK` for each failed boot replaced, `POOL.broken` once
//! the budget is spent, with the line `take` then fails with).
//!
//! Each is a container created from the pool's image and never started,
//! labelled `io.dind-init.pool.record=POOL` (not a member: `ls`, `take`
//! and `release` do not see it). A container because its name is given
//! out once by the engine: of the noticers of failures racing for
//! `POOL.fail2` exactly one creates it, so the budget is one for the
//! whole pool, whoever notices. `fill` writes the record and resets the
//! budget; `drain` removes them.

use super::member::{Member, MemberState, inspect_all};
use super::refill::{Probe, Template};
use super::{LABEL_IMAGE, LABEL_IMAGE_ID, LABEL_PROBE, LABEL_RUN_ARGS, PoolError, engine_call};
use crate::snapshot::Engine;

/// Marks the pool's record and budget containers, with the pool's name.
pub const LABEL_RECORD: &str = "io.dind-init.pool.record";
/// The pool's size, on its record.
pub const LABEL_SIZE: &str = "io.dind-init.pool.size";
/// On `POOL.broken`: the line `take` fails with.
pub const LABEL_BROKEN: &str = "io.dind-init.pool.broken";

/// Failed boots replaced between two fills before the pool is broken.
pub const REPLACEMENT_BUDGET: u32 = 3;

/// A pool as its record says.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Members waiting or starting never exceed it.
    pub size: u32,
    /// What members start from.
    pub template: Template,
    /// Why the pool is broken (the budget spent): `take` fails with it and
    /// nothing starts until the next `fill`.
    pub broken: Option<String>,
}

fn record_name(pool: &str) -> String {
    format!("{pool}.pool")
}

fn budget_name(pool: &str, spent: u32) -> String {
    format!("{pool}.fail{spent}")
}

fn broken_name(pool: &str) -> String {
    format!("{pool}.broken")
}

/// The record and budget containers of `pool`.
fn containers(engine: Engine, pool: &str) -> Result<Vec<Member>, PoolError> {
    let filter = format!("label={LABEL_RECORD}={pool}");
    inspect_all(engine, &filter)
}

/// The pool's record; `None` when it was never filled (or was drained).
pub fn read(engine: Engine, pool: &str) -> Result<Option<Record>, PoolError> {
    let all = containers(engine, pool)?;
    let Some(found) = all.iter().find(|c| c.name == record_name(pool)) else {
        return Ok(None);
    };
    let label = |key: &str| found.label(key);
    let template = Template {
        pool: pool.to_string(),
        image: label(LABEL_IMAGE).to_string(),
        image_id: label(LABEL_IMAGE_ID).to_string(),
        run_args: serde_json::from_str(label(LABEL_RUN_ARGS)).unwrap_or_default(),
        probe: Probe::ALL
            .into_iter()
            .find(|probe| probe.word() == label(LABEL_PROBE))
            .unwrap_or(Probe::Exec),
    };
    let broken = all
        .iter()
        .find(|c| c.name == broken_name(pool))
        .map(|c| c.label(LABEL_BROKEN).to_string());
    Ok(Some(Record {
        size: label(LABEL_SIZE).parse().unwrap_or(0),
        template,
        broken,
    }))
}

/// `ENGINE create --name NAME` of the pool's image with `labels`; false
/// when the name is in use (someone else created it first).
fn create_marker(
    engine: Engine,
    template: &Template,
    name: &str,
    labels: &[(&str, String)],
) -> Result<bool, PoolError> {
    let mut args: Vec<String> = vec!["create".into(), "--name".into(), name.into()];
    let record = format!("{LABEL_RECORD}={}", template.pool);
    args.extend(["--label".to_string(), record]);
    for (key, value) in labels {
        args.extend(["--label".to_string(), format!("{key}={value}")]);
    }
    args.push(template.image_id.clone());
    match crate::snapshot::engine::run_ok(engine, &args) {
        Ok(_) => Ok(true),
        Err(why) if why.contains("already in use") => Ok(false),
        Err(_) => engine_call(engine, &args).map(|_| false),
    }
}

/// Writes the record of `size` members of `template`, replacing one that
/// says otherwise.
pub fn write(
    engine: Engine,
    template: &Template,
    size: u32,
    old: Option<&Record>,
) -> Result<(), PoolError> {
    if old.is_some_and(|old| old.size == size && old.template == *template) {
        return Ok(());
    }
    let name = record_name(&template.pool);
    if old.is_some() {
        engine_call(engine, &["rm", "-f", "-v", &name])?;
    }
    let mut labels: Vec<(&str, String)> = template
        .labels()
        .into_iter()
        .filter(|(key, _)| *key != super::LABEL_POOL)
        .collect();
    labels.push((LABEL_SIZE, size.to_string()));
    create_marker(engine, template, &name, &labels).map(|_| ())
}

/// Spends one replacement of the budget; false when it is spent.
pub fn spend_one(engine: Engine, template: &Template) -> Result<bool, PoolError> {
    for spent in 1..=REPLACEMENT_BUDGET {
        if create_marker(engine, template, &budget_name(&template.pool, spent), &[])? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Marks the pool broken: `take` fails with `why` until the next `fill`.
pub fn mark_broken(engine: Engine, template: &Template, why: &str) -> Result<(), PoolError> {
    let name = broken_name(&template.pool);
    create_marker(engine, template, &name, &[(LABEL_BROKEN, why.to_string())]).map(|_| ())
}

/// A fresh budget (and the pool no longer broken), as after `fill`.
pub fn reset_budget(engine: Engine, pool: &str) {
    let mut args = vec!["rm".to_string(), "-f".into(), "-v".into()];
    args.extend((1..=REPLACEMENT_BUDGET).map(|spent| budget_name(pool, spent)));
    args.push(broken_name(pool));
    // Missing markers make the exit non-zero; the others are gone anyway.
    let _ = crate::snapshot::engine::run(engine, &args);
}

/// Removes the record and the budget: the pool is no more (`drain`).
pub fn remove(engine: Engine, pool: &str) -> Result<(), PoolError> {
    for found in containers(engine, pool)? {
        engine_call(engine, &["rm", "-f", "-v", &found.id])?;
    }
    Ok(())
}

/// How the pool stands, for `ls`: ready members waiting, members starting,
/// members taken.
pub fn counts(rows: &[(Member, MemberState)]) -> (usize, usize, usize) {
    let in_slot = |word: &str| {
        rows.iter()
            .filter(|(found, state)| found.slot().is_some() && state.word() == word)
            .count()
    };
    let taken = rows.iter().filter(|(found, _)| found.is_taken()).count();
    (in_slot("ready"), in_slot("starting"), taken)
}
