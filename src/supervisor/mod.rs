//! The supervisor: the one owner of mutable state in PID 1.
//!
//! It runs the lifecycle as a sequence of stages (start round, wait,
//! quiesce, resume, shutdown), one file each, and while any stage awaits a
//! script or a timer it keeps reading the one event channel that signals,
//! control requests and the main command's exit arrive on
//! ([`Supervisor::await_handling_events`]). Events only record intents; what
//! they mean is decided by the pure functions of [`intent`], and the
//! lifecycle loop acts on them between stages, except the few that must
//! interrupt a stage at once (a shutdown during a start, a second SIGTERM).
//! Nothing here returns early on an error: every failure is logged, shown in
//! status, and the loop carries on.
//!
//! - [`intent`]: the decisions, pure and table-tested.
//! - `events`: what a signal, a request or a main command's exit records.
//! - `start`: a start round (boot or resume) and discovery.
//! - `main_command`: spawning the main command and noting its exit.
//! - `stop`: a stop round, the quiesce built on it, and the shutdown.
//! - [`ending`]: the one record of how this boot is ending, which the exit
//!   code, the state file's previous ending and `status` are read from.
//! - `run_script`: one `SCRIPT start|stop` to its end, with its timeout.
//! - `teardown`: waiting for processes to go, SIGTERM/SIGKILL, the flush.
//! - [`daemons`]: whose daemon a re-parented process is, and what its exit
//!   means under `--on-daemon-exit`; pure and table-tested.
//! - `daemon_watch`: watching the daemons, and the degrade, restart and shutdown policies.
//! - `timeline`: the phases of this boot and how long each took.

mod daemon_watch;
pub mod daemons;
pub mod ending;
mod events;
pub mod intent;
mod main_command;
mod run_script;
mod start;
mod stop;
mod teardown;
mod timeline;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

use crate::config::Config;
use crate::control::Peers;
use crate::discovery::Script;
use crate::event::{Event, Refusal, Reply};
use crate::phase::Phase;
use crate::procs::ProcessInfo;
use crate::reaper::Reaper;
use crate::state::{self, BootInfo, Durability, PersistentState};
use crate::status::{DaemonInfo, MainStatus, Outcome, ScriptState, ScriptStatus, Status};
use crate::tail::SharedTail;
use daemons::Keys;
use ending::Ending;
use intent::{Intents, Step};
use timeline::Timeline;

pub use intent::{EXIT_DAEMON_EXITED, EXIT_START_FAILED, EXIT_STOP_FAILED};

/// Intents and the clients waiting on them.
#[derive(Debug, Default)]
struct Pending {
    /// What has been asked for and not yet done.
    intents: Intents,
    /// Clients answered when the quiesce is done (or refused).
    quiesce_waiters: Waiters,
    /// Clients answered when the resumed starts are done (or refused).
    resume_waiters: Waiters,
    /// Scripts (round index) to stop and start again, with the back-off before each.
    restarts: VecDeque<(usize, Duration)>,
}

/// Clients waiting for the end of an operation. A client that gave up (its
/// request timed out, it hung up) is dropped at the next one's arrival, so
/// a long quiesce costs no more than the clients still waiting for it.
#[derive(Debug, Default)]
struct Waiters(Vec<Reply>);

impl Waiters {
    /// Adds `waiter` (if any), first dropping the ones nobody listens to.
    fn extend(&mut self, waiter: Option<Reply>) {
        self.0.retain(|waiting| !waiting.is_closed());
        self.0.extend(waiter);
    }
}

/// A script of the current round and what happened to it.
#[derive(Debug)]
struct Tracked {
    /// Where it is and what it is called.
    script: Script,
    /// Its state and results, as published.
    status: ScriptStatus,
    /// The last lines of its output, written by its output forwarders.
    tail: SharedTail,
    /// What ties a re-parented process to it (see [`daemons::attribute`]).
    keys: Keys,
    /// When `--on-daemon-exit=restart` restarted it, within the rate-limit window.
    restart_times: Vec<Instant>,
    /// The process group of its latest start run (the start's pid): what
    /// that start itself put in the background, as opposed to what a daemon
    /// detached with `setsid` (an inner engine's containerd shims).
    start_group: Option<i32>,
}

