//! The console's settings (`/console/settings`): the message an agent's
//! verification shows on the caller's device.

use askama::Template;
use axum::{
    extract::{rejection::QueryRejection, Query, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{done, query_or_default, Done, Fields};
use crate::{
    console::{self, Area, Session, DEFAULT_BINDING_TEMPLATE},
    http::{
        console::{error_page, page, source, ConsoleUser, Frame},
        AppState, RequesterAddr,
    },
};

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage<'a> {
    frame: Frame,
    template: &'a str,
    example: String,
    default_template: &'static str,
    notice: Option<&'static str>,
    problem: Option<&'a str>,
}

/// What the caller's device shows for agent Amir and ticket 4711.
fn example(template: &str) -> String {
    template
        .replace("{agent}", "Amir")
        .replace("{ticket}", "4711")
}

fn settings_page(
    session: &Session,
    template: &str,
    notice: Option<&'static str>,
    problem: Option<&str>,
) -> Response {
    page(
        if problem.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &SettingsPage {
            frame: Frame::at(session, "settings"),
            template,
            example: example(template),
            default_template: DEFAULT_BINDING_TEMPLATE,
            notice,
            problem,
        },
    )
}

/// `GET /console/settings`.
pub async fn page_of_settings(
    State(state): State<AppState>,
    user: ConsoleUser,
    query: Result<Query<Done>, QueryRejection>,
) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    match console::binding_template(&state.assent).await {
        Ok(template) => settings_page(&session, &template, query_or_default(query).notice(), None),
        Err(e) => error_page(e, Some(&session)),
    }
}

/// `POST /console/settings`: saves the template (checked as a binding
/// message with sample values), or shows why not.
pub async fn save(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    request: Request,
) -> Response {
    let (session, form): (_, Fields) =
        match user.posted(&state.assent, Area::Operate, request).await {
            Ok(posted) => posted,
            Err(refused) => return refused,
        };
    let template = form.text("binding_template");
    match console::set_binding_template(&state.assent, &session, &source(&requester), template)
        .await
    {
        Ok(()) => done("/console/settings?done=saved"),
        Err(e) if e.storage_failure().is_none() => {
            settings_page(&session, template, None, Some(&e.description))
        }
        Err(e) => error_page(e, Some(&session)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_fills_both_placeholders() {
        assert_eq!(
            super::example("Call with {agent} #{ticket}"),
            "Call with Amir #4711"
        );
    }
}
