//! Passwordless login: a one-time code sent by e-mail or SMS, or a magic
//! link sent by e-mail, proves that the user controls the address.
//!
//! Two APIs issue them, each redeeming only its own:
//! - Auth0's ([`start`], the OTP grant [`otp_grant`], and for links the
//!   authorization-code grant [`authorization_code_grant`]), which Auth0's
//!   SDKs drive unmodified;
//! - the back-end one-time login API ([`backend`]), for a back end that logs
//!   users in on their behalf, with branded mail, transaction-bound codes
//!   and sessions.
//!
//! What protects a 6-digit code: it lives minutes ([`PasswordlessSettings`]),
//! is redeemed once by a conditional update, is void after a few wrong
//! tries, and wrong tries per user are limited across codes, so guessing
//! gets a handful of tries per window out of a million. Sends per address
//! are limited too (cost, and mail-bombing). A code is stored as a salted
//! SHA-256 digest and compared in constant time. Whether an address belongs
//! to a user is never revealed: an unknown address gets the same answer,
//! and no message.
//!
//! [`PasswordlessSettings`]: crate::config::PasswordlessSettings

pub mod backend;

use assent_shared::oauth::{
    TokenResponse, AUTHORIZATION_CODE_GRANT_TYPE, PASSWORDLESS_OTP_GRANT_TYPE,
    REFRESH_TOKEN_GRANT_TYPE,
};
use serde::{Deserialize, Serialize};

use crate::{
    ciba::{parse_audience, parse_scope},
    config::PASSWORDLESS_LIMIT_WINDOW,
    error::OAuthError,
    issuance::{self, client_has_grant},
    messaging::{self, templates, Channel, OutgoingMessage},
    params::Params,
    secrets::{b64url, constant_time_eq, new_secret, sha256, sha256_hex},
    state::Assent,
    storage::{
        normalize_email, ClientRow, CodeKind, DeliveryChannel, NewPasswordlessCode,
        PasswordlessApi, RedeemedCode, UserChanges, UserRow,
    },
    tokens::Grant,
    users::normalize_phone,
};

/// Longest one-time code accepted for checking (a longer one is wrong).
const MAX_OTP_LEN: usize = 16;
const MAX_USERNAME_LEN: usize = 320;
const MAX_SCOPE_LEN: usize = 1024;
const MAX_STATE_LEN: usize = 1024;
const MAX_NONCE_LEN: usize = 512;
/// An authorization code from a followed link is exchanged within a minute.
const AUTH_CODE_TTL_MS: i64 = 60_000;

/// Who a code is for, as the user was addressed: the key a code is looked
/// up by when it comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// Normalized (lower-case) e-mail address.
    Email(String),
    /// E.164 phone number.
    Phone(String),
}

impl Address {
    pub fn email(input: &str) -> Result<Self, OAuthError> {
        let trimmed = input.trim();
        // The same test the mail sender applies: what passes here can be sent.
        let valid = trimmed.len() <= MAX_USERNAME_LEN
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
            && messaging::is_email_address(trimmed);
        if !valid {
            return Err(OAuthError::invalid_request(
                "email is not an e-mail address",
            ));
        }
        Ok(Self::Email(normalize_email(trimmed)))
    }

    pub fn phone(input: &str) -> Result<Self, OAuthError> {
        normalize_phone(input)
            .ok()
            .filter(|e164| messaging::is_e164(e164))
            .map(Self::Phone)
            .ok_or_else(|| {
            OAuthError::invalid_request(
                "phone_number is not a valid phone number: give it with its country code (+14155550123)",
            )
        })
    }

    /// The stored lookup key.
    fn key(&self) -> String {
        match self {
            Address::Email(e) => format!("email:{e}"),
            Address::Phone(p) => format!("phone_number:{p}"),
        }
    }

    async fn user(&self, assent: &Assent) -> Result<Option<UserRow>, OAuthError> {
        Ok(match self {
            Address::Email(e) => assent.store.user_by_email(e).await?,
            Address::Phone(p) => assent.store.user_by_phone(p).await?,
        })
    }

