//! Challenges are shown only after their server signature checks out.

use assent_shared::{
    jose::{sha256_b64url, EcPublicJwk, UnverifiedJws},
    protocol::{typ, ChallengeClaims},
};

/// A challenge whose signature by the pinned server key has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChallenge {
    /// The exact JWS received; the decision signs its hash.
    pub jws: String,
    pub claims: ChallengeClaims,
}

impl VerifiedChallenge {
    /// `challenge_hash` of a decision about this challenge.
    pub fn hash(&self) -> String {
        sha256_b64url(self.jws.as_bytes())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeRejected {
    #[error("the request is not a signed challenge")]
    Malformed,
    #[error("the request was not signed by this account's server")]
    WrongKey,
    #[error("the request's signature is invalid")]
    BadSignature,
    #[error("the request names another server")]
    WrongIssuer,
    #[error("the request has expired")]
    Expired,
}

/// Verifies a challenge against the server key pinned at enrollment, and
/// that it has not expired at `now` (Unix seconds).
pub fn verify_challenge(
    jws: &str,
    server_key: &EcPublicJwk,
    server: &str,
    now: i64,
) -> Result<VerifiedChallenge, ChallengeRejected> {
    let parsed = UnverifiedJws::parse(jws).map_err(|_| ChallengeRejected::Malformed)?;
    if parsed.header.typ != typ::CHALLENGE {
        return Err(ChallengeRejected::Malformed);
    }
    if parsed.header.kid.as_deref() != Some(server_key.thumbprint().as_str()) {
        return Err(ChallengeRejected::WrongKey);
    }
    let claims: ChallengeClaims = parsed.verify(server_key).map_err(|e| match e {
        assent_shared::jose::JoseError::BadSignature => ChallengeRejected::BadSignature,
        _ => ChallengeRejected::Malformed,
    })?;
    // Both are the server's base URL without a trailing slash (the
    // protocol normalises it once, on the server).
    if claims.iss != server.trim_end_matches('/') {
        return Err(ChallengeRejected::WrongIssuer);
    }
    if claims.exp <= now {
        return Err(ChallengeRejected::Expired);
    }
    Ok(VerifiedChallenge {
        jws: jws.to_string(),
        claims,
    })
}
