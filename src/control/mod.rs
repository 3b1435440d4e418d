//! The control socket: one JSON request line in, one JSON response line out.
//! The protocol (requests, responses, limits) is here; the server inside
//! PID 1 is in [`server`], who is connected to it in [`peers`], the blocking
//! client of `dind-init status|quiesce|resume|logs` in [`client`].

mod client;
mod peers;
mod server;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::phase::Phase;
use crate::status::Status;
use crate::text::escape_controls;

pub use client::{ClientError, request};
pub use peers::Peers;
pub use server::{BindError, bind, serve};

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
