//! The back-end one-time login API: a client's back end sends a user a
//! branded magic link or a one-time passcode (by e-mail or SMS, optionally
//! bound to a transaction), then trades what the user brings back for
//! tokens and a `session_id`.
//!
//! Routes (`/backend-auth/...`, documented in the README and openapi.json):
//! `magic-link/send`, `magic-link/authenticate`, `otp/send`,
//! `otp/authenticate`. Every call is authenticated as the client; codes and
//! links of this API are redeemed only by it, and only by the client that
//! asked for them.

use assent_shared::oauth::{TokenResponse, PASSWORDLESS_OTP_GRANT_TYPE};
use serde::{Deserialize, Serialize};

use super::{
    complete_login, count_send, link_url, logged_in_user, redeem_code, registered_redirect_uri,
    require_channel, send_or_pretend, transaction_digest, Address, ClientAttributes, MAX_STATE_LEN,
    MAX_USERNAME_LEN,
};
use crate::{
    ciba::parse_audience,
    error::OAuthError,
    issuance::client_has_grant,
    messaging::{templates, OutgoingMessage},
    params::Params,
    secrets::{new_secret, sha256_hex},
    state::Assent,
    storage::{
        ClientRow, CodeKind, DeliveryChannel, NewPasswordlessCode, PasswordlessApi, RedeemedCode,
        UserRow,
    },
};

/// What a back-end login grants when the caller names no scope: an OpenID
/// login with the profile, and a refresh token if the client may refresh.
const BACKEND_SCOPE: &str = "openid profile email offline_access";
/// How long a back-end login session lasts.
const SESSION_TTL_MS: i64 = 24 * 3600 * 1000;
/// Bounds of `email_expiration`, seconds.
const MIN_LINK_TTL: u64 = 60;
const MAX_LINK_TTL: u64 = 86_400;

/// `approval_data`: the transaction a passcode approves (dynamic linking).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalData {
    pub transaction_id: String,
    pub sum: String,
}

impl ApprovalData {
    fn from_params(params: &Params) -> Result<Option<Self>, OAuthError> {
        let data: Option<Self> = params.object("approval_data")?;
        if let Some(d) = &data {
            for (name, value) in [("transaction_id", &d.transaction_id), ("sum", &d.sum)] {
                if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
                    return Err(OAuthError::invalid_request(format!(
                        "approval_data.{name} must be 1 to 256 bytes without control characters"
                    )));
                }
            }
        }
        Ok(data)
    }

    fn digest(&self) -> String {
        transaction_digest(&self.transaction_id, &self.sum)
    }
}

/// `custom_sms_input`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomSmsInput {
    pub custom_message: Option<String>,
    pub sender_id: Option<String>,
}

/// `{"message": …}` answers of the send calls.
#[derive(Debug, Serialize)]
pub struct SendResponse {
    pub message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_data: Option<ApprovalData>,
    /// Only for clients the operator allowed it (`otp_code_in_response`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Tokens plus the session the login belongs to.
#[derive(Debug, Serialize)]
pub struct BackendTokens {
    #[serde(flatten)]
    pub tokens: TokenResponse,
    pub session_id: String,
}

fn require_grant(client: &ClientRow) -> Result<(), OAuthError> {
    if client_has_grant(client, PASSWORDLESS_OTP_GRANT_TYPE) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(
            "this client is not allowed to use passwordless login",
        ))
    }
}

fn branding(params: &Params) -> Result<templates::EmailBranding, OAuthError> {
    let branding: templates::EmailBranding = params.object("email_content")?.unwrap_or_default();
    branding
        .validate()
        .map_err(|e| OAuthError::invalid_request(format!("email_content: {e}")))?;
    Ok(branding)
}

/// Refuses what Assent does not have, rather than ignoring it.
fn refuse_org(params: &Params) -> Result<(), OAuthError> {
    if params.contains("org_id") {
        return Err(OAuthError::invalid_request(
            "org_id: organizations are not supported by this server",
        ));
    }
    Ok(())
}

