//! `ResponseBody`: the response body, whose end (or drop) ends the request.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use hyper::body::Buf;
use pin_project_lite::pin_project;

use super::request::BodyOutcome;
use super::service::Tracked;

pin_project! {
    /// The response body of [`TcpInfoService`](crate::layer::TcpInfoService): the inner
    /// body, frame for frame, with the same size hint and end of stream.
    ///
    /// The request ends exactly once, at the first of: a frame after which the body
    /// reports its end (`is_end_stream`), the end of the stream (`None`), an error
    /// (outcome `body_error`), or the drop (`completed` if every byte of a body of known
    /// length was yielded, since HTTP/1.1 servers stop polling then; `cancelled`
    /// otherwise). The response to a `HEAD` request, a 204 or 304 response and a body
    /// already at its end end the request when the response is ready.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        tracked: Option<Box<Tracked>>,
        // The body's length when known (size hint or `Content-Length`).
        length: Option<u64>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(tracked) = this.tracked.take() {
                let outcome = if *this.length == Some(tracked.body_bytes()) {
                    BodyOutcome::Completed
                } else {
                    BodyOutcome::Cancelled
                };
                tracked.finish(outcome);
            }
        }
    }
}

impl<B: Body> ResponseBody<B> {
    /// Wraps `inner`, whose length is known from its size hint or else from
    /// `content_length` (the response header). A `bodyless` response (204, 304), like the
    /// answer to a `HEAD` request, ends the request now: no body goes out.
    pub(crate) fn new(
        inner: B,
        mut tracked: Option<Box<Tracked>>,
        content_length: Option<u64>,
        bodyless: bool,
    ) -> Self {
        // An unmeasured request (no `tracked`) asks nothing of the body.
        let Some(t) = tracked.as_deref() else {
            return ResponseBody {
                inner,
                tracked,
                length: None,
            };
        };
        let no_body = bodyless || t.is_head();
        if (no_body || inner.is_end_stream())
            && let Some(tracked) = tracked.take()
        {
            tracked.finish(BodyOutcome::Completed);
        }
        let length = inner.size_hint().exact().or(content_length);
        ResponseBody {
            inner,
            tracked,
            length,
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("tracked", &self.tracked.is_some())
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = {
            let _entered = this.tracked.as_deref().and_then(Tracked::enter);
            ready!(this.inner.as_mut().poll_frame(cx))
        };
        let Some(tracked) = this.tracked.as_mut() else {
            return Poll::Ready(frame);
        };
        let outcome = match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    tracked.count_body(data.remaining());
                }
                this.inner.is_end_stream().then_some(BodyOutcome::Completed)
            }
            Some(Err(_)) => Some(BodyOutcome::BodyError),
            None => Some(BodyOutcome::Completed),
        };
        if let Some(outcome) = outcome
            && let Some(tracked) = this.tracked.take()
        {
            tracked.finish(outcome);
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
