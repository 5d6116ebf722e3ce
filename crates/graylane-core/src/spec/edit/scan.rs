//! Reading a spec's text the way its format does, just enough to find where a value ends.

/// Where the scalar starting at `start` ends: its closing quote; for a plain scalar, a comment
/// (`#` after a blank), the end of the line, or — inside a flow collection only — a flow
/// delimiter (`,`, `}`, `]`); trailing blanks excluded.
pub(super) fn scalar_end(src: &str, start: usize) -> usize {
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
pub(super) fn quoted_end(bytes: &[u8], start: usize, q: u8) -> usize {
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
pub(super) fn in_flow(bytes: &[u8], at: usize) -> bool {
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
