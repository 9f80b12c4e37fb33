//! The operator console (`/console/`): what is happening now, and the
//! operators' changes, made through [`crate::operations`] like the CLI's
//! and the admin API's, and audited as the signed-in person's.

use askama::Template;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use super::{error_page, page, ConsoleUser, Frame};
use crate::{
    console::Area,
    http::AppState,
    operations::{views, Operator, RequestFilter},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/console/", get(dashboard))
}

/// A request as the dashboard lists it.
pub struct RequestLine {
    pub created: String,
    pub user: String,
    pub client: String,
    pub message: String,
    pub status: &'static str,
    pub not_me: bool,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct Dashboard {
    frame: Frame,
    pending: i64,
    clients: usize,
    users: usize,
    devices: usize,
    requests: Vec<RequestLine>,
}

/// `GET /console/`.
async fn dashboard(State(state): State<AppState>, user: ConsoleUser) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let assent = &state.assent;
    let op = Operator::serving(assent, session.actor(), String::new());
    let loaded = async {
        let pending = assent
            .store
            .count_pending_requests(assent.clock.now_ms())
            .await?;
        let clients = op.clients().await?.len();
        let users = op.users().await?.len();
        let devices = op
            .devices(None)
            .await?
            .iter()
            .filter(|d| d.revoked_at.is_none())
            .count();
        let requests = op
            .requests(&RequestFilter {
                user: None,
                not_me: false,
                limit: 50,
            })
            .await?;
        Ok::<_, crate::error::OAuthError>((pending, clients, users, devices, requests))
    };
    let (pending, clients, users, devices, requests) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return error_page(e, Some(&session)),
    };
    let requests = requests
        .iter()
        .map(|r| RequestLine {
            created: crate::clock::rfc3339(r.created_at),
            user: r.user_sub.clone(),
            client: r.client_id.clone(),
            message: r.binding_message.clone(),
            status: views::request_status(r),
            not_me: r.deny_reason == Some(crate::storage::DenialReason::NotMe),
        })
        .collect();
    page(
        StatusCode::OK,
        &Dashboard {
            frame: Frame::of(&session),
            pending,
            clients,
            users,
            devices,
            requests,
        },
    )
}
