//! What clients and the state file cannot make grow: waiters of requests
//! that gave up, strays with huge command lines, records loaded from disk.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::harness::{Sandbox, WAIT, wait_until};

/// The longest answer the client reads (`control::MAX_ANSWER`).
const CLIENT_ANSWER_LIMIT: usize = 16 * 1024 * 1024;

/// Resident memory of `pid` in KiB, from `/proc/PID/status`.
fn rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// One quiesce request that gives up at once; its answer, parsed.
fn impatient_quiesce(sandbox: &Sandbox) -> Value {
    let mut stream = UnixStream::connect(&sandbox.socket).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"{\"command\":\"quiesce\",\"timeout_ms\":0}\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}

#[test]
fn quiesce_requests_that_timed_out_are_not_kept_until_the_quiesce_ends() {
    let sandbox = Sandbox::new("impatient-quiesces");
    let release = sandbox.path("release-stop");
    sandbox.script(
        "10-slow-stop.sh",
        &format!(
            r#"if [ "$1" = stop ]; then echo stopping; while [ ! -e {} ]; do sleep 0.05; done; fi"#,
            release.display()
        ),
    );
    let init = sandbox.start(&["--log-level", "warn"]);
    sandbox.wait_phase("running");
    init.signal(Signal::SIGUSR1);
    init.wait_for_line("[10-slow-stop.sh] stopping");
    // Warm up: the allocator's and the runtime's own buffers reach their size.
    for _ in 0..1000 {
        impatient_quiesce(&sandbox);
    }
    let before = rss_kib(init.pid.as_raw());
    for _ in 0..10_000 {
        let answer = impatient_quiesce(&sandbox);
        assert_eq!(answer["ok"], false, "{answer}");
    }
    let grown = rss_kib(init.pid.as_raw()).saturating_sub(before);
    // Each kept waiter cost ~420 bytes: 10,000 of them ~4 MiB.
    assert!(grown < 1024, "grew by {grown} KiB over 10,000 requests");
    fs::write(&release, "").unwrap();
    sandbox.wait_phase("quiesced");
}

#[test]
fn status_stays_under_the_clients_limit_after_many_quiesces_with_huge_strays() {
    let sandbox = Sandbox::new("huge-strays");
    // Every start leaves a process with a 960 kB command line that its
    // stop does not end: one more stray at every quiesce.
    sandbox.script(
        "10-leaky.sh",
        r#"if [ "$1" = start ]; then
  big=$(head -c 120000 /dev/zero | tr '\0' x)
  sh -c 'sleep 1000; :' stray "$big" "$big" "$big" "$big" "$big" "$big" "$big" "$big" &
fi"#,
    );
    let _init = sandbox.start(&["--settle", "0.1"]);
    sandbox.wait_phase("running");
    for round in 1..=20 {
        let quiesce = sandbox.client(&["quiesce"]);
        assert_eq!(
            quiesce.status.code(),
            Some(1),
            "round {round}: not commit-safe"
        );
        let resume = sandbox.client(&["resume"]);
        assert!(
            resume.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&resume.stderr)
        );
    }
    let output = sandbox.client(&["status", "--json"]);
    assert!(
        output.stdout.len() < CLIENT_ANSWER_LIMIT / 16,
        "{} bytes",
        output.stdout.len()
    );
    let status: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "status failed ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(status["quiesces"].as_array().unwrap().len(), 20);
    let strays = status["strays"].as_array().unwrap();
    assert!(strays.len() > 1 && strays.len() <= 21, "{}", strays.len());
    for stray in strays {
        assert!(
            stray["command"].as_str().unwrap().len() <= 256 + 3,
            "{stray}"
        );
    }
}

#[test]
fn records_loaded_from_the_state_file_are_bounded_like_new_ones() {
    let sandbox = Sandbox::new("huge-state-file");
    let huge = "y".repeat(1024 * 1024);
    let stray = json!({"pid": 7, "ppid": 1, "state": "S", "command": huge});
    let quiesces: Vec<Value> = (1..=18)
        .map(|id| {
            json!({
                "id": id, "boot": 1, "at": huge, "commit_safe": false,
                "failed_stops": [huge], "strays": [stray],
            })
        })
        .collect();
    let state = json!({
        "boot_count": 1,
        "boots": [{"boot": 1, "at": "2026-01-01T00:00:00Z", "restored_from_quiesce": null}],
        "quiesces": quiesces,
        "quiesced": true,
    });
    fs::create_dir_all(sandbox.state.parent().unwrap()).unwrap();
    fs::write(&sandbox.state, serde_json::to_vec(&state).unwrap()).unwrap();
    let _init = sandbox.start(&[]);
    sandbox.wait_phase("running");
    let output = sandbox.client(&["status", "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stdout.len() < 1024 * 1024,
        "{} bytes",
        output.stdout.len()
    );
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["boot"]["restored_from_quiesce"], 18);
    let record = &status["quiesces"][17];
    assert!(record["strays"][0]["command"].as_str().unwrap().len() <= 256 + 3);
    assert!(record["failed_stops"][0].as_str().unwrap().len() <= 1024 + 3);
    // The file written back is bounded too.
    wait_until("the boot record is saved", || {
        fs::metadata(&sandbox.state).is_ok_and(|m| m.len() < 1024 * 1024)
    });
}
