//! Token-signing keys: generated on first start, persisted, published as JWKS.
//!
//! Signing uses `aws-lc-rs` key pairs parsed once at start-up and kept in
//! memory, so minting a token costs one signature and nothing else (a JWT
//! library that re-parses the PKCS#8 document per token would double the
//! cost of ES256). Verification of our own tokens (userinfo, `id_token_hint`)
//! goes through `jsonwebtoken` with the published JWKs.

use std::{collections::HashMap, fmt, str::FromStr};

use anyhow::{anyhow, bail, Context};
use aws_lc_rs::{
    encoding::{AsBigEndian, AsDer, EcPrivateKeyBin, Pkcs8V1Der},
    rand::SystemRandom,
    rsa::KeySize,
    signature::{
        EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
        RSA_PKCS1_SHA256,
    },
};
use jsonwebtoken::{jwk::Jwk, Algorithm, DecodingKey};
use serde::Serialize;
use serde_json::json;

use crate::{
    clock::Clock,
    secrets::{b64url, b64url_decode, sha256},
    storage::{SigningKeyRow, Store},
};

/// The algorithms Assent signs tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenAlg {
    RS256,
    ES256,
}

impl TokenAlg {
    pub const ALL: [TokenAlg; 2] = [TokenAlg::RS256, TokenAlg::ES256];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenAlg::RS256 => "RS256",
            TokenAlg::ES256 => "ES256",
        }
    }

    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            TokenAlg::RS256 => Algorithm::RS256,
            TokenAlg::ES256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for TokenAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenAlg {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(TokenAlg::RS256),
            "ES256" => Ok(TokenAlg::ES256),
            other => bail!("unsupported signing algorithm {other:?} (use RS256 or ES256)"),
        }
    }
}

enum KeyMaterial {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// One private signing key with its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: TokenAlg,
    material: KeyMaterial,
    /// Public JWK members (`kty`, `crv`/`x`/`y` or `n`/`e`), without `kid`.
    public_members: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key and its PKCS#8 document (for storage).
    pub fn generate(alg: TokenAlg) -> anyhow::Result<(Self, Vec<u8>)> {
        let pkcs8 = match alg {
            TokenAlg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(|_| anyhow!("EC key generation failed"))?
                    .as_ref()
                    .to_vec()
            }
            TokenAlg::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| anyhow!("RSA key generation failed"))?;
                let der: Pkcs8V1Der = pair
                    .as_der()
                    .map_err(|_| anyhow!("RSA key serialisation failed"))?;
                der.as_ref().to_vec()
            }
        };
        let key = Self::from_pkcs8(alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    pub fn from_pkcs8(alg: TokenAlg, pkcs8: &[u8]) -> anyhow::Result<Self> {
        let (material, public_members) = match alg {
            TokenAlg::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|e| anyhow!("invalid ES256 key: {e}"))?;
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    bail!("unexpected EC public key encoding");
                }
                let members = json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64url(&point[1..33]),
                    "y": b64url(&point[33..65]),
                });
                (KeyMaterial::Ec(pair), members)
            }
            TokenAlg::RS256 => {
                let pair =
                    RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow!("invalid RS256 key: {e}"))?;
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let members = json!({
                    "kty": "RSA",
                    "n": b64url(&components.n),
                    "e": b64url(&components.e),
                });
                (KeyMaterial::Rsa(pair), members)
            }
        };
        let public_members = match public_members {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let kid = jwk_thumbprint(&public_members)?;
        Ok(Self {
            kid,
            alg,
            material,
            public_members,
        })
    }

    /// The public key as a P-256 JWK (only for ES256 keys).
    pub fn ec_public_jwk(&self) -> Option<assent_shared::jose::EcPublicJwk> {
        match self.alg {
            TokenAlg::ES256 => {
                serde_json::from_value(serde_json::Value::Object(self.public_members.clone())).ok()
            }
            TokenAlg::RS256 => None,
        }
    }

    /// The raw private scalar of an ES256 key (what VAPID libraries take).
    pub fn ec_private_scalar(&self) -> Option<Vec<u8>> {
        match &self.material {
            KeyMaterial::Ec(pair) => {
                let bytes: Result<EcPrivateKeyBin, _> = pair.private_key().as_be_bytes();
                bytes.ok().map(|b| b.as_ref().to_vec())
            }
            KeyMaterial::Rsa(_) => None,
        }
    }

    /// The uncompressed public point of an ES256 key, base64url (the form
    /// browsers' `applicationServerKey` takes).
    pub fn ec_public_point_b64(&self) -> Option<String> {
        match &self.material {
            KeyMaterial::Ec(pair) => Some(b64url(pair.public_key().as_ref())),
            KeyMaterial::Rsa(_) => None,
        }
    }

    /// The public JWK as published in the JWKS.
    pub fn public_jwk(&self) -> serde_json::Value {
        let mut jwk = self.public_members.clone();
        jwk.insert("kid".into(), self.kid.clone().into());
        jwk.insert("alg".into(), self.alg.as_str().into());
        jwk.insert("use".into(), "sig".into());
        serde_json::Value::Object(jwk)
    }

    /// Signs `claims` as a JWS compact serialization (RFC 7515 7.1).
    pub fn sign_jwt(&self, typ: &str, claims: &impl Serialize) -> String {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: self.alg.as_str(),
            typ,
            kid: &self.kid,
        })
        .expect("header serialises");
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let mut jws = b64url(&header);
        jws.push('.');
        jws.push_str(&b64url(&payload));
        let signature = self.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&b64url(&signature));
        jws
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.material {
            KeyMaterial::Ec(pair) => pair
                .sign(&rng, message)
                .expect("ECDSA signing cannot fail with a valid key")
                .as_ref()
                .to_vec(),
            KeyMaterial::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .expect("RSA signing cannot fail with a valid key");
                signature
            }
        }
    }
}

