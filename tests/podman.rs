//! Podman as the engine (Debian's podman 4.3): the base image's commit and
//! restore cycle by hand (`podman kill -s USR1`, `podman exec … status --wait
//! quiesced`, `podman commit`, run the committed image), rootful and
//! rootless, and `dind-init snapshot --engine podman`, rootful and rootless;
//! and podman as L1 of the docker-in-docker stack (rootful, `--privileged`).
//!
//! Images come from the Docker engine's test images through `docker save`
//! and `podman load` (no registry is reachable here), named `localhost/…`.
//!
//! Two things of this machine show in the flags (README, "Podman"):
//! - rootful: podman asks runc for RLIMIT_NOFILE 1048576 and a high
//!   RLIMIT_NPROC by default; raising a hard limit needs CAP_SYS_RESOURCE,
//!   which this machine's engines lack (CapBnd 000001fffeffffff), so runc
//!   fails with "error setting rlimit type 7: operation not permitted".
//!   The tests ask for limits under the ones podman runs with.
//! - rootless: slirp4netns cannot open /dev/net/tun (mode 0600 here), so the
//!   rootless containers run with `--network none`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::docker::{
    Container, OwnedImage, TestImage, commit_by_signal_and_restore, docker_ok, engine_ok,
    make_stage_image, repo_root, require_engine, unique,
};
use crate::snapshot::{
    LEAKY_SCRIPT, crafted_status_image, snapshot, snapshot_commits_and_resumes,
    snapshot_exit_codes_and_rm, snapshot_refuses_a_crafted_status,
    snapshot_refuses_an_unsafe_container,
};

/// `podman run` flags of the rootful tests (see the module comment).
const ROOTFUL_FLAGS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:4096",
    "--ulimit",
    "nproc=4096:4096",
];
/// `podman run` flags of the rootless tests (see the module comment).
const ROOTLESS_FLAGS: [&str; 2] = ["--network", "none"];

/// A Docker test image copied into an engine's store as `localhost/TAG`.
fn copy_to(engine_name: &'static str, image: &TestImage) -> OwnedImage {
    copy_tag_to(engine_name, &image.tag)
}

