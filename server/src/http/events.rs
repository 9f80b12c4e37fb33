//! `GET /device/v1/events`: a server-sent-events stream of the device user's
//! new and resolved requests, resumable with `Last-Event-ID`.

use std::{convert::Infallible, time::Duration};

use assent_shared::protocol::{event, DeviceEventData};
use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::{stream, Stream, StreamExt};

use super::AppState;
use crate::{
    device::{self, events::LiveEvent},
    error::DeviceError,
    storage::DeviceEventRow,
};

/// A stream lives at most this long; the device reconnects with a fresh
/// proof (and `Last-Event-ID`), so a revoked device drops off within it.
const MAX_STREAM_LIFETIME: Duration = Duration::from_secs(3600);

pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, DeviceError> {
    let assent = &state.assent;
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let opened =
        device::open_event_stream(assent, device::proof_from_header(value)?, last_event_id).await?;

    let replayed = stream::iter(opened.replay.into_iter().map(|e| Ok(to_sse(&e))));
    let resync_first = stream::iter(opened.resync.then(|| Ok(resync())));
    let live = stream::unfold(opened.live, |mut live| async move {
        let event = match live.next().await? {
            LiveEvent::Event(e) => to_sse(&e),
            LiveEvent::Resync => resync(),
        };
        Some((Ok(event), live))
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

fn resync() -> Event {
    Event::default().event(event::RESYNC).data("{}")
}

fn to_sse(e: &DeviceEventRow) -> Event {
    Event::default()
        .id(e.seq.to_string())
        .event(e.kind.as_str())
        .data(
            serde_json::to_string(&DeviceEventData {
                request_id: e.request_id.clone(),
                outcome: e.outcome.clone(),
                device: e
                    .detail
                    .as_deref()
                    .and_then(|detail| serde_json::from_str(detail).ok()),
            })
            .expect("event data serialises"),
        )
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
