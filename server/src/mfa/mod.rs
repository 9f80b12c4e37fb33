//! Auth0's MFA API: when a login needs a second factor ([`gate`]), the
//! `mfa_token` it answers `mfa_required` with, who may call the API
//! ([`Caller`]), and completing the login ([`complete`]). The factors and
//! their enrollment are in [`authenticators`], challenges in [`challenge`],
//! the `/oauth/token` grants in [`grants`].
//!
//! Second factors: Assent devices (push, the Guardian factor: every
//! enrolled device of the user is one), TOTP apps (RFC 6238), codes sent
//! by SMS or e-mail, and a recovery code that replaces itself when used,
//! as Auth0's does. Wrong codes count per user across the fleet (in the
//! database); past the limit the user is locked out of the MFA grants for
//! the window, and an MFA login in flight cannot complete either.
//!
//! Who may do what, as Auth0 has it: the `mfa_token` (the first factor
//! only) may list the factors, challenge them, and enroll one while the
//! user has none; enrolling another or deleting one needs an access token
//! of the MFA API (`{issuer}/mfa/`, scopes `enroll`, `read:authenticators`,
//! `remove:authenticators`), which only a login that passed MFA gets, so
//! a stolen password can neither add the thief's factor nor remove the
//! user's.

mod authenticators;
mod challenge;
mod grants;
mod totp;

use crate::{
    error::{OAuthError, OAuthErrorCode},
    issuance,
    secrets::{new_secret, sha256_hex},
    state::Assent,
    storage::{ClientRow, MfaPolicy, MfaTokenRow, UserRow},
    tokens::{self, Grant},
};
use assent_shared::oauth::TokenResponse;

pub use authenticators::{associate, delete, list, Association, AuthenticatorView};
pub use challenge::{challenge, ChallengeAnswer};
pub use grants::{oob_grant, otp_grant, recovery_code_grant, RecoveryTokens};

/// While the key-encryption key is being changed (a previous one is still
/// configured), seals every TOTP secret still under the previous key with
/// the current one, so that the previous key can then be dropped. Run at
/// start-up, as signing keys are resealed; every process of a fleet may
/// run it at once (each row is swapped only from the value it read).
pub async fn reseal_totp_secrets(assent: &Assent) -> anyhow::Result<u64> {
    if !assent.keys.kek_change_under_way() {
        return Ok(0);
    }
    let mut resealed = 0;
    for (id, sealed) in assent.store.totp_secrets().await? {
        let context = totp::seal_context(&id);
        match assent.keys.open_secret(&sealed, &context) {
            Ok((secret, true)) => {
                let fresh = assent.keys.seal_secret(&secret, &context);
                if assent
                    .store
                    .reseal_totp_secret(&id, &sealed, &fresh)
                    .await?
                {
                    resealed += 1;
                }
            }
            Ok((_, false)) => {}
            Err(e) => {
                tracing::error!(authenticator = %id, error = %e, "a TOTP secret does not open")
            }
        }
    }
    if resealed > 0 {
        tracing::info!(
            resealed,
            "sealed TOTP secrets with the current key-encryption key"
        );
    }
    Ok(resealed)
}

pub const MFA_OTP_GRANT: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
pub const MFA_OOB_GRANT: &str = "http://auth0.com/oauth/grant-type/mfa-oob";
pub const MFA_RECOVERY_CODE_GRANT: &str = "http://auth0.com/oauth/grant-type/mfa-recovery-code";

/// The scopes of the MFA API's access tokens (Auth0's).
pub const MFA_API_SCOPES: [&str; 3] = ["enroll", "read:authenticators", "remove:authenticators"];

/// How long an `mfa_token` is good for (Auth0: ten minutes).
const MFA_TOKEN_TTL_MS: i64 = 10 * 60 * 1000;
/// Wrong MFA codes per user per window before the MFA grants pause.
const FAILURES_PER_WINDOW: i64 = 5;
const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Longest `mfa_token` looked up (ours are 43 characters).
const MAX_MFA_TOKEN_LEN: usize = 256;

/// What a login that passed its first factor is about to be granted.
pub struct FirstFactor<'a> {
    pub user: &'a UserRow,
    pub scope: &'a str,
    pub audience: Option<&'a str>,
    /// RFC 8176 methods of the first factor (JSON array text).
    pub amr: &'a str,
    pub nonce: Option<&'a str>,
}

