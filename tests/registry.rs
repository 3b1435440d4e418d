//! A real registry in the tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on 127.0.0.1 with a port of its own and its storage
//! in a temporary directory. A prepared (committed) stage is pushed, removed
//! locally, pulled and run with its data intact; the next snapshot of it is
//! pulled by a "runner" that has the previous one, and the bytes it fetched
//! are counted from the registry's own request log: only the new layer.
//!
//! `make registry-figures` prints the figures of the README from this test.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::docker::{
    Container, EXAMPLE_STAGE_TAGS, OwnedImage, docker, docker_ok, make_stage_image, repo_root,
    require_engine, unique,
};
use crate::snapshot::snapshot;

/// How long the registry may take to listen and answer.
const REGISTRY_READY: Duration = Duration::from_secs(30);

/// A `docker-registry serve` of the test's own: killed, and its storage
/// removed, on drop (also when the test fails).
pub(crate) struct Registry {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    /// `127.0.0.1:PORT`, the prefix of the image references pushed to it.
    pub(crate) host: String,
}

impl Registry {
    /// Starts the registry on a free port the kernel picks (`:0`), then waits
    /// for its "listening on" log line and a 200 from `GET /v2/`.
    pub(crate) fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("dind-init-e2e-registry"));
        fs::create_dir_all(dir.join("storage")).unwrap();
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let log = dir.join("registry.log");
        let out = File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("cannot run docker-registry: apt-get install docker-registry (.ci/run does)");
        let mut registry = Registry {
            child,
            dir,
            log,
            host: String::new(),
        };
        let deadline = Instant::now() + REGISTRY_READY;
        loop {
            let text = fs::read_to_string(&registry.log).unwrap_or_default();
            if let Some(address) = text
                .split("listening on ")
                .nth(1)
                .and_then(|rest| rest.split(['"', ' ', '\n']).next())
            {
                registry.host = address.to_string();
                break;
            }
            if let Ok(Some(exit)) = registry.child.try_wait() {
                panic!("docker-registry exited ({exit}) before listening:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not log `listening on` within {REGISTRY_READY:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        while registry.get_status("/v2/") != Some(200) {
            assert!(
                Instant::now() < deadline,
                "docker-registry on {} did not answer GET /v2/ with 200:\n{}",
                registry.host,
                registry.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry
    }

    /// The HTTP status of `GET path`, or `None` if the registry does not answer.
    fn get_status(&self, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(&self.host).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host
        )
        .ok()?;
        let mut first = String::new();
        BufReader::new(stream).read_line(&mut first).ok()?;
        first.split(' ').nth(1)?.parse().ok()
    }

    pub(crate) fn log_text(&self) -> String {
        let mut text = String::new();
        let _ = File::open(&self.log).and_then(|mut file| file.read_to_string(&mut text));
        text
    }

    /// How many bytes of log there are now: a mark for [`Registry::fetched_since`].
    pub(crate) fn mark(&self) -> usize {
        self.log_text().len()
    }

    /// The blobs and manifests served (`GET`, status 200) since `mark`:
    /// (request path, bytes written), from the registry's request log.
    ///
    /// The registry logs a request once it has answered it, so a client may
    /// be done before the line is written: first a request of our own, made
    /// now, must show in the log (every request the client made before has
    /// been answered by then, and is logged first in practice).
    pub(crate) fn fetched_since(&self, mark: usize) -> Vec<(String, u64)> {
        let probe = format!("/v2/?after={}", unique("pull"));
        assert_eq!(self.get_status(&probe), Some(200), "GET {probe}");
        let deadline = Instant::now() + REGISTRY_READY;
        while !self.log_text().contains(&probe) {
            assert!(
                Instant::now() < deadline,
                "the registry did not log GET {probe}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = self.log_text();
        text.get(mark..)
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                line.contains("msg=\"response completed\"")
                    && field(line, "http.request.method") == Some("GET")
                    && field(line, "http.response.status") == Some("200")
                    && field(line, "http.request.uri")
                        .is_some_and(|uri| uri.contains("/blobs/") || uri.contains("/manifests/"))
            })
            .filter_map(|line| {
                Some((
                    field(line, "http.request.uri")?.to_string(),
                    field(line, "http.response.written")?.parse().ok()?,
                ))
            })
            .collect()
    }
}

/// The value of `key=value` (or `key="value"`) in a logfmt line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next(),
        None => rest.split(' ').next(),
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Digest and size of every layer of a pushed image, base first, and its
/// config digest (`docker manifest inspect`, which talks to the registry).
fn layers(image: &str) -> (Vec<(String, u64)>, String) {
    let manifest: Value =
        serde_json::from_str(&docker_ok(&["manifest", "inspect", "--insecure", image])).unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in the manifest of {image}: {manifest}"))
        .iter()
        .map(|layer| {
            (
                layer["digest"].as_str().unwrap().to_string(),
                layer["size"].as_u64().unwrap(),
            )
        })
        .collect();
    (
        layers,
        manifest["config"]["digest"].as_str().unwrap().to_string(),
    )
}

fn records(container: &Container) -> String {
    container.exec_ok(&["wget", "-qO-", "http://127.0.0.1:8080/cgi-bin/summary.cgi"])
}

fn data_checksum(container: &Container) -> String {
    crate::docker::checksum(container, "/srv/app/data")
}

#[test]
#[ignore = "needs a Docker engine, docker-registry and `make base`; run by `make test`"]
fn a_prepared_stage_goes_through_a_registry_and_the_next_snapshot_pulls_only_its_new_layer() {
    require_engine();
    let repo = unique("dind-init-e2e-registry");
    // Everything this test tags, removed at the end whatever happens.
    let mut cleanup: Vec<OwnedImage> = EXAMPLE_STAGE_TAGS
        .iter()
        .map(|tag| OwnedImage {
            engine: "docker",
            tag: format!("{repo}/{tag}"),
        })
        .collect();
    make_stage_image(
        &repo_root().join("docker/stages/30-deposit"),
        &repo,
        &["RUN_FLAGS=-e DEPLOY_RECORDS=100 -e DEPOSIT_RECORDS=10"],
    );
    let prepared = format!("{repo}/30-deposit:latest");
    let local = Container::run(&prepared, &[]);
    local.wait_phase("running");
    let before = data_checksum(&local);
    drop(local);

    let registry = Registry::start();
    let first = format!("{}/{repo}/env:1", registry.host);
    let second = format!("{}/{repo}/env:2", registry.host);
    cleanup.extend([&first, &second].map(|tag| OwnedImage {
        engine: "docker",
        tag: tag.clone(),
    }));
    docker_ok(&["tag", &prepared, &first]);
    docker_ok(&["push", &first]);

    // Nothing of the stages is left locally (only the base image): pull, run.
    for image in &cleanup {
        let _ = docker(&["rmi", &image.tag]);
    }
    assert!(!docker(&["image", "inspect", &prepared]).status.success());
    let mark = registry.mark();
    docker_ok(&["pull", &first]);
    let first_pull: u64 = registry.fetched_since(mark).iter().map(|(_, n)| n).sum();
    let runner = Container::run(&first, &[]);
    let status = runner.wait_phase("running");
    assert_eq!(status["boot"]["boot"], 3, "{}", runner.logs());
    assert_eq!(status["boot"]["restored"], true);
    assert_eq!(status["boot"]["restored_from_quiesce"], 2);
    assert!(
        records(&runner).contains("records 110"),
        "{}",
        records(&runner)
    );
    assert_eq!(data_checksum(&runner), before, "the prepared data changed");

    // The next snapshot: more records on top of the pulled one, committed
    // with `dind-init snapshot`, pushed.
    runner.exec_ok(&[
        "sh",
        "-c",
        "for i in 1 2 3; do wget -qO- --post-data \"runner $i\" http://127.0.0.1:8080/cgi-bin/record.cgi; done",
    ]);
    let output = snapshot("docker", &["--rm", &runner.id, &second]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    docker_ok(&["push", &second]);
    let (first_layers, _) = layers(&first);
    let (second_layers, second_config) = layers(&second);
    assert_eq!(
        second_layers[..second_layers.len() - 1],
        first_layers[..],
        "the next snapshot is the previous one plus one layer"
    );
    let (new_layer, new_layer_size) = second_layers.last().unwrap().clone();

    // A runner that has the previous snapshot pulls the next one.
    docker_ok(&["rmi", &second]);
    let mark = registry.mark();
    docker_ok(&["pull", &second]);
    let fetched = registry.fetched_since(mark);
    let blobs: Vec<&str> = fetched
        .iter()
        .filter(|(uri, _)| uri.contains("/blobs/"))
        .map(|(uri, _)| uri.rsplit('/').next().unwrap_or_default())
        .collect();
    let mut expected = vec![new_layer.as_str(), second_config.as_str()];
    let mut got = blobs.clone();
    expected.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, expected, "pulled more than the new layer: {fetched:?}");
    let next_pull: u64 = fetched.iter().map(|(_, n)| n).sum();
    let whole: u64 = second_layers.iter().map(|(_, n)| n).sum();

    let restored = Container::run(&second, &[]);
    let status = restored.wait_phase("running");
    assert_eq!(status["boot"]["boot"], 4);
    assert!(
        records(&restored).contains("records 113"),
        "{}",
        records(&restored)
    );
    drop(restored);

    println!(
        "figure | first pull of the prepared stage-30 image (only the base image present) | {first_pull} bytes |"
    );
    println!(
        "figure | pull of the next snapshot by a runner that has the previous one | {next_pull} bytes (its one new layer: {new_layer_size}; the rest: config and manifest) |"
    );
    println!(
        "figure | the next snapshot's layers in all (compressed), what a runner without it pulls | {whole} bytes |"
    );
}
