//! The README and the guides in `docs/` are written against the facade. Their samples run as
//! this crate's doc tests (`src/lib.rs` includes each file), but a doc test could still name an
//! adapter crate directly (`graylane_http::LaneLayer`): they are this crate's dependencies, so
//! the path resolves. What a user writes is `graylane::http::LaneLayer`, so this reads the
//! included files and refuses a path into any crate the facade re-exports.

use std::path::Path;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files `src/lib.rs` includes as docs, as paths from this crate's `src/`.
fn included_docs() -> Vec<String> {
    let lib = std::fs::read_to_string(crate_dir().join("src/lib.rs")).unwrap();
    lib.split("include_str!(\"")
        .skip(1)
        .map(|rest| rest.split_once('"').expect("a closed string").0.to_owned())
        .collect()
}

/// `graylane_core`, `graylane_http`, ...: the crates behind the facade's modules.
fn facade_crates() -> Vec<String> {
    let manifest: toml::Table = std::fs::read_to_string(crate_dir().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    manifest["dependencies"]
        .as_table()
        .unwrap()
        .keys()
        .filter(|name| name.starts_with("graylane-"))
        .map(|name| name.replace('-', "_"))
        .collect()
}

#[test]
fn the_readme_and_the_guides_are_doc_tested() {
    let docs = included_docs();
    for expected in ["README.md", "docs/http-grpc.md", "docs/lane-spec.md"] {
        assert!(
            docs.iter().any(|d| d.ends_with(expected)),
            "src/lib.rs does not include {expected}: {docs:?}"
        );
    }
}

#[test]
fn the_guides_use_the_facade_paths() {
    let crates = facade_crates();
    assert!(crates.contains(&"graylane_core".to_owned()));
    let mut found = Vec::new();
    for doc in included_docs() {
        let path = crate_dir().join("src").join(&doc);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (number, line) in text.lines().enumerate() {
            for name in &crates {
                if line.contains(&format!("{name}::")) {
                    found.push(format!("{doc}:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "write `graylane::…` (the facade) instead of the adapter crates' own paths:\n{}",
        found.join("\n")
    );
}
