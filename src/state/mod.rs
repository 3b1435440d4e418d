//! The persistent state: boot count, boot history, quiesce history and the
//! last script results, and how each boot ended. It lives on the container's
//! disk, so a committed image carries it and the next boot can tell how the
//! last one ended. The records and their transitions are here, pure and
//! unit-tested; reading and writing the file is in [`file`], the clock in
//! [`clock`].

mod clock;
mod file;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::procs::ProcessInfo;
use crate::text::cut;

pub use clock::{now_rfc3339, rfc3339};
pub use file::{Durability, load, parse, save};

/// How many boots and quiesces the history keeps; older entries are dropped.
const HISTORY_LIMIT: usize = 50;
/// Strays kept in one quiesce record; the rest are counted in a last entry.
pub const MAX_STRAYS_KEPT: usize = 20;
/// Bytes of a stray's command line kept in a record.
pub const MAX_COMMAND_KEPT: usize = 256;
/// Script names kept in one record's list (failed stops, last results).
const MAX_NAMES_KEPT: usize = 1000;
/// Bytes kept of any other text of a record loaded from the file (names,
/// times, states, reasons): what dind-init writes is far shorter.
const MAX_TEXT_KEPT: usize = 1024;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersistentState {
    /// Boots of this state file so far; the current boot's number.
    pub boot_count: u64,
    /// The most recent boots, oldest first.
    pub boots: Vec<BootRecord>,
    /// The most recent quiesces, oldest first.
    pub quiesces: Vec<QuiesceRecord>,
    /// True from the end of a commit-safe quiesce until the next start (a
    /// resume or the next boot): the disk holds a quiesced snapshot.
    pub quiesced: bool,
    /// True once a shutdown ran every stop and none failed (nor a quiesce's
    /// since the last start); false from the next boot on.
    /// With `quiesced`, what the next boot tells as the previous ending.
    pub shut_down_cleanly: bool,
    /// Outcome of each script in the last start/stop round.
    pub last_results: Vec<ScriptRecord>,
    /// How many times each script's `start` has succeeded in this state, by
    /// script name, across every boot, resume and restart (a file written
    /// before this field existed loads with none): `DIND_INIT_STARTS`, and
    /// `DIND_INIT_FIRST_START=1` while it is 0.
    pub script_starts: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootRecord {
    pub boot: u64,
    /// RFC 3339 UTC time of the boot.
    pub at: String,
    /// The id of the quiesce this boot restored from, when it was a restore.
    pub restored_from_quiesce: Option<u64>,
    /// How the boot before this one ended.
    #[serde(default)]
    pub previous: PreviousEnding,
}

/// How the previous boot of this state file ended, as the next boot sees it
/// (`DIND_INIT_PREVIOUS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreviousEnding {
    /// There was none: the first boot of this state file.
    #[default]
    None,
    /// It was quiesced, commit-safe, and not resumed.
    Quiesced,
    /// A shutdown ran every stop, and none failed (nor at a quiesce since the last start).
    Shutdown,
    /// Neither: a crash, `docker kill`, a `docker commit` taken while it
    /// ran, a failed stop, or a quiesce that was not commit-safe.
    Unclean,
}

impl PreviousEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            PreviousEnding::None => "none",
            PreviousEnding::Quiesced => "quiesced",
            PreviousEnding::Shutdown => "shutdown",
            PreviousEnding::Unclean => "unclean",
        }
    }

    /// Whether the disk holds what a complete round of stops left, so the
    /// starts may skip their one-time work (`DIND_INIT_RESTORED=1`).
    pub fn is_clean(self) -> bool {
        matches!(self, PreviousEnding::Quiesced | PreviousEnding::Shutdown)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuiesceRecord {
    /// Sequence number, unique within this state file.
    pub id: u64,
    /// The boot during which it happened.
    pub boot: u64,
    /// RFC 3339 UTC time at which the quiesce finished.
    pub at: String,
    /// Whether every stop succeeded and no stray process was left.
    pub commit_safe: bool,
    /// Scripts whose stop failed or timed out.
    pub failed_stops: Vec<String>,
    /// Processes still alive after the stops (at most [`MAX_STRAYS_KEPT`],
    /// command lines cut to [`MAX_COMMAND_KEPT`] bytes).
    pub strays: Vec<ProcessInfo>,
    /// Why the record could not be made durable, when it could not: the
    /// quiesce is then not commit-safe (the next boot would not know it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_saved: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptRecord {
    pub name: String,
    pub state: String,
    pub exit_code: Option<i32>,
}

/// What starting a boot decided: its number and whether it is a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootInfo {
    pub boot: u64,
    /// The previous boot ended cleanly (quiesced or shut down): `DIND_INIT_RESTORED=1`.
    pub restored: bool,
    /// The quiesce this boot starts from, when the previous boot ended quiesced.
    pub restored_from_quiesce: Option<u64>,
    /// How the previous boot ended: `DIND_INIT_PREVIOUS`.
    #[serde(default)]
    pub previous: PreviousEnding,
}

