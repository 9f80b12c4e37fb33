//! The `/bc-authorize` parameters, the login hint above all, through the
//! public entry point the HTTP layer uses:
//! `Params::parse` then `assent_server::ciba::parse_backchannel_request`.
//!
//! Input: the `login_hint` value, optionally followed by fields separated
//! by 0xFF bytes (a byte UTF-8 never uses):
//! `login_hint 0xFF scope 0xFF binding_message 0xFF more-form-body`.
//! Absent fields take a valid default; the first three are form-encoded
//! into the body, the last is appended to it as it is (any other parameter:
//! `id_token_hint`, `requested_expiry`, `authorization_details`, a second
//! `login_hint`...). Seeds: a login hint of each format.
#![no_main]

use assent_server::{
    ciba::{parse_backchannel_request, validate_binding_message, Hint},
    endpoints::Endpoints,
    error::{sanitize_description, OAuthErrorCode},
    params::Params,
    storage::UserLookup,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const ISSUER: &str = "https://assent.example/";

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|b| *b == 0xff);
    let mut field = |default: &str| {
        fields
            .next()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_else(|| default.to_string())
    };
    let login_hint = field("alice");
    let scope = field("openid profile email");
    let binding_message = field("Order 1234");
    let more = field("");

    let mut body = form_urlencoded::Serializer::new(String::new())
        .append_pair("scope", &scope)
        .append_pair("login_hint", &login_hint)
        .append_pair("binding_message", &binding_message)
        .finish();
    if !more.is_empty() {
        body.push('&');
        body.push_str(&more);
    }
    // What the HTTP layer does with a `/bc-authorize` body.
    let Ok(params) = Params::parse(body.as_bytes()) else {
        return;
    };
    let endpoints = Endpoints::new(ISSUER);
    let result = parse_backchannel_request(&params, |iss| endpoints.is_issuer(iss));

    let expected_hint = expected_hint(&params);
    let request = match result {
        Ok(request) => request,
        Err(e) => {
            assert!(
                matches!(
                    e.code,
                    OAuthErrorCode::InvalidRequest
                        | OAuthErrorCode::InvalidScope
                        | OAuthErrorCode::InvalidBindingMessage
                ),
                "{:?}",
                e.code
            );
            assert!(!e.description.is_empty());
            assert!(sanitize_description(&e.description)
                .bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)));
            return;
        }
    };

    // The hint is what the model says; a hint the model refuses (an `iss`
    // of another server above all) never gets this far. The model may
    // accept a JSON hint the server refuses (a member repeated, or of the
    // wrong type where the format does not need it): that direction is
    // not checked.
    assert_eq!(
        Some(&request.hint),
        expected_hint.as_ref(),
        "login_hint {:?}",
        params.get("login_hint")
    );
    if let Hint::Login(lookup) = &request.hint {
        assert!(!lookup.sub.is_empty() || lookup.email.as_ref().is_some_and(|e| !e.is_empty()));
    }

    // Scopes: the tokens of `scope`, deduplicated, `openid` among them, each
    // of the characters RFC 6749 3.3 allows.
    let given: Vec<&str> = params.get("scope").unwrap().split(' ').collect();
    assert!(request.scopes.iter().any(|s| s == "openid"));
    for (i, s) in request.scopes.iter().enumerate() {
        assert!(given.contains(&s.as_str()));
        assert!(!request.scopes[..i].contains(s), "duplicate scope {s}");
        assert!(s
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)));
    }

    assert_eq!(
        Some(request.binding_message.as_str()),
        params.get("binding_message")
    );
    assert!(validate_binding_message(&request.binding_message).is_ok());
    assert!((1..=64).contains(&request.binding_message.chars().count()));

    if let Some(expiry) = request.requested_expiry {
        assert!((1..=300).contains(&expiry));
        let given = params.get("requested_expiry").unwrap();
        assert!(given.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(given.parse::<u64>().ok(), Some(expiry));
    }
    if let Some(audience) = &request.audience {
        assert!(
            params.get("audience") == Some(audience) || params.get("resource") == Some(audience)
        );
    }
    if let Some(details) = &request.authorization_details {
        // Stored as JSON that means what the client sent. Not as text that
        // re-serialises to itself: serde_json (without its `float_roundtrip`
        // feature) may parse a float one unit in the last place off, so
        // `8.11e151` is stored as 8.110000000000001e+151, which parses to
        // ...002e+151 (found by this target; docs/fuzzing.md).
        let value: Value = serde_json::from_str(details).expect("stored as JSON");
        let sent: Value =
            serde_json::from_str(params.get("authorization_details").unwrap()).unwrap();
        assert!(same_json(&value, &sent), "{details} from {sent}");
        let items = value.as_array().expect("an array");
        assert!(!items.is_empty());
        assert!(items
            .iter()
            .all(|i| i["type"].as_str().is_some_and(|t| !t.is_empty())));
    }
});

/// Equal JSON, but floats may differ in their last digits.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => {
                        let off = (x - y).abs();
                        off <= 1e-12 * x.abs().max(y.abs()) || off < f64::MIN_POSITIVE
                    }
                    _ => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(name, a)| y.get(name).is_some_and(|b| same_json(a, b)))
        }
        _ => a == b,
    }
}

/// The hint a valid request carries, by the rules of CIBA Core 7.1 and
/// RFC 9493 as the server documents them; `None` where it must be refused.
fn expected_hint(params: &Params) -> Option<Hint> {
    let login_hint = params.get("login_hint");
    let id_token_hint = params.get("id_token_hint");
    match (
        login_hint,
        id_token_hint,
        params.contains("login_hint_token"),
    ) {
        (None, Some(token), false) if token.len() <= 8 * 1024 => {
            return Some(Hint::IdToken(token.to_string()))
        }
        (Some(hint), None, false) if hint.len() <= 1024 => {}
        _ => return None,
    }
    let hint = login_hint?.trim();
    if !hint.starts_with('{') {
        return (!hint.is_empty()).then(|| {
            Hint::Login(UserLookup {
                sub: hint.to_string(),
                email: hint.contains('@').then(|| hint.to_string()),
            })
        });
    }
    let Value::Object(id) = serde_json::from_str::<Value>(hint).ok()? else {
        return None;
    };
    // A member present must be a string or null.
    let member = |name: &str| -> Result<Option<String>, ()> {
        match id.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(()),
        }
    };
    let (iss, sub, email, opaque) = (
        member("iss").ok()?,
        member("sub").ok()?,
        member("email").ok()?,
        member("id").ok()?,
    );
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let lookup = match id.get("format")?.as_str()? {
        "iss_sub" => {
            let iss = iss?;
            if iss.trim_end_matches('/') != ISSUER.trim_end_matches('/') {
                return None;
            }
            UserLookup {
                sub: non_empty(sub)?,
                email: None,
            }
        }
        "email" => UserLookup {
            sub: String::new(),
            email: Some(non_empty(email)?),
        },
        "opaque" => UserLookup {
            sub: non_empty(opaque)?,
            email: None,
        },
        _ => return None,
    };
    Some(Hint::Login(lookup))
}