/// `POST /backend-auth/magic-link/send`.
pub async fn send_magic_link(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
    requester_ip: Option<String>,
) -> Result<SendResponse, OAuthError> {
    require_grant(client)?;
    match params.get("channel") {
        None | Some("email") => {}
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "channel must be email: magic links are sent by e-mail",
            ))
        }
    }
    let address = Address::email(params.required("email", MAX_USERNAME_LEN)?)?;
    let branding = branding(params)?;
    let attributes = ClientAttributes::from_params(params)?;
    let redirect_uri = registered_redirect_uri(client, params.optional("redirect_uri", 2000)?)?;
    let state = super::bounded(
        params.optional("state", MAX_STATE_LEN)?.map(str::to_string),
        MAX_STATE_LEN,
        "state",
    )?;
    let settings = &assent.settings.passwordless;
    let ttl = match params.optional("email_expiration", 16)? {
        None | Some("0") => settings.link_ttl,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|s| (MIN_LINK_TTL..=MAX_LINK_TTL).contains(s))
            .ok_or_else(|| {
                OAuthError::invalid_request(format!(
                    "email_expiration must be {MIN_LINK_TTL} to {MAX_LINK_TTL} seconds (0 for the default)"
                ))
            })?,
    };
    require_channel(assent, DeliveryChannel::Email)?;
    let answer = SendResponse {
        message: "Email sent successfully",
        approval_data: None,
        code: None,
    };
    count_send(assent, &address).await?;
    let now = assent.clock.now_ms();
    let row = NewPasswordlessCode {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        user_sub: None,
        api: PasswordlessApi::Backend,
        channel: DeliveryChannel::Email,
        recipient: super::recipient_key(assent, &address),
        kind: CodeKind::Link,
        secret_sha256: String::new(),
        transaction_sha256: None,
        proves_address: false,
        scope: BACKEND_SCOPE.into(),
        audience: None,
        redirect_uri: Some(redirect_uri),
        state_param: state,
        nonce: None,
        code_challenge: None,
        requester_ip,
        created_at: now,
        expires_at: now + ttl as i64 * 1000,
    };
    let recipient = address.recipient(assent, DeliveryChannel::Email).await?;
    send_or_pretend(assent, row, recipient, |token, destination| {
        Some(OutgoingMessage::Email(templates::link_email(
            destination,
            &branding,
            &client.name,
            &link_url(assent, token),
            ttl,
            &attributes.context(),
        )))
    })
    .await?;
    Ok(answer)
}

/// `POST /backend-auth/otp/send`.
pub async fn send_otp(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
    requester_ip: Option<String>,
) -> Result<SendResponse, OAuthError> {
    require_grant(client)?;
    let channel = match params.get("channel") {
        None | Some("email") => DeliveryChannel::Email,
        Some("sms") => DeliveryChannel::Sms,
        Some(_) => return Err(OAuthError::invalid_request("channel must be email or sms")),
    };
    let address = identifier(params)?;
    let branding = branding(params)?;
    let sms: CustomSmsInput = params.object("custom_sms_input")?.unwrap_or_default();
    check_sms_input(&sms)?;
    let approval = ApprovalData::from_params(params)?;
    let attributes = ClientAttributes::from_params(params)?;
    let custom_email = params
        .optional("custom_email", MAX_USERNAME_LEN)?
        .map(Address::email)
        .transpose()?;
    let custom_phone = params
        .optional("custom_phone_number", 64)?
        .map(Address::phone)
        .transpose()?;
    // Sending a user's code elsewhere than their own address gives the
    // back end the code: only for clients the operator trusts with codes.
    if (custom_email.is_some() || custom_phone.is_some()) && !client.otp_code_in_response {
        return Err(OAuthError::invalid_request(
            "custom_email and custom_phone_number need the operator's permission for this \
             client (assent-server client update --otp-code-in-response true)",
        ));
    }
    let custom = match channel {
        DeliveryChannel::Email => custom_email,
        DeliveryChannel::Sms => custom_phone,
    };
    // The back end delivers the code itself when it may read it and the
    // server has no channel for it; otherwise the channel must exist.
    let deliver = !client.otp_code_in_response
        || crate::messaging::channel_configured(&assent.settings, super::channel_of(channel));
    if deliver {
        require_channel(assent, channel)?;
    }
    count_send(assent, &address).await?;
    if let Some(custom) = &custom {
        // A custom destination is limited like any address.
        count_send(assent, custom).await?;
    }
    let settings = &assent.settings.passwordless;
    let now = assent.clock.now_ms();
    let row = NewPasswordlessCode {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        user_sub: None,
        api: PasswordlessApi::Backend,
        channel,
        recipient: super::recipient_key(assent, &address),
        kind: CodeKind::Code,
        secret_sha256: String::new(),
        transaction_sha256: approval.as_ref().map(ApprovalData::digest),
        proves_address: false,
        scope: BACKEND_SCOPE.into(),
        audience: None,
        redirect_uri: None,
        state_param: None,
        nonce: None,
        code_challenge: None,
        requester_ip,
        created_at: now,
        expires_at: now + settings.code_ttl as i64 * 1000,
    };
    let mut recipient = address.recipient(assent, channel).await?;
    if let (Some(recipient), Some(custom)) = (&mut recipient, &custom) {
        recipient.destination = match custom {
            Address::Email(e) | Address::Phone(e) => e.clone(),
        };
        recipient.proves_address = false;
    }
    let ttl = settings.code_ttl;
    let code = send_or_pretend(assent, row, recipient, |code, destination| {
        deliver.then(|| match channel {
            DeliveryChannel::Email => OutgoingMessage::Email(templates::code_email(
                destination,
                &branding,
                &client.name,
                code,
                ttl,
                &attributes.context(),
            )),
            DeliveryChannel::Sms => OutgoingMessage::Sms(templates::code_sms(
                destination,
                &client.name,
                code,
                ttl,
                sms.custom_message.as_deref(),
                sms.sender_id.as_deref(),
                approval
                    .as_ref()
                    .map(|a| (a.transaction_id.as_str(), a.sum.as_str())),
            )),
        })
    })
    .await?;
    Ok(SendResponse {
        message: "OTP sent",
        approval_data: approval,
        code: client.otp_code_in_response.then_some(code),
    })
}

