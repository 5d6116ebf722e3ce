//! The response future of [`LaneService`](super::LaneService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use graylane_core::{Lane, WithLane};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;

pin_project! {
    /// Response future of [`LaneService`](super::LaneService): polls the handler in its lane and marks the response.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
        mark: Option<(HeaderName, Lane)>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Handler { #[pin] inner: WithLane<F> },
        // A mirror copy for a lane this service does not have: never run as live base traffic.
        Misdirected,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) const fn new(inner: WithLane<F>, mark: Option<(HeaderName, Lane)>) -> Self {
        ResponseFuture {
            kind: Kind::Handler { inner },
            mark,
        }
    }

    /// `421 Misdirected Request`, without calling the handler.
    pub(super) const fn misdirected() -> Self {
        ResponseFuture {
            kind: Kind::Misdirected,
            mark: None,
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ResponseFuture");
        match &self.kind {
            Kind::Handler { inner } => d.field("context", &inner.context()),
            Kind::Misdirected => d.field("misdirected", &true),
        };
        d.finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = match this.kind.project() {
            KindProj::Handler { inner } => ready!(inner.poll(cx))?,
            KindProj::Misdirected => {
                let mut res = Response::new(ResBody::default());
                *res.status_mut() = StatusCode::MISDIRECTED_REQUEST;
                res
            }
        };
        if let Some((header, lane)) = this.mark.take() {
            res.headers_mut()
                .insert(header, HeaderValue::from_static(lane.as_str()));
        }
        Poll::Ready(Ok(res))
    }
}
