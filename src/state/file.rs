//! Reading and writing the state file. Always written atomically: a temp
//! file created exclusively and never through a link, then renamed, with
//! modes that do not depend on the umask; a crash or a full disk leaves the
//! previous version intact. The quiesce record is also fsynced (file and
//! directory). A file that cannot be read or parsed is moved aside, never
//! overwritten.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use super::PersistentState;
use super::clock::{unix_nanos, unix_now};

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
/// Every record is bounded like a new one ([`PersistentState::bounded`]).
/// The whole file must be UTF-8: serde skips the value of a field it does
/// not know without checking its bytes, and a file with a bad byte there
/// would be taken as valid and then overwritten, losing what it held.
pub fn parse(bytes: &[u8]) -> serde_json::Result<PersistentState> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        <serde_json::Error as serde::de::Error>::custom(format!("not UTF-8: {error}"))
    })?;
    serde_json::from_str(text).map(PersistentState::bounded)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_bad_byte_in_a_field_it_does_not_know_is_no_valid_state() {
        assert!(parse(b"{\"boot_count\": 3, \"from_a_newer_version\": \"\xff\"}").is_err());
        assert_eq!(
            parse(b"{\"boot_count\": 3, \"from_a_newer_version\": \"ok\"}")
                .unwrap()
                .boot_count,
            3
        );
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
}
