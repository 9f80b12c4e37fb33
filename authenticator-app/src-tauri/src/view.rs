//! What the request screen shows, computed from a verified challenge. The
//! user interface only places these strings; it never interprets the raw
//! request, so everything a person reads is produced (and tested) here.
//!
//! A request reads by its purpose: a back-channel login (CIBA), which
//! someone else started for the person, leads with the binding message the
//! client sent; the push of the MFA API, the second step of a sign-in the
//! person is doing themselves, reads as that ("Is this you signing in to
//! Payroll?").
//!
//! `authorization_details` (RFC 9396) get a renderer by type: a payment
//! reads as one sentence ("Pay €4,200.00 to Müller GmbH"), account access
//! as what may be read of which accounts, anything else as a table of every
//! field. A renderer that cannot read an entry fully (an amount that is not
//! a plain decimal, say) leaves it to the table: the person sees what the
//! server signed, never a confident sentence built on a guess.

use assent_shared::protocol::{ChallengeClaims, RequestPurpose};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::money::Money;

pub use crate::money::system_locale;

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
    /// `backchannel` (CIBA: someone else started it) or `mfa` (the second
    /// step of a sign-in the person is doing).
    pub purpose: RequestPurpose,
    /// The request in one line, as the inbox lists it: the binding message,
    /// or "Sign-in to Payroll" for a second step.
    pub headline: String,
    /// What the request screen asks in large type: the binding message, or
    /// "Is this you signing in to Payroll?".
    pub question: String,
    /// The line above it: who asks, as whom.
    pub intro: String,
    /// Beside the account in the inbox: the application, or "Second step of
    /// your sign-in".
    pub context: String,
    pub scopes: Vec<ScopeView>,
    pub audience: Option<String>,
    /// One sentence per entry of `authorization_details` that has a
    /// renderer, shown large beside the binding message, above Approve.
    pub key_lines: Vec<String>,
    pub authorization_details: Vec<DetailTable>,
    /// The back end that called `/bc-authorize`: a technical detail, not
    /// where the person is.
    pub requester_ip: Option<String>,
    pub requester_user_agent: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    /// Approving needs the number the requesting application shows, of this
    /// many digits.
    pub match_code_digits: Option<u8>,
    pub user_verification_required: bool,
    /// The client's website as the operator registered it, and its host.
    pub client_uri: Option<String>,
    pub website_host: Option<String>,
    /// Where the server serves the client's logo.
    pub logo_uri: Option<String>,
    /// The logo as a `data:` URL, once fetched from the account's server.
    pub logo: Option<String>,
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
    /// "Payment", "Account access", or the entry's `type` in words.
    pub title: String,
    /// The entry in one sentence, when a renderer read it.
    pub summary: Option<String>,
    pub rows: Vec<(String, String)>,
}

impl RequestView {
    /// `locale` (BCP 47) is how amounts are written.
    pub fn new(
        account_id: &str,
        account_label: &str,
        claims: &ChallengeClaims,
        locale: &str,
    ) -> Self {
        let authorization_details = claims
            .authorization_details
            .as_ref()
            .map(|details| detail_tables(details, locale))
            .unwrap_or_default();
        let client_name = if claims.client_name.trim().is_empty() {
            claims.client_id.clone()
        } else {
            claims.client_name.clone()
        };
        let mut key_lines: Vec<String> = authorization_details
            .iter()
            .filter_map(|t| t.summary.clone())
            .collect();
        let binding = claims.binding_message.clone();
        let (headline, question, intro, context) = match claims.purpose {
            RequestPurpose::Backchannel => (
                binding.clone(),
                binding.clone(),
                format!("{client_name} asks to sign in as {account_label}"),
                client_name.clone(),
            ),
            RequestPurpose::Mfa => {
                // The server words it "Sign in to <client>"; anything else
                // it signed is shown too, never dropped.
                let usual = [&claims.client_name, &client_name]
                    .iter()
                    .any(|name| binding == format!("Sign in to {name}"));
                if !usual {
                    key_lines.insert(0, binding.clone());
                }
                (
                    format!("Sign-in to {client_name}"),
                    format!("Is this you signing in to {client_name}?"),
                    format!("{SECOND_STEP} as {account_label}"),
                    SECOND_STEP.to_string(),
                )
            }
        };
        Self {
            account_id: account_id.to_string(),
            account_label: account_label.to_string(),
            server: claims.iss.clone(),
            request_id: claims.request_id.clone(),
            client_id: claims.client_id.clone(),
            client_name,
            binding_message: binding,
            purpose: claims.purpose,
            headline,
            question,
            intro,
            context,
            scopes: claims.scope.iter().map(|s| describe_scope(s)).collect(),
            audience: claims.audience.clone(),
            key_lines,
            authorization_details,
            requester_ip: claims.requester.ip.clone(),
            requester_user_agent: claims.requester.user_agent.clone(),
            created_at: claims.iat,
            expires_at: claims.exp,
            match_code_digits: claims.match_code_digits,
            user_verification_required: claims.user_verification_required,
            client_uri: claims.client_uri.clone(),
            website_host: claims.client_uri.as_deref().and_then(host_of),
            logo_uri: claims.logo_uri.clone(),
            logo: None,
        }
    }
}

