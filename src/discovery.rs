//! Which files of the init.d directory are scripts, and in what order they run.
//!
//! The rule is the seed's `find . -maxdepth 1 -type f -executable -name "*.sh" | sort`,
//! with these decisions where that line is silent or surprising:
//! - order is the byte order of the file name (as `LC_ALL=C sort`);
//! - a symlink counts as what it points to, so a link to an executable script
//!   is a script (init.d directories are often made of links); a dangling
//!   link is skipped with a warning;
//! - hidden files (`.name.sh`) are skipped silently, like a shell glob would:
//!   editors and package managers leave them behind;
//! - directories, devices and sockets named `*.sh` are skipped with a warning;
//! - a regular `*.sh` file without any execute bit is skipped with a warning
//!   (almost always a forgotten `chmod +x`);
//! - files not named `*.sh` (README, configuration) are ignored silently.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::text::escape_controls;

/// One init.d script that will be run with `start` and `stop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// File name, used as the log prefix and in status (lossy UTF-8, control
    /// characters escaped, for display).
    pub name: String,
    /// Full path that is executed.
    pub path: PathBuf,
}

/// What an init.d entry turned out to be, after following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    RegularFile {
        executable: bool,
    },
    Directory,
    /// Device, socket or FIFO.
    Special,
    /// A symlink whose target does not exist.
    DanglingLink,
}

/// Why an entry named like a script is not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    NotExecutable,
    Directory,
    NotARegularFile,
    DanglingLink,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NotExecutable => "not executable (chmod +x it to run it)",
            SkipReason::Directory => "a directory (init.d is not searched recursively)",
            SkipReason::NotARegularFile => "not a regular file",
            SkipReason::DanglingLink => "a symlink to nothing",
        })
    }
}

/// Decision for one directory entry: `None` when it is not named like a
/// script at all (ignored silently), else run it or skip it for a reason.
pub fn classify(name: &OsStr, kind: EntryKind) -> Option<Result<(), SkipReason>> {
    let bytes = name.as_bytes();
    if !bytes.ends_with(b".sh") || bytes.starts_with(b".") {
        return None;
    }
    Some(match kind {
        EntryKind::RegularFile { executable: true } => Ok(()),
        EntryKind::RegularFile { executable: false } => Err(SkipReason::NotExecutable),
        EntryKind::Directory => Err(SkipReason::Directory),
        EntryKind::Special => Err(SkipReason::NotARegularFile),
        EntryKind::DanglingLink => Err(SkipReason::DanglingLink),
    })
}

/// The scripts found in a directory, in run order, and the entries skipped with a reason.
#[derive(Debug, Default)]
pub struct Discovery {
    pub scripts: Vec<Script>,
    pub skipped: Vec<(String, SkipReason)>,
}

/// Reads `dir`. A missing directory gives no scripts when `must_exist` is
/// false (the default directory), and an error when it was named explicitly.
pub fn discover(dir: &Path, must_exist: bool) -> io::Result<Discovery> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound && !must_exist => {
            return Ok(Discovery::default());
        }
        Err(error) => return Err(error),
    };
    let mut found: Vec<(OsString, PathBuf)> = Vec::new();
    let mut skipped = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let path = entry.path();
        match classify(&name, entry_kind(&path)) {
            None => {}
            Some(Ok(())) => found.push((name, path)),
            Some(Err(reason)) => skipped.push((name.to_string_lossy().into_owned(), reason)),
        }
    }
    found.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    skipped.sort();
    let scripts = found
        .into_iter()
        .map(|(name, path)| Script {
            name: escape_controls(&name.to_string_lossy()).into_owned(),
            path,
        })
        .collect();
    Ok(Discovery { scripts, skipped })
}

/// Why running `path` as this user is risky, if it is: a script anyone can
/// change, or one owned by another user, runs with our (often root's) rights.
pub fn trust_warning(path: &Path, own_uid: u32) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o002 != 0 {
        return Some(
            "is world-writable: anyone can change what runs as this user (chmod o-w it)".into(),
        );
    }
    let owner = std::os::unix::fs::MetadataExt::uid(&meta);
    (owner != own_uid && owner != 0)
        .then(|| format!("is owned by uid {owner}, who can change what runs as uid {own_uid}"))
}

