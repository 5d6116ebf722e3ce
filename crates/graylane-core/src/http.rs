//! `http` integration (feature `http`): `HeaderMap` as a carrier, `http::Request` as a
//! [`RequestView`] for coloring.
//!
//! One `HeaderMap` carrier serves HTTP (hyper, axum, reqwest) and gRPC (tonic works on
//! `http::Request` at the tower level).
//!
//! ```
//! use graylane_core::{Lane, LaneContext, LaneSet, Propagator};
//!
//! let gray = Lane::new("gray")?;
//! let propagator = Propagator::new(LaneSet::new([gray]));
//! let mut req = http::Request::get("/orders").body(())?;
//! propagator.inject(&LaneContext::new(gray), req.headers_mut());
//! assert_eq!(req.headers()["x-gray-lane"], "gray");
//! assert_eq!(propagator.extract(req.headers()).lane(), gray);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use crate::coloring::{RequestView, find_cookie};
use crate::wire::{Extractor, Injector, Key};

impl Extractor for HeaderMap {
    fn get(&self, key: &str) -> Option<&[u8]> {
        HeaderMap::get(self, key).map(HeaderValue::as_bytes)
    }

    fn get_key(&self, key: &Key) -> Option<&[u8]> {
        match key.header_name() {
            Some(name) => HeaderMap::get(self, name).map(HeaderValue::as_bytes),
            None => Extractor::get(self, key.as_str()),
        }
    }
}

impl Injector for HeaderMap {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        // Static names and values are stored by reference, without a copy. `from_static`
        // panics on invalid input, so it is only used after the same check it makes; anything
        // that cannot be a header is dropped rather than sent mangled.
        let name = if is_lower_token(key) {
            HeaderName::from_static(key)
        } else {
            match HeaderName::try_from(key) {
                Ok(name) => name,
                Err(_) => return,
            }
        };
        let value = match value {
            Cow::Borrowed(v) if is_header_value(v) => HeaderValue::from_static(v),
            v => match HeaderValue::try_from(v.as_ref()) {
                Ok(v) => v,
                Err(_) => return,
            },
        };
        self.insert(name, value);
    }

    fn set_key(&mut self, key: &Key, value: Cow<'static, str>) {
        match (key.header_name(), value) {
            // The common case: a prepared name and an interned value, stored without a copy.
            (Some(name), Cow::Borrowed(v)) if is_header_value(v) => {
                self.insert(name.clone(), HeaderValue::from_static(v));
            }
            (_, value) => Injector::set(self, key.as_str(), value),
        }
    }

    fn set_key_if_absent(&mut self, key: &Key, value: Cow<'static, str>) -> bool {
        let (Some(name), Cow::Borrowed(v)) = (key.header_name(), &value) else {
            if Extractor::get_key(self, key).is_some() {
                return false;
            }
            self.set_key(key, value);
            return true;
        };
        if !is_header_value(v) {
            return false;
        }
        match self.entry(name.clone()) {
            http::header::Entry::Occupied(_) => false,
            http::header::Entry::Vacant(slot) => {
                slot.insert(HeaderValue::from_static(v));
                true
            }
        }
    }

    fn remove(&mut self, key: &str) {
        HeaderMap::remove(self, key);
    }
}

/// Whether `HeaderName::from_static` accepts `key` (lowercase token characters only).
fn is_lower_token(key: &str) -> bool {
    !key.is_empty()
        && key.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// Whether `HeaderValue::from_static` accepts `v` (visible ASCII, space, tab).
fn is_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// Cookie `name` across every `cookie` header (HTTP/2 may split them).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| find_cookie(h, name))
}

impl<B> Extractor for http::Request<B> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        Extractor::get(self.headers(), key)
    }
    fn get_key(&self, key: &Key) -> Option<&[u8]> {
        self.headers().get_key(key)
    }
}

impl<B> Injector for http::Request<B> {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        Injector::set(self.headers_mut(), key, value);
    }
    fn remove(&mut self, key: &str) {
        Injector::remove(self.headers_mut(), key);
    }
    fn set_key(&mut self, key: &Key, value: Cow<'static, str>) {
        self.headers_mut().set_key(key, value);
    }
}

impl<B> RequestView for http::Request<B> {
    fn path(&self) -> &str {
        self.uri().path()
    }
    fn query(&self) -> Option<&str> {
        self.uri().query()
    }
    fn cookie(&self, name: &str) -> Option<&str> {
        cookie(self.headers(), name)
    }
}

impl Extractor for http::request::Parts {
    fn get(&self, key: &str) -> Option<&[u8]> {
        Extractor::get(&self.headers, key)
    }
    fn get_key(&self, key: &Key) -> Option<&[u8]> {
        self.headers.get_key(key)
    }
}

impl Injector for http::request::Parts {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        Injector::set(&mut self.headers, key, value);
    }
    fn remove(&mut self, key: &str) {
        Injector::remove(&mut self.headers, key);
    }
    fn set_key(&mut self, key: &Key, value: Cow<'static, str>) {
        self.headers.set_key(key, value);
    }
}

impl RequestView for http::request::Parts {
    fn path(&self) -> &str {
        self.uri.path()
    }
    fn query(&self) -> Option<&str> {
        self.uri.query()
    }
    fn cookie(&self, name: &str) -> Option<&str> {
        cookie(&self.headers, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Edge, Lane, LaneContext, LaneSet, Propagator, coloring::Rules};

    #[test]
    fn header_map_carrier() {
        let gray = Lane::new("gray").unwrap();
        let p = Propagator::new(LaneSet::new([gray]));
        let mut h = HeaderMap::new();
        h.insert("baggage", HeaderValue::from_static("k=v"));
        p.inject(&LaneContext::new(gray).with_mirror(true), &mut h);
        assert_eq!(h["x-gray-lane"], "gray");
        assert_eq!(h["x-gray-mirror"], "1");
        assert_eq!(h["baggage"], "k=v,gray.lane=gray,gray.mirror=1");
        // Header names are case-insensitive on the wire.
        let mut upper = HeaderMap::new();
        upper.insert("X-Gray-Lane", HeaderValue::from_static("gray"));
        assert_eq!(p.extract(&upper).lane(), gray);
        // Non-UTF-8 bytes are malformed, not a panic.
        let mut bad = HeaderMap::new();
        bad.insert(
            "x-gray-lane",
            HeaderValue::from_bytes(&[0xfa, 0xfb]).unwrap(),
        );
        assert!(p.extract(&bad).lane().is_base());
    }

    #[test]
    fn request_view_reads_split_cookies_and_query() {
        let req = http::Request::get("/a/b?x=1&lane=g%72ay")
            .header("cookie", "a=1")
            .header("cookie", "optin=yes")
            .body(())
            .unwrap();
        assert_eq!(RequestView::path(&req), "/a/b");
        assert_eq!(req.query_param("lane").as_deref(), Some("gray"));
        assert_eq!(RequestView::cookie(&req, "optin"), Some("yes"));
        let (parts, ()) = req.into_parts();
        assert_eq!(RequestView::cookie(&parts, "a"), Some("1"));
    }

    #[test]
    fn edge_strips_an_http_request() {
        let gray = Lane::new("gray").unwrap();
        let edge = Edge::new(Propagator::new(LaneSet::new([gray])), Rules::default());
        let mut req = http::Request::get("/")
            .header("x-gray-lane", "gray")
            .body(())
            .unwrap();
        assert!(edge.admit(&mut req).context().lane().is_base());
        assert!(req.headers().get("x-gray-lane").is_none());
    }
}
