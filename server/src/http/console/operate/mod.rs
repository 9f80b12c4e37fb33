//! The operator console (`/console/...` for operators and admins): what is
//! happening now, and the operators' changes, made through
//! [`crate::operations`] like the CLI's and the admin API's, and audited as
//! the signed-in person's, from their address.
//!
//! One file per area: [`dashboard`], [`requests`] (with their live feed),
//! [`clients`], [`users`] (with their devices and enrollment tickets),
//! [`audit`], [`keys`], [`admin_tokens`] (admins only) and [`settings`].
//! Every change is a POST with the session's CSRF token that answers a
//! redirect (303) to the page it changed, or a page in words when the
//! change was refused.

mod admin_tokens;
mod audit;
mod clients;
mod dashboard;
mod keys;
mod requests;
mod settings;
mod users;

use std::str::FromStr;

use axum::{
    extract::{
        rejection::{PathRejection, QueryRejection},
        Path, Query,
    },
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

use super::no_store;
use crate::{
    clock::rfc3339,
    error::OAuthError,
    http::AppState,
    storage::{DenialReason, RequestSummary},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/", get(dashboard::show))
        .route("/console/requests", get(requests::list))
        .route("/console/requests/events", get(requests::events))
        .route("/console/clients", get(clients::list).post(clients::create))
        .route(
            "/console/clients/{id}",
            get(clients::show).post(clients::update),
        )
        .route("/console/clients/{id}/delete", post(clients::delete))
        .route("/console/users", get(users::list).post(users::create))
        .route("/console/users/{sub}", get(users::show).post(users::update))
        .route("/console/users/{sub}/role", post(users::set_role))
        .route("/console/users/{sub}/block", post(users::block))
        .route("/console/users/{sub}/delete", post(users::delete))
        .route("/console/users/{sub}/enroll", post(users::enroll))
        .route(
            "/console/users/{sub}/devices/{id}/revoke",
            post(users::revoke_device),
        )
        .route("/console/audit", get(audit::list))
        .route("/console/keys", get(keys::list))
        .route("/console/keys/rotate", post(keys::rotate))
        .route(
            "/console/admin-tokens",
            get(admin_tokens::list).post(admin_tokens::create),
        )
        .route(
            "/console/admin-tokens/{id}/delete",
            post(admin_tokens::delete),
        )
        .route(
            "/console/settings",
            get(settings::page_of_settings).post(settings::save),
        )
}

/// A path segment, or `not_found` when the path could not be read.
fn segment<T>(value: Result<Path<T>, PathRejection>) -> Result<T, OAuthError> {
    value
        .map(|Path(v)| v)
        .map_err(|_| OAuthError::not_found("no such page"))
}

/// A page's query, or its defaults when it cannot be read (the pages'
/// queries are only filters and notices).
fn query_or_default<T: Default>(value: Result<Query<T>, QueryRejection>) -> T {
    value.map(|Query(v)| v).unwrap_or_default()
}

/// After a change: back to `to` (303), which says what was done.
fn done(to: &str) -> Response {
    no_store(Redirect::to(to).into_response())
}

/// Everything but letters and digits is escaped in a path segment (a
/// user's `sub` may hold `/`, `?`, `#`, spaces).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// `value` as one path segment.
pub fn segment_of(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// The page of a user.
pub fn user_href(sub: &str) -> String {
    format!("/console/users/{}", segment_of(sub))
}

/// The page of a client.
pub fn client_href(client_id: &str) -> String {
    format!("/console/clients/{}", segment_of(client_id))
}

/// What a page says after a change that sent the browser back to it
/// (`?done=WORD`): fixed sentences, so that nothing of the address is
/// echoed.
#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

impl Done {
    pub fn notice(&self) -> Option<&'static str> {
        Some(match self.done.as_deref()? {
            "saved" => "Saved.",
            "created" => "Created.",
            "deleted" => "Deleted.",
            "role" => "The console role is saved. It applies from the user's next click.",
            "blocked" => "Blocked: the user's new requests and token refreshes are refused.",
            "unblocked" => "Unblocked: the user can be asked again.",
            "revoked" => "The device is revoked: it can approve nothing more.",
            "rotated" => "New keys are published; they start signing at the time shown.",
            _ => return None,
        })
    }
}

/// A time as pages show it: `2026-12-07 18:43:00 UTC`, with the machine's
/// RFC 3339 form for `<time datetime>`.
pub struct At {
    pub iso: String,
    pub text: String,
    /// The two halves of `text`, which pages keep whole when a narrow
    /// column wraps: `2026-12-07` and `18:43:00 UTC`.
    pub date: String,
    pub clock: String,
    pub ms: i64,
}

impl At {
    pub fn of(ms: i64) -> Self {
        let format =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let text = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&format).ok())
            .map_or_else(|| ms.to_string(), |t| format!("{t} UTC"));
        let (date, clock) = text.split_once(' ').unwrap_or((&text, ""));
        Self {
            iso: rfc3339(ms),
            date: date.to_string(),
            clock: clock.to_string(),
            text,
            ms,
        }
    }
}

