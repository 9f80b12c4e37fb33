//! `assent-server client create|update|list|delete`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::output::{self, Table};
use crate::{
    ciba::{CIBA_GRANT, REFRESH_GRANT},
    client_auth::AuthMethod,
    clients::NewClient,
    keys::TokenAlg,
    operations::{views, ClientUpdate, Operator},
    storage::{ClientChanges, MfaPolicy, NumberMatching, UserVerificationPolicy},
};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; a client secret is printed once and only its digest is kept.
    Create {
        /// Name shown to users on their devices.
        #[arg(long)]
        name: String,
        /// client_secret_basic, client_secret_post or private_key_jwt.
        #[arg(long, default_value = "client_secret_basic", value_parser = parse_auth_method)]
        auth_method: AuthMethod,
        /// Public JWKS file (required for private_key_jwt).
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// Algorithm of ID and access tokens for this client.
        #[arg(long, default_value = "RS256", value_parser = parse_alg)]
        id_token_signed_response_alg: TokenAlg,
        /// Comma-separated grant types: urn:openid:params:grant-type:ciba,
        /// refresh_token, http://auth0.com/oauth/grant-type/passwordless/otp
        /// (passwordless login), authorization_code (magic links).
        #[arg(long, value_delimiter = ',', default_values_t = [CIBA_GRANT.to_string(), REFRESH_GRANT.to_string()])]
        grant_types: Vec<String>,
        #[command(flatten)]
        shown: ShownArgs,
        #[command(flatten)]
        login: LoginArgs,
        /// Print JSON (with the secret) for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Change a client's name, approval policy, website, logo, grant types or passwordless settings.
    Update {
        client_id: String,
        /// Name shown to users on their devices.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        shown: ShownArgs,
        /// Remove the website.
        #[arg(long, conflicts_with = "website")]
        no_website: bool,
        /// Remove the logo.
        #[arg(long, conflicts_with = "logo_url")]
        no_logo: bool,
        /// Comma-separated grant types, replacing the current ones.
        #[arg(long, value_delimiter = ',')]
        grant_types: Option<Vec<String>>,
        #[command(flatten)]
        login: LoginArgs,
        /// Remove every redirect URI.
        #[arg(long, conflicts_with = "redirect_uri")]
        no_redirect_uris: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and everything issued to it.
    Delete { client_id: String },
}

/// What approving a client's requests needs, and what users see of it.
#[derive(Debug, clap::Args)]
pub struct ShownArgs {
    /// Whether approving needs the code the client shows the user
    /// (`match_code` in the /bc-authorize answer): required (the default
    /// for new clients) or off, for a client that cannot show a code.
    #[arg(long, value_parser = parse_stored::<NumberMatching>)]
    number_matching: Option<NumberMatching>,
    /// Whether approving needs the user's verification on the device (PIN,
    /// fingerprint): required or optional (the default for new clients).
    #[arg(long, value_parser = parse_stored::<UserVerificationPolicy>)]
    user_verification: Option<UserVerificationPolicy>,
    /// The client's website (https), shown to users.
    #[arg(long)]
    website: Option<String>,
    /// A PNG, JPEG or WebP logo (at most 256 KiB), fetched now by the server
    /// and served from it; devices never load it from this URL.
    #[arg(long)]
    logo_url: Option<String>,
}

/// Passwordless login settings.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// A redirect URI magic links may send the user's browser to (matched
    /// exactly); repeat for several. On update, replaces the current ones.
    #[arg(long)]
    redirect_uri: Vec<String>,
    /// Whether the back-end OTP API answers the one-time code it sent
    /// (`code` in its answer): for a back end that delivers codes itself.
    /// The code is a secret: off by default.
    #[arg(long)]
    otp_code_in_response: Option<bool>,
    /// Whether logins (passwordless today) need a second factor: off (the
    /// default), if-enrolled (users who have one use it) or required
    /// (users without one enroll one first), answered with Auth0's
    /// mfa_required.
    #[arg(long, value_parser = parse_stored::<MfaPolicy>)]
    mfa: Option<MfaPolicy>,
}

