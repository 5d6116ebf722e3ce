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

/// The error for nesting past [`MAX_SPEC_DEPTH`] at 0-based `line` and byte `col`.
fn too_deep(line: usize, col: usize) -> SpecError {
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

/// Lines without their `\r\n` / `\n` ends, numbered from 0.
fn lines(src: &str) -> impl Iterator<Item = (usize, &[u8])> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    src.split('\n').enumerate().map(|(n, line)| {
        let line = line.as_bytes();
        (n, line.strip_suffix(b"\r").unwrap_or(line))
    })
}

/// Refuses a YAML spec larger than [`MAX_SPEC_BYTES`] or nested deeper than [`MAX_SPEC_DEPTH`].
pub(super) fn check_yaml(src: &str) -> Result<(), SpecError> {
    check_size(src.len())?;
    let mut yaml = Yaml::default();
    for (n, line) in lines(src) {
        yaml.line(line).map_err(|col| too_deep(n, col))?;
    }
    Ok(())
}

/// Refuses a TOML spec larger than [`MAX_SPEC_BYTES`] or nested deeper than [`MAX_SPEC_DEPTH`].
pub(super) fn check_toml(src: &str) -> Result<(), SpecError> {
    check_size(src.len())?;
    let mut toml = Toml::default();
    for (n, line) in lines(src) {
        toml.line(line).map_err(|col| too_deep(n, col))?;
    }
    Ok(())
}

/// A block collection open at a column.
#[derive(Clone, Copy)]
struct Block {
    col: usize,
    /// A sequence written at its key's own indentation (`key:` then `- x` below it).
    seq_at_key: bool,
}

/// The YAML depth scanner's state between lines.
#[derive(Default)]
struct Yaml {
    /// Open block collections, by column.
    blocks: Vec<Block>,
    /// Open flow collections (`[`, `{`).
    flow: usize,
    /// Inside a quoted scalar that goes on to the next line.
    quote: Option<u8>,
    /// Inside a block scalar (`|`, `>`) whose lines are indented past this column.
    block_scalar: Option<usize>,
    /// The column of a key that ended its line with nothing after the `:`, whose value starts
    /// on the next line.
    open_key: Option<usize>,
    /// The deepest point so far.
    deepest: usize,
}

impl Yaml {
    fn depth(&self) -> usize {
        self.blocks.len() + self.flow
    }

    fn push(&mut self, block: Block) -> Result<(), usize> {
        self.blocks.push(block);
        self.deeper(block.col)
    }

    /// Notes the depth reached at column `col`; `Err(col)` past the bound.
    fn deeper(&mut self, col: usize) -> Result<(), usize> {
        self.deepest = self.deepest.max(self.depth());
        if self.depth() > MAX_SPEC_DEPTH {
            return Err(col);
        }
        Ok(())
    }

    /// Scans one line; `Err(column)` where the nesting passes the bound.
    fn line(&mut self, line: &[u8]) -> Result<(), usize> {
        let indent = line.iter().take_while(|b| **b == b' ').count();
        let blank = line[indent..].iter().all(u8::is_ascii_whitespace);
        if let Some(parent) = self.block_scalar {
            if blank || indent > parent {
                return Ok(());
            }
            self.block_scalar = None;
        }
        let mut at = 0;
        if self.quote.is_none() && self.flow == 0 {
            if blank || line[indent] == b'#' || (indent == 0 && line[0] == b'%') {
                return Ok(());
            }
            if line.starts_with(b"---") || line.starts_with(b"...") {
                // A document marker: what follows is a new document.
                self.blocks.clear();
                self.open_key = None;
                at = 3;
            } else {
                at = indent;
                self.indentation(line, indent)?;
                at = self.entries(line, at)?;
            }
        }
        self.content(line, at)
    }

    /// Closes the block collections `indent` leaves, and opens the one it starts.
    fn indentation(&mut self, line: &[u8], indent: usize) -> Result<(), usize> {
        while self.blocks.last().is_some_and(|b| b.col > indent) {
            self.blocks.pop();
        }
        let dash = is_indicator(line, indent, b'-');
        if self
            .blocks
            .last()
            .is_some_and(|b| b.col == indent && b.seq_at_key && !dash)
        {
            // A sequence at its key's indentation ends at the next key.
            self.blocks.pop();
        }
        let open_key = self.open_key.take();
        if dash && open_key == Some(indent) {
            self.push(Block {
                col: indent,
                seq_at_key: true,
            })
        } else if self.blocks.last().is_none_or(|b| b.col != indent) {
            self.push(Block {
                col: indent,
                seq_at_key: false,
            })
        } else {
            Ok(())
        }
    }

