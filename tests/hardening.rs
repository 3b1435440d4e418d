//! PID 1 that cannot be wedged (issue 18): every wait status decoded, the
//! C library's own signals, one answer per quiesce, the exit code decided
//! where the main command is reaped, the shutdown's time bound.

use std::process::Command;

use serde_json::Value;

use crate::daemons::{host_pid, script};
use crate::harness::{Sandbox, wait_until};

/// kill(2) with a number that has no `nix::Signal` variant.
fn send_raw_signal(pid: i32, signo: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signo}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signo} {pid}");
}

#[test]
fn a_main_command_killed_by_a_real_time_signal_exits_128_plus_it() {
    if crate::harness::under_emulation(
        "a_main_command_killed_by_a_real_time_signal_exits_128_plus_it",
    ) {
        return;
    }
    for signo in [37, 64] {
        let sandbox = Sandbox::new("rt-main");
        let script = format!("kill -{signo} $$");
        let mut init = sandbox.start(&["--", "sh", "-c", &script]);
        assert_eq!(init.wait_exit(), 128 + signo, "{}", init.log());
        assert!(!init.log().contains("waitpid failed"), "{}", init.log());
    }
}

#[test]
fn a_start_killed_by_a_real_time_signal_fails_instead_of_hanging() {
    let sandbox = Sandbox::new("rt-start");
    sandbox.script("10-rt.sh", "[ \"$1\" = start ] && kill -37 $$; exit 0");
    let mut init = sandbox.start(&["--start-timeout", "600"]);
    assert_eq!(init.wait_exit(), 3, "start failure: {}", init.log());
    let log = init.log();
    assert!(log.contains("killed by SIGRTMIN+"), "{log}");
}