impl PersistentState {
    /// Records a new boot and clears the quiesced mark (the starts are about
    /// to change the disk). Pure, so it is unit-tested.
    pub fn begin_boot(&mut self, now: &str) -> BootInfo {
        let previous = if self.boot_count == 0 {
            PreviousEnding::None
        } else if self.quiesced {
            PreviousEnding::Quiesced
        } else if self.shut_down_cleanly {
            PreviousEnding::Shutdown
        } else {
            PreviousEnding::Unclean
        };
        let restored_from_quiesce = if previous == PreviousEnding::Quiesced {
            self.quiesces.last().map(|q| q.id)
        } else {
            None
        };
        self.boot_count = self.boot_count.saturating_add(1);
        self.quiesced = false;
        self.shut_down_cleanly = false;
        self.boots.push(BootRecord {
            boot: self.boot_count,
            at: now.to_string(),
            restored_from_quiesce,
            previous,
        });
        trim_front(&mut self.boots);
        BootInfo {
            boot: self.boot_count,
            restored: previous.is_clean(),
            restored_from_quiesce,
            previous,
        }
    }

    /// Records how this boot would end were it to end now, as the
    /// supervisor's record of its ending tells it (`ending`, and whether a
    /// shutdown ran every stop cleanly): what the next boot reads as its
    /// previous ending. Only a commit-safe quiesce not resumed since marks
    /// the disk as quiesced.
    pub fn record_ending(&mut self, ending: PreviousEnding, shut_down_cleanly: bool) {
        self.quiesced = ending == PreviousEnding::Quiesced;
        self.shut_down_cleanly = shut_down_cleanly;
    }

    /// Records a finished quiesce (whether the disk counts as quiesced is
    /// [`Self::record_ending`]'s). Its strays are bounded in number and
    /// length, so the file and every status answer stay small whatever the
    /// strays' command lines.
    pub fn record_quiesce(&mut self, record: QuiesceRecord) -> u64 {
        let mut record = record.bounded();
        record.id = self.quiesces.last().map_or(1, |q| q.id.saturating_add(1));
        record.boot = self.boot_count;
        let id = record.id;
        self.quiesces.push(record);
        trim_front(&mut self.quiesces);
        id
    }

    /// Completed starts of script `name` in this state so far.
    pub fn starts_of(&self, name: &str) -> u64 {
        self.script_starts.get(name).copied().unwrap_or(0)
    }

    /// Counts one more completed start of script `name`.
    pub fn record_start(&mut self, name: &str) {
        let count = self.script_starts.entry(name.to_string()).or_insert(0);
        *count = count.saturating_add(1);
    }

    /// The state as read from a file, bounded like the records dind-init
    /// makes itself: a file written by hand, by an older version or by
    /// anyone who could write it cannot make the state or a status answer
    /// grow without bound.
    pub fn bounded(mut self) -> Self {
        trim_front(&mut self.boots);
        for boot in &mut self.boots {
            boot.at = cut(&boot.at, MAX_TEXT_KEPT);
        }
        trim_front(&mut self.quiesces);
        self.quiesces = self
            .quiesces
            .into_iter()
            .map(QuiesceRecord::bounded)
            .collect();
        self.last_results.truncate(MAX_NAMES_KEPT);
        for result in &mut self.last_results {
            result.name = cut(&result.name, MAX_TEXT_KEPT);
            result.state = cut(&result.state, MAX_TEXT_KEPT);
        }
        // Script names are file names (at most 255 bytes): a longer key
        // names no script and is dropped, never cut into another's name.
        self.script_starts = std::mem::take(&mut self.script_starts)
            .into_iter()
            .filter(|(name, _)| name.len() <= MAX_TEXT_KEPT)
            .take(MAX_NAMES_KEPT)
            .collect();
        self
    }
}

