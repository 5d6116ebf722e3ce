//! The W3C `baggage` header as the propagator reads and edits it: one member looked up,
//! members removed, escapes decoded. Oversized headers are refused whole.

use std::borrow::Cow;

use crate::stats::Rejection;

/// The W3C baggage header.
pub const BAGGAGE_HEADER: &str = "baggage";
/// Baggage headers longer than this are ignored whole (the W3C limit).
pub const MAX_BAGGAGE_LEN: usize = 8192;
/// Baggage headers with more members than this are ignored whole (the W3C limit).
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

/// The value of member `key` in a W3C baggage header, percent-decoded.
///
/// `Ok(None)` when the member is absent; `Err` when the header is too large to be read.
/// Members that do not parse are skipped, as the W3C spec asks.
pub(super) fn baggage_value<'a>(
    header: &'a [u8],
    key: &str,
) -> Result<Option<Cow<'a, [u8]>>, Rejection> {
    if header.len() > MAX_BAGGAGE_LEN {
        return Err(Rejection::Oversized);
    }
    let mut found = None;
    for (n, member) in header.split(|b| *b == b',').enumerate() {
        if n >= MAX_BAGGAGE_MEMBERS {
            return Err(Rejection::Oversized);
        }
        if found.is_some() {
            continue; // keep counting members, so an oversized list is refused whole
        }
        let kv = member.split(|b| *b == b';').next().unwrap_or_default();
        let Some(eq) = kv.iter().position(|b| *b == b'=') else {
            continue;
        };
        if kv[..eq].trim_ascii() == key.as_bytes() {
            found = Some(percent_decode(kv[eq + 1..].trim_ascii(), false));
        }
    }
    Ok(found)
}

/// `%XX` escapes decoded (and `+` as a space when `plus_is_space`, for query strings).
/// Invalid escapes are kept as they are.
pub(crate) fn percent_decode(raw: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    if !raw
        .iter()
        .any(|b| *b == b'%' || (plus_is_space && *b == b'+'))
    {
        return Cow::Borrowed(raw);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// `header` without the members named in `keys`, or `None` when it has none of them (then
/// the header is left as it came).
pub(super) fn without_members(header: &str, keys: &[&str]) -> Option<String> {
    let named = |member: &str| {
        let kv = member.split(';').next().unwrap_or_default();
        let key = kv.split('=').next().unwrap_or_default().trim();
        keys.contains(&key)
    };
    if !header.split(',').any(named) {
        return None;
    }
    Some(
        header
            .split(',')
            .filter(|member| !named(member))
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect::<Vec<_>>()
            .join(","),
    )
}
