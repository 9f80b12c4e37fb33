//! Creating, blocking and deleting users: the rules a user record must meet,
//! shared by the operator CLI and any operator API.

use crate::{
    clock::now_ms,
    storage::{StorageError, Store, UserChanges, UserRow},
};

/// Longest `sub`, in bytes.
pub const MAX_SUB_BYTES: usize = 255;
/// Longest e-mail address, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// Any common notation with the country code (`+49 151 1234 5678`);
    /// stored as E.164.
    pub phone_number: Option<String>,
    pub phone_verified: bool,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("sub must be 1 to {MAX_SUB_BYTES} bytes without control characters")]
    InvalidSub,
    #[error("{0:?} is not an e-mail address")]
    InvalidEmail(String),
    #[error("{0:?} is not a valid phone number: give it with its country code, e.g. +14155550123")]
    InvalidPhone(String),
    #[error("a user with the phone number {0} already exists")]
    PhoneTaken(String),
    #[error("the name must be 1 to {MAX_NAME_CHARS} characters without control characters")]
    InvalidName,
    #[error("a user with sub {0:?} already exists")]
    SubTaken(String),
    #[error("a user with the e-mail address {0:?} already exists")]
    EmailTaken(String),
    #[error("no user {0:?}")]
    NotFound(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
}

/// Checks `new` and stores it, unblocked.
pub async fn create(store: &Store, new: NewUser) -> Result<UserRow, UserError> {
    let user = new_user_row(new, now_ms())?;
    if let Err(error) = store.insert_user(&user).await {
        // Asked only after a failed insert, so the common path costs one
        // statement and a concurrent duplicate is still named.
        return Err(match taken(store, &user).await? {
            Some(taken) => taken,
            None => UserError::Storage(error),
        });
    }
    Ok(user)
}

/// Changes a user's e-mail address, phone number, their verified marks or
/// name. Addresses are checked (and the phone number normalized to E.164)
/// as on creation.
pub async fn update(
    store: &Store,
    sub: &str,
    mut changes: UserChanges,
) -> Result<UserRow, UserError> {
    if let Some(Some(email)) = &changes.email {
        if !is_email_address(email) {
            return Err(UserError::InvalidEmail(email.clone()));
        }
    }
    if let Some(Some(phone)) = &changes.phone_number {
        changes.phone_number = Some(Some(normalize_phone(phone)?));
    }
    if let Some(Some(name)) = &changes.name {
        check_name(name)?;
    }
    match store.update_user(sub, &changes, now_ms()).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(UserError::NotFound(sub.to_string())),
        Err(error) => {
            let candidate = UserRow {
                sub: String::new(),
                email: changes.email.clone().flatten(),
                email_verified: false,
                phone_number: changes.phone_number.clone().flatten(),
                phone_verified: false,
                name: None,
                blocked: false,
                created_at: 0,
                updated_at: 0,
            };
            Err(taken(store, &candidate)
                .await?
                .unwrap_or(UserError::Storage(error)))
        }
    }
}

/// A phone number in E.164 (`+` and up to 15 digits), if `input` is a valid
/// number of some country's numbering plan (checked against libphonenumber's
/// metadata). The country code is required: Assent serves every country.
pub fn normalize_phone(input: &str) -> Result<String, UserError> {
    let invalid = || UserError::InvalidPhone(input.chars().take(64).collect());
    let trimmed = input.trim();
    if !trimmed.starts_with('+') || trimmed.len() > 32 {
        return Err(invalid());
    }
    let number = phonenumber::parse(None, trimmed).map_err(|_| invalid())?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Refuses new back-channel requests and refreshes for the user.
pub async fn block(store: &Store, sub: &str) -> Result<(), UserError> {
    set_blocked(store, sub, true).await
}

/// Lifts a block.
pub async fn unblock(store: &Store, sub: &str) -> Result<(), UserError> {
    set_blocked(store, sub, false).await
}

/// Which console a user may sign into (issue 18): `admin` everything,
/// `operator` the operator console, `agent` the agent console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Admin,
    Operator,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Agent => "agent",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Role::Admin, Role::Operator, Role::Agent]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (admin, operator or agent)"))
    }
}

