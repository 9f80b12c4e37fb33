//! The challenge a device is shown before its user decides: everything
//! about one request, signed once by the server's device key when the
//! request is stored. Devices verify it against the key they pinned at
//! enrollment, and a decision names its hash.

use assent_shared::protocol::{typ, ChallengeClaims};

use crate::keys::KeySet;

/// A signed challenge and the SHA-256 (base64url) a decision must name.
#[derive(Debug, Clone)]
pub struct SignedChallenge {
    pub jws: String,
    pub sha256: String,
}

pub fn sign(keys: &KeySet, claims: &ChallengeClaims) -> SignedChallenge {
    let jws = keys.device_key().sign_jwt(typ::CHALLENGE, claims);
    let sha256 = assent_shared::jose::sha256_b64url(jws.as_bytes());
    SignedChallenge { jws, sha256 }
}