/// The hint that a request completes the person's own sign-in.
pub const SECOND_STEP: &str = "Second step of your sign-in";

impl RequestView {
    /// The desktop notification's title and body.
    pub fn notification(&self) -> (String, String) {
        match self.purpose {
            RequestPurpose::Backchannel => (
                format!("Sign-in request from {}", self.client_name),
                self.binding_message.clone(),
            ),
            RequestPurpose::Mfa => (self.question.clone(), self.intro.clone()),
        }
    }
}

/// `https://www.bank.example/about` → `www.bank.example`.
fn host_of(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then(|| host.to_string())
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

/// One table per entry: by a renderer of its type where one reads it, else
/// every field flattened.
fn detail_tables(details: &Value, locale: &str) -> Vec<DetailTable> {
    let entries: Vec<&Value> = match details {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    entries
        .into_iter()
        .map(|entry| {
            let rendered = match (entry.get("type").and_then(Value::as_str), entry) {
                (Some("payment_initiation"), Value::Object(fields)) => payment(fields, locale),
                (Some("account_information"), Value::Object(fields)) => account_access(fields),
                _ => None,
            };
            rendered.unwrap_or_else(|| generic_table(entry))
        })
        .collect()
}

/// Every field as `label: value` rows: nested objects become labels with
/// `›`, arrays of plain values a comma-separated list.
fn generic_table(entry: &Value) -> DetailTable {
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
    DetailTable {
        title,
        summary: None,
        rows,
    }
}

/// The fields a renderer did not show, flattened, so nothing the server
/// signed is hidden.
fn remaining_rows(fields: &Map<String, Value>, shown: &[&str], rows: &mut Vec<(String, String)>) {
    for (key, value) in fields {
        if key != "type" && !shown.contains(&key.as_str()) {
            flatten(&humanize(key), value, rows);
        }
    }
}

/// `payment_initiation` (RFC 9396 §2, the PSD2 shape): "Pay €4,200.00 to
/// Müller GmbH".
fn payment(fields: &Map<String, Value>, locale: &str) -> Option<DetailTable> {
    let amount = fields.get("instructedAmount")?.as_object()?;
    if amount.len() != 2 {
        return None; // something beside amount and currency: show it all
    }
    let currency = amount.get("currency")?.as_str()?;
    let money = Money::parse(amount.get("amount")?, currency)
        .ok()?
        .format(locale);
    let creditor = match fields.get("creditorName") {
        None => None,
        Some(Value::String(name)) if !name.trim().is_empty() => Some(name.trim().to_string()),
        Some(_) => return None,
    };
    let mut rows = vec![("Amount".to_string(), money.clone())];
    let mut shown = vec!["instructedAmount"];
    if let Some(name) = &creditor {
        rows.push(("To".to_string(), name.clone()));
        shown.push("creditorName");
    }
    for (key, label) in [
        ("creditorAccount", "To account"),
        ("debtorAccount", "From account"),
    ] {
        if let Some(account) = fields.get(key).and_then(account_in_words) {
            rows.push((label.to_string(), account));
            shown.push(key);
        }
    }
    if let Some(Value::String(reference)) = fields.get("remittanceInformationUnstructured") {
        rows.push(("Reference".to_string(), reference.clone()));
        shown.push("remittanceInformationUnstructured");
    }
    remaining_rows(fields, &shown, &mut rows);
    let summary = match creditor {
        Some(name) => format!("Pay {money} to {name}"),
        None => format!("Pay {money}"),
    };
    Some(DetailTable {
        title: "Payment".to_string(),
        summary: Some(summary),
        rows,
    })
}

/// An account object (`{"iban": ...}` and the like) in words; `None` when
/// it holds anything else, so the table shows it whole.
fn account_in_words(account: &Value) -> Option<String> {
    let fields = account.as_object()?;
    if fields.len() != 1 {
        return None;
    }
    let (kind, value) = fields.iter().next()?;
    let value = value.as_str()?;
    match kind.as_str() {
        "iban" => Some(group_iban(value)),
        "bban" | "pan" | "maskedPan" | "msisdn" => Some(value.to_string()),
        _ => None,
    }
}

/// `DE89370400440532013000` → `DE89 3704 0044 0532 0130 00`.
pub fn group_iban(iban: &str) -> String {
    let compact: Vec<char> = iban.chars().filter(|c| !c.is_whitespace()).collect();
    compact
        .chunks(4)
        .map(|chunk| chunk.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `account_information`: the actions (RFC 9396 example) or the Berlin
/// Group `access` object, in words.
fn account_access(fields: &Map<String, Value>) -> Option<DetailTable> {
    let mut what: Vec<String> = Vec::new();
    let mut accounts: Vec<String> = Vec::new();
    let mut shown = Vec::new();
    if let Some(actions) = fields.get("actions") {
        for action in actions.as_array()? {
            what.push(action_in_words(action.as_str()?));
        }
        shown.push("actions");
    }
    if let Some(access) = fields.get("access") {
        let access = access.as_object()?;
        for (kind, value) in access {
            let words = match kind.as_str() {
                "accounts" => "your account details",
                "balances" => "balances",
                "transactions" => "transactions",
                "availableAccounts" | "allPsd2" => return None, // says more than a list
                _ => return None,
            };
            what.push(words.to_string());
            for account in value.as_array()? {
                let named = account_in_words(account)?;
                if !accounts.contains(&named) {
                    accounts.push(named);
                }
            }
        }
        shown.push("access");
    }
    if what.is_empty() {
        return None;
    }
    what.dedup();
    let list = words_list(&what);
    let mut rows = vec![("Access".to_string(), capitalize(&list))];
    if !accounts.is_empty() {
        rows.push(("Accounts".to_string(), accounts.join(", ")));
    }
    if let Some(locations) = fields.get("locations").and_then(Value::as_array) {
        let hosts: Option<Vec<String>> = locations
            .iter()
            .map(|l| l.as_str().and_then(host_of))
            .collect();
        if let Some(hosts) = hosts {
            rows.push(("At".to_string(), hosts.join(", ")));
            shown.push("locations");
        }
    }
    remaining_rows(fields, &shown, &mut rows);
    let summary = if accounts.is_empty() {
        format!("Read {list}")
    } else {
        format!("Read {list} of {}", accounts.join(", "))
    };
    Some(DetailTable {
        title: "Account access".to_string(),
        summary: Some(summary),
        rows,
    })
}

fn action_in_words(action: &str) -> String {
    match action {
        "list_accounts" => "your account list".to_string(),
        "read_balances" => "balances".to_string(),
        "read_transactions" => "transactions".to_string(),
        "read_account_details" | "read_accounts" => "your account details".to_string(),
        other => humanize(other).to_lowercase(),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn words_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
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

    fn rows(table: &DetailTable) -> Vec<(&str, &str)> {
        table
            .rows
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn a_payment_reads_as_one_sentence_in_the_users_locale() {
        let details = json!([{
            "type": "payment_initiation",
            "locations": ["https://bank.example/payments"],
            "instructedAmount": {"currency": "EUR", "amount": "4200.00"},
            "creditorName": "Müller GmbH",
            "creditorAccount": {"iban": "DE89370400440532013000"},
            "remittanceInformationUnstructured": "Invoice 2026-117",
            "endToEndId": "E2E-88"
        }]);
        let us = detail_tables(&details, "en-US");
        assert_eq!(us[0].title, "Payment");
        assert_eq!(
            us[0].summary.as_deref(),
            Some("Pay €4,200.00 to Müller GmbH")
        );
        assert_eq!(
            rows(&us[0]),
            [
                ("Amount", "€4,200.00"),
                ("To", "Müller GmbH"),
                ("To account", "DE89 3704 0044 0532 0130 00"),
                ("Reference", "Invoice 2026-117"),
                // Fields the renderer has no words for are still shown.
                ("End to end id", "E2E-88"),
                ("Locations", "https://bank.example/payments"),
            ]
        );
        let de = detail_tables(&details, "de-DE");
        assert_eq!(
            de[0].summary.as_deref(),
            Some("Pay 4.200,00\u{a0}€ to Müller GmbH")
        );
        let fr = detail_tables(&details, "fr-FR");
        assert_eq!(
            fr[0].summary.as_deref(),
            Some("Pay 4\u{202f}200,00\u{a0}€ to Müller GmbH")
        );
        let inr = json!({"type": "payment_initiation",
            "instructedAmount": {"currency": "INR", "amount": 1234567}});
        let india = detail_tables(&inr, "en-IN");
        assert_eq!(
            india[0].summary.as_deref(),
            Some("Pay ₹12,34,567.00"),
            "no creditor: no 'to'"
        );
        let yen = json!({"type": "payment_initiation",
            "instructedAmount": {"currency": "JPY", "amount": "1500"}, "creditorName": "Shop"});
        assert_eq!(
            detail_tables(&yen, "ja-JP")[0].summary.as_deref(),
            Some("Pay ¥1,500 (JPY) to Shop")
        );
    }

    #[test]
    fn a_payment_that_cannot_be_read_fully_is_shown_as_a_table() {
        for amount in [json!("12,5"), json!("-10"), json!("4200.001"), json!(true)] {
            let details = json!({"type": "payment_initiation",
                "instructedAmount": {"currency": "EUR", "amount": amount}, "creditorName": "X"});
            let table = &detail_tables(&details, "en-US")[0];
            assert_eq!(table.summary, None, "{amount}");
            assert_eq!(table.title, "Payment initiation");
            assert!(rows(table).contains(&("Creditor name", "X")));
        }
        // An amount object with more in it than amount and currency.
        let details = json!({"type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "1", "exchangeRate": "0.5"}});
        assert_eq!(detail_tables(&details, "en-US")[0].summary, None);
        // An account that is not a single known identifier is shown whole.
        let details = json!({"type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "1"},
            "creditorAccount": {"iban": "DE89370400440532013000", "note": "also this"}});
        let table = &detail_tables(&details, "en-US")[0];
        assert!(rows(table).contains(&("Creditor account \u{203a} Note", "also this")));
    }

    #[test]
    fn account_information_says_what_may_be_read_of_which_accounts() {
        let actions = json!([{
            "type": "account_information",
            "actions": ["list_accounts", "read_balances", "read_transactions"],
            "locations": ["https://example.com/accounts"]
        }]);
        let table = &detail_tables(&actions, "en-US")[0];
        assert_eq!(table.title, "Account access");
        assert_eq!(
            table.summary.as_deref(),
            Some("Read your account list, balances and transactions")
        );
        assert_eq!(
            rows(table),
            [
                ("Access", "Your account list, balances and transactions"),
                ("At", "example.com")
            ]
        );
        let berlin_group = json!({
            "type": "account_information",
            "access": {
                "accounts": [{"iban": "DE40100100103307118608"}],
                "balances": [{"iban": "DE40100100103307118608"}],
                "transactions": [{"iban": "DE40100100103307118608"}, {"maskedPan": "123456xxxxxx1234"}]
            },
            "recurringIndicator": true
        });
        let table = &detail_tables(&berlin_group, "en-US")[0];
        assert_eq!(
            table.summary.as_deref(),
            Some("Read your account details, balances and transactions of DE40 1001 0010 3307 1186 08, 123456xxxxxx1234")
        );
        assert!(rows(table).contains(&("Recurring indicator", "yes")));
        // "All accounts" says more than a list: the table shows it as it is.
        let all = json!({"type": "account_information", "access": {"allPsd2": "allAccounts"}});
        assert_eq!(detail_tables(&all, "en-US")[0].summary, None);
    }

    #[test]
    fn other_types_become_a_table_of_every_field() {
        let tables = detail_tables(
            &json!([{
                "type": "customer_information",
                "instructedAmount": {"currency": "EUR", "amount": "250.00"},
                "creditorName": "Merchant A",
                "locations": ["https://bank.example/payments"],
                "recurring": false
            }]),
            "en-US",
        );
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].title, "Customer information");
        assert_eq!(tables[0].summary, None);
        let rows = rows(&tables[0]);
        assert!(rows.contains(&("Instructed amount \u{203a} Currency", "EUR")));
        assert!(rows.contains(&("Instructed amount \u{203a} Amount", "250.00")));
        assert!(rows.contains(&("Creditor name", "Merchant A")));
        assert!(rows.contains(&("Locations", "https://bank.example/payments")));
        assert!(rows.contains(&("Recurring", "no")));
    }

    #[test]
    fn the_website_is_shown_by_its_host() {
        assert_eq!(
            host_of("https://www.bank.example/about?x=1").as_deref(),
            Some("www.bank.example")
        );
        assert_eq!(
            host_of("https://user@bank.example:8443").as_deref(),
            Some("bank.example:8443")
        );
        assert_eq!(host_of("not a url"), None);
    }

    fn claims(purpose: RequestPurpose, binding_message: &str) -> ChallengeClaims {
        ChallengeClaims {
            v: 1,
            iss: "https://auth.example.com".into(),
            request_id: "req-1".into(),
            nonce: "n".into(),
            client_id: "payroll-id".into(),
            client_name: "Payroll".into(),
            binding_message: binding_message.into(),
            scope: vec!["openid".into()],
            audience: None,
            authorization_details: None,
            requester: assent_shared::protocol::Requester {
                ip: Some("203.0.113.7".into()),
                user_agent: None,
            },
            iat: 1_000,
            exp: 1_300,
            match_code_digits: Some(2),
            user_verification_required: true,
            client_uri: None,
            logo_uri: None,
            purpose,
        }
    }

    #[test]
    fn a_second_step_reads_as_the_persons_own_sign_in() {
        let view = RequestView::new(
            "acct",
            "alice@example.com",
            &claims(RequestPurpose::Mfa, "Sign in to Payroll"),
            "en-US",
        );
        assert_eq!(view.purpose, RequestPurpose::Mfa);
        assert_eq!(view.headline, "Sign-in to Payroll");
        assert_eq!(view.question, "Is this you signing in to Payroll?");
        assert_eq!(
            view.intro,
            "Second step of your sign-in as alice@example.com"
        );
        assert_eq!(view.context, "Second step of your sign-in");
        assert!(view.key_lines.is_empty(), "{:?}", view.key_lines);
        // Number matching and the PIN are asked as for any request.
        assert_eq!(view.match_code_digits, Some(2));
        assert!(view.user_verification_required);
        assert_eq!(
            view.notification(),
            (
                "Is this you signing in to Payroll?".to_string(),
                "Second step of your sign-in as alice@example.com".to_string()
            )
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["purpose"], "mfa");
        assert_eq!(json["question"], "Is this you signing in to Payroll?");

        // A message other than the server's usual one is still shown.
        let unusual = RequestView::new(
            "acct",
            "alice@example.com",
            &claims(RequestPurpose::Mfa, "Sign in to Payroll from Berlin"),
            "en-US",
        );
        assert_eq!(unusual.question, "Is this you signing in to Payroll?");
        assert_eq!(unusual.key_lines, ["Sign in to Payroll from Berlin"]);
    }

    #[test]
    fn a_back_channel_request_leads_with_its_binding_message() {
        let view = RequestView::new(
            "acct",
            "alice@example.com",
            &claims(RequestPurpose::Backchannel, "Transfer 5 EUR #4711"),
            "en-US",
        );
        assert_eq!(view.purpose, RequestPurpose::Backchannel);
        assert_eq!(view.headline, "Transfer 5 EUR #4711");
        assert_eq!(view.question, "Transfer 5 EUR #4711");
        assert_eq!(view.intro, "Payroll asks to sign in as alice@example.com");
        assert_eq!(view.context, "Payroll");
        assert_eq!(
            view.notification(),
            (
                "Sign-in request from Payroll".to_string(),
                "Transfer 5 EUR #4711".to_string()
            )
        );
        assert_eq!(
            serde_json::to_value(&view).unwrap()["purpose"],
            "backchannel"
        );
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
