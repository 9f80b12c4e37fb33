//! One-time codes as tests read and compute them: the code in a delivered
//! message, and the TOTP (RFC 6238: SHA-1, 6 digits, 30 s) of a secret an
//! MFA enrollment answered.

use totp_rs::{Algorithm, TOTP};

/// The first run of exactly six digits in `text` (an e-mail or SMS).
pub fn six_digits(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit code in {text:?}"))
        .to_string()
}

/// The TOTP of a base32 `secret` (as `/mfa/associate` answers it).
pub fn totp(secret_base32: &str) -> TOTP {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_base32.as_bytes())
        .expect("a base32 secret");
    TOTP::new(Algorithm::SHA1, 6, 1, 30, secret, None, String::new()).expect("a TOTP")
}
