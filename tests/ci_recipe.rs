//! The CI recipe of `examples/ci/`, run as the YAML files run it: the
//! command lines that call `examples/ci/prepared-image.sh` are read from the
//! GitHub Actions workflow and the GitLab CI file (both must have the same
//! ones) and run here, against a registry of the test's own. The prepare
//! job builds and pushes; a second prepare job (a fresh runner: no local
//! images) finds the key and builds nothing; a test job pulls, runs, waits
//! for `running`, runs the tests and removes the container with its volumes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::docker::{EXAMPLE_STAGE_TAGS, OwnedImage, docker, repo_root, require_engine, unique};
use crate::registry::Registry;

const SCRIPT: &str = "examples/ci/prepared-image.sh";

/// The lines of a CI file that call the recipe's script, as shell commands
/// (without YAML's `- run: ` or `- `).
fn recipe_commands(file: &str) -> Vec<String> {
    fs::read_to_string(repo_root().join(file))
        .unwrap()
        .lines()
        .filter_map(|line| {
            let command = line
                .trim()
                .trim_start_matches("- ")
                .trim_start_matches("run: ");
            command.starts_with(SCRIPT).then(|| command.to_string())
        })
        .collect()
}

/// One CI job's command line, run from the checkout's root with `env`.
fn job(command: &str, env: &[(&str, &str)]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(repo_root())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeeded(command: &str, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{command} failed:\n{}",
        text(output)
    );
    text(output)
}

/// The container id from the script's "running in container ID" line.
fn container_of(log: &str) -> String {
    log.split("running in container ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no container id in:\n{log}"))
        .to_string()
}

