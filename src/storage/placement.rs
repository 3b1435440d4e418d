//! Where a path's files live, as `docker commit` sees it: in the
//! container's own root file system (stored by a commit), on another mount
//! (a volume, a bind mount, a tmpfs: skipped by a commit), or on our own
//! loop-mounted live file, recognised by its loop device's backing file,
//! never by a device name.

use std::path::{Path, PathBuf};

use super::mountinfo::{self, Mount};

/// The major number of loop block devices (Documentation/admin-guide/devices.txt).
pub const LOOP_MAJOR: u32 = 7;

/// Where one path lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// In the container's root file system: a commit stores it.
    Committed,
    /// On a mount other than the root, at `mount_point` (the path or one
    /// of its parents): a commit does not store it.
    Uncommitted { mount_point: PathBuf },
    /// On the loop mount of our own live file, at `mount_point`.
    OurLoop { mount_point: PathBuf },
}

/// What the classification reads about one path, gathered by the caller.
#[derive(Clone)]
pub struct Facts<'a> {
    /// Every mount, in mountinfo's order.
    pub mounts: &'a [Mount],
    /// The path (absolute).
    pub path: &'a Path,
    /// `st_dev` of the path, or of its nearest existing parent.
    pub device: (u32, u32),
    /// Our live ext4 file.
    pub live_file: &'a Path,
    /// A loop device's backing file (`/sys/dev/block/7:N/loop/backing_file`), by minor number.
    pub backing_file: &'a dyn Fn(u32) -> Option<PathBuf>,
}

/// Classifies `facts.path`. A device with no listed mount (a file system
/// whose `st_dev` differs from mountinfo's, such as a btrfs subvolume)
/// falls back to the deepest mount at or above the path.
pub fn classify(facts: &Facts) -> Placement {
    let mount = mountinfo::mount_of(facts.mounts, facts.path, facts.device).or_else(|| {
        facts
            .mounts
            .iter()
            .filter(|m| mountinfo::is_at_or_above(&m.mount_point, facts.path))
            .max_by_key(|m| m.mount_point.components().count())
    });
    let Some(mount) = mount else {
        return Placement::Committed;
    };
    if mount.mount_point == Path::new("/") {
        return Placement::Committed;
    }
    if is_our_loop(mount, facts) {
        return Placement::OurLoop {
            mount_point: mount.mount_point.clone(),
        };
    }
    Placement::Uncommitted {
        mount_point: mount.mount_point.clone(),
    }
}

/// Whether `mount` is a loop device mounted whole (its root `/`): what a
/// storage step mounts. A volume or bind mount that only lives on an L1's
/// loop-backed file system is a directory of it (finding 1 of issue 25).
pub fn is_whole_loop_mount(mount: &Mount) -> bool {
    mount.major == LOOP_MAJOR && mount.root == Path::new("/")
}

fn is_our_loop(mount: &Mount, facts: &Facts) -> bool {
    mount.major == LOOP_MAJOR
        && (facts.backing_file)(mount.minor).is_some_and(|file| file == facts.live_file)
}

/// Whether `mount_point` holds our live file's loop mount now.
pub fn our_loop_mounted(mounts: &[Mount], mount_point: &Path, facts: &Facts) -> bool {
    mounts
        .iter()
        .rfind(|m| m.mount_point == mount_point)
        .is_some_and(|m| is_our_loop(m, facts))
}

