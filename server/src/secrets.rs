//! High-entropy identifiers and secrets, and how they are compared and stored.
//!
//! Every secret Assent hands out (client secrets, `auth_req_id`s, refresh
//! tokens) is 256 bits from the operating system's CSPRNG. Because they are not
//! human-chosen, a single SHA-256 is a sufficient one-way digest for storage:
//! a slow password hash would add nothing but latency on the hot path.

use aws_lc_rs::{digest, rand};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use subtle::ConstantTimeEq;

/// `n` random bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// `n` random bytes, base64url without padding (characters `A-Za-z0-9_-`).
pub fn random_token(n: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(n))
}

/// A 256-bit secret for bearer-like values (secrets, `auth_req_id`, refresh tokens).
pub fn new_secret() -> String {
    random_token(32)
}

/// A number-matching code of `digits` decimal digits (leading zeros kept),
/// uniformly drawn: values of the random `u32` at or above the largest
/// multiple of 10^digits are drawn again, so no code is likelier than another.
pub fn match_code(digits: u8) -> String {
    numeric_code(digits)
}

/// A code of `digits` decimal digits (at most 18), uniform (rejection
/// sampling): number-matching codes, and one-time codes sent by SMS or
/// e-mail.
pub fn numeric_code(digits: u8) -> String {
    let modulus = 10u64.pow(u32::from(digits));
    let limit = u64::MAX - u64::MAX % modulus;
    loop {
        let mut bytes = [0u8; 8];
        rand::fill(&mut bytes).expect("the operating system's random source failed");
        let value = u64::from_le_bytes(bytes);
        if value < limit {
            return format!("{:0width$}", value % modulus, width = usize::from(digits));
        }
    }
}

/// The stored form of a request's number-matching code: bound to the
/// request, so equal codes of two requests have different digests.
pub fn match_code_sha256(request_id: &str, code: &str) -> String {
    sha256_hex(&format!("{request_id}:{code}"))
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

/// Standard base64 (with padding), as logos are stored.
pub fn b64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn b64_decode(data: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(data).ok()
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

    #[test]
    fn match_codes_have_their_digits_and_cover_every_value() {
        let mut seen = [0u32; 100];
        for _ in 0..20_000 {
            let code = match_code(2);
            assert_eq!(code.len(), 2);
            seen[code.parse::<usize>().unwrap()] += 1;
        }
        // 200 expected per value; a value never or rarely drawn means bias.
        assert!(seen.iter().all(|&n| n > 100), "{seen:?}");
        assert_eq!(match_code(4).len(), 4);
        assert!(match_code(3).bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn match_code_digests_are_bound_to_the_request() {
        assert_ne!(match_code_sha256("r1", "47"), match_code_sha256("r2", "47"));
        assert_eq!(match_code_sha256("r1", "47"), sha256_hex("r1:47"));
    }
}
