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
use crate::wire::{Extractor, Injector, Key, join_values};

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

    fn get_list(&self, key: &Key) -> Option<Cow<'_, [u8]>> {
        let all = match key.header_name() {
            Some(name) => self.get_all(name),
            None => self.get_all(key.as_str()),
        };
        join_values(all.iter().map(HeaderValue::as_bytes))
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
    fn get_list(&self, key: &Key) -> Option<Cow<'_, [u8]>> {
        self.headers().get_list(key)
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
    fn get_list(&self, key: &Key) -> Option<Cow<'_, [u8]>> {
        self.headers.get_list(key)
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
    use crate::{Edge, Lane, LaneContext, LaneSet, Propagator, Rejection, coloring::Rules};

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

    fn lines<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn every_baggage_line_is_stripped_at_the_edge() {
        let gray = Lane::new("gray").unwrap();
        let edge = Edge::new(Propagator::new(LaneSet::new([gray])), Rules::default());
        for (first, second) in [
            ("team=checkout", "gray.lane=gray"),
            ("gray.lane=gray", "user=42"),
            ("team=checkout", "gray.mirror=1, user=42"),
        ] {
            let mut req = http::Request::get("/")
                .header("baggage", first)
                .header("baggage", second)
                .header("x-gray-lane", "gray")
                .header("x-gray-lane", "gray")
                .body(())
                .unwrap();
            let admitted = edge.admit(&mut req);
            assert!(admitted.context().lane().is_base(), "{first} / {second}");
            assert!(admitted.stripped());
            // The members that are not lane marks stay, on one line.
            let kept: Vec<&str> = [first, second]
                .iter()
                .flat_map(|l| l.split(','))
                .map(str::trim)
                .filter(|m| !m.starts_with("gray."))
                .collect();
            assert_eq!(lines(req.headers(), "baggage"), [kept.join(",")]);
            assert!(lines(req.headers(), "x-gray-lane").is_empty());
            assert_eq!(edge.propagator().try_extract(req.headers()), Ok(None));
        }
    }

    #[test]
    fn every_line_is_read_as_one_list() {
        let gray = Lane::new("gray").unwrap();
        let p = Propagator::new(LaneSet::new([gray, Lane::new("blue").unwrap()]));
        let mut h = HeaderMap::new();
        h.append("baggage", HeaderValue::from_static("team=checkout"));
        h.append("baggage", HeaderValue::from_static("gray.lane=gray"));
        assert_eq!(p.extract(&h).lane(), gray, "the lane on a second line");
        h.append("baggage", HeaderValue::from_static("gray.mirror=1"));
        assert!(p.extract(&h).is_mirror());

        // Two lane header lines are the value `gray,blue` to a proxy and to Envoy's header
        // match: no lane.
        let mut h = HeaderMap::new();
        h.append("x-gray-lane", HeaderValue::from_static("gray"));
        h.append("x-gray-lane", HeaderValue::from_static("blue"));
        assert_eq!(p.try_extract(&h), Err(Rejection::Malformed));

        // Injecting keeps the members of every line.
        let mut h = HeaderMap::new();
        h.append("baggage", HeaderValue::from_static("a=1"));
        h.append("baggage", HeaderValue::from_static("b=2"));
        p.inject(&LaneContext::new(gray), &mut h);
        assert_eq!(lines(&h, "baggage"), ["a=1,b=2,gray.lane=gray"]);

        // A lane already on a later line is not overridden.
        let mut h = HeaderMap::new();
        h.append("baggage", HeaderValue::from_static("a=1"));
        h.append("baggage", HeaderValue::from_static("gray.lane=blue"));
        p.inject(&LaneContext::new(gray), &mut h);
        h.remove("x-gray-lane");
        assert_eq!(p.extract(&h).lane(), "blue");
    }

    #[test]
    fn a_token_sent_twice_is_no_token() {
        let gray = Lane::new("gray").unwrap();
        let key = crate::trust::TokenKey::new(b"edge secret, 16 bytes or more").unwrap();
        let edge = Edge::new(Propagator::new(LaneSet::new([gray])), Rules::default())
            .with_tokens(key.clone());
        let now = std::time::SystemTime::now();
        let token = key.mint(gray, now + std::time::Duration::from_secs(60));
        let mut req = http::Request::get("/")
            .header("x-gray-lane-token", &token)
            .header("x-gray-lane-token", "another")
            .body(())
            .unwrap();
        let admitted = edge.admit_at(&mut req, now);
        assert!(admitted.context().lane().is_base());
        assert_eq!(admitted.token(), Some(Err(Rejection::TokenMalformed)));
        assert!(lines(req.headers(), "x-gray-lane-token").is_empty());
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