    /// The user this address names and where a message to them goes on
    /// `channel` (their address of that kind: an SMS for a user named by
    /// e-mail goes to their phone); `None` for an address that is no
    /// user's, a blocked user, or one without such an address.
    pub(crate) async fn recipient(
        &self,
        assent: &Assent,
        channel: DeliveryChannel,
    ) -> Result<Option<Recipient>, OAuthError> {
        let Some(user) = self.user(assent).await?.filter(|u| !u.blocked) else {
            return Ok(None);
        };
        let destination = match channel {
            DeliveryChannel::Email => user.email.clone(),
            DeliveryChannel::Sms => user.phone_number.clone(),
        };
        Ok(destination.map(|destination| Recipient {
            user,
            destination,
            proves_address: true,
        }))
    }
}

/// A code's digest: keyed (a copy of the database alone cannot try the
/// million codes against it) and salted with its row id.
fn code_digest(assent: &Assent, id: &str, code: &str) -> String {
    assent
        .keys
        .keyed_digest("passwordless code", &format!("{id}:{code}"))
}

/// The digest binding a code to one transaction (`approval_data`).
fn transaction_digest(transaction_id: &str, sum: &str) -> String {
    // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    sha256_hex(&format!("{}:{transaction_id}:{sum}", transaction_id.len()))
}

/// The counter key for `kind` and `subject` (a keyed digest: no address
/// is stored, nor one that a dictionary of addresses would reverse).
fn counter_key(assent: &Assent, kind: &str, subject: &str) -> String {
    assent
        .keys
        .keyed_digest("passwordless counter", &format!("{kind}:{subject}"))
}

fn window_ms() -> i64 {
    PASSWORDLESS_LIMIT_WINDOW.as_millis() as i64
}

/// Counts one send to `address` and refuses it (429) over the limit.
async fn count_send(assent: &Assent, address: &Address) -> Result<(), OAuthError> {
    let now = assent.clock.now_ms();
    let limit = i64::from(assent.settings.passwordless.sends_per_recipient);
    let key = counter_key(assent, "send", &address.key());
    let count = assent
        .store
        .bump_passwordless_counter(&key, 1, now, window_ms())
        .await?;
    if count.count > limit {
        let retry = (count.window_start + window_ms() - now).max(1000) / 1000;
        return Err(OAuthError::too_many_requests(
            "too many codes were sent to this address: try again later",
            retry as u64,
        ));
    }
    Ok(())
}

/// Refuses verification (429 `too_many_attempts`) once the user (or, for
/// an address that is no user's, the address, so that both answer alike)
/// has reached the wrong-code limit of the window; `count` adds this
/// failure first (so the failure that reaches the limit is answered 429).
async fn user_failures(assent: &Assent, subject: &str, count: bool) -> Result<(), OAuthError> {
    let now = assent.clock.now_ms();
    let limit = i64::from(assent.settings.passwordless.failures_per_user);
    let key = counter_key(assent, "failures", subject);
    let window = assent
        .store
        .bump_passwordless_counter(&key, i64::from(count), now, window_ms())
        .await?;
    if window.count >= limit {
        let retry = (window.window_start + window_ms() - now).max(1000) / 1000;
        return Err(OAuthError::too_many_attempts(
            "too many wrong verification codes: verification is paused, try again later",
            retry as u64,
        ));
    }
    Ok(())
}

/// The end user's context a back end passes on (`client_attributes`),
/// shown in the e-mail so the user can tell whether they asked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientAttributes {
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
}

impl ClientAttributes {
    fn from_params(params: &Params) -> Result<Self, OAuthError> {
        let attributes: Self = params.object("client_attributes")?.unwrap_or_default();
        if let Some(ip) = &attributes.ip_address {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(OAuthError::invalid_request(
                    "client_attributes.ip_address is not an IP address",
                ));
            }
        }
        if let Some(ua) = &attributes.user_agent {
            if ua.len() > 512 || ua.chars().any(char::is_control) {
                return Err(OAuthError::invalid_request(
                    "client_attributes.user_agent must be at most 512 bytes without control characters",
                ));
            }
        }
        Ok(attributes)
    }

    fn context(&self) -> templates::RequestContext {
        templates::RequestContext {
            ip_address: self.ip_address.clone(),
            user_agent: self.user_agent.clone(),
        }
    }
}

