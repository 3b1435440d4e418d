//! `dind-init pool` on the host (L1): containers of a prepared dind-init
//! image kept booted and ready, so a test takes a fresh environment in
//! milliseconds instead of waiting for a restore.
//!
//! No daemon: the pool is the engine's containers, labelled
//! `io.dind-init.pool=POOL` (with the image, its id, the run args and how
//! readiness is read), so it survives the shell that filled it and serves
//! any number of processes at once. A member waits as `POOL-XXXXXXXX`;
//! `take` claims a ready one by renaming it to `POOL-XXXXXXXX-taken` — the
//! same new name for every taker, so exactly one rename wins and the losers
//! try the next — then starts one replacement in a detached `pool refill`
//! process (see [`refill`]). Ready means `dind-init status` is healthy
//! inside: Docker's health check where the member has one (fill gives it
//! one when the image has none), else an exec of `dind-init status`.
//!
//! Built on the engine layer of `snapshot` (docker or podman, `--engine`).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

mod member;
mod refill;
mod request;

use member::{Member, MemberState, TAKEN_SUFFIX};

/// The podman volume a taker creates to claim a member (see `claim_first`).
const CLAIM_SUFFIX: &str = "-claim";
use refill::{Probe, Template};
pub use request::{Action, PoolRequest, parse};

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

/// How often `take` looks again while no member is ready.
const TAKE_POLL: Duration = Duration::from_millis(100);
/// How often `take`, while waiting, also tends the pool (unhealthy members
/// out, a refill when nothing is on its way).
const TAKE_TEND_EVERY: Duration = Duration::from_secs(2);

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
            json,
        } => take(engine, pool, *timeout, *json),
        Action::Release { name } => release(engine, name),
        Action::List { pool, json } => list(engine, pool, *json),
        Action::Drain { pool, all } => drain(engine, pool, *all),
        Action::Refill {
            pool,
            count,
            template,
            timeout,
        } => refill::refill(engine, pool, *count, template, *timeout).inspect_err(|error| {
            log_line(pool, &format!("refill failed: {error}"));
        }),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(error) => {
            say(&format!("{error}"));
            error.exit_code()
        }
    }
}

fn say(message: &str) {
    eprintln!("dind-init pool: {message}");
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

/// One line of the pool log (the refill's stderr is that file), with the time.
fn log_line(pool: &str, message: &str) {
    eprintln!(
        "{} dind-init pool {pool}: {message}",
        crate::state::now_rfc3339()
    );
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
    if let Some(other) = members
        .iter()
        .find(|m| m.label(LABEL_IMAGE) != image || m.label(LABEL_IMAGE_ID) != image_id)
    {
        let rebuilt = if other.label(LABEL_IMAGE) == image {
            " (an earlier build of it)"
        } else {
            ""
        };
        return Err(PoolError::BadInput(format!(
            "pool {pool} holds members of `{}`{rebuilt}, not of this `{image}`: drain it first (`dind-init pool drain {pool} --all`) or give another --name",
            other.label(LABEL_IMAGE)
        )));
    }
    let template = Template {
        pool: pool.to_string(),
        image: image.to_string(),
        image_id,
        run_args: run_args.to_vec(),
        probe,
    };
    refill::tend(engine, &members, false);
    let members = member::list(engine, pool)?;
    let mut waiting: Vec<String> = members
        .iter()
        .filter(|m| !m.is_taken())
        .map(|m| m.name.clone())
        .collect();
    let have = u32::try_from(waiting.len()).unwrap_or(u32::MAX);
    for _ in have..size {
        waiting.push(template.start_member(engine)?);
    }
    say(&format!(
        "pool {pool}: {} waiting ({} started now) of {image}",
        waiting.len(),
        size.saturating_sub(have)
    ));
    println!("{pool}");
    match wait {
        Some(timeout) => refill::watch(engine, &template, waiting, timeout, false),
        None => Ok(()),
    }
}

/// `take`: claims a ready member, starts a replacement, prints its name.
fn take(engine: Engine, pool: &str, timeout: Duration, json: bool) -> Result<(), PoolError> {
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
    Ok(())
}

/// `ls`: each member with its state and age.
fn list(engine: Engine, pool: &str, json: bool) -> Result<(), PoolError> {
    engine_call(engine, &["version"])?;
    let mut members = member::list(engine, pool)?;
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<(Member, MemberState)> = members
        .into_iter()
        .map(|found| {
            let state = refill::state_of(engine, &found);
            (found, state)
        })
        .collect();
    if json {
        let all: Vec<Value> = rows
            .iter()
            .map(|(found, state)| {
                serde_json::json!({
                    "name": found.name,
                    "id": found.id,
                    "state": state.word(),
                    "age_seconds": found.age_seconds(),
                    "reason": match state { MemberState::Unhealthy(why) => Value::from(why.as_str()), _ => Value::Null },
                })
            })
            .collect();
        println!("{}", Value::from(all));
        return Ok(());
    }
    if rows.is_empty() {
        say(&format!("pool {pool} has no members"));
        return Ok(());
    }
    println!("{:<40} {:<10} {:>7}  REASON", "NAME", "STATE", "AGE");
    for (found, state) in &rows {
        let why = match state {
            MemberState::Unhealthy(why) => why.as_str(),
            _ => "",
        };
        println!(
            "{:<40} {:<10} {:>6}s  {why}",
            found.name,
            state.word(),
            found.age_seconds()
        );
    }
    Ok(())
}

/// `drain`: removes the waiting members (all with `all`), and the ones the
/// refills in flight on this host start meanwhile, until none is left.
fn drain(engine: Engine, pool: &str, all: bool) -> Result<(), PoolError> {
    engine_call(engine, &["version"])?;
    let deadline = Instant::now().checked_add(Duration::from_secs(120));
    let mut removed = 0usize;
    loop {
        let members = member::list(engine, pool)?;
        for found in members.iter().filter(|m| all || !m.is_taken()) {
            if crate::snapshot::engine::run_ok(engine, &["rm", "-f", "-v", &found.name]).is_ok() {
                removed = removed.saturating_add(1);
            }
        }
        let in_flight = refill::refills_in_flight(pool);
        if in_flight.is_empty() {
            break;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(PoolError::Failed(format!(
                "refills of pool {pool} still running after 120 s (pids {in_flight:?}): run drain again"
            )));
        }
        std::thread::sleep(TAKE_POLL);
    }
    // A refill may have started one between our last listing and its end.
    let left: Vec<Member> = member::list(engine, pool)?
        .into_iter()
        .filter(|m| all || !m.is_taken())
        .collect();
    for found in &left {
        if crate::snapshot::engine::run_ok(engine, &["rm", "-f", "-v", &found.name]).is_ok() {
            removed = removed.saturating_add(1);
        }
    }
    // Claims a taker left behind (it died between its claim and its rename).
    let filter = format!("label={LABEL_POOL}={pool}");
    if engine == Engine::Podman
        && let Ok(volumes) =
            crate::snapshot::engine::run_ok(engine, &["volume", "ls", "-q", "--filter", &filter])
    {
        for volume in String::from_utf8_lossy(&volumes.stdout).split_whitespace() {
            let _ = crate::snapshot::engine::run(engine, &["volume", "rm", "-f", volume]);
        }
    }
    say(&format!("pool {pool}: removed {removed} member(s)"));
    Ok(())
}
