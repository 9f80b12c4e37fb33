//! Reading a `/bc-authorize` request (CIBA Core 7.1): every parameter
//! checked, without I/O, before anything is stored.

use assent_shared::oauth::{acr, Assurance};
use serde::Deserialize;

use crate::{error::OAuthError, params::Params, storage::UserLookup};

use super::MAX_SCOPE_LEN;

const MAX_BINDING_MESSAGE_CHARS: usize = 64;
const MAX_HINT_LEN: usize = 1024;
const MAX_ID_TOKEN_HINT_LEN: usize = 8 * 1024;
const MAX_AUDIENCE_LEN: usize = 512;
const MAX_AUTHORIZATION_DETAILS_LEN: usize = 8 * 1024;
const MAX_ACR_VALUES_LEN: usize = 512;

/// Who the client says the request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// `login_hint`: resolved to a user by `sub`, then by e-mail.
    Login(UserLookup),
    /// `id_token_hint`: an ID token we issued; verified when the client is known.
    IdToken(String),
}

/// A syntactically valid `/bc-authorize` request, before any I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelRequest {
    pub scopes: Vec<String>,
    pub hint: Hint,
    pub binding_message: String,
    pub requested_expiry: Option<u64>,
    pub audience: Option<String>,
    /// Compact JSON text of a validated array.
    pub authorization_details: Option<String>,
    /// The minimum the first known `acr_values` entry asks for (CIBA Core
    /// 7.1: a space-separated list in order of preference).
    pub min_assurance: Assurance,
}

/// Validates the parameters of `/bc-authorize` (CIBA Core 7.1) without I/O.
pub fn parse_backchannel_request(
    params: &Params,
    issuer_matches: impl Fn(&str) -> bool,
) -> Result<BackchannelRequest, OAuthError> {
    if params.contains("request") || params.contains("request_uri") {
        return Err(OAuthError::invalid_request(
            "signed authentication requests (request, request_uri) are not supported",
        ));
    }
    let scope = params.required("scope", MAX_SCOPE_LEN)?;
    let scopes = parse_scope(scope)?;
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::invalid_scope("scope must include openid"));
    }

    let hint = parse_hint(params, issuer_matches)?;

    let binding_message = params
        .optional("binding_message", 4 * MAX_BINDING_MESSAGE_CHARS)
        .map_err(|_| binding_error())?
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter binding_message"))?;
    validate_binding_message(binding_message)?;

    let requested_expiry = params
        .optional("requested_expiry", 16)?
        .map(parse_requested_expiry)
        .transpose()?;

    let audience = parse_audience(params)?;

    let authorization_details = params
        .optional("authorization_details", MAX_AUTHORIZATION_DETAILS_LEN)?
        .map(parse_authorization_details)
        .transpose()?;

    let min_assurance = params
        .optional("acr_values", MAX_ACR_VALUES_LEN)?
        .map(parse_acr_values)
        .transpose()?
        .unwrap_or_default();

    Ok(BackchannelRequest {
        scopes,
        hint,
        binding_message: binding_message.to_string(),
        requested_expiry,
        audience,
        authorization_details,
        min_assurance,
    })
}

/// `acr_values`: the first value this server knows sets the minimum; a
/// list of only unknown values cannot be satisfied and is refused now, not
/// after the user has been asked.
fn parse_acr_values(values: &str) -> Result<Assurance, OAuthError> {
    let mut values = values.split(' ').filter(|s| !s.is_empty()).peekable();
    if values.peek().is_none() {
        return Ok(Assurance::default());
    }
    values.find_map(Assurance::from_acr).ok_or_else(|| {
        OAuthError::invalid_request(format!(
            "acr_values names no level this server provides; supported: {}",
            acr::SUPPORTED.join(" ")
        ))
    })
}

/// Space-separated scope tokens (RFC 6749 3.3), duplicates removed, order kept.
/// The API a token request is for: `audience` (Auth0) or `resource` (RFC
/// 8707), which must agree when both are sent.
pub fn parse_audience(params: &Params) -> Result<Option<String>, OAuthError> {
    match (
        params.optional("audience", MAX_AUDIENCE_LEN)?,
        params.optional("resource", MAX_AUDIENCE_LEN)?,
    ) {
        (Some(a), Some(r)) if a != r => Err(OAuthError::invalid_request(
            "audience and resource name different APIs: send one of them",
        )),
        (a, r) => Ok(a.or(r).map(str::to_string)),
    }
}

