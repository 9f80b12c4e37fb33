//! Answers given before the request body was read, without resetting the
//! client's connection.
//!
//! Some requests are refused before their body is read: the wrong media
//! type, a body over the limit (after reading only part of it), an unknown
//! route or method, missing credentials. HTTP/1.1 cannot take the next
//! request from a connection whose body is still unread, and closing a
//! socket with unread bytes in it makes the kernel send a reset, which can
//! destroy the answer before the client reads it. So after the handler
//! answers, the rest of the body is read and thrown away (up to
//! [`DRAIN_LIMIT`] bytes within [`DRAIN_TIME`]), and the connection stays
//! usable; a body larger or slower than that gets `Connection: close`, so a
//! keep-alive client opens a new connection for its next request instead of
//! writing into one being closed.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{header, HeaderValue, Version},
    middleware::Next,
    response::Response,
};
use futures_util::StreamExt;
use http_body::{Body as _, Frame, SizeHint};

/// Most bytes of an unread body thrown away to keep its connection.
pub const DRAIN_LIMIT: usize = 1024 * 1024;
/// Longest time spent doing so.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

pub async fn drain_unread_body(request: Request, next: Next) -> Response {
    // No body (GET, or Content-Length: 0): nothing can be left unread, and
    // nothing to wrap. HTTP/2 streams are reset on their own, cheaply.
    if request.body().is_end_stream() || request.version() >= Version::HTTP_2 {
        return next.run(request).await;
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let request = request.map(|inner| {
        lock(&shared).body = Some(inner);
        Body::new(TrackedBody {
            shared: shared.clone(),
        })
    });
    let mut response = next.run(request).await;
    let rest = {
        let mut shared = lock(&shared);
        if shared.finished {
            None
        } else {
            shared.body.take()
        }
    };
    if let Some(rest) = rest {
        let drained = tokio::time::timeout(DRAIN_TIME, drain(rest)).await;
        if !matches!(drained, Ok(true)) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// Reads and drops what is left of `body`; whether it ended within the limit.
async fn drain(body: Body) -> bool {
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                read += bytes.len();
                if read > DRAIN_LIMIT {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// The request body, shared between the handler and the middleware so the
/// middleware can finish reading it after the handler has let go of it.
#[derive(Default)]
struct Shared {
    body: Option<Body>,
    finished: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Nothing panics while holding it; a poisoned lock still holds a body.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

struct TrackedBody {
    shared: Arc<Mutex<Shared>>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut shared = lock(&self.shared);
        let Some(body) = shared.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *body).poll_frame(cx);
        let at_end = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
            _ => false,
        };
        if at_end {
            shared.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let shared = lock(&self.shared);
        shared.finished || shared.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.shared)
            .body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}
