//! The server's signing keys: generated on first start, sealed at rest by
//! the key-encryption key ([`crate::kek`]), rotated by time, published as JWKS.
//!
//! Signing uses `aws-lc-rs` key pairs parsed once at start-up and kept in
//! memory, so minting a token costs one signature and nothing else (a JWT
//! library that re-parses the PKCS#8 document per token would double the
//! cost of ES256). Verification of our own tokens (userinfo, `id_token_hint`)
//! goes through `jsonwebtoken` with the published JWKs.

use std::{collections::HashMap, fmt, str::FromStr, sync::Arc};

use arc_swap::ArcSwap;

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
    kek::KeyEncryptionKey,
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

/// What a key signs. Keys of one purpose never sign for another, and a token
/// is verified only with keys of the purpose its type calls for, so an access
/// token never passes for an ID token nor the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// ID tokens, published in the JWKS.
    IdToken,
    /// Access tokens (RFC 9068), published in the JWKS under their own `kid`s.
    AccessToken,
    /// The challenges shown on devices; pinned by devices at enrollment.
    DeviceChallenge,
    /// VAPID JWTs for Web Push (RFC 8292); its public key goes to devices.
    Vapid,
}

impl KeyPurpose {
    pub const ALL: [KeyPurpose; 4] = [
        KeyPurpose::IdToken,
        KeyPurpose::AccessToken,
        KeyPurpose::DeviceChallenge,
        KeyPurpose::Vapid,
    ];

    /// The stored name (the `purpose` column).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::IdToken => "token",
            KeyPurpose::AccessToken => "access",
            KeyPurpose::DeviceChallenge => "device",
            KeyPurpose::Vapid => "vapid",
        }
    }

    fn algorithms(self) -> &'static [TokenAlg] {
        match self {
            KeyPurpose::IdToken | KeyPurpose::AccessToken => &TokenAlg::ALL,
            KeyPurpose::DeviceChallenge | KeyPurpose::Vapid => &[TokenAlg::ES256],
        }
    }

    /// Published in the JWKS, for relying parties and resource servers.
    fn published(self) -> bool {
        matches!(self, KeyPurpose::IdToken | KeyPurpose::AccessToken)
    }
}

impl FromStr for KeyPurpose {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyPurpose::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| anyhow!("unknown key purpose {s:?} (token, access, device or vapid)"))
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public key that verifies tokens we issued.
pub struct Verifier {
    pub alg: Algorithm,
    pub purpose: KeyPurpose,
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
    /// The device enrolled a passkey: its decisions must carry an
    /// assertion of it.
    pub passkey: bool,
}

/// The key-encryption keys of this process: the one that seals, and during
/// a change of key-encryption key the previous one, which only opens.
#[derive(Debug)]
pub struct KeyEncryptionKeys {
    pub current: KeyEncryptionKey,
    pub previous: Option<KeyEncryptionKey>,
}

impl KeyEncryptionKeys {
    /// What a sealed key is bound to: it opens only on its own row.
    fn context(row: &SigningKeyRow) -> String {
        format!("assent signing key {} {} {}", row.purpose, row.alg, row.kid)
    }

    fn seal(&self, row: &SigningKeyRow, pkcs8: &[u8]) -> String {
        self.current.seal(pkcs8, &Self::context(row))
    }

    /// The PKCS#8 document of `row`.
    fn open(&self, row: &SigningKeyRow) -> anyhow::Result<Vec<u8>> {
        let Some(kek_id) = row.kek_id.as_deref() else {
            return b64url_decode(&row.private_key_pkcs8)
                .ok_or_else(|| anyhow!("signing key {} is not valid base64url", row.kid));
        };
        let kek = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id() == kek_id)
            .ok_or_else(|| {
                anyhow!(
                    "signing key {} is sealed with key-encryption key {kek_id}, but this process has {}{}: \
                     give it the key-encryption key the database was sealed with \
                     (ASSENT_KEY_ENCRYPTION_KEY_FILE or ASSENT_KEY_ENCRYPTION_KEY; when changing it, the old one \
                     as ASSENT_PREVIOUS_KEY_ENCRYPTION_KEY_FILE)",
                    row.kid,
                    self.current.id(),
                    self.previous
                        .as_ref()
                        .map(|p| format!(" and {}", p.id()))
                        .unwrap_or_default(),
                )
            })?;
        kek.open(&row.private_key_pkcs8, &Self::context(row))
            .with_context(|| format!("opening signing key {}", row.kid))
    }
}