/// Who a code or link goes to, once the address named a user.
pub(crate) struct Recipient {
    pub user: UserRow,
    /// Where the message goes.
    pub destination: String,
    /// Whether the destination is the user's own address (a custom one
    /// proves nothing about theirs).
    pub proves_address: bool,
}

/// A fresh secret for `kind`: the digits of a code, or a link's token.
fn new_secret_for(assent: &Assent, kind: CodeKind) -> String {
    match kind {
        CodeKind::Code => crate::secrets::numeric_code(assent.settings.passwordless.code_digits),
        CodeKind::Link => new_secret(),
    }
}

/// Stores `row` with the digest of `secret`, and queues the message
/// `compose` makes for it, when there is a recipient; otherwise (an
/// address that is no user's, a user without that kind of address) stores
/// a decoy that nothing matches, so that sending, guessing and expiry
/// answer alike for every address. Returns `secret`.
///
/// The message is queued first: a crash in between leaves a message for a
/// code that does not exist (the user asks again), never a stored code,
/// that voided the previous one, without a message.
pub(crate) async fn send_or_pretend(
    assent: &Assent,
    mut row: NewPasswordlessCode,
    recipient: Option<Recipient>,
    compose: impl FnOnce(&str, &str) -> Option<OutgoingMessage>,
) -> Result<String, OAuthError> {
    let secret = new_secret_for(assent, row.kind);
    let digest = |secret: &str| match row.kind {
        CodeKind::Code => code_digest(assent, &row.id, secret),
        CodeKind::Link => sha256_hex(secret),
    };
    row.secret_sha256 = digest(&new_secret());
    if let Some(recipient) = recipient {
        let queued = match compose(&secret, &recipient.destination) {
            None => Ok(()),
            Some(message) => messaging::queue(assent, &message, row.expires_at).await,
        };
        match queued {
            Ok(()) => {
                row.user_sub = Some(recipient.user.sub.clone());
                row.proves_address = recipient.proves_address;
                row.secret_sha256 = digest(&secret);
            }
            // The user's stored address is one no mail server takes: the
            // same answer as for anyone else (and the operator is told).
            Err(messaging::MessagingError::InvalidMessage(why)) => {
                tracing::warn!(user = %recipient.user.sub, reason = %why, "passwordless message not sent: the user's address cannot be used");
            }
            Err(e) => return Err(messaging::into_oauth_error(e)),
        }
    }
    assent.store.insert_passwordless_code(&row).await?;
    Ok(secret)
}

fn channel_of(channel: DeliveryChannel) -> Channel {
    match channel {
        DeliveryChannel::Email => Channel::Email,
        DeliveryChannel::Sms => Channel::Sms,
    }
}

/// Refuses a channel the server cannot send on, before anything is stored.
fn require_channel(assent: &Assent, channel: DeliveryChannel) -> Result<(), OAuthError> {
    if messaging::channel_configured(&assent.settings, channel_of(channel)) {
        Ok(())
    } else {
        Err(messaging::into_oauth_error(
            messaging::MessagingError::NotConfigured(channel_of(channel)),
        ))
    }
}

/// `authParams` of a link (Auth0: parameters of the link's authorization
/// request). Only the authorization-code flow is offered: implicit
/// (`response_type=token`) is deprecated by the OAuth 2.0 Security BCP.
///
/// Other keys (Auth0's libraries add some of their own) are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LinkParams {
    pub scope: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// Auth0 accepts `oauth2`/`oidc`; both mean the same here.
    pub protocol: Option<String>,
}

/// The redirect URI a link will send the browser to: the one asked for if
/// registered (exact match), else the client's only one.
fn registered_redirect_uri(client: &ClientRow, asked: Option<&str>) -> Result<String, OAuthError> {
    let mut registered = client.redirect_uris.split(' ').filter(|u| !u.is_empty());
    match asked {
        Some(uri) if registered.any(|r| r == uri) => Ok(uri.to_string()),
        Some(_) => Err(OAuthError::invalid_request(
            "redirect_uri is not registered for this client",
        )),
        None => {
            let all: Vec<&str> = client
                .redirect_uris
                .split(' ')
                .filter(|u| !u.is_empty())
                .collect();
            match all.as_slice() {
                [only] => Ok(only.to_string()),
                [] => Err(OAuthError::invalid_request(
                    "this client has no redirect URI registered for magic links",
                )),
                _ => Err(OAuthError::invalid_request(
                    "missing required parameter redirect_uri (the client has several)",
                )),
            }
        }
    }
}

