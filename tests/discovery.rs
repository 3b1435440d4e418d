use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use crate::harness::Sandbox;

#[test]
fn runs_executable_sh_files_in_byte_order_following_links() {
    let sandbox = Sandbox::new("discovery");
    for name in [
        "20-b.sh",
        "10-a.sh",
        "B-upper.sh",
        "a-lower.sh",
        "9-nine.sh",
    ] {
        sandbox.recording_script(name);
    }
    let hidden = sandbox.recording_script(".hidden.sh");
    sandbox.recording_script("not-a-script");
    let plain = sandbox.recording_script("30-plain.sh");
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    fs::create_dir(sandbox.init_d.join("40-dir.sh")).unwrap();
    fs::write(
        sandbox.init_d.join("40-dir.sh/inner.sh"),
        "#!/bin/sh\nexit 1\n",
    )
    .unwrap();
    let outside = sandbox.path("linked-target");
    fs::copy(&hidden, &outside).unwrap();
    symlink(&outside, sandbox.init_d.join("50-link.sh")).unwrap();
    symlink(
        sandbox.path("missing"),
        sandbox.init_d.join("60-dangling.sh"),
    )
    .unwrap();

    let init = sandbox.start(&[]);
    init.wait_for_line("running: 6 script(s) started");
    assert_eq!(
        sandbox.order(),
        [
            "10-a.sh start",
            "20-b.sh start",
            "50-link.sh start",
            "9-nine.sh start",
            "B-upper.sh start",
            "a-lower.sh start"
        ]
    );
    init.wait_for_line("30-plain.sh: not executable");
    init.wait_for_line("40-dir.sh: a directory");
    init.wait_for_line("60-dangling.sh: a symlink to nothing");
    let status = sandbox.status();
    let names: Vec<_> = status["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "10-a.sh",
            "20-b.sh",
            "50-link.sh",
            "9-nine.sh",
            "B-upper.sh",
            "a-lower.sh"
        ]
    );
}

#[test]
fn scripts_get_cwd_stdin_environment_and_an_empty_signal_mask() {
    let sandbox = Sandbox::new("script-env");
    let report = sandbox.path("report");
    sandbox.script(
        "10-env.sh",
        &format!(
            r#"{{
  echo "action=$1"
  echo "cwd=$(pwd)"
  echo "stdin=$(readlink /proc/self/fd/0)"
  echo "boot=$DIND_INIT_BOOT restored=$DIND_INIT_RESTORED reason=$DIND_INIT_REASON"
  echo "socket=$DIND_INIT_SOCKET"
  grep SigBlk /proc/self/status
  ps_pgid=$(cut -d' ' -f5 /proc/$$/stat); echo "own-group=$([ "$ps_pgid" = "$$" ] && echo yes || echo no)"
}} >> {}"#,
            report.display()
        ),
    );
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    let report = fs::read_to_string(&report).unwrap();
    let expected = [
        "action=start".to_string(),
        "cwd=/".to_string(),
        "stdin=/dev/null".to_string(),
        "boot=1 restored=0 reason=boot".to_string(),
        format!("socket={}", sandbox.socket.display()),
        "SigBlk:\t0000000000000000".to_string(),
        "own-group=yes".to_string(),
    ];
    assert_eq!(report.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn output_is_prefixed_even_from_a_daemon_after_its_script_exited() {
    let sandbox = Sandbox::new("output");
    let release = sandbox.path("release");
    sandbox.script(
        "10-daemon.sh",
        &format!(
            r#"case "$1" in
start) echo "to stdout"; echo "to stderr" >&2
       (while [ ! -e {release} ]; do sleep 0.02; done; echo "daemon speaks later") &
       echo $! > {pidfile} ;;
stop) kill $(cat {pidfile}) 2>/dev/null; true ;;
esac"#,
            release = release.display(),
            pidfile = sandbox.path("daemon.pid").display()
        ),
    );
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 1 script(s) started");
    init.wait_for_line("[10-daemon.sh] to stdout");
    init.wait_for_line("[10-daemon.sh] to stderr");
    fs::write(&release, "").unwrap();
    init.wait_for_line("[10-daemon.sh] daemon speaks later");
}

#[test]
fn hostile_names_are_escaped_and_risky_scripts_are_named() {
    let sandbox = Sandbox::new("hostile-names");
    sandbox.recording_script("10-a\ndind-init: forged line.sh");
    let open = sandbox.recording_script("20-open.sh");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let init = sandbox.start(&[]);
    init.wait_for_line("running: 2 script(s) started");
    let log = init.log();
    assert!(
        log.contains("10-a\\ndind-init: forged line.sh start"),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|line| line.starts_with("dind-init: forged line")),
        "{log}"
    );
    assert!(log.contains("20-open.sh is world-writable"), "{log}");
    assert_eq!(
        sandbox.status()["scripts"][0]["name"],
        "10-a\\ndind-init: forged line.sh"
    );
}

#[test]
fn missing_default_directory_means_no_scripts_like_tini() {
    let sandbox = Sandbox::new("no-initd");
    let output = crate::harness::dind_init_in_namespace()
        .arg("--socket")
        .arg(&sandbox.socket)
        .arg("--state")
        .arg(&sandbox.state)
        .args(["--", "sh", "-c", "exit 7"])
        .env_remove("DIND_INIT_DIR")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn explicit_missing_directory_is_a_clear_error() {
    let sandbox = Sandbox::new("bad-initd");
    let output = crate::harness::dind_init()
        .arg("--socket")
        .arg(&sandbox.socket)
        .env("DIND_INIT_DIR", sandbox.path("nope"))
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DIND_INIT_DIR")
            && stderr.contains("nope")
            && stderr.contains("no such directory"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.contains("error")).count(),
        1,
        "{stderr}"
    );
}
