//! Registering, changing and deleting clients.

use serde_json::json;

use super::{views, Operator};
use crate::{
    clients::{self, NewClient},
    error::OAuthError,
    storage::{ClientChanges, ClientRow},
};

/// A client just registered, with its secret (shown this once).
pub struct CreatedClient {
    pub row: ClientRow,
    pub secret: Option<String>,
}

/// What to change of a client: its settings, and its logo (`Some(Some(url))`
/// fetches a new one, `Some(None)` removes it).
#[derive(Default)]
pub struct ClientUpdate {
    pub changes: ClientChanges,
    pub logo_url: Option<Option<String>>,
}

impl Operator<'_> {
    pub async fn clients(&self) -> Result<Vec<ClientRow>, OAuthError> {
        Ok(self.store.clients().await?)
    }

    pub async fn client(&self, client_id: &str) -> Result<ClientRow, OAuthError> {
        self.store
            .client(client_id)
            .await?
            .ok_or_else(|| OAuthError::not_found(format!("no client {client_id:?}")))
    }

    /// Registers a client (with the logo at `logo_url`, fetched through
    /// the outbound guard and served by the server from then on).
    pub async fn create_client(
        &self,
        new: NewClient,
        logo_url: Option<&str>,
    ) -> Result<CreatedClient, OAuthError> {
        let registered = clients::register(self.store, new).await?;
        let mut row = registered.row;
        if let Some(url) = logo_url {
            match self.fetch_logo(&row.client_id, url).await {
                Ok(sha256) => row.logo_sha256 = Some(sha256),
                Err(e) => {
                    // Nothing half-made: a client whose logo was refused is
                    // not registered.
                    clients::delete(self.store, &row.client_id, self.clients_cache).await?;
                    return Err(e);
                }
            }
        }
        self.audit("client.create", &row.client_id, views::client(&row))
            .await?;
        Ok(CreatedClient {
            row,
            secret: registered.secret,
        })
    }

    pub async fn update_client(
        &self,
        client_id: &str,
        update: ClientUpdate,
    ) -> Result<ClientRow, OAuthError> {
        // The logo first: a refused logo leaves every setting as it was.
        let logo = match update.logo_url {
            Some(Some(url)) => {
                self.client(client_id).await?;
                Some(Some(self.fetch_logo(client_id, &url).await?))
            }
            Some(None) => Some(None),
            None => None,
        };
        let mut row =
            clients::update(self.store, client_id, update.changes, self.clients_cache).await?;
        match logo {
            Some(Some(sha256)) => row.logo_sha256 = Some(sha256),
            Some(None) => {
                self.store.remove_client_logo(client_id).await?;
                row.logo_sha256 = None;
            }
            None => {}
        }
        self.audit("client.update", client_id, views::client(&row))
            .await?;
        Ok(row)
    }

    /// Deletes a client and everything issued to it.
    pub async fn delete_client(&self, client_id: &str) -> Result<(), OAuthError> {
        clients::delete(self.store, client_id, self.clients_cache).await?;
        self.audit("client.delete", client_id, json!({})).await
    }

    async fn fetch_logo(&self, client_id: &str, url: &str) -> Result<String, OAuthError> {
        let logo = clients::fetch_logo(
            self.store,
            client_id,
            url,
            &self.settings.push_allowed_hosts,
            self.settings.outbound_proxy.as_ref(),
        )
        .await?;
        Ok(logo.sha256)
    }
}