/// Why `path` could not be executed, in words a user can act on: a missing
/// interpreter (named, with a hint when the `#!` line ends in a CR from
/// Windows line endings) rather than "No such file or directory" for a
/// script that plainly exists.
pub fn spawn_error(path: &Path, error: &io::Error) -> String {
    let shown = escape_controls(&path.to_string_lossy()).into_owned();
    if error.kind() == io::ErrorKind::NotFound
        && path.exists()
        && let Some(interpreter) = interpreter_of(path)
    {
        let crlf = if interpreter.ends_with('\r') {
            " (the file has Windows CRLF line endings: convert it with dos2unix or sed -i 's/\\r$//')"
        } else {
            ""
        };
        return format!(
            "cannot execute {shown}: its interpreter `{}` does not exist{crlf}",
            escape_controls(&interpreter)
        );
    }
    format!("cannot execute {shown}: {error}")
}

/// The program named on a script's `#!` line.
fn interpreter_of(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = [0u8; 256];
    let read = fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head.get(..read)?.split(|&b| b == b'\n').next()?;
    let rest = line.strip_prefix(b"#!")?;
    let text = String::from_utf8_lossy(rest);
    let trimmed = text.trim_start_matches([' ', '\t']);
    let program = trimmed.split([' ', '\t']).next()?;
    (!program.is_empty()).then(|| program.to_string())
}

fn entry_kind(path: &Path) -> EntryKind {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => EntryKind::RegularFile {
            executable: meta.permissions().mode() & 0o111 != 0,
        },
        Ok(meta) if meta.is_dir() => EntryKind::Directory,
        Ok(_) => EntryKind::Special,
        Err(_) => EntryKind::DanglingLink,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const EXECUTABLE: EntryKind = EntryKind::RegularFile { executable: true };

    #[test]
    fn only_visible_sh_names_count() {
        assert_eq!(classify(OsStr::new("10-a.sh"), EXECUTABLE), Some(Ok(())));
        assert_eq!(classify(OsStr::new("README"), EXECUTABLE), None);
        assert_eq!(classify(OsStr::new("10-a.sh.bak"), EXECUTABLE), None);
        assert_eq!(classify(OsStr::new(".10-a.sh"), EXECUTABLE), None);
        assert_eq!(classify(OsStr::new("10-a.SH"), EXECUTABLE), None);
    }

    #[test]
    fn non_runnable_scripts_have_a_reason() {
        let name = OsStr::new("20-b.sh");
        let cases = [
            (
                EntryKind::RegularFile { executable: false },
                SkipReason::NotExecutable,
            ),
            (EntryKind::Directory, SkipReason::Directory),
            (EntryKind::Special, SkipReason::NotARegularFile),
            (EntryKind::DanglingLink, SkipReason::DanglingLink),
        ];
        for (kind, reason) in cases {
            assert_eq!(classify(name, kind), Some(Err(reason)));
        }
    }

    fn write_script(dir: &Path, name: &str, mode: u32) {
        let path = dir.join(name);
        fs::write(&path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn discovers_in_byte_order_and_follows_links() {
        let dir = std::env::temp_dir().join(format!("dind-init-discovery-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        for name in ["b.sh", "B.sh", "a.sh", "10-x.sh", "9-y.sh", "sub/deep.sh"] {
            write_script(&dir, name, 0o755);
        }
        write_script(&dir, "50-plain.sh", 0o644);
        write_script(&dir, ".hidden.sh", 0o755);
        fs::create_dir(dir.join("60-dir.sh")).unwrap();
        symlink(dir.join("a.sh"), dir.join("70-link.sh")).unwrap();
        symlink(dir.join("missing"), dir.join("80-dangling.sh")).unwrap();

        let found = discover(&dir, true).unwrap();
        let names: Vec<_> = found.scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["10-x.sh", "70-link.sh", "9-y.sh", "B.sh", "a.sh", "b.sh"]
        );
        assert_eq!(
            found.skipped,
            [
                ("50-plain.sh".to_string(), SkipReason::NotExecutable),
                ("60-dir.sh".to_string(), SkipReason::Directory),
                ("80-dangling.sh".to_string(), SkipReason::DanglingLink),
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_directory_is_empty_by_default_and_an_error_when_explicit() {
        let missing = Path::new("/nonexistent/dind-init/init.d");
        assert!(discover(missing, false).unwrap().scripts.is_empty());
        let error = discover(missing, true).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
