//! Users (`/console/users`): the list, adding one, and each user's page
//! (`/console/users/{sub}`, the `sub` percent-encoded): their details, console
//! role, blocking, deleting, their devices with revoking, and enrollment
//! tickets for a new device, shown as QR codes to scan.
//!
//! An admin's account is changed by admins only: an operator who could
//! enroll a device for an admin could sign in as them.

use askama::Template;
use axum::{
    extract::{
        rejection::{PathRejection, QueryRejection},
        Path, Query, Request, State,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde::Deserialize;

use super::{done, query_or_default, segment, user_href, At, Done, Fields, RequestLine};
use crate::{
    console::{Area, Session},
    device::DEFAULT_TICKET_TTL_SECS,
    error::OAuthError,
    http::{
        console::{error_page, page, source, ConsoleUser, Frame},
        AppState, RequesterAddr,
    },
    operations::{Operator, RequestFilter, UserUpdate},
    qr,
    storage::{DeviceRow, UserRow},
    users::{NewUser, Role},
};

/// The enrollment tickets' lifetimes the form offers, in seconds.
const TICKET_TTLS: [(u64, &str); 4] = [
    (600, "10 minutes"),
    (3600, "1 hour"),
    (24 * 3600, "1 day"),
    (7 * 24 * 3600, "7 days"),
];

/// How many of a user's requests their page lists.
const RECENT_REQUESTS: i64 = 10;

/// A user as the list shows them.
pub struct UserLine {
    pub sub: String,
    pub href: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub role: String,
    pub blocked: bool,
    pub created: At,
}

impl UserLine {
    fn of(u: &UserRow, role: Option<&str>) -> Self {
        Self {
            sub: u.sub.clone(),
            href: user_href(&u.sub),
            name: u.name.clone().unwrap_or_default(),
            email: u.email.clone().unwrap_or_default(),
            phone: u.phone_number.clone().unwrap_or_default(),
            role: role.unwrap_or_default().to_string(),
            blocked: u.blocked,
            created: At::of(u.created_at),
        }
    }
}

/// A device as the user's page shows it.
pub struct DeviceLine {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub enrolled: At,
    pub passkey: bool,
    /// `on`, `off` (no channel) or why the push service dropped it.
    pub push: String,
    pub active: bool,
    /// `active`, or when and why it was revoked.
    pub state: String,
    pub revoke_href: String,
}

impl DeviceLine {
    fn of(d: &DeviceRow) -> Self {
        let push = match (&d.push_channel, &d.push_disabled_reason) {
            (_, Some(reason)) => format!("disabled: {reason}"),
            (Some(_), None) => "on".into(),
            (None, None) => "off".into(),
        };
        let state = match d.revoked_at {
            None => "active".into(),
            Some(at) => format!(
                "revoked {}{}",
                At::of(at).text,
                d.revoke_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        };
        Self {
            id: d.id.clone(),
            name: d.name.clone(),
            platform: d.platform.clone(),
            enrolled: At::of(d.created_at),
            passkey: d.passkey_credential_id.is_some(),
            push,
            active: d.revoked_at.is_none(),
            state,
            revoke_href: format!(
                "{}/devices/{}/revoke",
                user_href(&d.user_sub),
                super::segment_of(&d.id)
            ),
        }
    }
}

/// The new-user form's values (kept when the server refuses them).
#[derive(Default)]
pub struct Draft {
    pub sub: String,
    pub email: String,
    pub phone: String,
    pub name: String,
    pub role: String,
}

impl Draft {
    fn of(form: &Fields) -> Self {
        Self {
            sub: form.text("sub").into(),
            email: form.text("email").into(),
            phone: form.text("phone").into(),
            name: form.text("name").into(),
            role: form.text("role").into(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage<'a> {
    frame: Frame,
    users: Vec<UserLine>,
    total: usize,
    q: &'a str,
    notice: Option<&'static str>,
    problem: Option<&'a str>,
    draft: Draft,
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    frame: Frame,
    user: UserLine,
    row: UserRow,
    devices: Vec<DeviceLine>,
    requests: Vec<RequestLine>,
    requests_href: String,
    filtered: bool,
    notice: Option<&'static str>,
    /// Whether this session may change the account (an admin's: admins only).
    changeable: bool,
    /// The signed-in person's own account.
    own: bool,
    ttls: &'static [(u64, &'static str)],
    default_ttl: u64,
}

/// A QR code of a link, as an image the page's CSP allows.
pub struct Qr {
    pub link: String,
    pub data_uri: String,
}

impl Qr {
    fn of(link: &str) -> Result<Self, OAuthError> {
        let png = qr::png(link).map_err(|e| {
            tracing::error!(error = %e, "an enrollment link could not be drawn as a QR code");
            OAuthError::server_error()
        })?;
        Ok(Self {
            link: link.to_string(),
            data_uri: format!("data:image/png;base64,{}", STANDARD.encode(png)),
        })
    }
}

#[derive(Template)]
#[template(path = "console/ticket.html")]
struct TicketPage {
    frame: Frame,
    user: UserLine,
    app: Qr,
    web: Option<Qr>,
    expires: At,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(flatten)]
    done: Done,
}

/// Only an admin may change an admin's account or make someone an admin.
fn may_change(session: &Session, role: Option<&str>) -> Result<(), OAuthError> {
    if role == Some(Role::Admin.as_str()) && !session.role.may(Area::Administer) {
        return Err(OAuthError::access_denied(
            "only an admin can change an admin's account",
        ));
    }
    Ok(())
}

/// Users whose id, name, e-mail address or phone number contains `q`
/// (case-insensitively), by id.
fn listed(mut users: Vec<(UserRow, Option<String>)>, q: &str) -> Vec<UserLine> {
    let q = q.trim().to_lowercase();
    let has = |field: &Option<String>| {
        field
            .as_deref()
            .is_some_and(|f| f.to_lowercase().contains(&q))
    };
    users.retain(|(u, _)| {
        q.is_empty()
            || u.sub.to_lowercase().contains(&q)
            || has(&u.name)
            || has(&u.email)
            || has(&u.phone_number)
    });
    users.sort_by(|(a, _), (b, _)| a.sub.cmp(&b.sub));
    users
        .iter()
        .map(|(u, role)| UserLine::of(u, role.as_deref()))
        .collect()
}

async fn list_page(
    state: &AppState,
    session: &Session,
    q: &str,
    notice: Option<&'static str>,
    problem: Option<&str>,
    draft: Draft,
) -> Response {
    let op = Operator::serving(&state.assent, session.actor(), String::new());
    let users = match op.users().await {
        Ok(u) => u,
        Err(e) => return error_page(e, Some(session)),
    };
    let total = users.len();
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(
        status,
        &UsersPage {
            frame: Frame::at(session, "users"),
            users: listed(users, q),
            total,
            q: q.trim(),
            notice,
            problem,
            draft,
        },
    )
}

/// `GET /console/users?q=`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let query = query_or_default(query);
    list_page(
        &state,
        &session,
        &query.q,
        query.done.notice(),
        None,
        Draft::default(),
    )
    .await
}

/// The console role a form names: none for a blank one.
fn role_of(form: &Fields) -> Result<Option<Role>, OAuthError> {
    match form.optional("role") {
        None => Ok(None),
        Some(_) => form.parsed("role", "Console role").map(Some),
    }
}

/// `POST /console/users`: adds the user (with a console role, if given),
/// then shows their page.
pub async fn create(
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
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let created = async {
        let role = role_of(&form)?;
        may_change(&session, role.map(Role::as_str))?;
        let user = op
            .create_user(NewUser {
                sub: form.text("sub").into(),
                email: form.optional("email"),
                email_verified: form.checked("email_verified"),
                phone_number: form.optional("phone"),
                phone_verified: form.checked("phone_verified"),
                name: form.optional("name"),
            })
            .await?;
        if role.is_some() {
            op.set_role(&user.sub, role).await?;
        }
        Ok::<_, OAuthError>(user)
    };
    match created.await {
        Ok(user) => done(&format!("{}?done=created", user_href(&user.sub))),
        Err(e) if e.storage_failure().is_none() => {
            list_page(
                &state,
                &session,
                "",
                None,
                Some(&e.description),
                Draft::of(&form),
            )
            .await
        }
        Err(e) => error_page(e, Some(&session)),
    }
}

/// `GET /console/users/{sub}`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    sub: Result<Path<String>, PathRejection>,
    query: Result<Query<Done>, QueryRejection>,
) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let op = Operator::serving(&state.assent, session.actor(), String::new());
    let loaded = async {
        let sub = segment(sub)?;
        let (row, role) = op.user(&sub).await?;
        let devices = op.devices(Some(&sub)).await?;
        let requests = op
            .requests(&RequestFilter {
                user: Some(sub.clone()),
                not_me: false,
                limit: RECENT_REQUESTS,
            })
            .await?;
        Ok::<_, OAuthError>((row, role, devices, requests))
    };
    let (row, role, devices, requests) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return error_page(e, Some(&session)),
    };
    let done = query_or_default(query);
    let requests_href = format!(
        "/console/requests?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("user", &row.sub)
            .finish()
    );
    page(
        StatusCode::OK,
        &UserPage {
            frame: Frame::at(&session, "users"),
            user: UserLine::of(&row, role.as_deref()),
            changeable: may_change(&session, role.as_deref()).is_ok(),
            own: row.sub == session.user_sub,
            row,
            devices: devices.iter().rev().map(DeviceLine::of).collect(),
            requests: requests.iter().map(RequestLine::of).collect(),
            requests_href,
            filtered: false,
            notice: done.notice(),
            ttls: &TICKET_TTLS,
            default_ttl: DEFAULT_TICKET_TTL_SECS,
        },
    )
}

