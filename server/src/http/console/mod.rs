//! The consoles' pages (`/console/...`): server-rendered HTML from
//! compile-time templates (askama), usable without JavaScript; one small
//! script of our own (`console.js`) adds live updates, sorting and
//! filtering of tables, and confirmations. Nothing is loaded from
//! elsewhere, and the CSP says so.
//!
//! Every page needs a session (else it sends the browser to the sign-in
//! page); every change is a POST with the session's CSRF token, from this
//! origin. The session cookie is HttpOnly and SameSite=Strict, and Secure
//! (with the `__Host-` prefix) when the issuer is https.

mod operate;
mod sign_in;
mod verify;

use askama::Template;
use axum::{
    extract::{FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use serde::de::DeserializeOwned;

use super::{form::read_body, AppState, RequesterAddr};
use crate::{
    console::{self, Area, Session},
    error::OAuthError,
    state::Assent,
    users::Role,
};

/// What console pages may load and do: their own files, requests and
/// forms to this origin; no inline script or style, no frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Largest form a console page posts.
const MAX_FORM_BYTES: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/sign-in", get(sign_in::form).post(sign_in::start))
        .route("/console/sign-in/wait", get(sign_in::wait))
        .route(
            "/console/link",
            get(sign_in::link_page).post(sign_in::use_link),
        )
        .route("/console/sign-out", post(sign_in::sign_out))
        .route(
            "/console/verify",
            get(verify::form_page).post(verify::start),
        )
        .route("/console/verify/{id}", get(verify::verification))
        .route("/console/verify/{id}/events", get(verify::events))
        .route("/console/assets/{file}", get(asset))
        .merge(operate::router())
}

// ---- cookies ---------------------------------------------------------------------

/// Whether cookies are `Secure` (and `__Host-`): under an https issuer.
fn secure(assent: &Assent) -> bool {
    assent.endpoints.issuer.starts_with("https://")
}

pub(super) fn session_cookie_name(assent: &Assent) -> &'static str {
    if secure(assent) {
        "__Host-assent-console"
    } else {
        "assent-console"
    }
}

fn sign_in_cookie_name(assent: &Assent) -> &'static str {
    if secure(assent) {
        "__Host-assent-console-sign-in"
    } else {
        "assent-console-sign-in"
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure under https.
fn cookie(assent: &Assent, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if secure(assent) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie values are base64url")
}

pub(super) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

// ---- sessions --------------------------------------------------------------------

/// A page's signed-in user. Without a current session the browser goes to
/// the sign-in page (an event stream or script gets 401).
pub struct ConsoleUser(pub Session);

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let assent = &state.assent;
        let secret = cookie_value(&parts.headers, session_cookie_name(assent)).unwrap_or("");
        match console::session(assent, secret).await {
            Ok(Some(session)) => Ok(ConsoleUser(session)),
            Ok(None) => Err(to_sign_in(parts)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// Where a request without a session goes: pages to the sign-in page,
/// event streams and scripts a plain 401.
fn to_sign_in(parts: &Parts) -> Response {
    let wants_html = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html || parts.method == axum::http::Method::POST {
        no_store(Redirect::to("/console/sign-in").into_response())
    } else {
        no_store((StatusCode::UNAUTHORIZED, "sign in at /console/sign-in").into_response())
    }
}

impl ConsoleUser {
    /// The session, if its role opens `area`.
    pub fn allowed(self, area: Area) -> Result<Session, NotForRole> {
        if self.0.role.may(area) {
            Ok(self.0)
        } else {
            Err(NotForRole(self.0))
        }
    }
}

impl ConsoleUser {
    /// A change posted from a console page by a session whose role opens
    /// `area`: the session and its form (Origin and CSRF token checked), or
    /// the page that refuses it.
    pub async fn posted<T: DeserializeOwned>(
        self,
        assent: &Assent,
        area: Area,
        request: Request,
    ) -> Result<(Session, T), Response> {
        let session = self.allowed(area).map_err(IntoResponse::into_response)?;
        let form = posted_form(assent, request, Some(&session)).await?;
        Ok((session, form))
    }
}

/// A signed-in person on a page their role does not open.
pub struct NotForRole(Session);

impl IntoResponse for NotForRole {
    fn into_response(self) -> Response {
        message_page(
            StatusCode::FORBIDDEN,
            "Not for your role",
            "Your console role does not open this page.",
            Some(&self.0),
        )
    }
}

// ---- forms and CSRF -------------------------------------------------------------------

/// A posted form of this origin, with the session's CSRF token when there
/// is a session.
pub async fn posted_form<T: DeserializeOwned>(
    assent: &Assent,
    request: Request,
    session: Option<&Session>,
) -> Result<T, Response> {
    let (parts, body) = request.into_parts();
    if !same_origin(assent, &parts.headers) {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was not sent from this console.",
            session,
        ));
    }
    let bytes = read_body(body, MAX_FORM_BYTES)
        .await
        .map_err(IntoResponse::into_response)?;
    if let Some(session) = session {
        let csrf = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if !console::csrf_matches(session, &csrf) {
            return Err(message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form has expired or did not come from this console. Go back, reload the page and try again.",
                Some(session),
            ));
        }
    }
    serde_urlencoded::from_bytes(&bytes).map_err(|e| {
        message_page(
            StatusCode::BAD_REQUEST,
            "The form is incomplete",
            &format!("{e}"),
            session,
        )
    })
}

