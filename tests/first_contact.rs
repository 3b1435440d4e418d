//! A newcomer's first commands, run as the binary: help that exits 0, one
//! `dind-init: error: ` line for each mistake, and an init typed on a host
//! that says what it is doing. (The parser's own tables are walked against
//! the help in src/cli/help_drift.rs.)

use std::path::Path;
use std::process::{Output, Stdio};

use nix::sys::signal::Signal;

use crate::harness::{Init, Sandbox, dind_init};

fn run(args: &[&str]) -> Output {
    dind_init()
        .args(args)
        .env_remove("DIND_INIT_DIR")
        .env_remove("DIND_INIT_SOCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The one line on stderr; the exit code.
fn error_line(args: &[&str]) -> (String, i32) {
    let output = run(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.starts_with("dind-init: error: "),
        "{args:?}: {stderr}"
    );
    (stderr, output.status.code().unwrap_or(-1))
}

#[test]
fn help_after_a_subcommand_exits_0() {
    for args in [
        &["snapshot", "--help"][..],
        &["snapshot", "c", "-h"],
        &["status", "--help"],
        &["logs", "-h"],
    ] {
        let output = run(args);
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        assert!(
            text.starts_with(&format!("Usage: dind-init {}", args[0])),
            "{args:?}: {text}"
        );
        assert!(text.contains("Exit codes"), "{args:?}: {text}");
    }
}

#[test]
fn each_mistake_is_one_error_line() {
    let (line, code) = error_line(&["statuss"]);
    assert!(line.contains("did you mean `status`?"), "{line}");
    assert_eq!(code, 2);
    let (line, code) = error_line(&["--init-dir", "/nonexistent"]);
    assert!(
        line.starts_with("dind-init: error: --init-dir /nonexistent: "),
        "{line}"
    );
    assert!(!line.contains("DIND_INIT_DIR"), "{line}");
    assert_eq!(code, 2);
    let (line, code) = error_line(&["snapshot", "--resume", "--rm", "c", "i"]);
    assert!(line.contains("not both"), "{line}");
    assert_eq!(code, 2);
    let (line, code) = error_line(&["logs", "a.sh", "--timeout", "1"]);
    assert!(line.contains("does not take `--timeout`"), "{line}");
    assert_eq!(code, 2);
    // A client's failure has the same prefix as a usage error.
    let (line, code) = error_line(&["status", "--socket", "/nonexistent/dind-init.sock"]);
    assert!(line.contains("no control socket"), "{line}");
    assert_eq!(code, 3);
}

#[test]
fn engine_without_its_cli_says_how_to_install_it() {
    let output = dind_init()
        .args(["snapshot", "--engine", "podman", "c", "i"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("dind-init: error: --engine podman: no `podman` on PATH; install it ("),
        "{stderr}"
    );
}

#[test]
fn an_init_typed_on_a_host_says_what_it_is_doing() {
    let default_dir = Path::new("/etc/dind-init/init.d");
    assert!(
        !default_dir.exists(),
        "this test needs a host without {}",
        default_dir.display()
    );
    let sandbox = Sandbox::new("first-contact-host");
    // The sandbox's paths but not its --init-dir: the default one, missing.
    let mut command = dind_init();
    command.arg(format!("--socket={}", sandbox.socket.display()));
    command.arg(format!("--state={}", sandbox.state.display()));
    command.env_remove("DIND_INIT_DIR").stdin(Stdio::null());
    let mut init = Init::spawn(command, false);
    let line = init.wait_for_line("not PID 1 and no init.d at /etc/dind-init/init.d");
    assert!(
        line.contains(&sandbox.socket.display().to_string()),
        "{line}"
    );
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0);
}
