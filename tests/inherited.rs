//! What children get of what the container gave dind-init: the main
//! command its signal mask, ignored signals, fds and socket activation,
//! exactly as without an init (tini's and catatonit's rules); scripts and
//! their daemons a clean set (no blocked or ignored signal, fds 0-2 only).

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::harness::{Sandbox, wait_until};

/// Bit of signal `signo` in a `/proc/PID/status` mask.
fn bit(signo: u32) -> u64 {
    1 << (signo - 1)
}

/// The container's signal state in these tests: blocked SIGHUP, SIGTERM
/// and the real-time 40 and 50 (32-34 cannot be handed on through here:
/// glibc's start-up, `unshare`'s, unblocks 32 and 33, musl's, dind-init's,
/// 33 and 34, before `main`); ignored SIGINT and SIGQUIT.
/// (`unshare` sets SIGCHLD back to its default, so an ignored SIGCHLD
/// never reaches a namespace's PID 1 from here.)
const BLOCKED: [u32; 4] = [1, 15, 40, 50];
const IGNORED: [u32; 2] = [2, 3];

fn mask(signals: &[u32]) -> u64 {
    signals.iter().map(|&s| bit(s)).fold(0, |a, b| a | b)
}

/// Makes `command` start with `blocked` blocked and `ignored` ignored, as
/// a container engine or a parent shell may hand them on.
fn with_signal_state(command: &mut Command, blocked: &'static [u32], ignored: &'static [u32]) {
    // SAFETY: between fork and exec only sigprocmask and signal, which are
    // async-signal-safe; nothing is allocated.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            let mut raw: u64 = 0;
            for &signo in blocked {
                raw |= 1 << (signo - 1);
            }
            // The raw system call: the C library refuses its own numbers.
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                &raw as *const u64,
                std::ptr::null_mut::<u64>(),
                8usize,
            );
            for &signo in ignored {
                libc::signal(signo as i32, libc::SIG_IGN);
            }
            Ok(())
        });
    }
}

/// `SigBlk` and `SigIgn` of a `/proc/PID/status` text.
fn blocked_and_ignored(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {status}"));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    (field("SigBlk:"), field("SigIgn:"))
}

#[test]
fn the_main_command_gets_the_containers_signal_mask_and_ignored_signals() {
    if crate::harness::under_emulation(
        "the_main_command_gets_the_containers_signal_mask_and_ignored_signals",
    ) {
        return;
    }
    let sandbox = Sandbox::new("main-signal-state");
    // No shell in between: dash clears its mask at start.
    let mut command = sandbox.command(&["--", "grep", "^Sig", "/proc/self/status"]);
    with_signal_state(&mut command, &BLOCKED, &IGNORED);
    let mut init = sandbox.start_command(command);
    // With SIGCHLD ignored by the container, dind-init still sees the exit.
    assert_eq!(init.wait_exit(), 0, "{}", init.log());
    let (blocked, ignored) = blocked_and_ignored(&init.log());
    assert_eq!(blocked, mask(&BLOCKED), "SigBlk {blocked:x}");
    // Nothing of what ran the tests (`nohup`): the harness starts from defaults.
    assert_eq!(ignored, mask(&IGNORED), "SigIgn {ignored:x}");
}

#[test]
fn scripts_get_no_blocked_or_ignored_signal() {
    if crate::harness::under_emulation("scripts_get_no_blocked_or_ignored_signal") {
        return;
    }
    let sandbox = Sandbox::new("script-signal-state");
    let seen = sandbox.path("script-status");
    sandbox.script(
        "10-report.sh",
        &format!(
            "[ \"$1\" = start ] && grep ^Sig /proc/self/status > {}",
            seen.display()
        ),
    );
    let mut command = sandbox.command(&["--", "true"]);
    with_signal_state(&mut command, &BLOCKED, &IGNORED);
    let mut init = sandbox.start_command(command);
    assert_eq!(init.wait_exit(), 0, "{}", init.log());
    let (blocked, ignored) = blocked_and_ignored(&fs::read_to_string(&seen).unwrap());
    assert_eq!(
        (blocked, ignored),
        (0, 0),
        "SigBlk {blocked:x} SigIgn {ignored:x}"
    );
}

