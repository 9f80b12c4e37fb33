//! Talking to the server: every request signed by the device key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assent_shared::{
    error::DeviceErrorCode,
    jose::{DeviceKey, EcPublicJwk, UnverifiedJws},
    protocol::{
        path, typ, DecisionClaims, DecisionResponse, DenyReason, DeviceApiError, EnrollmentClaims,
        EnrollmentResponse, EnrollmentUri, EnrollmentUriError, NewKeyClaims, PendingRequests,
        ProofClaims, PushChannelClaims, PushSubscription, RequestBinding, RotateKeyClaims,
        UnenrollClaims, UnmuteClaims, UnmuteResponse, UserVerification, Verdict, JOSE_CONTENT_TYPE,
        PROOF_SCHEME,
    },
};
use serde::de::DeserializeOwned;

use crate::{
    challenge::{follow_endorsements, verify_challenge, ChallengeRejected, VerifiedChallenge},
    events::EventStream,
    state::Account,
};

/// Failures, worded for the person holding the device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceClientError {
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("{description} ({code})")]
    Server {
        status: u16,
        code: DeviceErrorCode,
        description: String,
    },
    #[error("the server gave an unexpected answer: {0}")]
    Protocol(String),
    #[error("the server's key does not match the enrollment link: enrollment refused")]
    PinMismatch,
    #[error(transparent)]
    Link(#[from] EnrollmentUriError),
}

