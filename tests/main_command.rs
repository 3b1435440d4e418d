use std::fs;
use std::os::unix::fs::PermissionsExt;

use nix::sys::signal::Signal;

use crate::harness::Sandbox;

fn exit_code_of(sandbox: &Sandbox, command: &[&str]) -> i32 {
    let mut args = vec!["--"];
    args.extend_from_slice(command);
    sandbox.start(&args).wait_exit()
}

#[test]
fn exit_code_is_the_main_commands_or_128_plus_signal_127_126() {
    let sandbox = Sandbox::new("main-exit-codes");
    let not_executable = sandbox.path("not-executable");
    fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&not_executable, fs::Permissions::from_mode(0o644)).unwrap();
    let not_executable = not_executable.to_str().unwrap();

    assert_eq!(exit_code_of(&sandbox, &["sh", "-c", "exit 0"]), 0);
    assert_eq!(exit_code_of(&sandbox, &["sh", "-c", "exit 3"]), 3);
    assert_eq!(exit_code_of(&sandbox, &["/nonexistent/command"]), 127);
    assert_eq!(exit_code_of(&sandbox, &[not_executable]), 126);
    assert_eq!(exit_code_of(&sandbox, &["sh", "-c", "kill -KILL $$"]), 137);
    assert_eq!(exit_code_of(&sandbox, &["sh", "-c", "kill -TERM $$"]), 143);
}

#[test]
fn tini_style_command_without_double_dash() {
    let sandbox = Sandbox::new("main-no-dashes");
    let mut init = sandbox.start(&["sh", "-c", "exit 5"]);
    assert_eq!(init.wait_exit(), 5);
}

#[test]
fn signals_are_forwarded_to_the_main_command() {
    let sandbox = Sandbox::new("main-forward");
    let mut init = sandbox.start(&[
        "--",
        "sh",
        "-c",
        "trap 'echo got HUP' HUP; trap 'echo got USR-less TERM; exit 42' TERM; echo ready; while :; do sleep 0.01; done",
    ]);
    sandbox.wait_phase("running");
    init.wait_for_line("ready");
    init.signal(Signal::SIGHUP);
    init.wait_for_line("got HUP");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 42);
    assert!(init.log().contains("got USR-less TERM"));
}

#[test]
fn main_starts_after_the_starts_and_the_stops_run_after_it_exits() {
    let sandbox = Sandbox::new("main-order");
    sandbox.recording_script("10-a.sh");
    sandbox.recording_script("20-b.sh");
    let log = sandbox.path("order.log");
    let script = format!("echo \"main in $(pwd)\" >> {}; exit 4", log.display());
    let mut command = sandbox.command(&["--", "sh", "-c", &script]);
    command.current_dir(&sandbox.dir);
    let output = command.output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        sandbox.order(),
        [
            "10-a.sh start".to_string(),
            "20-b.sh start".to_string(),
            format!("main in {}", sandbox.dir.display()),
            "20-b.sh stop".to_string(),
            "10-a.sh stop".to_string(),
        ]
    );
}

#[test]
fn the_main_command_survives_a_quiesce_and_is_not_a_stray() {
    let sandbox = Sandbox::new("main-quiesce");
    sandbox.recording_script("10-a.sh");
    let mut init = sandbox.start(&["--", "sleep", "1009"]);
    init.wait_for_line("running: 1 script(s) started, main command pid");
    sandbox.quiesce_ok();
    let status = sandbox.status();
    assert_eq!(status["main"]["state"], "running");
    assert_eq!(status["main"]["command"][0], "sleep");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 143);
}