impl Tracked {
    fn new(script: Script, tail: SharedTail) -> Self {
        let status = ScriptStatus::pending(&script.name);
        Tracked {
            script,
            status,
            tail,
            keys: Keys::default(),
            restart_times: Vec::new(),
            start_group: None,
        }
    }

    /// A script gets its `stop` when its start succeeded, or when a shutdown
    /// interrupted its start (it may have left half of its work running).
    fn needs_stop(&self) -> bool {
        match self.status.state {
            ScriptState::Started | ScriptState::Degraded => true,
            ScriptState::StartFailed => self
                .status
                .start
                .as_ref()
                .is_some_and(|r| r.outcome == Outcome::Interrupted),
            _ => false,
        }
    }
}

pub struct Supervisor {
    /// The settings this init runs with.
    config: Config,
    /// Spawns the children we wait for and hands us their exit.
    reaper: Arc<Reaper>,
    /// Signals, control requests and the main command's exit, in arrival order.
    events: UnboundedReceiver<Event>,
    /// Kept so the main command's exit watcher can post into the same channel.
    event_sender: UnboundedSender<Event>,
    /// The status snapshot the control server answers from.
    published: watch::Sender<Status>,
    /// The state file's contents, saved after every change that must survive.
    state: PersistentState,
    /// This boot's number and whether it restores a quiesced snapshot.
    boot: BootInfo,
    /// Where the lifecycle is.
    phase: Phase,
    /// The scripts of the current round, in start order.
    scripts: Vec<Tracked>,
    /// The main command, when one was given.
    main: Option<MainStatus>,
    /// What events asked for and who waits for it.
    pending: Pending,
    /// Processes left after the last quiesce's stops.
    strays: Vec<ProcessInfo>,
    /// Our pid: the root of the process tree we are responsible for.
    own_pid: i32,
    /// Numbers the state file's saves so that none overwrites a later one.
    saves: SaveOrder,
    /// Our process group and session, which tie no child to any script.
    own_ids: (i32, i32),
    /// Re-parented processes watched that no script's start left.
    unattributed: Vec<DaemonInfo>,
    /// This boot's phases and how long each took.
    timeline: Timeline,
    /// How this boot is ending so far: the exit code, the state file's
    /// previous ending and `status` are read from it, nothing else.
    ending: Ending,
    /// Who is connected to the control socket now (the server writes it):
    /// those clients and their parents are no strays.
    control_peers: Peers,
}

impl Supervisor {
    /// Records this boot in the state file and prepares the first status.
    pub fn new(
        config: Config,
        reaper: Arc<Reaper>,
        events: UnboundedReceiver<Event>,
        event_sender: UnboundedSender<Event>,
    ) -> (Self, watch::Receiver<Status>) {
        let (mut state, warning) = if config.owns_paths {
            state::load(&config.state_path)
        } else {
            (PersistentState::default(), None)
        };
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        let boot = state.begin_boot(&state::now_rfc3339());
        let main = main_command::initial_status(&config.main_command);
        let own_pid = nix::unistd::getpid().as_raw();
        let (published, receiver) = watch::channel(Status::placeholder(own_pid, boot));
        let supervisor = Supervisor {
            config,
            reaper,
            events,
            event_sender,
            published,
            state,
            boot,
            phase: Phase::Starting,
            scripts: Vec::new(),
            main,
            pending: Pending::default(),
            strays: Vec::new(),
            own_pid,
            saves: SaveOrder::default(),
            own_ids: crate::procs::own_group_and_session(),
            unattributed: Vec::new(),
            timeline: Timeline::new(Phase::Starting, Instant::now(), state::now_rfc3339()),
            ending: Ending::default(),
            control_peers: Peers::default(),
        };
        supervisor.publish();
        (supervisor, receiver)
    }