impl DeviceClientError {
    /// The protocol error code when the server refused the request.
    pub fn code(&self) -> Option<DeviceErrorCode> {
        match self {
            DeviceClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Pending requests: the verified ones (newest first), and those refused
/// because their server signature or lifetime did not check out (they are
/// never shown).
#[derive(Debug, Clone, Default)]
pub struct Pending {
    pub verified: Vec<VerifiedChallenge>,
    pub rejected: Vec<ChallengeRejected>,
    /// How many requests are pending on the server in all (the list holds
    /// at most 100).
    pub total: u64,
    /// Until when (Unix seconds) new requests for this user are refused,
    /// after "This wasn't me".
    pub muted_until: Option<i64>,
    /// The server rotated its challenge key and signed a request with the
    /// new one, which its endorsements vouch for: the caller pins it
    /// ([`crate::Account::adopt_server_key`]) and saves the account.
    pub new_server_key: Option<EcPublicJwk>,
}

/// What the user answered about one challenge: the verdict, and for an
/// approval the number-matching code they typed and how they verified
/// themselves on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub verdict: Verdict,
    pub deny_reason: Option<DenyReason>,
    pub match_code: Option<String>,
    pub user_verification: Vec<UserVerification>,
}

impl Answer {
    /// Approve, with the code the requesting application shows (when the
    /// challenge asks for one).
    pub fn approve(match_code: Option<&str>) -> Self {
        Self {
            verdict: Verdict::Approve,
            deny_reason: None,
            match_code: match_code.map(str::to_string),
            user_verification: Vec::new(),
        }
    }

    /// Deny, optionally saying why; denying never needs the code.
    pub fn deny(reason: Option<DenyReason>) -> Self {
        Self {
            verdict: Verdict::Deny,
            deny_reason: reason,
            match_code: None,
            user_verification: Vec::new(),
        }
    }

    /// The same answer, stating that the user verified themselves so.
    pub fn verified_by(mut self, methods: &[UserVerification]) -> Self {
        self.user_verification = methods.to_vec();
        self
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn binding(method: &str, url: &str) -> RequestBinding {
    RequestBinding {
        htm: method.into(),
        htu: url.into(),
        iat: now_secs(),
        jti: uuid::Uuid::new_v4().simple().to_string(),
    }
}

/// An HTTP client fit for the protocol: bounded time, no redirects (a
/// redirect could carry a signed request to a URL it was not signed for).
pub fn http_client() -> reqwest::Client {
    with_extra_roots(reqwest::Client::builder())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("assent-device/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("HTTP client")
}

/// The environment variable naming a PEM file of certificate authorities
/// to trust besides the public web roots: for a server whose certificate a
/// private (company) CA issued.
pub const CA_FILE_ENV: &str = "ASSENT_CA_FILE";

/// Adds the authorities of [`CA_FILE_ENV`], when it is set. A file that
/// cannot be read or holds no certificate stops the device: silently
/// trusting less than asked would only fail later, less clearly.
fn with_extra_roots(mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    let Some(path) = std::env::var_os(CA_FILE_ENV) else {
        return builder;
    };
    let pem = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{CA_FILE_ENV}={}: {e}", path.to_string_lossy()));
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{CA_FILE_ENV}={}: no PEM certificate in the file",
                path.to_string_lossy()
            )
        });
    for certificate in certificates {
        builder = builder.add_root_certificate(certificate);
    }
    builder
}

/// The largest answer read from a server: the pending list (at most 100
/// challenges of a few KiB each) fits many times over; a rogue or broken
/// server cannot make the device buffer more.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

async fn read<T: DeserializeOwned>(
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, DeviceClientError> {
    let response = response.map_err(|e| DeviceClientError::Unreachable(e.to_string()))?;
    let status = response.status();
    let bytes = read_capped(response, MAX_RESPONSE_BYTES).await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| DeviceClientError::Protocol(e.to_string()));
    }
    match serde_json::from_slice::<DeviceApiError>(&bytes) {
        Ok(err) => Err(DeviceClientError::Server {
            status: status.as_u16(),
            code: err.error,
            description: err.error_description,
        }),
        Err(_) => Err(DeviceClientError::Protocol(format!("HTTP {status}"))),
    }
}

/// The body of `response`, refused once it passes `limit` bytes (announced
/// or actual), without reading further.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, DeviceClientError> {
    let too_large =
        || DeviceClientError::Protocol(format!("the answer is larger than {limit} bytes"));
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| DeviceClientError::Unreachable(e.to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An enrolled device talking to its server.
#[derive(Debug, Clone)]
pub struct DeviceClient {
    http: reqwest::Client,
    pub account: Account,
    key: DeviceKey,
}

impl DeviceClient {
    pub fn new(account: Account, key: DeviceKey) -> Self {
        Self {
            http: http_client(),
            account,
            key,
        }
    }

    pub fn key(&self) -> &DeviceKey {
        &self.key
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.account.server)
    }

    /// Enrolls a new key with the ticket of `link`. The server's answer is
    /// trusted only if its key matches the link's pin.
    pub async fn enroll(
        link: &EnrollmentUri,
        device_name: &str,
        platform: &str,
        push: Option<PushSubscription>,
    ) -> Result<Self, DeviceClientError> {
        let http = http_client();
        let key = DeviceKey::generate();
        let url = format!("{}{}", link.server, path::ENROLL);
        let claims = EnrollmentClaims {
            passkey: None,
            binding: binding("POST", &url),
            ticket: link.ticket.clone(),
            pin: link.pin.clone(),
            name: device_name.into(),
            platform: platform.into(),
            push,
        };
        let jws = key.sign(typ::ENROLL, None, true, &claims);
        let response: EnrollmentResponse = read(
            http.post(&url)
                .header("content-type", JOSE_CONTENT_TYPE)
                .body(jws)
                .send()
                .await,
        )
        .await?;
        if response.server_key.thumbprint() != link.pin {
            return Err(DeviceClientError::PinMismatch);
        }
        let enrolled_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let account = Account {
            server: link.server.clone(),
            device_id: response.device_id,
            user: response.user.clone(),
            label: link.account.clone().unwrap_or(response.user),
            server_key: response.server_key,
            previous_server_key: None,
            policy: response.policy,
            device_name: device_name.into(),
            enrolled_at,
        };
        Ok(Self { http, account, key })
    }

    /// Fetches the pending requests and verifies each against the pinned key.
    pub async fn pending(&self) -> Result<Pending, DeviceClientError> {
        let url = self.url(path::REQUESTS);
        let list: PendingRequests = read(
            self.http
                .get(&url)
                .header("authorization", self.proof_for_get(&url))
                .send()
                .await,
        )
        .await?;
        let mut pending = Pending {
            total: list.total,
            muted_until: list.muted_until,
            ..Pending::default()
        };
        let now = now_secs();
        // After a rotation, the keys the endorsements lead to from the pinned
        // one; the device moves to the newest of them it sees signing.
        let endorsed = follow_endorsements(&self.account.server_key, &list.server_keys);
        let accepted = self.account.accepted_server_keys(now);
        let mut newest_used: Option<usize> = None;
        for jws in list.requests {
            let kid = UnverifiedJws::parse(&jws)
                .ok()
                .and_then(|parsed| parsed.header.kid);
            let key = kid.as_deref().and_then(|kid| {
                accepted
                    .iter()
                    .copied()
                    .find(|k| k.thumbprint() == kid)
                    .map(|k| (k, None))
                    .or_else(|| {
                        endorsed
                            .iter()
                            .enumerate()
                            .find(|(_, k)| k.thumbprint() == kid)
                            .map(|(i, k)| (k, Some(i)))
                    })
            });
            // An unknown kid is refused by the check against the pinned key.
            let (key, position) = key.unwrap_or((&self.account.server_key, None));
            match verify_challenge(&jws, key, &self.account.server, now) {
                Ok(challenge) => {
                    if let Some(i) = position {
                        newest_used = newest_used.max(Some(i));
                    }
                    pending.verified.push(challenge)
                }
                Err(why) => pending.rejected.push(why),
            }
        }
        pending.new_server_key = newest_used.map(|i| endorsed[i].clone());
        Ok(pending)
    }

    /// Opens the live event stream; `last_event_id` resumes after a disconnect.
    pub async fn events(
        &self,
        last_event_id: Option<&str>,
    ) -> Result<EventStream, DeviceClientError> {
        let url = self.url(path::EVENTS);
        // A stream may stay open for an hour: no overall timeout here.
        let client = with_extra_roots(reqwest::Client::builder())
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let mut request = client
            .get(&url)
            .header("authorization", self.proof_for_get(&url))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request
            .send()
            .await
            .map_err(|e| DeviceClientError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(read::<serde_json::Value>(Ok(response)).await.unwrap_err());
        }
        Ok(EventStream::new(response))
    }

    /// Signs and sends the user's answer about a challenge they were shown.
    pub async fn decide(
        &self,
        challenge: &VerifiedChallenge,
        answer: &Answer,
    ) -> Result<DecisionResponse, DeviceClientError> {
        let url = self.url(&path::decision(&challenge.claims.request_id));
        let binding = binding("POST", &url);
        let claims = DecisionClaims {
            passkey: None,
            exp: binding.iat + 30,
            binding,
            request_id: challenge.claims.request_id.clone(),
            nonce: challenge.claims.nonce.clone(),
            decision: answer.verdict,
            deny_reason: answer.deny_reason,
            challenge_hash: challenge.hash(),
            match_code: answer.match_code.clone(),
            user_verification: answer.user_verification.clone(),
        };
        self.post_signed(&url, typ::DECISION, &claims).await
    }

    /// Lifts the mute that "This wasn't me" set on this device's user.
    pub async fn unmute(&self) -> Result<UnmuteResponse, DeviceClientError> {
        let url = self.url(path::UNMUTE);
        let claims = UnmuteClaims {
            binding: binding("POST", &url),
        };
        self.post_signed(&url, typ::UNMUTE, &claims).await
    }

    /// Registers (or with `None` removes) this device's Web Push subscription.
    pub async fn set_push_channel(
        &self,
        push: Option<PushSubscription>,
    ) -> Result<serde_json::Value, DeviceClientError> {
        let url = self.url(path::PUSH_CHANNEL);
        let claims = PushChannelClaims {
            binding: binding("POST", &url),
            push,
        };
        self.post_signed(&url, typ::PUSH_CHANNEL, &claims).await
    }

    /// Replaces the device key. On success the client holds the new key;
    /// the caller must persist it.
    pub async fn rotate_key(&mut self) -> Result<(), DeviceClientError> {
        let url = self.url(path::KEY);
        let new_key = DeviceKey::generate();
        let new_key_proof = new_key.sign(
            typ::NEW_KEY,
            None,
            true,
            &NewKeyClaims {
                device_id: self.account.device_id.clone(),
                replaces: self.key.public_jwk().thumbprint(),
                iat: now_secs(),
            },
        );
        let claims = RotateKeyClaims {
            binding: binding("POST", &url),
            new_key_proof,
        };
        let _: serde_json::Value = self.post_signed(&url, typ::ROTATE_KEY, &claims).await?;
        self.key = new_key;
        Ok(())
    }

    /// Tells the server to forget this device.
    pub async fn unenroll(&self) -> Result<(), DeviceClientError> {
        let url = self.url(path::UNENROLL);
        let claims = UnenrollClaims {
            binding: binding("POST", &url),
        };
        let _: serde_json::Value = self.post_signed(&url, typ::UNENROLL, &claims).await?;
        Ok(())
    }

    /// `Authorization` value proving this device makes a GET of `url`.
    fn proof_for_get(&self, url: &str) -> String {
        let proof = self.key.sign(
            typ::PROOF,
            Some(&self.account.device_id),
            false,
            &ProofClaims {
                binding: binding("GET", url),
            },
        );
        format!("{PROOF_SCHEME} {proof}")
    }

    async fn post_signed<T: DeserializeOwned>(
        &self,
        url: &str,
        jws_typ: &str,
        claims: &impl serde::Serialize,
    ) -> Result<T, DeviceClientError> {
        let jws = self
            .key
            .sign(jws_typ, Some(&self.account.device_id), false, claims);
        read(
            self.http
                .post(url)
                .header("content-type", JOSE_CONTENT_TYPE)
                .body(jws)
                .send()
                .await,
        )
        .await
    }
}
