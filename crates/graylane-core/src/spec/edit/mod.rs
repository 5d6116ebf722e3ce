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

mod remove;
mod scan;
#[cfg(all(test, feature = "yaml", feature = "toml"))]
mod tests;
use scan::scalar_end;

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
    /// Inside [`together`](Self::together): edits are checked at its end, not one by one.
    deferred: bool,
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
            deferred: false,
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
            deferred: false,
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
            deferred: false,
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

    /// Removes the value at `path` — a list item (`coloring.rules[2]`) or a mapping entry
    /// (`services[1].routing.canary`) — with its text: in block style its lines and the comment
    /// lines just above it, in flow style the element and one comma. A collection left with
    /// nothing is written `[]` or `{}`. YAML specs only.
    pub fn remove(&mut self, path: &str) -> Result<(), SpecError> {
        if self.toml {
            return Err(SpecError::at(
                path.into(),
                "removing values is supported in YAML specs only; remove it by hand".into(),
            ));
        }
        let start = self.offset_of(path)?;
        let only = self.only_child(path)?;
        let removal = remove::removal(&self.src, path, start, only)?;
        self.try_edit(|src| {
            src.replace_range(removal.delete.clone(), "");
            if let Some((at, text)) = removal.insert {
                src.insert_str(at, text);
            }
        })
    }

    /// Makes the edits `edits` makes as one: each may leave the spec invalid on the way (a
    /// rule removed before the release that names it), only the result must load. When it
    /// does not, or an edit fails, nothing changes.
    pub fn together(
        &mut self,
        edits: impl FnOnce(&mut SpecText) -> Result<(), SpecError>,
    ) -> Result<(), SpecError> {
        let mut next = self.clone();
        next.deferred = true;
        edits(&mut next)?;
        next.deferred = self.deferred;
        if !self.deferred {
            next.spec()?;
        }
        *self = next;
        Ok(())
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
        if !self.deferred {
            next.spec()?;
        }
        *self = next;
        Ok(())
    }

    /// Whether the value at `path` is the only item or entry of the collection holding it.
    fn only_child(&self, path: &str) -> Result<bool, SpecError> {
        #[cfg(feature = "yaml")]
        {
            use super::load::{Segment, parse_path};
            use serde_yaml_ng::Value;
            let syntax = |e: serde_yaml_ng::Error| SpecError::at(path.into(), e.to_string());
            let mut value: Value = serde_yaml_ng::from_str(&self.src).map_err(syntax)?;
            let mut segments = parse_path(path);
            segments.pop();
            for segment in &segments {
                value = match (segment, value) {
                    (Segment::Key(k), Value::Mapping(mut m)) => {
                        m.remove(k.as_str()).unwrap_or(Value::Null)
                    }
                    (Segment::Index(i), Value::Sequence(mut s)) if *i < s.len() => {
                        s.swap_remove(*i)
                    }
                    _ => Value::Null,
                };
            }
            Ok(match value {
                Value::Mapping(m) => m.len() == 1,
                Value::Sequence(s) => s.len() == 1,
                _ => false,
            })
        }
        #[cfg(not(feature = "yaml"))]
        {
            let _ = path;
            Ok(false)
        }
    }
}
