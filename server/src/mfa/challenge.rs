//! `POST /mfa/challenge`: asking the user's second factor. An Assent device
//! gets a push: the same signed challenge, inbox and decision as a CIBA
//! request, marked as the second step of a sign-in; a TOTP app needs
//! nothing sent; an SMS or e-mail authenticator gets a code the user types
//! in (`binding_method: prompt`).

use assent_shared::{oauth::Assurance, protocol::RequestPurpose};
use serde::Serialize;

use super::{live_token, locked, mfa_token_param};
use crate::{
    approval::{self, RequesterContext},
    client_auth::AuthenticatedClient,
    error::OAuthError,
    messaging::{self, templates, OutgoingMessage},
    params::Params,
    secrets::{new_secret, numeric_code, sha256_hex},
    state::Assent,
    storage::{AuthenticatorKind, AuthenticatorRow, ClientRow, NewOobCode, UserLookup},
};

/// Digits of a code sent by SMS or e-mail.
const CODE_DIGITS: u8 = 6;
/// How long a sent code works.
const CODE_TTL_SECS: u64 = 300;
/// Codes sent to one user per window: enough for typos and a slow network,
/// too few to run up an SMS bill.
const SENDS_PER_WINDOW: i64 = 10;
const SEND_WINDOW_MS: i64 = 15 * 60 * 1000;

/// What `POST /mfa/challenge` answers (Auth0's shape).
#[derive(Debug, Serialize)]
pub struct ChallengeAnswer {
    pub challenge_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oob_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding_method: Option<&'static str>,
    /// Number matching (a push of a client that requires it): the code to
    /// show the user, who types it on the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_code: Option<String>,
}

/// The factor a challenge goes to.
enum Target {
    /// Every enrolled Assent device of the user.
    Push,
    Totp,
    Destination(AuthenticatorRow),
}

pub async fn challenge(
    assent: &Assent,
    authenticated: &AuthenticatedClient,
    params: &Params,
    requester: RequesterContext,
) -> Result<ChallengeAnswer, OAuthError> {
    let client = &*authenticated.row;
    let presented = mfa_token_param(params)?;
    let token = live_token(assent, presented, Some(&client.client_id)).await?;
    locked(assent, &token.user_sub).await?;
    let types: Vec<&str> = params
        .get("challenge_type")
        .unwrap_or("otp oob")
        .split(' ')
        .filter(|t| !t.is_empty())
        .collect();
    if types.is_empty() || types.iter().any(|t| !matches!(*t, "otp" | "oob")) {
        return Err(OAuthError::invalid_request(
            "challenge_type must be otp and/or oob",
        ));
    }
    let token_sha256 = sha256_hex(presented);
    let named = params.get("authenticator_id");
    let target = choose(assent, &token.user_sub, &token_sha256, &types, named).await?;
    match target {
        Target::Totp => Ok(ChallengeAnswer {
            challenge_type: "otp",
            oob_code: None,
            binding_method: None,
            match_code: None,
        }),
        Target::Destination(authenticator) => {
            let oob_code = send_code(assent, client, Some(&token_sha256), &authenticator).await?;
            Ok(ChallengeAnswer {
                challenge_type: "oob",
                oob_code: Some(oob_code),
                binding_method: Some("prompt"),
                match_code: None,
            })
        }
        Target::Push => {
            // Open no longer than the login it completes.
            let left = ((token.expires_at - assent.clock.now_ms()) / 1000).max(1) as u64;
            let asked = approval::ask(
                assent,
                approval::Ask {
                    client: authenticated,
                    user: &UserLookup {
                        sub: token.user_sub.clone(),
                        email: None,
                    },
                    scope: &token.scope,
                    audience: token.audience.as_deref(),
                    binding_message: format!("Sign in to {}", client.name),
                    authorization_details: None,
                    requester,
                    expires_in: assent.settings.request_expiry.min(left),
                    min_assurance: Assurance::default(),
                    purpose: RequestPurpose::Mfa,
                    mfa_token_sha256: Some(token_sha256),
                },
            )
            .await?;
            Ok(ChallengeAnswer {
                challenge_type: "oob",
                oob_code: Some(asked.handle),
                binding_method: None,
                match_code: asked.match_code,
            })
        }
    }
}