/// Gives the user a console role, or with `None` takes it away.
pub async fn set_role(store: &Store, sub: &str, role: Option<Role>) -> Result<(), UserError> {
    found(store.set_user_role(sub, role.map(Role::as_str)).await, sub)
}

/// Deletes the user with every request and token of theirs.
pub async fn delete(store: &Store, sub: &str) -> Result<(), UserError> {
    found(store.delete_user(sub).await, sub)
}

async fn set_blocked(store: &Store, sub: &str, blocked: bool) -> Result<(), UserError> {
    found(store.set_user_blocked(sub, blocked, now_ms()).await, sub)
}

fn found(changed: Result<bool, StorageError>, sub: &str) -> Result<(), UserError> {
    match changed {
        Ok(true) => Ok(()),
        Ok(false) => Err(UserError::NotFound(sub.to_string())),
        Err(error) => Err(UserError::Storage(error)),
    }
}

/// Which uniqueness rule `user` breaks, if any.
async fn taken(store: &Store, user: &UserRow) -> Result<Option<UserError>, UserError> {
    if !user.sub.is_empty() && store.user(&user.sub).await?.is_some() {
        return Ok(Some(UserError::SubTaken(user.sub.clone())));
    }
    if let Some(email) = &user.email {
        if store.user_by_email(email).await?.is_some() {
            return Ok(Some(UserError::EmailTaken(email.clone())));
        }
    }
    if let Some(phone) = &user.phone_number {
        if store.user_by_phone(phone).await?.is_some() {
            return Ok(Some(UserError::PhoneTaken(phone.clone())));
        }
    }
    Ok(None)
}

fn check_name(name: &str) -> Result<(), UserError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(UserError::InvalidName);
    }
    Ok(())
}

/// The record rules, without storage.
fn new_user_row(new: NewUser, now: i64) -> Result<UserRow, UserError> {
    if new.sub.is_empty() || new.sub.len() > MAX_SUB_BYTES || new.sub.chars().any(char::is_control)
    {
        return Err(UserError::InvalidSub);
    }
    if let Some(email) = &new.email {
        if !is_email_address(email) {
            return Err(UserError::InvalidEmail(email.clone()));
        }
    }
    if let Some(name) = &new.name {
        check_name(name)?;
    }
    let phone_number = new
        .phone_number
        .as_deref()
        .map(normalize_phone)
        .transpose()?;
    Ok(UserRow {
        sub: new.sub,
        email: new.email,
        email_verified: new.email_verified,
        phone_number,
        phone_verified: new.phone_verified,
        name: new.name,
        blocked: false,
        created_at: now,
        updated_at: now,
    })
}

