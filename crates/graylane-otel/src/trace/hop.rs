//! What a hop's span reads from a request and its response, whatever their types: the one
//! span-opening and outcome-recording code serves `http::Request` / `http::Response` here and
//! `reqwest::Request` / `reqwest::Response` in `graylane_otel::reqwest`.

use graylane_core::LaneContext;
use http::{HeaderMap, Method, StatusCode};

/// A request [`LaneTrace`](super::LaneTrace) opens a span for.
pub(crate) trait HopRequest {
    fn method(&self) -> &Method;
    fn path(&self) -> &str;
    fn headers(&self) -> &HeaderMap;
    fn headers_mut(&mut self) -> &mut HeaderMap;
    /// The lane a graylane layer decided for this request, if one did (server side).
    fn decided_lane(&self) -> Option<LaneContext>;
}

/// A response whose status the span and the metrics record.
pub(crate) trait HopResponse {
    fn status(&self) -> StatusCode;
}

impl<B> HopRequest for http::Request<B> {
    fn method(&self) -> &Method {
        http::Request::method(self)
    }
    fn path(&self) -> &str {
        self.uri().path()
    }
    fn headers(&self) -> &HeaderMap {
        http::Request::headers(self)
    }
    fn headers_mut(&mut self) -> &mut HeaderMap {
        http::Request::headers_mut(self)
    }
    fn decided_lane(&self) -> Option<LaneContext> {
        self.extensions().get::<LaneContext>().copied()
    }
}

impl<B> HopResponse for http::Response<B> {
    fn status(&self) -> StatusCode {
        http::Response::status(self)
    }
}
