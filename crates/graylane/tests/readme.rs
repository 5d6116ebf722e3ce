//! README.md's "Installing" block is what a user pastes into their `Cargo.toml`, so it must say
//! what graylane is built with: each library's version requirement is the one in the root
//! `[workspace.dependencies]`, the `graylane` requirement accepts this crate's version, each
//! feature it turns on exists, and the text names the workspace's `rust-version`. The
//! "Features" section names every feature of this crate, and no other.

use std::collections::BTreeSet;
use std::path::Path;

/// The libraries whose versions the block must give: the ones graylane's modules take or
/// return types of.
const INTEGRATED: [&str; 9] = [
    "axum",
    "tonic",
    "reqwest",
    "rdkafka",
    "redis",
    "sqlx",
    "opentelemetry",
    "opentelemetry_sdk",
    "tracing-opentelemetry",
];

/// A file of the repository, by its path from the root.
fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn manifest(path: &str) -> toml::Table {
    read(path)
        .parse()
        .unwrap_or_else(|e| panic!("{path} is not TOML: {e}"))
}

/// The text of the README's section `heading`, up to the next `## ` heading.
fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let (_, rest) = readme
        .split_once(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no section \"{heading}\""));
    rest.split("\n## ").next().unwrap_or(rest)
}

/// The section's ```toml block, parsed.
fn toml_block(section: &str) -> toml::Table {
    let (_, rest) = section
        .split_once("```toml\n")
        .expect("the Installing section has a ```toml block");
    let (block, _) = rest.split_once("```").expect("the block is closed");
    block
        .parse()
        .unwrap_or_else(|e| panic!("the Installing block is not TOML: {e}\n{block}"))
}

/// A dependency's version requirement: `"1.0"`, or `{ version = "1.0", ... }`.
fn requirement(dependency: &toml::Value) -> Option<&str> {
    match dependency {
        toml::Value::String(version) => Some(version),
        toml::Value::Table(table) => table.get("version")?.as_str(),
        _ => None,
    }
}

/// Whether `version` meets the caret requirement `req` (Cargo's default): the components up to
/// the first non-zero one are equal, and the version is not below the requirement.
fn caret_accepts(req: &str, version: &str) -> bool {
    let numbers = |s: &str| -> Vec<u64> {
        s.split('.')
            .map(|c| {
                c.parse()
                    .unwrap_or_else(|_| panic!("not a plain version: {s}"))
            })
            .collect()
    };
    let (req, version) = (numbers(req), numbers(version));
    if req.len() > version.len() {
        return false;
    }
    let fixed = req.iter().position(|&c| c != 0).unwrap_or(req.len() - 1);
    req[..=fixed] == version[..=fixed] && version[..req.len()] >= req[..]
}

/// This crate's features, `default` aside.
fn facade_features() -> BTreeSet<String> {
    let ours = manifest("crates/graylane/Cargo.toml");
    ours["features"]
        .as_table()
        .expect("crates/graylane/Cargo.toml has [features]")
        .keys()
        .filter(|name| *name != "default")
        .cloned()
        .collect()
}

#[test]
fn installing_gives_the_workspace_versions() {
    let readme = read("README.md");
    let installing = section(&readme, "Installing");
    let block = toml_block(installing);
    let listed = block["dependencies"]
        .as_table()
        .expect("the block is a [dependencies] table");
    let root = manifest("Cargo.toml");
    let workspace = root["workspace"]["dependencies"].as_table().unwrap();
    let package = &root["workspace"]["package"];

    let rust = package["rust-version"].as_str().unwrap();
    assert!(
        installing.contains(&format!("Rust {rust}")),
        "the Installing section should say graylane builds with Rust {rust}"
    );
    for name in INTEGRATED {
        assert!(
            listed.contains_key(name),
            "the Installing block lacks `{name}`"
        );
    }
    for (name, dependency) in listed {
        let given = requirement(dependency)
            .unwrap_or_else(|| panic!("the Installing block's `{name}` has no version"));
        if name == "graylane" {
            let version = package["version"].as_str().unwrap();
            assert!(
                caret_accepts(given, version),
                "the Installing block asks for graylane {given:?}, which {version} does not meet"
            );
            continue;
        }
        let ours = workspace
            .get(name)
            .and_then(requirement)
            .unwrap_or_else(|| {
                panic!("the Installing block lists `{name}`, which [workspace.dependencies] lacks")
            });
        assert_eq!(
            given, ours,
            "the Installing block's `{name}` requirement differs from [workspace.dependencies]"
        );
    }
}

#[test]
fn installing_turns_on_features_that_exist() {
    let readme = read("README.md");
    let block = toml_block(section(&readme, "Installing"));
    let features = facade_features();
    let asked = block["dependencies"]["graylane"]["features"]
        .as_array()
        .expect("the Installing block's graylane entry lists features");
    assert!(!asked.is_empty());
    for feature in asked {
        let feature = feature.as_str().expect("features are strings");
        assert!(
            features.contains(feature),
            "the Installing block turns on `{feature}`, which graylane does not have \
             (it has {features:?})"
        );
    }
}

#[test]
fn features_names_every_feature() {
    let readme = read("README.md");
    let text = section(&readme, "Features");
    // Feature names are the backquoted words made of lowercase letters and dashes; paths,
    // files and the crate's own name are not.
    let named: BTreeSet<String> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            *word != "graylane" && word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .map(str::to_owned)
        .collect();
    assert_eq!(
        named,
        facade_features(),
        "README.md's Features section and crates/graylane/Cargo.toml disagree"
    );
}

#[test]
fn caret_requirements_read_like_cargo() {
    assert!(caret_accepts("0.1", "0.1.0"));
    assert!(caret_accepts("0.1", "0.1.7"));
    assert!(!caret_accepts("0.1", "0.2.0"));
    assert!(caret_accepts("1.2", "1.9.0"));
    assert!(!caret_accepts("1.2", "1.1.9"));
    assert!(!caret_accepts("1", "2.0.0"));
    assert!(!caret_accepts("0.0.3", "0.0.4"));
}
