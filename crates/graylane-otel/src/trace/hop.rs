//! What a hop's span reads from a request and its response, whatever their types: the one
//! span-opening and outcome-recording code serves `http::Request` / `http::Response` here and
//! `reqwest::Request` / `reqwest::Response` in `graylane_otel::reqwest`.

use std::sync::Arc;
use std::time::Duration;

use graylane_core::LaneContext;
use http::{HeaderMap, Method, StatusCode};

use super::body::ResponseBody;
use super::layer::Config;

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
///
/// Sealed: `pub` in a private module only because [`ResponseFuture`](super::future::ResponseFuture)'s
/// output names [`HopResponse::Traced`]; nothing outside this crate can name or implement it.
#[allow(unreachable_pub)]
pub trait HopResponse: Sized {
    /// The response as the layer returns it.
    type Traced;
    fn status(&self) -> StatusCode;
    /// The response's headers (a gRPC error answered at once has its `grpc-status` there).
    fn headers(&self) -> &HeaderMap;
    /// The response with its `outcome`: recorded now (dropped), or, for a gRPC reply whose
    /// status comes in its trailers, when they come.
    fn traced(self, outcome: Outcome) -> Self::Traced;
}

/// A hop's outcome for the span and the metrics, recorded when it is dropped.
#[allow(unreachable_pub)]
pub struct Outcome {
    pub(super) config: Arc<Config>,
    pub(super) ctx: LaneContext,
    /// The time to the response's headers.
    pub(super) elapsed: Duration,
    pub(super) span: tracing::Span,
    pub(crate) error: bool,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("ctx", &self.ctx)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // 5xx, transport errors and gRPC server errors, in the headers or the trailers.
        if self.error {
            self.span.record("otel.status_code", "error");
        }
        self.config.record(self.ctx, self.elapsed, self.error);
    }
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
    res.status().is_server_error() || is_grpc_error(res.headers())
}

/// Whether `headers` (a reply's headers or trailers) carry a server-side `grpc-status`.
pub(crate) fn is_grpc_error(headers: &HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|s| matches!(s.as_bytes(), b"2" | b"4" | b"12" | b"13" | b"14" | b"15"))
}

/// Whether `headers` are a gRPC reply's whose status is still to come, in trailers.
fn grpc_status_in_trailers(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|c| c.as_bytes().starts_with(b"application/grpc"))
        && !headers.contains_key("grpc-status")
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
    type Traced = http::Response<ResponseBody<B>>;
    fn status(&self) -> StatusCode {
        http::Response::status(self)
    }
    fn headers(&self) -> &HeaderMap {
        http::Response::headers(self)
    }
    fn traced(self, outcome: Outcome) -> Self::Traced {
        let waits = !outcome.error && grpc_status_in_trailers(self.headers());
        let outcome = waits.then_some(outcome);
        self.map(|body| ResponseBody::new(body, outcome))
    }
}
