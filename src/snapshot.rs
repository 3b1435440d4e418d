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

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::cli::{UsageError, flag_value, parse_seconds, split_flag};

/// Committed, then resumed or removed.
pub const EXIT_COMMITTED: i32 = 0;
/// Not committed: the container quiesced but is not commit-safe (failed stops, strays, timeout).
pub const EXIT_REFUSED: i32 = 1;
/// Not committed: no dind-init answers inside the container.
pub const EXIT_NO_DIND_INIT: i32 = 3;
/// Not committed: no such container, or it is not running.
pub const EXIT_NO_CONTAINER: i32 = 4;
/// Not committed: the engine is missing or one of its commands failed.
pub const EXIT_ENGINE: i32 = 5;
/// Committed, but the resume (or the removal) afterwards failed.
pub const EXIT_AFTER_COMMIT: i32 = 6;

/// Seconds the quiesce and the resume may each take, unless `--timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Prefix of the labels the commit sets.
pub const LABEL_PREFIX: &str = "io.dind-init.";

/// The container engine whose CLI runs the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// In the order the default is looked for on PATH.
    const ALL: [Engine; 2] = [Engine::Docker, Engine::Podman];

    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// The first engine whose program is an executable file in one of
    /// `path`'s directories (docker before podman).
    pub fn find_on_path(path: Option<&OsStr>) -> Option<Engine> {
        let path = path?;
        Engine::ALL.into_iter().find(|engine| {
            std::env::split_paths(path).any(|dir| is_executable(&dir.join(engine.program())))
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Engine::ALL
            .into_iter()
            .find(|engine| engine.program() == text)
            .ok_or_else(|| format!("`{text}` is not `docker` or `podman`"))
    }
}

/// What happens to the container after a successful commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// `dind-init resume`: the container runs its starts again and goes on.
    Resume,
    /// `ENGINE rm -f`: the committed image is all that is kept.
    Remove,
}

/// A parsed `dind-init snapshot` command line.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRequest {
    /// Name or id of the running container, as the engine knows it.
    pub container: String,
    /// The image reference to commit to (`repo[:tag]`).
    pub image: String,
    /// `None`: the first of docker, podman found on PATH.
    pub engine: Option<Engine>,
    pub after: After,
    /// How long the quiesce, and the resume, may each take.
    pub timeout: Duration,
}