    /// Compact entries (`- - x`, `? key`): a dash followed by another opens a sequence at the
    /// column of the second. (A mapping after a dash, `- key: v`, opens where its key is read.)
    /// Returns where the line's content starts.
    fn entries(&mut self, line: &[u8], mut at: usize) -> Result<usize, usize> {
        while is_indicator(line, at, b'-') || is_indicator(line, at, b'?') {
            let dash = at;
            at = skip_spaces(line, at + 1);
            if at >= line.len() {
                return Ok(at);
            }
            if matches!(line[at], b'|' | b'>') {
                // `- |`: the scalar's lines are indented past the dash.
                self.block_scalar = Some(dash);
                return Ok(line.len());
            }
            if is_indicator(line, at, b'-') || is_indicator(line, at, b'?') {
                self.push(Block {
                    col: at,
                    seq_at_key: false,
                })?;
            }
        }
        Ok(at)
    }

    /// The rest of a line: keys, scalars, quotes, flow collections, comments.
    fn content(&mut self, line: &[u8], mut at: usize) -> Result<(), usize> {
        // Where a token may start: a quote or bracket there opens a scalar or a collection;
        // anywhere else it is part of a plain scalar.
        let mut token_start = true;
        // The column of the key or scalar being read, in block context.
        let mut node = at;
        while at < line.len() {
            let b = line[at];
            if let Some(q) = self.quote {
                at = close_quote(line, at, q).map_or(line.len(), |end| {
                    self.quote = None;
                    end
                });
                token_start = false;
                continue;
            }
            match b {
                b'#' if token_start || line[at - 1].is_ascii_whitespace() => return Ok(()),
                b'\'' | b'"' if token_start => {
                    self.quote = Some(b);
                    if self.flow == 0 {
                        node = at;
                    }
                    at += 1;
                    continue;
                }
                b'[' | b'{' if token_start || self.flow > 0 => {
                    self.flow += 1;
                    self.deeper(at)?;
                    token_start = true;
                }
                b']' | b'}' if self.flow > 0 => {
                    self.flow -= 1;
                    token_start = false;
                }
                b',' if self.flow > 0 => token_start = true,
                b'|' | b'>' if token_start && self.flow == 0 => {
                    // A block scalar: its lines are indented past the key's column.
                    self.block_scalar = Some(node);
                    return Ok(());
                }
                b':' if is_indicator(line, at, b':') || (self.flow > 0 && at + 1 == line.len()) => {
                    if self.flow == 0 {
                        // A key: past the innermost block's column it opens a mapping there
                        // (`- key: v`); with nothing after it, its value starts below.
                        if self.blocks.last().is_none_or(|b| b.col < node) {
                            self.push(Block {
                                col: node,
                                seq_at_key: false,
                            })?;
                        }
                        let rest = skip_spaces(line, at + 1);
                        if rest >= line.len() || line[rest] == b'#' {
                            self.open_key = Some(node);
                        }
                    }
                    token_start = true;
                    at += 1;
                    continue;
                }
                b':' if self.flow > 0 => token_start = true,
                b' ' | b'\t' => {
                    // Spaces separate tokens in flow context and around indicators; inside a
                    // block plain scalar they are part of it.
                    at += 1;
                    continue;
                }
                b'&' | b'!' if token_start => {
                    // An anchor or a tag: the node follows it.
                    at = line[at..]
                        .iter()
                        .position(u8::is_ascii_whitespace)
                        .map_or(line.len(), |n| at + n);
                    continue;
                }
                _ => {
                    if token_start && self.flow == 0 {
                        node = at;
                    }
                    token_start = false;
                }
            }
            at += 1;
        }
        Ok(())
    }
}

/// Whether `line[at]` is the indicator `c` followed by a space, a tab or the end of the line.
fn is_indicator(line: &[u8], at: usize, c: u8) -> bool {
    line.get(at) == Some(&c) && line.get(at + 1).is_none_or(|b| *b == b' ' || *b == b'\t')
}

fn skip_spaces(line: &[u8], at: usize) -> usize {
    at + line[at.min(line.len())..]
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count()
}

/// Where the quoted scalar opened by `q` ends on this line (just past its closing quote), if
/// it does: `''` is a quote in single quotes, `\` escapes in double quotes.
fn close_quote(line: &[u8], mut at: usize, q: u8) -> Option<usize> {
    while at < line.len() {
        match line[at] {
            b'\\' if q == b'"' => at += 2,
            b'\'' if q == b'\'' && line.get(at + 1) == Some(&b'\'') => at += 2,
            b if b == q => return Some(at + 1),
            _ => at += 1,
        }
    }
    None
}

/// A multi-line TOML string being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Multiline {
    Basic,
    Literal,
}

/// The TOML depth scanner's state between lines.
#[derive(Default)]
struct Toml {
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
    fn depth(&self) -> usize {
        1 + self.table + self.key + self.flow + self.dotted_sum
    }

    /// Scans one line; `Err(column)` where the nesting passes the bound.
    fn line(&mut self, line: &[u8]) -> Result<(), usize> {
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

#[cfg(test)]
mod tests {
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
