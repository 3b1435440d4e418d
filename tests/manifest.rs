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
fn script(path: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(repo_root().join(path))
        .args(args)
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

/// The release of this checkout in a registry of the test's own, as a user
/// finds it: `REPOSITORY:VERSION-amd64`, `-arm64` and the manifest list
/// `REPOSITORY:VERSION` joining them. Every tag it made is removed on drop.
struct PushedRelease {
    /// The manifest list, `127.0.0.1:PORT/…/dind-init:VERSION`.
    list: String,
    /// (Docker's architecture name, digest of the pushed image), amd64 first.
    pushed: Vec<(&'static str, String)>,
    /// Local tags: the built images, the pushed ones and the list's.
    _tags: Vec<OwnedImage>,
    /// Declared last: the registry stops after the tags are gone.
    _registry: Registry,
}

impl PushedRelease {
    /// `scripts/release.sh`: `docker/build-release-images.sh`, one push per
    /// architecture, then `docker manifest create` / `annotate` / `push`
    /// (seed 002's flow).
    fn push() -> Self {
        require_engine();
        assert!(
            repo_root().join("dist/docker/arm64/dind-init").exists(),
            "no dist/docker/arm64/dind-init: run `make dist` (make test does)"
        );
        let local = unique("dind-init-e2e-release");
        let mut tags: Vec<OwnedImage> = ["amd64", "arm64"]
            .map(|arch| OwnedImage {
                engine: "docker",
                tag: format!("{local}:{VERSION}-{arch}"),
            })
            .into();
        let registry = Registry::start();
        let repository = format!("{}/{}/dind-init", registry.host, unique("release"));
        let list = format!("{repository}:{VERSION}");
        tags.extend(
            [
                format!("{list}-amd64"),
                format!("{list}-arm64"),
                list.clone(),
            ]
            .map(|tag| OwnedImage {
                engine: "docker",
                tag,
            }),
        );
        let printed = script(
            "scripts/release.sh",
            &[&repository],
            &[("RELEASE_IMAGE", local.as_str())],
        );
        assert!(
            printed.contains(&format!("released {list} (linux/amd64, linux/arm64/v8)")),
            "{printed}"
        );
        let pushed = ["amd64", "arm64"]
            .map(|arch| (arch, manifest_digest(&format!("{list}-{arch}"))))
            .into();
        PushedRelease {
            list,
            pushed,
            _tags: tags,
            _registry: registry,
        }
    }
}

/// Each platform of the release: Docker's name, architecture, Rust target.
const PLATFORMS: [(&str, &str, &str); 2] = [
    ("linux/arm64", "arm64", "aarch64-unknown-linux-musl"),
    ("linux/amd64", "amd64", "x86_64-unknown-linux-musl"),
];

#[test]
#[ignore = "needs a Docker engine, docker-registry, `make dist` and qemu-user-static; run by `make test`"]
fn the_multi_arch_manifest_lists_both_platforms_and_a_pull_by_platform_runs_each() {
    let release = PushedRelease::push();
    let (list, pushed) = (&release.list, &release.pushed);

    let inspected: Value =
        serde_json::from_str(&docker_ok(&["manifest", "inspect", "--insecure", list])).unwrap();
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
    script("scripts/enable-arm64-emulation.sh", &[], &[]);
    for (platform, arch, target) in PLATFORMS {
        let _ = docker(&["rmi", list]);
        docker_ok(&["pull", "--platform", platform, list]);
        assert_eq!(
            docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", list]),
            arch
        );
        let version = docker_ok(&["run", "--rm", "--platform", platform, list, "--version"]);
        assert!(
            version.contains(target),
            "{platform} image printed: {version}"
        );
        let code = docker(&[
            "run",
            "--rm",
            "--platform",
            platform,
            list,
            "--",
            "/nonexistent",
        ])
        .status
        .code();
        assert_eq!(code, Some(127), "{platform}: dind-init as PID 1");
    }
}

/// The README's install, as a user's Dockerfile: nothing of this checkout
/// but the release image named in `COPY --from=`.
fn users_dockerfile(release: &str) -> String {
    format!(
        "FROM scratch\n\
         COPY --from={release} /dind-init /usr/local/bin/dind-init\n\
         ENTRYPOINT [\"/usr/local/bin/dind-init\", \"--\"]\n\
         CMD [\"/usr/local/bin/dind-init\", \"--version\"]\n"
    )
}

#[test]
#[ignore = "needs a Docker engine, docker-registry, `make dist` and qemu-user-static; run by `make test`"]
fn a_users_dockerfile_copies_dind_init_from_the_release_image_and_runs_it_as_pid_1_on_both_architectures()
 {
    let release = PushedRelease::push();
    let context = std::env::temp_dir().join(unique("dind-init-e2e-user"));
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), users_dockerfile(&release.list)).unwrap();
    script("scripts/enable-arm64-emulation.sh", &[], &[]);
    // arm64 first, so that the amd64 build finds the list's tag holding the
    // other architecture: Docker 20.10's legacy builder then copies from
    // that local image whatever --platform says, unless --pull is given.
    for (platform, arch, target) in PLATFORMS {
        let user = OwnedImage {
            engine: "docker",
            tag: format!("{}:{arch}", unique("dind-init-e2e-user")),
        };
        docker_ok(&[
            "build",
            "-q",
            "--pull",
            "--platform",
            platform,
            "-t",
            &user.tag,
            context.to_str().unwrap(),
        ]);
        assert_eq!(
            docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", &user.tag]),
            arch
        );
        // dind-init as PID 1 runs the CMD, the binary itself, as its main command.
        let version = docker_ok(&["run", "--rm", "--platform", platform, &user.tag]);
        assert!(
            version.contains(target),
            "{platform}: the user's image printed: {version}"
        );
        let missing = docker(&[
            "run",
            "--rm",
            "--platform",
            platform,
            &user.tag,
            "/nonexistent",
        ]);
        assert_eq!(
            missing.status.code(),
            Some(127),
            "{platform}: {}",
            String::from_utf8_lossy(&missing.stderr)
        );
        assert!(
            String::from_utf8_lossy(&missing.stderr)
                .contains("dind-init: error: cannot execute main command /nonexistent"),
            "{platform}: {}",
            String::from_utf8_lossy(&missing.stderr)
        );
    }
    std::fs::remove_dir_all(&context).unwrap();
}
