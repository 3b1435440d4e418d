//! `dind-init pool` on the host (L1): containers of a prepared dind-init
//! image kept booted and ready, so a test takes a fresh environment in
//! milliseconds instead of waiting for a restore.
//!
//! No daemon: the pool is the engine's containers, labelled
//! `io.dind-init.pool=POOL` (with the image, its id, the run args and how
//! readiness is read), and its record (its size; see [`record`]), so it
//! survives the shell that filled it and serves any number of processes at
//! once. A member waits in a slot as `POOL-sK`; `take` claims a ready one
//! by renaming it (see [`member`] for the names: exactly one rename wins,
//! and the claim carries its lease), hands it out, then starts a detached
//! `pool refill` that fills the free slots (see [`refill`]). Ready means
//! `dind-init status` is healthy inside: Docker's health check where the
//! member has one (fill gives it one when the image has none), else an
//! exec of `dind-init status`.
//!
//! Built on the engine layer of `snapshot` (docker or podman, `--engine`).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

mod member;
mod record;
mod refill;
mod request;
mod take;

use member::{Member, MemberState};

use record::Record;
use refill::{Probe, Template};
pub use request::{Action, PoolRequest, SYNTAX, parse};

use crate::snapshot::Engine;

/// The pool a container belongs to.
pub const LABEL_POOL: &str = "io.dind-init.pool";
/// The image reference the pool was filled with.
pub const LABEL_IMAGE: &str = "io.dind-init.pool.image";
/// That image's id: replacements start from exactly it.
pub const LABEL_IMAGE_ID: &str = "io.dind-init.pool.image-id";
/// The RUN-ARGS of `fill`, a JSON array, for the replacements.
pub const LABEL_RUN_ARGS: &str = "io.dind-init.pool.run-args";
/// `health` or `exec`: how the member's readiness is read.
pub const LABEL_PROBE: &str = "io.dind-init.pool.probe";

/// Done.
pub const EXIT_OK: i32 = 0;
/// Did not happen: no ready member in time, a member that does not boot.
pub const EXIT_FAILED: i32 = 1;
/// Bad input: no such pool, an image that is not a dind-init image, a pool
/// name in use with another image, a container that is not a member.
pub const EXIT_BAD_INPUT: i32 = 4;
/// The engine is missing, not running, or one of its commands failed.
pub const EXIT_ENGINE: i32 = 5;

/// Why a pool command failed; each kind has its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    BadInput(String),
    Failed(String),
    Engine(String),
}

impl PoolError {
    fn exit_code(&self) -> i32 {
        match self {
            PoolError::BadInput(_) => EXIT_BAD_INPUT,
            PoolError::Failed(_) => EXIT_FAILED,
            PoolError::Engine(_) => EXIT_ENGINE,
        }
    }
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::BadInput(why) | PoolError::Failed(why) | PoolError::Engine(why) => {
                f.write_str(why)
            }
        }
    }
}

/// Runs the pool command; results on stdout, progress and errors on
/// stderr (the background refill's in the pool log); the exit code.
pub fn run(request: &PoolRequest) -> i32 {
    let engine = match crate::snapshot::engine::choose(request.engine) {
        Ok(engine) => engine,
        Err(why) => {
            say(&why);
            return EXIT_ENGINE;
        }
    };
    let result = match &request.action {
        Action::Fill {
            image,
            size,
            pool,
            wait,
            timeout,
            run_args,
        } => {
            let pool = pool.clone().unwrap_or_else(|| request::pool_name_of(image));
            fill(
                engine,
                image,
                *size,
                &pool,
                wait.then_some(*timeout),
                run_args,
            )
        }
        Action::Take {
            pool,
            timeout,
            lease,
            json,
        } => take::take(engine, pool, *timeout, *lease, *json),
        Action::Release { name } => release(engine, name),
        Action::List { pool, json } => list(engine, pool, *json),
        Action::Drain { pool, all } => drain(engine, pool, *all),
        Action::Gc { pool } => gc(engine, pool),
        Action::Refill { pool, timeout } => {
            refill::refill(engine, pool, *timeout).inspect_err(|error| {
                log_line(pool, &format!("refill failed: {error}"));
            })
        }
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(error) => {
            crate::client::print_failure("pool", &error);
            error.exit_code()
        }
    }
}

/// One line on stderr; a closed stderr loses it, never panics.
fn say(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "dind-init pool: {message}");
}

/// Where the background refills write: `DIND_INIT_POOL_LOG`, else
/// `$XDG_STATE_HOME/dind-init/pool.log`, else `~/.local/state/dind-init/pool.log`.
fn log_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DIND_INIT_POOL_LOG") {
        return Some(PathBuf::from(path));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    let dir = state.join("dind-init");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("pool.log"))
}

