use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::harness::{Init, Sandbox, wait_until};

/// The host pid of the one process of `init`'s namespace running exactly `cmdline`.
pub(crate) fn host_pid(init: &Init, cmdline: &str) -> i32 {
    let mut found = None;
    wait_until(&format!("`{cmdline}` runs"), || {
        found = init
            .processes()
            .into_iter()
            .find(|p| p.cmdline == cmdline && p.state != 'Z')
            .map(|p| p.pid);
        found.is_some()
    });
    found.unwrap()
}

/// SIGKILL to `pid`, then waits until its parent (dind-init) has reaped it.
fn kill_and_wait_reaped(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    wait_until(&format!("{pid} is reaped"), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
}

pub(crate) fn script<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no script {name}: {status}"))
}

/// Waits until `status` lists exactly `commands` as the daemons of `name`
/// (a daemon seen before its exec shows its script's command line for a
/// moment) and returns that status.
fn wait_for_daemons(sandbox: &Sandbox, name: &str, commands: &[&str]) -> Value {
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    loop {
        let status = sandbox.status();
        if daemon_commands(script(&status, name)) == commands {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} does not list daemons {commands:?}: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn daemon_commands(script: &Value) -> Vec<String> {
    script["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["command"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_daemon_killed_with_sigkill_degrades_its_script_on_the_first_status_after() {
    let sandbox = Sandbox::new("daemon-killed");
    sandbox.daemon_script("40-dockerd.sh", "sleep 1001");
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    let status = wait_for_daemons(&sandbox, "40-dockerd.sh", &["sleep 1001"]);
    assert_eq!(status["healthy"], true);
    let script_status = script(&status, "40-dockerd.sh");
    let pid_inside = script_status["daemons"][0]["pid"].as_i64().unwrap();
    assert!(
        script_status["daemons"][0]["started_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    kill_and_wait_reaped(host_pid(&init, "sleep 1001"));
    // No waiting for a state here: the very first status after the reaping
    // must tell (target: within 100 ms of the kill; this is much stricter).
    let status = sandbox.status();
    assert_eq!(status["healthy"], false, "{status}");
    let script_status = script(&status, "40-dockerd.sh");
    assert_eq!(script_status["state"], "degraded");
    let exit = &script_status["daemon_exit"];
    assert_eq!(exit["pid"], pid_inside);
    assert_eq!(exit["command"], "sleep 1001");
    assert_eq!(exit["how"], "killed by SIGKILL");
    assert_eq!(exit["exit_code"], 137);
    assert_eq!(script_status["daemons"].as_array().unwrap().len(), 0);
    init.wait_for_line(&format!(
        "[40-dockerd.sh] daemon {pid_inside} (sleep 1001) killed by SIGKILL"
    ));

    let table = sandbox.client(&["status"]);
    assert_eq!(table.status.code(), Some(1), "unhealthy");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("degraded"), "{table}");
    assert!(
        table.contains(&format!(
            "daemon {pid_inside} (sleep 1001) killed by SIGKILL at "
        )),
        "{table}"
    );

    // A quiesce and a resume bring it back, healthy.
    sandbox.quiesce_ok();
    assert_eq!(sandbox.client(&["resume"]).status.code(), Some(0));
    assert_eq!(sandbox.status()["healthy"], true);
}

#[test]
fn a_daemon_stopped_by_its_own_stop_is_not_reported() {
    let sandbox = Sandbox::new("daemon-stopped");
    sandbox.daemon_script("10-db.sh", "sleep 1002");
    sandbox.daemon_script("20-web.sh", "sleep 1003");
    let mut init = sandbox.start(&["--on-daemon-exit", "shutdown"]);
    init.wait_for_line("running: 2 script(s) started");
    let status = sandbox.quiesce_ok();
    assert!(String::from_utf8_lossy(&status.stdout).contains("safe to docker commit"));
    assert_eq!(sandbox.client(&["resume"]).status.code(), Some(0));
    init.signal(Signal::SIGTERM);
    assert_eq!(init.wait_exit(), 0, "{}", init.log());
    let log = init.log();
    assert!(
        !log.contains(") killed by") && !log.contains(") exited with"),
        "{log}"
    );
    assert!(!log.contains("on-daemon-exit=shutdown"), "{log}");
}

#[test]
fn restart_brings_the_daemon_back_until_the_rate_limit() {
    let sandbox = Sandbox::new("daemon-restart");
    sandbox.daemon_script("10-node.sh", "sleep 1004");
    let init = sandbox.start_with_env(&[], &[("DIND_INIT_ON_DAEMON_EXIT", "restart")]);
    init.wait_for_line("running: 1 script(s) started");
    let mut pids = Vec::new();
    for restarts in 1..=5 {
        let pid = host_pid(&init, "sleep 1004");
        assert!(!pids.contains(&pid), "a new daemon each time");
        pids.push(pid);
        kill_and_wait_reaped(pid);
        wait_until(&format!("restart {restarts} done"), || {
            let status = sandbox.status();
            let node = script(&status, "10-node.sh");
            node["restarts"] == restarts && node["state"] == "started" && status["healthy"] == true
        });
    }
    let status = wait_for_daemons(&sandbox, "10-node.sh", &["sleep 1004"]);
    let node = script(&status, "10-node.sh");
    assert_eq!(node["daemon_exit"]["how"], "killed by SIGKILL");
    // Each restart ran the stop, then the start.
    let order = sandbox.order();
    assert_eq!(order.len(), 11, "{order:?}");
    assert!(
        order[1..]
            .chunks(2)
            .all(|pair| pair == ["10-node.sh stop", "10-node.sh start"])
    );

    // The sixth death within the minute: no restart, degraded for good.
    kill_and_wait_reaped(host_pid(&init, "sleep 1004"));
    init.wait_for_line("[10-node.sh] not restarted: 5 restarts within 60s already");
    let status = sandbox.status();
    assert_eq!(script(&status, "10-node.sh")["state"], "degraded");
    assert_eq!(script(&status, "10-node.sh")["restarts"], 5);
    assert_eq!(status["healthy"], false);
    assert_eq!(sandbox.order().len(), 11);
}

#[test]
fn shutdown_policy_stops_everything_and_exits_4() {
    let sandbox = Sandbox::new("daemon-shutdown");
    sandbox.recording_script("10-first.sh");
    sandbox.daemon_script("20-db.sh", "sleep 1005");
    let mut init = sandbox.start(&["--on-daemon-exit=shutdown"]);
    init.wait_for_line("running: 2 script(s) started");
    kill_and_wait_reaped(host_pid(&init, "sleep 1005"));
    assert_eq!(init.wait_exit(), 4, "{}", init.log());
    assert_eq!(
        sandbox.order(),
        [
            "10-first.sh start",
            "20-db.sh start",
            "20-db.sh stop",
            "10-first.sh stop"
        ]
    );
    // Already logged (dind-init exited): each returns at once.
    init.wait_for_line("[20-db.sh] shutting down (on-daemon-exit=shutdown)");
    init.wait_for_line("shutdown complete: exiting with code 4");
}

#[test]
fn a_double_forking_daemon_is_followed_and_orphans_are_attributed() {
    let sandbox = Sandbox::new("daemon-attribution");
    let go = sandbox.path("go");
    let go = go.display();
    // Forks a middle process that, a moment after the start, starts a
    // setsid'd daemon and exits 0: a hand-over, not a death.
    sandbox.script(
        "10-double.sh",
        &format!(
            r#"[ "$1" = start ] && ( while [ ! -e {go} ]; do sleep 0.01; done; setsid sleep 1006 & exit 0 ) &
true"#
        ),
    );
    // A daemon that, while 30's start runs, leaves an orphan in its own
    // process group (re-parented to dind-init), then goes on.
    sandbox.script(
        "20-forker.sh",
        &format!(
            r#"[ "$1" = start ] && sh -c 'while [ ! -e {go}2 ]; do sleep 0.01; done; (sleep 1007 &); exec sleep 1008' &
true"#
        ),
    );
    // Releases both, waits until the orphan is ours, and leaves a daemon of its own.
    sandbox.script(
        "30-later.sh",
        &format!(
            r#"[ "$1" = start ] || exit 0
touch {go}2
until pid=$(pgrep -xf 'sleep 1007') && [ "$(awk '{{print $4}}' /proc/$pid/stat)" = 1 ]; do sleep 0.01; done
sleep 1009 &"#
        ),
    );
    // The main command's orphan is its own: unattributed.
    let init = sandbox.start(&["--", "sh", "-c", "(sleep 1010 &); exec sleep 1011"]);
    init.wait_for_line("running: 3 script(s) started");
    wait_for_daemons(&sandbox, "30-later.sh", &["sleep 1009"]);
    let status = sandbox.status();
    let forker = daemon_commands(script(&status, "20-forker.sh"));
    assert_eq!(forker.len(), 2, "{status}");
    assert!(forker.contains(&"sleep 1007".to_string()), "{status}");

    // The hand-over: the middle process exits 0, its setsid'd child stays.
    std::fs::write(sandbox.path("go"), "").unwrap();
    init.wait_for_line("handing over to 1 process(es) now watched");
    let status = wait_for_daemons(&sandbox, "10-double.sh", &["sleep 1006"]);
    assert_eq!(
        script(&status, "10-double.sh")["state"],
        "started",
        "{status}"
    );
    assert_eq!(status["healthy"], true);

    // A death found the main command's orphan: listed, unattributed.
    kill_and_wait_reaped(host_pid(&init, "sleep 1009"));
    wait_until("the main command's orphan is listed", || {
        sandbox.status()["unattributed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["command"] == "sleep 1010")
    });
    // And the setsid'd successor is watched like any daemon of 10-double.sh.
    kill_and_wait_reaped(host_pid(&init, "sleep 1006"));
    let status = sandbox.status();
    assert_eq!(script(&status, "10-double.sh")["state"], "degraded");
    assert_eq!(
        script(&status, "10-double.sh")["daemon_exit"]["command"],
        "sleep 1006"
    );
}

#[test]
fn the_output_tail_of_a_failed_start_is_in_status_and_logs() {
    let sandbox = Sandbox::new("tail");
    sandbox.script(
        "10-broken.sh",
        r#"[ "$1" = start ] || exit 0
echo line one
printf 'with \033[31mcolour\033[0m\n'
echo oops >&2
exit 1"#,
    );
    sandbox.script("20-fine.sh", "echo hello from $1");
    let init = sandbox.start(&["--on-start-failure", "continue"]);
    init.wait_for_line("running with 1 failed start(s)");
    let expected = ["line one", "with \\x1b[31mcolour\\x1b[0m", "oops"];
    wait_until("the broken script's output is kept", || {
        let status = sandbox.status();
        let tail: Vec<_> = script(&status, "10-broken.sh")["tail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        expected.iter().all(|line| tail.contains(&line.to_string()))
    });
    let status = sandbox.status();
    assert_eq!(script(&status, "20-fine.sh")["tail"][0], "hello from start");

    let table = sandbox.client(&["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    for line in expected {
        assert!(table.contains(&format!("    | {line}")), "{table}");
    }
    assert!(!table.contains("| hello from start"), "{table}");

    let logs = sandbox.client(&["logs", "10-broken.sh"]);
    assert_eq!(logs.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&logs.stdout);
    for line in expected {
        assert!(printed.lines().any(|l| l == line), "{printed}");
    }
    let missing = sandbox.client(&["logs", "99-nope.sh"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("scripts: 10-broken.sh, 20-fine.sh"));

    // When running was reached, and how long starting took.
    assert!(status["running_since"].as_str().unwrap().ends_with('Z'));
    assert_eq!(status["phases"][0]["phase"], "starting");
    assert!(status["phases"][0]["duration_ms"].is_u64());
    assert_eq!(status["phases"][1]["phase"], "running");
    assert!(status["phases"][1]["duration_ms"].is_null());
    assert!(table.contains("phases:  starting "), "{table}");
}
