//! The client end: plain blocking std code, one request and one bounded
//! answer per connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{MAX_ANSWER, Request, Response};

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
    let mut stream = UnixStream::connect(socket).map_err(|error| {
        if matches!(
            error.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        ) {
            return ClientError::Unreachable(no_socket(socket, pid1_is_dind_init()));
        }
        let hint = match error.kind() {
            io::ErrorKind::ConnectionRefused => {
                "nothing listens on it: dind-init is not running (a stale socket file)"
            }
            io::ErrorKind::PermissionDenied => {
                "permission denied: run as root or as the user dind-init runs as"
            }
            _ => "cannot connect",
        };
        ClientError::Unreachable(format!(
            "control socket {}: {hint} ({error})",
            socket.display()
        ))
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

/// Why there is no socket to connect to. When PID 1 here is a dind-init,
/// it runs without one: it could not create it at boot, and said why in
/// its log.
fn no_socket(socket: &Path, pid1_is_dind_init: bool) -> String {
    let path = socket.display();
    if pid1_is_dind_init {
        format!(
            "no control socket at {path}: dind-init (PID 1) could not create it at boot and runs without it (see its log, e.g. `docker logs`); or set --socket or DIND_INIT_SOCKET to the path it uses"
        )
    } else {
        format!(
            "no control socket at {path}: no dind-init listens there; is it PID 1 here, and did it log that it could not create the socket? (set --socket or DIND_INIT_SOCKET)"
        )
    }
}

/// Whether PID 1 of this PID namespace is dind-init (by its command name).
fn pid1_is_dind_init() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|name| name.trim_end() == "dind-init")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_is_explained_by_who_pid_1_is() {
        let path = Path::new("/run/x.sock");
        assert!(no_socket(path, true).contains("could not create it at boot"));
        assert!(no_socket(path, false).contains("no dind-init listens there"));
        assert!(no_socket(path, false).starts_with("no control socket at /run/x.sock"));
    }
}
