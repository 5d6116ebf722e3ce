//! Loading a spec from YAML or TOML, with errors that point at the file, line and field.
//!
//! A document longer than [`MAX_SPEC_BYTES`] or nested deeper than
//! [`MAX_SPEC_DEPTH`](super::MAX_SPEC_DEPTH) is refused before it is parsed (see `limits`).
//!
//! Structural errors (a wrong type, an unknown field) come from the format's deserializer with
//! their position. Semantic errors (an unknown lane in a rule, a service listed twice) are found
//! after deserializing, as a field path; to give them a line too, the document is walked once
//! more with a visitor that stops at that path, and the format reports where it stopped.

#[cfg(any(feature = "yaml", feature = "toml"))]
use std::fmt;
use std::io::Read;
use std::path::Path;

#[cfg(any(feature = "yaml", feature = "toml"))]
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::SpecError;
use super::limits::{MAX_SPEC_BYTES, check_size};
use super::schema::LaneSpec;

impl LaneSpec {
    /// Parses and validates a YAML spec.
    #[cfg(feature = "yaml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
    pub fn from_yaml_str(src: &str) -> Result<LaneSpec, SpecError> {
        // Bounded before the parser sees it: see `limits`.
        super::limits::check_yaml(src)?;
        let spec: LaneSpec = serde_path_to_error::deserialize(
            serde_yaml_ng::Deserializer::from_str(src),
        )
        .map_err(|e| {
            let (line, column) = yaml_location(e.inner());
            located(e.path().to_string(), yaml_message(e.inner()), line, column)
        })?;
        spec.validate().map_err(|e| {
            let (line, column) =
                locate(serde_yaml_ng::Deserializer::from_str(src), &e.path, |err| {
                    let loc = err.location()?;
                    Some((loc.line(), loc.column()))
                });
            SpecError { line, column, ..e }
        })?;
        Ok(spec)
    }

    /// Parses and validates a TOML spec.
    #[cfg(feature = "toml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
    pub fn from_toml_str(src: &str) -> Result<LaneSpec, SpecError> {
        super::limits::check_toml(src)?;
        let position = |span: Option<std::ops::Range<usize>>| {
            span.map(|s| line_col(src, s.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)))
        };
        let de = toml::Deserializer::parse(src).map_err(|e| {
            let (line, column) = position(e.span());
            located(String::new(), e.message().to_owned(), line, column)
        })?;
        let spec: LaneSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let (line, column) = position(e.inner().span());
            located(
                e.path().to_string(),
                e.inner().message().to_owned(),
                line,
                column,
            )
        })?;
        spec.validate().map_err(|e| {
            let (line, column) = match toml::Deserializer::parse(src) {
                Ok(de) => locate(de, &e.path, |err| {
                    err.span().map(|s| line_col(src, s.start))
                }),
                Err(_) => (None, None),
            };
            SpecError { line, column, ..e }
        })?;
        Ok(spec)
    }

    /// Reads, parses and validates a spec file: TOML for `.toml`, YAML otherwise.
    pub fn from_path(path: impl AsRef<Path>) -> Result<LaneSpec, SpecError> {
        let path = path.as_ref();
        let src = read_bounded(path).map_err(|e| e.in_file(path))?;
        LaneSpec::from_file_text(path, &src)
    }

    /// Parses and validates `src`, the text of the file at `path` (whose extension says the
    /// format); errors name the file.
    pub(crate) fn from_file_text(path: &Path, src: &str) -> Result<LaneSpec, SpecError> {
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        LaneSpec::from_text(src, is_toml).map_err(|e| e.in_file(path))
    }

    /// Parses and validates `src`: TOML when `toml`, else YAML (an error when that format's
    /// feature is off).
    pub(crate) fn from_text(src: &str, toml: bool) -> Result<LaneSpec, SpecError> {
        if toml {
            #[cfg(feature = "toml")]
            {
                LaneSpec::from_toml_str(src)
            }
            #[cfg(not(feature = "toml"))]
            {
                let _ = src;
                Err(SpecError::at(
                    String::new(),
                    "TOML support is off (feature `toml`)".into(),
                ))
            }
        } else {
            #[cfg(feature = "yaml")]
            {
                LaneSpec::from_yaml_str(src)
            }
            #[cfg(not(feature = "yaml"))]
            {
                let _ = src;
                Err(SpecError::at(
                    String::new(),
                    "YAML support is off (feature `yaml`)".into(),
                ))
            }
        }
    }
}

/// The file at `path`, refused unread when it is longer than [`MAX_SPEC_BYTES`], and read no
/// further than that when it grows while it is read.
pub(crate) fn read_bounded(path: &Path) -> Result<String, SpecError> {
    let cannot =
        |e: std::io::Error| SpecError::at(String::new(), format!("cannot read the lane spec: {e}"));
    let file = std::fs::File::open(path).map_err(cannot)?;
    if let Ok(meta) = file.metadata() {
        check_size(usize::try_from(meta.len()).unwrap_or(usize::MAX))?;
    }
    let mut src = String::new();
    // One byte past the bound, so a longer file is seen to be longer.
    file.take(MAX_SPEC_BYTES as u64 + 1)
        .read_to_string(&mut src)
        .map_err(cannot)?;
    check_size(src.len())?;
    Ok(src)
}

