use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::harness::{Sandbox, WAIT, dind_init, dind_init_argv};

/// Sends raw bytes and returns the one answer line, parsed.
fn raw_request(sandbox: &Sandbox, bytes: &[u8]) -> Value {
    let mut stream = UnixStream::connect(&sandbox.socket).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {line:?}"))
}

#[test]
fn status_json_has_the_documented_fields() {
    let sandbox = Sandbox::new("status-json");
    sandbox.recording_script("10-a.sh");
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    let status = sandbox.status();
    assert_eq!(status["pid"], 1);
    assert_eq!(status["phase"], "running");
    assert_eq!(status["healthy"], true);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["boot"]["boot"], 1);
    assert_eq!(status["boot"]["restored"], false);
    assert!(status["boot"]["restored_from_quiesce"].is_null());
    assert_eq!(status["boots"][0]["boot"], 1);
    assert!(status["boots"][0]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(status["quiesces"], serde_json::json!([]));
    assert!(status["commit_safe"].is_null());
    assert!(status["main"].is_null());
    assert_eq!(status["strays"], serde_json::json!([]));
    let script = &status["scripts"][0];
    assert_eq!(script["name"], "10-a.sh");
    assert_eq!(script["state"], "started");
    assert_eq!(script["start"]["outcome"], "succeeded");
    assert_eq!(script["start"]["exit_code"], 0);
    assert!(script["start"]["duration_ms"].is_u64());
    assert!(script["start"]["reason"].is_null());
    assert!(script["stop"].is_null());

    let table = String::from_utf8(sandbox.client(&["status"]).stdout).unwrap();
    assert!(
        table.contains("phase:   running (healthy)") && table.contains("10-a.sh"),
        "{table}"
    );
    let mode = fs::metadata(&sandbox.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn garbage_oversize_and_half_written_requests_do_not_disturb_it() {
    let sandbox = Sandbox::new("garbage");
    let _init = sandbox.start(&[]);
    sandbox.wait_phase("running");

    let answer = raw_request(&sandbox, b"hello, is it me you're looking for?\n");
    assert_eq!(answer["ok"], false);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("invalid request"),
        "{answer}"
    );

    let answer = raw_request(&sandbox, b"\x00\xff\xfe{\"command\":\"status\"\n");
    assert_eq!(answer["ok"], false);

    let answer = raw_request(&sandbox, &vec![b'x'; 200 * 1024]);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("request longer than"),
        "{answer}"
    );

    // A client that sends half a request and waits must not hold anyone up.
    let mut half = UnixStream::connect(&sandbox.socket).unwrap();
    half.write_all(b"{\"command\":").unwrap();
    let answer = raw_request(&sandbox, b"{\"command\":\"status\"}\n");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["status"]["phase"], "running");

    // Many clients at once.
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let socket = sandbox.socket.clone();
            std::thread::spawn(move || {
                dind_init()
                    .arg("--socket")
                    .arg(socket)
                    .arg("status")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap().status.code(), Some(0));
    }
    drop(half);
    assert_eq!(sandbox.status()["phase"], "running");
}

#[test]
fn a_stale_socket_file_left_by_a_commit_is_replaced() {
    let sandbox = Sandbox::new("stale-socket");
    drop(UnixListener::bind(&sandbox.socket).unwrap());
    assert!(sandbox.socket.exists());
    let init = sandbox.start(&[]);
    init.wait_for_line("removed stale control socket");
    sandbox.wait_phase("running");
    assert_eq!(sandbox.status()["phase"], "running");
}

#[test]
fn a_socket_a_live_instance_answers_on_is_never_taken_over() {
    let sandbox = Sandbox::new("busy-socket");
    // A script, so that the first instance records its boot.
    sandbox.recording_script("10-a.sh");
    let _first = sandbox.start(&[]);
    sandbox.wait_phase("running");
    // A second `dind-init -- CMD` on the same paths (dumb-init's suite runs
    // one inside another) runs its command like tini, without the socket.
    let mut second = sandbox.start(&["--", "sh", "-c", "echo second ran; exit 4"]);
    assert_eq!(second.wait_exit(), 4, "{}", second.log());
    let log = second.log();
    assert!(log.contains("second ran"), "{log}");
    assert!(
        log.contains("is in use: a live process listens on it")
            && log.contains("running without a control socket"),
        "{log}"
    );
    assert_eq!(
        log.lines().filter(|l| l.contains("warning:")).count(),
        1,
        "one warning: {log}"
    );
    assert!(!log.contains("error:"), "{log}");
    assert_eq!(
        sandbox.status()["phase"],
        "running",
        "the first instance still answers on its socket"
    );
    // The boot record is written in the background.
    crate::harness::wait_until("the first instance wrote its boot record", || {
        sandbox.state.exists()
    });
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&sandbox.state).unwrap()).unwrap();
    assert_eq!(
        state["boot_count"], 1,
        "the second instance left the live one's state file alone"
    );
    assert_eq!(
        sandbox.order(),
        ["10-a.sh start"],
        "and its scripts: only the first instance ran them"
    );
}

