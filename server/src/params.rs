//! Form parameters with the strictness OAuth requires.
//!
//! RFC 6749 3.1/3.2: parameters without a value are treated as omitted, and
//! request and response parameters MUST NOT be included more than once.

use std::collections::{HashMap, HashSet};

use crate::error::OAuthError;

#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

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
                let shown: String = name.chars().filter(|c| *c != '\0').take(64).collect();
                return Err(OAuthError::invalid_request(format!(
                    "parameter {shown} contains a NUL character, which is not allowed"
                )));
            }
            if !value.is_empty() {
                map.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Self(map))
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
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

fn repeated(name: &str) -> OAuthError {
    let shown: String = name.chars().take(64).collect();
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
}
