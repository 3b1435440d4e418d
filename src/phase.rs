//! The supervisor's phases and which transitions between them are allowed.
//!
//! `starting → running → quiescing → quiesced → (resume) starting …`, and
//! `shutting-down` from any of them. Pure logic, unit-tested here; the
//! supervisor asks these predicates before acting on a signal or request.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Running the `start` of each script, in order.
    Starting,
    /// Every start ran; the main command (if any) runs.
    Running,
    /// Running the `stop` of each started script, in reverse, before a commit.
    Quiescing,
    /// Everything is stopped and flushed; waiting for `docker commit`, a resume or a shutdown.
    Quiesced,
    /// Stopping for good; dind-init exits at the end of this phase.
    ShuttingDown,
}

impl Phase {
    /// SIGUSR1 or `quiesce` starts a quiesce only from these phases; during
    /// `starting` the script in flight finishes first.
    pub fn can_quiesce(self) -> bool {
        matches!(self, Phase::Starting | Phase::Running)
    }

    /// SIGUSR2 or `resume` runs the starts again only once quiesced.
    pub fn can_resume(self) -> bool {
        self == Phase::Quiesced
    }

    /// Whether moving from `self` to `next` follows the phase diagram.
    pub fn can_become(self, next: Phase) -> bool {
        use Phase::*;
        match (self, next) {
            (ShuttingDown, _) => false,
            (_, ShuttingDown) => true,
            (Starting, Running) | (Starting, Quiescing) => true,
            (Running, Quiescing) => true,
            (Quiescing, Quiesced) => true,
            (Quiesced, Starting) => true,
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Quiescing => "quiescing",
            Phase::Quiesced => "quiesced",
            Phase::ShuttingDown => "shutting-down",
        }
    }
}

impl std::str::FromStr for Phase {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        ALL_PHASES
            .into_iter()
            .find(|phase| phase.as_str() == text)
            .ok_or_else(|| format!("`{text}` is not a phase (starting, running, quiescing, quiesced, shutting-down)"))
    }
}

/// Every phase, in the order of the diagram.
pub const ALL_PHASES: [Phase; 5] = [
    Phase::Starting,
    Phase::Running,
    Phase::Quiescing,
    Phase::Quiesced,
    Phase::ShuttingDown,
];

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Phase::*;
    use super::*;

    const ALL: [Phase; 5] = ALL_PHASES;

    #[test]
    fn the_documented_cycle_is_allowed() {
        for (from, to) in [
            (Starting, Running),
            (Running, Quiescing),
            (Quiescing, Quiesced),
            (Quiesced, Starting),
            (Starting, Quiescing),
        ] {
            assert!(from.can_become(to), "{from} -> {to}");
        }
    }

    #[test]
    fn shutdown_is_reachable_from_everywhere_and_final() {
        for phase in ALL {
            if phase != ShuttingDown {
                assert!(phase.can_become(ShuttingDown), "{phase}");
            }
            assert!(!ShuttingDown.can_become(phase), "{phase}");
        }
    }

    #[test]
    fn shortcuts_are_refused() {
        assert!(!Running.can_become(Quiesced));
        assert!(!Quiesced.can_become(Running));
        assert!(!Quiescing.can_become(Running));
        assert!(!Running.can_become(Starting));
    }

    #[test]
    fn quiesce_and_resume_predicates() {
        assert_eq!(
            ALL.map(Phase::can_quiesce),
            [true, true, false, false, false]
        );
        assert_eq!(
            ALL.map(Phase::can_resume),
            [false, false, false, true, false]
        );
    }

    #[test]
    fn names_parse_back() {
        for phase in ALL {
            assert_eq!(phase.as_str().parse(), Ok(phase));
        }
        assert!("paused".parse::<Phase>().is_err());
    }

    #[test]
    fn names_are_kebab_case_in_json() {
        assert_eq!(
            serde_json::to_string(&ShuttingDown).unwrap(),
            "\"shutting-down\""
        );
        assert_eq!(ShuttingDown.to_string(), "shutting-down");
    }
}
