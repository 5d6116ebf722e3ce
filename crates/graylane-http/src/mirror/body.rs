//! The response body of [`Mirror`](super::Mirror): the primary's body as it is, and for a
//! compared request a copy of it taken as it streams to the client.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::oneshot;

use super::compare::Captured;

pin_project! {
    /// The response body of [`Mirror`](super::Mirror). Frames pass through untouched; when
    /// the request is compared, their bytes are also copied (up to the cap) and handed to the
    /// comparison once the body has ended. Nothing here waits on the mirror.
    pub struct MirrorBody<B> {
        #[pin]
        inner: B,
        capture: Option<Capture>,
    }
}

impl<B> MirrorBody<B> {
    pub(super) const fn plain(inner: B) -> MirrorBody<B> {
        MirrorBody {
            inner,
            capture: None,
        }
    }

    pub(super) fn captured(inner: B, capture: Capture) -> MirrorBody<B>
    where
        B: Body,
    {
        // A server that knows a body has ended (an empty one, say) never polls it.
        if inner.is_end_stream() {
            capture.finish();
            return MirrorBody::plain(inner);
        }
        MirrorBody {
            inner,
            capture: Some(capture),
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for MirrorBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirrorBody")
            .field("inner", &self.inner)
            .field("captured", &self.capture.is_some())
            .finish()
    }
}

impl<B: Body> Body for MirrorBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let polled = ready!(this.inner.as_mut().poll_frame(cx));
        match (&polled, this.capture.as_mut()) {
            (Some(Ok(frame)), Some(capture)) => {
                if let Some(data) = frame.data_ref() {
                    capture.push(data);
                }
            }
            // A failed body is not a response to compare: the comparison sees it dropped.
            (Some(Err(_)), _) => *this.capture = None,
            _ => {}
        }
        if (polled.is_none() || this.inner.is_end_stream())
            && let Some(capture) = this.capture.take()
        {
            capture.finish();
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the comparison gets of the primary response: the response, or `None` when its body was
/// beyond the cap. A capture dropped unfinished (the client went away) sends nothing.
pub(crate) type Primary = Option<Captured>;

/// The copy of a primary response being taken.
pub(crate) struct Capture {
    head: Captured,
    limit: usize,
    buf: BytesMut,
    too_large: bool,
    tx: oneshot::Sender<Primary>,
}

impl Capture {
    /// A capture of the response whose status and headers are `head`, body up to `limit`.
    pub(crate) fn new(head: Captured, limit: usize, tx: oneshot::Sender<Primary>) -> Capture {
        Capture {
            head,
            limit,
            buf: BytesMut::new(),
            too_large: false,
            tx,
        }
    }

    fn push(&mut self, data: &impl Buf) {
        let chunk = data.chunk();
        // A chunked buffer cannot be copied without consuming it: such a body is not compared.
        if self.too_large
            || chunk.len() != data.remaining()
            || self.buf.len() + chunk.len() > self.limit
        {
            self.too_large = true;
            self.buf = BytesMut::new();
            return;
        }
        self.buf.extend_from_slice(chunk);
    }

    fn finish(self) {
        let primary = (!self.too_large).then(|| Captured {
            body: Bytes::from(self.buf),
            ..self.head
        });
        // The comparison may have given up waiting: then nobody is listening.
        let _ = self.tx.send(primary);
    }
}
