//! Every lane spec the repository ships (the examples and the reference documents) still loads.
//!
//! The spec's `version: 1` is a promise: a document that loaded once keeps loading. These files
//! are the documents users copy, so each one is loaded here, written back out and loaded again
//! (nothing is lost or renamed on the way), and compiled into the pieces that run.

use std::path::{Path, PathBuf};

use graylane_core::spec::LaneSpec;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `examples/*/graylane.{yaml,toml}`, `examples/mesh/*.yaml` and `docs/examples/*.{yaml,toml}`.
fn shipped_specs() -> Vec<PathBuf> {
    let root = repository();
    let is_spec = |p: &Path| p.extension().is_some_and(|e| e == "yaml" || e == "toml");
    let mut found = Vec::new();
    for example in std::fs::read_dir(root.join("examples")).unwrap() {
        let dir = example.unwrap().path();
        for name in ["graylane.yaml", "graylane.toml"] {
            if dir.join(name).is_file() {
                found.push(dir.join(name));
            }
        }
    }
    for dir in [root.join("examples/mesh"), root.join("docs/examples")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && is_spec(&path) && !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_shipped_spec_loads_round_trips_and_builds() {
    let specs = shipped_specs();
    assert!(
        specs.len() >= 4,
        "expected the example and reference specs, found {specs:?}"
    );
    for path in specs {
        let mut spec = LaneSpec::from_path(&path).unwrap_or_else(|e| panic!("{e}"));

        let written = serde_yaml_ng::to_string(&spec).unwrap();
        let again = LaneSpec::from_yaml_str(&written)
            .unwrap_or_else(|e| panic!("{} written back: {e}\n{written}", path.display()));
        assert_eq!(again, spec, "{} changed on a round trip", path.display());

        // Reference documents read the token key from the environment only; give them one.
        if let Some(token) = &mut spec.trust.token {
            token.key_env = "GRAYLANE_TEST_UNSET_KEY_VAR".into();
            token
                .key
                .get_or_insert_with(|| "a test key, long enough".into());
        }
        spec.compile()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
