//! The admin API (`/admin/v1/...`): JSON in, JSON out, for operators'
//! scripts and the consoles' scripts. Every call is authenticated by an
//! admin token (`Authorization: Bearer`) whose scopes allow it (`read` for
//! reading, `enroll` for enrollment tickets, `admin` for everything), or by
//! a console session whose role allows it (operators and admins; admin
//! tokens and key rotation: admins), whose changes carry the session's
//! CSRF token in `X-CSRF-Token`. The changes go through
//! [`crate::operations`], as the CLI's do, and land in the audit log under
//! the token's or the person's name.

use std::{convert::Infallible, str::FromStr, time::Duration};

use axum::{
    body::Body,
    extract::{
        rejection::{PathRejection, QueryRejection},
        Path, Query, Request, State,
    },
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    Json,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use futures_util::{stream, Stream};
use serde::{de::DeserializeOwned, Deserialize, Deserializer};
use serde_json::{json, Value};

use super::{console as console_http, form::read_body, AppState, RequesterAddr};
use crate::{
    admin::{self, AdminScope},
    audit::Actor,
    ciba::{CIBA_GRANT, REFRESH_GRANT},
    client_auth::AuthMethod,
    clients::NewClient,
    clock::rfc3339,
    console::{self, Area, Session},
    device::DEFAULT_TICKET_TTL_SECS,
    error::{OAuthError, OAuthErrorCode},
    keys::{KeyPurpose, TokenAlg},
    operations::{
        views, ApiGrant, ClientUpdate, NewAdminToken, NewApiSpec, Operator, RequestFilter,
        UserUpdate,
    },
    qr,
    storage::{ClientChanges, MfaPolicy, NumberMatching, UserVerificationPolicy},
    users::{NewUser, Role},
};

/// Largest admin request body, in bytes (a client's JWKS is the largest part).
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// How often the live request feed looks for changes.
const FEED_INTERVAL: Duration = Duration::from_secs(2);

/// The longest a feed stays open.
const MAX_FEED_LIFETIME: Duration = Duration::from_secs(3600);

/// Most changes one look of the feed sends.
const FEED_BATCH: i64 = 200;

/// What a call does, and so who may make it: an admin token whose scopes
/// allow it, or a console session whose role does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reads (scope `read`; operators and admins).
    Read,
    /// Issues enrollment tickets (scope `enroll`; operators and admins).
    Enroll,
    /// Changes clients, users, devices, APIs (scope `admin`; operators and admins).
    Change,
    /// Admin tokens and key rotation (scope `admin`; console admins only).
    Administer,
}

impl Access {
    fn scope(self) -> AdminScope {
        match self {
            Access::Read => AdminScope::Read,
            Access::Enroll => AdminScope::Enroll,
            Access::Change | Access::Administer => AdminScope::Admin,
        }
    }

    fn area(self) -> Area {
        match self {
            Access::Administer => Area::Administer,
            Access::Read | Access::Enroll | Access::Change => Area::Operate,
        }
    }
}

/// The operator making the call: the bearer admin token's, or (without an
/// `Authorization` header) the console session's. A session's changes
/// carry its CSRF token in `X-CSRF-Token` and come from the console's origin.
async fn operator<'a>(
    state: &'a AppState,
    method: &Method,
    headers: &HeaderMap,
    requester: &RequesterAddr,
    access: Access,
) -> Result<Operator<'a>, OAuthError> {
    let source = requester
        .0
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        let session = console_session(state, method, headers, access).await?;
        return Ok(Operator::serving(&state.assent, session.actor(), source));
    };
    let token = authorization
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string())
        .ok_or_else(OAuthError::bearer_missing)?;
    let row = admin::authenticate(&state.assent, &token, access.scope()).await?;
    let actor = Actor::AdminToken {
        id: row.id,
        name: row.name,
    };
    Ok(Operator::serving(&state.assent, actor, source))
}

