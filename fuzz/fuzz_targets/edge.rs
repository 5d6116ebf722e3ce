//! The edge over arbitrary requests (path, query, cookies, headers, tokens): never a panic, a
//! lane only from a verified token or a coloring rule, and no client lane mark left behind.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use graylane_core::coloring::SimpleRequest;
use graylane_core::spec::LaneSpec;
use graylane_core::{Origin, Propagator};
use libfuzzer_sys::fuzz_target;

const SPEC: &str = "
lanes: [{name: gray}, {name: blue}]
coloring:
  rules:
    - {name: optin, lane: gray, match: {cookie: {name: lane-optin, exact: 'yes'}}}
    - {name: query, lane: blue, match: {query: {name: lane, exact: blue}}}
    - {name: header, lane: gray, match: {header: {name: x-tester, exact: 'on'}}}
";

fuzz_target!(|input: (String, Vec<(u8, String)>)| {
    let (uri, headers) = input;
    thread_local! {
        static EDGE: graylane_core::Edge = {
            let spec = LaneSpec::from_yaml_str(SPEC).unwrap();
            let key = graylane_core::trust::TokenKey::new(b"fuzzing key, sixteen bytes or more").unwrap();
            spec.edge().unwrap().with_tokens(key)
        };
    }
    const NAMES: [&str; 7] = [
        "x-gray-lane",
        "x-gray-mirror",
        "baggage",
        "cookie",
        "x-tester",
        "x-gray-lane-token",
        "other",
    ];
    let mut req = SimpleRequest::new(&uri);
    for (n, v) in &headers {
        req = req.header(NAMES[*n as usize % NAMES.len()], v);
    }
    EDGE.with(|edge| {
        let admitted = edge.admit_at(
            &mut req,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        );
        let ctx = admitted.context();
        // A lane only through a token or a rule; never a mirror copy from outside.
        assert!(ctx.lane().is_base() || matches!(ctx.origin(), Origin::Token | Origin::Colored));
        assert!(!ctx.is_mirror());
        // What is left on the request carries no lane of the client's.
        let p: &Propagator = edge.propagator();
        let mut left: HashMap<String, String> = HashMap::new();
        // Every line of each, joined, as the next hop reads them.
        for name in ["x-gray-lane", "x-gray-mirror", "baggage"] {
            let key = graylane_core::wire::Key::new(name);
            if let Some(v) = graylane_core::wire::Extractor::get_list(&req, &key) {
                left.insert(name.to_owned(), String::from_utf8_lossy(&v).into_owned());
            }
        }
        assert_eq!(p.try_extract(&left).ok().flatten(), None, "{left:?}");
    });
});