/// What every sealed outbox message is bound to: a sealed signing key
/// copied into the outbox (or a message into the keys table) does not open.
const MESSAGE_CONTEXT: &str = "assent message outbox";

/// When keys change hands: a key stops being published this long after its
/// successor starts signing (the longest token lifetime, plus caching).
#[derive(Debug, Clone, Copy)]
pub struct RotationPolicy {
    pub verify_window_ms: i64,
}

impl RotationPolicy {
    /// The policy of a server issuing tokens with these lifetimes.
    pub fn for_lifetimes(access_token_ttl: u64, id_token_ttl: u64) -> Self {
        let longest = access_token_ttl.max(id_token_ttl) as i64;
        Self {
            verify_window_ms: (longest + JWKS_MAX_AGE_SECS) * 1000,
        }
    }
}

/// How long relying parties may cache the JWKS (its `Cache-Control`).
pub const JWKS_MAX_AGE_SECS: i64 = 300;

/// A superseded key's private half is deleted this long after it stopped
/// being needed (a day of margin for clocks and for looking into incidents).
const DELETE_AFTER_MS: i64 = 24 * 3600 * 1000;

/// The server's keys at one moment: the key of each purpose and algorithm
/// that signs now, the verifiers of every token key still published, and
/// the chain of challenge-key endorsements.
pub struct KeySet {
    signing: HashMap<(KeyPurpose, TokenAlg), SigningKey>,
    verifiers: HashMap<String, Verifier>,
    jwks_json: String,
    device_endorsements: Vec<String>,
    /// When this set stops being right (a key activates, or a superseded
    /// one leaves the JWKS): the holder rebuilds it then.
    next_change_ms: Option<i64>,
    /// Superseded keys nothing needs any more.
    deletable: Vec<String>,
    /// Superseded challenge keys whose private half nothing needs any more.
    forgettable: Vec<String>,
    /// What the set was built from, to tell whether the table changed.
    fingerprint: Vec<(String, Option<String>, i64)>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.verifiers.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn fingerprint(rows: &[SigningKeyRow]) -> Vec<(String, Option<String>, i64)> {
    rows.iter()
        .map(|r| {
            let forgotten = r.private_key_pkcs8.is_empty().then(String::new);
            (
                r.kid.clone(),
                forgotten.or(r.kek_id.clone()),
                r.activates_at,
            )
        })
        .collect()
}

impl KeySet {
    /// Builds the set that holds at `now_ms` from the stored rows.
    pub fn from_rows(
        rows: &[SigningKeyRow],
        keks: &KeyEncryptionKeys,
        policy: RotationPolicy,
        now_ms: i64,
    ) -> anyhow::Result<Self> {
        let mut by_slot: HashMap<(KeyPurpose, TokenAlg), Vec<&SigningKeyRow>> = HashMap::new();
        for row in rows {
            let purpose: KeyPurpose = row.purpose.parse()?;
            let alg: TokenAlg = row.alg.parse()?;
            by_slot.entry((purpose, alg)).or_default().push(row);
        }
        let mut signing = HashMap::new();
        let mut verifiers = HashMap::new();
        let mut published = Vec::new();
        let mut device_endorsements = Vec::new();
        let mut next_change_ms: Option<i64> = None;
        let mut deletable = Vec::new();
        let mut forgettable = Vec::new();
        let mut change_at = |at: i64| {
            next_change_ms = Some(next_change_ms.map_or(at, |n| n.min(at)));
        };
        for purpose in KeyPurpose::ALL {
            for &alg in purpose.algorithms() {
                let mut slot = by_slot.remove(&(purpose, alg)).unwrap_or_default();
                slot.sort_by_key(|r| (r.activates_at, r.created_at));
                let Some(current) = slot.iter().rposition(|r| r.activates_at <= now_ms) else {
                    bail!("no {purpose} {alg} signing key is active yet");
                };
                for (i, row) in slot.iter().enumerate() {
                    if purpose == KeyPurpose::DeviceChallenge {
                        device_endorsements.extend(row.endorsement.clone());
                    }
                    // Upcoming keys are published before they sign; a
                    // superseded one until what it signed has expired.
                    let superseded_at = (i < current).then(|| slot[i + 1].activates_at);
                    if row.activates_at > now_ms {
                        change_at(row.activates_at);
                    }
                    let needed_until = superseded_at.map(|at| at + policy.verify_window_ms);
                    if let Some(until) = needed_until {
                        if until + DELETE_AFTER_MS <= now_ms {
                            // A challenge key's row stays, without its private
                            // half: the endorsement it holds links the chain.
                            if purpose != KeyPurpose::DeviceChallenge {
                                deletable.push(row.kid.clone());
                            } else if !row.private_key_pkcs8.is_empty() {
                                forgettable.push(row.kid.clone());
                            }
                            continue;
                        }
                        if until <= now_ms {
                            change_at(until + DELETE_AFTER_MS);
                            continue;
                        }
                        change_at(until);
                    }
                    if i != current && !purpose.published() {
                        continue;
                    }
                    let der = keks.open(row)?;
                    let key = SigningKey::from_pkcs8(alg, &der)
                        .with_context(|| format!("loading signing key {}", row.kid))?;
                    if purpose.published() {
                        let jwk_value = key.public_jwk();
                        let jwk: Jwk = serde_json::from_value(jwk_value.clone())?;
                        verifiers.insert(
                            key.kid.clone(),
                            Verifier {
                                alg: alg.jwt_algorithm(),
                                purpose,
                                key: DecodingKey::from_jwk(&jwk)?,
                            },
                        );
                        published.push(jwk_value);
                    }
                    if i == current {
                        signing.insert((purpose, alg), key);
                    }
                }
            }
        }
        let jwks_json = serde_json::to_string(&json!({ "keys": published }))?;
        Ok(Self {
            signing,
            verifiers,
            jwks_json,
            device_endorsements,
            next_change_ms,
            deletable,
            forgettable,
            fingerprint: fingerprint(rows),
        })
    }

