//! `dind-init snapshot CONTAINER IMAGE`: run on the host (L1), it commits a
//! running container whose PID 1 is dind-init, the safe way: quiesce it
//! through `ENGINE exec`, refuse unless dind-init reports it commit-safe,
//! `ENGINE commit` with labels that say what was committed, then resume the
//! container (default) or remove it. `ENGINE` is `docker` or `podman`.
//!
//! A client like `status`, never PID 1; still, no panics on input: every
//! failure is one line naming the thing and what to do, and an exit code a
//! script can branch on (see [`SnapshotError::exit_code`] and the README).
//! The in-container dind-init may be another version than this one, so its
//! status JSON is read field by field, not into this version's `Status`.

use std::ffi::OsStr;
use std::fmt;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

pub mod engine;
mod request;
mod verdict;

pub use request::{After, Engine, SYNTAX, SnapshotRequest, parse};
pub use verdict::labels;
use verdict::{check_commit_safe, check_still_quiesced};

/// Committed, then resumed or removed.
pub const EXIT_COMMITTED: i32 = 0;
/// Not committed: the container quiesced but is not commit-safe (failed
/// stops, strays, timeout), or a resume came between the check and the commit.
pub const EXIT_REFUSED: i32 = 1;
/// Not committed: no dind-init answers inside the container.
pub const EXIT_NO_DIND_INIT: i32 = 3;
/// Not committed: no such container, or it is not running.
pub const EXIT_NO_CONTAINER: i32 = 4;
/// Not committed: the engine is missing or one of its commands (the commit included) failed.
pub const EXIT_ENGINE: i32 = 5;
/// Committed, but the resume (or the removal) afterwards failed.
pub const EXIT_AFTER_COMMIT: i32 = 6;

/// Prefix of the labels the commit sets.
pub const LABEL_PREFIX: &str = "io.dind-init.";

/// Why a snapshot did not (fully) happen; each kind has its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Quiesced but not commit-safe; nothing was committed.
    Refused(String),
    NoDindInit(String),
    NoContainer(String),
    Engine(String),
    /// The image was committed; what came after failed.
    AfterCommit(String),
}

impl SnapshotError {
    /// The same error, its message followed by `; NOTE`.
    fn with_note(self, note: &str) -> Self {
        let add = |why: String| format!("{why}; {note}");
        match self {
            SnapshotError::Refused(why) => SnapshotError::Refused(add(why)),
            SnapshotError::NoDindInit(why) => SnapshotError::NoDindInit(add(why)),
            SnapshotError::NoContainer(why) => SnapshotError::NoContainer(add(why)),
            SnapshotError::Engine(why) => SnapshotError::Engine(add(why)),
            SnapshotError::AfterCommit(why) => SnapshotError::AfterCommit(add(why)),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            SnapshotError::Refused(_) => EXIT_REFUSED,
            SnapshotError::NoDindInit(_) => EXIT_NO_DIND_INIT,
            SnapshotError::NoContainer(_) => EXIT_NO_CONTAINER,
            SnapshotError::Engine(_) => EXIT_ENGINE,
            SnapshotError::AfterCommit(_) => EXIT_AFTER_COMMIT,
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Refused(why)
            | SnapshotError::NoDindInit(why)
            | SnapshotError::NoContainer(why)
            | SnapshotError::Engine(why)
            | SnapshotError::AfterCommit(why) => f.write_str(why),
        }
    }
}

/// Runs the snapshot; prints the committed image's id on stdout, progress
/// and errors on stderr; returns the exit code.
pub fn run(request: &SnapshotRequest) -> i32 {
    let engine = match engine::choose(request.engine) {
        Ok(engine) => engine,
        Err(why) => {
            say(&why);
            return EXIT_ENGINE;
        }
    };
    match snapshot(engine, request) {
        Ok(id) => {
            println!("{id}");
            EXIT_COMMITTED
        }
        Err(error) => {
            crate::client::print_failure("snapshot", &error);
            error.exit_code()
        }
    }
}

fn say(message: &str) {
    eprintln!("dind-init snapshot: {message}");
}

