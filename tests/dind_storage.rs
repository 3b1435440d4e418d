//! The inner engine's storage on the route a new team takes and under
//! failure, against the real engine: an L2 like one `FROM docker:dind`
//! (`VOLUME /var/lib/docker` as the official image declares it, busybox's sh
//! and tools ahead of Debian's, docker/dind/l2/docker-dind.Dockerfile), in
//! every storage mode this L1 can run, through stops that fail (a shell
//! sitting in /var/lib/docker, a file held open for writing there, a full
//! disk for the saved copy) or are killed
//! half-way (`docker kill`, then `docker start`), checking the inner data
//! after each: the next start brings back the newest state, and a quiesce
//! is commit-safe only when the saved state is complete.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::dind::{Images, assert_restored, run_flags};
use crate::docker::{
    Container, docker, docker_ok, make_stage_image, repo_root, require_engine, unique,
};
use crate::harness::wait_until;

/// `DIND_L2_IMAGE` (what `make dind-l2` builds) split into its repository and tag.
fn l2_base() -> (String, String) {
    let image =
        std::env::var("DIND_L2_IMAGE").unwrap_or_else(|_| "dind-init/dind-l2:storage".to_string());
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image, "latest".to_string()),
    }
}

/// Runs `command`, which must succeed; its stdout, trimmed.
fn run_ok(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The L2 like one FROM docker:dind, built once per test run FROM the L2
/// image (its name: the L2 image's repository, tag `docker-dind`).
fn docker_dind_l2() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let (repo, _) = l2_base();
        let image = format!("{repo}:docker-dind");
        run_ok(
            Command::new(repo_root().join("docker/dind/build-l2.sh"))
                .arg("--docker-dind")
                .arg(&image),
        );
        image
    })
}

/// Stage 10's image (engine, storage, bundle loader) FROM the docker:dind-like
/// L2, not committed: each test's first boot is its setup run. Built once.
pub(crate) fn engine_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let l2 = docker_dind_l2();
        let (repo, _) = l2_base();
        let stage_repo = format!("{repo}-docker-dind");
        run_ok(
            Command::new("make")
                .arg("-C")
                .arg(repo_root().join("docker/dind/stages/10-engine"))
                .arg("tmp-image")
                .arg(format!("REPO={stage_repo}"))
                .arg(format!("DIND_L2_IMAGE={l2}")),
        );
        format!("{stage_repo}/10-engine:tmp")
    })
}

/// The container log must have `line` (a part of a line).
pub(crate) fn assert_logged(l2: &Container, line: &str) {
    let logs = l2.logs();
    assert!(logs.contains(line), "no {line:?} in:\n{logs}");
}

pub(crate) fn inner(l2: &Container, command: &str) -> String {
    l2.exec_ok(&["sh", "-c", command])
}

/// An L2 of the engine image in storage mode `mode`, with the busybox L3
/// image loaded from the bundle, running and healthy.
pub(crate) fn engine_l2(mode: &str, flags: &[String]) -> Container {
    let mode_flag = format!("DIND_STORAGE={mode}");
    let l2 = run_with_bundle(engine_image(), flags, &["-e", &mode_flag], &stage_bundle());
    let status = l2.wait_phase("running");
    assert_eq!(status["healthy"], true, "{}", l2.logs());
    l2
}

/// Stage 10's bundle directory (the busybox L3 image), as its Makefile built it.
pub(crate) fn stage_bundle() -> std::path::PathBuf {
    repo_root().join("docker/dind/stages/10-engine/bundle")
}

/// `docker run` of `image` with `flags`, `extra` and the bundle directory
/// `bundle` mounted read-only at /opt/dind-bundle.
fn run_with_bundle(
    image: &str,
    flags: &[String],
    extra: &[&str],
    bundle: &std::path::Path,
) -> Container {
    let mount = format!("{}:/opt/dind-bundle:ro", bundle.display());
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    args.extend(["-v", &mount]);
    Container::run(image, &args)
}

/// Appends `record` to the list on the inner named volume `records`, with
/// `filler_mb` MB of random data beside it (so that saving takes a while).
pub(crate) fn add_record(l2: &Container, record: &str, filler_mb: u32) {
    inner(
        l2,
        &format!(
            "docker run --rm -v records:/r dind-init-l3/busybox:latest sh -c \
             'echo {record} >> /r/list; dd if=/dev/urandom of=/r/filler-{record} bs=1M count={filler_mb} 2>/dev/null; sync'"
        ),
    );
}

pub(crate) fn records(l2: &Container) -> String {
    inner(
        l2,
        "docker run --rm -v records:/r dind-init-l3/busybox:latest cat /r/list | paste -sd' ' -",
    )
}

/// `dind-init quiesce`: whether it reported commit-safe.
pub(crate) fn quiesce(l2: &Container) -> bool {
    l2.exec(&["dind-init", "quiesce", "--timeout", "120"])
        .status
        .success()
}

pub(crate) fn resume(l2: &Container) {
    let output = l2.exec(&["dind-init", "resume", "--timeout", "120"]);
    assert!(
        output.status.success(),
        "resume failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        l2.logs()
    );
    let status = l2.wait_phase("running");
    assert_eq!(status["healthy"], true, "{}", l2.logs());
}

/// The storage step's line that says the mode, and the mode it wrote for
/// 40-dockerd.sh, after `starts` starts.
fn assert_mode_recorded(l2: &Container, mode: &str, starts: usize) {
    assert_eq!(
        inner(l2, "grep '^DIND_STORAGE=' /run/dind-storage.env"),
        format!("DIND_STORAGE={mode}"),
        "{}",
        l2.logs()
    );
    let line = format!("[30-docker-storage.sh] storage mode {mode}\n");
    assert_eq!(l2.logs().matches(&line).count(), starts, "{}", l2.logs());
}

