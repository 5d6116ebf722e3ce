//! The YAML depth scanner: indentation, `-` entries and flow brackets, outside quoted and
//! block scalars and comments.

use super::{MAX_SPEC_DEPTH, SpecError, check_size, lines, skip_spaces, too_deep};

/// Refuses a YAML spec larger than [`MAX_SPEC_BYTES`] or nested deeper than [`MAX_SPEC_DEPTH`].
pub(in crate::spec) fn check_yaml(src: &str) -> Result<(), SpecError> {
    check_size(src.len())?;
    let mut yaml = Yaml::default();
    for (n, line) in lines(src) {
        yaml.line(line).map_err(|col| too_deep(n, col))?;
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
pub(super) struct Yaml {
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
    pub(super) deepest: usize,
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
    pub(super) fn line(&mut self, line: &[u8]) -> Result<(), usize> {
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
