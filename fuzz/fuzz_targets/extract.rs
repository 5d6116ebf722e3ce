//! `Propagator::extract` over arbitrary header sets (several lines per name included): never a
//! panic, only configured lanes, and what it reads survives its own inject.
#![no_main]

use std::collections::HashMap;

use graylane_core::wire::{Extractor, Key};
use graylane_core::{Lane, LaneSet, Propagator};
use libfuzzer_sys::fuzz_target;

/// Headers as a proxy hands them over: names lower-cased, repeated lines kept in order.
#[derive(Default)]
struct Lines(Vec<(String, Vec<u8>)>);

impl Extractor for Lines {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    }

    fn get_list(&self, key: &Key) -> Option<std::borrow::Cow<'_, [u8]>> {
        graylane_core::wire::join_values(
            self.0
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(key.as_str()))
                .map(|(_, v)| v.as_slice()),
        )
    }
}

fuzz_target!(|input: Vec<(u8, Vec<u8>)>| {
    let gray = Lane::from_static("gray");
    let p = Propagator::new(LaneSet::new([gray, Lane::from_static("blue")]));
    // The names that matter, so that the fuzzer spends its time on values.
    const NAMES: [&str; 5] = [
        "x-gray-lane",
        "x-gray-mirror",
        "baggage",
        "traceparent",
        "other",
    ];
    let lines = Lines(
        input
            .into_iter()
            .map(|(n, v)| (NAMES[n as usize % NAMES.len()].to_owned(), v))
            .collect(),
    );
    let ctx = p.extract(&lines);
    assert!(ctx.lane().is_base() || p.lanes().contains(ctx.lane()));
    // Written and read back, the context is the same.
    let mut out: HashMap<String, String> = HashMap::new();
    p.inject(&ctx, &mut out);
    let mut back = Lines::default();
    for (k, v) in out {
        back.0.push((k, v.into_bytes()));
    }
    let again = p.extract(&back);
    assert_eq!(
        (again.lane(), again.is_mirror()),
        (ctx.lane(), ctx.is_mirror())
    );
    // Stripped, nothing of a lane is left.
    let mut stripped: HashMap<String, String> = HashMap::new();
    for (k, v) in &lines.0 {
        if let Ok(v) = std::str::from_utf8(v) {
            stripped.insert(k.clone(), v.to_owned());
        }
    }
    p.strip(&mut stripped);
    assert_eq!(
        p.try_extract(&stripped).ok().flatten().map(|c| c.lane()),
        None
    );
});
