//! GitLab's `services:` route, run as the runner runs it: the job file
//! `examples/ci/gitlab/services.gitlab-ci.yml` is read, its prepared image
//! (here the DinD stage 20) started as the job's service on a network of
//! the test's own with `--network-alias docker`, the job's variables and a
//! `/certs/client` volume, then the job's script lines run in a job container
//! on that network with the same variables and volume: the job's `docker`
//! reaches the restored inner engine at tcp://docker:2376 over TLS and reads
//! an L3's data. The service is then quiesced, committed and restored as the
//! next job's service: the same CA, made once, comes back with the commit.
//!
//! docker:dind's other conventions ride along: `mount --make-rshared /` and
//! the iptables choice (nf_tables by default, iptables-legacy when
//! `DOCKER_IPTABLES_LEGACY` asks for it).

use std::fs;

use crate::dind::{Images, run_flags};
use crate::docker::{
    Container, docker, docker_ok, make_stage_image, repo_root, require_engine, unique,
};

const JOB_FILE: &str = "examples/ci/gitlab/services.gitlab-ci.yml";

/// What the runner takes from the job file: the service's alias, the job's
/// variables and its script lines.
struct Job {
    alias: String,
    variables: Vec<(String, String)>,
    script: Vec<String>,
}

/// Reads the job `test-with-service` of [`JOB_FILE`]: its `alias:`, the
/// `KEY: value` lines of its `variables:` and the `- ` lines of its `script:`
/// (the file keeps to these plain forms).
fn read_job() -> Job {
    let text = fs::read_to_string(repo_root().join(JOB_FILE)).unwrap();
    let job = text
        .split("\ntest-with-service:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no job test-with-service in {JOB_FILE}"));
    let mut section = "";
    let mut parsed = Job {
        alias: String::new(),
        variables: Vec::new(),
        script: Vec::new(),
    };
    for line in job.lines() {
        let trimmed = line.trim();
        if line.starts_with("  ") && !line.starts_with("    ") {
            section = trimmed.trim_end_matches(':');
        }
        if let Some(alias) = trimmed.strip_prefix("alias: ") {
            parsed.alias = alias.to_string();
        } else if section == "variables" && line.starts_with("    ") {
            let (key, value) = trimmed.split_once(": ").unwrap();
            parsed
                .variables
                .push((key.to_string(), value.trim_matches('"').to_string()));
        } else if let Some(command) = trimmed.strip_prefix("- ")
            && section == "script"
        {
            parsed.script.push(command.to_string());
        }
    }
    assert_eq!(parsed.alias, "docker", "{JOB_FILE}");
    assert!(!parsed.variables.is_empty() && !parsed.script.is_empty());
    parsed
}

/// A user-defined network, as the runner makes one per job; removed on drop.
struct Network(String);

impl Drop for Network {
    fn drop(&mut self) {
        let _ = docker(&["network", "rm", &self.0]);
    }
}

/// A named volume (the runner's `/certs/client`), removed on drop.
struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = docker(&["volume", "rm", "-f", &self.0]);
    }
}

/// `-e KEY=value` for each of the job's variables, plus `extra`.
fn env_flags(job: &Job, extra: &[&str]) -> Vec<String> {
    job.variables
        .iter()
        .flat_map(|(key, value)| ["-e".to_string(), format!("{key}={value}")])
        .chain(
            extra
                .iter()
                .flat_map(|pair| ["-e".to_string(), pair.to_string()]),
        )
        .collect()
}

/// The service: `image` on `network` with the job's alias and `env` flags
/// (the job's variables: [`env_flags`]).
fn start_service(
    job: &Job,
    image: &str,
    network: &Network,
    certs: &Volume,
    env: Vec<String>,
) -> Container {
    let mut flags = run_flags();
    flags.extend([
        "--network".to_string(),
        network.0.clone(),
        "--network-alias".to_string(),
        job.alias.clone(),
        "-v".to_string(),
        format!("{}:/certs/client", certs.0),
    ]);
    flags.extend(env);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    Container::run(image, &flag_refs)
}

/// The job: its script lines, one shell, in a container of an image with a
/// `docker` client on the same network, with the job's variables and the
/// shared certificates (read-only: the job only reads them). Returns stdout.
fn run_job(job: &Job, network: &Network, certs: &Volume, service: &Container) -> String {
    let env = env_flags(job, &[]);
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    run_in_job_container(network, certs, &env, &job.script.join("\n"), service)
}

/// `script` (`set -e` first) in a job container on `network` with `env`
/// flags and `certs` at /certs/client; its stdout.
fn run_in_job_container(
    network: &Network,
    certs: &Volume,
    env: &[&str],
    script: &str,
    service: &Container,
) -> String {
    let volume = format!("{}:/certs/client:ro", certs.0);
    let script = format!("set -e\n{script}");
    let mut args = vec!["run", "--rm", "--network", &network.0, "-v", &volume];
    args.extend_from_slice(env);
    args.extend([
        "--entrypoint",
        "sh",
        "dind-init/dind-l2:storage",
        "-c",
        &script,
    ]);
    let output = docker(&args);
    assert!(
        output.status.success(),
        "the job failed: {}{}\nservice log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        service.logs()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The CA certificate the job was given.
fn shared_ca(certs: &Volume) -> String {
    docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/certs/client:ro", certs.0),
        "--entrypoint",
        "cat",
        "dind-init/dind-l2:storage",
        "/certs/client/ca.pem",
    ])
}