/// Scope tokens (RFC 6749 3.3), each once, in the order given.
pub fn parse_scope(scope: &str) -> Result<Vec<String>, OAuthError> {
    let mut scopes: Vec<String> = Vec::new();
    for token in scope.split(' ').filter(|s| !s.is_empty()) {
        let valid = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(OAuthError::invalid_scope(
                "scope contains invalid characters",
            ));
        }
        if !scopes.iter().any(|s| s == token) {
            scopes.push(token.to_string());
        }
    }
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("scope is empty"));
    }
    Ok(scopes)
}

fn parse_hint(params: &Params, issuer_matches: impl Fn(&str) -> bool) -> Result<Hint, OAuthError> {
    let login_hint = params.optional("login_hint", MAX_HINT_LEN)?;
    let id_token_hint = params.optional("id_token_hint", MAX_ID_TOKEN_HINT_LEN)?;
    let login_hint_token = params.contains("login_hint_token");
    let given = usize::from(login_hint.is_some())
        + usize::from(id_token_hint.is_some())
        + usize::from(login_hint_token);
    if given != 1 {
        return Err(OAuthError::invalid_request(
            "exactly one of login_hint, id_token_hint and login_hint_token is required",
        ));
    }
    if login_hint_token {
        return Err(OAuthError::invalid_request(
            "login_hint_token is not supported: use login_hint or id_token_hint",
        ));
    }
    if let Some(token) = id_token_hint {
        return Ok(Hint::IdToken(token.to_string()));
    }
    let hint = login_hint.unwrap_or_default().trim();
    if hint.starts_with('{') {
        return parse_structured_login_hint(hint, issuer_matches).map(Hint::Login);
    }
    if hint.is_empty() {
        return Err(OAuthError::invalid_request("login_hint is empty"));
    }
    Ok(Hint::Login(UserLookup {
        sub: hint.to_string(),
        email: hint.contains('@').then(|| hint.to_string()),
    }))
}

/// A JSON `login_hint` in the subject-identifier formats of RFC 9493:
/// `iss_sub` (Auth0's form), `email` and `opaque`.
fn parse_structured_login_hint(
    hint: &str,
    issuer_matches: impl Fn(&str) -> bool,
) -> Result<UserLookup, OAuthError> {
    #[derive(Deserialize)]
    struct SubjectIdentifier {
        format: String,
        iss: Option<String>,
        sub: Option<String>,
        email: Option<String>,
        id: Option<String>,
    }
    let id: SubjectIdentifier = serde_json::from_str(hint).map_err(|_| {
        OAuthError::invalid_request("login_hint is not a valid subject identifier JSON object")
    })?;
    let missing = |member: &str| {
        OAuthError::invalid_request(format!(
            "login_hint of format {} needs a string {member}",
            id.format
        ))
    };
    match id.format.as_str() {
        "iss_sub" => {
            let iss = id.iss.as_deref().ok_or_else(|| missing("iss"))?;
            if !issuer_matches(iss) {
                return Err(OAuthError::invalid_request(
                    "login_hint iss is not the issuer of this server",
                ));
            }
            let sub = id
                .sub
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("sub"))?;
            Ok(UserLookup { sub, email: None })
        }
        "email" => {
            let email = id
                .email
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("email"))?;
            // No user has an empty `sub`, so only the e-mail can match.
            Ok(UserLookup {
                sub: String::new(),
                email: Some(email),
            })
        }
        "opaque" => {
            let sub = id
                .id
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("id"))?;
            Ok(UserLookup { sub, email: None })
        }
        _ => Err(OAuthError::invalid_request(
            "login_hint format must be iss_sub, email or opaque",
        )),
    }
}

fn binding_error() -> OAuthError {
    OAuthError::invalid_binding_message(
        "binding_message must be 1 to 64 letters, digits, spaces or + - _ . , : #",
    )
}

