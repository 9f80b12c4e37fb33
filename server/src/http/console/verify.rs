//! The agent console (`/console/verify`): find the caller, send, read the
//! code out, watch the answer arrive (server-sent events; without a script
//! the page reloads itself).

use std::{convert::Infallible, time::Duration};

use askama::Template;
use axum::{
    extract::{rejection::PathRejection, Path, Request, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Redirect, Response,
    },
};
use futures_util::stream;
use serde::Deserialize;

use super::{error_page, no_store, page, posted_form, ConsoleUser, Frame};
use crate::{
    clock::rfc3339,
    console::{self, Area, Verification, VerificationStatus},
    http::{AppState, RequesterAddr},
};

/// How often a verification's page looks for the answer.
const STATUS_INTERVAL: Duration = Duration::from_millis(1000);

/// An agent's verification as the pages show it.
pub struct Shown {
    pub id: String,
    pub user: String,
    pub binding_message: String,
    pub match_code: Option<String>,
    pub started: String,
    pub status: &'static str,
    pub status_text: String,
    pub is_final: bool,
}

impl Shown {
    fn of(v: &Verification, status: &VerificationStatus) -> Self {
        Self {
            id: v.row.id.clone(),
            user: v.row.user_sub.clone(),
            binding_message: v.row.binding_message.clone(),
            match_code: v.row.match_code.clone(),
            started: rfc3339(v.row.created_at),
            status: status.word(),
            status_text: status_text(status, &v.row.user_sub),
            is_final: status.is_final(),
        }
    }
}

/// The status in words for the agent.
fn status_text(status: &VerificationStatus, user: &str) -> String {
    match status {
        VerificationStatus::Waiting { pushed_at: None } => {
            "Sent. Waiting for the caller's device.".into()
        }
        VerificationStatus::Waiting {
            pushed_at: Some(at),
        } => format!(
            "Delivered to the caller's device at {}. Waiting for their answer.",
            rfc3339(*at)
        ),
        VerificationStatus::Approved { at } => {
            format!(
                "Verified: {user} approved on their device at {}.",
                rfc3339(*at)
            )
        }
        VerificationStatus::Denied { not_me: false, .. } => {
            "Denied on the device. The caller is not verified.".into()
        }
        VerificationStatus::Denied { not_me: true, .. } => {
            "The device's owner answered \u{201c}This wasn't me\u{201d}. Do not proceed; \
             the caller may not be who they say."
                .into()
        }
        VerificationStatus::Expired => {
            "Expired without an answer. The caller is not verified.".into()
        }
    }
}

#[derive(Template)]
#[template(path = "console/verify.html")]
struct VerifyPage<'a> {
    frame: Frame,
    caller: &'a str,
    ticket: &'a str,
    template: String,
    problem: Option<&'a str>,
    recent: Vec<Shown>,
}

#[derive(Template)]
#[template(path = "console/verification.html")]
struct VerificationPage {
    frame: Frame,
    v: Shown,
}

#[derive(Deserialize)]
pub struct StartForm {
    caller: String,
    #[serde(default)]
    ticket: String,
}

async fn verify_page(
    state: &AppState,
    session: &console::Session,
    caller: &str,
    ticket: &str,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let assent = &state.assent;
    let template = match console::binding_template(assent).await {
        Ok(t) => t,
        Err(e) => return error_page(e, Some(session)),
    };
    let mut recent = Vec::new();
    match console::recent_verifications(assent, session, 10).await {
        Ok(list) => {
            for v in list {
                match console::verification_status(assent, &v).await {
                    Ok(s) => recent.push(Shown::of(&v, &s)),
                    Err(e) => return error_page(e, Some(session)),
                }
            }
        }
        Err(e) => return error_page(e, Some(session)),
    }
    page(
        status,
        &VerifyPage {
            frame: Frame::at(session, "verify"),
            caller,
            ticket,
            template,
            problem,
            recent,
        },
    )
}

/// `GET /console/verify`.
pub async fn form_page(State(state): State<AppState>, user: ConsoleUser) -> Response {
    let session = match user.allowed(Area::Verify) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    verify_page(&state, &session, "", "", None, StatusCode::OK).await
}

/// `POST /console/verify`: sends the request, then shows it.
pub async fn start(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    request: Request,
) -> Response {
    let session = match user.allowed(Area::Verify) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let context = requester.context(request.headers());
    let form: StartForm = match posted_form(&state.assent, request, Some(&session)).await {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    match console::start_verification(&state.assent, &session, &form.caller, &form.ticket, context)
        .await
    {
        Ok(v) => no_store(Redirect::to(&format!("/console/verify/{}", v.row.id)).into_response()),
        Err(e) if e.storage_failure().is_none() => {
            verify_page(
                &state,
                &session,
                form.caller.trim(),
                form.ticket.trim(),
                Some(&e.description),
                crate::http::errors::oauth_status(e.code),
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /console/verify/{id}`: the code in large type and the status.
pub async fn verification(
    State(state): State<AppState>,
    user: ConsoleUser,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let session = match user.allowed(Area::Verify) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let Ok(Path(id)) = id else {
        return error_page(
            crate::error::OAuthError::not_found("no such verification"),
            Some(&session),
        );
    };
    let assent = &state.assent;
    let shown = match console::verification(assent, &session, &id).await {
        Ok(v) => match console::verification_status(assent, &v).await {
            Ok(s) => Shown::of(&v, &s),
            Err(e) => return error_page(e, Some(&session)),
        },
        Err(e) => return error_page(e, Some(&session)),
    };
    page(
        StatusCode::OK,
        &VerificationPage {
            frame: Frame::at(&session, "verify"),
            v: shown,
        },
    )
}

/// `GET /console/verify/{id}/events`: a `status` event now and whenever the
/// status changes, until it is final.
pub async fn events(
    State(state): State<AppState>,
    user: ConsoleUser,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let session = match user.allowed(Area::Verify) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let Ok(Path(id)) = id else {
        return error_page(
            crate::error::OAuthError::not_found("no such verification"),
            Some(&session),
        );
    };
    let v = match console::verification(&state.assent, &session, &id).await {
        Ok(v) => v,
        Err(e) => return error_page(e, Some(&session)),
    };
    let assent = state.assent.clone();
    // (last status sent, finished)
    let updates = stream::unfold(
        (assent, v, None::<&'static str>, false),
        |(assent, v, last, done)| async move {
            if done {
                return None;
            }
            loop {
                let status = match console::verification_status(&assent, &v).await {
                    Ok(s) => s,
                    Err(_) => {
                        tokio::time::sleep(STATUS_INTERVAL).await;
                        continue;
                    }
                };
                if last != Some(status.word()) {
                    let shown = Shown::of(&v, &status);
                    let data = serde_json::json!({
                        "status": shown.status,
                        "text": shown.status_text,
                        "final": shown.is_final,
                    });
                    let event: Result<Event, Infallible> =
                        Ok(Event::default().event("status").data(data.to_string()));
                    let finished = status.is_final();
                    return Some((event, (assent, v, Some(status.word()), finished)));
                }
                tokio::time::sleep(STATUS_INTERVAL).await;
            }
        },
    );
    let stopping = state.assent.delivery.stopping();
    let bounded = futures_util::StreamExt::take_until(updates, Box::pin(stopping));
    no_store(
        Sse::new(bounded)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
    )
}
