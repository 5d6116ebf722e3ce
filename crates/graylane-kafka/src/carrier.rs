//! Kafka record headers as lane carriers: [`HeaderExtractor`] for any rdkafka headers, and
//! the crate's own carriers for headers read once and headers being written.

use std::borrow::Cow;

use graylane_core::wire::join_values;
use graylane_core::{Extractor, Injector, Key, LaneContext, Propagator};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

/// Kafka headers as a lane carrier for reading (any `rdkafka` headers: borrowed or owned).
#[derive(Debug)]
pub struct HeaderExtractor<'a, H: Headers>(pub &'a H);

impl<H: Headers> Extractor for HeaderExtractor<'_, H> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        // Kafka header keys are case-sensitive; graylane writes lowercase keys. The first value
        // of one key, as for HTTP.
        (0..self.0.count())
            .filter_map(|i| self.0.try_get(i))
            .find(|h| h.key == key)
            .and_then(|h| h.value)
    }

    /// Every value of the key, joined as one list, as for HTTP: a record with two lane
    /// headers carries `gray,blue`, which is no lane, not a choice of the first.
    fn get_list(&self, key: &Key) -> Option<Cow<'_, [u8]>> {
        join_values(
            (0..self.0.count())
                .filter_map(|i| self.0.try_get(i))
                .filter(|h| h.key == key.as_str())
                .filter_map(|h| h.value),
        )
    }
}

/// The lane context of a record with these headers. Each header is read from librdkafka once
/// (a record has few): `HeaderExtractor` would read them again for every key the propagator
/// asks for, each time through FFI, `strlen` and a UTF-8 check.
pub(crate) fn extract_from<H: Headers>(propagator: &Propagator, headers: &H) -> LaneContext {
    match try_extract_from(propagator, headers) {
        Ok(ctx) => ctx.unwrap_or_else(LaneContext::base),
        // Counted as `Propagator::extract` counts it.
        Err(_) => propagator.extract(&HeaderExtractor(headers)),
    }
}

/// Like [`extract_from`], but a refused lane mark (an unknown lane, a malformed or oversized
/// value) is an error, uncounted, for the consumer to apply its policy to.
pub(crate) fn try_extract_from<H: Headers>(
    propagator: &Propagator,
    headers: &H,
) -> Result<Option<LaneContext>, graylane_core::Rejection> {
    const READ_ONCE: usize = 4;
    let n = headers.count();
    if n > READ_ONCE {
        return propagator.try_extract(&HeaderExtractor(headers));
    }
    let mut read: [(&str, Option<&[u8]>); READ_ONCE] = [("", None); READ_ONCE];
    let mut len = 0;
    for i in 0..n {
        if let Some(h) = headers.try_get(i) {
            read[len] = (h.key, h.value);
            len += 1;
        }
    }
    propagator.try_extract(&ReadExtractor(&read[..len]))
}

/// Headers already read, read as [`HeaderExtractor`] reads them.
struct ReadExtractor<'a>(&'a [(&'a str, Option<&'a [u8]>)]);

impl Extractor for ReadExtractor<'_> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.iter().find(|(k, _)| *k == key).and_then(|(_, v)| *v)
    }

    fn get_list(&self, key: &Key) -> Option<Cow<'_, [u8]>> {
        join_values(
            self.0
                .iter()
                .filter(|(k, _)| *k == key.as_str())
                .filter_map(|(_, v)| *v),
        )
    }
}

/// Headers being assembled for a record: `OwnedHeaders` can only be appended to, so graylane
/// edits a list and builds the headers once.
#[derive(Debug, Default)]
pub(crate) struct ListInjector(pub(crate) Vec<(String, Option<Vec<u8>>)>);

impl ListInjector {
    pub(crate) fn from_headers(headers: Option<&OwnedHeaders>) -> ListInjector {
        ListInjector(
            headers
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    pub(crate) fn build(self) -> OwnedHeaders {
        self.0.iter().fold(
            OwnedHeaders::new_with_capacity(self.0.len()),
            |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: v.as_deref(),
                })
            },
        )
    }
}

impl Extractor for ListInjector {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    fn get_list(&self, key: &Key) -> Option<Cow<'_, [u8]>> {
        join_values(
            self.0
                .iter()
                .filter(|(k, _)| k == key.as_str())
                .filter_map(|(_, v)| v.as_deref()),
        )
    }
}

impl Injector for ListInjector {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        self.0.retain(|(k, _)| k != key);
        self.0
            .push((key.to_owned(), Some(value.into_owned().into_bytes())));
    }
    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }
}

/// Headers for a record that had none, the common case: keys are static and values usually
/// borrowed, and the propagator writes at most three of them (lane, mirror, baggage), so they
/// are gathered on the stack; nothing is allocated until the headers are built, once.
#[derive(Debug, Default)]
pub(crate) struct FreshInjector {
    entries: [(&'static str, Cow<'static, str>); 3],
    len: usize,
    /// Any further keys (none from today's propagator; kept rather than dropped).
    more: Vec<(&'static str, Cow<'static, str>)>,
}