/// Whether this login needs a second factor: the stricter of the client's
/// and the API's policies; a token of the MFA API itself always does.
/// Answers `mfa_required` with a fresh `mfa_token` when it does, `Ok` when
/// tokens may be issued now.
pub async fn gate(
    assent: &Assent,
    client: &ClientRow,
    first: &FirstFactor<'_>,
) -> Result<(), OAuthError> {
    let api_policy = match first.audience {
        Some(audience) if audience == assent.endpoints.mfa_audience => MfaPolicy::Required,
        Some(audience) => assent.store.api_mfa_policy(audience).await?,
        None => MfaPolicy::Off,
    };
    let needed = match client.mfa_policy.stricter(api_policy) {
        MfaPolicy::Off => false,
        MfaPolicy::Required => true,
        MfaPolicy::IfEnrolled => assent.store.has_second_factor(&first.user.sub).await?,
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

/// Checks the scopes asked for with the MFA API's audience: its own and
/// the OpenID ones. (Its tokens are never refreshed: the caller drops
/// `offline_access`, as every new one needs a second factor.)
pub fn check_mfa_api_scopes(scopes: &[String]) -> Result<(), OAuthError> {
    match scopes.iter().find(|s| {
        !(MFA_API_SCOPES.contains(&s.as_str()) || crate::apis::OPENID_SCOPES.contains(&s.as_str()))
    }) {
        None => Ok(()),
        Some(scope) => {
            let shown: String = scope.chars().take(64).collect();
            Err(OAuthError::invalid_scope(format!(
                "scope {shown} is not one of the MFA API's ({})",
                MFA_API_SCOPES.join(" ")
            )))
        }
    }
}

/// The live `mfa_token` presented, of this client when one is named.
pub async fn live_token(
    assent: &Assent,
    token: &str,
    client_id: Option<&str>,
) -> Result<MfaTokenRow, OAuthError> {
    if token.len() > MAX_MFA_TOKEN_LEN {
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

fn mfa_token_param(params: &crate::params::Params) -> Result<&str, OAuthError> {
    params
        .get("mfa_token")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter mfa_token"))
}

/// Who calls `/mfa/associate` or `/mfa/authenticators` with a Bearer token.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An `mfa_token` (and its digest): the user passed the first factor
    /// only.
    MfaToken(MfaTokenRow, String),
    /// An access token of the MFA API: the user passed MFA.
    AccessToken {
        user_sub: String,
        client_id: String,
        scope: String,
    },
}

impl Caller {
    /// The Bearer token presented: an access token of the MFA API (a JWT)
    /// or an `mfa_token`. Any refusal is the Bearer error a protected
    /// resource answers; a failure of the server stays one.
    pub async fn from_bearer(assent: &Assent, token: &str) -> Result<Caller, OAuthError> {
        let invalid = |why| OAuthError::bearer(OAuthErrorCode::InvalidToken, why);
        if token.contains('.') {
            let claims = tokens::verify_access_token(
                &assent.keys.get(),
                &assent.endpoints,
                token,
                assent.clock.now_secs(),
            )
            .map_err(|rejection| invalid(rejection.description()))?;
            // Only logins that passed MFA get these; a token without `mfa`
            // in its methods was not issued for this (an API registered
            // under the same identifier by mistake, say).
            if !claims.aud.contains(&assent.endpoints.mfa_audience)
                || !claims.amr.iter().any(|m| m == "mfa")
            {
                return Err(invalid("the access token is not for the MFA API"));
            }
            let user = assent.store.user(&claims.sub).await?;
            if user.is_none_or(|u| u.blocked) {
                return Err(invalid("the user is blocked or no longer exists"));
            }
            return Ok(Caller::AccessToken {
                user_sub: claims.sub,
                client_id: claims.client_id,
                scope: claims.scope,
            });
        }
        match live_token(assent, token, None).await {
            Ok(row) => Ok(Caller::MfaToken(row, sha256_hex(token))),
            Err(e) if e.code == OAuthErrorCode::ServerError => Err(e),
            Err(_) => Err(invalid("the mfa_token is unknown, spent or expired")),
        }
    }

    pub fn user_sub(&self) -> &str {
        match self {
            Caller::MfaToken(t, _) => &t.user_sub,
            Caller::AccessToken { user_sub, .. } => user_sub,
        }
    }

    pub fn client_id(&self) -> &str {
        match self {
            Caller::MfaToken(t, _) => &t.client_id,
            Caller::AccessToken { client_id, .. } => client_id,
        }
    }

    /// The digest of the `mfa_token`, whose login an `oob_code` completes.
    pub fn mfa_token_sha256(&self) -> Option<&str> {
        match self {
            Caller::MfaToken(_, digest) => Some(digest),
            Caller::AccessToken { .. } => None,
        }
    }

    /// Whether an access token was granted `scope` (an `mfa_token` never
    /// carries scopes of the MFA API).
    fn has_scope(&self, scope: &str) -> bool {
        match self {
            Caller::MfaToken(..) => false,
            Caller::AccessToken { scope: granted, .. } => granted.split(' ').any(|s| s == scope),
        }
    }

    /// Refuses a caller without `scope`, unless an `mfa_token` is enough.
    fn require(&self, scope: &'static str, mfa_token_enough: bool) -> Result<(), OAuthError> {
        match self {
            Caller::MfaToken(..) if mfa_token_enough => Ok(()),
            _ if self.has_scope(scope) => Ok(()),
            Caller::MfaToken(..) => Err(OAuthError::bearer(
                OAuthErrorCode::InsufficientScope,
                "this needs an access token of the MFA API (audience: the issuer's /mfa/), which \
                 only a login that passed MFA gets: the mfa_token is not enough",
            )),
            Caller::AccessToken { .. } => Err(OAuthError::bearer(
                OAuthErrorCode::InsufficientScope,
                "the access token was not granted the scope this needs",
            )),
        }
    }
}

/// Refuses the MFA API while the user is locked out by wrong codes.
async fn locked(assent: &Assent, user_sub: &str) -> Result<(), OAuthError> {
    let now = assent.clock.now_ms();
    let window = assent
        .store
        .bump_passwordless_counter(&failure_key(assent, user_sub), 0, now, FAILURE_WINDOW_MS)
        .await?;
    if window.count >= FAILURES_PER_WINDOW {
        return Err(locked_out(window.window_start + FAILURE_WINDOW_MS - now));
    }
    Ok(())
}

fn failure_key(assent: &Assent, user_sub: &str) -> String {
    assent.keys.keyed_digest("mfa failures", user_sub)
}

fn locked_out(retry_ms: i64) -> OAuthError {
    OAuthError::too_many_attempts(
        "too many wrong codes: the second factor is locked, try again later",
        (retry_ms.max(1000) / 1000) as u64,
    )
}

/// One try of a code (TOTP, sent, recovery), counted before the code is
/// checked: concurrent tries each take a slot in the database first, so a
/// burst of guesses in parallel cannot outrun the limit.
struct Attempt {
    key: String,
    window_start: i64,
    count: i64,
}

impl Attempt {
    /// Reserves a try for the user, or refuses when the window is full.
    async fn reserve(assent: &Assent, user_sub: &str) -> Result<Attempt, OAuthError> {
        let now = assent.clock.now_ms();
        let key = failure_key(assent, user_sub);
        let window = assent
            .store
            .bump_passwordless_counter(&key, 1, now, FAILURE_WINDOW_MS)
            .await?;
        if window.count > FAILURES_PER_WINDOW {
            return Err(locked_out(window.window_start + FAILURE_WINDOW_MS - now));
        }
        Ok(Attempt {
            key,
            window_start: window.window_start,
            count: window.count,
        })
    }

    /// The code was right: the try does not count.
    async fn right(self, assent: &Assent) -> Result<(), OAuthError> {
        assent
            .store
            .refund_passwordless_counter(&self.key, self.window_start)
            .await?;
        Ok(())
    }

    /// The code was wrong: `wrong` as the answer, or the lockout once this
    /// was the last try, which the operator is told of.
    fn wrong(self, assent: &Assent, user_sub: &str, wrong: OAuthError) -> OAuthError {
        if self.count < FAILURES_PER_WINDOW {
            return wrong;
        }
        let now = assent.clock.now_ms();
        let until = self.window_start + FAILURE_WINDOW_MS;
        if self.count == FAILURES_PER_WINDOW {
            assent
                .alerts
                .mfa_locked_out(&assent.endpoints.issuer, user_sub, until, now);
        }
        locked_out(until - now)
    }
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

/// Spends the `mfa_token` and issues what the first factor asked for, with
/// `mfa` and the second factor's `methods` added to `amr`.
async fn complete(
    assent: &Assent,
    client: &ClientRow,
    presented: &str,
    methods: &[&str],
) -> Result<TokenResponse, OAuthError> {
    let now = assent.clock.now_ms();
    let token_sha256 = sha256_hex(presented);
    let token = assent
        .store
        .spend_mfa_token(&token_sha256, &client.client_id, now)
        .await?
        .ok_or_else(invalid_mfa_token)?;
    // The user's confirmed factor: first enrollments other logins left
    // behind can no longer be completed.
    assent
        .store
        .settle_first_factor(&token.user_sub, &token_sha256, now)
        .await?;
    issue_after_mfa(assent, client, &token, methods).await
}

/// Issues the tokens of a login whose `mfa_token` was just spent. The user
/// must still be allowed in: a block or a lockout since the first factor
/// stops the login.
async fn issue_after_mfa(
    assent: &Assent,
    client: &ClientRow,
    token: &MfaTokenRow,
    methods: &[&str],
) -> Result<TokenResponse, OAuthError> {
    let now = assent.clock.now_ms();
    locked(assent, &token.user_sub).await?;
    let user = assent
        .store
        .user(&token.user_sub)
        .await?
        .filter(|u| !u.blocked)
        .ok_or_else(|| OAuthError::invalid_grant("the user is blocked"))?;
    let mut amr: Vec<String> = serde_json::from_str(&token.first_amr).unwrap_or_default();
    for added in std::iter::once("mfa").chain(methods.iter().copied()) {
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
