//! The Kubernetes pod of `examples/kubernetes/prepared-env.yaml`, as far as
//! this machine allows: no cluster here, so podman runs the same file
//! (`podman kube play`; only the image reference and the pod's name are
//! replaced) with a prepared image (the DinD stage 20). The restored L2
//! reaches `running`, the readiness probe's command (read from the file)
//! succeeds in the container (podman 4.3 runs no readiness probe), the L3
//! answers, and `podman pod stop` with the file's termination grace (which
//! podman 4.3 does not take from the file) runs the stops: dind-init exits 0.
//!
//! Rootful podman here asks runc for limits above what this machine's
//! engines may raise (tests/podman.rs): a `containers.conf` of the test's
//! own (`CONTAINERS_CONF`) gives lower default ulimits, as the other podman
//! tests' `--ulimit` flags do.

use std::fs;
use std::process::Command;

use crate::docker::{Container, engine, repo_root, require_engine, unique};
use crate::gitlab_services::prepared_stage_20;
use crate::podman::copy_tag_to;

const POD_FILE: &str = "examples/kubernetes/prepared-env.yaml";

/// `podman ARGS` with the test's containers.conf; its output whatever the exit code.
fn podman(conf: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("podman")
        .args(args)
        .env("CONTAINERS_CONF", conf)
        .output()
        .unwrap()
}

/// The pod `podman kube play` made, removed (with its containers and their
/// anonymous volumes) on drop.
struct Pod {
    name: String,
    conf: std::path::PathBuf,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = podman(&self.conf, &["pod", "rm", "-f", &self.name]);
        let _ = fs::remove_file(&self.conf);
    }
}

/// The readiness probe's `command: [...]` of the pod file.
fn readiness_command(pod_file: &str) -> Vec<String> {
    let probe = pod_file
        .split("readinessProbe:")
        .nth(1)
        .unwrap_or_else(|| panic!("no readinessProbe in {POD_FILE}"));
    let list = probe
        .split("command: [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no exec command in {POD_FILE}'s readinessProbe"));
    list.split(',')
        .map(|word| word.trim().trim_matches('"').to_string())
        .collect()
}

/// The value of the pod file's `KEY: value` line.
fn field<'a>(pod_file: &'a str, key: &str) -> &'a str {
    pod_file
        .lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {POD_FILE}"))
}

#[test]
#[ignore = "needs podman, a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn kubernetes_pod_file_runs_a_prepared_image_under_podman_kube_play() {
    require_engine();
    let (repo, _images) = prepared_stage_20("dind-init-e2e-kube", &[]);
    let image = copy_tag_to("podman", &format!("{repo}/20-stack:latest"));

    let original = fs::read_to_string(repo_root().join(POD_FILE)).unwrap();
    let pod_name = unique("prepared-env");
    let pod_file = original
        .replace(
            &format!("image: {}", field(&original, "image")),
            &format!("image: {}", image.tag),
        )
        .replace(
            &format!("name: {}", field(&original, "name")),
            &format!("name: {pod_name}"),
        );
    let dir = std::env::temp_dir();
    let yaml = dir.join(format!("{pod_name}.yaml"));
    fs::write(&yaml, &pod_file).unwrap();
    let pod = Pod {
        name: pod_name.clone(),
        conf: dir.join(format!("{pod_name}.conf")),
    };
    fs::write(
        &pod.conf,
        "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n",
    )
    .unwrap();
    let played = podman(&pod.conf, &["kube", "play", yaml.to_str().unwrap()]);
    fs::remove_file(&yaml).unwrap();
    assert!(
        played.status.success(),
        "podman kube play failed: {}",
        String::from_utf8_lossy(&played.stderr)
    );
    // podman names a pod's container POD-CONTAINER.
    let l2 = Container {
        id: format!("{pod_name}-{}", field(&original, "- name")),
        engine: "podman",
    };

    let status = l2.wait_phase("running");
    assert_eq!(status["boot"]["restored"], true, "{}", l2.logs());
    let probe = readiness_command(&pod_file);
    let probe: Vec<&str> = probe.iter().map(String::as_str).collect();
    l2.exec_ok(&probe);
    assert_eq!(
        l2.exec_ok(&[
            "docker",
            "exec",
            "stack_web_1",
            "wget",
            "-qO-",
            "http://127.0.0.1:8080/record-7.txt"
        ]),
        "record 7"
    );

    // podman 4.3 keeps its own 10 s stop timeout: the kubelet's grace, the
    // file's, is given to `podman pod stop` as the kubelet would give it.
    let grace = field(&original, "terminationGracePeriodSeconds");
    let stopped = engine("podman", &["pod", "stop", "-t", grace, &pod_name]);
    assert!(stopped.status.success(), "{}", l2.logs());
    assert_eq!(l2.inspect("{{.State.ExitCode}}"), "0", "{}", l2.logs());
    assert!(
        l2.logs().contains("[40-dockerd.sh] dockerd stopped"),
        "{}",
        l2.logs()
    );
    drop(l2);
    drop(pod);
}
