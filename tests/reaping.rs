use nix::sys::signal::Signal;

use crate::harness::{Sandbox, wait_until};

const ORPHANS: usize = 2000;

/// Forks `count` orphans: each `(true &)` subshell leaves a child behind and
/// exits at once, so the child is re-parented to PID 1 before it exits.
fn orphan_maker(count: usize) -> String {
    format!(
        "i=0; while [ $i -lt {count} ]; do (true &); i=$((i+1)); done; echo spawned; exec sleep 1010"
    )
}

#[test]
fn two_thousand_orphaned_zombies_are_reaped_and_the_main_status_is_kept() {
    let sandbox = Sandbox::new("zombies");
    // A script's exit status must still arrive while the orphans flood in.
    sandbox.script("10-orphans.sh", "if [ \"$1\" = start ]; then i=0; while [ $i -lt 200 ]; do (true &); i=$((i+1)); done; fi; exit 0");
    let mut init = sandbox.start(&["--", "sh", "-c", &orphan_maker(ORPHANS)]);
    init.wait_for_line("running: 1 script(s) started");
    init.wait_for_line("spawned");
    wait_until("only the main command is left, no zombie", || {
        let left = init.processes();
        left.len() == 1 && left[0].cmdline == "sleep 1010"
    });
    assert_eq!(sandbox.status()["scripts"][0]["start"]["exit_code"], 0);
    init.signal(Signal::SIGTERM);
    assert_eq!(
        init.wait_exit(),
        143,
        "the main command's status was not lost to the reaper"
    );
}

#[test]
fn when_not_pid_1_it_becomes_a_subreaper_and_reaps_its_orphans() {
    let sandbox = Sandbox::new("subreaper");
    let mut init = sandbox.start_as_subreaper(&["--", "sh", "-c", &orphan_maker(50)]);
    init.wait_for_line("spawned");
    wait_until("the orphans are reaped", || {
        let left = init.processes();
        left.len() == 1 && left[0].cmdline == "sleep 1010"
    });
    // Registered as subreaper, nothing is lost: no warning on the terminal.
    // Only where the kernel refuses the subreaper (qemu-user does) may orphans
    // be lost, and only then is there a warning, saying so.
    let log = init.log();
    if log.contains("not running as PID 1") {
        assert!(log.contains("cannot become child subreaper"), "{log}");
    }
    assert!(!log.contains("registered as child subreaper"), "{log}");
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 143);
}
