//! The response future of [`LaneService`](super::LaneService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use graylane_core::{Lane, WithLane};
use http::{HeaderName, HeaderValue, Response};
use pin_project_lite::pin_project;

pin_project! {
    /// Response future of [`LaneService`](super::LaneService): polls the handler in its lane and marks the response.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: WithLane<F>,
        mark: Option<(HeaderName, Lane)>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) const fn new(inner: WithLane<F>, mark: Option<(HeaderName, Lane)>) -> Self {
        ResponseFuture { inner, mark }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("context", &self.inner.context())
            .finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        if let Some((header, lane)) = this.mark.take() {
            res.headers_mut()
                .insert(header, HeaderValue::from_static(lane.as_str()));
        }
        Poll::Ready(Ok(res))
    }
}
