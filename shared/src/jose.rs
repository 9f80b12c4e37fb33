//! The JOSE pieces of the device protocol: ES256 compact JWS (RFC 7515),
//! P-256 public JWKs (RFC 7517) and their thumbprints (RFC 7638).
//!
//! Devices sign with the `p256` crate (pure Rust, deterministic RFC 6979
//! nonces, so the protocol test vectors are reproducible byte for byte).
//! Verification uses `aws-lc-rs`, the faster of the two on the server's hot
//! path (see `cargo bench -p assent-shared`).

use aws_lc_rs::{
    digest,
    signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use p256::ecdsa::{signature::Signer, Signature, SigningKey, VerifyingKey};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// base64url SHA-256 of `data`, the form every hash in the protocol takes.
pub fn sha256_b64url(data: &[u8]) -> String {
    b64url(&sha256(data))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("unsupported algorithm (only ES256)")]
    UnsupportedAlgorithm,
    #[error("invalid key")]
    InvalidKey,
    #[error("bad signature")]
    BadSignature,
    /// The header or payload is not JSON of the expected shape; the detail
    /// names what was wrong (a float where an integer belongs, a missing
    /// member) and where.
    #[error("invalid JSON in {part}: {detail}")]
    InvalidJson { part: &'static str, detail: String },
    /// The header marks extensions as critical (`crit`, RFC 7515 4.1.11):
    /// none is supported, so the JWS must be refused, whatever they are.
    #[error("the header marks extensions this protocol does not support as critical (crit: {0})")]
    UnsupportedCritical(String),
}

/// A public P-256 key as a JWK (RFC 7518 6.2), private members never included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcPublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
}

impl EcPublicJwk {
    pub fn from_verifying_key(key: &VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        Self {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: b64url(point.x().expect("uncompressed point")),
            y: b64url(point.y().expect("uncompressed point")),
        }
    }

    /// The key as an uncompressed SEC1 point, checked to lie on P-256.
    pub fn to_sec1(&self) -> Result<Vec<u8>, JoseError> {
        if self.kty != "EC" || self.crv != "P-256" {
            return Err(JoseError::InvalidKey);
        }
        let x = b64url_decode(&self.x).ok_or(JoseError::InvalidKey)?;
        let y = b64url_decode(&self.y).ok_or(JoseError::InvalidKey)?;
        if x.len() != 32 || y.len() != 32 {
            return Err(JoseError::InvalidKey);
        }
        let mut point = Vec::with_capacity(65);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        VerifyingKey::from_sec1_bytes(&point).map_err(|_| JoseError::InvalidKey)?;
        Ok(point)
    }

    /// RFC 7638 thumbprint: base64url SHA-256 of the canonical members.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            self.crv, self.kty, self.x, self.y
        );
        sha256_b64url(canonical.as_bytes())
    }
}

/// The protected header of every protocol JWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    pub typ: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Only in messages that prove possession of a new key (enrollment, key rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<EcPublicJwk>,
    /// Never set by this protocol; present, it refuses the JWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<serde_json::Value>,
}

/// A compact JWS split into its parts, header parsed, signature not yet checked.
#[derive(Debug, Clone)]
pub struct UnverifiedJws<'a> {
    pub header: JwsHeader,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: Vec<u8>,
}

impl<'a> UnverifiedJws<'a> {
    pub fn parse(compact: &'a str) -> Result<Self, JoseError> {
        let mut parts = compact.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed);
        };
        let header_bytes = b64url_decode(h).ok_or(JoseError::Malformed)?;
        let header: JwsHeader =
            serde_json::from_slice(&header_bytes).map_err(|e| JoseError::InvalidJson {
                part: "header",
                detail: e.to_string(),
            })?;
        if let Some(crit) = &header.crit {
            let shown: String = crit.to_string().chars().take(100).collect();
            return Err(JoseError::UnsupportedCritical(shown));
        }
        if header.alg != "ES256" {
            return Err(JoseError::UnsupportedAlgorithm);
        }
        let signature = b64url_decode(s).ok_or(JoseError::Malformed)?;
        if signature.len() != 64 {
            return Err(JoseError::BadSignature);
        }
        Ok(Self {
            header,
            signing_input: &compact[..h.len() + 1 + p.len()],
            payload_b64: p,
            signature,
        })
    }

    /// Checks the signature against `key` and returns the payload.
    pub fn verify<T: DeserializeOwned>(&self, key: &EcPublicJwk) -> Result<T, JoseError> {
        self.verify_sec1(&key.to_sec1()?)
    }

    /// As [`Self::verify`] with the key already as a SEC1 point.
    pub fn verify_sec1<T: DeserializeOwned>(&self, point: &[u8]) -> Result<T, JoseError> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JoseError::BadSignature)?;
        let payload = b64url_decode(self.payload_b64).ok_or(JoseError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|e| JoseError::InvalidJson {
            part: "payload",
            detail: e.to_string(),
        })
    }
}

/// A device's P-256 key pair. The private half never leaves the device.
#[derive(Clone)]
pub struct DeviceKey {
    signing: SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("thumbprint", &self.public_jwk().thumbprint())
            .finish_non_exhaustive()
    }
}

