//! Auth0's MFA API: when a login needs a second factor ([`gate`]), the
//! `mfa_token` it answers `mfa_required` with, enrolling a factor
//! ([`associate`]), challenging it ([`challenge`]), and completing the login
//! with the `mfa-otp` and `mfa-recovery-code` grants.
//!
//! Second factors so far: TOTP apps (RFC 6238: SHA-1, 6 digits, 30 s, the
//! secret sealed with the key-encryption key, each time step accepted once)
//! and a recovery code, which replaces itself when used, as Auth0's does.
//! Wrong codes count per user across the fleet (in the database); past the
//! limit the user is locked out of the MFA grants for the window, and an
//! MFA login in flight cannot complete either.

use assent_shared::oauth::TokenResponse;
use serde::Serialize;
use totp_rs::{Algorithm, TOTP};

use crate::{
    error::OAuthError,
    issuance,
    params::Params,
    secrets::{constant_time_eq, new_secret, random_bytes, sha256_hex},
    state::Assent,
    storage::{AuthenticatorKind, AuthenticatorRow, ClientRow, MfaPolicy, MfaTokenRow, UserRow},
    tokens::Grant,
};

pub const MFA_OTP_GRANT: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
pub const MFA_RECOVERY_CODE_GRANT: &str = "http://auth0.com/oauth/grant-type/mfa-recovery-code";

/// How long an `mfa_token` is good for (Auth0: ten minutes).
const MFA_TOKEN_TTL_MS: i64 = 10 * 60 * 1000;
/// TOTP parameters every authenticator app understands.
const TOTP_DIGITS: usize = 6;
const TOTP_STEP_SECS: u64 = 30;
/// Secret length: 160 bits, as RFC 4226 recommends.
const TOTP_SECRET_BYTES: usize = 20;
/// Wrong MFA codes per user per window before the MFA grants pause.
const FAILURES_PER_WINDOW: i64 = 5;
const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// What a login that passed its first factor is about to be granted.
pub struct FirstFactor<'a> {
    pub user: &'a UserRow,
    pub scope: &'a str,
    pub audience: Option<&'a str>,
    /// RFC 8176 methods of the first factor (JSON array text).
    pub amr: &'a str,
    pub nonce: Option<&'a str>,
}

/// Whether `client`'s policy asks this user for a second factor: answers
/// `mfa_required` with a fresh `mfa_token` when it does, `Ok` when tokens
/// may be issued now.
pub async fn gate(
    assent: &Assent,
    client: &ClientRow,
    first: &FirstFactor<'_>,
) -> Result<(), OAuthError> {
    let needed = match client.mfa_policy {
        MfaPolicy::Off => false,
        MfaPolicy::Required => true,
        MfaPolicy::IfEnrolled => assent
            .store
            .authenticators(&first.user.sub)
            .await?
            .iter()
            .any(|a| a.active),
    };
    if !needed {
        return Ok(());
    }
    let token = new_secret();
    let now = assent.clock.now_ms();
    assent
        .store
        .insert_mfa_token(
            &sha256_hex(&token),
            &MfaTokenRow {
                client_id: client.client_id.clone(),
                user_sub: first.user.sub.clone(),
                scope: first.scope.to_string(),
                audience: first.audience.map(str::to_string),
                first_amr: first.amr.to_string(),
                nonce: first.nonce.map(str::to_string),
                created_at: now,
                expires_at: now + MFA_TOKEN_TTL_MS,
            },
        )
        .await?;
    Err(OAuthError::mfa_required(token))
}

/// The live `mfa_token` presented (in `mfa_token`, or as a Bearer token
/// where Auth0 takes one), of this client when one is named.
pub async fn live_token(
    assent: &Assent,
    token: &str,
    client_id: Option<&str>,
) -> Result<MfaTokenRow, OAuthError> {
    if token.len() > 256 {
        return Err(invalid_mfa_token());
    }
    assent
        .store
        .mfa_token(&sha256_hex(token), client_id, assent.clock.now_ms())
        .await?
        .ok_or_else(invalid_mfa_token)
}

fn invalid_mfa_token() -> OAuthError {
    OAuthError::invalid_grant("Malformed mfa_token")
}

fn mfa_token_param(params: &Params) -> Result<&str, OAuthError> {
    params
        .get("mfa_token")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter mfa_token"))
}

/// An authenticator as `GET /mfa/authenticators` lists it (Auth0's shape).
#[derive(Debug, Serialize)]
pub struct AuthenticatorView {
    pub id: String,
    pub authenticator_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oob_channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub active: bool,
}

