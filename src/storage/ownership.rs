//! Who owns the live ext4 file: the container that made it writes its
//! identity into `/var/lib/dind-storage-live/owner` (under the volume's
//! lock file, before the file is mounted) and removes it only after the
//! file is saved and unmounted. A start that finds another container's
//! owner record refuses the file, so two containers on one volume never
//! mount one ext4 read-write, and a killed container's unsaved data is not
//! taken for another's newest state.

use std::path::Path;

use super::mountinfo::Mount;

/// This container's identity: the directory Docker (or the kubelet) keeps
/// its `/etc/hostname` in, which names the container; else the hostname.
pub fn identity(mounts: &[Mount], hostname: &str) -> String {
    mounts
        .iter()
        .rfind(|m| m.mount_point == Path::new("/etc/hostname"))
        .and_then(|m| m.root.parent())
        .filter(|dir| dir != &Path::new("/") && !dir.as_os_str().is_empty())
        .map(|dir| dir.display().to_string())
        .unwrap_or_else(|| format!("hostname {}", hostname.trim()))
}

/// What a start may do with the live file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// No live file: make one, ours.
    Free,
    /// Ours (a restart of this container after a stop that did not finish).
    Ours,
    /// Another container's: refused with this line.
    Foreign(String),
}

/// Decides from whether the live file exists and what the owner record holds.
pub fn decide(live_exists: bool, owner: Option<&str>, ours: &str) -> Ownership {
    let owner = owner.map(str::trim).filter(|o| !o.is_empty());
    match (live_exists, owner) {
        (false, _) => Ownership::Free,
        (true, Some(owner)) if owner == ours => Ownership::Ours,
        (true, Some(owner)) => Ownership::Foreign(format!(
            "the live file /var/lib/dind-storage-live/docker.img is not ours: it belongs to the container of {} (it may still run on it, or was killed before its stop saved it); give this container a volume of its own, or remove the file once that container is gone to start from this image's saved copy",
            crate::text::cut(&crate::text::escape_controls(owner), 200)
        )),
        // A live file without a record: an older script's, or a start killed
        // between the two writes. Its maker cannot be known.
        (true, None) => Ownership::Foreign(
            "the live file /var/lib/dind-storage-live/docker.img is not ours: it has no owner record (an older dind-init, or another container); give this container a volume of its own, or remove the file to start from this image's saved copy".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mountinfo;

    #[test]
    fn the_identity_is_the_container_directory_of_etc_hostname() {
        let mounts = mountinfo::parse(
            "1 0 0:30 / / rw - overlay overlay rw\n\
             4 1 8:1 /var/lib/docker/containers/f00d/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n",
        )
        .unwrap();
        assert_eq!(identity(&mounts, "f00d"), "/var/lib/docker/containers/f00d");
        assert_eq!(identity(&mounts[..1], "f00d\n"), "hostname f00d");
    }

    #[test]
    fn ownership_table() {
        let ours = "/var/lib/docker/containers/a";
        assert_eq!(decide(false, None, ours), Ownership::Free);
        assert_eq!(decide(false, Some("/other"), ours), Ownership::Free);
        assert_eq!(
            decide(true, Some(&format!("{ours}\n")), ours),
            Ownership::Ours
        );
        for owner in [Some("/var/lib/docker/containers/b"), None, Some(" ")] {
            match decide(true, owner, ours) {
                Ownership::Foreign(line) => {
                    assert!(line.contains("is not ours"), "{line}");
                    assert!(!line.contains('\n'));
                }
                other => panic!("{owner:?}: {other:?}"),
            }
        }
    }
}
