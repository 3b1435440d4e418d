use std::fs;

use nix::sys::signal::Signal;

use crate::harness::{Sandbox, wait_until};

/// A script whose start leaves a daemon in the background and whose stop
/// ends it and waits for it, as a well-behaved init.d script does.
fn daemon_script(sandbox: &Sandbox, name: &str) {
    sandbox.daemon_script(name, "sleep 1000");
}

fn starts(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("{n} start")).collect()
}

fn stops_reversed(names: &[&str]) -> Vec<String> {
    names.iter().rev().map(|n| format!("{n} stop")).collect()
}

#[test]
fn sigusr1_stops_in_reverse_and_a_second_one_is_ignored() {
    let sandbox = Sandbox::new("quiesce-signal");
    sandbox.recording_script("10-a.sh");
    daemon_script(&sandbox, "20-daemon.sh");
    sandbox.recording_script("30-c.sh");
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 3 script(s) started");

    init.signal(Signal::SIGUSR1);
    let status = sandbox.wait_phase("quiesced");
    let names = ["10-a.sh", "20-daemon.sh", "30-c.sh"];
    assert_eq!(
        sandbox.order(),
        [starts(&names), stops_reversed(&names)].concat()
    );
    assert_eq!(status["commit_safe"], true);
    assert_eq!(status["strays"].as_array().unwrap().len(), 0);
    assert_eq!(status["quiesces"][0]["commit_safe"], true);
    assert!(
        status["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "stopped")
    );
    assert_eq!(init.processes().len(), 0, "{:?}", init.processes());

    init.signal(Signal::SIGUSR1);
    init.wait_for_line("already quiesced; nothing to do");
    assert_eq!(sandbox.order().len(), 6);
    assert_eq!(sandbox.status()["phase"], "quiesced");
}

#[test]
fn quiesce_and_resume_commands_are_synchronous() {
    let sandbox = Sandbox::new("quiesce-command");
    sandbox.recording_script("10-a.sh");
    daemon_script(&sandbox, "20-daemon.sh");
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 2 script(s) started");
    let names = ["10-a.sh", "20-daemon.sh"];

    let quiesce = sandbox.quiesce_ok();
    assert!(String::from_utf8_lossy(&quiesce.stdout).contains("safe to docker commit"));
    // Synchronous: the answer came after the stops, nothing is left to wait for.
    assert_eq!(
        sandbox.order(),
        [starts(&names), stops_reversed(&names)].concat()
    );
    assert_eq!(sandbox.status()["phase"], "quiesced");
    // A quiesced container is not healthy: status exits 1.
    assert_eq!(sandbox.client(&["status"]).status.code(), Some(1));

    let resume = sandbox.client(&["resume"]);
    assert_eq!(
        resume.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resume.stderr)
    );
    let status = sandbox.status();
    assert_eq!(status["phase"], "running");
    assert_eq!(status["healthy"], true);
    assert_eq!(status["scripts"][1]["state"], "started");
    assert_eq!(sandbox.client(&["status"]).status.code(), Some(0));

    // Resume by SIGUSR2 after another quiesce; a resume while running is refused.
    sandbox.quiesce_ok();
    init.signal(Signal::SIGUSR2);
    sandbox.wait_phase("running");
    assert_eq!(
        sandbox.order(),
        [
            starts(&names),
            stops_reversed(&names),
            starts(&names),
            stops_reversed(&names),
            starts(&names)
        ]
        .concat()
    );
    let refused = sandbox.client(&["resume"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("nothing to resume: phase is running")
    );
}

#[test]
fn a_stray_process_makes_the_quiesce_unsafe_and_is_reported() {
    let sandbox = Sandbox::new("stray");
    sandbox.script("10-leaky.sh", "if [ \"$1\" = start ]; then sleep 1007 & fi");
    let init = sandbox.start(&["--settle", "0.2"]);
    init.wait_for_line("running: 1 script(s) started");
    wait_until("the leaked sleep runs", || {
        init.processes().iter().any(|p| p.cmdline == "sleep 1007")
    });

    let quiesce = sandbox.client(&["quiesce"]);
    assert_eq!(quiesce.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&quiesce.stderr);
    assert!(
        stderr.contains("NOT safe to commit") && stderr.contains("sleep 1007"),
        "{stderr}"
    );
    let status = sandbox.status();
    assert_eq!(status["commit_safe"], false);
    assert_eq!(status["strays"][0]["command"], "sleep 1007");
    init.wait_for_line("quiesced but NOT safe to commit");
}

#[test]
fn sigterm_during_the_stray_settle_is_acted_on_at_once() {
    let sandbox = Sandbox::new("settle-sigterm");
    sandbox.recording_script_then("10-leaky.sh", "if [ \"$1\" = start ]; then sleep 1008 & fi");
    // A settle far longer than any wait of this test: only an interruption ends it in time.
    let mut init = sandbox.start(&["--settle", "600"]);
    init.wait_for_line("running: 1 script(s) started");
    init.signal(Signal::SIGUSR1);
    wait_until("the stop ran and the settle waits on the stray", || {
        sandbox.order().len() == 2 && sandbox.status()["phase"] == "quiescing"
    });
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0, "{}", init.log());
    assert!(init.log().contains("SIGTERM received: shutting down"));
}