/// The id of the recovery code "authenticator" Auth0 lists.
fn recovery_code_id(user_sub: &str) -> String {
    format!("recovery-code|{}", &sha256_hex(user_sub)[..22])
}

/// `GET /mfa/authenticators`: the user's factors, and the recovery code.
pub async fn list(
    assent: &Assent,
    token: &MfaTokenRow,
) -> Result<Vec<AuthenticatorView>, OAuthError> {
    let mut views: Vec<AuthenticatorView> = assent
        .store
        .authenticators(&token.user_sub)
        .await?
        .into_iter()
        .map(|a| AuthenticatorView {
            authenticator_type: a.kind.as_str(),
            oob_channel: a.oob_channel,
            name: a.name,
            active: a.active,
            id: a.id,
        })
        .collect();
    if assent.store.has_recovery_codes(&token.user_sub).await? {
        views.push(AuthenticatorView {
            id: recovery_code_id(&token.user_sub),
            authenticator_type: "recovery-code",
            oob_channel: None,
            name: None,
            active: true,
        });
    }
    Ok(views)
}

/// `DELETE /mfa/authenticators/{id}`.
pub async fn delete(assent: &Assent, token: &MfaTokenRow, id: &str) -> Result<(), OAuthError> {
    if assent
        .store
        .delete_authenticator(&token.user_sub, id)
        .await?
    {
        tracing::info!(user = %token.user_sub, authenticator = id, "MFA authenticator deleted");
        Ok(())
    } else {
        Err(OAuthError::not_found("no such authenticator"))
    }
}

/// What `POST /mfa/associate` answers (Auth0's shape).
#[derive(Debug, Serialize)]
pub struct Association {
    pub authenticator_type: &'static str,
    pub secret: String,
    pub barcode_uri: String,
    /// Only with the user's first factor: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// `POST /mfa/associate` with `authenticator_types: ["otp"]`: a new TOTP
/// authenticator, active once a first code from it completes the login.
pub async fn associate(
    assent: &Assent,
    client: &ClientRow,
    token: &MfaTokenRow,
    authenticator_types: &[String],
) -> Result<Association, OAuthError> {
    match authenticator_types {
        [kind] if kind == "otp" => {}
        [kind] if kind == "oob" => {
            return Err(OAuthError::invalid_request(
                "authenticator_types oob is not offered yet: associate otp",
            ))
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "authenticator_types must be [\"otp\"]",
            ))
        }
    }
    let user = assent
        .store
        .user(&token.user_sub)
        .await?
        .ok_or_else(invalid_mfa_token)?;
    let existing = assent.store.authenticators(&user.sub).await?;
    let secret = random_bytes(TOTP_SECRET_BYTES);
    let id = format!("totp|dev_{}", crate::secrets::random_token(12));
    let now = assent.clock.now_ms();
    assent
        .store
        .insert_authenticator(&AuthenticatorRow {
            id,
            user_sub: user.sub.clone(),
            kind: AuthenticatorKind::Otp,
            oob_channel: None,
            name: None,
            secret_sealed: Some(assent.keys.seal_message(&secret)),
            last_step: None,
            active: false,
            created_at: now,
        })
        .await?;
    let recovery_codes = if existing.iter().any(|a| a.active) {
        None
    } else {
        Some(vec![new_recovery_code(assent, &user.sub).await?])
    };
    let encoded = data_encoding::BASE32_NOPAD.encode(&secret);
    Ok(Association {
        authenticator_type: "otp",
        barcode_uri: otpauth_uri(&assent.endpoints.issuer, &client.name, &user, &encoded),
        secret: encoded,
        recovery_codes,
    })
}

/// The `otpauth://` URI authenticator apps scan (Key Uri Format): labelled
/// with the issuer's host and the user's address or id.
fn otpauth_uri(issuer: &str, client_name: &str, user: &UserRow, secret: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // Unreserved characters stay as they are (RFC 3986 2.3), as apps show them.
    const PART: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'_')
        .remove(b'~');
    let host = reqwest::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| client_name.to_string());
    let account = user.email.clone().unwrap_or_else(|| user.sub.clone());
    let host_part = utf8_percent_encode(&host, PART);
    format!(
        "otpauth://totp/{host_part}:{}?secret={secret}&issuer={host_part}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
        utf8_percent_encode(&account, PART),
    )
}

