//! Signing in and out: the name form, the page that shows the code to type
//! on the device and waits (it reloads itself every two seconds, so it
//! needs no script), the first operator's login link, and signing out.

use askama::Template;
use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    cookie, cookie_value, error_page, home, message_page, no_store, page, posted_form,
    session_cookie_name, sign_in_cookie_name, source, ConsoleUser,
};
use crate::{
    console::{self, SignInStatus, ABSOLUTE_TIMEOUT},
    http::{AppState, RequesterAddr},
};

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage<'a> {
    name: &'a str,
    problem: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "console/sign_in_wait.html")]
struct WaitPage<'a> {
    match_code: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "console/link.html")]
struct LinkPage;

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

#[derive(Deserialize)]
pub struct LinkForm {
    token: String,
}

#[derive(Deserialize)]
pub struct Nothing {}

/// `GET /console/sign-in`.
pub async fn form() -> Response {
    page(
        StatusCode::OK,
        &SignInPage {
            name: "",
            problem: None,
        },
    )
}

/// `POST /console/sign-in`: asks the person's devices, then waits.
pub async fn start(
    State(state): State<AppState>,
    requester: RequesterAddr,
    request: Request,
) -> Response {
    let assent = &state.assent;
    let context = requester.context(request.headers());
    let form: NameForm = match posted_form(assent, request, None).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    match console::start_sign_in(assent, &form.name, context).await {
        Ok(sign_in) => {
            let max_age = (sign_in.expires_at - assent.clock.now_ms()) / 1000;
            let mut response = no_store(Redirect::to("/console/sign-in/wait").into_response());
            response.headers_mut().insert(
                header::SET_COOKIE,
                cookie(
                    assent,
                    sign_in_cookie_name(assent),
                    &sign_in.secret,
                    max_age,
                ),
            );
            response
        }
        Err(e) if e.storage_failure().is_none() => page(
            StatusCode::BAD_REQUEST,
            &SignInPage {
                name: form.name.trim(),
                problem: Some(&e.description),
            },
        ),
        Err(e) => e.into_response(),
    }
}

/// `GET /console/sign-in/wait`: the code to type, until the device answers;
/// then the session.
pub async fn wait(
    State(state): State<AppState>,
    requester: RequesterAddr,
    headers: HeaderMap,
) -> Response {
    let assent = &state.assent;
    let secret = cookie_value(&headers, sign_in_cookie_name(assent)).unwrap_or("");
    let status = match console::sign_in_status(assent, secret, &source(&requester)).await {
        Ok(status) => status,
        Err(e) => return error_page(e, None),
    };
    let clear = cookie(assent, sign_in_cookie_name(assent), "", 0);
    match status {
        SignInStatus::Waiting { match_code } => page(
            StatusCode::OK,
            &WaitPage {
                match_code: match_code.as_deref(),
            },
        ),
        SignInStatus::SignedIn { secret, role } => {
            let mut response = no_store(home(role).into_response());
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, clear);
            headers.append(
                header::SET_COOKIE,
                cookie(
                    assent,
                    session_cookie_name(assent),
                    &secret,
                    ABSOLUTE_TIMEOUT.as_secs() as i64,
                ),
            );
            response
        }
        SignInStatus::Denied => {
            let mut response = message_page(
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                "The sign-in was denied on the device. If that was not you, tell your administrator.",
                None,
            );
            response.headers_mut().append(header::SET_COOKIE, clear);
            response
        }
        SignInStatus::Over => {
            let mut response = message_page(
                StatusCode::GONE,
                "Sign-in over",
                "This sign-in has expired or was already used. Start again.",
                None,
            );
            response.headers_mut().append(header::SET_COOKIE, clear);
            response
        }
    }
}

/// `GET /console/link`: the page of a login link; its script sends the
/// token (from the fragment, which no request line carries) by POST.
pub async fn link_page() -> Response {
    page(StatusCode::OK, &LinkPage)
}

/// `POST /console/link`: uses the link, once.
pub async fn use_link(
    State(state): State<AppState>,
    requester: RequesterAddr,
    request: Request,
) -> Response {
    let assent = &state.assent;
    let form: LinkForm = match posted_form(assent, request, None).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    match console::redeem_login_link(assent, form.token.trim(), &source(&requester)).await {
        Ok(Some((secret, role))) => {
            let mut response = no_store(home(role).into_response());
            response.headers_mut().insert(
                header::SET_COOKIE,
                cookie(
                    assent,
                    session_cookie_name(assent),
                    &secret,
                    ABSOLUTE_TIMEOUT.as_secs() as i64,
                ),
            );
            response
        }
        Ok(None) => message_page(
            StatusCode::GONE,
            "Link not valid",
            "This sign-in link has expired or was already used. Ask for a new one \
             (assent-server console login-link --user YOU).",
            None,
        ),
        Err(e) => error_page(e, None),
    }
}

/// `POST /console/sign-out`: the session ends on the server.
pub async fn sign_out(
    State(state): State<AppState>,
    requester: RequesterAddr,
    ConsoleUser(session): ConsoleUser,
    request: Request,
) -> Response {
    let assent = &state.assent;
    if let Err(refused) = posted_form::<Nothing>(assent, request, Some(&session)).await {
        return refused;
    }
    if let Err(e) = console::end_session(assent, &session, &source(&requester)).await {
        return error_page(e, Some(&session));
    }
    let mut response = no_store(Redirect::to("/console/sign-in").into_response());
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(assent, session_cookie_name(assent), "", 0),
    );
    response
}