/// 1 to 64 characters: Unicode letters and digits, spaces, `+-_.,:#`.
pub fn validate_binding_message(message: &str) -> Result<(), OAuthError> {
    let count = message.chars().count();
    let allowed =
        |c: char| c.is_alphanumeric() || matches!(c, ' ' | '+' | '-' | '_' | '.' | ',' | ':' | '#');
    if count == 0 || count > MAX_BINDING_MESSAGE_CHARS || message.trim().is_empty() {
        return Err(binding_error());
    }
    if let Some(bad) = message.chars().find(|&c| !allowed(c)) {
        // Named by code point too: the offender may be invisible (a tab, a
        // zero-width space) or look like an allowed one.
        return Err(OAuthError::invalid_binding_message(format!(
            "binding_message may not contain {} (U+{:04X}): use letters, digits, spaces or + - _ . , : #",
            if bad.is_ascii_graphic() && !matches!(bad, '"' | '\\') {
                format!("'{bad}'")
            } else {
                "this character".to_string()
            },
            bad as u32
        )));
    }
    Ok(())
}

fn parse_requested_expiry(value: &str) -> Result<u64, OAuthError> {
    let bad = || OAuthError::invalid_request("requested_expiry must be an integer from 1 to 300");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: u64 = value.parse().map_err(|_| bad())?;
    if !(1..=crate::config::MAX_REQUEST_EXPIRY).contains(&secs) {
        return Err(bad());
    }
    Ok(secs)
}

/// RFC 9396: a JSON array of objects, each with a string `type`.
fn parse_authorization_details(text: &str) -> Result<String, OAuthError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| OAuthError::invalid_request("authorization_details is not valid JSON"))?;
    let items = value
        .as_array()
        .ok_or_else(|| OAuthError::invalid_request("authorization_details must be a JSON array"))?;
    if items.is_empty() {
        return Err(OAuthError::invalid_request(
            "authorization_details is empty",
        ));
    }
    refuse_hidden_characters(&value)?;
    for item in items {
        let has_type = item
            .as_object()
            .and_then(|o| o.get("type"))
            .and_then(|t| t.as_str())
            .is_some_and(|t| !t.is_empty());
        if !has_type {
            return Err(OAuthError::invalid_request(
                "each authorization_details entry must be an object with a string type",
            ));
        }
    }
    Ok(value.to_string())
}