/// The console session a call without a token comes with, if it may make it.
async fn console_session(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    access: Access,
) -> Result<Session, OAuthError> {
    let assent = &state.assent;
    let Some(secret) =
        console_http::cookie_value(headers, console_http::session_cookie_name(assent))
    else {
        return Err(OAuthError::bearer_missing());
    };
    let session = console::session(assent, secret).await?.ok_or_else(|| {
        OAuthError::bearer(
            OAuthErrorCode::InvalidToken,
            "the console session has ended",
        )
    })?;
    if !session.role.may(access.area()) {
        return Err(OAuthError::bearer(
            OAuthErrorCode::InsufficientScope,
            "the console role does not allow this",
        ));
    }
    if !matches!(*method, Method::GET | Method::HEAD) {
        let csrf = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !console_http::same_origin(assent, headers) || !console::csrf_matches(&session, csrf) {
            return Err(OAuthError::access_denied(
                "a change with a console session needs the session's X-CSRF-Token, from the console's origin",
            ));
        }
    }
    Ok(session)
}

/// The JSON body, refused with `invalid_request` in words when it is not
/// JSON, too large, or not the shape asked for.
async fn json_body<T: DeserializeOwned>(body: Body, headers: &HeaderMap) -> Result<T, OAuthError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(OAuthError::unsupported_media_type(
            "the request body must be application/json",
        ));
    }
    let bytes = read_body(body, MAX_ADMIN_BODY).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| OAuthError::invalid_request(format!("the JSON body is not as expected: {e}")))
}

fn path<T>(value: Result<Path<T>, PathRejection>) -> Result<T, OAuthError> {
    value
        .map(|Path(v)| v)
        .map_err(|_| OAuthError::invalid_request("the path is not valid"))
}

fn query<T>(value: Result<Query<T>, QueryRejection>) -> Result<T, OAuthError> {
    value
        .map(|Query(v)| v)
        .map_err(|e| OAuthError::invalid_request(format!("the query is not valid: {e}")))
}

/// `value` parsed as one of a closed set of words, or `invalid_request`
/// naming the field.
fn parsed<T: FromStr>(field: &str, value: &str) -> Result<T, OAuthError>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| OAuthError::invalid_request(format!("{field}: {e}")))
}

fn optional<T: FromStr>(field: &str, value: Option<String>) -> Result<Option<T>, OAuthError>
where
    T::Err: std::fmt::Display,
{
    value.map(|v| parsed(field, &v)).transpose()
}

/// Absent stays `None`; `null` is `Some(None)` (remove); a value is
/// `Some(Some(v))`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An answer no cache keeps.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn done() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---- clients -----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    name: String,
    token_endpoint_auth_method: Option<String>,
    /// The client's public keys (`private_key_jwt`), a JWKS object.
    jwks: Option<Value>,
    id_token_signed_response_alg: Option<String>,
    grant_types: Option<Vec<String>>,
    number_matching: Option<String>,
    user_verification: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    redirect_uris: Option<Vec<String>>,
    otp_code_in_response: Option<bool>,
    mfa: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    name: Option<String>,
    number_matching: Option<String>,
    user_verification: Option<String>,
    #[serde(default, deserialize_with = "present")]
    client_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    logo_uri: Option<Option<String>>,
    grant_types: Option<Vec<String>>,
    redirect_uris: Option<Vec<String>>,
    otp_code_in_response: Option<bool>,
    mfa: Option<String>,
}

pub async fn list_clients(
    State(state): State<AppState>,
    requester: RequesterAddr,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Read).await?;
    let clients: Vec<Value> = op.clients().await?.iter().map(views::client).collect();
    Ok(answer(StatusCode::OK, json!({ "clients": clients })))
}