#[test]
fn a_second_instance_forwards_the_quiesce_and_resume_signals_to_its_command() {
    let sandbox = Sandbox::new("busy-socket-signals");
    sandbox.recording_script("10-a.sh");
    let _first = sandbox.start(&[]);
    sandbox.wait_phase("running");
    // The second has nothing to quiesce (the scripts are the live one's), so
    // it is a plain wrapper: SIGUSR1 and SIGUSR2 reach its command, as with
    // tini (dumb-init's suite sends them to an init run inside another).
    let got = sandbox.path("got");
    let command = format!(
        "trap 'echo usr1 >> {got}' USR1; trap 'echo usr2 >> {got}' USR2; \
         echo trapping; while :; do sleep 0.05; done",
        got = got.display()
    );
    let mut second = sandbox.start(&["--", "sh", "-c", &command]);
    second.wait_for_line("trapping");
    let lines = || fs::read_to_string(&got).unwrap_or_default();
    second.signal(Signal::SIGUSR1);
    crate::harness::wait_until("the command got SIGUSR1", || lines() == "usr1\n");
    second.signal(Signal::SIGUSR2);
    crate::harness::wait_until("the command got SIGUSR2", || lines() == "usr1\nusr2\n");
    second.signal(Signal::SIGTERM);
    assert_eq!(second.wait_exit(), 143, "{}", second.log());
    assert_eq!(
        sandbox.order(),
        ["10-a.sh start"],
        "the live one was not quiesced"
    );
}

#[test]
fn a_path_that_is_not_a_socket_is_kept_and_the_init_runs_without_one() {
    let sandbox = Sandbox::new("not-a-socket");
    fs::write(&sandbox.socket, "precious").unwrap();
    let mut init = sandbox.start(&["--", "echo", "hi"]);
    assert_eq!(init.wait_exit(), 0, "{}", init.log());
    assert!(
        // The main command's line and dind-init's warning reach the log
        // by two pipes, in either order.
        init.log().contains("exists and is not a socket") && init.log().lines().any(|l| l == "hi"),
        "{}",
        init.log()
    );
    assert_eq!(fs::read_to_string(&sandbox.socket).unwrap(), "precious");
}

/// Runs dind-init as PID 1 with `socket` and `-- sh -c 'echo main ran'` to
/// its end; its exit code and everything it printed.
fn run_with_socket(sandbox: &Sandbox, socket: &std::path::Path) -> (Option<i32>, String) {
    let mut command = sandbox.command(&["--socket", socket.to_str().unwrap()]);
    command.args(["--", "sh", "-c", "echo main ran"]);
    let output = command.output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), log)
}

#[test]
fn a_socket_directory_that_cannot_be_made_is_named_and_not_fatal() {
    let sandbox = Sandbox::new("socket-dir-in-the-way");
    sandbox.recording_script("10-a.sh");
    let file = sandbox.path("file");
    fs::write(&file, "").unwrap();
    let dangling = sandbox.path("dangling");
    std::os::unix::fs::symlink(sandbox.path("nowhere"), &dangling).unwrap();
    for (socket, in_the_way) in [
        (
            file.join("control.sock"),
            format!("{} is not a directory", file.display()),
        ),
        (
            file.join("run/control.sock"),
            format!("{} is not a directory", file.display()),
        ),
        (
            dangling.join("control.sock"),
            format!("{} is a link to nothing", dangling.display()),
        ),
    ] {
        let (code, log) = run_with_socket(&sandbox, &socket);
        assert_eq!(code, Some(0), "{log}");
        assert!(log.contains("main ran"), "{log}");
        let warnings: Vec<_> = log.lines().filter(|l| l.contains("warning:")).collect();
        assert_eq!(warnings.len(), 1, "{log}");
        assert!(
            warnings[0].contains(&in_the_way)
                && warnings[0].contains("running without a control socket")
                && !warnings[0].contains("File exists"),
            "{}",
            warnings[0]
        );
        // From outside the namespace, the client explains the missing socket.
        let client = dind_init()
            .arg("--socket")
            .arg(&socket)
            .arg("status")
            .output()
            .unwrap();
        assert_eq!(client.status.code(), Some(3));
        let said = String::from_utf8_lossy(&client.stderr);
        assert!(said.contains("no control socket at"), "{said}");
    }
    assert_eq!(sandbox.order().len(), 6, "every run ran its start and stop");
}

