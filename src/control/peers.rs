//! Who is connected to the control socket now: the pid of each peer (from
//! `SO_PEERCRED`), written by the server and read by the supervisor's stray
//! check, where a client waiting for its answer (a quiesce, a `status
//! --wait` after SIGUSR1) and its parents are no strays.

use std::sync::{Arc, Mutex, MutexGuard};

/// The pids of the peers connected now, one entry per connection.
#[derive(Debug, Clone, Default)]
pub struct Peers(Arc<Mutex<Vec<i32>>>);

impl Peers {
    /// The pids connected now.
    pub fn pids(&self) -> Vec<i32> {
        self.lock().clone()
    }

    /// Records a connection from `pid` until the returned guard is dropped.
    pub(super) fn connected(&self, pid: i32) -> Connected {
        self.lock().push(pid);
        Connected {
            peers: self.clone(),
            pid,
        }
    }

    /// A poisoned lock only means a thread panicked holding it; the list is intact.
    fn lock(&self) -> MutexGuard<'_, Vec<i32>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One connection's entry in [`Peers`], removed when the connection ends.
pub(super) struct Connected {
    peers: Peers,
    pid: i32,
}

impl Drop for Connected {
    fn drop(&mut self) {
        let mut pids = self.peers.lock();
        if let Some(index) = pids.iter().position(|&pid| pid == self.pid) {
            pids.swap_remove(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_listed_while_connected() {
        let peers = Peers::default();
        let first = peers.connected(7);
        let second = peers.connected(7);
        let other = peers.connected(9);
        drop(first);
        let mut now = peers.pids();
        now.sort();
        assert_eq!(now, [7, 9]);
        drop(second);
        drop(other);
        assert!(peers.pids().is_empty());
    }
}