/// One line of the pool log, with the time (stderr when there is none).
fn log_line(pool: &str, message: &str) {
    use std::io::Write;
    let line = format!(
        "{} dind-init pool {pool}: {message}\n",
        crate::state::now_rfc3339()
    );
    let appended = log_path()
        .and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        })
        .is_some_and(|mut log| log.write_all(line.as_bytes()).is_ok());
    if !appended {
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// Runs the engine's CLI; a failure says whether the engine is down.
fn engine_call<S: AsRef<OsStr>>(engine: Engine, args: &[S]) -> Result<Output, PoolError> {
    crate::snapshot::engine::run_ok(engine, args).map_err(|why| {
        if engine_is_down(&why) {
            PoolError::Engine(format!(
                "the {} engine is not running or not reachable ({}): start it, or pass --engine",
                engine.program(),
                why.rsplit("failed: ").next().unwrap_or("").trim()
            ))
        } else {
            PoolError::Engine(why)
        }
    })
}

/// What docker and podman say when no engine answers.
fn engine_is_down(message: &str) -> bool {
    let lower = message.to_lowercase();
    [
        "cannot connect to the docker daemon",
        "is the docker daemon running",
        "cannot connect to podman",
        "unable to connect to podman",
        "connection refused",
    ]
    .iter()
    .any(|sign| lower.contains(sign))
}

fn no_such(message: &str) -> bool {
    let lower = message.to_lowercase();
    lower.contains("no such") || lower.contains("does not exist") || lower.contains("not known")
}

/// `ENGINE … inspect THING`'s JSON; a missing thing is bad input, said by `missing`.
fn inspect(
    engine: Engine,
    args: &[&str],
    missing: impl FnOnce() -> String,
) -> Result<Value, PoolError> {
    let output = crate::snapshot::engine::run(engine, args).map_err(PoolError::Engine)?;
    if !output.status.success() {
        if no_such(&String::from_utf8_lossy(&output.stderr)) {
            return Err(PoolError::BadInput(missing()));
        }
        engine_call(engine, args)?;
    }
    Ok(serde_json::from_slice(&output.stdout).unwrap_or(Value::Null))
}

/// The image's id, and the probe its members get; an image that is not a
/// dind-init image is refused.
fn inspect_image(
    engine: Engine,
    image: &str,
    run_args: &[String],
) -> Result<(String, Probe), PoolError> {
    let all = inspect(engine, &["image", "inspect", image], || {
        format!(
            "no image `{image}` in {}: build it (or load it) first",
            engine.program()
        )
    })?;
    let config = all.pointer("/0/Config").cloned().unwrap_or(Value::Null);
    let id = all
        .pointer("/0/Id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let entrypoint = config
        .pointer("/Entrypoint/0")
        .and_then(Value::as_str)
        .unwrap_or("");
    let overridden = run_args
        .iter()
        .position(|arg| arg == "--entrypoint")
        .and_then(|at| run_args.get(at.saturating_add(1)))
        .map(String::as_str);
    let runs = overridden.unwrap_or(entrypoint);
    if runs.rsplit('/').next() != Some("dind-init") {
        return Err(PoolError::BadInput(format!(
            "`{image}` is not a dind-init image (its ENTRYPOINT is `{}`): a pool member's PID 1 must be dind-init, whose status says when it is ready; build the image FROM one with ENTRYPOINT [\"/usr/local/bin/dind-init\"]",
            if runs.is_empty() { "none" } else { runs }
        )));
    }
    let has_health = config
        .pointer("/Healthcheck/Test")
        .and_then(Value::as_array)
        .is_some_and(|test| test.first().and_then(Value::as_str) != Some("NONE"));
    let probe = match engine {
        Engine::Podman => Probe::Exec,
        _ if run_args.iter().any(|arg| arg == "--no-healthcheck") => Probe::Exec,
        _ if has_health || refill::has_health_flags(run_args) => Probe::ImageHealth,
        _ => Probe::PoolHealth,
    };
    Ok((id, probe))
}

/// `fill`: members of `image` until `size` are ready or starting.
fn fill(
    engine: Engine,
    image: &str,
    size: u32,
    pool: &str,
    wait: Option<Duration>,
    run_args: &[String],
) -> Result<(), PoolError> {
    // The first engine command: says clearly when the engine is down.
    engine_call(engine, &["version"])?;
    let (image_id, probe) = inspect_image(engine, image, run_args)?;
    let members = member::list(engine, pool)?;
    let old = record::read(engine, pool)?;
    let holds = old
        .as_ref()
        .map(|old| (old.template.image.as_str(), old.template.image_id.as_str()))
        .into_iter()
        .chain(
            members
                .iter()
                .map(|m| (m.label(LABEL_IMAGE), m.label(LABEL_IMAGE_ID))),
        );
    if let Some((other, _)) = holds
        .filter(|(other, other_id)| *other != image || *other_id != image_id)
        .collect::<Vec<_>>()
        .first()
    {
        let rebuilt = if *other == image {
            " (an earlier build of it)"
        } else {
            ""
        };
        return Err(PoolError::BadInput(format!(
            "pool {pool} holds members of `{other}`{rebuilt}, not of this `{image}`: drain it first (`dind-init pool drain {pool} --all`) or give another --name"
        )));
    }
    let template = Template {
        pool: pool.to_string(),
        image: image.to_string(),
        image_id,
        run_args: run_args.to_vec(),
        probe,
    };
    record::write(engine, &template, size, old.as_ref())?;
    record::reset_budget(engine, pool);
    let record = Record {
        size,
        template,
        broken: None,
    };
    refill::reclaim_stale(engine, pool, &members, false)?;
    for found in &members {
        // Failed members kept for their logs, and the slots past a smaller size.
        let shrunk = found.slot().is_some_and(|slot| slot >= size);
        if found.is_failed() || shrunk {
            engine_call(engine, &["rm", "-f", "-v", &found.name])?;
        }
    }
    refill::tend(
        engine,
        &record.template,
        &member::list(engine, pool)?,
        false,
    )?;
    let started = refill::start_free_slots(engine, &record)?;
    let waiting: Vec<String> = member::list(engine, pool)?
        .into_iter()
        .filter(|m| m.slot().is_some())
        .map(|m| m.name)
        .collect();
    say(&format!(
        "pool {pool}: size {size}, {} waiting or starting ({} started now) of {image}",
        waiting.len(),
        started.len()
    ));
    print_line(pool)?;
    match wait {
        Some(timeout) => refill::watch(engine, &record, waiting, timeout, false),
        None => Ok(()),
    }
}

/// One line on stdout; a closed stdout is an error, never a panic.
fn print_line(line: &str) -> Result<(), PoolError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|error| PoolError::Failed(format!("cannot write to stdout: {error}")))
}