    /// The registry the control server keeps of who is connected.
    pub fn control_peers(&self) -> Peers {
        self.control_peers.clone()
    }

    /// Runs the whole lifecycle and returns PID 1's exit code.
    pub async fn run(mut self) -> i32 {
        self.start_round("boot").await;
        loop {
            match intent::next_step(self.phase, &self.pending.intents) {
                Step::Shutdown => return self.shutdown().await,
                Step::Quiesce => self.quiesce().await,
                Step::Resume => {
                    self.pending.intents.resume = false;
                    // The starts change the disk: it no longer holds the
                    // quiesced snapshot, and what the stops left is superseded.
                    self.ending.resumed();
                    self.record_ending();
                    let _ = self.save_state(Durability::Atomic).await;
                    self.start_round("resume").await;
                }
                Step::Restart => self.restart_next().await,
                Step::Wait => {
                    if let Some(event) = self.events.recv().await {
                        self.handle(event);
                    }
                }
            }
        }
    }

    /// Awaits `work` while handling every event that arrives meanwhile.
    /// After each event, `stop_waiting` may end the wait early (`None`).
    async fn await_handling_events<T>(
        &mut self,
        work: impl Future<Output = T>,
        mut stop_waiting: impl FnMut(&mut Self) -> bool,
    ) -> Option<T> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                done = &mut work => return Some(done),
                Some(event) = self.events.recv() => {
                    self.handle(event);
                    if stop_waiting(self) {
                        return None;
                    }
                }
            }
        }
    }

    // ----- bookkeeping --------------------------------------------------

    fn set_phase(&mut self, next: Phase) {
        if self.phase != next && !self.phase.can_become(next) {
            tracing::warn!("unexpected phase change {} -> {next}", self.phase);
        }
        self.phase = next;
        self.timeline
            .enter(next, Instant::now(), state::now_rfc3339());
        self.publish();
    }

    /// How many scripts of the round still need their `stop`.
    fn stops_needed(&self) -> usize {
        self.scripts.iter().filter(|t| t.needs_stop()).count()
    }

    fn snapshot(&self) -> Status {
        let scripts: Vec<_> = self
            .scripts
            .iter()
            .map(|t| ScriptStatus {
                tail: t.tail.lines(),
                ..t.status.clone()
            })
            .collect();
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: self.own_pid,
            phase: self.phase,
            healthy: Status::compute_healthy(self.phase, &scripts, self.main.as_ref()),
            boot: self.boot,
            boots: self.state.boots.clone(),
            quiesces: self.state.quiesces.clone(),
            commit_safe: (self.phase == Phase::Quiesced)
                .then(|| self.ending.quiesce_commit_safe == Some(true)),
            ending: self.ending.for_next_boot(),
            scripts,
            main: self.main.clone(),
            strays: self.strays.clone(),
            running_since: self.timeline.running_since(),
            phases: self.timeline.spans().to_vec(),
            unattributed: self.unattributed.clone(),
        }
    }

    fn publish(&self) {
        self.published.send_replace(self.snapshot());
    }

    /// Copies how this boot is ending into the state file's record (saved by the caller).
    fn record_ending(&mut self) {
        self.state
            .record_ending(self.ending.for_next_boot(), self.ending.shut_down_cleanly());
    }

    /// Copies each script's last result into the state file's record.
    fn record_results(&mut self) {
        self.state.last_results = self
            .scripts
            .iter()
            .map(|t| state::ScriptRecord {
                name: t.script.name.clone(),
                state: t.status.state.as_str().to_string(),
                exit_code: t
                    .status
                    .stop
                    .as_ref()
                    .or(t.status.start.as_ref())
                    .and_then(|r| r.exit_code),
            })
            .collect();
    }

    /// Whether this boot is recorded in the state file. A boot without
    /// init.d scripts (dind-init as a plain wrapper, `-- CMD`) is not,
    /// unless it quiesces or resumes: no script reads the history, and a
    /// wrapper's start and exit then touch no file at all, as tini's do.
    fn records_this_boot(&self) -> bool {
        !self.scripts.is_empty() || self.saves.issued > 0
    }

    /// Writes the state (the boot record, the starts counted) on a blocking
    /// thread without waiting for it: nothing on the way to the first
    /// script or the main command waits for the disk. A later save written
    /// first makes it moot (see [`SaveOrder`]), so saves never pass each
    /// other.
    fn save_state_in_background(&mut self) {
        if !self.config.owns_paths {
            return;
        }
        let path = self.config.state_path.clone();
        let state = self.state.clone();
        let ticket = self.saves.next();
        tokio::task::spawn_blocking(move || {
            if let Some(Err(error)) =
                ticket.write(|| state::save(&path, &state, Durability::Atomic))
            {
                warn_not_saved(&error);
            }
        });
    }

    /// Saves the state file (`Fsync`: file and directory fsynced) on a
    /// blocking thread while events are handled; on failure, logs it and
    /// returns why.
    async fn save_state(&mut self, durability: Durability) -> Result<(), String> {
        if !self.config.owns_paths {
            return Err("this dind-init keeps no state file: another one owns its paths".into());
        }
        let path = self.config.state_path.clone();
        let state = self.state.clone();
        let ticket = self.saves.next();
        let saving = tokio::task::spawn_blocking(move || {
            ticket.write(|| state::save(&path, &state, durability))
        });
        let saved = match self.await_handling_events(saving, |_| false).await {
            // Skipped: a later save is already written (none is issued while this one runs).
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(saved))) => saved,
            _ => Err(anyhow::anyhow!("the state file's writer thread failed")),
        };
        saved.map_err(|error| {
            warn_not_saved(&error);
            format!("{error:#}")
        })
    }
}

