//! The control server inside PID 1. It never touches a process: it reads
//! the status snapshot the supervisor publishes, and hands `quiesce` and
//! `resume` to the supervisor as events with a reply channel. Each
//! connection is its own task with a size and time limit, so garbage,
//! oversize or half-written requests cost one task, never the supervisor.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
use nix::sys::stat::{Mode, umask};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc::UnboundedSender, oneshot, watch};

use super::peers::Peers;
use super::{MAX_CONNECTIONS, READ_LIMIT, REQUEST_DEADLINE, Request, Response, parse_request};
use crate::event::{ControlCommand, ControlRequest, Event};
use crate::status::Status;

/// Why the control socket could not be bound. Neither is fatal: the init
/// runs without a socket (`init` warns once and `dind-init status` explains).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// A live process listens on the path: another dind-init (a second one in
    /// the same container, like a nested `dind-init -- CMD`), or anything
    /// else. It is left alone, and so is the state file that goes with it.
    InUse(String),
    /// Anything else: a read-only file system, a file where a directory
    /// should be, a non-socket at the path.
    Failed(String),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::InUse(why) | BindError::Failed(why) => f.write_str(why),
        }
    }
}

/// Binds the control socket with mode 0600. A socket file left behind by a
/// dead instance (or by `docker commit`) is replaced; one that a live
/// process still listens on is never touched.
pub fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|error| {
            BindError::Failed(format!(
                "cannot create the control socket's directory {}: {}",
                dir.display(),
                why_no_directory(dir, &error)
            ))
        })?;
    }
    let elsewhere = "give this dind-init its own with --socket or DIND_INIT_SOCKET";
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match probe(path) {
            Probe::Stale => {
                fs::remove_file(path).map_err(|error| {
                    BindError::Failed(format!(
                        "cannot remove stale control socket {shown}: {error}"
                    ))
                })?;
                tracing::info!("removed stale control socket {shown}");
            }
            Probe::Accepting => {
                return Err(BindError::InUse(format!(
                    "control socket {shown} is in use: a live process listens on it (another dind-init in this container?); left alone, {elsewhere}"
                )));
            }
            Probe::BacklogFull => {
                return Err(BindError::InUse(format!(
                    "control socket {shown} is in use: a live process listens on it but accepts no connection (its backlog is full); left alone, {elsewhere}"
                )));
            }
            Probe::Unusable(error) => {
                return Err(BindError::Failed(format!(
                    "control socket {shown} cannot be probed ({error}); remove it or {elsewhere}"
                )));
            }
        },
        Ok(_) => {
            return Err(BindError::Failed(format!(
                "{shown} exists and is not a socket; remove it or {elsewhere}"
            )));
        }
        Err(_) => {}
    }
    // Nothing else runs yet, so the process-wide umask can be narrowed for the
    // bind alone: the socket never exists with wider permissions.
    let previous = umask(Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    umask(previous);
    let failed = |what: &str, error: std::io::Error| {
        BindError::Failed(format!("cannot {what} control socket {shown}: {error}"))
    };
    let listener = bound.map_err(|e| failed("bind", e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| failed("set mode 0600 on", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| failed("set up", e))?;
    UnixListener::from_std(listener).map_err(|e| failed("register", e))
}

/// Why `dir` could not be created, in words: `create_dir_all` answers
/// "File exists" or "Not a directory" when a component is a file or a
/// dangling link, which names neither the component nor the problem.
fn why_no_directory(dir: &Path, error: &std::io::Error) -> String {
    if matches!(
        error.kind(),
        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory
    ) {
        // The deepest component that exists is the one in the way.
        for ancestor in dir.ancestors() {
            let Ok(meta) = fs::symlink_metadata(ancestor) else {
                continue;
            };
            if ancestor.is_dir() {
                break;
            }
            let what = if meta.file_type().is_symlink() {
                "a link to nothing"
            } else {
                "not a directory"
            };
            return format!("{} is {what}", ancestor.display());
        }
    }
    error.to_string()
}

/// What a non-blocking connect says about a socket file.
#[derive(Debug)]
enum Probe {
    /// Nothing listens: left by a dead instance or by `docker commit`.
    Stale,
    /// Something listens and took the connection into its backlog.
    Accepting,
    /// Something listens, but its backlog is full: alive, not answering.
    BacklogFull,
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
        Ok(()) | Err(Errno::EINPROGRESS) => Probe::Accepting,
        Err(Errno::EAGAIN) => Probe::BacklogFull,
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
    peers: Peers,
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
        let peers = peers.clone();
        tokio::spawn(async move {
            serve_connection(stream, status, events, own_uid, &peers).await;
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
    peers: &Peers,
) {
    // Who is on the other end, from SO_PEERCRED: the pid is 0 (none) for a
    // peer outside our PID namespace.
    let peer = stream.peer_cred().ok();
    let peer_uid = peer.map(|cred| cred.uid());
    let _connected = peer
        .and_then(|cred| cred.pid())
        .filter(|&pid| pid > 0)
        .map(|pid| peers.connected(pid));
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