#[test]
fn a_daemon_is_stoppable_when_the_container_ignores_sigterm() {
    let sandbox = Sandbox::new("daemon-ignored-term");
    sandbox.daemon_script("10-daemon.sh", "sleep 1000");
    let mut command = sandbox.command(&["--stop-timeout", "5"]);
    with_signal_state(&mut command, &[], &[15]);
    let _init = sandbox.start_command(command);
    sandbox.wait_phase("running");
    // Its stop's plain `kill` ends the daemon: the quiesce is commit-safe.
    let quiesce = sandbox.client(&["quiesce"]);
    assert_eq!(
        quiesce.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&quiesce.stderr)
    );
}

/// Where fd `fd` of process `pid` points, if it is open.
fn fd_target(pid: &str, fd: &str) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.display().to_string())
}

#[test]
fn the_main_command_gets_the_inherited_fds_and_scripts_do_not() {
    let sandbox = Sandbox::new("inherited-fds");
    let three = fs::File::create(sandbox.path("fd-three")).unwrap();
    let seven = fs::File::create(sandbox.path("fd-seven")).unwrap();
    let (three_fd, seven_fd) = (three.as_raw_fd(), seven.as_raw_fd());
    let report = |who: &str| {
        format!(
            "{{ echo \"pid=$$ listen_pid=${{LISTEN_PID-unset}} listen_fds=${{LISTEN_FDS-unset}}\"; ls -l /proc/$$/fd; }} > {}",
            sandbox.path(who).display()
        )
    };
    sandbox.script(
        "10-report.sh",
        &format!(
            "if [ \"$1\" = start ]; then {}; sh -c '{}; exec sleep 1000' & fi",
            report("script"),
            report("daemon").replace('\'', "'\\''"),
        ),
    );
    let mut command = sandbox.command(&[
        "--settle",
        "0.1",
        "--",
        "sh",
        "-c",
        &format!("{}; echo main reported; sleep 1000", report("main")),
    ]);
    command.env("LISTEN_PID", "1").env("LISTEN_FDS", "1");
    // SAFETY: between fork and exec only dup2 and close, which are
    // async-signal-safe. Through spare numbers first, since either file may
    // already be at 3 or 7 (where dup2 would keep its close-on-exec flag).
    unsafe {
        command.pre_exec(move || {
            libc::dup2(three_fd, 100);
            libc::dup2(seven_fd, 101);
            libc::dup2(100, 3);
            libc::dup2(101, 7);
            libc::close(100);
            libc::close(101);
            Ok(())
        });
    }
    let init = sandbox.start_command(command);
    init.wait_for_line("main reported");
    wait_until("the daemon reported", || sandbox.path("daemon").exists());
    let read = |who: &str| fs::read_to_string(sandbox.path(who)).unwrap();
    let main = read("main");
    let main_pid = main
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("pid=");
    assert!(
        main.starts_with(&format!(
            "pid={main_pid} listen_pid={main_pid} listen_fds=1"
        )),
        "LISTEN_PID names the main command: {main}"
    );
    assert!(
        main.contains(&format!("3 -> {}", sandbox.path("fd-three").display()))
            && main.contains(&format!("7 -> {}", sandbox.path("fd-seven").display())),
        "{main}"
    );
    for who in ["script", "daemon"] {
        let seen = read(who);
        assert!(
            seen.contains("listen_pid=unset listen_fds=unset")
                && !seen.contains("fd-three")
                && !seen.contains("fd-seven"),
            "{who}: {seen}"
        );
    }
    // dind-init closed its own copies once the main command had them.
    let own = init.pid.as_raw().to_string();
    for fd in ["3", "7"] {
        let target = fd_target(&own, fd).unwrap_or_default();
        assert!(
            !target.contains("fd-three") && !target.contains("fd-seven"),
            "{target}"
        );
    }
    drop((three, seven));
}
