//! The engine's CLI (`docker` or `podman`) run as a child process: the one
//! place the host-side commands (`snapshot`, `pool`) start it. Only a
//! failure to start the CLI, or (for [`run_ok`]) its non-zero exit, is an
//! error; each is one line naming the command.

use std::ffi::OsStr;
use std::process::{Command, Output};

use super::Engine;

/// The engine `--engine` named, else the first of docker, podman on PATH.
pub fn choose(given: Option<Engine>) -> Result<Engine, String> {
    given
        .or_else(|| Engine::find_on_path(std::env::var_os("PATH").as_deref()))
        .ok_or_else(|| "no docker or podman on PATH: install one, or pass --engine".to_string())
}

/// Runs `ENGINE ARGS`; only a failure to start the CLI is an error.
pub fn run<S: AsRef<OsStr>>(engine: Engine, args: &[S]) -> Result<Output, String> {
    Command::new(engine.program())
        .args(args)
        .output()
        .map_err(|error| {
            format!(
                "cannot run `{}`: {error}; install it or pass --engine",
                engine.program()
            )
        })
}

/// Runs `ENGINE ARGS`; a non-zero exit is an error naming the command and
/// giving the CLI's own message.
pub fn run_ok<S: AsRef<OsStr>>(engine: Engine, args: &[S]) -> Result<Output, String> {
    let output = run(engine, args)?;
    if output.status.success() {
        return Ok(output);
    }
    let words: Vec<String> = args
        .iter()
        .map(|arg| arg.as_ref().to_string_lossy().into_owned())
        .collect();
    Err(format!(
        "`{} {}` failed: {}",
        engine.program(),
        words.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// The last non-empty line of a command's stdout, trimmed (the id that
/// `run -d` and `commit` print).
pub fn last_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string()
}
