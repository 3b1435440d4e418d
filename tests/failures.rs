use nix::sys::signal::Signal;

use crate::harness::Sandbox;

fn failing_script(sandbox: &Sandbox, name: &str) {
    sandbox.recording_script_then(name, "[ \"$1\" = start ] && exit 1\ntrue");
}

#[test]
fn a_failed_start_stops_what_started_in_reverse_and_exits_3() {
    let sandbox = Sandbox::new("start-failure-abort");
    sandbox.recording_script("10-a.sh");
    sandbox.recording_script("20-b.sh");
    failing_script(&sandbox, "30-fails.sh");
    sandbox.recording_script("40-never.sh");
    let mut init = sandbox.start(&[]);
    assert_eq!(init.wait_exit(), 3);
    assert_eq!(
        sandbox.order(),
        [
            "10-a.sh start",
            "20-b.sh start",
            "30-fails.sh start",
            "20-b.sh stop",
            "10-a.sh stop"
        ]
    );
    let log = init.log();
    assert!(
        log.contains("30-fails.sh start failed: exited with code 1"),
        "{log}"
    );
    assert!(
        log.contains("start of 30-fails.sh failed: stopping what started"),
        "{log}"
    );
}

#[test]
fn with_continue_a_failed_start_is_reported_and_the_rest_runs() {
    let sandbox = Sandbox::new("start-failure-continue");
    sandbox.recording_script("10-a.sh");
    failing_script(&sandbox, "20-fails.sh");
    sandbox.recording_script("30-c.sh");
    let mut init = sandbox.start_with_env(&[], &[("DIND_INIT_ON_START_FAILURE", "continue")]);
    init.wait_for_line("running with 1 failed start(s) of 3 script(s)");
    let status = sandbox.status();
    assert_eq!(status["phase"], "running");
    assert_eq!(status["healthy"], false);
    assert_eq!(status["scripts"][1]["state"], "start-failed");
    assert_eq!(status["scripts"][1]["start"]["exit_code"], 1);
    assert_eq!(status["scripts"][1]["start"]["outcome"], "failed");
    assert_eq!(
        sandbox.client(&["status"]).status.code(),
        Some(1),
        "unhealthy while a start failed"
    );

    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0);
    assert_eq!(
        sandbox.order(),
        [
            "10-a.sh start",
            "20-fails.sh start",
            "30-c.sh start",
            "30-c.sh stop",
            "10-a.sh stop"
        ]
    );
}

#[test]
fn a_hanging_start_is_killed_with_its_whole_process_group_at_its_timeout() {
    let sandbox = Sandbox::new("start-timeout");
    sandbox.script(
        "10-hangs.sh",
        "if [ \"$1\" = start ]; then sleep 1011 & exec sleep 1012; fi",
    );
    sandbox.recording_script("20-after.sh");
    let init = sandbox.start(&["--start-timeout", "0.5", "--on-start-failure", "continue"]);
    init.wait_for_line("running with 1 failed start(s)");
    let log = init.log();
    assert!(
        log.contains("10-hangs.sh start timed out after 0.5s: killing its process group"),
        "{log}"
    );
    let left: Vec<_> = init
        .processes()
        .into_iter()
        .filter(|p| p.cmdline.starts_with("sleep 101"))
        .collect();
    assert!(
        left.iter().all(|p| p.state == 'Z'),
        "the group's background sleep survived: {left:?}"
    );
    let status = sandbox.status();
    assert_eq!(status["scripts"][0]["start"]["outcome"], "timed-out");
    assert_eq!(status["scripts"][0]["start"]["exit_code"], 137);
    assert_eq!(sandbox.order(), ["20-after.sh start"]);
}

#[test]
fn a_script_that_cannot_be_executed_fails_with_a_clear_reason() {
    let sandbox = Sandbox::new("bad-interpreter");
    sandbox.executable("10-bad.sh", "#!/nonexistent/interpreter\n");
    let mut init = sandbox.start(&[]);
    assert_eq!(init.wait_exit(), 3);
    let log = init.log();
    assert!(
        log.contains("10-bad.sh start: cannot execute")
            && log.contains("its interpreter `/nonexistent/interpreter` does not exist"),
        "{log}"
    );
}

#[test]
fn a_crlf_shebang_is_named_as_such() {
    let sandbox = Sandbox::new("crlf");
    sandbox.executable("10-windows.sh", "#!/bin/sh\r\necho hi\r\n");
    let mut init = sandbox.start(&[]);
    assert_eq!(init.wait_exit(), 3);
    let log = init.log();
    assert!(
        log.contains(
            "its interpreter `/bin/sh\\r` does not exist (the file has Windows CRLF line endings"
        ),
        "{log}"
    );
}

#[test]
fn a_hanging_stop_times_out_and_the_quiesce_is_not_commit_safe() {
    let sandbox = Sandbox::new("stop-timeout");
    sandbox.script(
        "10-hangs-on-stop.sh",
        "[ \"$1\" = stop ] && exec sleep 1013\n[ \"$1\" = start ] && sleep 1014 &\ntrue",
    );
    let init = sandbox.start(&["--stop-timeout", "0.5"]);
    init.wait_for_line("running: 1 script(s) started");
    let quiesce = sandbox.client(&["quiesce"]);
    assert_eq!(quiesce.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&quiesce.stderr);
    assert!(
        stderr.contains("stop of 10-hangs-on-stop.sh failed"),
        "{stderr}"
    );
    let status = sandbox.status();
    assert_eq!(status["scripts"][0]["state"], "stop-failed");
    assert_eq!(status["scripts"][0]["stop"]["outcome"], "timed-out");
    assert_eq!(
        status["quiesces"][0]["failed_stops"][0],
        "10-hangs-on-stop.sh"
    );
    // The daemon its start left, which the stop never got to, went too.
    assert!(
        init.log().contains(
            "[10-hangs-on-stop.sh] its stop timed out: sending SIGTERM to what it left running"
        ),
        "{}",
        init.log()
    );
    assert_eq!(status["quiesces"][0]["strays"], serde_json::json!([]));
    assert!(init.processes().is_empty());
}

