//! [`SpecText`]: a spec file edited in place, the way a person would edit it — one scalar
//! changed where it stands, comments, order and layout kept — so that a change to the
//! strategy reads as a one-line diff in the repository that stores it (`5` became `25`).
//!
//! Each edit finds the value through the same walk that locates validation errors, replaces
//! just its text, then loads and validates the whole result: an edit that would not load is
//! refused, and the text stays as it was.

use std::io;
use std::path::{Path, PathBuf};

use super::error::SpecError;
use super::load::{read_bounded, value_position};
use super::schema::LaneSpec;

/// The text of a spec file, with edits that keep it valid.
///
/// ```
/// use graylane_core::spec::SpecText;
///
/// let mut text = SpecText::yaml(
///     "lanes: [{ name: gray }]\n\
///      coloring:\n  rules:\n    # the release's rule\n    - name: some-users\n      lane: gray\n      match: { sticky: { percent: 5, by: { header: x-user-id } } }\n"
///         .into(),
/// )?;
/// text.set("coloring.rules[0].match.sticky.percent", "25")?;
/// assert!(text.text().contains("{ sticky: { percent: 25, by"));
/// assert!(text.text().contains("# the release's rule"));
///
/// // A key that is not there yet goes right after its sibling, as its sibling is written.
/// text.set_beside("coloring.rules[0].lane", "enabled", "false")?;
/// assert!(text.text().contains("      lane: gray\n      enabled: false\n"));
/// assert!(!text.spec()?.coloring.rules[0].enabled);
///
/// // An edit that would not validate is refused, and nothing changes.
/// let before = text.text().to_owned();
/// assert!(text.set("coloring.rules[0].match.sticky.percent", "250").is_err());
/// assert_eq!(text.text(), before);
/// # Ok::<(), graylane_core::spec::SpecError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SpecText {
    path: Option<PathBuf>,
    src: String,
    toml: bool,
}

impl SpecText {
    /// The spec file at `path` (TOML for `.toml`, YAML otherwise); it must load.
    pub fn read(path: impl AsRef<Path>) -> Result<SpecText, SpecError> {
        let path = path.as_ref();
        let src = read_bounded(path).map_err(|e| e.in_file(path))?;
        let text = SpecText {
            path: Some(path.to_owned()),
            src,
            toml: path.extension().is_some_and(|e| e == "toml"),
        };
        text.spec()?;
        Ok(text)
    }

    /// A YAML spec's text; it must load.
    pub fn yaml(src: String) -> Result<SpecText, SpecError> {
        let text = SpecText {
            path: None,
            src,
            toml: false,
        };
        text.spec()?;
        Ok(text)
    }

    /// A TOML spec's text; it must load.
    pub fn toml(src: String) -> Result<SpecText, SpecError> {
        let text = SpecText {
            path: None,
            src,
            toml: true,
        };
        text.spec()?;
        Ok(text)
    }

    /// The text as it is now.
    pub fn text(&self) -> &str {
        &self.src
    }

    /// The spec the text says, loaded and validated.
    pub fn spec(&self) -> Result<LaneSpec, SpecError> {
        match &self.path {
            Some(path) => LaneSpec::from_file_text(path, &self.src),
            None => LaneSpec::from_text(&self.src, self.toml),
        }
    }