/// A quiesce started in the background (`docker exec ... dind-init quiesce`).
fn quiesce_in_background(l2: &Container) -> Child {
    Command::new("docker")
        .args(["exec", &l2.id, "dind-init", "quiesce", "--timeout", "120"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The line a mode's stop writes when it starts saving the engine's data:
/// where a `docker kill` hits the middle of the stop.
fn saving_line(mode: &str) -> &'static str {
    match mode {
        "loop" => "[30-docker-storage.sh] saving ",
        _ => "40-dockerd.sh stop (pid",
    }
}

/// A quiesce started in the background, returned once the log holds one
/// `line` more than before it (an earlier stop's line must not count).
fn quiesce_until_logged(l2: &Container, line: &str) -> Child {
    let before = l2.logs().matches(line).count();
    let quiesce = quiesce_in_background(l2);
    wait_until(&format!("one more {line:?} in the log"), || {
        l2.logs().matches(line).count() > before
    });
    quiesce
}

/// A `docker exec`ed shell that runs `setup` (it sits in a directory, holds
/// a file open), then sleeps; returns once its pid is in `pid_file`.
fn background_shell(l2: &Container, setup: &str, pid_file: &str) {
    let script = format!("{setup} && echo $$ > {pid_file} && exec sleep 600");
    docker_ok(&["exec", "-d", &l2.id, "sh", "-c", &script]);
    wait_until(&format!("the shell of `{setup}` is ready"), || {
        l2.exec(&["test", "-s", pid_file]).status.success()
    });
}

/// A quiesce that must not be commit-safe, for the reason `line` of the
/// log; then `cleanup` (in the L2) and a resume, after which the records
/// must be `expected`: the newest, not the last saved ones.
fn refused_then_resumed(l2: &Container, line: &str, cleanup: &str, expected: &str) {
    assert!(!quiesce(l2), "the quiesce was commit-safe:\n{}", l2.logs());
    assert_logged(l2, line);
    inner(l2, cleanup);
    resume(l2);
    assert_eq!(records(l2), expected, "{}", l2.logs());
}

/// The rule of every storage mode after a failed or interrupted stop: the
/// next start runs on the newest state (never on an older one while
/// healthy), and the quiesce is commit-safe only with the saved state
/// complete, which a commit then restores.
fn failed_and_interrupted_stops_keep_the_newest_inner_data(mode: &str) {
    require_engine();
    let flags = run_flags();
    let l2 = engine_l2(mode, &flags);
    let ext4 = mode == "loop";

    // A clean cycle: the saved state has record 1; the restart says its mode.
    add_record(&l2, "1", 1);
    assert!(quiesce(&l2), "{}", l2.logs());
    resume(&l2);
    assert_mode_recorded(&l2, mode, 2);

    // An L3 replaces a file of its image (copied up, saved) ...
    inner(
        &l2,
        "docker run -d --name replacer --init --restart always dind-init-l3/busybox:latest sleep 2147483647 >/dev/null \
         && docker exec replacer sh -c 'rm /bin/true && echo replaced > /bin/true'",
    );

    // A `docker exec` shell sits in /var/lib/docker during the stop.
    add_record(&l2, "2", 1);
    background_shell(&l2, "cd /var/lib/docker", "/tmp/busy.pid");
    let busy_quiesce_safe = quiesce(&l2);
    resume(&l2);
    assert_eq!(
        records(&l2),
        "1 2",
        "commit-safe {busy_quiesce_safe}:\n{}",
        l2.logs()
    );
    inner(&l2, "kill $(cat /tmp/busy.pid)");

    // ... and deletes it a cycle later (a whiteout where the saved tree has a file).
    inner(&l2, "docker exec replacer rm /bin/true");

    // `docker kill` in the middle of the stop, then `docker start`. The
    // 256 MB to save keep the ext4 modes' save going for well over the
    // time it takes to see its line and kill.
    add_record(&l2, "3", if ext4 { 256 } else { 1 });
    let mut background = quiesce_until_logged(&l2, saving_line(mode));
    docker_ok(&["kill", &l2.id]);
    let _ = background.wait();
    docker_ok(&["start", &l2.id]);
    let status = l2.wait_phase("running");
    assert_eq!(status["healthy"], true, "{}", l2.logs());
    assert_eq!(records(&l2), "1 2 3", "{}", l2.logs());
    if ext4 {
        // The kill landed in the save: the start ran on the live file.
        assert_logged(&l2, "was left by a stop or boot that did not finish");
    }

    if ext4 {
        // The saved copy does not fit: the stop fails, nothing older comes back.
        add_record(&l2, "4", 32);
        inner(
            &l2,
            "s=/var/lib/dind-storage; used=$(du -sm $s | cut -f1); \
             files=$(find $s -type f -exec stat -c %s {} + | awk '{ n += $1 } END { print int(n / 1048576) }'); \
             [ $files -le $used ] || used=$files; \
             truncate -s $((used + 16))M /tmp/small.img && mkfs.ext4 -q -m 0 /tmp/small.img \
             && mkdir -p /tmp/small && mount -o loop /tmp/small.img /tmp/small && cp -a $s/. /tmp/small/ \
             && umount /tmp/small && mount -o loop /tmp/small.img $s",
        );
        refused_then_resumed(
            &l2,
            "failed (disk full?)",
            "umount /var/lib/dind-storage",
            "1 2 3 4",
        );

        // A process keeps a file open for writing on the engine's file
        // system: nothing is saved from under it, and the start runs on it.
        add_record(&l2, "5", 1);
        background_shell(&l2, "exec 3>>/var/lib/docker/writer.log", "/tmp/writer.pid");
        refused_then_resumed(
            &l2,
            "is still open for writing",
            "kill $(cat /tmp/writer.pid)",
            "1 2 3 4 5",
        );
    }
    let newest = records(&l2);

    // Commit-safe now, and the commit holds the newest state.
    assert!(quiesce(&l2), "{}", l2.logs());
    let image = format!("{}:latest", unique("dind-init-e2e-storage-failure"));
    let _images = Images(vec![image.clone()]);
    docker_ok(&["commit", &l2.id, &image]);
    drop(l2);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let restored = Container::run(&image, &flag_refs);
    let status = restored.wait_phase("running");
    assert_eq!(status["healthy"], true, "{}", restored.logs());
    assert_eq!(status["boot"]["restored"], true);
    assert_eq!(records(&restored), newest, "{}", restored.logs());
    assert_eq!(
        inner(
            &restored,
            "docker exec replacer sh -c 'test -e /bin/true && echo there || echo deleted'"
        ),
        "deleted",
        "{}",
        restored.logs()
    );
    assert_mode_recorded(&restored, mode, 1);
}

/// A stop timeout in the middle of the save: the process that copies the
/// engine's data (e2image) is stopped with
/// SIGSTOP once it runs, as behind a stuck disk, and dind-init's stop timeout
/// kills the stop's process group. The quiesce is not commit-safe, and the
/// resume runs on the live file: the newest state, not the last saved one.
fn a_stop_timeout_in_the_save_keeps_the_newest_inner_data(mode: &str, copier: &str) {
    require_engine();
    let mut flags = run_flags();
    flags.extend(["-e", "DIND_INIT_STOP_TIMEOUT=10"].map(String::from));
    let l2 = engine_l2(mode, &flags);
    add_record(&l2, "1", 1);
    assert!(quiesce(&l2), "{}", l2.logs());
    resume(&l2);

    // 256 MB to save: the copier runs long enough to be caught.
    add_record(&l2, "2", 256);
    let freeze = format!("until pkill -STOP -x {copier}; do sleep 0.01; done");
    docker_ok(&["exec", "-d", &l2.id, "sh", "-c", &freeze]);
    assert!(!quiesce(&l2), "the quiesce was commit-safe:\n{}", l2.logs());
    assert_logged(
        &l2,
        "30-docker-storage.sh stop failed: timed out after 10.0s; its process group was killed",
    );
    resume(&l2);
    assert_eq!(records(&l2), "1 2", "{}", l2.logs());
    assert_logged(&l2, "(the last stop did not finish): running on it");
}

#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn loop_a_stop_timeout_in_the_save_keeps_the_newest_inner_data() {
    a_stop_timeout_in_the_save_keeps_the_newest_inner_data("loop", "e2image");
}

/// An image committed in the middle of a loop save (`docker commit` pauses
/// the container half-way through the copy) holds the save journal at
/// `copying`, a partial `docker.img.new` and no live file (that is in a
/// volume): its start removes the partial copy, runs on the previous
/// complete state, and says so. Before the journal, the start said nothing
/// of which state it found (issue 25 item 2).
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn loop_an_image_committed_mid_save_restores_the_previous_complete_state_and_says_so() {
    require_engine();
    let flags = run_flags();
    let l2 = engine_l2("loop", &flags);
    add_record(&l2, "1", 1);
    assert!(quiesce(&l2), "{}", l2.logs());
    resume(&l2);

    add_record(&l2, "2", 256);
    let mut background = quiesce_until_logged(&l2, saving_line("loop"));
    let image = format!("{}:latest", unique("dind-init-e2e-mid-save"));
    let _images = Images(vec![image.clone()]);
    docker_ok(&["commit", &l2.id, &image]);
    let _ = background.wait();
    drop(l2);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let restored = Container::run(&image, &flag_refs);
    let status = restored.wait_phase("running");
    assert_eq!(status["healthy"], true, "{}", restored.logs());
    assert_eq!(records(&restored), "1", "{}", restored.logs());
    assert_logged(
        &restored,
        "journal: a save was interrupted while copying; its partial copy is removed and the saved state is the previous complete state",
    );
}

#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn vfs_failed_and_interrupted_stops_keep_the_newest_inner_data() {
    failed_and_interrupted_stops_keep_the_newest_inner_data("vfs");
}

