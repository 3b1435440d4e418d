//! `/proc/self/mountinfo` parsed into typed mounts (proc(5)), and which mount
//! holds a path: decided by the path's device number and the mount points
//! that are its ancestors, never by a source name.

use std::path::{Component, Path, PathBuf};

/// One line of mountinfo: the fields the storage decisions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The device the mount's files report in `st_dev` (field 3).
    pub major: u32,
    /// See `major`.
    pub minor: u32,
    /// The directory of the source file system that is mounted (field 4):
    /// a bind mount's or a volume's own path on its file system.
    pub root: PathBuf,
    /// Where it is mounted in this mount namespace (field 5).
    pub mount_point: PathBuf,
    /// The file system type (after the `-` separator), e.g. `ext4`, `overlay`.
    pub fs_type: String,
    /// The mount source (after the type): a device such as `/dev/loop3`, or any name.
    pub source: String,
}

/// Parses the whole of mountinfo; a line that is not a mount is an error
/// naming its number, so a kernel format change is not read as "no mounts".
pub fn parse(text: &str) -> Result<Vec<Mount>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            parse_line(line).ok_or_else(|| {
                format!(
                    "line {} of /proc/self/mountinfo is not a mount: {}",
                    index.saturating_add(1),
                    crate::text::cut(&crate::text::escape_controls(line), 200)
                )
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let mut fields = line.split(' ');
    let _mount_id = fields.next()?;
    let _parent_id = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let root = unescape(fields.next()?);
    let mount_point = unescape(fields.next()?);
    let _options = fields.next()?;
    // Optional fields up to the separator.
    fields.by_ref().find(|field| *field == "-")?;
    let fs_type = fields.next()?.to_string();
    let source = String::from_utf8_lossy(unescape(fields.next()?).as_os_str().as_encoded_bytes())
        .into_owned();
    Some(Mount {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root,
        mount_point,
        fs_type,
        source,
    })
}

/// The kernel writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0usize;
    while let Some(&byte) = bytes.get(index) {
        let octal = bytes
            .get(index.saturating_add(1)..index.saturating_add(4))
            .filter(|digits| byte == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)))
            .and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok());
        match octal {
            Some(value) => {
                out.push(value);
                index = index.saturating_add(4);
            }
            None => {
                out.push(byte);
                index = index.saturating_add(1);
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Whether `ancestor` is `path` or one of its parents, component by component.
pub fn is_at_or_above(ancestor: &Path, path: &Path) -> bool {
    let mut path = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir));
    ancestor
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .all(|component| path.next() == Some(component))
}

/// The mount that holds `path`: of the mounts at `path` or above it, the
/// last one listed (a later mount hides an earlier one at the same point)
/// with the deepest mount point, whose device is `device` (the path's
/// `st_dev`). `None` when no such mount is listed.
pub fn mount_of<'a>(mounts: &'a [Mount], path: &Path, device: (u32, u32)) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|mount| is_at_or_above(&mount.mount_point, path))
        .filter(|mount| (mount.major, mount.minor) == device)
        .fold(None, |best: Option<&Mount>, mount| match best {
            Some(best)
                if best.mount_point.components().count()
                    > mount.mount_point.components().count() =>
            {
                Some(best)
            }
            _ => Some(mount),
        })
}

/// The mounts strictly below `path`: their files are not in `path`'s file system.
pub fn mounts_below<'a>(mounts: &'a [Mount], path: &Path) -> Vec<&'a Mount> {
    mounts
        .iter()
        .filter(|mount| mount.mount_point != path && is_at_or_above(path, &mount.mount_point))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
1 0 0:30 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
2 1 0:32 / /proc rw - proc proc rw
3 1 8:1 /var/lib/docker/volumes/abc/_data /var/lib/docker rw,relatime - ext4 /dev/sda1 rw
4 1 8:1 /var/lib/docker/containers/f00d/hostname /etc/hostname rw - ext4 /dev/sda1 rw
5 3 7:3 / /var/lib/docker rw,noatime - ext4 /dev/loop3 rw
6 1 8:1 /data/with\\040space /mnt/a\\040b rw - ext4 /dev/sda1 rw
";

    #[test]
    fn parses_fields_and_escapes() {
        let mounts = parse(SAMPLE).unwrap();
        assert_eq!(mounts.len(), 6);
        assert_eq!(
            mounts[2].root,
            PathBuf::from("/var/lib/docker/volumes/abc/_data")
        );
        assert_eq!((mounts[4].major, mounts[4].minor), (7, 3));
        assert_eq!(mounts[4].source, "/dev/loop3");
        assert_eq!(mounts[0].fs_type, "overlay");
        assert_eq!(mounts[5].mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(mounts[5].root, PathBuf::from("/data/with space"));
    }

    #[test]
    fn a_line_that_is_not_a_mount_is_an_error_naming_it() {
        for bad in [
            "1 0 0:30 / /",
            "1 0 x / / rw - ext4 s rw",
            "1 0 0:3 / / rw ext4 s",
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains("line 1 of /proc/self/mountinfo"), "{error}");
        }
    }

    #[test]
    fn the_mount_of_a_path_is_chosen_by_device_and_depth_not_by_name() {
        let mounts = parse(SAMPLE).unwrap();
        let table: &[(&str, (u32, u32), Option<&str>)] = &[
            // The loop mount over the volume: the later, same point.
            ("/var/lib/docker/image", (7, 3), Some("/dev/loop3")),
            // The volume under it (the device says which one holds the path).
            ("/var/lib/docker", (8, 1), Some("/dev/sda1")),
            ("/var/lib/dind-storage", (0, 30), Some("overlay")),
            // "/var/lib/dockerx" is not below "/var/lib/docker".
            ("/var/lib/dockerx", (0, 30), Some("overlay")),
            ("/var/lib/dockerx", (8, 1), None),
        ];
        for (path, device, source) in table {
            let found = mount_of(&mounts, Path::new(path), *device).map(|m| m.source.as_str());
            assert_eq!(found, *source, "{path}");
        }
    }

    #[test]
    fn mounts_below_a_path_are_listed() {
        let mounts = parse(SAMPLE).unwrap();
        let below: Vec<_> = mounts_below(&mounts, Path::new("/var/lib"))
            .iter()
            .map(|m| m.mount_point.clone())
            .collect();
        assert_eq!(below, vec![PathBuf::from("/var/lib/docker"); 2]);
        assert!(mounts_below(&mounts, Path::new("/var/lib/docker")).is_empty());
    }
}
