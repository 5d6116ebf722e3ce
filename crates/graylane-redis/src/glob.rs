//! The patterns [`Namespaces::read_through`](crate::Namespaces::read_through) takes: `*` matches
//! any run of bytes (also none), `?` any one byte, every other byte itself. No character classes
//! and no escapes: the patterns name key families (`cache:*`), not arbitrary sets.

/// Whether all of `text` matches `pattern`.
///
/// Iterative, with one backtrack point: on a mismatch only the last `*` seen takes one more
/// byte. Earlier stars never need to be revisited (whatever a later star can absorb, it absorbs
/// for them), so the worst case is O(`pattern` × `text`) steps and constant stack, whatever the
/// key a client sends. (Plain recursion is exponential in the stars and as deep as the key.)
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The position after the last `*`, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // The last star takes one more byte; matching resumes right after it.
                Some((after, taken)) => {
                    star = Some((after, taken + 1));
                    p = after;
                    t = taken + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
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
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"a"));
        assert!(!glob_match(b"?", b""));
        assert!(glob_match(b"a*b*c", b"aXbYc"));
        assert!(glob_match(b"a*b*c", b"abbbc"));
        assert!(!glob_match(b"a*b*c", b"aXbY"));
        assert!(glob_match(b"*:x", b"a:b:x"));
        assert!(!glob_match(b"*:x", b"a:b:y"));
        assert!(glob_match(b"**a", b"a"));
        assert!(glob_match(b"a**", b"a"));
        assert!(glob_match(b"*?", b"ab"));
        assert!(!glob_match(b"*??", b"a"));
    }

    /// The recursive definition the iterative matcher must agree with (small inputs only).
    fn reference(pattern: &[u8], text: &[u8]) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                reference(&pattern[1..], text)
                    || (!text.is_empty() && reference(pattern, &text[1..]))
            }
            (Some(b'?'), Some(_)) => reference(&pattern[1..], &text[1..]),
            (Some(p), Some(t)) if p == t => reference(&pattern[1..], &text[1..]),
            _ => false,
        }
    }

    #[test]
    fn agrees_with_the_recursive_definition() {
        // Every pattern and text of up to 5 bytes over a small alphabet (which makes matches
        // and near misses common).
        fn all(alphabet: &[u8], max: usize) -> Vec<Vec<u8>> {
            let mut out = vec![vec![]];
            let mut last = vec![vec![]];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|s: &Vec<u8>| {
                        alphabet.iter().map(move |&c| {
                            let mut s = s.clone();
                            s.push(c);
                            s
                        })
                    })
                    .collect();
                out.extend(last.iter().cloned());
            }
            out
        }
        let patterns = all(b"*?a", 5);
        let texts = all(b"ab", 5);
        for p in &patterns {
            for t in &texts {
                assert_eq!(glob_match(p, t), reference(p, t), "{:?} {:?}", p, t);
            }
        }
    }

    #[test]
    fn a_hostile_key_costs_at_most_pattern_times_key_steps() {
        // Exponential for plain recursion (seconds of CPU for one GET of a 2 KB key), and a
        // stack frame per byte: a 6 KB key overflowed the stack of a debug build.
        let key = vec![b'a'; 64 * 1024];
        assert!(!glob_match(b"cache:*:*:*:x", &key));
        assert!(!glob_match(b"*a*a*a*a*a*a*b", &key));
        let mut cache = b"cache:".to_vec();
        cache.extend_from_slice(&key);
        assert!(glob_match(b"cache:*", &cache));
        assert!(glob_match(b"cache:*a", &cache));
    }
}
