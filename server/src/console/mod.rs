//! The consoles' domain: who may use them, signing in by approving on
//! one's own device, sessions, and agents' caller verifications. The
//! HTTP side (`http::console`) renders pages and calls these.
//!
//! The console is a registered client of the server ([`CONSOLE_CLIENT_ID`],
//! named "Assent console" until an operator renames it): its sign-in and
//! verification requests are back-channel requests like any other, with
//! number matching, the same flood limits, and the same device screens.

mod sessions;
mod sign_in;
mod verify;

pub use sessions::{csrf_matches, end_session, session, sign_out_everywhere, Session};
pub use sign_in::{
    create_login_link, redeem_login_link, sign_in_status, start_sign_in, SignIn, SignInStatus,
    LOGIN_LINK_TTL_SECS,
};
pub use verify::{
    binding_template, recent_verifications, set_binding_template, start_verification, verification,
    verification_status, Verification, VerificationStatus, DEFAULT_BINDING_TEMPLATE,
};

use std::{sync::Arc, time::Duration};

use crate::{
    ciba::CIBA_GRANT,
    client_auth::{AuthMethod, AuthenticatedClient},
    clients::{self, NewClient},
    error::OAuthError,
    keys::TokenAlg,
    state::Assent,
    storage::{MfaPolicy, NumberMatching, UserVerificationPolicy},
    users::Role,
};

/// The console's own client.
pub const CONSOLE_CLIENT_ID: &str = "assent-console";

/// A session ends after this long without a request...
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// ...and this long after sign-in, whatever happens.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// Which console pages a role opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `/console/verify`: agents (and admins).
    Verify,
    /// `/console/`: operators and admins.
    Operate,
    /// Admin tokens and key rotation: admins.
    Administer,
}

impl Role {
    pub fn may(self, area: Area) -> bool {
        matches!(
            (self, area),
            (Role::Admin, _) | (Role::Operator, Area::Operate) | (Role::Agent, Area::Verify)
        )
    }

    /// Where a signed-in person starts.
    pub fn home(self) -> &'static str {
        match self {
            Role::Agent => "/console/verify",
            Role::Admin | Role::Operator => "/console/",
        }
    }
}

/// The console's client, registered on first use: CIBA only, number
/// matching required.
pub async fn client(assent: &Assent) -> Result<AuthenticatedClient, OAuthError> {
    let row = clients::ensure_builtin(
        &assent.store,
        CONSOLE_CLIENT_ID,
        NewClient {
            name: "Assent console".into(),
            // A secret is made and forgotten: nobody can call as the console.
            auth_method: AuthMethod::ClientSecretBasic,
            jwks: None,
            id_token_signed_response_alg: TokenAlg::ES256,
            grant_types: vec![CIBA_GRANT.to_string()],
            number_matching: NumberMatching::Required,
            user_verification: UserVerificationPolicy::Optional,
            client_uri: None,
            redirect_uris: Vec::new(),
            otp_code_in_response: false,
            mfa_policy: MfaPolicy::Off,
        },
    )
    .await?;
    Ok(AuthenticatedClient::internal(Arc::new(row)))
}