#[test]
fn a_daemon_killed_by_a_real_time_signal_is_reported() {
    if crate::harness::under_emulation("a_daemon_killed_by_a_real_time_signal_is_reported") {
        return;
    }
    let sandbox = Sandbox::new("rt-daemon");
    sandbox.daemon_script("40-d.sh", "sleep 1041");
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    let pid = host_pid(&init, "sleep 1041");
    wait_until("the daemon is watched", || {
        script(&sandbox.status(), "40-d.sh")["daemons"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    });
    send_raw_signal(pid, 37);
    wait_until("the daemon's death is reported", || {
        script(&sandbox.status(), "40-d.sh")["state"] == "degraded"
    });
    let status = sandbox.status();
    assert_eq!(script(&status, "40-d.sh")["daemon_exit"]["exit_code"], 165);
    assert_eq!(status["healthy"], false);
}

/// A main command that gives 32, 33 and 34 their default action (kill it)
/// with the system call, whatever it inherited (the test's `unshare`
/// ignores 32 and 33; glibc's `signal` refuses both), then waits.
const DIES_OF_32_TO_34: &str = "import ctypes, time
default = (ctypes.c_ulong * 4)()
for signo in (32, 33, 34):
    assert ctypes.CDLL(None).syscall(13, signo, ctypes.byref(default), None, 8) == 0
print('ready', flush=True)
time.sleep(1043)";

/// The signals the C library keeps for itself (glibc 32 and 33, musl 32 to
/// 34) and unblocks when a thread starts reach the main command like any
/// other, as PID 1 (where an unblocked one is dropped) and as subreaper
/// (where it would kill dind-init): the main command dies of each.
/// Sent after a quiesce and resume too, which start blocking threads.
#[test]
fn the_c_librarys_own_signals_are_forwarded_as_pid_1_and_as_subreaper() {
    if crate::harness::under_emulation(
        "the_c_librarys_own_signals_are_forwarded_as_pid_1_and_as_subreaper",
    ) {
        return;
    }
    for as_pid_1 in [true, false] {
        for signo in [32, 33, 34] {
            let sandbox = Sandbox::new("libc-signals");
            let args = ["--", "python3", "-c", DIES_OF_32_TO_34];
            let mut init = sandbox.start_as(as_pid_1, &args);
            init.wait_for_line("ready");
            if signo == 33 {
                sandbox.quiesce_ok();
                assert_eq!(sandbox.client(&["resume"]).status.code(), Some(0));
                sandbox.wait_phase("running");
            }
            send_raw_signal(init.pid.as_raw(), signo);
            assert_eq!(
                init.wait_exit(),
                128 + signo,
                "signal {signo}, PID 1: {as_pid_1}: {}",
                init.log()
            );
        }
    }
}

/// A main command that exits with 100 + N when it gets fault signal N.
const EXITS_ON_A_FAULT_SIGNAL: &str = "import os, signal, time
for name in ('SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGSYS'):
    signal.signal(getattr(signal, name), lambda signo, frame: os._exit(100 + signo))
print('ready', flush=True)
while True:
    time.sleep(1047)";

/// The fault signals sent with `kill` (`docker kill -s ABRT`) reach the main
/// command, as with dumb-init: as PID 1 the kernel would drop them, and not
/// as PID 1 they would end dind-init, if they kept their default action.
#[test]
fn fault_signals_sent_with_kill_are_forwarded_as_pid_1_and_as_subreaper() {
    // qemu-user takes the host's fault signals for its own emulation (a
    // SIGILL sent to it under test ended it with SIGSEGV).
    if crate::harness::under_emulation(
        "fault_signals_sent_with_kill_are_forwarded_as_pid_1_and_as_subreaper",
    ) {
        return;
    }
    for as_pid_1 in [true, false] {
        for signo in [
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGABRT,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGSEGV,
            libc::SIGSYS,
        ] {
            let sandbox = Sandbox::new("fault-signals");
            let args = ["--", "python3", "-c", EXITS_ON_A_FAULT_SIGNAL];
            let mut init = sandbox.start_as(as_pid_1, &args);
            init.wait_for_line("ready");
            send_raw_signal(init.pid.as_raw(), signo);
            assert_eq!(
                init.wait_exit(),
                100 + signo,
                "signal {signo}, PID 1: {as_pid_1}: {}",
                init.log()
            );
        }
    }
}

/// `kill -USR1 1`, then `dind-init quiesce` while that quiesce runs (what
/// `docker kill -s USR1` and then `dind-init snapshot` do): the client gets
/// the running quiesce's answer, and nothing is left asked for, so the
/// resume that follows runs the starts and no second quiesce follows it.
#[test]
fn a_quiesce_joined_while_one_runs_leaves_nothing_for_the_resume() {
    let sandbox = Sandbox::new("joined-quiesce");
    let gate = sandbox.path("gate");
    sandbox.recording_script_then(
        "10-slow.sh",
        &format!(
            "[ \"$1\" = stop ] && while [ ! -e {} ]; do sleep 0.01; done; exit 0",
            gate.display()
        ),
    );
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    for round in 1..=3 {
        let _ = std::fs::remove_file(&gate);
        init.signal(nix::sys::signal::Signal::SIGUSR1);
        sandbox.wait_phase("quiescing");
        let joined = std::thread::scope(|scope| {
            let client = scope.spawn(|| sandbox.client(&["quiesce"]));
            init.wait_for_nth_line("already quiescing; it will answer when done", round);
            std::fs::write(&gate, "").unwrap();
            client.join().unwrap()
        });
        assert_eq!(
            joined.status.code(),
            Some(0),
            "round {round}: {}",
            init.log()
        );
        let resumed = sandbox.client(&["resume"]);
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "round {round}: resume {}: {}",
            String::from_utf8_lossy(&resumed.stderr),
            init.log()
        );
        // A request left behind acts right after the resume's starts; the
        // next quiesce, asked for now, would then join it or be refused.
        std::fs::write(&gate, "").unwrap();
        sandbox.quiesce_ok();
        assert_eq!(sandbox.client(&["resume"]).status.code(), Some(0));
        let status = sandbox.status();
        assert_eq!(status["phase"], "running", "{status}");
        let quiesces = status["quiesces"].as_array().unwrap();
        assert_eq!(quiesces.len(), 2 * round, "round {round}: {status}");
    }
    let starts = sandbox
        .order()
        .iter()
        .filter(|l| l.ends_with(" start"))
        .count();
    assert_eq!(starts, 1 + 2 * 3, "{:?}", sandbox.order());
}

