//! The supervisor: the one owner of mutable state in PID 1.
//!
//! It runs the lifecycle as a sequence (start round, wait, quiesce, resume,
//! shutdown) and, while any step awaits a script or a timer, keeps reading
//! the one event channel that signals, control requests and the main
//! command's exit all arrive on. Events only record intents (`Pending`);
//! the lifecycle loop acts on them between steps, except the few that must
//! interrupt a step at once (a shutdown during a start, a second SIGTERM).
//! Nothing here returns early on an error: every failure is logged, shown in
//! status, and the loop carries on.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, watch};

use crate::cli::{StartFailurePolicy, limit};
use crate::control::{ControlCommand, ControlRequest};
use crate::discovery::{self, Script};
use crate::phase::Phase;
use crate::procs::{self, ProcessInfo};
use crate::reaper::{ChildExit, Reaper};
use crate::script::{self, Action, ScriptEnv};
use crate::state::{self, BootInfo, Durability, PersistentState, QuiesceRecord, ScriptRecord};
use crate::status::{MainState, MainStatus, Outcome, RunResult, ScriptState, ScriptStatus, Status};
use crate::sys::{send_signal, signal_name};

/// Exit code of PID 1 when a start script failed under `--on-start-failure=abort`.
pub const EXIT_START_FAILED: i32 = 3;
/// Exit code of PID 1 when a stop script failed during shutdown (no main command).
pub const EXIT_STOP_FAILED: i32 = 1;
/// How often the shutdown and quiesce steps look at `/proc` while waiting for processes to go.
const PROCESS_POLL: Duration = Duration::from_millis(20);
/// How long dind-init waits for SIGKILLed processes to disappear before exiting anyway.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Everything that can happen to the supervisor from outside.
#[derive(Debug)]
pub enum Event {
    /// A signal other than SIGCHLD (which the reaper handles itself).
    Signal(i32),
    /// A `quiesce` or `resume` from the control socket.
    Control(ControlRequest),
    /// The main command ended.
    MainExited(ChildExit),
}

/// The settings the supervisor runs with, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub init_dir: PathBuf,
    /// Given by flag or environment: a missing directory is then an error.
    pub init_dir_explicit: bool,
    pub state_path: PathBuf,
    pub socket: PathBuf,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    pub grace: Duration,
    pub settle: Duration,
    pub on_start_failure: StartFailurePolicy,
    /// The main command after `--`; empty for none.
    pub main_command: Vec<OsString>,
    /// The directory dind-init was started in, which the main command keeps.
    pub main_cwd: PathBuf,
}

/// Why the container is shutting down; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShutdownCause {
    Signal(i32),
    MainExited,
    StartFailed,
}

/// Intents recorded by events, acted on by the lifecycle loop.
#[derive(Debug, Default)]
struct Pending {
    quiesce: bool,
    resume: bool,
    shutdown: Option<ShutdownCause>,
    /// A second SIGTERM/SIGINT: abort the stops and kill everything now.
    force: bool,
    /// Pids of clients that asked for the quiesce; they and their ancestors are not strays.
    quiesce_requesters: Vec<i32>,
    quiesce_waiters: Vec<oneshot::Sender<Result<Status, String>>>,
    resume_waiters: Vec<oneshot::Sender<Result<Status, String>>>,
}

/// A script of the current round and what happened to it.
#[derive(Debug)]
struct Tracked {
    script: Script,
    status: ScriptStatus,
}

impl Tracked {
    fn new(script: Script) -> Self {
        let status = ScriptStatus {
            name: script.name.clone(),
            state: ScriptState::Pending,
            start: None,
            stop: None,
        };
        Tracked { script, status }
    }

    /// A script gets its `stop` when its start succeeded, or when a shutdown
    /// interrupted its start (it may have left half of its work running).
    fn needs_stop(&self) -> bool {
        match self.status.state {
            ScriptState::Started => true,
            ScriptState::StartFailed => self
                .status
                .start
                .as_ref()
                .is_some_and(|r| r.outcome == Outcome::Interrupted),
            _ => false,
        }
    }
}

/// The main command's process and its outcome.
#[derive(Debug)]
struct MainProcess {
    status: MainStatus,
}

