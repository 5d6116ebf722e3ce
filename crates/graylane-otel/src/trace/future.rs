//! The response future of [`LaneTrace`](super::LaneTrace).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use graylane_core::LaneContext;
use pin_project_lite::pin_project;
use tracing::Instrument;
use tracing::instrument::Instrumented;

use super::hop::{HopResponse, Outcome};
use super::layer::Config;

pin_project! {
    /// Response future of [`LaneTrace`](super::LaneTrace): the inner service's future, polled
    /// inside the hop's span. When it resolves, the span gets the response's status code (and
    /// an error status for a 5xx, a transport error or a server-side `grpc-status`) and the
    /// request goes into the layer's metrics — at once, or for a gRPC reply whose status comes
    /// in its trailers, when they do ([`ResponseBody`](super::body::ResponseBody)).
    ///
    /// It resolves to `http::Response<ResponseBody<B>>` for the inner service's
    /// `http::Response<B>`, or with the `reqwest` feature to the `reqwest::Response` as it is.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        started: Instant,
        ctx: LaneContext,
        config: Arc<Config>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        inner: F,
        span: tracing::Span,
        ctx: LaneContext,
        config: Arc<Config>,
    ) -> Self {
        ResponseFuture {
            inner: inner.instrument(span),
            started: Instant::now(),
            ctx,
            config,
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<R, E>>,
    R: HopResponse,
{
    type Output = Result<R::Traced, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = ready!(this.inner.as_mut().poll(cx));
        let span = this.inner.span();
        if let Ok(res) = &result {
            // As an i64: tracing-opentelemetry exports other integers as strings, and the
            // semantic conventions want an int.
            span.record(
                "http.response.status_code",
                i64::from(res.status().as_u16()),
            );
        }
        let outcome = Outcome {
            config: this.config.clone(),
            ctx: *this.ctx,
            elapsed: this.started.elapsed(),
            span: span.clone(),
            error: result.as_ref().map_or(true, super::hop::is_error),
        };
        // A transport error is recorded here, as the outcome drops.
        Poll::Ready(result.map(|res| res.traced(outcome)))
    }
}
