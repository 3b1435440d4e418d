//! The control socket: one JSON request line in, one JSON response line out.
//!
//! The server runs inside PID 1 but never touches a process: it reads the
//! status snapshot the supervisor publishes, and hands `quiesce`/`resume` to
//! the supervisor as events with a reply channel. Each connection is its own
//! task with a size and time limit, so garbage, oversize or half-written
//! requests cost one task, never the supervisor. The client half is plain
//! blocking std code used by `dind-init status|quiesce|resume`.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
use nix::sys::stat::{Mode, umask};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc::UnboundedSender, oneshot, watch};

use crate::event::{ControlCommand, ControlRequest, Event};
use crate::phase::Phase;
use crate::status::Status;
use crate::text::escape_controls;

/// Longest request line accepted; anything longer is answered with an error.
const MAX_REQUEST: usize = 64 * 1024;
/// What a connection's reader takes at most: one byte more than a request
/// may have, so that an oversize request is seen as such.
const READ_LIMIT: u64 = MAX_REQUEST as u64 + 1;
/// The longest answer a client reads: a status is bounded far below this.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;
/// How long a client may take to send its request line.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Connections open at once; more are told "busy" at once. Each costs a task
/// and a 512-byte buffer, so the bound is a memory bound (a few MB), far
/// above what idle or waiting clients would need to crowd out a `status`.
const MAX_CONNECTIONS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    Status,
    /// Answer once the phase is `phase`, or fail after `timeout_ms`.
    Wait {
        phase: Phase,
        timeout_ms: u64,
    },
    /// Quiesce and answer when it is done (at once if already quiesced).
    Quiesce {
        timeout_ms: u64,
    },
    /// Run the starts again after a quiesce and answer when they are done.
    Resume {
        timeout_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// One line saying what went wrong, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl Response {
    fn success(status: Status) -> Self {
        Response {
            ok: true,
            error: None,
            status: Some(status),
        }
    }

    fn failure(error: impl Into<String>, status: Option<Status>) -> Self {
        Response {
            ok: false,
            error: Some(error.into()),
            status,
        }
    }
}

/// Binds the control socket with mode 0600. A socket file left behind by a
/// dead instance (or by `docker commit`) is replaced; one that a live
/// dind-init still answers on is never touched.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create socket directory {}", dir.display()))?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match probe(path) {
            Probe::Stale => {
                fs::remove_file(path).with_context(|| {
                    format!("cannot remove stale control socket {}", path.display())
                })?;
                tracing::info!("removed stale control socket {}", path.display());
            }
            Probe::Live => bail!(
                "control socket {} is in use by another running dind-init; give this one its own with --socket or DIND_INIT_SOCKET",
                path.display()
            ),
            Probe::Unusable(error) => bail!(
                "control socket {} cannot be probed ({error}); remove it or choose another path with --socket or DIND_INIT_SOCKET",
                path.display()
            ),
        },
        Ok(_) => bail!(
            "{} exists and is not a socket; remove it or choose another path with --socket or DIND_INIT_SOCKET",
            path.display()
        ),
        Err(_) => {}
    }
    // Nothing else runs yet, so the process-wide umask can be narrowed for the
    // bind alone: the socket never exists with wider permissions.
    let previous = umask(Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    umask(previous);
    let listener =
        bound.with_context(|| format!("cannot bind control socket {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set mode 0600 on {}", path.display()))?;
    listener.set_nonblocking(true)?;
    Ok(UnixListener::from_std(listener)?)
}

/// What a non-blocking connect says about a socket file.
enum Probe {
    /// Nothing listens: left by a dead instance or by `docker commit`.
    Stale,
    /// Something listens (or its backlog is full, which also means alive).
    Live,
    Unusable(Errno),
}

/// Connects without blocking: a live listener whose backlog is full answers
/// EAGAIN at once instead of holding the boot in `connect()`.
fn probe(path: &Path) -> Probe {
    let attempt = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .and_then(|fd| {
        let address = UnixAddr::new(path)?;
        connect(fd.as_raw_fd(), &address)
    });
    match attempt {
        Ok(()) | Err(Errno::EAGAIN | Errno::EINPROGRESS) => Probe::Live,
        Err(Errno::ECONNREFUSED) => Probe::Stale,
        Err(error) => Probe::Unusable(error),
    }
}

