//! How this boot is ending: one record, updated at each event that bears
//! on it (a stop round's failures, a quiesce's verdict, a resume that
//! supersedes them, a forced shutdown, the main command's exit), from which
//! PID 1's exit code, the state file's previous ending (so the next boot's
//! `DIND_INIT_PREVIOUS`/`DIND_INIT_RESTORED`) and `status` are all read.
//! Pure, so every rule is a row of the table test below.

use crate::state::PreviousEnding;

use super::intent::{self, ShutdownCause};

/// How this boot is ending so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ending {
    /// Scripts whose stop failed since the last start round: a quiesce's
    /// failures still count at the shutdown that follows it, whose own round
    /// finds nothing left to stop.
    pub failed_stops: Vec<String>,
    /// The verdict of the last quiesce since the last start round
    /// (`Some(true)`: commit-safe); a resume clears it.
    pub quiesce_commit_safe: Option<bool>,
    /// A shutdown ran its stop round to the end (not cut short by a forced one).
    pub shutdown_stops_ran: bool,
    /// A second SIGTERM aborted the stops.
    pub forced: bool,
}

impl Ending {
    /// A stop round finished (or was cut short when `forced`), with the
    /// scripts whose stop failed.
    pub fn stop_round(&mut self, failed: &[String], forced: bool) {
        self.failed_stops.extend(failed.iter().cloned());
        self.forced |= forced;
    }

    /// A quiesce reached its verdict.
    pub fn quiesced(&mut self, commit_safe: bool) {
        self.quiesce_commit_safe = Some(commit_safe);
    }

    /// A resume runs the starts again: what the stops before it left
    /// (failures, an unsafe verdict) no longer describes the disk.
    pub fn resumed(&mut self) {
        self.failed_stops.clear();
        self.quiesce_commit_safe = None;
    }

    /// The shutdown's own stop round ran to its end.
    pub fn shutdown_stopped(&mut self) {
        self.shutdown_stops_ran = !self.forced;
    }

    /// How the next boot is told this one ended, were it to end now: a
    /// commit-safe quiesce not resumed since; else a shutdown whose every
    /// stop (the quiesce's included) succeeded; else unclean. A quiesce
    /// that was not commit-safe, a failed stop or a forced shutdown is
    /// never taken as clean.
    pub fn for_next_boot(&self) -> PreviousEnding {
        match self.quiesce_commit_safe {
            Some(true) => PreviousEnding::Quiesced,
            Some(false) => PreviousEnding::Unclean,
            None if self.shut_down_cleanly() => PreviousEnding::Shutdown,
            None => PreviousEnding::Unclean,
        }
    }

    /// A shutdown ran every stop, and neither a stop since the last start
    /// round failed nor a quiesce was found unsafe.
    pub fn shut_down_cleanly(&self) -> bool {
        self.shutdown_stops_ran
            && self.failed_stops.is_empty()
            && self.quiesce_commit_safe != Some(false)
    }

    /// PID 1's exit code: the main command's when it has one, else non-zero
    /// for a failed start, a failed stop (a quiesce's included) or an
    /// unsafe quiesce left standing (see [`intent::exit_code`]).
    pub fn exit_code(&self, main_exit_code: Option<i32>, cause: ShutdownCause) -> i32 {
        let stop_failed = !self.failed_stops.is_empty() || self.quiesce_commit_safe == Some(false);
        intent::exit_code(main_exit_code, cause, stop_failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::intent::{EXIT_START_FAILED, EXIT_STOP_FAILED};
    use PreviousEnding::{Quiesced, Shutdown, Unclean};

    /// One event of a boot's life.
    #[derive(Clone, Copy)]
    enum Step {
        StopsOk,
        StopFailed,
        Forced,
        Quiesce(bool),
        Resumed,
        ShutdownStopsRan,
    }

    fn play(steps: &[Step]) -> Ending {
        let mut ending = Ending::default();
        for step in steps {
            match *step {
                Step::StopsOk => ending.stop_round(&[], false),
                Step::StopFailed => ending.stop_round(&["10-db.sh".into()], false),
                Step::Forced => ending.stop_round(&[], true),
                Step::Quiesce(safe) => ending.quiesced(safe),
                Step::Resumed => ending.resumed(),
                Step::ShutdownStopsRan => ending.shutdown_stopped(),
            }
        }
        ending
    }

    #[test]
    fn each_ending_is_told_to_the_next_boot_and_in_the_exit_code() {
        use Step::*;
        let signal = ShutdownCause::Signal(15);
        // (events, next boot's PREVIOUS, exit code without a main command)
        let table: &[(&[Step], PreviousEnding, i32)] = &[
            (&[], Unclean, 0),
            (&[StopsOk, ShutdownStopsRan], Shutdown, 0),
            (&[StopFailed, ShutdownStopsRan], Unclean, EXIT_STOP_FAILED),
            (&[Forced, ShutdownStopsRan], Unclean, 0),
            (&[StopsOk, Quiesce(true)], Quiesced, 0),
            (
                &[StopsOk, Quiesce(true), StopsOk, ShutdownStopsRan],
                Quiesced,
                0,
            ),
            // A quiesce with strays: unsafe, though every stop succeeded.
            (&[StopsOk, Quiesce(false)], Unclean, EXIT_STOP_FAILED),
            // Finding 2: a failed stop at the quiesce, then `docker stop`.
            (
                &[StopFailed, Quiesce(false), StopsOk, ShutdownStopsRan],
                Unclean,
                EXIT_STOP_FAILED,
            ),
            // ... superseded by a resume and a clean shutdown.
            (
                &[
                    StopFailed,
                    Quiesce(false),
                    Resumed,
                    StopsOk,
                    ShutdownStopsRan,
                ],
                Shutdown,
                0,
            ),
            // A resume of a safe quiesce: the disk changes again.
            (&[StopsOk, Quiesce(true), Resumed], Unclean, 0),
            (
                &[
                    StopsOk,
                    Quiesce(true),
                    Resumed,
                    StopFailed,
                    ShutdownStopsRan,
                ],
                Unclean,
                EXIT_STOP_FAILED,
            ),
        ];
        for (steps, previous, code) in table {
            let ending = play(steps);
            assert_eq!(ending.for_next_boot(), *previous, "{ending:?}");
            let shut_down = steps.iter().any(|s| matches!(s, ShutdownStopsRan));
            assert_eq!(
                ending.shut_down_cleanly(),
                shut_down && *previous != Unclean,
                "{ending:?}"
            );
            assert_eq!(ending.exit_code(None, signal), *code, "{ending:?}");
            // The main command's code wins; a start failure is told apart.
            assert_eq!(ending.exit_code(Some(9), signal), 9, "{ending:?}");
            if *code == 0 {
                assert_eq!(
                    ending.exit_code(None, ShutdownCause::StartFailed),
                    EXIT_START_FAILED
                );
            }
        }
    }
}
