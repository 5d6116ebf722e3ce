//! The response future of [`LaneRouter`](super::LaneRouter) and [`LaneSwitch`](super::LaneSwitch).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::error::NoLaneVersion;
use super::table::Routed;
use crate::BoxError;

pin_project! {
    /// Response future of [`LaneRouter`](super::LaneRouter) and
    /// [`LaneSwitch`](super::LaneSwitch): the inner response with its [`Routed`] extension, or
    /// the strict-mode refusal.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Routed { #[pin] inner: F, routed: Routed },
        Refused { error: Option<NoLaneVersion> },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) const fn routed(inner: F, routed: Routed) -> Self {
        ResponseFuture {
            state: State::Routed { inner, routed },
        }
    }

    pub(super) const fn refused(error: NoLaneVersion) -> Self {
        ResponseFuture {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Routed { routed, .. } => f.debug_tuple("Routed").field(routed).finish(),
            State::Refused { error } => f.debug_tuple("Refused").field(error).finish(),
        }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Routed { inner, routed } => {
                let mut res = ready!(inner.poll(cx)).map_err(Into::into)?;
                res.extensions_mut().insert(*routed);
                Poll::Ready(Ok(res))
            }
            StateProj::Refused { error } => Poll::Ready(Err(Box::new(
                error.take().expect("a refused future is polled once"),
            ))),
        }
    }
}
