//! The daemons of a script, as pure decisions: which script a process
//! re-parented to dind-init belongs to, and what the exit of one means
//! under the `--on-daemon-exit` policy. No process or clock here; the
//! supervisor (`daemon_watch.rs`) scans, watches and acts.
//!
//! Attribution, in this order:
//! 1. in the main command's process group: unattributed (the main
//!    command's business);
//! 2. in the process group of one of a script's start runs, or in the
//!    process group or session of a daemon its start left (running or
//!    gone): that script (a daemon's own children, a double-forked
//!    successor, what a start in flight put in the background);
//! 3. found right after a script's start ended (the scan after each start),
//!    or right after a daemon of a script exited (its orphans appear then):
//!    that script;
//! 4. otherwise unattributed.

use std::time::Duration;

use crate::config::DaemonExitPolicy;
use crate::phase::Phase;
use crate::procs::ChildProcess;
use crate::reaper::ChildExit;
use crate::status::ScriptState;

/// Restarts of one script allowed within [`RESTART_WINDOW`]; past it the script stays degraded.
pub const MAX_RESTARTS: usize = 5;
/// The window [`MAX_RESTARTS`] counts in.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// Back-off before the first restart in the window; doubled for each next one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// When a scan for new children is made, which says who they most likely came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Right after the start of script `index` ended.
    AfterStart(usize),
    /// Right after a daemon of script `index` (None: an unattributed one) exited.
    AfterDaemonExit(Option<usize>),
}

/// Who a re-parented process belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The script at this index of the round.
    Script(usize),
    Unattributed,
}

/// What ties processes to a script: the process group of each of its start
/// runs, and the pid, process group and session of every daemon its start
/// left, still running or gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys(Vec<i32>);

/// Keys kept per script: a daemon that hands over again and again must not grow PID 1.
const MAX_KEYS: usize = 96;

impl Keys {
    /// Adds `child`'s pid, process group and session, less those shared
    /// with dind-init itself (`own`: our process group and session), which
    /// tie nothing to anyone.
    pub fn add(&mut self, child: &ChildProcess, own: (i32, i32)) {
        for key in [child.pid, child.pgid, child.sid] {
            self.add_key(key, own);
        }
    }

    /// Adds the process group of a start run (the script's pid): what its
    /// start puts in the background while it still runs is its own, even
    /// when a daemon of another script dies meanwhile.
    pub fn add_key(&mut self, key: i32, own: (i32, i32)) {
        if key > 0 && key != own.0 && key != own.1 && !self.0.contains(&key) {
            self.0.push(key);
        }
        if let Some(excess) = self.0.len().checked_sub(MAX_KEYS) {
            self.0.drain(..excess);
        }
    }

    fn ties(&self, child: &ChildProcess) -> bool {
        self.0.contains(&child.pgid) || self.0.contains(&child.sid)
    }
}

/// The owner of a process found at `moment`, given each script's keys (in
/// round order) and the main command's process group.
pub fn attribute(
    child: &ChildProcess,
    moment: Moment,
    scripts: &[&Keys],
    main_pgid: Option<i32>,
) -> Owner {
    if main_pgid.is_some_and(|pgid| pgid == child.pgid) {
        return Owner::Unattributed;
    }
    if let Some(index) = scripts.iter().position(|keys| keys.ties(child)) {
        return Owner::Script(index);
    }
    match moment {
        Moment::AfterStart(index) | Moment::AfterDaemonExit(Some(index)) => Owner::Script(index),
        Moment::AfterDaemonExit(None) => Owner::Unattributed,
    }
}

/// What the exit of a daemon leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// A stop, quiesce or shutdown is under way, or the script is not
    /// (any more) started: expected, logged at debug level only.
    Expected,
    /// It exited 0 leaving a successor of the same script (a double fork).
    HandedOver,
    /// The script is degraded and stays so.
    Degrade,
    /// The script is degraded; its stop and start run after `after`.
    Restart { after: Duration },
    /// The script is degraded: restarted too often in the window.
    RestartLimit,
    /// The script is degraded and everything is stopped; PID 1 exits.
    Shutdown,
}

/// What the exit of a daemon of a script in `state` means, in `phase`
/// (`shutting_down`: a shutdown is asked for), given the policy, how many
/// successors of the same script appeared when it exited and how many
/// restarts of the script happened in the window.
pub fn reaction(
    policy: DaemonExitPolicy,
    phase: Phase,
    shutting_down: bool,
    state: ScriptState,
    exit: ChildExit,
    successors: usize,
    recent_restarts: usize,
) -> Reaction {
    let watching = matches!(phase, Phase::Starting | Phase::Running) && !shutting_down;
    if !watching || !matches!(state, ScriptState::Started | ScriptState::Degraded) {
        return Reaction::Expected;
    }
    if exit.success() && successors > 0 {
        return Reaction::HandedOver;
    }
    match policy {
        DaemonExitPolicy::Degrade => Reaction::Degrade,
        DaemonExitPolicy::Shutdown => Reaction::Shutdown,
        // Already degraded: a restart is queued or the limit was reached.
        DaemonExitPolicy::Restart if state == ScriptState::Degraded => Reaction::Degrade,
        DaemonExitPolicy::Restart if recent_restarts >= MAX_RESTARTS => Reaction::RestartLimit,
        DaemonExitPolicy::Restart => Reaction::Restart {
            after: backoff(recent_restarts),
        },
    }
}

