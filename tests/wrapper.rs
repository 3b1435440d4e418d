//! dind-init as a drop-in for tini and dumb-init (`dind-init -- CMD`):
//! signals meant for the main command reach it and it decides, it gets all
//! the time the engine gives it when nothing is left to stop, dind-init is
//! silent when it has nothing to tell, the quiesce and resume signals can be
//! moved or given up, and a terminal belongs to the main command.

use std::process::Command;

use nix::sys::signal::Signal;

use crate::harness::Sandbox;

/// A main command that reports the signals it handles, and exits 7 on SIGTERM.
const HANDLES_INT_THEN_TERM: &str = "trap 'echo got INT' INT; trap 'echo got QUIT' QUIT; \
     trap 'echo got TERM; exit 7' TERM; \
     echo ready; while :; do sleep 0.01; done";

#[test]
fn with_nothing_to_stop_the_main_command_decides_what_int_and_term_mean() {
    let sandbox = Sandbox::new("wrapper-int-term");
    let mut init = sandbox.start(&["--", "sh", "-c", HANDLES_INT_THEN_TERM]);
    init.wait_for_line("ready");
    init.signal(Signal::SIGINT);
    init.wait_for_line("got INT");
    // Still running: SIGINT was the main command's to handle.
    assert_eq!(sandbox.status()["phase"], "running", "{}", init.log());
    init.signal(Signal::SIGQUIT);
    init.wait_for_line("got QUIT");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 7, "{}", init.log());
    assert!(init.log().contains("got TERM"), "{}", init.log());
    assert!(
        !init.log().contains("killing every process"),
        "{}",
        init.log()
    );
}

#[test]
fn with_scripts_to_stop_a_later_signal_goes_to_the_main_command_not_to_a_forced_kill() {
    let sandbox = Sandbox::new("wrapper-int-term-stops");
    sandbox.recording_script("10-service.sh");
    let mut init = sandbox.start(&["--grace", "20", "--", "sh", "-c", HANDLES_INT_THEN_TERM]);
    init.wait_for_line("ready");
    init.signal(Signal::SIGINT);
    init.wait_for_line("got INT");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 7, "{}", init.log());
    assert!(
        !init.log().contains("killing every process"),
        "{}",
        init.log()
    );
    assert_eq!(
        sandbox.order(),
        ["10-service.sh start", "10-service.sh stop"],
        "the stop still ran after the main command exited"
    );
}

#[test]
fn with_nothing_to_stop_the_main_command_is_not_killed_after_the_grace_period() {
    let sandbox = Sandbox::new("wrapper-no-grace-kill");
    let mut init = sandbox.start(&[
        "--grace",
        "0.2",
        "--",
        "sh",
        "-c",
        "trap 'sleep 1; echo finished cleanly; exit 0' TERM; echo ready; while :; do sleep 0.01; done",
    ]);
    init.wait_for_line("ready");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0, "{}", init.log());
    assert!(init.log().contains("finished cleanly"), "{}", init.log());
}