#[cfg(any(feature = "yaml", feature = "toml"))]
fn located(path: String, message: String, line: Option<usize>, column: Option<usize>) -> SpecError {
    // serde_path_to_error says "." for the root.
    let path = if path == "." { String::new() } else { path };
    SpecError {
        file: None,
        line,
        column,
        path,
        message,
    }
}

#[cfg(feature = "yaml")]
fn yaml_location(e: &serde_yaml_ng::Error) -> (Option<usize>, Option<usize>) {
    e.location()
        .map_or((None, None), |l| (Some(l.line()), Some(l.column())))
}

/// The YAML error's message without the path prefix and position suffix it repeats.
#[cfg(feature = "yaml")]
fn yaml_message(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    let text = match e.location() {
        Some(l) => {
            let position = format!(" at line {} column {}", l.line(), l.column());
            text.replacen(&position, "", 1)
        }
        None => text,
    };
    // "a.b[0]: message" -> "message"; messages themselves never start with a path and ": ".
    match text.split_once(": ") {
        Some((head, rest)) if !head.contains(' ') && !head.is_empty() => rest.to_owned(),
        _ => text,
    }
}

#[cfg(feature = "toml")]
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    (line, column)
}

/// Where the value at `path` starts in `src` (TOML when `toml`), as (line, column), 1-based;
/// `None` when the path leads nowhere or the format is off.
pub(crate) fn value_position(src: &str, toml: bool, path: &str) -> Option<(usize, usize)> {
    let (line, column) = if toml {
        #[cfg(feature = "toml")]
        {
            let de = toml::Deserializer::parse(src).ok()?;
            locate(de, path, |err| err.span().map(|s| line_col(src, s.start)))
        }
        #[cfg(not(feature = "toml"))]
        {
            let _ = (src, path);
            (None, None)
        }
    } else {
        #[cfg(feature = "yaml")]
        {
            locate(serde_yaml_ng::Deserializer::from_str(src), path, |err| {
                let loc = err.location()?;
                Some((loc.line(), loc.column()))
            })
        }
        #[cfg(not(feature = "yaml"))]
        {
            let _ = (src, path);
            (None, None)
        }
    };
    Some((line?, column?))
}

#[cfg(any(feature = "yaml", feature = "toml"))]
/// A path segment: a map key or a sequence index.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

#[cfg(any(feature = "yaml", feature = "toml"))]
/// `a.b[2].c` -> segments.
pub(crate) fn parse_path(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Segment::Key(rest[..i].to_owned()));
            }
            rest = &rest[i..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(end) = stripped.find(']') else { break };
                if let Ok(n) = stripped[..end].parse() {
                    out.push(Segment::Index(n));
                }
                rest = &stripped[end + 1..];
            }
        } else {
            out.push(Segment::Key(rest.to_owned()));
        }
    }
    out
}

#[cfg(any(feature = "yaml", feature = "toml"))]
const FOUND: &str = "graylane-locate-found";

#[cfg(any(feature = "yaml", feature = "toml"))]
/// The position of the value at `path`, according to the format's errors.
fn locate<'de, D, F>(de: D, path: &str, position: F) -> (Option<usize>, Option<usize>)
where
    D: Deserializer<'de>,
    F: Fn(&D::Error) -> Option<(usize, usize)>,
{
    let segments = parse_path(path);
    match (Walk { path: &segments }).deserialize(de) {
        Err(e) if e.to_string().contains(FOUND) => {
            position(&e).map_or((None, None), |(l, c)| (Some(l), Some(c)))
        }
        _ => (None, None),
    }
}

#[cfg(any(feature = "yaml", feature = "toml"))]
/// Walks a document along a path and fails, on purpose, at the value it leads to.
struct Walk<'p> {
    path: &'p [Segment],
}

#[cfg(any(feature = "yaml", feature = "toml"))]
impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            // Consume the value's first event before failing, so the position is the value's.
            d.deserialize_any(Found)
        } else {
            d.deserialize_any(self)
        }
    }
}

#[cfg(any(feature = "yaml", feature = "toml"))]
impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match &self.path[0] {
                Segment::Key(k) if *k == key => map.next_value_seed(Walk {
                    path: &self.path[1..],
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let more = match &self.path[0] {
                Segment::Index(n) if *n == i => seq
                    .next_element_seed(Walk {
                        path: &self.path[1..],
                    })?
                    .is_some(),
                _ => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
}

#[cfg(any(feature = "yaml", feature = "toml"))]
struct Found;

#[cfg(any(feature = "yaml", feature = "toml"))]
impl<'de> Visitor<'de> for Found {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
}

#[cfg(all(test, feature = "yaml", feature = "toml"))]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        use Segment::*;
        assert_eq!(
            parse_path("coloring.rules[2].match.all[0][1].x"),
            vec![
                Key("coloring".into()),
                Key("rules".into()),
                Index(2),
                Key("match".into()),
                Key("all".into()),
                Index(0),
                Index(1),
                Key("x".into())
            ]
        );
        assert_eq!(parse_path(""), vec![]);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
