//! dind-init: a PID-1 supervisor for containers whose state matters.
//!
//! It runs a container's init.d scripts in order, reaps zombies, forwards
//! signals to an optional main command, and on SIGUSR1 (or `dind-init
//! quiesce`) stops everything in reverse so that the container can be
//! `docker commit`ted and restored later.
//!
//! Map of the crate:
//! - [`args`]: the command-line primitives every role shares (usage error, flags, seconds); a leaf.
//! - [`cli`]: command line and environment variables of both roles (init and client).
//! - [`config`]: the init's settings as typed values, which is all the core reads.
//! - [`discovery`]: which files in the init.d directory are scripts, and their order.
//! - [`phase`]: the supervisor's phases and the transitions allowed between them.
//! - [`event`]: what reaches the supervisor (signals, control requests, the main
//!   command's exit) and its typed answers; shared by both sides, owned by neither.
//! - [`supervisor`]: the one owner of mutable state; one file per lifecycle stage,
//!   its decisions pure and table-tested in [`supervisor::intent`] and, for the
//!   daemons a start leaves running, [`supervisor::daemons`].
//! - [`script`]: spawning one `SCRIPT start|stop` with its environment, log prefix and timeout.
//! - [`reaper`]: the single `waitpid(-1)` caller, handing exit statuses to whoever waits for them.
//! - [`signals`]: the signalfd reader: forwards to the main command, wakes the reaper, posts events.
//! - [`procs`]: reading `/proc` to find the processes left behind (strays) and our children.
//! - [`state`]: the persistent state file (boot count, quiesce history), written atomically.
//! - [`status`]: the status snapshot published by the supervisor and its human rendering.
//! - [`control`]: the unix-socket protocol, its server (inside PID 1) and its client call.
//! - [`client`]: the `status`, `quiesce`, `resume` and `logs` subcommands: output and exit codes.
//! - [`storage`]: `dind-init storage start|stop|status`: the DinD inner engine's data, crash-consistent and owned.
//! - [`snapshot`]: `dind-init snapshot` on the host: quiesce through the engine, commit with labels.
//! - [`pool`]: `dind-init pool` on the host: ready containers of a prepared image, taken by rename.
//! - [`init`]: the init role wired together (runtime, socket, signals, supervisor).
//! - [`logging`]: the one-line log format of dind-init's own messages.
//! - [`output`]: the one writer of PID 1's stdout and stderr, on a thread of its own.
//! - [`tail`]: the last lines of each script's output, bounded and escaped, for `status` and `logs`.
//! - [`sys`]: the few system calls that need `unsafe`.
//! - [`text`]: untrusted text (file names, command lines, output) escaped and cut for printing.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod args;
pub mod cli;
pub mod client;
pub mod config;
pub mod control;
pub mod discovery;
pub mod event;
pub mod init;
pub mod logging;
pub mod output;
pub mod phase;
pub mod pool;
pub mod procs;
pub mod reaper;
pub mod script;
pub mod signals;
pub mod snapshot;
pub mod state;
pub mod status;
pub mod storage;
pub mod supervisor;
pub mod sys;
pub mod tail;
pub mod text;

/// What `dind-init --version` prints after the name: version, git commit and target triple.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DIND_INIT_GIT_COMMIT"),
    ", ",
    env!("DIND_INIT_TARGET"),
    ")"
);
