//! What the request screen shows, computed from a verified challenge. The
//! user interface only places these strings; it never interprets the raw
//! request, so everything a person reads is produced (and tested) here.

use assent_shared::protocol::ChallengeClaims;
use serde::Serialize;
use serde_json::Value;

/// A pending request, as shown to the person deciding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestView {
    pub account_id: String,
    pub account_label: String,
    pub server: String,
    pub request_id: String,
    pub client_id: String,
    pub client_name: String,
    pub binding_message: String,
    pub scopes: Vec<ScopeView>,
    pub audience: Option<String>,
    pub authorization_details: Vec<DetailTable>,
    pub requester_ip: Option<String>,
    pub requester_user_agent: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeView {
    pub scope: String,
    /// The scope in words.
    pub description: String,
}

/// One entry of `authorization_details` (RFC 9396) as a two-column table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetailTable {
    /// The entry's `type`, in words where it reads as an identifier.
    pub title: String,
    pub rows: Vec<(String, String)>,
}

impl RequestView {
    pub fn new(account_id: &str, account_label: &str, claims: &ChallengeClaims) -> Self {
        Self {
            account_id: account_id.to_string(),
            account_label: account_label.to_string(),
            server: claims.iss.clone(),
            request_id: claims.request_id.clone(),
            client_id: claims.client_id.clone(),
            client_name: if claims.client_name.trim().is_empty() {
                claims.client_id.clone()
            } else {
                claims.client_name.clone()
            },
            binding_message: claims.binding_message.clone(),
            scopes: claims.scope.iter().map(|s| describe_scope(s)).collect(),
            audience: claims.audience.clone(),
            authorization_details: claims
                .authorization_details
                .as_ref()
                .map(detail_tables)
                .unwrap_or_default(),
            requester_ip: claims.requester.ip.clone(),
            requester_user_agent: claims.requester.user_agent.clone(),
            created_at: claims.iat,
            expires_at: claims.exp,
        }
    }
}

pub fn describe_scope(scope: &str) -> ScopeView {
    let description = match scope {
        "openid" => "Confirm that it is you".to_string(),
        "profile" => "See your name and profile details".to_string(),
        "email" => "See your e-mail address".to_string(),
        "phone" => "See your phone number".to_string(),
        "address" => "See your postal address".to_string(),
        "offline_access" => "Stay signed in (keep access after this session)".to_string(),
        other => format!("Permission \u{201c}{other}\u{201d}"),
    };
    ScopeView {
        scope: scope.to_string(),
        description,
    }
}

/// Flattens each entry into `label: value` rows: nested objects become
/// dotted labels, arrays of plain values a comma-separated list.
fn detail_tables(details: &Value) -> Vec<DetailTable> {
    let entries: Vec<&Value> = match details {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    entries
        .into_iter()
        .map(|entry| {
            let title = entry
                .get("type")
                .and_then(Value::as_str)
                .map(humanize)
                .unwrap_or_else(|| "Details".to_string());
            let mut rows = Vec::new();
            match entry {
                Value::Object(fields) => {
                    for (key, value) in fields {
                        if key != "type" {
                            flatten(&humanize(key), value, &mut rows);
                        }
                    }
                }
                other => flatten("Value", other, &mut rows),
            }
            DetailTable { title, rows }
        })
        .collect()
}

fn flatten(label: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (key, inner) in fields {
                flatten(&format!("{label} \u{203a} {}", humanize(key)), inner, rows);
            }
        }
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            let list: Vec<String> = items.iter().map(plain).collect();
            rows.push((label.to_string(), list.join(", ")));
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                flatten(&format!("{label} {}", i + 1), inner, rows);
            }
        }
        other => rows.push((label.to_string(), plain(other))),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "\u{2014}".to_string(),
        Value::Bool(true) => "yes".to_string(),
        Value::Bool(false) => "no".to_string(),
        other => other.to_string(),
    }
}

/// `payment_initiation` → `Payment initiation`, `creditorName` → `Creditor name`.
fn humanize(key: &str) -> String {
    let mut words = String::with_capacity(key.len() + 4);
    let mut previous_lower = false;
    for c in key.chars() {
        if c == '_' || c == '-' {
            words.push(' ');
            previous_lower = false;
        } else if c.is_uppercase() && previous_lower {
            words.push(' ');
            words.extend(c.to_lowercase());
            previous_lower = false;
        } else {
            previous_lower = c.is_lowercase() || c.is_ascii_digit();
            words.push(c);
        }
    }
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn authorization_details_become_readable_rows() {
        let tables = detail_tables(&json!([{
            "type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "250.00"},
            "creditorName": "Merchant A",
            "locations": ["https://bank.example/payments"],
            "recurring": false
        }]));
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].title, "Payment initiation");
        let rows: Vec<(&str, &str)> = tables[0]
            .rows
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(rows.contains(&("Instructed amount \u{203a} Currency", "EUR")));
        assert!(rows.contains(&("Instructed amount \u{203a} Amount", "250.00")));
        assert!(rows.contains(&("Creditor name", "Merchant A")));
        assert!(rows.contains(&("Locations", "https://bank.example/payments")));
        assert!(rows.contains(&("Recurring", "no")));
    }

    #[test]
    fn scopes_are_described_in_words() {
        assert_eq!(
            describe_scope("email").description,
            "See your e-mail address"
        );
        assert_eq!(
            describe_scope("read:accounts").description,
            "Permission \u{201c}read:accounts\u{201d}"
        );
    }
}
