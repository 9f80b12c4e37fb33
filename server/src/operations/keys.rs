//! The server's signing keys: what each is doing, and rotating them.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::Operator;
use crate::{
    clock::{now_ms, rfc3339},
    error::OAuthError,
    keys::{self, KeyEncryptionKeys, KeyPurpose, RotatedKey},
    storage::{SigningKeyRow, StorageError},
};

/// A stored key and what it is doing now.
pub struct KeyState {
    pub row: SigningKeyRow,
    /// `signing`, `upcoming` (published, signs later), `superseded`
    /// (verifies what it signed) or `retired` (its private half erased).
    pub state: &'static str,
}

impl KeyState {
    /// From when it signs (its creation, for a first-start key).
    pub fn signs_from(&self) -> String {
        if self.row.activates_at == 0 {
            rfc3339(self.row.created_at)
        } else {
            rfc3339(self.row.activates_at)
        }
    }

    pub fn view(&self) -> Value {
        json!({
            "kid": self.row.kid,
            "purpose": self.row.purpose,
            "alg": self.row.alg,
            "state": self.state,
            "signs_from": self.signs_from(),
            "sealed_by": self.row.kek_id,
        })
    }
}

/// What each stored key is doing at `now`: per purpose and algorithm, the
/// latest activated key signs, later ones wait, earlier ones verify.
fn states(rows: Vec<SigningKeyRow>, now: i64) -> Vec<KeyState> {
    let mut by_slot: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        by_slot
            .entry((row.purpose.clone(), row.alg.clone()))
            .or_default()
            .push(i);
    }
    let mut state_of = vec![""; rows.len()];
    for slot in by_slot.values_mut() {
        slot.sort_by_key(|&i| (rows[i].activates_at, rows[i].created_at));
        let current = slot.iter().rposition(|&i| rows[i].activates_at <= now);
        for (position, &i) in slot.iter().enumerate() {
            state_of[i] = match current {
                _ if rows[i].activates_at > now => "upcoming",
                Some(c) if c == position => "signing",
                _ if rows[i].private_key_pkcs8.is_empty() => "retired",
                _ => "superseded",
            };
        }
    }
    rows.into_iter()
        .zip(state_of)
        .map(|(row, state)| KeyState { row, state })
        .collect()
}

impl Operator<'_> {
    pub async fn keys(&self) -> Result<Vec<KeyState>, OAuthError> {
        Ok(states(self.store.signing_keys().await?, now_ms()))
    }

    /// New keys for `purposes` that sign from `activate_in_secs` on; until
    /// then they are published and the current ones sign.
    pub async fn rotate_keys(
        &self,
        keks: &KeyEncryptionKeys,
        purposes: &[KeyPurpose],
        activate_in_secs: u64,
    ) -> Result<Vec<RotatedKey>, OAuthError> {
        if purposes.contains(&KeyPurpose::Vapid) {
            return Err(OAuthError::invalid_request(
                "the VAPID key cannot be rotated: every Web Push subscription is bound to it",
            ));
        }
        if activate_in_secs > 30 * 24 * 3600 {
            return Err(OAuthError::invalid_request(
                "activate_in must be at most 30 days",
            ));
        }
        let now = now_ms();
        let activates_at = now + activate_in_secs as i64 * 1000;
        let mut made = Vec::new();
        let mut seen = Vec::new();
        for &purpose in purposes {
            if seen.contains(&purpose) {
                continue;
            }
            seen.push(purpose);
            let rotated = keys::rotate(self.store, keks, purpose, activates_at, now)
                .await
                .map_err(|e| match e.downcast::<StorageError>() {
                    Ok(storage) => storage.into(),
                    // A key already waiting, none to rotate yet, a race with
                    // another rotation: the state of the keys is in the way.
                    Err(e) => OAuthError::conflict(e.to_string()),
                })?;
            // Written as made: a later purpose's refusal leaves these rotated.
            for key in &rotated {
                self.audit(
                    "key.rotate",
                    &key.kid,
                    json!({"purpose": key.purpose, "alg": key.alg, "activates_at": key.activates_at}),
                )
                .await?;
            }
            made.extend(rotated);
        }
        Ok(made)
    }
}
