//! High-entropy identifiers and secrets, and how they are compared and stored.
//!
//! Every secret Assent hands out (client secrets, `auth_req_id`s, refresh
//! tokens) is 256 bits from the operating system's CSPRNG. Because they are not
//! human-chosen, a single SHA-256 is a sufficient one-way digest for storage:
//! a slow password hash would add nothing but latency on the hot path.

use aws_lc_rs::{digest, rand};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use subtle::ConstantTimeEq;

/// `n` random bytes, base64url without padding (characters `A-Za-z0-9_-`).
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A 256-bit secret for bearer-like values (secrets, `auth_req_id`, refresh tokens).
pub fn new_secret() -> String {
    random_token(32)
}

/// Hex SHA-256 digest: the stored form of every secret.
pub fn sha256_hex(value: &str) -> String {
    let d = digest::digest(&digest::SHA256, value.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in d.as_ref() {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap());
        out.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap());
    }
    out
}

/// Raw SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compares two secrets (or digests) without leaking where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether a presented secret matches its stored digest.
pub fn secret_matches_digest(presented: &str, stored_sha256_hex: &str) -> bool {
    constant_time_eq(&sha256_hex(presented), stored_sha256_hex)
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url_decode(data: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_url_safe() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(secret_matches_digest("abc", &sha256_hex("abc")));
        assert!(!secret_matches_digest("abd", &sha256_hex("abc")));
    }
}
