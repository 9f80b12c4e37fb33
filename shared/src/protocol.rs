//! The Assent device protocol, version 1: messages between an enrolled
//! device and the server. `docs/protocol.md` explains each one, what is signed
//! and why; `test-vectors/protocol-v1.json` pins their exact encoding.

use serde::{Deserialize, Serialize};

use crate::{error::DeviceErrorCode, jose::EcPublicJwk};

pub const VERSION: u32 = 1;

/// A device-signed request is accepted when its `iat` is within this many
/// seconds of the server's clock, either way.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;
/// A decision's `exp` may be at most this many seconds after its `iat`.
pub const MAX_DECISION_LIFETIME_SECS: i64 = 60;

/// The JWS `typ` of each message: a signature made for one purpose can never
/// be replayed as another.
pub mod typ {
    pub const ENROLL: &str = "assent-enroll+jwt";
    pub const PROOF: &str = "assent-proof+jwt";
    pub const CHALLENGE: &str = "assent-challenge+jwt";
    pub const DECISION: &str = "assent-decision+jwt";
    pub const PUSH_CHANNEL: &str = "assent-push-channel+jwt";
    pub const ROTATE_KEY: &str = "assent-rotate-key+jwt";
    pub const NEW_KEY: &str = "assent-new-key+jwt";
    pub const UNENROLL: &str = "assent-unenroll+jwt";
    pub const UNMUTE: &str = "assent-unmute+jwt";
    pub const SERVER_KEY: &str = "assent-server-key+jwt";
}

/// Routes of the device API, relative to the server base URL.
pub mod path {
    pub const ENROLL: &str = "/device/v1/enroll";
    pub const REQUESTS: &str = "/device/v1/requests";
    pub const PUSH_CHANNEL: &str = "/device/v1/push-channel";
    pub const KEY: &str = "/device/v1/key";
    pub const UNENROLL: &str = "/device/v1/unenroll";
    pub const EVENTS: &str = "/device/v1/events";
    pub const PUSH_KEY: &str = "/device/v1/push-key";
    pub const UNMUTE: &str = "/device/v1/unmute";

    pub fn decision(request_id: &str) -> String {
        format!("{REQUESTS}/{request_id}/decision")
    }
}

/// `Authorization` scheme of device-signed GET requests.
pub const PROOF_SCHEME: &str = "AssentProof";
/// Content type of device-signed request bodies (a compact JWS).
pub const JOSE_CONTENT_TYPE: &str = "application/jose";

/// What an enrollment QR code or link carries:
/// `assent://enroll?v=1&server=URL&ticket=T&pin=THUMBPRINT[&account=LABEL]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentUri {
    pub version: u32,
    /// Server base URL (its issuer).
    pub server: String,
    /// Single-use enrollment ticket.
    pub ticket: String,
    /// RFC 7638 thumbprint of the server's challenge-signing key: the device
    /// refuses a server that answers with any other key.
    pub pin: String,
    /// What to call the account in the app (the user's e-mail or sub).
    pub account: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnrollmentUriError {
    #[error("not an assent://enroll link")]
    WrongScheme,
    #[error("the link is missing {0}")]
    Missing(&'static str),
    #[error("protocol version {0} is not supported by this app")]
    UnsupportedVersion(String),
    #[error("the server address must be an http(s) URL")]
    BadServer,
}

impl EnrollmentUri {
    pub fn to_uri(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("v", &self.version.to_string());
        query.append_pair("server", &self.server);
        query.append_pair("ticket", &self.ticket);
        query.append_pair("pin", &self.pin);
        if let Some(account) = &self.account {
            query.append_pair("account", account);
        }
        format!("assent://enroll?{}", query.finish())
    }

    /// The web authenticator's enrollment link (docs/protocol.md, section
    /// 5): the app at `{server}/authenticator/enroll`, the other parameters
    /// in the fragment, which browsers never send to a server.
    pub fn to_web_uri(&self) -> String {
        let mut fragment = form_urlencoded::Serializer::new(String::new());
        fragment.append_pair("v", &self.version.to_string());
        fragment.append_pair("ticket", &self.ticket);
        fragment.append_pair("pin", &self.pin);
        if let Some(account) = &self.account {
            fragment.append_pair("account", account);
        }
        format!(
            "{}/authenticator/enroll#{}",
            self.server.trim_end_matches('/'),
            fragment.finish()
        )
    }

    pub fn parse(uri: &str) -> Result<Self, EnrollmentUriError> {
        let query = uri
            .trim()
            .strip_prefix("assent://enroll?")
            .ok_or(EnrollmentUriError::WrongScheme)?;
        let (mut v, mut server, mut ticket, mut pin, mut account) = (None, None, None, None, None);
        for (k, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                "v" => &mut v,
                "server" => &mut server,
                "ticket" => &mut ticket,
                "pin" => &mut pin,
                "account" => &mut account,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        let v = v.ok_or(EnrollmentUriError::Missing("v"))?;
        if v != VERSION.to_string() {
            return Err(EnrollmentUriError::UnsupportedVersion(v));
        }
        let server = server.ok_or(EnrollmentUriError::Missing("server"))?;
        if !(server.starts_with("https://") || server.starts_with("http://")) {
            return Err(EnrollmentUriError::BadServer);
        }
        Ok(Self {
            version: VERSION,
            server: server.trim_end_matches('/').to_string(),
            ticket: ticket.ok_or(EnrollmentUriError::Missing("ticket"))?,
            pin: pin.ok_or(EnrollmentUriError::Missing("pin"))?,
            account,
        })
    }
}

/// Binds a device-signed message to one HTTP request (as DPoP, RFC 9449):
/// method, URL without query, issue time and a single-use id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBinding {
    pub htm: String,
    pub htu: String,
    pub iat: i64,
    pub jti: String,
}

/// A Web Push subscription in the browser's standard JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    pub endpoint: String,
    pub keys: PushSubscriptionKeys,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

/// Payload of the enrollment JWS (`typ` [`typ::ENROLL`], the new public key
/// in the `jwk` header: proof of possession).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentClaims {
    #[serde(flatten)]
    pub binding: RequestBinding,
    pub ticket: String,
    /// The `pin` of the enrollment link, echoed so the server can refuse a
    /// device that was shown another server's key.
    pub pin: String,
    pub name: String,
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSubscription>,
    /// A passkey registered for this device's decisions: the WebAuthn
    /// credential in its JSON form (`PublicKeyCredential.toJSON()`), made
    /// with the options of `POST /device/v1/passkey-registration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<serde_json::Value>,
}