/// Deliberately loose: something `@` something, no whitespace. Whether the
/// address works is for `email_verified` to say.
fn is_email_address(email: &str) -> bool {
    email.len() <= MAX_EMAIL_BYTES
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(sub: &str) -> NewUser {
        NewUser {
            sub: sub.into(),
            ..NewUser::default()
        }
    }

    #[test]
    fn a_new_user_is_unblocked_and_keeps_what_was_given() {
        let row = new_user_row(
            NewUser {
                sub: "auth0|alice".into(),
                email: Some("Alice@Example.com".into()),
                email_verified: true,
                phone_number: Some("+49 151 12345678".into()),
                phone_verified: false,
                name: Some("Alice".into()),
            },
            42,
        )
        .unwrap();
        assert_eq!(row.sub, "auth0|alice");
        assert_eq!(row.phone_number.as_deref(), Some("+4915112345678"));
        assert_eq!(row.email.as_deref(), Some("Alice@Example.com"));
        assert!(row.email_verified && !row.blocked);
        assert_eq!((row.created_at, row.updated_at), (42, 42));
    }

    #[test]
    fn phone_numbers_are_validated_and_stored_as_e164() {
        for (given, stored) in [
            ("+49 151 12345678", "+4915112345678"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("+442071838750", "+442071838750"),
        ] {
            assert_eq!(normalize_phone(given).unwrap(), stored, "{given}");
        }
        for bad in [
            "0151 12345678",
            "+1 555",
            "+999 1234567",
            "+49 abc",
            "",
            "+",
        ] {
            assert!(
                matches!(normalize_phone(bad), Err(UserError::InvalidPhone(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sub_is_1_to_255_bytes_without_control_characters() {
        for bad in [String::new(), "a\tb".into(), "x".repeat(MAX_SUB_BYTES + 1)] {
            assert!(
                matches!(new_user_row(user(&bad), 0), Err(UserError::InvalidSub)),
                "{bad:?}"
            );
        }
        assert!(new_user_row(user(&"x".repeat(MAX_SUB_BYTES)), 0).is_ok());
        assert!(new_user_row(user("auth0|1234 with space"), 0).is_ok());
    }

    #[test]
    fn an_email_needs_an_at_sign_between_two_parts_and_no_whitespace() {
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "al ice@example.com",
            "a@b\n",
        ] {
            let new = NewUser {
                email: Some(bad.into()),
                ..user("alice")
            };
            assert!(
                matches!(new_user_row(new, 0), Err(UserError::InvalidEmail(_))),
                "{bad:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(MAX_EMAIL_BYTES));
        let new = NewUser {
            email: Some(long),
            ..user("alice")
        };
        assert!(matches!(
            new_user_row(new, 0),
            Err(UserError::InvalidEmail(_))
        ));
        let quoted_at = NewUser {
            email: Some("\"a@b\"@example.com".into()),
            ..user("alice")
        };
        assert!(new_user_row(quoted_at, 0).is_ok());
    }

    #[test]
    fn a_name_is_1_to_255_characters_without_control_characters() {
        for bad in [
            String::new(),
            "Ann\nBob".into(),
            "é".repeat(MAX_NAME_CHARS + 1),
        ] {
            let new = NewUser {
                name: Some(bad.clone()),
                ..user("alice")
            };
            assert!(
                matches!(new_user_row(new, 0), Err(UserError::InvalidName)),
                "{bad:?}"
            );
        }
        let new = NewUser {
            name: Some("é".repeat(MAX_NAME_CHARS)),
            ..user("alice")
        };
        assert!(new_user_row(new, 0).is_ok());
    }

    async fn memory_store() -> Store {
        let store = Store::connect("sqlite::memory:", 1).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    #[tokio::test]
    async fn a_taken_sub_or_email_address_is_named() {
        let store = memory_store().await;
        let alice = NewUser {
            email: Some("alice@example.com".into()),
            ..user("alice")
        };
        create(&store, alice.clone()).await.unwrap();
        assert!(matches!(
            create(&store, user("alice")).await,
            Err(UserError::SubTaken(sub)) if sub == "alice"
        ));
        let same_address = NewUser {
            email: Some("ALICE@example.com".into()),
            ..user("alice2")
        };
        assert!(matches!(
            create(&store, same_address).await,
            Err(UserError::EmailTaken(_))
        ));
    }

    #[tokio::test]
    async fn block_unblock_and_delete_name_an_unknown_user() {
        let store = memory_store().await;
        create(&store, user("bob")).await.unwrap();
        block(&store, "bob").await.unwrap();
        assert!(store.user("bob").await.unwrap().unwrap().blocked);
        unblock(&store, "bob").await.unwrap();
        assert!(!store.user("bob").await.unwrap().unwrap().blocked);
        delete(&store, "bob").await.unwrap();
        for result in [
            block(&store, "bob").await,
            unblock(&store, "bob").await,
            delete(&store, "bob").await,
        ] {
            assert!(matches!(result, Err(UserError::NotFound(sub)) if sub == "bob"));
        }
    }
}