/// A main command that ignores SIGTERM, with a script to stop: its exit
/// is SIGKILL, 137, in every round; the exit code is decided where the
/// main command is reaped, not when the message about it is handled.
#[test]
fn a_term_ignoring_main_command_always_exits_137() {
    const ROUNDS_PER_THREAD: usize = 15;
    let ignores_term = "trap '' TERM; echo ready; while :; do sleep 0.01; done";
    std::thread::scope(|scope| {
        for thread in 0..4 {
            scope.spawn(move || {
                for round in 0..ROUNDS_PER_THREAD {
                    let sandbox = Sandbox::new("term-ignoring-main");
                    sandbox.recording_script("10-a.sh");
                    let mut init =
                        sandbox.start(&["--grace", "0.1", "--", "sh", "-c", ignores_term]);
                    init.wait_for_line("ready");
                    init.signal(nix::sys::signal::Signal::SIGTERM);
                    assert_eq!(
                        init.wait_exit(),
                        137,
                        "thread {thread} round {round}: {}",
                        init.log()
                    );
                    assert_eq!(sandbox.order(), ["10-a.sh start", "10-a.sh stop"]);
                }
            });
        }
    });
}

/// A main command that ignores SIGTERM gets the grace period, then SIGKILL,
/// and only then do the stops run: the whole shutdown takes one grace
/// period plus the stops, not two (a second grace for what is left after
/// the stops would push the default past Docker's 10 s stop timeout).
#[test]
fn a_term_ignoring_main_command_is_killed_after_its_grace_before_the_stops() {
    let sandbox = Sandbox::new("term-ignoring-main-grace");
    let main_pid = sandbox.path("main.pid");
    sandbox.recording_script_then(
        "10-a.sh",
        &format!(
            "[ \"$1\" = stop ] || exit 0; if kill -0 \"$(cat {})\" 2>/dev/null; then echo 'main alive' >> {log}; else echo 'main gone' >> {log}; fi",
            main_pid.display(),
            log = sandbox.path("order.log").display()
        ),
    );
    let main = format!(
        "trap '' TERM; echo $$ > {}; echo ready; while :; do sleep 0.01; done",
        main_pid.display()
    );
    let grace = 3.0;
    let mut init = sandbox.start(&["--grace", &grace.to_string(), "--", "sh", "-c", &main]);
    init.wait_for_line("ready");
    let asked = std::time::Instant::now();
    init.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 137, "{}", init.log());
    let took = asked.elapsed().as_secs_f64();
    assert_eq!(
        sandbox.order(),
        ["10-a.sh start", "10-a.sh stop", "main gone"],
        "{}",
        init.log()
    );
    // Generous margins for a loaded machine: two grace periods is 6 s.
    assert!(took >= grace, "the main command had its grace: {took:.2}s");
    assert!(took < grace + 2.5, "one grace period, not two: {took:.2}s");
}

/// dind-init as a plain wrapper (no init.d scripts) touches no file on its
/// way in or out, as tini does; a boot that quiesces is recorded, with its
/// shutdown.
#[test]
fn a_wrapper_run_without_scripts_writes_no_state_file() {
    let sandbox = Sandbox::new("wrapper-no-state");
    let mut init = sandbox.start(&["--", "true"]);
    assert_eq!(init.wait_exit(), 0, "{}", init.log());
    assert!(
        !sandbox.state.exists(),
        "a wrapper run wrote the state file"
    );

    let mut init = sandbox.start(&["--", "sleep", "1044"]);
    sandbox.wait_phase("running");
    sandbox.quiesce_ok();
    init.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 143, "{}", init.log());
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&sandbox.state).unwrap()).unwrap();
    assert_eq!(state["boot_count"], 1, "{state}");
    assert_eq!(state["quiesces"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state["shut_down_cleanly"], true, "{state}");
}