#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn loop_failed_and_interrupted_stops_keep_the_newest_inner_data() {
    failed_and_interrupted_stops_keep_the_newest_inner_data("loop");
}

/// Issue 17's first step: stage 10 and stage 20 set up and committed with
/// `dind-init snapshot` on an L2 like one FROM docker:dind, then restored:
/// the inner images, containers and volume data are back.
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn an_l2_like_docker_dind_keeps_its_inner_state_through_snapshot_and_restore() {
    require_engine();
    let l2_image = docker_dind_l2();
    let repo = unique("dind-init-e2e-docker-dind");
    let _images = Images(
        [
            "10-engine:tmp",
            "10-engine:latest",
            "20-stack:tmp",
            "20-stack:latest",
        ]
        .iter()
        .map(|image| format!("{repo}/{image}"))
        .collect(),
    );
    make_stage_image(
        &repo_root().join("docker/dind/stages/20-stack"),
        &repo,
        &[&format!("DIND_L2_IMAGE={l2_image}")],
    );
    let flags = run_flags();
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let l2 = Container::run(&format!("{repo}/20-stack:latest"), &flag_refs);
    assert_restored(&l2, 3, "2", 50);
    assert_eq!(
        inner(&l2, "readlink /bin/sh"),
        "/usr/local/busybox/bin/busybox"
    );
    assert!(
        docker(&[
            "exec",
            &l2.id,
            "docker",
            "image",
            "inspect",
            "dind-init-l3/busybox:latest"
        ])
        .status
        .success(),
        "{}",
        l2.logs()
    );
    assert_logged(
        &l2,
        "[30-docker-storage.sh] inner engine data: /var/lib/dind-storage/docker, plain files, vfs driver: \
             not /var/lib/docker: it is on the volume or bind mount /var/lib/docker, which docker commit skips",
    );
}

