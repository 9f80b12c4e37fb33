//! `assent-server api create|list|delete|grant|revoke`: the APIs (resource
//! servers) access tokens may be for, and which clients may ask for them.

use clap::Subcommand;

use super::{
    clients::parse_stored,
    output::{self, Table},
};
use crate::{
    apis::NewApi,
    operations::{views, ApiGrant, Operator},
    storage::MfaPolicy,
};

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Register an API: the identifier clients name as `audience` and the
    /// scopes it defines.
    Create {
        /// An absolute URI, e.g. https://api.bank.example (never a client id).
        #[arg(long)]
        identifier: String,
        /// A name for operators.
        #[arg(long)]
        name: String,
        /// A scope the API defines; repeat, or separate with spaces.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Whether logins for tokens of this API need a second factor: off,
        /// if-enrolled or required (the stricter of this and the client's
        /// policy applies).
        #[arg(long, value_parser = parse_stored::<MfaPolicy>, default_value = "off")]
        mfa: MfaPolicy,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Change an API's MFA policy.
    Update {
        identifier: String,
        /// off, if-enrolled or required.
        #[arg(long, value_parser = parse_stored::<MfaPolicy>)]
        mfa: MfaPolicy,
    },
    /// List the APIs, their scopes and the clients granted them.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Delete an API and every grant of it (issued tokens stay valid until they expire).
    Delete { identifier: String },
    /// Let a client ask for tokens for an API, with some of its scopes
    /// (replaces the client's earlier grant of that API).
    Grant {
        /// The API's identifier.
        identifier: String,
        #[arg(long)]
        client: String,
        /// A granted scope (one the API defines); repeat, or separate with spaces.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Take an API away from a client (its refresh tokens for it stop working).
    Revoke {
        /// The API's identifier.
        identifier: String,
        #[arg(long)]
        client: String,
    },
}

pub async fn run(op: &Operator<'_>, cmd: ApiCommand) -> anyhow::Result<()> {
    match cmd {
        ApiCommand::Create {
            identifier,
            name,
            scopes,
            mfa,
            json,
        } => {
            let api = op
                .create_api(NewApi {
                    identifier,
                    name,
                    scopes,
                    mfa_policy: mfa,
                })
                .await?;
            if json {
                return output::json(&views::api(&api, &[]));
            }
            output::text(&format!("registered API {}", api.identifier))
        }
        ApiCommand::Update { identifier, mfa } => {
            op.set_api_mfa(&identifier, mfa).await?;
            output::text(&format!("API {identifier}: mfa {}", mfa.as_str()))
        }
        ApiCommand::List { json } => {
            let (apis, grants) = op.apis().await?;
            if json {
                return output::json(&apis.iter().map(|api| views::api(api, &grants)).collect());
            }
            let mut table = Table::new(&["IDENTIFIER", "NAME", "SCOPES", "MFA", "GRANTED TO"]);
            for api in apis {
                let granted: Vec<String> = grants
                    .iter()
                    .filter(|g| g.api_identifier == api.identifier)
                    .map(|g| format!("{} ({})", g.client_id, or_none(&g.scopes)))
                    .collect();
                table.row(vec![
                    api.identifier,
                    api.name,
                    or_none(&api.scopes),
                    api.mfa_policy.as_str().to_string(),
                    granted.join(", "),
                ]);
            }
            table.print()
        }
        ApiCommand::Delete { identifier } => {
            op.delete_api(&identifier).await?;
            output::text(&format!("deleted API {identifier} and its grants"))
        }
        ApiCommand::Grant {
            identifier,
            client,
            scopes,
            json,
        } => {
            let grant = op
                .grant_api(ApiGrant {
                    api: &identifier,
                    client_id: &client,
                    scopes: &scopes,
                })
                .await?;
            if json {
                return output::json(&views::grant(&grant));
            }
            output::text(&format!(
                "client {} may ask for tokens for {} with scopes: {}",
                grant.client_id,
                grant.api_identifier,
                or_none(&grant.scopes)
            ))
        }
        ApiCommand::Revoke { identifier, client } => {
            op.revoke_api_grant(&identifier, &client).await?;
            output::text(&format!(
                "client {client} may no longer ask for tokens for {identifier}"
            ))
        }
    }
}

fn or_none(list: &str) -> String {
    if list.is_empty() {
        "(none)".into()
    } else {
        list.to_string()
    }
}