/// Parses the arguments after `snapshot`.
pub fn parse(args: &mut impl Iterator<Item = OsString>) -> Result<SnapshotRequest, UsageError> {
    let mut positional = Vec::new();
    let mut engine = None;
    let mut after = After::Resume;
    let mut timeout = DEFAULT_TIMEOUT;
    while let Some(arg) = args.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| UsageError("snapshot: an argument is not valid UTF-8".to_string()))?
            .to_string();
        let (flag, inline) = split_flag(&text);
        match flag {
            "--engine" => {
                let value = flag_value(flag, inline, args)?;
                let value = value.to_string_lossy();
                engine = Some(
                    value
                        .parse()
                        .map_err(|why| UsageError(format!("--engine: {why}")))?,
                );
            }
            "--timeout" => {
                let value = flag_value(flag, inline, args)?;
                timeout = parse_seconds(&value.to_string_lossy())
                    .map_err(|why| UsageError(format!("--timeout: {why}")))?;
            }
            "--resume" => after = After::Resume,
            "--rm" => after = After::Remove,
            "-h" | "--help" => {
                return Err(UsageError(
                    "usage: dind-init snapshot [--engine docker|podman] [--timeout S] [--resume|--rm] CONTAINER IMAGE"
                        .to_string(),
                ));
            }
            _ if text.starts_with('-') => {
                return Err(UsageError(format!(
                    "`dind-init snapshot` does not take `{text}`"
                )));
            }
            _ => positional.push(text),
        }
    }
    let [container, image] = <[String; 2]>::try_from(positional).map_err(|given| {
        UsageError(format!(
            "`dind-init snapshot` takes CONTAINER IMAGE, got {} argument(s)",
            given.len()
        ))
    })?;
    Ok(SnapshotRequest {
        container,
        image,
        engine,
        after,
        timeout,
    })
}

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
    let engine = match request
        .engine
        .or_else(|| Engine::find_on_path(std::env::var_os("PATH").as_deref()))
    {
        Some(engine) => engine,
        None => {
            say("no docker or podman on PATH: install one, or pass --engine");
            return EXIT_ENGINE;
        }
    };
    match snapshot(engine, request) {
        Ok(id) => {
            println!("{id}");
            EXIT_COMMITTED
        }
        Err(error) => {
            say(&format!("{error}"));
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
    let quiesce = in_container(engine, request, "quiesce")?;
    let status = status_json(engine, container)?;
    if let Err(why) = check_commit_safe(quiesce.status.code(), &status) {
        let outcome = match resume(engine, request) {
            Ok(()) => "resumed".to_string(),
            Err(error) => format!("and could not be resumed: {error}"),
        };
        return Err(SnapshotError::Refused(format!(
            "{container} is not commit-safe ({why}): not committed; the container was {outcome}"
        )));
    }

    let labels = labels(&status, &crate::state::now_rfc3339());
    let mut args = vec!["commit".to_string()];
    for (key, value) in &labels {
        args.push("--change".to_string());
        args.push(format!("LABEL {key}=\"{value}\""));
    }
    args.push(container.to_string());
    args.push(request.image.clone());
    say(&format!("committing {container} as {}", request.image));
    let commit = engine_ok(engine, &args)?;
    let id = String::from_utf8_lossy(&commit.stdout)
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string();

    match request.after {
        After::Resume => resume(engine, request),
        After::Remove => {
            say(&format!("removing {container}"));
            engine_ok(engine, &["rm", "-f", container]).map(|_| ())
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

/// The value at a JSON pointer, or null: reading a status never panics.
fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

/// Commit-safe only when the quiesce said so and the status agrees.
fn check_commit_safe(quiesce_code: Option<i32>, status: &Value) -> Result<(), String> {
    if at(status, "/phase") != "quiesced" {
        return Err(format!(
            "phase is {}, not quiesced",
            at(status, "/phase").as_str().unwrap_or("unknown")
        ));
    }
    if at(status, "/commit_safe") != true {
        let last = at(status, "/quiesces")
            .as_array()
            .and_then(|all| all.last())
            .cloned()
            .unwrap_or(Value::Null);
        let mut reasons = Vec::new();
        for name in at(&last, "/failed_stops").as_array().into_iter().flatten() {
            reasons.push(format!("stop of {} failed", name.as_str().unwrap_or("?")));
        }
        for stray in at(&last, "/strays").as_array().into_iter().flatten() {
            reasons.push(format!(
                "still running: pid {} {}",
                at(stray, "/pid"),
                at(stray, "/command").as_str().unwrap_or("?")
            ));
        }
        if reasons.is_empty() {
            reasons.push("dind-init reports commit_safe false".to_string());
        }
        return Err(reasons.join("; "));
    }
    if quiesce_code != Some(0) {
        return Err(format!(
            "`dind-init quiesce` exited with {}",
            quiesce_code.map_or("a signal".to_string(), |code| code.to_string())
        ));
    }
    Ok(())
}

/// The labels of the committed image, from the in-container status.
pub fn labels(status: &Value, now: &str) -> Vec<(String, String)> {
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let quiesce = at(status, "/quiesces")
        .as_array()
        .and_then(|all| all.last())
        .map_or(Value::Null, |last| at(last, "/id").clone());
    [
        ("version", text(at(status, "/version"))),
        ("boot", text(at(status, "/boot/boot"))),
        ("quiesce", text(&quiesce)),
        ("commit-safe", text(at(status, "/commit_safe"))),
        ("committed-at", now.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("{LABEL_PREFIX}{key}"), value))
    .collect()
}

fn resume(engine: Engine, request: &SnapshotRequest) -> Result<(), SnapshotError> {
    let container = request.container.as_str();
    say(&format!("resuming {container}"));
    let output = in_container(engine, request, "resume")?;
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
) -> Result<Output, SnapshotError> {
    let timeout = format!("{}", request.timeout.as_secs_f64());
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
    Command::new(engine.program())
        .args(args)
        .output()
        .map_err(|error| {
            SnapshotError::Engine(format!(
                "cannot run `{}`: {error}; install it or pass --engine",
                engine.program()
            ))
        })
}

/// Runs the engine's CLI; a non-zero exit is an error naming the command.
fn engine_ok<S: AsRef<OsStr>>(engine: Engine, args: &[S]) -> Result<Output, SnapshotError> {
    let output = engine_output(engine, args)?;
    if output.status.success() {
        return Ok(output);
    }
    let words: Vec<String> = args
        .iter()
        .map(|arg| arg.as_ref().to_string_lossy().into_owned())
        .collect();
    Err(SnapshotError::Engine(format!(
        "`{} {}` failed: {}",
        engine.program(),
        words.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// Passes the in-container client's lines on to our stderr.
fn relay(bytes: &[u8]) {
    for line in String::from_utf8_lossy(bytes).lines() {
        eprintln!("  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<SnapshotRequest, String> {
        parse(&mut words.iter().map(OsString::from)).map_err(|error| error.0)
    }

    #[test]
    fn defaults_and_flags() {
        let request = parse_words(&["env", "me/env:prepared"]).unwrap();
        assert_eq!(
            request,
            SnapshotRequest {
                container: "env".into(),
                image: "me/env:prepared".into(),
                engine: None,
                after: After::Resume,
                timeout: DEFAULT_TIMEOUT,
            }
        );
        let request =
            parse_words(&["--engine=podman", "--rm", "c", "i", "--timeout", "1.5"]).unwrap();
        assert_eq!(request.engine, Some(Engine::Podman));
        assert_eq!(request.after, After::Remove);
        assert_eq!(request.timeout, Duration::from_millis(1500));
        assert_eq!(
            parse_words(&["--rm", "--resume", "c", "i"]).unwrap().after,
            After::Resume
        );
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        assert_eq!(
            parse_words(&["c"]).unwrap_err(),
            "`dind-init snapshot` takes CONTAINER IMAGE, got 1 argument(s)"
        );
        assert_eq!(
            parse_words(&["--engine", "lxc", "c", "i"]).unwrap_err(),
            "--engine: `lxc` is not `docker` or `podman`"
        );
        assert_eq!(
            parse_words(&["c", "i", "--timeout"]).unwrap_err(),
            "`--timeout` needs a value"
        );
        assert_eq!(
            parse_words(&["--pause", "c", "i"]).unwrap_err(),
            "`dind-init snapshot` does not take `--pause`"
        );
    }

    #[test]
    fn labels_come_from_the_in_container_status() {
        let status = serde_json::json!({
            "version": "0.1.0", "phase": "quiesced", "commit_safe": true,
            "boot": {"boot": 3, "restored": true},
            "quiesces": [{"id": 1}, {"id": 2, "failed_stops": [], "strays": []}],
        });
        assert_eq!(
            labels(&status, "2026-11-23T17:00:00Z"),
            [
                ("io.dind-init.version", "0.1.0"),
                ("io.dind-init.boot", "3"),
                ("io.dind-init.quiesce", "2"),
                ("io.dind-init.commit-safe", "true"),
                ("io.dind-init.committed-at", "2026-11-23T17:00:00Z"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(check_commit_safe(Some(0), &status), Ok(()));
        assert!(check_commit_safe(Some(1), &status).is_err());
    }

    #[test]
    fn an_unsafe_quiesce_is_refused_with_its_reasons() {
        let status = serde_json::json!({
            "phase": "quiesced", "commit_safe": false,
            "quiesces": [{"id": 1, "failed_stops": ["20-db.sh"],
                          "strays": [{"pid": 42, "command": "sleep 1000"}]}],
        });
        assert_eq!(
            check_commit_safe(Some(1), &status).unwrap_err(),
            "stop of 20-db.sh failed; still running: pid 42 sleep 1000"
        );
        let running = serde_json::json!({"phase": "running", "commit_safe": null});
        assert_eq!(
            check_commit_safe(Some(1), &running).unwrap_err(),
            "phase is running, not quiesced"
        );
    }

    #[test]
    fn the_engine_is_found_on_path_docker_first() {
        let dir = std::env::temp_dir().join(format!("dind-init-engine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = OsString::from(format!("/nonexistent:{}", dir.display()));
        assert_eq!(Engine::find_on_path(Some(&path)), None);
        let podman = dir.join("podman");
        std::fs::write(&podman, "").unwrap();
        assert_eq!(Engine::find_on_path(Some(&path)), None, "not executable");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&podman, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(Engine::find_on_path(Some(&path)), Some(Engine::Podman));
        std::fs::copy(&podman, dir.join("docker")).unwrap();
        assert_eq!(Engine::find_on_path(Some(&path)), Some(Engine::Docker));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