/// Checks a requested scope and audience against the client's grants;
/// returns the scope to grant (`offline_access` only for clients that may
/// refresh).
async fn granted_scope(
    assent: &Assent,
    client: &ClientRow,
    scope: Option<&str>,
    audience: Option<&str>,
) -> Result<String, OAuthError> {
    let scope = scope.unwrap_or("openid");
    if scope.len() > MAX_SCOPE_LEN {
        return Err(OAuthError::invalid_request(format!(
            "parameter scope is longer than {MAX_SCOPE_LEN} bytes"
        )));
    }
    let scopes = parse_scope(scope)?;
    let mfa_api = audience == Some(assent.endpoints.mfa_audience.as_str());
    if mfa_api {
        // The MFA API's own token: always behind a second factor (gate),
        // never refreshed.
        crate::mfa::check_mfa_api_scopes(&scopes)?;
    } else {
        crate::apis::authorize(&assent.store, &client.client_id, audience, &scopes).await?;
    }
    let may_refresh = !mfa_api && client_has_grant(client, REFRESH_TOKEN_GRANT_TYPE);
    Ok(scopes
        .iter()
        .filter(|s| may_refresh || s.as_str() != "offline_access")
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" "))
}

/// What `/passwordless/start` answers (Auth0's shape). The same whether
/// the address belongs to a user or not.
#[derive(Debug, Serialize)]
pub struct StartResponse {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// `POST /passwordless/start` (Auth0): sends a code (e-mail or SMS) or a
/// magic link (e-mail) to a user.
pub async fn start(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
    requester_ip: Option<String>,
) -> Result<StartResponse, OAuthError> {
    if !client_has_grant(client, PASSWORDLESS_OTP_GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "this client is not allowed to use passwordless login",
        ));
    }
    let (channel, address) = match params.get("connection") {
        Some("email") => (
            DeliveryChannel::Email,
            Address::email(params.required("email", MAX_USERNAME_LEN)?)?,
        ),
        Some("sms") => (
            DeliveryChannel::Sms,
            Address::phone(params.required("phone_number", 64)?)?,
        ),
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "connection must be email or sms",
            ))
        }
        None => {
            return Err(OAuthError::invalid_request(
                "missing required parameter connection",
            ))
        }
    };
    // Auth0: "If null, a link will be sent" (e-mail); SMS carries codes only.
    let kind = match (params.get("send"), channel) {
        (Some("code"), _) | (None, DeliveryChannel::Sms) => CodeKind::Code,
        (Some("link") | None, DeliveryChannel::Email) => CodeKind::Link,
        (Some("link"), DeliveryChannel::Sms) => {
            return Err(OAuthError::invalid_request(
                "send=link is for e-mail only: SMS carries codes",
            ))
        }
        (Some(_), _) => return Err(OAuthError::invalid_request("send must be code or link")),
    };
    let link: LinkParams = params.object("authParams")?.unwrap_or_default();

    let now = assent.clock.now_ms();
    let settings = &assent.settings.passwordless;
    let id = uuid::Uuid::new_v4().to_string();
    let ttl = match kind {
        CodeKind::Code => settings.code_ttl,
        CodeKind::Link => settings.link_ttl,
    };
    let mut row = NewPasswordlessCode {
        id: id.clone(),
        client_id: client.client_id.clone(),
        user_sub: None,
        api: PasswordlessApi::Auth0,
        channel,
        recipient: recipient_key(assent, &address),
        kind,
        secret_sha256: String::new(),
        transaction_sha256: None,
        proves_address: false,
        scope: String::new(),
        audience: None,
        redirect_uri: None,
        state_param: None,
        nonce: None,
        code_challenge: None,
        requester_ip,
        created_at: now,
        expires_at: now + ttl as i64 * 1000,
    };
    // A link's authorization request is checked now, so a bad one fails
    // here rather than in the user's browser.
    if kind == CodeKind::Link {
        check_link_params(assent, client, &link, &mut row).await?;
    }
    require_channel(assent, channel)?;
    let answer = StartResponse {
        id,
        email: matches!(address, Address::Email(_))
            .then(|| params.get("email").unwrap_or_default().trim().to_string()),
        phone_number: match &address {
            Address::Phone(p) => Some(p.clone()),
            Address::Email(_) => None,
        },
    };
    count_send(assent, &address).await?;
    let recipient = address.recipient(assent, channel).await?;
    let context = templates::RequestContext::default();
    send_or_pretend(assent, row, recipient, |secret, destination| {
        Some(match (kind, channel) {
            (CodeKind::Code, DeliveryChannel::Email) => {
                OutgoingMessage::Email(templates::code_email(
                    destination,
                    &templates::EmailBranding::default(),
                    &client.name,
                    secret,
                    ttl,
                    &context,
                ))
            }
            (CodeKind::Code, DeliveryChannel::Sms) => OutgoingMessage::Sms(templates::code_sms(
                destination,
                &client.name,
                secret,
                ttl,
                None,
                None,
                None,
            )),
            (CodeKind::Link, _) => OutgoingMessage::Email(templates::link_email(
                destination,
                &templates::EmailBranding::default(),
                &client.name,
                &link_url(assent, secret),
                ttl,
                &context,
            )),
        })
    })
    .await?;
    Ok(answer)
}

