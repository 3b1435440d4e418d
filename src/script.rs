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
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use crate::discovery::Script;
use crate::output::{self, Stream};
use crate::reaper::{ChildExit, Reaper};
use crate::tail::{self, SharedTail};

/// Longest log line copied in one piece; longer lines are split, so a
/// daemon that never writes a newline cannot make PID 1 buffer without end.
const MAX_LINE: usize = 64 * 1024;

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
    /// `DIND_INIT_STARTS`: how many times this script's start has completed
    /// before in this state; `DIND_INIT_FIRST_START=1` when none has.
    pub starts_before: u64,
}

/// A script process that has been spawned and not yet waited for.
pub struct RunningScript {
    /// Also its process group id.
    pub pid: Pid,
    pub started: Instant,
    pub exit: oneshot::Receiver<ChildExit>,
    /// One per output pipe: see [`DrainRequest`].
    pub drains: Vec<mpsc::UnboundedSender<DrainRequest>>,
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
        .env("DIND_INIT_SOCKET", &env.socket)
        .env("DIND_INIT_STARTS", env.starts_before.to_string())
        .env(
            "DIND_INIT_FIRST_START",
            if env.starts_before == 0 { "1" } else { "0" },
        )
        // The socket-activation fds are never a script's (it gets none).
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_FDNAMES");
    crate::sys::clean_slate_in_child(&mut command);
    let started = Instant::now();
    let (mut child, exit) = reaper.spawn(&mut command)?;
    let prefix = format!("[{}] ", script.name);
    let stdout = child
        .stdout
        .take()
        .and_then(|pipe| forward_output(pipe, prefix.clone(), Stream::Stdout, tail.clone()));
    let stderr = child
        .stderr
        .take()
        .and_then(|pipe| forward_output(pipe, prefix, Stream::Stderr, tail.clone()));
    Ok(RunningScript {
        pid: Pid::from_raw(child.id() as i32),
        started,
        exit,
        drains: stdout.into_iter().chain(stderr).collect(),
    })
}

/// Waits until what a script wrote so far through `drains` has been passed
/// on (a forwarder at end of file has passed on everything already).
pub async fn drain_output(drains: &[mpsc::UnboundedSender<DrainRequest>]) {
    for drain in drains {
        let (done, drained) = oneshot::channel();
        if drain.send(done).is_ok() {
            let _ = drained.await;
        }
    }
}

/// Asks a forwarder to pass on everything its pipe holds now, and answers
/// when it has: what a script wrote before it exited then reaches the log
/// before dind-init's line about its result.
pub type DrainRequest = oneshot::Sender<()>;

/// Copies lines from `pipe` to our own stdout or stderr with `prefix`, until
/// every writer (the script and whatever it left running) has closed it.
/// Reads in chunks and hands each chunk's lines to the writer at once; the
/// last lines of each chunk are also kept in `tail`.
fn forward_output(
    pipe: impl Into<OwnedFd>,
    prefix: String,
    stream: Stream,
    tail: SharedTail,
) -> Option<mpsc::UnboundedSender<DrainRequest>> {
    let pipe = match pipe::Receiver::from_owned_fd(pipe.into()) {
        Ok(pipe) => pipe,
        Err(error) => {
            tracing::warn!("{prefix}output will not be logged: {error}");
            return None;
        }
    };
    let (drain, mut drain_requests) = mpsc::unbounded_channel::<DrainRequest>();
    tokio::spawn(async move {
        let mut lines = LineSplitter::new(prefix, Some(tail));
        let mut chunk = vec![0u8; CHUNK];
        loop {
            tokio::select! {
                biased;
                Some(done) = drain_requests.recv() => {
                    let open = drain_now(&pipe, &mut chunk, &mut lines, stream).await;
                    let _ = done.send(());
                    if !open {
                        break;
                    }
                }
                ready = pipe.readable() => {
                    if ready.is_err() || !drain_now(&pipe, &mut chunk, &mut lines, stream).await {
                        break;
                    }
                }
            }
        }
        output::write_or_wait(stream, lines.finish()).await;
    });
    Some(drain)
}

