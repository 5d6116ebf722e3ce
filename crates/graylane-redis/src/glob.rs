//! The patterns [`Namespaces::read_through`](crate::Namespaces::read_through) takes: `*` matches
//! any run of bytes (also none), `?` any one byte, every other byte itself. No character classes
//! and no escapes: the patterns name key families (`cache:*`), not arbitrary sets.

/// Whether all of `text` matches `pattern`.
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], text) || (!text.is_empty() && glob_match(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob_match(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"cache:*", b"cache:item:1"));
        assert!(glob_match(b"c?che:*", b"cache:"));
        assert!(!glob_match(b"cache:*", b"cart:1"));
        assert!(glob_match(b"*", b""));
    }
}
