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
