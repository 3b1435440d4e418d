//! The use case the project exists for, end to end against the real engine:
//! an L2 docker-in-docker container with dind-init as PID 1 runs an inner
//! dockerd and L3 containers; deploy state, quiesce, commit, run the
//! committed image, and the L3 containers are back with exactly their state.
//!
//! Where the engine refuses `--privileged` (as on the project's machines,
//! whose engine lacks CAP_SYS_RESOURCE), docker/dind/run-flags.sh gives the
//! closest set of flags it grants; the inner engine is real either way.

use std::process::Command;

use crate::docker::{
    Container, docker, docker_ok, make_stage_image, repo_root, require_engine, unique,
};

fn run_flags() -> Vec<String> {
    let output = Command::new(repo_root().join("docker/dind/run-flags.sh"))
        .arg("--lines")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "run-flags.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn inner(l2: &Container, command: &str) -> String {
    l2.exec_ok(&["sh", "-c", command])
}

/// Checks the inner engine and the L3 state of a restored L2 container.
fn assert_restored(l2: &Container, boot: u64, counter_boots: &str, records: usize) {
    let status = l2.wait_phase("running");
    assert_eq!(status["boot"]["boot"], boot, "{}", l2.logs());
    assert_eq!(status["boot"]["restored"], true);
    assert_eq!(status["healthy"], true);
    assert_eq!(inner(l2, "docker info --format '{{.Driver}}'"), "overlay2");
    assert_eq!(
        inner(
            l2,
            "docker inspect -f '{{.State.Running}} {{.HostConfig.RestartPolicy.Name}}' counter"
        ),
        "true always"
    );
    assert_eq!(
        inner(l2, "docker exec counter cat /data/boots"),
        counter_boots
    );
    assert_eq!(
        inner(l2, "docker inspect -f '{{.State.Running}}' stack_web_1"),
        "true"
    );
    let listing = inner(
        l2,
        "docker exec stack_web_1 sh -c 'ls /www/record-*.txt | wc -l; cat /www/record-7.txt'",
    );
    assert_eq!(listing, format!("{records}\nrecord 7"));
    assert!(
        l2.logs()
            .contains("[50-image-bundle.sh] bundle already loaded: skipping"),
        "{}",
        l2.logs()
    );
}

#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn dind_l3_containers_come_back_with_their_state_after_commits_two_stages_deep() {
    require_engine();
    let repo = unique("dind-init-e2e-dind");
    let flags = run_flags();
    make_stage_image(&repo_root().join("docker/dind/stages/20-stack"), &repo, &[]);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();

    // Stage 10 committed at boot 1, stage 20 at boot 2; this is boot 3.
    let l2 = Container::run(&format!("{repo}/20-stack:latest"), &flag_refs);
    assert_restored(&l2, 3, "2", 50);

    // More state on top, and one more commit of the restored container.
    inner(
        &l2,
        "docker exec stack_web_1 sh -c 'for i in 51 52 53; do echo record $i > /www/record-$i.txt; done'",
    );
    let quiesce = l2.exec(&["dind-init", "quiesce", "--timeout", "120"]);
    assert!(
        quiesce.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&quiesce.stderr),
        l2.logs()
    );
    assert!(
        l2.logs()
            .contains("[30-docker-storage.sh] /var/lib/docker unmounted"),
        "{}",
        l2.logs()
    );
    let third = format!("{repo}/third-commit:latest");
    docker_ok(&["commit", &l2.id, &third]);
    drop(l2);

    let l2 = Container::run(&third, &flag_refs);
    assert_restored(&l2, 4, "3", 53);

    // docker stop with Docker's default 10 s: the stops finish inside it.
    docker_ok(&["stop", &l2.id]);
    assert_eq!(l2.inspect("{{.State.ExitCode}}"), "0", "{}", l2.logs());
    drop(l2);

    for image in [
        "10-engine:tmp",
        "10-engine:latest",
        "20-stack:tmp",
        "20-stack:latest",
        "third-commit:latest",
    ] {
        let _ = docker(&["rmi", "-f", &format!("{repo}/{image}")]);
    }
}