pub async fn create_client(
    State(state): State<AppState>,
    requester: RequesterAddr,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Change,
    )
    .await?;
    let body: NewClientBody = json_body(body, &parts.headers).await?;
    let new = NewClient {
        name: body.name,
        auth_method: optional::<AuthMethod>(
            "token_endpoint_auth_method",
            body.token_endpoint_auth_method,
        )?
        .unwrap_or(AuthMethod::ClientSecretBasic),
        jwks: body.jwks.map(|j| j.to_string()),
        id_token_signed_response_alg: optional::<TokenAlg>(
            "id_token_signed_response_alg",
            body.id_token_signed_response_alg,
        )?
        .unwrap_or(TokenAlg::RS256),
        grant_types: body
            .grant_types
            .unwrap_or_else(|| vec![CIBA_GRANT.to_string(), REFRESH_GRANT.to_string()]),
        number_matching: optional("number_matching", body.number_matching)?
            .unwrap_or(NumberMatching::Required),
        user_verification: optional("user_verification", body.user_verification)?
            .unwrap_or(UserVerificationPolicy::Optional),
        client_uri: body.client_uri,
        redirect_uris: body.redirect_uris.unwrap_or_default(),
        otp_code_in_response: body.otp_code_in_response.unwrap_or(false),
        mfa_policy: optional("mfa", body.mfa)?.unwrap_or(MfaPolicy::Off),
    };
    let created = op.create_client(new, body.logo_uri.as_deref()).await?;
    let mut out = views::client(&created.row);
    if let Some(secret) = created.secret {
        out["client_secret"] = json!(secret);
    }
    Ok(answer(StatusCode::CREATED, out))
}

pub async fn get_client(
    State(state): State<AppState>,
    requester: RequesterAddr,
    client_id: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Read).await?;
    let client_id = path(client_id)?;
    Ok(answer(
        StatusCode::OK,
        views::client(&op.client(&client_id).await?),
    ))
}

pub async fn update_client(
    State(state): State<AppState>,
    requester: RequesterAddr,
    client_id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Change,
    )
    .await?;
    let client_id = path(client_id)?;
    let patch: ClientPatch = json_body(body, &parts.headers).await?;
    let changes = ClientChanges {
        name: patch.name,
        number_matching: optional("number_matching", patch.number_matching)?,
        user_verification: optional("user_verification", patch.user_verification)?,
        client_uri: patch.client_uri,
        grant_types: patch.grant_types.map(|g| g.join(" ")),
        redirect_uris: patch.redirect_uris.map(|u| u.join(" ")),
        otp_code_in_response: patch.otp_code_in_response,
        mfa_policy: optional("mfa", patch.mfa)?,
    };
    let update = ClientUpdate {
        changes,
        logo_url: patch.logo_uri,
    };
    let row = op.update_client(&client_id, update).await?;
    Ok(answer(StatusCode::OK, views::client(&row)))
}

pub async fn delete_client(
    State(state): State<AppState>,
    requester: RequesterAddr,
    client_id: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Change).await?;
    let client_id = path(client_id)?;
    op.delete_client(&client_id).await?;
    Ok(done())
}

// ---- users -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    sub: String,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    phone_number: Option<String>,
    #[serde(default)]
    phone_verified: bool,
    name: Option<String>,
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    email_verified: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    phone_number: Option<Option<String>>,
    phone_verified: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
    /// A console role, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    role: Option<Option<String>>,
    blocked: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    user: Option<String>,
}

pub async fn list_users(
    State(state): State<AppState>,
    requester: RequesterAddr,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Read).await?;
    let users: Vec<Value> = op
        .users()
        .await?
        .iter()
        .map(|(u, role)| views::user(u, role.as_deref()))
        .collect();
    Ok(answer(StatusCode::OK, json!({ "users": users })))
}

pub async fn create_user(
    State(state): State<AppState>,
    requester: RequesterAddr,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Change,
    )
    .await?;
    let body: NewUserBody = json_body(body, &parts.headers).await?;
    let role: Option<Role> = optional("role", body.role)?;
    let user = op
        .create_user(NewUser {
            sub: body.sub,
            email: body.email,
            email_verified: body.email_verified,
            phone_number: body.phone_number,
            phone_verified: body.phone_verified,
            name: body.name,
        })
        .await?;
    if role.is_some() {
        op.set_role(&user.sub, role).await?;
    }
    Ok(answer(
        StatusCode::CREATED,
        views::user(&user, role.map(Role::as_str)),
    ))
}

pub async fn get_user(
    State(state): State<AppState>,
    requester: RequesterAddr,
    sub: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Read).await?;
    let sub = path(sub)?;
    let (user, role) = op.user(&sub).await?;
    Ok(answer(StatusCode::OK, views::user(&user, role.as_deref())))
}