/// The details are shown to the user as they decide (a payee, an amount):
/// no member name or string may hide text or change its direction, and a
/// NUL (which some displays take for the end of the text) is refused too.
fn refuse_hidden_characters(value: &serde_json::Value) -> Result<(), OAuthError> {
    let check = |text: &str| {
        match assent_shared::text::hidden_character(text) {
        None => Ok(()),
        Some('\0') => Err(OAuthError::invalid_request(
            "authorization_details contains a NUL character",
        )),
        Some(c) => Err(OAuthError::invalid_request(format!(
            "authorization_details contains {}, an invisible, control or direction-changing character",
            assent_shared::text::code_point(c)
        ))),
    }
    };
    match value {
        serde_json::Value::String(text) => check(text),
        serde_json::Value::Array(items) => items.iter().try_for_each(refuse_hidden_characters),
        serde_json::Value::Object(members) => members.iter().try_for_each(|(name, value)| {
            check(name)?;
            refuse_hidden_characters(value)
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OAuthErrorCode;

    fn parse(pairs: &[(&str, &str)]) -> Result<BackchannelRequest, OAuthError> {
        parse_backchannel_request(&Params::from_pairs(pairs.iter().copied()), |iss| {
            iss.trim_end_matches('/') == "https://assent.example"
        })
    }

    const BASE: [(&str, &str); 3] = [
        ("scope", "openid email"),
        ("login_hint", "alice"),
        ("binding_message", "Order 1234"),
    ];

    #[test]
    fn a_minimal_request_parses() {
        let r = parse(&BASE).unwrap();
        assert_eq!(r.scopes, ["openid", "email"]);
        assert_eq!(
            r.hint,
            Hint::Login(UserLookup {
                sub: "alice".into(),
                email: None
            })
        );
    }

    #[test]
    fn iss_sub_hints_must_name_this_issuer() {
        let mut p = BASE.to_vec();
        p[1] = (
            "login_hint",
            r#"{"format":"iss_sub","iss":"https://assent.example/","sub":"auth0|1"}"#,
        );
        assert_eq!(
            parse(&p).unwrap().hint,
            Hint::Login(UserLookup {
                sub: "auth0|1".into(),
                email: None
            })
        );
        p[1] = (
            "login_hint",
            r#"{"format":"iss_sub","iss":"https://evil.example/","sub":"auth0|1"}"#,
        );
        assert_eq!(parse(&p).unwrap_err().code, OAuthErrorCode::InvalidRequest);
    }

    #[test]
    fn binding_messages_follow_the_character_rules() {
        for ok in [
            "Order 1234",
            "Überweisung #7: 12,50 EUR",
            "a",
            &"x".repeat(64),
        ] {
            assert!(validate_binding_message(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "   ",
            "semi;colon",
            "quote\"",
            &"x".repeat(65),
            "new\nline",
        ] {
            assert_eq!(
                validate_binding_message(bad).unwrap_err().code,
                OAuthErrorCode::InvalidBindingMessage,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refused_binding_message_names_the_character() {
        let e = validate_binding_message("semi;colon").unwrap_err();
        assert!(e.description.contains("';' (U+003B)"), "{}", e.description);
        let e = validate_binding_message("zero\u{200b}width").unwrap_err();
        assert!(e.description.contains("U+200B"), "{}", e.description);
    }

    #[test]
    fn acr_values_set_a_minimum_or_are_refused() {
        use assent_shared::oauth::acr;
        assert_eq!(parse_acr_values("").unwrap(), Assurance::default());
        assert_eq!(
            parse_acr_values(&format!("urn:unknown {}", acr::PUSH_UV)).unwrap(),
            Assurance::from_acr(acr::PUSH_UV).unwrap(),
            "the first value this server knows wins"
        );
        let e = parse_acr_values("urn:mace:incommon:iap:silver").unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
        assert!(e.description.contains(acr::PUSH_MATCH_UV));
    }

    #[test]
    fn requested_expiry_is_bounded() {
        for (value, ok) in [
            ("1", true),
            ("300", true),
            ("0", false),
            ("301", false),
            ("-5", false),
            ("1.5", false),
            ("abc", false),
        ] {
            let mut p = BASE.to_vec();
            p.push(("requested_expiry", value));
            assert_eq!(parse(&p).is_ok(), ok, "{value}");
        }
    }

    #[test]
    fn authorization_details_numbers_are_stored_as_sent() {
        // Found by fuzzing: without serde_json's float_roundtrip, 8.11e151
        // came back as 8.110000000000001e151, and drifted on each re-parse.
        for number in ["8.11e151", "4200.5", "0.1", "1234567.89"] {
            let text = format!(r#"[{{"type":"payment","amount":{number}}}]"#);
            let stored = parse_authorization_details(&text).unwrap();
            let sent: f64 = number.parse().unwrap();
            let kept: serde_json::Value = serde_json::from_str(&stored).unwrap();
            assert_eq!(kept[0]["amount"].as_f64(), Some(sent), "{stored}");
            assert_eq!(
                parse_authorization_details(&stored).unwrap(),
                stored,
                "stable"
            );
        }
    }

    #[test]
    fn authorization_details_must_be_typed_objects() {
        for (value, ok) in [
            (r#"[{"type":"payment","amount":"12.50"}]"#, true),
            (r#"{"type":"payment"}"#, false),
            (r#"[{"amount":1}]"#, false),
            (r#"[{"type":7}]"#, false),
            ("[", false),
            // Hidden or NUL characters, escaped in the JSON, in a value or a name.
            (
                r#"[{"type":"payment","creditorName":"Mu\u0000ller"}]"#,
                false,
            ),
            (r#"[{"type":"payment","creditorName":"\u202Eknab"}]"#, false),
            (r#"[{"type":"payment","na\u200Bme":"x"}]"#, false),
            (
                r#"[{"type":"payment","lines":[{"text":"a\u0007"}]}]"#,
                false,
            ),
            (r#"[{"type":"payment","creditorName":"Müller GmbH"}]"#, true),
        ] {
            let mut p = BASE.to_vec();
            p.push(("authorization_details", value));
            assert_eq!(parse(&p).is_ok(), ok, "{value}");
        }
    }
}
