//! [`SpecError`]: what every way of reading or checking a spec reports.
//!
//! One type for parse, validation and build errors, so that each names the same things: the
//! file, the line and column, and the field path (`coloring.rules[2].lane`), then what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// A spec that failed to load, validate or build: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file, when loaded from one.
    pub file: Option<PathBuf>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field path, e.g. `coloring.rules[2].lane` (empty for syntax errors).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl SpecError {
    /// An error at field `path`, not yet located in a file.
    pub(crate) fn at(path: String, message: String) -> SpecError {
        SpecError {
            file: None,
            line: None,
            column: None,
            path,
            message,
        }
    }

    pub(super) fn in_file(mut self, file: &Path) -> SpecError {
        self.file = Some(file.to_owned());
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            sep = ":";
        }
        if let Some(line) = self.line {
            write!(f, "{sep}{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
            sep = ":";
        }
        if !sep.is_empty() {
            f.write_str(": ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let mut e = SpecError::at("lanes[0].name".into(), "bad".into());
        assert_eq!(e.to_string(), "lanes[0].name: bad");
        e.line = Some(3);
        e.column = Some(9);
        assert_eq!(e.to_string(), "3:9: lanes[0].name: bad");
        e.file = Some("graylane.yaml".into());
        assert_eq!(e.to_string(), "graylane.yaml:3:9: lanes[0].name: bad");
    }
}
