//! Refresh tokens, stored as digests, rotated on every use; a reused token
//! revokes its whole family (OAuth 2.0 Security BCP 4.14).

use super::{
    on_pool,
    sql::{arguments, params, row, stored_enum, Param},
    StorageError, Store,
};

stored_enum! {
    /// `refresh_tokens.state`.
    pub enum RefreshTokenState {
        Active => "active",
        /// Exchanged for its replacement: presenting it again is reuse.
        Rotated => "rotated",
        /// Its family was revoked after a reuse.
        Revoked => "revoked",
    }
}

row! {
    #[derive(Debug, Clone)]
    pub struct RefreshTokenRow {
        pub token_sha256: String,
        pub family_id: String,
        pub client_id: String,
        pub user_sub: String,
        pub scope: String,
        pub audience: Option<String>,
        pub authorization_details: Option<String>,
        pub acr: Option<String>,
        /// RFC 8176 methods of the approval, JSON array text.
        pub amr: Option<String>,
        pub auth_time: i64,
        pub state: RefreshTokenState,
        pub created_at: i64,
        pub expires_at: i64,
    }
}

#[derive(Debug)]
pub enum RotateOutcome {
    /// The presented token was active; it is now `rotated` and the
    /// replacement is stored. Carries the presented token's grant.
    Rotated(Box<RefreshTokenRow>),
    /// The presented token had already been rotated: its whole family is now revoked.
    ReuseDetected,
    /// Unknown, foreign, expired, revoked, or its user is blocked.
    Invalid,
    /// The caller's check refused the grant: nothing changed.
    Refused,
}

const INSERT: &str = "INSERT INTO refresh_tokens (token_sha256, family_id, client_id, user_sub, \
     scope, audience, authorization_details, acr, auth_time, state, created_at, expires_at, amr) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

fn insert_params(t: &RefreshTokenRow) -> [Param<'_>; 13] {
    params![
        &t.token_sha256,
        &t.family_id,
        &t.client_id,
        &t.user_sub,
        &t.scope,
        &t.audience,
        &t.authorization_details,
        &t.acr,
        t.auth_time,
        t.state,
        t.created_at,
        t.expires_at,
        &t.amr,
    ]
}

impl Store {
    pub async fn insert_refresh_token(&self, t: &RefreshTokenRow) -> Result<(), StorageError> {
        let params = insert_params(t);
        self.statement(INSERT, &params).execute().await.map(|_| ())
    }

    /// Refresh-token rotation with reuse detection: the presented token is
    /// retired and `replacement` takes its place in one transaction;
    /// presenting an already-rotated token revokes its family.
    /// `replacement` inherits family and grant from the presented token.
    /// `accept` sees the presented token's grant before anything is
    /// committed; refusing it leaves the token untouched.
    pub async fn rotate_refresh_token(
        &self,
        presented_sha256: &str,
        client_id: &str,
        replacement_sha256: &str,
        replacement_expires_at: i64,
        now: i64,
        accept: impl FnOnce(&RefreshTokenRow) -> bool,
    ) -> Result<RotateOutcome, StorageError> {
        // The transaction opens with a write so that SQLite takes its write
        // lock up front (a deferred read-then-write could fail with BUSY).
        let retire = "UPDATE refresh_tokens SET state = 'rotated' \
             WHERE token_sha256 = $1 AND client_id = $2 AND state = 'active' AND expires_at > $3 \
               AND EXISTS (SELECT 1 FROM users WHERE users.sub = refresh_tokens.user_sub \
                           AND NOT users.blocked) \
             RETURNING token_sha256, family_id, client_id, user_sub, scope, audience, \
               authorization_details, acr, auth_time, state, created_at, expires_at, amr";
        let revoke_family_if_reused = "UPDATE refresh_tokens SET state = 'revoked' \
             WHERE family_id = (SELECT family_id FROM refresh_tokens \
                                WHERE token_sha256 = $1 AND client_id = $2 AND state = 'rotated')";
        let retire_params = params![presented_sha256, client_id, now];
        let reuse_params = params![presented_sha256, client_id];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            let retired: Option<RefreshTokenRow> =
                sqlx::query_as_with(retire, arguments::<Db>(&retire_params)?)
                    .fetch_optional(&mut *tx)
                    .await?;
            let outcome = match retired {
                Some(old) if !accept(&old) => {
                    tx.rollback().await?;
                    return Ok(RotateOutcome::Refused);
                }
                Some(old) => {
                    let new = RefreshTokenRow {
                        token_sha256: replacement_sha256.to_string(),
                        state: RefreshTokenState::Active,
                        created_at: now,
                        expires_at: replacement_expires_at,
                        ..old.clone()
                    };
                    sqlx::query_with(INSERT, arguments::<Db>(&insert_params(&new))?)
                        .execute(&mut *tx)
                        .await?;
                    RotateOutcome::Rotated(Box::new(old))
                }
                None => {
                    let revoked = sqlx::query_with(
                        revoke_family_if_reused,
                        arguments::<Db>(&reuse_params)?,
                    )
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if revoked > 0 {
                        RotateOutcome::ReuseDetected
                    } else {
                        RotateOutcome::Invalid
                    }
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
    }
}

impl Store {
    /// Revokes the family of the refresh token with digest `token_sha256`
    /// when it belongs to `client_id` (RFC 7009 2.1: the token and every
    /// token of the same grant). Returns how many tokens changed state:
    /// zero for an unknown token, another client's, or one already revoked.
    pub async fn revoke_refresh_token_family(
        &self,
        token_sha256: &str,
        client_id: &str,
    ) -> Result<u64, StorageError> {
        let sql = "UPDATE refresh_tokens SET state = 'revoked' \
             WHERE state <> 'revoked' AND family_id = (SELECT family_id FROM refresh_tokens \
                 WHERE token_sha256 = $1 AND client_id = $2)";
        self.statement(sql, &params![token_sha256, client_id])
            .execute()
            .await
    }
}
