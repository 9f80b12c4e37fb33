//! The absolute URLs this server answers on, derived from its issuer.

#[derive(Debug, Clone)]
pub struct Endpoints {
    pub issuer: String,
    pub token: String,
    pub backchannel_authentication: String,
    pub userinfo: String,
    pub jwks: String,
    pub revocation: String,
    pub passwordless_start: String,
    /// Where the links of magic-link e-mails point (`GET`, token in the query).
    pub passwordless_link: String,
    /// The back-end one-time login API (magic links and passcodes).
    pub backend_auth: String,
    /// The audience of access tokens for the MFA API (Auth0's
    /// `https://{domain}/mfa/`).
    pub mfa_audience: String,
}

impl Endpoints {
    pub fn new(issuer: &str) -> Self {
        let base = issuer.trim_end_matches('/');
        Self {
            issuer: issuer.to_string(),
            token: format!("{base}/oauth/token"),
            backchannel_authentication: format!("{base}/bc-authorize"),
            userinfo: format!("{base}/userinfo"),
            jwks: format!("{base}/.well-known/jwks.json"),
            revocation: format!("{base}/oauth/revoke"),
            passwordless_start: format!("{base}/passwordless/start"),
            passwordless_link: format!("{base}/passwordless/link"),
            backend_auth: format!("{base}/backend-auth"),
            mfa_audience: format!("{base}/mfa/"),
        }
    }

    /// Whether `iss` names this issuer, tolerating a trailing slash (Auth0
    /// writes `https://TENANT/`).
    pub fn is_issuer(&self, iss: &str) -> bool {
        iss.trim_end_matches('/') == self.issuer.trim_end_matches('/')
    }

    /// The URL a device signs for a device-API `path` (`htu`): the issuer is
    /// the base URL devices were given at enrollment.
    pub fn device_url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }
}
