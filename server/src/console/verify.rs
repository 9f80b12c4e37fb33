//! Agents verifying a caller: the agent names the caller (e-mail, phone
//! number or subject) and a ticket; the console asks the caller's devices,
//! with a binding message from the operators' template and number matching;
//! the agent reads the code to the caller and watches the answer.

use assent_shared::{error::OAuthErrorCode, oauth::Assurance};
use serde_json::json;

use super::{client, Session};
use crate::{
    approval::RequesterContext,
    audit,
    ciba::{self, validate_binding_message, BackchannelRequest, Hint},
    decision::request_id_for_auth_req_id,
    error::OAuthError,
    secrets::random_token,
    state::Assent,
    storage::{ConsoleVerificationRow, DenialReason, RequestStatus, UserLookup, UserRow},
    users::normalize_phone,
};

/// The binding message until operators set their own.
pub const DEFAULT_BINDING_TEMPLATE: &str = "Call with {agent} #{ticket}";
const TEMPLATE_SETTING: &str = "verify.binding_template";
/// Longest ticket reference an agent may give.
const MAX_TICKET_CHARS: usize = 32;

/// A verification an agent started.
#[derive(Debug, Clone)]
pub struct Verification {
    pub row: ConsoleVerificationRow,
}

/// Where a verification is, as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationStatus {
    /// Waiting; `pushed_at` when a push service took the notification.
    Waiting {
        pushed_at: Option<i64>,
    },
    Approved {
        at: i64,
    },
    Denied {
        at: i64,
        not_me: bool,
    },
    Expired,
}

impl VerificationStatus {
    /// One word for pages and event streams.
    pub fn word(&self) -> &'static str {
        match self {
            VerificationStatus::Waiting { pushed_at: None } => "sent",
            VerificationStatus::Waiting { pushed_at: Some(_) } => "delivered",
            VerificationStatus::Approved { .. } => "approved",
            VerificationStatus::Denied { not_me: false, .. } => "denied",
            VerificationStatus::Denied { not_me: true, .. } => "not_me",
            VerificationStatus::Expired => "expired",
        }
    }

    pub fn is_final(&self) -> bool {
        !matches!(self, VerificationStatus::Waiting { .. })
    }
}

/// The binding message template operators set (`{agent}`, `{ticket}`).
pub async fn binding_template(assent: &Assent) -> Result<String, OAuthError> {
    Ok(assent
        .store
        .console_setting(TEMPLATE_SETTING)
        .await?
        .unwrap_or_else(|| DEFAULT_BINDING_TEMPLATE.to_string()))
}

/// The message `template` makes for `agent` and `ticket`.
fn fill(template: &str, agent: &str, ticket: &str) -> String {
    template
        .replace("{agent}", agent)
        .replace("{ticket}", ticket)
}

/// Sets the template, checked with sample values as a binding message.
pub async fn set_binding_template(
    assent: &Assent,
    session: &Session,
    source: &str,
    template: &str,
) -> Result<(), OAuthError> {
    let template = template.trim();
    validate_binding_message(&fill(template, "Agent", "1234")).map_err(|e| {
        OAuthError::invalid_request(format!(
            "the template does not make a valid binding message: {}",
            e.description
        ))
    })?;
    assent
        .store
        .set_console_setting(TEMPLATE_SETTING, template)
        .await?;
    audit::record(
        &assent.store,
        &session.actor(),
        source,
        "console.binding_template",
        None,
        json!({"template": template}),
    )
    .await?;
    Ok(())
}

/// The user `caller` names: a subject, an e-mail address or a phone number.
async fn find_caller(assent: &Assent, caller: &str) -> Result<UserRow, OAuthError> {
    let caller = caller.trim();
    let unknown = || OAuthError::new(OAuthErrorCode::UnknownUser, "no user with this name");
    if caller.is_empty() || caller.len() > 256 {
        return Err(unknown());
    }
    if let Some(user) = assent.store.user(caller).await? {
        return Ok(user);
    }
    if caller.contains('@') {
        if let Some(user) = assent.store.user_by_email(caller).await? {
            return Ok(user);
        }
    }
    if caller.starts_with('+') {
        if let Ok(e164) = normalize_phone(caller) {
            if let Some(user) = assent.store.user_by_phone(&e164).await? {
                return Ok(user);
            }
        }
    }
    Err(unknown())
}

