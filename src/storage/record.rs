//! The storage record, `/var/lib/dind-storage/record`: the mode and the data
//! root chosen at setup, and whether a stop has saved data. It travels with
//! `docker commit`, so every restore uses what setup chose instead of
//! deriving it again from mounts that may differ (a pod that ignores VOLUME).

use std::path::{Path, PathBuf};

/// A storage mode this binary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain files, fuse-overlayfs driver.
    FuseOverlayfs,
    /// Plain files, vfs driver.
    Vfs,
    /// An ext4 file, loop-mounted, saved whole at stop.
    Loop,
}

impl Mode {
    /// The name in DIND_STORAGE and in the record.
    pub fn name(self) -> &'static str {
        match self {
            Mode::FuseOverlayfs => "fuse-overlayfs",
            Mode::Vfs => "vfs",
            Mode::Loop => "loop",
        }
    }

    /// The inner dockerd's storage driver.
    pub fn driver(self) -> &'static str {
        match self {
            Mode::FuseOverlayfs => "fuse-overlayfs",
            Mode::Vfs => "vfs",
            Mode::Loop => "overlay2",
        }
    }

    fn from_name(name: &str) -> Option<Mode> {
        [Mode::FuseOverlayfs, Mode::Vfs, Mode::Loop]
            .into_iter()
            .find(|mode| mode.name() == name)
    }
}

/// Why overlay-sync is refused (docs/dind.md, "Storage modes").
const OVERLAY_SYNC_REMOVED: &str = "the storage mode overlay-sync was removed (its saves decided by size and mtime could keep old bytes; see docs/dind.md)";

/// What the start does about the mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeChoice {
    /// The image's mode, recorded at its setup (or implied by an older image).
    Recorded(Mode),
    /// First boot, a mode named by DIND_STORAGE.
    New(Mode),
    /// First boot, `auto`: measure whether fuse-overlayfs works here.
    Measure,
}

/// The mode of this image's data: the recorded one (`recorded`: the record's
/// mode, else an older script's `mode` file, else `loop` when an older
/// image has only `docker.img`), or on the first boot DIND_STORAGE's.
pub fn choose_mode(
    recorded: Option<&str>,
    has_legacy_image: bool,
    requested: Option<&str>,
) -> Result<ModeChoice, String> {
    let requested = requested.filter(|r| !r.is_empty());
    let recorded = recorded
        .filter(|r| !r.is_empty())
        .or(has_legacy_image.then_some("loop"));
    if let Some(name) = recorded {
        if name == "overlay-sync" {
            return Err(format!(
                "this image's inner engine data was saved in mode overlay-sync, and {OVERLAY_SYNC_REMOVED}: restore it with the dind-init that made it, or prepare the image again"
            ));
        }
        let mode = Mode::from_name(name).ok_or_else(|| {
            format!("/var/lib/dind-storage records the unknown storage mode '{name}': this image was made by a newer or damaged dind-init; prepare it again")
        })?;
        return match requested {
            Some(r) if r != "auto" && r != name => Err(format!(
                "DIND_STORAGE={r}, but this image's inner engine data is in mode '{name}': unset DIND_STORAGE or set it to {name} (a mode is chosen once, at the first boot)"
            )),
            _ => Ok(ModeChoice::Recorded(mode)),
        };
    }
    match requested.unwrap_or("auto") {
        "auto" => Ok(ModeChoice::Measure),
        "overlay-sync" => Err(format!(
            "DIND_STORAGE=overlay-sync: {OVERLAY_SYNC_REMOVED}; use loop (overlay2 on an ext4 file) or auto"
        )),
        name => Mode::from_name(name).map(ModeChoice::New).ok_or_else(|| {
            format!("unknown DIND_STORAGE '{name}': use auto, fuse-overlayfs, vfs or loop")
        }),
    }
}

/// The recorded facts of this image's storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The mode chosen at setup.
    pub mode: Mode,
    /// The inner dockerd's data root chosen at setup.
    pub data_root: PathBuf,
    /// Whether a stop found (plain modes) or saved (loop) non-empty data:
    /// from then on a restore without it is refused instead of starting an
    /// empty engine.
    pub saved: bool,
}

impl Record {
    /// The file's text.
    pub fn render(&self) -> String {
        format!(
            "mode={}\ndriver={}\ndata_root={}\nsaved={}\n",
            self.mode.name(),
            self.mode.driver(),
            self.data_root.display(),
            if self.saved { "yes" } else { "no" }
        )
    }

