//! The storage step's parsers with any bytes: mountinfo (then the mount of
//! a path and its classification), the storage record, the save journal
//! and dumpe2fs's output must never panic, and a parsed record must render
//! back to itself.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;

use dind_init::storage::{ext4, journal, mountinfo, placement, record};

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(mounts) = mountinfo::parse(&text) {
        let backing = |minor: u32| (minor % 2 == 0).then(|| PathBuf::from("/live/docker.img"));
        for mount in &mounts {
            let path = mount.mount_point.join("x");
            let _ = placement::classify(&placement::Facts {
                mounts: &mounts,
                path: &path,
                device: (mount.major, mount.minor),
                live_file: Path::new("/live/docker.img"),
                backing_file: &backing,
            });
            let _ = mountinfo::mounts_below(&mounts, &mount.mount_point);
        }
    }
    if let Ok(parsed) = record::Record::parse(&text) {
        assert_eq!(record::Record::parse(&parsed.render()), Ok(parsed));
    }
    let _ = journal::Step::parse(&text);
    let _ = ext4::size_from_dumpe2fs(&text);
    let _ = ext4::parse_size(&text);
});
