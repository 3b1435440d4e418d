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
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::procs::{self, ChildProcess};
use crate::sys::{send_signal, signal_name, wait_any_child};

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
    /// Decodes a raw `waitpid` status as the C macros do, for every signal
    /// number (1 to 64, real-time ones included); `None` for a status that
    /// is no end (stopped, continued), which `waitpid` without `WUNTRACED`
    /// does not report anyway.
    pub fn from_wait_status(status: i32) -> Option<ChildExit> {
        if libc::WIFEXITED(status) {
            Some(ChildExit::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(ChildExit::Signaled(libc::WTERMSIG(status)))
        } else {
            None
        }
    }

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
    /// How the main command ended, set by the sweep that reaped it: PID 1's
    /// exit code is decided from this, so a shutdown that ends before the
    /// supervisor has handled the main command's exit event still exits
    /// with the main command's code.
    main_exit: Mutex<Option<ChildExit>>,
}

impl Reaper {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, oneshot::Sender<ChildExit>>> {
        lock_ignoring_poison(&self.waiters)
    }

    /// How the main command ended, once a sweep has reaped it.
    pub fn main_exit(&self) -> Option<ChildExit> {
        *lock_ignoring_poison(&self.main_exit)
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
    /// being watched; zombies (already exited) are left to the sweep. It
    /// reads `/proc/PID/stat` only: a command line read can block on the
    /// target's memory-map lock, and is done later, off this lock.
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

    /// Sends `signo` to the main command while it is still ours: the check
    /// and the kill are made under the lock every sweep holds, so the pid
    /// cannot be reaped, and recycled, in between. Whether it was sent.
    pub fn signal_main(&self, signo: i32) -> nix::Result<bool> {
        let _no_sweep = self.lock();
        match self.main_pid() {
            Some(pid) => send_signal(pid, signo).map(|()| true),
            None => Ok(false),
        }
    }

    /// Sends `signo` to `pid` while it is a watched child not yet reaped
    /// (a script's daemon, see [`Reaper::watch_new_children`]), under the
    /// lock every sweep holds, so that a recycled pid never gets it.
    /// Whether it was sent.
    pub fn signal_watched(&self, pid: i32, signo: i32) -> nix::Result<bool> {
        let waiters = self.lock();
        if !waiters.contains_key(&pid) {
            return Ok(false);
        }
        send_signal(Pid::from_raw(pid), signo).map(|()| true)
    }

    /// Reaps every child that has exited, until none is left to reap now.
    pub fn reap_all(&self) -> Sweep {
        let mut waiters = self.lock();
        let mut sweep = Sweep::default();
        loop {
            let (pid, exit) = match wait_any_child() {
                Ok(Some((pid, status))) => match ChildExit::from_wait_status(status) {
                    Some(exit) => (pid, exit),
                    None => continue,
                },
                Ok(None) | Err(Errno::ECHILD) => break,
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    tracing::error!("waitpid failed: {error}; will retry at the next SIGCHLD");
                    break;
                }
            };
            let was_main = self
                .main_pid
                .compare_exchange(pid.as_raw(), 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if was_main {
                *lock_ignoring_poison(&self.main_exit) = Some(exit);
            }
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

/// A poisoned lock only means another thread panicked while holding it;
/// what it guards is still consistent, and PID 1 must not panic too.
fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    #[test]
    fn every_signal_number_and_exit_code_is_decoded() {
        // The kernel's layout: the signal in the low 7 bits, the code in bits 8-15.
        for signo in 1..=64 {
            assert_eq!(
                ChildExit::from_wait_status(signo),
                Some(ChildExit::Signaled(signo))
            );
            // With the core-dump bit.
            assert_eq!(
                ChildExit::from_wait_status(signo | 0x80),
                Some(ChildExit::Signaled(signo))
            );
        }
        assert_eq!(ChildExit::Signaled(37).code(), 165);
        for code in [0, 1, 3, 127, 255] {
            assert_eq!(
                ChildExit::from_wait_status(code << 8),
                Some(ChildExit::Exited(code))
            );
        }
        // Stopped by SIGSTOP and continued: no end.
        assert_eq!(ChildExit::from_wait_status(0x137f), None);
        assert_eq!(ChildExit::from_wait_status(0xffff), None);
    }
}