pub async fn update_user(
    State(state): State<AppState>,
    requester: RequesterAddr,
    sub: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Change,
    )
    .await?;
    let sub = path(sub)?;
    let patch: UserPatch = json_body(body, &parts.headers).await?;
    let role: Option<Option<Role>> = match patch.role {
        None => None,
        Some(role) => Some(optional("role", role)?),
    };
    let changes = UserUpdate {
        email: patch.email,
        email_verified: patch.email_verified,
        phone_number: patch.phone_number,
        phone_verified: patch.phone_verified,
        name: patch.name,
    };
    if !changes.names().is_empty() {
        op.update_user(&sub, changes).await?;
    }
    if let Some(role) = role {
        op.set_role(&sub, role).await?;
    }
    if let Some(blocked) = patch.blocked {
        op.block_user(&sub, blocked).await?;
    }
    let (user, role) = op.user(&sub).await?;
    Ok(answer(StatusCode::OK, views::user(&user, role.as_deref())))
}

pub async fn delete_user(
    State(state): State<AppState>,
    requester: RequesterAddr,
    sub: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Change).await?;
    let sub = path(sub)?;
    op.delete_user(&sub).await?;
    Ok(done())
}

// ---- devices and enrollment ------------------------------------------------------

pub async fn list_devices(
    State(state): State<AppState>,
    requester: RequesterAddr,
    filter: Result<Query<UserQuery>, QueryRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Read).await?;
    let filter = query(filter)?;
    let devices: Vec<Value> = op
        .devices(filter.user.as_deref())
        .await?
        .iter()
        .map(views::device)
        .collect();
    Ok(answer(StatusCode::OK, json!({ "devices": devices })))
}

pub async fn revoke_device(
    State(state): State<AppState>,
    requester: RequesterAddr,
    device_id: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Change).await?;
    let device_id = path(device_id)?;
    op.revoke_device(&device_id).await?;
    Ok(done())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    user: String,
    ttl: Option<u64>,
}

/// `POST /admin/v1/enrollment-tickets`: the links, and their QR codes as
/// SVG and PNG (base64), for the user to scan.
pub async fn create_ticket(
    State(state): State<AppState>,
    requester: RequesterAddr,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Enroll,
    )
    .await?;
    let body: TicketRequest = json_body(body, &parts.headers).await?;
    let ticket = op
        .create_enrollment_ticket(
            &state.assent,
            &body.user,
            body.ttl.unwrap_or(DEFAULT_TICKET_TTL_SECS),
        )
        .await?;
    let svg = |link: &str| qr::svg(link).map_err(|_| OAuthError::server_error());
    let png = |link: &str| {
        qr::png(link)
            .map(|bytes| STANDARD.encode(bytes))
            .map_err(|_| OAuthError::server_error())
    };
    let mut out = json!({
        "enrollment_uri": ticket.enrollment_uri,
        "user": ticket.user,
        "expires_at": rfc3339(ticket.expires_at),
        "qr_svg": svg(&ticket.enrollment_uri)?,
        "qr_png": png(&ticket.enrollment_uri)?,
    });
    if let Some(web) = &ticket.web_enrollment_uri {
        out["web_enrollment_uri"] = json!(web);
        out["web_qr_svg"] = json!(svg(web)?);
        out["web_qr_png"] = json!(png(web)?);
    }
    Ok(answer(StatusCode::CREATED, out))
}

// ---- requests ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    user: Option<String>,
    #[serde(default)]
    not_me: bool,
    limit: Option<i64>,
}

pub async fn list_requests(
    State(state): State<AppState>,
    requester: RequesterAddr,
    filter: Result<Query<RequestQuery>, QueryRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Read).await?;
    let filter = query(filter)?;
    let requests: Vec<Value> = op
        .requests(&RequestFilter {
            user: filter.user,
            not_me: filter.not_me,
            limit: filter.limit.unwrap_or(100),
        })
        .await?
        .iter()
        .map(views::request)
        .collect();
    Ok(answer(StatusCode::OK, json!({ "requests": requests })))
}

