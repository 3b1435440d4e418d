//! This boot's phases with when each began and how long it lasted, for
//! `status` (`phases[]`, `running_since`). Pure: the caller passes the
//! clock readings.

use std::time::Instant;

use crate::phase::Phase;
use crate::status::PhaseSpan;

/// Phases kept; older ones are dropped (a container quiesced and resumed
/// all day must not grow PID 1).
const MAX_SPANS: usize = 32;

#[derive(Debug)]
pub struct Timeline {
    /// Finished phases and the current one (last, `duration_ms` null), oldest first.
    spans: Vec<PhaseSpan>,
    /// When the current phase began, for its duration once it ends.
    entered: Instant,
}

impl Timeline {
    /// A timeline whose first phase is `phase`, begun at `now` (wall-clock `at`).
    pub fn new(phase: Phase, now: Instant, at: String) -> Self {
        Timeline {
            spans: vec![PhaseSpan {
                phase,
                at,
                duration_ms: None,
            }],
            entered: now,
        }
    }

    /// Ends the current phase and begins `phase`; nothing when it is the current one.
    pub fn enter(&mut self, phase: Phase, now: Instant, at: String) {
        let elapsed = now.saturating_duration_since(self.entered).as_millis();
        if let Some(current) = self.spans.last_mut() {
            if current.phase == phase {
                return;
            }
            current.duration_ms = Some(u64::try_from(elapsed).unwrap_or(u64::MAX));
        }
        self.spans.push(PhaseSpan {
            phase,
            at,
            duration_ms: None,
        });
        if let Some(excess) = self.spans.len().checked_sub(MAX_SPANS) {
            self.spans.drain(..excess);
        }
        self.entered = now;
    }

    pub fn spans(&self) -> &[PhaseSpan] {
        &self.spans
    }

    /// When the current `running` began, if that is the current phase.
    pub fn running_since(&self) -> Option<String> {
        self.spans
            .last()
            .filter(|span| span.phase == Phase::Running)
            .map(|span| span.at.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn phases_with_durations_and_running_since() {
        let start = Instant::now();
        let at = |n: u64| start + Duration::from_millis(n);
        let mut timeline = Timeline::new(Phase::Starting, start, "t0".into());
        timeline.enter(Phase::Starting, at(5), "t0b".into());
        assert_eq!(timeline.running_since(), None);
        timeline.enter(Phase::Running, at(120), "t1".into());
        assert_eq!(timeline.running_since().as_deref(), Some("t1"));
        timeline.enter(Phase::Quiescing, at(1120), "t2".into());
        assert_eq!(timeline.running_since(), None);
        let spans: Vec<_> = timeline
            .spans()
            .iter()
            .map(|s| (s.phase, s.at.as_str(), s.duration_ms))
            .collect();
        assert_eq!(
            spans,
            [
                (Phase::Starting, "t0", Some(120)),
                (Phase::Running, "t1", Some(1000)),
                (Phase::Quiescing, "t2", None),
            ]
        );
    }

    #[test]
    fn bounded() {
        let now = Instant::now();
        let mut timeline = Timeline::new(Phase::Starting, now, String::new());
        for n in 0..100 {
            let phase = [Phase::Quiesced, Phase::Starting][n % 2];
            timeline.enter(phase, now, String::new());
        }
        assert_eq!(timeline.spans().len(), MAX_SPANS);
        assert_eq!(
            timeline.spans().last().map(|s| s.phase),
            Some(Phase::Starting)
        );
    }
}
