//! The response body of [`LaneTrace`](super::LaneTrace) over `http`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::hop::{Outcome, is_grpc_error};

pin_project! {
    /// Response body of [`LaneTrace`](super::LaneTrace): the inner body as it is. A gRPC reply
    /// whose status is not in its headers says it in its trailers, after the messages: the
    /// hop's outcome waits for them, and is an error when they carry a server-side
    /// `grpc-status` (or the body fails). Recorded when the trailers come, the body ends or is
    /// dropped, whichever is first; the duration is still the time to the response's headers.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        outcome: Option<Outcome>,
    }
}

impl<B> ResponseBody<B> {
    pub(super) fn new(inner: B, outcome: Option<Outcome>) -> ResponseBody<B> {
        ResponseBody { inner, outcome }
    }

    /// The inner body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// The inner body, consuming this one (an outcome still waiting is recorded as it stands).
    pub fn into_inner(self) -> B {
        self.inner
    }
}

/// An empty body of `B`'s (what a layer outside answers with on its own), waiting for nothing.
impl<B: Default> Default for ResponseBody<B> {
    fn default() -> Self {
        ResponseBody::new(B::default(), None)
    }
}

impl<B: fmt::Debug> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .field("waiting_for_trailers", &self.outcome.is_some())
            .finish()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(mut outcome) = this.outcome.take() {
            match &frame {
                Some(Ok(f)) => match f.trailers_ref() {
                    Some(trailers) => outcome.error |= is_grpc_error(trailers),
                    // A data frame: the trailers are still to come.
                    None => *this.outcome = Some(outcome),
                },
                Some(Err(_)) => outcome.error = true,
                // The end without trailers: a gRPC reply cut short.
                None => outcome.error = true,
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