#[test]
fn without_scripts_the_output_is_the_main_commands_alone() {
    let sandbox = Sandbox::new("wrapper-quiet");
    let output = sandbox
        .command(&["--", "sh", "-c", "echo out; echo err >&2; exit 3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "err\n");

    // A log level asked for is honoured, scripts or not. (Still boot 1: a
    // run without scripts is not recorded in the state file.)
    let output = sandbox
        .command(&["--log-level", "info", "--", "true"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("dind-init: boot 1"),
        "{output:?}"
    );
}

#[test]
fn usr1_and_usr2_reach_the_main_command_when_their_roles_are_none() {
    let sandbox = Sandbox::new("wrapper-usr-none");
    let mut init = sandbox.start_with_env(
        &[
            "--",
            "sh",
            "-c",
            "trap 'echo got USR1' USR1; trap 'echo got USR2' USR2; trap 'exit 0' TERM; \
             echo ready; while :; do sleep 0.01; done",
        ],
        &[
            ("DIND_INIT_QUIESCE_SIGNAL", "none"),
            ("DIND_INIT_RESUME_SIGNAL", "none"),
        ],
    );
    init.wait_for_line("ready");
    init.signal(Signal::SIGUSR1);
    init.wait_for_line("got USR1");
    init.signal(Signal::SIGUSR2);
    init.wait_for_line("got USR2");
    assert_eq!(sandbox.status()["phase"], "running");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0);
}

#[test]
fn a_moved_quiesce_signal_quiesces_and_usr1_is_forwarded() {
    let sandbox = Sandbox::new("wrapper-quiesce-hup");
    sandbox.recording_script("10-a.sh");
    // A main command without child processes (bash's read on a FIFO waits
    // by itself): its children would be strays, the quiesce not commit-safe.
    let fifo = sandbox.path("idle.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let main = format!(
        "trap 'echo got USR1' USR1; trap '' HUP; exec 3<> {}; echo ready; \
         while :; do read -t 1 -u 3; done",
        fifo.display()
    );
    let init = sandbox.start(&["--quiesce-signal", "SIGHUP", "--", "bash", "-c", &main]);
    init.wait_for_line("ready");
    init.signal(Signal::SIGUSR1);
    init.wait_for_line("got USR1");
    assert_eq!(sandbox.status()["phase"], "running");
    init.signal(Signal::SIGHUP);
    let status = sandbox.wait_phase("quiesced");
    assert_eq!(status["commit_safe"], true, "{}", init.log());
    assert_eq!(sandbox.order(), ["10-a.sh start", "10-a.sh stop"]);
}

#[test]
fn the_same_signal_for_both_roles_is_a_usage_error() {
    let sandbox = Sandbox::new("wrapper-same-signal");
    let output = sandbox
        .command(&[
            "--quiesce-signal",
            "HUP",
            "--resume-signal",
            "1",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("both SIGHUP"), "{stderr}");
    let output = sandbox
        .command(&["--quiesce-signal", "KILL", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// Signal 34, which musl keeps for itself and leaves out of a full signal
/// set (with 32 and 33, which a glibc program such as bash cannot trap, so
/// they are checked in `sys`'s unit test instead), is forwarded like any other.
#[test]
fn signal_34_is_forwarded_and_never_kills_dind_init() {
    let catches_34 =
        "trap 'echo got 34' 34; trap 'exit 0' TERM; echo ready; while :; do sleep 0.01; done";
    let sandbox = Sandbox::new("wrapper-signal-34");
    let mut init = sandbox.start(&["--", "bash", "-c", catches_34]);
    init.wait_for_line("ready");
    send_raw_signal(&init, 34);
    init.wait_for_line("got 34");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0);

    // Not PID 1, its default action would kill dind-init (exit 162).
    let sandbox = Sandbox::new("wrapper-signal-34-subreaper");
    let mut init = sandbox.start_as_subreaper(&["--", "bash", "-c", catches_34]);
    init.wait_for_line("ready");
    send_raw_signal(&init, 34);
    init.wait_for_line("got 34");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0);
}

/// kill(2) with a number that has no `nix::Signal` variant.
fn send_raw_signal(init: &crate::harness::Init, signo: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signo}"))
        .arg(init.pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `dind-init ARGS` as PID 1 on a new pseudo-terminal (util-linux
/// `script`), feeding `input`; returns everything the terminal showed.
fn on_a_terminal(sandbox: &Sandbox, args: &[&str], input: &str) -> (i32, String) {
    let command = sandbox.command(args);
    let mut line = vec![shell_quote(&command.get_program().to_string_lossy())];
    line.extend(
        command
            .get_args()
            .map(|a| shell_quote(&a.to_string_lossy())),
    );
    let mut script = Command::new("timeout");
    script
        .args(["20", "script", "--quiet", "--return", "--command"])
        .arg(line.join(" "))
        .arg("/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = script.spawn().expect("cannot run util-linux script");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
    (output.status.code().unwrap_or(-1), shown)
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn on_a_terminal_the_main_command_is_in_the_foreground_and_alone_on_screen() {
    let sandbox = Sandbox::new("wrapper-pty");
    let (code, shown) = on_a_terminal(
        &sandbox,
        &[
            "--",
            "sh",
            "-c",
            "read -r _ _ _ _ pgrp _ _ tpgid _ < /proc/self/stat; \
             [ \"$pgrp\" = \"$tpgid\" ] && echo foreground || echo \"background: $pgrp vs $tpgid\"",
        ],
        "",
    );
    assert_eq!((code, shown.as_str()), (0, "foreground\n"));
}

#[test]
fn an_interactive_shell_under_it_has_job_control() {
    let sandbox = Sandbox::new("wrapper-job-control");
    let (code, shown) = on_a_terminal(
        &sandbox,
        &["--", "bash", "--norc", "--noprofile", "-i"],
        // "fl""ags:" so that the echoed input line does not match.
        "echo \"fl\"\"ags:$-\"\nsleep 0.1 & wait %1 && echo job-done\nexit 4\n",
    );
    assert_eq!(code, 4, "{shown}");
    assert!(!shown.contains("no job control"), "{shown}");
    assert!(!shown.contains("dind-init"), "{shown}");
    let flags = shown
        .lines()
        .find_map(|l| l.split_once("flags:").map(|(_, flags)| flags))
        .unwrap_or_else(|| panic!("no flags line: {shown}"));
    assert!(flags.contains('m'), "monitor mode off: {flags}");
    assert!(shown.contains("job-done"), "{shown}");
}
