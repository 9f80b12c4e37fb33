//! Passkeys of devices (the web authenticator): registrations in progress,
//! the credential a device decides with, and its signature counter.

use super::{
    sql::{params, row},
    StorageError, Store,
};

/// Whether an enrollment ticket can still be spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    Usable,
    Unknown,
    Used,
    Expired,
}

/// A passkey an enrollment stores with its device.
#[derive(Debug, Clone)]
pub struct NewPasskey {
    /// base64url of the credential id.
    pub credential_id: String,
    /// The credential as webauthn-rs keeps it (JSON).
    pub credential: String,
    pub sign_count: i64,
}

row! {
    #[derive(Debug, Clone)]
    pub struct DevicePasskey {
        pub passkey: String,
        pub passkey_sign_count: i64,
    }
}

row! {
    #[derive(Debug, Clone)]
    pub struct TicketRow {
        pub user_sub: String,
        pub used_at: Option<i64>,
        pub expires_at: i64,
    }
}

impl TicketRow {
    pub fn state(&self, now: i64) -> TicketState {
        match (self.used_at, self.expires_at > now) {
            (Some(_), _) => TicketState::Used,
            (None, false) => TicketState::Expired,
            (None, true) => TicketState::Usable,
        }
    }
}

impl Store {
    /// An enrollment ticket by its digest.
    pub async fn enrollment_ticket(
        &self,
        ticket_sha256: &str,
    ) -> Result<Option<TicketRow>, StorageError> {
        let sql = "SELECT user_sub, used_at, expires_at FROM enrollment_tickets \
                   WHERE ticket_sha256 = $1";
        self.statement(sql, &params![ticket_sha256])
            .fetch_optional()
            .await
    }

    /// Keeps a registration in progress against its ticket, replacing an
    /// earlier one, only while the ticket is usable; otherwise says why not.
    pub async fn save_passkey_registration(
        &self,
        ticket_sha256: &str,
        state: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<TicketState, StorageError> {
        let save = "INSERT INTO passkey_registrations (ticket_sha256, state, expires_at) \
                    SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM enrollment_tickets \
                      WHERE ticket_sha256 = $1 AND used_at IS NULL AND expires_at > $4) \
                    ON CONFLICT (ticket_sha256) DO UPDATE \
                    SET state = excluded.state, expires_at = excluded.expires_at";
        let saved = self
            .statement(save, &params![ticket_sha256, state, expires_at, now])
            .execute()
            .await?;
        if saved > 0 {
            return Ok(TicketState::Usable);
        }
        Ok(self
            .enrollment_ticket(ticket_sha256)
            .await?
            .map_or(TicketState::Unknown, |ticket| ticket.state(now)))
    }

    /// The registration kept for a ticket, while it is unexpired.
    pub async fn passkey_registration(
        &self,
        ticket_sha256: &str,
        now: i64,
    ) -> Result<Option<String>, StorageError> {
        let sql = "SELECT state FROM passkey_registrations \
                   WHERE ticket_sha256 = $1 AND expires_at > $2";
        let row: Option<(String,)> = self
            .statement(sql, &params![ticket_sha256, now])
            .fetch_optional()
            .await?;
        Ok(row.map(|(state,)| state))
    }

    /// The passkey a device decides with, if it enrolled one.
    pub async fn device_passkey(
        &self,
        device_id: &str,
    ) -> Result<Option<DevicePasskey>, StorageError> {
        let sql = "SELECT passkey, passkey_sign_count FROM devices \
                   WHERE id = $1 AND passkey IS NOT NULL";
        self.statement(sql, &params![device_id])
            .fetch_optional()
            .await
    }

    /// Moves a device's signature counter up to `new`; false when it is
    /// there or past it already (another decision with this or a later
    /// count came first), so that one counter value is accepted once.
    pub async fn advance_passkey_counter(
        &self,
        device_id: &str,
        new: i64,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE devices SET passkey_sign_count = $2 \
                   WHERE id = $1 AND passkey_sign_count < $2 AND revoked_at IS NULL";
        let changed = self
            .hot_statement(sql, &params![device_id, new])
            .execute()
            .await?;
        Ok(changed == 1)
    }
}
