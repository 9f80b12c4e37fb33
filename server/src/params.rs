//! Request parameters with the strictness OAuth requires, from a form or a
//! JSON body alike.
//!
//! RFC 6749 3.1/3.2: parameters without a value are treated as omitted, and
//! request and response parameters MUST NOT be included more than once.
//! Auth0's Authentication API also takes the same parameters as a JSON
//! object; the same rules apply to it (a repeated key, at any depth, is
//! refused rather than silently last-one-wins), and a value must have the
//! type its parameter has: text, or a number or boolean where a form would
//! carry its text. Only the few parameters that are objects by nature
//! ([`OBJECT_PARAMETERS`]) may be objects.

use std::collections::{HashMap, HashSet};

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::OAuthError;

/// Parameters whose value is a JSON object: in a JSON body as an object, in
/// a form as its JSON text. Any other parameter sent as an object or array
/// is refused.
pub const OBJECT_PARAMETERS: [&str; 5] = [
    "authParams",
    "email_content",
    "client_attributes",
    "approval_data",
    "custom_sms_input",
];

/// Parameters that are JSON text in a form (`authorization_details`, RFC
/// 9396; `claims`, OpenID Core 5.5): a JSON body may send the structure
/// itself, which is kept as its JSON text so that one parser checks both.
pub const JSON_TEXT_PARAMETERS: [&str; 4] = [
    "authorization_details",
    "claims",
    "authenticator_types",
    "oob_channels",
];

#[derive(Debug, Clone, Default)]
pub struct Params {
    text: HashMap<String, String>,
    /// [`OBJECT_PARAMETERS`] sent as JSON objects.
    objects: HashMap<String, Value>,
}

impl Params {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        let mut seen = HashSet::new();
        for (name, value) in form_urlencoded::parse(body) {
            if !seen.insert(name.clone()) {
                return Err(repeated(&name));
            }
            // No backend stores a NUL; say which parameter before any I/O.
            if name.contains('\0') || value.contains('\0') {
                let shown = shown_name(&name);
                return Err(OAuthError::invalid_request(format!(
                    "parameter {shown} contains a NUL character, which is not allowed"
                )));
            }
            if !value.is_empty() {
                map.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Self {
            text: map,
            objects: HashMap::new(),
        })
    }

    /// Parses an `application/json` body: one object, no repeated key at
    /// any depth, values of the parameter's type (see the module comment).
    /// `null` is treated as omitted, as an empty form value is.
    pub fn parse_json(body: &[u8]) -> Result<Self, OAuthError> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let top = StrictValue::deserialize(&mut deserializer)
            .and_then(|v| deserializer.end().map(|()| v))
            .map_err(|e| {
                OAuthError::invalid_request(format!("the request body is not valid JSON: {e}"))
            })?;
        let Value::Object(fields) = top.0 else {
            return Err(OAuthError::invalid_request(
                "the request body must be a JSON object",
            ));
        };
        let mut params = Self::default();
        for (name, value) in fields {
            if name.contains('\0') {
                return Err(OAuthError::invalid_request(
                    "a parameter name contains a NUL character, which is not allowed",
                ));
            }
            let text = match value {
                Value::Null => continue,
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Object(_) if OBJECT_PARAMETERS.contains(&name.as_str()) => {
                    params.objects.insert(name, value);
                    continue;
                }
                Value::Object(_) | Value::Array(_)
                    if JSON_TEXT_PARAMETERS.contains(&name.as_str()) =>
                {
                    value.to_string()
                }
                Value::Object(_) | Value::Array(_) => {
                    let shown = shown_name(&name);
                    return Err(OAuthError::invalid_request(format!(
                        "parameter {shown} must be a string"
                    )));
                }
            };
            if text.contains('\0') {
                let shown = shown_name(&name);
                return Err(OAuthError::invalid_request(format!(
                    "parameter {shown} contains a NUL character, which is not allowed"
                )));
            }
            if !text.is_empty() {
                params.text.insert(name, text);
            }
        }
        Ok(params)
    }

    /// An object parameter ([`OBJECT_PARAMETERS`]) as `T`: from a JSON
    /// body's object, or from a form's JSON text. `T` should deny unknown
    /// fields, so that a misspelt option is an error rather than ignored.
    pub fn object<T: DeserializeOwned>(&self, name: &'static str) -> Result<Option<T>, OAuthError> {
        let invalid = |e: serde_json::Error| {
            OAuthError::invalid_request(format!("parameter {name} is not valid: {e}"))
        };
        if let Some(value) = self.objects.get(name) {
            return T::deserialize(value).map(Some).map_err(invalid);
        }
        match self.text.get(name) {
            Some(text) if text.len() > MAX_OBJECT_TEXT => Err(OAuthError::invalid_request(
                format!("parameter {name} is longer than {MAX_OBJECT_TEXT} bytes"),
            )),
            Some(text) => {
                let mut deserializer = serde_json::Deserializer::from_str(text);
                let value = StrictValue::deserialize(&mut deserializer)
                    .and_then(|v| deserializer.end().map(|()| v))
                    .map_err(invalid)?;
                if !value.0.is_object() {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter {name} must be a JSON object"
                    )));
                }
                T::deserialize(value.0).map(Some).map_err(invalid)
            }
            None => Ok(None),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            text: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            objects: HashMap::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.text.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.text.contains_key(name) || self.objects.contains_key(name)
    }

    /// A parameter that must be present, at most `max_len` bytes long.
    pub fn required(&self, name: &'static str, max_len: usize) -> Result<&str, OAuthError> {
        match self.optional(name, max_len)? {
            Some(v) => Ok(v),
            None => Err(OAuthError::invalid_request(format!(
                "missing required parameter {name}"
            ))),
        }
    }

    /// An optional parameter, at most `max_len` bytes long.
    pub fn optional(&self, name: &'static str, max_len: usize) -> Result<Option<&str>, OAuthError> {
        match self.get(name) {
            Some(v) if v.len() > max_len => Err(OAuthError::invalid_request(format!(
                "parameter {name} is longer than {max_len} bytes"
            ))),
            other => Ok(other),
        }
    }
}