#[test]
fn a_daemon_that_asks_for_the_quiesce_itself_is_a_stray() {
    let sandbox = Sandbox::new("self-quiesce");
    let client = crate::harness::dind_init_argv().join(" ");
    let answer = sandbox.path("answer");
    sandbox.script(
        "10-writer.sh",
        &format!(
            "if [ \"$1\" = start ]; then ( {client} --socket {socket} status --wait running --timeout 20 >/dev/null; \
             {client} --socket {socket} quiesce > {answer} 2>&1 ) & fi",
            socket = sandbox.socket.display(),
            answer = answer.display()
        ),
    );
    let init = sandbox.start(&["--settle", "0.3"]);
    let status = sandbox.wait_phase("quiesced");
    assert_eq!(status["commit_safe"], false, "{}", init.log());
    wait_until("the daemon's client has its answer", || {
        fs::read_to_string(&answer).is_ok_and(|a| a.contains("NOT safe to commit"))
    });
}

#[test]
fn a_strays_escape_sequences_are_escaped_everywhere() {
    let sandbox = Sandbox::new("stray-escapes");
    sandbox.script(
        "10-leaky.sh",
        "if [ \"$1\" = start ]; then bash -c 'exec -a \"$(printf \"evil\\033[31m\")\" sleep 1011' & fi",
    );
    let init = sandbox.start(&["--settle", "0.2"]);
    init.wait_for_line("running: 1 script(s) started");
    wait_until("the stray runs", || {
        init.processes().iter().any(|p| p.cmdline.contains("1011"))
    });
    let quiesce = sandbox.client(&["quiesce"]);
    let stderr = String::from_utf8_lossy(&quiesce.stderr);
    assert!(stderr.contains("evil\\x1b[31m 1011"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert_eq!(
        sandbox.status()["strays"][0]["command"],
        "evil\\x1b[31m 1011"
    );
    init.wait_for_line("quiesced but NOT safe to commit");
    assert!(!init.log().contains('\u{1b}'), "{}", init.log());
}

#[test]
fn sigusr1_during_start_finishes_the_script_in_flight_then_stops_it() {
    let sandbox = Sandbox::new("quiesce-during-start");
    let release = sandbox.path("release");
    sandbox.recording_script_then(
        "10-slow.sh",
        &format!(
            r#"if [ "$1" = start ]; then echo waiting; while [ ! -e {release} ]; do sleep 0.01; done; fi"#,
            release = release.display()
        ),
    );
    sandbox.recording_script("20-later.sh");
    let init = sandbox.start(&[]);
    init.wait_for_line("[10-slow.sh] waiting");
    init.signal(Signal::SIGUSR1);
    init.wait_for_line("finishing the script in flight");
    fs::write(&release, "").unwrap();

    let status = sandbox.wait_phase("quiesced");
    assert_eq!(sandbox.order(), ["10-slow.sh start", "10-slow.sh stop"]);
    assert_eq!(status["scripts"][0]["state"], "stopped");
    assert_eq!(status["scripts"][1]["state"], "pending");
    assert_eq!(status["commit_safe"], true);
}

#[test]
fn sigterm_runs_the_stops_in_reverse_and_exits_zero() {
    let sandbox = Sandbox::new("shutdown");
    sandbox.recording_script("10-a.sh");
    daemon_script(&sandbox, "20-daemon.sh");
    sandbox.recording_script("30-c.sh");
    let mut init = sandbox.start(&[]);
    init.wait_for_line("running: 3 script(s) started");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0);
    let names = ["10-a.sh", "20-daemon.sh", "30-c.sh"];
    assert_eq!(
        sandbox.order(),
        [starts(&names), stops_reversed(&names)].concat()
    );
    let log = init.log();
    assert!(
        !log.contains("remaining process"),
        "the stops ended everything:\n{log}"
    );
}

#[test]
fn sigterm_after_a_quiesce_does_not_stop_twice() {
    let sandbox = Sandbox::new("shutdown-quiesced");
    sandbox.recording_script("10-a.sh");
    let mut init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    sandbox.quiesce_ok();
    init.signal(Signal::SIGINT);
    assert_eq!(init.wait_exit(), 0);
    assert_eq!(sandbox.order(), ["10-a.sh start", "10-a.sh stop"]);
}

#[test]
fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let sandbox = Sandbox::new("stubborn");
    let ready = sandbox.path("ready");
    sandbox.script(
        "10-stubborn.sh",
        &format!(
            "if [ \"$1\" = start ]; then (trap '' TERM; touch {ready}; exec sleep 1003) & fi",
            ready = ready.display()
        ),
    );
    let mut init = sandbox.start(&["--grace", "1"]);
    init.wait_for_line("running: 1 script(s) started");
    wait_until("the stubborn process ignores SIGTERM", || ready.exists());
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0);
    let log = init.log();
    assert!(
        log.contains("sending SIGTERM to 1 remaining process(es)"),
        "{log}"
    );
    assert!(
        log.contains("still running after the 1.0s grace period, sending SIGKILL")
            && log.contains("sleep 1003"),
        "{log}"
    );
}

