//! The client role: `dind-init status|quiesce|resume|logs`, their output and
//! their exit codes (0 yes, 1 no, 2 a usage error, 3 no dind-init answers).
//! What fails is one line on stderr starting `dind-init: error: `, like a
//! usage error's; a "no" that is an answer (not commit-safe) is not an error.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::Command;
use crate::control::{self, ClientError, Request, Response};
use crate::state::QuiesceRecord;
use crate::status::{Status, render_table};

pub const EXIT_OK: i32 = 0;
pub const EXIT_NO: i32 = 1;
pub const EXIT_UNREACHABLE: i32 = 3;

/// How often `status --wait` tries again to reach a dind-init not listening yet.
const CONNECT_RETRY: Duration = Duration::from_millis(20);
/// Extra time the client gives the server beyond the operation's own timeout.
const ANSWER_SLACK: Duration = Duration::from_secs(5);

pub fn run(socket: &Path, command: Command) -> i32 {
    let (request, wait, json) = match command {
        Command::Logs { script } => return logs(socket, &script),
        Command::Status {
            json, wait: None, ..
        } => (Request::Status, Duration::from_secs(10), json),
        Command::Status {
            json,
            wait: Some(phase),
            timeout,
        } => (
            Request::Wait {
                phase,
                timeout_ms: millis(timeout),
            },
            timeout,
            json,
        ),
        Command::Quiesce { timeout } => (
            Request::Quiesce {
                timeout_ms: millis(timeout),
            },
            timeout,
            false,
        ),
        Command::Resume { timeout } => (
            Request::Resume {
                timeout_ms: millis(timeout),
            },
            timeout,
            false,
        ),
        // Runs on the host and talks to the engine, not to a socket.
        Command::Snapshot(request) => return crate::snapshot::run(&request),
        Command::Pool(request) => return crate::pool::run(&request),
    };
    let answer = if matches!(request, Request::Wait { .. }) {
        request_once_reachable(socket, &request, wait)
    } else {
        control::request(socket, &request, wait.saturating_add(ANSWER_SLACK))
    };
    match answer {
        Ok(response) => report(&request, response, json),
        Err(error) => failed_call(error),
    }
}

/// Says why a call failed; the exit code.
fn failed_call(error: ClientError) -> i32 {
    match error {
        ClientError::Unreachable(message) => {
            eprintln!("dind-init: error: {message}");
            EXIT_UNREACHABLE
        }
        ClientError::Protocol(message) => {
            eprintln!("dind-init: error: {message}");
            EXIT_NO
        }
    }
}

/// `dind-init logs SCRIPT`: the tail of one script's output, from the status.
fn logs(socket: &Path, name: &str) -> i32 {
    let status = match control::request(socket, &Request::Status, Duration::from_secs(10)) {
        Ok(Response {
            status: Some(status),
            ..
        }) => status,
        Ok(response) => {
            eprintln!(
                "dind-init: error: {}",
                response
                    .error
                    .as_deref()
                    .unwrap_or("no status in the answer")
            );
            return EXIT_NO;
        }
        Err(error) => return failed_call(error),
    };
    let Some(script) = status.scripts.iter().find(|s| s.name == name) else {
        let names: Vec<_> = status.scripts.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "dind-init: error: no script `{name}` in this round; scripts: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return EXIT_NO;
    };
    for line in &script.tail {
        println!("{line}");
    }
    EXIT_OK
}

/// Sends `request` as soon as a dind-init answers on `socket`, trying again
/// until `wait` has passed: `docker exec … status --wait running` right after
/// `docker run` may come before the init has bound its socket.
fn request_once_reachable(
    socket: &Path,
    request: &Request,
    wait: Duration,
) -> Result<Response, ClientError> {
    let deadline = Instant::now().checked_add(wait);
    loop {
        let left = deadline.map_or(wait, |d| d.saturating_duration_since(Instant::now()));
        match control::request(socket, request, left.saturating_add(ANSWER_SLACK)) {
            Err(ClientError::Unreachable(_)) if !left.is_zero() => {
                std::thread::sleep(CONNECT_RETRY.min(left))
            }
            answer => return answer,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

fn report(request: &Request, response: Response, json: bool) -> i32 {
    if let Some(status) = &response.status {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(status).unwrap_or_default()
            );
        } else if matches!(request, Request::Status | Request::Wait { .. }) {
            print!("{}", render_table(status));
        }
    }
    if let Some(error) = &response.error {
        eprintln!("dind-init: error: {error}");
    }
    let Some(status) = response.status.filter(|_| response.ok) else {
        return EXIT_NO;
    };
    match request {
        Request::Status => exit_if(status.healthy),
        Request::Wait { .. } => EXIT_OK,
        Request::Quiesce { .. } => report_quiesce(&status),
        Request::Resume { .. } => {
            println!("dind-init: resumed: phase {}", status.phase);
            exit_if(status.healthy)
        }
    }
}

fn report_quiesce(status: &Status) -> i32 {
    let id = status.quiesces.last().map(|q| q.id).unwrap_or(0);
    if status.commit_safe == Some(true) {
        println!("dind-init: quiesced (#{id}): safe to docker commit");
        return EXIT_OK;
    }
    eprintln!("dind-init: quiesced (#{id}) but NOT safe to commit");
    for reason in status
        .quiesces
        .last()
        .map(QuiesceRecord::unsafe_reasons)
        .unwrap_or_default()
    {
        eprintln!("dind-init:   {reason}");
    }
    EXIT_NO
}

fn exit_if(yes: bool) -> i32 {
    if yes { EXIT_OK } else { EXIT_NO }
}

/// The one line a client subcommand's failure ends with (docs/reference.md),
/// for `snapshot` and `pool` too; a closed stderr loses it, never panics.
pub fn print_failure(subcommand: &str, error: &dyn std::fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "dind-init: error: {subcommand}: {error}");
}