/// The wait before a restart when `recent` restarts happened in the window:
/// 100 ms, 200 ms, 400 ms, ... at most 30 s.
pub fn backoff(recent: usize) -> Duration {
    let doublings = u32::try_from(recent.min(16)).unwrap_or(16);
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: (i32, i32) = (1, 1);

    fn child(pid: i32, pgid: i32, sid: i32) -> ChildProcess {
        ChildProcess {
            pid,
            pgid,
            sid,
            start_ticks: 0,
            zombie: false,
            command: format!("p{pid}"),
        }
    }

    #[test]
    fn attribution_table() {
        use Moment::*;
        use Owner::*;
        // Script 0 left daemon 10 in its start's group 9; script 1 left 20,
        // which called setsid (group and session 20).
        let mut first = Keys::default();
        first.add(&child(10, 9, 1), OWN);
        let mut second = Keys::default();
        second.add(&child(20, 20, 20), OWN);
        // Script 2's start runs now, as pid (and process group) 60.
        let mut third = Keys::default();
        third.add_key(60, OWN);
        let scripts = [&first, &second, &third];
        let main = Some(50);
        let rows = [
            // A daemon's child in its group, found after a later start: the daemon's script.
            (child(11, 9, 1), AfterStart(1), Script(0)),
            // A setsid daemon's successor in its session.
            (child(21, 21, 20), AfterStart(0), Script(1)),
            (child(22, 20, 20), AfterDaemonExit(None), Script(1)),
            // Nothing ties it: the start that just ended, or the daemon that just exited.
            (child(30, 30, 30), AfterStart(1), Script(1)),
            (child(31, 1, 1), AfterDaemonExit(Some(0)), Script(0)),
            (child(32, 32, 32), AfterDaemonExit(None), Unattributed),
            // Put in the background by the start in flight, seen when another script's daemon died.
            (child(61, 60, 1), AfterDaemonExit(Some(0)), Script(2)),
            // The main command's orphans are its own, whatever the moment.
            (child(51, 50, 1), AfterStart(0), Unattributed),
        ];
        for (process, moment, owner) in rows {
            assert_eq!(
                attribute(&process, moment, &scripts, main),
                owner,
                "{process:?} {moment:?}"
            );
        }
    }

    #[test]
    fn our_own_group_and_session_tie_nothing() {
        let mut keys = Keys::default();
        keys.add(&child(10, 1, 1), OWN);
        assert_eq!(keys, Keys(vec![10]));
        assert_eq!(
            attribute(
                &child(40, 1, 1),
                Moment::AfterDaemonExit(None),
                &[&keys],
                None
            ),
            Owner::Unattributed
        );
    }

    #[test]
    fn keys_are_bounded() {
        let mut keys = Keys::default();
        for pid in 100..1000 {
            keys.add(&child(pid, pid, 1), OWN);
        }
        assert_eq!(keys.0.len(), MAX_KEYS);
        assert_eq!(keys.0.last(), Some(&999));
    }

    #[test]
    fn reaction_table() {
        use DaemonExitPolicy as P;
        use Reaction as R;
        use ScriptState as S;
        let killed = ChildExit::Signaled(9);
        let clean = ChildExit::Exited(0);
        let first = R::Restart {
            after: FIRST_BACKOFF,
        };
        let max = MAX_RESTARTS;
        // While running: (policy, state, exit, successors, recent restarts) -> reaction
        let rows = [
            (P::Degrade, S::Started, killed, 0, 0, R::Degrade),
            (P::Degrade, S::Degraded, killed, 0, 0, R::Degrade),
            (P::Shutdown, S::Started, killed, 0, 0, R::Shutdown),
            (P::Restart, S::Started, killed, 0, 0, first),
            (P::Restart, S::Started, killed, 0, max, R::RestartLimit),
            (P::Restart, S::Degraded, killed, 0, 0, R::Degrade),
            // A clean exit that leaves a successor is a hand-over; one that does not is a death.
            (P::Shutdown, S::Started, clean, 1, 0, R::HandedOver),
            (P::Degrade, S::Started, clean, 0, 0, R::Degrade),
            (P::Degrade, S::Started, killed, 1, 0, R::Degrade),
            // A script that is not started: its stop or restart is under way, or its start failed.
            (P::Restart, S::Stopping, killed, 0, 0, R::Expected),
            (P::Restart, S::Starting, killed, 0, 0, R::Expected),
            (P::Degrade, S::StartFailed, killed, 0, 0, R::Expected),
        ];
        for (policy, state, exit, successors, recent, expected) in rows {
            let running = reaction(
                policy,
                Phase::Running,
                false,
                state,
                exit,
                successors,
                recent,
            );
            assert_eq!(
                running, expected,
                "{policy:?} {state:?} {exit:?} {successors} {recent}"
            );
        }
        // During a start round an earlier script's daemon is watched too.
        let starting = reaction(
            P::Shutdown,
            Phase::Starting,
            false,
            S::Started,
            killed,
            0,
            0,
        );
        assert_eq!(starting, R::Shutdown);
        // Expected during a quiesce, while quiesced, and once a shutdown is asked for or runs.
        for (phase, down) in [
            (Phase::Quiescing, false),
            (Phase::Quiesced, false),
            (Phase::ShuttingDown, false),
            (Phase::Running, true),
        ] {
            let expected = reaction(P::Shutdown, phase, down, S::Started, killed, 0, 0);
            assert_eq!(expected, R::Expected, "{phase} {down}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_bound() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(1600));
        assert_eq!(backoff(30), Duration::from_secs(30));
        assert_eq!(backoff(usize::MAX), Duration::from_secs(30));
    }
}
