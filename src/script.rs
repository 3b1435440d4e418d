//! Spawning one `SCRIPT start` or `SCRIPT stop`: its own process group, cwd
//! `/`, stdin `/dev/null`, the boot facts in its environment, and every line
//! it (or a daemon it left in the background) writes copied to the
//! container log behind a `[name]` prefix.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::oneshot;

use crate::discovery::Script;
use crate::output::{self, Stream};
use crate::reaper::{ChildExit, Reaper};
use crate::tail::SharedTail;

/// Longest log line copied in one piece; longer lines are split, so a
/// daemon that never writes a newline cannot make PID 1 buffer without end.
const MAX_LINE: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
        }
    }
}

/// What a script is told about this boot and why it runs.
#[derive(Debug, Clone)]
pub struct ScriptEnv {
    /// `DIND_INIT_BOOT`: 1 on the first boot of the state file, then 2, 3, ...
    pub boot: u64,
    /// `DIND_INIT_RESTORED`: the previous boot ended cleanly (quiesced or shut down).
    pub restored: bool,
    /// `DIND_INIT_PREVIOUS`: how the previous boot ended.
    pub previous: &'static str,
    /// `DIND_INIT_REASON`: `boot`, `resume`, `quiesce`, `shutdown` or `start-failure`.
    pub reason: &'static str,
    /// `DIND_INIT_SOCKET`: so a script can ask `dind-init status` itself.
    pub socket: PathBuf,
}

/// A script process that has been spawned and not yet waited for.
pub struct RunningScript {
    /// Also its process group id.
    pub pid: Pid,
    pub started: Instant,
    pub exit: oneshot::Receiver<ChildExit>,
}

/// Spawns `script action` through the reaper and starts copying its output,
/// each line also kept in `tail`.
pub fn spawn(
    reaper: &Reaper,
    script: &Script,
    action: Action,
    env: &ScriptEnv,
    tail: &SharedTail,
) -> io::Result<RunningScript> {
    let mut command = Command::new(&script.path);
    command
        .arg(action.as_str())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .env("DIND_INIT_BOOT", env.boot.to_string())
        .env("DIND_INIT_RESTORED", if env.restored { "1" } else { "0" })
        .env("DIND_INIT_PREVIOUS", env.previous)
        .env("DIND_INIT_REASON", env.reason)
        .env("DIND_INIT_SOCKET", &env.socket);
    let started = Instant::now();
    let (mut child, exit) = reaper.spawn(&mut command)?;
    let prefix = format!("[{}] ", script.name);
    if let Some(stdout) = child.stdout.take() {
        forward_output(stdout, prefix.clone(), Stream::Stdout, tail.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        forward_output(stderr, prefix, Stream::Stderr, tail.clone());
    }
    Ok(RunningScript {
        pid: Pid::from_raw(child.id() as i32),
        started,
        exit,
    })
}

/// Copies lines from `pipe` to our own stdout or stderr with `prefix`, until
/// every writer (the script and whatever it left running) has closed it;
/// each line is also kept in `tail`.
fn forward_output(pipe: impl Into<OwnedFd>, prefix: String, stream: Stream, tail: SharedTail) {
    let pipe = match pipe::Receiver::from_owned_fd(pipe.into()) {
        Ok(pipe) => pipe,
        Err(error) => {
            tracing::warn!("{prefix}output will not be logged: {error}");
            return;
        }
    };
    tokio::spawn(async move {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            match (&mut reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            tail.record(&line);
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            let mut prefixed = Vec::with_capacity(prefix.len().saturating_add(line.len()));
            prefixed.extend_from_slice(prefix.as_bytes());
            prefixed.extend_from_slice(&line);
            output::write(stream, prefixed);
        }
    });
}