/// What the server tells devices about timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub protocol_version: u32,
    pub max_clock_skew_secs: i64,
    pub max_decision_lifetime_secs: i64,
    /// Recommended interval of background polling for pending requests.
    pub poll_interval_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentResponse {
    pub device_id: String,
    /// The user (`sub`) this device now belongs to.
    pub user: String,
    /// The server's challenge-signing key; its thumbprint equals the link's `pin`.
    pub server_key: EcPublicJwk,
    pub policy: Policy,
    /// The server's VAPID public key (uncompressed P-256 point, base64url),
    /// the `applicationServerKey` of a Web Push subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vapid_public_key: Option<String>,
    /// The device enrolled a passkey: each of its decisions must carry an
    /// assertion of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passkey: bool,
}

/// A live event on `GET /device/v1/events` (server-sent events): the SSE
/// `event` is the kind, `id` its sequence number, `data` this object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEventData {
    pub request_id: String,
    /// On `resolved` events: `approved` or `denied`, what the request became
    /// (on this or another device). Absent on other events and from older
    /// servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// On `enrolled` events: the device that was added to the account
    /// (`request_id` holds its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<EnrolledDevice>,
}

/// A device enrolled for the user, as its name and platform were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolledDevice {
    pub name: String,
    pub platform: String,
}

/// SSE event names.
pub mod event {
    /// A new pending request: fetch the pending list.
    pub const REQUEST: &str = "request";
    /// A request was decided (on any device) and is no longer pending.
    pub const RESOLVED: &str = "resolved";
    /// Events were missed: fetch the pending list.
    pub const RESYNC: &str = "resync";
    /// This device was revoked: the stream ends after this event, and the
    /// device should forget the account's pending requests.
    pub const REVOKED: &str = "revoked";
    /// Another device was enrolled for this user (`request_id` names it,
    /// `device` says what it is): show it, so that an enrollment the user
    /// did not make is noticed.
    pub const ENROLLED: &str = "enrolled";
}

/// Payload of a GET proof (`typ` [`typ::PROOF`], `kid` = device id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofClaims {
    #[serde(flatten)]
    pub binding: RequestBinding,
}

/// Where a request came from, as the server saw the `/bc-authorize` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// Payload of a server-signed challenge (`typ` [`typ::CHALLENGE`], `kid` =
/// server key thumbprint): everything the device shows before asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeClaims {
    pub v: u32,
    pub iss: String,
    pub request_id: String,
    pub nonce: String,
    pub client_id: String,
    pub client_name: String,
    pub binding_message: String,
    pub scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
    pub requester: Requester,
    pub iat: i64,
    pub exp: i64,
    /// Number matching: approving needs the code the requesting application
    /// shows, of this many digits (2 to 4). The code itself is never in the
    /// challenge: the user carries it from one screen to the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_code_digits: Option<u8>,
    /// Approving needs the user to verify themselves on the device (PIN,
    /// fingerprint, face) and the decision to say how
    /// ([`DecisionClaims::user_verification`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_verification_required: bool,
    /// The client's website, as the operator registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// The client's logo, served by this server (never a third party's URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// What approving does: log the user in to the client from elsewhere
    /// (CIBA, the default, not written), or complete a sign-in the user
    /// started themselves as its second factor (the MFA API's push).
    #[serde(default, skip_serializing_if = "RequestPurpose::is_backchannel")]
    pub purpose: RequestPurpose,
}