#[test]
fn a_second_sigterm_skips_the_stops_and_kills() {
    let sandbox = Sandbox::new("second-sigterm");
    sandbox.script(
        "10-hangs-on-stop.sh",
        "[ \"$1\" = stop ] && exec sleep 1004\ntrue",
    );
    sandbox.recording_script("20-b.sh");
    let mut init = sandbox.start(&[]);
    init.wait_for_line("running: 2 script(s) started");
    init.signal(Signal::SIGTERM);
    init.wait_for_line("10-hangs-on-stop.sh stop (pid");
    init.signal(Signal::SIGTERM);
    assert_eq!(
        init.wait_exit(),
        1,
        "a stop that had to be killed is a failed stop"
    );
    let log = init.log();
    assert!(
        log.contains("second SIGTERM: skipping the remaining stops"),
        "{log}"
    );
    assert!(
        log.contains("interrupting 10-hangs-on-stop.sh stop: sending SIGKILL"),
        "{log}"
    );
    assert_eq!(sandbox.order(), ["20-b.sh start", "20-b.sh stop"]);
}

#[test]
fn sigterm_during_a_start_interrupts_it_and_still_stops_it() {
    let sandbox = Sandbox::new("shutdown-during-start");
    sandbox.recording_script("10-a.sh");
    sandbox.recording_script_then(
        "20-forever.sh",
        "[ \"$1\" = start ] && echo waiting && exec sleep 1005\ntrue",
    );
    sandbox.recording_script("30-never.sh");
    let mut init = sandbox.start(&[]);
    init.wait_for_line("[20-forever.sh] waiting");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0);
    init.wait_for_line("interrupting 20-forever.sh start: sending SIGTERM");
    assert_eq!(
        sandbox.order(),
        [
            "10-a.sh start",
            "20-forever.sh start",
            "20-forever.sh stop",
            "10-a.sh stop"
        ]
    );
}

