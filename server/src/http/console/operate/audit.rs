//! The audit log (`/console/audit`): every operator change, newest first,
//! filtered by the start of the action (`client.`, `user.block`).

use askama::Template;
use axum::{
    extract::{rejection::QueryRejection, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{query_or_default, At};
use crate::{
    console::Area,
    error::OAuthError,
    http::{
        console::{error_page, page, ConsoleUser, Frame},
        AppState,
    },
    operations::{Operator, MAX_LISTED},
    storage::AuditRow,
};

/// How many entries the page lists when not told.
const DEFAULT_LIMIT: i64 = 200;

/// The actions' prefixes the filter suggests.
const PREFIXES: [&str; 8] = [
    "client.",
    "user.",
    "device.",
    "enrollment_ticket.",
    "api.",
    "key.",
    "admin_token.",
    "console.",
];

/// An entry as the page shows it.
pub struct Entry {
    pub at: At,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub target: String,
    /// The details as compact JSON, or empty for none.
    pub details: String,
    /// How many fields the details have; many are folded away.
    pub fields: usize,
}

/// Details longer than this are folded (a client's whole settings).
const SHORT_DETAILS: usize = 80;

impl Entry {
    pub fn folded(&self) -> bool {
        self.details.chars().count() > SHORT_DETAILS
    }

    /// The action's words between its dots (a narrow column breaks there).
    pub fn action_parts(&self) -> Vec<&str> {
        self.action.split('.').collect()
    }
}

impl Entry {
    fn of(e: &AuditRow) -> Self {
        let (details, fields) = match serde_json::from_str::<serde_json::Value>(&e.details) {
            Ok(serde_json::Value::Object(map)) if map.is_empty() => (String::new(), 0),
            Ok(serde_json::Value::Object(map)) => {
                (serde_json::to_string(&map).unwrap_or_default(), map.len())
            }
            Ok(value) => (value.to_string(), 1),
            Err(_) => (e.details.clone(), 1),
        };
        Self {
            at: At::of(e.at),
            actor: e.actor.clone(),
            source: e.source.clone(),
            action: e.action.clone(),
            target: e.target.clone().unwrap_or_default(),
            details,
            fields,
        }
    }
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    limit: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    frame: Frame,
    action: String,
    limit: i64,
    prefixes: &'static [&'static str],
    entries: Vec<Entry>,
}

fn limit(value: &str) -> Result<i64, OAuthError> {
    if value.trim().is_empty() {
        return Ok(DEFAULT_LIMIT);
    }
    value
        .trim()
        .parse()
        .ok()
        .filter(|l| (1..=MAX_LISTED).contains(l))
        .ok_or_else(|| {
            OAuthError::invalid_request(format!(
                "\u{201c}At most\u{201d} must be a number from 1 to {MAX_LISTED}"
            ))
        })
}

/// `GET /console/audit?action=PREFIX&limit=`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let query = query_or_default(query);
    let action = query.action.trim().to_string();
    let op = Operator::serving(&state.assent, session.actor(), String::new());
    let loaded = async {
        let limit = limit(&query.limit)?;
        let prefix = Some(action.as_str()).filter(|a| !a.is_empty());
        Ok::<_, OAuthError>((limit, op.audit_log(prefix, limit).await?))
    };
    let (limit, entries) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return error_page(e, Some(&session)),
    };
    page(
        StatusCode::OK,
        &AuditPage {
            frame: Frame::at(&session, "audit"),
            action,
            limit,
            prefixes: &PREFIXES,
            entries: entries.iter().map(Entry::of).collect(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_read_as_compact_json() {
        let row = |details: &str| AuditRow {
            id: 1,
            at: 0,
            actor: "console:olga".into(),
            action: "user.block".into(),
            target: None,
            details: details.into(),
            source: "127.0.0.1".into(),
        };
        assert_eq!(Entry::of(&row("{}")).details, "");
        let short = Entry::of(&row("{\"a\": 1}"));
        assert_eq!((short.details.as_str(), short.fields), ("{\"a\":1}", 1));
        assert!(!short.folded());
        let long = format!("{{\"a\": \"{}\", \"b\": 2}}", "x".repeat(100));
        let long = Entry::of(&row(&long));
        assert!(long.folded() && long.fields == 2);
        assert_eq!(Entry::of(&row("not json")).details, "not json");
    }

    #[test]
    fn the_limit_is_checked() {
        assert_eq!(limit("").unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit("7").unwrap(), 7);
        assert!(limit("0").is_err() && limit("x").is_err());
    }
}