/// RFC 7638 thumbprint: base64url SHA-256 of the required members in
/// lexicographic order, without whitespace.
pub fn jwk_thumbprint(
    members: &serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<String> {
    let get = |k: &str| {
        members
            .get(k)
            .and_then(|v| v.as_str())
            .ok_or_else(|| anyhow!("JWK member {k} missing"))
    };
    let canonical = match get("kty")? {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            get("crv")?,
            get("x")?,
            get("y")?
        ),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, get("e")?, get("n")?),
        other => bail!("no thumbprint for key type {other}"),
    };
    Ok(b64url(&sha256(canonical.as_bytes())))
}

/// A public key that verifies tokens we issued.
pub struct Verifier {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// A device's public key, as verifying its messages needs it: cached per
/// process, safe because every use re-checks, in the same statement that
/// spends the message's `jti`, that the device is active with this very key.
#[derive(Debug, Clone)]
pub struct DeviceKeyInfo {
    pub id: String,
    pub user_sub: String,
    /// The uncompressed P-256 point.
    pub point: Vec<u8>,
    pub thumbprint: String,
}

/// What a key signs. Keys of one purpose never sign for another.
pub const TOKEN_PURPOSE: &str = "token";
/// Signs the challenges shown on devices; pinned by devices at enrollment.
pub const DEVICE_PURPOSE: &str = "device";

/// Signs VAPID JWTs for Web Push (RFC 8292); its public key goes to devices.
pub const VAPID_PURPOSE: &str = "vapid";

/// Every (purpose, algorithm) that must have an active key.
const REQUIRED_KEYS: [(&str, TokenAlg); 4] = [
    (TOKEN_PURPOSE, TokenAlg::RS256),
    (TOKEN_PURPOSE, TokenAlg::ES256),
    (DEVICE_PURPOSE, TokenAlg::ES256),
    (VAPID_PURPOSE, TokenAlg::ES256),
];

/// The server's keys: one active token-signing key per algorithm, the
/// challenge-signing key, and the verifiers of every token key still published.
pub struct KeySet {
    active: HashMap<TokenAlg, SigningKey>,
    device: SigningKey,
    vapid: SigningKey,
    verifiers: HashMap<String, Verifier>,
    jwks_json: String,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.verifiers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySet {
    /// Loads the keys from the database, generating and storing the missing
    /// ones first. Safe when several processes start on one empty database:
    /// the unique index lets one key per algorithm win and everyone reloads.
    pub async fn load_or_generate(store: &Store, clock: &Clock) -> anyhow::Result<Self> {
        let mut rows = store.signing_keys().await?;
        for (purpose, alg) in REQUIRED_KEYS {
            let have = rows
                .iter()
                .any(|r| r.purpose == purpose && r.alg == alg.as_str() && r.state == "active");
            if have {
                continue;
            }
            // RSA generation takes tens of milliseconds: keep it off the runtime.
            let (key, pkcs8) = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
                .await
                .context("key generation task")??;
            let stored = store
                .insert_active_signing_key(&SigningKeyRow {
                    kid: key.kid.clone(),
                    purpose: purpose.into(),
                    alg: alg.as_str().into(),
                    private_key_pkcs8: b64url(&pkcs8),
                    state: "active".into(),
                    created_at: clock.now_ms(),
                })
                .await?;
            if stored {
                tracing::info!(kid = %key.kid, alg = %alg, purpose, "generated signing key");
            }
        }
        rows = store.signing_keys().await?;
        Self::from_rows(&rows)
    }

    pub fn from_rows(rows: &[SigningKeyRow]) -> anyhow::Result<Self> {
        let mut active = HashMap::new();
        let mut device = None;
        let mut vapid = None;
        let mut verifiers = HashMap::new();
        let mut published = Vec::new();
        for row in rows {
            let alg: TokenAlg = row.alg.parse()?;
            let der = b64url_decode(&row.private_key_pkcs8)
                .ok_or_else(|| anyhow!("signing key {} is not valid base64url", row.kid))?;
            let key = SigningKey::from_pkcs8(alg, &der)
                .with_context(|| format!("loading signing key {}", row.kid))?;
            if row.purpose == DEVICE_PURPOSE || row.purpose == VAPID_PURPOSE {
                if row.state == "active" {
                    let slot = if row.purpose == DEVICE_PURPOSE {
                        &mut device
                    } else {
                        &mut vapid
                    };
                    *slot = Some(key);
                }
                continue;
            }
            let jwk_value = key.public_jwk();
            let jwk: Jwk = serde_json::from_value(jwk_value.clone())?;
            verifiers.insert(
                key.kid.clone(),
                Verifier {
                    alg: alg.jwt_algorithm(),
                    key: DecodingKey::from_jwk(&jwk)?,
                },
            );
            published.push(jwk_value);
            if row.state == "active" {
                active.insert(alg, key);
            }
        }
        for alg in TokenAlg::ALL {
            if !active.contains_key(&alg) {
                bail!("no active {alg} signing key");
            }
        }
        let device = device.ok_or_else(|| anyhow!("no active device challenge key"))?;
        let vapid = vapid.ok_or_else(|| anyhow!("no active VAPID key"))?;
        let jwks_json = serde_json::to_string(&json!({ "keys": published }))?;
        Ok(Self {
            active,
            device,
            vapid,
            verifiers,
            jwks_json,
        })
    }

    pub fn signing_key(&self, alg: TokenAlg) -> &SigningKey {
        &self.active[&alg]
    }

    /// The key that signs device challenges.
    pub fn device_key(&self) -> &SigningKey {
        &self.device
    }

    /// The VAPID key pair (RFC 8292).
    pub fn vapid_key(&self) -> &SigningKey {
        &self.vapid
    }

    pub fn verifier(&self, kid: &str) -> Option<&Verifier> {
        self.verifiers.get(kid)
    }

    /// The JWKS document, serialised once.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_tokens_that_verify_against_their_jwk() {
        for alg in TokenAlg::ALL {
            let (key, pkcs8) = SigningKey::generate(alg).unwrap();
            let reloaded = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
            assert_eq!(key.kid, reloaded.kid);
            let token = key.sign_jwt("JWT", &json!({"sub": "alice", "exp": 4_000_000_000u64}));
            let jwk: Jwk = serde_json::from_value(key.public_jwk()).unwrap();
            let mut validation = jsonwebtoken::Validation::new(alg.jwt_algorithm());
            validation.validate_aud = false;
            let data = jsonwebtoken::decode::<serde_json::Value>(
                &token,
                &DecodingKey::from_jwk(&jwk).unwrap(),
                &validation,
            )
            .unwrap();
            assert_eq!(data.claims["sub"], "alice");
            assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
        }
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 section 3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
        });
        assert_eq!(
            jwk_thumbprint(jwk.as_object().unwrap()).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
