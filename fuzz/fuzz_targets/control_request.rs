//! The control socket's request parser with any bytes a client may send:
//! it must answer, never panic, and an answer must serialize.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    match dind_init::control::parse_request(line) {
        Ok(request) => {
            let again = serde_json::to_vec(&request).expect("a parsed request serializes");
            assert_eq!(
                dind_init::control::parse_request(&again).ok(),
                Some(request),
                "a request survives its own round trip"
            );
        }
        Err(why) => assert!(!why.is_empty() && !why.contains('\n')),
    }
});