/// Where a commit cannot store the inner engine's data (the storage step's
/// own state directory on a volume), `dind-init snapshot` refuses and says why.
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn snapshot_refuses_when_the_storage_state_is_on_a_volume() {
    require_engine();
    let flags = run_flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(["-v", "/var/lib/dind-storage"]);
    let l2 = Container::run(engine_image(), &args);
    l2.wait_phase("running");
    let image = format!("{}:latest", unique("dind-init-e2e-storage-volume"));
    let _images = Images(vec![image.clone()]);
    let snapshot = Command::new(env!("CARGO_BIN_EXE_dind-init"))
        .args(["snapshot", "--engine", "docker", &l2.id, &image])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&snapshot.stderr);
    assert_eq!(snapshot.status.code(), Some(1), "{stderr}\n{}", l2.logs());
    assert!(
        !docker(&["image", "inspect", &image]).status.success(),
        "an image was committed"
    );
    assert!(
        l2.logs().contains(
            "not commit-safe: /var/lib/dind-storage is on the volume or bind mount /var/lib/dind-storage, which docker commit skips"
        ),
        "{stderr}\n{}",
        l2.logs()
    );
}

/// Issue 21 item 4: a start of 40-dockerd.sh that fails (its readiness
/// wait times out: dockerd listens on another socket) stops the dockerd it started: none runs afterwards, and the
/// next quiesce (the storage step saves with no engine writing) is commit-safe.
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn a_failed_dockerd_start_leaves_no_dockerd_behind() {
    require_engine();
    let flags = run_flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend([
        "-e",
        "DIND_STORAGE=loop",
        "-e",
        "DOCKERD_WAIT=3",
        // dockerd runs, but its API is not where the readiness wait asks.
        "-e",
        "DOCKERD_FLAGS=--log-level=warn -H unix:///run/elsewhere.sock",
        "-e",
        "DIND_INIT_ON_START_FAILURE=continue",
    ]);
    let l2 = Container::run(engine_image(), &args);
    let status = l2.wait_phase("running");
    assert_eq!(status["healthy"], false, "{}", l2.logs());
    assert_logged(
        &l2,
        "[40-dockerd.sh] dockerd did not answer within 3s; stopping dockerd",
    );
    assert_eq!(
        inner(
            &l2,
            "cat /proc/[0-9]*/comm 2>/dev/null | grep -cx 'dockerd\\|containerd' || true"
        ),
        "0",
        "{}",
        l2.logs()
    );
    assert!(quiesce(&l2), "{}", l2.logs());
}

/// Issue 21 item 6: a bundle is loaded once per content, not per file name:
/// a restored image booted with the same bundle skips it, with a new
/// `images.tar` loads it.
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn a_new_bundle_under_the_same_file_name_is_loaded() {
    require_engine();
    let flags = run_flags();
    let l2 = engine_l2("vfs", &flags);
    assert!(quiesce(&l2), "{}", l2.logs());
    let image = format!("{}:latest", unique("dind-init-e2e-storage-bundle"));
    let other = format!("{}:1", unique("dind-init-e2e-bundled"));
    let _images = Images(vec![image.clone(), other.clone()]);
    docker_ok(&["commit", &l2.id, &image]);
    drop(l2);

    // The same bundle again: its marker came with the commit.
    let restored = run_with_bundle(&image, &flags, &[], &stage_bundle());
    restored.wait_phase("running");
    assert_logged(&restored, "[50-image-bundle.sh] images.tar (sha256 ");
    assert_logged(&restored, ") already loaded: skipping");
    drop(restored);

    let bundle = std::env::temp_dir().join(unique("dind-init-e2e-bundle"));
    std::fs::create_dir_all(&bundle).unwrap();
    docker_ok(&["tag", "dind-init-l3/busybox:latest", &other]);
    let tar = bundle.join("images.tar");
    docker_ok(&["save", "-o", tar.to_str().unwrap(), &other]);
    let restored = run_with_bundle(&image, &flags, &[], &bundle);
    let status = restored.wait_phase("running");
    let _ = std::fs::remove_dir_all(&bundle);
    assert_eq!(status["healthy"], true, "{}", restored.logs());
    assert_logged(
        &restored,
        &format!("[50-image-bundle.sh] Loaded image: {other}"),
    );
}