/// Asks the caller's devices to confirm they are on the phone with `session`'s agent.
pub async fn start_verification(
    assent: &Assent,
    session: &Session,
    caller: &str,
    ticket: &str,
    requester: RequesterContext,
) -> Result<Verification, OAuthError> {
    let ticket = ticket.trim();
    if ticket.chars().count() > MAX_TICKET_CHARS {
        return Err(OAuthError::invalid_request(format!(
            "the ticket reference is at most {MAX_TICKET_CHARS} characters"
        )));
    }
    let user = find_caller(assent, caller).await?;
    let agent = assent.store.user(&session.user_sub).await?;
    let agent_name = agent
        .and_then(|a| a.name)
        .unwrap_or_else(|| session.user_sub.clone());
    let template = binding_template(assent).await?;
    let message = fill(&template, &agent_name, ticket);
    validate_binding_message(&message)?;
    let console = client(assent).await?;
    let source = requester.ip.clone().unwrap_or_else(|| "unknown".into());
    let started = ciba::start_backchannel(
        assent,
        &console,
        BackchannelRequest {
            scopes: vec!["openid".into()],
            hint: Hint::Login(UserLookup {
                sub: user.sub.clone(),
                email: None,
            }),
            binding_message: message.clone(),
            requested_expiry: None,
            audience: None,
            authorization_details: None,
            min_assurance: Assurance {
                number_match: true,
                user_verification: false,
            },
        },
        requester,
    )
    .await?;
    let request_id = request_id_for_auth_req_id(&assent.store, &started.auth_req_id)
        .await?
        .ok_or_else(OAuthError::server_error)?;
    let row = ConsoleVerificationRow {
        id: random_token(16),
        agent_sub: session.user_sub.clone(),
        user_sub: user.sub.clone(),
        auth_req_id: started.auth_req_id,
        request_id,
        binding_message: message,
        match_code: started.match_code,
        created_at: assent.clock.now_ms(),
    };
    assent.store.insert_console_verification(&row).await?;
    audit::record(
        &assent.store,
        &session.actor(),
        &source,
        "console.verify",
        Some(&user.sub),
        json!({"verification": row.id, "request_id": row.request_id}),
    )
    .await?;
    Ok(Verification { row })
}

/// One of the agent's own verifications.
pub async fn verification(
    assent: &Assent,
    session: &Session,
    id: &str,
) -> Result<Verification, OAuthError> {
    assent
        .store
        .console_verification(id, &session.user_sub)
        .await?
        .map(|row| Verification { row })
        .ok_or_else(|| OAuthError::not_found("no such verification"))
}

/// The agent's latest verifications, newest first.
pub async fn recent_verifications(
    assent: &Assent,
    session: &Session,
    limit: i64,
) -> Result<Vec<Verification>, OAuthError> {
    Ok(assent
        .store
        .console_verifications(&session.user_sub, limit)
        .await?
        .into_iter()
        .map(|row| Verification { row })
        .collect())
}

/// Where the verification is now.
pub async fn verification_status(
    assent: &Assent,
    verification: &Verification,
) -> Result<VerificationStatus, OAuthError> {
    let Some(state) = assent
        .store
        .auth_request(&verification.row.request_id)
        .await?
    else {
        return Ok(VerificationStatus::Expired);
    };
    let now = assent.clock.now_ms();
    let decided_at = state.decided_at.unwrap_or(now);
    Ok(match state.status {
        RequestStatus::Pending if state.expires_at <= now => VerificationStatus::Expired,
        RequestStatus::Pending => VerificationStatus::Waiting {
            pushed_at: assent
                .store
                .push_sent_at(&verification.row.request_id)
                .await?,
        },
        RequestStatus::Denied => VerificationStatus::Denied {
            at: decided_at,
            not_me: state.deny_reason == Some(DenialReason::NotMe),
        },
        _ => VerificationStatus::Approved { at: decided_at },
    })
}