/// Accepts connections for the life of the process. Accepting never waits
/// for a free slot, so idle, slow or waiting clients can never keep a fresh
/// `status` from being answered; past [`MAX_CONNECTIONS`] open at once, a
/// new one is told "busy" and closed at once.
pub async fn serve(
    listener: UnixListener,
    status: watch::Receiver<Status>,
    events: UnboundedSender<Event>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let own_uid = nix::unistd::geteuid().as_raw();
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning on the error.
                tracing::warn!("control socket accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::Relaxed);
            let busy = Response::failure(
                format!("busy: {MAX_CONNECTIONS} control connections are open; try again"),
                None,
            );
            tokio::spawn(async move { send_response(&mut stream, &busy).await });
            continue;
        }
        let status = status.clone();
        let events = events.clone();
        let open = open.clone();
        tokio::spawn(async move {
            serve_connection(stream, status, events, own_uid).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Writes one response line and closes the writing side; a client that is
/// gone already is no error.
async fn send_response(stream: &mut UnixStream, response: &Response) {
    let mut json = serde_json::to_vec(response).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    json.push(b'\n');
    let _ = stream.write_all(&json).await;
    let _ = stream.shutdown().await;
}

async fn serve_connection(
    mut stream: UnixStream,
    status: watch::Receiver<Status>,
    events: UnboundedSender<Event>,
    own_uid: u32,
) {
    // Who is on the other end, from SO_PEERCRED.
    let peer_uid = stream.peer_cred().ok().map(|cred| cred.uid());
    let mut line = Vec::new();
    // A small buffer: thousands of idle connections must cost little.
    let mut reader = tokio::io::BufReader::with_capacity(512, &mut stream).take(READ_LIMIT);
    let read = tokio::time::timeout(REQUEST_DEADLINE, reader.read_until(b'\n', &mut line)).await;
    let response = match read {
        Err(_) => Response::failure(
            "no complete request line within 10s; send one JSON line ending in a newline",
            None,
        ),
        Ok(Err(error)) => Response::failure(format!("cannot read request: {error}"), None),
        Ok(Ok(_)) => match parse_request(&line) {
            Err(why) => Response::failure(why, None),
            Ok(request) => answer(request, peer_uid, own_uid, status, events).await,
        },
    };
    send_response(&mut stream, &response).await;
}

/// A request line as read (at most [`READ_LIMIT`] bytes), or one line
/// saying why it is refused. Pure, so it is fuzzed (`fuzz/`).
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_REQUEST {
        return Err(format!("request longer than {MAX_REQUEST} bytes"));
    }
    serde_json::from_slice::<Request>(line).map_err(|error| {
        // serde's message quotes the client's bytes: escaped, so a refusal
        // stays one line wherever it is printed.
        let error = escape_controls(&error.to_string()).into_owned();
        format!("invalid request ({error}); send one JSON line such as {{\"command\":\"status\"}}")
    })
}

async fn answer(
    request: Request,
    peer_uid: Option<u32>,
    own_uid: u32,
    mut status: watch::Receiver<Status>,
    events: UnboundedSender<Event>,
) -> Response {
    let command = match request {
        Request::Status => return Response::success(status.borrow().clone()),
        Request::Wait { phase, timeout_ms } => {
            let deadline = Duration::from_millis(timeout_ms);
            let reached = tokio::time::timeout(deadline, status.wait_for(|s| s.phase == phase))
                .await
                .map(|waited| waited.map(drop));
            let current = status.borrow().clone();
            return match reached {
                Ok(Ok(_)) => Response::success(current),
                Ok(Err(_)) => Response::failure("dind-init is exiting", Some(current)),
                Err(_) => Response::failure(
                    format!(
                        "timed out after {:.1}s waiting for phase {phase}; phase is {}",
                        deadline.as_secs_f64(),
                        current.phase
                    ),
                    Some(current),
                ),
            };
        }
        Request::Quiesce { timeout_ms } => (ControlCommand::Quiesce, timeout_ms),
        Request::Resume { timeout_ms } => (ControlCommand::Resume, timeout_ms),
    };
    let (command, timeout_ms) = command;
    let allowed = peer_uid.is_some_and(|uid| uid == 0 || uid == own_uid);
    if !allowed {
        let who = peer_uid.map_or("an unknown peer".to_string(), |uid| format!("uid {uid}"));
        tracing::warn!(
            "refused a {command:?} request from {who}: only root or uid {own_uid} may quiesce or resume"
        );
        return Response::failure(
            format!("permission denied: only root or uid {own_uid} may quiesce or resume"),
            None,
        );
    }
    let (reply, outcome) = oneshot::channel();
    if events
        .send(Event::Control(ControlRequest { command, reply }))
        .is_err()
    {
        return Response::failure("dind-init is exiting", None);
    }
    let deadline = Duration::from_millis(timeout_ms);
    match tokio::time::timeout(deadline, outcome).await {
        Ok(Ok(Ok(done))) => Response::success(done),
        Ok(Ok(Err(refusal))) => {
            Response::failure(refusal.to_string(), Some(status.borrow().clone()))
        }
        Ok(Err(_)) => Response::failure("dind-init is exiting", None),
        Err(_) => {
            let current = status.borrow().clone();
            Response::failure(
                format!(
                    "timed out after {:.1}s; phase is {}",
                    deadline.as_secs_f64(),
                    current.phase
                ),
                Some(current),
            )
        }
    }
}

/// Why a client call failed.
#[derive(Debug)]
pub enum ClientError {
    /// No dind-init answers on the socket (missing, refused, not a socket).
    Unreachable(String),
    /// It answered something that is not a response, or hung up.
    Protocol(String),
}

/// Sends one request and reads the one response line. `wait` is how long
/// the server may take to answer (the operation's own timeout plus slack).
pub fn request(socket: &Path, request: &Request, wait: Duration) -> Result<Response, ClientError> {
    let mut stream = StdUnixStream::connect(socket).map_err(|error| {
        let hint = match error.kind() {
            io::ErrorKind::NotFound => "no such socket: is dind-init running as PID 1 here? (set --socket or DIND_INIT_SOCKET)",
            io::ErrorKind::ConnectionRefused => "nothing listens on it: dind-init is not running (a stale socket file)",
            io::ErrorKind::PermissionDenied => "permission denied: run as root or as the user dind-init runs as",
            _ => "cannot connect",
        };
        ClientError::Unreachable(format!("control socket {}: {hint} ({error})", socket.display()))
    })?;
    let protocol = |error: io::Error| {
        let what = match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
                "no answer within {:.1}s; dind-init may be busy (try a longer --timeout)",
                wait.as_secs_f64()
            ),
            _ => error.to_string(),
        };
        ClientError::Protocol(format!("control socket {}: {what}", socket.display()))
    };
    stream.set_read_timeout(Some(wait)).map_err(protocol)?;
    let mut line = serde_json::to_vec(request).map_err(|e| protocol(io::Error::other(e)))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(protocol)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .take(MAX_ANSWER)
        .read_line(&mut answer)
        .map_err(protocol)?;
    if answer.len() as u64 >= MAX_ANSWER && !answer.ends_with('\n') {
        return Err(ClientError::Protocol(format!(
            "control socket {}: an answer longer than {MAX_ANSWER} bytes; not a dind-init",
            socket.display()
        )));
    }
    if answer.is_empty() {
        return Err(ClientError::Protocol(format!(
            "control socket {}: closed without an answer (did dind-init exit?)",
            socket.display()
        )));
    }
    serde_json::from_str(&answer).map_err(|error| {
        ClientError::Protocol(format!(
            "control socket {}: not a dind-init answer ({error})",
            socket.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"command":"status"}"#
        );
        let wait: Request =
            serde_json::from_str(r#"{"command":"wait","phase":"quiesced","timeout_ms":5}"#)
                .unwrap();
        assert_eq!(
            wait,
            Request::Wait {
                phase: Phase::Quiesced,
                timeout_ms: 5
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"command":"reboot"}"#).is_err());
    }

    /// Found by the fuzzer: serde quotes the client's bytes in its message.
    #[test]
    fn a_refusal_is_one_line_whatever_the_request() {
        let why = parse_request(b"[\"comma\\n\"\r\r{\"c\r\r\n\r\n\n\x88\r\xe2\n").unwrap_err();
        assert!(!why.contains('\n') && !why.contains('\r'), "{why}");
    }
}