/// Why a device is asked ([`ChallengeClaims::purpose`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestPurpose {
    /// A back-channel login (CIBA): someone else started it for the user.
    #[default]
    Backchannel,
    /// The second factor of a sign-in the user is doing at the client.
    Mfa,
}

impl RequestPurpose {
    pub fn is_backchannel(&self) -> bool {
        *self == RequestPurpose::Backchannel
    }
}

/// Answer of `GET /device/v1/requests`: the pending challenges, newest
/// first, at most 100 of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequests {
    pub requests: Vec<String>,
    /// How many requests are pending in all (more than `requests` holds when
    /// the list was cut).
    #[serde(default)]
    pub total: u64,
    /// While set (Unix seconds), new requests for this user are refused: the
    /// user said "This wasn't me" (or denied several in a row). A signed
    /// unmute ([`path::UNMUTE`]) lifts it early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
    /// After the server's challenge key was rotated: the chain of
    /// endorsements (JWS of `typ` [`typ::SERVER_KEY`], oldest first), each
    /// signed by the key before it, that leads a device from the key it
    /// pinned to the key now signing challenges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_keys: Vec<String>,
}

/// Payload of a challenge-key endorsement (`typ` [`typ::SERVER_KEY`]): the
/// server's previous challenge key (the header's `kid`) vouches for `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerKeyClaims {
    pub key: EcPublicJwk,
    pub iat: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// "This wasn't me": the user did not start this login.
    NotMe,
    Cancelled,
}

/// What the user answered: the one decision type of the server (what it
/// stores), the wire (through [`Decision::to_wire`]) and the app (its
/// history). Serialized as `approved`, `denied`, `not_me`, `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    #[serde(rename = "approved")]
    Approve,
    /// Denied without a reason.
    #[serde(rename = "denied")]
    Deny,
    /// Denied with "This wasn't me": the user did not start this login.
    #[serde(rename = "not_me")]
    NotMe,
    /// Denied with "cancel": the user started it but changed their mind.
    #[serde(rename = "cancelled")]
    Cancelled,
}

impl Decision {
    /// The decision a device's `decision` and `deny_reason` claims carry;
    /// `None` for the meaningless "approve with a deny reason".
    pub fn from_wire(verdict: Verdict, reason: Option<DenyReason>) -> Option<Self> {
        match (verdict, reason) {
            (Verdict::Approve, None) => Some(Decision::Approve),
            (Verdict::Approve, Some(_)) => None,
            (Verdict::Deny, None) => Some(Decision::Deny),
            (Verdict::Deny, Some(DenyReason::NotMe)) => Some(Decision::NotMe),
            (Verdict::Deny, Some(DenyReason::Cancelled)) => Some(Decision::Cancelled),
        }
    }

    /// The `decision` and `deny_reason` claims of this decision.
    pub fn to_wire(self) -> (Verdict, Option<DenyReason>) {
        match self {
            Decision::Approve => (Verdict::Approve, None),
            Decision::Deny => (Verdict::Deny, None),
            Decision::NotMe => (Verdict::Deny, Some(DenyReason::NotMe)),
            Decision::Cancelled => (Verdict::Deny, Some(DenyReason::Cancelled)),
        }
    }

    pub fn is_approval(self) -> bool {
        self == Decision::Approve
    }

    /// The deny reason as stored and sent (`not_me`, `cancelled`).
    pub fn deny_reason(self) -> Option<DenyReason> {
        self.to_wire().1
    }
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NotMe => "not_me",
            DenyReason::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for DenyReason {
    type Err = String;
    /// The wire spelling, and the CLI's `not-me` for `not_me`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "not_me" | "not-me" => Ok(DenyReason::NotMe),
            "cancelled" => Ok(DenyReason::Cancelled),
            other => Err(format!(
                "unknown deny reason {other:?}: use not-me or cancelled"
            )),
        }
    }
}

/// How the user verified themselves on the device before deciding, with
/// the method values of RFC 8176.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UserVerification {
    /// A PIN or passcode known only to the user (`pin`).
    #[serde(rename = "pin")]
    Pin,
    /// A fingerprint (`fpt`).
    #[serde(rename = "fpt")]
    Fingerprint,
    /// Facial recognition (`face`).
    #[serde(rename = "face")]
    Face,
}