#[test]
fn a_log_reader_that_stops_reading_does_not_stall_pid_1() {
    let sandbox = Sandbox::new("stalled-log");
    // Far more output than a pipe holds (64 KiB), written by the script at start.
    sandbox.script(
        "10-spew.sh",
        "[ \"$1\" = start ] && yes 'a line of log output' | head -c 3000000\ntrue",
    );
    let mut command = sandbox.command(&[]);
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut unshare = command.spawn().unwrap();
    // Held open and never read: every write to them blocks once the pipes are full.
    let (_stdout, _stderr) = (
        unshare.stdout.take().unwrap(),
        unshare.stderr.take().unwrap(),
    );
    let pid_one = crate::harness::find_child(&mut unshare);

    crate::harness::wait_until("the control socket exists", || sandbox.socket.exists());
    let status = sandbox.wait_phase("running");
    assert_eq!(status["scripts"][0]["start"]["outcome"], "succeeded");
    sandbox.quiesce_ok();
    nix::sys::signal::kill(pid_one, Signal::SIGTERM).unwrap();
    crate::harness::wait_until("dind-init exits although nobody reads its log", || {
        unshare.try_wait().unwrap().is_some()
    });
    assert_eq!(unshare.wait().unwrap().code(), Some(0));
}

/// Runs dind-init as PID 1 with stdout and stderr both going to one file, as
/// `docker logs` shows them, and returns that file's lines in write order.
fn run_to_one_file(sandbox: &Sandbox, args: &[&str]) -> Vec<String> {
    let path = sandbox.path("container.log");
    let file = std::fs::File::create(&path).unwrap();
    let status = sandbox
        .command(args)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_scripts_last_lines_come_before_the_line_about_its_result() {
    let sandbox = Sandbox::new("output-order");
    // A daemon keeps the pipe open, so only a drain (not end of file) can
    // get the last words out before the result line.
    sandbox.script(
        "10-chatty.sh",
        "[ \"$1\" = start ] || exit 0\nsleep 1012 &\nyes 'a full pipe' | head -n 100000\necho last words",
    );
    let lines = run_to_one_file(&sandbox, &["--grace", "0.2", "--", "true"]);
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{}", lines.join("\n")))
    };
    assert!(position("[10-chatty.sh] last words") < position("10-chatty.sh start: ok"));
}

#[test]
fn a_burst_reaches_a_fast_reader_whole() {
    let sandbox = Sandbox::new("output-burst");
    sandbox.script(
        "10-burst.sh",
        "[ \"$1\" = start ] || exit 0\nyes 'a line of output that is about sixty characters long, more or' | head -n 1000000",
    );
    let lines = run_to_one_file(&sandbox, &["--", "true"]);
    let burst = lines
        .iter()
        .filter(|l| l.starts_with("[10-burst.sh] a line"))
        .count();
    assert_eq!(burst, 1_000_000);
    assert!(!lines.iter().any(|l| l.contains("dropped")));
}

#[test]
fn what_a_failed_start_left_running_is_stopped_and_a_daemon_ignoring_sigterm_is_killed() {
    let sandbox = Sandbox::new("failed-start-leftovers");
    // One daemon that stops on SIGTERM, one that ignores it, one that
    // detaches with setsid, then the start fails.
    let ignoring = sandbox.path("ignoring-term");
    sandbox.script(
        "10-half.sh",
        &format!(
            "if [ \"$1\" = start ]; then sleep 1013 & sh -c 'trap \"\" TERM; touch {ready}; while :; do sleep 0.05; done' & \
             setsid sleep 1015 & while [ ! -e {ready} ]; do sleep 0.01; done; exit 1; fi",
            ready = ignoring.display()
        ),
    );
    sandbox.recording_script("20-after.sh");
    let mut init = sandbox.start_with_env(
        &["--grace", "0.5"],
        &[("DIND_INIT_ON_START_FAILURE", "continue")],
    );
    init.wait_for_line("running with 1 failed start(s) of 2 script(s)");
    let log = init.log();
    assert!(
        log.contains("[10-half.sh] its start failed: sending SIGTERM to what it left running"),
        "{log}"
    );
    assert!(
        log.contains("[10-half.sh] still running after the 0.5s grace period, sending SIGKILL"),
        "{log}"
    );
    // What the start put in the background went; what detached with
    // setsid (as an inner engine's containerd shims do) is not its to end.
    let left: Vec<String> = init.processes().into_iter().map(|p| p.cmdline).collect();
    assert_eq!(left, ["sleep 1015"], "a failed start's daemons outlived it");
    let status = sandbox.status();
    assert_eq!(status["scripts"][0]["state"], "start-failed");
    assert_eq!(
        status["scripts"][0]["daemons"].as_array().map(Vec::len),
        Some(1)
    );
    // The rest of the round ran after the leftovers were gone.
    assert_eq!(sandbox.order(), ["20-after.sh start"]);
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0);
}
