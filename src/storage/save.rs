//! The loop mode's save under the journal, and a start's recovery from an
//! interrupted one: the new copy is made beside the saved one, fsynced,
//! announced `copied`, renamed over it and the directory fsynced; the
//! journal says at every moment which copy is complete.

use std::fs;
use std::path::Path;

use super::files;
use super::journal::{self, Recovery, Step};
use super::record::Record;
use super::run::Paths;

/// The start of the error a simulated crash returns (tests only).
const INTERRUPTED: &str = "interrupted at";

/// Ends the save at `point` when `crash` says so (in production `crash`
/// ends the process there, see [`super::fault`]).
fn reach(crash: &dyn Fn(&str) -> bool, point: &str) -> Result<(), String> {
    if crash(point) {
        return Err(format!("{INTERRUPTED} {point}"));
    }
    Ok(())
}

/// Saves the live file to `docker.img`: `make_copy(live, new)` writes the
/// complete new copy (copied, checked, shrunk); a failure there removes
/// only the partial new copy and the journal, and is returned.
pub fn save_under_journal(
    paths: &Paths,
    record: &mut Record,
    make_copy: &dyn Fn(&Path, &Path) -> Result<(), String>,
    crash: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let saved = paths.saved();
    let new = paths.saved_new();
    files::write_atomic(&paths.journal(), Step::Copying.word())?;
    reach(crash, "stop.journal-copying")?;
    let _ = fs::remove_file(&new);
    if let Err(error) = make_copy(&paths.live_file(), &new) {
        // Only the partial new copy goes; the previous one is untouched.
        files::remove_durably(&new)?;
        files::remove_durably(&paths.journal())?;
        return Err(error);
    }
    reach(crash, "stop.copied")?;
    files::sync_file(&new)?;
    reach(crash, "stop.fsynced")?;
    files::write_atomic(&paths.journal(), Step::Copied.word())?;
    reach(crash, "stop.journal-copied")?;
    fs::rename(&new, &saved).map_err(|error| {
        format!(
            "renaming {} to {} failed: {error}",
            new.display(),
            saved.display()
        )
    })?;
    reach(crash, "stop.renamed")?;
    files::sync_dir(&paths.state)?;
    reach(crash, "stop.dir-fsynced")?;
    if !record.saved {
        record.saved = true;
        files::write_atomic(&paths.record(), &record.render())?;
    }
    files::remove_durably(&paths.journal())?;
    reach(crash, "stop.journal-removed")
}

/// Finishes or undoes what an interrupted save left; says which state it
/// found, and returns what it did.
pub fn recover_journal(paths: &Paths) -> Result<Recovery, String> {
    let step = files::read_optional(&paths.journal())?
        .map(|text| Step::parse(&text))
        .transpose()?;
    let recovery = journal::recover(step, paths.saved_new().exists());
    match recovery {
        Recovery::Clean => {}
        Recovery::DiscardNew => files::remove_durably(&paths.saved_new())?,
        Recovery::FinishRename => files::rename_durably(&paths.saved_new(), &paths.saved())?,
        Recovery::DropJournal => files::sync_dir(&paths.state)?,
    }
    if let Some(line) = journal::recovery_line(recovery, paths.saved().exists()) {
        println!("{line}");
    }
    files::remove_durably(&paths.journal())?;
    super::fault::point("start.journal-recovered");
    Ok(recovery)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fault::FAULT_POINTS;
    use crate::storage::record::Mode;

    fn setup(name: &str, previous: Option<&str>) -> (Paths, Record) {
        let root =
            std::env::temp_dir().join(format!("dind-storage-save-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let paths = Paths {
            state: root.join("state"),
            live: root.join("live"),
            docker: root.join("docker"),
            env_file: root.join("env"),
        };
        fs::create_dir_all(&paths.state).unwrap();
        fs::create_dir_all(&paths.live).unwrap();
        fs::write(paths.live_file(), "newest").unwrap();
        if let Some(previous) = previous {
            fs::write(paths.saved(), previous).unwrap();
        }
        let record = Record {
            mode: Mode::Loop,
            data_root: paths.docker.clone(),
            saved: previous.is_some(),
        };
        (paths, record)
    }

    fn copy(from: &Path, to: &Path) -> Result<(), String> {
        fs::copy(from, to).map(drop).map_err(|e| e.to_string())
    }

    /// For each point of the save, a crash there, then a start's recovery:
    /// the saved copy is the previous complete one or the new complete one,
    /// never partial or gone, and no journal or new copy is left.
    #[test]
    fn a_crash_at_every_step_of_a_save_leaves_a_complete_state() {
        let points: Vec<&str> = FAULT_POINTS
            .iter()
            .copied()
            .filter(|p| {
                let index = FAULT_POINTS.iter().position(|q| q == p).unwrap();
                let first = FAULT_POINTS
                    .iter()
                    .position(|q| *q == "stop.journal-copying")
                    .unwrap();
                let last = FAULT_POINTS
                    .iter()
                    .position(|q| *q == "stop.journal-removed")
                    .unwrap();
                (first..=last).contains(&index)
            })
            .collect();
        assert_eq!(points.len(), 7);
        for previous in [Some("previous"), None] {
            for (index, point) in points.iter().enumerate() {
                let (paths, mut record) =
                    setup(&format!("{index}-{}", previous.is_some()), previous);
                let crash = |p: &str| p == *point;
                let error = save_under_journal(&paths, &mut record, &copy, &crash).unwrap_err();
                assert_eq!(error, format!("{INTERRUPTED} {point}"));
                let recovery = recover_journal(&paths).unwrap();
                let saved = fs::read_to_string(paths.saved()).ok();
                // Up to the fsynced copy, the previous state; from the
                // journal's `copied` on, the new one.
                let new_expected = index
                    >= points
                        .iter()
                        .position(|p| *p == "stop.journal-copied")
                        .unwrap();
                let expected = if new_expected {
                    Some("newest")
                } else {
                    previous
                };
                assert_eq!(
                    saved.as_deref(),
                    expected,
                    "crash at {point} ({recovery:?})"
                );
                assert!(!paths.saved_new().exists(), "{point}");
                assert!(!paths.journal().exists(), "{point}");
                assert!(
                    paths.live_file().exists(),
                    "{point}: the live file is never removed by a save"
                );
                fs::remove_dir_all(paths.state.parent().unwrap()).unwrap();
            }
        }
    }

    #[test]
    fn a_failed_copy_keeps_the_previous_copy_and_leaves_nothing_behind() {
        let (paths, mut record) = setup("failed", Some("previous"));
        let failing = |_: &Path, to: &Path| {
            fs::write(to, "part").unwrap();
            Err("copying failed (disk full?)".to_string())
        };
        let error = save_under_journal(&paths, &mut record, &failing, &|_| false).unwrap_err();
        assert!(error.contains("disk full"), "{error}");
        assert_eq!(fs::read_to_string(paths.saved()).unwrap(), "previous");
        assert!(!paths.saved_new().exists());
        assert!(!paths.journal().exists());
        fs::remove_dir_all(paths.state.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_complete_save_replaces_the_copy_and_records_it() {
        let (paths, mut record) = setup("complete", None);
        save_under_journal(&paths, &mut record, &copy, &|_| false).unwrap();
        assert_eq!(fs::read_to_string(paths.saved()).unwrap(), "newest");
        assert!(record.saved);
        assert_eq!(fs::read_to_string(paths.record()).unwrap(), record.render());
        assert_eq!(recover_journal(&paths).unwrap(), Recovery::Clean);
        fs::remove_dir_all(paths.state.parent().unwrap()).unwrap();
    }
}
