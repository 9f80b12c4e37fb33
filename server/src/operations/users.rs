//! Creating, changing, blocking and deleting users, and their console roles.

use std::collections::HashMap;

use serde_json::json;

use super::{views, Operator};
use crate::{
    error::OAuthError,
    storage::{UserChanges, UserRow},
    users::{self, NewUser, Role},
};

/// What to change of a user.
pub type UserUpdate = UserChanges;

impl Operator<'_> {
    /// Every user with their console role, if any.
    pub async fn users(&self) -> Result<Vec<(UserRow, Option<String>)>, OAuthError> {
        let users = self.store.users().await?;
        let mut roles: HashMap<String, String> = self
            .store
            .user_roles()
            .await?
            .into_iter()
            .map(|r| (r.sub, r.role))
            .collect();
        Ok(users
            .into_iter()
            .map(|u| {
                let role = roles.remove(&u.sub);
                (u, role)
            })
            .collect())
    }

    pub async fn user(&self, sub: &str) -> Result<(UserRow, Option<String>), OAuthError> {
        let user = self.store.user(sub).await?.ok_or_else(|| {
            OAuthError::new(
                crate::error::OAuthErrorCode::UnknownUser,
                format!("no user {sub:?}"),
            )
        })?;
        let role = self.store.user_role(sub).await?;
        Ok((user, role))
    }

    pub async fn create_user(&self, new: NewUser) -> Result<UserRow, OAuthError> {
        let user = users::create(self.store, new).await?;
        self.audit("user.create", &user.sub, views::user_fields(&user))
            .await?;
        Ok(user)
    }

    /// Changes a user; the audit log names the fields changed, not their values.
    pub async fn update_user(&self, sub: &str, changes: UserUpdate) -> Result<UserRow, OAuthError> {
        let changed = json!({"changed": changes.names()});
        let user = users::update(self.store, sub, changes).await?;
        self.audit("user.update", &user.sub, changed).await?;
        Ok(user)
    }

    pub async fn delete_user(&self, sub: &str) -> Result<(), OAuthError> {
        users::delete(self.store, sub).await?;
        self.audit("user.delete", sub, json!({})).await
    }

    /// Refuses (or with `false` allows again) new requests and refreshes.
    pub async fn block_user(&self, sub: &str, blocked: bool) -> Result<(), OAuthError> {
        if blocked {
            users::block(self.store, sub).await?;
            self.audit("user.block", sub, json!({})).await
        } else {
            users::unblock(self.store, sub).await?;
            self.audit("user.unblock", sub, json!({})).await
        }
    }

    /// Gives the user a console role, or with `None` takes it away.
    pub async fn set_role(&self, sub: &str, role: Option<Role>) -> Result<(), OAuthError> {
        users::set_role(self.store, sub, role).await?;
        self.audit("user.role", sub, json!({"role": role.map(Role::as_str)}))
            .await
    }
}