/// The changes the details form makes to `current`: only what differs,
/// so that the audit log names just those fields.
fn changes(form: &Fields, current: &UserRow) -> UserUpdate {
    let differs = |new: &Option<String>, old: &Option<String>| new != old;
    let (email, phone, name) = (
        form.optional("email"),
        form.optional("phone"),
        form.optional("name"),
    );
    let (email_verified, phone_verified) = (
        form.checked("email_verified"),
        form.checked("phone_verified"),
    );
    UserUpdate {
        email: differs(&email, &current.email).then_some(email),
        email_verified: (email_verified != current.email_verified).then_some(email_verified),
        phone_number: differs(&phone, &current.phone_number).then_some(phone),
        phone_verified: (phone_verified != current.phone_verified).then_some(phone_verified),
        name: differs(&name, &current.name).then_some(name),
    }
}

/// Reads a user change's form and checks that this session may make it;
/// `Err` is the page to answer.
async fn change_form(
    state: &AppState,
    user: ConsoleUser,
    sub: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<(Session, Fields, String), Response> {
    let (session, form): (_, Fields) = user.posted(&state.assent, Area::Operate, request).await?;
    let sub = match segment(sub) {
        Ok(sub) => sub,
        Err(e) => return Err(error_page(e, Some(&session))),
    };
    Ok((session, form, sub))
}

/// The user `sub` and their role, if this session may change them.
async fn changeable(
    op: &Operator<'_>,
    session: &Session,
    sub: &str,
) -> Result<(UserRow, Option<String>), OAuthError> {
    let (row, role) = op.user(sub).await?;
    may_change(session, role.as_deref())?;
    Ok((row, role))
}

/// `POST /console/users/{sub}`: saves the details form.
pub async fn update(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    sub: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (session, form, sub) = match change_form(&state, user, sub, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let saved = async {
        let (row, _) = changeable(&op, &session, &sub).await?;
        let changes = changes(&form, &row);
        if !changes.names().is_empty() {
            op.update_user(&sub, changes).await?;
        }
        Ok::<_, OAuthError>(())
    };
    match saved.await {
        Ok(()) => done(&format!("{}?done=saved", user_href(&sub))),
        Err(e) => error_page(e, Some(&session)),
    }
}

/// `POST /console/users/{sub}/role`: gives a console role, or takes it away.
pub async fn set_role(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    sub: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (session, form, sub) = match change_form(&state, user, sub, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let saved = async {
        changeable(&op, &session, &sub).await?;
        let role = role_of(&form)?;
        may_change(&session, role.map(Role::as_str))?;
        op.set_role(&sub, role).await
    };
    match saved.await {
        Ok(()) => done(&format!("{}?done=role", user_href(&sub))),
        Err(e) => error_page(e, Some(&session)),
    }
}

/// `POST /console/users/{sub}/block` (`blocked=1` blocks, `blocked=0` unblocks).
pub async fn block(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    sub: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (session, form, sub) = match change_form(&state, user, sub, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let blocked = form.text("blocked") == "1";
    let saved = async {
        changeable(&op, &session, &sub).await?;
        if blocked && sub == session.user_sub {
            return Err(OAuthError::invalid_request(
                "you cannot block your own account from the console",
            ));
        }
        op.block_user(&sub, blocked).await
    };
    match saved.await {
        Ok(()) => done(&format!(
            "{}?done={}",
            user_href(&sub),
            if blocked { "blocked" } else { "unblocked" }
        )),
        Err(e) => error_page(e, Some(&session)),
    }
}

/// `POST /console/users/{sub}/delete`: the user, their devices and requests.
pub async fn delete(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    sub: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (session, _, sub) = match change_form(&state, user, sub, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let deleted = async {
        changeable(&op, &session, &sub).await?;
        if sub == session.user_sub {
            return Err(OAuthError::invalid_request(
                "you cannot delete your own account from the console",
            ));
        }
        op.delete_user(&sub).await
    };
    match deleted.await {
        Ok(()) => done("/console/users?done=deleted"),
        Err(e) => error_page(e, Some(&session)),
    }
}

/// `POST /console/users/{sub}/enroll`: a new enrollment ticket, shown as QR
/// codes and links (this once: the server keeps only its digest).
pub async fn enroll(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    sub: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (session, form, sub) = match change_form(&state, user, sub, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let made = async {
        let (row, role) = changeable(&op, &session, &sub).await?;
        let ttl = match form.optional("ttl") {
            None => DEFAULT_TICKET_TTL_SECS,
            Some(ttl) => ttl
                .parse()
                .ok()
                .filter(|ttl| TICKET_TTLS.iter().any(|(t, _)| t == ttl))
                .ok_or_else(|| {
                    OAuthError::invalid_request("Valid for: choose one of the times offered")
                })?,
        };
        let ticket = op
            .create_enrollment_ticket(&state.assent, &sub, ttl)
            .await?;
        Ok::<_, OAuthError>(TicketPage {
            frame: Frame::at(&session, "users"),
            user: UserLine::of(&row, role.as_deref()),
            app: Qr::of(&ticket.enrollment_uri)?,
            web: ticket
                .web_enrollment_uri
                .as_deref()
                .map(Qr::of)
                .transpose()?,
            expires: At::of(ticket.expires_at),
        })
    };
    match made.await {
        Ok(ticket) => page(StatusCode::CREATED, &ticket),
        Err(e) => error_page(e, Some(&session)),
    }
}

/// `POST /console/users/{sub}/devices/{id}/revoke`.
pub async fn revoke_device(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    ids: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let (session, _): (_, Fields) = match user.posted(&state.assent, Area::Operate, request).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let revoked = async {
        let (sub, id) = segment(ids)?;
        changeable(&op, &session, &sub).await?;
        // The device must be this user's: the page revoked what it showed.
        if !op.devices(Some(&sub)).await?.iter().any(|d| d.id == id) {
            return Err(OAuthError::not_found(format!("{sub} has no device {id:?}")));
        }
        op.revoke_device(&id).await?;
        Ok::<_, OAuthError>(sub)
    };
    match revoked.await {
        Ok(sub) => done(&format!("{}?done=revoked", user_href(&sub))),
        Err(e) => error_page(e, Some(&session)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserRow {
        UserRow {
            sub: "alice".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            phone_number: None,
            phone_verified: false,
            name: Some("Alice".into()),
            blocked: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn only_changed_fields_are_changed() {
        let same: Fields = serde_urlencoded::from_str(
            "csrf=x&email=alice%40example.com&email_verified=1&phone=&name=Alice",
        )
        .unwrap();
        assert!(changes(&same, &alice()).names().is_empty());

        let edited: Fields =
            serde_urlencoded::from_str("email=&phone=%2B4915112345678&name=Alice+B").unwrap();
        let c = changes(&edited, &alice());
        assert_eq!(c.email, Some(None), "a blank address is removed");
        assert_eq!(c.email_verified, Some(false));
        assert_eq!(c.phone_number, Some(Some("+4915112345678".into())));
        assert_eq!(c.phone_verified, None);
        assert_eq!(c.name, Some(Some("Alice B".into())));
    }

    #[test]
    fn roles_read_from_the_form() {
        let form = |s: &str| -> Fields { serde_urlencoded::from_str(s).unwrap() };
        assert_eq!(role_of(&form("role=")).unwrap(), None);
        assert_eq!(role_of(&form("")).unwrap(), None);
        assert_eq!(
            role_of(&form("role=operator")).unwrap(),
            Some(Role::Operator)
        );
        assert!(role_of(&form("role=root")).is_err());
    }
}