/// A new recovery code for the user, replacing any other (Auth0 keeps one).
async fn new_recovery_code(assent: &Assent, user_sub: &str) -> Result<String, OAuthError> {
    // 24 characters of an unambiguous alphabet: 120 bits, easy to copy.
    let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let code: String = random_bytes(24)
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect();
    let digest = recovery_digest(assent, &code);
    assent
        .store
        .replace_recovery_codes(user_sub, &[digest], assent.clock.now_ms())
        .await?;
    Ok(code)
}

fn recovery_digest(assent: &Assent, code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    assent.keys.keyed_digest("mfa recovery code", &normalized)
}

/// What `POST /mfa/challenge` answers.
#[derive(Debug, Serialize)]
pub struct ChallengeAnswer {
    pub challenge_type: &'static str,
}

/// `POST /mfa/challenge`: for a TOTP factor there is nothing to send; the
/// answer says to ask the user for a code.
pub async fn challenge(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
) -> Result<ChallengeAnswer, OAuthError> {
    let token = live_token(assent, mfa_token_param(params)?, Some(&client.client_id)).await?;
    let types: Vec<&str> = params
        .get("challenge_type")
        .unwrap_or("otp oob")
        .split(' ')
        .filter(|t| !t.is_empty())
        .collect();
    if types.iter().any(|t| !matches!(*t, "otp" | "oob")) {
        return Err(OAuthError::invalid_request(
            "challenge_type must be otp and/or oob",
        ));
    }
    let authenticators = assent.store.authenticators(&token.user_sub).await?;
    let named = params.get("authenticator_id");
    let usable = authenticators
        .iter()
        .any(|a| a.kind == AuthenticatorKind::Otp && named.is_none_or(|id| id == a.id));
    if usable && types.contains(&"otp") {
        return Ok(ChallengeAnswer {
            challenge_type: "otp",
        });
    }
    Err(OAuthError::invalid_request(
        "the user has no authenticator for this challenge: associate one first",
    ))
}

/// Refuses the MFA grants while the user is locked out; `count` adds this
/// failure first. Reaching the limit is an event for the operator.
async fn failures(assent: &Assent, user_sub: &str, count: bool) -> Result<(), OAuthError> {
    let now = assent.clock.now_ms();
    let key = assent.keys.keyed_digest("mfa failures", user_sub);
    let window = assent
        .store
        .bump_passwordless_counter(&key, i64::from(count), now, FAILURE_WINDOW_MS)
        .await?;
    if window.count >= FAILURES_PER_WINDOW {
        if count && window.count == FAILURES_PER_WINDOW {
            tracing::warn!(user = user_sub, "MFA locked out after repeated wrong codes");
            metrics::counter!("assent_mfa_lockouts_total").increment(1);
        }
        let retry = (window.window_start + FAILURE_WINDOW_MS - now).max(1000) / 1000;
        return Err(OAuthError::too_many_attempts(
            "too many wrong codes: the second factor is locked, try again later",
            retry as u64,
        ));
    }
    Ok(())
}

fn require_grant(client: &ClientRow, grant: &str) -> Result<(), OAuthError> {
    if issuance::client_has_grant(client, grant) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(format!(
            "this client is not allowed to use the {grant} grant"
        )))
    }
}

/// The current TOTP time step.
fn time_step(assent: &Assent) -> i64 {
    assent.clock.now_secs() / TOTP_STEP_SECS as i64
}

/// The step (now, or one either side for clock drift) whose code `otp` is.
fn matching_step(secret: &[u8], otp: &str, now_step: i64) -> Option<i64> {
    let totp = TOTP::new(
        Algorithm::SHA1,
        TOTP_DIGITS,
        1,
        TOTP_STEP_SECS,
        secret.to_vec(),
    )
    .ok()?;
    [now_step - 1, now_step, now_step + 1]
        .into_iter()
        .find(|step| {
            *step >= 0 && constant_time_eq(&totp.generate(*step as u64 * TOTP_STEP_SECS), otp)
        })
}

/// `/oauth/token` with `http://auth0.com/oauth/grant-type/mfa-otp`.
pub async fn otp_grant(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, MFA_OTP_GRANT)?;
    let presented = mfa_token_param(params)?;
    let otp = params
        .get("otp")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter otp"))?;
    let token = live_token(assent, presented, Some(&client.client_id)).await?;
    failures(assent, &token.user_sub, false).await?;
    let step = time_step(assent);
    let mut accepted = false;
    if otp.len() == TOTP_DIGITS {
        for a in assent.store.authenticators(&token.user_sub).await? {
            if a.kind != AuthenticatorKind::Otp {
                continue;
            }
            let Some(sealed) = &a.secret_sealed else {
                continue;
            };
            let secret = assent.keys.open_message(sealed).map_err(|e| {
                tracing::error!(error = %e, authenticator = %a.id, "a TOTP secret does not open");
                OAuthError::server_error()
            })?;
            if let Some(matched) = matching_step(&secret, otp, step) {
                // Once per step: a code seen over someone's shoulder is spent.
                accepted = assent.store.accept_totp_step(&a.id, matched).await?;
                break;
            }
        }
    }
    if !accepted {
        failures(assent, &token.user_sub, true).await?;
        return Err(OAuthError::invalid_grant("Invalid otp_code."));
    }
    complete(assent, client, presented, "otp").await
}

