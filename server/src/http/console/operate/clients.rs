//! Clients (`/console/clients`): the list (filtered by the page's script
//! as one types, or by the server without it), registering one (its
//! secret shown once, on the answer to the form), changing and deleting.

use askama::Template;
use axum::{
    extract::{
        rejection::{PathRejection, QueryRejection},
        Path, Query, Request, State,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{client_href, done, query_or_default, segment, At, Done, Fields};
use crate::{
    ciba::{CIBA_GRANT, REFRESH_GRANT},
    client_auth::AuthMethod,
    clients::{NewClient, SUPPORTED_GRANTS},
    console::{Area, CONSOLE_CLIENT_ID},
    error::OAuthError,
    http::{
        console::{error_page, page, source, ConsoleUser, Frame},
        AppState, RequesterAddr,
    },
    keys::TokenAlg,
    operations::{views::words, ClientUpdate, Operator},
    storage::{ClientChanges, ClientRow, MfaPolicy, NumberMatching, UserVerificationPolicy},
};

/// A grant type as the forms offer it.
pub struct Grant {
    pub value: &'static str,
    pub label: &'static str,
    /// The checkbox's id.
    pub id: String,
}

/// What each supported grant type is for, in words.
fn grant_label(grant: &str) -> &'static str {
    match grant {
        CIBA_GRANT => "Back-channel login (CIBA)",
        REFRESH_GRANT => "Refresh tokens",
        assent_shared::oauth::PASSWORDLESS_OTP_GRANT_TYPE => "Passwordless codes",
        assent_shared::oauth::AUTHORIZATION_CODE_GRANT_TYPE => "Authorization code (magic links)",
        crate::mfa::MFA_OTP_GRANT => "MFA: one-time code",
        crate::mfa::MFA_OOB_GRANT => "MFA: push to the device",
        crate::mfa::MFA_RECOVERY_CODE_GRANT => "MFA: recovery code",
        _ => "Other",
    }
}

fn grants() -> Vec<Grant> {
    SUPPORTED_GRANTS
        .iter()
        .enumerate()
        .map(|(i, &value)| Grant {
            value,
            label: grant_label(value),
            id: format!("grant-{i}"),
        })
        .collect()
}

/// A client as the list shows it.
pub struct ClientLine {
    pub id: String,
    pub href: String,
    pub name: String,
    pub auth_method: String,
    pub grants: Vec<&'static str>,
    pub number_matching: &'static str,
    pub user_verification: &'static str,
    pub mfa: &'static str,
    pub created: At,
}

impl ClientLine {
    fn of(c: &ClientRow) -> Self {
        Self {
            id: c.client_id.clone(),
            href: client_href(&c.client_id),
            name: c.name.clone(),
            auth_method: c.token_endpoint_auth_method.clone(),
            grants: words(&c.grant_types).into_iter().map(grant_label).collect(),
            number_matching: c.number_matching.as_str(),
            user_verification: c.user_verification.as_str(),
            mfa: c.mfa_policy.as_str(),
            created: At::of(c.created_at),
        }
    }
}

/// The new-client form's values (kept when the server refuses them).
pub struct Draft {
    pub name: String,
    pub auth_method: String,
    pub number_matching: String,
    pub user_verification: String,
    pub client_uri: String,
    pub grants: Vec<String>,
}

impl Default for Draft {
    fn default() -> Self {
        Self {
            name: String::new(),
            auth_method: AuthMethod::ClientSecretBasic.as_str().into(),
            number_matching: NumberMatching::Required.as_str().into(),
            user_verification: UserVerificationPolicy::Optional.as_str().into(),
            client_uri: String::new(),
            grants: NewClient::default_grant_types(),
        }
    }
}

impl Draft {
    fn of(form: &Fields) -> Self {
        Self {
            name: form.text("name").into(),
            auth_method: form.text("auth_method").into(),
            number_matching: form.text("number_matching").into(),
            user_verification: form.text("user_verification").into(),
            client_uri: form.text("client_uri").into(),
            grants: form.all("grant").into_iter().map(String::from).collect(),
        }
    }

    pub fn has_grant(&self, grant: &str) -> bool {
        self.grants.iter().any(|g| g == grant)
    }
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ClientsPage<'a> {
    frame: Frame,
    clients: Vec<ClientLine>,
    total: usize,
    q: &'a str,
    notice: Option<&'static str>,
    problem: Option<&'a str>,
    draft: Draft,
    grants: Vec<Grant>,
}

#[derive(Template)]
#[template(path = "console/client_created.html")]
struct CreatedPage {
    frame: Frame,
    client: ClientLine,
    secret: Option<String>,
}

#[derive(Template)]
#[template(path = "console/client.html")]
struct ClientPage {
    frame: Frame,
    client: ClientLine,
    row: ClientRow,
    notice: Option<&'static str>,
    grants: Vec<Grant>,
    /// The console's own client is not deleted from here.
    deletable: bool,
}

impl ClientPage {
    fn has_grant(&self, grant: &str) -> bool {
        words(&self.row.grant_types).contains(&grant)
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(flatten)]
    done: Done,
}

/// Clients whose name or id contains `q` (case-insensitively), by name.
fn listed(mut clients: Vec<ClientRow>, q: &str) -> Vec<ClientLine> {
    let q = q.trim().to_lowercase();
    clients.retain(|c| {
        q.is_empty()
            || c.name.to_lowercase().contains(&q)
            || c.client_id.to_lowercase().contains(&q)
    });
    clients.sort_by_cached_key(|c| (c.name.to_lowercase(), c.client_id.clone()));
    clients.iter().map(ClientLine::of).collect()
}

async fn list_page(
    state: &AppState,
    session: &crate::console::Session,
    q: &str,
    notice: Option<&'static str>,
    problem: Option<&str>,
    draft: Draft,
) -> Response {
    let op = Operator::serving(&state.assent, session.actor(), String::new());
    let clients = match op.clients().await {
        Ok(c) => c,
        Err(e) => return error_page(e, Some(session)),
    };
    let total = clients.len();
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(
        status,
        &ClientsPage {
            frame: Frame::at(session, "clients"),
            clients: listed(clients, q),
            total,
            q: q.trim(),
            notice,
            problem,
            draft,
            grants: grants(),
        },
    )
}

/// `GET /console/clients?q=`.
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

/// The new client the form describes.
fn new_client(form: &Fields) -> Result<NewClient, OAuthError> {
    let auth_method: AuthMethod = form.parsed("auth_method", "Authentication")?;
    if !auth_method.uses_secret() {
        return Err(OAuthError::invalid_request(
            "Authentication: the console registers clients with a secret; register a \
             private_key_jwt client with the command line or the admin API",
        ));
    }
    Ok(NewClient {
        name: form.text("name").into(),
        auth_method,
        jwks: None,
        id_token_signed_response_alg: TokenAlg::RS256,
        grant_types: form.all("grant").into_iter().map(String::from).collect(),
        number_matching: form.parsed("number_matching", "Number matching")?,
        user_verification: form.parsed("user_verification", "User verification")?,
        client_uri: form.optional("client_uri"),
        redirect_uris: Vec::new(),
        otp_code_in_response: false,
        mfa_policy: MfaPolicy::Off,
    })
}

/// `POST /console/clients`: registers the client and shows its secret, once.
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
    let created = async { op.create_client(new_client(&form)?, None).await }.await;
    match created {
        Ok(created) => page(
            StatusCode::CREATED,
            &CreatedPage {
                frame: Frame::at(&session, "clients"),
                client: ClientLine::of(&created.row),
                secret: created.secret,
            },
        ),
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

/// `GET /console/clients/{id}`: its settings, to change; never its secret.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Done>, QueryRejection>,
) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let op = Operator::serving(&state.assent, session.actor(), String::new());
    let row = match async { op.client(&segment(id)?).await }.await {
        Ok(row) => row,
        Err(e) => return error_page(e, Some(&session)),
    };
    let done = query_or_default(query);
    page(
        StatusCode::OK,
        &ClientPage {
            frame: Frame::at(&session, "clients"),
            client: ClientLine::of(&row),
            deletable: row.client_id != CONSOLE_CLIENT_ID,
            row,
            notice: done.notice(),
            grants: grants(),
        },
    )
}

