//! `GET /device/v1/events`: a server-sent-events stream of the device user's
//! new and resolved requests, resumable with `Last-Event-ID`.

use std::{convert::Infallible, sync::atomic::Ordering, time::Duration};

use assent_shared::protocol::event;
use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::{stream, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::{
    delivery::Delivery,
    device::{self, DeviceError},
    storage::DeviceEventRow,
};

/// A stream lives at most this long; the device reconnects with a fresh
/// proof (and `Last-Event-ID`), so a revoked device drops off within it.
const MAX_STREAM_LIFETIME: Duration = Duration::from_secs(3600);
/// Most events replayed on reconnect; beyond that the device resyncs by polling.
const MAX_REPLAY: i64 = 1000;

pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, DeviceError> {
    let assent = state.assent.clone();
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let device = device::open_event_stream(&assent, device::proof_from_header(value)?).await?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());

    // Subscribe before replaying, so nothing falls between the two.
    let live = assent.delivery.subscribe(&device.user_sub);
    let mut replay = Vec::new();
    let mut resync = false;
    if let Some(last) = last_event_id {
        replay = assent
            .store
            .device_events_after(last, Some(&device.user_sub), MAX_REPLAY)
            .await?;
        resync = replay.len() as i64 == MAX_REPLAY;
    }
    let after = replay.last().map(|e| e.seq).or(last_event_id).unwrap_or(0);
    let guard = StreamGuard::new(assent.delivery.clone(), device.user_sub.clone());

    let user = device.user_sub.clone();
    let replayed = stream::iter(replay.into_iter().map(|e| Ok(to_sse(&e))));
    let resync_first =
        stream::iter(resync.then(|| Ok(Event::default().event(event::RESYNC).data("{}"))));
    let live = stream::unfold((live, guard, after), move |(mut rx, guard, mut after)| {
        let user = user.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.user_sub == user && e.seq > after => {
                        after = e.seq;
                        return Some((Ok(to_sse(&e)), (rx, guard, after)));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        let resync = Event::default().event(event::RESYNC).data("{}");
                        return Some((Ok(resync), (rx, guard, after)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    let events = replayed.chain(resync_first).chain(live);
    let bounded = end_stream(events, MAX_STREAM_LIFETIME, assent.delivery.stopping());
    let mut response = Sse::new(bounded)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    // Tell proxies such as nginx not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    Ok(response)
}

fn to_sse(e: &DeviceEventRow) -> Event {
    Event::default()
        .id(e.seq.to_string())
        .event(e.kind.as_str())
        .data(serde_json::json!({ "request_id": e.request_id }).to_string())
}

/// Ends `events` after `lifetime`, or when the server shuts down.
fn end_stream(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    lifetime: Duration,
    stopping: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let end = async move {
        tokio::select! {
            () = tokio::time::sleep(lifetime) => {}
            () = stopping => {}
        }
    };
    stream::unfold(
        (Box::pin(events), Box::pin(end)),
        |(mut events, mut end)| async move {
            tokio::select! {
                item = events.next() => item.map(|i| (i, (events, end))),
                () = &mut end => None,
            }
        },
    )
}

/// Counts open streams for `/metrics`.
/// Counts the stream as open; on drop (after the stream's receiver, which is
/// dropped first) releases its user's channel when no stream is left.
struct StreamGuard {
    delivery: std::sync::Arc<Delivery>,
    user: String,
}

impl StreamGuard {
    fn new(delivery: std::sync::Arc<Delivery>, user: String) -> Self {
        delivery.open_streams.fetch_add(1, Ordering::Relaxed);
        Self { delivery, user }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.delivery.open_streams.fetch_sub(1, Ordering::Relaxed);
        self.delivery.release(&self.user);
    }
}
