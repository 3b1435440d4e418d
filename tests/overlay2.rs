//! The L1 most hosts run: a Docker engine with the overlay2 storage driver.
//! The machine's own engine runs fuse-overlayfs, so the test starts a second
//! engine of its own (`scripts/overlay2-engine.sh`: overlay2 on ext4 in a
//! loop file, its own network namespace, data root, exec root, pidfile and
//! socket), loads the prepared PostgreSQL L2 into it with `docker save |
//! docker load`, and runs the DinD restore-insert-commit cycle of
//! tests/dind.rs on it. The storage mode is the one `auto` chose at the
//! setup, on the host's engine (vfs here); `make dind-figures` does the
//! setup on the overlay2 engine too, where `auto` takes fuse-overlayfs. The engine and everything in it are removed when
//! the test ends, also when it fails.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::dind::{build_postgres_stage, postgres_cycles, run_flags_on};
use crate::docker::{base_image, engine_ok, repo_root, require_engine, unique};

/// A dockerd with overlay2 of the test's own, stopped and removed on drop.
pub(crate) struct Overlay2Engine {
    /// Everything of the engine: loop file, data root, exec root, socket.
    dir: PathBuf,
    /// The `docker` client for this engine: a wrapper script `DIR/bin/docker`
    /// that sets DOCKER_HOST; the engine name of `Container::run_on`.
    pub(crate) cli: &'static str,
}

impl Overlay2Engine {
    pub(crate) fn start() -> Self {
        // Short: the socket's path must fit a sockaddr_un (108 bytes).
        let dir = PathBuf::from("/tmp").join(unique("dind-init-ov2"));
        let output = Command::new(repo_root().join("scripts/overlay2-engine.sh"))
            .arg("start")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "overlay2-engine.sh start failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let host = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let cli = client_wrapper(&dir, &host);
        Overlay2Engine { dir, cli }
    }

    /// `docker save IMAGE | docker -H THIS load`: the host engine's image here.
    pub(crate) fn load(&self, image: &str) {
        load_into(self.cli, image);
    }
}

/// A `docker` client for the engine at `host` (a DOCKER_HOST value): the
/// wrapper script `DIR/bin/docker`, for `Container::run_on` and
/// `engine_script`.
pub(crate) fn client_wrapper(dir: &std::path::Path, host: &str) -> &'static str {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let docker = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v docker"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let wrapper = bin.join("docker");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nDOCKER_HOST={host} exec {} \"$@\"\n",
            docker.trim()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    // 'static for Container's engine field; one small string per test run.
    Box::leak(wrapper.display().to_string().into_boxed_str())
}

/// `docker save IMAGE | CLI load`: the host engine's image in another engine.
pub(crate) fn load_into(cli: &str, image: &str) {
    let mut save = Command::new("docker")
        .args(["save", image])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = Command::new(cli)
        .args(["load", "-q"])
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(save.wait().unwrap().success(), "docker save {image} failed");
    assert!(
        load.status.success(),
        "docker load of {image} into {cli} failed: {}",
        String::from_utf8_lossy(&load.stderr)
    );
}

impl Drop for Overlay2Engine {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/overlay2-engine.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

#[test]
#[ignore = "needs a Docker engine, root, a loop device, debootstrap and Debian's archive; run by `make test`"]
fn postgres_restore_insert_commit_on_an_overlay2_l1_keeps_the_data_and_each_layer_is_bounded_by_the_wal_written()
 {
    require_engine();
    let repo = unique("dind-init-e2e-ov2");
    // The stage is built on the host's engine, then carried over.
    let (_built, prepared) = build_postgres_stage(&repo);

    let bridge = host_bridge();
    assert!(
        bridge.starts_with("docker0 "),
        "no docker0 on the host: {bridge}"
    );
    let engine = Overlay2Engine::start();
    assert_eq!(
        engine_ok(engine.cli, &["info", "-f", "{{.Driver}}"]),
        "overlay2"
    );
    engine.load(&prepared);
    // run-flags.sh probes the engine with the base image.
    engine.load(&base_image());
    let flags = run_flags_on(engine.cli);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The cycle's images live in the engine's data root, removed with it.
    let mut committed = Vec::new();
    postgres_cycles(engine.cli, &flag_refs, &repo, prepared, 1, &mut committed);
    drop(engine);
    assert_eq!(
        host_bridge(),
        bridge,
        "the host's docker0 changed while the overlay2 engine ran"
    );
}

/// The host's default bridge: its name and MAC address from `ip -br link`
/// (not its state, which follows the host's containers).
fn host_bridge() -> String {
    let shown = Command::new("ip")
        .args(["-br", "link", "show", "docker0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    format!(
        "{} {}",
        words.first().unwrap_or(&""),
        words.get(2).unwrap_or(&"")
    )
}
