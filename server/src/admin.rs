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

/// The admin token `token` names, or the RFC 6750 refusal.
pub async fn authenticate(assent: &Assent, token: &str) -> Result<AdminTokenRow, OAuthError> {
    let unknown = || OAuthError::bearer(OAuthErrorCode::InvalidToken, "unknown admin token");
    if token.len() > MAX_ADMIN_TOKEN_LEN {
        return Err(unknown());
    }
    assent
        .store
        .admin_token(&sha256_hex(token))
        .await?
        .ok_or_else(unknown)
}

/// Issues an enrollment ticket for `user`, as the operator API answers it.
pub async fn create_enrollment_ticket(
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