/// Why the plain-file modes' data root is where it is, for the start's log
/// line: `default_root` (/var/lib/docker) is where `default_placement` says.
pub fn data_root_reason(
    data_root: &Path,
    default_root: &Path,
    default_placement: &Placement,
) -> String {
    match (data_root == default_root, default_placement) {
        (true, Placement::Uncommitted { mount_point }) => format!(
            "on the volume or bind mount {}, which docker commit skips",
            mount_point.display()
        ),
        (true, _) => "in the container's own file system, so in every commit".to_string(),
        (false, Placement::Uncommitted { mount_point }) => format!(
            "not {}: it is on the volume or bind mount {}, which docker commit skips",
            default_root.display(),
            mount_point.display()
        ),
        (false, _) => format!(
            "not {}: that was on a volume or bind mount at setup (here it is not)",
            default_root.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(lines: &str) -> Vec<Mount> {
        mountinfo::parse(lines).unwrap()
    }

    const ROOT: &str = "1 0 0:30 / / rw - overlay overlay rw\n";
    const LIVE: &str = "/var/lib/dind-storage-live/docker.img";

    fn classify_with(
        table: &str,
        path: &str,
        device: (u32, u32),
        backing: &dyn Fn(u32) -> Option<PathBuf>,
    ) -> Placement {
        let mounts = mounts(table);
        classify(&Facts {
            mounts: &mounts,
            path: Path::new(path),
            device,
            live_file: Path::new(LIVE),
            backing_file: backing,
        })
    }

    fn uncommitted(point: &str) -> Placement {
        Placement::Uncommitted {
            mount_point: point.into(),
        }
    }

    type Backing<'a> = &'a dyn Fn(u32) -> Option<PathBuf>;

    #[test]
    fn classification_by_mounts_devices_and_backing_files() {
        let volume =
            "3 1 8:1 /var/lib/docker/volumes/v/_data /var/lib/docker rw - ext4 /dev/sda1 rw\n";
        let loop3 = "5 3 7:3 / /var/lib/docker rw - ext4 /dev/loop3 rw\n";
        let ours = |minor: u32| (minor == 3).then(|| PathBuf::from(LIVE));
        // Finding 1: the L1 keeps its volumes on a loop device of its own.
        let foreign = |minor: u32| (minor == 3).then(|| PathBuf::from("/srv/l1-volumes.img"));
        let none = |_: u32| None;
        type Row<'a> = (String, &'a str, (u32, u32), Backing<'a>, Placement);
        let table: Vec<Row> = vec![
            (
                ROOT.into(),
                "/var/lib/docker",
                (0, 30),
                &none,
                Placement::Committed,
            ),
            (
                format!("{ROOT}{volume}"),
                "/var/lib/docker",
                (8, 1),
                &none,
                uncommitted("/var/lib/docker"),
            ),
            (
                format!("{ROOT}{volume}"),
                "/var/lib/docker/x/y",
                (8, 1),
                &none,
                uncommitted("/var/lib/docker"),
            ),
            (
                format!("{ROOT}{volume}"),
                "/var/lib/dind-storage",
                (0, 30),
                &none,
                Placement::Committed,
            ),
            (
                format!("{ROOT}{volume}{loop3}"),
                "/var/lib/docker",
                (7, 3),
                &ours,
                Placement::OurLoop {
                    mount_point: "/var/lib/docker".into(),
                },
            ),
            // Another loop-backed mount is not ours, whatever its name.
            (
                format!("{ROOT}{loop3}"),
                "/var/lib/docker",
                (7, 3),
                &foreign,
                uncommitted("/var/lib/docker"),
            ),
            (
                format!("{ROOT}{loop3}"),
                "/var/lib/docker",
                (7, 3),
                &none,
                uncommitted("/var/lib/docker"),
            ),
            // A bind mount above the path.
            (
                format!("{ROOT}2 1 0:40 / /var/lib rw - tmpfs tmpfs rw\n"),
                "/var/lib/dind-storage",
                (0, 40),
                &none,
                uncommitted("/var/lib"),
            ),
            // st_dev not listed (btrfs subvolume): the deepest mount above.
            (
                format!("{ROOT}{volume}"),
                "/var/lib/docker",
                (0, 99),
                &none,
                uncommitted("/var/lib/docker"),
            ),
            (
                ROOT.into(),
                "/var/lib/docker",
                (0, 99),
                &none,
                Placement::Committed,
            ),
        ];
        for (lines, path, device, backing, expected) in table {
            assert_eq!(
                classify_with(&lines, path, device, backing),
                expected,
                "{path} in\n{lines}"
            );
        }
    }

    #[test]
    fn the_data_root_reason_names_the_mount() {
        let docker = Path::new("/var/lib/docker");
        let state = Path::new("/var/lib/dind-storage/docker");
        let volume = uncommitted("/var/lib/docker");
        assert_eq!(
            data_root_reason(state, docker, &volume),
            "not /var/lib/docker: it is on the volume or bind mount /var/lib/docker, which docker commit skips"
        );
        assert!(data_root_reason(state, docker, &Placement::Committed).contains("at setup"));
        assert!(
            data_root_reason(docker, docker, &Placement::Committed).contains("in every commit")
        );
        assert!(data_root_reason(docker, docker, &volume).contains("which docker commit skips"));
    }

    #[test]
    fn a_volume_on_a_loop_backed_l1_is_not_a_loop_mount() {
        let table = mounts(
            "3 1 7:0 /docker/volumes/v/_data /var/lib/docker rw - ext4 /dev/loop0 rw\n\
             5 1 7:3 / /mnt/img rw - ext4 /dev/loop3 rw\n\
             6 1 8:1 / /srv rw - ext4 /dev/sda1 rw\n",
        );
        let whole: Vec<bool> = table.iter().map(is_whole_loop_mount).collect();
        assert_eq!(whole, [false, true, false]);
    }
}
