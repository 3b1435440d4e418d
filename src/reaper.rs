//! The one reaper: the only caller of `waitpid` in dind-init.
//!
//! Children that someone waits for (a script, the main command) are spawned
//! through [`Reaper::spawn`], which registers their pid under the same lock
//! that [`Reaper::reap_all`] holds while it calls `waitpid(-1)`; so an exit
//! status can never be reaped before its waiter exists, and never lost to
//! the orphan sweep. Everything else that exits is an orphan and is simply
//! collected.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::procs::{self, ChildProcess};
use crate::sys::signal_name;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildExit {
    /// It called `exit` with this code.
    Exited(i32),
    /// A signal with this number killed it.
    Signaled(i32),
}

impl ChildExit {
    /// The shell convention: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ChildExit::Exited(code) => code,
            ChildExit::Signaled(signo) => signo.saturating_add(128),
        }
    }

    pub fn success(self) -> bool {
        self == ChildExit::Exited(0)
    }
}

impl fmt::Display for ChildExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildExit::Exited(code) => write!(f, "exited with code {code}"),
            ChildExit::Signaled(signo) => write!(f, "killed by {}", signal_name(*signo)),
        }
    }
}

/// Counts of one sweep of [`Reaper::reap_all`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Exits handed to a registered waiter.
    pub delivered: usize,
    /// Exits of processes nobody waited for (re-parented orphans, mostly).
    pub orphans: usize,
}

#[derive(Default)]
pub struct Reaper {
    /// Exit-status waiters by pid, guarded together with every `waitpid` call.
    waiters: Mutex<HashMap<i32, oneshot::Sender<ChildExit>>>,
    /// The main command's pid while it runs, 0 otherwise. Cleared by the
    /// sweep that reaps it, so a signal forwarded after that sweep can never
    /// reach a recycled pid.
    main_pid: AtomicI32,
}

impl Reaper {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, oneshot::Sender<ChildExit>>> {
        // A poisoned lock only means another thread panicked while holding it;
        // the map itself is still consistent, and PID 1 must not panic too.
        self.waiters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spawns `command` and registers its pid before anything can reap it.
    /// The returned `Child` is only for its pipes and pid: never `wait` on it.
    /// The caller sets up the child's signals and fds (`sys::clean_slate_in_child`
    /// for scripts, `sys::restore_inherited_in_child` for the main command).
    pub fn spawn(
        &self,
        command: &mut Command,
    ) -> io::Result<(Child, oneshot::Receiver<ChildExit>)> {
        let mut waiters = self.lock();
        let child = command.spawn()?;
        let (sender, receiver) = oneshot::channel();
        waiters.insert(child.id() as i32, sender);
        Ok((child, receiver))
    }

    /// Like [`Reaper::spawn`], for the main command: signals are forwarded to
    /// its pid (see [`Reaper::main_pid`]) from the moment it exists.
    pub fn spawn_main(
        &self,
        command: &mut Command,
    ) -> io::Result<(Child, oneshot::Receiver<ChildExit>)> {
        let spawned = self.spawn(command)?;
        self.main_pid.store(spawned.0.id() as i32, Ordering::SeqCst);
        Ok(spawned)
    }

    /// Watches every child of `own_pid` that nobody waits for yet and that
    /// is still alive: the daemons a script left running, re-parented to
    /// us. Their exits then reach the returned receivers like a script's
    /// does, instead of being swept as orphans, and no other orphan costs
    /// more than before. The `/proc` scan runs under the lock that every
    /// sweep holds, so a child cannot be reaped between being seen and
    /// being watched; zombies (already exited) are left to the sweep.
    pub fn watch_new_children(
        &self,
        own_pid: i32,
    ) -> Vec<(ChildProcess, oneshot::Receiver<ChildExit>)> {
        let mut waiters = self.lock();
        let mut watched = Vec::new();
        for child in procs::children(own_pid) {
            if child.zombie || waiters.contains_key(&child.pid) {
                continue;
            }
            let (sender, receiver) = oneshot::channel();
            waiters.insert(child.pid, sender);
            watched.push((child, receiver));
        }
        watched
    }

    /// The running main command, if any.
    pub fn main_pid(&self) -> Option<Pid> {
        let pid = self.main_pid.load(Ordering::SeqCst);
        (pid > 0).then(|| Pid::from_raw(pid))
    }

    /// Reaps every child that has exited, until none is left to reap now.
    pub fn reap_all(&self) -> Sweep {
        let mut waiters = self.lock();
        let mut sweep = Sweep::default();
        loop {
            let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ChildExit::Exited(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    (pid, ChildExit::Signaled(signal as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    tracing::error!("waitpid failed: {error}; will retry at the next SIGCHLD");
                    break;
                }
            };
            let _ =
                self.main_pid
                    .compare_exchange(pid.as_raw(), 0, Ordering::SeqCst, Ordering::SeqCst);
            match waiters.remove(&pid.as_raw()) {
                Some(waiter) => {
                    // The waiter may have given up (dropped); the exit is still reaped.
                    let _ = waiter.send(exit);
                    sweep.delivered = sweep.delivered.saturating_add(1);
                }
                None => sweep.orphans = sweep.orphans.saturating_add(1),
            }
        }
        sweep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(ChildExit::Exited(3).code(), 3);
        assert_eq!(ChildExit::Signaled(15).code(), 143);
        assert!(ChildExit::Exited(0).success());
        assert!(!ChildExit::Signaled(9).success());
        assert_eq!(ChildExit::Signaled(9).to_string(), "killed by SIGKILL");
        assert_eq!(ChildExit::Exited(1).to_string(), "exited with code 1");
    }
}
