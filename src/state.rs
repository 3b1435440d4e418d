//! The persistent state file: boot count, boot history, quiesce history and
//! the last script results. It lives on the container's disk, so a committed
//! image carries it, and the next boot can tell that it starts from a
//! quiesced snapshot. Always written atomically (temp file, rename): a crash
//! or a full disk leaves the previous version intact. The quiesce record is
//! also fsynced (file and directory); the boot and shutdown records are not,
//! as the shutdown flushes the whole file system right after and a boot
//! record is not worth delaying the boot for.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::procs::ProcessInfo;

/// How many boots and quiesces the history keeps; older entries are dropped.
const HISTORY_LIMIT: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersistentState {
    /// Boots of this state file so far; the current boot's number.
    pub boot_count: u64,
    /// The most recent boots, oldest first.
    pub boots: Vec<BootRecord>,
    /// The most recent quiesces, oldest first.
    pub quiesces: Vec<QuiesceRecord>,
    /// True from the end of a quiesce until the next start: the disk holds a
    /// quiesced snapshot, so the next boot is a restore.
    pub quiesced: bool,
    /// Outcome of each script in the last start/stop round.
    pub last_results: Vec<ScriptRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootRecord {
    pub boot: u64,
    /// RFC 3339 UTC time of the boot.
    pub at: String,
    /// The id of the quiesce this boot restored from, when it was a restore.
    pub restored_from_quiesce: Option<u64>,
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
    /// Processes still alive after the stops.
    pub strays: Vec<ProcessInfo>,
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
    pub restored: bool,
    pub restored_from_quiesce: Option<u64>,
}

impl PersistentState {
    /// Records a new boot and clears the quiesced mark (the starts are about
    /// to change the disk). Pure, so it is unit-tested.
    pub fn begin_boot(&mut self, now: &str) -> BootInfo {
        let restored = self.quiesced;
        let restored_from_quiesce = if restored {
            self.quiesces.last().map(|q| q.id)
        } else {
            None
        };
        self.boot_count = self.boot_count.saturating_add(1);
        self.quiesced = false;
        self.boots.push(BootRecord {
            boot: self.boot_count,
            at: now.to_string(),
            restored_from_quiesce,
        });
        trim_front(&mut self.boots);
        BootInfo {
            boot: self.boot_count,
            restored,
            restored_from_quiesce,
        }
    }

    /// Records a finished quiesce and marks the disk as quiesced.
    pub fn record_quiesce(&mut self, mut record: QuiesceRecord) -> u64 {
        record.id = self.quiesces.last().map_or(1, |q| q.id.saturating_add(1));
        record.boot = self.boot_count;
        let id = record.id;
        self.quiesces.push(record);
        trim_front(&mut self.quiesces);
        self.quiesced = true;
        id
    }
}

fn trim_front<T>(items: &mut Vec<T>) {
    let excess = items.len().saturating_sub(HISTORY_LIMIT);
    items.drain(..excess);
}

/// Reads the state file. A missing file is a first boot. An unreadable or
/// corrupt one is moved aside (never overwritten, so nothing is lost) and the
/// boot starts from a fresh state; the returned warning says where it went.
pub fn load(path: &Path) -> (PersistentState, Option<String>) {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Default::default(),
        Err(error) => {
            let warning = format!(
                "cannot read state file {}: {error}; starting from a fresh state",
                path.display()
            );
            return (PersistentState::default(), Some(warning));
        }
    };
    match serde_json::from_str(&text) {
        Ok(state) => (state, None),
        Err(error) => {
            let aside = aside_path(path);
            let moved = fs::rename(path, &aside)
                .map(|()| format!("moved it to {}", aside.display()))
                .unwrap_or_else(|e| format!("could not move it aside: {e}"));
            let warning = format!(
                "state file {} is not valid JSON ({error}); {moved}; starting from a fresh state",
                path.display()
            );
            (PersistentState::default(), Some(warning))
        }
    }
}

fn aside_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{}", unix_now()));
    path.with_file_name(name)
}

/// How durable a save must be before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory: the quiesce record, which a commit relies on.
    Fsync,
    /// Atomic (rename) but not flushed: a caller that syncs the file system
    /// right after, or a boot record that is worth no delay.
    Atomic,
}

/// Writes `state` to `path` atomically (temp file, rename), fsynced when asked.
pub fn save(path: &Path, state: &PersistentState, durability: Durability) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create state directory {}", dir.display()))?;
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let write = || -> io::Result<()> {
        let mut file = File::create(&temp)?;
        let mut json = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
        json.push(b'\n');
        file.write_all(&json)?;
        if durability == Durability::Fsync {
            file.sync_all()?;
        }
        fs::rename(&temp, path)?;
        if durability == Durability::Fsync {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|error| {
        let _ = fs::remove_file(&temp);
        anyhow::Error::new(error).context(format!("cannot write state file {}", path.display()))
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The current time as RFC 3339 UTC, e.g. `2026-11-23T01:35:10Z`.
pub fn now_rfc3339() -> String {
    rfc3339(unix_now())
}

/// Formats Unix seconds as RFC 3339 UTC (days-to-civil conversion of
/// Howard Hinnant's `civil_from_days`), without a date-time dependency.
// Every intermediate value is bounded by `u64::MAX / 86_400` days (about
// 2e14), far inside i64, and the divisors are non-zero constants.
#[allow(clippy::arithmetic_side_effects)]
pub fn rfc3339(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let second_of_day = unix_seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiesce(commit_safe: bool) -> QuiesceRecord {
        QuiesceRecord {
            id: 0,
            boot: 0,
            at: "t".into(),
            commit_safe,
            failed_stops: vec![],
            strays: vec![],
        }
    }

    #[test]
    fn first_boot_then_restore_after_quiesce() {
        let mut state = PersistentState::default();
        let first = state.begin_boot("t1");
        assert_eq!((first.boot, first.restored), (1, false));
        assert_eq!(state.record_quiesce(quiesce(true)), 1);
        assert!(state.quiesced);
        let second = state.begin_boot("t2");
        assert_eq!(
            second,
            BootInfo {
                boot: 2,
                restored: true,
                restored_from_quiesce: Some(1)
            }
        );
        assert!(!state.quiesced);
        let third = state.begin_boot("t3");
        assert_eq!((third.boot, third.restored), (3, false));
        assert_eq!(state.boots.len(), 3);
        assert_eq!(state.boots[1].restored_from_quiesce, Some(1));
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

    #[test]
    fn save_load_roundtrip_and_corrupt_file_is_kept_aside() {
        let dir = std::env::temp_dir().join(format!("dind-init-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("nested/state.json");
        let mut state = PersistentState::default();
        state.begin_boot("t");
        save(&path, &state, Durability::Fsync).unwrap();
        assert_eq!(load(&path), (state, None));

        fs::write(&path, "{ not json").unwrap();
        let (fresh, warning) = load(&path);
        assert_eq!(fresh, PersistentState::default());
        assert!(warning.unwrap().contains("not valid JSON"));
        let kept: Vec<_> = fs::read_dir(dir.join("nested"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(fs::read_to_string(kept[0].path()).unwrap(), "{ not json");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_397_710), "2026-11-23T01:35:10Z");
    }
}
