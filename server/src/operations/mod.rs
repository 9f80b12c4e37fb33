//! Operator changes, made the same way whoever makes them: the command
//! line, the admin API (`/admin/v1`) or the operator console. Each one goes
//! through the domain module that owns the rules ([`crate::clients`],
//! [`crate::users`], [`crate::apis`], [`crate::keys`]) and is then written
//! to the audit log as the doing of the [`Operator`] who made it, from
//! where. Reads are here too, so that the CLI's `--json` and the API
//! answer with the same shapes ([`views`]).
//!
//! Errors are the server's one vocabulary ([`OAuthError`]): `not_found`
//! (404), `conflict` (409), `invalid_request` (400) with the rule's words.

mod admin_tokens;
mod apis;
mod clients;
mod devices;
mod keys;
mod records;
mod users;
pub mod views;

pub use admin_tokens::{CreatedAdminToken, NewAdminToken};
pub use apis::{ApiGrant, NewApiSpec};
pub use clients::{ClientUpdate, CreatedClient};
pub use records::{RequestFilter, MAX_LISTED};
pub use users::UserUpdate;

use serde_json::Value;

use crate::{
    apis::ApiError,
    audit::{self, Actor},
    cache::BoundedCache,
    clients::ClientError,
    config::Settings,
    error::{OAuthError, OAuthErrorCode},
    state::Assent,
    storage::{ClientRow, Store},
    users::UserError,
};

/// Who is making changes, from where, and what they reach.
pub struct Operator<'a> {
    store: &'a Store,
    settings: &'a Settings,
    /// The serving process's client cache, evicted on a change (the CLI
    /// has none; other processes re-read within the cache's lifetime).
    clients_cache: Option<&'a BoundedCache<ClientRow>>,
    actor: Actor,
    /// `cli`, or the requester's address.
    source: String,
}

impl<'a> Operator<'a> {
    /// The person at the command line.
    pub fn cli(store: &'a Store, settings: &'a Settings) -> Self {
        Self {
            store,
            settings,
            clients_cache: None,
            actor: Actor::cli(),
            source: "cli".into(),
        }
    }

    /// A caller of the admin API or a console user, inside the server.
    pub fn serving(assent: &'a Assent, actor: Actor, source: String) -> Self {
        Self {
            store: &assent.store,
            settings: &assent.settings,
            clients_cache: Some(&assent.clients),
            actor,
            source,
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn store(&self) -> &Store {
        self.store
    }

    /// Writes a change made just now to the audit log.
    async fn audit(&self, action: &str, target: &str, details: Value) -> Result<(), OAuthError> {
        audit::record(
            self.store,
            &self.actor,
            &self.source,
            action,
            Some(target),
            details,
        )
        .await?;
        Ok(())
    }
}

impl From<ClientError> for OAuthError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Storage(e) => e.into(),
            ClientError::NotFound(_) => OAuthError::not_found(e.to_string()),
            _ => OAuthError::invalid_request(e.to_string()),
        }
    }
}

impl From<UserError> for OAuthError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Storage(e) => e.into(),
            UserError::NotFound(_) => OAuthError::new(OAuthErrorCode::UnknownUser, e.to_string()),
            UserError::SubTaken(_) | UserError::EmailTaken(_) | UserError::PhoneTaken(_) => {
                OAuthError::conflict(e.to_string())
            }
            _ => OAuthError::invalid_request(e.to_string()),
        }
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Storage(e) => e.into(),
            ApiError::NotFound(_) | ApiError::UnknownClient(_) | ApiError::NoGrant { .. } => {
                OAuthError::not_found(e.to_string())
            }
            ApiError::Taken(_) => OAuthError::conflict(e.to_string()),
            _ => OAuthError::invalid_request(e.to_string()),
        }
    }
}