/// Passes on what `pipe` holds now, without waiting, up to
/// [`CHUNKS_AT_ONCE`] chunks so that a flood cannot keep the event loop
/// from everything else; false at end of file.
async fn drain_now(
    pipe: &pipe::Receiver,
    chunk: &mut [u8],
    lines: &mut LineSplitter,
    stream: Stream,
) -> bool {
    for _ in 0..CHUNKS_AT_ONCE {
        match pipe.try_read(chunk) {
            Ok(0) => return false,
            Ok(n) => {
                let split = lines.split(chunk.get(..n).unwrap_or_default());
                output::write_or_wait(stream, split).await;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Chunks read from one pipe before the event loop gets a turn.
const CHUNKS_AT_ONCE: usize = 16;

/// Bytes read from a script's pipe at once.
const CHUNK: usize = 64 * 1024;

/// Turns chunks of a pipe into whole prefixed lines, keeping a partial last
/// line for the next chunk; a line longer than [`MAX_LINE`] is cut into
/// pieces, so a daemon that never writes a newline cannot make PID 1 buffer
/// without end.
struct LineSplitter {
    /// `[name] `, put before every line.
    prefix: String,
    /// The start of a line whose end has not been read yet.
    partial: Vec<u8>,
    /// Where the script's last lines are kept for `status` and `logs`.
    tail: Option<SharedTail>,
}

impl LineSplitter {
    fn new(prefix: String, tail: Option<SharedTail>) -> Self {
        LineSplitter {
            prefix,
            partial: Vec::new(),
            tail,
        }
    }

    /// Keeps the last lines of `out` (prefixed lines) in the tail: only as
    /// many as it holds, so a burst costs it one update per chunk.
    fn keep_tail(&self, out: &[u8]) {
        let Some(tail) = &self.tail else { return };
        if out.is_empty() {
            return;
        }
        let mut last: Vec<&[u8]> = out
            .split_inclusive(|&b| b == b'\n')
            .rev()
            .take(tail::MAX_LINES)
            .map(|line| line.get(self.prefix.len()..).unwrap_or(line))
            .collect();
        last.reverse();
        tail.record_lines(last);
    }

    /// The whole lines of `partial` + `chunk`, each prefixed, as one buffer.
    fn split(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len().saturating_add(256));
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            let mut rest = piece;
            while !rest.is_empty() {
                let room = MAX_LINE.saturating_sub(self.partial.len()).max(1);
                let (taken, left) = rest.split_at(rest.len().min(room));
                self.partial.extend_from_slice(taken);
                if taken.ends_with(b"\n") || self.partial.len() >= MAX_LINE {
                    self.emit(&mut out);
                }
                rest = left;
            }
        }
        self.keep_tail(&out);
        out
    }

    /// What is left at end of file, as a last line.
    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.partial.is_empty() {
            self.emit(&mut out);
        }
        self.keep_tail(&out);
        out
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix.as_bytes());
        out.append(&mut self.partial);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_prefixed_across_chunks_and_long_ones_are_cut() {
        let mut lines = LineSplitter::new("[a] ".into(), None);
        assert_eq!(lines.split(b"one\ntw"), b"[a] one\n");
        assert_eq!(lines.split(b"o\nthree\nfo"), b"[a] two\n[a] three\n");
        assert_eq!(lines.finish(), b"[a] fo\n");
        assert_eq!(lines.finish(), b"");
        let long = vec![b'x'; MAX_LINE + 10];
        let out = lines.split(&long);
        assert_eq!(out.len(), "[a] ".len() + MAX_LINE + 1);
        assert_eq!(lines.finish().len(), "[a] ".len() + 10 + 1);
    }
}