/// Removes a member with its anonymous volumes and its lease and claim
/// volumes; false when it was gone already (someone else removed it).
fn remove_member(engine: Engine, found: &Member) -> bool {
    let target = if found.id.is_empty() {
        &found.name
    } else {
        &found.id
    };
    let removed = crate::snapshot::engine::run_ok(engine, &["rm", "-f", "-v", target]).is_ok();
    remove_volumes_of(engine, found.label(LABEL_POOL), &found.id);
    removed
}

/// The lease and claim volumes of the container `id` of `pool`.
fn remove_volumes_of(engine: Engine, pool: &str, id: &str) {
    if id.is_empty() {
        return;
    }
    let Ok(volumes) = member::volumes(engine, pool) else {
        return;
    };
    let mut args = vec!["volume".to_string(), "rm".into(), "-f".into()];
    args.extend(member::volumes_of(pool, id, &volumes).into_iter().cloned());
    if args.len() > 3 {
        let _ = crate::snapshot::engine::run(engine, &args);
    }
}

/// `release`: removes a member with its anonymous volumes.
fn release(engine: Engine, name: &str) -> Result<(), PoolError> {
    let all = inspect(engine, &["container", "inspect", name], || {
        format!(
            "no container `{name}` in {}: check the name `dind-init pool take` printed",
            engine.program()
        )
    })?;
    let found = member::parse_inspect(all.get(0).unwrap_or(&Value::Null));
    if found.label(LABEL_POOL).is_empty() {
        return Err(PoolError::BadInput(format!(
            "`{name}` is not a pool member (no label {LABEL_POOL}): not removed; remove it with `{} rm -f -v {name}` if you mean it",
            engine.program()
        )));
    }
    engine_call(engine, &["rm", "-f", "-v", name])?;
    remove_volumes_of(engine, found.label(LABEL_POOL), &found.id);
    Ok(())
}