/// The request comes from a page of this origin: its `Origin` (browsers
/// send one with every POST) is the issuer's.
pub(super) fn same_origin(assent: &Assent, headers: &HeaderMap) -> bool {
    let issuer = assent.endpoints.issuer.trim_end_matches('/');
    let issuer_origin = match reqwest::Url::parse(issuer) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => return false,
    };
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin == issuer_origin,
        None => false,
    }
}

fn source(requester: &RequesterAddr) -> String {
    requester
        .0
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

// ---- pages ---------------------------------------------------------------------

/// What every page's frame shows of the signed-in person.
pub struct Frame {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub operate: bool,
    pub verify: bool,
    /// Admin tokens and key rotation (admins).
    pub administer: bool,
    /// The navigation entry of the page (`aria-current`), or empty.
    pub current: &'static str,
}

impl Frame {
    pub fn of(session: &Session) -> Self {
        Self {
            user: session.user_sub.clone(),
            role: session.role.as_str(),
            csrf: session.csrf.clone(),
            operate: session.role.may(Area::Operate),
            verify: session.role.may(Area::Verify),
            administer: session.role.may(Area::Administer),
            current: "",
        }
    }

    /// The frame of a page that is the navigation's entry `current`.
    pub fn at(session: &Session, current: &'static str) -> Self {
        Self {
            current,
            ..Self::of(session)
        }
    }
}

/// A rendered page with the console's headers: its CSP, no caching, no framing.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            no_store(response)
        }
        Err(e) => {
            tracing::error!(error = %e, "a console page could not be rendered");
            OAuthError::server_error().into_response()
        }
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    frame: Option<Frame>,
    title: &'a str,
    message: &'a str,
}

/// A page that only says something (a refusal, an ending).
pub fn message_page(
    status: StatusCode,
    title: &str,
    message: &str,
    session: Option<&Session>,
) -> Response {
    page(
        status,
        &MessagePage {
            frame: session.map(Frame::of),
            title,
            message,
        },
    )
}

/// An error of a domain call, as a page in words.
pub fn error_page(error: OAuthError, session: Option<&Session>) -> Response {
    if error.storage_failure().is_some() || error.code == crate::error::OAuthErrorCode::ServerError
    {
        return error.into_response();
    }
    let status = super::errors::oauth_status(error.code);
    message_page(status, "That did not work", &error.description, session)
}

/// Where a role lands after sign-in.
pub fn home(role: Role) -> Redirect {
    Redirect::to(role.home())
}

// ---- assets ------------------------------------------------------------------------

/// `GET /console/assets/{file}`: the stylesheet and script, built in.
async fn asset(file: axum::extract::Path<String>) -> Response {
    let (content_type, bytes): (&str, &'static [u8]) = match file.0.as_str() {
        "console.css" => (
            "text/css; charset=utf-8",
            include_bytes!("../../../assets/console/console.css"),
        ),
        "console.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("../../../assets/console/console.js"),
        ),
        _ => return OAuthError::not_found("no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response()
}