/// `/oauth/token` with `http://auth0.com/oauth/grant-type/mfa-recovery-code`:
/// the code is spent and a new one answered with the tokens.
pub async fn recovery_code_grant(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
) -> Result<RecoveryTokens, OAuthError> {
    require_grant(client, MFA_RECOVERY_CODE_GRANT)?;
    let presented = mfa_token_param(params)?;
    let code = params
        .get("recovery_code")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter recovery_code"))?;
    let token = live_token(assent, presented, Some(&client.client_id)).await?;
    failures(assent, &token.user_sub, false).await?;
    let now = assent.clock.now_ms();
    let used = code.len() <= 64
        && assent
            .store
            .use_recovery_code(&token.user_sub, &recovery_digest(assent, code), now)
            .await?;
    if !used {
        failures(assent, &token.user_sub, true).await?;
        return Err(OAuthError::invalid_grant("Invalid recovery_code."));
    }
    let tokens = complete(assent, client, presented, "recovery-code").await?;
    let recovery_code = new_recovery_code(assent, &token.user_sub).await?;
    Ok(RecoveryTokens {
        tokens,
        recovery_code,
    })
}

/// Tokens plus the recovery code that replaces the one used.
#[derive(Debug, Serialize)]
pub struct RecoveryTokens {
    #[serde(flatten)]
    pub tokens: TokenResponse,
    pub recovery_code: String,
}

/// Spends the `mfa_token` and issues what the first factor asked for, with
/// `mfa` and the second factor's method added to `amr`. The user must still
/// be allowed in: a block or a lockout since the first factor stops it.
async fn complete(
    assent: &Assent,
    client: &ClientRow,
    presented: &str,
    method: &str,
) -> Result<TokenResponse, OAuthError> {
    let now = assent.clock.now_ms();
    let token = assent
        .store
        .spend_mfa_token(&sha256_hex(presented), &client.client_id, now)
        .await?
        .ok_or_else(invalid_mfa_token)?;
    let user = assent
        .store
        .user(&token.user_sub)
        .await?
        .filter(|u| !u.blocked)
        .ok_or_else(|| OAuthError::invalid_grant("the user is blocked"))?;
    let mut amr: Vec<String> = serde_json::from_str(&token.first_amr).unwrap_or_default();
    for added in ["mfa", method] {
        if !amr.iter().any(|m| m == added) {
            amr.push(added.to_string());
        }
    }
    let amr = serde_json::to_string(&amr).expect("strings serialize");
    let grant = Grant {
        user_sub: &user.sub,
        client_id: &client.client_id,
        scope: &token.scope,
        audience: token.audience.as_deref(),
        authorization_details: None,
        acr: None,
        amr: Some(&amr),
        auth_time: now / 1000,
        auth_req_id: None,
        nonce: token.nonce.as_deref(),
        id_token_claims: None,
    };
    issuance::issue(assent, client, &grant, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otpauth_uris_name_the_issuer_host_and_the_user() {
        let user = UserRow {
            sub: "auth0|bob".into(),
            email: Some("bob+mfa@example.com".into()),
            email_verified: true,
            phone_number: None,
            phone_verified: false,
            name: None,
            blocked: false,
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(
            otpauth_uri("https://login.example.com/", "Shop", &user, "ABC"),
            "otpauth://totp/login.example.com:bob%2Bmfa%40example.com?secret=ABC\
             &issuer=login.example.com&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn totp_matches_rfc_6238_and_allows_one_step_of_drift() {
        // RFC 6238 Appendix B, SHA-1 seed, T = 59 s: 94287082 (8 digits);
        // its last six digits are the 6-digit code.
        let secret = b"12345678901234567890";
        let step = 59 / 30;
        assert_eq!(matching_step(secret, "287082", step), Some(step));
        assert_eq!(matching_step(secret, "287082", step + 1), Some(step));
        assert_eq!(matching_step(secret, "287082", step + 2), None);
        assert_eq!(matching_step(secret, "000000", step), None);
    }
}
