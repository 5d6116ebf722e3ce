//! Token verification over arbitrary bytes: never a panic, and a token that verifies is
//! exactly what `mint` writes for its lane and expiry (one token, one spelling).
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graylane_core::trust::TokenKey;
use graylane_core::{Lane, LaneSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, Vec<u8>)| {
    let (minted, bytes) = input;
    let key = TokenKey::new(b"fuzzing key, sixteen bytes or more").unwrap();
    let gray = Lane::from_static("gray");
    let lanes = LaneSet::new([gray]);
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    // Half the inputs start from a genuine token, so that the fuzzer works near valid ones.
    let token = if minted {
        let mut t = key.mint(gray, now + Duration::from_secs(60)).into_bytes();
        for (i, b) in bytes.iter().enumerate().take(8) {
            let at = (*b as usize * 7 + i) % (t.len() + 1);
            if i % 2 == 0 && at < t.len() {
                t[at] = bytes.get(i + 1).copied().unwrap_or(b'0');
            } else {
                t.insert(at, *b);
            }
        }
        t
    } else {
        bytes
    };
    if let Ok(lane) = key.verify(&token, &lanes, now) {
        let text = std::str::from_utf8(&token).unwrap();
        let expiry: u64 = text.split('.').nth(2).unwrap().parse().unwrap();
        let again = key.mint(lane, SystemTime::UNIX_EPOCH + Duration::from_secs(expiry));
        assert_eq!(
            again.as_bytes(),
            token.as_slice(),
            "a second spelling verified"
        );
    }
});
