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
    /// The response's headers (a gRPC error answered at once has its `grpc-status` there).
    fn headers(&self) -> &HeaderMap;
}

/// Whether `res` is an error: a 5xx, or a gRPC reply whose headers carry a server-side error
/// status (a "trailers-only" reply: how a gRPC server answers a call that fails before sending
/// any message — tonic does so for every error of a unary handler).
///
/// The server-side statuses are OpenTelemetry's for gRPC server spans: UNKNOWN (2),
/// DEADLINE_EXCEEDED (4), UNIMPLEMENTED (12), INTERNAL (13), UNAVAILABLE (14) and DATA_LOSS
/// (15). The others — NOT_FOUND, INVALID_ARGUMENT, ALREADY_EXISTS... — are the caller's, as a
/// 4xx is: a lane on a near-empty shadow schema answers NOT_FOUND more often, and that is no
/// regression.
pub(crate) fn is_error(res: &impl HopResponse) -> bool {
    res.status().is_server_error()
        || res
            .headers()
            .get("grpc-status")
            .is_some_and(|s| matches!(s.as_bytes(), b"2" | b"4" | b"12" | b"13" | b"14" | b"15"))
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
    fn headers(&self) -> &HeaderMap {
        http::Response::headers(self)
    }
}