pub(super) fn parse_stored<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

fn parse_auth_method(s: &str) -> Result<AuthMethod, String> {
    s.parse()
}

fn parse_alg(s: &str) -> Result<TokenAlg, String> {
    s.parse().map_err(|e: anyhow::Error| e.to_string())
}

pub async fn run(op: &Operator<'_>, cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create {
            name,
            auth_method,
            jwks,
            id_token_signed_response_alg,
            grant_types,
            shown,
            login,
            json,
        } => {
            let jwks = jwks
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))
                })
                .transpose()?;
            let new = NewClient {
                name,
                auth_method,
                jwks,
                id_token_signed_response_alg,
                grant_types,
                number_matching: shown.number_matching.unwrap_or(NumberMatching::Required),
                user_verification: shown
                    .user_verification
                    .unwrap_or(UserVerificationPolicy::Optional),
                client_uri: shown.website,
                redirect_uris: login.redirect_uri,
                otp_code_in_response: login.otp_code_in_response.unwrap_or(false),
                mfa_policy: login.mfa.unwrap_or(MfaPolicy::Off),
            };
            let client = op.create_client(new, shown.logo_url.as_deref()).await?;
            if json {
                let mut out = views::client(&client.row);
                if let Some(secret) = &client.secret {
                    out["client_secret"] = json!(secret);
                }
                output::json(&out)
            } else {
                let mut text = format!("client_id:     {}", client.row.client_id);
                if let Some(secret) = &client.secret {
                    text.push_str(&format!(
                        "\nclient_secret: {secret}\n(the secret is shown only now: store it safely)"
                    ));
                }
                output::text(&text)
            }
        }
        ClientCommand::Update {
            client_id,
            name,
            shown,
            no_website,
            no_logo,
            grant_types,
            login,
            no_redirect_uris,
            json,
        } => {
            let changes = ClientChanges {
                name,
                number_matching: shown.number_matching,
                user_verification: shown.user_verification,
                client_uri: if no_website {
                    Some(None)
                } else {
                    shown.website.map(Some)
                },
                grant_types: grant_types.map(|g| g.join(" ")),
                redirect_uris: if no_redirect_uris {
                    Some(String::new())
                } else {
                    (!login.redirect_uri.is_empty()).then(|| login.redirect_uri.join(" "))
                },
                otp_code_in_response: login.otp_code_in_response,
                mfa_policy: login.mfa,
            };
            let logo_url = if no_logo {
                Some(None)
            } else {
                shown.logo_url.map(Some)
            };
            let row = op
                .update_client(&client_id, ClientUpdate { changes, logo_url })
                .await?;
            if json {
                output::json(&views::client(&row))
            } else {
                output::text(&format!(
                    "updated client {client_id} (servers apply the change within {} s)",
                    crate::state::CLIENT_CACHE_TIME_TO_LIVE.as_secs()
                ))
            }
        }
        ClientCommand::List { json } => {
            let clients = op.clients().await?;
            if json {
                return output::json(&clients.iter().map(views::client).collect());
            }
            let mut table = Table::new(&[
                "CLIENT_ID",
                "AUTH_METHOD",
                "ALG",
                "MATCHING",
                "USER_VERIFICATION",
                "NAME",
            ]);
            for c in clients {
                table.row(vec![
                    c.client_id,
                    c.token_endpoint_auth_method,
                    c.id_token_signed_response_alg,
                    c.number_matching.to_string(),
                    c.user_verification.to_string(),
                    c.name,
                ]);
            }
            table.print()
        }
        ClientCommand::Delete { client_id } => {
            op.delete_client(&client_id).await?;
            output::text(&format!("deleted client {client_id}"))
        }
    }
}
