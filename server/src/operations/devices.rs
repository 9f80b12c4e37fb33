//! Devices: listing, revoking, and the enrollment tickets that add them.

use serde_json::json;

use super::Operator;
use crate::{
    admin, clock::now_ms, device::EnrollmentTicket, error::OAuthError, state::Assent,
    storage::DeviceRow,
};

impl Operator<'_> {
    /// Devices, of one user or all, oldest first.
    pub async fn devices(&self, user: Option<&str>) -> Result<Vec<DeviceRow>, OAuthError> {
        Ok(self.store.devices(user).await?)
    }

    /// Revokes an active device: it can do nothing more, and its user's
    /// other devices hear of it.
    pub async fn revoke_device(&self, device_id: &str) -> Result<(), OAuthError> {
        if !self
            .store
            .revoke_device(device_id, "revoked by operator", now_ms())
            .await?
        {
            return Err(OAuthError::not_found(format!(
                "no active device {device_id:?}"
            )));
        }
        self.audit("device.revoke", device_id, json!({})).await
    }

    /// A single-use enrollment ticket for `user`, valid `ttl_secs`.
    pub async fn create_enrollment_ticket(
        &self,
        assent: &Assent,
        user: &str,
        ttl_secs: u64,
    ) -> Result<EnrollmentTicket, OAuthError> {
        let ticket = admin::enrollment_ticket(assent, user, ttl_secs).await?;
        self.audit(
            "enrollment_ticket.create",
            &ticket.user,
            json!({"expires_at": ticket.expires_at}),
        )
        .await?;
        Ok(ticket)
    }
}