    /// Replaces the scalar at `path` (`coloring.rules[1].match.sticky.percent`) with `value`,
    /// written as the file's format writes it (`25`, `false`, `"v2"`).
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), SpecError> {
        let start = self.offset_of(path)?;
        let end = scalar_end(&self.src, start);
        self.try_edit(|src| src.replace_range(start..end, value))
    }

    /// Sets `key` to `value` in the mapping that holds `sibling` (a path to one of its
    /// scalars): the scalar in place when the key is there already, else a new entry right
    /// after the sibling's, in its style — `, key: value` inside `{ ... }`, a line of its own
    /// at the sibling's indentation otherwise.
    pub fn set_beside(&mut self, sibling: &str, key: &str, value: &str) -> Result<(), SpecError> {
        let parent = sibling.rsplit_once('.').map_or("", |(p, _)| p);
        let own = if parent.is_empty() {
            key.to_owned()
        } else {
            format!("{parent}.{key}")
        };
        if self.offset_of(&own).is_ok() {
            return self.set(&own, value);
        }
        let sibling_key = sibling.rsplit('.').next().unwrap_or(sibling);
        let start = self.offset_of(sibling)?;
        let end = scalar_end(&self.src, start);
        let assign = if self.toml { " = " } else { ": " };
        let rest = self.src[end..].trim_start_matches([' ', '\t']);
        let insertion = if rest.starts_with(',') || rest.starts_with('}') {
            (end, format!(", {key}{assign}{value}"))
        } else {
            let line_start = self.src[..start].rfind('\n').map_or(0, |i| i + 1);
            let line = &self.src[line_start..start];
            let Some(column) = line.rfind(sibling_key) else {
                return Err(SpecError::at(
                    sibling.into(),
                    format!("cannot find the key `{sibling_key}` before its value"),
                ));
            };
            let line_end = self.src[start..]
                .find('\n')
                .map_or(self.src.len(), |i| start + i);
            (
                line_end,
                format!("\n{}{key}{assign}{value}", " ".repeat(column)),
            )
        };
        self.try_edit(|src| src.insert_str(insertion.0, &insertion.1))
    }

    /// Writes the text back to the file it was read from, atomically (a temporary file in the
    /// same directory, with the file's mode, synced, then renamed over it; through a symlink,
    /// the file it points to).
    pub fn write(&self) -> io::Result<()> {
        let path = self
            .path
            .as_deref()
            .ok_or_else(|| io::Error::other("this spec text was not read from a file"))?;
        let path = std::fs::canonicalize(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.graylane-{}", std::process::id()));
        let written = (|| {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(self.src.as_bytes())?;
            // The file keeps its mode; and what the rename publishes is on disk first.
            file.set_permissions(std::fs::metadata(&path)?.permissions())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// The byte offset where the value at `path` starts.
    fn offset_of(&self, path: &str) -> Result<usize, SpecError> {
        let missing = || SpecError::at(path.into(), "no such value in the spec text".into());
        let (line, column) = value_position(&self.src, self.toml, path).ok_or_else(missing)?;
        let line_start = self
            .src
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum::<usize>();
        let line_text = &self.src[line_start..];
        let offset = line_text
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_text.len(), |(i, _)| i);
        Ok(line_start + offset)
    }

    /// Applies `edit` to a copy; keeps it only if the result loads and validates.
    fn try_edit(&mut self, edit: impl FnOnce(&mut String)) -> Result<(), SpecError> {
        let mut next = self.clone();
        edit(&mut next.src);
        next.spec()?;
        *self = next;
        Ok(())
    }
}

/// Where the scalar starting at `start` ends: its closing quote; for a plain scalar, a comment
/// (`#` after a blank), the end of the line, or — inside a flow collection only — a flow
/// delimiter (`,`, `}`, `]`); trailing blanks excluded.
fn scalar_end(src: &str, start: usize) -> usize {
    let bytes = src.as_bytes();
    match bytes.get(start) {
        Some(&q @ (b'"' | b'\'')) => quoted_end(bytes, start, q),
        _ => {
            let flow = in_flow(bytes, start);
            let mut end = start;
            while end < bytes.len() {
                match bytes[end] {
                    b'\n' | b'\r' => break,
                    b',' | b'}' | b']' if flow => break,
                    b'#' if end > start && matches!(bytes[end - 1], b' ' | b'\t') => break,
                    _ => end += 1,
                }
            }
            while end > start && matches!(bytes[end - 1], b' ' | b'\t') {
                end -= 1;
            }
            end
        }
    }
}

/// One past the quote closing the string that opens with `q` at `start`.
fn quoted_end(bytes: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if q == b'"' => i += 2,
            b if b == q => {
                // YAML's '' inside single quotes is one quote.
                if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Whether `at` is inside a flow collection (`{ ... }`, `[ ... ]`, or a TOML inline table or
/// array): the brackets open before it, outside strings and comments, are not all closed. A
/// quote opens a string only where a value can start (so `it's` in a plain scalar does not).
fn in_flow(bytes: &[u8], at: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < at {
        let starts_value = i == 0
            || matches!(
                bytes[i - 1],
                b' ' | b'\t' | b'\n' | b':' | b',' | b'[' | b'{' | b'-' | b'='
            );
        match bytes[i] {
            q @ (b'"' | b'\'') if starts_value => {
                i = quoted_end(bytes, i, q);
                continue;
            }
            b'#' if i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n') => {
                while i < at && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    depth > 0
}

#[cfg(all(test, feature = "yaml", feature = "toml"))]
mod tests {
    use super::*;

    const YAML: &str = "\
# The shop's lanes.
lanes:
  - name: gray   # the v2 line
coloring:
  rules:
    - name: beta
      lane: gray
      match: { header: { name: x-user-group, exact: beta } }
    - { name: some-users, lane: gray, match: { sticky: { percent: 5, by: { header: x-user-id } } } }
";

    /// The lines that differ between `a` and `b` (same line count).
    fn changed(a: &str, b: &str) -> Vec<(String, String)> {
        a.lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| (x.to_owned(), y.to_owned()))
            .collect()
    }

    #[test]
    fn a_scalar_changes_where_it_stands_and_nothing_else_does() {
        let mut text = SpecText::yaml(YAML.into()).unwrap();
        text.set("coloring.rules[1].match.sticky.percent", "25")
            .unwrap();
        assert_eq!(
            changed(YAML, text.text()),
            [(
                "    - { name: some-users, lane: gray, match: { sticky: { percent: 5, by: { header: x-user-id } } } }".into(),
                "    - { name: some-users, lane: gray, match: { sticky: { percent: 25, by: { header: x-user-id } } } }".into()
            )]
        );
        let p = text.spec().unwrap().coloring.rules[1]
            .condition
            .sticky
            .clone()
            .unwrap()
            .percent;
        assert_eq!(p, crate::Percent::new(25.0).unwrap());
    }

    #[test]
    fn a_new_key_follows_its_sibling_in_block_and_flow_style() {
        let mut text = SpecText::yaml(YAML.into()).unwrap();
        text.set_beside("coloring.rules[0].lane", "enabled", "false")
            .unwrap();
        text.set_beside("coloring.rules[1].lane", "enabled", "false")
            .unwrap();
        assert!(
            text.text()
                .contains("      lane: gray\n      enabled: false\n      match:"),
            "{}",
            text.text()
        );
        assert!(
            text.text().contains("lane: gray, enabled: false, match:"),
            "{}",
            text.text()
        );
        assert!(
            text.spec()
                .unwrap()
                .coloring
                .rules
                .iter()
                .all(|r| !r.enabled)
        );
        // There now: set in place.
        text.set_beside("coloring.rules[0].lane", "enabled", "true")
            .unwrap();
        assert!(text.text().contains("      enabled: true\n"));
        assert!(text.text().starts_with("# The shop's lanes.\n"));
    }

    #[test]
    fn quoted_scalars_and_comments_are_respected() {
        let src = "lanes:\n  - name: gray\n    description: \"v2, \\\" # x\"  # quoted\n";
        let mut text = SpecText::yaml(src.into()).unwrap();
        text.set("lanes[0].description", "'it''s v3'").unwrap();
        assert_eq!(
            text.text(),
            "lanes:\n  - name: gray\n    description: 'it''s v3'  # quoted\n"
        );
        text.set("lanes[0].description", "plain").unwrap();
        assert_eq!(
            text.text(),
            "lanes:\n  - name: gray\n    description: plain  # quoted\n"
        );
    }

    #[test]
    fn a_plain_scalar_in_block_style_ends_at_its_line_or_comment_not_at_a_comma() {
        let src = "lanes:\n  - name: gray\n    description: it's v2, fast\t# tab comment\n    services: []\n";
        let mut text = SpecText::yaml(src.into()).unwrap();
        text.set("lanes[0].description", "slow").unwrap();
        assert_eq!(
            text.text(),
            "lanes:\n  - name: gray\n    description: slow\t# tab comment\n    services: []\n"
        );
    }

    #[test]
    fn toml_tables_and_inline_tables() {
        let src = "\
[[lanes]]
name = \"gray\"

[[coloring.rules]]
name = \"some-users\"
lane = \"gray\"
match = { sticky = { percent = 5, by = { header = \"x-user-id\" } } }
";
        let mut text = SpecText::toml(src.into()).unwrap();
        text.set("coloring.rules[0].match.sticky.percent", "50")
            .unwrap();
        text.set_beside("coloring.rules[0].lane", "enabled", "false")
            .unwrap();
        assert!(text.text().contains("percent = 50,"), "{}", text.text());
        assert!(
            text.text().contains("lane = \"gray\"\nenabled = false\n"),
            "{}",
            text.text()
        );
        assert!(!text.spec().unwrap().coloring.rules[0].enabled);
    }

    #[test]
    fn an_edit_that_does_not_load_or_leads_nowhere_is_refused() {
        let mut text = SpecText::yaml(YAML.into()).unwrap();
        for (path, value) in [
            ("coloring.rules[1].match.sticky.percent", "101"),
            ("coloring.rules[0].lane", "nope"),
            ("coloring.rules[7].lane", "gray"),
        ] {
            assert!(text.set(path, value).is_err(), "{path} = {value}");
        }
        assert_eq!(text.text(), YAML);
    }

    #[test]
    fn write_replaces_the_file_through_a_symlink() {
        let dir = std::env::temp_dir().join(format!("graylane-spec-edit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("real.yaml");
        std::fs::write(&real, YAML).unwrap();
        let link = dir.join("graylane.yaml");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&real, &link).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&real, &link).unwrap();
        let mut text = SpecText::read(&link).unwrap();
        text.set("coloring.rules[1].match.sticky.percent", "25")
            .unwrap();
        text.write().unwrap();
        let back = std::fs::read_to_string(&real).unwrap();
        assert!(back.contains("percent: 25,"));
        #[cfg(unix)]
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