    /// The key that signs ID tokens with `alg`.
    pub fn id_token_key(&self, alg: TokenAlg) -> &SigningKey {
        &self.signing[&(KeyPurpose::IdToken, alg)]
    }

    /// The key that signs access tokens with `alg`.
    pub fn access_token_key(&self, alg: TokenAlg) -> &SigningKey {
        &self.signing[&(KeyPurpose::AccessToken, alg)]
    }

    /// The key that signs device challenges.
    pub fn device_key(&self) -> &SigningKey {
        &self.signing[&(KeyPurpose::DeviceChallenge, TokenAlg::ES256)]
    }

    /// The VAPID key pair (RFC 8292).
    pub fn vapid_key(&self) -> &SigningKey {
        &self.signing[&(KeyPurpose::Vapid, TokenAlg::ES256)]
    }

    /// The published key `kid`, if it verifies tokens of `purpose`.
    pub fn verifier(&self, kid: &str, purpose: KeyPurpose) -> Option<&Verifier> {
        self.verifiers.get(kid).filter(|v| v.purpose == purpose)
    }

    /// The JWKS document, serialised once per key change.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// The challenge-key endorsements, oldest first (empty until a rotation).
    pub fn device_endorsements(&self) -> &[String] {
        &self.device_endorsements
    }
}

/// The keys every purpose needs on first start.
fn required_slots() -> impl Iterator<Item = (KeyPurpose, TokenAlg)> {
    KeyPurpose::ALL
        .into_iter()
        .flat_map(|p| p.algorithms().iter().map(move |&a| (p, a)))
}

/// A new key for `purpose`, sealed, as a row that activates at `activates_at`.
async fn new_key_row(
    keks: &KeyEncryptionKeys,
    purpose: KeyPurpose,
    alg: TokenAlg,
    activates_at: i64,
    now_ms: i64,
) -> anyhow::Result<(SigningKey, SigningKeyRow)> {
    // RSA generation takes tens of milliseconds: keep it off the runtime.
    let (key, pkcs8) = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
        .await
        .context("key generation task")??;
    let mut row = SigningKeyRow {
        kid: key.kid.clone(),
        purpose: purpose.as_str().into(),
        alg: alg.as_str().into(),
        private_key_pkcs8: String::new(),
        kek_id: Some(keks.current.id().to_string()),
        activates_at,
        endorsement: None,
        created_at: now_ms,
    };
    row.private_key_pkcs8 = keks.seal(&row, &pkcs8);
    Ok((key, row))
}

/// The server's keys as they change: rebuilt when a key activates or
/// leaves the JWKS, and when another process (the `keys rotate` command)
/// changed the table. Reading them is one atomic load.
pub struct Keys {
    current: ArcSwap<KeySet>,
    keks: KeyEncryptionKeys,
    policy: RotationPolicy,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("current", &self.current.load())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Loads the keys from the database, first generating the missing ones
    /// and sealing any stored in clear (or under the previous key-encryption
    /// key) with the current one. Safe when several processes start on one
    /// empty database: the unique index lets one first-start key per
    /// purpose and algorithm win, and everyone reloads.
    pub async fn open(
        store: &Store,
        clock: &Clock,
        keks: KeyEncryptionKeys,
        policy: RotationPolicy,
    ) -> anyhow::Result<Self> {
        let rows = store.signing_keys().await?;
        for (purpose, alg) in required_slots() {
            let have = rows
                .iter()
                .any(|r| r.purpose == purpose.as_str() && r.alg == alg.as_str());
            if have {
                continue;
            }
            let (key, row) = new_key_row(&keks, purpose, alg, 0, clock.now_ms()).await?;
            if store.insert_signing_key(&row).await? {
                tracing::info!(kid = %key.kid, %alg, %purpose, "generated signing key");
            }
        }
        for row in store.signing_keys().await? {
            if row.kek_id.as_deref() == Some(keks.current.id()) || row.private_key_pkcs8.is_empty()
            {
                continue;
            }
            let pkcs8 = keks.open(&row)?;
            let sealed = keks.seal(&row, &pkcs8);
            if store
                .reseal_signing_key(&row.kid, row.kek_id.as_deref(), &sealed, keks.current.id())
                .await?
            {
                tracing::info!(
                    kid = %row.kid,
                    kek_id = keks.current.id(),
                    "sealed signing key with the current key-encryption key"
                );
            }
        }
        let rows = store.signing_keys().await?;
        let set = KeySet::from_rows(&rows, &keks, policy, clock.now_ms())?;
        Ok(Self {
            current: ArcSwap::from_pointee(set),
            keks,
            policy,
        })
    }