/// A posted form's fields in order, repeated names (checkboxes) included.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed ("" when absent).
    pub fn text(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The value of `name`, or `None` when absent or blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        Some(self.text(name).to_string()).filter(|v| !v.is_empty())
    }

    /// Every value of `name` (checked checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether the checkbox `name` is checked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// The value of `name` as one of a closed set of words, refused in
    /// words naming the field as the page labels it.
    pub fn parsed<T: FromStr>(&self, name: &str, label: &str) -> Result<T, OAuthError>
    where
        T::Err: std::fmt::Display,
    {
        self.text(name)
            .parse()
            .map_err(|e| OAuthError::invalid_request(format!("{label}: {e}")))
    }
}

/// A request as the dashboard and the requests page list it.
pub struct RequestLine {
    pub id: String,
    pub created: At,
    pub decided: Option<At>,
    pub user: String,
    pub user_href: String,
    pub client: String,
    pub client_href: String,
    pub message: String,
    pub status: &'static str,
    pub not_me: bool,
}

impl RequestLine {
    pub fn of(r: &RequestSummary) -> Self {
        Self {
            id: r.id.clone(),
            created: At::of(r.created_at),
            decided: r.decided_at.map(At::of),
            user: r.user_sub.clone(),
            user_href: user_href(&r.user_sub),
            client: r.client_id.clone(),
            client_href: client_href(&r.client_id),
            message: r.binding_message.clone(),
            status: crate::operations::views::request_status(r),
            not_me: r.deny_reason == Some(DenialReason::NotMe),
        }
    }

    /// The status as a badge says it.
    pub fn status_text(&self) -> &'static str {
        if self.not_me {
            "not me"
        } else {
            self.status
        }
    }

    /// What the live feed sends of it: the row's cells.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "created": self.created.ms,
            "created_iso": self.created.iso,
            "created_text": self.created.text,
            "decided_iso": self.decided.as_ref().map(|d| &d.iso),
            "decided_text": self.decided.as_ref().map(|d| &d.text),
            "user": self.user,
            "user_href": self.user_href,
            "client": self.client,
            "client_href": self.client_href,
            "message": self.message,
            "status": self.status,
            "status_text": self.status_text(),
            "not_me": self.not_me,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_segment_escapes_what_a_path_would_read() {
        assert_eq!(segment_of("alice"), "alice");
        assert_eq!(segment_of("a/b c?d#e%"), "a%2Fb%20c%3Fd%23e%25");
        assert_eq!(segment_of("ü.x-y_z"), "%C3%BC.x-y_z");
        assert_eq!(user_href("a/b"), "/console/users/a%2Fb");
    }

    #[test]
    fn times_read_in_utc() {
        let at = At::of(1_796_669_000_000);
        assert_eq!(at.text, "2026-12-07 18:43:20 UTC");
        assert_eq!(at.iso, "2026-12-07T18:43:20Z");
        assert_eq!(
            (at.date.as_str(), at.clock.as_str()),
            ("2026-12-07", "18:43:20 UTC")
        );
    }

    #[test]
    fn fields_keep_repeated_names() {
        let fields: Fields =
            serde_urlencoded::from_str("name=+Shop+&grant=a&grant=b&on=on&blank=").unwrap();
        assert_eq!(fields.text("name"), "Shop");
        assert_eq!(fields.all("grant"), ["a", "b"]);
        assert!(fields.checked("on") && !fields.checked("off"));
        assert_eq!(fields.optional("blank"), None);
        assert_eq!(fields.optional("missing"), None);
    }

    #[test]
    fn only_known_notices_are_shown() {
        let done = |word: &str| Done {
            done: Some(word.into()),
        };
        assert_eq!(done("saved").notice(), Some("Saved."));
        assert_eq!(done("<script>").notice(), None);
        assert_eq!(Done::default().notice(), None);
    }
}
