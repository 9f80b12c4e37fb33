//! The form parser (`assent_server::params::Params::parse`): every
//! `application/x-www-form-urlencoded` body the OAuth endpoints read.
//!
//! Input: a request body. Seeds: real bodies of `/bc-authorize`,
//! `/oauth/token` and `/userinfo`.
#![no_main]

use std::collections::HashSet;

use assent_server::{
    error::{sanitize_description, OAuthErrorCode},
    params::Params,
};
use libfuzzer_sys::fuzz_target;

/// Names the endpoints read, for the `optional`/`required` checks.
const NAMES: [&str; 6] = [
    "scope",
    "login_hint",
    "binding_message",
    "grant_type",
    "auth_req_id",
    "access_token",
];

fuzz_target!(|data: &[u8]| {
    // The reference: what the body means, pair by pair, with no rule applied.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    let mut names = HashSet::new();
    let repeated = pairs.iter().any(|(name, _)| !names.insert(name.as_str()));
    let nul = pairs
        .iter()
        .any(|(name, value)| name.contains('\0') || value.contains('\0'));

    let params = match Params::parse(data) {
        Ok(params) => params,
        Err(e) => {
            // Refused exactly when a name repeats or a NUL appears.
            assert!(repeated || nul, "refused a valid body: {}", e.description);
            assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
            // The description quotes at most 64 characters of the name, and
            // never a NUL (it reaches logs and the error body).
            assert!(!e.description.contains('\0'));
            assert!(e.description.chars().count() <= 64 + 64);
            let shown = sanitize_description(&e.description);
            assert!(shown
                .bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)));
            return;
        }
    };
    assert!(!repeated && !nul, "accepted a repeated name or a NUL");

    // Every value is the decoded one; empty values count as absent (RFC 6749
    // 3.1); nothing holds a NUL.
    for (name, value) in &pairs {
        if value.is_empty() {
            assert_eq!(params.get(name), None);
            assert!(!params.contains(name));
        } else {
            assert_eq!(params.get(name), Some(value.as_str()));
            assert!(params.contains(name));
        }
    }
    for name in NAMES {
        let value = params.get(name);
        assert!(!value.is_some_and(|v| v.contains('\0')));
        for max_len in [0, 8, 1024] {
            match params.optional(name, max_len) {
                Ok(got) => {
                    assert_eq!(got, value);
                    assert!(got.is_none_or(|v| v.len() <= max_len));
                }
                Err(e) => {
                    assert!(value.is_some_and(|v| v.len() > max_len));
                    assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
                }
            }
            assert_eq!(
                params.required(name, max_len).ok(),
                params.optional(name, max_len).ok().flatten()
            );
        }
    }

    // Round trip: the pairs serialised again parse to the same parameters.
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in &pairs {
        serializer.append_pair(name, value);
    }
    let body = serializer.finish();
    let again = Params::parse(body.as_bytes()).expect("a re-serialised valid body parses");
    for (name, _) in &pairs {
        assert_eq!(again.get(name), params.get(name));
    }
});