fn snapshot(engine: Engine, request: &SnapshotRequest) -> Result<String, SnapshotError> {
    let container = request.container.as_str();
    let cli = engine.program();
    require_running(engine, container)?;

    say(&format!("quiescing {container} ({cli} exec)"));
    let quiesce = in_container(engine, request, "quiesce", request.timeout)?;
    // From here on the container may be quiesced (or still quiescing):
    // every failure until the commit resumes it (see `resume_after`).
    let checked = status_json(engine, container)
        .and_then(|status| {
            check_commit_safe(quiesce.status.code(), &status)
                .map_err(|why| not_commit_safe(container, &why))?;
            let labels = labels(&status, &crate::state::now_rfc3339())
                .map_err(|why| not_commit_safe(container, &why))?;
            Ok((status, labels))
        })
        .map_err(|error| resume_after(engine, request, error))?;
    let (status, labels) = checked;

    let mut args = vec!["commit".to_string()];
    for (key, value) in &labels {
        args.push("--change".to_string());
        args.push(label_instruction(key, value));
    }
    args.push(container.to_string());
    args.push(request.image.clone());
    say(&format!("committing {container} as {}", request.image));
    let commit = engine_ok(engine, &args).map_err(|error| resume_after(engine, request, error))?;
    let id = engine::last_line(&commit);

    // Nothing kept a resume (SIGUSR2, another client) from running between
    // the check and the commit: the image holds the quiesce that was
    // checked only if that quiesce is still the container's state.
    let still = status_json(engine, container).and_then(|now| {
        check_still_quiesced(&status, &now).map_err(|why| {
            SnapshotError::Refused(format!(
                "{container} changed during the commit ({why}): not committed"
            ))
        })
    });
    if let Err(error) = still {
        return Err(error.with_note(&remove_image(engine, &id)));
    }

    match request.after {
        After::Resume => resume(engine, request, request.timeout),
        After::Remove => {
            say(&format!("removing {container}"));
            // -v: the container's anonymous volumes go with it (an L2's
            // storage volume, the `VOLUME` of an image FROM docker:dind).
            engine_ok(engine, &["rm", "-f", "-v", container]).map(|_| ())
        }
    }
    .map_err(|error| {
        SnapshotError::AfterCommit(format!(
            "committed {} ({id}), but then: {error}",
            request.image
        ))
    })?;
    Ok(id)
}

fn not_commit_safe(container: &str, why: &str) -> SnapshotError {
    SnapshotError::Refused(format!(
        "{container} is not commit-safe ({why}): not committed"
    ))
}

/// Nothing was committed after the quiesce was asked for: resumes the
/// container and adds to `error` whether it was, or the command that does
/// it. A dind-init still quiescing (the quiesce outlasted `--timeout`)
/// resumes once the quiesce ends, so the resume gets a second `--timeout`
/// for the quiesce's rest beside its own.
fn resume_after(engine: Engine, request: &SnapshotRequest, error: SnapshotError) -> SnapshotError {
    let timeout = request.timeout.saturating_mul(2);
    let outcome = match resume(engine, request, timeout) {
        Ok(()) => "the container was resumed".to_string(),
        Err(why) => format!(
            "the container may still be quiesced ({why}): resume it with `{} exec {} dind-init resume`",
            engine.program(),
            request.container
        ),
    };
    error.with_note(&outcome)
}

/// Removes the image `id` that must not be kept; says whether it was.
fn remove_image(engine: Engine, id: &str) -> String {
    match engine_ok(engine, &["rmi", id]) {
        Ok(_) => format!("the image {id} was removed"),
        Err(why) => format!(
            "the image {id} could not be removed ({why}): remove it with `{} rmi {id}`",
            engine.program()
        ),
    }
}

/// `LABEL key="value"` for `commit --change`, which the engine parses as a
/// Dockerfile line: a newline would start a new instruction, a `"` end the
/// value, a `$` expand a variable. The values are checked by [`labels`]
/// already; the quoting escapes what a Dockerfile string treats specially
/// anyway, so no value can ever leave its quotes.
fn label_instruction(key: &str, value: &str) -> String {
    let mut quoted = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' | '"' | '$' => {
                quoted.push('\\');
                quoted.push(c);
            }
            c if c.is_control() => quoted.push(' '),
            c => quoted.push(c),
        }
    }
    format!("LABEL {key}=\"{quoted}\"")
}

