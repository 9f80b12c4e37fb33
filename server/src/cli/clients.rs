//! `assent-server client create|list|delete`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{json, Value};

use super::output::{self, Table};
use crate::{
    ciba::{CIBA_GRANT, REFRESH_GRANT},
    client_auth::AuthMethod,
    clients::{self, NewClient},
    clock::rfc3339,
    keys::TokenAlg,
    storage::{ClientRow, Store},
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
        /// Comma-separated grant types.
        #[arg(long, value_delimiter = ',', default_values_t = [CIBA_GRANT.to_string(), REFRESH_GRANT.to_string()])]
        grant_types: Vec<String>,
        /// Print JSON (with the secret) for scripts.
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

fn parse_auth_method(s: &str) -> Result<AuthMethod, String> {
    s.parse()
}

fn parse_alg(s: &str) -> Result<TokenAlg, String> {
    s.parse().map_err(|e: anyhow::Error| e.to_string())
}

pub async fn run(store: &Store, cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create {
            name,
            auth_method,
            jwks,
            id_token_signed_response_alg,
            grant_types,
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
            };
            let client = clients::register(store, new).await?;
            if json {
                let mut out = client_json(&client.row);
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
        ClientCommand::List { json } => {
            let clients = store.clients().await?;
            if json {
                return output::json(&clients.iter().map(client_json).collect());
            }
            let mut table = Table::new(&["CLIENT_ID", "AUTH_METHOD", "ALG", "NAME"]);
            for c in clients {
                table.row(vec![
                    c.client_id,
                    c.token_endpoint_auth_method,
                    c.id_token_signed_response_alg,
                    c.name,
                ]);
            }
            table.print()
        }
        ClientCommand::Delete { client_id } => {
            clients::delete(store, &client_id, None).await?;
            output::text(&format!("deleted client {client_id}"))
        }
    }
}

fn client_json(c: &ClientRow) -> Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "id_token_signed_response_alg": c.id_token_signed_response_alg,
        "grant_types": c.grant_types.split(' ').collect::<Vec<_>>(),
        "created_at": rfc3339(c.created_at),
    })
}