/// The DinD stage 20 (`docker/dind/stages/20-stack`) built under a new
/// repository `NAME-…`, the prepared image of these tests; the repository
/// and a guard that removes its images and `more` tags of it.
pub(crate) fn prepared_stage_20(name: &str, more: &[&str]) -> (String, Images) {
    let repo = unique(name);
    let tags = [
        "10-engine:tmp",
        "10-engine:latest",
        "20-stack:tmp",
        "20-stack:latest",
    ];
    let images = Images(
        tags.iter()
            .chain(more)
            .map(|image| format!("{repo}/{image}"))
            .collect(),
    );
    make_stage_image(&repo_root().join("docker/dind/stages/20-stack"), &repo, &[]);
    (repo, images)
}

#[test]
#[ignore = "needs a Docker engine, debootstrap and Debian's archive; run by `make test`"]
fn gitlab_services_job_reaches_the_prepared_image_over_tls_through_a_commit() {
    require_engine();
    let job = read_job();
    let (repo, _images) = prepared_stage_20("dind-init-e2e-gitlab", &["service-committed:latest"]);
    let committed = format!("{repo}/service-committed:latest");
    let network = Network(unique("dind-init-e2e-gitlab-net"));
    docker_ok(&["network", "create", &network.0]);

    // The first job: the service's first boot with TLS makes the certificates.
    let certs = Volume(unique("dind-init-e2e-gitlab-certs"));
    let service = start_service(
        &job,
        &format!("{repo}/20-stack:latest"),
        &network,
        &certs,
        env_flags(&job, &[]),
    );
    let output = run_job(&job, &network, &certs, &service);
    assert_eq!(output.trim(), "record 7", "{}", service.logs());
    let logs = service.logs();
    assert!(
        logs.contains("[40-dockerd.sh] TLS certificates made in /var/lib/dind-tls"),
        "{logs}"
    );
    assert!(
        logs.contains("[40-dockerd.sh] iptables v") && logs.contains("(nf_tables)"),
        "{logs}"
    );
    assert_eq!(service.wait_phase("running")["healthy"], true, "{logs}");
    // `mount --make-rshared /`: the root mount is in a peer group.
    let root_mount = service.exec_ok(&["sh", "-c", "awk '$5 == \"/\"' /proc/1/mountinfo"]);
    assert!(root_mount.contains(" shared:"), "{root_mount}");
    let first_ca = shared_ca(&certs);

    service.exec_ok(&["dind-init", "quiesce", "--timeout", "300"]);
    docker_ok(&["commit", &service.id, &committed]);
    drop(service);

    // The next job: a new certificates volume, the committed service, which
    // serves the CA it had (no new certificates), with iptables-legacy.
    let certs = Volume(unique("dind-init-e2e-gitlab-certs"));
    let service = start_service(
        &job,
        &committed,
        &network,
        &certs,
        env_flags(&job, &["DOCKER_IPTABLES_LEGACY=1"]),
    );
    let output = run_job(&job, &network, &certs, &service);
    assert_eq!(output.trim(), "record 7", "{}", service.logs());
    assert_eq!(shared_ca(&certs), first_ca);
    let logs = service.logs();
    assert!(!logs.contains("TLS certificates made"), "{logs}");
    assert!(logs.contains("(legacy)"), "{logs}");
    // dockerd's own chains are in the legacy tables.
    service.exec_ok(&["iptables-legacy", "-t", "nat", "-n", "-L", "DOCKER"]);
    drop(service);

    // An empty DOCKER_TLS_CERTDIR: plain 2375, as docker:dind. The service
    // keeps variables that name TLS on 2376, which it does not serve then
    // (as the commit kept the TLS job's in the image's environment): every
    // script that talks to the inner engine must still reach its own socket
    // (the pin, /run/dind-dockerd.env), or stage 20's starts fail.
    let service_env = [
        "-e",
        "DOCKER_HOST=tcp://docker:2376",
        "-e",
        "DOCKER_TLS_CERTDIR=",
        "-e",
        "DOCKER_TLS_VERIFY=1",
        "-e",
        "DOCKER_CERT_PATH=/certs/client",
    ];
    let plain_env = service_env.iter().map(|flag| flag.to_string()).collect();
    let service = start_service(&job, &committed, &network, &certs, plain_env);
    let output = run_in_job_container(
        &network,
        &certs,
        &["-e", "DOCKER_HOST=tcp://docker:2375"],
        &job.script.join("\n"),
        &service,
    );
    assert_eq!(output.trim(), "record 7", "{}", service.logs());
}