/// Orders the state file's saves, which run on blocking threads and may
/// finish in any order: each is numbered when it is asked for, and one
/// that finds a later one already written is skipped, so the boot record
/// written in the background never overwrites what a later save wrote.
#[derive(Debug, Default)]
struct SaveOrder {
    /// The number the last save asked for got.
    issued: u64,
    /// The number of the last save written, held while one is written.
    written: Arc<Mutex<u64>>,
}

/// One save's place in the [`SaveOrder`].
struct SaveTicket {
    number: u64,
    written: Arc<Mutex<u64>>,
}

impl SaveOrder {
    fn next(&mut self) -> SaveTicket {
        self.issued = self.issued.saturating_add(1);
        SaveTicket {
            number: self.issued,
            written: self.written.clone(),
        }
    }
}

impl SaveTicket {
    /// Runs `save` unless a later save was written already (`None` then).
    fn write<T>(self, save: impl FnOnce() -> T) -> Option<T> {
        // A poisoned lock only means a writer thread panicked; the number is intact.
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *written > self.number {
            return None;
        }
        let result = save();
        *written = self.number;
        Some(result)
    }
}

fn warn_not_saved(error: &anyhow::Error) {
    tracing::warn!(
        "{error:#}; the boot and quiesce history will not survive a restart (set DIND_INIT_STATE to a writable path)"
    );
}

/// Answers one waiting client, if there is one; a client that gave up is no error.
fn answer(waiter: Option<Reply>, result: Result<Status, Refusal>) {
    if let Some(waiter) = waiter {
        let _ = waiter.send(result);
    }
}

/// Answers every waiting client the same.
fn answer_all(waiters: &mut Waiters, result: Result<Status, Refusal>) {
    for waiter in waiters.0.drain(..) {
        let _ = waiter.send(result.clone());
    }
}
