//! Bounds on a spec document, checked before it is parsed: [`MAX_SPEC_BYTES`] and
//! [`MAX_SPEC_DEPTH`].
//!
//! A parser does work in the nesting of what it reads before its own limits refuse it:
//! serde_yaml_ng reads a whole document's events before its recursion limit (128) is reached,
//! and takes 30-40 s (debug) to refuse a sequence nested 100,000 deep. A lane spec is a few
//! kilobytes nested about a dozen levels deep, so both bounds sit far above any real spec and
//! far below what costs a parser anything.
//!
//! The depth is measured in one pass over the text, following the format's own nesting outside
//! strings, comments and block scalars: indentation, `-` entries and flow brackets in YAML;
//! table headers, dotted keys, arrays and inline tables in TOML. It counts the root and each
//! collection once, scalars not at all, so a spec is refused only when it truly nests past
//! [`MAX_SPEC_DEPTH`]; text that is not a valid document may be measured roughly, and then
//! fails in the parser, cheaply, at its first error.

use super::error::SpecError;

/// The largest spec read, in bytes (1 MiB). A spec of thousands of lanes is a few hundred
/// kilobytes.
pub const MAX_SPEC_BYTES: usize = 1 << 20;

/// The deepest nesting read, in levels, the root counted (64). A spec's own structure is about
/// a dozen levels; nested `all` conditions add two each. Below serde_yaml_ng's limit of 128 and
/// the toml parser's of 80, so the bound, not a parser, names what is wrong.
pub const MAX_SPEC_DEPTH: usize = 64;

/// Refuses a spec longer than [`MAX_SPEC_BYTES`].
pub(super) fn check_size(len: usize) -> Result<(), SpecError> {
    if len > MAX_SPEC_BYTES {
        return Err(SpecError::at(
            String::new(),
            format!(
                "the spec is {len} bytes, more than MAX_SPEC_BYTES ({MAX_SPEC_BYTES}); a lane spec is a few kilobytes"
            ),
        ));
    }
    Ok(())
}

#[cfg(any(feature = "yaml", feature = "toml"))]
/// The error for nesting past [`MAX_SPEC_DEPTH`] at 0-based `line` and byte `col`.
pub(super) fn too_deep(line: usize, col: usize) -> SpecError {
    SpecError {
        line: Some(line + 1),
        column: Some(col + 1),
        ..SpecError::at(
            String::new(),
            format!(
                "the spec nests deeper than MAX_SPEC_DEPTH ({MAX_SPEC_DEPTH}) levels; a lane spec needs about a dozen"
            ),
        )
    }
}

#[cfg(any(feature = "yaml", feature = "toml"))]
/// Lines without their `\r\n` / `\n` ends, numbered from 0.
pub(super) fn lines(src: &str) -> impl Iterator<Item = (usize, &[u8])> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    src.split('\n').enumerate().map(|(n, line)| {
        let line = line.as_bytes();
        (n, line.strip_suffix(b"\r").unwrap_or(line))
    })
}

#[cfg(any(feature = "yaml", feature = "toml"))]
pub(super) fn skip_spaces(line: &[u8], at: usize) -> usize {
    at + line[at.min(line.len())..]
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count()
}

// One scanner per format, built with the format's loader.
#[cfg(feature = "toml")]
mod toml;
#[cfg(feature = "yaml")]
mod yaml;

#[cfg(feature = "toml")]
pub(super) use toml::check_toml;
#[cfg(feature = "yaml")]
pub(super) use yaml::check_yaml;

#[cfg(all(test, feature = "yaml", feature = "toml"))]
mod tests {
    use super::toml::Toml;
    use super::yaml::Yaml;
    use super::*;

    /// The deepest point of a YAML document, as the scanner counts it.
    fn yaml_depth(src: &str) -> usize {
        let mut yaml = Yaml::default();
        for (_, line) in lines(src) {
            yaml.line(line).unwrap();
        }
        yaml.deepest
    }

    /// The depth after each line of a TOML document.
    fn toml_depths(src: &str) -> Vec<usize> {
        let mut toml = Toml::default();
        lines(src)
            .map(|(_, line)| {
                toml.line(line).unwrap();
                toml.depth()
            })
            .collect()
    }

    proptest::proptest! {
        /// Whatever the text, the scanners answer and never panic.
        #[test]
        fn any_text_is_scanned(src in "([ \\t\\r\\n\\[\\]{}:,#'\"|>\\\\=.a-]{0,12}){0,20}") {
            let _ = check_yaml(&src);
            let _ = check_toml(&src);
        }
    }

    #[test]
    fn yaml_nesting_is_counted_once_per_collection() {
        assert_eq!(yaml_depth("a: 1\nb: 2\n"), 1);
        assert_eq!(yaml_depth("a:\n  b:\n    c: 1\n"), 3);
        // A sequence at its key's indentation is a level of its own, until the next key.
        assert_eq!(yaml_depth("a:\n- x\n- y\nb: 1\n"), 2);
        assert_eq!(yaml_depth("a:\n- b:\n  - c:\n    - d: 1\n"), 7);
        assert_eq!(yaml_depth("- - x\n  - y\n"), 2);
        assert_eq!(yaml_depth("- name: a\n  version: b\n- name: c\n"), 2);
        // Flow collections, and brackets that are not (in a plain scalar, quotes, comments).
        assert_eq!(yaml_depth("a: [[1], {b: [2]}]\n"), 4);
        assert_eq!(
            yaml_depth("a: v[0-9]+ [x\nb: '[[[' # [[[\nc: \"[\\\"[\"\n"),
            1
        );
        // A block scalar's lines are text.
        assert_eq!(yaml_depth("a: |\n  [[[[\n    - - -\nb: 1\n"), 1);
        assert_eq!(yaml_depth("- |\n  [[[[\n- x\n"), 1);
        // A quoted scalar over two lines.
        assert_eq!(yaml_depth("a: 'x\n  [[[ y'\nb: [1]\n"), 2);
    }

    #[test]
    fn toml_nesting_is_counted_once_per_table() {
        assert_eq!(toml_depths("a = 1"), [1]);
        assert_eq!(toml_depths("[a.b]\nc = 1"), [3, 3]);
        assert_eq!(toml_depths("[[a.b]]"), [4]);
        assert_eq!(toml_depths("[\"a.b\"]"), [2]);
        // Open arrays and inline tables count while their lines are read.
        assert_eq!(
            toml_depths("a = [\n  [1, 2],\n  { b = [\n]}]"),
            [3, 3, 5, 1]
        );
        assert_eq!(toml_depths("a = {\n b.c.d = [\n] }"), [3, 6, 1]);
        // Strings hold brackets and dots that are not structure.
        assert_eq!(
            toml_depths("a = \"[[{.\"\nb = '''\n[[[\n'''\nc = 1"),
            [1, 1, 1, 1, 1]
        );
    }
}
