//! `http::HeaderMap` as an OpenTelemetry carrier, for writing ([`HeaderCarrier`]) and reading
//! ([`HeaderReader`]). A `reqwest::Request`'s headers are an `http::HeaderMap` too.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

/// `http::HeaderMap` as an OTel carrier.
pub struct HeaderCarrier<'a>(pub &'a mut HeaderMap);

impl fmt::Debug for HeaderCarrier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderCarrier").finish_non_exhaustive()
    }
}

impl Injector for HeaderCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// `http::HeaderMap` as a read-only OTel carrier.
#[derive(Debug)]
pub struct HeaderReader<'a>(pub &'a HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
    /// Every line of a repeated header (the default would return the first only).
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let all: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!all.is_empty()).then_some(all)
    }
}