pub struct Supervisor {
    config: Config,
    reaper: Arc<Reaper>,
    events: UnboundedReceiver<Event>,
    /// Kept so the main command's exit watcher can post into the same channel.
    event_sender: UnboundedSender<Event>,
    published: watch::Sender<Status>,
    state: PersistentState,
    boot: BootInfo,
    phase: Phase,
    scripts: Vec<Tracked>,
    main: Option<MainProcess>,
    pending: Pending,
    /// Processes left after the last quiesce's stops.
    strays: Vec<ProcessInfo>,
    own_pid: i32,
}

impl Supervisor {
    /// Records this boot in the state file and prepares the first status.
    pub fn new(
        config: Config,
        reaper: Arc<Reaper>,
        events: UnboundedReceiver<Event>,
        event_sender: UnboundedSender<Event>,
    ) -> (Self, watch::Receiver<Status>) {
        let (mut state, warning) = state::load(&config.state_path);
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        let boot = state.begin_boot(&state::now_rfc3339());
        let main = (!config.main_command.is_empty()).then(|| MainProcess {
            status: MainStatus {
                command: config
                    .main_command
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                pid: None,
                state: MainState::Pending,
                exit_code: None,
            },
        });
        let own_pid = nix::unistd::getpid().as_raw();
        let placeholder = Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: own_pid,
            phase: Phase::Starting,
            healthy: false,
            boot,
            boots: Vec::new(),
            quiesces: Vec::new(),
            commit_safe: None,
            scripts: Vec::new(),
            main: None,
            strays: Vec::new(),
        };
        let (published, receiver) = watch::channel(placeholder);
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
        };
        supervisor.save_state(Durability::Atomic);
        let restored = match boot.restored_from_quiesce {
            Some(id) => format!(", restored from quiesce #{id}"),
            None => String::new(),
        };
        tracing::info!("boot {}{restored}", boot.boot);
        supervisor.publish();
        (supervisor, receiver)
    }

    /// Runs the whole lifecycle and returns PID 1's exit code.
    pub async fn run(mut self) -> i32 {
        self.start_round("boot").await;
        loop {
            if self.pending.shutdown.is_some() {
                return self.shutdown().await;
            }
            if self.pending.quiesce && self.phase.can_quiesce() {
                self.quiesce().await;
                continue;
            }
            if self.pending.resume && self.phase.can_resume() {
                self.pending.resume = false;
                self.start_round("resume").await;
                continue;
            }
            if let Some(event) = self.events.recv().await {
                self.handle(event);
            }
        }
    }

    // ----- events -------------------------------------------------------

    fn handle(&mut self, event: Event) {
        match event {
            Event::Signal(signo) => self.on_signal(signo),
            Event::Control(request) => match request.command {
                ControlCommand::Quiesce { requester } => {
                    self.request_quiesce(Some(request.reply), requester)
                }
                ControlCommand::Resume => self.request_resume(Some(request.reply)),
            },
            Event::MainExited(exit) => self.on_main_exit(exit),
        }
    }

    /// The signal task already forwarded what the main command should get
    /// (`signals::is_forwarded`); here only what dind-init itself acts on.
    fn on_signal(&mut self, signo: i32) {
        match Signal::try_from(signo) {
            Ok(Signal::SIGUSR1) => self.request_quiesce(None, None),
            Ok(Signal::SIGUSR2) => self.request_resume(None),
            Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) => {
                self.request_shutdown(ShutdownCause::Signal(signo))
            }
            _ => tracing::debug!("{} received", signal_name(signo)),
        }
    }

    fn main_pid(&self) -> Option<i32> {
        let main = self.main.as_ref()?;
        (main.status.state == MainState::Running)
            .then_some(main.status.pid)
            .flatten()
    }

    fn request_shutdown(&mut self, cause: ShutdownCause) {
        let name = match cause {
            ShutdownCause::Signal(signo) => signal_name(signo),
            _ => "shutdown".to_string(),
        };
        if self.pending.shutdown.is_some() || self.phase == Phase::ShuttingDown {
            if !self.pending.force {
                tracing::warn!(
                    "second {name}: skipping the remaining stops and killing every process now"
                );
                self.pending.force = true;
            }
            return;
        }
        tracing::info!("{name} received: shutting down");
        self.pending.shutdown = Some(cause);
    }

    fn request_quiesce(
        &mut self,
        waiter: Option<oneshot::Sender<Result<Status, String>>>,
        requester: Option<i32>,
    ) {
        let refusal = if self.pending.shutdown.is_some() || self.phase == Phase::ShuttingDown {
            Some("cannot quiesce: dind-init is shutting down".to_string())
        } else if self.phase == Phase::Quiesced && !self.pending.resume {
            tracing::info!("quiesce requested: already quiesced; nothing to do");
            if let Some(waiter) = waiter {
                let _ = waiter.send(Ok(self.snapshot()));
            }
            return;
        } else if self.phase == Phase::Quiesced {
            Some("cannot quiesce: a resume is about to start".to_string())
        } else {
            None
        };
        if let Some(reason) = refusal {
            tracing::warn!("{reason}");
            if let Some(waiter) = waiter {
                let _ = waiter.send(Err(reason));
            }
            return;
        }
        if self.pending.quiesce || self.phase == Phase::Quiescing {
            tracing::info!("quiesce requested: already quiescing; it will answer when done");
        } else if self.phase == Phase::Starting {
            tracing::info!(
                "quiesce requested: finishing the script in flight, then stopping what started"
            );
        } else {
            tracing::info!("quiesce requested");
        }
        self.pending.quiesce = true;
        self.pending
            .quiesce_requesters
            .extend(requester.filter(|&pid| pid > 0));
        self.pending.quiesce_waiters.extend(waiter);
    }

    fn request_resume(&mut self, waiter: Option<oneshot::Sender<Result<Status, String>>>) {
        if self.phase.can_resume() && self.pending.shutdown.is_none() {
            tracing::info!("resume requested: running the starts again");
            self.pending.resume = true;
            self.pending.resume_waiters.extend(waiter);
            return;
        }
        let reason = format!("nothing to resume: phase is {}", self.phase);
        tracing::warn!("{reason}");
        if let Some(waiter) = waiter {
            let _ = waiter.send(Err(reason));
        }
    }

    fn on_main_exit(&mut self, exit: ChildExit) {
        if let Some(main) = &mut self.main {
            main.status.state = MainState::Exited;
            main.status.exit_code = Some(exit.code());
        }
        tracing::info!("main command {exit}");
        self.publish();
        if self.pending.shutdown.is_none() && self.phase != Phase::ShuttingDown {
            self.pending.shutdown = Some(ShutdownCause::MainExited);
        }
    }

    // ----- lifecycle steps ----------------------------------------------

    async fn start_round(&mut self, reason: &'static str) {
        self.set_phase(Phase::Starting);
        self.discover();
        self.publish();
        for index in 0..self.scripts.len() {
            if self.pending.shutdown.is_some() || self.pending.quiesce {
                break;
            }
            self.scripts[index].status.state = ScriptState::Starting;
            self.publish();
            let result = self.run_script(index, Action::Start, reason).await;
            let outcome = result.outcome;
            let tracked = &mut self.scripts[index];
            tracked.status.state = if outcome == Outcome::Succeeded {
                ScriptState::Started
            } else {
                ScriptState::StartFailed
            };
            tracked.status.start = Some(result);
            self.publish();
            if matches!(outcome, Outcome::Succeeded | Outcome::Interrupted) {
                continue;
            }
            if self.config.on_start_failure == StartFailurePolicy::Abort {
                tracing::error!(
                    "start of {} failed: stopping what started, then exiting {EXIT_START_FAILED} (DIND_INIT_ON_START_FAILURE=continue goes on instead)",
                    self.scripts[index].script.name
                );
                self.pending
                    .shutdown
                    .get_or_insert(ShutdownCause::StartFailed);
                break;
            }
            tracing::warn!(
                "start of {} failed; going on (on-start-failure=continue)",
                self.scripts[index].script.name
            );
        }
        self.record_results();
        if self.pending.shutdown.is_some() || self.pending.quiesce {
            let reason = "the starts did not complete: a quiesce or shutdown came first";
            reply_all(&mut self.pending.resume_waiters, Err(reason.to_string()));
            return;
        }
        if self
            .main
            .as_ref()
            .is_some_and(|m| m.status.state == MainState::Pending)
        {
            self.start_main();
            if self.pending.shutdown.is_some() {
                return;
            }
        }
        self.set_phase(Phase::Running);
        let failed = self
            .scripts
            .iter()
            .filter(|t| t.status.state != ScriptState::Started)
            .count();
        let main = self
            .main_pid()
            .map(|pid| format!(", main command pid {pid}"))
            .unwrap_or_default();
        if failed == 0 {
            tracing::info!("running: {} script(s) started{main}", self.scripts.len());
        } else {
            tracing::warn!(
                "running with {failed} failed start(s) of {} script(s){main}",
                self.scripts.len()
            );
        }
        let status = self.snapshot();
        reply_all(&mut self.pending.resume_waiters, Ok(status));
    }

    fn discover(&mut self) {
        let dir = &self.config.init_dir;
        match discovery::discover(dir, self.config.init_dir_explicit) {
            Ok(found) => {
                for (name, reason) in &found.skipped {
                    tracing::warn!("skipping {}: {reason}", dir.join(name).display());
                }
                self.scripts = found.scripts.into_iter().map(Tracked::new).collect();
            }
            Err(error) => {
                tracing::error!(
                    "cannot read init.d directory {}: {error}; no scripts run",
                    dir.display()
                );
                self.scripts.clear();
            }
        }
    }

    fn start_main(&mut self) {
        let Some(main) = &mut self.main else { return };
        let Some((program, args)) = self.config.main_command.split_first() else {
            return;
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&self.config.main_cwd)
            .process_group(0);
        match self.reaper.spawn_main(&mut command) {
            Ok((child, exit)) => {
                let pid = child.id() as i32;
                main.status.pid = Some(pid);
                main.status.state = MainState::Running;
                give_terminal_to(pid);
                let events = self.event_sender.clone();
                tokio::spawn(async move {
                    if let Ok(exit) = exit.await {
                        let _ = events.send(Event::MainExited(exit));
                    }
                });
            }
            Err(error) => {
                let code = match error.kind() {
                    std::io::ErrorKind::NotFound => 127,
                    _ => 126,
                };
                tracing::error!(
                    "cannot execute main command {}: {error}",
                    program.to_string_lossy()
                );
                main.status.state = MainState::FailedToStart;
                main.status.exit_code = Some(code);
                self.pending
                    .shutdown
                    .get_or_insert(ShutdownCause::MainExited);
            }
        }
    }

    async fn quiesce(&mut self) {
        self.pending.quiesce = false;
        self.set_phase(Phase::Quiescing);
        let count = self.scripts.iter().filter(|t| t.needs_stop()).count();
        tracing::info!("quiescing: stopping {count} script(s) in reverse order");
        let failed_stops = self.stop_round("quiesce").await;
        self.record_results();
        if self.pending.force {
            let reason = "a forced shutdown interrupted the quiesce".to_string();
            reply_all(&mut self.pending.quiesce_waiters, Err(reason));
            return;
        }
        flush_root_file_system();
        let requesters = std::mem::take(&mut self.pending.quiesce_requesters);
        self.strays = self.settle_strays(&requesters).await;
        let commit_safe = failed_stops.is_empty() && self.strays.is_empty();
        let id = self.state.record_quiesce(QuiesceRecord {
            id: 0,
            boot: 0,
            at: state::now_rfc3339(),
            commit_safe,
            failed_stops: failed_stops.clone(),
            strays: self.strays.clone(),
        });
        // The stops' writes were flushed above; this fsyncs the record itself.
        self.save_state(Durability::Fsync);
        self.set_phase(Phase::Quiesced);
        if commit_safe {
            tracing::info!("quiesced: safe to docker commit (quiesce #{id})");
        } else {
            let mut reasons = Vec::new();
            if !failed_stops.is_empty() {
                reasons.push(format!("failed stops: {}", failed_stops.join(", ")));
            }
            if !self.strays.is_empty() {
                let strays: Vec<_> = self
                    .strays
                    .iter()
                    .map(|p| format!("{} ({})", p.pid, p.command))
                    .collect();
                reasons.push(format!("processes still running: {}", strays.join(", ")));
            }
            tracing::warn!(
                "quiesced but NOT safe to commit (quiesce #{id}): {}",
                reasons.join("; ")
            );
        }
        let status = self.snapshot();
        reply_all(&mut self.pending.quiesce_waiters, Ok(status));
    }

    /// Runs `stop` for every script that needs it, in reverse order; returns
    /// the names of those whose stop failed.
    async fn stop_round(&mut self, reason: &'static str) -> Vec<String> {
        let mut failed = Vec::new();
        for index in (0..self.scripts.len()).rev() {
            if !self.scripts[index].needs_stop() {
                continue;
            }
            if self.pending.force {
                break;
            }
            self.scripts[index].status.state = ScriptState::Stopping;
            self.publish();
            let result = self.run_script(index, Action::Stop, reason).await;
            let tracked = &mut self.scripts[index];
            if result.outcome == Outcome::Succeeded {
                tracked.status.state = ScriptState::Stopped;
            } else {
                tracked.status.state = ScriptState::StopFailed;
                failed.push(tracked.script.name.clone());
            }
            tracked.status.stop = Some(result);
            self.publish();
        }
        failed
    }

    /// Our descendants that are still alive after the stops: waits up to the
    /// settle time for them to go (a daemon told to stop may take a moment),
    /// less the main command and the lineage of the clients that asked. A
    /// second SIGTERM ends the wait.
    async fn settle_strays(&mut self, requesters: &[i32]) -> Vec<ProcessInfo> {
        let main = self.main_pid();
        let not_strays = |table: &[ProcessInfo]| -> HashSet<i32> {
            let mut excluded: HashSet<i32> = requesters
                .iter()
                .flat_map(|&pid| procs::lineage(table, pid))
                .collect();
            excluded.extend(main);
            excluded
        };
        self.wait_for_descendants(self.config.settle, true, not_strays)
            .await
    }

    async fn shutdown(&mut self) -> i32 {
        let cause = self
            .pending
            .shutdown
            .unwrap_or(ShutdownCause::Signal(Signal::SIGTERM as i32));
        self.set_phase(Phase::ShuttingDown);
        let reason = "dind-init is shutting down".to_string();
        reply_all(&mut self.pending.quiesce_waiters, Err(reason.clone()));
        reply_all(&mut self.pending.resume_waiters, Err(reason));

        // The main command started last, so it stops first.
        if let Some(pid) = self.main_pid() {
            if !matches!(cause, ShutdownCause::Signal(_)) {
                let _ = send_signal(Pid::from_raw(pid), Signal::SIGTERM as i32);
            }
            self.wait_for_main_exit().await;
        }
        let stop_reason = if cause == ShutdownCause::StartFailed {
            "start-failure"
        } else {
            "shutdown"
        };
        let count = self.scripts.iter().filter(|t| t.needs_stop()).count();
        if count > 0 {
            tracing::info!("stopping {count} script(s) in reverse order");
        }
        let failed_stops = self.stop_round(stop_reason).await;
        self.record_results();
        self.save_state(Durability::Atomic);
        self.terminate_remaining().await;
        // Once, when every process is gone and nothing writes any more.
        flush_root_file_system();

        let code = match (&self.main, cause) {
            (Some(main), _) if main.status.exit_code.is_some() => {
                main.status.exit_code.unwrap_or(0)
            }
            (_, ShutdownCause::StartFailed) => EXIT_START_FAILED,
            _ if !failed_stops.is_empty() => EXIT_STOP_FAILED,
            _ => 0,
        };
        tracing::info!("shutdown complete: exiting with code {code}");
        code
    }

    /// Waits up to the grace period for the main command to exit, still
    /// handling events (a second SIGTERM cuts the wait short).
    async fn wait_for_main_exit(&mut self) {
        let deadline = tokio::time::sleep(self.config.grace);
        tokio::pin!(deadline);
        while self.main_pid().is_some() && !self.pending.force {
            tokio::select! {
                () = &mut deadline => {
                    tracing::warn!("main command still running after {:.1}s; it will be killed with the rest", self.config.grace.as_secs_f64());
                    return;
                }
                Some(event) = self.events.recv() => self.handle(event),
            }
        }
    }

    /// SIGTERM to every process left, the grace period, then SIGKILL.
    async fn terminate_remaining(&mut self) {
        let left = procs::descendants(&procs::scan(), self.own_pid);
        if left.is_empty() {
            return;
        }
        let signal = if self.pending.force {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        tracing::info!(
            "sending {} to {} remaining process(es)",
            signal.as_str(),
            left.len()
        );
        signal_all(&left, signal);
        if signal == Signal::SIGTERM {
            let remaining = self.wait_until_gone(self.config.grace, true).await;
            if remaining.is_empty() {
                return;
            }
            let names: Vec<_> = remaining
                .iter()
                .map(|p| format!("{} ({})", p.pid, p.command))
                .collect();
            tracing::warn!(
                "still running after the {:.1}s grace period, sending SIGKILL: {}",
                self.config.grace.as_secs_f64(),
                names.join(", ")
            );
            signal_all(&remaining, Signal::SIGKILL);
        }
        let remaining = self.wait_until_gone(KILL_WAIT, false).await;
        if !remaining.is_empty() {
            tracing::warn!(
                "{} process(es) survived SIGKILL (uninterruptible sleep?); exiting anyway",
                remaining.len()
            );
        }
    }

    /// Polls until no descendant is left or `limit` passes; a second SIGTERM
    /// ends the wait early when `interruptible`.
    async fn wait_until_gone(&mut self, limit: Duration, interruptible: bool) -> Vec<ProcessInfo> {
        self.wait_for_descendants(limit, interruptible, |_| HashSet::new())
            .await
    }

    /// Polls our live descendants, less those `excluded` picks out of each
    /// scan, until none is left, `limit` passes or (when `interruptible`) a
    /// forced shutdown comes; events are handled meanwhile.
    async fn wait_for_descendants(
        &mut self,
        limit: Duration,
        interruptible: bool,
        excluded: impl Fn(&[ProcessInfo]) -> HashSet<i32>,
    ) -> Vec<ProcessInfo> {
        let deadline = Instant::now() + limit;
        loop {
            let table = procs::scan();
            let skip = excluded(&table);
            let left: Vec<_> = procs::descendants(&table, self.own_pid)
                .into_iter()
                .filter(|p| !skip.contains(&p.pid))
                .collect();
            if left.is_empty()
                || Instant::now() >= deadline
                || (interruptible && self.pending.force)
            {
                return left;
            }
            tokio::select! {
                () = tokio::time::sleep(PROCESS_POLL) => {}
                Some(event) = self.events.recv() => self.handle(event),
            }
        }
    }

    /// Runs one `SCRIPT start|stop` to its end, with its timeout, while
    /// handling events. A shutdown interrupts a start (SIGTERM to its process
    /// group); a forced shutdown kills a start or a stop.
    async fn run_script(
        &mut self,
        index: usize,
        action: Action,
        reason: &'static str,
    ) -> RunResult {
        let script = self.scripts[index].script.clone();
        let env = ScriptEnv {
            boot: self.boot.boot,
            restored: self.boot.restored,
            reason,
            socket: self.config.socket.clone(),
        };
        let running = match script::spawn(&self.reaper, &script, action, &env) {
            Ok(running) => running,
            Err(error) => {
                let code = if error.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                let why = format!("cannot execute {}: {error}", script.path.display());
                tracing::error!("{} {}: {why}", script.name, action.as_str());
                return RunResult {
                    outcome: Outcome::SpawnFailed,
                    exit_code: Some(code),
                    duration_ms: 0,
                    reason: Some(why),
                };
            }
        };
        tracing::info!("{} {} (pid {})", script.name, action.as_str(), running.pid);
        let timeout = match action {
            Action::Start => limit(self.config.start_timeout),
            Action::Stop => limit(self.config.stop_timeout),
        };
        // A year stands for "no limit": the timer wheel does not wake for it.
        let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(365 * 86_400)));
        tokio::pin!(deadline);
        let group = Pid::from_raw(-running.pid.as_raw());
        let mut exit = running.exit;
        let mut timed_out = false;
        let mut interrupted_with: Option<Signal> = None;
        let exit = loop {
            tokio::select! {
                biased;
                exit = &mut exit => break exit,
                () = &mut deadline, if !timed_out => {
                    timed_out = true;
                    tracing::error!(
                        "{} {} timed out after {:.1}s: killing its process group",
                        script.name, action.as_str(), timeout.unwrap_or_default().as_secs_f64()
                    );
                    let _ = send_signal(group, Signal::SIGKILL as i32);
                }
                Some(event) = self.events.recv() => {
                    self.handle(event);
                    let wanted = if self.pending.force {
                        Some(Signal::SIGKILL)
                    } else if action == Action::Start && self.pending.shutdown.is_some() {
                        Some(Signal::SIGTERM)
                    } else {
                        None
                    };
                    let escalates = wanted.is_some() && wanted != interrupted_with && interrupted_with != Some(Signal::SIGKILL);
                    if let Some(signal) = wanted.filter(|_| escalates) {
                        tracing::warn!("interrupting {} {}: sending {} to its process group", script.name, action.as_str(), signal.as_str());
                        let _ = send_signal(group, signal as i32);
                        interrupted_with = Some(signal);
                    }
                }
            }
        };
        let duration_ms = running.started.elapsed().as_millis() as u64;
        let Ok(exit) = exit else {
            let why = "lost track of the script's process".to_string();
            tracing::error!("{} {}: {why}", script.name, action.as_str());
            return RunResult {
                outcome: Outcome::Failed,
                exit_code: None,
                duration_ms,
                reason: Some(why),
            };
        };
        let (outcome, why) = if timed_out {
            let limit = timeout.unwrap_or_default().as_secs_f64();
            (
                Outcome::TimedOut,
                Some(format!(
                    "timed out after {limit:.1}s; its process group was killed"
                )),
            )
        } else if interrupted_with.is_some() {
            (
                Outcome::Interrupted,
                Some(format!("interrupted by shutdown ({exit})")),
            )
        } else if exit.success() {
            (Outcome::Succeeded, None)
        } else {
            (Outcome::Failed, Some(exit.to_string()))
        };
        match &why {
            None => tracing::info!("{} {}: ok in {duration_ms}ms", script.name, action.as_str()),
            Some(why) => tracing::error!("{} {} failed: {why}", script.name, action.as_str()),
        }
        RunResult {
            outcome,
            exit_code: Some(exit.code()),
            duration_ms,
            reason: why,
        }
    }

    // ----- bookkeeping --------------------------------------------------

    fn set_phase(&mut self, next: Phase) {
        if self.phase != next && !self.phase.can_become(next) {
            tracing::warn!("unexpected phase change {} -> {next}", self.phase);
        }
        self.phase = next;
        self.publish();
    }

    fn snapshot(&self) -> Status {
        let scripts: Vec<_> = self.scripts.iter().map(|t| t.status.clone()).collect();
        let main = self.main.as_ref().map(|m| m.status.clone());
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: self.own_pid,
            phase: self.phase,
            healthy: Status::compute_healthy(self.phase, &scripts, main.as_ref()),
            boot: self.boot,
            boots: self.state.boots.clone(),
            quiesces: self.state.quiesces.clone(),
            commit_safe: (self.phase == Phase::Quiesced)
                .then(|| self.state.quiesces.last().is_some_and(|q| q.commit_safe)),
            scripts,
            main,
            strays: self.strays.clone(),
        }
    }

    fn publish(&self) {
        self.published.send_replace(self.snapshot());
    }

    fn record_results(&mut self) {
        self.state.last_results = self
            .scripts
            .iter()
            .map(|t| ScriptRecord {
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

    fn save_state(&self, durability: Durability) {
        if let Err(error) = state::save(&self.config.state_path, &self.state, durability) {
            tracing::warn!(
                "{error:#}; the boot and quiesce history will not survive a restart (set DIND_INIT_STATE to a writable path)"
            );
        }
    }
}

fn reply_all(
    waiters: &mut Vec<oneshot::Sender<Result<Status, String>>>,
    answer: Result<Status, String>,
) {
    for waiter in waiters.drain(..) {
        let _ = waiter.send(answer.clone());
    }
}

/// Flushes the file system dind-init's root is on (the container's, which
/// `docker commit` reads), with syncfs rather than sync: a global sync could
/// wait for every dirty page of a busy host. Falls back to sync.
fn flush_root_file_system() {
    let flushed = match std::fs::File::open("/") {
        Ok(root) => nix::unistd::syncfs(&root).map_err(std::io::Error::from),
        Err(error) => Err(error),
    };
    if let Err(error) = flushed {
        tracing::debug!("syncfs(/) failed ({error}); using sync");
        nix::unistd::sync();
    }
}

fn signal_all(processes: &[ProcessInfo], signal: Signal) {
    for process in processes {
        // ESRCH: it exited between the scan and now, which is what we want.
        let _ = send_signal(Pid::from_raw(process.pid), signal as i32);
    }
}

/// Makes the main command the foreground process group of our terminal, if
/// we have one (`docker run -t`), so it gets the terminal's input and Ctrl-C.
fn give_terminal_to(pgid: i32) {
    let stdin = std::io::stdin();
    if !nix::unistd::isatty(&stdin).unwrap_or(false) {
        return;
    }
    if let Err(error) = nix::unistd::tcsetpgrp(&stdin, Pid::from_raw(pgid)) {
        tracing::debug!("cannot hand the terminal to the main command: {error}");
    }
}
