//! End-to-end tests against the real Docker engine: the images users run,
//! `docker exec` status, `docker kill -s USR1`, `docker commit`, `docker
//! stop`, HEALTHCHECK, non-root runs and the staged Makefiles.
//!
//! They are `#[ignore]`d in a bare `cargo test` (visible in its count of
//! ignored tests) because they need an engine and the base image that
//! `make base` builds; `make test` (the README's test command, run by CI)
//! builds it and runs them. With no reachable engine they fail, loudly.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::wait_until;

/// The base image the tests build on: `DIND_INIT_BASE_IMAGE`, as `make
/// base` builds it (default `dind-init/base:latest`).
pub(crate) fn base_image() -> String {
    std::env::var("DIND_INIT_BASE_IMAGE").unwrap_or_else(|_| "dind-init/base:latest".to_string())
}

/// `docker run` flags for a HEALTHCHECK of `dind-init status` every second
/// that turns unhealthy at the first failure.
pub(crate) const FAST_HEALTHCHECK: [&str; 6] = [
    "--health-cmd",
    "dind-init status",
    "--health-interval",
    "1s",
    "--health-retries",
    "1",
];

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `ENGINE ARGS` (`docker` or `podman`), returning its output whatever the exit code.
pub(crate) fn engine(engine: &str, args: &[&str]) -> Output {
    Command::new(engine)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run the {engine} client: {error}"))
}

