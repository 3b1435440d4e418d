//! The persistent state file: boot count, boot history, quiesce history and
//! the last script results. It lives on the container's disk, so a committed
//! image carries it, and the next boot can tell that it starts from a
//! quiesced snapshot. Always written atomically (temp file, rename): a crash
//! or a full disk leaves the previous version intact. The quiesce record is
//! also fsynced (file and directory); the boot and shutdown records are not,
//! as the shutdown flushes the whole file system right after and a boot
//! record is not worth delaying the boot for.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::procs::ProcessInfo;
use crate::text::cut;

/// How many boots and quiesces the history keeps; older entries are dropped.
const HISTORY_LIMIT: usize = 50;
/// Strays kept in one quiesce record; the rest are counted in a last entry.
pub const MAX_STRAYS_KEPT: usize = 20;
/// Bytes of a stray's command line kept in a record.
pub const MAX_COMMAND_KEPT: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersistentState {
    /// Boots of this state file so far; the current boot's number.
    pub boot_count: u64,
    /// The most recent boots, oldest first.
    pub boots: Vec<BootRecord>,
    /// The most recent quiesces, oldest first.
    pub quiesces: Vec<QuiesceRecord>,
    /// True from the end of a quiesce until the next start (a resume or the
    /// next boot): the disk holds a quiesced snapshot.
    pub quiesced: bool,
    /// True once a shutdown ran every stop; false from the next boot on.
    /// With `quiesced`, what the next boot tells as the previous ending.
    pub shut_down_cleanly: bool,
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
    /// It was quiesced (every stop ran, commit-safe or not) and not resumed.
    Quiesced,
    /// A shutdown ran every stop.
    Shutdown,
    /// Neither: a crash, `docker kill`, or a `docker commit` taken while it ran.
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

    /// A resume runs the starts again: the disk no longer holds the quiesced snapshot.
    pub fn begin_resume(&mut self) {
        self.quiesced = false;
    }

    /// Records a finished quiesce and marks the disk as quiesced. Its strays
    /// are bounded in number and length, so the file and every status answer
    /// stay small whatever the strays' command lines.
    pub fn record_quiesce(&mut self, mut record: QuiesceRecord) -> u64 {
        record.strays = bounded_strays(&record.strays);
        record.id = self.quiesces.last().map_or(1, |q| q.id.saturating_add(1));
        record.boot = self.boot_count;
        let id = record.id;
        self.quiesces.push(record);
        trim_front(&mut self.quiesces);
        self.quiesced = true;
        id
    }
}

/// At most [`MAX_STRAYS_KEPT`] strays, each command line cut to
/// [`MAX_COMMAND_KEPT`] bytes; a last entry (pid 0) counts the ones left out.
pub fn bounded_strays(strays: &[ProcessInfo]) -> Vec<ProcessInfo> {
    let mut kept: Vec<ProcessInfo> = strays
        .iter()
        .take(MAX_STRAYS_KEPT)
        .map(|p| ProcessInfo {
            command: cut(&p.command, MAX_COMMAND_KEPT),
            ..p.clone()
        })
        .collect();
    let left_out = strays.len().saturating_sub(MAX_STRAYS_KEPT);
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

/// Reads the state file. A missing file is a first boot. An unreadable or
/// corrupt one is moved aside (never overwritten, so nothing is lost) and the
/// boot starts from a fresh state; the returned warning says where it went.
pub fn load(path: &Path) -> (PersistentState, Option<String>) {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Default::default(),
        Err(error) => {
            let warning = format!(
                "cannot read state file {}: {error}; starting from a fresh state",
                path.display()
            );
            return (PersistentState::default(), Some(warning));
        }
    };
    match parse(&bytes) {
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

/// The state file's contents, as read. Pure, so it is fuzzed (`fuzz/`).
pub fn parse(bytes: &[u8]) -> serde_json::Result<PersistentState> {
    serde_json::from_slice(bytes)
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
    if !dir.is_dir() {
        // Its mode is the state's own, whatever the umask.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)))
            .with_context(|| format!("cannot create state directory {}", dir.display()))?;
    }
    let (temp, mut file) =
        create_temp(path).with_context(|| format!("cannot write state file {}", path.display()))?;
    let write = |file: &mut File| -> io::Result<()> {
        // The mode is set, not left to the umask.
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
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
    write(&mut file).map_err(|error| {
        let _ = fs::remove_file(&temp);
        anyhow::Error::new(error).context(format!("cannot write state file {}", path.display()))
    })
}

/// Mode of the state directory and file, whatever the umask.
const DIR_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;

/// A new temp file beside `path`, created exclusively and without following
/// a link (`O_EXCL|O_NOFOLLOW`): whatever is already at a name, a link to
/// somewhere else included, is never written through; the next name is tried.
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let mut last_error = io::Error::other("no temp name tried");
    for _ in 0..16 {
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".tmp-{}-{n}-{}", std::process::id(), unix_nanos()));
        let temp = path.with_file_name(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(FILE_MODE)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = error,
            Err(error) => return Err(error),
        }
    }
    Err(last_error)
}

fn unix_nanos() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos())
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
        let after_quiesce = previous_of_next_boot(&state);
        assert_eq!(after_quiesce.previous, PreviousEnding::Quiesced);
        assert_eq!(after_quiesce.restored_from_quiesce, Some(1));
        assert!(after_quiesce.restored);
        // Resumed after the quiesce: the disk changed, no longer that snapshot.
        state.begin_resume();
        assert_eq!(
            previous_of_next_boot(&state).previous,
            PreviousEnding::Unclean
        );
        // A clean shutdown: clean, but restored from no quiesce.
        state.shut_down_cleanly = true;
        let after_shutdown = previous_of_next_boot(&state);
        assert_eq!(after_shutdown.previous, PreviousEnding::Shutdown);
        assert_eq!(after_shutdown.restored_from_quiesce, None);
        assert!(after_shutdown.restored);
        // Quiesced, then stopped: still the quiesced snapshot.
        state.record_quiesce(quiesce(true));
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
    fn a_state_file_that_is_not_utf8_is_kept_aside() {
        let dir = std::env::temp_dir().join(format!("dind-init-state-bin-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        fs::write(&path, b"\xff\xfe{\"boot_count\": 3}").unwrap();
        let (fresh, warning) = load(&path);
        assert_eq!(fresh, PersistentState::default());
        assert!(warning.unwrap().contains("moved it to"));
        let kept: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            fs::read(kept[0].path()).unwrap(),
            b"\xff\xfe{\"boot_count\": 3}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_at_the_state_path_is_replaced_never_written_through() {
        let dir = std::env::temp_dir().join(format!("dind-init-state-link-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, "precious").unwrap();
        let path = dir.join("state.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        save(&path, &PersistentState::default(), Durability::Fsync).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(
            !fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            FILE_MODE
        );
        let names: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temp file left behind");
        fs::remove_dir_all(&dir).unwrap();
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