impl FreshInjector {
    fn iter(&self) -> impl Iterator<Item = &(&'static str, Cow<'static, str>)> {
        self.entries[..self.len].iter().chain(&self.more)
    }

    pub(crate) fn build(&self) -> OwnedHeaders {
        self.iter().fold(
            OwnedHeaders::new_with_capacity(self.len + self.more.len()),
            |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            },
        )
    }
}

impl Extractor for FreshInjector {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_bytes())
    }
}

impl Injector for FreshInjector {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        if let Some(slot) = self.entries[..self.len]
            .iter_mut()
            .chain(&mut self.more)
            .find(|(k, _)| *k == key)
        {
            slot.1 = value;
        } else if self.len < self.entries.len() {
            self.entries[self.len] = (key, value);
            self.len += 1;
        } else {
            self.more.push((key, value));
        }
    }

    fn remove(&mut self, key: &str) {
        self.more.retain(|(k, _)| *k != key);
        let mut kept = 0;
        for i in 0..self.len {
            if self.entries[i].0 != key {
                self.entries.swap(kept, i);
                kept += 1;
            }
        }
        self.len = kept;
    }
}

/// The lane context of a consumed message: its lane (configured lanes only; anything else is
/// base and counted), marked as coming from the wire.
///
/// Cost note: librdkafka caches a consumed record's parsed headers but not their absence, so
/// on a `BorrowedMessage` without headers every `headers()` call (this one, and the one in
/// `detach()`) allocates and parses again. On a hot path, call `headers()` once and extract
/// from it with [`HeaderExtractor`] (`LaneConsumer` does both for you).
pub fn lane_of<M: Message>(propagator: &Propagator, message: &M) -> LaneContext {
    match message.headers() {
        Some(h) => extract_from(propagator, h),
        None => LaneContext::base(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graylane_core::Lane;

    #[test]
    fn headers_read_once_extract_like_the_extractor() {
        let gray = Lane::new("gray").unwrap();
        let p = Propagator::new(graylane_core::LaneSet::new([gray]));
        let h = |pairs: &[(&str, &str)]| {
            pairs.iter().fold(OwnedHeaders::new(), |h, &(key, v)| {
                h.insert(Header {
                    key,
                    value: Some(v),
                })
            })
        };
        let cases = [
            h(&[]),
            h(&[("x-gray-lane", "gray")]),
            h(&[("trace", "1"), ("baggage", "gray.lane=gray")]),
            h(&[("x-gray-lane", "gray"), ("x-gray-mirror", "1")]),
            h(&[("x-gray-lane", "nope"), ("x-gray-lane", "gray")]),
            // More than are read at once: the extractor's path.
            h(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4"),
                ("x-gray-lane", "gray"),
            ]),
        ];
        for headers in &cases {
            assert_eq!(
                format!("{:?}", extract_from(&p, headers)),
                format!("{:?}", p.extract(&HeaderExtractor(headers)))
            );
        }
        assert_eq!(extract_from(&p, &cases[5]).lane(), gray);
        assert!(extract_from(&p, &cases[3]).is_mirror());
    }

    #[test]
    fn two_lane_headers_on_a_record_are_one_list_which_is_no_lane() {
        let gray = Lane::new("gray").unwrap();
        let p = Propagator::new(graylane_core::LaneSet::new([gray]));
        let twice = |first: &'static str, second: &'static str| {
            OwnedHeaders::new()
                .insert(Header {
                    key: "x-gray-lane",
                    value: Some(first),
                })
                .insert(Header {
                    key: "x-gray-lane",
                    value: Some(second),
                })
        };
        for headers in [
            twice("gray", "blue"),
            twice("blue", "gray"),
            twice("gray", "gray"),
        ] {
            // The read-once path and the extractor agree: refused, whichever comes first.
            assert_eq!(
                try_extract_from(&p, &headers),
                Err(graylane_core::Rejection::Malformed),
                "{:?}",
                headers.iter().map(|h| h.value).collect::<Vec<_>>()
            );
            assert!(p.try_extract(&HeaderExtractor(&headers)).is_err());
        }
        // Past the read-once bound too.
        let many = twice("gray", "blue")
            .insert(Header {
                key: "a",
                value: Some("1"),
            })
            .insert(Header {
                key: "b",
                value: Some("2"),
            })
            .insert(Header {
                key: "c",
                value: Some("3"),
            });
        assert!(try_extract_from(&p, &many).is_err());
    }

    #[test]
    fn fresh_headers_keep_every_key_once_in_order() {
        let mut f = FreshInjector::default();
        for (k, v) in [
            ("a", "1"),
            ("b", "2"),
            ("a", "3"),
            ("c", "4"),
            ("d", "5"),
            ("e", "6"),
        ] {
            f.set(k, Cow::Borrowed(v));
        }
        f.remove("b");
        f.remove("e");
        let got: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        assert_eq!(got, [("a", "3"), ("c", "4"), ("d", "5")]);
        assert_eq!(f.get("d"), Some(&b"5"[..]));
        assert_eq!(f.get("b"), None);
        let built = f.build();
        assert_eq!(built.count(), 3);
        assert_eq!(built.get(2).key, "d");
    }
}