    /// Reads a record; an unknown key is skipped (a newer writer), a missing
    /// or bad one is an error naming it.
    pub fn parse(text: &str) -> Result<Record, String> {
        let value = |key: &str| {
            text.lines()
                .filter_map(|line| line.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .ok_or_else(|| format!("the storage record has no `{key}=` line"))
        };
        let mode_name = value("mode")?;
        let mode = match choose_mode(Some(mode_name), false, None)? {
            ModeChoice::Recorded(mode) => mode,
            _ => {
                return Err(format!(
                    "the storage record's mode '{mode_name}' is not one"
                ));
            }
        };
        let data_root = PathBuf::from(value("data_root")?);
        if !data_root.is_absolute() {
            return Err(format!(
                "the storage record's data_root '{}' is not an absolute path",
                data_root.display()
            ));
        }
        let saved = match value("saved")? {
            "yes" => true,
            "no" => false,
            other => {
                return Err(format!(
                    "the storage record's saved='{other}' is not yes or no"
                ));
            }
        };
        Ok(Record {
            mode,
            data_root,
            saved,
        })
    }
}

/// What a plain-file mode's data root holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contents {
    Missing,
    Empty,
    Present,
}

/// Whether a start may run on the recorded data: refused, with the reason,
/// when a stop saved data and it is not there now (finding 8).
pub fn check_restore(record: &Record, contents: Contents, what: &Path) -> Result<(), String> {
    if !record.saved || contents == Contents::Present {
        return Ok(());
    }
    let state = if contents == Contents::Missing {
        "is missing"
    } else {
        "is empty"
    };
    Err(format!(
        "the recorded data root of the inner engine, {}, {state}, but this image's last stop saved data there: it was on a volume or mount this container does not have (or the image was committed without it); an engine started now would be empty. Run the image with the same mounts as when it was prepared, or prepare it again",
        what.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_choice_table() {
        use ModeChoice::*;
        type Row<'a> = (
            Option<&'a str>,
            bool,
            Option<&'a str>,
            Result<ModeChoice, &'a str>,
        );
        let table: &[Row] = &[
            (None, false, None, Ok(Measure)),
            (None, false, Some(""), Ok(Measure)),
            (None, false, Some("auto"), Ok(Measure)),
            (None, false, Some("vfs"), Ok(New(Mode::Vfs))),
            (None, false, Some("loop"), Ok(New(Mode::Loop))),
            (
                None,
                false,
                Some("fuse-overlayfs"),
                Ok(New(Mode::FuseOverlayfs)),
            ),
            (None, false, Some("overlay-sync"), Err("was removed")),
            (None, false, Some("zfs"), Err("unknown DIND_STORAGE 'zfs'")),
            (Some("vfs"), false, None, Ok(Recorded(Mode::Vfs))),
            (Some("vfs"), false, Some("auto"), Ok(Recorded(Mode::Vfs))),
            (Some("vfs"), false, Some("vfs"), Ok(Recorded(Mode::Vfs))),
            (Some("vfs"), false, Some("loop"), Err("is in mode 'vfs'")),
            (None, true, None, Ok(Recorded(Mode::Loop))),
            (None, true, Some("vfs"), Err("is in mode 'loop'")),
            (
                Some("overlay-sync"),
                false,
                None,
                Err("saved in mode overlay-sync"),
            ),
            (Some("zfs"), false, None, Err("unknown storage mode 'zfs'")),
        ];
        for (recorded, legacy, requested, expected) in table {
            let got = choose_mode(*recorded, *legacy, *requested);
            match (expected, &got) {
                (Ok(want), Ok(have)) => assert_eq!(want, have),
                (Err(words), Err(line)) => {
                    assert!(line.contains(words), "{line}");
                    assert!(!line.contains('\n'));
                }
                _ => panic!("{recorded:?} {legacy} {requested:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn the_record_round_trips_and_bad_records_are_named() {
        let record = Record {
            mode: Mode::Vfs,
            data_root: "/var/lib/dind-storage/docker".into(),
            saved: true,
        };
        assert_eq!(Record::parse(&record.render()), Ok(record));
        for (text, words) in [
            ("", "no `mode=`"),
            ("mode=vfs\nsaved=yes\n", "no `data_root=`"),
            (
                "mode=vfs\ndata_root=rel\nsaved=no\n",
                "not an absolute path",
            ),
            ("mode=vfs\ndata_root=/x\nsaved=maybe\n", "saved='maybe'"),
            (
                "mode=overlay-sync\ndata_root=/x\nsaved=no\n",
                "overlay-sync",
            ),
        ] {
            let error = Record::parse(text).unwrap_err();
            assert!(error.contains(words), "{error}");
        }
    }

    #[test]
    fn a_restore_without_the_saved_data_is_refused() {
        let record = |saved| Record {
            mode: Mode::Vfs,
            data_root: "/var/lib/docker".into(),
            saved,
        };
        let root = Path::new("/var/lib/docker");
        assert!(check_restore(&record(false), Contents::Missing, root).is_ok());
        assert!(check_restore(&record(false), Contents::Empty, root).is_ok());
        assert!(check_restore(&record(true), Contents::Present, root).is_ok());
        let missing = check_restore(&record(true), Contents::Missing, root).unwrap_err();
        assert!(missing.contains("/var/lib/docker, is missing"), "{missing}");
        let empty = check_restore(&record(true), Contents::Empty, root).unwrap_err();
        assert!(empty.contains("is empty"), "{empty}");
    }
}