/// A Docker image copied into an engine's store as `localhost/TAG`.
pub(crate) fn copy_tag_to(engine_name: &'static str, docker_tag: &str) -> OwnedImage {
    let archive = std::env::temp_dir().join(format!("{}.tar", unique("dind-init-e2e-image")));
    let path = archive.to_str().unwrap();
    docker_ok(&["save", "-o", path, docker_tag]);
    // A rootless engine reads it as its own user.
    fs::set_permissions(&archive, fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = engine_ok(engine_name, &["load", "-q", "-i", path]);
    fs::remove_file(&archive).unwrap();
    let tag = format!("localhost/{docker_tag}");
    assert!(loaded.contains(&tag), "{engine_name} load gave: {loaded}");
    OwnedImage {
        engine: engine_name,
        tag,
    }
}

/// The cycle by hand on `engine_name` ([`commit_by_signal_and_restore`]),
/// from the example image copied into its store.
fn commit_restore_cycle(engine_name: &'static str, flags: &[&str]) {
    require_engine();
    let built = TestImage::build("podman-cycle", &[], true);
    let image = copy_to(engine_name, &built);
    let container = Container::run_on(engine_name, &image.tag, flags);
    container.wait_phase("running");
    commit_by_signal_and_restore(container, flags);
}

/// A `podman` for the rootless user that scripts/setup-rootless-podman.sh
/// prepares: `DIR/podman` runs podman as that user through `DIR/as-user`
/// (which [`crate::snapshot::snapshot`] uses too). Leaked for the
/// `&'static str` that [`Container`] holds; the directory is removed on drop.
struct RootlessPodman {
    dir: std::path::PathBuf,
    podman: &'static str,
}

impl RootlessPodman {
    fn new() -> Self {
        let output = Command::new(repo_root().join("scripts/setup-rootless-podman.sh"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "setup-rootless-podman.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let user = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let dir = std::env::temp_dir().join(unique("podman-rootless"));
        fs::create_dir_all(&dir).unwrap();
        let script = |name: &str, body: String| {
            let path = dir.join(name);
            fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        script(
            "as-user",
            format!(
                "# runs a command as the rootless user {user}\ncd /\nuid=$(id -u {user})\nexec runuser -u {user} -- env XDG_RUNTIME_DIR=/run/user/$uid HOME=$(getent passwd {user} | cut -d: -f6) \"$@\""
            ),
        );
        let podman = script(
            "podman",
            format!("exec {}/as-user podman \"$@\"", dir.display()),
        );
        RootlessPodman {
            podman: Box::leak(podman.to_string_lossy().into_owned().into_boxed_str()),
            dir,
        }
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
#[ignore = "needs podman, a Docker engine and `make base`; run by `make test`"]
fn podman_rootful_commit_and_restore_by_hand() {
    commit_restore_cycle("podman", &ROOTFUL_FLAGS);
}

#[test]
#[ignore = "needs podman, uidmap, a Docker engine and `make base`; run by `make test`"]
fn podman_rootless_commit_and_restore_by_hand_and_snapshot() {
    let rootless = RootlessPodman::new();
    commit_restore_cycle(rootless.podman, &ROOTLESS_FLAGS);

    let built = TestImage::build("podman-rootless-snapshot", &[], true);
    let image = copy_to(rootless.podman, &built);
    let container = Container::run_on(rootless.podman, &image.tag, &ROOTLESS_FLAGS);
    container.wait_phase("running");
    snapshot_commits_and_resumes(&container, &ROOTLESS_FLAGS);
}

#[test]
#[ignore = "needs podman, a Docker engine and `make base`; run by `make test`"]
fn podman_snapshot_commits_refuses_and_gives_its_exit_codes() {
    require_engine();
    let built = TestImage::build("podman-snapshot", &[], true);
    let image = copy_to("podman", &built);
    let container = Container::run_on("podman", &image.tag, &ROOTFUL_FLAGS);
    container.wait_phase("running");
    snapshot_commits_and_resumes(&container, &ROOTFUL_FLAGS);
    drop(container);

    let leaky = TestImage::build("podman-leaky", &[LEAKY_SCRIPT], false);
    let leaky = copy_to("podman", &leaky);
    let container = Container::run_on("podman", &leaky.tag, &ROOTFUL_FLAGS);
    container.wait_phase("running");
    snapshot_refuses_an_unsafe_container(&container);
    drop(container);

    let crafted = copy_to("podman", &crafted_status_image());
    let container = Container::run_on("podman", &crafted.tag, &ROOTFUL_FLAGS);
    container.wait_phase("running");
    snapshot_refuses_a_crafted_status(&container);
    drop(container);

    snapshot_exit_codes_and_rm(&image.tag, "podman", &ROOTFUL_FLAGS);
}

#[test]
#[ignore = "needs podman, a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn podman_as_l1_runs_the_dind_stack_and_snapshots_it_with_its_l3_state() {
    require_engine();
    let repo = unique("dind-init-e2e-podman-dind");
    let _stages: Vec<OwnedImage> = [
        "10-engine:tmp",
        "10-engine:latest",
        "20-stack:tmp",
        "20-stack:latest",
    ]
    .map(|tag| OwnedImage {
        engine: "docker",
        tag: format!("{repo}/{tag}"),
    })
    .into();
    make_stage_image(&repo_root().join("docker/dind/stages/20-stack"), &repo, &[]);
    let image = copy_tag_to("podman", &format!("{repo}/20-stack:latest"));
    // podman's --privileged grants what podman holds itself (CapBnd
    // 000001fffeffffff here), where Docker 20.10's asks for every capability.
    let flags = [ROOTFUL_FLAGS.as_slice(), &["--privileged"]].concat();
    let inner = |l2: &Container, command: &str| l2.exec_ok(&["sh", "-c", command]);

    let l2 = Container::run_on("podman", &image.tag, &flags);
    let status = l2.wait_phase("running");
    assert_eq!(status["boot"]["boot"], 3, "{}", l2.logs());
    assert_eq!(status["healthy"], true, "{}", l2.logs());
    crate::dind::assert_file_granular_storage(&l2);
    assert_eq!(inner(&l2, "docker exec counter cat /data/boots"), "2");
    let committed = OwnedImage {
        engine: "podman",
        tag: format!("localhost/dind-init-e2e/{}:latest", unique("podman-l2")),
    };
    let output = snapshot("podman", &["--rm", &l2.id, &committed.tag]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(l2);

    let l2 = Container::run_on("podman", &committed.tag, &flags);
    let status = l2.wait_phase("running");
    assert_eq!(status["boot"]["boot"], 4, "{}", l2.logs());
    assert_eq!(status["boot"]["restored_from_quiesce"], 3);
    assert_eq!(inner(&l2, "docker exec counter cat /data/boots"), "3");
    assert_eq!(
        inner(
            &l2,
            "docker exec stack_web_1 sh -c 'ls /www/record-*.txt | wc -l'"
        ),
        "50"
    );
}

#[test]
#[ignore = "needs podman, a Docker engine and `make base`; run by `make test`"]
fn podman_pool_takes_replaces_waits_releases_and_drains() {
    use crate::pool::{
        HANGING_SCRIPT, Pool, WARM_SCRIPT, a_killed_member_is_replaced,
        concurrent_takes_never_share, drain_leaves_nothing_behind,
        release_removes_the_anonymous_volumes, take_waits_for_the_first_ready_and_no_longer,
    };
    require_engine();
    let built = TestImage::build("podman-pool", &[WARM_SCRIPT], false);
    let image = copy_to("podman", &built);
    let hanging = copy_to(
        "podman",
        &TestImage::build("podman-pool-never", &[HANGING_SCRIPT], false),
    );
    take_waits_for_the_first_ready_and_no_longer(
        &Pool::new("podman", &ROOTFUL_FLAGS),
        &image.tag,
        &Pool::new("podman", &ROOTFUL_FLAGS),
        &hanging.tag,
    );
    concurrent_takes_never_share(&Pool::new("podman", &ROOTFUL_FLAGS), &image.tag);
    a_killed_member_is_replaced(&Pool::new("podman", &ROOTFUL_FLAGS), &image.tag);
    let with_volume = [ROOTFUL_FLAGS.as_slice(), &["-v", "/scratch"]].concat();
    release_removes_the_anonymous_volumes(&Pool::new("podman", &with_volume), &image.tag);
    drain_leaves_nothing_behind(&Pool::new("podman", &ROOTFUL_FLAGS), &image.tag);
}