/// The stored form of an address: a keyed digest (the table of codes
/// holds no address, nor one a dictionary would reverse).
fn recipient_key(assent: &Assent, address: &Address) -> String {
    assent
        .keys
        .keyed_digest("passwordless recipient", &address.key())
}

/// The URL of a magic link: the token travels in the query of a `GET` to
/// this server, which spends it and redirects.
fn link_url(assent: &Assent, token: &str) -> String {
    format!("{}?token={token}", assent.endpoints.passwordless_link)
}

async fn check_link_params(
    assent: &Assent,
    client: &ClientRow,
    link: &LinkParams,
    row: &mut NewPasswordlessCode,
) -> Result<(), OAuthError> {
    if !client_has_grant(client, AUTHORIZATION_CODE_GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "magic links need the authorization_code grant, which this client does not have",
        ));
    }
    match link.response_type.as_deref() {
        None | Some("code") => {}
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "authParams.response_type must be code: links complete with the authorization-code grant",
            ))
        }
    }
    if let Some(protocol) = &link.protocol {
        if !matches!(protocol.as_str(), "oauth2" | "oidc") {
            return Err(OAuthError::invalid_request(
                "authParams.protocol must be oauth2 or oidc",
            ));
        }
    }
    row.redirect_uri = Some(registered_redirect_uri(
        client,
        link.redirect_uri.as_deref(),
    )?);
    let audience = match (&link.audience, &link.resource) {
        (Some(a), Some(r)) if a != r => {
            return Err(OAuthError::invalid_request(
                "authParams.audience and authParams.resource name different APIs",
            ))
        }
        (a, r) => a.clone().or_else(|| r.clone()),
    };
    row.scope = granted_scope(assent, client, link.scope.as_deref(), audience.as_deref()).await?;
    row.audience = audience;
    row.state_param = bounded(link.state.clone(), MAX_STATE_LEN, "authParams.state")?;
    row.nonce = bounded(link.nonce.clone(), MAX_NONCE_LEN, "authParams.nonce")?;
    row.code_challenge = match (&link.code_challenge, link.code_challenge_method.as_deref()) {
        (None, None) => None,
        (Some(challenge), None | Some("S256")) => {
            // RFC 7636 4.2: BASE64URL(SHA-256) is 43 characters.
            if challenge.len() != 43 || crate::secrets::b64url_decode(challenge).is_none() {
                return Err(OAuthError::invalid_request(
                    "authParams.code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
                ));
            }
            Some(challenge.clone())
        }
        (_, Some("plain")) => {
            return Err(OAuthError::invalid_request(
                "authParams.code_challenge_method plain is not supported: use S256",
            ))
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "authParams.code_challenge_method without a code_challenge",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "authParams.code_challenge_method must be S256",
            ))
        }
    };
    Ok(())
}

