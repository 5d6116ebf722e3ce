//! The ledger's own rules, driven directly: when noise copies go out.

use bytes::Bytes;
use graylane_core::Lane;
use http::{HeaderMap, Method, StatusCode};

use super::{Captured, CompareConfig, Ledger};

fn quote(id: u32) -> Captured {
    Captured::new(
        StatusCode::OK,
        &HeaderMap::new(),
        &[],
        Bytes::from(format!(r#"{{"shipping":"standard","quote_id":"q{id}"}}"#)),
    )
}

/// Noise copies among `n` compared requests, each answered like production but for the
/// quote id (and, with `new_field` at request `i`, a field never seen before).
fn noise_copies(ledger: &Ledger, n: u32, new_field: Option<u32>) -> u32 {
    let mut copies = 0;
    for i in 0..n {
        let (route, noise) = ledger.begin(&Method::POST, "/quote");
        let noise = noise.map(|_| {
            copies += 1;
            match new_field {
                Some(at) if at == i => Captured::new(
                    StatusCode::OK,
                    &HeaderMap::new(),
                    &[],
                    Bytes::from(format!(
                        r#"{{"shipping":"standard","quote_id":"x{i}","at":{i}}}"#
                    )),
                ),
                _ => quote(i + 1_000_000),
            }
        });
        ledger.record(&route, None, &quote(i), &quote(i), noise.as_ref());
    }
    copies
}

#[test]
fn noise_copies_thin_out_once_they_teach_nothing_and_come_back_when_one_does() {
    let lane = Lane::from_static("baseline");
    let ledger = Ledger::new(CompareConfig::new().noise(lane, 100.0, 0).noise_settle(20));
    // Every request gets one until 20 in a row taught nothing (the first taught `quote_id`).
    assert_eq!(noise_copies(&ledger, 21, None), 21);
    let report = ledger.report();
    let route = report.route("POST /quote").unwrap();
    assert!(route.noise_settled);
    assert_eq!(route.noise, ["quote_id"]);
    // Then a tenth of them.
    let settled = noise_copies(&ledger, 2_000, None);
    assert!((120..=280).contains(&settled), "{settled} of 2000 at 10%");
    // A noise copy that teaches a field: every request again, until it settles once more.
    let mut back = 0;
    while noise_copies(&ledger, 1, Some(0)) == 0 {
        back += 1;
        assert!(back < 1_000, "no noise copy in 1000 requests at 10%");
    }
    assert!(!ledger.report().route("POST /quote").unwrap().noise_settled);
    assert_eq!(noise_copies(&ledger, 20, None), 20);
}

#[test]
fn a_zero_settle_keeps_the_share() {
    let lane = Lane::from_static("baseline");
    let ledger = Ledger::new(CompareConfig::new().noise(lane, 100.0, 0).noise_settle(0));
    assert_eq!(noise_copies(&ledger, 500, None), 500);
    assert!(!ledger.report().route("POST /quote").unwrap().noise_settled);
}
