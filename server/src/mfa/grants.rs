//! The `/oauth/token` grants that complete an MFA login: `mfa-otp` (a TOTP
//! code), `mfa-oob` (a push the user approved, a device that enrolled, or
//! a code sent by SMS or e-mail) and `mfa-recovery-code`.

use assent_shared::oauth::TokenResponse;
use serde::Serialize;

use super::{
    authenticators::{fresh_recovery_code, recovery_digest},
    challenge::binding_digest,
    complete, invalid_mfa_token, issue_after_mfa, live_token, locked, mfa_token_param,
    require_grant, totp, Attempt, MFA_OOB_GRANT, MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT,
};
use crate::{
    client_auth::AuthenticatedClient,
    error::OAuthError,
    params::Params,
    secrets::sha256_hex,
    state::Assent,
    storage::{AuthenticatorKind, ClientRow, PollOutcome},
};

/// Longest `oob_code` looked up (ours are 43 characters).
const MAX_OOB_CODE_LEN: usize = 256;

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
    let attempt = Attempt::reserve(assent, &token.user_sub).await?;
    let token_sha256 = sha256_hex(presented);
    let step = totp::step_of(assent.clock.now_secs());
    let mut accepted = false;
    if otp.len() == totp::DIGITS {
        for a in assent.store.authenticators(&token.user_sub).await? {
            if a.kind != AuthenticatorKind::Otp || !a.usable_by(&token_sha256) {
                continue;
            }
            let Some(sealed) = &a.secret_sealed else {
                continue;
            };
            // A secret that does not open (sealed under a key-encryption
            // key that is gone) fails this factor, not the whole grant.
            let Ok((secret, _)) = assent.keys.open_secret(sealed, &totp::seal_context(&a.id))
            else {
                tracing::error!(authenticator = %a.id, "a TOTP secret does not open");
                continue;
            };
            if let Some(matched) = totp::matching_step(&secret, otp, step) {
                // Once per step: a code seen over someone's shoulder is spent.
                accepted = assent.store.accept_totp_step(&a.id, matched).await?;
                break;
            }
        }
    }
    if !accepted {
        let wrong = OAuthError::invalid_grant("Invalid otp_code.");
        return Err(attempt.wrong(assent, &token.user_sub, wrong));
    }
    attempt.right(assent).await?;
    complete(assent, client, presented, &["otp"]).await
}

/// `/oauth/token` with `http://auth0.com/oauth/grant-type/mfa-oob`: polled
/// like CIBA while a push or a device's enrollment waits for the user
/// (`authorization_pending`, `slow_down`), tokens exactly once when it is
/// done; for a code sent by SMS or e-mail, the code is the `binding_code`.
pub async fn oob_grant(
    assent: &Assent,
    authenticated: &AuthenticatedClient,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let client = &*authenticated.row;
    require_grant(client, MFA_OOB_GRANT)?;
    let presented = mfa_token_param(params)?;
    let oob_code = params
        .get("oob_code")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter oob_code"))?;
    let token = live_token(assent, presented, Some(&client.client_id)).await?;
    locked(assent, &token.user_sub).await?;
    if oob_code.len() > MAX_OOB_CODE_LEN {
        return Err(invalid_oob_code());
    }
    let now = assent.clock.now_ms();
    let token_sha256 = sha256_hex(presented);
    let oob_sha256 = sha256_hex(oob_code);
    // A push: the auth_requests row of this login (the same poll as CIBA's).
    if let Some(polled) = assent
        .store
        .poll_auth_request(
            &oob_sha256,
            &client.client_id,
            now,
            authenticated.unconfirmed_secret_sha256(),
            Some(&token_sha256),
        )
        .await?
    {
        answer_poll(polled.last_poll_outcome, polled.poll_interval)?;
        // The device's methods (its key, the user's verification).
        let decided: Vec<String> = polled
            .amr
            .as_deref()
            .and_then(|amr| serde_json::from_str(amr).ok())
            .unwrap_or_default();
        let mut methods: Vec<&str> = decided.iter().map(String::as_str).collect();
        methods.push("oob");
        return complete(assent, client, presented, &methods).await;
    }
    // Not a push: a client authenticated from the cache is confirmed now.
    authenticated.confirm(assent).await?;
    let Some(code) = assent
        .store
        .oob_code(&oob_sha256, &client.client_id, &token_sha256)
        .await?
    else {
        return Err(invalid_oob_code());
    };
    if code.enrollment_ticket_sha256.is_some() {
        // A device enrolling: done when it has spent the enrollment link.
        let Some(polled) = assent.store.poll_enrollment_oob(&oob_sha256, now).await? else {
            return Err(invalid_oob_code());
        };
        answer_poll(polled.last_outcome, polled.poll_interval)?;
        return complete(assent, client, presented, &["swk", "oob"]).await;
    }
    let binding_code = params
        .get("binding_code")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter binding_code"))?;
    let attempt = Attempt::reserve(assent, &token.user_sub).await?;
    let matched = binding_code.len() <= 16
        && assent
            .store
            .redeem_binding_code(
                &oob_sha256,
                &binding_digest(assent, &oob_sha256, binding_code.trim()),
                now,
            )
            .await?;
    if !matched {
        let wrong = OAuthError::invalid_grant("Invalid binding_code.");
        return Err(attempt.wrong(assent, &token.user_sub, wrong));
    }
    attempt.right(assent).await?;
    let method = match code.oob_channel.as_deref() {
        Some("sms") => "sms",
        _ => "otp",
    };
    complete(assent, client, presented, &[method, "oob"]).await
}

/// What a poll that did not win the tokens answers (Auth0's texts).
fn answer_poll(outcome: PollOutcome, interval: i64) -> Result<(), OAuthError> {
    match outcome {
        PollOutcome::Issued => Ok(()),
        PollOutcome::Pending => Err(OAuthError::authorization_pending(
            "Authorization pending: please repeat the request in a few seconds.",
        )),
        PollOutcome::SlowDown => Err(OAuthError::slow_down(interval as u64)),
        PollOutcome::Denied => Err(OAuthError::invalid_grant("MFA Authorization rejected.")),
        PollOutcome::Expired => Err(OAuthError::expired_token("The oob_code has expired.")),
        PollOutcome::Replayed => Err(OAuthError::invalid_grant(
            "the oob_code has already been exchanged for tokens",
        )),
    }
}

fn invalid_oob_code() -> OAuthError {
    OAuthError::invalid_grant("Invalid oob_code.")
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
    let attempt = Attempt::reserve(assent, &token.user_sub).await?;
    // The token is spent, the code used and its replacement stored in one
    // transaction, before anything is issued: a failure in between can
    // neither lose the user's only code nor hand out tokens twice.
    let recovery_code = fresh_recovery_code();
    let redeemed = if code.len() <= 64 {
        assent
            .store
            .redeem_recovery_code(
                &sha256_hex(presented),
                &client.client_id,
                &recovery_digest(code),
                &recovery_digest(&recovery_code),
                assent.clock.now_ms(),
            )
            .await?
    } else {
        None
    };
    let Some(spent) = redeemed else {
        // Wrong, or the token was spent by a concurrent grant meanwhile.
        if live_token(assent, presented, Some(&client.client_id))
            .await
            .is_err()
        {
            attempt.right(assent).await?;
            return Err(invalid_mfa_token());
        }
        let wrong = OAuthError::invalid_grant("Invalid recovery_code.");
        return Err(attempt.wrong(assent, &token.user_sub, wrong));
    };
    attempt.right(assent).await?;
    let tokens = issue_after_mfa(assent, client, &spent, &["recovery-code"]).await?;
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