/// `GET /admin/v1/requests/feed`: server-sent events, one `request` event
/// (the request as `GET /admin/v1/requests` shows it) whenever a request
/// starts or is decided, from now on. Every server process writes these
/// changes to the database, so one feed sees the whole fleet's.
pub async fn request_feed(
    State(state): State<AppState>,
    requester: RequesterAddr,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    operator(&state, &method, &headers, &requester, Access::Read).await?;
    let store = state.assent.store.clone();
    let start = store.last_device_event_seq().await?;
    let stopping = state.assent.delivery.stopping();
    let changes = stream::unfold((store, start), |(store, after)| async move {
        loop {
            match store.request_changes_after(after, FEED_BATCH).await {
                Ok((requests, next)) if !requests.is_empty() => {
                    let events: Vec<Result<Event, Infallible>> = requests
                        .iter()
                        .map(|r| {
                            Ok(Event::default()
                                .event("request")
                                .data(views::request(r).to_string()))
                        })
                        .collect();
                    return Some((stream::iter(events), (store, next)));
                }
                Ok((_, next)) => {
                    tokio::time::sleep(FEED_INTERVAL).await;
                    return Some((stream::iter(Vec::new()), (store, next)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the request feed could not read changes");
                    tokio::time::sleep(FEED_INTERVAL).await;
                }
            }
        }
    });
    let flat = futures_util::StreamExt::flatten(changes);
    // A feed lasts at most an hour (the admin token is checked again when
    // the caller reconnects), and ends when the server stops.
    let stop = async move {
        tokio::select! {
            () = stopping => {}
            () = tokio::time::sleep(MAX_FEED_LIFETIME) => {}
        }
    };
    let bounded = until_stopping(flat, stop);
    let mut response = Sse::new(bounded)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Ends `events` when the server starts shutting down.
fn until_stopping<S>(
    events: S,
    stopping: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    S: Stream<Item = Result<Event, Infallible>>,
{
    futures_util::StreamExt::take_until(events, Box::pin(stopping))
}

// ---- admin tokens ----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAdminTokenBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    expires_in: Option<u64>,
    #[serde(default)]
    no_expiry: bool,
}

pub async fn list_admin_tokens(
    State(state): State<AppState>,
    requester: RequesterAddr,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Administer).await?;
    let tokens: Vec<Value> = op
        .admin_tokens()
        .await?
        .iter()
        .map(views::admin_token)
        .collect();
    Ok(answer(StatusCode::OK, json!({ "admin_tokens": tokens })))
}

pub async fn create_admin_token(
    State(state): State<AppState>,
    requester: RequesterAddr,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Administer,
    )
    .await?;
    let body: NewAdminTokenBody = json_body(body, &parts.headers).await?;
    let scopes = body
        .scopes
        .iter()
        .map(|s| parsed::<AdminScope>("scopes", s))
        .collect::<Result<Vec<_>, _>>()?;
    let created = op
        .create_admin_token(NewAdminToken {
            name: body.name,
            scopes,
            expires_in: body.expires_in,
            no_expiry: body.no_expiry,
        })
        .await?;
    let mut out = views::admin_token(&created.row);
    out["token"] = json!(created.token);
    Ok(answer(StatusCode::CREATED, out))
}

pub async fn delete_admin_token(
    State(state): State<AppState>,
    requester: RequesterAddr,
    id: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Administer).await?;
    let id = path(id)?;
    op.delete_admin_token(&id).await?;
    Ok(done())
}

// ---- APIs ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiBody {
    identifier: String,
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    mfa: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiPatch {
    mfa: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    #[serde(default)]
    scopes: Vec<String>,
}

pub async fn list_apis(
    State(state): State<AppState>,
    requester: RequesterAddr,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Read).await?;
    let (apis, grants) = op.apis().await?;
    let apis: Vec<Value> = apis.iter().map(|a| views::api(a, &grants)).collect();
    Ok(answer(StatusCode::OK, json!({ "apis": apis })))
}

pub async fn create_api(
    State(state): State<AppState>,
    requester: RequesterAddr,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Change,
    )
    .await?;
    let body: NewApiBody = json_body(body, &parts.headers).await?;
    let api = op
        .create_api(NewApiSpec {
            identifier: body.identifier,
            name: body.name,
            scopes: body.scopes,
            mfa_policy: optional("mfa", body.mfa)?.unwrap_or(MfaPolicy::Off),
        })
        .await?;
    Ok(answer(StatusCode::CREATED, views::api(&api, &[])))
}