fn check_sms_input(sms: &CustomSmsInput) -> Result<(), OAuthError> {
    if let Some(message) = &sms.custom_message {
        if message.chars().count() > 480 || message.chars().any(|c| c.is_control() && c != '\n') {
            return Err(OAuthError::invalid_request(
                "custom_sms_input.custom_message must be at most 480 characters without control characters",
            ));
        }
    }
    if let Some(sender) = &sms.sender_id {
        // Alphanumeric sender IDs: 1-11 characters (GSM 03.40).
        if sender.is_empty()
            || sender.len() > 11
            || !sender
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ')
        {
            return Err(OAuthError::invalid_request(
                "custom_sms_input.sender_id must be 1 to 11 letters, digits or spaces",
            ));
        }
    }
    Ok(())
}

/// `identifier_type` and `identifier`: how the user is named.
fn identifier(params: &Params) -> Result<Address, OAuthError> {
    let identifier = params.required("identifier", MAX_USERNAME_LEN)?;
    match params.get("identifier_type") {
        Some("email") => Address::email(identifier),
        Some("phone_number") => Address::phone(identifier),
        Some(_) => Err(OAuthError::invalid_request(
            "identifier_type must be email or phone_number",
        )),
        None => Err(OAuthError::invalid_request(
            "missing required parameter identifier_type",
        )),
    }
}

/// `POST /backend-auth/otp/authenticate`.
pub async fn authenticate_otp(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
) -> Result<BackendTokens, OAuthError> {
    require_grant(client)?;
    refuse_org(params)?;
    let address = identifier(params)?;
    let passcode = params
        .get("passcode")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter passcode"))?;
    let approval = ApprovalData::from_params(params)?;
    let request = LoginRequest::from_params(assent, client, params).await?;
    let redeemed = redeem_code(
        assent,
        &client.client_id,
        PasswordlessApi::Backend,
        &address,
        passcode,
        approval.as_ref().map(ApprovalData::digest).as_deref(),
        request.session_user.as_deref(),
    )
    .await?;
    request.complete(assent, client, &redeemed).await
}

/// `POST /backend-auth/magic-link/authenticate`: the `code` the link's
/// redirect delivered, exchanged once.
pub async fn authenticate_magic_link(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
) -> Result<BackendTokens, OAuthError> {
    require_grant(client)?;
    refuse_org(params)?;
    let code = params
        .required("code", 256)
        .map_err(|e| match params.get("code") {
            Some(_) => OAuthError::invalid_grant("invalid or expired code"),
            None => e,
        })?;
    let request = LoginRequest::from_params(assent, client, params).await?;
    let now = assent.clock.now_ms();
    if let Some(session_user) = &request.session_user {
        // Another user's code must not cost its owner the code.
        let owner = assent
            .store
            .magic_link_code_user(&sha256_hex(code), &client.client_id, now)
            .await?;
        if owner.is_some_and(|owner| &owner != session_user) {
            return Err(unknown_session());
        }
    }
    let redeemed = assent
        .store
        .redeem_magic_link_code(
            &sha256_hex(code),
            &client.client_id,
            PasswordlessApi::Backend,
            now,
        )
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("invalid or expired code"))?;
    request.complete(assent, client, &redeemed).await
}

/// What both authenticate calls ask for besides the code.
struct LoginRequest {
    audience: Option<String>,
    /// What the tokens will grant, checked against the client's grants.
    scope: String,
    session_id: Option<String>,
    /// The user of the live session `session_id` names.
    session_user: Option<String>,
    /// Profile claims asked for in the ID token (`claims.id_token`).
    claims: Vec<String>,
}

/// The ID-token claims a `claims` request may ask for (OpenID Core 5.1).
const PROFILE_CLAIMS: [&str; 5] = [
    "email",
    "email_verified",
    "name",
    "phone_number",
    "phone_number_verified",
];

