//! Back-channel requests (`/console/requests`): the latest, filtered by
//! user and "this wasn't me", and live: the page's script listens to
//! `/console/requests/events`, which sends each request that starts or is
//! decided from then on (every server process writes these changes to the
//! database, so one stream sees the whole fleet's).

use std::{convert::Infallible, time::Duration};

use askama::Template;
use axum::{
    extract::{rejection::QueryRejection, Query, State},
    http::{HeaderMap, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::stream;
use serde::Deserialize;

use super::RequestLine;
use crate::{
    console::{Area, IDLE_TIMEOUT},
    error::OAuthError,
    http::{
        console::{error_page, no_store, page, ConsoleUser, Frame},
        AppState,
    },
    operations::{Operator, RequestFilter, MAX_LISTED},
    storage::{DenialReason, RequestSummary},
};

/// How many requests the page lists when not told.
const DEFAULT_LIMIT: i64 = 100;

/// How often the stream looks for changes.
const FEED_INTERVAL: Duration = Duration::from_secs(2);

/// The longest a stream stays open; the browser then reconnects, and the
/// session is checked again.
const MAX_FEED_LIFETIME: Duration = Duration::from_secs(3600);

/// Most changes one look sends.
const FEED_BATCH: i64 = 200;

/// How far back a reconnecting stream catches up (`Last-Event-ID`), in
/// device events; further back it starts from now.
const MAX_CATCH_UP: i64 = 1000;

#[derive(Deserialize, Default)]
pub struct RequestQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    not_me: String,
    #[serde(default)]
    limit: String,
}

impl RequestQuery {
    fn user(&self) -> Option<String> {
        Some(self.user.trim().to_string()).filter(|u| !u.is_empty())
    }

    fn not_me(&self) -> bool {
        !self.not_me.is_empty()
    }

    fn limit(&self) -> Result<i64, OAuthError> {
        let limit = self.limit.trim();
        if limit.is_empty() {
            return Ok(DEFAULT_LIMIT);
        }
        limit
            .parse()
            .ok()
            .filter(|l| (1..=MAX_LISTED).contains(l))
            .ok_or_else(|| {
                OAuthError::invalid_request(format!(
                    "\u{201c}At most\u{201d} must be a number from 1 to {MAX_LISTED}"
                ))
            })
    }

    /// Whether the stream sends `r` to a page with these filters.
    fn matches(&self, r: &RequestSummary) -> bool {
        self.user().is_none_or(|u| u == r.user_sub)
            && (!self.not_me() || r.deny_reason == Some(DenialReason::NotMe))
    }
}

#[derive(Template)]
#[template(path = "console/requests.html")]
struct RequestsPage {
    frame: Frame,
    user: String,
    not_me: bool,
    limit: i64,
    requests: Vec<RequestLine>,
    filtered: bool,
    /// The live stream with the page's filters.
    feed: String,
}

fn query(value: Result<Query<RequestQuery>, QueryRejection>) -> Result<RequestQuery, OAuthError> {
    value
        .map(|Query(q)| q)
        .map_err(|e| OAuthError::invalid_request(format!("the filters are not valid: {e}")))
}

/// `GET /console/requests?user=&not_me=1&limit=`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    filters: Result<Query<RequestQuery>, QueryRejection>,
) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let op = Operator::serving(&state.assent, session.actor(), String::new());
    let loaded = async {
        let filters = query(filters)?;
        let limit = filters.limit()?;
        let requests = op
            .requests(&RequestFilter {
                user: filters.user(),
                not_me: filters.not_me(),
                limit,
            })
            .await?;
        Ok::<_, OAuthError>((filters, limit, requests))
    };
    let (filters, limit, requests) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return error_page(e, Some(&session)),
    };
    let feed = format!(
        "/console/requests/events?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("user", filters.user().as_deref().unwrap_or(""))
            .append_pair("not_me", if filters.not_me() { "1" } else { "" })
            .finish()
    );
    page(
        StatusCode::OK,
        &RequestsPage {
            frame: Frame::at(&session, "requests"),
            user: filters.user().unwrap_or_default(),
            not_me: filters.not_me(),
            limit,
            filtered: filters.user().is_some() || filters.not_me(),
            requests: requests.iter().map(RequestLine::of).collect(),
            feed,
        },
    )
}