#[test]
#[ignore = "needs a Docker engine, docker-registry and `make base`; run by `make test`"]
fn the_ci_recipe_builds_once_per_input_key_and_each_test_job_runs_on_a_restored_container() {
    require_engine();
    let github = recipe_commands("examples/ci/github/prepared-image.yml");
    let gitlab = recipe_commands("examples/ci/gitlab/.gitlab-ci.yml");
    assert_eq!(github, gitlab, "the two CI files run different steps");
    let prepare = github
        .iter()
        .find(|command| command.starts_with(&format!("{SCRIPT} prepare")))
        .expect("no prepare job in the CI files");
    let test = github
        .iter()
        .find(|command| command.starts_with(&format!("{SCRIPT} test ")))
        .expect("no test job in the CI files");

    let registry = Registry::start();
    let repository = format!("{}/{}/prepared", registry.host, unique("ci"));
    let local = unique("dind-init-e2e-ci");
    let mut images: Vec<OwnedImage> = EXAMPLE_STAGE_TAGS
        .iter()
        .map(|tag| OwnedImage {
            engine: "docker",
            tag: format!("{local}/{tag}"),
        })
        .collect();
    // The YAML's jobs with this test's registry and image names; the stage
    // build of the README's example, with fewer records for CI's time.
    let build = format!(
        "make -C docker/stages/30-deposit image REPO={local} RUN_FLAGS='-e DEPLOY_RECORDS=100 -e DEPOSIT_RECORDS=10'"
    );
    let local_image = format!("{local}/30-deposit:latest");
    let env = [
        ("PREPARED_REPOSITORY", repository.as_str()),
        ("PREPARED_BUILD", build.as_str()),
        ("PREPARED_LOCAL", local_image.as_str()),
        ("PREPARED_RUN_FLAGS", "-v /ci-scratch"),
        ("DIND_INIT", env!("CARGO_BIN_EXE_dind-init")),
    ];
    let tag = succeeded("tag", &job(&format!("{SCRIPT} tag"), &env));
    let prepared = tag.trim().to_string();
    assert!(
        prepared.starts_with(&format!("{repository}:")),
        "{prepared}"
    );
    images.push(OwnedImage {
        engine: "docker",
        tag: prepared.clone(),
    });

    let first = succeeded(prepare, &job(prepare, &env));
    assert!(
        first.contains(&format!("{prepared} is not in the registry: building it"))
            && first.contains(&format!("pushed {prepared}")),
        "{first}"
    );

    // A fresh runner: none of the images are here. The same inputs: no build.
    for image in &images {
        let _ = docker(&["rmi", "-f", &image.tag]);
    }
    let second = succeeded(prepare, &job(prepare, &env));
    assert!(
        second.contains(&format!(
            "{prepared} is in the registry: its inputs have not changed, nothing to build"
        )),
        "{second}"
    );
    assert!(
        !docker(&["image", "inspect", &local_image]).status.success(),
        "the second prepare built {local_image}:\n{second}"
    );

    // A test job: pull, run, wait for running, the tests, rm -f -v.
    let tested = succeeded(test, &job(test, &env));
    assert!(tested.contains("phase:   running (healthy)"), "{tested}");
    assert!(tested.contains("records 1"), "{tested}");
    let container = container_of(&tested);
    assert!(
        !docker(&["container", "inspect", &container])
            .status
            .success(),
        "the test job left its container {container}"
    );

    // A failing test command fails the job, and its container and the
    // container's anonymous volume are removed all the same.
    let failing = job(
        &format!(
            "{SCRIPT} test sh -c 'docker inspect -f \"volume {{{{range .Mounts}}}}{{{{.Name}}}}{{{{end}}}}\" \"$PREPARED_CONTAINER\"; exit 3'"
        ),
        &env,
    );
    assert_eq!(failing.status.code(), Some(3), "{}", text(&failing));
    let log = text(&failing);
    let container = container_of(&log);
    let volume = log
        .split("volume ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no volume in:\n{log}"))
        .to_string();
    assert!(
        !docker(&["container", "inspect", &container])
            .status
            .success(),
        "a failed test job left its container {container}"
    );
    assert!(
        !docker(&["volume", "inspect", &volume]).status.success(),
        "a failed test job left the volume {volume}"
    );

    // The key is the inputs' content and modes: a change, a new key.
    let inputs = std::env::temp_dir().join(unique("dind-init-e2e-ci-inputs"));
    fs::create_dir_all(&inputs).unwrap();
    let input = inputs.join("stage.sh");
    let key_env = |dir: &str| {
        let mut with = env.to_vec();
        with.push(("PREPARED_INPUTS", dir));
        succeeded("tag", &job(&format!("{SCRIPT} tag"), &with))
    };
    let dir = inputs.to_str().unwrap();
    fs::write(&input, "echo one\n").unwrap();
    let one = key_env(dir);
    assert_eq!(key_env(dir), one, "the key of unchanged inputs changed");
    fs::write(&input, "echo two\n").unwrap();
    let two = key_env(dir);
    assert_ne!(two, one, "a changed file kept the key");
    fs::set_permissions(&input, fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(key_env(dir), two, "chmod +x kept the key");
    fs::remove_dir_all(&inputs).unwrap();

    // A job that fills a pool and runs several tests, each on a ready
    // container of its own, then drains it.
    let pool = unique("dind-init-e2e-ci-pool");
    let mut pool_env = env.to_vec();
    pool_env.push(("PREPARED_POOL", pool.as_str()));
    let steps: Vec<&String> = github
        .iter()
        .filter(|command| command.starts_with(&format!("{SCRIPT} pool-")))
        .collect();
    assert!(
        steps
            .first()
            .is_some_and(|c| c.starts_with(&format!("{SCRIPT} pool-fill ")))
            && steps
                .last()
                .is_some_and(|c| *c == &format!("{SCRIPT} pool-drain")),
        "the pool job must fill, test, then drain: {steps:?}"
    );
    let mut taken = Vec::new();
    for step in &steps {
        let log = succeeded(step, &job(step, &pool_env));
        if step.starts_with(&format!("{SCRIPT} pool-test ")) {
            assert!(log.contains("records 1"), "{log}");
            let container = container_of(&log);
            assert!(
                !docker(&["container", "inspect", &container])
                    .status
                    .success(),
                "the pool test left its container {container}"
            );
            taken.push(container);
        }
    }
    assert!(taken.len() >= 2, "{steps:?}");
    taken.sort();
    taken.dedup();
    assert!(
        taken.len() >= 2,
        "two tests got the same container: {taken:?}"
    );
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.dind-init.pool={pool}"),
    ]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "pool-drain left members of {pool}"
    );
}
