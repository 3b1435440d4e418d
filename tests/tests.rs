//! Integration tests: dind-init run for real as PID 1 of a fresh PID
//! namespace (`unshare --fork --pid --mount-proc`), driven by signals and by
//! its own client over the control socket.

mod harness;

/// What clients and the state file cannot make grow: waiters, strays, loaded records.
mod bounds;
/// A cgroup v2 Docker host booted as a VM: the DinD nesting step on it.
mod cgroup2_vm;
/// The CI recipe of examples/ci/: the YAML files' steps against a local registry.
mod ci_recipe;
/// The control socket: status JSON, garbage, stale and busy sockets.
mod control;
/// Daemons a start leaves: watched, attributed, degrade/restart/shutdown; output tails.
mod daemons;
/// Docker-in-docker: an inner engine and its containers through commits.
mod dind;
/// Docker-in-docker: the L3 side of a clean stop (compose services' ends, shims of a killed dockerd).
mod dind_l3_stop;
/// The inner engine's storage: an L2 like docker:dind, failed and killed stops, every mode.
mod dind_storage;
/// Issue 25's storage paths: a loop-backed L1, two L2s on one volume, a missing data root, content-correct saves.
mod dind_storage_safety;
/// Which files of init.d run, in which order, and what a script is given.
mod discovery;
/// The real Docker engine: images, commit and restore, staged Makefiles.
mod docker;
/// The scripts of init.d-examples/, run as a user would run them.
mod examples;
/// Failing and hanging scripts, the start-failure policies.
mod failures;
/// A newcomer's first commands: help after any subcommand, one error line per mistake.
mod first_contact;
/// GitLab's `services:` route: the prepared image as the job's `docker` service, over TLS.
mod gitlab_services;
/// Issue 18: raw wait statuses, the C library's signals, joined quiesces, shutdown exit and time.
mod hardening;
/// A FUSE mount whose reads never come back (for hung_mount).
mod hung_fuse;
/// A process stuck on a hung mount: PID 1 still forwards, reaps, answers.
mod hung_mount;
/// What children get of the container's signal state and fds: the main command all, scripts none.
mod inherited;
/// The Kubernetes pod example under `podman kube play`: a prepared image, probe, grace, L3.
mod kubernetes;
/// Quiesce, resume and shutdown: stops in reverse, phases, signals.
mod lifecycle;
/// The main command after `--`: exit codes and signal forwarding.
mod main_command;
/// Seed 002's multi-arch manifest, pushed to a real registry and pulled by platform.
mod manifest;
/// A second engine with overlay2 on ext4 (the common L1): the DinD PostgreSQL cycle on it.
mod overlay2;
/// Podman as the engine: commit and restore rootful and rootless, `snapshot --engine podman`.
mod podman;
/// `dind-init pool` against the real engines: claims, replacements, waits, release, drain.
mod pool;
/// The README's quick start, run as written, printing what the README shows.
mod quickstart;
/// Orphaned zombies are reaped and never steal a waited-for status.
mod reaping;
/// A real registry: a prepared image pushed, pulled, run; what the next snapshot costs.
mod registry;
/// The state file across boots: boot count and restored boots.
mod restore;
/// `dind-init snapshot` on the host against the real engine: labels, refusal, exit codes.
mod snapshot;
/// A drop-in for tini and dumb-init: signals, silence, terminals.
mod wrapper;
