//! Watching what a script's start leaves running: after each start (and
//! after a watched daemon exits, when its orphans appear) the children
//! re-parented to dind-init are handed to the reaper's waiters and
//! attributed (rules in [`daemons`]); the exit of one is an event, acted
//! on under `--on-daemon-exit` (degrade, restart with back-off, shutdown).
//! Nothing here runs per SIGCHLD: an orphan nobody watches costs the sweep
//! what it always did, and `/proc` is read only at those two moments.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::event::Event;
use crate::procs::{self, ChildProcess};
use crate::reaper::ChildExit;
use crate::state;
use crate::status::{DaemonExit, DaemonInfo, ScriptState};
use crate::text;

use super::Supervisor;
use super::daemons::{self, Keys, MAX_RESTARTS, Moment, Owner, RESTART_WINDOW, Reaction};
use super::intent::{EXIT_DAEMON_EXITED, ShutdownCause};

/// How long [`follow_exec`] looks at most, and how often.
const EXEC_WAIT: Duration = Duration::from_millis(100);
const EXEC_POLL: Duration = Duration::from_millis(2);

impl Supervisor {
    /// Watches every new child re-parented to us and attributes it; returns
    /// how many went to the script `moment` names (a dead daemon's successors).
    pub(super) fn adopt_children(&mut self, moment: Moment) -> usize {
        let found = self.reaper.watch_new_children(self.own_pid);
        let main_pgid = self.main.as_ref().and_then(|m| m.pid);
        let mut to_moment = 0usize;
        for (child, exit) in found {
            let owner = {
                let keys: Vec<&Keys> = self.scripts.iter().map(|t| &t.keys).collect();
                daemons::attribute(&child, moment, &keys, main_pgid)
            };
            let events = self.event_sender.clone();
            let pid = child.pid;
            tokio::spawn(async move {
                if let Ok(exit) = exit.await {
                    let _ = events.send(Event::DaemonExited { pid, exit });
                }
            });
            let info = daemon_info(&child);
            let own_ids = self.own_ids;
            follow_exec(pid, info.command.clone(), self.event_sender.clone());
            let script = match owner {
                Owner::Script(index) => self.scripts.get_mut(index).map(|t| (index, t)),
                Owner::Unattributed => None,
            };
            match script {
                Some((index, tracked)) => {
                    // The command may still be the script's fork: `follow_exec` names it later.
                    tracing::info!("[{}] watching daemon {}", tracked.script.name, info.pid);
                    tracked.keys.add(&child, own_ids);
                    tracked.status.daemons.push(info);
                    if matches!(moment, Moment::AfterStart(i) | Moment::AfterDaemonExit(Some(i)) if i == index)
                    {
                        to_moment = to_moment.saturating_add(1);
                    }
                }
                None => {
                    tracing::info!(
                        "process {} ({}) re-parented to dind-init: watched, unattributed",
                        info.pid,
                        info.command
                    );
                    self.unattributed.push(info);
                }
            }
        }
        to_moment
    }

    /// A daemon got its program's command line (see [`follow_exec`]).
    pub(super) fn on_daemon_exec(&mut self, pid: i32, command: String) {
        let daemons = self
            .scripts
            .iter_mut()
            .flat_map(|t| t.status.daemons.iter_mut())
            .chain(self.unattributed.iter_mut());
        if let Some(daemon) = daemons.into_iter().find(|d| d.pid == pid) {
            daemon.command = text::cut(&command, state::MAX_COMMAND_KEPT);
            self.publish();
        }
    }

    /// A watched process ended: expected, a hand-over, or a death that
    /// degrades its script and calls the policy.
    pub(super) fn on_daemon_exit(&mut self, pid: i32, exit: ChildExit) {
        let owner = self
            .scripts
            .iter()
            .position(|t| t.status.daemons.iter().any(|d| d.pid == pid));
        let Some(index) = owner else {
            self.on_unattributed_exit(pid, exit);
            return;
        };
        let now = Instant::now();
        let Some(tracked) = self.scripts.get_mut(index) else {
            return;
        };
        let Some(position) = tracked.status.daemons.iter().position(|d| d.pid == pid) else {
            return;
        };
        let daemon = tracked.status.daemons.remove(position);
        tracked
            .restart_times
            .retain(|at| now.saturating_duration_since(*at) < RESTART_WINDOW);
        let state = tracked.status.state;
        let recent_restarts = tracked.restart_times.len();
        let successors = self.adopt_children(Moment::AfterDaemonExit(Some(index)));
        let reaction = daemons::reaction(
            self.config.on_daemon_exit,
            self.phase,
            self.pending.intents.shutting_down(self.phase),
            state,
            exit,
            successors,
            recent_restarts,
        );
        let Some(tracked) = self.scripts.get_mut(index) else {
            return;
        };
        let name = tracked.script.name.clone();
        let what = format!("[{name}] daemon {pid} ({}) {exit}", daemon.command);
        match reaction {
            Reaction::Expected => tracing::debug!("{what}"),
            Reaction::HandedOver => {
                tracing::info!("{what}, handing over to {successors} process(es) now watched")
            }
            _ => {
                tracing::warn!("{what}");
                tracked.status.state = ScriptState::Degraded;
                tracked.status.daemon_exit = Some(DaemonExit {
                    pid,
                    command: daemon.command,
                    at: state::now_rfc3339(),
                    how: exit.to_string(),
                    exit_code: exit.code(),
                });
                self.apply_policy(index, &name, reaction);
            }
        }
        self.publish();
    }