/// `ls`: the pool's size and counts, then each member with its state and
/// age (and a claim's lease). Stale claims are reclaimed first.
fn list(engine: Engine, pool: &str, json: bool) -> Result<(), PoolError> {
    engine_call(engine, &["version"])?;
    let found_record = record::read(engine, pool)?;
    refill::reclaim_stale(engine, pool, &member::list(engine, pool)?, false)?;
    let mut members = member::list(engine, pool)?;
    let volumes = member::volumes(engine, pool)?;
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<(Member, MemberState)> = members
        .into_iter()
        .map(|found| {
            let state = refill::state_of(engine, &found);
            (found, state)
        })
        .collect();
    let (waiting, starting, taken) = record::counts(&rows);
    let size = found_record.as_ref().map(|r| r.size);
    let broken = found_record.as_ref().and_then(|r| r.broken.clone());
    if json {
        let all: Vec<Value> = rows
            .iter()
            .map(|(found, state)| {
                let lease = found.lease(&volumes);
                serde_json::json!({
                    "name": found.name,
                    "id": found.id,
                    "state": state.word(),
                    "age_seconds": found.age_seconds(),
                    "reason": match state { MemberState::Unhealthy(why) => Value::from(why.as_str()), _ => Value::Null },
                    "lease_until": lease.map(|(until, _)| until),
                    "holder_pid": lease.map(|(_, holder)| holder),
                })
            })
            .collect();
        let summary = serde_json::json!({
            "pool": pool,
            "size": size,
            "waiting": waiting,
            "starting": starting,
            "taken": taken,
            "broken": broken,
            "members": all,
        });
        return print_line(&summary.to_string());
    }
    if found_record.is_none() && rows.is_empty() {
        say(&format!("pool {pool} has no members"));
        return Ok(());
    }
    let mut lines = vec![format!(
        "pool {pool}: size {}, {waiting} waiting, {starting} starting, {taken} taken{}",
        size.map_or("unknown (fill it again)".to_string(), |n| n.to_string()),
        broken.map_or(String::new(), |why| format!("; broken: {why}"))
    )];
    lines.push(format!(
        "{:<40} {:<10} {:>7}  REASON",
        "NAME", "STATE", "AGE"
    ));
    for (found, state) in &rows {
        let why = match state {
            MemberState::Unhealthy(why) => why.clone(),
            _ => found
                .lease(&volumes)
                .map_or(String::new(), |(until, holder)| {
                    format!(
                        "lease ends in {} s, taken for pid {holder}",
                        until.saturating_sub(member::now_seconds())
                    )
                }),
        };
        lines.push(format!(
            "{:<40} {:<10} {:>6}s  {why}",
            found.name,
            state.word(),
            found.age_seconds()
        ));
    }
    print_line(&lines.join("\n"))
}

/// `gc`: removes what nobody holds — claims whose lease ended, and lease
/// or claim volumes whose member is gone — never a member in use.
fn gc(engine: Engine, pool: &str) -> Result<(), PoolError> {
    engine_call(engine, &["version"])?;
    let stale = refill::reclaim_stale(engine, pool, &member::list(engine, pool)?, false)?;
    remove_orphan_volumes(engine, pool, &member::list(engine, pool)?);
    say(&format!("pool {pool}: reclaimed {stale} stale claim(s)"));
    Ok(())
}

/// The pool's lease and claim volumes except those of `keep_for`.
fn remove_orphan_volumes(engine: Engine, pool: &str, keep_for: &[Member]) {
    let Ok(volumes) = member::volumes(engine, pool) else {
        return;
    };
    for volume in &volumes {
        let kept = keep_for
            .iter()
            .any(|m| member::volumes_of(pool, &m.id, std::slice::from_ref(volume)).len() == 1);
        if !kept {
            let _ = crate::snapshot::engine::run(engine, &["volume", "rm", "-f", volume]);
        }
    }
}

/// `drain`: removes the pool's record (so refills start nothing more),
/// the waiting members, failed ones and stale claims (all members with
/// `all`), and the ones the refills in flight on this host start
/// meanwhile, until none is left. A claim in its lease is kept without `all`.
fn drain(engine: Engine, pool: &str, all: bool) -> Result<(), PoolError> {
    engine_call(engine, &["version"])?;
    record::remove(engine, pool)?;
    let deadline = Instant::now().checked_add(Duration::from_secs(120));
    let mut removed = 0usize;
    let now = member::now_seconds();
    let default_lease = request::DEFAULT_LEASE.as_secs();
    let volumes = member::volumes(engine, pool)?;
    let drained =
        |m: &Member| all || !m.is_taken() || m.is_stale_claim(&volumes, now, default_lease);
    loop {
        let in_flight = refill::refills_in_flight(pool);
        for found in member::list(engine, pool)?.iter().filter(|m| drained(m)) {
            if remove_member(engine, found) {
                removed = removed.saturating_add(1);
            }
        }
        // A refill seen before this listing may have started one after it.
        if in_flight.is_empty() {
            break;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(PoolError::Failed(format!(
                "refills of pool {pool} still running after 120 s (pids {in_flight:?}): run drain again"
            )));
        }
        std::thread::sleep(take::TAKE_POLL);
    }
    let keep: Vec<Member> = if all {
        Vec::new()
    } else {
        member::list(engine, pool)?
    };
    remove_orphan_volumes(engine, pool, &keep);
    say(&format!("pool {pool}: removed {removed} member(s)"));
    Ok(())
}
