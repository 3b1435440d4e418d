//! Making processes go: polling until our descendants are gone, SIGTERM then
//! SIGKILL to whatever is left at shutdown or to what a failed start left
//! running, and the one file-system flush.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::procs::{self, ProcessInfo};
use crate::status::DaemonInfo;
use crate::sys::{has_children, send_signal};

use super::Supervisor;
use super::intent::Intents;

/// How often the shutdown and quiesce steps look at `/proc` while waiting for processes to go.
const PROCESS_POLL: Duration = Duration::from_millis(20);
/// How long dind-init waits for SIGKILLed processes to disappear before exiting anyway.
pub(super) const KILL_WAIT: Duration = Duration::from_secs(2);

impl Supervisor {
    /// SIGTERM to every process left, the grace period, then SIGKILL.
    pub(super) async fn terminate_remaining(&mut self) {
        if !has_children() {
            return;
        }
        let left = procs::descendants(&procs::scan(), self.own_pid);
        if left.is_empty() {
            return;
        }
        let signal = if self.pending.intents.force {
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
            let remaining = self.wait_until_gone(self.config.grace, forced).await;
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
        let remaining = self.wait_until_gone(KILL_WAIT, |_| false).await;
        if !remaining.is_empty() {
            tracing::warn!(
                "{} process(es) survived SIGKILL (uninterruptible sleep?); exiting anyway",
                remaining.len()
            );
        }
    }

    /// Polls until no descendant is left, `limit` passes or `interrupt` says so.
    async fn wait_until_gone(
        &mut self,
        limit: Duration,
        interrupt: fn(&Intents) -> bool,
    ) -> Vec<ProcessInfo> {
        let own_pid = self.own_pid;
        self.wait_for_processes(limit, interrupt, true, move |table| {
            procs::descendants(table, own_pid)
        })
        .await
    }

    /// Polls the processes `left_in` picks out of each scan of `/proc`
    /// until none is left, `limit` passes, or `interrupt` says the intents
    /// recorded meanwhile end the wait; events are handled meanwhile. With
    /// `only_ours`, a process without children skips the scan: nothing
    /// below it is left.
    pub(super) async fn wait_for_processes(
        &mut self,
        limit: Duration,
        interrupt: fn(&Intents) -> bool,
        only_ours: bool,
        left_in: impl Fn(&[ProcessInfo]) -> Vec<ProcessInfo>,
    ) -> Vec<ProcessInfo> {
        // A limit too far to add to the clock is no limit.
        let deadline = Instant::now().checked_add(limit);
        let interrupted = move |s: &mut Self| interrupt(&s.pending.intents);
        loop {
            if only_ours && !has_children() {
                return Vec::new();
            }
            let left = left_in(&procs::scan());
            let expired = deadline.is_some_and(|deadline| Instant::now() >= deadline);
            if left.is_empty() || expired || interrupted(self) {
                // Command lines only for what is reported, and only now.
                return procs::with_command_lines(left).await;
            }
            self.await_handling_events(tokio::time::sleep(PROCESS_POLL), interrupted)
                .await;
        }
    }
}

impl Supervisor {
    /// What script `index`'s start put in the background does not outlive
    /// a start that failed, nor a stop that timed out (`why` says which):
    /// SIGTERM to each of its daemons still in that start's process group
    /// (and to any it hands over to there), the grace period, then SIGKILL,
    /// as systemd does with a unit whose start failed or whose stop timed
    /// out. A failed start gets no stop, and a timed-out stop's own process
    /// group is killed, not the daemons (they are in the start's group):
    /// without this a half-started or unstopped daemon would run on, and a
    /// resume would start a second one beside it. A daemon that detached
    /// with `setsid` is left alone: in docker-in-docker those are the inner
    /// engine's containerd shims, which only the engine may stop.
    pub(super) async fn stop_daemons_left_by(&mut self, index: usize, why: &str) {
        let Some(tracked) = self.scripts.get(index) else {
            return;
        };
        let Some(group) = tracked.start_group else {
            return;
        };
        let left = self.daemons_in_group(index, group);
        if left.is_empty() {
            return;
        }
        let name = tracked.script.name.clone();
        tracing::warn!(
            "[{name}] {why}: sending SIGTERM to what it left running: {}",
            daemon_list(&left)
        );
        let mut signalled = HashSet::new();
        if self
            .signal_daemons_until_gone(
                index,
                group,
                Signal::SIGTERM,
                self.config.grace,
                &mut signalled,
            )
            .await
        {
            return;
        }
        tracing::warn!(
            "[{name}] still running after the {:.1}s grace period, sending SIGKILL: {}",
            self.config.grace.as_secs_f64(),
            daemon_list(&self.daemons_in_group(index, group))
        );
        signalled.clear();
        if !self
            .signal_daemons_until_gone(index, group, Signal::SIGKILL, KILL_WAIT, &mut signalled)
            .await
        {
            tracing::warn!(
                "[{name}] what it left running survived SIGKILL (uninterruptible sleep?); going on"
            );
        }
    }

    /// The daemons of script `index` whose process group is `group`.
    fn daemons_in_group(&self, index: usize, group: i32) -> Vec<DaemonInfo> {
        let Some(tracked) = self.scripts.get(index) else {
            return Vec::new();
        };
        let in_group: HashSet<i32> = procs::children(self.own_pid)
            .into_iter()
            .filter(|child| child.pgid == group)
            .map(|child| child.pid)
            .collect();
        tracked
            .status
            .daemons
            .iter()
            .filter(|daemon| in_group.contains(&daemon.pid))
            .cloned()
            .collect()
    }

    /// Sends `signal` to every daemon of script `index` in process group
    /// `group` not yet in `signalled`, again for each newly watched one,
    /// until none is left (true) or `limit` passes (false). Each is
    /// signalled through the reaper, only while it holds the pid unreaped,
    /// so a recycled pid never gets the signal.
    async fn signal_daemons_until_gone(
        &mut self,
        index: usize,
        group: i32,
        signal: Signal,
        limit: Duration,
        signalled: &mut HashSet<i32>,
    ) -> bool {
        let deadline = Instant::now().checked_add(limit);
        loop {
            let left = self.daemons_in_group(index, group);
            // A forced shutdown (a second SIGTERM) kills everything at once anyway.
            if left.is_empty() || self.pending.intents.force {
                return true;
            }
            for daemon in &left {
                if signalled.insert(daemon.pid) {
                    // Gone already (reaped, ESRCH) is what we want.
                    let _ = self.reaper.signal_watched(daemon.pid, signal as i32);
                }
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return false;
            }
            self.await_handling_events(tokio::time::sleep(PROCESS_POLL), |s| {
                s.pending.intents.force
            })
            .await;
        }
    }
}

/// `PID (COMMAND), ...` for a log line.
fn daemon_list(daemons: &[DaemonInfo]) -> String {
    let listed: Vec<_> = daemons
        .iter()
        .map(|d| format!("{} ({})", d.pid, d.command))
        .collect();
    listed.join(", ")
}

/// A forced shutdown (a second SIGTERM) ends a wait.
fn forced(intents: &Intents) -> bool {
    intents.force
}

impl Supervisor {
    /// Flushes the root file system on a blocking thread, so that signals,
    /// reaping and status go on while the disk catches up.
    pub(super) async fn flush(&mut self) {
        let flushing = tokio::task::spawn_blocking(flush_root_file_system);
        self.await_handling_events(flushing, |_| false).await;
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