    /// What `--on-daemon-exit` does once script `index` is degraded.
    fn apply_policy(&mut self, index: usize, name: &str, reaction: Reaction) {
        match reaction {
            Reaction::Restart { after } => {
                tracing::warn!(
                    "[{name}] restarting in {:.1}s (on-daemon-exit=restart): its stop, then its start",
                    after.as_secs_f64()
                );
                self.pending.restarts.push_back((index, after));
                self.pending.intents.restart = true;
            }
            Reaction::RestartLimit => tracing::error!(
                "[{name}] not restarted: {MAX_RESTARTS} restarts within {}s already; it stays degraded",
                RESTART_WINDOW.as_secs()
            ),
            Reaction::Shutdown => {
                tracing::error!(
                    "[{name}] shutting down (on-daemon-exit=shutdown): stopping everything, then exiting {EXIT_DAEMON_EXITED}"
                );
                self.pending
                    .intents
                    .shutdown
                    .get_or_insert(ShutdownCause::DaemonExited);
            }
            Reaction::Degrade | Reaction::Expected | Reaction::HandedOver => {}
        }
    }

    fn on_unattributed_exit(&mut self, pid: i32, exit: ChildExit) {
        // Not listed: a daemon of an earlier round (a stray that outlived its stop).
        let Some(position) = self.unattributed.iter().position(|d| d.pid == pid) else {
            tracing::debug!("process {pid} of an earlier round {exit}");
            return;
        };
        let gone = self.unattributed.remove(position);
        tracing::info!("unattributed process {pid} ({}) {exit}", gone.command);
        self.adopt_children(Moment::AfterDaemonExit(None));
        self.publish();
    }

    /// Stops and starts again the next script queued by the restart policy,
    /// after its back-off; a quiesce or shutdown asked for meanwhile calls
    /// the restart off (the script stays degraded, and its stop runs with
    /// the others).
    pub(super) async fn restart_next(&mut self) {
        let next = self.pending.restarts.pop_front();
        self.pending.intents.restart = !self.pending.restarts.is_empty();
        let Some((index, after)) = next else { return };
        let Some(name) = self.scripts.get(index).map(|t| t.script.name.clone()) else {
            return;
        };
        let called_off =
            |s: &mut Self| s.pending.intents.shutdown.is_some() || s.pending.intents.quiesce;
        let waited = self
            .await_handling_events(tokio::time::sleep(after), called_off)
            .await;
        let degraded = self
            .scripts
            .get(index)
            .is_some_and(|t| t.status.state == ScriptState::Degraded);
        if waited.is_none() || called_off(self) || !degraded {
            tracing::info!("[{name}] restart called off: a quiesce or shutdown came first");
            return;
        }
        if let Some(tracked) = self.scripts.get_mut(index) {
            tracked.restart_times.push(Instant::now());
            tracked.status.restarts = tracked.status.restarts.saturating_add(1);
        }
        if let Some(failed) = self.stop_one(index, "restart").await {
            tracing::warn!("[{failed}] its stop failed; starting it again anyway");
        }
        if self.pending.intents.shutdown.is_some() {
            return;
        }
        self.start_one(index, "restart").await;
        if self
            .scripts
            .get(index)
            .is_some_and(|t| t.status.state == ScriptState::Started)
        {
            tracing::info!("[{name}] restarted");
        }
        self.publish();
    }
}

/// The scan that adopts a daemon reads only `/proc/PID/stat` (under the
/// reaper's lock), so it is listed by its `[comm]` until this reads its
/// command line, off the runtime thread and bounded in time
/// ([`procs::command_line`]). A daemon put in the background right before
/// its script exits (or before a middle process of a double fork exits) is
/// often still the shell's fork, or a wrapper like `setsid` or `nohup`, at
/// first; `status` and the log line of its death should name `dockerd`,
/// not `/bin/sh 40-dockerd.sh start`. So this looks again for
/// [`EXEC_WAIT`] after it is adopted, without holding up the supervisor,
/// and posts the command line whenever it changed. Runs only after a start
/// or a daemon's exit, never while idle.
fn follow_exec(pid: i32, mut seen: String, events: UnboundedSender<Event>) {
    tokio::spawn(async move {
        let deadline = Instant::now().checked_add(EXEC_WAIT);
        while deadline.is_some_and(|deadline| Instant::now() < deadline) {
            tokio::time::sleep(EXEC_POLL).await;
            match procs::command_line(pid).await {
                // A wrapper (`setsid`, `nohup`, `env`) may exec again: keep looking.
                Some(command) if command != seen => {
                    seen = command.clone();
                    let _ = events.send(Event::DaemonExec { pid, command });
                }
                Some(_) => {}
                None => return,
            }
        }
    });
}

/// A watched child as `status` lists it.
fn daemon_info(child: &ChildProcess) -> DaemonInfo {
    let started = procs::start_unix_seconds(child.start_ticks);
    DaemonInfo {
        pid: child.pid,
        command: text::cut(&child.command, state::MAX_COMMAND_KEPT),
        started_at: started.map_or_else(state::now_rfc3339, state::rfc3339),
    }
}
