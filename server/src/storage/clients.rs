//! OAuth clients (the applications that start back-channel requests).

use super::{
    sql::{params, row, stored_enum},
    StorageError, Store,
};

stored_enum! {
    /// Whether approving a client's requests needs the code it shows
    /// (`clients.number_matching`).
    pub enum NumberMatching {
        Required => "required",
        /// For a client that cannot show a code to the user.
        Off => "off",
    }
}

stored_enum! {
    /// Whether approving a client's requests needs the user's verification
    /// on the device (`clients.user_verification`).
    pub enum UserVerificationPolicy {
        Required => "required",
        Optional => "optional",
    }
}

row! {
    #[derive(Debug, Clone)]
    pub struct ClientRow {
        pub client_id: String,
        pub name: String,
        pub token_endpoint_auth_method: String,
        pub secret_sha256: Option<String>,
        pub jwks: Option<String>,
        pub id_token_signed_response_alg: String,
        pub grant_types: String,
        pub created_at: i64,
        pub number_matching: NumberMatching,
        pub user_verification: UserVerificationPolicy,
        pub client_uri: Option<String>,
        pub logo_sha256: Option<String>,
        /// Registered redirect URIs, space-separated, matched exactly.
        pub redirect_uris: String,
        /// Whether the back-end OTP API answers the code it sent.
        pub otp_code_in_response: bool,
        /// Whether its logins need a second factor.
        pub mfa_policy: super::MfaPolicy,
    }
}

row! {
    /// A client's logo as the server serves it.
    #[derive(Debug, Clone)]
    pub struct ClientLogo {
        pub content_type: String,
        pub data_base64: String,
        pub sha256: String,
    }
}

/// What an operator may change on a registered client; `None` keeps it.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub number_matching: Option<NumberMatching>,
    pub user_verification: Option<UserVerificationPolicy>,
    /// `Some(None)` removes the website.
    pub client_uri: Option<Option<String>>,
    /// Space-separated, replacing the current ones.
    pub grant_types: Option<String>,
    /// Space-separated, replacing the current ones (empty: none).
    pub redirect_uris: Option<String>,
    pub otp_code_in_response: Option<bool>,
    pub mfa_policy: Option<super::MfaPolicy>,
}

const CLIENT_COLUMNS: &str = "client_id, name, token_endpoint_auth_method, secret_sha256, jwks, \
     id_token_signed_response_alg, grant_types, created_at, number_matching, user_verification, \
     client_uri, logo_sha256, redirect_uris, otp_code_in_response, mfa_policy";

impl Store {
    pub async fn insert_client(&self, c: &ClientRow) -> Result<(), StorageError> {
        let sql = "INSERT INTO clients (client_id, name, token_endpoint_auth_method, \
                   secret_sha256, jwks, id_token_signed_response_alg, grant_types, created_at, \
                   number_matching, user_verification, client_uri, redirect_uris, \
                   otp_code_in_response, mfa_policy) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
        let params = params![
            &c.client_id,
            &c.name,
            &c.token_endpoint_auth_method,
            &c.secret_sha256,
            &c.jwks,
            &c.id_token_signed_response_alg,
            &c.grant_types,
            c.created_at,
            c.number_matching,
            c.user_verification,
            &c.client_uri,
            &c.redirect_uris,
            c.otp_code_in_response,
            c.mfa_policy,
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// Applies `changes` to a client; returns the client as it now is, or
    /// `None` when there is no such client.
    pub async fn update_client(
        &self,
        client_id: &str,
        changes: &ClientChanges,
    ) -> Result<Option<ClientRow>, StorageError> {
        let sql = format!(
            "UPDATE clients SET name = COALESCE($2, name), \
             number_matching = COALESCE($3, number_matching), \
             user_verification = COALESCE($4, user_verification), \
             client_uri = CASE WHEN $5 THEN $6 ELSE client_uri END, \
             grant_types = COALESCE($7, grant_types), \
             redirect_uris = COALESCE($8, redirect_uris), \
             otp_code_in_response = CASE WHEN $9 THEN $10 ELSE otp_code_in_response END, \
             mfa_policy = COALESCE($11, mfa_policy) \
             WHERE client_id = $1 RETURNING {CLIENT_COLUMNS}"
        );
        let params = params![
            client_id,
            changes.name.as_deref(),
            changes.number_matching.map(|m| m.as_str()),
            changes.user_verification.map(|u| u.as_str()),
            changes.client_uri.is_some(),
            changes.client_uri.as_ref().and_then(|u| u.as_deref()),
            changes.grant_types.as_deref(),
            changes.redirect_uris.as_deref(),
            changes.otp_code_in_response.is_some(),
            changes.otp_code_in_response.unwrap_or(false),
            changes.mfa_policy.map(|p| p.as_str()),
        ];
        self.statement(&sql, &params).fetch_optional().await
    }

    /// Stores (or replaces) a client's logo; returns whether the client exists.
    pub async fn set_client_logo(
        &self,
        client_id: &str,
        logo: &ClientLogo,
        source_url: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let sql = "INSERT INTO client_logos (client_id, content_type, data_base64, sha256, \
                   source_url, fetched_at) SELECT client_id, $2, $3, $4, $5, $6 FROM clients \
                   WHERE client_id = $1 \
                   ON CONFLICT (client_id) DO UPDATE SET content_type = excluded.content_type, \
                   data_base64 = excluded.data_base64, sha256 = excluded.sha256, \
                   source_url = excluded.source_url, fetched_at = excluded.fetched_at";
        let params = params![
            client_id,
            &logo.content_type,
            &logo.data_base64,
            &logo.sha256,
            source_url,
            now,
        ];
        if self.statement(sql, &params).execute().await? == 0 {
            return Ok(false);
        }
        let sql = "UPDATE clients SET logo_sha256 = $2 WHERE client_id = $1";
        let params = params![client_id, &logo.sha256];
        Ok(self.statement(sql, &params).execute().await? == 1)
    }

    /// Removes a client's logo; returns whether the client exists.
    pub async fn remove_client_logo(&self, client_id: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM client_logos WHERE client_id = $1";
        self.statement(sql, &params![client_id]).execute().await?;
        let sql = "UPDATE clients SET logo_sha256 = NULL WHERE client_id = $1";
        Ok(self.statement(sql, &params![client_id]).execute().await? == 1)
    }

    pub async fn client_logo(&self, client_id: &str) -> Result<Option<ClientLogo>, StorageError> {
        let sql = "SELECT content_type, data_base64, sha256 FROM client_logos WHERE client_id = $1";
        self.statement(sql, &params![client_id])
            .fetch_optional()
            .await
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRow>, StorageError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1");
        self.statement(&sql, &params![client_id])
            .fetch_optional()
            .await
    }

    /// Whether the client exists with this secret digest.
    pub async fn client_has_secret(
        &self,
        client_id: &str,
        secret_sha256: &str,
    ) -> Result<bool, StorageError> {
        let sql = "SELECT 1 FROM clients WHERE client_id = $1 AND secret_sha256 = $2";
        let found: Option<(i32,)> = self
            .statement(sql, &params![client_id, secret_sha256])
            .fetch_optional()
            .await?;
        Ok(found.is_some())
    }

    pub async fn clients(&self) -> Result<Vec<ClientRow>, StorageError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, client_id");
        self.statement(&sql, &[]).fetch_all().await
    }

    /// Deletes a client and, by cascade, its requests and tokens.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM clients WHERE client_id = $1";
        Ok(self.statement(sql, &params![client_id]).execute().await? == 1)
    }
}
