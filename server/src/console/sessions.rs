//! Console sessions. The browser's cookie holds a random secret; the
//! database its SHA-256 digest. Each request finds and refreshes the session
//! in one statement that also refuses an idle or expired one and reads the
//! user's role as it is now, so that taking a role away ends console access
//! at the next click, on every server process.

use super::{ABSOLUTE_TIMEOUT, IDLE_TIMEOUT};
use crate::{
    audit::{self, Actor},
    error::OAuthError,
    secrets::{constant_time_eq, new_secret, sha256_hex},
    state::Assent,
    storage::NewConsoleSession,
    users::Role,
};

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_sub: String,
    pub role: Role,
    /// The token every change must carry (forms and `X-CSRF-Token`).
    pub csrf: String,
    /// Unix milliseconds of the absolute expiry.
    pub expires_at: i64,
    id_sha256: String,
}

impl Session {
    /// How the audit log names this person.
    pub fn actor(&self) -> Actor {
        Actor::Console {
            user: self.user_sub.clone(),
        }
    }
}

/// The CSRF token of a session: derived from its secret (so nothing more is
/// stored), useless without the cookie, and not the cookie itself.
fn csrf_of(secret: &str) -> String {
    sha256_hex(&format!("assent-console-csrf:{secret}"))
}

/// Whether `sent` is the session's CSRF token (in constant time).
pub fn csrf_matches(session: &Session, sent: &str) -> bool {
    constant_time_eq(&session.csrf, sent)
}

/// Starts a session for `user_sub`; answers the cookie's secret.
pub(super) async fn start(
    assent: &Assent,
    user_sub: &str,
    source: &str,
) -> Result<String, OAuthError> {
    let secret = new_secret();
    let now = assent.clock.now_ms();
    assent
        .store
        .insert_console_session(&NewConsoleSession {
            id_sha256: &sha256_hex(&secret),
            user_sub,
            now,
            expires_at: now + ABSOLUTE_TIMEOUT.as_millis() as i64,
            source,
        })
        .await?;
    audit::record(
        &assent.store,
        &Actor::Console {
            user: user_sub.to_string(),
        },
        source,
        "console.sign_in",
        Some(user_sub),
        serde_json::json!({}),
    )
    .await?;
    Ok(secret)
}

/// The session the cookie's `secret` names, if it is current and its user
/// still has a console role.
pub async fn session(assent: &Assent, secret: &str) -> Result<Option<Session>, OAuthError> {
    if secret.is_empty() || secret.len() > 128 {
        return Ok(None);
    }
    let id_sha256 = sha256_hex(secret);
    let now = assent.clock.now_ms();
    let idle_cutoff = now - IDLE_TIMEOUT.as_millis() as i64;
    let Some(row) = assent
        .store
        .touch_console_session(&id_sha256, now, idle_cutoff)
        .await?
    else {
        return Ok(None);
    };
    let Some(role) = row.role.as_deref().and_then(|r| r.parse::<Role>().ok()) else {
        return Ok(None);
    };
    Ok(Some(Session {
        user_sub: row.user_sub,
        role,
        csrf: csrf_of(secret),
        expires_at: row.expires_at,
        id_sha256,
    }))
}

/// Signs out: the session is deleted, so its cookie opens nothing more.
pub async fn end_session(
    assent: &Assent,
    session: &Session,
    source: &str,
) -> Result<(), OAuthError> {
    assent
        .store
        .delete_console_session(&session.id_sha256)
        .await?;
    audit::record(
        &assent.store,
        &session.actor(),
        source,
        "console.sign_out",
        Some(&session.user_sub),
        serde_json::json!({}),
    )
    .await?;
    Ok(())
}

/// Ends every console session of `user_sub`.
pub async fn sign_out_everywhere(assent: &Assent, user_sub: &str) -> Result<u64, OAuthError> {
    Ok(assent.store.delete_console_sessions_of(user_sub).await?)
}
