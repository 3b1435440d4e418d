//! Integration tests: dind-init run for real as PID 1 of a fresh PID
//! namespace (`unshare --fork --pid --mount-proc`), driven by signals and by
//! its own client over the control socket.

mod harness;

/// The control socket: status JSON, garbage, stale and busy sockets.
mod control;
/// Daemons a start leaves: watched, attributed, degrade/restart/shutdown; output tails.
mod daemons;
/// Docker-in-docker: an inner engine and its containers through commits.
mod dind;
/// Which files of init.d run, in which order, and what a script is given.
mod discovery;
/// The real Docker engine: images, commit and restore, staged Makefiles.
mod docker;
/// The scripts of init.d-examples/, run as a user would run them.
mod examples;
/// Failing and hanging scripts, the start-failure policies.
mod failures;
/// Quiesce, resume and shutdown: stops in reverse, phases, signals.
mod lifecycle;
/// The main command after `--`: exit codes and signal forwarding.
mod main_command;
/// Orphaned zombies are reaped and never steal a waited-for status.
mod reaping;
/// The state file across boots: boot count and restored boots.
mod restore;
/// A drop-in for tini and dumb-init: signals, silence, terminals.
mod wrapper;
