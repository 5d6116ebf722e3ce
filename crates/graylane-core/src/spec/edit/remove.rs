//! Where a sequence item or a mapping entry of a YAML spec starts and ends, so that removing
//! it removes its text — in block style its lines (and the comment lines just above it), in
//! flow style the element and one comma — and leaves the rest as it was written.

use std::ops::Range;

use super::scan::{in_flow, quoted_end, scalar_end};
use crate::spec::error::SpecError;

/// What removing a value does to the text: delete `delete`, then (when the collection it
/// leaves would have nothing left, in block style) write `insert.1` at `insert.0`, an offset
/// before `delete`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Removal {
    pub(super) delete: Range<usize>,
    pub(super) insert: Option<(usize, &'static str)>,
}

/// The removal of the value at `path` (its last segment an index or a key), whose value starts
/// at `start`; `only` says whether it is the only item or entry of its collection.
pub(super) fn removal(
    src: &str,
    path: &str,
    start: usize,
    only: bool,
) -> Result<Removal, SpecError> {
    let fail = |why: &str| SpecError::at(path.into(), why.into());
    let bytes = src.as_bytes();
    // An item (`rules[2]`) or an entry (`routing.canary`).
    let key = (!path.ends_with(']')).then(|| path.rsplit('.').next().unwrap_or(path));
    // Where the item or entry begins: the value for an item, its key for an entry.
    let begin = match key {
        None => start,
        Some(key) => key_before(src, key, start)
            .ok_or_else(|| fail("cannot find the key before its value"))?,
    };
    let empty = if key.is_none() { "[]" } else { "{}" };
    if in_flow(bytes, begin) {
        let end = value_end(src, start);
        let after = skip_blanks(bytes, end);
        let before = skip_blanks_back(bytes, begin);
        let delete = if only {
            // `[a]` -> `[]`: everything between the brackets.
            before..after
        } else if bytes.get(after) == Some(&b',') {
            begin..skip_blanks(bytes, after + 1)
        } else if before > 0 && bytes[before - 1] == b',' {
            before - 1..end
        } else {
            return Err(fail("cannot find the comma beside this element"));
        };
        return Ok(Removal {
            delete,
            insert: None,
        });
    }
    // Block style: the lines from the item's dash (or the entry's key) to the last line
    // indented deeper than it.
    let line_start = src[..begin].rfind('\n').map_or(0, |i| i + 1);
    let lead = &src[line_start..begin];
    let column = match key {
        None => {
            let dash = lead.trim_end_matches([' ', '\t']);
            if !dash.ends_with('-') || !dash[..dash.len() - 1].trim().is_empty() {
                return Err(fail("cannot find the list item's dash on its line"));
            }
            dash.len() - 1
        }
        Some(_) => {
            if !lead.trim().is_empty() {
                return Err(fail(
                    "the entry shares its line with what comes before it (the first key of a \
                     list item?); remove it by hand",
                ));
            }
            lead.len()
        }
    };
    let mut from = line_start;
    // The comment lines just above, as deep as it: they are about it.
    while from > 0 {
        let prev_start = src[..from - 1].rfind('\n').map_or(0, |i| i + 1);
        let prev = &src[prev_start..from];
        let trimmed = prev.trim_start_matches([' ', '\t']);
        if trimmed.starts_with('#') && prev.len() - trimmed.len() >= column {
            from = prev_start;
        } else {
            break;
        }
    }
    let mut to = src[begin..].find('\n').map_or(src.len(), |i| begin + i + 1);
    let mut at = to;
    while at < src.len() {
        let line_end = src[at..].find('\n').map_or(src.len(), |i| at + i + 1);
        let line = &src[at..line_end];
        let trimmed = line.trim_start_matches([' ', '\t']);
        if !trimmed.trim().is_empty() {
            let indent = line.len() - trimmed.len();
            // An entry's value may be a sequence at the entry's own column (`key:` then
            // `- item` below it, as kubectl writes them).
            let own_item = key.is_some() && indent == column && trimmed.starts_with('-');
            if indent < column || (indent == column && !own_item) {
                break;
            }
            to = line_end;
        }
        at = line_end;
    }
    let insert = if only {
        // The key that held the collection must not be left with nothing: `key: []`.
        let mut prev_end = from;
        loop {
            if prev_end == 0 {
                return Err(fail("cannot find the key holding this collection"));
            }
            let prev_start = src[..prev_end - 1].rfind('\n').map_or(0, |i| i + 1);
            let content = uncommented(&src[prev_start..prev_end - 1]);
            if content.trim().is_empty() {
                prev_end = prev_start;
                continue;
            }
            if !content.ends_with(':') {
                return Err(fail("cannot find the key holding this collection"));
            }
            break Some((
                prev_start + content.len(),
                if empty == "[]" { " []" } else { " {}" },
            ));
        }
    } else {
        None
    };
    Ok(Removal {
        delete: from..to,
        insert,
    })
}

/// Where `key:` (or `"key":`, `'key':`) starts, looking back from its value at `value`: the
/// nearest such key before it, which is the value's own.
fn key_before(src: &str, key: &str, value: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let forms = [key.to_owned(), format!("\"{key}\""), format!("'{key}'")];
    forms
        .iter()
        .filter_map(|form| {
            let mut search = value;
            while let Some(at) = src[..search].rfind(form.as_str()) {
                let after = skip_blanks(bytes, at + form.len());
                let bounded =
                    at == 0 || matches!(bytes[at - 1], b' ' | b'\t' | b'\n' | b'{' | b',');
                if bounded && bytes.get(after) == Some(&b':') {
                    return Some(at);
                }
                search = at;
            }
            None
        })
        .max()
}

/// One past the end of the value starting at `start`: a whole flow collection, a quoted
/// string, or a plain scalar.
fn value_end(src: &str, start: usize) -> usize {
    let bytes = src.as_bytes();
    match bytes.get(start) {
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < bytes.len() {
                match bytes[i] {
                    q @ (b'"' | b'\'') => {
                        i = quoted_end(bytes, i, q);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            bytes.len()
        }
        _ => scalar_end(src, start),
    }
}

/// The line without its comment, trailing blanks trimmed.
fn uncommented(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'"' | b'\'') if i == 0 || matches!(bytes[i - 1], b' ' | b':' | b'-') => {
                i = quoted_end(bytes, i, q);
                continue;
            }
            b'#' if i == 0 || matches!(bytes[i - 1], b' ' | b'\t') => return line[..i].trim_end(),
            _ => i += 1,
        }
    }
    line.trim_end()
}

fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

fn skip_blanks_back(bytes: &[u8], mut at: usize) -> usize {
    while at > 0 && matches!(bytes[at - 1], b' ' | b'\t' | b'\n' | b'\r') {
        at -= 1;
    }
    at
}