/// The changes the edit form asks for.
fn changes(form: &Fields) -> Result<ClientChanges, OAuthError> {
    Ok(ClientChanges {
        name: Some(form.text("name").into()),
        number_matching: Some(form.parsed("number_matching", "Number matching")?),
        user_verification: Some(form.parsed("user_verification", "User verification")?),
        client_uri: Some(form.optional("client_uri")),
        grant_types: Some(form.all("grant").join(" ")),
        redirect_uris: None,
        otp_code_in_response: None,
        mfa_policy: Some(form.parsed("mfa", "Second factor")?),
    })
}

/// `POST /console/clients/{id}`: saves the edit form.
pub async fn update(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (session, form): (_, Fields) =
        match user.posted(&state.assent, Area::Operate, request).await {
            Ok(posted) => posted,
            Err(refused) => return refused,
        };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let saved = async {
        let id = segment(id)?;
        let update = ClientUpdate {
            changes: changes(&form)?,
            logo_url: None,
        };
        op.update_client(&id, update).await
    };
    match saved.await {
        Ok(row) => done(&format!("{}?done=saved", client_href(&row.client_id))),
        Err(e) => error_page(e, Some(&session)),
    }
}

/// `POST /console/clients/{id}/delete`: the client and everything issued to it.
pub async fn delete(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (session, _): (_, Fields) = match user.posted(&state.assent, Area::Operate, request).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let deleted = async {
        let id = segment(id)?;
        if id == CONSOLE_CLIENT_ID {
            return Err(OAuthError::invalid_request(
                "this is the console's own client: the console signs people in with it",
            ));
        }
        op.delete_client(&id).await
    };
    match deleted.await {
        Ok(()) => done("/console/clients?done=deleted"),
        Err(e) => error_page(e, Some(&session)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_reads_its_filter_and_notice() {
        let q: ListQuery = serde_urlencoded::from_str("q=shop&done=deleted").unwrap();
        assert_eq!(q.q, "shop");
        assert_eq!(q.done.notice(), Some("Deleted."));
    }

    #[test]
    fn every_supported_grant_has_words() {
        for grant in grants() {
            assert_ne!(grant.label, "Other", "{}", grant.value);
        }
    }

    #[test]
    fn the_forms_read_as_their_fields_say() {
        let form: Fields = serde_urlencoded::from_str(
            "csrf=x&name=Shop&auth_method=client_secret_post&number_matching=off\
             &user_verification=required&client_uri=&grant=refresh_token",
        )
        .unwrap();
        let new = new_client(&form).unwrap();
        assert_eq!(new.name, "Shop");
        assert_eq!(new.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(new.number_matching, NumberMatching::Off);
        assert_eq!(new.user_verification, UserVerificationPolicy::Required);
        assert_eq!(new.client_uri, None);
        assert_eq!(new.grant_types, ["refresh_token"]);

        let jwt: Fields = serde_urlencoded::from_str("auth_method=private_key_jwt").unwrap();
        assert!(new_client(&jwt).is_err());
        let bad: Fields =
            serde_urlencoded::from_str("auth_method=client_secret_basic&number_matching=maybe")
                .unwrap();
        let e = new_client(&bad).err().unwrap();
        assert!(e.description.starts_with("Number matching:"), "{e:?}");

        let edit: Fields = serde_urlencoded::from_str(
            "name=New&number_matching=required&user_verification=optional&client_uri=\
             &mfa=if-enrolled&grant=a&grant=b",
        )
        .unwrap();
        let changes = changes(&edit).unwrap();
        assert_eq!(changes.client_uri, Some(None), "a blank website is removed");
        assert_eq!(changes.grant_types.as_deref(), Some("a b"));
        assert_eq!(changes.mfa_policy, Some(MfaPolicy::IfEnrolled));
    }
}
