//! The README's quick start, run as written: its Dockerfile and script are
//! taken from README.md, its console commands run one by one with the real
//! engine, and every output line it shows must be printed by that command
//! (numbers, times and column padding aside). A README that drifts from what
//! dind-init does fails here.
//!
//! The install comes first, as the README's Install says: the binary that
//! `make dist` wrote (`dist/docker/amd64/dind-init`) copied next to the
//! Dockerfile, and the host client installed by each of the README's
//! one-line routes, from `dist/` and from the release image, each into a
//! directory of its own instead of `/usr/local/bin`; the one from the
//! release image then runs the console steps. Two things differ from a
//! user's machine, and only those: `busybox:1.36` is the offline base image
//! (a static busybox as well), and `REGISTRY/dind-init:VERSION` is the amd64
//! release image that `docker/build-release-images.sh` builds from
//! `make dist`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::docker::{OwnedImage, base_image, docker, repo_root, require_engine, unique};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The body of the first fenced block of `language` whose first line is `first_line`.
fn fenced_block(readme: &str, language: &str, first_line: &str) -> String {
    let fence = format!("```{language}\n");
    readme
        .split(&fence)
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(body, _)| body))
        .find(|body| body.lines().any(|line| line == first_line))
        .unwrap_or_else(|| {
            panic!("README.md has no ```{language} block with the line {first_line:?}")
        })
        .to_string()
}

/// A console block: each `$ ` command with the output lines shown under it.
fn console_steps(block: &str) -> Vec<(String, Vec<String>)> {
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            let command = command.split(" #").next().unwrap_or(command).trim();
            steps.push((command.to_string(), Vec::new()));
        } else if let Some((_, shown)) = steps.last_mut() {
            shown.push(line.to_string());
        }
    }
    steps
}

/// What stays of a line once the values that change from run to run
/// (digits, column padding) are folded.
fn shape(line: &str) -> String {
    let digits_folded: String = line
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    let mut folded = String::new();
    for c in digits_folded.chars() {
        if c == '#' && folded.ends_with('#') {
            continue;
        }
        folded.push(c);
    }
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes the containers and images the quick start made, whatever happened.
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = docker(&["rm", "-f", "-v", container]);
        }
        for image in &self.images {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

#[test]
#[ignore = "needs a Docker engine, the base image and `make dist`; run by `make test`"]
fn the_readme_quick_start_prints_what_the_readme_shows() {
    require_engine();
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let dockerfile = fenced_block(&readme, "dockerfile", "# Dockerfile");
    let script = fenced_block(
        &readme,
        "sh",
        "# init.d/10-web.sh (chmod +x): one-time setup, then a daemon with a clean stop",
    );
    let console = fenced_block(
        &readme,
        "console",
        "$ docker run -d --name web2 web:prepared",
    );
    let host_client = fenced_block(
        &readme,
        "sh",
        &format!("install -m 755 dist/dind-init-{VERSION}-x86_64 /usr/local/bin/dind-init"),
    );

    let release = format!("{}:{VERSION}", unique("dind-init-e2e-quickstart-release"));
    let built = Command::new(repo_root().join("docker/build-release-images.sh"))
        .env(
            "RELEASE_IMAGE",
            release.split(':').next().unwrap_or_default(),
        )
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "build-release-images.sh failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let _release_images = ["amd64", "arm64"].map(|arch| OwnedImage {
        engine: "docker",
        tag: format!("{release}-{arch}"),
    });

    let context = std::env::temp_dir().join(unique("dind-init-quickstart"));
    fs::create_dir_all(context.join("init.d")).unwrap();
    let dist = repo_root().join("dist");
    fs::copy(
        dist.join("docker/amd64/dind-init"),
        context.join("dind-init"),
    )
    .unwrap();
    fs::write(
        context.join("Dockerfile"),
        dockerfile.replace("busybox:1.36", &base_image()),
    )
    .unwrap();
    let script_path = context.join("init.d/10-web.sh");
    fs::write(&script_path, &script).unwrap();
    fs::set_permissions(&script_path, fs::Permissions::from_mode(0o755)).unwrap();
    let mut bin = context.clone();
    for (route, line) in host_client.lines().enumerate() {
        bin = context.join(format!("bin-{route}"));
        fs::create_dir_all(&bin).unwrap();
        let line = line
            .replace("dist/", &format!("{}/", dist.display()))
            .replace("/usr/local/bin", &bin.display().to_string())
            .replace(
                &format!("REGISTRY/dind-init:{VERSION}"),
                &format!("{release}-amd64"),
            );
        run_in(&context, &bin, &line);
        assert_eq!(
            fs::read(bin.join("dind-init")).unwrap(),
            fs::read(dist.join(format!("dind-init-{VERSION}-x86_64"))).unwrap(),
            "`{line}` did not install dist's x86_64 binary"
        );
    }

    let names = [
        ("web", unique("dind-init-e2e-web")),
        ("web1", unique("dind-init-e2e-web1")),
        ("web2", unique("dind-init-e2e-web2")),
        (
            "web:prepared",
            format!("{}:prepared", unique("dind-init-e2e-web")),
        ),
    ];
    let _cleanup = Cleanup {
        containers: vec![names[1].1.clone(), names[2].1.clone()],
        images: vec![names[0].1.clone(), names[3].1.clone()],
    };
    // The README's names, word by word, for this run's own.
    let ours = |text: &str| -> String {
        text.split_whitespace()
            .map(|word| {
                names
                    .iter()
                    .find(|(readme_name, _)| *readme_name == word)
                    .map_or(word.to_string(), |(_, ours)| ours.clone())
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (readme_command, shown) in console_steps(&console) {
        let output = run_in(&context, &bin, &ours(&readme_command));
        let printed: Vec<String> = output.lines().map(shape).collect();
        for line in shown
            .iter()
            .filter(|line| !line.contains("...") && !line.contains('…'))
        {
            assert!(
                printed.contains(&shape(&ours(line))),
                "the README shows {line:?} for `{readme_command}`, which printed:\n{output}"
            );
        }
    }
    let stopped = run_in(
        &context,
        &bin,
        &format!("docker stop {} && docker wait {}", names[2].1, names[2].1),
    );
    assert!(
        stopped.lines().last() == Some("0"),
        "docker stop of the restored container: {stopped}"
    );
    fs::remove_dir_all(&context).unwrap();
}

/// Runs one console command with `sh -c` in the quick start's directory,
/// with the dind-init under test first on `PATH`; it must succeed. Returns
/// what it printed, stdout then stderr.
fn run_in(context: &Path, bin: &Path, command: &str) -> String {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("sh")
        .args(["-c", command])
        .current_dir(context)
        .env("PATH", path)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "`{command}` failed:\n{printed}");
    printed
}
