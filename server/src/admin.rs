//! The operator HTTP API's domain side: who may call it, and what it does.

use crate::{
    device::{self, EnrollmentTicket, TicketError},
    error::{OAuthError, OAuthErrorCode},
    secrets::sha256_hex,
    state::Assent,
    storage::AdminTokenRow,
};

/// Longest admin token accepted, in bytes (issued ones are 43).
const MAX_ADMIN_TOKEN_LEN: usize = 256;

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminScope {
    /// Issue enrollment tickets (a help desk, a provisioning script).
    Enroll,
    /// Read clients, users, devices and requests.
    Read,
    /// Everything, including what the other scopes allow.
    Admin,
}

impl AdminScope {
    pub const ALL: [AdminScope; 3] = [AdminScope::Enroll, AdminScope::Read, AdminScope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            AdminScope::Enroll => "enroll",
            AdminScope::Read => "read",
            AdminScope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for AdminScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AdminScope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown admin scope {s:?} (enroll, read or admin)"))
    }
}

/// Whether a token with `scopes` (space-separated) may act within `needed`.
pub fn scopes_allow(scopes: &str, needed: AdminScope) -> bool {
    scopes
        .split(' ')
        .any(|s| s == needed.as_str() || s == AdminScope::Admin.as_str())
}

/// The admin token `token` names, if it is current and allows `needed`;
/// else the RFC 6750 refusal: `401 invalid_token` for an unknown or expired
/// token, `403 insufficient_scope` for one that may not do this.
pub async fn authenticate(
    assent: &Assent,
    token: &str,
    needed: AdminScope,
) -> Result<AdminTokenRow, OAuthError> {
    let unknown = || OAuthError::bearer(OAuthErrorCode::InvalidToken, "unknown admin token");
    if token.len() > MAX_ADMIN_TOKEN_LEN {
        return Err(unknown());
    }
    let row = assent
        .store
        .admin_token(&sha256_hex(token))
        .await?
        .ok_or_else(unknown)?;
    if row.expires_at.is_some_and(|at| at <= assent.clock.now_ms()) {
        return Err(OAuthError::bearer(
            OAuthErrorCode::InvalidToken,
            "the admin token has expired",
        ));
    }
    if !scopes_allow(&row.scopes, needed) {
        return Err(OAuthError::bearer(
            OAuthErrorCode::InsufficientScope,
            "the admin token's scopes do not allow this",
        ));
    }
    Ok(row)
}

/// An enrollment ticket for `user`, its refusals as OAuth errors (for the
/// operator API and the MFA API's self-enrollment).
pub async fn enrollment_ticket(
    assent: &Assent,
    user: &str,
    ttl_secs: u64,
) -> Result<EnrollmentTicket, OAuthError> {
    device::create_enrollment_ticket(assent, user, ttl_secs)
        .await
        .map_err(|e| match e {
            TicketError::UnknownUser(_) => {
                OAuthError::new(OAuthErrorCode::UnknownUser, "no such user")
            }
            TicketError::BadTtl => OAuthError::invalid_request(e.to_string()),
            TicketError::Storage(e) => e.into(),
        })
}