impl LoginRequest {
    async fn from_params(
        assent: &Assent,
        client: &ClientRow,
        params: &Params,
    ) -> Result<Self, OAuthError> {
        ClientAttributes::from_params(params)?;
        let audience = parse_audience(params)?;
        // Checked now, before the code is spent.
        let scope =
            super::granted_scope(assent, client, Some(BACKEND_SCOPE), audience.as_deref()).await?;
        let claims = match params.get("claims") {
            None => Vec::new(),
            Some(text) => parse_claims_request(text)?,
        };
        let session_id = params.optional("session_id", 256)?.map(str::to_string);
        // Checked before the code is spent, so that a wrong session_id does
        // not cost the user their code.
        let session_user = match &session_id {
            None => None,
            Some(id) => Some(
                assent
                    .store
                    .login_session_user(&sha256_hex(id), &client.client_id, assent.clock.now_ms())
                    .await?
                    .ok_or_else(unknown_session)?,
            ),
        };
        Ok(Self {
            audience,
            scope,
            session_id,
            session_user,
            claims,
        })
    }

    async fn complete(
        self,
        assent: &Assent,
        client: &ClientRow,
        redeemed: &RedeemedCode,
    ) -> Result<BackendTokens, OAuthError> {
        let user = logged_in_user(assent, redeemed).await?;
        let now = assent.clock.now_ms();
        let amr = super::amr(redeemed.channel, redeemed.kind);
        let profile = profile_claims(&user, &self.claims);
        let tokens = complete_login(
            assent,
            client,
            &user,
            redeemed,
            &self.scope,
            self.audience.as_deref(),
            (!profile.is_empty()).then_some(&profile),
        )
        .await?;
        // The session records a completed login: after the tokens (a login
        // that needs a second factor has none yet).
        let session_id = match self.session_id {
            Some(id) => {
                if !assent
                    .store
                    .continue_login_session(&sha256_hex(&id), &client.client_id, &user.sub, now)
                    .await?
                {
                    return Err(unknown_session());
                }
                id
            }
            None => {
                let id = new_secret();
                assent
                    .store
                    .insert_login_session(
                        &sha256_hex(&id),
                        &client.client_id,
                        &user.sub,
                        amr,
                        now,
                        now + SESSION_TTL_MS,
                    )
                    .await?;
                id
            }
        };
        Ok(BackendTokens { tokens, session_id })
    }
}

fn unknown_session() -> OAuthError {
    OAuthError::invalid_request("session_id names no live session of this user and client")
}

/// The names of the profile claims a `claims` request (OpenID Core 5.5)
/// asks for in the ID token; others are ignored, as 5.5 says to.
fn parse_claims_request(text: &str) -> Result<Vec<String>, OAuthError> {
    let invalid = || {
        OAuthError::invalid_request(
            "claims must be a JSON object as OpenID Connect Core 5.5 describes",
        )
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| invalid())?;
    let object = value.as_object().ok_or_else(invalid)?;
    let Some(id_token) = object.get("id_token") else {
        return Ok(Vec::new());
    };
    let id_token = id_token.as_object().ok_or_else(invalid)?;
    Ok(id_token
        .keys()
        .filter(|k| PROFILE_CLAIMS.contains(&k.as_str()))
        .cloned()
        .collect())
}

fn profile_claims(user: &UserRow, asked: &[String]) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut claims = serde_json::Map::new();
    for name in asked {
        let value = match name.as_str() {
            "email" => user.email.clone().map(Value::String),
            "email_verified" => user
                .email
                .as_ref()
                .map(|_| Value::Bool(user.email_verified)),
            "name" => user.name.clone().map(Value::String),
            "phone_number" => user.phone_number.clone().map(Value::String),
            "phone_number_verified" => user
                .phone_number
                .as_ref()
                .map(|_| Value::Bool(user.phone_verified)),
            _ => None,
        };
        if let Some(value) = value {
            claims.insert(name.clone(), value);
        }
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_requests_name_profile_claims_only() {
        let asked = parse_claims_request(
            r#"{"id_token":{"email":null,"name":{"essential":true},"roles":null,"sub":null}}"#,
        )
        .unwrap();
        assert_eq!(asked, vec!["email".to_string(), "name".to_string()]);
        assert!(parse_claims_request(r#"{"userinfo":{"email":null}}"#)
            .unwrap()
            .is_empty());
        assert!(parse_claims_request("[]").is_err());
        assert!(parse_claims_request(r#"{"id_token":[]}"#).is_err());
    }

    #[test]
    fn sms_sender_ids_are_alphanumeric() {
        let sms = |sender: &str| CustomSmsInput {
            custom_message: None,
            sender_id: Some(sender.into()),
        };
        assert!(check_sms_input(&sms("Acme Bank")).is_ok());
        assert!(check_sms_input(&sms("AcmeBankLtd1")).is_err());
        assert!(check_sms_input(&sms("Acme<b>")).is_err());
    }
}
