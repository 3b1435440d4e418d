//! The state file loader with any bytes a disk may hold: whatever parses
//! must go through a boot and a quiesce and be written back without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

use dind_init::state::{self, PreviousEnding, QuiesceRecord};

fuzz_target!(|bytes: &[u8]| {
    let Ok(mut loaded) = state::parse(bytes) else {
        return;
    };
    let boot = loaded.begin_boot("2026-11-23T00:00:00Z");
    assert!(boot.boot >= 1);
    loaded.record_quiesce(QuiesceRecord {
        id: 0,
        boot: 0,
        at: "2026-11-23T00:00:01Z".into(),
        commit_safe: true,
        failed_stops: Vec::new(),
        strays: Vec::new(),
        not_saved: None,
    });
    // A resume: the disk no longer holds the quiesced snapshot.
    loaded.record_ending(PreviousEnding::Unclean, false);
    let written = serde_json::to_vec(&loaded).expect("a state serializes");
    assert_eq!(state::parse(&written).ok(), Some(loaded));
});