fn bounded(value: Option<String>, max: usize, name: &str) -> Result<Option<String>, OAuthError> {
    match value {
        Some(v) if v.len() > max || v.chars().any(char::is_control) => {
            Err(OAuthError::invalid_request(format!(
                "{name} must be at most {max} bytes without control characters"
            )))
        }
        other => Ok(other.filter(|v| !v.is_empty())),
    }
}

/// Why a code was not accepted, worded as Auth0 words it.
fn wrong_code(address: &Address) -> OAuthError {
    OAuthError::invalid_grant(match address {
        Address::Email(_) => "Wrong email or verification code.",
        Address::Phone(_) => "Wrong phone number or verification code.",
    })
}

/// Checks a typed code against the address's live code for this client and
/// API, and redeems it. `transaction` is the `approval_data` presented with
/// it, which must be the one the code was bound to (if any); `session_user`
/// the user of the session the caller continues, refused before the code
/// is spent when the code is someone else's.
async fn redeem_code(
    assent: &Assent,
    client_id: &str,
    api: PasswordlessApi,
    address: &Address,
    otp: &str,
    transaction: Option<&str>,
    session_user: Option<&str>,
) -> Result<RedeemedCode, OAuthError> {
    let now = assent.clock.now_ms();
    let recipient = recipient_key(assent, address);
    let live = assent
        .store
        .live_passwordless_code(client_id, api, &recipient)
        .await?;
    let Some(live) = live else {
        return Err(wrong_code(address));
    };
    // Wrong guesses count per user, and per address for a decoy (an
    // address that is no user's answers as a user's would).
    let subject = live.user_sub.clone().unwrap_or(recipient);
    user_failures(assent, &subject, false).await?;
    if live.expires_at <= now {
        assent.store.void_passwordless_code(&live.id, now).await?;
        return Err(OAuthError::invalid_grant(
            "The verification code has expired. Please try to login again.",
        ));
    }
    if let (Some(session_user), Some(owner)) = (session_user, &live.user_sub) {
        if session_user != owner {
            return Err(OAuthError::invalid_request(
                "session_id names no live session of this user and client",
            ));
        }
    }
    let code_ok = otp.len() <= MAX_OTP_LEN
        && constant_time_eq(&code_digest(assent, &live.id, otp), &live.secret_sha256);
    let transaction_ok = match (&live.transaction_sha256, transaction) {
        (None, None) => true,
        (Some(bound), Some(given)) => constant_time_eq(bound, given),
        _ => false,
    };
    if !(code_ok && transaction_ok) {
        let max = i64::from(assent.settings.passwordless.max_attempts);
        let guess = assent
            .store
            .count_wrong_passwordless_guess(&live.id, max, now)
            .await?;
        user_failures(assent, &subject, true).await?;
        if guess.is_some_and(|g| g.voided) {
            return Err(OAuthError::invalid_grant(
                "You've reached the maximum number of attempts. Please try to login again.",
            ));
        }
        if code_ok {
            return Err(OAuthError::invalid_grant(
                "the verification code was issued for another transaction",
            ));
        }
        return Err(wrong_code(address));
    }
    assent
        .store
        .redeem_passwordless_code(&live.id, now)
        .await?
        // Redeemed (or voided) by a concurrent request in between.
        .ok_or_else(|| wrong_code(address))
}

/// The user a redeemed code names, if they may still log in. A code sent
/// to the user's own address also proves it, which is marked verified.
async fn logged_in_user(assent: &Assent, redeemed: &RedeemedCode) -> Result<UserRow, OAuthError> {
    let user = assent
        .store
        .user(&redeemed.user_sub)
        .await?
        .filter(|u| !u.blocked)
        .ok_or_else(|| OAuthError::invalid_grant("the user is blocked"))?;
    if !redeemed.proves_address {
        return Ok(user);
    }
    let changes = match redeemed.channel {
        DeliveryChannel::Email if !user.email_verified => UserChanges {
            email_verified: Some(true),
            ..UserChanges::default()
        },
        DeliveryChannel::Sms if !user.phone_verified => UserChanges {
            phone_verified: Some(true),
            ..UserChanges::default()
        },
        _ => return Ok(user),
    };
    Ok(assent
        .store
        .update_user(&user.sub, &changes, assent.clock.now_ms())
        .await?
        .unwrap_or(user))
}