/// Where a reconnecting browser's stream left off (`Last-Event-ID`), if
/// not too far back.
fn resume_from(headers: &HeaderMap, current: i64) -> i64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|&seq| seq <= current && seq >= current - MAX_CATCH_UP)
        .unwrap_or(current)
}

/// `GET /console/requests/events?user=&not_me=1`: server-sent events, one
/// `request` event (the row's cells as JSON) whenever a request the
/// filters let through starts or is decided. A stream lasts at most an
/// hour, no longer than the session's idle timeout (so that a page left
/// alone stops showing requests when its session would end) nor its
/// absolute expiry; it ends when the server stops.
pub async fn events(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    filters: Result<Query<RequestQuery>, QueryRejection>,
) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let filters = match query(filters) {
        Ok(f) => f,
        Err(e) => return error_page(e, Some(&session)),
    };
    let assent = &state.assent;
    let store = assent.store.clone();
    let current = match store.last_device_event_seq().await {
        Ok(seq) => seq,
        Err(e) => return error_page(e.into(), Some(&session)),
    };
    let start = resume_from(&headers, current);
    let left = Duration::from_millis(
        u64::try_from(session.expires_at - assent.clock.now_ms()).unwrap_or(0),
    );
    let lifetime = MAX_FEED_LIFETIME.min(IDLE_TIMEOUT).min(left);
    let changes = stream::unfold(
        (store, start, filters),
        |(store, after, filters)| async move {
            loop {
                match store.request_changes_after(after, FEED_BATCH).await {
                    Ok((requests, next)) if next != after => {
                        let shown: Vec<&RequestSummary> =
                            requests.iter().filter(|r| filters.matches(r)).collect();
                        let count = shown.len();
                        let events: Vec<Result<Event, Infallible>> = shown
                            .into_iter()
                            .enumerate()
                            .map(|(i, r)| {
                                let event = Event::default()
                                    .event("request")
                                    .data(RequestLine::of(r).json().to_string());
                                // The last of a batch carries where to resume.
                                Ok(if i + 1 == count {
                                    event.id(next.to_string())
                                } else {
                                    event
                                })
                            })
                            .collect();
                        if events.is_empty() {
                            tokio::time::sleep(FEED_INTERVAL).await;
                        }
                        return Some((stream::iter(events), (store, next, filters)));
                    }
                    Ok(_) => tokio::time::sleep(FEED_INTERVAL).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "the console's request stream could not read changes");
                        tokio::time::sleep(FEED_INTERVAL).await;
                    }
                }
            }
        },
    );
    let flat = futures_util::StreamExt::flatten(changes);
    let stopping = assent.delivery.stopping();
    let stop = async move {
        tokio::select! {
            () = stopping => {}
            () = tokio::time::sleep(lifetime) => {}
        }
    };
    let bounded = futures_util::StreamExt::take_until(flat, Box::pin(stop));
    no_store(
        Sse::new(bounded)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(user: &str, not_me: &str, limit: &str) -> RequestQuery {
        RequestQuery {
            user: user.into(),
            not_me: not_me.into(),
            limit: limit.into(),
        }
    }

    #[test]
    fn filters_read_as_the_form_sends_them() {
        assert_eq!(q("", "", "").limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(q("", "", " 5 ").limit().unwrap(), 5);
        assert!(q("", "", "0").limit().is_err());
        assert!(q("", "", "many").limit().is_err());
        assert_eq!(q("  ", "", "").user(), None);
        assert_eq!(q(" alice ", "1", "").user().as_deref(), Some("alice"));
        assert!(q("", "1", "").not_me() && !q("", "", "").not_me());
    }

    #[test]
    fn a_stream_resumes_only_from_near_where_it_is() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("last-event-id", v.parse().unwrap());
            h
        };
        assert_eq!(resume_from(&HeaderMap::new(), 5000), 5000);
        assert_eq!(resume_from(&headers("4990"), 5000), 4990);
        assert_eq!(resume_from(&headers("6000"), 5000), 5000, "not ahead");
        assert_eq!(resume_from(&headers("10"), 5000), 5000, "not too far back");
        assert_eq!(resume_from(&headers("x"), 5000), 5000);
    }
}