pub async fn update_api(
    State(state): State<AppState>,
    requester: RequesterAddr,
    identifier: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Change,
    )
    .await?;
    let identifier = path(identifier)?;
    let patch: ApiPatch = json_body(body, &parts.headers).await?;
    op.set_api_mfa(&identifier, parsed("mfa", &patch.mfa)?)
        .await?;
    let (apis, grants) = op.apis().await?;
    let api = apis
        .iter()
        .find(|a| a.identifier == identifier)
        .ok_or_else(|| OAuthError::not_found(format!("no API {identifier:?}")))?;
    Ok(answer(StatusCode::OK, views::api(api, &grants)))
}

pub async fn delete_api(
    State(state): State<AppState>,
    requester: RequesterAddr,
    identifier: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Change).await?;
    let identifier = path(identifier)?;
    op.delete_api(&identifier).await?;
    Ok(done())
}

pub async fn grant_api(
    State(state): State<AppState>,
    requester: RequesterAddr,
    ids: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Change,
    )
    .await?;
    let (identifier, client_id) = path(ids)?;
    let body: GrantBody = json_body(body, &parts.headers).await?;
    let grant = op
        .grant_api(ApiGrant {
            api: &identifier,
            client_id: &client_id,
            scopes: &body.scopes,
        })
        .await?;
    Ok(answer(StatusCode::OK, views::grant(&grant)))
}

pub async fn revoke_api_grant(
    State(state): State<AppState>,
    requester: RequesterAddr,
    ids: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Change).await?;
    let (identifier, client_id) = path(ids)?;
    op.revoke_api_grant(&identifier, &client_id).await?;
    Ok(done())
}

// ---- keys and the audit log -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    #[serde(default)]
    purposes: Vec<String>,
    /// Seconds until the new keys sign.
    activate_in: Option<u64>,
}

/// How long rotated keys wait before they sign when the caller does not
/// say: every relying party's cached JWKS has been refreshed by then.
const DEFAULT_ACTIVATE_IN_SECS: u64 = 600;

pub async fn list_keys(
    State(state): State<AppState>,
    requester: RequesterAddr,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Read).await?;
    let keys: Vec<Value> = op.keys().await?.iter().map(|k| k.view()).collect();
    Ok(answer(StatusCode::OK, json!({ "keys": keys })))
}

pub async fn rotate_keys(
    State(state): State<AppState>,
    requester: RequesterAddr,
    request: Request,
) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    let op = operator(
        &state,
        &parts.method,
        &parts.headers,
        &requester,
        Access::Administer,
    )
    .await?;
    let body: RotateBody = json_body(body, &parts.headers).await?;
    let purposes = if body.purposes.is_empty() {
        vec![KeyPurpose::IdToken, KeyPurpose::AccessToken]
    } else {
        body.purposes
            .iter()
            .map(|p| parsed::<KeyPurpose>("purposes", p))
            .collect::<Result<Vec<_>, _>>()?
    };
    let made = op
        .rotate_keys(
            state.assent.keys.key_encryption_keys(),
            &purposes,
            body.activate_in.unwrap_or(DEFAULT_ACTIVATE_IN_SECS),
        )
        .await?;
    let made: Vec<Value> = made
        .iter()
        .map(|k| {
            json!({
                "kid": k.kid,
                "purpose": k.purpose,
                "alg": k.alg,
                "signs_from": rfc3339(k.activates_at * 1000),
            })
        })
        .collect();
    Ok(answer(StatusCode::CREATED, json!({ "keys": made })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    action: Option<String>,
    limit: Option<i64>,
}

pub async fn audit_log(
    State(state): State<AppState>,
    requester: RequesterAddr,
    filter: Result<Query<AuditQuery>, QueryRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let op = operator(&state, &method, &headers, &requester, Access::Read).await?;
    let filter = query(filter)?;
    let entries: Vec<Value> = op
        .audit_log(filter.action.as_deref(), filter.limit.unwrap_or(100))
        .await?
        .iter()
        .map(views::audit_entry)
        .collect();
    Ok(answer(StatusCode::OK, json!({ "entries": entries })))
}