/// RFC 8176 methods of a passwordless login.
fn amr(channel: DeliveryChannel, kind: CodeKind) -> &'static str {
    match (channel, kind) {
        (DeliveryChannel::Sms, _) => r#"["otp","sms"]"#,
        (DeliveryChannel::Email, CodeKind::Code) => r#"["otp"]"#,
        // A link proves control of the mailbox, like a code does.
        (DeliveryChannel::Email, CodeKind::Link) => r#"["otp"]"#,
    }
}

/// The login a redeemed code completes: tokens for `scope`/`audience`.
/// This is where a login's first factor ends: the client's MFA policy
/// ([`crate::mfa::gate`]) may answer `mfa_required` instead of tokens.
pub(crate) async fn complete_login(
    assent: &Assent,
    client: &ClientRow,
    user: &UserRow,
    redeemed: &RedeemedCode,
    scope: &str,
    audience: Option<&str>,
    id_token_claims: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<TokenResponse, OAuthError> {
    let amr = amr(redeemed.channel, redeemed.kind);
    // A second factor, when the client's policy asks for one: the answer is
    // then Auth0's mfa_required with the token of the MFA API.
    crate::mfa::gate(
        assent,
        client,
        &crate::mfa::FirstFactor {
            user,
            scope,
            audience,
            amr,
            nonce: redeemed.nonce.as_deref(),
        },
    )
    .await?;
    let now = assent.clock.now_ms();
    let grant = Grant {
        user_sub: &user.sub,
        client_id: &client.client_id,
        scope,
        audience,
        authorization_details: None,
        acr: None,
        amr: Some(amr),
        auth_time: now / 1000,
        auth_req_id: None,
        nonce: redeemed.nonce.as_deref(),
        id_token_claims,
    };
    issuance::issue(assent, client, &grant, now).await
}

/// `/oauth/token` with Auth0's passwordless OTP grant.
pub async fn otp_grant(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client_has_grant(client, PASSWORDLESS_OTP_GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "this client is not allowed to use the passwordless OTP grant",
        ));
    }
    let username = params.required("username", MAX_USERNAME_LEN)?;
    let address = match params.get("realm") {
        Some("email") => Address::email(username)?,
        Some("sms") => Address::phone(username)?,
        Some(_) => return Err(OAuthError::invalid_request("realm must be email or sms")),
        None => {
            return Err(OAuthError::invalid_request(
                "missing required parameter realm",
            ))
        }
    };
    let otp = params
        .get("otp")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter otp"))?;
    // Checked before the code is spent: a bad request keeps it usable.
    let audience = parse_audience(params)?;
    let scope = granted_scope(assent, client, params.get("scope"), audience.as_deref()).await?;
    let redeemed = redeem_code(
        assent,
        &client.client_id,
        PasswordlessApi::Auth0,
        &address,
        otp,
        None,
        None,
    )
    .await?;
    let user = logged_in_user(assent, &redeemed).await?;
    complete_login(
        assent,
        client,
        &user,
        &redeemed,
        &scope,
        audience.as_deref(),
        None,
    )
    .await
}

/// Why following a magic link did not sign the user in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Unknown, already followed, voided by a newer one, or expired: the
    /// same page for all, so a link reveals nothing about others.
    NotUsable,
}

/// `GET` of a magic link: spends it and returns where to send the browser,
/// the registered redirect URI with `code` (and `state`).
pub async fn follow_link(assent: &Assent, token: &str) -> Result<String, LinkRefusal> {
    if token.is_empty() || token.len() > 128 {
        return Err(LinkRefusal::NotUsable);
    }
    let now = assent.clock.now_ms();
    let code = new_secret();
    let followed = assent
        .store
        .follow_magic_link(
            &sha256_hex(token),
            &sha256_hex(&code),
            now + AUTH_CODE_TTL_MS,
            now,
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "database error following a magic link");
            LinkRefusal::NotUsable
        })?
        .ok_or(LinkRefusal::NotUsable)?;
    let Some(redirect) = followed.redirect_uri else {
        return Err(LinkRefusal::NotUsable);
    };
    // Still registered: an operator's removal of a redirect URI also stops
    // the links already sent to it.
    let client = assent
        .store
        .client(&followed.client_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "database error following a magic link");
            LinkRefusal::NotUsable
        })?;
    if !client.is_some_and(|c| c.redirect_uris.split(' ').any(|u| u == redirect)) {
        return Err(LinkRefusal::NotUsable);
    }
    let mut url = reqwest::Url::parse(&redirect).map_err(|_| LinkRefusal::NotUsable)?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = &followed.state_param {
            query.append_pair("state", state);
        }
    }
    Ok(url.to_string())
}