impl QuiesceRecord {
    /// Why this quiesce is not commit-safe, one reason a line: every failed
    /// stop, every stray, a record that is not durable. The one wording of
    /// the log, the `quiesce` client and `dind-init snapshot`'s refusal.
    pub fn unsafe_reasons(&self) -> Vec<String> {
        let stops = self
            .failed_stops
            .iter()
            .map(|name| format!("stop of {name} failed"));
        let strays = self
            .strays
            .iter()
            .map(|p| format!("still running: pid {} {}", p.pid, p.command));
        let not_saved = self
            .not_saved
            .iter()
            .map(|why| format!("the quiesce record is not durable: {why}"));
        stops.chain(strays).chain(not_saved).collect()
    }

    /// Strays as [`bounded_strays`] keeps them, and every other list and
    /// text of the record bounded too.
    fn bounded(mut self) -> Self {
        self.at = cut(&self.at, MAX_TEXT_KEPT);
        self.failed_stops.truncate(MAX_NAMES_KEPT);
        for name in &mut self.failed_stops {
            *name = cut(name, MAX_TEXT_KEPT);
        }
        self.strays = bounded_strays(&self.strays);
        self.not_saved = self.not_saved.map(|why| cut(&why, MAX_TEXT_KEPT));
        self
    }
}

/// At most [`MAX_STRAYS_KEPT`] strays, each command line cut to
/// [`MAX_COMMAND_KEPT`] bytes; a last entry (pid 0) counts the ones left
/// out. Bounding a list already bounded keeps it as it is.
pub fn bounded_strays(strays: &[ProcessInfo]) -> Vec<ProcessInfo> {
    // A list of one more than the limit is already bounded: its last entry
    // is the count of the ones left out.
    let keep = if strays.len() == MAX_STRAYS_KEPT.saturating_add(1) {
        strays.len()
    } else {
        MAX_STRAYS_KEPT
    };
    let mut kept: Vec<ProcessInfo> = strays
        .iter()
        .take(keep)
        .map(|p| ProcessInfo {
            command: cut(&p.command, MAX_COMMAND_KEPT),
            ..p.clone()
        })
        .collect();
    let left_out = strays.len().saturating_sub(keep);
    if left_out > 0 {
        kept.push(ProcessInfo {
            pid: 0,
            ppid: 0,
            state: '?',
            command: format!("... and {left_out} more"),
        });
    }
    kept
}

