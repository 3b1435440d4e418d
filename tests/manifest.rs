//! Seed 002's multi-arch flow, run for real against the test's own registry:
//! the per-architecture release images (`docker/build-release-images.sh`)
//! pushed as `dind-init:VERSION-amd64` and `-arm64`, joined by `docker
//! manifest create` / `annotate` / `push`; `docker manifest inspect` lists
//! both platforms; a pull by platform gives each architecture's image, and
//! the arm64 one runs under qemu (`scripts/enable-arm64-emulation.sh`).

use std::process::Command;

use serde_json::Value;

use crate::docker::{OwnedImage, docker, docker_ok, repo_root, require_engine, unique};
use crate::registry::Registry;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs a script of the repository, which must succeed; returns its stdout.
fn script(path: &str, env: &[(&str, &str)]) -> String {
    let output = Command::new(repo_root().join(path))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{path} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The digest of the manifest the registry holds for `image`.
fn manifest_digest(image: &str) -> String {
    let repo_digest = docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{range .RepoDigests}}{{println .}}{{end}}",
        image,
    ]);
    let repository = image.rsplit_once(':').map_or(image, |(repo, _)| repo);
    repo_digest
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{repository}@")))
        .unwrap_or_else(|| panic!("no digest of {image} from its registry: {repo_digest}"))
        .to_string()
}

#[test]
#[ignore = "needs a Docker engine, docker-registry, `make dist` and qemu-user-static; run by `make test`"]
fn the_multi_arch_manifest_lists_both_platforms_and_a_pull_by_platform_runs_each() {
    require_engine();
    assert!(
        repo_root().join("dist/docker/arm64/dind-init").exists(),
        "no dist/docker/arm64/dind-init: run `make dist` (make test does)"
    );
    let local = unique("dind-init-e2e-release");
    let mut cleanup: Vec<OwnedImage> = ["amd64", "arm64"]
        .map(|arch| OwnedImage {
            engine: "docker",
            tag: format!("{local}:{VERSION}-{arch}"),
        })
        .into();
    script(
        "docker/build-release-images.sh",
        &[("RELEASE_IMAGE", local.as_str())],
    );

    let registry = Registry::start();
    let repository = format!("{}/{}/dind-init", registry.host, unique("release"));
    let list = format!("{repository}:{VERSION}");
    let mut pushed = Vec::new();
    for arch in ["amd64", "arm64"] {
        let remote = format!("{repository}:{VERSION}-{arch}");
        cleanup.push(OwnedImage {
            engine: "docker",
            tag: remote.clone(),
        });
        docker_ok(&["tag", &format!("{local}:{VERSION}-{arch}"), &remote]);
        docker_ok(&["push", &remote]);
        pushed.push((arch, manifest_digest(&remote)));
    }
    cleanup.push(OwnedImage {
        engine: "docker",
        tag: list.clone(),
    });

    let amd64 = format!("{repository}:{VERSION}-amd64");
    let arm64 = format!("{repository}:{VERSION}-arm64");
    docker_ok(&["manifest", "create", "--insecure", &list, &amd64, &arm64]);
    docker_ok(&[
        "manifest",
        "annotate",
        &list,
        &arm64,
        "--os",
        "linux",
        "--arch",
        "arm64",
        "--variant",
        "v8",
    ]);
    // --purge: the client's local copy of the list goes once it is pushed.
    docker_ok(&["manifest", "push", "--purge", "--insecure", &list]);

    let inspected: Value =
        serde_json::from_str(&docker_ok(&["manifest", "inspect", "--insecure", &list])).unwrap();
    assert_eq!(
        inspected["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json",
        "{inspected}"
    );
    let platforms: Vec<(String, String, String, String)> = inspected["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let field = |name: &str| entry["platform"][name].as_str().unwrap_or("").to_string();
            (
                field("os"),
                field("architecture"),
                field("variant"),
                entry["digest"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            (
                "linux".to_string(),
                "amd64".to_string(),
                String::new(),
                pushed[0].1.clone()
            ),
            (
                "linux".to_string(),
                "arm64".to_string(),
                "v8".to_string(),
                pushed[1].1.clone()
            ),
        ],
        "{inspected}"
    );

    // Each architecture from the one tag, by platform; arm64 runs under qemu.
    script("scripts/enable-arm64-emulation.sh", &[]);
    for (platform, arch, target) in [
        ("linux/arm64", "arm64", "aarch64-unknown-linux-musl"),
        ("linux/amd64", "amd64", "x86_64-unknown-linux-musl"),
    ] {
        let _ = docker(&["rmi", &list]);
        docker_ok(&["pull", "--platform", platform, &list]);
        assert_eq!(
            docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", &list]),
            arch
        );
        let version = docker_ok(&["run", "--rm", "--platform", platform, &list, "--version"]);
        assert!(
            version.contains(target),
            "{platform} image printed: {version}"
        );
        let code = docker(&[
            "run",
            "--rm",
            "--platform",
            platform,
            &list,
            "--",
            "/nonexistent",
        ])
        .status
        .code();
        assert_eq!(code, Some(127), "{platform}: dind-init as PID 1");
    }
}