/// A private P-256 key as a JWK, for the device's own key file.
#[derive(Clone, Serialize, Deserialize)]
pub struct EcPrivateJwk {
    #[serde(flatten)]
    pub public: EcPublicJwk,
    pub d: String,
}

impl DeviceKey {
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    pub fn from_private_jwk(jwk: &EcPrivateJwk) -> Result<Self, JoseError> {
        let d = b64url_decode(&jwk.d).ok_or(JoseError::InvalidKey)?;
        let signing = SigningKey::from_slice(&d).map_err(|_| JoseError::InvalidKey)?;
        let key = Self { signing };
        if key.public_jwk() != jwk.public {
            return Err(JoseError::InvalidKey);
        }
        Ok(key)
    }

    pub fn to_private_jwk(&self) -> EcPrivateJwk {
        EcPrivateJwk {
            public: self.public_jwk(),
            d: b64url(&self.signing.to_bytes()),
        }
    }

    pub fn public_jwk(&self) -> EcPublicJwk {
        EcPublicJwk::from_verifying_key(self.signing.verifying_key())
    }

    /// Signs `payload` as an ES256 compact JWS with the given header fields.
    pub fn sign(
        &self,
        typ: &str,
        kid: Option<&str>,
        embed_jwk: bool,
        payload: &impl Serialize,
    ) -> String {
        let header = JwsHeader {
            alg: "ES256".into(),
            typ: typ.into(),
            kid: kid.map(str::to_string),
            jwk: embed_jwk.then(|| self.public_jwk()),
            crit: None,
        };
        sign_with(&self.signing, &header, payload)
    }
}

/// ES256 compact serialization with a `p256` key (deterministic signatures).
pub fn sign_with(key: &SigningKey, header: &JwsHeader, payload: &impl Serialize) -> String {
    let mut jws = b64url(&serde_json::to_vec(header).expect("header serialises"));
    jws.push('.');
    jws.push_str(&b64url(
        &serde_json::to_vec(payload).expect("payload serialises"),
    ));
    let signature: Signature = key.sign(jws.as_bytes());
    jws.push('.');
    jws.push_str(&b64url(&signature.to_bytes()));
    jws
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn a_float_where_an_integer_belongs_is_named_in_the_error() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Claims {
            iat: i64,
        }
        let key = DeviceKey::generate();
        let jws = key.sign(
            "assent-proof+jwt",
            None,
            false,
            &json!({"iat": 1767225600.5}),
        );
        let err = UnverifiedJws::parse(&jws)
            .unwrap()
            .verify::<Claims>(&key.public_jwk())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid JSON in payload: invalid type: floating point"),
            "{err}"
        );
    }

    #[test]
    fn signatures_verify_and_tampering_is_caught() {
        let key = DeviceKey::generate();
        let jws = key.sign("assent-proof+jwt", Some("dev1"), false, &json!({"a": 1}));
        let parsed = UnverifiedJws::parse(&jws).unwrap();
        assert_eq!(parsed.header.kid.as_deref(), Some("dev1"));
        let payload: Value = parsed.verify(&key.public_jwk()).unwrap();
        assert_eq!(payload["a"], 1);

        let other = DeviceKey::generate();
        assert_eq!(
            parsed.verify::<Value>(&other.public_jwk()).unwrap_err(),
            JoseError::BadSignature
        );

        let mut parts: Vec<&str> = jws.split('.').collect();
        let forged = b64url(br#"{"a":2}"#);
        parts[1] = &forged;
        let tampered = parts.join(".");
        let parsed = UnverifiedJws::parse(&tampered).unwrap();
        assert_eq!(
            parsed.verify::<Value>(&key.public_jwk()).unwrap_err(),
            JoseError::BadSignature
        );
    }

    #[test]
    fn alg_none_and_garbage_are_refused() {
        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","typ":"x"}"#),
            b64url(b"{}")
        );
        assert_eq!(
            UnverifiedJws::parse(&none).unwrap_err(),
            JoseError::UnsupportedAlgorithm
        );
        assert_eq!(
            UnverifiedJws::parse("a.b").unwrap_err(),
            JoseError::Malformed
        );
        // Signed, but with an extension marked critical (RFC 7515 4.1.11).
        let key = DeviceKey::generate();
        let header = JwsHeader {
            alg: "ES256".into(),
            typ: "x".into(),
            kid: None,
            jwk: None,
            crit: Some(serde_json::json!(["urn:example:must-understand"])),
        };
        let critical = sign_with(&key.signing, &header, &serde_json::json!({}));
        assert!(matches!(
            UnverifiedJws::parse(&critical).unwrap_err(),
            JoseError::UnsupportedCritical(named) if named.contains("must-understand")
        ));
        assert_eq!(
            UnverifiedJws::parse("a.b.c.d").unwrap_err(),
            JoseError::Malformed
        );
    }

    #[test]
    fn private_jwk_round_trips() {
        let key = DeviceKey::generate();
        let restored = DeviceKey::from_private_jwk(&key.to_private_jwk()).unwrap();
        assert_eq!(restored.public_jwk(), key.public_jwk());
    }

    #[test]
    fn points_off_the_curve_are_rejected() {
        let mut jwk = DeviceKey::generate().public_jwk();
        jwk.y = jwk.x.clone();
        assert_eq!(jwk.to_sec1().unwrap_err(), JoseError::InvalidKey);
    }
}