fn trim_front<T>(items: &mut Vec<T>) {
    let excess = items.len().saturating_sub(HISTORY_LIMIT);
    items.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_a_quiesce_is_not_commit_safe_is_one_line() {
        let mut record = quiesce(false);
        record.failed_stops = vec!["40-dockerd.sh".to_string()];
        record.strays = vec![ProcessInfo {
            pid: 7,
            ppid: 1,
            state: 'S',
            command: "sleep 9".to_string(),
        }];
        record.not_saved = Some("No space left on device".to_string());
        assert_eq!(
            record.unsafe_reasons(),
            [
                "stop of 40-dockerd.sh failed",
                "still running: pid 7 sleep 9",
                "the quiesce record is not durable: No space left on device"
            ]
        );
        assert!(quiesce(true).unsafe_reasons().is_empty());
    }

    pub(super) fn quiesce(commit_safe: bool) -> QuiesceRecord {
        QuiesceRecord {
            id: 0,
            boot: 0,
            at: "t".into(),
            commit_safe,
            failed_stops: vec![],
            strays: vec![],
            not_saved: None,
        }
    }

    fn previous_of_next_boot(state: &PersistentState) -> BootInfo {
        state.clone().begin_boot("later")
    }

    #[test]
    fn every_boot_knows_how_the_previous_one_ended() {
        let mut state = PersistentState::default();
        let first = state.begin_boot("t1");
        assert_eq!(first.previous, PreviousEnding::None);
        assert!(!first.restored);
        // Still running when the disk was copied: a crash, a kill, a plain commit.
        let after_crash = previous_of_next_boot(&state);
        assert_eq!(after_crash.previous, PreviousEnding::Unclean);
        assert!(!after_crash.restored);
        // Quiesced: a restore from that quiesce.
        state.record_quiesce(quiesce(true));
        state.record_ending(PreviousEnding::Quiesced, false);
        let after_quiesce = previous_of_next_boot(&state);
        assert_eq!(after_quiesce.previous, PreviousEnding::Quiesced);
        assert_eq!(after_quiesce.restored_from_quiesce, Some(1));
        assert!(after_quiesce.restored);
        // Resumed after the quiesce: the disk changed, no longer that snapshot.
        state.record_ending(PreviousEnding::Unclean, false);
        assert_eq!(
            previous_of_next_boot(&state).previous,
            PreviousEnding::Unclean
        );
        // A clean shutdown: clean, but restored from no quiesce.
        state.record_ending(PreviousEnding::Shutdown, true);
        let after_shutdown = previous_of_next_boot(&state);
        assert_eq!(after_shutdown.previous, PreviousEnding::Shutdown);
        assert_eq!(after_shutdown.restored_from_quiesce, None);
        assert!(after_shutdown.restored);
        // Quiesced, then stopped: still the quiesced snapshot.
        state.record_quiesce(quiesce(true));
        state.record_ending(PreviousEnding::Quiesced, false);
        let next = previous_of_next_boot(&state);
        assert_eq!(
            (next.previous, next.restored_from_quiesce),
            (PreviousEnding::Quiesced, Some(2))
        );
        // The marks are cleared by the boot itself.
        state.begin_boot("t2");
        assert!(!state.quiesced && !state.shut_down_cleanly);
    }

    #[test]
    fn strays_are_bounded_in_number_and_length() {
        let stray = |n: i32, command: String| ProcessInfo {
            pid: n,
            ppid: 1,
            state: 'S',
            command,
        };
        let many: Vec<_> = (1..=30).map(|n| stray(n, "é".repeat(1_000_000))).collect();
        let mut state = PersistentState::default();
        state.begin_boot("t");
        let mut record = quiesce(false);
        record.strays = many;
        state.record_quiesce(record);
        let kept = &state.quiesces[0].strays;
        assert_eq!(kept.len(), MAX_STRAYS_KEPT + 1);
        assert!(kept.iter().all(|p| p.command.len() <= MAX_COMMAND_KEPT + 3));
        assert_eq!(kept.last().unwrap().command, "... and 10 more");
        let json = serde_json::to_vec(&state).unwrap();
        assert!(json.len() < 16 * 1024, "{} bytes", json.len());
    }

    #[test]
    fn each_script_counts_its_own_completed_starts_and_old_files_load() {
        let old_file: PersistentState =
            serde_json::from_str(r#"{"boot_count": 4, "quiesced": true}"#).unwrap();
        assert_eq!(old_file.starts_of("10-a.sh"), 0);
        let mut state = old_file;
        state.record_start("10-a.sh");
        state.record_start("10-a.sh");
        state.record_start("20-b.sh");
        let reloaded: PersistentState =
            serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(reloaded.starts_of("10-a.sh"), 2);
        assert_eq!(reloaded.starts_of("20-b.sh"), 1);
        assert_eq!(reloaded.starts_of("30-new.sh"), 0);
    }

    #[test]
    fn bounding_a_bounded_list_keeps_it() {
        let stray = |n: i32| ProcessInfo {
            pid: n,
            ppid: 1,
            state: 'S',
            command: "x".repeat(1000),
        };
        let many: Vec<_> = (1..=30).map(stray).collect();
        let once = bounded_strays(&many);
        assert_eq!(bounded_strays(&once), once);
        assert_eq!(once.last().unwrap().command, "... and 10 more");
        let few: Vec<_> = (1..=3).map(stray).collect();
        assert_eq!(bounded_strays(&bounded_strays(&few)), bounded_strays(&few));
    }

    #[test]
    fn first_boot_then_restore_after_quiesce() {
        let mut state = PersistentState::default();
        let first = state.begin_boot("t1");
        assert_eq!((first.boot, first.restored), (1, false));
        assert_eq!(state.record_quiesce(quiesce(true)), 1);
        state.record_ending(PreviousEnding::Quiesced, false);
        assert!(state.quiesced);
        let second = state.begin_boot("t2");
        assert_eq!(
            second,
            BootInfo {
                boot: 2,
                restored: true,
                restored_from_quiesce: Some(1),
                previous: PreviousEnding::Quiesced,
            }
        );
        assert!(!state.quiesced);
        let third = state.begin_boot("t3");
        assert_eq!((third.boot, third.restored), (3, false));
        assert_eq!(state.boots.len(), 3);
        assert_eq!(state.boots[1].restored_from_quiesce, Some(1));
        assert_eq!(state.boots[1].previous, PreviousEnding::Quiesced);
    }

    #[test]
    fn history_is_bounded() {
        let mut state = PersistentState::default();
        for _ in 0..(HISTORY_LIMIT + 10) {
            state.begin_boot("t");
            state.record_quiesce(quiesce(false));
        }
        assert_eq!(state.boots.len(), HISTORY_LIMIT);
        assert_eq!(state.quiesces.len(), HISTORY_LIMIT);
        assert_eq!(
            state.quiesces.last().unwrap().id,
            (HISTORY_LIMIT + 10) as u64
        );
    }
}