/// `name`'s entry in `dind-init status --json` (which exits non-zero while unhealthy).
fn script_status(l2: &Container, name: &str) -> serde_json::Value {
    let output = l2.exec(&["dind-init", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("no status (the L2 ended?):\n{}", l2.logs()));
    status["scripts"]
        .as_array()
        .and_then(|scripts| scripts.iter().find(|script| script["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

/// Issue 21 item 5: under `--on-daemon-exit=restart`, dockerd dies with
/// its pid files naming another process: a process called `dockerd` in a
/// PID namespace of its own, as an L3's processes (an L3's own dockerd among
/// them) show in the L2's /proc. The restart's stop signals nobody it does
/// not own, its start is not blocked by the stale /var/run/docker.pid, and
/// a later runtime cleanup does not take the stand-in for a live dockerd.
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn a_restarted_dockerd_spares_the_process_its_stale_pid_files_name() {
    require_engine();
    let mut flags = run_flags();
    flags.extend(["-e", "DIND_INIT_ON_DAEMON_EXIT=restart"].map(String::from));
    let l2 = engine_l2("vfs", &flags);
    let dockerd = inner(&l2, "cat /run/dind-dockerd.pid");
    // Not a child of dind-init: `docker exec` starts it from outside.
    docker_ok(&[
        "exec",
        "-d",
        &l2.id,
        "sh",
        "-c",
        "printf '#!/bin/sh\nwhile :; do sleep 600; done\n' >/tmp/dockerd && chmod +x /tmp/dockerd \
         && exec unshare --fork --pid /tmp/dockerd",
    ]);
    let other_namespace_dockerd = "for p in /proc/[0-9]*; do \
         [ \"$(cat $p/comm 2>/dev/null)\" = dockerd ] \
         && [ \"$(readlink $p/ns/pid)\" != \"$(readlink /proc/self/ns/pid)\" ] && echo ${p#/proc/}; \
         done; true";
    wait_until("the stand-in dockerd runs in its own PID namespace", || {
        !inner(&l2, other_namespace_dockerd).is_empty()
    });
    let stand_in = inner(&l2, other_namespace_dockerd);
    inner(
        &l2,
        &format!(
            "echo {stand_in} > /run/dind-dockerd.pid && echo {stand_in} > /var/run/docker.pid && kill -KILL {dockerd}"
        ),
    );
    wait_until("40-dockerd.sh is restarted and started", || {
        let script = script_status(&l2, "40-dockerd.sh");
        script["restarts"] == 1 && script["state"] == "started"
    });
    let status = l2.wait_phase("running");
    assert_eq!(status["healthy"], true, "{}", l2.logs());
    let stand_in_alive = format!("cat /proc/{stand_in}/comm 2>/dev/null || echo gone");
    assert_eq!(
        inner(&l2, &stand_in_alive),
        "dockerd",
        "the stand-in (pid {stand_in}) was signalled:\n{}",
        l2.logs()
    );
    let restarted = inner(&l2, "cat /run/dind-dockerd.pid");
    assert_ne!(restarted, dockerd);
    assert_eq!(
        inner(&l2, &format!("cat /proc/{restarted}/comm")),
        "dockerd"
    );
    inner(&l2, "docker version >/dev/null");

    // The runtime cleanup of a later start: the stand-in is no dockerd of
    // this container and is spared (the restarted dockerd's containerd still
    // runs, so the cleanup keeps the runtime files; the L2 is dropped after this).
    let cleanup = l2.exec(&[
        "sh",
        "-c",
        &format!(
            "echo {stand_in} > /run/dind-dockerd.pid && /etc/dind-init/init.d/20-runtime-cleanup.sh start"
        ),
    ]);
    assert!(
        cleanup.status.success(),
        "{}",
        String::from_utf8_lossy(&cleanup.stderr)
    );
    assert_eq!(inner(&l2, &stand_in_alive), "dockerd");
}

/// A bundle of the PostgreSQL L3 image (build-bundle.sh postgres), built
/// once per test run into target/.
fn postgres_bundle() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = repo_root().join("target/dind-postgres-bundle");
        run_ok(
            Command::new(repo_root().join("docker/dind/build-bundle.sh"))
                .arg(dir.join("images.tar"))
                .arg("postgres"),
        );
        dir
    })
}

/// Issue 21 item 7: 60-postgres.sh's readiness wait is bounded in seconds
/// (DIND_PG_WAIT), inside dind-init's start timeout, so its own message
/// says why the start failed. PostgreSQL runs but is never ready: its data
/// directory's postgresql.conf is a FIFO nobody writes, so postgres blocks
/// reading its configuration. DIND_PG_WAIT=0 (`timeout 0`: no limit) is
/// refused in one line.
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn a_postgres_that_never_gets_ready_fails_its_start_within_dind_pg_wait() {
    require_engine();
    let data = std::env::temp_dir().join(unique("dind-init-e2e-pg-hangs"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    run_ok(
        Command::new("mkfifo")
            .arg("-m")
            .arg("666")
            .arg(data.join("postgresql.conf")),
    );
    let script = repo_root().join("init.d-examples/dind/60-postgres.sh");
    let script_mount = format!(
        "{}:/etc/dind-init/init.d/60-postgres.sh:ro",
        script.display()
    );
    let data_mount = format!("{}:/srv/pgdata", data.display());
    let flags = run_flags();
    // The start timeout leaves 40 s for `docker run` (a vfs copy of the
    // image's layers: 12 s was too little on a slow CI machine). The old
    // wait (200 tries of two docker calls and a 0.1 s sleep, 60 s and more)
    // still outlasts it, and its message had no log dump after it.
    let l2 = run_with_bundle(
        engine_image(),
        &flags,
        &[
            "-e",
            "DIND_STORAGE=vfs",
            "-e",
            "DIND_INIT_START_TIMEOUT=60",
            "-e",
            "DIND_INIT_ON_START_FAILURE=continue",
            "-e",
            "DIND_PG_WAIT=20",
            "-e",
            "DIND_PG_VOLUME=/srv/pgdata",
            "-v",
            &script_mount,
            "-v",
            &data_mount,
        ],
        postgres_bundle(),
    );
    // Past the bundle's load (440 MB into vfs) and the start's 60 s bound.
    let running = l2.exec(&[
        "dind-init",
        "status",
        "--wait",
        "running",
        "--timeout",
        "300",
    ]);
    assert!(running.status.code().is_some(), "{}", l2.logs());
    let postgres = script_status(&l2, "60-postgres.sh");
    assert_eq!(
        postgres["start"]["outcome"],
        "failed",
        "{postgres}\n{}",
        l2.logs()
    );
    assert_logged(
        &l2,
        "[60-postgres.sh] postgres in pg not ready within 20s:\n",
    );

    let zero = l2.exec(&[
        "env",
        "DIND_PG_WAIT=0",
        "timeout",
        "30",
        "/etc/dind-init/init.d/60-postgres.sh",
        "start",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&zero.stderr),
        "DIND_PG_WAIT=0: not a number of seconds above 0; set it to the readiness wait's bound (default 120)\n"
    );
    assert_eq!(zero.status.code(), Some(2));
    drop(l2);
    let _ = std::fs::remove_dir_all(&data);
}

/// Makes, in the inner engine of `l2`, the image `dind-init-l3/hard-names:1`:
/// busybox with /hard holding names a line-based manifest cannot hold (a
/// newline, blanks at either end, a backslash), files and directories.
const MAKE_HARD_NAMES_IMAGE: &str = r#"docker run --name maker dind-init-l3/busybox:latest sh -c '
    set -e; mkdir /hard && cd /hard
    for n in "new
line" "trailing  " " leading" "back\slash" plain; do echo "$n" > "$n"; done
    for d in "dir
newline " "dir trailing " " dir\back"; do mkdir "$d"; echo a > "$d/a"; echo b > "$d/b
 "; done' && docker commit maker dind-init-l3/hard-names:1 >/dev/null && docker rm maker >/dev/null"#;

/// What the L3 container `hard` does to its image's /hard: deletes files
/// (overlay2's whiteouts, with those names), replaces directories (opaque
/// directories), deletes a file in a kept directory, adds new names.
const CHANGE_HARD_NAMES: &str = r#"docker exec hard sh -c '
    set -e; cd /hard
    rm "new
line" "trailing  " "back\slash"
    rm -r "dir
newline " " dir\back"; mkdir "dir
newline " " dir\back"; echo c > "dir
newline /c"; echo d > " dir\back/d
"
    rm "dir trailing /b
 "
    echo made > "made
 \here "'"#;

/// The L3 container `hard`'s view of /hard: (path, kind and a file's
/// content) for each entry, sorted by path (read as the path's bytes in
/// hex, one line each: a name may hold a newline).
fn hard_names_view(l2: &Container) -> Vec<(String, String)> {
    let listing = inner(
        l2,
        r#"docker exec hard sh -c 'cd / && find hard -exec sh -c '\''for p; do
            printf "%s " "$(printf %s "$p" | od -An -v -tx1 | tr -d " \n")"
            if [ -d "$p" ]; then echo dir; elif [ -f "$p" ]; then echo "file $(cat "$p")"; else echo other; fi
        done'\'' sh {} +'"#,
    );
    let mut view: Vec<(String, String)> = listing
        .lines()
        .map(|line| {
            let (hex, what) = line.split_once(' ').unwrap();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (String::from_utf8(bytes).unwrap(), what.to_string())
        })
        .collect();
    view.sort();
    view
}

/// Issue 21 item 8, issue 25 item 4 for the kept ext4 mode: loop saves the
/// whole file system, so overlay2's whiteouts and opaque directories of any
/// name survive. An L3
/// container deletes files of its image and replaces directories whose
/// names have a newline, blanks at either end and a backslash (overlay2's
/// whiteouts and opaque directories with those names); after `dind-init
/// snapshot` and a restore, its view of those files is exactly what it was.
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn loop_keeps_whiteouts_and_opaque_directories_of_any_name() {
    require_engine();
    let flags = run_flags();
    let l2 = engine_l2("loop", &flags);
    inner(&l2, MAKE_HARD_NAMES_IMAGE);
    inner(
        &l2,
        "docker run -d --name hard --restart always dind-init-l3/hard-names:1 sleep 2147483647 >/dev/null",
    );
    inner(&l2, CHANGE_HARD_NAMES);
    let mut expected: Vec<(String, String)> = [
        ("hard", "dir"),
        ("hard/ dir\\back", "dir"),
        ("hard/ dir\\back/d\n", "file d"),
        ("hard/ leading", "file  leading"),
        ("hard/dir trailing ", "dir"),
        ("hard/dir trailing /a", "file a"),
        ("hard/dir\nnewline ", "dir"),
        ("hard/dir\nnewline /c", "file c"),
        ("hard/made\n \\here ", "file made"),
        ("hard/plain", "file plain"),
    ]
    .iter()
    .map(|(path, what)| (path.to_string(), what.to_string()))
    .collect();
    expected.sort();
    assert_eq!(hard_names_view(&l2), expected, "before the snapshot");

    let image = format!("{}:latest", unique("dind-init-e2e-hard-names"));
    let _images = Images(vec![image.clone()]);
    let snapshot = crate::snapshot::snapshot("docker", &["--rm", &l2.id, &image]);
    assert!(
        snapshot.status.success(),
        "{}\n{}",
        crate::snapshot::text(&snapshot),
        l2.logs()
    );
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let restored = Container::run(&image, &flag_refs);
    let status = restored.wait_phase("running");
    assert_eq!(status["healthy"], true, "{}", restored.logs());
    assert_eq!(hard_names_view(&restored), expected, "{}", restored.logs());
}

/// The init.d scripts of stage 30-postgres (PostgreSQL as an L3 and its
/// `pgbench -i` setup), bind-mounted read-only into an L2 of the engine image.
fn postgres_script_mounts() -> Vec<String> {
    [
        "init.d-examples/dind/60-postgres.sh",
        "docker/dind/stages/30-postgres/l2/etc/dind-init/init.d/70-pgbench.sh",
    ]
    .iter()
    .map(|path| {
        let script = repo_root().join(path);
        let name = script.file_name().unwrap().to_str().unwrap().to_string();
        format!("{}:/etc/dind-init/init.d/{name}:ro", script.display())
    })
    .collect()
}

/// Issue 21 item 8: 70-pgbench.sh's setup is done when it finished, not
/// when its tables exist. `pgbench -i` is killed (SIGKILL, in the L2's
/// view of the L3's processes) while it fills pgbench_accounts: the start
/// fails, the tables are there with none of their rows. The next start
/// (`docker stop`, `docker start`) runs the setup again to its end.
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn an_interrupted_pgbench_setup_is_done_again_at_the_next_start() {
    require_engine();
    let flags = run_flags();
    let mounts = postgres_script_mounts();
    let mut extra = vec![
        "-e",
        "DIND_STORAGE=vfs",
        "-e",
        "DIND_INIT_ON_START_FAILURE=continue",
        "-e",
        "PGBENCH_SCALE=5",
    ];
    for mount in &mounts {
        extra.extend(["-v", mount]);
    }
    let l2 = run_with_bundle(engine_image(), &flags, &extra, postgres_bundle());
    // Past the bundle's load (440 MB into vfs) and initdb: wait, inside the
    // L3, until pgbench's COPY into pgbench_accounts has rows (one
    // transaction: another session sees none until it commits), then kill it.
    inner(
        &l2,
        r#"end=$(($(date +%s) + 300))
           until docker exec -e "Q=SELECT EXISTS (SELECT FROM pg_stat_progress_copy WHERE relid = to_regclass('pgbench_accounts') AND tuples_processed > 0)" pg \
               timeout 300 sh -c 'until [ "$(psql -U postgres -Atqc "$Q" 2>/dev/null)" = t ]; do sleep 0.02; done' 2>/dev/null; do
               [ "$(date +%s)" -lt "$end" ] || { echo "no COPY into pgbench_accounts within 300 s" >&2; exit 1; }
               sleep 0.1
           done
           pkill -KILL -x pgbench"#,
    );
    let status = l2.wait_phase("running");
    assert_eq!(status["healthy"], false, "{}", l2.logs());
    let pgbench = script_status(&l2, "70-pgbench.sh");
    assert_eq!(
        pgbench["start"]["outcome"],
        "failed",
        "{pgbench}\n{}",
        l2.logs()
    );
    let count = "docker exec pg psql -U postgres -Atqc 'SELECT count(*) FROM pgbench_accounts'";
    assert_eq!(inner(&l2, count), "0", "{}", l2.logs());

    docker_ok(&["stop", "-t", "90", &l2.id]);
    docker_ok(&["start", &l2.id]);
    let status = l2.wait_phase("running");
    assert_eq!(status["healthy"], true, "{}", l2.logs());
    assert_eq!(inner(&l2, count), "500000", "{}", l2.logs());
    assert_eq!(
        l2.logs()
            .matches("[70-pgbench.sh] pgbench -i -s 5 done\n")
            .count(),
        1,
        "{}",
        l2.logs()
    );
}

/// The host's next free loop device number (`losetup -f`).
fn next_free_loop() -> u32 {
    let free =
        String::from_utf8(Command::new("losetup").arg("-f").output().unwrap().stdout).unwrap();
    free.trim()
        .strip_prefix("/dev/loop")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("losetup -f printed {free:?}"))
}

/// Loop devices this test attached on the host, each to a small file of
/// its own: detached on drop (only these), their files removed.
struct HostLoops {
    /// The directory of the backing files.
    dir: std::path::PathBuf,
    /// The devices attached (`/dev/loopN`), in order.
    devices: Vec<String>,
}

impl HostLoops {
    /// Attaches 1 MiB files until the host's next free loop device is
    /// numbered `at_least` or more.
    fn attach_until_free_is_at_least(at_least: u32) -> HostLoops {
        let dir = std::env::temp_dir().join(unique("dind-init-e2e-loops"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut loops = HostLoops {
            dir,
            devices: Vec::new(),
        };
        while next_free_loop() < at_least {
            assert!(
                loops.devices.len() < 4 * at_least as usize,
                "attached {:?} and the next free loop device is still below {at_least}",
                loops.devices
            );
            let file = loops.dir.join(format!("{}.img", loops.devices.len()));
            std::fs::File::create(&file)
                .unwrap()
                .set_len(1 << 20)
                .unwrap();
            let device = run_ok(Command::new("losetup").args(["-f", "--show"]).arg(&file));
            loops.devices.push(device);
        }
        loops
    }
}

impl Drop for HostLoops {
    fn drop(&mut self) {
        for device in self.devices.iter().rev() {
            let _ = Command::new("losetup").args(["-d", device]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Issue 21 item 8: a loop-mode L2 whose free loop device is numbered past
/// 63 (the host's devices up to it taken) makes the node it needs and runs
/// its engine on it.
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn a_loop_mode_l2_runs_on_a_loop_device_numbered_past_63() {
    require_engine();
    let flags = run_flags();
    engine_image();
    // Dropped after the L2 (declared before it).
    let loops = HostLoops::attach_until_free_is_at_least(64);
    let l2 = engine_l2("loop", &flags);
    // The last mount there, over the volume at /var/lib/docker.
    let device = inner(
        &l2,
        r#"awk '{ for (i = 7; $i != "-"; i++) {} } $5 == "/var/lib/docker" { device = $(i + 2) } END { print device }' /proc/self/mountinfo"#,
    );
    let number: u32 = device
        .strip_prefix("/dev/loop")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("/var/lib/docker is on {device:?}:\n{}", l2.logs()));
    assert!(
        number >= 64,
        "/var/lib/docker is on {device} (this test attached {:?}):\n{}",
        loops.devices,
        l2.logs()
    );
    assert_eq!(inner(&l2, "docker info --format '{{.Driver}}'"), "overlay2");
    inner(&l2, "docker run --rm dind-init-l3/busybox:latest true");
}

/// A cgroup of this test in the host's cgroup v2 hierarchy and a child of
/// it, `leaf`, whose cgroup.controllers is empty (its parent enables no
/// controller for it); both removed on drop.
struct EmptyCgroup {
    /// The test's own cgroup, under the cgroup2 mount.
    parent: std::path::PathBuf,
    /// Its child, whose cgroup.controllers is empty.
    leaf: std::path::PathBuf,
}

impl EmptyCgroup {
    fn new() -> EmptyCgroup {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let root = mounts
            .lines()
            .map(|line| line.split(' ').collect::<Vec<_>>())
            .find(|fields| fields.len() > 2 && fields[2] == "cgroup2")
            .map(|fields| std::path::PathBuf::from(fields[1]))
            .expect("the host has no cgroup2 mount (cgroup v1 only)");
        let parent = root.join(unique("dind-init-e2e-cgroup"));
        let leaf = parent.join("leaf");
        std::fs::create_dir(&parent).unwrap();
        let cgroup = EmptyCgroup { parent, leaf };
        std::fs::create_dir(&cgroup.leaf).unwrap();
        assert_eq!(
            std::fs::read_to_string(cgroup.leaf.join("cgroup.controllers")).unwrap(),
            ""
        );
        cgroup
    }
}

impl Drop for EmptyCgroup {
    fn drop(&mut self) {
        // rmdir, the only removal a cgroup takes (its processes are gone with the container).
        for dir in [
            self.leaf.join("init"),
            self.leaf.clone(),
            self.parent.clone(),
        ] {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Issue 21 item 8: 10-cgroup-nesting.sh on a cgroup v2 hierarchy whose
/// cgroup.controllers is empty (a real cgroup bind-mounted at
/// /sys/fs/cgroup of a container, the container's shell moved into it):
/// in a cgroup namespace rooted there, as a private one is, it moves the
/// processes to /init and enables nothing, without an error; in the host's
/// cgroup namespace (this v1 host's Docker default) it refuses (issue 28).
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn cgroup_nesting_enables_nothing_where_cgroup_controllers_is_empty() {
    require_engine();
    let cgroup = EmptyCgroup::new();
    let script = repo_root().join("init.d-examples/dind/10-cgroup-nesting.sh");
    let nest_in = |namespace: &str| {
        docker(&[
            "run",
            "--rm",
            // unshare(CLONE_NEWCGROUP) for util-linux's unshare (busybox's has no --cgroup).
            "--cap-add",
            "SYS_ADMIN",
            "-v",
            &format!("{}:/sys/fs/cgroup", cgroup.leaf.display()),
            "-v",
            &format!("{}:/10-cgroup-nesting.sh:ro", script.display()),
            "--entrypoint",
            "sh",
            docker_dind_l2(),
            "-c",
            &format!(
                "echo $$ > /sys/fs/cgroup/cgroup.procs && {namespace} /10-cgroup-nesting.sh start \
                 && grep -qx $$ /sys/fs/cgroup/init/cgroup.procs && cat /sys/fs/cgroup/cgroup.subtree_control"
            ),
        ])
    };
    let refused = nest_in("");
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        crate::snapshot::text(&refused)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("shares the host's cgroup namespace"),
        "{}",
        crate::snapshot::text(&refused)
    );
    let output = nest_in("/usr/bin/unshare --cgroup");
    assert!(
        output.status.success(),
        "{}",
        crate::snapshot::text(&output)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "cgroup v2: processes moved to /init (try 1); no controllers to enable for children (cgroup.controllers is empty)\n",
        "{}",
        crate::snapshot::text(&output)
    );
}

/// Issue 21 item 8 (from its last notes): a plain `docker commit` of a
/// running L2 (no quiesce) in a plain-file mode, restored, twice over: the
/// inner dockerd starts on the image. dockerd replaces DATA_ROOT/runtimes
/// by renames at its start, which fail on a directory of the image's lower
/// layers ("invalid cross-device link" where it is kept; where it was
/// removed first, a fuse-overlayfs L1 shows it again after the first
/// rename: "rename …/gen-runtimes… …/runtimes: file exists").
#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn a_commit_without_quiesce_of_a_plain_file_l2_restores_with_its_engine() {
    require_engine();
    let flags = run_flags();
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut l2 = engine_l2("vfs", &flags);
    add_record(&l2, "1", 1);
    let mut images = Images(Vec::new());
    for round in 1..=2 {
        let image = format!("{}:latest", unique("dind-init-e2e-unquiesced"));
        images.0.push(image.clone());
        docker_ok(&["commit", &l2.id, &image]);
        drop(l2);
        l2 = Container::run(&image, &flag_refs);
        let status = l2.wait_phase("running");
        assert_eq!(status["healthy"], true, "round {round}:\n{}", l2.logs());
        assert_eq!(records(&l2), "1", "round {round}:\n{}", l2.logs());
    }
}

/// `dind-init storage` as the storage step runs it: a wrong word is one
/// line and exit 2; the fault points the crash tests use are listed, one a
/// line, starts first (no engine needed).
#[test]
fn the_storage_command_parses_and_lists_its_fault_points() {
    let binary = env!("CARGO_BIN_EXE_dind-init");
    let wrong = Command::new(binary)
        .args(["storage", "begin"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.starts_with(
            "dind-init storage: `dind-init storage begin` is not a storage command: use start, stop or status\n"
        ),
        "{stderr}"
    );

    let points = Command::new(binary)
        .args(["storage", "fault-points"])
        .output()
        .unwrap();
    assert!(points.status.success());
    let points = String::from_utf8_lossy(&points.stdout);
    let list: Vec<&str> = points.lines().collect();
    assert_eq!(list.first(), Some(&"start.journal-recovered"));
    assert!(list.contains(&"stop.journal-copied"), "{points}");
    assert!(
        list.iter()
            .all(|p| p.starts_with("start.") || p.starts_with("stop."))
    );
}
