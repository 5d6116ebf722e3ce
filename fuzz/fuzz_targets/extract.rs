//! `Propagator::extract` over arbitrary header sets (several lines per name included): never a
//! panic, only configured lanes, and what it reads survives its own inject.
#![no_main]

use std::collections::HashMap;

use graylane_core::wire::{Extractor, Injector, Key};
use graylane_core::{Lane, LaneSet, Propagator};
use libfuzzer_sys::fuzz_target;

/// Headers as a proxy hands them over: names lower-cased, repeated lines kept in order.
#[derive(Clone, Default)]
struct Lines(Vec<(String, Vec<u8>)>);

impl Injector for Lines {
    fn set(&mut self, key: &'static str, value: std::borrow::Cow<'static, str>) {
        self.remove(key);
        self.0.push((key.to_owned(), value.as_bytes().to_vec()));
    }

    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }
}

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
    // Stripped (every line of it), nothing of a lane is left.
    let mut stripped = lines.clone();
    p.strip(&mut stripped);
    assert_eq!(
        p.try_extract(&stripped).ok().flatten().map(|c| c.lane()),
        None
    );
});
