//! Signing into a console: the person names themselves, their device is
//! asked (the console is a client like any other, with number matching),
//! and an approval becomes a session, once. The first operator, who has no
//! device yet, signs in with a single-use link from the command line.

use assent_shared::{error::OAuthErrorCode, oauth::Assurance};

use super::{client, sessions};
use crate::{
    approval::RequesterContext,
    ciba::{self, BackchannelRequest, Hint, CIBA_GRANT},
    error::OAuthError,
    params::Params,
    secrets::{new_secret, sha256_hex},
    state::Assent,
    storage::{ConsoleSignInRow, UserLookup, UserRow},
    users::Role,
};

/// How long a login link from `console login-link` works.
pub const LOGIN_LINK_TTL_SECS: u64 = 15 * 60;

/// What devices show for a console sign-in.
const SIGN_IN_MESSAGE: &str = "Sign in to the Assent console";

/// A sign-in started: the secret for the browser's cookie, and the code
/// the page shows for the person to type on their device.
#[derive(Debug)]
pub struct SignIn {
    pub secret: String,
    pub match_code: Option<String>,
    pub expires_at: i64,
}

/// Where a sign-in is.
#[derive(Debug)]
pub enum SignInStatus {
    /// The device has not answered.
    Waiting { match_code: Option<String> },
    /// Approved: a session, whose secret goes into the session cookie.
    SignedIn { secret: String, role: Role },
    /// Denied on the device (or "this wasn't me").
    Denied,
    /// Expired, already used, or never started.
    Over,
}

/// The refusal for a name that may not sign in: the same for an unknown
/// user and one without a console role, and no request is sent.
fn no_access() -> OAuthError {
    OAuthError::access_denied("this name has no console access")
}

/// The user `name` (a sub or an e-mail address) with their console role.
async fn console_user(assent: &Assent, name: &str) -> Result<(UserRow, Role), OAuthError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 256 {
        return Err(no_access());
    }
    let user = match assent.store.user(name).await? {
        Some(user) => Some(user),
        None if name.contains('@') => assent.store.user_by_email(name).await?,
        None => None,
    };
    let user = user.ok_or_else(no_access)?;
    let role = assent
        .store
        .user_role(&user.sub)
        .await?
        .and_then(|role| role.parse::<Role>().ok())
        .ok_or_else(no_access)?;
    Ok((user, role))
}

/// Asks `name`'s devices to approve a console sign-in.
pub async fn start_sign_in(
    assent: &Assent,
    name: &str,
    requester: RequesterContext,
) -> Result<SignIn, OAuthError> {
    let (user, _) = console_user(assent, name).await?;
    let console = client(assent).await?;
    let started = ciba::start_backchannel(
        assent,
        &console,
        BackchannelRequest {
            scopes: vec!["openid".into()],
            hint: Hint::Login(UserLookup {
                sub: user.sub.clone(),
                email: None,
            }),
            binding_message: SIGN_IN_MESSAGE.into(),
            requested_expiry: None,
            audience: None,
            authorization_details: None,
            min_assurance: Assurance {
                number_match: true,
                user_verification: false,
            },
        },
        requester,
    )
    .await?;
    let secret = new_secret();
    let now = assent.clock.now_ms();
    let expires_at = now + started.expires_in as i64 * 1000;
    assent
        .store
        .insert_console_sign_in(
            &sha256_hex(&secret),
            &ConsoleSignInRow {
                user_sub: user.sub,
                auth_req_id: started.auth_req_id,
                match_code: started.match_code.clone(),
                expires_at,
            },
            now,
        )
        .await?;
    Ok(SignIn {
        secret,
        match_code: started.match_code,
        expires_at,
    })
}

/// Where the sign-in the browser's `secret` names is; an approval starts the
/// session (once: the token poll issues once, and the sign-in is removed).
pub async fn sign_in_status(
    assent: &Assent,
    secret: &str,
    source: &str,
) -> Result<SignInStatus, OAuthError> {
    if secret.is_empty() || secret.len() > 128 {
        return Ok(SignInStatus::Over);
    }
    let id_sha256 = sha256_hex(secret);
    let Some(row) = assent.store.console_sign_in(&id_sha256).await? else {
        return Ok(SignInStatus::Over);
    };
    let console = client(assent).await?;
    let params = Params::from_pairs([
        ("grant_type", CIBA_GRANT),
        ("auth_req_id", row.auth_req_id.as_str()),
    ]);
    match ciba::poll(assent, &console, &params).await {
        Ok(_) => {
            if !assent.store.delete_console_sign_in(&id_sha256).await? {
                return Ok(SignInStatus::Over);
            }
            // The role is read again: it may have been taken away meanwhile.
            let Ok((user, role)) = console_user(assent, &row.user_sub).await else {
                return Ok(SignInStatus::Denied);
            };
            let secret = sessions::start(assent, &user.sub, source).await?;
            Ok(SignInStatus::SignedIn { secret, role })
        }
        Err(e) => match e.code {
            OAuthErrorCode::AuthorizationPending | OAuthErrorCode::SlowDown => {
                Ok(SignInStatus::Waiting {
                    match_code: row.match_code,
                })
            }
            OAuthErrorCode::AccessDenied => {
                assent.store.delete_console_sign_in(&id_sha256).await?;
                Ok(SignInStatus::Denied)
            }
            OAuthErrorCode::ExpiredToken | OAuthErrorCode::InvalidGrant => {
                assent.store.delete_console_sign_in(&id_sha256).await?;
                Ok(SignInStatus::Over)
            }
            _ => Err(e),
        },
    }
}

/// A single-use link that signs `user_sub` in without a device, valid for
/// [`LOGIN_LINK_TTL_SECS`]: `{issuer}/console/link#{token}` (the token in
/// the fragment, never in a request line or a log).
pub async fn create_login_link(assent: &Assent, user_sub: &str) -> Result<String, OAuthError> {
    console_user(assent, user_sub).await.map_err(|_| {
        OAuthError::invalid_request(
            "no such user with a console role: give them one first (user role set SUB ROLE)",
        )
    })?;
    let token = new_secret();
    let now = assent.clock.now_ms();
    assent
        .store
        .insert_console_login_link(
            &sha256_hex(&token),
            user_sub,
            now,
            now + LOGIN_LINK_TTL_SECS as i64 * 1000,
        )
        .await?;
    Ok(format!(
        "{}/console/link#{token}",
        assent.endpoints.issuer.trim_end_matches('/')
    ))
}

/// Uses a login link's token: a session for its user, once.
pub async fn redeem_login_link(
    assent: &Assent,
    token: &str,
    source: &str,
) -> Result<Option<(String, Role)>, OAuthError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let now = assent.clock.now_ms();
    let Some(user_sub) = assent
        .store
        .use_console_login_link(&sha256_hex(token), now)
        .await?
    else {
        return Ok(None);
    };
    let Ok((user, role)) = console_user(assent, &user_sub).await else {
        return Ok(None);
    };
    let secret = sessions::start(assent, &user.sub, source).await?;
    Ok(Some((secret, role)))
}
