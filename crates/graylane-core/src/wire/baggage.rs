//! The W3C `baggage` header as the propagator reads and edits it: one member looked up,
//! members removed, escapes decoded. Oversized headers are refused whole.
//!
//! Members are read exactly as OpenTelemetry's `BaggagePropagator` (opentelemetry_sdk 0.33)
//! reads them — split at `,`, then `;`, then `=`, each part percent-decoded and trimmed of
//! Unicode whitespace — so that graylane and the OTel context never disagree about which member
//! is the lane, and the edge strips every member that any of them would read as one.

use std::borrow::Cow;

use crate::stats::Rejection;

/// The W3C baggage header.
pub const BAGGAGE_HEADER: &str = "baggage";
/// Baggage headers longer than this are ignored whole (the W3C limit).
pub const MAX_BAGGAGE_LEN: usize = 8192;
/// Baggage headers with more members than this are ignored whole (the W3C limit).
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

/// The value of member `key` in a W3C baggage header, read as OpenTelemetry's
/// `BaggagePropagator` reads it (see [`member`]).
///
/// `Ok(None)` when the member is absent; `Err` when the header is too large to be read, or
/// when every member named `key` has a value that is not UTF-8 once decoded. Members that do
/// not parse are skipped, as the W3C spec asks; of several members named `key` the last wins,
/// as in OTel's `Baggage`, a map.
pub(super) fn baggage_value<'a>(
    header: &'a [u8],
    key: &str,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    if header.len() > MAX_BAGGAGE_LEN {
        return Err(Rejection::Oversized);
    }
    let mut found = None;
    let mut undecodable = false;
    for (n, raw) in header.split(|b| *b == b',').enumerate() {
        if n >= MAX_BAGGAGE_MEMBERS {
            return Err(Rejection::Oversized);
        }
        let Some((k, v)) = member(raw) else {
            continue;
        };
        if decode(k, false).as_deref() != Some(key) {
            continue;
        }
        // OTel drops a member whose value is not UTF-8 and keeps an earlier one.
        match decode(v, false) {
            Some(v) => found = Some(v),
            None => undecodable = true,
        }
    }
    match found {
        None if undecodable => Err(Rejection::Malformed),
        found => Ok(found),
    }
}

/// A list member's raw key and value: the text before the first `;` (the properties follow
/// it), split at its first `=`. `None` without an `=`.
///
/// Split first and decode after, in this order, as OpenTelemetry's `BaggagePropagator` does:
/// an escaped `,`, `;` or `=` is part of a key or value, never a separator.
fn member(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let kv = raw.split(|b| *b == b';').next().unwrap_or_default();
    let eq = kv.iter().position(|b| *b == b'=')?;
    Some((&kv[..eq], &kv[eq + 1..]))
}

/// A key or value as OpenTelemetry's `BaggagePropagator` reads it: percent-decoded, then, as
/// UTF-8, trimmed of whitespace as `str::trim` trims it (Unicode's, so `%C2%A0` too). `None`
/// when it is not UTF-8 once decoded (OTel drops such members). `plus_is_space` reads `+` as a
/// space, as form decoders do.
///
/// Keys must be compared in this form: `gray%2Elane` *is* `gray.lane` to every decoder
/// downstream, so an edge that compared raw keys would let it through.
fn decode(raw: &[u8], plus_is_space: bool) -> Option<Cow<'_, str>> {
    match percent_decode(raw, plus_is_space) {
        Cow::Borrowed(raw) => std::str::from_utf8(raw)
            .ok()
            .map(|s| Cow::Borrowed(s.trim())),
        Cow::Owned(bytes) => {
            let s = String::from_utf8(bytes).ok()?;
            Some(match s.trim() {
                t if t.len() == s.len() => Cow::Owned(s),
                t => Cow::Owned(t.to_owned()),
            })
        }
    }
}

/// Whether member `raw` is named by one of `keys` in any way a reader downstream could decode
/// its key: as W3C and OTel do, or with `+` as a space as a form decoder would.
fn named_by(raw: &str, keys: &[&str]) -> bool {
    let Some((k, _)) = member(raw.as_bytes()) else {
        return false;
    };
    [false, true]
        .into_iter()
        .any(|plus_is_space| decode(k, plus_is_space).is_some_and(|k| keys.contains(&k.as_ref())))
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

/// `header` without the members named in `keys` (however their keys are spelled, see
/// [`named_by`]), or `None` when it has none of them (then the header is left as it came).
pub(super) fn without_members(header: &str, keys: &[&str]) -> Option<String> {
    if !header.split(',').any(|m| named_by(m, keys)) {
        return None;
    }
    Some(
        header
            .split(',')
            .filter(|m| !named_by(m, keys))
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect::<Vec<_>>()
            .join(","),
    )
}