/// Runs `ENGINE ARGS` and returns its trimmed stdout; fails the test if it fails.
pub(crate) fn engine_ok(engine_name: &str, args: &[&str]) -> String {
    let output = engine(engine_name, args);
    assert!(
        output.status.success(),
        "{engine_name} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Runs `docker ARGS`, returning its output whatever the exit code.
pub(crate) fn docker(args: &[&str]) -> Output {
    engine("docker", args)
}

/// Runs `docker ARGS` and returns its trimmed stdout; fails the test if it fails.
pub(crate) fn docker_ok(args: &[&str]) -> String {
    engine_ok("docker", args)
}

pub(crate) fn require_engine() {
    let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        info.status.success(),
        "no Docker engine reachable ({}); these tests need one",
        String::from_utf8_lossy(&info.stderr).trim()
    );
    let base = base_image();
    assert!(
        docker(&["image", "inspect", &base]).status.success(),
        "image {base} is missing: run `make base` (or `make test`)"
    );
}

pub(crate) fn unique(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// An image built FROM the base image with init.d scripts, removed on drop.
pub(crate) struct TestImage {
    pub(crate) tag: String,
}

impl TestImage {
    /// `scripts`: (file name, shell body after the shebang).
    pub(crate) fn build(name: &str, scripts: &[(&str, &str)], examples: bool) -> Self {
        require_engine();
        let tag = format!("dind-init-e2e/{}:latest", unique(name));
        let context = std::env::temp_dir().join(unique("dind-init-e2e-context"));
        let init_d = context.join("init.d");
        fs::create_dir_all(&init_d).unwrap();
        if examples {
            for entry in fs::read_dir(repo_root().join("init.d-examples"))
                .unwrap()
                .flatten()
            {
                // init.d-examples/dind/ holds the docker-in-docker set, not for these images.
                if entry.path().is_file() {
                    fs::copy(entry.path(), init_d.join(entry.file_name())).unwrap();
                }
            }
        }
        for (file, body) in scripts {
            let path = init_d.join(file);
            fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(
            context.join("Dockerfile"),
            format!(
                "FROM {}\nCOPY init.d/ /etc/dind-init/init.d/\n",
                base_image()
            ),
        )
        .unwrap();
        docker_ok(&["build", "-q", "-t", &tag, context.to_str().unwrap()]);
        fs::remove_dir_all(&context).unwrap();
        TestImage { tag }
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.tag]);
    }
}

/// An image tag a test made (on `engine`), removed on drop.
pub(crate) struct OwnedImage {
    pub(crate) engine: &'static str,
    pub(crate) tag: String,
}

impl Drop for OwnedImage {
    fn drop(&mut self) {
        let _ = engine(self.engine, &["rmi", "-f", &self.tag]);
    }
}

/// The image tags of the staged example (`docker/stages/`) under a `REPO`.
pub(crate) const EXAMPLE_STAGE_TAGS: [&str; 6] = [
    "10-service:tmp",
    "10-service:latest",
    "20-deploy:tmp",
    "20-deploy:latest",
    "30-deposit:tmp",
    "30-deposit:latest",
];

/// A container, removed with `ENGINE rm -f` on drop.
pub(crate) struct Container {
    pub(crate) id: String,
    /// The engine's CLI that runs it: `docker` or `podman`.
    pub(crate) engine: &'static str,
}

impl Container {
    pub(crate) fn run(image: &str, flags: &[&str]) -> Self {
        Container::run_on("docker", image, flags)
    }

    pub(crate) fn run_on(engine: &'static str, image: &str, flags: &[&str]) -> Self {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.push(image);
        Container {
            id: engine_ok(engine, &args),
            engine,
        }
    }

    pub(crate) fn exec(&self, command: &[&str]) -> Output {
        let mut args = vec!["exec", self.id.as_str()];
        args.extend_from_slice(command);
        engine(self.engine, &args)
    }

    pub(crate) fn exec_ok(&self, command: &[&str]) -> String {
        let mut args = vec!["exec", self.id.as_str()];
        args.extend_from_slice(command);
        engine_ok(self.engine, &args)
    }

    pub(crate) fn wait_phase(&self, phase: &str) -> Value {
        let output = self.exec(&[
            "dind-init",
            "status",
            "--json",
            "--wait",
            phase,
            "--timeout",
            "60",
        ]);
        assert!(
            output.status.success(),
            "phase {phase} not reached: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    pub(crate) fn logs(&self) -> String {
        let output = engine(self.engine, &["logs", &self.id]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    pub(crate) fn inspect(&self, format: &str) -> String {
        engine_ok(self.engine, &["inspect", "-f", format, &self.id])
    }

    /// `docker stop -t 30`, which must end with exit code 0 (Docker's own
    /// SIGKILL after 30 s would give 137); returns the logs.
    fn stop_expecting_exit_zero(&self) -> String {
        docker_ok(&["stop", "-t", "30", &self.id]);
        let logs = self.logs();
        assert_eq!(self.inspect("{{.State.ExitCode}}"), "0", "{logs}");
        logs
    }

    /// Waits for the container to stop by itself and returns its exit code.
    fn wait_exit(&self) -> i32 {
        docker_ok(&["wait", &self.id]).parse().unwrap()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // -v: the anonymous volumes too (the DinD L2 image declares one).
        let _ = engine(self.engine, &["rm", "-f", "-v", &self.id]);
    }
}

/// Builds a test image and runs it until dind-init reports `running`.
pub(crate) fn started(
    name: &str,
    scripts: &[(&str, &str)],
    examples: bool,
    flags: &[&str],
) -> (TestImage, Container) {
    let image = TestImage::build(name, scripts, examples);
    let container = Container::run(&image.tag, flags);
    container.wait_phase("running");
    (image, container)
}

/// `make -C STAGE_DIR image REPO=repo EXTRA...`, which must succeed; the
/// commits use the `dind-init snapshot` under test.
pub(crate) fn make_stage_image(stage_dir: &std::path::Path, repo: &str, extra: &[&str]) {
    let output = Command::new("make")
        .arg("-C")
        .arg(stage_dir)
        .arg("image")
        .arg(format!("REPO={repo}"))
        .args(extra)
        .env("DIND_INIT", env!("CARGO_BIN_EXE_dind-init"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "make image failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn script_names(status: &Value) -> Vec<(String, String)> {
    status["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub(crate) fn checksum(container: &Container, dir: &str) -> String {
    container.exec_ok(&[
        "sh",
        "-c",
        &format!("cd {dir} && find . -type f | sort | xargs md5sum | md5sum"),
    ])
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn status_shows_every_script_started() {
    let (_image, container) = started("status", &[], true, &[]);
    let status = container.wait_phase("running");
    assert_eq!(status["pid"], 1);
    assert_eq!(
        script_names(&status),
        [
            ("10-seed-data.sh".into(), "started".into()),
            ("20-httpd.sh".into(), "started".into())
        ]
    );
    let table = container.exec_ok(&["dind-init", "status"]);
    assert!(
        table.contains("running (healthy)") && table.contains("20-httpd.sh"),
        "{table}"
    );
}

/// The README's cycle by hand on the container's engine: data written
/// after boot, `ENGINE kill -s USR1`, `status --wait quiesced` through
/// `ENGINE exec`, `ENGINE commit`, and the committed image (run with
/// `flags`) restores every byte at boot 2.
pub(crate) fn commit_by_signal_and_restore(container: Container, flags: &[&str]) {
    let engine_name = container.engine;
    container.exec_ok(&["sh", "-c", "head -c 3000000 /dev/urandom > /srv/www/blob.bin && echo written-after-boot > /srv/www/late.txt"]);
    let before = checksum(&container, "/srv/www");

    engine_ok(engine_name, &["kill", "-s", "USR1", &container.id]);
    let status = container.wait_phase("quiesced");
    assert_eq!(status["commit_safe"], true, "{}", container.logs());
    let committed = OwnedImage {
        engine: engine_name,
        tag: format!("localhost/dind-init-e2e/{}:latest", unique("committed")),
    };
    engine_ok(engine_name, &["commit", &container.id, &committed.tag]);
    drop(container);

    let restored = Container::run_on(engine_name, &committed.tag, flags);
    let status = restored.wait_phase("running");
    assert_eq!(status["boot"]["boot"], 2);
    assert_eq!(status["boot"]["restored"], true);
    assert_eq!(status["boot"]["restored_from_quiesce"], 1);
    assert_eq!(checksum(&restored, "/srv/www"), before);
    assert!(
        restored.logs().contains("restored=1): skipping"),
        "{}",
        restored.logs()
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn quiesce_by_signal_commit_and_restore_brings_every_byte_back() {
    let (_image, container) = started("commit", &[], true, &[]);
    commit_by_signal_and_restore(container, &[]);
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn staged_makefiles_commit_two_stages_deep_and_refuse_an_unsafe_commit() {
    require_engine();
    let repo = unique("dind-init-e2e-stages");
    let stage_30 = repo_root().join("docker/stages/30-deposit");
    make_stage_image(
        &stage_30,
        &repo,
        &["RUN_FLAGS=-e DEPLOY_RECORDS=100 -e DEPOSIT_RECORDS=10"],
    );

    let final_image = format!("{repo}/30-deposit:latest");
    let container = Container::run(&final_image, &[]);
    let status = container.wait_phase("running");
    assert_eq!(status["boot"]["boot"], 3);
    assert_eq!(status["boot"]["restored_from_quiesce"], 2);
    assert_eq!(status["quiesces"].as_array().unwrap().len(), 2);
    let summary = container.exec_ok(&["wget", "-qO-", "http://127.0.0.1:8080/cgi-bin/summary.cgi"]);
    assert!(summary.contains("records 110"), "{summary}");
    drop(container);

    // A stage whose start leaves a process its stop does not end must not be committed.
    let stage = std::env::temp_dir().join(unique("dind-init-e2e-leaky-stage"));
    let init_d = stage.join("l2/etc/dind-init/init.d");
    fs::create_dir_all(&init_d).unwrap();
    fs::create_dir_all(stage.join("l1")).unwrap();
    fs::write(
        stage.join("l1/Dockerfile"),
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY l2/ /\n",
    )
    .unwrap();
    let leaky = init_d.join("40-leaky.sh");
    fs::write(
        &leaky,
        "#!/bin/sh\nif [ \"$1\" = start ]; then sleep 1000 & fi\n",
    )
    .unwrap();
    fs::set_permissions(&leaky, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        stage.join("Makefile"),
        format!(
            "STAGE := 40-leaky\nBASE_STAGE :=\nNEEDS_COMMIT := yes\ninclude {}\n",
            repo_root().join("docker/common.mk").display()
        ),
    )
    .unwrap();
    let output = Command::new("make")
        .arg("-C")
        .arg(&stage)
        .arg("image")
        .arg(format!("REPO={repo}"))
        .env("DIND_INIT", env!("CARGO_BIN_EXE_dind-init"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an unsafe quiesce was committed");
    assert!(
        stderr.contains("is not commit-safe (still running: pid")
            && stderr.contains("sleep 1000")
            && stderr.contains("commit: dind-init snapshot did not commit"),
        "{stderr}"
    );
    assert!(
        !docker(&["image", "inspect", &format!("{repo}/40-leaky:latest")])
            .status
            .success()
    );
    let leftovers = docker_ok(&[
        "ps",
        "-aq",
        "--filter",
        &format!("ancestor={repo}/40-leaky:tmp"),
    ]);
    assert_eq!(leftovers, "", "the commit target left its container behind");

    fs::remove_dir_all(&stage).unwrap();
    for stage in EXAMPLE_STAGE_TAGS.iter().chain(&["40-leaky:tmp"]) {
        let _ = docker(&["rmi", "-f", &format!("{repo}/{stage}")]);
    }
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_stop_runs_the_stops_and_exits_zero() {
    let (_image, container) = started("stop", &[], true, &[]);
    let logs = container.stop_expecting_exit_zero();
    assert!(
        logs.contains("[20-httpd.sh] httpd stopped")
            && logs.contains("shutdown complete: exiting with code 0"),
        "{logs}"
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_stop_of_a_service_ignoring_sigterm_ends_after_dind_inits_grace() {
    let (_image, container) = started(
        "stubborn",
        &[(
            "10-stubborn.sh",
            "if [ \"$1\" = start ]; then (trap '' TERM; exec sleep 1000) & fi",
        )],
        false,
        &["-e", "DIND_INIT_GRACE=1"],
    );
    let began = Instant::now();
    let logs = container.stop_expecting_exit_zero();
    let took = began.elapsed();
    assert!(
        logs.contains("still running after the 1.0s grace period, sending SIGKILL"),
        "{logs}"
    );
    // Not a speed check: it tells dind-init's grace (1 s) from Docker's (30 s).
    assert!(
        took < Duration::from_secs(20),
        "docker stop took {took:?}: Docker had to kill it"
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn zombies_made_inside_the_container_are_reaped() {
    let (_image, container) = started("zombies", &[], false, &[]);
    container.exec_ok(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do (sleep 0.01 &); i=$((i+1)); done",
    ]);
    wait_until("no zombie is left in the container", || {
        let ps = container.exec_ok(&["ps", "-o", "stat,comm"]);
        !ps.lines().skip(1).any(|l| l.trim_start().starts_with('Z'))
    });
    let ps = container.exec_ok(&["ps", "-o", "pid,comm"]);
    assert_eq!(
        ps.lines().skip(1).filter(|l| !l.contains("ps")).count(),
        1,
        "only dind-init is left:\n{ps}"
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn a_healthcheck_with_dind_init_status_reports_healthy() {
    let (_image, container) = started(
        "health",
        &[],
        true,
        &[
            "--health-cmd",
            "dind-init status",
            "--health-interval",
            "1s",
            "--health-retries",
            "30",
        ],
    );
    wait_until("docker reports the container healthy", || {
        container.inspect("{{.State.Health.Status}}") == "healthy"
    });
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn a_killed_daemon_turns_the_docker_healthcheck_unhealthy() {
    let (_image, container) = started(
        "daemon-health",
        &[(
            "40-daemon.sh",
            r#"case "$1" in
start) sleep 100000 & echo $! > /tmp/daemon.pid ;;
stop) kill "$(cat /tmp/daemon.pid)" 2>/dev/null; true ;;
esac"#,
        )],
        false,
        &FAST_HEALTHCHECK,
    );
    wait_until("docker reports the container healthy", || {
        container.inspect("{{.State.Health.Status}}") == "healthy"
    });
    container.exec_ok(&["sh", "-c", "kill -9 \"$(cat /tmp/daemon.pid)\""]);
    wait_until("docker reports the container unhealthy", || {
        container.inspect("{{.State.Health.Status}}") == "unhealthy"
    });
    let status: Value =
        serde_json::from_slice(&container.exec(&["dind-init", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["scripts"][0]["state"], "degraded", "{status}");
    assert_eq!(
        status["scripts"][0]["daemon_exit"]["how"],
        "killed by SIGKILL"
    );
    let logs = container.logs();
    assert!(
        logs.contains("[40-daemon.sh] daemon ")
            && logs.contains("(sleep 100000) killed by SIGKILL"),
        "{logs}"
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn the_image_runs_as_a_non_root_user() {
    let (_image, container) = started(
        "nonroot",
        &[],
        true,
        &[
            "-u",
            "1000:1000",
            "-e",
            "SEED_DATA_DIR=/tmp/www",
            "-e",
            "HTTPD_ROOT=/tmp/www",
            "-e",
            "HTTPD_PIDFILE=/tmp/httpd.pid",
        ],
    );
    let status = container.wait_phase("running");
    assert_eq!(status["healthy"], true);
    let quiesce = container.exec(&["dind-init", "quiesce"]);
    assert!(
        quiesce.status.success(),
        "{}",
        String::from_utf8_lossy(&quiesce.stderr)
    );
    let owner = container.exec_ok(&[
        "stat",
        "-c",
        "%u:%g %a",
        "/var/lib/dind-init/state.json",
        "/run/dind-init/control.sock",
    ]);
    assert_eq!(
        owner.lines().collect::<Vec<_>>(),
        ["1000:1000 644", "1000:1000 600"]
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn a_broken_script_ends_the_container_with_its_name_and_reason() {
    let failing = TestImage::build(
        "broken",
        &[("10-broken.sh", "echo about to fail; exit 1")],
        false,
    );
    let container = Container::run(&failing.tag, &[]);
    assert_eq!(container.wait_exit(), 3);
    let logs = container.logs();
    assert!(logs.contains("[10-broken.sh] about to fail"), "{logs}");
    assert!(
        logs.contains("10-broken.sh start failed: exited with code 1"),
        "{logs}"
    );

    let hanging = TestImage::build(
        "hanging",
        &[("10-hangs.sh", "[ \"$1\" = start ] && exec sleep 1000\ntrue")],
        false,
    );
    let container = Container::run(&hanging.tag, &["-e", "DIND_INIT_START_TIMEOUT=1"]);
    assert_eq!(container.wait_exit(), 3);
    let logs = container.logs();
    assert!(
        logs.contains("10-hangs.sh start timed out after 1.0s: killing its process group"),
        "{logs}"
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn a_read_only_container_runs_its_command_without_a_control_socket() {
    require_engine();
    let base = base_image();
    let output = docker(&["run", "--rm", "--read-only", &base, "--", "echo", "hi"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hi\n", "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("running without a control socket"))
            .count(),
        1,
        "{stderr}"
    );
    // While it runs, `dind-init status` (the HEALTHCHECK) says why it cannot answer.
    let id = docker_ok(&["run", "-d", "--read-only", &base, "--", "sleep", "600"]);
    let container = Container {
        id,
        engine: "docker",
    };
    wait_until("the warning is logged", || {
        container
            .logs()
            .contains("running without a control socket")
    });
    let status = container.exec(&["dind-init", "status"]);
    let said = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(3), "{said}");
    assert!(
        said.contains("no control socket at /run/dind-init/control.sock")
            && said.contains("could not create it at boot"),
        "{said}"
    );
}

/// A script whose one-time work (a line in `/var/lib/once.log`) runs only
/// on its own first start, and which notes what it was told in the log.
fn one_time_work_script() -> &'static str {
    r#"[ "$1" = start ] || exit 0
echo "$(basename "$0") first=$DIND_INIT_FIRST_START starts=$DIND_INIT_STARTS restored=$DIND_INIT_RESTORED"
if [ "$DIND_INIT_FIRST_START" = 1 ]; then basename "$0" >> /var/lib/once.log; fi"#
}

/// `docker commit` of a container quiesced with `dind-init quiesce`; the
/// committed image, removed on drop.
fn quiesce_and_commit(container: Container) -> OwnedImage {
    let quiesce = container.exec(&["dind-init", "quiesce"]);
    assert!(
        quiesce.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&quiesce.stderr),
        container.logs()
    );
    let image = OwnedImage {
        engine: "docker",
        tag: format!("dind-init-e2e/{}:latest", unique("stage")),
    };
    docker_ok(&["commit", &container.id, &image.tag]);
    image
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn a_script_new_in_the_second_stage_does_its_one_time_work_exactly_once() {
    let stage_1 = TestImage::build(
        "first-start-1",
        &[("10-a.sh", one_time_work_script())],
        false,
    );
    let setup_1 = Container::run(&stage_1.tag, &[]);
    setup_1.wait_phase("running");
    let committed_1 = quiesce_and_commit(setup_1);

    // Stage 2: FROM the committed stage 1, one script more.
    let context = std::env::temp_dir().join(unique("dind-init-e2e-stage-2"));
    fs::create_dir_all(&context).unwrap();
    let script = context.join("20-b.sh");
    fs::write(&script, format!("#!/bin/sh\n{}\n", one_time_work_script())).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY 20-b.sh /etc/dind-init/init.d/\n",
            committed_1.tag
        ),
    )
    .unwrap();
    let stage_2 = OwnedImage {
        engine: "docker",
        tag: format!("dind-init-e2e/{}:latest", unique("stage-2-tmp")),
    };
    docker_ok(&["build", "-q", "-t", &stage_2.tag, context.to_str().unwrap()]);
    fs::remove_dir_all(&context).unwrap();

    // Its setup run boots restored, yet 20-b.sh's start is its first.
    let setup_2 = Container::run(&stage_2.tag, &[]);
    let status = setup_2.wait_phase("running");
    assert_eq!(status["boot"]["restored"], true);
    assert_eq!(status["scripts"][1]["starts_before"], 0);
    let committed_2 = quiesce_and_commit(setup_2);

    // The restore: nobody's first start any more.
    let restored = Container::run(&committed_2.tag, &[]);
    let status = restored.wait_phase("running");
    assert_eq!(status["scripts"][0]["completed_starts"], 3);
    assert_eq!(status["scripts"][1]["completed_starts"], 2);
    assert_eq!(
        restored.exec_ok(&["cat", "/var/lib/once.log"]),
        "10-a.sh\n20-b.sh",
        "{}",
        restored.logs()
    );
    let logs = restored.logs();
    assert!(
        logs.contains("[10-a.sh] 10-a.sh first=0 starts=2 restored=1")
            && logs.contains("[20-b.sh] 20-b.sh first=0 starts=1 restored=1"),
        "{logs}"
    );
}
