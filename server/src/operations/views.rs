//! The JSON shapes of what operators read: the same for `--json` on the
//! command line, the admin API and the consoles. Times are RFC 3339.

use serde_json::{json, Value};

use crate::{
    clock::{now_ms, rfc3339},
    storage::{
        AdminTokenRow, ApiRow, AuditRow, ClientGrantRow, ClientRow, DeviceRow, RequestStatus,
        RequestSummary, UserRow,
    },
};

pub fn client(c: &ClientRow) -> Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "id_token_signed_response_alg": c.id_token_signed_response_alg,
        "grant_types": words(&c.grant_types),
        "number_matching": c.number_matching.as_str(),
        "user_verification": c.user_verification.as_str(),
        "client_uri": c.client_uri,
        "logo": c.logo_sha256.is_some(),
        "redirect_uris": words(&c.redirect_uris),
        "otp_code_in_response": c.otp_code_in_response,
        "mfa": c.mfa_policy.as_str(),
        "created_at": rfc3339(c.created_at),
    })
}

pub fn user(u: &UserRow, role: Option<&str>) -> Value {
    json!({
        "sub": u.sub,
        "email": u.email,
        "email_verified": u.email_verified,
        "phone_number": u.phone_number,
        "phone_verified": u.phone_verified,
        "name": u.name,
        "blocked": u.blocked,
        "role": role,
        "created_at": rfc3339(u.created_at),
    })
}

/// What a user has, for the audit log: which fields are set, not their
/// (personal) values.
pub fn user_fields(u: &UserRow) -> Value {
    json!({
        "email": u.email.is_some(),
        "email_verified": u.email_verified,
        "phone_number": u.phone_number.is_some(),
        "phone_verified": u.phone_verified,
        "name": u.name.is_some(),
    })
}

pub fn device(d: &DeviceRow) -> Value {
    json!({
        "device_id": d.id,
        "user": d.user_sub,
        "name": d.name,
        "platform": d.platform,
        "key_thumbprint": d.key_thumbprint,
        "passkey": d.passkey_credential_id.is_some(),
        "push": d.push_channel.is_some(),
        "push_disabled_reason": d.push_disabled_reason,
        "created_at": rfc3339(d.created_at),
        "revoked_at": d.revoked_at.map(rfc3339),
        "revoke_reason": d.revoke_reason,
    })
}

/// `pending` requests past their expiry read as `expired`.
pub fn request_status(r: &RequestSummary) -> &'static str {
    if r.status == RequestStatus::Pending && r.expires_at <= now_ms() {
        "expired"
    } else {
        r.status.as_str()
    }
}

pub fn request(r: &RequestSummary) -> Value {
    json!({
        "request_id": r.id,
        "client_id": r.client_id,
        "user": r.user_sub,
        "binding_message": r.binding_message,
        "scope": r.scope,
        "status": request_status(r),
        "deny_reason": r.deny_reason.map(|r| r.as_str()),
        "decided_by_device": r.decided_by_device,
        "requester_ip": r.requester_ip,
        "created_at": rfc3339(r.created_at),
        "expires_at": rfc3339(r.expires_at),
        "decided_at": r.decided_at.map(rfc3339),
    })
}

pub fn admin_token(t: &AdminTokenRow) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "scopes": words(&t.scopes),
        "created_at": rfc3339(t.created_at),
        "expires_at": t.expires_at.map(rfc3339),
        "expired": t.expires_at.is_some_and(|at| at <= now_ms()),
    })
}

/// An API with the clients granted it (from `grants`, all of them).
pub fn api(api: &ApiRow, grants: &[ClientGrantRow]) -> Value {
    let granted: Vec<Value> = grants
        .iter()
        .filter(|g| g.api_identifier == api.identifier)
        .map(grant)
        .collect();
    json!({
        "identifier": api.identifier,
        "name": api.name,
        "scopes": words(&api.scopes),
        "mfa": api.mfa_policy.as_str(),
        "created_at": rfc3339(api.created_at),
        "grants": granted,
    })
}

pub fn grant(g: &ClientGrantRow) -> Value {
    json!({
        "client_id": g.client_id,
        "api": g.api_identifier,
        "scopes": words(&g.scopes),
    })
}

pub fn audit_entry(e: &AuditRow) -> Value {
    json!({
        "id": e.id,
        "at": rfc3339(e.at),
        "actor": e.actor,
        "source": e.source,
        "action": e.action,
        "target": e.target,
        "details": serde_json::from_str::<Value>(&e.details).unwrap_or(Value::Null),
    })
}

/// A space-separated list as a JSON array (empty for an empty string).
pub fn words(list: &str) -> Vec<&str> {
    list.split(' ').filter(|s| !s.is_empty()).collect()
}
