//! Challenges are shown only after their server signature checks out.

use assent_shared::{
    jose::{sha256_b64url, EcPublicJwk, UnverifiedJws},
    protocol::{typ, ChallengeClaims, ServerKeyClaims},
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

/// The keys the server's challenge-key endorsements lead to from `pinned`,
/// oldest first: each endorsement must name the key before it as `kid` and
/// carry its valid signature, so a chain that does not start at the pinned
/// key leads nowhere. Endorsements that do not link are ignored.
pub fn follow_endorsements(pinned: &EcPublicJwk, endorsements: &[String]) -> Vec<EcPublicJwk> {
    let mut chain: Vec<EcPublicJwk> = Vec::new();
    let mut current = pinned.clone();
    // Each step uses up one endorsement, so a cycle cannot loop forever.
    for _ in 0..endorsements.len() {
        let thumbprint = current.thumbprint();
        let next = endorsements.iter().find_map(|jws| {
            let parsed = UnverifiedJws::parse(jws).ok()?;
            if parsed.header.typ != typ::SERVER_KEY
                || parsed.header.kid.as_deref() != Some(thumbprint.as_str())
            {
                return None;
            }
            let claims: ServerKeyClaims = parsed.verify(&current).ok()?;
            Some(claims.key)
        });
        match next {
            Some(key) if key != *pinned && !chain.contains(&key) => {
                chain.push(key.clone());
                current = key;
            }
            _ => break,
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_shared::jose::DeviceKey;

    fn endorse(by: &DeviceKey, key: &DeviceKey) -> String {
        let claims = ServerKeyClaims {
            key: key.public_jwk(),
            iat: 1_800_000_000,
        };
        by.sign(
            typ::SERVER_KEY,
            Some(&by.public_jwk().thumbprint()),
            false,
            &claims,
        )
    }

    #[test]
    fn endorsements_lead_from_the_pinned_key_only() {
        let (k0, k1, k2, stranger) = (
            DeviceKey::generate(),
            DeviceKey::generate(),
            DeviceKey::generate(),
            DeviceKey::generate(),
        );
        // Given out of order, with an endorsement from a key never pinned.
        let list = vec![
            endorse(&k1, &k2),
            endorse(&stranger, &k0),
            endorse(&k0, &k1),
        ];
        assert_eq!(
            follow_endorsements(&k0.public_jwk(), &list),
            vec![k1.public_jwk(), k2.public_jwk()]
        );
        // From the middle of the chain, only what comes after it.
        assert_eq!(
            follow_endorsements(&k1.public_jwk(), &list),
            vec![k2.public_jwk()]
        );
        // A device pinned to a key nobody endorsed from moves nowhere.
        assert!(follow_endorsements(&k2.public_jwk(), &list).is_empty());
        // An endorsement naming k0 but signed by another key does not link.
        let mut forged = endorse(&stranger, &k2);
        let header = assent_shared::jose::b64url(
            format!(
                r#"{{"alg":"ES256","typ":"{}","kid":"{}"}}"#,
                typ::SERVER_KEY,
                k0.public_jwk().thumbprint()
            )
            .as_bytes(),
        );
        let rest = forged.split_once('.').unwrap().1.to_string();
        forged = format!("{header}.{rest}");
        assert!(follow_endorsements(&k0.public_jwk(), &[forged]).is_empty());
        // A cycle ends.
        let cycle = vec![endorse(&k0, &k1), endorse(&k1, &k0)];
        assert_eq!(
            follow_endorsements(&k0.public_jwk(), &cycle),
            vec![k1.public_jwk()]
        );
    }
}
