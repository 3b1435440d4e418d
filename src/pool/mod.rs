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
mod take;

use member::{Member, MemberState};

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
        } => take::take(engine, pool, *timeout, *json),
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
        std::thread::sleep(take::TAKE_POLL);
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
