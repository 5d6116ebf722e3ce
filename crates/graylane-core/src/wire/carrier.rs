//! The carrier traits: how the propagator reads and writes a transport's headers, and the
//! prepared [`Key`] it looks them up with.
//!
//! One small pair of traits for every transport (HTTP and gRPC headers, Kafka record headers,
//! a plain map); each adapter implements them for its own header type.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::lane::intern;

/// Reads values from a transport's headers.
///
/// Values are bytes because transports carry bytes (HTTP header values need not be UTF-8, Kafka
/// headers are opaque); graylane validates them itself.
pub trait Extractor {
    /// The first value stored under `key`, if any. Keys are lowercase; carriers whose keys are
    /// case-insensitive (HTTP) must match case-insensitively.
    fn get(&self, key: &str) -> Option<&[u8]>;

    /// [`get`](Self::get) with a prepared key. The default uses the key's name; carriers with a
    /// parsed key type of their own (`http::HeaderMap`) override it to skip parsing.
    fn get_key(&self, key: &Key) -> Option<&[u8]> {
        self.get(key.as_str())
    }

    /// Every value stored under `key`, as one list: the values in order, joined with `,`.
    /// Borrowed when there is one value, so the common case copies nothing.
    ///
    /// Repeated header lines are one comma-separated list (RFC 9110 §5.3), and whatever sits
    /// between two services may join them into one line at any time: a proxy, Envoy's header
    /// matching, a W3C baggage parser. The propagator reads its fields through this method so
    /// that it sees what they see; reading only the first line would let a second `baggage`
    /// line carry a lane past the edge unseen.
    ///
    /// The default is [`get_key`](Self::get_key)'s one value, which is right for carriers that
    /// hold one value per key (a map). Carriers that can hold several (HTTP headers, gRPC
    /// metadata, Kafka headers) override it.
    fn get_list(&self, key: &Key) -> Option<Cow<'_, [u8]>> {
        self.get_key(key).map(Cow::Borrowed)
    }
}

/// `values` joined as one list (see [`Extractor::get_list`]): borrowed when there is one.
pub fn join_values<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Option<Cow<'a, [u8]>> {
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(Cow::Borrowed(first));
    };
    let mut out = Vec::with_capacity(first.len() + second.len() + 1);
    out.extend_from_slice(first);
    for value in std::iter::once(second).chain(values) {
        out.push(b',');
        out.extend_from_slice(value);
    }
    Some(Cow::Owned(out))
}

/// A carrier key prepared once: interned, and pre-parsed for the carriers that can use it.
///
/// The propagator looks its keys up on every request, so parsing `"x-gray-lane"` into an
/// `http::HeaderName` each time would cost more than the lookup itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    name: &'static str,
    #[cfg(feature = "http")]
    header: Option<http::HeaderName>,
}

impl Key {
    /// A key for `name` (lowercase). Interned: make keys from configuration, not from input.
    pub fn new(name: &str) -> Key {
        let name = intern(name);
        Key {
            name,
            #[cfg(feature = "http")]
            // Validate first (`from_static` panics on bad names), then build from the interned
            // `'static` name so that clones share it instead of counting references.
            header: http::HeaderName::from_lowercase(name.as_bytes())
                .ok()
                .map(|_| http::HeaderName::from_static(name)),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &'static str {
        self.name
    }

    /// The parsed header name, when `name` is a valid lowercase one.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn header_name(&self) -> Option<&http::HeaderName> {
        self.header.as_ref()
    }
}

/// Writes values into a transport's headers.
///
/// Keys are `'static` and values are usually `'static` too (lane names and precomputed baggage
/// entries are interned), so carriers such as `http::HeaderMap` can store them without copying.
pub trait Injector {
    /// Stores `value` under `key`, replacing every value that was there (one line remains).
    fn set(&mut self, key: &'static str, value: Cow<'static, str>);
    /// Removes every value stored under `key`.
    fn remove(&mut self, key: &str);

    /// [`set`](Self::set) with a prepared key; see [`Extractor::get_key`].
    fn set_key(&mut self, key: &Key, value: Cow<'static, str>) {
        self.set(key.as_str(), value);
    }

    /// Stores `value` under `key` unless a value is already there; returns whether it stored.
    /// Carriers with an entry API (`http::HeaderMap`) override it to look the key up once.
    fn set_key_if_absent(&mut self, key: &Key, value: Cow<'static, str>) -> bool
    where
        Self: Extractor,
    {
        if self.get_key(key).is_some() {
            return false;
        }
        self.set_key(key, value);
        true
    }
}

impl<S: std::hash::BuildHasher> Extractor for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        HashMap::get(self, key).map(|v| v.as_bytes())
    }
}

impl<S: std::hash::BuildHasher> Injector for HashMap<String, String, S> {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        self.insert(key.to_owned(), value.into_owned());
    }
    fn remove(&mut self, key: &str) {
        HashMap::remove(self, key);
    }
}
