//! The loop mode's ext4 file: made, copied (used blocks only), checked,
//! grown and shrunk by e2fsprogs through [`tool`], each status checked.

use std::path::Path;

use super::tool;

/// The size in bytes `dumpe2fs -h` reports (block count × block size), or
/// an error when either is missing or zero: never a size of 0 to truncate to.
pub fn size_from_dumpe2fs(text: &str) -> Result<u64, String> {
    let field = |name: &str| -> Result<u64, String> {
        text.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim() == name)
            .and_then(|(_, value)| value.trim().parse::<u64>().ok())
            .filter(|value| *value > 0)
            .ok_or_else(|| format!("dumpe2fs -h printed no {name}"))
    };
    field("Block count")?
        .checked_mul(field("Block size")?)
        .ok_or_else(|| "dumpe2fs -h printed a size beyond 2^64 bytes".to_string())
}

/// A size with an optional k/M/G/T suffix (DIND_STORAGE_SIZE), in bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((index, c)) if c.is_ascii_alphabetic() => (text.get(..index).unwrap_or(""), Some(c)),
        _ => (text, None),
    };
    let shift = match unit.map(|c| c.to_ascii_lowercase()) {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some(_) => u32::MAX,
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && shift < 64)
        .and_then(|n| n.checked_mul(1u64.checked_shl(shift)?))
        .ok_or_else(|| format!("DIND_STORAGE_SIZE='{text}' is not a size: use a number with an optional k, M, G or T suffix, e.g. 16G"))
}

/// A new sparse ext4 file of `size` bytes. A small journal and no
/// resize_inode: their blocks are part of every saved copy.
pub fn create(path: &Path, size: u64) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    set_length(path, size, true)?;
    tool::run(
        "making the inner engine's ext4 file",
        "mkfs.ext4",
        &[
            "-q".as_ref(),
            "-m".as_ref(),
            "0".as_ref(),
            "-J".as_ref(),
            "size=16".as_ref(),
            "-O".as_ref(),
            "^resize_inode".as_ref(),
            "-E".as_ref(),
            "lazy_itable_init=1,lazy_journal_init=1".as_ref(),
            path.as_os_str(),
        ],
    )
    .map(drop)
}

/// Copies the used blocks of an unmounted (or read-only) ext4 file into a
/// new sparse file. `what` names the step for a failure.
pub fn copy(what: &str, from: &Path, to: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(to);
    tool::run(
        what,
        "e2image",
        &["-ra".as_ref(), from.as_os_str(), to.as_os_str()],
    )
    .map(drop)
}

/// e2fsck -f -p: 0 (clean) and 1 (errors fixed) pass; anything else (left
/// errors, damage it could not fix) is an error.
pub fn check(path: &Path) -> Result<(), String> {
    tool::run_accepting(
        &format!("checking the ext4 file {}", path.display()),
        "e2fsck",
        &["-f".as_ref(), "-p".as_ref(), path.as_os_str()],
        &[0, 1],
    )
    .map(drop)
}

/// Grows the file system to the file's length.
pub fn grow(path: &Path) -> Result<(), String> {
    tool::run("growing the ext4 file", "resize2fs", &[path.as_os_str()]).map(drop)
}

/// Shrinks the file system to its minimum and the file to the file system.
pub fn shrink(path: &Path) -> Result<(), String> {
    tool::run(
        "shrinking the saved copy",
        "resize2fs",
        &["-M".as_ref(), path.as_os_str()],
    )?;
    let output = tool::run(
        "reading the saved copy's size",
        "dumpe2fs",
        &["-h".as_ref(), path.as_os_str()],
    )?;
    let size = size_from_dumpe2fs(&String::from_utf8_lossy(&output.stdout))
        .map_err(|error| format!("reading the saved copy's size: {error}"))?;
    set_length(path, size, false)
}

/// Sets a file's length; `grow_only` never shortens it.
pub fn set_length(path: &Path, size: u64, grow_only: bool) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|error| format!("opening {} failed: {error}", path.display()))?;
    let current = file.metadata().map(|m| m.len()).unwrap_or(0);
    if grow_only && current >= size {
        return Ok(());
    }
    file.set_len(size)
        .map_err(|error| format!("setting the length of {} failed: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_from_dumpe2fs_is_never_zero() {
        let good = "Filesystem volume name:   <none>\nBlock count:              4096\nBlock size:               4096\n";
        assert_eq!(size_from_dumpe2fs(good), Ok(16 * 1024 * 1024));
        for bad in [
            "",
            "Block count: 4096\n",
            "Block count: 0\nBlock size: 4096\n",
            "Block count: x\nBlock size: 4096\n",
        ] {
            assert!(size_from_dumpe2fs(bad).is_err(), "{bad:?}");
        }
        assert!(
            size_from_dumpe2fs("Block count: 18446744073709551615\nBlock size: 4096\n").is_err()
        );
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("16G"), Ok(16 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "G", "0", "16Q", "-1G", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