/// Fails unless the container exists and runs.
fn require_running(engine: Engine, container: &str) -> Result<(), SnapshotError> {
    let cli = engine.program();
    let inspect = engine_output(
        engine,
        &[
            "container",
            "inspect",
            "--format",
            "{{.State.Running}} {{.State.Paused}}",
            container,
        ],
    )?;
    if !inspect.status.success() {
        let stderr = String::from_utf8_lossy(&inspect.stderr);
        let lower = stderr.to_lowercase();
        if lower.contains("no such") || lower.contains("does not exist") {
            return Err(SnapshotError::NoContainer(format!(
                "no container `{container}` in {cli}: check the name with `{cli} ps`"
            )));
        }
        return Err(SnapshotError::Engine(format!(
            "`{cli} container inspect {container}` failed: {}",
            stderr.trim()
        )));
    }
    // (podman reports a paused container as not running, docker as running)
    match String::from_utf8_lossy(&inspect.stdout).trim() {
        "true false" => Ok(()),
        "true true" | "false true" => Err(SnapshotError::NoContainer(format!(
            "container `{container}` is paused: `{cli} unpause {container}` first"
        ))),
        _ => Err(SnapshotError::NoContainer(format!(
            "container `{container}` is not running: start it, or commit a stopped container with `{cli} commit`"
        ))),
    }
}

/// The answer of `dind-init status --json` inside the container (it exits
/// 1 when not healthy, which a quiesced container is not, and still prints).
fn status_json(engine: Engine, container: &str) -> Result<Value, SnapshotError> {
    let output = exec(engine, container, &["dind-init", "status", "--json"])?;
    serde_json::from_slice(&output.stdout).map_err(|error| {
        SnapshotError::NoDindInit(format!(
            "`dind-init status --json` in {container} gave no status ({error}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    })
}

/// `dind-init resume` in the container, waiting up to `timeout`.
fn resume(
    engine: Engine,
    request: &SnapshotRequest,
    timeout: Duration,
) -> Result<(), SnapshotError> {
    let container = request.container.as_str();
    say(&format!("resuming {container}"));
    let output = in_container(engine, request, "resume", timeout)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(SnapshotError::Engine(format!(
            "`dind-init resume` in {container} did not bring it back healthy (exit {}): see `{} logs {container}`",
            output.status.code().unwrap_or(-1),
            engine.program()
        )))
    }
}

/// `dind-init SUBCOMMAND --timeout S` in the container, its lines relayed
/// to our stderr.
fn in_container(
    engine: Engine,
    request: &SnapshotRequest,
    subcommand: &str,
    timeout: Duration,
) -> Result<Output, SnapshotError> {
    let timeout = format!("{}", timeout.as_secs_f64());
    let output = exec(
        engine,
        &request.container,
        &["dind-init", subcommand, "--timeout", &timeout],
    )?;
    relay(&output.stdout);
    relay(&output.stderr);
    Ok(output)
}

/// `ENGINE exec CONTAINER ARGS`; a missing dind-init (exec's 126/127, or
/// the client's own 3) is [`SnapshotError::NoDindInit`].
fn exec(engine: Engine, container: &str, args: &[&str]) -> Result<Output, SnapshotError> {
    let mut argv = vec!["exec", container];
    argv.extend_from_slice(args);
    let output = engine_output(engine, &argv)?;
    match output.status.code() {
        Some(126 | 127) => Err(SnapshotError::NoDindInit(format!(
            "cannot run dind-init in {container}: {}; is dind-init its PID 1, on its PATH?",
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
        Some(3) => Err(SnapshotError::NoDindInit(format!(
            "no dind-init answers in {container}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
        _ => Ok(output),
    }
}

/// Runs the engine's CLI; only a failure to start it is an error here.
fn engine_output<S: AsRef<OsStr>>(engine: Engine, args: &[S]) -> Result<Output, SnapshotError> {
    engine::run(engine, args).map_err(SnapshotError::Engine)
}

/// Runs the engine's CLI; a non-zero exit is an error naming the command.
fn engine_ok<S: AsRef<OsStr>>(engine: Engine, args: &[S]) -> Result<Output, SnapshotError> {
    engine::run_ok(engine, args).map_err(SnapshotError::Engine)
}

/// Passes the in-container client's lines on to our stderr.
fn relay(bytes: &[u8]) {
    for line in String::from_utf8_lossy(bytes).lines() {
        eprintln!("  {line}");
    }
}