/// The factor named by `authenticator_id`, or the best active one the
/// types allow: a push when the user has a device (nothing to type), then
/// a TOTP app, then a code sent by SMS or e-mail.
async fn choose(
    assent: &Assent,
    user_sub: &str,
    token_sha256: &str,
    types: &[&str],
    named: Option<&str>,
) -> Result<Target, OAuthError> {
    let oob = types.contains(&"oob");
    let otp = types.contains(&"otp");
    let has_device = || async {
        Ok::<bool, OAuthError>(
            assent
                .store
                .devices(Some(user_sub))
                .await?
                .iter()
                .any(|d| d.revoked_at.is_none()),
        )
    };
    if let Some(device_id) = named.and_then(|id| id.strip_prefix("push|")) {
        let device = assent.store.device(device_id).await?;
        return match device {
            Some(d) if d.user_sub == user_sub && d.revoked_at.is_none() && oob => Ok(Target::Push),
            Some(d) if d.user_sub == user_sub && d.revoked_at.is_none() => Err(unsupported()),
            _ => Err(OAuthError::invalid_request("no such authenticator")),
        };
    }
    let all = assent.store.authenticators(user_sub).await?;
    if let Some(id) = named {
        // Named, a factor may still wait for its first code (enrolled by
        // this login, or with an access token of the MFA API, which has no
        // login to confirm it in): that code confirms it.
        let Some(a) = all
            .into_iter()
            .find(|a| a.id == id && a.usable_by(token_sha256))
        else {
            return Err(OAuthError::invalid_request("no such authenticator"));
        };
        return match a.kind {
            AuthenticatorKind::Otp if otp => Ok(Target::Totp),
            AuthenticatorKind::Oob if oob => Ok(Target::Destination(a)),
            _ => Err(unsupported()),
        };
    }
    let authenticators: Vec<AuthenticatorRow> = all.into_iter().filter(|a| a.active).collect();
    if oob && has_device().await? {
        return Ok(Target::Push);
    }
    if otp
        && authenticators
            .iter()
            .any(|a| a.kind == AuthenticatorKind::Otp)
    {
        return Ok(Target::Totp);
    }
    if let Some(a) = authenticators
        .into_iter()
        .find(|a| oob && a.kind == AuthenticatorKind::Oob)
    {
        return Ok(Target::Destination(a));
    }
    Err(OAuthError::invalid_request(
        "the user has no authenticator for this challenge: associate one first",
    ))
}

fn unsupported() -> OAuthError {
    OAuthError::invalid_request("the authenticator does not take this challenge_type")
}

/// Sends a fresh code to an SMS or e-mail authenticator's destination and
/// stores its `oob_code`, which completes the login of `mfa_token_sha256`
/// with the code as `binding_code`. The message is queued first: a crash in
/// between leaves a message for a code that does not work (the user asks
/// again), never a code that was not sent.
pub(super) async fn send_code(
    assent: &Assent,
    client: &ClientRow,
    mfa_token_sha256: Option<&str>,
    authenticator: &AuthenticatorRow,
) -> Result<String, OAuthError> {
    let now = assent.clock.now_ms();
    let key = assent
        .keys
        .keyed_digest("mfa sends", &authenticator.user_sub);
    let window = assent
        .store
        .bump_passwordless_counter(&key, 1, now, SEND_WINDOW_MS)
        .await?;
    if window.count > SENDS_PER_WINDOW {
        let retry = ((window.window_start + SEND_WINDOW_MS - now).max(1000) / 1000) as u64;
        return Err(OAuthError::too_many_requests(
            format!("at most {SENDS_PER_WINDOW} codes are sent per user in 15 minutes"),
            retry,
        ));
    }
    let Some(address) = authenticator.address.as_deref() else {
        return Err(OAuthError::server_error());
    };
    // Per destination too: many accounts naming one number (SMS pumping)
    // run into the same limit.
    let key = assent.keys.keyed_digest("mfa sends to", address);
    let window = assent
        .store
        .bump_passwordless_counter(&key, 1, now, SEND_WINDOW_MS)
        .await?;
    if window.count > SENDS_PER_WINDOW {
        let retry = ((window.window_start + SEND_WINDOW_MS - now).max(1000) / 1000) as u64;
        return Err(OAuthError::too_many_requests(
            format!("at most {SENDS_PER_WINDOW} codes are sent to one destination in 15 minutes"),
            retry,
        ));
    }
    let code = numeric_code(CODE_DIGITS);
    let oob_code = new_secret();
    let oob_code_sha256 = sha256_hex(&oob_code);
    let expires_at = now + CODE_TTL_SECS as i64 * 1000;
    let message = match authenticator.oob_channel.as_deref() {
        Some("sms") => OutgoingMessage::Sms(templates::code_sms(
            address,
            &client.name,
            &code,
            CODE_TTL_SECS,
            None,
            None,
            None,
        )),
        _ => OutgoingMessage::Email(templates::code_email(
            address,
            &templates::EmailBranding::default(),
            &client.name,
            &code,
            CODE_TTL_SECS,
            &templates::RequestContext::default(),
        )),
    };
    messaging::queue(assent, &message, expires_at)
        .await
        .map_err(messaging::into_oauth_error)?;
    assent
        .store
        .insert_oob_code(&NewOobCode {
            binding_code_digest: Some(binding_digest(assent, &oob_code_sha256, &code)),
            oob_code_sha256,
            mfa_token_sha256: mfa_token_sha256.map(str::to_string),
            client_id: client.client_id.clone(),
            user_sub: authenticator.user_sub.clone(),
            authenticator_id: Some(authenticator.id.clone()),
            enrollment_ticket_sha256: None,
            poll_interval: 0,
            created_at: now,
            expires_at,
        })
        .await?;
    Ok(oob_code)
}

/// A sent code's digest: keyed (a copy of the database alone cannot try the
/// million codes against it) and bound to its `oob_code`.
pub(super) fn binding_digest(assent: &Assent, oob_code_sha256: &str, code: &str) -> String {
    assent
        .keys
        .keyed_digest("mfa binding code", &format!("{oob_code_sha256}:{code}"))
}