/// Checks a PKCE verifier against the stored challenge (RFC 7636 4.6).
fn verifier_matches(challenge: Option<&str>, verifier: Option<&str>) -> bool {
    match (challenge, verifier) {
        (None, None) => true,
        (Some(challenge), Some(verifier)) => {
            let valid = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            valid && constant_time_eq(&b64url(&sha256(verifier.as_bytes())), challenge)
        }
        _ => false,
    }
}

/// `/oauth/token` with `grant_type=authorization_code`: the code a followed
/// magic link carried, exchanged once by the client it was issued to.
pub async fn authorization_code_grant(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client_has_grant(client, AUTHORIZATION_CODE_GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "this client is not allowed to use the authorization_code grant",
        ));
    }
    let code = params
        .required("code", 256)
        .map_err(|e| match params.get("code") {
            Some(_) => OAuthError::invalid_grant("invalid authorization code"),
            None => e,
        })?;
    let redirect_uri = params.get("redirect_uri");
    let verifier = params.get("code_verifier");
    let now = assent.clock.now_ms();
    let redeemed = assent
        .store
        .redeem_magic_link_code(
            &sha256_hex(code),
            &client.client_id,
            PasswordlessApi::Auth0,
            now,
        )
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("invalid or expired authorization code"))?;
    // RFC 6749 4.1.3: the same redirect_uri as in the authorization request;
    // none when the link went to the client's only registered one.
    let only_registered = {
        let mut all = client.redirect_uris.split(' ').filter(|u| !u.is_empty());
        (all.next(), all.next())
    };
    let matches = match redirect_uri {
        Some(given) => Some(given) == redeemed.redirect_uri.as_deref(),
        None => {
            matches!(only_registered, (Some(only), None) if Some(only) == redeemed.redirect_uri.as_deref())
        }
    };
    if !matches {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the one the code was issued for",
        ));
    }
    if !verifier_matches(redeemed.code_challenge.as_deref(), verifier) {
        return Err(OAuthError::invalid_grant("code_verifier does not match"));
    }
    let user = logged_in_user(assent, &redeemed).await?;
    let scope = redeemed.scope.clone();
    let audience = redeemed.audience.clone();
    complete_login(
        assent,
        client,
        &user,
        &redeemed,
        &scope,
        audience.as_deref(),
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_asked_digits_and_vary() {
        for digits in [6, 8, 10] {
            let code = crate::secrets::numeric_code(digits);
            assert_eq!(code.len(), usize::from(digits));
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
        let many: std::collections::HashSet<String> =
            (0..200).map(|_| crate::secrets::numeric_code(6)).collect();
        assert!(many.len() > 190, "codes repeat too often: {}", many.len());
    }

    #[test]
    fn transactions_are_unambiguous() {
        assert_ne!(transaction_digest("ab", "c"), transaction_digest("a", "bc"));
    }

    #[test]
    fn pkce_s256_is_checked() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(Some(challenge), Some(verifier)));
        assert!(!verifier_matches(
            Some(challenge),
            Some("x".repeat(43).as_str())
        ));
        assert!(!verifier_matches(Some(challenge), None));
        assert!(!verifier_matches(None, Some(verifier)));
        assert!(verifier_matches(None, None));
    }

    #[test]
    fn addresses_are_normalized() {
        assert_eq!(
            Address::email(" Alice@Example.COM ").unwrap(),
            Address::Email("alice@example.com".into())
        );
        assert!(Address::email("alice").is_err());
        assert!(Address::email("a b@example.com").is_err());
        assert_eq!(
            Address::phone("+1 415 555 2671").unwrap(),
            Address::Phone("+14155552671".into())
        );
        assert!(Address::phone("4155552671").is_err());
    }
}