#[test]
fn client_without_a_running_init_says_so_and_exits_3() {
    let sandbox = Sandbox::new("no-init");
    let output = sandbox.client(&["status"]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no control socket at") && stderr.lines().count() == 1,
        "{stderr}"
    );

    drop(UnixListener::bind(&sandbox.socket).unwrap());
    let output = sandbox.client(&["quiesce"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not running"));
}

#[test]
fn only_root_or_the_owner_may_quiesce() {
    let sandbox = Sandbox::new("credentials");
    let _init = sandbox.start(&[]);
    sandbox.wait_phase("running");
    // Open the socket and its directory to everyone, so only the credential check remains.
    fs::set_permissions(&sandbox.socket, fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(&sandbox.dir, fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args(dind_init_argv())
            .arg("--socket")
            .arg(&sandbox.socket)
            .args(args)
            .output()
            .unwrap()
    };
    let quiesce = as_nobody(&["quiesce"]);
    assert_eq!(quiesce.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&quiesce.stderr).contains("permission denied: only root"));
    assert_eq!(
        as_nobody(&["status"]).status.code(),
        Some(0),
        "status is open to whoever can connect"
    );
    assert_eq!(sandbox.status()["phase"], "running");
}

#[test]
fn a_silent_client_is_dropped_after_the_request_deadline() {
    let sandbox = Sandbox::new("silent-client");
    let _init = sandbox.start(&[]);
    sandbox.wait_phase("running");
    let mut silent = UnixStream::connect(&sandbox.socket).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = String::new();
    silent.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("no complete request line"), "{answer}");
}

#[test]
fn the_client_reads_no_more_than_a_bounded_answer() {
    let sandbox = Sandbox::new("huge-answer");
    let listener = UnixListener::bind(&sandbox.socket).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 256];
        let _ = stream.read(&mut request);
        // 64 MiB with no newline, as a misbehaving server on the path might send.
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..64 {
            if stream.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let output = sandbox.client(&["status"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("an answer longer than"), "{stderr}");
    let _ = server.join();
}

#[test]
fn idle_slow_and_waiting_clients_never_crowd_out_a_fresh_status() {
    let sandbox = Sandbox::new("crowd");
    let _init = sandbox.start(&[]);
    sandbox.wait_phase("running");
    // 500 clients that connect and say nothing, 10 that send half a line.
    let mut held: Vec<UnixStream> = (0..500)
        .map(|_| UnixStream::connect(&sandbox.socket).unwrap())
        .collect();
    for _ in 0..10 {
        let mut slow = UnixStream::connect(&sandbox.socket).unwrap();
        slow.write_all(b"{\"command\":").unwrap();
        held.push(slow);
    }
    // 64 that wait for a phase that will not come, for a minute.
    for _ in 0..64 {
        let mut waiter = UnixStream::connect(&sandbox.socket).unwrap();
        waiter
            .write_all(b"{\"command\":\"wait\",\"phase\":\"quiesced\",\"timeout_ms\":60000}\n")
            .unwrap();
        held.push(waiter);
    }
    let started = std::time::Instant::now();
    let status = sandbox.client(&["status"]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // Answered at once, not after an idle client's 10 s deadline.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "status took {:?}",
        started.elapsed()
    );
    drop(held);
}

#[test]
fn a_live_listener_with_a_full_backlog_is_in_use_not_a_hang() {
    let sandbox = Sandbox::new("full-backlog");
    // A listener that never accepts: its backlog fills, and a blocking
    // connect() to it would wait for ever.
    let listener = UnixListener::bind(&sandbox.socket).unwrap();
    let mut fillers = Vec::new();
    loop {
        let filler = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        let address = nix::sys::socket::UnixAddr::new(&sandbox.socket).unwrap();
        let full =
            nix::sys::socket::connect(std::os::fd::AsRawFd::as_raw_fd(&filler), &address).is_err();
        fillers.push(filler);
        if full || fillers.len() > 5000 {
            break;
        }
    }
    let mut init = sandbox.start(&["--", "true"]);
    assert_eq!(init.wait_exit(), 0, "{}", init.log());
    let log = init.log();
    assert!(
        log.contains("accepts no connection (its backlog is full)")
            && !log.contains("dind-init in this container"),
        "{log}"
    );
    drop(listener);
}

/// Finding 3 of issue 26, inside the container: a client that gave up on
/// a slow quiesce (as `snapshot` does after its `--timeout`) then asks for
/// a resume; the resume is carried out once the quiesce ends, not refused
/// with "nothing to resume: phase is quiescing", which left the container
/// quiesced.
#[test]
fn a_resume_asked_for_while_quiescing_runs_once_the_quiesce_ends() {
    let sandbox = Sandbox::new("resume-while-quiescing");
    let release = sandbox.path("release");
    sandbox.recording_script_then(
        "10-slow-stop.sh",
        &format!(
            "[ \"$1\" = stop ] || exit 0; while [ ! -e {} ]; do sleep 0.02; done",
            release.display()
        ),
    );
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    let gave_up = sandbox.client(&["quiesce", "--timeout", "0.2"]);
    assert_ne!(gave_up.status.code(), Some(0), "{gave_up:?}");
    assert_eq!(sandbox.status()["phase"], "quiescing");
    let resume = dind_init()
        .arg("--socket")
        .arg(&sandbox.socket)
        .args(["resume", "--timeout", "20"])
        .env_remove("DIND_INIT_SOCKET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    init.wait_for_line("the starts run again once the quiesce ends");
    fs::write(&release, "").unwrap();
    let resumed = resume.wait_with_output().unwrap();
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{resumed:?}\n{}",
        init.log()
    );
    assert_eq!(sandbox.status()["phase"], "running");
    assert_eq!(
        sandbox.order(),
        [
            "10-slow-stop.sh start",
            "10-slow-stop.sh stop",
            "10-slow-stop.sh start"
        ]
    );
}
