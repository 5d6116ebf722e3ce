//! The TOML depth scanner: table headers, dotted keys, arrays and inline tables, outside
//! strings and comments.

use super::{MAX_SPEC_DEPTH, SpecError, check_size, lines, skip_spaces, too_deep};

/// Refuses a TOML spec larger than [`MAX_SPEC_BYTES`] or nested deeper than [`MAX_SPEC_DEPTH`].
pub(in crate::spec) fn check_toml(src: &str) -> Result<(), SpecError> {
    check_size(src.len())?;
    let mut toml = Toml::default();
    for (n, line) in lines(src) {
        toml.line(line).map_err(|col| too_deep(n, col))?;
    }
    Ok(())
}

/// A multi-line TOML string being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Multiline {
    Basic,
    Literal,
}

/// The TOML depth scanner's state between lines.
#[derive(Default)]
pub(super) struct Toml {
    /// The depth of the current table: its header's keys, one more for an array of tables.
    table: usize,
    /// The keys of the top-level key whose value is being read (`a.b = [` is two).
    key: usize,
    /// Open arrays and inline tables.
    flow: usize,
    /// For each open array or inline table, the dots of the dotted key it is the value of.
    dotted: Vec<usize>,
    /// The sum of `dotted`.
    dotted_sum: usize,
    /// Dots since the last key or separator inside an inline table.
    dots: usize,
    /// Inside a multi-line string.
    string: Option<Multiline>,
}

impl Toml {
    pub(super) fn depth(&self) -> usize {
        1 + self.table + self.key + self.flow + self.dotted_sum
    }

    /// Scans one line; `Err(column)` where the nesting passes the bound.
    pub(super) fn line(&mut self, line: &[u8]) -> Result<(), usize> {
        let mut at = 0;
        if self.string.is_none() && self.flow == 0 {
            at = skip_spaces(line, 0);
            match line.get(at) {
                None | Some(b'#') => return Ok(()),
                Some(b'[') => return self.header(line, at),
                Some(_) => {
                    let (keys, eq) = keys(line, at, b'=');
                    self.key = keys;
                    if self.depth() > MAX_SPEC_DEPTH {
                        return Err(at);
                    }
                    let Some(eq) = eq else { return Ok(()) };
                    at = eq + 1;
                }
            }
        }
        self.value(line, at)
    }

    /// `[a.b]` or `[[a.b]]`.
    fn header(&mut self, line: &[u8], at: usize) -> Result<(), usize> {
        let array = line.get(at + 1) == Some(&b'[');
        let (keys, _) = keys(line, at + 1 + usize::from(array), b']');
        self.table = keys + usize::from(array);
        self.key = 0;
        if self.depth() > MAX_SPEC_DEPTH {
            return Err(at);
        }
        Ok(())
    }

    /// A value, or the rest of one that goes on from an earlier line.
    fn value(&mut self, line: &[u8], mut at: usize) -> Result<(), usize> {
        while at < line.len() {
            if let Some(kind) = self.string {
                match close_multiline(line, at, kind) {
                    Some(end) => {
                        self.string = None;
                        at = end;
                        continue;
                    }
                    None => return Ok(()),
                }
            }
            match line[at] {
                b'#' => return Ok(()),
                q @ (b'"' | b'\'') => {
                    let kind = if q == b'"' {
                        Multiline::Basic
                    } else {
                        Multiline::Literal
                    };
                    if line[at..].starts_with(if q == b'"' { b"\"\"\"" } else { b"'''" }) {
                        self.string = Some(kind);
                        at += 3;
                        continue;
                    }
                    at = close_quote_toml(line, at + 1, q);
                    continue;
                }
                b'[' | b'{' => {
                    // An inline table's `a.b = {` nests the table under its dotted key.
                    let dotted = if line[at] == b'{' || self.flow > 0 {
                        std::mem::take(&mut self.dots)
                    } else {
                        0
                    };
                    self.flow += 1;
                    self.dotted.push(dotted);
                    self.dotted_sum += dotted;
                    if self.depth() > MAX_SPEC_DEPTH {
                        return Err(at);
                    }
                    self.dots = 0;
                }
                b']' | b'}' => {
                    if self.flow > 0 {
                        self.flow -= 1;
                        self.dotted_sum -= self.dotted.pop().unwrap_or(0);
                    }
                    self.dots = 0;
                }
                // An inline table's key: its dots nest its value (`{ a.b.c = 1 }`).
                b'=' if self.flow > 0 && 1 + self.depth() + self.dots > MAX_SPEC_DEPTH => {
                    return Err(at);
                }
                b',' => self.dots = 0,
                b'.' if self.flow > 0 => self.dots += 1,
                _ => {}
            }
            at += 1;
        }
        if self.flow == 0 {
            self.key = 0;
        }
        Ok(())
    }
}

/// The number of keys in a dotted key starting at `at` (quoted parts may hold dots), and where
/// it ends (at `end`, outside quotes), if it does on this line.
fn keys(line: &[u8], mut at: usize, end: u8) -> (usize, Option<usize>) {
    let mut keys = 1;
    while at < line.len() {
        match line[at] {
            q @ (b'"' | b'\'') => {
                at = close_quote_toml(line, at + 1, q);
                continue;
            }
            b'.' => keys += 1,
            b if b == end => return (keys, Some(at)),
            _ => {}
        }
        at += 1;
    }
    (keys, None)
}

/// Just past the closing quote of a one-line TOML string opened before `at` (`\` escapes in
/// basic strings), or the end of the line.
fn close_quote_toml(line: &[u8], mut at: usize, q: u8) -> usize {
    while at < line.len() {
        match line[at] {
            b'\\' if q == b'"' => at += 2,
            b if b == q => return at + 1,
            _ => at += 1,
        }
    }
    line.len()
}

/// Just past the `"""` or `'''` that closes a multi-line string on this line, if one does.
fn close_multiline(line: &[u8], mut at: usize, kind: Multiline) -> Option<usize> {
    let close: &[u8] = match kind {
        Multiline::Basic => b"\"\"\"",
        Multiline::Literal => b"'''",
    };
    while at < line.len() {
        if kind == Multiline::Basic && line[at] == b'\\' {
            at += 2;
            continue;
        }
        if line[at..].starts_with(close) {
            // Up to two more quotes may end the string's content.
            let quotes = line[at..].iter().take_while(|b| **b == close[0]).count();
            return Some(at + quotes.min(5));
        }
        at += 1;
    }
    None
}