#[test]
fn status_wait_times_out_with_a_reason() {
    let sandbox = Sandbox::new("wait-timeout");
    let _init = sandbox.start(&[]);
    sandbox.wait_phase("running");
    let output = sandbox.client(&["status", "--wait", "quiesced", "--timeout", "0.3"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("timed out after 0.3s waiting for phase quiesced; phase is running"),
        "{stderr}"
    );
}

/// A script whose stop announces itself and then waits for a release file,
/// so a test can act while the stop is in flight.
fn slow_stop_script(sandbox: &Sandbox, name: &str) -> std::path::PathBuf {
    let release = sandbox.path("release-stop");
    sandbox.recording_script_then(
        name,
        &format!(
            r#"if [ "$1" = stop ]; then echo stopping; while [ ! -e {release} ]; do sleep 0.01; done; fi"#,
            release = release.display()
        ),
    );
    release
}

#[test]
fn sigterm_while_quiescing_finishes_the_stops_once_then_exits() {
    let sandbox = Sandbox::new("term-while-quiescing");
    sandbox.recording_script("10-a.sh");
    let release = slow_stop_script(&sandbox, "20-slow-stop.sh");
    let mut init = sandbox.start(&[]);
    init.wait_for_line("running: 2 script(s) started");
    init.signal(Signal::SIGUSR1);
    init.wait_for_line("[20-slow-stop.sh] stopping");
    init.signal(Signal::SIGTERM);
    init.wait_for_line("SIGTERM received: shutting down");
    fs::write(&release, "").unwrap();
    assert_eq!(init.wait_exit(), 0);
    assert_eq!(
        sandbox.order(),
        [
            "10-a.sh start",
            "20-slow-stop.sh start",
            "20-slow-stop.sh stop",
            "10-a.sh stop"
        ],
        "every stop ran exactly once"
    );
}

#[test]
fn quiesce_requests_while_quiescing_all_get_the_one_answer() {
    let sandbox = Sandbox::new("quiesce-twice");
    let release = slow_stop_script(&sandbox, "10-slow-stop.sh");
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    init.signal(Signal::SIGUSR1);
    init.wait_for_line("[10-slow-stop.sh] stopping");
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let socket = sandbox.socket.clone();
            std::thread::spawn(move || {
                crate::harness::dind_init()
                    .arg("--socket")
                    .arg(socket)
                    .arg("quiesce")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    init.wait_for_nth_line("quiesce requested: already quiescing", 3);
    fs::write(&release, "").unwrap();
    for client in clients {
        let output = client.join().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(
        sandbox.order(),
        ["10-slow-stop.sh start", "10-slow-stop.sh stop"]
    );
    assert_eq!(sandbox.status()["quiesces"].as_array().unwrap().len(), 1);
}

#[test]
fn sigusr1_during_shutdown_is_refused_and_the_shutdown_goes_on() {
    let sandbox = Sandbox::new("usr1-while-shutting-down");
    let release = slow_stop_script(&sandbox, "10-slow-stop.sh");
    let mut init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    init.signal(Signal::SIGTERM);
    init.wait_for_line("[10-slow-stop.sh] stopping");
    init.signal(Signal::SIGUSR1);
    init.wait_for_line("cannot quiesce: dind-init is shutting down");
    let refused = sandbox.client(&["quiesce"]);
    assert_eq!(refused.status.code(), Some(1));
    fs::write(&release, "").unwrap();
    assert_eq!(init.wait_exit(), 0);
    assert_eq!(
        sandbox.order(),
        ["10-slow-stop.sh start", "10-slow-stop.sh stop"]
    );
}

/// Finding 1 of issue 26: a writer entered into the container's PID
/// namespace from outside (what `docker exec` does: its parent is not PID 1)
/// is a stray, while the chain of a client entered the same way that asks
/// for the quiesce is not.
#[test]
fn a_writer_entered_from_outside_the_namespace_is_a_stray_and_the_asking_client_is_not() {
    let sandbox = Sandbox::new("entered-writer");
    sandbox.recording_script("10-a.sh");
    let init = sandbox.start(&["--settle", "0.3"]);
    init.wait_for_line("running: 1 script(s) started");
    let target = init.pid.to_string();
    let written = sandbox.path("written");
    let stop_writing = sandbox.path("stop-writing");
    let mut writer = std::process::Command::new("nsenter")
        .args(["--target", &target, "--pid", "--", "sh", "-c"])
        .arg(format!(
            "while [ ! -e {stop} ]; do echo x >> {written}; sleep 0.2; done",
            stop = stop_writing.display(),
            written = written.display()
        ))
        .spawn()
        .unwrap();
    wait_until("the entered writer writes", || written.exists());
    // The client, entered the same way, under a shell that waits for it.
    let client = crate::harness::dind_init_argv().join(" ");
    let entered_quiesce = || {
        std::process::Command::new("nsenter")
            .args(["--target", &target, "--pid", "--", "sh", "-c"])
            .arg(format!(
                "{client} --socket {} quiesce; code=$?; exit $code",
                sandbox.socket.display()
            ))
            .output()
            .unwrap()
    };
    let refused = entered_quiesce();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("echo x >>"), "{stderr}");
    assert!(!stderr.contains("quiesce; code"), "{stderr}");

    fs::write(&stop_writing, "").unwrap();
    writer.wait().unwrap();
    let resumed = sandbox.client(&["resume"]);
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}");
    let safe = entered_quiesce();
    assert_eq!(
        safe.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&safe.stderr)
    );

    // SIGUSR1, and an entered client waiting for the phase: no stray either.
    let resumed = sandbox.client(&["resume"]);
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}");
    let waiting = std::process::Command::new("nsenter")
        .args(["--target", &target, "--pid", "--", "sh", "-c"])
        .arg(format!(
            "{client} --socket {} status --json --wait quiesced --timeout 20; code=$?; exit $code",
            sandbox.socket.display()
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Not ours, so not in `init.processes()`: looked for in the host's /proc.
    let waits = || {
        fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
                String::from_utf8_lossy(&cmdline).contains("status\0--json\0--wait\0quiesced")
            })
        })
    };
    wait_until("the entered client waits", waits);
    init.signal(Signal::SIGUSR1);
    let waited = waiting.wait_with_output().unwrap();
    assert!(waited.status.success(), "{waited:?}");
    let status: serde_json::Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(status["commit_safe"], true, "{status}");
}
