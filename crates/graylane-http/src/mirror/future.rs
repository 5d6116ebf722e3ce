//! The response future of [`Mirror`](super::Mirror).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::body::MirrorBody;
use crate::BoxError;

pub(super) type BoxedResponse<B> =
    Pin<Box<dyn Future<Output = Result<Response<MirrorBody<B>>, BoxError>> + Send>>;

pin_project! {
    /// Response future of [`Mirror`](super::Mirror). Requests that are not mirrored are not boxed.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        // Not mirrored: the inner future as it is.
        Passthrough { #[pin] inner: F },
        // Mirrored: reads the body, spawns the copy, then runs the primary.
        Mirroring { inner: BoxedResponse<B> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) const fn passthrough(inner: F) -> Self {
        ResponseFuture {
            state: State::Passthrough { inner },
        }
    }

    pub(super) const fn mirroring(inner: BoxedResponse<B>) -> Self {
        ResponseFuture {
            state: State::Mirroring { inner },
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match &self.state {
            State::Passthrough { .. } => "ResponseFuture::Passthrough",
            State::Mirroring { .. } => "ResponseFuture::Mirroring",
        })
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<MirrorBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Passthrough { inner } => inner
                .poll(cx)
                .map_ok(|res| res.map(MirrorBody::plain))
                .map_err(Into::into),
            StateProj::Mirroring { inner } => inner.as_mut().poll(cx),
        }
    }
}
