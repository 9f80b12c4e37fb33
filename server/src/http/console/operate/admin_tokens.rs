//! Admin tokens (`/console/admin-tokens`, admins only): the tokens of the
//! admin API, issuing one (its value shown once) and deleting.

use askama::Template;
use axum::{
    extract::{
        rejection::{PathRejection, QueryRejection},
        Path, Query, Request, State,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{done, query_or_default, segment, segment_of, At, Done, Fields};
use crate::{
    admin::AdminScope,
    clock::now_ms,
    console::Area,
    error::OAuthError,
    http::{
        console::{error_page, page, source, ConsoleUser, Frame},
        AppState, RequesterAddr,
    },
    operations::{views::words, NewAdminToken, Operator},
    storage::AdminTokenRow,
};

/// The lifetimes the form offers, in seconds (0: never expires).
const EXPIRIES: [(u64, &str); 5] = [
    (7 * 24 * 3600, "7 days"),
    (30 * 24 * 3600, "30 days"),
    (90 * 24 * 3600, "90 days"),
    (365 * 24 * 3600, "1 year"),
    (0, "Never"),
];

/// What each scope allows, in words.
const SCOPES: [(AdminScope, &str); 3] = [
    (AdminScope::Enroll, "Issue enrollment tickets"),
    (
        AdminScope::Read,
        "Read clients, users, devices and requests",
    ),
    (AdminScope::Admin, "Everything"),
];

/// A token as the list shows it.
pub struct TokenLine {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created: At,
    pub expires: Option<At>,
    pub expired: bool,
    pub delete_href: String,
}

impl TokenLine {
    fn of(t: &AdminTokenRow) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            scopes: words(&t.scopes).join(", "),
            created: At::of(t.created_at),
            expires: t.expires_at.map(At::of),
            expired: t.expires_at.is_some_and(|at| at <= now_ms()),
            delete_href: format!("/console/admin-tokens/{}/delete", segment_of(&t.id)),
        }
    }
}

/// A scope as the form offers it.
pub struct Scope {
    pub value: &'static str,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "console/admin_tokens.html")]
struct TokensPage {
    frame: Frame,
    tokens: Vec<TokenLine>,
    notice: Option<&'static str>,
    scopes: Vec<Scope>,
    expiries: &'static [(u64, &'static str)],
}

#[derive(Template)]
#[template(path = "console/admin_token_created.html")]
struct CreatedPage {
    frame: Frame,
    token: TokenLine,
    value: String,
}

/// `GET /console/admin-tokens`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    query: Result<Query<Done>, QueryRejection>,
) -> Response {
    let session = match user.allowed(Area::Administer) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let op = Operator::serving(&state.assent, session.actor(), String::new());
    let mut tokens = match op.admin_tokens().await {
        Ok(t) => t,
        Err(e) => return error_page(e, Some(&session)),
    };
    tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    page(
        StatusCode::OK,
        &TokensPage {
            frame: Frame::at(&session, "admin-tokens"),
            tokens: tokens.iter().map(TokenLine::of).collect(),
            notice: query_or_default(query).notice(),
            scopes: SCOPES
                .iter()
                .map(|&(s, label)| Scope {
                    value: s.as_str(),
                    label,
                })
                .collect(),
            expiries: &EXPIRIES,
        },
    )
}

/// The token the form asks for.
fn new_token(form: &Fields) -> Result<NewAdminToken, OAuthError> {
    let scopes = form
        .all("scope")
        .into_iter()
        .map(|s| {
            s.parse::<AdminScope>()
                .map_err(|e| OAuthError::invalid_request(format!("Scopes: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        return Err(OAuthError::invalid_request(
            "Scopes: choose what the token may do",
        ));
    }
    let expiry: u64 = form
        .text("expires_in")
        .parse()
        .ok()
        .filter(|secs| EXPIRIES.iter().any(|(s, _)| s == secs))
        .ok_or_else(|| OAuthError::invalid_request("Expires: choose one of the times offered"))?;
    Ok(NewAdminToken {
        name: form.text("name").into(),
        scopes,
        expires_in: (expiry != 0).then_some(expiry),
        no_expiry: expiry == 0,
    })
}

/// `POST /console/admin-tokens`: issues the token and shows it, once.
pub async fn create(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    request: Request,
) -> Response {
    let (session, form): (_, Fields) =
        match user.posted(&state.assent, Area::Administer, request).await {
            Ok(posted) => posted,
            Err(refused) => return refused,
        };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    match async { op.create_admin_token(new_token(&form)?).await }.await {
        Ok(created) => page(
            StatusCode::CREATED,
            &CreatedPage {
                frame: Frame::at(&session, "admin-tokens"),
                token: TokenLine::of(&created.row),
                value: created.token,
            },
        ),
        Err(e) => error_page(e, Some(&session)),
    }
}

/// `POST /console/admin-tokens/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (session, _): (_, Fields) =
        match user.posted(&state.assent, Area::Administer, request).await {
            Ok(posted) => posted,
            Err(refused) => return refused,
        };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    match async { op.delete_admin_token(&segment(id)?).await }.await {
        Ok(()) => done("/console/admin-tokens?done=deleted"),
        Err(e) => error_page(e, Some(&session)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_as_offered() {
        let form = |s: &str| -> Fields { serde_urlencoded::from_str(s).unwrap() };
        let t = new_token(&form("name=Help+desk&scope=enroll&scope=read&expires_in=0")).unwrap();
        assert_eq!(t.name, "Help desk");
        assert_eq!(t.scopes, [AdminScope::Enroll, AdminScope::Read]);
        assert!(t.no_expiry && t.expires_in.is_none());
        let t = new_token(&form("name=x&scope=admin&expires_in=604800")).unwrap();
        assert_eq!(t.expires_in, Some(604_800));
        assert!(!t.no_expiry);
        assert!(new_token(&form("name=x&expires_in=0")).is_err(), "no scope");
        assert!(new_token(&form("name=x&scope=root&expires_in=0")).is_err());
        assert!(new_token(&form("name=x&scope=read&expires_in=5")).is_err());
    }
}