/// Largest JSON text of an object parameter in a form.
const MAX_OBJECT_TEXT: usize = 32 * 1024;

/// A JSON value that refuses an object with a repeated key, at any depth
/// (`serde_json::Value` keeps the last one silently).
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if fields.contains_key(&key) {
                let shown = shown_name(&key);
                return Err(de::Error::custom(format!("key {shown} is repeated")));
            }
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// A parameter name as an error description quotes it: at most 64
/// characters, never a NUL (descriptions reach logs and error bodies).
fn shown_name(name: &str) -> String {
    name.chars().filter(|c| *c != '\0').take(64).collect()
}

fn repeated(name: &str) -> OAuthError {
    let shown = shown_name(name);
    OAuthError::invalid_request(format!("parameter {shown} is repeated"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OAuthErrorCode;

    #[test]
    fn empty_values_count_as_absent_and_repeats_are_rejected() {
        let p = Params::parse(b"a=1&b=&c=x+y%21").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y!"));
        assert_eq!(
            Params::parse(b"a=1&a=2").unwrap_err().code,
            OAuthErrorCode::InvalidRequest
        );
        assert_eq!(
            Params::parse(b"a=&a=2").unwrap_err().code,
            OAuthErrorCode::InvalidRequest
        );
    }

    #[test]
    fn nul_characters_are_refused_by_name() {
        let e = Params::parse(b"scope=openid&login_hint=al%00ice").unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
        assert!(
            e.description.contains("login_hint contains a NUL"),
            "{}",
            e.description
        );
        assert!(Params::parse(b"na%00me=x").is_err());
    }

    #[test]
    fn json_bodies_follow_the_same_rules() {
        let p = Params::parse_json(
            br#"{"a":"1","b":"","c":null,"n":300,"t":true,"authorization_details":[{"type":"x","n":8.11e151}],
                "client_attributes":{"ip_address":"203.0.113.9"}}"#,
        )
        .unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), None);
        assert_eq!(p.get("n"), Some("300"));
        assert_eq!(p.get("t"), Some("true"));
        assert_eq!(
            p.get("authorization_details"),
            Some(r#"[{"n":8.11e+151,"type":"x"}]"#)
        );
        assert!(p.contains("client_attributes"));
        let attributes: serde_json::Value = p.object("client_attributes").unwrap().unwrap();
        assert_eq!(attributes["ip_address"], "203.0.113.9");

        for (body, needle) in [
            (&br#"{"a":"1","a":"2"}"#[..], "key a is repeated"),
            (br#"{"authParams":{"x":"1","x":"2"}}"#, "key x is repeated"),
            (br#"{"a\u0000b":"1","a\u0000b":"2"}"#, "key ab is repeated"),
            (
                br#"{"scope":{"openid":true}}"#,
                "parameter scope must be a string",
            ),
            (
                br#"{"scope":["openid"]}"#,
                "parameter scope must be a string",
            ),
            (br#"["scope"]"#, "must be a JSON object"),
            (br#"{"a":"1"} {"b":"2"}"#, "not valid JSON"),
            (br#"{"a":"x\u0000y"}"#, "contains a NUL"),
            (b"{\"a\":", "not valid JSON"),
        ] {
            let e = Params::parse_json(body).unwrap_err();
            assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
            assert!(
                e.description.contains(needle),
                "{}: {}",
                String::from_utf8_lossy(body),
                e.description
            );
        }
    }

    #[test]
    fn object_parameters_come_from_json_or_form_text() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Data {
            sum: String,
        }
        let from_json = Params::parse_json(br#"{"approval_data":{"sum":"200"}}"#).unwrap();
        let from_form = Params::parse(b"approval_data=%7B%22sum%22%3A%22200%22%7D").unwrap();
        for p in [from_json, from_form] {
            assert_eq!(
                p.object::<Data>("approval_data").unwrap().unwrap().sum,
                "200"
            );
        }
        let wrong = Params::parse_json(br#"{"approval_data":{"sum":200}}"#).unwrap();
        assert!(wrong.object::<Data>("approval_data").is_err());
        let unknown = Params::parse_json(br#"{"approval_data":{"sum":"1","x":"2"}}"#).unwrap();
        assert!(unknown.object::<Data>("approval_data").is_err());
        let not_object = Params::parse(b"approval_data=%5B%5D").unwrap();
        assert!(not_object.object::<Data>("approval_data").is_err());
        assert!(Params::parse(b"x=1")
            .unwrap()
            .object::<Data>("approval_data")
            .unwrap()
            .is_none());
    }
}
