//! Durable file operations: write-fsync-rename-fsync(dir), so a crash leaves
//! the old or the new file whole, never a torn one.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::Path;

/// Writes `text` to `path` atomically and durably.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let dir = parent(path)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let write = || -> std::io::Result<()> {
        let mut file = File::create(temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(temporary, path)
    };
    write().map_err(|error| format!("writing {} failed: {error}", path.display()))?;
    sync_dir(dir)
}

/// Fsyncs a file's data.
pub fn sync_file(path: &Path) -> Result<(), String> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|error| format!("fsync of {} failed: {error}", path.display()))
}

/// Fsyncs a directory, so the names in it (a rename, a removal) are durable.
pub fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(|error| format!("fsync of the directory {} failed: {error}", dir.display()))
}

/// Renames `from` to `to` and makes the new name durable.
pub fn rename_durably(from: &Path, to: &Path) -> Result<(), String> {
    fs::rename(from, to).map_err(|error| {
        format!(
            "renaming {} to {} failed: {error}",
            from.display(),
            to.display()
        )
    })?;
    sync_dir(parent(to)?)
}

/// Removes `path` if it exists, and makes that durable.
pub fn remove_durably(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(format!("removing {} failed: {error}", path.display())),
    }
}

/// A file's text, `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, String> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("reading {} failed: {error}", path.display())),
    }
}

fn parent(path: &Path) -> Result<&Path, String> {
    path.parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("dind-storage-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("record");
        write_atomic(&path, "a=1\n").unwrap();
        write_atomic(&path, "b=2\n").unwrap();
        assert_eq!(read_optional(&path).unwrap().as_deref(), Some("b=2\n"));
        assert!(!dir.join("record.tmp").exists());
        remove_durably(&path).unwrap();
        remove_durably(&path).unwrap();
        assert_eq!(read_optional(&path).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