impl UserVerification {
    /// The RFC 8176 `amr` value.
    pub fn as_str(self) -> &'static str {
        match self {
            UserVerification::Pin => "pin",
            UserVerification::Fingerprint => "fpt",
            UserVerification::Face => "face",
        }
    }
}

/// Payload of a decision (`typ` [`typ::DECISION`], `kid` = device id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionClaims {
    #[serde(flatten)]
    pub binding: RequestBinding,
    pub exp: i64,
    pub request_id: String,
    pub nonce: String,
    pub decision: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_reason: Option<DenyReason>,
    /// base64url SHA-256 of the exact challenge JWS the device showed.
    pub challenge_hash: String,
    /// The code the user typed, when the challenge asks for number
    /// matching (`match_code_digits`); needed to approve, not to deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_code: Option<String>,
    /// How the user verified themselves before this decision; empty when
    /// they did not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_verification: Vec<UserVerification>,
    /// A device enrolled with a passkey: the WebAuthn assertion (JSON form)
    /// whose challenge is the SHA-256 of [`DecisionClaims::canonical`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<serde_json::Value>,
}

impl DecisionClaims {
    /// The canonical decision a passkey signs (docs/protocol.md, section
    /// 5): seven lines, absent values empty, no trailing line feed.
    pub fn canonical(&self) -> String {
        let verdict = match self.decision {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        };
        [
            "assent-decision-v1",
            &self.request_id,
            verdict,
            self.deny_reason.map(DenyReason::as_str).unwrap_or(""),
            &self.challenge_hash,
            &self.nonce,
            self.match_code.as_deref().unwrap_or(""),
        ]
        .join("\n")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionResponse {
    pub request_id: String,
    /// `approved` or `denied`.
    pub status: String,
    /// Set (Unix seconds) when this decision muted new requests for the
    /// user: "This wasn't me", or the latest of several denials in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
}

/// Payload of a push-channel update (`typ` [`typ::PUSH_CHANNEL`]); `None` removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushChannelClaims {
    #[serde(flatten)]
    pub binding: RequestBinding,
    pub push: Option<PushSubscription>,
}

/// Payload of a key rotation (`typ` [`typ::ROTATE_KEY`], signed by the
/// current key) carrying a proof signed by the new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateKeyClaims {
    #[serde(flatten)]
    pub binding: RequestBinding,
    /// A JWS of `typ` [`typ::NEW_KEY`] with the new key in its `jwk` header.
    pub new_key_proof: String,
}

/// Payload of the new key's proof inside a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKeyClaims {
    pub device_id: String,
    /// Thumbprint of the key being replaced: the proof is good for this rotation only.
    pub replaces: String,
    pub iat: i64,
}

/// Payload of an unenrollment (`typ` [`typ::UNENROLL`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnenrollClaims {
    #[serde(flatten)]
    pub binding: RequestBinding,
}

/// Payload of an unmute (`typ` [`typ::UNMUTE`]): the user lifts the mute
/// that their "This wasn't me" set, from an enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmuteClaims {
    #[serde(flatten)]
    pub binding: RequestBinding,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmuteResponse {
    /// Always `null`: new requests are accepted again.
    pub muted_until: Option<i64>,
}

/// Error body of the device API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceApiError {
    pub error: DeviceErrorCode,
    pub error_description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_round_trip_through_the_wire_claims() {
        for d in [
            Decision::Approve,
            Decision::Deny,
            Decision::NotMe,
            Decision::Cancelled,
        ] {
            let (verdict, reason) = d.to_wire();
            assert_eq!(Decision::from_wire(verdict, reason), Some(d));
        }
        assert_eq!(
            Decision::from_wire(Verdict::Approve, Some(DenyReason::NotMe)),
            None
        );
        assert_eq!(
            serde_json::to_string(&Decision::NotMe).unwrap(),
            "\"not_me\""
        );
    }

    #[test]
    fn enrollment_uri_round_trips() {
        let uri = EnrollmentUri {
            version: VERSION,
            server: "https://login.example.com".into(),
            ticket: "t1&x=y".into(),
            pin: "pin".into(),
            account: Some("alice@example.com".into()),
        };
        let text = uri.to_uri();
        assert!(text.starts_with(
            "assent://enroll?v=1&server=https%3A%2F%2Flogin.example.com&ticket=t1%26x%3Dy"
        ));
        assert_eq!(EnrollmentUri::parse(&text).unwrap(), uri);
        assert_eq!(
            EnrollmentUri::parse("https://x").unwrap_err(),
            EnrollmentUriError::WrongScheme
        );
        assert_eq!(
            EnrollmentUri::parse("assent://enroll?v=2&server=https://x&ticket=t&pin=p")
                .unwrap_err(),
            EnrollmentUriError::UnsupportedVersion("2".into())
        );
    }
}
