//! `ResponseFuture`: the inner service's future, whose response body gets wrapped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::Body;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::request::BodyOutcome;
use super::service::Tracked;

pin_project! {
    /// The response future of [`TcpInfoService`](crate::layer::TcpInfoService).
    ///
    /// Resolves to the inner service's response with its body wrapped in a
    /// [`ResponseBody`], or to the inner service's error, unchanged (the request is then
    /// reported with outcome `service_error`). Dropped before it resolves, the request is
    /// reported as `cancelled`.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        tracked: Option<Box<Tracked>>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(tracked) = this.project().tracked.take() {
                tracked.finish(BodyOutcome::Cancelled);
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, tracked: Option<Box<Tracked>>) -> Self {
        ResponseFuture { inner, tracked }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("tracked", &self.tracked.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Body,
{
    type Output = Result<http::Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.tracked.as_deref().and_then(Tracked::enter);
            ready!(this.inner.poll(cx))
        };
        let mut tracked = this.tracked.take();
        Poll::Ready(match result {
            Ok(response) => {
                if let Some(tracked) = tracked.as_mut() {
                    tracked.response_head(response.headers());
                }
                let length = tracked.as_ref().and_then(|_| content_length(&response));
                // HTTP sends no body with these, whatever the response holds.
                let bodyless = matches!(
                    response.status(),
                    http::StatusCode::NO_CONTENT | http::StatusCode::NOT_MODIFIED
                );
                Ok(response.map(|body| ResponseBody::new(body, tracked, length, bodyless)))
            }
            Err(e) => {
                if let Some(tracked) = tracked {
                    tracked.finish(BodyOutcome::ServiceError);
                }
                Err(e)
            }
        })
    }
}

/// The `Content-Length` header's value, if valid.
fn content_length<B>(response: &http::Response<B>) -> Option<u64> {
    response
        .headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
