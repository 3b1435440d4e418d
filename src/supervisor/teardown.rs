//! Making processes go: polling until our descendants are gone, SIGTERM then
//! SIGKILL to whatever is left at shutdown, and the one file-system flush.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::procs::{self, ProcessInfo};
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
        self.wait_for_descendants(limit, interrupt, |_| HashSet::new())
            .await
    }

    /// Polls our live descendants, less those `excluded` picks out of each
    /// scan, until none is left, `limit` passes, or `interrupt` says the
    /// intents recorded meanwhile end the wait; events are handled meanwhile.
    pub(super) async fn wait_for_descendants(
        &mut self,
        limit: Duration,
        interrupt: fn(&Intents) -> bool,
        excluded: impl Fn(&[ProcessInfo]) -> HashSet<i32>,
    ) -> Vec<ProcessInfo> {
        // A limit too far to add to the clock is no limit.
        let deadline = Instant::now().checked_add(limit);
        let interrupted = move |s: &mut Self| interrupt(&s.pending.intents);
        loop {
            if !has_children() {
                return Vec::new();
            }
            let table = procs::scan();
            let skip = excluded(&table);
            let left: Vec<_> = procs::descendants(&table, self.own_pid)
                .into_iter()
                .filter(|p| !skip.contains(&p.pid))
                .collect();
            let expired = deadline.is_some_and(|deadline| Instant::now() >= deadline);
            if left.is_empty() || expired || interrupted(self) {
                // Command lines only for what is reported: ours, and only now.
                return procs::with_command_lines(left).await;
            }
            self.await_handling_events(tokio::time::sleep(PROCESS_POLL), interrupted)
                .await;
        }
    }
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