    /// The key-encryption keys new signing keys are sealed with.
    pub fn key_encryption_keys(&self) -> &KeyEncryptionKeys {
        &self.keks
    }

    /// The keys that hold now.
    pub fn get(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// When the current set stops being right by itself.
    pub fn next_change_ms(&self) -> Option<i64> {
        self.current.load().next_change_ms
    }

    /// A keyed digest (HMAC under a key derived from the current
    /// key-encryption key) of a low-entropy value: a one-time code, an
    /// address. Changing the key-encryption key changes every such digest,
    /// which only voids codes alive at that moment.
    pub fn keyed_digest(&self, context: &str, value: &str) -> String {
        self.keks.current.keyed_digest(context, value)
    }

    /// Seals an outbox message (`messaging`) with the current
    /// key-encryption key: the database never holds a code, a link or a
    /// recipient in clear.
    pub fn seal_message(&self, plain: &[u8]) -> String {
        self.keks.current.seal(plain, MESSAGE_CONTEXT)
    }

    /// Opens what [`Self::seal_message`] sealed, with the current key or,
    /// while the key-encryption key is being changed, the previous one (a
    /// message queued just before the change).
    pub fn open_message(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        match self.keks.current.open(sealed, MESSAGE_CONTEXT) {
            Ok(plain) => Ok(plain),
            Err(err) => match &self.keks.previous {
                Some(previous) => previous.open(sealed, MESSAGE_CONTEXT).map_err(|_| err),
                None => Err(err),
            },
        }
        .context("opening an outbox message")
    }

    /// Seals a long-lived secret (a TOTP secret) bound to `context` with
    /// the current key-encryption key.
    pub fn seal_secret(&self, plain: &[u8], context: &str) -> String {
        self.keks.current.seal(plain, context)
    }

    /// Opens what [`Self::seal_secret`] sealed; the second value says it
    /// was sealed under the previous key-encryption key (reseal it).
    pub fn open_secret(&self, sealed: &str, context: &str) -> anyhow::Result<(Vec<u8>, bool)> {
        match self.keks.current.open(sealed, context) {
            Ok(plain) => Ok((plain, false)),
            Err(err) => match &self.keks.previous {
                Some(previous) => previous
                    .open(sealed, context)
                    .map(|plain| (plain, true))
                    .map_err(|_| err),
                None => Err(err),
            },
        }
    }

    /// Whether a previous key-encryption key is still configured (a change
    /// of key is under way).
    pub fn kek_change_under_way(&self) -> bool {
        self.keks.previous.is_some()
    }

    /// Re-reads the table and rebuilds the set when it changed or a moment
    /// of change has passed; deletes superseded keys nothing needs. Returns
    /// whether the set was rebuilt.
    pub async fn refresh(&self, store: &Store, clock: &Clock) -> anyhow::Result<bool> {
        let rows = store.signing_keys().await?;
        let now_ms = clock.now_ms();
        let current = self.current.load();
        let due = current.next_change_ms.is_some_and(|at| at <= now_ms);
        if !due && current.fingerprint == fingerprint(&rows) {
            return Ok(false);
        }
        let set = KeySet::from_rows(&rows, &self.keks, self.policy, now_ms)?;
        for kid in &set.deletable {
            if store.delete_signing_key(kid).await? {
                tracing::info!(%kid, "deleted a superseded signing key nothing needs any more");
            }
        }
        for kid in &set.forgettable {
            if store.forget_private_key(kid).await? {
                tracing::info!(%kid, "deleted the private half of a superseded challenge key");
            }
        }
        let before: Vec<&str> = current.signing.values().map(|k| k.kid.as_str()).collect();
        for key in set.signing.values() {
            if !before.contains(&key.kid.as_str()) {
                tracing::info!(kid = %key.kid, alg = %key.alg, "a new signing key signs from now on");
            }
        }
        self.current.store(Arc::new(set));
        Ok(true)
    }
}

/// What `keys rotate` made.
#[derive(Debug, Clone, Serialize)]
pub struct RotatedKey {
    pub kid: String,
    pub purpose: String,
    pub alg: String,
    /// Unix seconds from which it signs.
    pub activates_at: i64,
}

/// Adds a new key for each algorithm of `purpose`, to start signing at
/// `activates_at` (Unix ms). Until then it is published (ID and access
/// keys: in the JWKS) or announced to devices (the challenge key: an
/// endorsement signed by the key it replaces travels with the pending list),
/// and the key it replaces keeps signing.
pub async fn rotate(
    store: &Store,
    keks: &KeyEncryptionKeys,
    purpose: KeyPurpose,
    activates_at: i64,
    now_ms: i64,
) -> anyhow::Result<Vec<RotatedKey>> {
    if purpose == KeyPurpose::Vapid {
        bail!(
            "the VAPID key cannot be rotated: every Web Push subscription is bound to it, so a new one \
             would silence every device's push until it subscribed again (the devices' event streams \
             and polling are unaffected by it, and it signs nothing a client or device trusts)"
        );
    }
    let rows = store.signing_keys().await?;
    let mut made = Vec::new();
    for &alg in purpose.algorithms() {
        let latest = rows
            .iter()
            .filter(|r| r.purpose == purpose.as_str() && r.alg == alg.as_str())
            .max_by_key(|r| (r.activates_at, r.created_at))
            .ok_or_else(|| anyhow!("no {purpose} {alg} key yet: start the server once first"))?;
        if latest.activates_at > now_ms {
            bail!(
                "the {purpose} {alg} key {} is already waiting to activate (at {}): \
                 rotate again after it signs",
                latest.kid,
                latest.activates_at / 1000
            );
        }
        let (key, mut row) = new_key_row(keks, purpose, alg, activates_at, now_ms).await?;
        if purpose == KeyPurpose::DeviceChallenge {
            let previous = SigningKey::from_pkcs8(alg, &keks.open(latest)?)?;
            let claims = assent_shared::protocol::ServerKeyClaims {
                key: key.ec_public_jwk().expect("challenge keys are ES256"),
                iat: now_ms / 1000,
            };
            row.endorsement =
                Some(previous.sign_jwt(assent_shared::protocol::typ::SERVER_KEY, &claims));
        }
        if !store.insert_signing_key(&row).await? {
            bail!("another {purpose} {alg} key activates at the same moment; try again");
        }
        made.push(RotatedKey {
            kid: row.kid,
            purpose: row.purpose,
            alg: row.alg,
            activates_at: activates_at / 1000,
        });
    }
    Ok(made)
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
