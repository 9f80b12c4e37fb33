//! The JSON body parser (`assent_server::params::Params::parse_json`):
//! every `application/json` body the OAuth endpoints read, as Auth0's SDKs
//! send them.
//!
//! Input: a request body. Seeds: JSON bodies of `/oauth/token`,
//! `/passwordless/start` and the back-end API.
#![no_main]

use assent_server::{
    error::{sanitize_description, OAuthErrorCode},
    params::{Params, JSON_TEXT_PARAMETERS, OBJECT_PARAMETERS},
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The reference: serde_json's reading (which keeps the last of repeated keys).
    let reference: Option<serde_json::Map<String, Value>> =
        serde_json::from_slice::<Value>(data).ok().and_then(|v| match v {
            Value::Object(map) => Some(map),
            _ => None,
        });
    let params = match Params::parse_json(data) {
        Ok(params) => params,
        Err(e) => {
            assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
            assert!(!e.description.contains('\0'));
            let shown = sanitize_description(&e.description);
            assert!(shown
                .bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)));
            return;
        }
    };
    // Accepted: serde_json reads it as an object too, and (repeated keys
    // being refused) each parameter is what serde_json says it is.
    let map = reference.expect("accepted a body serde_json refuses or that is no object");
    for (name, value) in &map {
        match value {
            Value::Null => assert_eq!(params.get(name), None),
            Value::String(s) if s.is_empty() => assert_eq!(params.get(name), None),
            Value::String(s) => {
                assert!(!s.contains('\0'));
                assert_eq!(params.get(name), Some(s.as_str()));
            }
            Value::Bool(b) => assert_eq!(params.get(name), Some(b.to_string().as_str())),
            Value::Number(n) => assert_eq!(params.get(name), Some(n.to_string().as_str())),
            Value::Object(_) if OBJECT_PARAMETERS.contains(&name.as_str()) => {
                assert!(params.contains(name));
                assert_eq!(params.get(name), None, "an object is never read as text");
            }
            Value::Object(_) | Value::Array(_) => {
                assert!(JSON_TEXT_PARAMETERS.contains(&name.as_str()), "{name} accepted as a structure");
                // Kept as JSON text that reads back as the same structure.
                let text = params.get(name).expect("kept as text");
                assert_eq!(&serde_json::from_str::<Value>(text).unwrap(), value);
            }
        }
    }
});
